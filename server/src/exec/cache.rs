//! The action cache of one worker: compiled actions with their warm
//! instances, the jobs waiting while an action is fetched, and the
//! instances of failed runs waiting to be dropped.
//!
//! Rules:
//! - An action is fetched once however many jobs want it meanwhile; they
//!   wait in its [`Slot::Loading`] and start when it arrives.
//! - Every cache entry has a generation; an instance goes back to the idle
//!   ones only if its entry is still of the generation it started from.
//! - Idle instances are evicted, least recently used actions first, when
//!   the Lua states of this worker pass three quarters of its share of
//!   `Limits.total_memory`.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use sl_store::{ActionRecord, StoreError};
use tracing::debug;

use super::Job;
use crate::config::LimitsConfig;
use crate::sandbox::{self, Budget, Compiled, Instance, InvokeError, Outcome, Remains, Run};

/// A cached action.
struct Ready {
    /// When it last started an invocation (the cache's clock).
    last_used: u64,
    version: i64,
    /// Unique for the life of the worker: instances of an older
    /// generation of the same action are not kept.
    generation: u64,
    /// Library actions its instances have `require`d, with the versions
    /// they loaded: when one of them changes, so does this action.
    deps: HashMap<String, i64>,
    code: Rc<Compiled>,
    budget: Budget,
    idle: Vec<Instance>,
    /// The action's slot in the worker's metrics, once it has one.
    metrics: Option<u32>,
}

enum Slot {
    /// The action is being fetched; `stale` if it changed meanwhile.
    Loading {
        pending: Vec<Job>,
        /// Runs parked in `require` of this action: (slab key, run id).
        requirers: Vec<(usize, u64)>,
        stale: bool,
    },
    Ready(Ready),
}

/// An instance to start a job in, with what the cache knows of its action.
pub(crate) struct Lease {
    /// A warm instance, or a new one (which may fail to load).
    pub instance: Result<Instance, InvokeError>,
    pub version: i64,
    /// The generation of the cache entry: hand it back to
    /// [`Cache::check_in`].
    pub generation: u64,
    pub budget: Budget,
    /// The action's slot in the worker's metrics, if it has one yet (see
    /// [`Cache::set_metrics_slot`]).
    pub metrics: Option<u32>,
}

/// What became of a job that wants an action not cached.
pub(crate) enum Queued {
    /// The action is cached after all: start the job now.
    Start(Box<Job>),
    /// It waits for a fetch under way.
    Waiting,
    /// It waits for this action, which nobody fetches yet: fetch it.
    Fetch(String),
}

