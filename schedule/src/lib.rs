//! When scheduled invocations fire.
//!
//! A [`Schedule`] is a spec (a cron expression or an `@every` interval), a
//! time zone, an anchor (the schedule's creation time), a name, a jitter, a
//! grace, a catch-up policy and an overlap policy. It answers two questions:
//! when does the schedule fire next after a given instant
//! ([`Schedule::next_after`]), and, given when it last fired, what should run
//! now and when to look again ([`Schedule::due`]).
//!
//! This crate is pure logic: no I/O, no threads, no clock. Every instant is an
//! argument or a result, in Unix milliseconds (`i64`, UTC), so the server
//! passes its clock in and tests pass theirs.
//!
//! Two words are used throughout. A firing's *scheduled time* is the instant
//! its spec gives; its *fire instant* is the scheduled time plus its jitter
//! offset ([`Schedule::fire_at`]), when the server starts it. Every time this
//! crate takes or returns (`next_after`, `Due::times`, `Due::next`,
//! `last_fired`) is a scheduled time, except what `fire_at` returns.
//!
//! # Specs
//!
//! **Cron expressions** have exactly 5 fields: minute (0-59), hour (0-23),
//! day of month (1-31), month (1-12 or `JAN`-`DEC`) and day of week (0-7 or
//! `SUN`-`SAT`, where 0 and 7 are both Sunday). A field is `*`, a value, a
//! range `a-b`, a step `*/n` or `a-b/n`, or a comma-separated list of these
//! (`0,30`, `MON-FRI`, `9-17/2`, `1,15,L`). Names are case-insensitive. When
//! both day fields are restricted, a day matches if either does (`0 0 13 *
//! FRI` fires on every 13th and on every Friday), as in Vixie cron. Parsing
//! is [croner]'s, with its extensions: `L` (last day of the month, or last
//! given weekday), `W` (nearest weekday), `#` (nth weekday, `FRI#2`), `?` (as
//! `*` in a day field) and a `+` before the day of week (both day fields
//! must match). Six-field (seconds) and seven-field (year) expressions are
//! rejected, and so is the non-standard step `5/5` (write `5-59/5`).
//! Firings fall on whole minutes.
//!
//! **Nicknames**: `@hourly` (`0 * * * *`), `@daily` (`0 0 * * *`),
//! `@weekly` (`0 0 * * SUN`), `@monthly` (`0 0 1 * *`), `@yearly` and
//! `@annually` (`0 0 1 1 *`), case-insensitive. They are cron expressions,
//! so they follow the time zone.
//!
//! **Intervals**: `@every <duration>`, with a duration such as `30s`, `5m`,
//! `1h30m`, `2d` or `1500ms` (grammar at [`parse_duration`]; at least 1 s).
//! An interval schedule fires at `anchor + k * interval` for `k = 1, 2, 3,
//! …`: one interval after its creation, then every interval, in real elapsed
//! time. It ignores the time zone and daylight saving time altogether. This
//! is the only spec syntax the crate parses by hand: no crate reads `@every`
//! in this form (see the [`parse_duration`] docs).
//!
//! A spec that parses but matches no date, such as `0 0 30 2 *` or
//! `0 0 31 4 *`, makes a schedule that never fires: the searches return
//! `None` at once ([`Schedule::never_fires`]) instead of looking forever.
//!
//! # Time zones and daylight saving time
//!
//! Each schedule has a time zone, an IANA name from the tz database such as
//! `Europe/London` or `America/New_York` (case-sensitive, as the database
//! spells it), `UTC` by default. A cron expression matches the local wall
//! clock of that zone, and each local time it matches fires exactly once:
//!
//! * if the local time occurs once, at that instant;
//! * if it occurs twice, because the clock went back (autumn), at the first
//!   occurrence only. `30 1 * * *` in Europe/London fires on 2025-10-26 at
//!   01:30 BST (00:30 UTC) and not again at 01:30 GMT (01:30 UTC);
//! * if it does not occur, because the clock jumped forward over it
//!   (spring), at the first valid instant after the gap. `30 1 * * *` in
//!   Europe/London fires on 2025-03-30 at 02:00 BST (01:00 UTC), the instant
//!   the clock jumped from 01:00 GMT to 02:00 BST. Several matched times in
//!   one gap fire once, together, at that instant.
//!
//! In one sentence: a matched local time fires at the first instant at which
//! the wall clock reads that time or later.
//!
//! So `0 9 * * *` in Europe/London fires at 09:00 local every day: 08:00 UTC
//! in summer time and 09:00 UTC in winter. Expressions that fire several
//! times an hour follow the wall clock as well. In spring `*/15 * * * *`
//! keeps its beat (the four quarter-hours of the missing hour fire once at
//! the end of the gap, which is the next quarter-hour anyway); in autumn it
//! fires during the first pass of the repeated hour and not during the
//! second, so 75 minutes pass between its 01:45 BST and 02:00 GMT firings.
//! For a steady beat in real time, use `@every` or the `UTC` zone.
//!
//! # Jitter
//!
//! A schedule with a jitter `J` > 0 ms fires each firing a fixed offset in
//! `[0, J)` ms after its scheduled time, to spread out the schedules that
//! share a time. The offset is a hash of the schedule name and the scheduled
//! time, so every server computes the same one for the same firing, and
//! different firings of one schedule get different offsets:
//!
//! > offset = SplitMix64-finalizer(FNV-1a-64(UTF-8 bytes of the name ‖ the
//! > scheduled time in Unix ms as 8 bytes big-endian two's complement)) mod J
//!
//! Jitter moves fire instants only: scheduled times, the catch-up rules and
//! `last_fired` are unchanged. A jitter larger than the gap between two
//! firings is allowed; firings still run in scheduled order, since
//! [`Schedule::due`] only returns a firing once every earlier one is due.
//!
//! # Catch-up after downtime
//!
//! [`Schedule::due`] takes the scheduled time of the last firing the server
//! handled (`None` if there was none) and now, and returns the scheduled
//! times to run now and the next one to wait for. The firings after the last
//! one (or, for a schedule that never fired, after its anchor) whose fire
//! instant has passed are *pending*. Firings run in scheduled order, so a
//! pending firing is released at the latest fire instant among it and the
//! pending firings before it (without jitter: at its scheduled time). It is
//! *on time* if it was released less than the grace before now, and
//! *missed* otherwise. The grace is 60 s by default, or the interval of an
//! `@every` schedule if that is shorter, so that after downtime about one
//! firing is on time, not a minute's worth.
//!
//! On-time firings always run; the catch-up policy ([`CatchUp`]) decides
//! about missed ones:
//!
//! * `none`: skip them all; the schedule resumes with the first firing
//!   after now;
//! * `last`: run the most recent missed one, once;
//! * `all:N`: run the missed ones in scheduled order, but at most the `N`
//!   most recent (older ones are skipped).
//!
//! So after a server is down from 10:30 to 15:30 an hourly schedule with
//! `none` runs nothing until 16:00, with `last` runs 15:00, and with
//! `all:3` runs 13:00, 14:00 and 15:00, then waits for 16:00. While the
//! server keeps up (it asks at each fire instant and records what it ran),
//! every firing is on time, so every policy runs every firing exactly once.
//! The exact algorithm is on [`Schedule::due`]; its cost depends on `N`, the
//! jitter and the grace, never on the length of the downtime.
//!
//! # Overlap
//!
//! [`Overlap`] (`skip`, `queue` or `allow`) says what to do when a firing
//! comes due while the previous run of the same schedule is still going.
//! The server applies it; this crate only parses and carries it.
//!
//! # Limits
//!
//! Cron searches cover the years 1 to 5000 (croner's search horizon):
//! beyond, they return `None`. An interval must be at least 1 s
//! ([`MIN_INTERVAL_MS`]). An `all` catch-up cap is at most 1000.
//!
//! # Crates
//!
//! Cron parsing and matching: [croner] 4 (5-field expressions, names,
//! nicknames, maintained), searching the naive wall clock. Time zones:
//! [chrono-tz] (the tz database compiled in, so every server agrees and
//! nothing is read from the host). croner's own zoned search is not used:
//! its daylight-saving rules depend on whether an expression counts as a
//! fixed-time or an interval job, and `30 1,13 * * *` counts as interval,
//! which drops the spring 01:30 in Europe/London and fires the autumn 01:30
//! twice, against the rules above. The mapping from local times to instants
//! is this crate's.
//!
//! [croner]: https://docs.rs/croner
//! [chrono-tz]: https://docs.rs/chrono-tz

