//! Warm instances and the invocations that run in them.

use std::time::{Duration, Instant};

use std::ffi::c_int;

use mlua::{ffi, ChunkMode, Function, Lua, MultiValue, Thread, Value};

use super::alloc::MemoryMeter;
use super::args::{Args, Doc};
use super::error::error_message;
use super::hook::{self, ActiveGuard, Control, ErasedTree, LimitKind};
use super::{env, json, preempt, InvokeError};

/// Limits in force for one invocation, after defaults were applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Bytes of Lua heap for the whole state (0 = unlimited).
    pub memory: usize,
    /// Wall-clock time for the whole invocation.
    pub timeout: Duration,
    /// VM instructions.
    pub instructions: u64,
    /// The longest string in bytes (`Limits.max_string`). Fixed when a
    /// state is made: give the same value to the instance's constructor
    /// ([`Instance::from_bytecode`], [`Instance::from_source`]) as to its
    /// runs, as [`compile_with`](super::compile_with) and the cache do.
    pub max_string: usize,
}

/// A Lua state holding one action version, ready to run `main`.
///
/// One invocation at a time; never shared between actions or versions.
pub struct Instance {
    // Field order is drop order: Lua handles, then the state, then the
    // blocks the state's allocator and hook point into.
    /// What an invocation's thread runs once the chunk has run: `main`
    /// called with the arguments (see [`entry`]).
    entry: Option<Function>,
    chunk: Option<Function>,
    /// The thread of the last invocation that finished, to run the next
    /// one in (a new thread per invocation would cost allocations and GC).
    spare: Option<Thread>,
    lua: Lua,
    ctl: Box<Control>,
    meter: Box<MemoryMeter>,
    /// Invocations completed in this instance.
    pub runs: u64,
    /// Whether the full collection after the first invocation was done
    /// (see [`Run::take_instance`]).
    collected: bool,
}

impl Instance {
    fn with_chunk(max_string: usize, load: impl FnOnce(&Lua) -> mlua::Result<Function>) -> Result<Self, InvokeError> {
        let (lua, meter) =
            env::new_state(max_string).map_err(|e| InvokeError::Internal(format!("cannot create Lua state: {e}")))?;
        let ctl = Box::new(Control::new(&*meter));
        // Built before anything else can fail, so that an early return drops
        // the state before the meter its allocator points into.
        let mut instance = Self { entry: None, chunk: None, spare: None, lua, ctl, meter, runs: 0, collected: false };
        instance.chunk = Some(load(&instance.lua).map_err(|e| InvokeError::Compile(error_message(&e)))?);
        Ok(instance)
    }

    /// A new instance from trusted bytecode (compiled by this server and
    /// checksum-verified by the caller), whose strings may hold at most
    /// `max_string` bytes. Its chunk runs at the start of its first
    /// invocation, under that invocation's limits.
    pub fn from_bytecode(name: &str, bytecode: &[u8], max_string: usize) -> Result<Self, InvokeError> {
        Self::with_chunk(max_string, |lua| {
            lua.load(bytecode).set_name(format!("={name}")).set_mode(ChunkMode::Binary).into_function()
        })
    }

    /// A new instance from user source (any bytes), loaded in text mode
    /// only, whose strings may hold at most `max_string` bytes.
    pub fn from_source(name: &str, source: impl AsRef<[u8]>, max_string: usize) -> Result<Self, InvokeError> {
        let source = source.as_ref();
        Self::with_chunk(max_string, |lua| {
            lua.load(source).set_name(format!("={name}")).set_mode(ChunkMode::Text).into_function()
        })
    }

    /// Bytes of Lua heap in use.
    pub fn memory_used(&self) -> usize {
        self.meter.used()
    }

    /// Whether the state must stay on the OS thread it runs on: it holds a
    /// pattern call suspended on a stack of its own (see `away.rs`).
    pub(crate) fn pinned(&self) -> bool {
        self.ctl.own_stacks.get() > 0
    }

    /// After its first invocation, a full collection (a few microseconds
    /// for most actions) frees what loading and the chunk left, about a
    /// tenth of a warm instance's heap, before it waits idle. Once.
    fn collect_once(&mut self) {
        if !std::mem::replace(&mut self.collected, true) {
            let _ = self.lua.gc_collect();
        }
    }

    /// The chunk's bytecode (with debug information), if it has not run yet.
    pub fn dump(&self) -> Option<Vec<u8>> {
        self.chunk.as_ref().map(|f| f.dump(false))
    }

