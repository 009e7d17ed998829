//! Idempotency keys of asynchronous submits (`Idempotency-Key: K`).
//!
//! A client that retries a submit (its connection broke before the 202
//! came) sends the same key again and gets the id the key was first given,
//! and the action runs once. The store keeps each key with the record that
//! holds it (unique among stored records, across servers sharing the
//! store); this module checks a key, fingerprints what a submit asks for,
//! and sorts out submits of one commit that share a key, which the store
//! is not given twice.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use sl_store::{Enqueued, IdempotencyKey, Submit};

/// The longest key, in bytes.
pub(crate) const MAX_KEY: usize = 255;

/// The key of a submit, checked: 1 to [`MAX_KEY`] printable ASCII
/// characters, what clients send (UUIDs, hashes, "order-1234/attempt").
pub(crate) fn key(header: &[u8]) -> Result<String, String> {
    if header.is_empty() || header.len() > MAX_KEY || !header.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err(format!("Idempotency-Key must be 1 to {MAX_KEY} printable ASCII characters"));
    }
    // The server's own keys (a schedule's firings) are not for clients.
    if header.starts_with(b"sl:") {
        return Err("Idempotency-Key must not start with 'sl:' (the server's own keys)".to_string());
    }
    Ok(String::from_utf8_lossy(header).into_owned())
}

/// What a submit asks for: the action and its arguments, given as JSON
/// text and hashed as compact JSON (so that whitespace does not tell a
/// retry apart), or as they are if they do not parse (they always do:
/// they were checked). Two submits with one key and one fingerprint are
/// retries of each other.
pub(crate) fn fingerprint(action: &str, args: &str) -> String {
    let compact = serde_json::from_str::<serde_json::Value>(args).map(|v| v.to_string());
    let mut hash = Sha256::new();
    hash.update(action.as_bytes());
    hash.update([0]);
    hash.update(compact.as_deref().unwrap_or(args).as_bytes());
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// How one submit of a commit is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Accepted: the id to answer (its own, or the key's first), and
    /// whether that is a replay of an earlier submit.
    Accepted { id: String, replayed: bool },
    /// Its key is held by invocation `id`, which asked for something else.
    Mismatch { id: String },
}

/// Submits of one commit that share a key: each later one is sent to the
/// store not at all and answered like the first. `leaders[i]` is the index
/// of the submit whose answer submit `i` shares (`i` itself for most).
pub(crate) fn leaders(submits: &[&Submit]) -> Vec<usize> {
    let mut first: HashMap<&str, usize> = HashMap::new();
    submits
        .iter()
        .enumerate()
        .map(|(i, s)| match &s.key {
            Some(IdempotencyKey { key, .. }) => *first.entry(key.as_str()).or_insert(i),
            None => i,
        })
        .collect()
}

/// The outcome of submit `i`, given what the store did with its leader
/// (`stored`, the store's answer for submit `leaders[i]`).
pub(crate) fn outcome(submits: &[&Submit], leaders: &[usize], i: usize, stored: &Enqueued) -> Outcome {
    let me = submits[i];
    let leader = submits[leaders[i]];
    let my_fp = me.key.as_ref().map(|k| k.fingerprint.as_str());
    let (id, fp, replayed) = match stored {
        Enqueued::New => (&leader.record.id, leader.key.as_ref().map(|k| k.fingerprint.as_str()), leaders[i] != i),
        Enqueued::Existing { id, fingerprint } => (id, Some(fingerprint.as_str()), true),
    };
    if my_fp != fp {
        return Outcome::Mismatch { id: id.clone() };
    }
    Outcome::Accepted { id: id.clone(), replayed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sl_store::InvocationRecord;

    fn submit(id: &str, key: Option<&str>, args: serde_json::Value) -> Submit {
        let key = key.map(|k| IdempotencyKey { key: k.into(), fingerprint: fingerprint("a", &args.to_string()) });
        Submit { record: InvocationRecord::queued(id.into(), "a".into(), args, true, 0), key }
    }

    #[test]
    fn keys_are_printable_ascii_of_bounded_length() {
        assert_eq!(key(b"order-1234/try 1").as_deref(), Ok("order-1234/try 1"));
        assert!(key(&[b'k'; MAX_KEY]).is_ok());
        for bad in [&b""[..], &[b'k'; MAX_KEY + 1], b"tab\there", "caf\u{e9}".as_bytes(), b"nul\0"] {
            assert!(key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fingerprints_tell_actions_and_arguments_apart() {
        let a = fingerprint("a", r#"{"x":1}"#);
        assert_eq!(a, fingerprint("a", r#"{"x":1}"#));
        // Whitespace does not tell a retry apart.
        assert_eq!(a, fingerprint("a", " {\n \"x\" : 1 } "));
        assert_eq!(a.len(), 64);
        assert_ne!(a, fingerprint("b", r#"{"x":1}"#));
        assert_ne!(a, fingerprint("a", r#"{"x":2}"#));
        // The separator keeps the action and the arguments apart.
        assert_ne!(fingerprint("a1", "2"), fingerprint("a", "12"));
    }

    #[test]
    fn submits_sharing_a_key_in_one_commit_share_the_first_answer() {
        let subs = [
            submit("1", Some("k"), json!({"n": 1})),
            submit("2", None, json!({})),
            submit("3", Some("k"), json!({"n": 1})),
            submit("4", Some("k"), json!({"n": 2})),
            submit("5", Some("j"), json!({})),
        ];
        let refs: Vec<&Submit> = subs.iter().collect();
        let leaders = leaders(&refs);
        assert_eq!(leaders, [0, 1, 0, 0, 4]);
        let stored = [Enqueued::New, Enqueued::New, Enqueued::New, Enqueued::New, Enqueued::New];
        let got: Vec<Outcome> = (0..5).map(|i| outcome(&refs, &leaders, i, &stored[leaders[i]])).collect();
        let accepted = |id: &str, replayed| Outcome::Accepted { id: id.into(), replayed };
        assert_eq!(
            got,
            [
                accepted("1", false),
                accepted("2", false),
                accepted("1", true),
                Outcome::Mismatch { id: "1".into() },
                accepted("5", false)
            ]
        );
    }

    #[test]
    fn a_key_held_in_the_store_answers_its_holder_or_a_mismatch() {
        let subs = [submit("1", Some("k"), json!({"n": 1})), submit("2", Some("k"), json!({"n": 2}))];
        let refs: Vec<&Submit> = subs.iter().collect();
        let leaders = leaders(&refs);
        let held = Enqueued::Existing { id: "old".into(), fingerprint: fingerprint("a", r#"{"n":1}"#) };
        assert_eq!(outcome(&refs, &leaders, 0, &held), Outcome::Accepted { id: "old".into(), replayed: true });
        assert_eq!(outcome(&refs, &leaders, 1, &held), Outcome::Mismatch { id: "old".into() });
    }
}
