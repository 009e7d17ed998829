//! Cron expressions on a time zone's wall clock.
//!
//! [croner] parses the expression and searches the naive (zone-less) wall
//! clock for matching local times; this module maps each matched local time
//! to one instant with [chrono-tz]'s copy of the tz database, by the rule in
//! the [crate docs](crate#time-zones-and-daylight-saving-time):
//!
//! * a local time that occurs once fires at that instant;
//! * a local time that occurs twice (the clock went back) fires at the first;
//! * a local time that does not occur (the clock jumped over it) fires at the
//!   first instant after the jump.
//!
//! All three cases are one rule: a local time `w` fires at the first instant
//! at which the wall clock reads `w` or later. That map is non-decreasing in
//! `w`, which is what makes searching forward and backward on the wall clock
//! enough to find the next and previous firing instants.
//!
//! croner can also search zoned times itself, but its daylight-saving rules
//! depend on whether it classes an expression as a fixed-time or an interval
//! job, and it classes a list like `30 1,13 * * *` as interval: that drops the
//! spring 01:30 in Europe/London and fires the autumn 01:30 twice, unlike the
//! rule above. Hence the naive search.
//!
//! [croner]: https://docs.rs/croner
//! [chrono-tz]: https://docs.rs/chrono-tz

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone, Timelike};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

/// A parsed cron expression in a time zone.
#[derive(Debug, Clone)]
pub(crate) struct CronSpec {
    cron: Cron,
    tz: Tz,
    /// Whether the expression matches no date at all (`0 0 30 2 *`),
    /// found once at parse time so that searches return at once.
    never: bool,
}

impl CronSpec {
    /// Parses a 5-field expression or a croner nickname (`@hourly` …).
    /// The error is croner's message.
    pub(crate) fn parse(expr: &str, tz: Tz) -> Result<CronSpec, String> {
        let parser = CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build();
        let cron = parser.parse(expr).map_err(|e| e.to_string())?;
        // Without a year field the calendar repeats every 400 years, and
        // croner searches up to the year 5000: a spec with no match after
        // 1970 has none at all. Only such a spec makes this search long
        // (milliseconds), and then only once.
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).expect("valid date");
        let never = cron.find_next_occurrence(&epoch, true).is_err();
        Ok(CronSpec { cron, tz, never })
    }

    pub(crate) fn never_fires(&self) -> bool {
        self.never
    }

    /// The first firing instant strictly after `t_ms`, or `None` if there is
    /// none before croner's search horizon (the year 5000) or `t_ms` is out
    /// of chrono's range.
    pub(crate) fn next_after(&self, t_ms: i64) -> Option<i64> {
        if self.never {
            return None;
        }
        // Every local time at or before the wall clock reading at `t_ms`
        // fires at or before `t_ms`, so the search starts after it. The loop
        // only goes round more than once when `t_ms` is in the second pass of
        // a repeated hour, whose local times fired in the first pass.
        let start = floor_second(self.local_of(t_ms)?);
        let mut local = self.cron.find_next_occurrence(&start, false).ok()?;
        loop {
            let instant = self.resolve(local)?;
            if instant > t_ms {
                return Some(instant);
            }
            local = self.cron.find_next_occurrence(&local, false).ok()?;
        }
    }

    /// The last firing instant strictly before `t_ms`, or `None` if there is
    /// none after the year 1 or `t_ms` is out of chrono's range.
    pub(crate) fn prev_before(&self, t_ms: i64) -> Option<i64> {
        if self.never {
            return None;
        }
        // The local times that fire before `t_ms` are those at or before the
        // highest reading of the wall clock before `t_ms`. That is the reading
        // at `t_ms - 1`, unless that instant is in the second pass of a
        // repeated hour, when the first pass read up to one shift higher.
        let last = t_ms.checked_sub(1)?;
        let mut upper = self.local_of(last)?;
        if let LocalResult::Ambiguous(earlier, later) = self.tz.from_local_datetime(&upper) {
            if later.timestamp_millis() == last {
                let shift = offset_seconds(&earlier) - offset_seconds(&later);
                upper = upper.checked_add_signed(TimeDelta::try_seconds(shift)?)?;
            }
        }
        let mut local = self.cron.find_previous_occurrence(&floor_second(upper), true).ok()?;
        loop {
            let instant = self.resolve(local)?;
            if instant < t_ms {
                return Some(instant);
            }
            local = self.cron.find_previous_occurrence(&local, false).ok()?;
        }
    }

    /// The wall clock reading at `t_ms`.
    fn local_of(&self, t_ms: i64) -> Option<NaiveDateTime> {
        self.tz.timestamp_millis_opt(t_ms).single().map(|dt| dt.naive_local())
    }

    /// The first instant at which the wall clock reads `local` or later.
    fn resolve(&self, local: NaiveDateTime) -> Option<i64> {
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(dt) => Some(dt.timestamp_millis()),
            LocalResult::Ambiguous(earlier, _) => Some(earlier.timestamp_millis()),
            LocalResult::None => self.end_of_gap(local),
        }
    }

    /// For a local time in a gap, the instant the clock jumped over it.
    ///
    /// A UTC offset is less than a day either way, so the wall clock reads
    /// less than `local` a day before `local` read as UTC and more than it a
    /// day after. Between those bounds the only jump is this gap's (no zone
    /// changes its clock twice within two days), so the reading crosses
    /// `local` once, and a bisection on whole seconds finds that instant
    /// exactly: tz database transitions fall on whole seconds.
    fn end_of_gap(&self, local: NaiveDateTime) -> Option<i64> {
        const DAY: i64 = 86_400;
        let middle = local.and_utc().timestamp();
        let (mut before, mut after) = (middle.checked_sub(DAY)?, middle.checked_add(DAY)?);
        while after - before > 1 {
            let probe = before + (after - before) / 2;
            let reading = self.tz.timestamp_opt(probe, 0).single()?.naive_local();
            if reading >= local {
                after = probe;
            } else {
                before = probe;
            }
        }
        after.checked_mul(1000)
    }
}