    /// Starts an invocation of `main(args)` under `budget`.
    pub fn start(self, args: impl Into<Args>, budget: Budget) -> Run {
        Run::new(self, Some(args.into()), budget)
    }

    /// Runs only the chunk (as at create time) and checks that it defines
    /// a global `main` function; the caller drives the returned run.
    pub fn start_init(self, budget: Budget) -> Run {
        Run::new(self, None, budget)
    }
}

/// Result of one [`Run::step`].
#[derive(Debug)]
pub enum Step {
    /// The time slice is used up; call `step` again later.
    Yielded,
    /// The action called `call(plugin, action, payload)`: run it, then
    /// pass its result to [`Run::deliver`] and `step` again.
    Call(PluginCall),
    /// The action called `invoke(action, args)`: run that action, then
    /// pass its result (or its error message) to [`Run::deliver`] and
    /// `step` again.
    Invoke(InvokeCall),
    /// The action called `require(name)` for a library action it has not
    /// loaded yet: pass the library's bytecode to [`Run::deliver_module`]
    /// (or an error message to [`Run::deliver`]) and `step` again.
    Require(String),
    /// The action called `publish(topic, payload, key)`: append the
    /// message, then pass `{offset, partition}` (or an error message) to
    /// [`Run::deliver`] and `step` again.
    Publish(PublishCall),
    /// The invocation ended.
    Done(Outcome),
}

/// An `invoke(action, args)` an invocation waits for.
#[derive(Debug, Clone, PartialEq)]
pub struct InvokeCall {
    pub action: String,
    /// A JSON object.
    pub args: serde_json::Value,
}

/// A plugin call an invocation waits for.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginCall {
    pub plugin: String,
    pub action: String,
    pub payload: serde_json::Value,
}

/// A message an invocation publishes, and waits for its offset.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishCall {
    pub topic: String,
    pub payload: serde_json::Value,
    pub key: Option<String>,
}

/// How an invocation ended, with its measurements.
#[derive(Debug)]
pub struct Outcome {
    pub result: Result<serde_json::Value, InvokeError>,
    pub logs: String,
    pub instructions: u64,
    pub peak_memory: u64,
    pub duration: Duration,
}

enum Phase {
    Init,
    Main,
}

/// What resumes a thread that waits on the executor.
enum Delivery {
    /// The result of `call` or `invoke`, or an error message.
    Value(Result<serde_json::Value, String>),
    /// A library's verified bytecode for `require`, and its chunk name:
    /// loaded in the instance's state by the step that resumes with it.
    Module { name: String, bytecode: Vec<u8> },
}

/// An invocation in progress in an [`Instance`].
pub struct Run {
    thread: Option<Thread>,
    phase: Phase,
    args: Option<Args>,
    pending_args: bool,
    /// The result of a plugin call, an invoke or a require, to resume the
    /// thread with.
    delivery: Option<Delivery>,
    started: Instant,
    /// Whether `step` has not run yet (its clock is then `started`).
    fresh: bool,
    instance: Option<Instance>,
    /// What `ack` and `retry` said, once the run is done.
    verdicts: Vec<super::hook::Verdict>,
}

impl Run {
    /// After `Done`, what the invocation said of the messages of its batch
    /// with `ack` and `retry`, in call order (empty if it called neither).
    /// Kept after the instance is gone.
    pub fn take_verdicts(&mut self) -> Vec<super::hook::Verdict> {
        std::mem::take(&mut self.verdicts)
    }

    /// A run that holds nothing: what stands in for a run while it steps
    /// on another thread.
    pub fn vacant() -> Self {
        Self {
            thread: None,
            phase: Phase::Main,
            args: None,
            pending_args: false,
            delivery: None,
            started: Instant::now(),
            fresh: false,
            instance: None,
            verdicts: Vec::new(),
        }
    }

    /// Bytes of Lua heap its state holds (0 once the instance is gone).
    pub fn memory_used(&self) -> usize {
        self.instance.as_ref().map_or(0, Instance::memory_used)
    }

    /// Makes the next step read the clock instead of taking the time the
    /// run was started (a run that waited before its first step).
    pub(crate) fn restart_clock(&mut self) {
        self.fresh = false;
    }

