//! Metrics: what the server counts as it works, and `GET /metrics`, which
//! shows it in the Prometheus text format.
//!
//! # Design
//!
//! Every cell has one writer. Each worker owns its part of the
//! [`Registry`]: an [`AppMetrics`] (one [`ActionMetrics`] per action it
//! ran, and its instances) that its application writes, and a
//! [`ReactorMetrics`] (answers by listener and status, connections, the
//! duration of each turn of its loop) that its reactor writes. An update is
//! a relaxed load and store on the worker's own cache lines (see
//! [`cell`]): no lock, no atomic read-modify-write, nothing shared between
//! workers on the hot path. A scrape, on whichever worker gets the
//! request, reads every worker's part and adds them up; each value it
//! reads is whole, and at most the few updates in flight late.
//!
//! The hot path of an invocation pays one lookup of its action in the
//! worker's own map (then cached there; a new action's metrics are also
//! listed, under a mutex, for scrapes) and a few stores. With
//! `Server { metrics = false }` nothing is counted (a check of the setting
//! per invocation, per answer and per turn remains), and `/metrics` is a
//! 404.
//!
//! The exposition is written by hand ([`text`]) rather than with the
//! `prometheus-client` crate: its `Family` looks a label set up under a
//! lock on every update, and its metrics are shared atomics that every
//! worker would write; the server's numbers are per worker and summed at
//! scrape time, which its `Collector` interface could express, but the
//! format itself is a dozen lines.
//!
//! # Labels
//!
//! Every label has a bounded set of values: `action` (actions are created
//! by the operator; the metrics of a deleted action stay until restart, as
//! Prometheus counters should), `kind` ([`sl_store::RunKind`]), `outcome`
//! ([`OUTCOMES`]), `limit` ([`LIMITS`]), `listener` (`api`, `routes`),
//! `code` (an HTTP status, 100 to 599), `worker` (a number below
//! `Server.workers`), `op` ([`STORE_OPS`]), `plugin` (the configured
//! plugins).
//!
//! Store calls and plugin calls run on the blocking pools of every worker
//! at once: their cells ([`StoreMetrics`], [`CallMetrics`]) are shared by
//! the process and take `fetch_add`s, once a call.

mod action;
mod cell;
mod events;
mod store;
mod text;

pub use action::{ActionMetrics, Ended, LIMITS, OUTCOMES};
pub use cell::{Counter, Gauge, Histogram, SharedCounter, SharedHistogram, Snapshot};
pub use events::{ScheduleMetrics, SubscriptionGauges, SubscriptionMetrics, TopicGauges};
pub use store::{CallMetrics, MeteredStore, StoreMetrics, STORE_OPS};
pub use text::CONTENT_TYPE;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sl_store::RunKind;

use cell::SHORT_SECONDS;
use text::{Exposition, Type};

/// The lowest and highest HTTP status counted.
const FIRST_STATUS: u16 = 100;
const LAST_STATUS: u16 = 599;
const STATUSES: usize = (LAST_STATUS - FIRST_STATUS + 1) as usize;

/// The metrics of one worker's reactor. Written by that worker only.
#[derive(Debug)]
pub struct ReactorMetrics {
    /// Answers written, by listener (API, routes) and status.
    responses: [Box<[Counter; STATUSES]>; 2],
    /// Connections open at the end of the last turn.
    pub connections: Gauge,
    /// How long each turn of the loop took, from the end of its wait for
    /// events to the end of its work.
    pub turns: Histogram<{ cell::SHORT_SECONDS_COUNTS }>,
}

impl Default for ReactorMetrics {
    fn default() -> Self {
        Self {
            responses: [
                Box::new(std::array::from_fn(|_| Counter::default())),
                Box::new(std::array::from_fn(|_| Counter::default())),
            ],
            connections: Gauge::default(),
            turns: Histogram::new(&SHORT_SECONDS),
        }
    }
}

