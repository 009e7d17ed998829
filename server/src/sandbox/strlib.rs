//! Where `string.rep`, `upper`, `lower`, `reverse`, `format`, `pack`,
//! `unpack`, `packsize`, `byte`, `utf8.len`, `utf8.char`,
//! `utf8.codepoint` and `os.date` run: Lua's C code when the bytes it
//! works through (or the values it returns) are few, their Lua versions
//! (in the prelude) otherwise (see `dispatch.rs`).
//!
//! These C functions work byte by byte, or build their result in a
//! buffer that grows (through the metered allocator, but as one block that
//! is not a string) before the result is made a string. One call cannot be
//! paused, so its work must be small: the C function runs when it touches
//! at most [`PIECE`] bytes (`rep` also at most [`PIECE`] copies), or, for
//! `format` and `pack`, when the result is bounded by [`FORMAT_C_MAX`] and
//! the state's `Limits.max_string` bytes. Otherwise the Lua version works
//! in pieces of [`PIECE`] bytes, and refuses a result longer than
//! `max_string` before building it. `string.unpack` and `packsize` with formats of more than
//! [`FORMAT_LEN_MAX`] bytes, and `utf8.char` of more than
//! [`C_LOOP_MAX`] characters (each made a string on its own), go by pieces
//! of that size too. `string.byte` and `utf8.codepoint` return at most
//! [`VALUES_MAX`] values; past it their Lua versions raise the error C
//! raises at Lua's stack limit. The other functions of `string` and `utf8`
//! need no guard: their work is bounded by the string they are given (at
//! most `max_string` bytes, about 10 ms at the default 8 MiB) or by the
//! values they are given (`char`); see SECURITY.md, "The sandbox audit".

use mlua::ffi;

use super::alloc::max_string_of;
use super::decide::{int_arg, text_len, Route, C_LOOP_MAX, PIECE, VALUES_MAX};

/// Bytes of result up to which `string.format` runs in C.
pub const FORMAT_C_MAX: usize = 1 << 20;

/// Bytes of format up to which `string.pack` and `os.date` run in C.
pub const FORMAT_LEN_MAX: usize = 4096;

/// `Lua`'s `MAXSIZE` for `string.rep`: longer results are an error.
const REP_MAXSIZE: u128 = i32::MAX as u128;

/// C for a string (or number) of at most [`PIECE`] bytes, or for anything
/// else (C raises the error).
pub(super) unsafe fn bytewise(state: *mut ffi::lua_State) -> Route {
    // SAFETY: called by `dispatch` with the call's stack.
    match unsafe { text_len(state, 1) } {
        Some(n) if n > PIECE => Route::Lua,
        _ => Route::C,
    }
}

/// Bytes of `string.rep` of `l` bytes `n` times with `lsep` between, or
/// `None` where C raises "resulting string too large" (as C decides it).
fn rep_len(l: usize, lsep: usize, n: i64) -> Option<u128> {
    let unit = l as u128 + lsep as u128;
    if n <= 0 {
        return Some(0);
    }
    if unit > REP_MAXSIZE / n as u128 {
        return None;
    }
    Some(unit * n as u128 - lsep as u128)
}

/// `string.rep(s, n [, sep])`: C for at most [`PIECE`] bytes and copies.
pub(super) unsafe fn rep(state: *mut ffi::lua_State) -> Route {
    // SAFETY: called by `dispatch` with the call's stack.
    unsafe {
        let Some(l) = text_len(state, 1) else { return Route::C };
        if ffi::lua_isnoneornil(state, 2) != 0 {
            return Route::C; // its error
        }
        let Some(n) = int_arg(state, 2, 0) else { return Route::C };
        let lsep = match ffi::lua_isnoneornil(state, 3) {
            0 => match text_len(state, 3) {
                Some(n) => n,
                None => return Route::C,
            },
            _ => 0,
        };
        match rep_len(l, lsep, n) {
            Some(total) if total > PIECE as u128 || n > PIECE as i64 => Route::Lua,
            _ => Route::C,
        }
    }
}

/// Most bytes the text of one argument of `string.format` can add, `None`
/// if only running its `__tostring` would tell.
///
/// # Safety
///
/// `state` must be a live Lua state with a value at `idx` and room for one
/// more value.
unsafe fn format_item_len(state: *mut ffi::lua_State, idx: i32) -> Option<usize> {
    // SAFETY: guaranteed by the caller.
    unsafe {
        Some(match ffi::lua_type(state, idx) {
            // %q of a string: at most 4 bytes a byte (\ddd), and quotes.
            ffi::LUA_TSTRING => ffi::lua_rawlen(state, idx).saturating_mul(4).saturating_add(2),
            // %99.99f of the largest float and the like.
            ffi::LUA_TNUMBER => 512,
            ffi::LUA_TTABLE => {
                for event in [c"__tostring", c"__name"] {
                    if ffi::luaL_getmetafield(state, idx, event.as_ptr()) != ffi::LUA_TNIL {
                        ffi::lua_pop(state, 1);
                        return None;
                    }
                }
                64
            }
            // nil, booleans, functions, threads, light userdata: their
            // name and address at most.
            _ => 64,
        })
    }
}

