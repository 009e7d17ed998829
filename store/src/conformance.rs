//! The conformance suite: what every [`Store`] backend must do, (in
//! [`events`]) what every [`Events`](crate::Events) backend must do, and
//! (in [`schedules`]) what every [`Schedules`](crate::Schedules) backend
//! must do.
//!
//! Each case is a public function that takes a fresh, empty store and panics
//! when the store breaks the contract documented on [`Store`]. A backend
//! runs the whole suite from its tests with one line, which expands to one
//! `#[test]` per case so that a failure names its case:
//!
//! ```
//! mod memory {
//!     sl_store::conformance_tests!(sl_store::MemoryStore::new());
//! }
//! ```
//!
//! The expression is evaluated once per case and must give a value whose
//! type implements [`Store`]. When the store needs something to outlive it
//! (a temporary directory, a test database dropped at the end), bundle the
//! two in a [`Guarded`]. [`run_all`] runs every case in one test instead.
//!
//! Cases use their own clock values, so they never depend on the real time.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::{
    ActionMeta, ActionRecord, Enqueued, IdempotencyKey, InvocationError, InvocationRecord, InvocationStatus, Limits,
    Purged, Result, RouteRecord, RunCounts, RunKind, Store, StoreError, Submit,
};

/// Runs every case in [`CASES`], each on a fresh store from `make`.
pub fn run_all(make: &dyn Fn() -> Box<dyn Store>) {
    for (name, case) in CASES {
        let store = make();
        eprintln!("conformance ({}): {name}", store.kind());
        case(&*store);
    }
}

/// Lists every case once; the two macros below expand the list.
#[doc(hidden)]
#[macro_export]
macro_rules! __sl_store_conformance_cases {
    ($($mode:tt)*) => {
        $crate::__sl_store_conformance_expand! {
            ($($mode)*)
            actions_create_then_get
            actions_get_missing_is_none
            actions_list_sorted_by_name
            actions_create_duplicate_already_exists
            actions_update_bumps_version
            actions_update_wrong_version_conflicts
            actions_update_missing_not_found
            actions_delete
            actions_bytes_round_trip
            actions_source_bytes_round_trip
            routes_create_then_list
            routes_create_duplicate_already_exists
            routes_same_path_other_host_or_method_is_not_a_duplicate
            routes_list_sorted_by_host_path_method
            routes_delete
            invocations_put_then_get
            invocations_get_missing_is_none
            invocations_put_upsert_keeps_one_record_and_its_place
            invocations_put_batch
            invocations_list_newest_first
            invocations_list_filter_and_limit
            invocations_caller_round_trips
            claim_in_enqueue_order
            claim_marks_running
            claim_is_exclusive
            claim_expired_lease_again
            claim_respects_limit
            claim_never_takes_terminal_or_leased
            release_running_makes_claimable
            count_queued_counts_queued_only
            oldest_queued_is_the_next_claimed
            purge_terminal_before_cutoff
            invocation_bytes_add_up_stored_sizes
            purge_oldest_takes_the_oldest_finished_first
            json_round_trip
            concurrent_claims_take_each_once
            concurrent_purges_delete_each_once
            enqueue_writes_queued_records
            enqueue_writes_running_and_finished_records
            enqueue_a_long_mixed_batch_keeps_its_order
            enqueue_a_held_key_names_its_holder
            enqueue_retried_is_new_again
            enqueue_key_is_freed_with_its_record
            concurrent_enqueues_of_one_key_write_one_record
            run_counts_add_up
            concurrent_run_counts_lose_nothing
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __sl_store_conformance_expand {
    ((cases) $($case:ident)*) => {
        /// Every case with its name, in a sensible reading order.
        pub const CASES: &[(&str, fn(&dyn $crate::Store))] =
            &[$((stringify!($case), $case as fn(&dyn $crate::Store))),*];
    };
    ((tests $make:expr) $($case:ident)*) => {
        $(
            #[test]
            fn $case() {
                let store = $make;
                $crate::conformance::$case(&store);
            }
        )*
    };
}

/// Expands to one `#[test]` per conformance case, each running the case on
/// the store that `$make` (evaluated once per test) gives.
///
/// ```
/// mod sqlite_memory {
///     sl_store::conformance_tests!(sl_store::SqliteStore::open_in_memory().unwrap());
/// }
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::__sl_store_conformance_cases!(tests $make);
    };
}

__sl_store_conformance_cases!(cases);

/// A store together with something that must live as long as it, such as
/// the temporary directory of a database file or a handle that drops a test
/// database. The store is dropped first.
pub struct Guarded<S, G> {
    pub store: S,
    pub guard: G,
}

impl<S: Store, G: Send + Sync> Store for Guarded<S, G> {
    fn kind(&self) -> &'static str {
        self.store.kind()
    }
    fn create_action(&self, action: &ActionRecord) -> Result<()> {
        self.store.create_action(action)
    }
    fn update_action(&self, action: &ActionRecord, expected_version: i64) -> Result<()> {
        self.store.update_action(action, expected_version)
    }
    fn get_action(&self, name: &str) -> Result<Option<ActionRecord>> {
        self.store.get_action(name)
    }
    fn list_actions(&self) -> Result<Vec<ActionMeta>> {
        self.store.list_actions()
    }
    fn delete_action(&self, name: &str) -> Result<bool> {
        self.store.delete_action(name)
    }
    fn create_route(&self, route: &RouteRecord) -> Result<()> {
        self.store.create_route(route)
    }
    fn delete_route(&self, method: &str, host: &str, path: &str) -> Result<bool> {
        self.store.delete_route(method, host, path)
    }
    fn list_routes(&self) -> Result<Vec<RouteRecord>> {
        self.store.list_routes()
    }
    fn put_invocations(&self, records: &[InvocationRecord]) -> Result<()> {
        self.store.put_invocations(records)
    }
    fn enqueue_invocations(&self, submits: &[Submit]) -> Result<Vec<Enqueued>> {
        self.store.enqueue_invocations(submits)
    }
    fn get_invocation(&self, id: &str) -> Result<Option<InvocationRecord>> {
        self.store.get_invocation(id)
    }
    fn list_invocations(&self, action: Option<&str>, limit: usize) -> Result<Vec<InvocationRecord>> {
        self.store.list_invocations(action, limit)
    }
    fn claim_invocations(
        &self,
        owner: &str,
        limit: usize,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Vec<InvocationRecord>> {
        self.store.claim_invocations(owner, limit, now_ms, lease_ms)
    }
    fn release_running(&self) -> Result<u64> {
        self.store.release_running()
    }
    fn count_queued(&self) -> Result<u64> {
        self.store.count_queued()
    }
    fn oldest_queued(&self) -> Result<Option<i64>> {
        self.store.oldest_queued()
    }
    fn purge_invocations(&self, before_ms: i64) -> Result<u64> {
        self.store.purge_invocations(before_ms)
    }
    fn invocation_bytes(&self) -> Result<u64> {
        self.store.invocation_bytes()
    }
    fn purge_oldest_invocations(&self, bytes: u64, max_records: usize) -> Result<Purged> {
        self.store.purge_oldest_invocations(bytes, max_records)
    }
    fn add_run_counts(&self, counts: &[RunCounts]) -> Result<()> {
        self.store.add_run_counts(counts)
    }
    fn run_counts(&self, action: &str) -> Result<RunCounts> {
        self.store.run_counts(action)
    }

    fn events(&self) -> &dyn crate::Events {
        self.store.events()
    }

    fn schedules(&self) -> &dyn crate::Schedules {
        self.store.schedules()
    }
}

// ---------------------------------------------------------------------------
// Helpers

/// Unwraps a store call, naming the call when it failed.
macro_rules! ok {
    ($call:expr) => {
        match $call {
            Ok(value) => value,
            Err(err) => panic!("{} failed: {err}", stringify!($call)),
        }
    };
}

/// A clock value well inside the range of real Unix milliseconds.
const T0: i64 = 1_700_000_000_000;

/// A lease long enough never to expire within a case.
const HOUR: i64 = 3_600_000;

// The events and schedules cases, after the helpers they share (`ok!` is
// in scope there because the modules are declared below its definition).
pub mod events;
pub use events::{run_all_events, EVENTS_CASES};
pub mod schedules;
pub use schedules::{run_all_schedules, SCHEDULES_CASES};

fn action(name: &str) -> ActionRecord {
    ActionRecord {
        name: name.to_owned(),
        version: 1,
        source: format!("return '{name}'").into_bytes(),
        bytecode: format!("\x1bLua\x54\x00 bytecode of {name}").into_bytes(),
        checksum: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_owned(),
        limits: Limits { maxmem: 1024, timeout: 2_500, instructions: 10_000_000_000 },
        created: T0,
        updated: T0,
    }
}

/// `prev` as the next version would store it.
fn next_version(prev: &ActionRecord, source: &str) -> ActionRecord {
    ActionRecord {
        version: prev.version + 1,
        source: source.as_bytes().to_vec(),
        bytecode: format!("\x1bLua\x54\x00 {source}").into_bytes(),
        checksum: format!("{:064x}", prev.version + 1),
        limits: Limits { maxmem: prev.limits.maxmem * 2, timeout: 0, instructions: 7 },
        updated: prev.updated + 1_000,
        ..prev.clone()
    }
}

fn route(method: &str, host: &str, path: &str) -> RouteRecord {
    RouteRecord {
        method: method.to_owned(),
        host: host.to_owned(),
        path: path.to_owned(),
        action: format!("run-{}", path.trim_start_matches('/')),
        created: T0,
    }
}

/// The (method, host, path) of each route.
fn route_keys(routes: &[RouteRecord]) -> Vec<(&str, &str, &str)> {
    routes.iter().map(|r| (r.method.as_str(), r.host.as_str(), r.path.as_str())).collect()
}

fn queued(id: &str, action: &str, created: i64) -> InvocationRecord {
    InvocationRecord::queued(id.to_owned(), action.to_owned(), json!({ "id": id }), true, created)
}

/// A record that ran to `status` and finished at `finished`.
fn finished(id: &str, status: InvocationStatus, finished: i64) -> InvocationRecord {
    let mut rec = queued(id, "done", finished - 100);
    rec.version = 1;
    rec.status = status;
    match status {
        InvocationStatus::Succeeded => rec.result = Some(json!({ "ok": true })),
        _ => rec.error = Some(InvocationError { kind: "runtime".into(), message: "boom".into() }),
    }
    rec.started = Some(finished - 10);
    rec.finished = Some(finished);
    rec.duration_ms = Some(10);
    rec.instructions = Some(1_234);
    rec.peak_memory = Some(4_096);
    rec.attempts = 1;
    rec.owner = Some("old-owner".into());
    rec.lease_until = Some(finished - 5);
    rec
}

/// `rec` as a claim by `owner` at `now` with `lease` stores it.
fn claimed(rec: &InvocationRecord, owner: &str, now: i64, lease: i64) -> InvocationRecord {
    InvocationRecord {
        status: InvocationStatus::Running,
        owner: Some(owner.to_owned()),
        started: Some(now),
        lease_until: Some(now + lease),
        attempts: rec.attempts + 1,
        ..rec.clone()
    }
}

fn ids(records: &[InvocationRecord]) -> Vec<&str> {
    records.iter().map(|rec| rec.id.as_str()).collect()
}

fn put(store: &dyn Store, records: &[InvocationRecord]) {
    ok!(store.put_invocations(records));
}

/// Enqueues each record with its own call, in order.
fn put_each(store: &dyn Store, records: &[InvocationRecord]) {
    for rec in records {
        put(store, std::slice::from_ref(rec));
    }
}

// ---------------------------------------------------------------------------
// Actions

/// `create_action` stores the action; `get_action` returns it unchanged.
pub fn actions_create_then_get(store: &dyn Store) {
    assert!(!store.kind().is_empty(), "kind() names the backend");
    let a = action("hello");
    ok!(store.create_action(&a));
    assert_eq!(ok!(store.get_action("hello")), Some(a.clone()));
    assert_eq!(ok!(store.list_actions()), vec![a.meta()]);
}

/// `get_action` of an unknown name is `None`, also on an empty store.
pub fn actions_get_missing_is_none(store: &dyn Store) {
    assert_eq!(ok!(store.get_action("nope")), None);
    ok!(store.create_action(&action("yes")));
    assert_eq!(ok!(store.get_action("nope")), None);
    assert_eq!(ok!(store.get_action("Yes")), None, "names are case-sensitive");
}

/// `list_actions` returns the metadata of every action sorted by name
/// (byte order: uppercase before lowercase, punctuation by its code).
pub fn actions_list_sorted_by_name(store: &dyn Store) {
    assert_eq!(ok!(store.list_actions()), vec![]);
    let names = ["beta", "a_b", "Alpha", "alpha", "a.b", "1x", "a-b", "Zeta", "b"];
    let mut records = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut rec = action(name);
        rec.bytecode = vec![i as u8; i * 10];
        rec.created = T0 + i as i64;
        rec.updated = T0 + 100 + i as i64;
        ok!(store.create_action(&rec));
        records.push(rec);
    }
    records.sort_by(|a, b| a.name.cmp(&b.name));
    let expected: Vec<ActionMeta> = records.iter().map(ActionRecord::meta).collect();
    let listed = ok!(store.list_actions());
    let listed_names: Vec<&str> = listed.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(listed_names, ["1x", "Alpha", "Zeta", "a-b", "a.b", "a_b", "alpha", "b", "beta"]);
    assert_eq!(listed, expected, "metadata (size is the bytecode length)");
}

