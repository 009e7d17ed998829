//! Answers on their way from the application to the connections.
//!
//! The outbox is the one way answers travel up: the application pushes an
//! answer with the [`ConnRef`] it is for, and the reactor drains the box
//! after each call into the application. A JSON answer (the result of a
//! blocking run) is serialized straight into a buffer the box keeps
//! between answers, so it needs no response or body of its own.

use std::ops::Range;

use super::ConnRef;
use crate::http::{self, Response};

/// Capacity of the JSON buffer kept between drains.
const JSON_KEEP: usize = 64 * 1024;

/// Answers waiting to be written to their connections.
#[derive(Default)]
pub struct Outbox {
    answers: Vec<(ConnRef, Answer)>,
    /// The bodies of [`Answer::Json`], one after another.
    json: Vec<u8>,
}

enum Answer {
    Response(Response),
    /// A `application/json` answer whose body is `json[body]`.
    Json {
        status: u16,
        body: Range<usize>,
    },
}

/// `value` as JSON, unless that is over `limit` bytes (found out after at
/// most `limit` bytes of work).
pub fn json_within<T: serde::Serialize + ?Sized>(value: &T, limit: usize) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut out = Bounded { buf: &mut buf, left: limit, over: false };
    match serde_json::to_writer(&mut out, value) {
        Ok(()) => Some(buf),
        Err(_) if out.over => None,
        Err(_) => Some(b"null".to_vec()),
    }
}

/// A buffer that takes at most `left` more bytes; past that, writes fail
/// and `over` says why.
struct Bounded<'a> {
    buf: &'a mut Vec<u8>,
    left: usize,
    over: bool,
}

impl std::io::Write for Bounded<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let Some(left) = self.left.checked_sub(bytes.len()) else {
            self.over = true;
            return Err(std::io::Error::other("over the limit"));
        };
        self.left = left;
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One answer as it is written: a response, or the status and body of a
/// JSON answer.
pub enum Parts<'a> {
    Response(&'a Response),
    Json { status: u16, body: &'a [u8] },
}

impl Parts<'_> {
    /// The answer's HTTP status.
    #[inline(always)]
    pub fn status(&self) -> u16 {
        match self {
            Parts::Response(r) => r.status,
            Parts::Json { status, .. } => *status,
        }
    }

    /// Appends the answer to `out`: with `Connection: close` unless
    /// `keep_alive`, without the body if `head_only` (HEAD).
    pub fn write_to(&self, out: &mut Vec<u8>, keep_alive: bool, head_only: bool) {
        match self {
            Parts::Response(r) => r.write_to(out, keep_alive, head_only),
            Parts::Json { status, body } => {
                http::write_parts(out, *status, "application/json", body, keep_alive, head_only)
            }
        }
    }
}

impl Outbox {
    /// Answers `to` with `resp`.
    pub fn respond(&mut self, to: ConnRef, resp: Response) {
        self.answers.push((to, Answer::Response(resp)));
    }

    /// Answers `to` with `status` and `value` as JSON (`null` if it cannot
    /// be serialized), unless its JSON is over `limit` bytes: then nothing
    /// is queued, and false returned, after at most `limit` bytes of work.
    ///
    /// `limit` is `usize::MAX` when the caller knows the JSON is small: the
    /// value is then written straight into the buffer.
    pub fn json<T: serde::Serialize + ?Sized>(&mut self, to: ConnRef, status: u16, value: &T, limit: usize) -> bool {
        let start = self.json.len();
        let written = if limit == usize::MAX {
            serde_json::to_writer(&mut self.json, value).map_err(|_| false)
        } else {
            let mut out = Bounded { buf: &mut self.json, left: limit, over: false };
            serde_json::to_writer(&mut out, value).map_err(|_| out.over)
        };
        match written {
            Ok(()) => {}
            Err(true) => {
                self.json.truncate(start);
                return false;
            }
            Err(false) => {
                self.json.truncate(start);
                self.json.extend_from_slice(b"null");
            }
        }
        self.answers.push((to, Answer::Json { status, body: start..self.json.len() }));
        true
    }

    /// Whether no answer waits.
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// Hands every answer, in order, to `each`, and empties the box.
    pub fn drain(&mut self, mut each: impl FnMut(ConnRef, Parts<'_>)) {
        for (to, answer) in self.answers.drain(..) {
            match answer {
                Answer::Response(r) => each(to, Parts::Response(&r)),
                Answer::Json { status, body } => each(to, Parts::Json { status, body: &self.json[body] }),
            }
        }
        self.json.clear();
        // A big answer does not keep its buffer.
        if self.json.capacity() > JSON_KEEP {
            self.json = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(outbox: &mut Outbox) -> Vec<(ConnRef, String)> {
        let mut got = Vec::new();
        outbox.drain(|to, parts| {
            let mut out = Vec::new();
            parts.write_to(&mut out, true, false);
            got.push((to, String::from_utf8(out).unwrap()));
        });
        got
    }

    #[test]
    fn answers_come_out_in_order_as_their_responses_would_be_written() {
        let (a, b) = (ConnRef { key: 1, gen: 1 }, ConnRef { key: 2, gen: 7 });
        let mut outbox = Outbox::default();
        assert!(outbox.is_empty());
        outbox.json(a, 200, &serde_json::json!({"x": 1}), 100);
        outbox.respond(b, Response::text(404, "no"));
        outbox.json(b, 201, &"two", 100);
        assert!(!outbox.is_empty());
        let got = written(&mut outbox);
        let want = |r: Response| {
            let mut out = Vec::new();
            r.write_to(&mut out, true, false);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            got,
            vec![
                (a, want(Response::json(200, br#"{"x":1}"#.to_vec()))),
                (b, want(Response::text(404, "no"))),
                (b, want(Response::json(201, br#""two""#.to_vec()))),
            ]
        );
        assert!(outbox.is_empty() && outbox.json.is_empty());
        assert!(written(&mut outbox).is_empty());
    }

    #[test]
    fn values_that_cannot_be_serialized_become_null_and_big_buffers_are_not_kept() {
        let to = ConnRef { key: 0, gen: 0 };
        let mut outbox = Outbox::default();
        let mut bad = std::collections::HashMap::new();
        bad.insert(vec![1u8], 1); // a map with non-string keys is no JSON object
        outbox.json(to, 200, &"before", 100);
        outbox.json(to, 200, &bad, 100);
        let got = written(&mut outbox);
        assert!(got[0].1.ends_with("\"before\"") && got[1].1.ends_with("\r\n\r\nnull"), "{got:?}");
        outbox.json(to, 200, &"x".repeat(JSON_KEEP * 2), usize::MAX);
        written(&mut outbox);
        assert_eq!(outbox.json.capacity(), 0);
        // Over the limit: nothing queued, nothing left in the buffer.
        outbox.json(to, 200, &"first", 100);
        assert!(!outbox.json(to, 200, &"y".repeat(101), 100));
        assert!(outbox.json(to, 200, &"y".repeat(98), 100), "exactly at the limit");
        let got = written(&mut outbox);
        assert_eq!(got.len(), 2);
        assert!(got[1].1.ends_with(&format!("\"{}\"", "y".repeat(98))));
    }
}
