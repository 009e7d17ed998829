//! `coroutine.resume` and `coroutine.close` that mark the coroutine they
//! run as the Lua thread running on this OS thread, so that the
//! preemption timer arms the hook of the coroutine, not of its resumer
//! (see `preempt.rs`).
//!
//! Both are C closures over Lua's own function (upvalue 1), which they
//! call for its error messages (a missing or wrong argument, closing a
//! running coroutine). Otherwise they do what Lua's do, with one
//! difference that the mark needs: the checks that `lua_resume` makes
//! (a dead, running or normal coroutine) are made before it is called,
//! because `lua_resume` raises its message on the coroutine, where no
//! handler waits, rather than returning it. Between marking and unmarking
//! only `lua_resume` (or `lua_closethread`) runs, which returns every
//! error of the code it runs as a status.

use std::ffi::c_int;

use mlua::{ffi, Function, Lua};

use super::preempt;

/// Replaces `coroutine.resume` and `coroutine.close` (before the prelude
/// wraps `resume`).
pub fn install(lua: &Lua) -> mlua::Result<()> {
    let co: mlua::Table = lua.globals().get("coroutine")?;
    for (name, f) in [("resume", resume as ffi::lua_CFunction), ("close", close)] {
        let original: Function = co.get(name)?;
        // SAFETY: `exec_raw` runs the closure on a stack holding exactly
        // the original function; `lua_pushcclosure` pops it as the upvalue
        // of the new closure and leaves that as the one result.
        let wrapped: Function = unsafe { lua.exec_raw(original, |state| ffi::lua_pushcclosure(state, f, 1)) }?;
        co.set(name, wrapped)?;
    }
    Ok(())
}

/// Lua's function, called on this call's stack (for its errors).
///
/// # Safety
///
/// Called from a closure made by [`install`].
unsafe fn original(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: upvalue 1 is Lua's C function, which uses no upvalues.
    unsafe {
        match ffi::lua_tocfunction(state, ffi::lua_upvalueindex(1)) {
            Some(f) => f(state),
            None => 0,
        }
    }
}

/// What `coroutine.status` would say of `co` as seen from `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Running,
    /// Suspended: yielded, or not started yet.
    Suspended,
    /// It resumed another coroutine.
    Normal,
    Dead,
}

/// # Safety
///
/// `state` and `co` are live threads of one Lua state.
unsafe fn status(state: *mut ffi::lua_State, co: *mut ffi::lua_State) -> Status {
    if state == co {
        return Status::Running;
    }
    // SAFETY: guaranteed by the caller; `lua_getstack` only reads.
    unsafe {
        match ffi::lua_status(co) {
            ffi::LUA_YIELD => Status::Suspended,
            ffi::LUA_OK => {
                let mut ar: ffi::lua_Debug = std::mem::zeroed();
                if ffi::lua_getstack(co, 0, &mut ar) > 0 {
                    Status::Normal
                } else if ffi::lua_gettop(co) == 0 {
                    Status::Dead
                } else {
                    Status::Suspended
                }
            }
            _ => Status::Dead,
        }
    }
}

/// Pushes `false, message` and returns their count.
///
/// # Safety
///
/// Called by Lua with a live stack that has room for two values.
unsafe fn fail(state: *mut ffi::lua_State, message: &str) -> c_int {
    // SAFETY: guaranteed by the caller.
    unsafe {
        ffi::lua_pushboolean(state, 0);
        ffi::lua_pushlstring(state, message.as_ptr().cast(), message.len());
    }
    2
}

/// `coroutine.resume(co, ...)`.
unsafe extern "C-unwind" fn resume(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as a closure made by `install`. The coroutine
    // is argument 1, so it stays alive (on this stack) while it is marked
    // running; nothing but `lua_resume`, which raises nothing, runs while
    // it is marked.
    unsafe {
        let co = ffi::lua_tothread(state, 1);
        if co.is_null() {
            return original(state);
        }
        match status(state, co) {
            Status::Suspended => {}
            Status::Dead => return fail(state, "cannot resume dead coroutine"),
            Status::Running | Status::Normal => return fail(state, "cannot resume non-suspended coroutine"),
        }
        let narg = ffi::lua_gettop(state) - 1;
        if ffi::lua_checkstack(co, narg) == 0 {
            return fail(state, "too many arguments to resume");
        }
        ffi::lua_xmove(state, co, narg);
        let mut nres: c_int = 0;
        let prev = preempt::enter(co);
        let status = ffi::lua_resume(co, state, narg, &mut nres);
        preempt::leave(prev);
        if status == ffi::LUA_OK || status == ffi::LUA_YIELD {
            if ffi::lua_checkstack(state, nres + 1) == 0 {
                ffi::lua_pop(co, nres);
                return fail(state, "too many results to resume");
            }
            ffi::lua_pushboolean(state, 1);
            ffi::lua_xmove(co, state, nres);
            nres + 1
        } else {
            ffi::lua_pushboolean(state, 0);
            ffi::lua_xmove(co, state, 1);
            2
        }
    }
}

/// `coroutine.close(co)`: runs the coroutine's pending `__close` handlers
/// with it marked running.
unsafe extern "C-unwind" fn close(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: as for `resume`; `lua_closethread` runs the handlers
    // protected and returns their error as a status.
    unsafe {
        let co = ffi::lua_tothread(state, 1);
        if co.is_null() || !matches!(status(state, co), Status::Suspended | Status::Dead) {
            return original(state); // its error: a running or normal coroutine
        }
        let prev = preempt::enter(co);
        let status = ffi::lua_closethread(co, state);
        preempt::leave(prev);
        if status == ffi::LUA_OK {
            ffi::lua_pushboolean(state, 1);
            1
        } else {
            ffi::lua_pushboolean(state, 0);
            ffi::lua_xmove(co, state, 1);
            2
        }
    }
}
