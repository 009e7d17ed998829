//! Where `table.insert`, `remove`, `concat`, `sort`, `move` and `unpack`
//! run: Lua's C code when its loop is short, their Lua versions (in the
//! prelude) otherwise (see `dispatch.rs`).
//!
//! Lua's table functions loop in C, where the instruction hook never
//! fires, from or up to the table's length. A loop that reads and writes
//! absent slots allocates nothing and runs no VM instruction, so no limit
//! stops it, and the length says nothing of what a table holds: `__len`
//! may return anything, and even a plain table built with the keys 1, 2,
//! 4, ..., 2^62 has the length 2^62 (its border is found by a doubling
//! search in the hash part). So the C function runs only when its loop is
//! at most [`C_LOOP_MAX`] slots long (and, for `concat` and `sort`, when
//! the strings it would copy or compare are small too), on a table without
//! the metamethods the loop would call. Everything else goes to the Lua
//! version:
//! - on a table with those metamethods, it works element by element, so
//!   every `__index`, `__newindex` or `__len` runs as Lua code under the
//!   hook, and every access is a VM instruction (an `__index` chain of
//!   tables, up to Lua's 2,000 links, is one instruction);
//! - on a plain table, it calls the C function on pieces of at most
//!   [`C_LOOP_MAX`] slots, with VM instructions in between.
//!
//! `table.unpack` runs in C unless `__index` or `__len` would run, or it
//! would return more than [`VALUES_MAX`] values: then its Lua version
//! raises C's "too many results to unpack". `table.pack` needs no guard:
//! its values are on the stack already, at most about [`VALUES_MAX`]
//! (see `decide.rs`).

use std::ffi::{c_int, CStr};

use mlua::ffi;

use super::alloc::max_string_of;
use super::decide::{int_arg, text_len, unguarded, Route, C_LOOP_MAX, VALUES_MAX};

/// Items up to which a plain table is sorted in C (without a comparator).
pub const C_SORT_MAX: usize = 4096;

/// Bytes that a sort in C may compare in all (items × comparisons each ×
/// longest string): long strings make each comparison a long `memcmp`.
pub const C_SORT_BYTES: usize = 4 << 20;

const LEN: &CStr = c"__len";
const INDEX: &CStr = c"__index";
const NEWINDEX: &CStr = c"__newindex";
const EQ: &CStr = c"__eq";

/// Whether `f..=e` spans at most `max` items (an empty range does).
fn short_range(f: i64, e: i64, max: i64) -> bool {
    e < f || e.checked_sub(f).is_some_and(|n| n < max)
}

/// The Lua version of a call on a table with metamethods, or C when the
/// argument is not a table at all (C raises the error).
///
/// # Safety
///
/// `state` must be the stack of a call of a dispatcher.
unsafe fn guarded_or_c(state: *mut ffi::lua_State) -> Route {
    // SAFETY: guaranteed by the caller.
    if unsafe { ffi::lua_type(state, 1) } != ffi::LUA_TTABLE {
        return Route::C;
    }
    Route::LuaPlain(false)
}

/// `table.insert(t, [pos,] v)`: C for an append (one `#`, a binary
/// search) or a short shift.
pub(super) unsafe fn insert(state: *mut ffi::lua_State) -> Route {
    // SAFETY: called by `dispatch` with the call's stack.
    unsafe {
        if ffi::lua_type(state, 1) != ffi::LUA_TTABLE {
            return Route::C;
        }
        if !unguarded(state, 1, &[LEN, INDEX, NEWINDEX]) {
            return Route::LuaPlain(false);
        }
        if ffi::lua_gettop(state) != 3 {
            return Route::C; // an append, or C's error
        }
        let e = (ffi::lua_rawlen(state, 1) as i64).wrapping_add(1);
        match int_arg(state, 2, 0) {
            Some(pos) if (1..=e).contains(&pos) && !short_range(pos + 1, e, C_LOOP_MAX) => Route::LuaPlain(true),
            _ => Route::C,
        }
    }
}