/// `string.format(fmt, ...)`: C when the result is bounded by
/// [`FORMAT_C_MAX`] without running any `__tostring`.
pub(super) unsafe fn format(state: *mut ffi::lua_State) -> Route {
    // SAFETY: called by `dispatch` with the call's stack.
    unsafe {
        let Some(mut bound) = text_len(state, 1) else { return Route::C };
        let top = ffi::lua_gettop(state);
        for idx in 2..=top {
            if bound > FORMAT_C_MAX {
                break;
            }
            match format_item_len(state, idx) {
                Some(n) => bound = bound.saturating_add(n),
                None => return Route::Lua,
            }
        }
        if bound > FORMAT_C_MAX {
            Route::Lua
        } else {
            Route::C
        }
    }
}

/// A bound on the bytes `string.pack` writes for `fmt`, besides the
/// strings it packs: 16 bytes an option (the widest number, and its
/// alignment), plus every size written in the format.
fn pack_fixed_bound(fmt: &[u8]) -> usize {
    let mut bound = fmt.len().saturating_mul(16);
    let mut number = 0usize;
    for &b in fmt {
        if b.is_ascii_digit() {
            number = number.saturating_mul(10).saturating_add(usize::from(b - b'0'));
        } else {
            bound = bound.saturating_add(number);
            number = 0;
        }
    }
    bound.saturating_add(number)
}

/// `string.pack(fmt, ...)`: C for a short format whose result is bounded
/// by the state's `max_string`.
pub(super) unsafe fn pack(state: *mut ffi::lua_State) -> Route {
    // SAFETY: called by `dispatch` with the call's stack; the format's
    // bytes are read while it is on the stack.
    unsafe {
        if ffi::lua_type(state, 1) != ffi::LUA_TSTRING {
            return Route::C;
        }
        let mut len = 0usize;
        let p = ffi::lua_tolstring(state, 1, &mut len);
        if len > FORMAT_LEN_MAX {
            return Route::Lua;
        }
        let mut bound = pack_fixed_bound(std::slice::from_raw_parts(p.cast::<u8>(), len));
        let max_string = max_string_of(state);
        for idx in 2..=ffi::lua_gettop(state) {
            if ffi::lua_type(state, idx) == ffi::LUA_TSTRING {
                bound = bound.saturating_add(ffi::lua_rawlen(state, idx));
            }
            if bound > max_string {
                return Route::Lua;
            }
        }
        Route::C
    }
}

/// `os.date(fmt, t)`, `string.unpack(fmt, s, pos)`, `string.packsize(fmt)`:
/// C for a format of at most [`FORMAT_LEN_MAX`] bytes (a conversion of
/// `os.date` writes at most 250; an option of `unpack` makes at most one
/// value).
pub(super) unsafe fn long_format(state: *mut ffi::lua_State) -> Route {
    // SAFETY: called by `dispatch` with the call's stack.
    unsafe {
        if ffi::lua_type(state, 1) != ffi::LUA_TSTRING || ffi::lua_rawlen(state, 1) <= FORMAT_LEN_MAX {
            Route::C
        } else {
            Route::Lua
        }
    }
}

/// `string.byte(s [, i [, j]])`: C for at most [`VALUES_MAX`] results,
/// else the Lua version, which raises C's error at its stack limit.
pub(super) unsafe fn byte(state: *mut ffi::lua_State) -> Route {
    // SAFETY: called by `dispatch` with the call's stack.
    unsafe {
        let Some(len) = text_len(state, 1) else { return Route::C };
        let Some(i) = int_arg(state, 2, 1) else { return Route::C };
        let Some(j) = int_arg(state, 3, i) else { return Route::C };
        values(byte_span(len, i, j))
    }
}

/// `utf8.codepoint(s [, i [, j [, lax]]])`: C for a slice of at most
/// [`VALUES_MAX`] bytes (Lua's C function checks its stack for one value a
/// byte), else the Lua version, which raises C's error at its stack limit.
pub(super) unsafe fn codepoint(state: *mut ffi::lua_State) -> Route {
    // SAFETY: called by `dispatch` with the call's stack.
    unsafe {
        let Some(len) = text_len(state, 1) else { return Route::C };
        let Some(i) = int_arg(state, 2, 1) else { return Route::C };
        let i = utf8_position(i, len);
        let Some(j) = int_arg(state, 3, i) else { return Route::C };
        values(codepoint_span(len, i, utf8_position(j, len)))
    }
}

