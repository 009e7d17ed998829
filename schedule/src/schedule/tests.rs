use super::*;

use chrono::DateTime;

/// An RFC 3339 instant in Unix ms.
fn ms(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis()
}

/// Unix ms back to RFC 3339 UTC, for readable failures.
fn show(t: i64) -> String {
    DateTime::from_timestamp_millis(t).unwrap().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn schedule(spec: &str, tz: &str) -> Schedule {
    Schedule::parse(spec, Some(tz), 0).unwrap()
}

/// The first `n` scheduled times after `from`, as RFC 3339 UTC.
fn firings(s: &Schedule, from: &str, n: usize) -> Vec<String> {
    s.iter_after(ms(from)).take(n).map(show).collect()
}

fn error(spec: &str, tz: Option<&str>) -> String {
    Schedule::parse(spec, tz, 0).unwrap_err().to_string()
}

const HOUR: i64 = 3_600_000;

// ---- parsing ----

#[test]
fn parse_errors_name_the_text_at_fault() {
    assert_eq!(
        error("", None),
        "empty schedule: expected a 5-field cron expression, a nickname such as @daily, or @every <duration>"
    );
    assert_eq!(error("   ", None), error("", None));
    assert_eq!(
        error("61 * * * *", None),
        "invalid cron expression '61 * * * *': Component error: Number out of bounds."
    );
    for (spec, reason) in [
        ("0 0 * * * *", "Invalid pattern: Pattern must have 5 fields when seconds are disallowed."),
        ("0 0 * *", "Invalid pattern: Pattern must have 5 fields when seconds are disallowed."),
        ("* 24 * * *", "Component error: Number out of bounds."),
        ("* * 0 * *", "Component error: Number out of bounds."),
        ("* * * 13 *", "Component error: Number out of bounds."),
        ("* * * * 8", "Component error: Number out of bounds."),
        ("*/0 * * * *", "Component error: Step cannot be zero."),
    ] {
        assert_eq!(error(spec, None), format!("invalid cron expression '{spec}': {reason}"));
    }
    assert!(
        error("5/5 * * * *", None).starts_with("invalid cron expression '5/5 * * * *': Component error: Invalid step")
    );
    assert!(error("hello", None).starts_with("invalid cron expression 'hello': "));
    for spec in ["@fortnightly", "@everyday", "@midnight"] {
        assert_eq!(
            error(spec, None),
            format!(
                "invalid cron expression '{spec}': unknown nickname (expected @yearly, @annually, @monthly, \
                 @weekly, @daily, @hourly or @every <duration>)"
            )
        );
    }
    assert_eq!(error("  @every  ", None), "invalid interval '@every': empty (expected e.g. 30s, 5m or 1h30m)");
    assert_eq!(error("@every 5x", None), "invalid interval '@every 5x': unknown unit 'x' (expected d, h, m, s or ms)");
    assert_eq!(
        error("@every 30m1h", None),
        "invalid interval '@every 30m1h': unit 'h' comes after a smaller unit (write units from largest to smallest)"
    );
    assert_eq!(error("@every 500ms", None), "interval must be at least 1s (got '@every 500ms')");
    assert_eq!(error("@every 0s", None), "interval must be at least 1s (got '@every 0s')");
    assert_eq!(error("* * * * *", Some("Mars/Base")), "unknown time zone 'Mars/Base'");
    assert_eq!(error("* * * * *", Some("")), "unknown time zone ''");
    // tz database names are case-sensitive.
    assert_eq!(error("* * * * *", Some("europe/london")), "unknown time zone 'europe/london'");
    // The time zone is checked for @every too, though it does not use it.
    assert_eq!(error("@every 1m", Some("Mars/Base")), "unknown time zone 'Mars/Base'");
}

#[test]
fn parse_keeps_the_spec_and_defaults() {
    let s = Schedule::parse("  */5 * * * *  ", None, 42).unwrap();
    assert_eq!(s.spec(), "*/5 * * * *");
    assert_eq!(s.time_zone(), "UTC");
    assert_eq!(s.anchor_ms(), 42);
    assert_eq!(s.name(), "");
    assert_eq!(s.jitter_ms(), 0);
    assert_eq!(s.grace_ms(), DEFAULT_GRACE_MS);
    assert_eq!(s.catch_up(), CatchUp::None);
    assert_eq!(s.overlap(), Overlap::Skip);
    assert_eq!(s.interval_ms(), None);
    assert!(!s.never_fires());

    let s = Schedule::parse("@every 1h30m", Some("Europe/London"), 42)
        .unwrap()
        .with_name("job")
        .with_jitter_ms(5_000)
        .with_grace_ms(0)
        .with_catch_up(CatchUp::All { cap: 3 })
        .with_overlap(Overlap::Queue);
    assert_eq!(s.spec(), "@every 1h30m");
    assert_eq!(s.time_zone(), "Europe/London");
    assert_eq!(s.interval_ms(), Some(5_400_000));
    assert_eq!(s.name(), "job");
    assert_eq!(s.jitter_ms(), 5_000);
    assert_eq!(s.grace_ms(), 1);
    assert_eq!(s.catch_up(), CatchUp::All { cap: 3 });
    assert_eq!(s.overlap(), Overlap::Queue);

    // The default grace of a short interval is the interval.
    assert_eq!(Schedule::parse("@every 10s", None, 0).unwrap().grace_ms(), 10_000);
    assert_eq!(Schedule::parse("@every 2m", None, 0).unwrap().grace_ms(), DEFAULT_GRACE_MS);
    assert_eq!(Schedule::parse("@every 10s", None, 0).unwrap().with_grace_ms(30_000).grace_ms(), 30_000);
}

// ---- every field form (UTC; 2025-01-01 is a Wednesday) ----

#[test]
fn wildcard_value_list_range_and_steps() {
    let from = "2025-01-01T00:00:00Z";
    let utc = |spec: &str, n: usize| firings(&schedule(spec, "UTC"), from, n);
    assert_eq!(utc("* * * * *", 2), ["2025-01-01T00:01:00.000Z", "2025-01-01T00:02:00.000Z"]);
    assert_eq!(utc("7 * * * *", 2), ["2025-01-01T00:07:00.000Z", "2025-01-01T01:07:00.000Z"]);
    assert_eq!(
        utc("0,30 * * * *", 3),
        ["2025-01-01T00:30:00.000Z", "2025-01-01T01:00:00.000Z", "2025-01-01T01:30:00.000Z"]
    );
    assert_eq!(
        utc("10-12 * * * *", 4),
        [
            "2025-01-01T00:10:00.000Z",
            "2025-01-01T00:11:00.000Z",
            "2025-01-01T00:12:00.000Z",
            "2025-01-01T01:10:00.000Z"
        ]
    );
    assert_eq!(
        utc("*/20 * * * *", 3),
        ["2025-01-01T00:20:00.000Z", "2025-01-01T00:40:00.000Z", "2025-01-01T01:00:00.000Z"]
    );
    assert_eq!(
        utc("10-40/15 * * * *", 4),
        [
            "2025-01-01T00:10:00.000Z",
            "2025-01-01T00:25:00.000Z",
            "2025-01-01T00:40:00.000Z",
            "2025-01-01T01:10:00.000Z"
        ]
    );
    assert_eq!(
        utc("0 9-17/4 * * *", 4),
        [
            "2025-01-01T09:00:00.000Z",
            "2025-01-01T13:00:00.000Z",
            "2025-01-01T17:00:00.000Z",
            "2025-01-02T09:00:00.000Z"
        ]
    );
    assert_eq!(
        utc("15 8,12-13 * * *", 4),
        [
            "2025-01-01T08:15:00.000Z",
            "2025-01-01T12:15:00.000Z",
            "2025-01-01T13:15:00.000Z",
            "2025-01-02T08:15:00.000Z"
        ]
    );
}

#[test]
fn day_month_and_weekday_fields_with_names() {
    let from = "2025-01-01T00:00:00Z";
    let utc = |spec: &str, n: usize| firings(&schedule(spec, "UTC"), from, n);
    assert_eq!(utc("0 0 15 * *", 2), ["2025-01-15T00:00:00.000Z", "2025-02-15T00:00:00.000Z"]);
    assert_eq!(utc("0 0 1 JAN,jul *", 2), ["2025-07-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z"]);
    assert_eq!(utc("0 0 1 2-3 *", 2), ["2025-02-01T00:00:00.000Z", "2025-03-01T00:00:00.000Z"]);
    assert_eq!(
        utc("0 0 * * MON-FRI", 3),
        ["2025-01-02T00:00:00.000Z", "2025-01-03T00:00:00.000Z", "2025-01-06T00:00:00.000Z"]
    );
    // Sunday is 0, 7 or SUN.
    for spec in ["0 0 * * 0", "0 0 * * 7", "0 0 * * sun"] {
        assert_eq!(utc(spec, 2), ["2025-01-05T00:00:00.000Z", "2025-01-12T00:00:00.000Z"], "{spec}");
    }
    // Both day fields restricted: either matches (the 13th, or a Friday).
    assert_eq!(
        utc("0 0 13 * FRI", 4),
        [
            "2025-01-03T00:00:00.000Z",
            "2025-01-10T00:00:00.000Z",
            "2025-01-13T00:00:00.000Z",
            "2025-01-17T00:00:00.000Z"
        ]
    );
    // croner's extensions: last day of the month, second Friday, both days.
    assert_eq!(utc("0 0 L * *", 2), ["2025-01-31T00:00:00.000Z", "2025-02-28T00:00:00.000Z"]);
    assert_eq!(utc("0 0 * * FRI#2", 2), ["2025-01-10T00:00:00.000Z", "2025-02-14T00:00:00.000Z"]);
    assert_eq!(utc("0 0 13 * +FRI", 1), ["2025-06-13T00:00:00.000Z"]);
    assert_eq!(
        utc("0 0 1,15,L * *", 4),
        [
            "2025-01-15T00:00:00.000Z",
            "2025-01-31T00:00:00.000Z",
            "2025-02-01T00:00:00.000Z",
            "2025-02-15T00:00:00.000Z"
        ]
    );
    // 2025-02-15 is a Saturday: the nearest weekday is Friday the 14th.
    assert_eq!(utc("0 0 15W 2 *", 1), ["2025-02-14T00:00:00.000Z"]);
    assert_eq!(utc("0 0 ? * MON", 1), ["2025-01-06T00:00:00.000Z"]);
    // Leap days.
    assert_eq!(utc("0 0 29 2 *", 2), ["2028-02-29T00:00:00.000Z", "2032-02-29T00:00:00.000Z"]);
}

#[test]
fn nicknames() {
    let from = "2025-01-01T00:00:00Z";
    let utc = |spec: &str| firings(&schedule(spec, "UTC"), from, 2);
    assert_eq!(utc("@hourly"), ["2025-01-01T01:00:00.000Z", "2025-01-01T02:00:00.000Z"]);
    assert_eq!(utc("@daily"), ["2025-01-02T00:00:00.000Z", "2025-01-03T00:00:00.000Z"]);
    assert_eq!(utc("@DAILY"), utc("@daily"));
    assert_eq!(utc("@weekly"), ["2025-01-05T00:00:00.000Z", "2025-01-12T00:00:00.000Z"]);
    assert_eq!(utc("@monthly"), ["2025-02-01T00:00:00.000Z", "2025-03-01T00:00:00.000Z"]);
    assert_eq!(utc("@yearly"), ["2026-01-01T00:00:00.000Z", "2027-01-01T00:00:00.000Z"]);
    assert_eq!(utc("@annually"), utc("@yearly"));
    // A nickname follows the time zone like any cron expression.
    assert_eq!(
        firings(&schedule("@daily", "Asia/Kolkata"), from, 2),
        ["2025-01-01T18:30:00.000Z", "2025-01-02T18:30:00.000Z"]
    );
}

#[test]
fn next_after_is_strict_and_millisecond_exact() {
    let s = schedule("0 * * * *", "UTC");
    let ten = ms("2025-01-01T10:00:00Z");
    assert_eq!(s.next_after(ten - 1), Some(ten));
    assert_eq!(s.next_after(ten), Some(ten + HOUR));
    assert_eq!(s.next_after(ten + 1), Some(ten + HOUR));
    assert_eq!(s.prev_before(ten + 1), Some(ten));
    assert_eq!(s.prev_before(ten), Some(ten - HOUR));
    assert_eq!(s.prev_before(ten - 1), Some(ten - HOUR));
    // Before 1970 works too; beyond croner's horizon there is nothing.
    assert_eq!(s.next_after(ms("1900-06-01T10:30:00Z")), Some(ms("1900-06-01T11:00:00Z")));
    assert_eq!(s.next_after(ms("6000-01-01T00:00:00Z")), None);
    assert_eq!(s.next_after(i64::MAX), None);
    assert_eq!(s.prev_before(i64::MIN), None);
}

// ---- @every ----

#[test]
fn every_fires_at_anchor_plus_multiples() {
    let anchor = ms("2025-01-01T00:00:00.123Z");
    let s = Schedule::parse("@every 30s", None, anchor).unwrap();
    assert_eq!(s.next_after(anchor), Some(anchor + 30_000));
    assert_eq!(s.next_after(anchor - 10 * HOUR), Some(anchor + 30_000));
    assert_eq!(s.next_after(anchor + 29_999), Some(anchor + 30_000));
    assert_eq!(s.next_after(anchor + 30_000), Some(anchor + 60_000));
    assert_eq!(s.next_after(anchor + 1_000_000_007), Some(anchor + 1_000_020_000));
    assert_eq!(s.prev_before(anchor + 30_000), None);
    assert_eq!(s.prev_before(anchor + 30_001), Some(anchor + 30_000));
    assert_eq!(s.prev_before(anchor + 90_000), Some(anchor + 60_000));
    assert_eq!(s.prev_before(anchor), None);

    for (spec, every) in [("@every 5m", 300_000), ("@every 1h30m", 5_400_000), ("@EVERY 1500ms", 1_500)] {
        let s = Schedule::parse(spec, None, anchor).unwrap();
        let times: Vec<i64> = s.iter_after(anchor).take(3).collect();
        assert_eq!(times, [anchor + every, anchor + 2 * every, anchor + 3 * every], "{spec}");
    }

    // Near the end of i64 there is no next firing, rather than an overflow.
    let s = Schedule::parse("@every 1d", None, i64::MAX - 100_000_000).unwrap();
    assert_eq!(s.next_after(i64::MAX - 1_000), None);
}

#[test]
fn every_ignores_time_zones_and_dst() {
    // 90-minute steps in real time straight through the London spring gap.
    let anchor = ms("2025-03-29T22:00:00Z");
    let s = Schedule::parse("@every 1h30m", Some("Europe/London"), anchor).unwrap();
    assert_eq!(
        firings(&s, "2025-03-29T22:00:00Z", 4),
        [
            "2025-03-29T23:30:00.000Z",
            "2025-03-30T01:00:00.000Z",
            "2025-03-30T02:30:00.000Z",
            "2025-03-30T04:00:00.000Z"
        ]
    );
}

// ---- daylight saving time ----

#[test]
fn london_spring_forward_gap_fires_once_at_the_end_of_the_gap() {
    // 2025-03-30: at 01:00 GMT the clock jumps to 02:00 BST (01:00 UTC).
    let s = schedule("30 1 * * *", "Europe/London");
    assert_eq!(
        firings(&s, "2025-03-28T12:00:00Z", 4),
        [
            "2025-03-29T01:30:00.000Z", // 01:30 GMT
            "2025-03-30T01:00:00.000Z", // 01:30 does not exist: 02:00 BST
            "2025-03-31T00:30:00.000Z", // 01:30 BST
            "2025-04-01T00:30:00.000Z",
        ]
    );
    assert_eq!(s.prev_before(ms("2025-03-31T00:30:00Z")), Some(ms("2025-03-30T01:00:00Z")));
}

#[test]
fn london_fall_back_repeated_time_fires_once_the_first_time() {
    // 2025-10-26: at 02:00 BST (01:00 UTC) the clock goes back to 01:00 GMT.
    let s = schedule("30 1 * * *", "Europe/London");
    assert_eq!(
        firings(&s, "2025-10-24T12:00:00Z", 3),
        [
            "2025-10-25T00:30:00.000Z", // 01:30 BST
            "2025-10-26T00:30:00.000Z", // the first 01:30 (BST); not again at 01:30 GMT
            "2025-10-27T01:30:00.000Z", // 01:30 GMT
        ]
    );
    // From inside the second pass of the repeated hour, too.
    assert_eq!(s.next_after(ms("2025-10-26T01:15:00Z")), Some(ms("2025-10-27T01:30:00Z")));
    assert_eq!(s.prev_before(ms("2025-10-26T01:45:00Z")), Some(ms("2025-10-26T00:30:00Z")));
}

#[test]
fn new_york_spring_forward_and_fall_back() {
    // 2025-03-09: at 02:00 EST (07:00 UTC) the clock jumps to 03:00 EDT.
    let s = schedule("30 2 * * *", "America/New_York");
    assert_eq!(
        firings(&s, "2025-03-08T00:00:00Z", 3),
        ["2025-03-08T07:30:00.000Z", "2025-03-09T07:00:00.000Z", "2025-03-10T06:30:00.000Z"]
    );
    // Two matched times in one gap fire once, together.
    let s = schedule("*/30 2 * * *", "America/New_York");
    assert_eq!(
        firings(&s, "2025-03-09T00:00:00Z", 3),
        ["2025-03-09T07:00:00.000Z", "2025-03-10T06:00:00.000Z", "2025-03-10T06:30:00.000Z"]
    );
    // 2025-11-02: at 02:00 EDT (06:00 UTC) the clock goes back to 01:00 EST.
    let s = schedule("30 1 * * *", "America/New_York");
    assert_eq!(
        firings(&s, "2025-11-01T00:00:00Z", 3),
        ["2025-11-01T05:30:00.000Z", "2025-11-02T05:30:00.000Z", "2025-11-03T06:30:00.000Z"]
    );
}

#[test]
fn nine_local_on_both_sides_of_each_change() {
    let london = schedule("0 9 * * *", "Europe/London");
    assert_eq!(
        firings(&london, "2025-03-28T00:00:00Z", 4),
        [
            "2025-03-28T09:00:00.000Z",
            "2025-03-29T09:00:00.000Z",
            "2025-03-30T08:00:00.000Z",
            "2025-03-31T08:00:00.000Z"
        ]
    );
    assert_eq!(
        firings(&london, "2025-10-25T00:00:00Z", 3),
        ["2025-10-25T08:00:00.000Z", "2025-10-26T09:00:00.000Z", "2025-10-27T09:00:00.000Z"]
    );
    let new_york = schedule("0 9 * * *", "America/New_York");
    assert_eq!(
        firings(&new_york, "2025-03-08T00:00:00Z", 3),
        ["2025-03-08T14:00:00.000Z", "2025-03-09T13:00:00.000Z", "2025-03-10T13:00:00.000Z"]
    );
    assert_eq!(
        firings(&new_york, "2025-11-01T00:00:00Z", 3),
        ["2025-11-01T13:00:00.000Z", "2025-11-02T14:00:00.000Z", "2025-11-03T14:00:00.000Z"]
    );
}

#[test]
fn sub_hourly_expressions_follow_the_wall_clock() {
    let s = schedule("*/15 * * * *", "Europe/London");
    // Spring: the beat goes on (02:00 BST is 01:00 UTC).
    assert_eq!(
        firings(&s, "2025-03-30T00:30:00Z", 4),
        [
            "2025-03-30T00:45:00.000Z",
            "2025-03-30T01:00:00.000Z",
            "2025-03-30T01:15:00.000Z",
            "2025-03-30T01:30:00.000Z"
        ]
    );
    // Autumn: nothing during the second pass of 01:00-02:00.
    assert_eq!(
        firings(&s, "2025-10-26T00:30:00Z", 3),
        ["2025-10-26T00:45:00.000Z", "2025-10-26T02:00:00.000Z", "2025-10-26T02:15:00.000Z"]
    );
    // Lists follow the same rule as single values.
    let s = schedule("30 1,13 * * *", "Europe/London");
    assert_eq!(firings(&s, "2025-03-30T00:00:00Z", 2), ["2025-03-30T01:00:00.000Z", "2025-03-30T12:30:00.000Z"]);
    assert_eq!(firings(&s, "2025-10-26T00:00:00Z", 2), ["2025-10-26T00:30:00.000Z", "2025-10-26T13:30:00.000Z"]);
}

// ---- specs that never fire ----

#[test]
fn never_firing_specs_return_none() {
    for spec in ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 2,4,6,9,11 *", "0 0 30 2 +MON"] {
        let s = schedule(spec, "Europe/London").with_catch_up(CatchUp::All { cap: 5 });
        assert!(s.never_fires(), "{spec}");
        assert_eq!(s.next_after(0), None, "{spec}");
        assert_eq!(s.prev_before(ms("2025-01-01T00:00:00Z")), None, "{spec}");
        assert_eq!(s.iter_after(0).count(), 0, "{spec}");
        assert_eq!(s.due(None, ms("2025-01-01T00:00:00Z")), Due { times: vec![], next: None }, "{spec}");
    }
    assert!(!schedule("0 0 29 2 *", "UTC").never_fires());
    assert!(!Schedule::parse("@every 1s", None, 0).unwrap().never_fires());
}

