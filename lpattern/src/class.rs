//! Character classes (`%a`, `%d`, ...) with the semantics of the C
//! `<ctype.h>` functions in the "C" locale, which is what Lua uses unless
//! the host calls `setlocale` (neither Rust nor mlua does).

/// `isalpha` in the C locale.
fn is_alpha(c: u8) -> bool {
    c.is_ascii_alphabetic()
}

/// `iscntrl` in the C locale: 0..=31 and 127.
fn is_cntrl(c: u8) -> bool {
    c < 32 || c == 127
}

/// `isgraph` in the C locale: printable characters except space.
fn is_graph(c: u8) -> bool {
    (33..=126).contains(&c)
}

/// `ispunct` in the C locale: graphic but not alphanumeric.
fn is_punct(c: u8) -> bool {
    is_graph(c) && !c.is_ascii_alphanumeric()
}

/// `isspace` in the C locale: space, `\t`, `\n`, `\v`, `\f`, `\r`.
///
/// Note that Rust's `u8::is_ascii_whitespace` does not include `\v`, so it
/// cannot be used here.
fn is_space(c: u8) -> bool {
    c == b' ' || (9..=13).contains(&c)
}

/// Does byte `c` belong to the class named by the byte `cl` that follows a
/// `%` (Lua's `match_class`)?
///
/// Lower-case class letters select a class, upper-case ones its
/// complement; any other byte (including upper-case letters that do not
/// name a class) stands for itself.
pub(crate) fn match_class(c: u8, cl: u8) -> bool {
    let res = match cl.to_ascii_lowercase() {
        b'a' => is_alpha(c),
        b'c' => is_cntrl(c),
        b'd' => c.is_ascii_digit(),
        b'g' => is_graph(c),
        b'l' => c.is_ascii_lowercase(),
        b'p' => is_punct(c),
        b's' => is_space(c),
        b'u' => c.is_ascii_uppercase(),
        b'w' => c.is_ascii_alphanumeric(),
        b'x' => c.is_ascii_hexdigit(),
        // Deprecated in Lua 5.2 but still accepted by 5.4.
        b'z' => c == 0,
        _ => return cl == c,
    };
    if cl.is_ascii_lowercase() {
        res
    } else {
        !res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_c_locale() {
        assert!(match_class(b'\x0b', b's'));
        assert!(!match_class(b'\x0b', b'S'));
        assert!(match_class(b'_', b'p'));
        assert!(!match_class(b'_', b'w'));
        assert!(match_class(b'_', b'W'));
        assert!(!match_class(200, b'a'));
        assert!(match_class(200, b'A'));
        assert!(!match_class(200, b'g'));
        assert!(match_class(127, b'c'));
        assert!(match_class(0, b'z'));
        assert!(match_class(1, b'Z'));
        assert!(match_class(b'F', b'x'));
        assert!(!match_class(b'g', b'x'));
        // Non-class bytes stand for themselves, even upper-case letters.
        assert!(match_class(b'.', b'.'));
        assert!(match_class(b'Q', b'Q'));
        assert!(!match_class(b'q', b'Q'));
        assert!(match_class(b'%', b'%'));
    }
}