/// `table.remove(t [, pos])`: C for a short shift.
pub(super) unsafe fn remove(state: *mut ffi::lua_State) -> Route {
    // SAFETY: called by `dispatch` with the call's stack.
    unsafe {
        if !unguarded(state, 1, &[LEN, INDEX, NEWINDEX]) {
            return guarded_or_c(state);
        }
        let size = ffi::lua_rawlen(state, 1) as i64;
        match int_arg(state, 2, size) {
            Some(pos) if (1..size).contains(&pos) && !short_range(pos + 1, size, C_LOOP_MAX) => Route::LuaPlain(true),
            _ => Route::C,
        }
    }
}

/// `table.concat(t, sep, i, j)`: C for a short range whose result is
/// short too.
pub(super) unsafe fn concat(state: *mut ffi::lua_State) -> Route {
    // SAFETY: called by `dispatch` with the call's stack.
    unsafe {
        if !unguarded(state, 1, &[LEN, INDEX]) {
            return guarded_or_c(state);
        }
        let sep = match ffi::lua_type(state, 2) {
            ffi::LUA_TNONE | ffi::LUA_TNIL => 0,
            _ => match text_len(state, 2) {
                Some(n) => n,
                None => return Route::C, // its error
            },
        };
        let (Some(i), Some(j)) = (int_arg(state, 3, 1), int_arg(state, 4, ffi::lua_rawlen(state, 1) as i64)) else {
            return Route::C;
        };
        if !short_range(i, j, C_LOOP_MAX) {
            return Route::LuaPlain(true);
        }
        match span_len(state, 1, sep, i, j) {
            Some(n) if n > max_string_of(state) => Route::LuaPlain(true),
            _ => Route::C,
        }
    }
}

/// The length of `table.concat(t, sep, i, j)` of the plain table at `idx`
/// (`j - i` below [`C_LOOP_MAX`]), or `None` if an item is not a string or
/// a number (numbers count as their longest text).
///
/// # Safety
///
/// `state` must be a live Lua state with room for one more value; the
/// table at `idx` (absolute) is read raw.
pub unsafe fn span_len(state: *mut ffi::lua_State, idx: c_int, sep: usize, i: i64, j: i64) -> Option<usize> {
    let mut total = 0usize;
    let mut k = i;
    while k <= j {
        // SAFETY: guaranteed by the caller; the item is popped at once.
        let len = unsafe {
            ffi::lua_rawgeti(state, idx, k);
            let len = text_len(state, -1);
            ffi::lua_pop(state, 1);
            len
        }?;
        total = total.saturating_add(len);
        if k > i {
            total = total.saturating_add(sep);
        }
        if k == j {
            break;
        }
        k += 1;
    }
    Some(total)
}

/// `table.sort(t [, comp])`: C for a short plain table of short strings
/// (or numbers) without a comparator; items that are tables or userdata
/// (whose `__lt` is Lua code) go to the Lua version.
pub(super) unsafe fn sort(state: *mut ffi::lua_State) -> Route {
    // SAFETY: called by `dispatch` with the call's stack.
    unsafe {
        let plain = unguarded(state, 1, &[LEN, INDEX, NEWINDEX]);
        if ffi::lua_type(state, 1) != ffi::LUA_TTABLE {
            return Route::C;
        }
        match ffi::lua_type(state, 2) {
            ffi::LUA_TNONE | ffi::LUA_TNIL => {}
            ffi::LUA_TFUNCTION => return Route::LuaPlain(plain),
            _ => return Route::C, // C's "function expected" error
        }
        let n = ffi::lua_rawlen(state, 1);
        if !plain || n > C_SORT_MAX {
            return Route::LuaPlain(plain);
        }
        let mut longest = 0usize;
        for k in 1..=n {
            let t = ffi::lua_rawgeti(state, 1, k as i64);
            if t == ffi::LUA_TSTRING {
                longest = longest.max(ffi::lua_rawlen(state, -1));
            }
            ffi::lua_pop(state, 1);
            if t == ffi::LUA_TTABLE || t == ffi::LUA_TUSERDATA {
                // Their `__lt` would run from C, where it cannot yield.
                return Route::LuaPlain(true);
            }
        }
        if sort_compares(n).saturating_mul(longest) <= C_SORT_BYTES {
            Route::C
        } else {
            Route::LuaPlain(true)
        }
    }
}