// ---- jitter ----

#[test]
fn jitter_is_deterministic_and_in_range() {
    let a = schedule("* * * * *", "UTC").with_name("billing/nightly").with_jitter_ms(1_000);
    let b = schedule("* * * * *", "Europe/London").with_name("billing/nightly").with_jitter_ms(1_000);
    let other = schedule("* * * * *", "UTC").with_name("billing/hourly").with_jitter_ms(1_000);
    let start = ms("2025-01-01T00:00:00Z");
    let mut buckets = [0u32; 10];
    let mut differs = 0;
    for k in 0..10_000 {
        let t = start + k * 60_000;
        let offset = a.jitter_offset_ms(t);
        assert!((0..1_000).contains(&offset), "{offset}");
        assert_eq!(offset, a.jitter_offset_ms(t));
        assert_eq!(offset, b.jitter_offset_ms(t), "same name and time, same offset");
        assert_eq!(a.fire_at(t), t + offset);
        buckets[(offset / 100) as usize] += 1;
        differs += u32::from(offset != other.jitter_offset_ms(t));
    }
    // Spread evenly (1000 expected per bucket) and seeded by the name.
    assert!(buckets.iter().all(|n| (850..=1150).contains(n)), "{buckets:?}");
    assert!(differs > 9_900, "{differs}");
    // Pinned: the same value as the module's own pinned test.
    let nightly = schedule("* * * * *", "UTC").with_name("nightly").with_jitter_ms(60_000);
    assert_eq!(nightly.jitter_offset_ms(ms("2025-01-01T00:00:00Z")), 22_934);
}

