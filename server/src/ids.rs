//! Identifiers and the wall clock: invocation ids, action names, and Unix
//! milliseconds. A leaf: it names nothing else of the server.

/// A new invocation id: a UUIDv7 (time-ordered) in its hyphenated form,
/// written without the formatting machinery of `to_string`.
pub(crate) fn new_invocation_id() -> String {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Uuid::now_v7().hyphenated().encode_lower(&mut buf).to_owned()
}

/// Current time in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The bytes an action name may hold: `[A-Za-z0-9._-]`.
static NAME_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = matches!(b as u8, b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-');
        b += 1;
    }
    t
};

/// Whether `name` is a valid action name: 1 to 128 of `[A-Za-z0-9._-]`,
/// but not `.` or `..`: URL libraries, curl and browsers resolve those path
/// segments away (`/actions/..` becomes `/`), so no ordinary client could
/// run or delete such an action.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name != "."
        && name != ".."
        && name.bytes().fold(true, |ok, b| ok & NAME_BYTES[usize::from(b)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("hello"));
        assert!(valid_name("a.b-c_D9"));
        assert!(valid_name(&"x".repeat(128)));
        assert!(!valid_name(&"x".repeat(129)));
        assert!(valid_name("...") && valid_name(".a") && valid_name("a.."));
        for bad in ["", "a/b", "a b", "%2e%2e", "ü", "a?b", ".", ".."] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn invocation_ids_are_hyphenated_version_7_uuids() {
        let a = new_invocation_id();
        assert_eq!(a.len(), 36);
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 7);
        assert_ne!(a, new_invocation_id());
    }
}