/// About how many comparisons a sort of `n` items makes (n log2 n).
fn sort_compares(n: usize) -> usize {
    n.saturating_mul(usize::BITS as usize - n.leading_zeros() as usize)
}

/// `table.move(a1, f, e, t [, a2])`: C for a short move between tables
/// read and written raw.
pub(super) unsafe fn move_(state: *mut ffi::lua_State) -> Route {
    // SAFETY: called by `dispatch` with the call's stack; indexes past the
    // top read as none.
    unsafe {
        if ffi::lua_type(state, 1) != ffi::LUA_TTABLE {
            return Route::C;
        }
        let a2 = if ffi::lua_isnoneornil(state, 5) != 0 { 1 } else { 5 };
        if ffi::lua_type(state, a2) != ffi::LUA_TTABLE {
            return Route::C; // its error
        }
        let plain = unguarded(state, 1, &[INDEX, EQ]) && unguarded(state, a2, &[NEWINDEX, EQ]);
        let (Some(f), Some(e), Some(_)) = (int_arg(state, 2, 0), int_arg(state, 3, 0), int_arg(state, 4, 0)) else {
            return Route::C;
        };
        // An overflowing range is one C refuses ("too many elements").
        if plain && (short_range(f, e, C_LOOP_MAX) || e.checked_sub(f).is_none()) {
            Route::C
        } else {
            Route::LuaPlain(plain)
        }
    }
}

/// `table.unpack(t [, i [, j]])`: C unless `__index` or `__len` would run,
/// or it would return more than [`VALUES_MAX`] values (then the Lua
/// version raises C's "too many results to unpack" before reading any).
/// Not only tables: C reads a string's items through its metatable too.
pub(super) unsafe fn unpack(state: *mut ffi::lua_State) -> Route {
    // SAFETY: called by `dispatch` with the call's stack.
    unsafe {
        let kind = ffi::lua_type(state, 1);
        if kind == ffi::LUA_TTABLE && !unguarded(state, 1, &[INDEX, LEN]) {
            return Route::Lua;
        }
        let Some(i) = int_arg(state, 2, 1) else { return Route::C };
        let j = if ffi::lua_isnoneornil(state, 3) != 0 {
            match kind {
                ffi::LUA_TTABLE | ffi::LUA_TSTRING => ffi::lua_rawlen(state, 1) as i64,
                _ => return Route::C, // C's error, or a value it reads nothing of
            }
        } else {
            match int_arg(state, 3, 0) {
                Some(j) => j,
                None => return Route::C,
            }
        };
        if short_range(i, j, VALUES_MAX) {
            Route::C
        } else {
            Route::Lua
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ranges_count_their_items_without_overflow() {
        assert!(short_range(1, 0, 4096), "empty");
        assert!(short_range(1, 4096, 4096));
        assert!(!short_range(1, 4097, 4096));
        assert!(!short_range(i64::MIN, i64::MAX, 4096), "overflow");
        assert!(short_range(i64::MAX - 5, i64::MAX, 4096));
    }

    #[test]
    fn sorts_count_about_n_log_n_comparisons() {
        assert_eq!(sort_compares(0), 0);
        assert_eq!(sort_compares(1), 1);
        assert_eq!(sort_compares(4096), 4096 * 13);
    }
}