#[test]
fn jitter_moves_fire_instants_only() {
    let plain = schedule("0 * * * *", "UTC");
    let jittered = schedule("0 * * * *", "UTC").with_name("x").with_jitter_ms(600_000);
    let t = ms("2025-01-01T10:20:00Z");
    assert_eq!(jittered.next_after(t), plain.next_after(t));
    assert_eq!(jittered.prev_before(t), plain.prev_before(t));
    let s = jittered.next_after(t).unwrap();
    assert!(jittered.fire_at(s) >= s && jittered.fire_at(s) < s + 600_000);
    // No jitter, no offset.
    assert_eq!(plain.jitter_offset_ms(s), 0);
    assert_eq!(plain.fire_at(s), s);
    assert_eq!(schedule("0 * * * *", "UTC").with_name("x").with_jitter_ms(1).fire_at(s), s);
}

// ---- catch-up ----

/// Hourly in UTC, created at midnight, last fired at 10:00, down until now.
fn hourly(catch_up: CatchUp) -> Schedule {
    Schedule::parse("0 * * * *", None, ms("2025-01-02T00:00:00Z")).unwrap().with_catch_up(catch_up)
}

fn at(hhmmss: &str) -> i64 {
    ms(&format!("2025-01-02T{hhmmss}Z"))
}