    /// Whether its state must stay on the OS thread it runs on.
    pub(crate) fn pinned(&self) -> bool {
        self.instance.as_ref().is_some_and(Instance::pinned)
    }

    fn new(instance: Instance, args: Option<Args>, budget: Budget) -> Self {
        let started = Instant::now();
        let ctl = &instance.ctl;
        ctl.deadline.set(started + budget.timeout);
        ctl.budget.set(budget.instructions);
        ctl.used.set(0);
        ctl.abort.set(None);
        ctl.preempted.borrow_mut().clear();
        ctl.logs.borrow_mut().clear();
        ctl.logs_truncated.set(false);
        debug_assert_eq!(
            instance.meter.max_string(),
            budget.max_string,
            "an instance runs under the max_string it was made with"
        );
        instance.meter.set_limit(budget.memory);
        instance.meter.clear_hit();
        instance.meter.reset_peak();
        let phase = if instance.chunk.is_some() { Phase::Init } else { Phase::Main };
        Self {
            thread: None,
            phase,
            pending_args: args.is_some(),
            delivery: None,
            args,
            started,
            fresh: true,
            instance: Some(instance),
            verdicts: Vec::new(),
        }
    }

    /// When the invocation must end.
    pub fn deadline(&self) -> Instant {
        self.instance.as_ref().map(|i| i.ctl.deadline.get()).unwrap_or(self.started)
    }

    /// Ends the run with `kind` without running it again (a limit that
    /// passed while it was parked on a plugin call).
    pub fn cancel(&mut self, kind: LimitKind) -> Outcome {
        if let Some(i) = self.instance.as_ref() {
            i.ctl.abort.set(Some(kind));
        }
        self.finish(Err(InvokeError::Limit(kind)))
    }

    /// Hands the result of the plugin call the run waits for; the next
    /// [`step`](Self::step) resumes the action with it.
    pub fn deliver(&mut self, result: Result<serde_json::Value, String>) {
        self.delivery = Some(Delivery::Value(result));
    }

    /// Hands the bytecode of the library action the run's `require(name)`
    /// waits for. The bytecode must come from [`compile`](super::compile)
    /// and be checksum-verified ([`Compiled::verified`](super::Compiled::verified)):
    /// binary chunks are trusted. The chunk runs in this run's state,
    /// under its limits, like the action's own code.
    pub fn deliver_module(&mut self, name: &str, bytecode: &[u8]) {
        // Loaded by the next step, on the thread that runs it: loading
        // allocates, and so may run a step of the collector.
        self.delivery = Some(Delivery::Module { name: format!("={name}"), bytecode: bytecode.to_vec() });
    }