/// Creating an action whose name exists fails with `AlreadyExists` and
/// leaves the stored one alone.
pub fn actions_create_duplicate_already_exists(store: &dyn Store) {
    let first = action("dup");
    ok!(store.create_action(&first));
    let second = ActionRecord { source: "return 2".into(), created: T0 + 5, ..action("dup") };
    match store.create_action(&second) {
        Err(StoreError::AlreadyExists(name)) => assert_eq!(name, "dup"),
        other => panic!("second create_action: expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(ok!(store.get_action("dup")), Some(first));
    assert_eq!(ok!(store.list_actions()).len(), 1);
}

/// `update_action` with the stored version replaces the action, whose
/// version is one more each time.
pub fn actions_update_bumps_version(store: &dyn Store) {
    let v1 = action("up");
    ok!(store.create_action(&v1));
    let v2 = next_version(&v1, "return 'two'");
    ok!(store.update_action(&v2, 1));
    assert_eq!(ok!(store.get_action("up")), Some(v2.clone()));
    assert_eq!(ok!(store.list_actions()), vec![v2.meta()]);
    let v3 = next_version(&v2, "return 'three, longer than before'");
    ok!(store.update_action(&v3, 2));
    let stored = ok!(store.get_action("up")).expect("updated action");
    assert_eq!(stored.version, 3);
    assert_eq!(stored, v3);
}

/// `update_action` with a stale version fails with `Conflict` (naming the
/// expected and found versions) and changes nothing.
pub fn actions_update_wrong_version_conflicts(store: &dyn Store) {
    let v1 = action("race");
    ok!(store.create_action(&v1));
    let v2 = next_version(&v1, "return 'winner'");
    ok!(store.update_action(&v2, 1));
    let loser = next_version(&v1, "return 'loser'");
    match store.update_action(&loser, 1) {
        Err(StoreError::Conflict { name, expected, found }) => {
            assert_eq!((name.as_str(), expected, found), ("race", 1, 2));
        }
        other => panic!("stale update_action: expected Conflict, got {other:?}"),
    }
    match store.update_action(&ActionRecord { version: 6, ..loser }, 5) {
        Err(StoreError::Conflict { expected: 5, found: 2, .. }) => {}
        other => panic!("update_action from the future: expected Conflict, got {other:?}"),
    }
    assert_eq!(ok!(store.get_action("race")), Some(v2));
}

/// `update_action` of an action that does not exist fails with `NotFound`
/// and does not create it.
pub fn actions_update_missing_not_found(store: &dyn Store) {
    let ghost = next_version(&action("ghost"), "return 'boo'");
    match store.update_action(&ghost, 1) {
        Err(StoreError::NotFound(name)) => assert_eq!(name, "ghost"),
        other => panic!("update_action of a missing action: expected NotFound, got {other:?}"),
    }
    assert_eq!(ok!(store.get_action("ghost")), None);
    assert_eq!(ok!(store.list_actions()), vec![]);
}

/// `delete_action` returns `true` when it deleted and `false` when there was
/// nothing to delete; the name can then be created again.
pub fn actions_delete(store: &dyn Store) {
    assert!(!ok!(store.delete_action("never")), "delete on an empty store");
    let a = action("a");
    let b = action("b");
    ok!(store.create_action(&a));
    ok!(store.create_action(&b));
    assert!(ok!(store.delete_action("a")));
    assert_eq!(ok!(store.get_action("a")), None);
    assert_eq!(ok!(store.list_actions()), vec![b.meta()]);
    assert!(!ok!(store.delete_action("a")), "second delete");
    assert!(!ok!(store.delete_action("never")));
    let again = ActionRecord { source: "return 'again'".into(), ..action("a") };
    ok!(store.create_action(&again));
    assert_eq!(ok!(store.get_action("a")), Some(again));
}

/// Source, bytecode bytes and checksum come back exactly as stored:
/// every byte value, invalid UTF-8, NUL, empty values, unicode, and a large
/// chunk.
pub fn actions_bytes_round_trip(store: &dyn Store) {
    let mut every_byte: Vec<u8> = (0..=255).collect();
    every_byte.extend_from_slice(b"\x1bLua\x54\x00\x19\x93\r\n\x1a\n\xff\xfe\xc0\x80\x00");
    let mut state: u32 = 12_345;
    let large: Vec<u8> = (0..256 * 1024)
        .map(|_| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (state >> 16) as u8
        })
        .collect();
    let records = [
        ActionRecord { source: Vec::new(), bytecode: Vec::new(), checksum: String::new(), ..action("empty") },
        ActionRecord {
            source: "\u{feff}-- ünïcødé ✓ 日本語 𝄞 \u{0} \r\n\treturn \"é\"\n".into(),
            bytecode: every_byte,
            checksum: "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855".into(),
            ..action("bytes")
        },
        ActionRecord { source: b"x".repeat(100_000), bytecode: large, ..action("large") },
    ];
    for rec in &records {
        ok!(store.create_action(rec));
    }
    for rec in &records {
        let stored = ok!(store.get_action(&rec.name)).expect("stored action");
        assert_eq!(stored.bytecode, rec.bytecode, "{}: bytecode", rec.name);
        assert_eq!(stored.source, rec.source, "{}: source", rec.name);
        assert_eq!(stored, *rec, "{}", rec.name);
    }
    let sizes: Vec<(String, u64)> = ok!(store.list_actions()).into_iter().map(|m| (m.name, m.size)).collect();
    assert_eq!(sizes, [("bytes".into(), 273), ("empty".into(), 0), ("large".into(), 256 * 1024)]);
}

/// A source that is not UTF-8 (Lua string literals and comments may hold
/// any bytes) comes back byte for byte, from `create_action` and from
/// `update_action`, and replaces a UTF-8 source exactly.
pub fn actions_source_bytes_round_trip(store: &dyn Store) {
    let latin1 = ActionRecord { source: b"return '\xff\xfe' -- caf\xe9\n".to_vec(), ..action("latin1") };
    ok!(store.create_action(&latin1));
    let stored = ok!(store.get_action("latin1")).expect("stored action");
    assert_eq!(stored.source, latin1.source, "source");
    assert_eq!(stored, latin1);

    // Every byte value, and lone UTF-8 lead, continuation and surrogate bytes.
    let mut every_byte: Vec<u8> = b"return [[".to_vec();
    every_byte.extend(0..=255u8);
    every_byte.extend_from_slice(b"\xc3\x28\xa0\xa1\xe2\x28\xa1\xed\xa0\x80\xf8\x88\x80\x80\x80]]\x00");
    let next = ActionRecord { source: every_byte, ..next_version(&stored, "") };
    ok!(store.update_action(&next, stored.version));
    assert_eq!(ok!(store.get_action("latin1")), Some(next.clone()));

    let utf8 = ActionRecord { source: "return 'café'".into(), ..next_version(&next, "") };
    ok!(store.update_action(&utf8, next.version));
    assert_eq!(ok!(store.get_action("latin1")).expect("stored action").source, "return 'café'".as_bytes());
}

// ---------------------------------------------------------------------------
// Routes

/// `create_route` stores the route; `list_routes` returns it unchanged.
pub fn routes_create_then_list(store: &dyn Store) {
    assert_eq!(ok!(store.list_routes()), vec![]);
    let r = RouteRecord { action: "users".into(), created: T0 + 7, ..route("GET", "example.com", "/users/:id") };
    ok!(store.create_route(&r));
    assert_eq!(ok!(store.list_routes()), vec![r.clone()]);
    let any = RouteRecord { action: "files".into(), ..route("*", "", "/static/*rest") };
    ok!(store.create_route(&any));
    assert_eq!(ok!(store.list_routes()), vec![any, r], "the route for any host sorts first");
}

/// Creating a route whose exact (method, host, path) exists fails with
/// `AlreadyExists` holding its label, and leaves the stored one alone.
pub fn routes_create_duplicate_already_exists(store: &dyn Store) {
    let first = route("POST", "api.example.com", "/orders");
    ok!(store.create_route(&first));
    let second = RouteRecord { action: "other".into(), created: T0 + 5, ..first.clone() };
    match store.create_route(&second) {
        Err(StoreError::AlreadyExists(label)) => assert_eq!(label, "POST api.example.com/orders"),
        other => panic!("second create_route: expected AlreadyExists, got {other:?}"),
    }
    let any_host = route("*", "", "/x");
    ok!(store.create_route(&any_host));
    match store.create_route(&any_host) {
        Err(StoreError::AlreadyExists(label)) => assert_eq!(label, any_host.label()),
        other => panic!("duplicate route for any host: expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(ok!(store.list_routes()), vec![any_host, first]);
}

/// The key is the exact triple: the same path with another host, another
/// method, or a path that differs only in case or a trailing slash is
/// another route. The store does not judge overlapping patterns.
pub fn routes_same_path_other_host_or_method_is_not_a_duplicate(store: &dyn Store) {
    let routes = [
        route("GET", "", "/users/:id"),
        route("GET", "example.com", "/users/:id"),
        route("GET", "api.example.com", "/users/:id"),
        route("POST", "", "/users/:id"),
        route("*", "", "/users/:id"),
        route("GET", "", "/users/:name"),
        route("GET", "", "/Users/:id"),
        route("GET", "", "/users/:id/"),
    ];
    for r in &routes {
        ok!(store.create_route(r));
    }
    let listed = ok!(store.list_routes());
    assert_eq!(listed.len(), routes.len(), "{:?}", route_keys(&listed));
    for r in &routes {
        assert!(listed.contains(r), "{:?} is listed", route_keys(std::slice::from_ref(r)));
    }
}

/// `list_routes` sorts by host, then path, then method, each by bytes
/// (`""` first, uppercase before lowercase, `*` before letters).
pub fn routes_list_sorted_by_host_path_method(store: &dyn Store) {
    let keys = [
        ("GET", "example.com", "/b"),
        ("POST", "", "/a"),
        ("GET", "", "/a"),
        ("*", "", "/a"),
        ("DELETE", "example.com", "/a"),
        ("GET", "api.example.com", "/z"),
        ("GET", "", "/B"),
        ("GET", "", "/"),
        ("PUT", "example.com", "/a"),
        ("GET", "", "/a/:id"),
        ("GET", "", "/static/*rest"),
        ("GET", "example.org", "/"),
    ];
    for (i, (method, host, path)) in keys.iter().enumerate() {
        ok!(store.create_route(&RouteRecord { created: T0 + i as i64, ..route(method, host, path) }));
    }
    let listed = ok!(store.list_routes());
    assert_eq!(
        route_keys(&listed),
        [
            ("GET", "", "/"),
            ("GET", "", "/B"),
            ("*", "", "/a"),
            ("GET", "", "/a"),
            ("POST", "", "/a"),
            ("GET", "", "/a/:id"),
            ("GET", "", "/static/*rest"),
            ("GET", "api.example.com", "/z"),
            ("DELETE", "example.com", "/a"),
            ("PUT", "example.com", "/a"),
            ("GET", "example.com", "/b"),
            ("GET", "example.org", "/"),
        ]
    );
    let created: Vec<i64> = listed.iter().map(|r| r.created - T0).collect();
    assert_eq!(created, [7, 6, 3, 2, 1, 9, 10, 5, 4, 8, 0, 11], "each record is complete");
}

/// `delete_route` deletes only the route with the exact (method, host,
/// path) and returns `true`; `false` when there was none. The key can then
/// be created again.
pub fn routes_delete(store: &dyn Store) {
    assert!(!ok!(store.delete_route("GET", "", "/never")), "delete on an empty store");
    let a = route("GET", "example.com", "/a");
    let any_host = route("GET", "", "/a");
    let any_method = route("*", "example.com", "/a");
    for r in [&a, &any_host, &any_method] {
        ok!(store.create_route(r));
    }
    assert!(!ok!(store.delete_route("POST", "example.com", "/a")), "another method");
    assert!(!ok!(store.delete_route("GET", "example.org", "/a")), "another host");
    assert!(!ok!(store.delete_route("GET", "example.com", "/a/")), "another path");
    assert!(!ok!(store.delete_route("get", "example.com", "/a")), "methods are compared exactly");
    assert_eq!(ok!(store.list_routes()).len(), 3);

    assert!(ok!(store.delete_route("GET", "example.com", "/a")));
    assert_eq!(ok!(store.list_routes()), vec![any_host.clone(), any_method.clone()]);
    assert!(!ok!(store.delete_route("GET", "example.com", "/a")), "second delete");
    assert!(ok!(store.delete_route("GET", "", "/a")));
    assert_eq!(ok!(store.list_routes()), vec![any_method]);
    let again = RouteRecord { action: "again".into(), created: T0 + 1, ..a };
    ok!(store.create_route(&again));
    assert_eq!(ok!(store.list_routes()).len(), 2);
    assert!(ok!(store.list_routes()).contains(&again));
}

// ---------------------------------------------------------------------------
// Invocation records

/// `put_invocations` stores every field; `get_invocation` returns them.
pub fn invocations_put_then_get(store: &dyn Store) {
    let failed = InvocationRecord {
        id: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into(),
        action: "worker".into(),
        version: 3,
        status: InvocationStatus::Failed,
        is_async: false,
        args: json!({ "n": 1 }).into(),
        result: None,
        error: Some(InvocationError { kind: "timeout".into(), message: "ran for 2500 ms ✗".into() }),
        logs: "line one\nline two ✓\n\ttabbed\n".into(),
        created: T0,
        started: Some(T0 + 1),
        finished: Some(T0 + 2_501),
        duration_ms: Some(2_500),
        instructions: Some(123_456_789_012),
        peak_memory: Some(1 << 33),
        attempts: 2,
        owner: Some("server-a:4242".into()),
        lease_until: Some(T0 + 60_000),
        caller: Some("0190a1b2-c3d4-7e5f-8a9b-000000000001".into()),
    };
    let succeeded = InvocationRecord {
        id: "ok-1".into(),
        status: InvocationStatus::Succeeded,
        is_async: true,
        result: Some(json!({ "answer": 42 })),
        error: None,
        logs: String::new(),
        owner: None,
        lease_until: None,
        caller: None,
        ..failed.clone()
    };
    put(store, std::slice::from_ref(&failed));
    put(store, std::slice::from_ref(&succeeded));
    assert_eq!(ok!(store.get_invocation(&failed.id)), Some(failed));
    assert_eq!(ok!(store.get_invocation("ok-1")), Some(succeeded));
}

/// `get_invocation` of an unknown id is `None`.
pub fn invocations_get_missing_is_none(store: &dyn Store) {
    assert_eq!(ok!(store.get_invocation("nope")), None);
    put(store, &[queued("yes", "a", T0)]);
    assert_eq!(ok!(store.get_invocation("nope")), None);
    assert_eq!(ok!(store.get_invocation("YES")), None, "ids are case-sensitive");
}

/// Putting a record whose id exists replaces it: one record remains, with
/// the new contents, and it keeps its place in the queue.
pub fn invocations_put_upsert_keeps_one_record_and_its_place(store: &dyn Store) {
    put_each(store, &[queued("a", "act", T0), queued("b", "act", T0), queued("c", "act", T0)]);
    let replaced = InvocationRecord {
        version: 7,
        args: json!({ "replaced": true }).into(),
        logs: "again".into(),
        created: T0 + 50,
        ..queued("a", "act", T0)
    };
    put(store, std::slice::from_ref(&replaced));
    assert_eq!(ok!(store.get_invocation("a")), Some(replaced.clone()));
    let listed = ok!(store.list_invocations(None, 100));
    assert_eq!(listed.len(), 3, "one record per id: {:?}", ids(&listed));
    assert_eq!(listed.iter().filter(|rec| rec.id == "a").collect::<Vec<_>>(), vec![&replaced]);
    assert_eq!(ok!(store.count_queued()), 3);
    let got = ok!(store.claim_invocations("w", 10, T0 + 100, HOUR));
    assert_eq!(ids(&got), ["a", "b", "c"], "a keeps its place although it was put last");

    // The terminal state of a claimed record replaces the running one.
    let mut done = got[1].clone();
    done.status = InvocationStatus::Succeeded;
    done.result = Some(json!(1));
    done.finished = Some(T0 + 200);
    done.lease_until = None;
    put(store, &[done.clone()]);
    assert_eq!(ok!(store.get_invocation("b")), Some(done));
    assert_eq!(ok!(store.list_invocations(None, 100)).len(), 3);
    // So does one that changes what a run never changes.
    let other = InvocationRecord {
        args: json!({ "other": 1 }).into(),
        created: T0 + 60,
        caller: Some("x".into()),
        status: InvocationStatus::Failed,
        ..got[2].clone()
    };
    put(store, std::slice::from_ref(&other));
    assert_eq!(ok!(store.get_invocation("c")), Some(other));
    assert_eq!(ok!(store.count_queued()), 0);
}

/// One `put_invocations` call stores every record of the batch, in slice
/// order as far as the queue is concerned; an empty batch is a no-op.
pub fn invocations_put_batch(store: &dyn Store) {
    ok!(store.put_invocations(&[]));
    assert_eq!(ok!(store.count_queued()), 0);
    let batch = [queued("x", "act", T0), queued("y", "act", T0), queued("z", "other", T0)];
    put(store, &batch);
    for rec in &batch {
        assert_eq!(ok!(store.get_invocation(&rec.id)).as_ref(), Some(rec));
    }
    assert_eq!(ok!(store.count_queued()), 3);
    let mut mixed = finished("x", InvocationStatus::Succeeded, T0 + 10);
    mixed.action = "act".into();
    put(store, &[mixed.clone(), queued("w", "act", T0 + 1)]);
    assert_eq!(ok!(store.get_invocation("x")), Some(mixed));
    assert_eq!(ids(&ok!(store.claim_invocations("w", 10, T0 + 20, HOUR))), ["y", "z", "w"]);
    // A big batch (a store may split it: every record is written, in order).
    let many: Vec<InvocationRecord> = (0..1200).map(|i| queued(&format!("m{i:04}"), "act", T0 + 30)).collect();
    put(store, &many);
    assert_eq!(ok!(store.count_queued()), 1200);
    let claimed = ok!(store.claim_invocations("w", 2000, T0 + 40, HOUR));
    assert_eq!(ids(&claimed), many.iter().map(|r| r.id.as_str()).collect::<Vec<_>>());
}

/// `list_invocations` returns the newest first: in the reverse of the
/// order they were first stored, whatever their `created`.
pub fn invocations_list_newest_first(store: &dyn Store) {
    assert_eq!(ok!(store.list_invocations(None, 10)), vec![]);
    put_each(
        store,
        &[
            queued("i1", "a", T0 + 300),
            queued("i2", "a", T0 + 100),
            queued("i3", "a", T0 + 200),
            queued("i4", "a", T0 + 300),
        ],
    );
    put(store, &[queued("i5", "a", T0 + 100), queued("i6", "a", T0 + 100)]);
    let listed = ok!(store.list_invocations(None, 10));
    assert_eq!(ids(&listed), ["i6", "i5", "i4", "i3", "i2", "i1"]);
    // Replacing a record does not change its insertion order.
    put(store, &[InvocationRecord { logs: "replaced".into(), ..queued("i1", "a", T0 + 300) }]);
    assert_eq!(ids(&ok!(store.list_invocations(Some("a"), 10))), ["i6", "i5", "i4", "i3", "i2", "i1"]);
    // Nor does a claim, nor the end of a run.
    let mut claimed = ok!(store.claim_invocations("w", 1, T0 + 400, HOUR));
    claimed[0].status = InvocationStatus::Succeeded;
    claimed[0].finished = Some(T0 + 500);
    put(store, &claimed);
    assert_eq!(ids(&ok!(store.list_invocations(None, 3))), ["i6", "i5", "i4"]);
}

/// `list_invocations` keeps only the named action's records (an exact
/// match) and returns at most `limit` of them.
pub fn invocations_list_filter_and_limit(store: &dyn Store) {
    let records: Vec<InvocationRecord> = (0..10)
        .map(|i| {
            let action = ["a", "b", "ab"][i % 3];
            queued(&format!("r{i}"), action, T0 + i as i64)
        })
        .collect();
    put_each(store, &records);
    assert_eq!(ids(&ok!(store.list_invocations(Some("a"), 100))), ["r9", "r6", "r3", "r0"]);
    assert_eq!(ids(&ok!(store.list_invocations(Some("a"), 2))), ["r9", "r6"]);
    assert_eq!(ids(&ok!(store.list_invocations(Some("ab"), 100))), ["r8", "r5", "r2"]);
    assert_eq!(ids(&ok!(store.list_invocations(None, 3))), ["r9", "r8", "r7"]);
    assert_eq!(ok!(store.list_invocations(None, 100)).len(), 10);
    assert_eq!(ok!(store.list_invocations(None, 0)), vec![]);
    assert_eq!(ok!(store.list_invocations(Some("none"), 100)), vec![]);
    assert_eq!(ok!(store.list_invocations(Some("A"), 100)), vec![]);
    let listed = ok!(store.list_invocations(Some("b"), 1));
    assert_eq!(listed, vec![records[7].clone()], "listed records are complete");
}

/// The `caller` of a record comes back from every call that returns
/// records, and putting the record again replaces it (also with `None`).
pub fn invocations_caller_round_trips(store: &dyn Store) {
    let parent = finished("parent", InvocationStatus::Succeeded, T0 + 10);
    let child = InvocationRecord { caller: Some("parent".into()), ..queued("child", "a", T0 + 20) };
    let orphan = queued("orphan", "a", T0 + 30);
    let unicode = InvocationRecord { caller: Some("caller ✓ 日本語".into()), ..queued("odd", "b", T0 + 5) };
    put(store, &[parent.clone(), child.clone(), orphan.clone(), unicode.clone()]);
    for rec in [&parent, &child, &orphan, &unicode] {
        assert_eq!(ok!(store.get_invocation(&rec.id)).as_ref(), Some(rec), "get {}", rec.id);
    }
    assert_eq!(ok!(store.list_invocations(Some("a"), 10)), vec![orphan.clone(), child.clone()]);
    assert_eq!(ok!(store.list_invocations(Some("b"), 10)), vec![unicode.clone()]);
    let claimed_now = ok!(store.claim_invocations("w", 10, T0 + 100, HOUR));
    let expected = [&child, &orphan, &unicode].map(|rec| claimed(rec, "w", T0 + 100, HOUR));
    assert_eq!(claimed_now, expected, "claimed records keep their caller");
    assert_eq!(ok!(store.get_invocation("child")).and_then(|rec| rec.caller).as_deref(), Some("parent"));

    let mut done = expected[0].clone();
    done.status = InvocationStatus::Succeeded;
    done.finished = Some(T0 + 200);
    done.caller = Some("adopted".into());
    put(store, std::slice::from_ref(&done));
    assert_eq!(ok!(store.get_invocation("child")), Some(done.clone()));
    let cleared = InvocationRecord { caller: None, ..done };
    put(store, std::slice::from_ref(&cleared));
    assert_eq!(ok!(store.get_invocation("child")), Some(cleared));
}

// ---------------------------------------------------------------------------
// The queue

/// Claims come in enqueue order, whatever the ids and creation times say.
pub fn claim_in_enqueue_order(store: &dyn Store) {
    put_each(store, &[queued("q-c", "a", T0 + 300), queued("q-a", "a", T0 + 200), queued("q-b", "a", T0 + 100)]);
    put(store, &[queued("q-e", "a", T0), queued("q-d", "a", T0)]);
    let now = T0 + 1_000;
    assert_eq!(ids(&ok!(store.claim_invocations("w", 1, now, HOUR))), ["q-c"]);
    assert_eq!(ids(&ok!(store.claim_invocations("w", 1, now, HOUR))), ["q-a"]);
    assert_eq!(ids(&ok!(store.claim_invocations("w", 10, now, HOUR))), ["q-b", "q-e", "q-d"]);
}

/// A claimed record is returned and stored as `Running` with the owner,
/// `started = now`, `lease_until = now + lease` and one more attempt; every
/// other field is unchanged.
pub fn claim_marks_running(store: &dyn Store) {
    let rec = InvocationRecord { args: json!({ "x": [1, 2, 3] }).into(), ..queued("job", "act", T0) };
    put(store, std::slice::from_ref(&rec));
    let now = T0 + 50;
    let got = ok!(store.claim_invocations("worker-1", 5, now, 30_000));
    let expected = claimed(&rec, "worker-1", now, 30_000);
    assert_eq!(expected.attempts, 1);
    assert_eq!(got, vec![expected.clone()]);
    assert_eq!(ok!(store.get_invocation("job")), Some(expected.clone()));
    assert_eq!(ok!(store.list_invocations(None, 10)), vec![expected]);
    assert_eq!(ok!(store.count_queued()), 0);
}

/// A claimed record is not claimed again while its lease runs, by anyone;
/// the lease runs until `lease_until` inclusive.
pub fn claim_is_exclusive(store: &dyn Store) {
    put(store, &[queued("1", "a", T0), queued("2", "a", T0), queued("3", "a", T0)]);
    let now = T0 + 10;
    assert_eq!(ok!(store.claim_invocations("A", 10, now, 1_000)).len(), 3);
    assert_eq!(ok!(store.claim_invocations("A", 10, now, 1_000)), vec![]);
    assert_eq!(ok!(store.claim_invocations("B", 10, now + 999, 1_000)), vec![]);
    assert_eq!(ok!(store.claim_invocations("B", 10, now + 1_000, 1_000)), vec![], "lease_until == now is not expired");
    for id in ["1", "2", "3"] {
        let rec = ok!(store.get_invocation(id)).expect("record");
        assert_eq!((rec.owner.as_deref(), rec.attempts), (Some("A"), 1), "{id}");
    }
}

/// A running record whose lease expired (its owner died) is claimed again,
/// by its new owner, with a second attempt.
pub fn claim_expired_lease_again(store: &dyn Store) {
    let rec = queued("job", "a", T0);
    put(store, &[rec.clone(), queued("later", "a", T0)]);
    let first = ok!(store.claim_invocations("A", 1, T0 + 1_000, 100));
    assert_eq!(first, vec![claimed(&rec, "A", T0 + 1_000, 100)]);
    let second = ok!(store.claim_invocations("B", 1, T0 + 1_101, 100));
    let expected = claimed(&first[0], "B", T0 + 1_101, 100);
    assert_eq!(expected.attempts, 2);
    assert_eq!(second, vec![expected.clone()], "the expired claim comes before later records");
    assert_eq!(ok!(store.get_invocation("job")), Some(expected));
    assert_eq!(ids(&ok!(store.claim_invocations("A", 5, T0 + 1_102, 100))), ["later"]);
}

/// A claim returns at most `limit` records; 0 claims nothing.
pub fn claim_respects_limit(store: &dyn Store) {
    put_each(store, &(1..=5).map(|i| queued(&format!("j{i}"), "a", T0)).collect::<Vec<_>>());
    let now = T0 + 1;
    assert_eq!(ok!(store.claim_invocations("w", 0, now, HOUR)), vec![]);
    assert_eq!(ok!(store.count_queued()), 5);
    assert_eq!(ids(&ok!(store.claim_invocations("w", 2, now, HOUR))), ["j1", "j2"]);
    assert_eq!(ok!(store.count_queued()), 3);
    assert_eq!(ids(&ok!(store.claim_invocations("w", 10, now, HOUR))), ["j3", "j4", "j5"]);
    assert_eq!(ok!(store.claim_invocations("w", 10, now, HOUR)), vec![]);
}

/// Terminal records are never claimed, however old their lease; a running
/// record is claimed only once its lease has expired.
pub fn claim_never_takes_terminal_or_leased(store: &dyn Store) {
    let succeeded = finished("s", InvocationStatus::Succeeded, T0);
    let failed = finished("f", InvocationStatus::Failed, T0);
    let mut running = queued("r", "a", T0);
    running.status = InvocationStatus::Running;
    running.owner = Some("other".into());
    running.started = Some(T0);
    running.lease_until = Some(T0 + HOUR);
    running.attempts = 1;
    put(store, &[succeeded.clone(), failed.clone(), running.clone()]);
    assert_eq!(ok!(store.claim_invocations("w", 10, T0 + 1, HOUR)), vec![]);
    let late = T0 + 2 * HOUR;
    assert_eq!(ok!(store.claim_invocations("w", 10, late, HOUR)), vec![claimed(&running, "w", late, HOUR)]);
    let much_later = ok!(store.claim_invocations("w", 10, i64::MAX / 2, HOUR));
    assert_eq!(ids(&much_later), ["r"], "only the running record, whose lease expired again");
    assert_eq!(ok!(store.get_invocation("s")), Some(succeeded));
    assert_eq!(ok!(store.get_invocation("f")), Some(failed));
}

/// `release_running` makes every running record claimable at once (lease
/// 0), returns how many it released, and touches nothing else.
pub fn release_running_makes_claimable(store: &dyn Store) {
    assert_eq!(ok!(store.release_running()), 0);
    let done = finished("done", InvocationStatus::Succeeded, T0);
    put_each(store, &[queued("q1", "a", T0), queued("q2", "a", T0), queued("q3", "a", T0), done.clone()]);
    let now = T0 + 10;
    assert_eq!(ids(&ok!(store.claim_invocations("dead", 2, now, HOUR))), ["q1", "q2"]);
    assert_eq!(ok!(store.release_running()), 2);
    let q1 = ok!(store.get_invocation("q1")).expect("q1");
    assert_eq!((q1.status, q1.lease_until, q1.owner.as_deref()), (InvocationStatus::Running, Some(0), Some("dead")));
    let q3 = ok!(store.get_invocation("q3")).expect("q3");
    assert_eq!(q3, queued("q3", "a", T0), "a queued record is untouched");
    assert_eq!(ok!(store.get_invocation("done")), Some(done), "a terminal record is untouched");
    assert_eq!(ok!(store.count_queued()), 1);

    let again = ok!(store.claim_invocations("alive", 10, now + 1, HOUR));
    assert_eq!(ids(&again), ["q1", "q2", "q3"]);
    let attempts: Vec<u32> = again.iter().map(|rec| rec.attempts).collect();
    assert_eq!(attempts, [2, 2, 1]);
    assert_eq!(ok!(store.release_running()), 3);
}

/// `count_queued` counts records with status `Queued` only.
pub fn count_queued_counts_queued_only(store: &dyn Store) {
    assert_eq!(ok!(store.count_queued()), 0);
    let mut running = queued("r", "a", T0);
    running.status = InvocationStatus::Running;
    running.lease_until = Some(T0 + HOUR);
    put(
        store,
        &[
            queued("q1", "a", T0),
            queued("q2", "a", T0),
            queued("q3", "b", T0),
            running,
            finished("s", InvocationStatus::Succeeded, T0),
            finished("f", InvocationStatus::Failed, T0),
        ],
    );
    assert_eq!(ok!(store.count_queued()), 3);
    assert_eq!(ok!(store.claim_invocations("w", 1, T0 + 1, HOUR)).len(), 1);
    assert_eq!(ok!(store.count_queued()), 2);
    put(store, &[finished("q3", InvocationStatus::Succeeded, T0 + 5)]);
    assert_eq!(ok!(store.count_queued()), 1);
}

/// `oldest_queued` gives the `created` time of the queued record claimed
/// next (the first enqueued), and `None` once none is queued.
pub fn oldest_queued_is_the_next_claimed(store: &dyn Store) {
    assert_eq!(ok!(store.oldest_queued()), None);
    let mut running = queued("r", "a", T0 - 50);
    running.status = InvocationStatus::Running;
    running.lease_until = Some(T0 + HOUR);
    put(store, &[finished("s", InvocationStatus::Succeeded, T0 - 10), running]);
    assert_eq!(ok!(store.oldest_queued()), None, "only queued records count");
    // Claimed in enqueue order, whatever the times say: the first enqueued
    // is the one that waits longest for a claim.
    put(store, &[queued("q1", "a", T0 + 5), queued("q2", "a", T0), queued("q3", "b", T0 + 9)]);
    assert_eq!(ok!(store.oldest_queued()), Some(T0 + 5));
    assert_eq!(ok!(store.claim_invocations("w", 1, T0 + 20, HOUR)).len(), 1);
    assert_eq!(ok!(store.oldest_queued()), Some(T0));
    assert_eq!(ok!(store.claim_invocations("w", 2, T0 + 20, HOUR)).len(), 2);
    assert_eq!(ok!(store.oldest_queued()), None);
}

/// `purge_invocations` deletes terminal records finished strictly before
/// the cutoff, returns how many, and keeps everything else.
pub fn purge_terminal_before_cutoff(store: &dyn Store) {
    assert_eq!(ok!(store.purge_invocations(i64::MAX)), 0);
    let mut running = queued("r", "a", T0);
    running.status = InvocationStatus::Running;
    running.started = Some(T0 + 1);
    running.lease_until = Some(T0 + HOUR);
    put_each(
        store,
        &[
            finished("s100", InvocationStatus::Succeeded, T0 + 100),
            finished("f200", InvocationStatus::Failed, T0 + 200),
            finished("s300", InvocationStatus::Succeeded, T0 + 300),
            finished("f400", InvocationStatus::Failed, T0 + 400),
            queued("q", "a", T0),
            running,
        ],
    );
    assert_eq!(ok!(store.purge_invocations(T0 + 300)), 2);
    assert_eq!(ok!(store.get_invocation("s100")), None);
    assert_eq!(ok!(store.get_invocation("f200")), None);
    for id in ["s300", "f400", "q", "r"] {
        assert!(ok!(store.get_invocation(id)).is_some(), "{id} must survive");
    }
    assert_eq!(ok!(store.purge_invocations(T0 + 300)), 0);
    assert_eq!(ok!(store.purge_invocations(i64::MAX)), 2);
    let mut left = ids(&ok!(store.list_invocations(None, 100))).into_iter().map(str::to_owned).collect::<Vec<_>>();
    left.sort();
    assert_eq!(left, ["q", "r"]);
    assert_eq!(ok!(store.count_queued()), 1);
    // A purged id may be used again.
    put(store, &[queued("s100", "a", T0 + 500)]);
    assert_eq!(ok!(store.count_queued()), 2);
}

/// A finished record whose arguments hold `pad` bytes of text.
fn finished_padded(id: &str, finished_at: i64, pad: usize) -> InvocationRecord {
    let mut rec = finished(id, InvocationStatus::Succeeded, finished_at);
    rec.args = json!({ "pad": "p".repeat(pad) }).into();
    rec
}

/// `invocation_bytes` is the sum of the records' `stored_size`s, whatever
/// their status, and follows every write and delete.
pub fn invocation_bytes_add_up_stored_sizes(store: &dyn Store) {
    assert_eq!(ok!(store.invocation_bytes()), 0, "an empty store holds no record bytes");
    let a = finished_padded("a", T0 + 100, 10_000);
    let mut b = finished("b", InvocationStatus::Failed, T0 + 200);
    b.logs = "l".repeat(3_000);
    b.caller = Some("a".into());
    let q = queued("q", "act", T0);
    put(store, &[a.clone(), b.clone(), q.clone()]);
    let sizes = a.stored_size() + b.stored_size() + q.stored_size();
    assert!(sizes > 13_000 + 3 * crate::RECORD_OVERHEAD, "{sizes}");
    assert_eq!(ok!(store.invocation_bytes()), sizes);
    // Put again, bigger: the record's old size no longer counts.
    let a2 = finished_padded("a", T0 + 100, 50_000);
    put(store, std::slice::from_ref(&a2));
    assert_eq!(ok!(store.invocation_bytes()), a2.stored_size() + b.stored_size() + q.stored_size());
    // A claim does not change what a record counts for.
    assert_eq!(ok!(store.claim_invocations("a-server-with-a-long-name", 1, T0 + 300, HOUR)).len(), 1);
    assert_eq!(ok!(store.invocation_bytes()), a2.stored_size() + b.stored_size() + q.stored_size());
    // Retention deletes count too.
    assert_eq!(ok!(store.purge_invocations(T0 + 150)), 1);
    assert_eq!(ok!(store.invocation_bytes()), b.stored_size() + q.stored_size());
    assert_eq!(ok!(store.purge_invocations(i64::MAX)), 1);
    assert_eq!(ok!(store.invocation_bytes()), q.stored_size());
}

/// `purge_oldest_invocations` deletes terminal records in order of
/// `finished` until it has freed the bytes asked for (or deleted
/// `max_records`), reports exactly what it deleted, and never deletes a
/// queued or running record.
pub fn purge_oldest_takes_the_oldest_finished_first(store: &dyn Store) {
    assert_eq!(ok!(store.purge_oldest_invocations(u64::MAX, 100)), Purged::default(), "nothing to purge");
    // Put in another order than they finished.
    let f300 = finished_padded("f300", T0 + 300, 3_000);
    let f100 = finished_padded("f100", T0 + 100, 1_000);
    let mut f200 = finished("f200", InvocationStatus::Failed, T0 + 200);
    f200.args = json!({ "pad": "p".repeat(2_000) }).into();
    let f400 = finished_padded("f400", T0 + 400, 4_000);
    let mut running = queued("r", "a", T0);
    running.args = json!({ "pad": "r".repeat(20_000) }).into();
    let waiting = finished_padded("q", T0 + 50, 20_000);
    let waiting = InvocationRecord { status: InvocationStatus::Queued, finished: None, result: None, ..waiting };
    put_each(store, &[f300.clone(), running.clone(), f100.clone(), waiting.clone(), f400.clone(), f200.clone()]);
    assert_eq!(ok!(store.claim_invocations("me", 1, T0 + 1, HOUR)).len(), 1, "r runs");
    let total = ok!(store.invocation_bytes());

    assert_eq!(ok!(store.purge_oldest_invocations(0, 100)), Purged::default(), "nothing asked, nothing done");
    assert_eq!(ok!(store.purge_oldest_invocations(u64::MAX, 0)), Purged::default());
    // One byte more than the oldest holds: the two oldest go.
    let purged = ok!(store.purge_oldest_invocations(f100.stored_size() + 1, 100));
    assert_eq!(purged, Purged { records: 2, bytes: f100.stored_size() + f200.stored_size() });
    assert_eq!(ok!(store.get_invocation("f100")), None);
    assert_eq!(ok!(store.get_invocation("f200")), None);
    assert_eq!(ok!(store.get_invocation("f300")), Some(f300.clone()));
    assert_eq!(ok!(store.invocation_bytes()), total - purged.bytes);
    // At most `max_records`, however many bytes are asked for.
    let purged = ok!(store.purge_oldest_invocations(u64::MAX, 1));
    assert_eq!(purged, Purged { records: 1, bytes: f300.stored_size() });
    assert!(ok!(store.get_invocation("f400")).is_some());
    // Everything terminal, and nothing else.
    let purged = ok!(store.purge_oldest_invocations(u64::MAX, 100));
    assert_eq!(purged, Purged { records: 1, bytes: f400.stored_size() });
    assert_eq!(ok!(store.purge_oldest_invocations(u64::MAX, 100)), Purged::default());
    assert_eq!(ok!(store.get_invocation("q")).map(|rec| rec.status), Some(InvocationStatus::Queued));
    assert_eq!(ok!(store.get_invocation("r")).map(|rec| rec.status), Some(InvocationStatus::Running));
    assert_eq!(ok!(store.invocation_bytes()), running.stored_size() + waiting.stored_size());
    assert_eq!(ok!(store.count_queued()), 1);
}

/// Arguments and results come back as the same JSON values, through every
/// call that returns records.
pub fn json_round_trip(store: &dyn Store) {
    let args = json!({
        "nested": { "a": [1, 2, { "b": null, "c": [[], {}] }], "empty_object": {}, "empty_array": [] },
        "null": null,
        "yes": true,
        "no": false,
        "": "empty key",
        "unicode": "héllo ✓ 日本語 𝄞 \u{feff}",
        "ключ ✓": "value",
        "escapes": "quote \" backslash \\ slash / newline \n tab \t nul \u{0} bell \u{7}",
        "integers": [0, -1, 9_007_199_254_740_993_u64, u64::MAX, i64::MIN, i64::MAX],
        "floats": [0.1, -2.5e-10, 1e300, std::f64::consts::PI, 1.0, -0.5, 2e20, 1.797_693_134_862_315_7e308, 5e-324],
    });
    let results = [
        json!("a string ✓"),
        json!(9_007_199_254_740_993_u64),
        json!(-1.5),
        json!([1, "two", null, { "three": 3.0 }]),
        Value::Null,
        json!({ "deep": { "er": { "est": [true, false, { "": null }] } } }),
        json!(""),
    ];
    let mut records = Vec::new();
    for (i, result) in results.iter().enumerate() {
        let mut rec = finished(&format!("j{i}"), InvocationStatus::Succeeded, T0 + i as i64);
        rec.args = (&args).into();
        rec.result = Some(result.clone());
        records.push(rec);
    }
    let mut pending = queued("pending", "q", T0);
    pending.args = (&args).into();
    records.push(pending.clone());
    put(store, &records);
    for rec in &records {
        let stored = ok!(store.get_invocation(&rec.id)).expect("stored record");
        assert_eq!(stored.args, rec.args, "{}: args", rec.id);
        assert_eq!(stored.result, rec.result, "{}: result", rec.id);
    }
    let listed = ok!(store.list_invocations(Some("done"), 100));
    assert_eq!(listed.len(), results.len());
    for rec in &listed {
        let original = records.iter().find(|r| r.id == rec.id).expect("listed record was put");
        assert_eq!(rec, original, "listed {}", rec.id);
    }
    let got = ok!(store.claim_invocations("w", 1, T0 + 100, HOUR));
    assert_eq!(got, vec![claimed(&pending, "w", T0 + 100, HOUR)]);
}

/// Four threads claiming from one queue of 200 records take each record
/// exactly once, each thread in enqueue order.
pub fn concurrent_claims_take_each_once(store: &dyn Store) {
    const RECORDS: usize = 200;
    const THREADS: usize = 4;
    let records: Vec<InvocationRecord> = (0..RECORDS).map(|i| queued(&format!("c-{i:03}"), "a", T0)).collect();
    for batch in records.chunks(50) {
        put(store, batch);
    }
    let taken: Vec<Vec<InvocationRecord>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                scope.spawn(move || {
                    let owner = format!("worker-{t}");
                    let mut mine = Vec::new();
                    loop {
                        let got = ok!(store.claim_invocations(&owner, 3, T0 + 1, HOUR));
                        if got.is_empty() {
                            return mine;
                        }
                        mine.extend(got);
                    }
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("claiming thread")).collect()
    });
    let mut seen = HashSet::new();
    for (t, mine) in taken.iter().enumerate() {
        let owner = format!("worker-{t}");
        for rec in mine {
            assert!(seen.insert(rec.id.clone()), "{} was claimed twice", rec.id);
            assert_eq!((rec.owner.as_deref(), rec.attempts), (Some(owner.as_str()), 1), "{}", rec.id);
            let stored = ok!(store.get_invocation(&rec.id)).expect("claimed record");
            assert_eq!(stored.owner.as_deref(), Some(owner.as_str()), "{} is stored with its claimer", rec.id);
        }
        let order = ids(mine);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(order, sorted, "{owner} claimed out of enqueue order");
    }
    assert_eq!(seen.len(), RECORDS, "every record claimed");
    assert_eq!(ok!(store.count_queued()), 0);
}

/// Several servers purging for the budget at once: every terminal record is
/// deleted and counted once, the counts add up to what was stored, and the
/// queued record survives.
pub fn concurrent_purges_delete_each_once(store: &dyn Store) {
    const RECORDS: usize = 120;
    const THREADS: usize = 3;
    // All of one size, so that a share of a batch is that share's bytes.
    let records: Vec<InvocationRecord> =
        (0..RECORDS).map(|i| finished_padded(&format!("p-{i:03}"), T0 + i as i64, 500)).collect();
    let size = records[0].stored_size();
    assert!(records.iter().all(|rec| rec.stored_size() == size));
    for batch in records.chunks(40) {
        put(store, batch);
    }
    let waiting = queued("q", "a", T0);
    put(store, std::slice::from_ref(&waiting));
    let purged: Vec<Purged> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(move || {
                    let mut mine = Purged::default();
                    loop {
                        let got = ok!(store.purge_oldest_invocations(5 * size, 7));
                        if got == Purged::default() {
                            return mine;
                        }
                        assert!(got.records <= 7, "{got:?}");
                        mine.records += got.records;
                        mine.bytes += got.bytes;
                    }
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("purging thread")).collect()
    });
    let records_deleted: u64 = purged.iter().map(|p| p.records).sum();
    let bytes_deleted: u64 = purged.iter().map(|p| p.bytes).sum();
    assert_eq!(records_deleted, RECORDS as u64, "{purged:?}");
    assert_eq!(bytes_deleted, RECORDS as u64 * size, "{purged:?}");
    assert_eq!(ok!(store.invocation_bytes()), waiting.stored_size());
    assert_eq!(ok!(store.get_invocation("q")), Some(waiting));
}

// ---------------------------------------------------------------------------
// Enqueueing with idempotency keys

/// A submit of `queued(id, action, T0)` with key `key` (fingerprint `fp`).
fn submit(id: &str, key: Option<(&str, &str)>) -> Submit {
    Submit {
        record: queued(id, "a", T0),
        key: key.map(|(key, fp)| IdempotencyKey { key: key.to_owned(), fingerprint: fp.to_owned() }),
    }
}

/// Enqueued records are stored as given, queued and claimable in order.
pub fn enqueue_writes_queued_records(store: &dyn Store) {
    assert_eq!(ok!(store.enqueue_invocations(&[])), []);
    let submits = [submit("e1", None), submit("e2", Some(("k2", "fp2"))), submit("e3", None)];
    assert_eq!(ok!(store.enqueue_invocations(&submits)), [Enqueued::New, Enqueued::New, Enqueued::New]);
    for s in &submits {
        assert_eq!(ok!(store.get_invocation(&s.record.id)).as_ref(), Some(&s.record));
    }
    assert_eq!(ok!(store.count_queued()), 3);
    let claimed = ok!(store.claim_invocations("w", 10, T0 + 1, HOUR));
    assert_eq!(ids(&claimed), ["e1", "e2", "e3"]);
}

/// A submit that ran before its commit is enqueued running (under a
/// lease) or finished: stored as given, never claimed while its lease
/// lives, not in the queue depth, counted in the record bytes, purged by
/// retention like any finished record; a running one is taken over once
/// its lease ends.
pub fn enqueue_writes_running_and_finished_records(store: &dyn Store) {
    let mut running = queued("run", "a", T0);
    running.status = InvocationStatus::Running;
    running.owner = Some("me".into());
    running.started = Some(T0);
    running.lease_until = Some(T0 + 1_000);
    running.attempts = 1;
    let mut done = finished("done", InvocationStatus::Succeeded, T0 + 50);
    done.owner = None;
    done.lease_until = None;
    let failed =
        InvocationRecord { owner: None, lease_until: None, ..finished("failed", InvocationStatus::Failed, T0 + 60) };
    let submits = [running.clone(), done.clone(), failed.clone()].map(|record| Submit { record, key: None });
    assert_eq!(ok!(store.enqueue_invocations(&submits)), [Enqueued::New, Enqueued::New, Enqueued::New]);
    for s in &submits {
        assert_eq!(ok!(store.get_invocation(&s.record.id)).as_ref(), Some(&s.record));
    }
    assert_eq!(ok!(store.count_queued()), 0);
    let sizes: u64 = submits.iter().map(|s| s.record.stored_size()).sum();
    assert_eq!(ok!(store.invocation_bytes()), sizes);
    assert_eq!(ok!(store.claim_invocations("other", 10, T0 + 999, HOUR)), vec![], "the lease lives");
    let taken = ok!(store.claim_invocations("other", 10, T0 + 1_001, HOUR));
    assert_eq!((ids(&taken), taken[0].attempts), (vec!["run"], 2), "taken over after the lease");
    assert_eq!(ok!(store.purge_invocations(T0 + 55)), 1);
    assert_eq!(ok!(store.get_invocation("done")), None);
    assert_eq!(ok!(store.purge_oldest_invocations(u64::MAX, 10)).records, 1, "the failed one");
    assert!(ok!(store.get_invocation("run")).is_some(), "a running record is never purged");
}

/// A batch of many submits, keyed and not, queued and finished, is stored
/// whole and in its order: listed newest first in reverse, claimed in
/// order, counted exactly in the queue depth (a store may write a run of
/// unkeyed submits in one statement).
pub fn enqueue_a_long_mixed_batch_keeps_its_order(store: &dyn Store) {
    let submits: Vec<Submit> = (0..75)
        .map(|i| {
            let id = format!("m{i:02}");
            let key = (i % 20 == 19).then(|| format!("key{i}"));
            let mut s = submit(&id, key.as_deref().map(|k| (k, "fp")));
            if i % 7 == 3 {
                s.record = InvocationRecord {
                    id: id.clone(),
                    owner: None,
                    lease_until: None,
                    ..finished("x", InvocationStatus::Succeeded, T0 + i)
                };
            }
            s
        })
        .collect();
    let answers = ok!(store.enqueue_invocations(&submits));
    assert_eq!(answers, vec![Enqueued::New; 75]);
    for s in &submits {
        assert_eq!(ok!(store.get_invocation(&s.record.id)).as_ref(), Some(&s.record));
    }
    let queued: Vec<&str> =
        submits.iter().filter(|s| s.record.status == InvocationStatus::Queued).map(|s| s.record.id.as_str()).collect();
    assert_eq!(ok!(store.count_queued()), queued.len() as u64);
    let listed = ok!(store.list_invocations(None, 100));
    let mut newest_first: Vec<&str> = submits.iter().map(|s| s.record.id.as_str()).collect();
    newest_first.reverse();
    assert_eq!(ids(&listed), newest_first);
    let claimed = ok!(store.claim_invocations("w", 100, T0 + 1, HOUR));
    assert_eq!(ids(&claimed), queued);
    assert_eq!(ok!(store.count_queued()), 0);
}

/// A key held by a stored record is not taken again: nothing is written
/// and the answer names the holder and its fingerprint, whatever the new
/// submit asks for; other submits of the call are written.
pub fn enqueue_a_held_key_names_its_holder(store: &dyn Store) {
    ok!(store.enqueue_invocations(&[submit("h1", Some(("key", "first")))]));
    let again = ok!(store.enqueue_invocations(&[
        submit("h2", Some(("key", "first"))),
        submit("h3", Some(("other", "x"))),
        submit("h4", Some(("key", "second"))),
    ]));
    let holder = Enqueued::Existing { id: "h1".into(), fingerprint: "first".into() };
    assert_eq!(again, [holder.clone(), Enqueued::New, holder]);
    assert_eq!(ok!(store.get_invocation("h2")), None);
    assert_eq!(ok!(store.get_invocation("h4")), None);
    assert!(ok!(store.get_invocation("h3")).is_some());
    assert_eq!(ok!(store.count_queued()), 2);
    // The key stays with its record as it runs and finishes.
    let mut done = ok!(store.claim_invocations("w", 10, T0 + 1, HOUR)).remove(0);
    done.status = InvocationStatus::Succeeded;
    done.finished = Some(T0 + 2);
    put(store, &[done]);
    let holder = Enqueued::Existing { id: "h1".into(), fingerprint: "first".into() };
    assert_eq!(ok!(store.enqueue_invocations(&[submit("h5", Some(("key", "first")))])), [holder]);
}

/// A call retried after it failed (or after its answer was lost) answers
/// `New` for records it had written, and writes each record once.
pub fn enqueue_retried_is_new_again(store: &dyn Store) {
    let submits = [submit("r1", Some(("rk", "fp"))), submit("r2", None)];
    ok!(store.enqueue_invocations(&submits));
    assert_eq!(ok!(store.enqueue_invocations(&submits)), [Enqueued::New, Enqueued::New]);
    assert_eq!(ok!(store.count_queued()), 2);
    assert_eq!(ids(&ok!(store.list_invocations(None, 10))).len(), 2);
}

/// Deleting the record that holds a key (retention or the budget) frees
/// the key.
pub fn enqueue_key_is_freed_with_its_record(store: &dyn Store) {
    ok!(store.enqueue_invocations(&[submit("f1", Some(("fk", "fp")))]));
    let mut done = ok!(store.claim_invocations("w", 1, T0 + 1, HOUR)).remove(0);
    done.status = InvocationStatus::Failed;
    done.error = Some(InvocationError { kind: "runtime".into(), message: "boom".into() });
    done.finished = Some(T0 + 2);
    put(store, &[done]);
    assert_eq!(ok!(store.purge_invocations(T0 + 3)), 1);
    assert_eq!(ok!(store.enqueue_invocations(&[submit("f2", Some(("fk", "fp")))])), [Enqueued::New]);
    assert!(ok!(store.get_invocation("f2")).is_some());
}

/// Servers enqueueing the same key at once: one record is written, and
/// every caller is told that record's id.
pub fn concurrent_enqueues_of_one_key_write_one_record(store: &dyn Store) {
    const THREADS: usize = 4;
    const KEYS: usize = 25;
    let answers: Vec<Vec<String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                scope.spawn(move || {
                    (0..KEYS)
                        .map(|k| {
                            let id = format!("c{t}-{k:02}");
                            let key = format!("key-{k:02}");
                            match ok!(store.enqueue_invocations(&[submit(&id, Some((&key, "fp")))])).remove(0) {
                                Enqueued::New => id,
                                Enqueued::Existing { id, fingerprint } => {
                                    assert_eq!(fingerprint, "fp");
                                    id
                                }
                            }
                        })
                        .collect()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("enqueueing thread")).collect()
    });
    for k in 0..KEYS {
        let told: HashSet<&str> = answers.iter().map(|a| a[k].as_str()).collect();
        assert_eq!(told.len(), 1, "key {k}: callers were told {told:?}");
        let id = told.into_iter().next().unwrap_or_default();
        assert!(ok!(store.get_invocation(id)).is_some(), "{id} is stored");
    }
    assert_eq!(ok!(store.count_queued()), KEYS as u64, "one record per key");
}