impl ReactorMetrics {
    /// Counts an answer with `status` written on the routes listener
    /// (`routes`) or the API's.
    #[inline(always)]
    pub fn response(&self, routes: bool, status: u16) {
        let i = usize::from(status.clamp(FIRST_STATUS, LAST_STATUS) - FIRST_STATUS);
        self.responses[usize::from(routes)][i].inc();
    }
}

/// The metrics of one worker's application. The worker writes them; its
/// action map is also read by scrapes.
#[derive(Debug, Default)]
pub struct AppMetrics {
    actions: Mutex<Vec<(Arc<str>, Arc<ActionMetrics>)>>,
    /// Lua instances made for actions (cold starts).
    pub instance_creations: Counter,
    /// Idle instances in the worker's cache.
    pub warm_instances: Gauge,
}

/// One worker's parts of the registry.
#[derive(Debug, Default)]
struct WorkerMetrics {
    app: Arc<AppMetrics>,
    reactor: Arc<ReactorMetrics>,
}

/// The metrics of every worker of the process.
#[derive(Debug)]
pub struct Registry {
    workers: Vec<WorkerMetrics>,
    store: Arc<StoreMetrics>,
    /// By plugin name, made at a plugin's first call.
    plugins: Mutex<std::collections::BTreeMap<String, Arc<CallMetrics>>>,
    /// Every subscription's counters (updated once per batch).
    subscriptions: events::Subscriptions,
    /// Every schedule's counters (updated once per firing).
    schedules: events::ScheduleCounters,
}

impl Registry {
    /// A registry for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Self {
            workers: (0..workers.max(1)).map(|_| WorkerMetrics::default()).collect(),
            store: Arc::default(),
            plugins: Mutex::default(),
            subscriptions: events::Subscriptions::default(),
            schedules: events::ScheduleCounters::default(),
        }
    }

    /// The counters of schedule `name`.
    pub fn schedule(&self, name: &str) -> Arc<ScheduleMetrics> {
        self.schedules.get(name)
    }

    /// The counters of subscription `name`.
    pub fn subscription(&self, name: &str) -> Arc<SubscriptionMetrics> {
        self.subscriptions.get(name)
    }

    /// The cells of the store's calls (see [`MeteredStore`]).
    pub fn store(&self) -> Arc<StoreMetrics> {
        Arc::clone(&self.store)
    }

    /// The cells of the calls of plugin `name`.
    fn plugin(&self, name: &str) -> Arc<CallMetrics> {
        let mut plugins = self.plugins.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(plugins.entry(name.to_owned()).or_default())
    }

    /// The reactor metrics of worker `i`.
    pub fn reactor(&self, i: usize) -> Arc<ReactorMetrics> {
        Arc::clone(&self.workers[i].reactor)
    }

    /// The application metrics of worker `i`, with its private map of
    /// actions.
    pub fn app(self: &Arc<Self>, i: usize) -> WorkerApp {
        WorkerApp {
            shared: Arc::clone(&self.workers[i].app),
            index: HashMap::default(),
            slots: Vec::new(),
            registry: Arc::clone(self),
            plugins: HashMap::default(),
        }
    }

    /// The exposition of every metric, with the values only a scrape reads
    /// (`extra`).
    pub fn render(&self, extra: &Extra) -> String {
        render(self, extra)
    }
}

/// A worker's handle on its application metrics.
pub struct WorkerApp {
    shared: Arc<AppMetrics>,
    /// The worker's own map of its actions' metrics, by name to slot.
    index: HashMap<Arc<str>, u32, foldhash::fast::RandomState>,
    /// Its actions' metrics by slot.
    slots: Vec<Arc<ActionMetrics>>,
    registry: Arc<Registry>,
    /// The plugins' cells this worker has used.
    plugins: HashMap<String, Arc<CallMetrics>, foldhash::fast::RandomState>,
}