    /// Runs the invocation for at most about `slice` (the hook checks the
    /// clock every [`hook::HOOK_INTERVAL`] instructions).
    pub fn step(&mut self, slice: Duration) -> Step {
        let Some(instance) = self.instance.as_ref() else {
            return Step::Done(self.finish(Err(InvokeError::Internal("invocation already finished".into()))));
        };
        let _active = ActiveGuard::enter(&instance.ctl);
        // The first step follows `Run::new` at once: its clock will do.
        let start = if std::mem::take(&mut self.fresh) { self.started } else { Instant::now() };
        instance.ctl.slice_end.set(start + slice);
        instance.ctl.stall_mark.set(None);
        // Once the step has run a tick of the preemption timer, the hook
        // fires at the next instruction, however long instructions take.
        let _watch = preempt::Watch::begin();
        let mut clock = Some(start);
        loop {
            // The step's clock for the first check, a new reading after a
            // delivery.
            let now = clock.take().unwrap_or_else(Instant::now);
            if let Some(kind) = self.instance_ref().ctl.check_at(now) {
                return Step::Done(self.finish(Err(InvokeError::Limit(kind))));
            }
            let thread = match self.thread.clone() {
                Some(t) => t,
                None => match self.next_thread() {
                    Ok(Some(t)) => t,
                    Ok(None) => return Step::Done(self.finish(Ok(serde_json::Value::Null))),
                    Err(e) => return Step::Done(self.finish(Err(e))),
                },
            };
            let mut args = MultiValue::new();
            // JSON pushed after `args` by `resume_raw`, straight onto the
            // stack (no mlua handle per table and string).
            let mut json_tail = None;
            // The first resume of `main`: the entry function takes the
            // arguments (`resume_entry`).
            let mut starting = false;
            if self.pending_args && matches!(self.phase, Phase::Main) {
                self.pending_args = false;
                starting = true;
                json_tail = Some(self.args.take().unwrap_or(Args::Value(serde_json::Value::Null)));
            }
            if let Some(delivery) = self.delivery.take() {
                let lua = &self.instance_ref().lua;
                let converted = match delivery {
                    // A plain `null` answer is `nil` (json.null only marks
                    // nulls inside arrays).
                    Delivery::Value(Ok(serde_json::Value::Null)) => Ok((true, Some(Value::Nil))),
                    // Pushed after the flag by `resume_raw`.
                    Delivery::Value(Ok(v)) => {
                        json_tail = Some(Args::Value(v));
                        Ok((true, None))
                    }
                    Delivery::Value(Err(m)) => lua.create_string(m).map(|m| (false, Some(Value::String(m)))),
                    Delivery::Module { name, bytecode } => lua
                        .load(&bytecode[..])
                        .set_name(name)
                        .set_mode(ChunkMode::Binary)
                        .into_function()
                        .map(|f| (true, Some(Value::Function(f)))),
                };
                match converted {
                    Ok((ok, value)) => {
                        args.push_back(Value::Boolean(ok));
                        args.extend(value);
                    }
                    Err(mlua::Error::MemoryError(_)) => {
                        return Step::Done(self.finish(Err(InvokeError::Limit(LimitKind::Memory))))
                    }
                    Err(e) => return Step::Done(self.finish(Err(InvokeError::Internal(error_message(&e))))),
                }
            }
            let tail = match &json_tail {
                Some(Args::Value(v)) => Some(Tail::Value(v)),
                Some(Args::Text(text)) => Some(Tail::Doc(text.doc())),
                None => None,
            };
            // The result of `main`, when it is a scalar, is read off the
            // stack inside the resume (no mlua handle for it).
            let mut scalar = None;
            let want_scalar = matches!(self.phase, Phase::Main).then_some(&mut scalar);
            let instance = self.instance_ref();
            let resumed = match tail {
                Some(tail) if starting => resume_entry(&instance.lua, &thread, &instance.ctl, tail, want_scalar),
                tail => resume_raw(&instance.lua, &thread, args, tail, want_scalar),
            };
            let ctl = &self.instance_ref().ctl;
            if let Some(kind) = ctl.abort.get().or_else(|| ctl.memory_limit()) {
                return Step::Done(self.finish(Err(InvokeError::Limit(kind))));
            }
            let values = match resumed {
                Ok(Resumed::Finished(values)) => {
                    // The last stretch may have run in C past the deadline.
                    let end = Instant::now();
                    if let Some(kind) = ctl.check_at(end) {
                        return Step::Done(self.finish_at(Err(InvokeError::Limit(kind)), end));
                    }
                    clock = Some(end);
                    values
                }
                Ok(Resumed::Yielded(values)) => {
                    let marker = env::preempt_marker();
                    let passed_up = values.len() == 1 && values.front() == Some(&marker);
                    if ctl.take_preempted(thread.to_pointer()) || passed_up {
                        return Step::Yielded;
                    }
                    if values.front() == Some(&env::call_marker()) {
                        match self.wait_request(values) {
                            Ok(step) => return step,
                            Err(message) => {
                                self.delivery = Some(Delivery::Value(Err(message)));
                                continue;
                            }
                        }
                    }
                    return Step::Done(
                        self.finish(Err(InvokeError::Runtime("attempt to yield from outside a coroutine".into()))),
                    );
                }
                Ok(Resumed::Failed(err)) => {
                    return Step::Done(self.finish(Err(InvokeError::Runtime(error_value_message(&err)))))
                }
                Ok(Resumed::OutOfMemory) | Err(mlua::Error::MemoryError(_)) => {
                    return Step::Done(self.finish(Err(InvokeError::Limit(LimitKind::Memory))));
                }
                Err(e) => return Step::Done(self.finish(Err(InvokeError::Internal(error_message(&e))))),
            };
            // Finished, so its stack is empty: the next run may reuse it.
            let done = self.thread.take();
            self.instance.as_mut().expect("instance present").spare = done;
            match self.phase {
                Phase::Init => {
                    self.phase = Phase::Main;
                    let instance = self.instance.as_mut().expect("instance present");
                    instance.chunk = None;
                    match instance.lua.globals().raw_get::<Value>("main") {
                        Ok(Value::Function(f)) => match make_entry(&instance.lua, f) {
                            Ok(entry) => instance.entry = Some(entry),
                            Err(mlua::Error::MemoryError(_)) => {
                                return Step::Done(self.finish(Err(InvokeError::Limit(LimitKind::Memory))))
                            }
                            Err(e) => return Step::Done(self.finish(Err(InvokeError::Internal(error_message(&e))))),
                        },
                        // A library: a chunk that returns a table for
                        // `require` (and defines no main).
                        _ if matches!(values.front(), Some(Value::Table(_))) => {
                            let result = match self.args {
                                None => Ok(serde_json::Value::Null),
                                Some(_) => Err(InvokeError::Library(
                                    "this action is a library: it returns a table for require() and defines no \
                                     function 'main' to invoke"
                                        .into(),
                                )),
                            };
                            return Step::Done(self.finish(result));
                        }
                        _ => {
                            return Step::Done(
                                self.finish(Err(InvokeError::Compile(
                                    "the action does not define a global function 'main' (nor return a table, as a \
                                 library for require() does)"
                                        .into(),
                                ))),
                            )
                        }
                    }
                    if self.args.is_none() {
                        return Step::Done(self.finish(Ok(serde_json::Value::Null)));
                    }
                }
                Phase::Main => {
                    // The end of the run is the clock read when it finished,
                    // unless converting a table took time of its own.
                    let mut result = match scalar {
                        Some(scalar) => json::from_scalar(scalar).map_err(result_error),
                        None => {
                            clock = None;
                            self.convert_result(values)
                        }
                    };
                    if let (Err(_), Some(kind)) = (&result, self.instance_ref().ctl.abort.get()) {
                        result = Err(InvokeError::Limit(kind));
                    }
                    let end = clock.take().unwrap_or_else(Instant::now);
                    return Step::Done(self.finish_at(result, end));
                }
            }
        }
    }

