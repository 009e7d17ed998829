//! `tostring` and `ipairs` that run metamethods where the hook can pause
//! them.
//!
//! Lua's own `tostring` calls `__tostring`, and the iterator of `ipairs`
//! calls `__index`, with `lua_call` from C: code there cannot yield, so a
//! long `__tostring` (or one of `print` or `string.format('%s')`, which
//! use `tostring` here) could only be stopped by the stall bound, a bound
//! a valid program does not ask for. These do the same work, with Lua 5.4's
//! results and error messages, but call the metamethod with `lua_callk`
//! and a continuation, so the hook may pause it like any Lua code:
//!
//! - `tostring(v)`: `__tostring` (found raw, as Lua finds it) is called
//!   yieldably and its result checked as Lua checks it; without one,
//!   Lua's `luaL_tolstring` does the rest (it calls no Lua code: `__name`
//!   is read raw).
//! - `ipairs(t)`: the iterator reads `t[i]` raw when `t` is a table and
//!   the slot holds a value, as a non-table with Lua's `lua_geti` (no Lua
//!   code but the string library's `__index` table), and otherwise through
//!   a Lua helper, `function(t, i) return t[i] end` (the prelude hands it
//!   over with [`set_index_helper`]), called yieldably: `__index`
//!   functions and chains run as in Lua.

use std::ffi::{c_int, c_void};

use mlua::ffi;

/// Its address is the registry key of the prelude's `t[i]` helper.
static INDEX_HELPER: u8 = 0;

fn helper_key() -> *const c_void {
    std::ptr::from_ref(&INDEX_HELPER).cast()
}

/// `tostring(v)`.
///
/// # Safety
///
/// Called by Lua as a C function.
pub unsafe extern "C-unwind" fn tostring(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua with its arguments on the stack; the checks
    // raise Lua errors (no Rust value with a destructor is alive), and a C
    // call has room for the three values pushed.
    unsafe {
        ffi::luaL_checkany(state, 1);
        ffi::lua_settop(state, 1);
        if ffi::luaL_getmetafield(state, 1, c"__tostring".as_ptr()) != ffi::LUA_TNIL {
            ffi::lua_pushvalue(state, 1);
            ffi::lua_callk(state, 1, 1, 0, Some(tostring_done));
            return tostring_done(state, ffi::LUA_OK, 0);
        }
        ffi::luaL_tolstring(state, 1, std::ptr::null_mut());
        1
    }
}

/// The result of `__tostring`, checked as `luaL_tolstring` checks it.
unsafe extern "C-unwind" fn tostring_done(
    state: *mut ffi::lua_State,
    _status: c_int,
    _ctx: ffi::lua_KContext,
) -> c_int {
    // SAFETY: the result of the call is on top of the stack.
    unsafe {
        if ffi::lua_isstring(state, -1) == 0 {
            return ffi::luaL_error(state, c"'__tostring' must return a string".as_ptr());
        }
        ffi::lua_tolstring(state, -1, std::ptr::null_mut());
        1
    }
}

/// `set_index_helper(f)` for the prelude: `f(t, i)` returns `t[i]`.
///
/// # Safety
///
/// Called by Lua as a C function.
pub unsafe extern "C-unwind" fn set_index_helper(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua with its argument on the stack.
    unsafe {
        ffi::luaL_checktype(state, 1, ffi::LUA_TFUNCTION);
        ffi::lua_settop(state, 1);
        ffi::lua_rawsetp(state, ffi::LUA_REGISTRYINDEX, helper_key());
        0
    }
}

/// `ipairs(t)`: the iterator, `t` and 0.
///
/// # Safety
///
/// Called by Lua as a C function.
pub unsafe extern "C-unwind" fn ipairs(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua with its argument on the stack; a C call has
    // room for the three values pushed.
    unsafe {
        ffi::luaL_checkany(state, 1);
        ffi::lua_pushcfunction(state, ipairs_next);
        ffi::lua_pushvalue(state, 1);
        ffi::lua_pushinteger(state, 0);
        3
    }
}

/// The iterator: `i + 1, t[i + 1]`, or nil when that is nil.
unsafe extern "C-unwind" fn ipairs_next(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua with (t, i) on the stack; the checks raise Lua
    // errors, and a C call has room for the four values pushed. The helper
    // was stored by the prelude before user code ran.
    unsafe {
        let i = ffi::luaL_checkinteger(state, 2).wrapping_add(1);
        ffi::lua_settop(state, 2);
        ffi::lua_pushinteger(state, i);
        if ffi::lua_type(state, 1) != ffi::LUA_TTABLE {
            return if ffi::lua_geti(state, 1, i) == ffi::LUA_TNIL { 1 } else { 2 };
        }
        if ffi::lua_rawgeti(state, 1, i) != ffi::LUA_TNIL {
            return 2;
        }
        ffi::lua_pop(state, 1);
        if ffi::luaL_getmetafield(state, 1, c"__index".as_ptr()) == ffi::LUA_TNIL {
            ffi::lua_pushnil(state);
            return 1;
        }
        ffi::lua_pop(state, 1);
        ffi::lua_rawgetp(state, ffi::LUA_REGISTRYINDEX, helper_key());
        ffi::lua_pushvalue(state, 1);
        ffi::lua_pushinteger(state, i);
        ffi::lua_callk(state, 2, 1, 0, Some(ipairs_read));
        ipairs_read(state, ffi::LUA_OK, 0)
    }
}

/// After the helper read `t[i]`: the stack is (t, i - 1, i, value).
unsafe extern "C-unwind" fn ipairs_read(state: *mut ffi::lua_State, _status: c_int, _ctx: ffi::lua_KContext) -> c_int {
    // SAFETY: the helper's one result is on top of the stack.
    unsafe {
        if ffi::lua_type(state, -1) == ffi::LUA_TNIL {
            1
        } else {
            2
        }
    }
}
