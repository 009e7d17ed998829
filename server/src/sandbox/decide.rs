//! What the deciders of `dispatch.rs` read: where a call goes ([`Route`]),
//! the thresholds of "small" work, and the arguments of a call as Lua's C
//! functions would read them, without raising an error or changing the
//! stack.
//!
//! The deciders themselves live next to the functions they guard
//! (`tablelib.rs`, `strlib.rs`); `dispatch.rs` above them holds the table
//! of guarded functions.

use std::ffi::{c_int, CStr};

use mlua::ffi;

/// Items up to which a loop over table slots runs in Lua's C code.
pub const C_LOOP_MAX: i64 = 4096;

/// Values that one library call may return: `string.byte`,
/// `utf8.codepoint`, `string.unpack` and `table.unpack` raise their "too
/// many results" errors beyond it, as they do at Lua's stack limit (about
/// a million). These four are the only calls that make many values out of
/// few; every other way to put values on the stack (`select`, `table.pack`,
/// `string.char`, `math.max`, a table constructor, `...`, a coroutine's
/// transfer) passes on at most what they made, plus the 255 registers of
/// one Lua function. So no single C call or VM instruction works through
/// more than this many values: a few milliseconds, where a million took up
/// to 60 ms on a loaded machine. It is eight times what Lua 5.1 and
/// LuaJIT allow one call (8,000).
pub const VALUES_MAX: i64 = 1 << 16;

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
    /// The Lua version, called with one table holding the caller's
    /// arguments (and their count as `n`), made in C: with up to a million
    /// arguments, a Lua function could not copy them again on the stack.
    LuaPacked,
}

/// Decides where a call goes, looking at its arguments on `state`'s stack.
/// It must raise no error and leave the stack as it found it.
pub type Decide = unsafe fn(*mut ffi::lua_State) -> Route;

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