    /// Reads what `call`, `invoke` or `require` yielded after the CALL
    /// marker: `(plugin, action, payload)`, `(INVOKE, action, args)` or
    /// `(REQUIRE, name)`.
    fn wait_request(&self, values: MultiValue) -> Result<Step, String> {
        let mut it = values.into_iter().skip(1);
        let name = |v: Option<Value>, what: &str, f: &str| match v {
            Some(Value::String(s)) => {
                s.to_str().map(|s| String::from(&*s)).map_err(|_| format!("{f}: {what} is not valid UTF-8"))
            }
            _ => Err(format!("{f}: {what} must be a string")),
        };
        let lua = &self.instance_ref().lua;
        let first = it.next();
        if first.as_ref() == Some(&env::invoke_marker()) {
            let action = name(it.next(), "the action name", "invoke")?;
            let args = match it.next().unwrap_or(Value::Nil) {
                Value::Nil => serde_json::Value::Object(Default::default()),
                v => json::from_lua(lua, &v).map_err(|e| format!("invoke: the arguments {e}"))?,
            };
            let args = match args {
                serde_json::Value::Array(a) if a.is_empty() => serde_json::Value::Object(Default::default()),
                v @ serde_json::Value::Object(_) => v,
                _ => return Err("invoke: the arguments must be a table with string keys".into()),
            };
            return Ok(Step::Invoke(InvokeCall { action, args }));
        }
        if first.as_ref() == Some(&env::publish_marker()) {
            let topic = name(it.next(), "the topic name", "publish")?;
            let payload = it.next().unwrap_or(Value::Nil);
            let payload = json::from_lua(lua, &payload).map_err(|e| format!("publish: the payload {e}"))?;
            let key = match it.next() {
                None | Some(Value::Nil) => None,
                v => Some(name(v, "the key", "publish")?),
            };
            return Ok(Step::Publish(PublishCall { topic, payload, key }));
        }
        if first.as_ref() == Some(&env::require_marker()) {
            return Ok(Step::Require(name(it.next(), "the library name", "require")?));
        }
        let plugin = name(first, "the plugin name", "call")?;
        let action = name(it.next(), "the plugin action", "call")?;
        let payload = it.next().unwrap_or(Value::Nil);
        let payload = json::from_lua(lua, &payload).map_err(|e| format!("call: the payload {e}"))?;
        Ok(Step::Call(PluginCall { plugin, action, payload }))
    }

    fn instance_ref(&self) -> &Instance {
        self.instance.as_ref().expect("instance present while running")
    }

