//! The `schedules_*` conformance cases: what every [`Schedules`] backend
//! must do.
//!
//! Each case is a public function that takes a fresh, empty store and
//! panics when the store breaks the contract documented on [`Schedules`]
//! and its types. A backend runs them all from its tests with one line,
//! which expands to one `#[test]` per case:
//!
//! ```
//! mod memory {
//!     sl_store::schedules_conformance_tests!(sl_store::MemoryStore::new());
//! }
//! ```
//!
//! The expression is evaluated once per case and must give a value whose
//! type implements [`Schedules`] (a [`Guarded`] store does when its store
//! does). [`run_all_schedules`] runs every case in one test instead.
//!
//! The cases check what the contract says, and only that. In particular
//! they never move a schedule's `last_fired` to the value it holds or
//! backwards: the contract does not say whether such a move counts as
//! having "moved", and the server only ever moves it forwards. Every time
//! is a clock value of the case's own, so no case depends on the real
//! time; `last_fired` goes through the extremes of `i64` too, so a backend
//! cannot take one of them to mean "never fired".

use std::sync::Barrier;

use super::{Guarded, T0};
use crate::{Result, ScheduleInfo, ScheduleRecord, Schedules, StoreError};

/// Runs every case in [`SCHEDULES_CASES`], each on a fresh store from
/// `make`.
pub fn run_all_schedules(make: &dyn Fn() -> Box<dyn Schedules>) {
    for (name, case) in SCHEDULES_CASES {
        let store = make();
        eprintln!("schedules conformance: {name}");
        case(&*store);
    }
}