/// Counts of `action`: `n` succeeded and `n / 2` failed runs of `kind`.
fn counts(action: &str, kind: RunKind, n: u64) -> RunCounts {
    let mut c = RunCounts::new(action);
    c.runs[kind as usize].succeeded = n;
    c.runs[kind as usize].failed = n / 2;
    c
}

pub fn run_counts_add_up(store: &dyn Store) {
    assert_eq!(ok!(store.run_counts("a")), RunCounts::new("a"), "nothing counted yet");
    ok!(store.add_run_counts(&[]));
    ok!(store.add_run_counts(&[counts("a", RunKind::Blocking, 10), counts("b", RunKind::Route, 4)]));
    ok!(store.add_run_counts(&[counts("a", RunKind::Blocking, 6), counts("a", RunKind::Invoke, 2)]));
    ok!(store.add_run_counts(&[counts("a", RunKind::Async, 1 << 40)]));
    let a = ok!(store.run_counts("a"));
    assert_eq!(a.action, "a");
    assert_eq!((a.of(RunKind::Blocking).succeeded, a.of(RunKind::Blocking).failed), (16, 8));
    assert_eq!((a.of(RunKind::Invoke).succeeded, a.of(RunKind::Invoke).failed), (2, 1));
    assert_eq!((a.of(RunKind::Async).succeeded, a.of(RunKind::Async).failed), (1 << 40, 1 << 39));
    assert_eq!(a.of(RunKind::Route), Default::default());
    let b = ok!(store.run_counts("b"));
    assert_eq!((b.of(RunKind::Route).succeeded, b.of(RunKind::Route).failed), (4, 2));
    assert!(b.of(RunKind::Blocking) == Default::default() && ok!(store.run_counts("c")).is_empty());
}

pub fn concurrent_run_counts_lose_nothing(store: &dyn Store) {
    const THREADS: u64 = 4;
    const ROUNDS: u64 = 25;
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(move || {
                for _ in 0..ROUNDS {
                    ok!(store.add_run_counts(&[counts("x", RunKind::Blocking, 2), counts("y", RunKind::Async, 1)]));
                }
            });
        }
    });
    let x = ok!(store.run_counts("x"));
    assert_eq!(
        (x.of(RunKind::Blocking).succeeded, x.of(RunKind::Blocking).failed),
        (2 * THREADS * ROUNDS, THREADS * ROUNDS)
    );
    assert_eq!(ok!(store.run_counts("y")).of(RunKind::Async).succeeded, THREADS * ROUNDS);
}