fn due_at(s: &Schedule, last: Option<&str>, now: &str) -> (Vec<String>, Option<String>) {
    let due = s.due(last.map(at), at(now));
    (due.times.into_iter().map(show).collect(), due.next.map(show))
}

fn hours(list: &[&str]) -> Vec<String> {
    list.iter().map(|h| show(at(&format!("{h}:00:00")))).collect()
}

#[test]
fn catch_up_none_skips_every_missed_firing() {
    let s = hourly(CatchUp::None);
    let (times, next) = due_at(&s, Some("10:00:00"), "15:30:00");
    assert_eq!(times, hours(&[]));
    assert_eq!(next, Some(show(at("16:00:00"))));
}

#[test]
fn catch_up_last_runs_the_most_recent_missed_firing() {
    let s = hourly(CatchUp::Last);
    let (times, next) = due_at(&s, Some("10:00:00"), "15:30:00");
    assert_eq!(times, hours(&["15"]));
    assert_eq!(next, Some(show(at("16:00:00"))));
}

#[test]
fn catch_up_all_runs_the_most_recent_missed_firings_up_to_the_cap() {
    let (times, next) = due_at(&hourly(CatchUp::All { cap: 3 }), Some("10:00:00"), "15:30:00");
    assert_eq!(times, hours(&["13", "14", "15"]));
    assert_eq!(next, Some(show(at("16:00:00"))));
    let (times, _) = due_at(&hourly(CatchUp::All { cap: 10 }), Some("10:00:00"), "15:30:00");
    assert_eq!(times, hours(&["11", "12", "13", "14", "15"]));
}

