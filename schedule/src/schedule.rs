//! [`Schedule`]: a parsed spec with its time zone, anchor, name, jitter,
//! grace and policies, and the answers it gives.

use chrono_tz::Tz;

use crate::cron::CronSpec;
use crate::duration::parse_ms;
use crate::jitter;
use crate::policy::{CatchUp, Overlap};
use crate::ScheduleError;

/// The shortest `@every` interval, in milliseconds.
pub const MIN_INTERVAL_MS: u64 = 1_000;

/// The grace of a new [`Schedule`], in milliseconds: a firing less than a
/// minute late is on time. An `@every` schedule with a shorter interval has
/// its interval as the default grace instead.
pub const DEFAULT_GRACE_MS: u64 = 60_000;

/// What a schedule fires on.
#[derive(Debug, Clone)]
enum Spec {
    /// A cron expression, on the schedule's time zone's wall clock.
    Cron(Box<CronSpec>),
    /// `@every`: at `anchor + k * every_ms` for `k = 1, 2, …`.
    Every { every_ms: i64 },
}

/// A schedule: when it fires and what to do about firings that were missed.
///
/// Built by [`Schedule::parse`] (spec, time zone, anchor), then the
/// `with_*` methods for the rest; every setting has a getter. The semantics
/// of each part are in the [crate docs](crate).
///
/// ```
/// use sl_schedule::{CatchUp, Schedule};
///
/// // 2025-07-01T00:00:00Z, when the schedule was created.
/// let created = 1_751_328_000_000;
/// let nightly = Schedule::parse("0 9 * * *", Some("Europe/London"), created)?
///     .with_name("nightly-report")
///     .with_jitter_ms(60_000)
///     .with_catch_up(CatchUp::Last);
/// // 09:00 in London in July is 08:00 UTC.
/// assert_eq!(nightly.next_after(created), Some(created + 8 * 3_600_000));
/// # Ok::<(), sl_schedule::ScheduleError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    spec: Spec,
    tz: Tz,
    anchor_ms: i64,
    name: String,
    jitter_ms: u64,
    /// Set by `with_grace_ms`; `None` means the default.
    grace_ms: Option<u64>,
    catch_up: CatchUp,
    overlap: Overlap,
}

/// What [`Schedule::due`] says to do now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Due {
    /// The scheduled times (Unix ms) to run now, oldest first: the on-time
    /// firings and the missed firings the catch-up policy keeps.
    pub times: Vec<i64>,
    /// The scheduled time (Unix ms) of the next firing to wait for, whose
    /// fire instant ([`Schedule::fire_at`]) is after now; `None` if the
    /// schedule never fires again.
    pub next: Option<i64>,
}