    /// The thread for the current phase, with the hook installed.
    fn next_thread(&mut self) -> Result<Option<Thread>, InvokeError> {
        let instance = self.instance.as_mut().expect("instance present while running");
        let func = match self.phase {
            Phase::Init => instance.chunk.clone(),
            Phase::Main => instance.entry.clone(),
        };
        let Some(func) = func else { return Ok(None) };
        let thread = match instance.spare.take() {
            Some(t) => t.reset(func).map(|()| t),
            None => instance.lua.create_thread(func),
        }
        .map_err(|e| match e {
            mlua::Error::MemoryError(_) => InvokeError::Limit(LimitKind::Memory),
            e => InvokeError::Internal(format!("cannot create Lua thread: {e}")),
        })?;
        // SAFETY: `to_pointer` of a thread is its `lua_State`, alive while
        // `thread` is referenced.
        unsafe { hook::install(thread.to_pointer() as *mut mlua::ffi::lua_State) };
        self.thread = Some(thread.clone());
        Ok(Some(thread))
    }

    fn convert_result(&self, values: MultiValue) -> Result<serde_json::Value, InvokeError> {
        let lua = &self.instance_ref().lua;
        let first = values.front().cloned().unwrap_or(Value::Nil);
        if first.is_nil() {
            if let Some(msg) = values.get(1) {
                if !msg.is_nil() {
                    let message = match msg {
                        Value::String(s) => s.to_string_lossy(),
                        other => match json::from_lua(lua, other) {
                            Ok(j) => j.to_string(),
                            Err(_) => format!("({})", other.type_name()),
                        },
                    };
                    return Err(InvokeError::Action(message));
                }
            }
        }
        json::from_lua(lua, &first).map_err(result_error)
    }

    fn finish(&mut self, result: Result<serde_json::Value, InvokeError>) -> Outcome {
        self.finish_at(result, Instant::now())
    }

    /// [`finish`](Self::finish) with the clock read at the end by the caller.
    fn finish_at(&mut self, result: Result<serde_json::Value, InvokeError>, end: Instant) -> Outcome {
        self.thread = None;
        let (logs, instructions, peak) = match self.instance.as_ref() {
            Some(i) => {
                // Kept by the run, not the outcome (which is moved about
                // and mostly has none): see `take_verdicts`.
                let mut verdicts = i.ctl.verdicts.borrow_mut();
                if !verdicts.is_empty() {
                    self.verdicts = std::mem::take(&mut *verdicts);
                }
                (std::mem::take(&mut *i.ctl.logs.borrow_mut()), i.ctl.used.get(), i.meter.peak() as u64)
            }
            None => (String::new(), 0, 0),
        };
        Outcome { result, logs, instructions, peak_memory: peak, duration: end.saturating_duration_since(self.started) }
    }

    /// After `Done`, the instance whatever the outcome, to be dropped by
    /// the caller when it suits it: dropping a state that grew big (deep
    /// recursion leaves a million stack slots and call frames) takes
    /// milliseconds.
    pub fn discard(&mut self) -> Option<Instance> {
        self.thread = None;
        self.instance.take()
    }

    /// After `Done`, the instance if it may serve another invocation: one
    /// that returned a value or `nil, message` (an answer, not a fault).
    /// Instances whose invocation raised an error or hit a limit are
    /// discarded: their state may be half-changed.
    pub fn take_instance(&mut self, outcome: &Outcome) -> Option<Instance> {
        if !reusable(outcome) {
            return None;
        }
        let mut i = self.instance.take()?;
        i.collect_once();
        i.runs += 1;
        Some(i)
    }

    /// After `Done`, on the thread that ran the last step: drops the
    /// instance if [`take_instance`](Self::take_instance) would not give it,
    /// else makes the collection it would make, so that the work in
    /// proportion to the heap is done here.
    pub(crate) fn settle(&mut self, outcome: &Outcome) {
        if !reusable(outcome) {
            self.thread = None;
            self.instance = None;
        } else if let Some(i) = self.instance.as_mut() {
            i.collect_once();
        }
    }
}

/// Whether an invocation that ended with `outcome` leaves its instance fit
/// to serve another.
fn reusable(outcome: &Outcome) -> bool {
    !matches!(outcome.result, Err(ref e) if !matches!(e, InvokeError::Action(_)))
}

/// The error of a result that has no JSON form.
fn result_error(e: json::JsonError) -> InvokeError {
    InvokeError::Runtime(format!("the result {e}"))
}