#[test]
fn on_time_firings_run_under_every_policy() {
    // Woken at 15:00:30 with 15:00 due: it is on time (grace 60 s).
    for policy in [CatchUp::None, CatchUp::Last, CatchUp::All { cap: 2 }] {
        let (times, next) = due_at(&hourly(policy), Some("14:00:00"), "15:00:30");
        assert_eq!(times, hours(&["15"]), "{policy}");
        assert_eq!(next, Some(show(at("16:00:00"))));
    }
    // After downtime, the on-time firing comes on top of the policy's.
    assert_eq!(due_at(&hourly(CatchUp::None), Some("10:00:00"), "15:00:30").0, hours(&["15"]));
    assert_eq!(due_at(&hourly(CatchUp::Last), Some("10:00:00"), "15:00:30").0, hours(&["14", "15"]));
    assert_eq!(due_at(&hourly(CatchUp::All { cap: 2 }), Some("10:00:00"), "15:00:30").0, hours(&["13", "14", "15"]));
}

#[test]
fn grace_and_due_boundaries() {
    let s = hourly(CatchUp::None);
    // Due exactly at the fire instant, not a millisecond before.
    assert_eq!(s.due(Some(at("14:00:00")), at("15:00:00")).times, [at("15:00:00")]);
    assert_eq!(s.due(Some(at("14:00:00")), at("15:00:00") - 1), Due { times: vec![], next: Some(at("15:00:00")) });
    // On time until the grace has passed.
    assert_eq!(s.due(Some(at("14:00:00")), at("15:01:00") - 1).times, [at("15:00:00")]);
    assert_eq!(s.due(Some(at("14:00:00")), at("15:01:00")).times, Vec::<i64>::new());
    // With jitter the grace counts from the fire instant.
    let jittered = hourly(CatchUp::None).with_name("boundary").with_jitter_ms(10 * 60_000);
    let fire = jittered.fire_at(at("15:00:00"));
    assert!(fire > at("15:00:00"), "pick another name: this one has no offset");
    assert_eq!(jittered.due(Some(at("14:00:00")), fire - 1).times, Vec::<i64>::new());
    assert_eq!(jittered.due(Some(at("14:00:00")), fire).times, [at("15:00:00")]);
    assert_eq!(jittered.due(Some(at("14:00:00")), fire + 60_000 - 1).times, [at("15:00:00")]);
    assert_eq!(jittered.due(Some(at("14:00:00")), fire + 60_000).times, Vec::<i64>::new());
    let strict = hourly(CatchUp::None).with_grace_ms(1);
    assert_eq!(strict.due(Some(at("14:00:00")), at("15:00:00")).times, [at("15:00:00")]);
    assert_eq!(strict.due(Some(at("14:00:00")), at("15:00:00") + 1).times, Vec::<i64>::new());
}