impl Schedule {
    /// Parses a spec in a time zone.
    ///
    /// * `spec`: a 5-field cron expression, a nickname (`@hourly`,
    ///   `@daily`, `@weekly`, `@monthly`, `@yearly`, `@annually`) or
    ///   `@every <duration>` (see [`parse_duration`](crate::parse_duration)
    ///   for durations; at least 1 s). Surrounding spaces are ignored.
    /// * `tz`: an IANA time zone name such as `Europe/London`, case-sensitive
    ///   as in the tz database; `None` means `UTC`. `@every` ignores it.
    /// * `anchor_ms`: the schedule's creation time, Unix ms. `@every`
    ///   intervals count from it, and [`due`](Schedule::due) counts missed
    ///   firings from it while the schedule has never fired.
    ///
    /// The new schedule has an empty name, no jitter, the default grace
    /// (60 s, or the interval of an `@every` schedule if shorter), catch-up
    /// [`CatchUp::None`] and overlap [`Overlap::Skip`]; the `with_*` methods
    /// change them.
    ///
    /// A valid expression that matches no date at all, such as `0 0 30 2 *`,
    /// parses: the schedule then never fires ([`never_fires`](Schedule::never_fires)
    /// says so, and the searches return `None` at once).
    ///
    /// # Errors
    ///
    /// [`ScheduleError::EmptySpec`], [`ScheduleError::InvalidCron`],
    /// [`ScheduleError::InvalidInterval`], [`ScheduleError::IntervalTooShort`]
    /// or [`ScheduleError::UnknownTimeZone`], whose messages name the text at
    /// fault.
    pub fn parse(spec: &str, tz: Option<&str>, anchor_ms: i64) -> Result<Schedule, ScheduleError> {
        let text = spec.trim();
        if text.is_empty() {
            return Err(ScheduleError::EmptySpec);
        }
        let zone = match tz {
            None => Tz::UTC,
            Some(name) => name.parse::<Tz>().map_err(|_| ScheduleError::UnknownTimeZone { name: name.to_string() })?,
        };
        let parsed = match every_argument(text) {
            Some(duration) => {
                let every_ms = parse_ms(duration)
                    .map_err(|reason| ScheduleError::InvalidInterval { spec: text.to_string(), reason })?;
                if every_ms < MIN_INTERVAL_MS {
                    return Err(ScheduleError::IntervalTooShort { spec: text.to_string() });
                }
                // parse_ms caps durations at i64::MAX.
                Spec::Every { every_ms: every_ms as i64 }
            }
            None => {
                let cron = CronSpec::parse(text, zone).map_err(|reason| ScheduleError::InvalidCron {
                    spec: text.to_string(),
                    reason: if text.starts_with('@') {
                        "unknown nickname (expected @yearly, @annually, @monthly, @weekly, @daily, @hourly or \
                         @every <duration>)"
                            .to_string()
                    } else {
                        reason
                    },
                })?;
                Spec::Cron(Box::new(cron))
            }
        };
        Ok(Schedule {
            text: text.to_string(),
            spec: parsed,
            tz: zone,
            anchor_ms,
            name: String::new(),
            jitter_ms: 0,
            grace_ms: None,
            catch_up: CatchUp::default(),
            overlap: Overlap::default(),
        })
    }

    /// Sets the name, which seeds the jitter (see the
    /// [crate docs](crate#jitter)). Use one that is unique and stable, such
    /// as the function and schedule names together.
    pub fn with_name(mut self, name: impl Into<String>) -> Schedule {
        self.name = name.into();
        self
    }

    /// Sets the jitter: each firing happens a fixed offset in
    /// `[0, jitter_ms)` after its scheduled time. 0 (the default) turns it
    /// off.
    pub fn with_jitter_ms(mut self, jitter_ms: u64) -> Schedule {
        self.jitter_ms = jitter_ms.min(i64::MAX as u64);
        self
    }

    /// Sets the grace: a due firing whose fire instant is less than
    /// `grace_ms` before now is on time and runs whatever the catch-up
    /// policy; an older one is missed. 0 counts as 1 ms.
    ///
    /// The default, 60 s or the interval of an `@every` schedule if shorter,
    /// lets a server that wakes a little late, or restarts within the grace,
    /// lose nothing even under [`CatchUp::None`], while a burst after
    /// downtime stays small: with a grace no longer than the gap between
    /// firings, at most one firing (give or take the jitter) is on time.
    pub fn with_grace_ms(mut self, grace_ms: u64) -> Schedule {
        self.grace_ms = Some(grace_ms.clamp(1, i64::MAX as u64));
        self
    }

    /// Sets the catch-up policy.
    pub fn with_catch_up(mut self, catch_up: CatchUp) -> Schedule {
        self.catch_up = catch_up;
        self
    }

    /// Sets the overlap policy (applied by the server, kept here with the
    /// rest of the schedule).
    pub fn with_overlap(mut self, overlap: Overlap) -> Schedule {
        self.overlap = overlap;
        self
    }

    /// The spec as given, without surrounding spaces.
    pub fn spec(&self) -> &str {
        &self.text
    }

    /// The IANA name of the time zone (`UTC` by default).
    pub fn time_zone(&self) -> &str {
        self.tz.name()
    }

    /// The anchor (creation time), Unix ms.
    pub fn anchor_ms(&self) -> i64 {
        self.anchor_ms
    }