impl WorkerApp {
    /// The slot of `action`'s metrics on this worker, made at its first
    /// use: a number for the caller to keep (the action cache keeps it
    /// with the action) and give to [`at`](Self::at), so that counting a
    /// run looks nothing up by name. Only for actions that exist: each
    /// name makes metrics of its own, for the life of the process.
    pub fn slot(&mut self, action: &str) -> u32 {
        if let Some(&slot) = self.index.get(action) {
            return slot;
        }
        let m = Arc::new(ActionMetrics::default());
        let name: Arc<str> = Arc::from(action);
        if let Ok(mut list) = self.shared.actions.lock() {
            list.push((Arc::clone(&name), Arc::clone(&m)));
        }
        let slot = self.slots.len() as u32;
        self.slots.push(m);
        self.index.insert(name, slot);
        slot
    }

    /// The metrics in `slot` (from [`slot`](Self::slot)).
    #[inline]
    pub fn at(&self, slot: u32) -> &ActionMetrics {
        &self.slots[slot as usize]
    }

    /// The cells of the calls of plugin `name`, for a pool thread to
    /// record a call into.
    pub fn plugin(&mut self, name: &str) -> Arc<CallMetrics> {
        if let Some(m) = self.plugins.get(name) {
            return Arc::clone(m);
        }
        let m = self.registry.plugin(name);
        self.plugins.insert(name.to_owned(), Arc::clone(&m));
        m
    }

    /// The worker-wide cells.
    pub fn worker(&self) -> &AppMetrics {
        &self.shared
    }
}

/// Values a scrape reads from elsewhere than the registry.
#[derive(Debug, Default)]
pub struct Extra {
    /// Asynchronous invocations queued in the store, and the age in
    /// seconds of the oldest one (0 with none), if the store answered.
    pub queue: Option<(u64, f64)>,
    /// The topics and the subscriptions, if the store answered.
    pub topics: Option<Vec<TopicGauges>>,
    pub subscriptions: Option<Vec<SubscriptionGauges>>,
}

/// The process's resident memory in bytes, from `/proc/self/statm`.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok().filter(|&p| p > 0)?)
}

/// One action's metrics summed over the workers.
#[derive(Default)]
struct ActionSum {
    runs: [[u64; OUTCOMES.len()]; RunKind::ALL.len()],
    duration: Snapshot,
    instructions: Snapshot,
    peak_memory: Snapshot,
    queue_wait: Snapshot,
}

/// Picks one of an action's histograms.
type Pick = fn(&ActionSum) -> &Snapshot;