#[test]
fn never_fired_counts_from_the_anchor() {
    // Created at 10:10, down until 12:30: 11:00 and 12:00 were missed.
    let created = at("10:10:00");
    let s = Schedule::parse("0 * * * *", None, created).unwrap();
    assert_eq!(s.due(None, at("12:30:00")), Due { times: vec![], next: Some(at("13:00:00")) });
    let s = s.with_catch_up(CatchUp::All { cap: 10 });
    assert_eq!(
        s.due(None, at("12:30:00")),
        Due { times: vec![at("11:00:00"), at("12:00:00")], next: Some(at("13:00:00")) }
    );
    // The anchor itself is no firing, even when it matches.
    let s = Schedule::parse("0 * * * *", None, at("10:00:00")).unwrap().with_catch_up(CatchUp::All { cap: 10 });
    assert_eq!(s.due(None, at("10:30:00")), Due { times: vec![], next: Some(at("11:00:00")) });
    // Nor for @every: the first firing is one interval after it.
    let s = Schedule::parse("@every 1h", None, at("10:10:00")).unwrap().with_catch_up(CatchUp::All { cap: 10 });
    assert_eq!(
        s.due(None, at("12:30:00")),
        Due { times: vec![at("11:10:00"), at("12:10:00")], next: Some(at("13:10:00")) }
    );
}