/// What a finished fetch of an action means.
pub(crate) enum Fetched {
    /// The action changed while it was fetched: fetch it again.
    Again,
    /// Cached: start the jobs, hand the code to the requirers.
    Ready { code: Rc<Compiled>, version: i64, pending: Vec<Job>, requirers: Vec<(usize, u64)> },
    /// It cannot be had: fail the jobs and the requirers.
    Failed { kind: &'static str, message: String, pending: Vec<Job>, requirers: Vec<(usize, u64)> },
}

/// What `require(name)` finds.
pub(crate) enum Library {
    /// Cached: its code and version.
    Ready(Rc<Compiled>, i64),
    /// Being fetched: the requirer waits.
    Waiting,
    /// Not cached: fetch it.
    Fetch,
}

/// A fetched action: its record and its verified code.
pub(crate) type FetchResult = Result<Option<(ActionRecord, Result<Compiled, InvokeError>)>, StoreError>;

/// Compiled actions and their warm instances.
#[derive(Default)]
pub(crate) struct Cache {
    /// Looked up several times a request: hashed with foldhash (seeded
    /// per process) rather than SipHash.
    actions: HashMap<String, Slot, foldhash::fast::RandomState>,
    /// Counts lookups: the clock of `last_used`, and generations.
    clock: u64,
    /// Jobs waiting for their action to load.
    loading_jobs: usize,
    /// Instances of failed invocations, dropped one a turn of the loop
    /// (see [`Cache::dig_up`]).
    graveyard: Vec<Instance>,
    /// Idle instances evicted to make room, already taken off this
    /// thread's count of its states, to be freed off the loop (see
    /// [`Cache::evicted`]).
    evicted: Vec<Remains>,
    /// Idle instances over every action.
    warm: usize,
    /// Instances made since the worker started (cold starts).
    created: u64,
}

/// Limits in force for an action: its own where set, else the defaults,
/// and never above the server's maxima (an action stored when they were
/// higher, or by another server, runs within this server's).
pub(crate) fn budget_for(rec: &ActionRecord, limits: &LimitsConfig) -> Budget {
    let pick = |own: u64, default: u64, max: u64| if own == 0 { default } else { own.min(max) };
    Budget {
        memory: (pick(rec.limits.maxmem, limits.maxmem, limits.max_maxmem) as usize).saturating_mul(1024),
        timeout: Duration::from_millis(pick(rec.limits.timeout, limits.timeout, limits.max_timeout)),
        instructions: pick(rec.limits.instructions, limits.instructions, limits.max_instructions),
        max_string: (limits.max_string as usize).saturating_mul(1024),
    }
}

impl Cache {
    /// An instance of `action` to start a job in, if the action is cached:
    /// a warm one if one is idle, else a new one (after making room).
    pub fn check_out(&mut self, action: &str) -> Option<Lease> {
        self.clock += 1;
        let now = self.clock;
        let Some(Slot::Ready(ready)) = self.actions.get_mut(action) else { return None };
        ready.last_used = now;
        let (version, generation, budget, metrics) = (ready.version, ready.generation, ready.budget, ready.metrics);
        if let Some(i) = ready.idle.pop() {
            self.warm -= 1;
            return Some(Lease { instance: Ok(i), version, generation, budget, metrics });
        }
        // Making room may drop other actions' idle instances (never this
        // action's entry), so the entry is looked up again.
        self.evict_idle();
        let Some(Slot::Ready(ready)) = self.actions.get(action) else { return None };
        self.created += 1;
        Some(Lease {
            instance: Instance::from_bytecode(action, &ready.code.bytecode, budget.max_string),
            version,
            generation,
            budget,
            metrics,
        })
    }

    /// Keeps `slot` as cached action `action`'s slot in the worker's
    /// metrics (it keeps it until it leaves the cache).
    pub fn set_metrics_slot(&mut self, action: &str, slot: u32) {
        if let Some(Slot::Ready(ready)) = self.actions.get_mut(action) {
            ready.metrics = Some(slot);
        }
    }

    /// Ends a run of `action` started from cache generation `generation`:
    /// its instance back to the idle ones (at most `warm` of them) if the
    /// run left it usable, else to the graveyard.
    pub fn check_in(&mut self, action: &str, generation: u64, run: &mut Run, outcome: &Outcome, warm: usize) {
        if let Some(instance) = run.take_instance(outcome) {
            if let Some(Slot::Ready(ready)) = self.actions.get_mut(action) {
                if ready.generation == generation && ready.idle.len() < warm {
                    ready.idle.push(instance);
                    self.warm += 1;
                    return;
                }
            }
            self.graveyard.push(instance);
        } else if let Some(dead) = run.discard() {
            self.graveyard.push(dead);
        }
    }

    /// Queues `job` until its action is loaded.
    pub fn enqueue(&mut self, job: Job) -> Queued {
        match self.actions.get_mut(&job.record.action) {
            Some(Slot::Ready(_)) => Queued::Start(Box::new(job)),
            Some(Slot::Loading { pending, .. }) => {
                pending.push(job);
                self.loading_jobs += 1;
                Queued::Waiting
            }
            None => {
                let name = job.record.action.clone();
                self.actions
                    .insert(name.clone(), Slot::Loading { pending: vec![job], requirers: Vec::new(), stale: false });
                self.loading_jobs += 1;
                Queued::Fetch(name)
            }
        }
    }