/// C for a call that returns `n` values, the Lua version past [`VALUES_MAX`].
fn values(n: u64) -> Route {
    if n > VALUES_MAX as u64 {
        Route::Lua
    } else {
        Route::C
    }
}

/// How many bytes `string.byte` of a string of `len` bytes returns for the
/// arguments `i` and `j` (`posrelatI` and `getendpos` of `lstrlib.c`).
fn byte_span(len: usize, i: i64, j: i64) -> u64 {
    let len = len as u64;
    let first = match i {
        1.. => i as u64,
        0 => 1,
        _ if i.unsigned_abs() > len => 1,
        _ => len - i.unsigned_abs() + 1,
    };
    let last = match j {
        _ if j > 0 && j as u64 > len => len,
        0.. => j as u64,
        _ if j.unsigned_abs() > len => 0,
        _ => len - j.unsigned_abs() + 1,
    };
    (last + 1).saturating_sub(first)
}

/// A position of `utf8.codepoint` made absolute (`u_posrelat` of
/// `lutf8lib.c`): a negative one counts from the end, and one before the
/// start is 0.
fn utf8_position(pos: i64, len: usize) -> i64 {
    match pos {
        0.. => pos,
        _ if pos.unsigned_abs() > len as u64 => 0,
        _ => len as i64 + pos + 1,
    }
}

/// How many values `utf8.codepoint` makes room for from `i` to `j` (made
/// absolute): one a byte, or 0 where C raises "out of bounds" instead.
fn codepoint_span(len: usize, i: i64, j: i64) -> u64 {
    if i < 1 || j > len as i64 || i > j {
        0
    } else {
        (j - i) as u64 + 1
    }
}

/// `utf8.char(...)`: C for at most [`C_LOOP_MAX`] characters, else the
/// Lua version with the characters in a table.
pub(super) unsafe fn many_args(state: *mut ffi::lua_State) -> Route {
    // SAFETY: called by `dispatch` with the call's stack.
    if i64::from(unsafe { ffi::lua_gettop(state) }) <= C_LOOP_MAX {
        Route::C
    } else {
        Route::LuaPacked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rep_lengths_follow_c_and_its_too_large_error() {
        assert_eq!(rep_len(3, 0, 0), Some(0));
        assert_eq!(rep_len(3, 0, -5), Some(0));
        assert_eq!(rep_len(3, 2, 4), Some(3 * 4 + 2 * 3));
        assert_eq!(rep_len(0, 0, i64::MAX), Some(0));
        assert_eq!(rep_len(1, 0, i32::MAX as i64), Some(i32::MAX as u128));
        assert_eq!(rep_len(1, 0, i32::MAX as i64 + 1), None);
        assert_eq!(rep_len(usize::MAX, 1, 1), None);
    }

    #[test]
    fn byte_spans_follow_c_positions() {
        assert_eq!(byte_span(10, 1, 1), 1);
        assert_eq!(byte_span(10, 1, -1), 10);
        assert_eq!(byte_span(10, 0, 0), 0);
        assert_eq!(byte_span(10, -3, -1), 3);
        assert_eq!(byte_span(10, -100, 100), 10);
        assert_eq!(byte_span(10, 5, 2), 0);
        assert_eq!(byte_span(10, 11, 20), 0);
        assert_eq!(byte_span(10, i64::MIN, i64::MAX), 10);
        assert_eq!(byte_span(10, i64::MAX, i64::MIN), 0);
        assert_eq!(byte_span(0, 1, -1), 0);
    }

    #[test]
    fn codepoint_spans_follow_c_positions_and_leave_bad_ones_to_c() {
        let span = |len, i, j| codepoint_span(len, utf8_position(i, len), utf8_position(j, len));
        assert_eq!(span(10, 1, -1), 10);
        assert_eq!(span(10, -3, -1), 3);
        assert_eq!(span(10, 4, 3), 0);
        assert_eq!(span(10, 0, 5), 0, "out of bounds: C's error");
        assert_eq!(span(10, 1, 11), 0, "out of bounds: C's error");
        assert_eq!(span(10, i64::MIN, -1), 0, "out of bounds: C's error");
        assert_eq!(utf8_position(-11, 10), 0);
        assert_eq!(utf8_position(-10, 10), 1);
    }

    #[test]
    fn pack_bounds_count_options_and_written_sizes() {
        assert_eq!(pack_fixed_bound(b""), 0);
        assert_eq!(pack_fixed_bound(b"i4"), 2 * 16 + 4);
        assert_eq!(pack_fixed_bound(b"c1073741824"), 11 * 16 + 1073741824);
        assert_eq!(pack_fixed_bound(b"s1z"), 3 * 16 + 1);
        assert_eq!(pack_fixed_bound(b"c99999999999999999999999999"), usize::MAX);
    }
}