fn render(reg: &Registry, extra: &Extra) -> String {
    // Actions summed over the workers, in name order.
    let mut actions: std::collections::BTreeMap<String, ActionSum> = Default::default();
    for w in &reg.workers {
        let list: Vec<(Arc<str>, Arc<ActionMetrics>)> = w.app.actions.lock().map(|l| l.clone()).unwrap_or_default();
        for (name, m) in list {
            let sum = actions.entry(name.to_string()).or_default();
            for (k, row) in sum.runs.iter_mut().enumerate() {
                for (o, n) in row.iter_mut().enumerate() {
                    *n += m.runs(k, o);
                }
            }
            m.duration.add_to(&mut sum.duration);
            m.instructions.add_to(&mut sum.instructions);
            m.peak_memory.add_to(&mut sum.peak_memory);
            if let Some(h) = m.queue_wait.get() {
                h.add_to(&mut sum.queue_wait);
            }
        }
    }
    let mut e = Exposition::default();

    e.family("sl_invocations_total", Type::Counter, "Invocations that ended, by action, kind and outcome.");
    for (name, a) in &actions {
        for (k, kind) in RunKind::ALL.into_iter().enumerate() {
            for (o, outcome) in OUTCOMES.iter().enumerate() {
                let n = a.runs[k][o];
                if n > 0 {
                    e.sample(
                        "sl_invocations_total",
                        &[("action", name.as_str()), ("kind", kind.as_str()), ("outcome", *outcome)],
                        n,
                    );
                }
            }
        }
    }
    e.family("sl_limit_kills_total", Type::Counter, "Invocations ended by a limit, by limit.");
    for limit in LIMITS {
        let o = OUTCOMES.iter().position(|x| *x == limit).unwrap_or(0);
        let n: u64 = actions.values().map(|a| a.runs.iter().map(|row| row[o]).sum::<u64>()).sum();
        e.sample("sl_limit_kills_total", &[("limit", limit)], n);
    }
    let histograms: [(&str, &str, Pick); 4] = [
        ("sl_invocation_duration_seconds", "Wall-clock time of invocations that ran, by action.", |a| &a.duration),
        (
            "sl_invocation_queue_wait_seconds",
            "Time asynchronous invocations waited between their submit and their start, by action.",
            |a| &a.queue_wait,
        ),
        ("sl_invocation_instructions", "Lua VM instructions of invocations that ran, by action.", |a| &a.instructions),
        ("sl_invocation_peak_memory_bytes", "Peak Lua heap of invocations that ran, by action.", |a| &a.peak_memory),
    ];
    for (name, help, get) in histograms {
        e.family(name, Type::Histogram, help);
        for (action, a) in &actions {
            // An action that never ran asynchronously has no queue wait:
            // no series (a third of an action's lines).
            if get(a).has_buckets() {
                e.histogram(name, &[("action", action.as_str())], get(a));
            }
        }
    }

    e.family("sl_instance_creations_total", Type::Counter, "Lua instances made for actions (cold starts).");
    e.sample("sl_instance_creations_total", &[], reg.workers.iter().map(|w| w.app.instance_creations.get()).sum());
    e.family("sl_warm_instances", Type::Gauge, "Idle Lua instances kept warm for the next invocation.");
    e.sample("sl_warm_instances", &[], reg.workers.iter().map(|w| w.app.warm_instances.get()).sum());

    if let Some((depth, oldest)) = extra.queue {
        e.family("sl_async_queue_depth", Type::Gauge, "Asynchronous invocations queued in the store.");
        e.sample("sl_async_queue_depth", &[], depth);
        e.family(
            "sl_async_oldest_queued_age_seconds",
            Type::Gauge,
            "Age of the oldest asynchronous invocation queued in the store (0 with none).",
        );
        e.sample_f64("sl_async_oldest_queued_age_seconds", &[], oldest);
    }

    e.family("sl_http_responses_total", Type::Counter, "HTTP answers written, by listener and status code.");
    for (l, listener) in ["api", "routes"].into_iter().enumerate() {
        for i in 0..STATUSES {
            let n: u64 = reg.workers.iter().map(|w| w.reactor.responses[l][i].get()).sum();
            if n > 0 {
                let code = (FIRST_STATUS + i as u16).to_string();
                e.sample("sl_http_responses_total", &[("listener", listener), ("code", code.as_str())], n);
            }
        }
    }
    e.family("sl_connections_open", Type::Gauge, "Client connections open.");
    e.sample("sl_connections_open", &[], reg.workers.iter().map(|w| w.reactor.connections.get()).sum());
    e.family(
        "sl_loop_turn_duration_seconds",
        Type::Histogram,
        "How long each turn of a worker's event loop took (a stalled loop shows in the top buckets).",
    );
    for (i, w) in reg.workers.iter().enumerate() {
        let mut s = Snapshot::default();
        w.reactor.turns.add_to(&mut s);
        e.histogram("sl_loop_turn_duration_seconds", &[("worker", i.to_string().as_str())], &s);
    }
    e.family("sl_store_operation_duration_seconds", Type::Histogram, "Time of store calls, by operation.");
    for (op, m) in STORE_OPS.iter().zip(&reg.store.ops) {
        let mut s = Snapshot::default();
        m.duration.add_to(&mut s);
        if s.count() > 0 {
            e.histogram("sl_store_operation_duration_seconds", &[("op", *op)], &s);
        }
    }
    e.family("sl_store_operation_errors_total", Type::Counter, "Store calls that failed, by operation.");
    for (op, m) in STORE_OPS.iter().zip(&reg.store.ops) {
        let n = m.errors.get();
        if n > 0 {
            e.sample("sl_store_operation_errors_total", &[("op", *op)], n);
        }
    }
    let plugins: Vec<(String, Arc<CallMetrics>)> =
        reg.plugins.lock().map(|p| p.iter().map(|(k, v)| (k.clone(), Arc::clone(v))).collect()).unwrap_or_default();
    e.family("sl_plugin_call_duration_seconds", Type::Histogram, "Time of plugin calls, by plugin.");
    for (name, m) in &plugins {
        let mut s = Snapshot::default();
        m.duration.add_to(&mut s);
        e.histogram("sl_plugin_call_duration_seconds", &[("plugin", name.as_str())], &s);
    }
    e.family("sl_plugin_call_errors_total", Type::Counter, "Plugin calls that failed, by plugin.");
    for (name, m) in &plugins {
        e.sample("sl_plugin_call_errors_total", &[("plugin", name.as_str())], m.errors.get());
    }
    events::render(&mut e, &reg.subscriptions, extra.topics.as_deref(), extra.subscriptions.as_deref());
    events::render_schedules(&mut e, &reg.schedules);
    if let Some(rss) = resident_bytes() {
        e.family("sl_process_resident_memory_bytes", Type::Gauge, "Resident memory of the server process.");
        e.sample("sl_process_resident_memory_bytes", &[], rss);
    }
    e.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_scrape_sums_the_workers() {
        let reg = Arc::new(Registry::new(2));
        let (mut a, mut b) = (reg.app(0), reg.app(1));
        let ok = Ended {
            kind: RunKind::Blocking,
            error: None,
            duration: Duration::from_millis(1),
            instructions: 10,
            peak_memory: 1000,
            queue_wait: None,
        };
        let (ha, hb, other) = (a.slot("hello"), b.slot("hello"), b.slot("other"));
        for _ in 0..3 {
            a.at(ha).ran(&ok);
        }
        b.at(hb).ran(&ok);
        b.at(hb).ran(&Ended { error: Some("timeout"), ..ok });
        b.at(other).failed_to_start(RunKind::Async, "compile");
        a.worker().instance_creations.add(2);
        b.worker().warm_instances.set(5);
        reg.reactor(0).response(false, 200);
        reg.reactor(1).response(false, 200);
        reg.reactor(1).response(true, 404);
        reg.reactor(0).turns.record(30_000);
        let start = std::time::Instant::now();
        a.plugin("kv").record(start, false);
        b.plugin("kv").record(start, true);
        let text = reg.render(&Extra { queue: Some((7, 1.5)), ..Extra::default() });
        for line in [
            "sl_invocations_total{action=\"hello\",kind=\"blocking\",outcome=\"success\"} 4",
            "sl_invocations_total{action=\"hello\",kind=\"blocking\",outcome=\"timeout\"} 1",
            "sl_invocations_total{action=\"other\",kind=\"async\",outcome=\"compile\"} 1",
            "sl_limit_kills_total{limit=\"timeout\"} 1",
            "sl_limit_kills_total{limit=\"memory\"} 0",
            "sl_invocation_duration_seconds_count{action=\"hello\"} 5",
            "sl_invocation_duration_seconds_count{action=\"other\"} 0",
            "sl_instance_creations_total 2",
            "sl_warm_instances 5",
            "sl_async_queue_depth 7",
            "sl_async_oldest_queued_age_seconds 1.5",
            "sl_http_responses_total{listener=\"api\",code=\"200\"} 2",
            "sl_http_responses_total{listener=\"routes\",code=\"404\"} 1",
            "sl_loop_turn_duration_seconds_count{worker=\"0\"} 1",
            "sl_loop_turn_duration_seconds_count{worker=\"1\"} 0",
            "sl_plugin_call_duration_seconds_count{plugin=\"kv\"} 2",
            "sl_plugin_call_errors_total{plugin=\"kv\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
        }
        assert!(text.contains("\nsl_process_resident_memory_bytes "), "{text}");
        assert!(!text.contains("outcome=\"runtime\""), "no sample for a count of zero");
        assert!(!text.contains("sl_invocation_queue_wait_seconds_count{"), "no queue wait of blocking runs");
    }
}