/// What one resume of an invocation thread did.
enum Resumed {
    /// The function returned these values.
    Finished(MultiValue),
    /// The thread yielded these values (none when the hook paused it).
    Yielded(MultiValue),
    /// The thread raised this error object.
    Failed(Value),
    /// Lua ran out of memory outside the thread.
    OutOfMemory,
}

/// JSON pushed after the other arguments of a resume.
enum Tail<'a> {
    Value(&'a serde_json::Value),
    Doc(&'a Doc<'a>),
}

/// Resumes `thread` with `args`, then `tail` (if any) in its Lua form,
/// through the C API. With `scalar`, a thread that finishes with a first
/// result that is a boolean, number or string leaves it there and no
/// values in [`Resumed::Finished`].
///
/// mlua's `Thread::resume` cannot be used: after a yield from a count hook
/// the thread's stack holds the live frame of the interrupted function,
/// which mlua would take for yielded values and reset.
fn resume_raw(
    lua: &Lua,
    thread: &Thread,
    args: MultiValue,
    tail: Option<Tail>,
    scalar: Option<&mut Option<json::Scalar>>,
) -> mlua::Result<Resumed> {
    let t = thread.to_pointer() as *mut ffi::lua_State;
    // How many values were moved to `t` (none: no room for them).
    let mut nargs = None;
    // SAFETY: `t` is the live state of `thread`, a coroutine of `lua`'s
    // state, suspended (new or yielded) and not running. `exec_raw` calls
    // the closure in a protected call whose stack holds exactly the pushed
    // `args`; `json::push` adds one value there (raising a Lua error,
    // caught by that protected call, when out of memory); they are moved
    // to `t` if it has room, leaving nothing to collect. A hook-yielded
    // `t` keeps its stack untouched (it yielded no values).
    unsafe {
        lua.exec_raw::<()>(args, |state| {
            match tail {
                Some(Tail::Value(v)) => json::push(state, v),
                Some(Tail::Doc(d)) => json::push(state, d),
                None => {}
            }
            let n = ffi::lua_gettop(state);
            if ffi::lua_checkstack(t, n + 1) != 0 {
                ffi::lua_xmove(state, t, n);
                nargs = Some(n);
            } else {
                ffi::lua_settop(state, 0);
            }
        })?
    };
    let Some(nargs) = nargs else { return Ok(Resumed::OutOfMemory) };
    let mut nres: c_int = 0;
    // SAFETY: as above, with its arguments on top of its stack.
    // `lua_resume` runs it protected and returns a status; no Lua error
    // leaves it. `t` is alive (held by `thread`) while it is marked running.
    let status = unsafe {
        let _running = preempt::Running::enter(t);
        ffi::lua_resume(t, std::ptr::null_mut(), nargs, &mut nres)
    };
    resumed(lua, t, status, nres, scalar)
}

/// What a `lua_resume` of `t` that returned `status` and `nres` values did
/// (with `scalar`, as for [`resume_raw`]).
fn resumed(
    lua: &Lua,
    t: *mut ffi::lua_State,
    status: c_int,
    nres: c_int,
    scalar: Option<&mut Option<json::Scalar>>,
) -> mlua::Result<Resumed> {
    match status {
        ffi::LUA_OK => {
            if let (Some(out), true) = (scalar, nres > 0) {
                // SAFETY: the results are the top `nres` slots of `t`, which
                // is not running; reading raises no error, and they are
                // popped after.
                if let Some(v) = unsafe { json::Scalar::read(t, -nres) } {
                    *out = Some(v);
                    unsafe { ffi::lua_settop(t, -nres - 1) };
                    return Ok(Resumed::Finished(MultiValue::new()));
                }
            }
            Ok(collect(lua, t, nres)?.map_or(Resumed::OutOfMemory, Resumed::Finished))
        }
        ffi::LUA_YIELD => Ok(collect(lua, t, nres)?.map_or(Resumed::OutOfMemory, Resumed::Yielded)),
        ffi::LUA_ERRMEM => Ok(Resumed::OutOfMemory),
        _ => Ok(collect(lua, t, 1)?
            .map_or(Resumed::OutOfMemory, |mut v| Resumed::Failed(v.pop_front().unwrap_or(Value::Nil)))),
    }
}