#[test]
fn a_last_fired_time_in_the_future_yields_nothing() {
    let s = hourly(CatchUp::All { cap: 10 });
    assert_eq!(s.due(Some(at("18:00:00")), at("15:30:00")), Due { times: vec![], next: Some(at("19:00:00")) });
}

#[test]
fn catch_up_work_does_not_grow_with_the_downtime() {
    // A year of downtime: 525,600 missed minutes, 31,536,000 missed seconds.
    let anchor = ms("2024-01-01T00:00:00Z");
    let now = ms("2025-01-01T00:00:00Z");
    let started = std::time::Instant::now();
    let s = Schedule::parse("* * * * *", Some("Europe/London"), anchor).unwrap().with_catch_up(CatchUp::All { cap: 3 });
    let due = s.due(Some(anchor), now + 30_000);
    // 23:59 was missed; midnight is on time.
    assert_eq!(due.times, [now - 3 * 60_000, now - 2 * 60_000, now - 60_000, now]);
    assert_eq!(due.next, Some(now + 60_000));
    let s = Schedule::parse("@every 1s", None, anchor).unwrap().with_catch_up(CatchUp::Last);
    // The default grace of a 1 s interval is 1 s: only `now` is on time.
    assert_eq!(s.due(Some(anchor), now), Due { times: vec![now - 1_000, now], next: Some(now + 1_000) });
    let s = s.with_catch_up(CatchUp::None);
    assert_eq!(s.due(Some(anchor), now), Due { times: vec![now], next: Some(now + 1_000) });
    let s = s.with_catch_up(CatchUp::All { cap: 1_000 });
    assert_eq!(s.due(Some(anchor), now).times.len(), 1_001);
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
}

