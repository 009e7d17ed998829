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
//! guard (`tablelib.rs`, `strlib.rs`); what they read is in `decide.rs`.
//!
//! # The dispatchers
//!
//! [`GUARDS`] lists the guarded functions. The dispatcher of guard `I` is
//! `dispatch::<I>`, a plain C function: it has no upvalues, so a state
//! spends no memory on it (every state has 19 of them). What it needs is
//! static: its decider and the name of its Lua version come from
//! `GUARDS[I]`, and Lua's C function from [`C_FNS`]`[I]`, recorded when the
//! prelude installs the guard (Lua's library functions are the same code in
//! every state of the process). It calls the C function directly with its
//! own stack (the C functions have no upvalues, and their error messages
//! then name the function as the caller called it), or calls the Lua
//! version with `lua_callk`, so that it may yield.
//!
//! The Lua versions live in a chunk of their own (`prelude_long.lua`) that
//! a state loads the first time one is needed: the dispatcher asks the
//! prelude's loader for the version by name. The loader is kept in the
//! registry under the address of [`LOADER_KEY`].

use std::ffi::{c_int, c_void, CStr};
use std::sync::atomic::{AtomicUsize, Ordering};

use mlua::ffi;

use super::decide::{Decide, Route};
use super::{strlib, tablelib};

/// One guarded library function.
pub struct Guard {
    /// Its name in the library (`"string.rep"`).
    pub name: &'static str,
    /// The name of its Lua version in `prelude_long.lua`.
    pub long: &'static CStr,
    /// Where a call goes.
    pub decide: Decide,
}

const fn guard(name: &'static str, long: &'static CStr, decide: Decide) -> Guard {
    Guard { name, long, decide }
}

/// The guarded functions; the order is that of [`DISPATCHERS`].
pub const GUARDS: [Guard; 19] = [
    guard("string.unpack", c"unpack_long", strlib::long_format),
    guard("string.byte", c"byte_long", strlib::byte),
    guard("utf8.codepoint", c"codepoint_long", strlib::codepoint),
    guard("string.packsize", c"packsize_long", strlib::long_format),
    guard("utf8.char", c"utf8_char_long", strlib::many_args),
    guard("string.rep", c"rep_long", strlib::rep),
    guard("string.upper", c"upper_long", strlib::bytewise),
    guard("string.lower", c"lower_long", strlib::bytewise),
    guard("string.reverse", c"reverse_long", strlib::bytewise),
    guard("string.format", c"format_long", strlib::format),
    guard("string.pack", c"pack_long", strlib::pack),
    guard("os.date", c"date_long", strlib::long_format),
    guard("utf8.len", c"utf8_len_long", strlib::bytewise),
    guard("table.sort", c"lua_sort", tablelib::sort),
    guard("table.concat", c"lua_concat", tablelib::concat),
    guard("table.insert", c"lua_insert", tablelib::insert),
    guard("table.remove", c"lua_remove", tablelib::remove),
    guard("table.move", c"lua_move", tablelib::move_),
    guard("table.unpack", c"lua_unpack", tablelib::unpack),
];

/// The dispatcher of each guard, by index.
const DISPATCHERS: [ffi::lua_CFunction; 19] = [
    dispatch::<0>,
    dispatch::<1>,
    dispatch::<2>,
    dispatch::<3>,
    dispatch::<4>,
    dispatch::<5>,
    dispatch::<6>,
    dispatch::<7>,
    dispatch::<8>,
    dispatch::<9>,
    dispatch::<10>,
    dispatch::<11>,
    dispatch::<12>,
    dispatch::<13>,
    dispatch::<14>,
    dispatch::<15>,
    dispatch::<16>,
    dispatch::<17>,
    dispatch::<18>,
];

/// Lua's C function of each guard (a `lua_CFunction` as an address), 0
/// until a prelude installed it.
static C_FNS: [AtomicUsize; 19] = [const { AtomicUsize::new(0) }; 19];

/// Stack slots a call of a Lua version needs beyond its arguments (its
/// frame, and the loader's).
const LUA_VERSION_ROOM: c_int = 256;

/// Its address is the registry key of the prelude's loader of Lua
/// versions.
static LOADER_KEY: u8 = 0;