/// The function an invocation's thread runs to call `main` (made once per
/// instance, when the chunk has defined `main`): a C closure over `main`
/// (see [`entry`]).
fn make_entry(lua: &Lua, main: Function) -> mlua::Result<Function> {
    // SAFETY: `exec_raw` runs the closure in a protected call whose stack
    // holds `main`; `lua_pushcclosure` pops it into the closure's upvalue
    // and pushes the closure, the one result (a memory error is caught).
    unsafe { lua.exec_raw(main, |state| ffi::lua_pushcclosure(state, entry, 1)) }
}

/// What an invocation's thread runs: `main` (upvalue 1) called with the
/// arguments the executor set for the resume that starts the thread,
/// built here, inside the thread and under its limits (`nil` if none).
///
/// # Safety
///
/// Called by Lua as a C function made by [`make_entry`]. The pending
/// arguments are set only for the duration of the resume that starts the
/// thread, and taken here, so the tree they point to is alive. `json::push`
/// raises Lua errors (memory, depth), which the resume catches; no frame
/// here owns anything to drop. The call is made with a continuation, so
/// `main` may yield.
unsafe extern "C-unwind" fn entry(state: *mut ffi::lua_State) -> c_int {
    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
    match hook::with_active(|c| c.pending_args.take()).flatten() {
        Some(tree) => tree.push(state),
        None => ffi::lua_pushnil(state),
    }
    ffi::lua_callk(state, 1, ffi::LUA_MULTRET, 0, Some(entry_done));
    entry_done(state, ffi::LUA_OK, 0)
}

/// The rest of [`entry`] once `main` returned: its results are the
/// thread's.
///
/// # Safety
///
/// Called by Lua as the continuation of [`entry`] (or by it).
unsafe extern "C-unwind" fn entry_done(state: *mut ffi::lua_State, _status: c_int, _ctx: ffi::lua_KContext) -> c_int {
    ffi::lua_gettop(state)
}

/// Starts `main` in `thread`, whose function is the instance's entry:
/// `tail` becomes its argument inside the thread ([`entry`] builds it
/// there, so a memory error is the thread's, caught by the resume),
/// with no protected call around the resume. With `scalar`, as for
/// [`resume_raw`].
fn resume_entry(
    lua: &Lua,
    thread: &Thread,
    ctl: &Control,
    tail: Tail,
    scalar: Option<&mut Option<json::Scalar>>,
) -> mlua::Result<Resumed> {
    let t = thread.to_pointer() as *mut ffi::lua_State;
    let tree = match tail {
        Tail::Value(v) => ErasedTree::new(v),
        Tail::Doc(d) => ErasedTree::new(d),
    };
    ctl.pending_args.set(Some(tree));
    let mut nres: c_int = 0;
    // SAFETY: `t` is the live state of `thread`, new (its function the
    // entry, nothing else on its stack), so it is resumed with no
    // arguments. `lua_resume` runs it protected and returns a status; no
    // Lua error leaves it. The tree `pending_args` points to outlives the
    // resume, and is taken off `ctl` right after it. `t` is alive (held by
    // `thread`) while it is marked running.
    let status = unsafe {
        let _running = preempt::Running::enter(t);
        ffi::lua_resume(t, std::ptr::null_mut(), 0, &mut nres)
    };
    ctl.pending_args.set(None);
    resumed(lua, t, status, nres, scalar)
}

/// Moves the top `n` values of the suspended or finished thread `t` into
/// mlua values (`None` if there is no room for them).
fn collect(lua: &Lua, t: *mut ffi::lua_State, n: c_int) -> mlua::Result<Option<MultiValue>> {
    if n == 0 {
        return Ok(Some(MultiValue::new()));
    }
    let mut moved = false;
    // SAFETY: `exec_raw` calls the closure in a protected call on the
    // main state; `t`, a thread of that state that is not running, has at
    // least `n` values on its stack, moved with room checked first.
    let values: MultiValue = unsafe {
        lua.exec_raw((), |state| {
            if ffi::lua_checkstack(state, n + 1) != 0 {
                ffi::lua_xmove(t, state, n);
                moved = true;
            }
        })?
    };
    Ok(moved.then_some(values))
}

/// The message of an error object raised by user code, without running
/// any of its metamethods (that would run user code outside the limits).
fn error_value_message(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string_lossy(),
        Value::Error(e) => error_message(e),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Nil => "nil".into(),
        other => format!("(error object is a {} value)", other.type_name()),
    }
}
