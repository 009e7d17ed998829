//! Server messages in terms of the user's files.
//!
//! The server names a Lua chunk after its action, so its messages say
//! `users.get:3: '=' expected near 'x'`. These functions turn such
//! positions back into file positions: `users/get.lua:3: ...`.

/// Whether `b` may be part of an action name.
fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._-".contains(&b)
}

/// Where in `message` the chunk `name` is given with a line (`name:LINE:`
/// or `name:LINE` at the end), not as part of a longer name: the start of
/// `name`, and the end of the line number.
fn positions(message: &str, name: &str) -> Vec<(usize, usize)> {
    let bytes = message.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(i) = message[from..].find(name).map(|i| i + from) {
        from = i + name.len();
        if i > 0 && name_byte(bytes[i - 1]) {
            continue;
        }
        let after = &bytes[from..];
        if after.first() != Some(&b':') {
            continue;
        }
        let digits = after[1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            continue;
        }
        found.push((i, from + 1 + digits));
    }
    found
}

/// Replaces every `NAME:LINE` of the given chunks in `message` by
/// `FILE:LINE`. `chunks` pairs chunk (action) names with file names.
pub fn map_chunks(message: &str, chunks: &[(&str, &str)]) -> String {
    // Longest names first, so that `a.b` is not taken for a part of `a.b.c`.
    let mut chunks: Vec<&(&str, &str)> = chunks.iter().collect();
    chunks.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    let mut hits: Vec<(usize, usize, &str)> = Vec::new();
    for (name, file) in chunks {
        for (start, _) in positions(message, name) {
            let overlaps = hits.iter().any(|(s, len, _)| start < s + len && *s < start + name.len());
            if !overlaps {
                hits.push((start, name.len(), file));
            }
        }
    }
    hits.sort();
    let mut out = String::with_capacity(message.len());
    let mut at = 0;
    for (start, len, file) in hits {
        out.push_str(&message[at..start]);
        out.push_str(file);
        at = start + len;
    }
    out.push_str(&message[at..]);
    out
}

/// The message of a failed create or update of action `name` (from file
/// `file`) as `FILE:LINE: message`: the first `name:LINE:` position moves to
/// the front, other chunks in `chunks` are mapped to their files too, and a
/// message without a position gets `FILE: ` in front.
pub fn file_message(message: &str, name: &str, file: &str, chunks: &[(&str, &str)]) -> String {
    let message = message.trim();
    let Some(&(start, end)) = positions(message, name).first() else {
        return format!("{file}: {}", map_chunks(message, chunks));
    };
    let line = &message[start + name.len() + 1..end];
    let before = message[..start].trim_end();
    let after = message[end..].strip_prefix(':').unwrap_or(&message[end..]).trim_start();
    let rest = match (before.is_empty(), after.is_empty()) {
        (true, _) => after.to_string(),
        (false, true) => before.trim_end_matches(':').to_string(),
        (false, false) => format!("{before} {after}"),
    };
    format!("{file}:{line}: {}", map_chunks(&rest, chunks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compile_errors_point_at_the_file() {
        let chunks = [("users.get", "users/get.lua")];
        assert_eq!(
            file_message("users.get:3: '=' expected near 'x'", "users.get", "users/get.lua", &chunks),
            "users/get.lua:3: '=' expected near 'x'"
        );
        assert_eq!(
            file_message(
                "users.get:5: 'end' expected (to close 'function' at line 1) near <eof>",
                "users.get",
                "users/get.lua",
                &chunks
            ),
            "users/get.lua:5: 'end' expected (to close 'function' at line 1) near <eof>"
        );
    }

    #[test]
    fn a_position_inside_the_message_moves_to_the_front() {
        let chunks = [("hello", "hello.lua")];
        assert_eq!(
            file_message(
                "running the chunk failed: hello:2: attempt to call a nil value",
                "hello",
                "hello.lua",
                &chunks
            ),
            "hello.lua:2: running the chunk failed: attempt to call a nil value"
        );
    }

    #[test]
    fn messages_without_a_position_get_the_file() {
        let chunks = [("users.get", "users/get.lua")];
        assert_eq!(
            file_message("the action does not define a global function 'main'", "users.get", "users/get.lua", &chunks),
            "users/get.lua: the action does not define a global function 'main'"
        );
        // The name without a line number is not a position.
        assert_eq!(
            file_message("no action named 'users.get'", "users.get", "users/get.lua", &chunks),
            "users/get.lua: no action named 'users.get'"
        );
    }

    #[test]
    fn longer_names_and_other_chunks() {
        let chunks = [("a.b", "a/b.lua"), ("a.b.c", "a/b/c.lua"), ("xa.b", "xa/b.lua")];
        assert_eq!(
            map_chunks("a.b.c:1: x; a.b:2: y; xa.b:3: z", &chunks),
            "a/b/c.lua:1: x; a/b.lua:2: y; xa/b.lua:3: z"
        );
        assert_eq!(map_chunks("ba.b:1: not ours", &[("a.b", "a/b.lua")]), "ba.b:1: not ours");
        assert_eq!(map_chunks("a.b: no line", &chunks), "a.b: no line");
        assert_eq!(map_chunks("at a.b:7", &chunks), "at a/b.lua:7");
    }

    #[test]
    fn test_chunks_map_back_to_test_files() {
        let chunks = [("_test.items_test.4242.1", "items_test.lua")];
        assert_eq!(
            map_chunks("_test.items_test.4242.1:7: expected 2, got 3", &chunks),
            "items_test.lua:7: expected 2, got 3"
        );
    }
}
