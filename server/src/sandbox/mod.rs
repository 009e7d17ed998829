//! The Lua sandbox: sandboxed states, limits, the JSON mapping, and the
//! warm instances that run actions.

mod alloc;
mod args;
mod away;
mod baselib;
mod compile;
mod coroutines;
mod decide;
mod dispatch;
mod env;
mod error;
mod hook;
mod instance;
pub mod json;
mod preempt;
mod region;
mod strings;
mod strlib;
mod tablelib;
mod verdicts;

pub use alloc::{set_thread_budget, thread_budget, thread_total, DEFAULT_MAX_STRING};
pub use args::{check_object, nested_too_deep, too_deep_message, Args, ArgsText, Doc};
pub use away::{Away, Remains};
pub use compile::{compile, compile_with, Compiled};
pub use error::error_message;
pub use hook::{armed_firings, LimitKind, Verdict, HOOK_INTERVAL, MAX_VERDICTS, STALL_LIMIT};
pub use instance::{Budget, Instance, InvokeCall, Outcome, PluginCall, PublishCall, Run, Step};
pub use preempt::TICK as PREEMPT_TICK;

/// Stack size of the threads that run Lua (workers and pool threads).
/// Lua bounds nesting of C calls (metamethods, library callbacks, `pcall`)
/// at 200 levels; with the Rust frames of the sandbox's own functions in
/// between, that needs more than the 2 MiB Rust gives new threads, most of
/// all in debug builds. Pages are only committed when used.
pub const LUA_THREAD_STACK: usize = 16 << 20;

/// Why an invocation (or a compile) did not produce a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// `main` returned `nil, message`.
    #[error("{0}")]
    Action(String),
    /// The code raised an error (or returned a value with no JSON form).
    #[error("{0}")]
    Runtime(String),
    /// A limit ended the invocation.
    #[error("{}", limit_message(*.0))]
    Limit(LimitKind),
    /// The source does not compile or does not define `main`.
    #[error("{0}")]
    Compile(String),
    /// The action is a library for `require` and cannot be invoked.
    #[error("{0}")]
    Library(String),
    /// A fault of the server, not of the action.
    #[error("{0}")]
    Internal(String),
    /// The result, as the answer it makes, is larger than the server sends
    /// (`Server.max_response`, in bytes).
    #[error("the answer is larger than this server sends (Server.max_response = {0} bytes)")]
    TooLarge(usize),
}

fn limit_message(kind: LimitKind) -> std::borrow::Cow<'static, str> {
    match kind {
        LimitKind::Memory => "memory limit exceeded".into(),
        LimitKind::Instructions => "instruction budget exhausted".into(),
        LimitKind::Timeout => "timeout: the invocation ran past its time limit".into(),
        LimitKind::StringLength(max) => format!(
            "memory limit exceeded: a string may hold at most {} on this server (Limits.max_string; see README, \
             Limits)",
            byte_size(max)
        )
        .into(),
        LimitKind::Stall => "timeout: the invocation ran too long where it cannot be paused (where Lua cannot \
                             yield: an xpcall message handler, a __close handler run by coroutine.close or on an \
                             error; see README, Limits)"
            .into(),
    }
}

/// `bytes` as people write it: "8 MiB", "640 KiB", or "1000 bytes".
fn byte_size(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

impl InvokeError {
    /// The error kind reported to clients (README, "HTTP API").
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Action(_) => "action",
            Self::Runtime(_) => "runtime",
            Self::Limit(k) => k.kind(),
            Self::Compile(_) => "compile",
            Self::Library(_) => "library",
            Self::Internal(_) => "internal",
            Self::TooLarge(_) => "too_large",
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_guards;