    /// Run `(key, id)` called `require(name)`.
    pub fn require(&mut self, name: &str, key: usize, id: u64) -> Library {
        match self.actions.get_mut(name) {
            Some(Slot::Ready(ready)) => Library::Ready(Rc::clone(&ready.code), ready.version),
            Some(Slot::Loading { requirers, .. }) => {
                requirers.push((key, id));
                Library::Waiting
            }
            None => {
                let slot = Slot::Loading { pending: Vec::new(), requirers: vec![(key, id)], stale: false };
                self.actions.insert(name.to_string(), slot);
                Library::Fetch
            }
        }
    }

    /// The fetch of `name` ended with `result`; `limits` are the defaults.
    /// `None` if nothing waited for it.
    pub fn fetched(&mut self, name: &str, result: FetchResult, limits: &LimitsConfig) -> Option<Fetched> {
        let (pending, requirers) = match self.actions.remove(name) {
            Some(Slot::Loading { pending, requirers, stale: false }) => (pending, requirers),
            Some(Slot::Loading { pending, requirers, stale: true }) => {
                // Changed while we fetched it: fetch again, keep the waiters.
                self.actions.insert(name.to_string(), Slot::Loading { pending, requirers, stale: false });
                return Some(Fetched::Again);
            }
            Some(ready) => {
                self.actions.insert(name.to_string(), ready);
                return None;
            }
            None => return None,
        };
        self.loading_jobs = self.loading_jobs.saturating_sub(pending.len());
        let (kind, message) = match result {
            Ok(Some((rec, Ok(code)))) => {
                self.clock += 1;
                let code = Rc::new(code);
                let ready = Ready {
                    last_used: 0,
                    version: rec.version,
                    generation: self.clock,
                    deps: HashMap::new(),
                    code: Rc::clone(&code),
                    budget: budget_for(&rec, limits),
                    idle: Vec::new(),
                    metrics: None,
                };
                self.actions.insert(name.to_string(), Slot::Ready(ready));
                return Some(Fetched::Ready { code, version: rec.version, pending, requirers });
            }
            Ok(Some((_, Err(e)))) => ("internal", e.to_string()),
            Ok(None) => ("not_found", format!("no action named '{name}'")),
            Err(e) => ("unavailable", e.to_string()),
        };
        Some(Fetched::Failed { kind, message, pending, requirers })
    }

    /// Records that `action`'s instances have loaded library `name` at
    /// `version`: when the library changes, so does the action.
    pub fn depends(&mut self, action: &str, name: &str, version: i64) {
        if let Some(Slot::Ready(ready)) = self.actions.get_mut(action) {
            ready.deps.insert(name.to_string(), version);
        }
    }