/// `due` by its definition, walking forward from the base: for checking
/// the real one, which only looks at a window and walks back from it.
fn due_by_definition(s: &Schedule, last_fired: Option<i64>, now: i64) -> Due {
    let base = last_fired.unwrap_or(s.anchor_ms());
    let mut pending = Vec::new();
    let mut next = s.next_after(base);
    while let Some(t) = next {
        if s.fire_at(t) > now {
            break;
        }
        pending.push(t);
        next = s.next_after(t);
    }
    let grace = s.grace_ms() as i64;
    let (mut missed, mut on_time) = (Vec::new(), Vec::new());
    let mut release = i64::MIN;
    for t in pending {
        release = release.max(s.fire_at(t));
        if release > now - grace {
            on_time.push(t);
        } else {
            missed.push(t);
        }
    }
    let mut times = missed[missed.len().saturating_sub(s.catch_up().cap() as usize)..].to_vec();
    times.extend(on_time);
    Due { times, next }
}

#[test]
fn due_agrees_with_its_definition() {
    // Across the London autumn change, with jitter larger than the gap
    // between firings, so fire instants come out of scheduled order, and
    // for @every with a jitter that is not.
    let specs = [
        ("*/10 * * * *", 25 * 60_000, 5 * 60_000),
        ("*/10 * * * *", 0, 60_000),
        ("30 1,13 * * *", 3 * HOUR, 60_000),
        ("@every 7m", 2 * 60_000, 10 * 60_000),
    ];
    let anchor = ms("2025-10-25T20:00:00Z");
    let mut nonempty = 0;
    for (spec, jitter, grace) in specs {
        for policy in [CatchUp::None, CatchUp::Last, CatchUp::All { cap: 4 }] {
            let s = Schedule::parse(spec, Some("Europe/London"), anchor)
                .unwrap()
                .with_name(spec)
                .with_jitter_ms(jitter as u64)
                .with_grace_ms(grace as u64)
                .with_catch_up(policy);
            for last in [None, Some(ms("2025-10-25T23:40:00Z")), Some(ms("2025-10-26T00:50:00Z"))] {
                let mut now = anchor;
                while now < ms("2025-10-26T16:00:00Z") {
                    let due = s.due(last, now);
                    assert_eq!(
                        due,
                        due_by_definition(&s, last, now),
                        "{spec} {policy} last={:?} now={}",
                        last.map(show),
                        show(now)
                    );
                    nonempty += usize::from(!due.times.is_empty());
                    now += 241_003;
                }
            }
        }
    }
    assert!(nonempty > 2_000, "{nonempty}");
}

#[test]
fn due_then_record_then_due_again_runs_each_firing_once() {
    // A server that wakes at each fire instant and records what it ran
    // runs every scheduled time exactly once, in order, jitter or not.
    let s = Schedule::parse("*/5 * * * *", Some("America/New_York"), ms("2025-11-02T04:00:00Z"))
        .unwrap()
        .with_name("tick")
        .with_jitter_ms(12 * 60_000);
    let mut last = None;
    let mut now = s.anchor_ms();
    let mut ran = Vec::new();
    for _ in 0..100 {
        let due = s.due(last, now);
        if let Some(newest) = due.times.last() {
            last = Some(*newest);
        }
        ran.extend(due.times);
        now = s.fire_at(due.next.unwrap());
    }
    let expected: Vec<i64> = s.iter_after(s.anchor_ms()).take_while(|t| *t <= last.unwrap()).collect();
    assert_eq!(ran, expected);
    assert!(ran.len() > 90);
}

#[test]
fn schedules_can_be_shared_between_threads() {
    fn shared<T: Send + Sync + Clone + std::fmt::Debug>() {}
    shared::<Schedule>();
    shared::<Due>();
    shared::<ScheduleError>();
}
