//! Library functions that run Lua's C code where its work is small and a
//! Lua version (written in the prelude) where it is not.
//!
//! Lua's library loops in C, where the instruction hook never fires and
//! nothing can pause it. Where the arguments show that the C function's
//! work is small (a few thousand table slots, a few hundred KiB of string),
//! it runs unchanged and at full speed. Otherwise the call goes to a Lua
//! version that does the same work in bounded pieces (often by calling the
//! C function on each piece), with VM instructions in between where the
//! hook can pause or stop it. The deciders live next to the functions they
//! guard (`tablelib.rs`, `strlib.rs`); the thresholds they use are
//! [`C_LOOP_MAX`] and [`PIECE`].
//!
//! A dispatcher is a C closure with four upvalues: the C function, the
//! Lua version, the decider (a light userdata holding a [`Decide`]) and the
//! prelude's loader of Lua versions. It calls the C function directly with
//! its own stack (the C functions have no upvalues, and their error
//! messages then name the function as the caller called it), or calls the
//! Lua version with `lua_callk`, so that it may yield. The Lua versions
//! live in a chunk of their own (`prelude_long.lua`) that a state loads
//! the first time one is needed: until then the second upvalue is the
//! version's name, which the loader turns into the function.

use std::ffi::{c_int, CStr};

use mlua::{ffi, Function, Lua};

/// Items up to which a loop over table slots runs in Lua's C code.
pub const C_LOOP_MAX: i64 = 4096;

/// Bytes of string that one C call may work through byte by byte; longer
/// strings are handled in pieces of this size.
pub const PIECE: usize = 256 * 1024;

/// Where a call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Lua's C function.
    C,
    /// The Lua version, called with the caller's arguments.
    Lua,
    /// The Lua version, called with a first argument saying whether the
    /// table argument(s) are plain (see [`unguarded`]).
    LuaPlain(bool),
}

/// Decides where a call goes, looking at its arguments on `state`'s stack.
/// It must raise no error and leave the stack as it found it.
pub type Decide = unsafe fn(*mut ffi::lua_State) -> Route;

/// A function that runs `c_fn` or the Lua version named `lua_name` (which
/// `loader(lua_name)` returns) as `decide` says (see the module docs).
pub fn dispatcher(
    lua: &Lua,
    decide: Decide,
    c_fn: Function,
    lua_name: mlua::String,
    loader: Function,
) -> mlua::Result<Function> {
    // SAFETY: `exec_raw` runs the closure on a stack holding exactly the
    // three values passed; the decider is pushed as a light userdata (a
    // function pointer, never dereferenced as data) before the loader, and
    // `lua_pushcclosure` pops the four as the upvalues of the new closure
    // (in the order of the module docs) and leaves it as the one result.
    unsafe {
        lua.exec_raw((c_fn, lua_name, loader), |state| {
            ffi::lua_pushlightuserdata(state, decide as *mut std::ffi::c_void);
            ffi::lua_insert(state, -2);
            ffi::lua_pushcclosure(state, dispatch, 4)
        })
    }
}

unsafe extern "C-unwind" fn dispatch(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: the closure's upvalues are the C function, the Lua version
    // and a `Decide` (see `dispatcher`). Calling the C function directly
    // runs it on this call's stack, as if Lua had called it; it uses no
    // upvalues.
    unsafe {
        let decide: Decide =
            std::mem::transmute::<*mut std::ffi::c_void, Decide>(ffi::lua_touserdata(state, ffi::lua_upvalueindex(3)));
        let route = decide(state);
        if route == Route::C {
            if let Some(c_fn) = ffi::lua_tocfunction(state, ffi::lua_upvalueindex(1)) {
                return c_fn(state);
            }
        }
        let nargs = ffi::lua_gettop(state);
        ffi::luaL_checkstack(state, 2, std::ptr::null());
        if ffi::lua_type(state, ffi::lua_upvalueindex(2)) == ffi::LUA_TSTRING {
            // The first call to the Lua version in this state: load it.
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(4));
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(2));
            ffi::lua_call(state, 1, 1);
            ffi::lua_replace(state, ffi::lua_upvalueindex(2));
        }
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(2));
        ffi::lua_insert(state, 1);
        let mut n = nargs;
        if let Route::LuaPlain(plain) = route {
            ffi::lua_pushboolean(state, c_int::from(plain));
            ffi::lua_insert(state, 2);
            n += 1;
        }
        ffi::lua_callk(state, n, ffi::LUA_MULTRET, 0, Some(all_results));
        ffi::lua_gettop(state)
    }
}