    /// Forgets a cached action, and the actions that `require`d it, so
    /// that the next invocation fetches them again.
    pub fn invalidate(&mut self, name: &str) {
        match self.actions.get_mut(name) {
            Some(Slot::Loading { stale, .. }) => *stale = true,
            Some(Slot::Ready(_)) => self.bury_slot(name),
            None => {}
        }
        let dependents: Vec<String> = self
            .actions
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Ready(r) if r.deps.contains_key(name)))
            .map(|(n, _)| n.clone())
            .collect();
        for n in dependents {
            self.bury_slot(&n);
        }
    }

    /// Forgets cached action `name`; its idle instances go to the graveyard.
    fn bury_slot(&mut self, name: &str) {
        if let Some(Slot::Ready(r)) = self.actions.remove(name) {
            self.warm -= r.idle.len();
            self.graveyard.extend(r.idle);
        }
    }

    /// Drops idle instances, least recently used actions first, while the
    /// Lua states of this worker hold more than three quarters of its
    /// share of `Limits.total_memory`.
    fn evict_idle(&mut self) {
        let budget = sandbox::thread_budget();
        if budget == 0 || sandbox::thread_total() <= budget / 4 * 3 {
            return;
        }
        let mut order: Vec<(u64, String)> = self
            .actions
            .iter()
            .filter_map(|(n, s)| match s {
                Slot::Ready(r) if !r.idle.is_empty() => Some((r.last_used, n.clone())),
                _ => None,
            })
            .collect();
        order.sort();
        let mut dropped = 0;
        for (_, name) in order {
            if let Some(Slot::Ready(r)) = self.actions.get_mut(&name) {
                while sandbox::thread_total() > budget / 2 {
                    let Some(i) = r.idle.pop() else { break };
                    self.warm -= 1;
                    // Off this thread's count now, freed off the loop
                    // later (a state that must stay is freed here).
                    match Remains::leave(i) {
                        Ok(remains) => self.evicted.push(remains),
                        Err(i) => drop(i),
                    }
                    dropped += 1;
                }
            }
            if sandbox::thread_total() <= budget / 2 {
                break;
            }
        }
        if dropped > 0 {
            debug!(dropped, "evicted idle instances to stay within Limits.total_memory");
        }
    }

    /// Idle instances over every action.
    pub fn warm(&self) -> usize {
        self.warm
    }

    /// Instances made since the worker started (cold starts).
    pub fn created(&self) -> u64 {
        self.created
    }

    /// The idle instances evicted since the last call, for the caller to
    /// free off the loop.
    pub fn evicted(&mut self) -> Vec<Remains> {
        std::mem::take(&mut self.evicted)
    }

    /// One discarded instance, to be dropped by the caller (once a turn of
    /// the loop, after the sockets were served, so that the time a big
    /// state takes to free is not added to the slice that failed it; a big
    /// one off the loop).
    pub fn dig_up(&mut self) -> Option<Instance> {
        self.graveyard.pop()
    }

    /// Whether discarded or evicted instances wait to be freed.
    pub fn has_graves(&self) -> bool {
        !self.graveyard.is_empty() || !self.evicted.is_empty()
    }

    /// Jobs waiting for their action to be fetched.
    pub fn loading_jobs(&self) -> usize {
        self.loading_jobs
    }

    /// Whether any action is cached.
    pub fn has_cached(&self) -> bool {
        self.actions.values().any(|s| matches!(s, Slot::Ready(_)))
    }

    /// Whether the action is cached (so it is known to exist).
    pub fn is_cached(&self, name: &str) -> bool {
        matches!(self.actions.get(name), Some(Slot::Ready(_)))
    }

    /// Cached actions whose version differs from `versions` (the store's
    /// now) or that are no longer there.
    pub fn stale_actions(&self, versions: &HashMap<String, i64>) -> Vec<String> {
        self.actions
            .iter()
            .filter_map(|(name, slot)| match slot {
                Slot::Ready(r)
                    if versions.get(name).is_none_or(|v| *v > r.version)
                        || r.deps.iter().any(|(dep, v)| versions.get(dep) != Some(v)) =>
                {
                    Some(name.clone())
                }
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_runs_within_the_server_maxima_whatever_it_stored() {
        let cfg = crate::config::Config::default();
        let mut rec = ActionRecord {
            name: "big".into(),
            version: 1,
            source: Vec::new(),
            bytecode: Vec::new(),
            checksum: String::new(),
            limits: sl_store::Limits::default(),
            created: 0,
            updated: 0,
        };
        let l = &cfg.limits;
        let b = budget_for(&rec, l);
        assert_eq!(b.memory, l.maxmem as usize * 1024, "the default when unset");
        assert_eq!(b.instructions, l.instructions);
        rec.limits.maxmem = 1024 * 1024;
        rec.limits.timeout = l.max_timeout + 1;
        rec.limits.instructions = l.max_instructions * 2;
        let b = budget_for(&rec, l);
        assert_eq!(b.memory, 64 << 20, "stored 1 GiB, run at max_maxmem");
        assert_eq!(b.timeout, Duration::from_millis(l.max_timeout));
        assert_eq!(b.instructions, l.max_instructions);
        rec.limits.maxmem = 2048;
        assert_eq!(budget_for(&rec, l).memory, 2048 * 1024, "its own when within");
    }
}