/// Lists every schedules case once; the two macros below expand the list.
#[doc(hidden)]
#[macro_export]
macro_rules! __sl_store_schedules_conformance_cases {
    ($($mode:tt)*) => {
        $crate::__sl_store_schedules_conformance_expand! {
            ($($mode)*)
            schedules_create_then_get
            schedules_create_duplicate_already_exists
            schedules_list_sorted_by_name
            schedules_delete
            schedules_advance_from_never_then_from_the_last_value
            schedules_advance_with_a_wrong_from_changes_nothing
            schedules_advance_without_invocation_is_a_skip
            schedules_advance_of_a_missing_schedule_is_false
            schedules_advance_touches_only_its_schedule
            schedules_fields_round_trip
            schedules_concurrent_advances_from_one_value_one_wins
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __sl_store_schedules_conformance_expand {
    ((cases) $($case:ident)*) => {
        /// Every schedules case with its name, in a sensible reading order.
        pub const SCHEDULES_CASES: &[(&str, fn(&dyn $crate::Schedules))] =
            &[$((stringify!($case), $case as fn(&dyn $crate::Schedules))),*];
    };
    ((tests $make:expr) $($case:ident)*) => {
        $(
            #[test]
            fn $case() {
                let store = $make;
                $crate::conformance::schedules::$case(&store);
            }
        )*
    };
}

/// Expands to one `#[test]` per schedules conformance case, each running
/// the case on the store that `$make` (evaluated once per test) gives.
///
/// ```
/// mod sqlite_memory {
///     sl_store::schedules_conformance_tests!(sl_store::SqliteStore::open_in_memory().unwrap());
/// }
/// ```
#[macro_export]
macro_rules! schedules_conformance_tests {
    ($make:expr) => {
        $crate::__sl_store_schedules_conformance_cases!(tests $make);
    };
}

__sl_store_schedules_conformance_cases!(cases);

impl<S: Schedules, G: Send + Sync> Schedules for Guarded<S, G> {
    fn create_schedule(&self, schedule: &ScheduleRecord) -> Result<()> {
        self.store.create_schedule(schedule)
    }
    fn get_schedule(&self, name: &str) -> Result<Option<ScheduleInfo>> {
        self.store.get_schedule(name)
    }
    fn list_schedules(&self) -> Result<Vec<ScheduleInfo>> {
        self.store.list_schedules()
    }
    fn delete_schedule(&self, name: &str) -> Result<bool> {
        self.store.delete_schedule(name)
    }
    fn advance_schedule(&self, name: &str, from: Option<i64>, to: i64, invocation: Option<&str>) -> Result<bool> {
        self.store.advance_schedule(name, from, to, invocation)
    }
}

// ---------------------------------------------------------------------------
// Helpers

/// A minute, the step between the firings of most cases.
const MINUTE: i64 = 60_000;

/// A daily schedule of action `run-{name}`, created at `T0`.
fn schedule(name: &str) -> ScheduleRecord {
    ScheduleRecord {
        name: name.to_owned(),
        action: format!("run-{name}"),
        spec: "0 3 * * *".to_owned(),
        time_zone: "UTC".to_owned(),
        args: r#"{"n":1}"#.to_owned(),
        overlap: "skip".to_owned(),
        catch_up: "last".to_owned(),
        jitter_ms: 0,
        created: T0,
    }
}

/// `schedule` as a schedule that never fired shows it.
fn never_fired(schedule: ScheduleRecord) -> ScheduleInfo {
    ScheduleInfo { schedule, last_fired: None, last_invocation: None, fired: 0 }
}

/// The stored schedule `name`, which must exist.
fn info(store: &dyn Schedules, name: &str) -> ScheduleInfo {
    ok!(store.get_schedule(name)).unwrap_or_else(|| panic!("schedule {name} is missing"))
}

/// What `advance_schedule` answers, which must be no error.
fn advance(store: &dyn Schedules, name: &str, from: Option<i64>, to: i64, invocation: Option<&str>) -> bool {
    ok!(store.advance_schedule(name, from, to, invocation))
}

/// The `last_fired`, `last_invocation` and `fired` of `info`.
fn progress(info: &ScheduleInfo) -> (Option<i64>, Option<&str>, u64) {
    (info.last_fired, info.last_invocation.as_deref(), info.fired)
}

fn names(list: &[ScheduleInfo]) -> Vec<&str> {
    list.iter().map(|info| info.schedule.name.as_str()).collect()
}

// ---------------------------------------------------------------------------
// Creating, reading, listing, deleting

/// A created schedule reads back as given, never fired: no `last_fired`,
/// no `last_invocation`, `fired` 0. A missing one is `None`; names are
/// case-sensitive.
pub fn schedules_create_then_get(store: &dyn Schedules) {
    assert_eq!(ok!(store.get_schedule("nightly")), None);
    assert_eq!(ok!(store.list_schedules()), vec![]);
    ok!(store.create_schedule(&schedule("nightly")));
    let got = info(store, "nightly");
    assert_eq!(got, never_fired(schedule("nightly")));
    assert_eq!(progress(&got), (None, None, 0));
    assert_eq!(ok!(store.get_schedule("Nightly")), None, "names are case-sensitive");
    assert_eq!(ok!(store.get_schedule("nightl")), None);
    assert_eq!(ok!(store.list_schedules()), vec![got]);
}

/// Creating a schedule whose name exists fails with `AlreadyExists`
/// (holding the name) and changes nothing: neither the settings nor how
/// far it has fired.
pub fn schedules_create_duplicate_already_exists(store: &dyn Schedules) {
    ok!(store.create_schedule(&schedule("dup")));
    assert!(advance(store, "dup", None, T0 + MINUTE, Some("inv-1")));
    let before = info(store, "dup");
    let other = ScheduleRecord {
        action: "other".to_owned(),
        spec: "@every 30s".to_owned(),
        created: T0 + 5,
        ..schedule("dup")
    };
    match store.create_schedule(&other) {
        Err(StoreError::AlreadyExists(name)) => assert_eq!(name, "dup"),
        got => panic!("second create_schedule: expected AlreadyExists, got {got:?}"),
    }
    assert_eq!(info(store, "dup"), before);
    assert_eq!(ok!(store.list_schedules()), vec![before]);
}

/// `list_schedules` returns every schedule sorted by name, byte by byte,
/// each as `get_schedule` shows it.
pub fn schedules_list_sorted_by_name(store: &dyn Schedules) {
    let names_made = ["beta", "a_b", "Alpha", "alpha", "a.b", "1x", "a-b", "Zeta", "b", "a"];
    for name in names_made {
        ok!(store.create_schedule(&schedule(name)));
    }
    assert!(advance(store, "b", None, T0, Some("inv-b")));
    assert!(advance(store, "a.b", None, T0 + 1, None));
    let listed = ok!(store.list_schedules());
    let mut sorted = names_made.to_vec();
    sorted.sort_unstable();
    assert_eq!(names(&listed), sorted);
    for shown in &listed {
        assert_eq!(*shown, info(store, &shown.schedule.name));
    }
}

/// `delete_schedule` deletes one schedule and answers whether there was
/// one; a schedule made again under the name starts afresh, never fired.
pub fn schedules_delete(store: &dyn Schedules) {
    ok!(store.create_schedule(&schedule("gone")));
    ok!(store.create_schedule(&schedule("kept")));
    assert!(advance(store, "gone", None, T0 + MINUTE, Some("inv-1")));
    assert!(advance(store, "kept", None, T0 + MINUTE, Some("inv-2")));
    let kept = info(store, "kept");
    assert!(ok!(store.delete_schedule("gone")));
    assert_eq!(ok!(store.get_schedule("gone")), None);
    assert!(!ok!(store.delete_schedule("gone")), "deleted already");
    assert!(!ok!(store.delete_schedule("missing")));
    assert_eq!(ok!(store.list_schedules()), vec![kept.clone()]);
    assert!(!advance(store, "gone", Some(T0 + MINUTE), T0 + 2 * MINUTE, Some("inv-3")), "a deleted schedule");
    assert_eq!(ok!(store.get_schedule("gone")), None, "an advance does not make a schedule");

    let again = ScheduleRecord { spec: "@every 1m".to_owned(), created: T0 + 7, ..schedule("gone") };
    ok!(store.create_schedule(&again));
    assert_eq!(info(store, "gone"), never_fired(again));
    assert!(!advance(store, "gone", Some(T0 + MINUTE), T0 + 2 * MINUTE, None), "the old progress is gone");
    assert!(advance(store, "gone", None, T0 + 2 * MINUTE, None));
    assert_eq!(info(store, "kept"), kept);
}

// ---------------------------------------------------------------------------
// Advancing

/// A schedule moves from "never fired" to its first firing's time, then
/// from that value to the next: each made firing sets `last_invocation`
/// and adds one to `fired`; the settings stay.
pub fn schedules_advance_from_never_then_from_the_last_value(store: &dyn Schedules) {
    ok!(store.create_schedule(&schedule("s")));
    assert!(advance(store, "s", None, T0 + MINUTE, Some("inv-1")));
    let got = info(store, "s");
    assert_eq!(progress(&got), (Some(T0 + MINUTE), Some("inv-1"), 1));
    assert_eq!(got.schedule, schedule("s"));
    assert!(advance(store, "s", Some(T0 + MINUTE), T0 + 2 * MINUTE, Some("inv-2")));
    assert_eq!(progress(&info(store, "s")), (Some(T0 + 2 * MINUTE), Some("inv-2"), 2));
    // A catch-up: several firings at once, the last one recorded.
    assert!(advance(store, "s", Some(T0 + 2 * MINUTE), T0 + 60 * MINUTE, Some("inv-3")));
    assert!(advance(store, "s", Some(T0 + 60 * MINUTE), T0 + 61 * MINUTE, Some("inv-4")));
    let got = info(store, "s");
    assert_eq!(progress(&got), (Some(T0 + 61 * MINUTE), Some("inv-4"), 4));
    assert_eq!(got.schedule, schedule("s"));
    assert_eq!(ok!(store.list_schedules()), vec![got]);
}

/// A compare-and-set whose `from` is not the stored `last_fired` answers
/// `false` and changes nothing, whether the schedule never fired (and
/// `from` names a time) or fired (and `from` is `None`, an older or a
/// later time).
pub fn schedules_advance_with_a_wrong_from_changes_nothing(store: &dyn Schedules) {
    ok!(store.create_schedule(&schedule("s")));
    let fresh = info(store, "s");
    for from in [Some(T0), Some(0), Some(-1), Some(i64::MIN), Some(i64::MAX)] {
        assert!(!advance(store, "s", from, T0 + MINUTE, Some("inv-x")), "from {from:?} when never fired");
        assert!(!advance(store, "s", from, T0 + MINUTE, None), "from {from:?} when never fired, a skip");
        assert_eq!(info(store, "s"), fresh, "from {from:?} when never fired");
    }

    assert!(advance(store, "s", None, T0 + MINUTE, Some("inv-1")));
    let fired = info(store, "s");
    let wrong = [None, Some(T0), Some(T0 + MINUTE - 1), Some(T0 + MINUTE + 1), Some(T0 + 2 * MINUTE), Some(i64::MIN)];
    for from in wrong {
        assert!(!advance(store, "s", from, T0 + 3 * MINUTE, Some("inv-x")), "from {from:?} after {fired:?}");
        assert!(!advance(store, "s", from, T0 + 3 * MINUTE, None), "from {from:?} after {fired:?}, a skip");
        assert_eq!(info(store, "s"), fired, "from {from:?}");
    }
    assert!(advance(store, "s", Some(T0 + MINUTE), T0 + 3 * MINUTE, Some("inv-2")), "the right value still moves it");
    assert_eq!(progress(&info(store, "s")), (Some(T0 + 3 * MINUTE), Some("inv-2"), 2));
    assert!(!advance(store, "s", Some(T0 + MINUTE), T0 + 4 * MINUTE, Some("inv-3")), "the old value no longer");
    assert_eq!(progress(&info(store, "s")), (Some(T0 + 3 * MINUTE), Some("inv-2"), 2));
}

/// Without an invocation the firing was skipped: `last_fired` moves, and
/// `last_invocation` and `fired` stay (none and 0 before any firing was
/// made, the last made one's after).
pub fn schedules_advance_without_invocation_is_a_skip(store: &dyn Schedules) {
    ok!(store.create_schedule(&schedule("s")));
    assert!(advance(store, "s", None, T0 + MINUTE, None));
    assert_eq!(progress(&info(store, "s")), (Some(T0 + MINUTE), None, 0));
    assert!(advance(store, "s", Some(T0 + MINUTE), T0 + 2 * MINUTE, None));
    assert_eq!(progress(&info(store, "s")), (Some(T0 + 2 * MINUTE), None, 0));
    assert!(advance(store, "s", Some(T0 + 2 * MINUTE), T0 + 3 * MINUTE, Some("inv-1")));
    assert_eq!(progress(&info(store, "s")), (Some(T0 + 3 * MINUTE), Some("inv-1"), 1));
    assert!(advance(store, "s", Some(T0 + 3 * MINUTE), T0 + 4 * MINUTE, None));
    assert_eq!(progress(&info(store, "s")), (Some(T0 + 4 * MINUTE), Some("inv-1"), 1));
    assert!(advance(store, "s", Some(T0 + 4 * MINUTE), T0 + 5 * MINUTE, None));
    assert!(advance(store, "s", Some(T0 + 5 * MINUTE), T0 + 6 * MINUTE, Some("inv-2")));
    let got = info(store, "s");
    assert_eq!(progress(&got), (Some(T0 + 6 * MINUTE), Some("inv-2"), 2));
    assert_eq!(got.schedule, schedule("s"));
}

/// Advancing a schedule that does not exist answers `false`, whatever
/// `from`, and makes none.
pub fn schedules_advance_of_a_missing_schedule_is_false(store: &dyn Schedules) {
    for from in [None, Some(T0), Some(i64::MIN)] {
        assert!(!advance(store, "missing", from, T0 + MINUTE, Some("inv-1")), "from {from:?}");
        assert!(!advance(store, "missing", from, T0 + MINUTE, None), "from {from:?}, a skip");
    }
    assert_eq!(ok!(store.get_schedule("missing")), None);
    assert_eq!(ok!(store.list_schedules()), vec![]);
    ok!(store.create_schedule(&schedule("present")));
    assert!(!advance(store, "Present", None, T0 + MINUTE, Some("inv-1")), "names are case-sensitive");
    assert_eq!(info(store, "present"), never_fired(schedule("present")));
}

/// Each schedule keeps its own progress: advancing one leaves the others
/// as they were, even at the same values.
pub fn schedules_advance_touches_only_its_schedule(store: &dyn Schedules) {
    for name in ["a", "b", "c"] {
        ok!(store.create_schedule(&schedule(name)));
    }
    assert!(advance(store, "a", None, T0 + MINUTE, Some("inv-a1")));
    assert!(advance(store, "b", None, T0 + MINUTE, None));
    assert!(advance(store, "a", Some(T0 + MINUTE), T0 + 2 * MINUTE, Some("inv-a2")));
    assert_eq!(progress(&info(store, "a")), (Some(T0 + 2 * MINUTE), Some("inv-a2"), 2));
    assert_eq!(progress(&info(store, "b")), (Some(T0 + MINUTE), None, 0));
    assert_eq!(info(store, "c"), never_fired(schedule("c")));
    assert!(advance(store, "b", Some(T0 + MINUTE), T0 + 2 * MINUTE, Some("inv-b1")));
    assert!(advance(store, "c", None, T0 + 2 * MINUTE, Some("inv-c1")));
    let listed = ok!(store.list_schedules());
    let shown: Vec<_> = listed.iter().map(progress).collect();
    assert_eq!(
        shown,
        [
            (Some(T0 + 2 * MINUTE), Some("inv-a2"), 2),
            (Some(T0 + 2 * MINUTE), Some("inv-b1"), 1),
            (Some(T0 + 2 * MINUTE), Some("inv-c1"), 1)
        ]
    );
    assert!(ok!(store.delete_schedule("b")));
    assert_eq!(progress(&info(store, "a")), (Some(T0 + 2 * MINUTE), Some("inv-a2"), 2));
    assert_eq!(progress(&info(store, "c")), (Some(T0 + 2 * MINUTE), Some("inv-c1"), 1));
}

// ---------------------------------------------------------------------------
// Values

/// Every field reads back exactly as written: the settings' text byte for
/// byte (arguments as the JSON text given, spacing and escapes included,
/// non-ASCII text, empty strings), the integers at their extremes
/// (`jitter_ms` as a `u64`, `created` and `last_fired` as `i64`s), and the
/// invocation id.
pub fn schedules_fields_round_trip(store: &dyn Schedules) {
    let args = concat!(
        "{ \"greeting\" : \"héllo wörld ✓ 日本語 🎉\",\n\t\"nested\": {\"a\": [1, 2.50, -0, 1e3, null, true]},",
        " \"escaped\": \"\\\"q\\\" \\\\ \\u00e9 \\ud83c\\udf89 \\n\",  \"émoji-κλειδί\": \"\" }"
    );
    let records = [
        ScheduleRecord {
            name: "Report.daily-v2_ü".to_owned(),
            action: "reports.build-ñ".to_owned(),
            spec: "*/15 9-17 * * MON-FRI".to_owned(),
            time_zone: "America/Argentina/Buenos_Aires".to_owned(),
            args: args.to_owned(),
            overlap: "queue".to_owned(),
            catch_up: "all:25".to_owned(),
            jitter_ms: u64::MAX,
            created: i64::MIN,
        },
        ScheduleRecord {
            name: "b".to_owned(),
            action: "b".to_owned(),
            spec: "@every 30s".to_owned(),
            time_zone: "Europe/London".to_owned(),
            args: "{}".to_owned(),
            overlap: "allow".to_owned(),
            catch_up: "none".to_owned(),
            jitter_ms: i64::MAX as u64 + 1,
            created: i64::MAX,
        },
        ScheduleRecord {
            name: "c".to_owned(),
            action: String::new(),
            spec: "@daily".to_owned(),
            time_zone: String::new(),
            args: "{\"big\":18446744073709551615,\"neg\":-9223372036854775808}".to_owned(),
            overlap: "skip".to_owned(),
            catch_up: "last".to_owned(),
            jitter_ms: 1,
            created: -1,
        },
        ScheduleRecord {
            name: "d".to_owned(),
            jitter_ms: i64::MAX as u64,
            created: 0,
            args: format!("{{\"long\":\"{}\"}}", "x".repeat(70_000)),
            ..schedule("d")
        },
    ];
    for record in &records {
        ok!(store.create_schedule(record));
    }
    for record in &records {
        assert_eq!(info(store, &record.name), never_fired(record.clone()), "{}", record.name);
    }
    assert_eq!(info(store, &records[0].name).schedule.args.as_bytes(), args.as_bytes());

    // `last_fired` from one extreme of `i64` to the other.
    let name = records[0].name.as_str();
    let invocation = "inv-0193-ü-7f";
    assert!(advance(store, name, None, i64::MIN, Some(invocation)));
    assert_eq!(progress(&info(store, name)), (Some(i64::MIN), Some(invocation), 1));
    assert!(!advance(store, name, None, T0, None), "i64::MIN is a time, not \"never fired\"");
    assert!(advance(store, name, Some(i64::MIN), -1, Some("")));
    assert_eq!(progress(&info(store, name)), (Some(-1), Some(""), 2));
    assert!(advance(store, name, Some(-1), 0, None));
    assert_eq!(progress(&info(store, name)), (Some(0), Some(""), 2));
    assert!(advance(store, name, Some(0), i64::MAX, Some("i2")));
    assert_eq!(progress(&info(store, name)), (Some(i64::MAX), Some("i2"), 3));
    assert!(advance(store, "b", None, 0, None));
    assert_eq!(progress(&info(store, "b")), (Some(0), None, 0));
    assert!(advance(store, "b", Some(0), 1, Some("i1")));

    let listed = ok!(store.list_schedules());
    assert_eq!(
        listed.iter().map(|info| &info.schedule).collect::<Vec<_>>(),
        [&records[0], &records[1], &records[2], &records[3]]
    );
    assert_eq!(
        listed.iter().map(progress).collect::<Vec<_>>(),
        [(Some(i64::MAX), Some("i2"), 3), (Some(1), Some("i1"), 1), (None, None, 0), (None, None, 0)]
    );
}

// ---------------------------------------------------------------------------
// Concurrency

/// Threads each trying, at once, to move the same schedule from the same
/// value: exactly one succeeds, round after round, and the stored
/// progress is the winner's.
pub fn schedules_concurrent_advances_from_one_value_one_wins(store: &dyn Schedules) {
    const THREADS: usize = 8;
    const ROUNDS: i64 = 10;
    ok!(store.create_schedule(&schedule("race")));
    let mut last = None;
    let mut made = 0;
    for round in 0..ROUNDS {
        let to = T0 + (round + 1) * MINUTE;
        // Every other round is skips: each thread skips the same firing.
        let skips = round % 2 == 1;
        let start = Barrier::new(THREADS);
        let won: Vec<bool> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..THREADS)
                .map(|t| {
                    let start = &start;
                    scope.spawn(move || {
                        let invocation = format!("inv-{round}-{t}");
                        start.wait();
                        advance(store, "race", last, to, (!skips).then_some(invocation.as_str()))
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().expect("advancing thread")).collect()
        });
        let winners: Vec<usize> = (0..THREADS).filter(|&t| won[t]).collect();
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let got = info(store, "race");
        assert_eq!(got.last_fired, Some(to), "round {round}");
        if !skips {
            made += 1;
            assert_eq!(got.last_invocation, Some(format!("inv-{round}-{}", winners[0])), "round {round}");
        }
        assert_eq!(got.fired, made, "round {round}");
        last = Some(to);
    }
    assert_eq!(info(store, "race").schedule, schedule("race"));
}
