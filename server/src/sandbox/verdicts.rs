//! `ack(message)` and `retry(message [, {delay = seconds}])`: what a
//! subscription's action says of the messages of its batch, handed to the
//! executor with the run (`Run::take_verdicts`).
//!
//! Both are light C functions (no upvalues): a state pays a slot in its
//! globals for each, not a closure, its prototype and its message strings,
//! as Lua functions in the prelude would (a warm instance's heap is what
//! bounds how many a server keeps). The messages are read raw, so no
//! metamethod of the action runs here.

use std::ffi::{c_int, CStr};

use mlua::ffi;

use super::hook::{with_active, Verdict, MAX_VERDICTS};

/// The longest delay `retry` takes: a year, in seconds.
const MAX_DELAY_SECS: f64 = 31_536_000.0;

/// `ack(message)`: the message is done, however the run ends.
///
/// # Safety
///
/// Called by Lua as a C function. Errors are raised with `luaL_error`,
/// which does not return; no value with a destructor is alive then.
pub unsafe extern "C-unwind" fn ack(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua with its arguments on the stack (see above).
    unsafe {
        let Some((partition, offset)) = target(state) else {
            return ffi::luaL_error(
                state,
                c"bad argument #1 to 'ack' (a message of the batch: a table with integer partition and offset)"
                    .as_ptr(),
            );
        };
        record(state, Verdict { partition, offset, retry: None })
    }
}

/// `retry(message [, {delay = seconds}])`: deliver the message again, after
/// `delay` or the subscription's backoff, however the run ends.
///
/// # Safety
///
/// As for [`ack`].
pub unsafe extern "C-unwind" fn retry(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua with its arguments on the stack (see `ack`); a
    // C call has room for the values pushed.
    unsafe {
        let Some((partition, offset)) = target(state) else {
            return ffi::luaL_error(
                state,
                c"bad argument #1 to 'retry' (a message of the batch: a table with integer partition and offset)"
                    .as_ptr(),
            );
        };
        let delay = match ffi::lua_type(state, 2) {
            ffi::LUA_TNONE | ffi::LUA_TNIL => None,
            ffi::LUA_TTABLE => {
                ffi::lua_pushstring(state, c"delay".as_ptr());
                let t = ffi::lua_rawget(state, 2);
                let d = ffi::lua_tonumberx(state, -1, std::ptr::null_mut());
                ffi::lua_settop(state, 2);
                match t {
                    ffi::LUA_TNIL => None,
                    ffi::LUA_TNUMBER if (0.0..=MAX_DELAY_SECS).contains(&d) => Some((d * 1000.0).round() as u64),
                    _ => {
                        return ffi::luaL_error(
                            state,
                            c"bad argument #2 to 'retry' (delay must be a number of seconds from 0 to 31536000)"
                                .as_ptr(),
                        )
                    }
                }
            }
            _ => return ffi::luaL_error(state, c"bad argument #2 to 'retry' (table expected)".as_ptr()),
        };
        record(state, Verdict { partition, offset, retry: Some(delay) })
    }
}

/// The partition and offset of the message at index 1, read raw.
///
/// # Safety
///
/// `state` is a Lua state in a C call, with room for two values.
unsafe fn target(state: *mut ffi::lua_State) -> Option<(u32, i64)> {
    // SAFETY: as the caller promises; what is pushed is popped.
    unsafe {
        if ffi::lua_type(state, 1) != ffi::LUA_TTABLE {
            return None;
        }
        let field = |name: &CStr| {
            ffi::lua_pushstring(state, name.as_ptr());
            ffi::lua_rawget(state, 1);
            let mut is_int = 0;
            let v = ffi::lua_tointegerx(state, -1, &mut is_int);
            let int = ffi::lua_isinteger(state, -1) != 0;
            ffi::lua_pop(state, 1);
            (is_int != 0 && int).then_some(v)
        };
        let partition = u32::try_from(field(c"partition")?).ok()?;
        Some((partition, field(c"offset")?))
    }
}

/// Adds `verdict` to the running invocation's, or raises past
/// [`MAX_VERDICTS`].
///
/// # Safety
///
/// `state` is a Lua state in a C call.
unsafe fn record(state: *mut ffi::lua_State, verdict: Verdict) -> c_int {
    let full = with_active(|c| {
        let mut v = c.verdicts.borrow_mut();
        if v.len() >= MAX_VERDICTS {
            return true;
        }
        v.push(verdict);
        false
    });
    if full == Some(true) {
        // SAFETY: the borrow above has ended; nothing with a destructor is
        // alive.
        return unsafe {
            ffi::luaL_error(state, c"more than 10000 ack() and retry() calls in one invocation".as_ptr())
        };
    }
    0
}