mod cron;
mod duration;
mod jitter;
mod policy;
mod schedule;

pub use duration::parse_duration;
pub use policy::{CatchUp, Overlap, DEFAULT_CATCH_UP_CAP, MAX_CATCH_UP_CAP};
pub use schedule::{Due, Schedule, DEFAULT_GRACE_MS, MIN_INTERVAL_MS};

/// Why a schedule, a duration or a policy did not parse. The messages name
/// the text at fault and are meant for the user who wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The spec is empty or all spaces.
    #[error("empty schedule: expected a 5-field cron expression, a nickname such as @daily, or @every <duration>")]
    EmptySpec,
    /// The cron expression (or nickname) did not parse; `reason` is
    /// croner's message, or names the unknown nickname.
    #[error("invalid cron expression '{spec}': {reason}")]
    InvalidCron {
        /// The spec as given, trimmed.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The duration of an `@every` spec did not parse.
    #[error("invalid interval '{spec}': {reason}")]
    InvalidInterval {
        /// The spec as given, trimmed.
        spec: String,
        /// What is wrong with its duration.
        reason: String,
    },
    /// The `@every` interval is shorter than [`MIN_INTERVAL_MS`].
    #[error("interval must be at least 1s (got '{spec}')")]
    IntervalTooShort {
        /// The spec as given, trimmed.
        spec: String,
    },
    /// The time zone is not in the tz database.
    #[error("unknown time zone '{name}'")]
    UnknownTimeZone {
        /// The name as given.
        name: String,
    },
    /// A duration given to [`parse_duration`] did not parse.
    #[error("invalid duration '{text}': {reason}")]
    InvalidDuration {
        /// The text as given.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A catch-up policy did not parse.
    #[error("invalid catch-up policy '{text}': expected none, last, all or all:N with 1 <= N <= 1000")]
    InvalidCatchUp {
        /// The text as given.
        text: String,
    },
    /// An overlap policy did not parse.
    #[error("invalid overlap policy '{text}': expected skip, queue or allow")]
    InvalidOverlap {
        /// The text as given.
        text: String,
    },
}