/// The continuation after the Lua version yielded: return what it did.
unsafe extern "C-unwind" fn all_results(state: *mut ffi::lua_State, _status: c_int, _ctx: ffi::lua_KContext) -> c_int {
    // SAFETY: Lua calls the continuation with the results on the stack.
    unsafe { ffi::lua_gettop(state) }
}

/// Whether the value at `idx` is a table on which none of `events` (such
/// as `c"__index"`) is a metamethod: then Lua's C functions read and write
/// it raw, and their work is bounded by what it holds and the range asked
/// for. A non-table is not unguarded.
///
/// # Safety
///
/// `state` must be a live Lua state with a value at `idx` (an absolute
/// index) and room for one more value.
pub unsafe fn unguarded(state: *mut ffi::lua_State, idx: c_int, events: &[&CStr]) -> bool {
    // SAFETY: guaranteed by the caller. `luaL_getmetafield` reads the
    // metatable raw and pushes the field only when it is there (the event
    // names are Lua's own, interned when the state was made: pushing one
    // allocates nothing).
    unsafe {
        if ffi::lua_type(state, idx) != ffi::LUA_TTABLE {
            return false;
        }
        for e in events {
            if ffi::luaL_getmetafield(state, idx, e.as_ptr()) != ffi::LUA_TNIL {
                ffi::lua_pop(state, 1);
                return false;
            }
        }
        true
    }
}

/// The integer argument at `idx` as `luaL_checkinteger` reads it (a
/// number or a string with an integral value), `default` when it is absent
/// or nil, and `None` when it is something else (the C function then
/// raises its error).
///
/// # Safety
///
/// `state` must be a live Lua state.
pub unsafe fn int_arg(state: *mut ffi::lua_State, idx: c_int, default: i64) -> Option<i64> {
    // SAFETY: guaranteed by the caller; indexes past the top read as none.
    unsafe {
        if ffi::lua_isnoneornil(state, idx) != 0 {
            return Some(default);
        }
        let mut ok = 0;
        let n = ffi::lua_tointegerx(state, idx, &mut ok);
        (ok != 0).then_some(n)
    }
}

/// The length in bytes of the string, or of the text of the number, at
/// `idx` (as `lua_tolstring` would make it), `None` for other values.
///
/// # Safety
///
/// `state` must be a live Lua state.
pub unsafe fn text_len(state: *mut ffi::lua_State, idx: c_int) -> Option<usize> {
    // SAFETY: guaranteed by the caller; these only read the value.
    unsafe {
        match ffi::lua_type(state, idx) {
            ffi::LUA_TSTRING => Some(ffi::lua_rawlen(state, idx)),
            ffi::LUA_TNUMBER if ffi::lua_isinteger(state, idx) != 0 => {
                Some(integer_text_len(ffi::lua_tointegerx(state, idx, std::ptr::null_mut())))
            }
            ffi::LUA_TNUMBER => Some(float_text_len(ffi::lua_tonumberx(state, idx, std::ptr::null_mut()))),
            _ => None,
        }
    }
}

/// The length of an integer's text (`LUA_INTEGER_FMT`, "%lld").
fn integer_text_len(i: i64) -> usize {
    let digits = i.unsigned_abs().checked_ilog10().map_or(1, |d| d as usize + 1);
    digits + usize::from(i < 0)
}

/// The length of a float's text: `LUAI_NUMFFORMAT` ("%.14g"), and ".0"
/// when that looks like an integer.
fn float_text_len(x: f64) -> usize {
    let mut buf = [0u8; 64];
    // SAFETY: a buffer of 64 bytes, its size given; "%.14g" of a double
    // writes at most 24 of them.
    let n = unsafe { libc::snprintf(buf.as_mut_ptr().cast(), buf.len(), c"%.14g".as_ptr(), x) };
    let n = usize::try_from(n).unwrap_or(0).min(buf.len() - 1);
    let looks_int = buf[..n].iter().all(|b| b.is_ascii_digit() || *b == b'-');
    n + if looks_int { 2 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_texts_have_lua_lengths() {
        for (i, want) in [
            (0i64, "0"),
            (7, "7"),
            (-7, "-7"),
            (10, "10"),
            (i64::MAX, "9223372036854775807"),
            (i64::MIN, "-9223372036854775808"),
        ] {
            assert_eq!(integer_text_len(i), want.len(), "{i}");
        }
        for (x, want) in [
            (1.0, "1.0"),
            (-2.5, "-2.5"),
            (1e100, "1e+100"),
            (0.1, "0.1"),
            (f64::INFINITY, "inf"),
            (-f64::INFINITY, "-inf"),
            (1.0 / 3.0, "0.33333333333333"),
        ] {
            assert_eq!(float_text_len(x), want.len(), "{x}");
        }
    }
}