/// `guarded(name, c_fn, loader)` for the prelude: the dispatcher of the
/// guarded function `name` (one of [`GUARDS`]), whose C function is `c_fn`;
/// `loader(long_name)` returns a Lua version.
///
/// # Safety
///
/// Called by Lua as a C function.
pub unsafe extern "C-unwind" fn guarded(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua with its arguments on the stack; the checks
    // raise Lua errors, and no Rust value with a destructor is alive.
    unsafe {
        let mut len = 0usize;
        let name = ffi::luaL_checklstring(state, 1, &mut len);
        let name = std::slice::from_raw_parts(name.cast::<u8>(), len);
        let Some(i) = GUARDS.iter().position(|g| g.name.as_bytes() == name) else {
            return ffi::luaL_error(state, c"guarded: no guard for this function".as_ptr());
        };
        let Some(c_fn) = ffi::lua_tocfunction(state, 2) else {
            return ffi::luaL_error(state, c"guarded: not a C function".as_ptr());
        };
        ffi::luaL_checktype(state, 3, ffi::LUA_TFUNCTION);
        C_FNS[i].store(c_fn as usize, Ordering::Relaxed);
        ffi::lua_pushvalue(state, 3);
        ffi::lua_rawsetp(state, ffi::LUA_REGISTRYINDEX, std::ptr::from_ref(&LOADER_KEY).cast::<c_void>());
        ffi::lua_pushcfunction(state, DISPATCHERS[i]);
        1
    }
}

unsafe extern "C-unwind" fn dispatch<const I: usize>(state: *mut ffi::lua_State) -> c_int {
    let guard = &GUARDS[I];
    // SAFETY: called by Lua as a C function. A recorded C function is
    // Lua's own library function (see `guarded`); calling it directly runs
    // it on this call's stack, as if Lua had called it, and it uses no
    // upvalues. The loader was stored by `guarded` before this dispatcher
    // existed.
    unsafe {
        let route = (guard.decide)(state);
        let c_fn = C_FNS[I].load(Ordering::Relaxed);
        if route == Route::C && c_fn != 0 {
            let c_fn = std::mem::transmute::<usize, ffi::lua_CFunction>(c_fn);
            return c_fn(state);
        }
        let mut nargs = ffi::lua_gettop(state);
        if route == Route::LuaPacked {
            pack_args(state, nargs);
            nargs = 1;
        } else if c_fn != 0 && ffi::lua_checkstack(state, nargs.saturating_add(LUA_VERSION_ROOM)) == 0 {
            // So many arguments that a Lua function could not copy them
            // (as `...`): Lua's C function takes them, bounded by the stack
            // as calls of a million values are (SECURITY.md).
            let c_fn = std::mem::transmute::<usize, ffi::lua_CFunction>(c_fn);
            return c_fn(state);
        }
        ffi::lua_rawgetp(state, ffi::LUA_REGISTRYINDEX, std::ptr::from_ref(&LOADER_KEY).cast::<c_void>());
        ffi::lua_pushstring(state, guard.long.as_ptr());
        ffi::lua_call(state, 1, 1);
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

/// Replaces the `nargs` values on the stack by one table holding them,
/// with their count as `n`.
///
/// # Safety
///
/// `state` must be the stack of a C call with `nargs` values on it.
unsafe fn pack_args(state: *mut ffi::lua_State, nargs: c_int) {
    // SAFETY: guaranteed by the caller; a C call has room for two more
    // values, and each `lua_rawseti` pops the value it stores.
    unsafe {
        ffi::lua_createtable(state, nargs, 1);
        ffi::lua_insert(state, 1);
        for i in (1..=nargs).rev() {
            ffi::lua_rawseti(state, 1, ffi::lua_Integer::from(i));
        }
        ffi::lua_pushinteger(state, ffi::lua_Integer::from(nargs));
        ffi::lua_setfield(state, 1, c"n".as_ptr());
    }
}

/// The continuation after the Lua version yielded: return what it did.
unsafe extern "C-unwind" fn all_results(state: *mut ffi::lua_State, _status: c_int, _ctx: ffi::lua_KContext) -> c_int {
    // SAFETY: Lua calls the continuation with the results on the stack.
    unsafe { ffi::lua_gettop(state) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_guard_has_its_own_dispatcher_and_name() {
        for (i, g) in GUARDS.iter().enumerate() {
            assert_eq!(GUARDS.iter().filter(|h| h.name == g.name).count(), 1, "{}", g.name);
            assert_eq!(DISPATCHERS.iter().filter(|d| **d as usize == DISPATCHERS[i] as usize).count(), 1);
        }
    }
}