    /// The name that seeds the jitter.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The jitter, ms.
    pub fn jitter_ms(&self) -> u64 {
        self.jitter_ms
    }

    /// The grace in force, ms: the one set, or the default.
    pub fn grace_ms(&self) -> u64 {
        match (self.grace_ms, &self.spec) {
            (Some(grace), _) => grace,
            (None, Spec::Every { every_ms }) => DEFAULT_GRACE_MS.min(*every_ms as u64),
            (None, Spec::Cron(_)) => DEFAULT_GRACE_MS,
        }
    }

    /// The catch-up policy.
    pub fn catch_up(&self) -> CatchUp {
        self.catch_up
    }

    /// The overlap policy.
    pub fn overlap(&self) -> Overlap {
        self.overlap
    }

    /// The interval of an `@every` spec, ms; `None` for a cron expression.
    pub fn interval_ms(&self) -> Option<u64> {
        match self.spec {
            Spec::Every { every_ms } => Some(every_ms as u64),
            Spec::Cron(_) => None,
        }
    }

    /// Whether the spec matches no time at all (`0 0 30 2 *`): then every
    /// search returns `None`. Always false for `@every`.
    pub fn never_fires(&self) -> bool {
        match &self.spec {
            Spec::Cron(cron) => cron.never_fires(),
            Spec::Every { .. } => false,
        }
    }

    /// The first scheduled time strictly after `t_ms` (Unix ms in and out).
    ///
    /// `None` when the schedule never fires after `t_ms`: a spec that
    /// matches nothing, a cron search past the year 5000 or an instant
    /// outside the years 1 to 5000 for cron, and an `@every` time past
    /// `i64::MAX` ms.
    pub fn next_after(&self, t_ms: i64) -> Option<i64> {
        match &self.spec {
            Spec::Cron(cron) => cron.next_after(t_ms),
            Spec::Every { every_ms } => {
                let (anchor, every) = (i128::from(self.anchor_ms), i128::from(*every_ms));
                // The smallest k >= 1 with anchor + k * every > t.
                let k = ((i128::from(t_ms) - anchor).div_euclid(every) + 1).max(1);
                i64::try_from(anchor + k * every).ok()
            }
        }
    }

    /// The last scheduled time strictly before `t_ms` (Unix ms in and out);
    /// `None` if there is none (before the anchor's first interval for
    /// `@every`, before the year 1 for cron).
    pub fn prev_before(&self, t_ms: i64) -> Option<i64> {
        match &self.spec {
            Spec::Cron(cron) => cron.prev_before(t_ms),
            Spec::Every { every_ms } => {
                let (anchor, every) = (i128::from(self.anchor_ms), i128::from(*every_ms));
                // The largest k >= 1 with anchor + k * every < t.
                let k = (i128::from(t_ms) - anchor - 1).div_euclid(every);
                if k < 1 {
                    return None;
                }
                i64::try_from(anchor + k * every).ok()
            }
        }
    }