/// `local` without its fraction of a second (cron matches whole seconds).
fn floor_second(local: NaiveDateTime) -> NaiveDateTime {
    local.with_nanosecond(0).unwrap_or(local)
}

/// The UTC offset of `dt`, in seconds east.
fn offset_seconds(dt: &DateTime<Tz>) -> i64 {
    i64::from(dt.offset().fix().local_minus_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(expr: &str, tz: &str) -> CronSpec {
        CronSpec::parse(expr, tz.parse().unwrap()).unwrap()
    }

    fn ms(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis()
    }

    fn day_start(day: &str) -> NaiveDateTime {
        NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap().and_hms_opt(0, 0, 0).unwrap()
    }

    /// The four transition days of 2025 in London and New York.
    const TRANSITIONS: [(&str, &str); 4] = [
        ("Europe/London", "2025-03-30"),
        ("Europe/London", "2025-10-26"),
        ("America/New_York", "2025-03-09"),
        ("America/New_York", "2025-11-02"),
    ];

    /// The wall clock reading at every whole minute from `from_ms`, for
    /// `minutes` minutes: (instant, reading).
    fn readings(tz: Tz, from_ms: i64, minutes: i64) -> Vec<(i64, NaiveDateTime)> {
        (0..minutes)
            .map(|m| {
                let t = from_ms + m * 60_000;
                (t, tz.timestamp_millis_opt(t).unwrap().naive_local())
            })
            .collect()
    }

    #[test]
    fn resolve_matches_its_definition_around_transitions() {
        // The definition, slowly: the first instant (clocks in these zones
        // change on whole minutes) whose reading is `local` or later.
        for (zone, day) in TRANSITIONS {
            let s = spec("* * * * *", zone);
            let start = day_start(day);
            let around = readings(s.tz, (start.and_utc().timestamp() - 12 * 3600) * 1000, 48 * 60);
            for minute in 0..24 * 60 {
                let local = start + TimeDelta::minutes(minute);
                let first = around.iter().find(|(_, reading)| *reading >= local).unwrap().0;
                assert_eq!(s.resolve(local), Some(first), "{zone} {local}");
            }
        }
    }

    #[test]
    fn searches_agree_with_brute_force_around_transitions() {
        // For each transition and spec: every matching local minute of the
        // three days around it, mapped by `resolve`, deduplicated, must be
        // exactly what `next_after` walks forward and `prev_before` walks
        // backward; and both must answer correctly from every minute, and
        // from a millisecond either side, not just from firing instants.
        let specs =
            ["* * * * *", "*/15 * * * *", "30 1 * * *", "30 2 * * *", "30 1,13 * * *", "0 9 * * *", "*/30 1-3 * * *"];
        for (zone, day) in TRANSITIONS {
            for expr in specs {
                let s = spec(expr, zone);
                let first_local = day_start(day) - TimeDelta::days(1);
                let mut expected: Vec<i64> = (0..3 * 24 * 60)
                    .map(|m| first_local + TimeDelta::minutes(m))
                    .filter(|local| s.cron.is_time_matching(local).unwrap())
                    .map(|local| s.resolve(local).unwrap())
                    .collect();
                expected.dedup();
                assert!(expected.windows(2).all(|w| w[0] < w[1]), "{zone} {expr}: resolve not increasing");

                let (lo, hi) = (expected[0], *expected.last().unwrap());
                let mut forward = vec![lo];
                while let Some(t) = s.next_after(*forward.last().unwrap()).filter(|t| *t <= hi) {
                    forward.push(t);
                }
                assert_eq!(forward, expected, "{zone} {expr}: forward");
                let mut backward = vec![hi];
                while let Some(t) = s.prev_before(*backward.last().unwrap()).filter(|t| *t >= lo) {
                    backward.push(t);
                }
                backward.reverse();
                assert_eq!(backward, expected, "{zone} {expr}: backward");

                for t in (lo..hi).step_by(60_000) {
                    for probe in [t - 1, t, t + 1] {
                        let next = expected.get(expected.partition_point(|x| *x <= probe)).copied();
                        let prev = expected.partition_point(|x| *x < probe).checked_sub(1).map(|i| expected[i]);
                        if probe > lo {
                            assert_eq!(s.prev_before(probe), prev, "{zone} {expr}: prev_before({probe})");
                        }
                        if probe < hi {
                            assert_eq!(s.next_after(probe), next, "{zone} {expr}: next_after({probe})");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn end_of_gap_is_the_transition_instant() {
        let london = spec("* * * * *", "Europe/London");
        let local = NaiveDate::from_ymd_opt(2025, 3, 30).unwrap().and_hms_opt(1, 30, 0).unwrap();
        assert_eq!(london.end_of_gap(local), Some(ms("2025-03-30T01:00:00Z")));
        // Samoa skipped all of 2011-12-30 (UTC-10 to UTC+14).
        let apia = spec("* * * * *", "Pacific/Apia");
        let local = NaiveDate::from_ymd_opt(2011, 12, 30).unwrap().and_hms_opt(12, 0, 0).unwrap();
        assert_eq!(apia.end_of_gap(local), Some(ms("2011-12-31T00:00:00+14:00")));
    }

    #[test]
    fn a_whole_skipped_day_fires_once_at_its_end() {
        // `0 12 * * *` in Samoa: 2011-12-30 did not exist there, so its noon
        // fires at the first instant after the jump, midnight of the 31st.
        let s = spec("0 12 * * *", "Pacific/Apia");
        let times: Vec<i64> =
            std::iter::successors(s.next_after(ms("2011-12-29T00:00:00-10:00")), |t| s.next_after(*t))
                .take(3)
                .collect();
        assert_eq!(
            times,
            [ms("2011-12-29T12:00:00-10:00"), ms("2011-12-31T00:00:00+14:00"), ms("2011-12-31T12:00:00+14:00")]
        );
        assert_eq!(s.prev_before(ms("2011-12-31T12:00:00+14:00")), Some(ms("2011-12-31T00:00:00+14:00")));
    }

    #[test]
    fn croner_zoned_search_differs_on_lists() {
        // Why this module maps local times itself: croner's zoned search
        // drops the spring 01:30 of a list and fires the autumn one twice.
        let tz: Tz = "Europe/London".parse().unwrap();
        let s = spec("30 1,13 * * *", "Europe/London");
        let zoned = |from: &str| -> Vec<i64> {
            let start = tz.timestamp_millis_opt(ms(from)).unwrap();
            s.cron.iter_after(start).take(2).map(|dt| dt.timestamp_millis()).collect()
        };
        assert_eq!(zoned("2025-03-30T00:00:00Z"), [ms("2025-03-30T12:30:00Z"), ms("2025-03-31T00:30:00Z")]);
        assert_eq!(zoned("2025-10-26T00:00:00Z"), [ms("2025-10-26T00:30:00Z"), ms("2025-10-26T01:30:00Z")]);
        let ours = |from: &str| -> Vec<i64> {
            std::iter::successors(s.next_after(ms(from)), |t| s.next_after(*t)).take(2).collect()
        };
        assert_eq!(ours("2025-03-30T00:00:00Z"), [ms("2025-03-30T01:00:00Z"), ms("2025-03-30T12:30:00Z")]);
        assert_eq!(ours("2025-10-26T00:00:00Z"), [ms("2025-10-26T00:30:00Z"), ms("2025-10-26T13:30:00Z")]);
    }
}