    /// The scheduled times strictly after `t_ms`, in order: `next_after`
    /// over and over.
    pub fn iter_after(&self, t_ms: i64) -> impl Iterator<Item = i64> + '_ {
        std::iter::successors(self.next_after(t_ms), move |t| self.next_after(*t))
    }

    /// The jitter offset of the firing scheduled at `scheduled_ms`, in
    /// `[0, jitter)` ms; the same on every server (see the
    /// [crate docs](crate#jitter)).
    pub fn jitter_offset_ms(&self, scheduled_ms: i64) -> i64 {
        // Below jitter_ms, which is at most i64::MAX.
        jitter::offset_ms(&self.name, scheduled_ms, self.jitter_ms) as i64
    }

    /// The instant at which the firing scheduled at `scheduled_ms` happens:
    /// the scheduled time plus its jitter offset (saturating at `i64::MAX`).
    pub fn fire_at(&self, scheduled_ms: i64) -> i64 {
        scheduled_ms.saturating_add(self.jitter_offset_ms(scheduled_ms))
    }

    /// What to run at `now_ms`, given the scheduled time of the last firing
    /// (`None` if the schedule never fired), and when to look again.
    ///
    /// Exactly (`fire_at` is [`Schedule::fire_at`]; all times Unix ms):
    ///
    /// 1. The *base* is `last_fired`, or the anchor if `None`.
    /// 2. The *pending* firings are the scheduled times `s > base`, in
    ///    order, up to but not including the first one whose
    ///    `fire_at(s) > now_ms`; that one is [`Due::next`] (`None` if there
    ///    is none).
    /// 3. Firings run in scheduled order, so a pending firing can start no
    ///    earlier than its *release*: the latest `fire_at` among it and the
    ///    pending firings before it. Without jitter the release is the
    ///    scheduled time itself.
    /// 4. A pending firing is *on time* if its release is less than the
    ///    grace before now (`release > now_ms - grace`), and *missed*
    ///    otherwise. Releases never decrease, so the missed firings all come
    ///    before the on-time ones.
    /// 5. [`Due::times`] holds, in scheduled order, the most recent missed
    ///    firings, as many as the catch-up policy's cap allows (none for
    ///    [`CatchUp::None`], one for [`CatchUp::Last`], up to `N` for
    ///    [`CatchUp::All`]), then every on-time firing.
    ///
    /// The caller starts (or, by the overlap policy, skips or queues) the
    /// firings in `times` and records the largest as `last_fired`, then
    /// waits until `fire_at(next)` and asks again. A server that does so
    /// runs every firing exactly once while it keeps up, whatever the
    /// policy. Missed firings left out of `times` are left out again by the
    /// next call, so recording nothing when `times` is empty is fine.
    ///
    /// The work is bounded by the cap and by the firings within the grace
    /// plus the jitter before `now_ms`, not by the length of the downtime:
    /// older missed firings are found by walking back.
    pub fn due(&self, last_fired: Option<i64>, now_ms: i64) -> Due {
        let base = last_fired.unwrap_or(self.anchor_ms);
        let jitter = self.jitter_ms as i64;
        let late = now_ms.saturating_sub(self.grace_ms() as i64);

        // A firing at or before `late - jitter` had its fire instant (at
        // most s + jitter - 1, or s without jitter) by `late`. So it is missed, every firing
        // before it is missed, and its fire instant cannot lift the release
        // of a later firing past `late`. Hence the firings after
        // `window_start` are enumerated forward with their releases (counted
        // from there, which decides on time or missed exactly); the ones
        // before it are all missed.
        let window_start = base.max(late.saturating_sub(jitter));
        let mut window = Vec::new();
        let mut release = i64::MIN;
        let mut next = self.next_after(window_start);
        while let Some(s) = next {
            let fire = self.fire_at(s);
            if fire > now_ms {
                break;
            }
            release = release.max(fire);
            window.push((s, release));
            next = self.next_after(s);
        }
        let first_on_time = window.partition_point(|(_, release)| *release <= late);

        // The missed firings to run, newest first: from the window, then
        // walking back from its start.
        let cap = self.catch_up.cap() as usize;
        let mut times: Vec<i64> = window[..first_on_time].iter().rev().take(cap).map(|(s, _)| *s).collect();
        if times.len() < cap {
            let mut cursor = self.prev_before(window.first().map_or(window_start.saturating_add(1), |(s, _)| *s));
            while let Some(s) = cursor.filter(|s| *s > base && times.len() < cap) {
                times.push(s);
                cursor = self.prev_before(s);
            }
        }
        times.reverse();
        times.extend(window[first_on_time..].iter().map(|(s, _)| *s));
        Due { times, next }
    }
}

/// The duration text of an `@every` spec (`None` if `text` is no `@every`
/// spec). `@every` is case-insensitive, like croner's nicknames, and must be
/// followed by spaces or nothing (`@everyday` is a misspelt nickname).
fn every_argument(text: &str) -> Option<&str> {
    let head = text.get(..6)?;
    let rest = &text[6..];
    (head.eq_ignore_ascii_case("@every") && (rest.is_empty() || rest.starts_with(char::is_whitespace))).then_some(rest)
}

#[cfg(test)]
mod tests;
