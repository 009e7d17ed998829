//! Properties of the HTTP request parser (`slserver::http::parse`), checked
//! on a few thousand generated and mutated requests from a fixed seed, so
//! that every run checks the same inputs and a failure reproduces.
//!
//! The invariants ([`check`]) are shared with the cargo-fuzz target
//! (`fuzz/fuzz_targets/http_parse.rs` includes this file), which feeds them
//! arbitrary bytes for as long as it is allowed to run (`scripts/fuzz`).
//!
//! For every input and for both the default and tiny limits:
//! - `parse` never panics and gives the same answer twice;
//! - `Complete(req, n)`: `0 < n <= buf.len()`; the head is `buf[..n - body]`,
//!   ends with an empty line and ends every line with CRLF (a bare LF is
//!   refused, so no other parser can see other lines in it); the body is
//!   the last bytes of `buf[..n]` and has exactly the length every
//!   `Content-Length` header states (none: empty); no `Transfer-Encoding`
//!   header was there;
//!   the request target is in one of the three forms of RFC 9112 (3.2),
//!   and path, query and authority are read from it: an absolute path
//!   (the path starts with `/` and, with the query, is the target; no
//!   authority), an `http` or `https` URI (the authority is the URI's, a
//!   host without userinfo, and the path and query are the rest of the URI,
//!   an empty path being `/`, or `*` for OPTIONS without a query), or `*`
//!   for OPTIONS alone (the path is `*`); head and body are within the
//!   limits;
//! - along growing prefixes of the input the answer only ever goes
//!   `Partial` → `Complete` or `Partial` → error, and then stays: a prefix
//!   of a complete request is `Partial`, bytes after a complete request do
//!   not change it (pipelining), and an error stays an error (of the same
//!   status, except that "head too large" (431) may be seen before a
//!   malformed head is);
//! - a request complete under the tiny limits is the same request under
//!   the default ones (limits only refuse, they never change a meaning).
#![allow(dead_code)]

use slserver::http::{parse, HttpError, Method, ParseLimits, Parsed, Request};

/// Limits small enough that generated inputs cross them often.
pub const TINY: ParseLimits = ParseLimits { max_head: 64, max_body: 16, max_headers: 4, keep_headers: false };

/// A comparable form of `parse`'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `Parsed::Partial`.
    Partial { expect_continue: bool },
    /// `Parsed::Complete`: the request and the bytes it used.
    Complete(Request, usize),
    /// The error answer.
    Error(HttpError),
}

/// `parse`'s answer for `buf`, as an [`Outcome`].
pub fn outcome(buf: &[u8], limits: &ParseLimits) -> Outcome {
    match parse(buf, limits) {
        Ok(Parsed::Partial { expect_continue, .. }) => Outcome::Partial { expect_continue },
        Ok(Parsed::Complete(req, n)) => Outcome::Complete(req, n),
        Err(e) => Outcome::Error(e),
    }
}

/// `buf` for a failure message: lossy UTF-8, cut at 600 bytes.
fn show(buf: &[u8]) -> String {
    let s = String::from_utf8_lossy(&buf[..buf.len().min(600)]).into_owned();
    if buf.len() > 600 {
        format!("{s:?}... ({} bytes)", buf.len())
    } else {
        format!("{s:?}")
    }
}

/// Checks every invariant on `buf` with the default and the tiny limits;
/// panics with the input on a violation. `max_prefixes` bounds how many
/// prefixes are parsed for the monotonicity check.
pub fn check(buf: &[u8], max_prefixes: usize) {
    let default = ParseLimits::default();
    let big = check_with(buf, &default, max_prefixes);
    let tiny = check_with(buf, &TINY, max_prefixes);
    if let Outcome::Complete(..) = tiny {
        assert_eq!(tiny, big, "complete under tiny limits but different under the default ones: {}", show(buf));
    }
}

/// Checks the invariants under `limits` and returns the answer for `buf`.
pub fn check_with(buf: &[u8], limits: &ParseLimits, max_prefixes: usize) -> Outcome {
    let first = outcome(buf, limits);
    assert_eq!(first, outcome(buf, limits), "parse is not deterministic on {}", show(buf));
    if let Outcome::Complete(req, n) = &first {
        check_complete(buf, req, *n, limits);
    }
    if let Outcome::Error(e) = &first {
        assert!(
            [400, 411, 413, 417, 431].contains(&e.status),
            "unexpected status {} ({}) for {}",
            e.status,
            e.message,
            show(buf)
        );
    }
    check_prefixes(buf, limits, &first, max_prefixes);
    first
}

/// What the head of a complete request says, read naively (independently
/// of httparse): the request target, `Content-Length` values and whether
/// `Transfer-Encoding` is there.
struct Head {
    target: Vec<u8>,
    /// The method is OPTIONS.
    options: bool,
    content_lengths: Vec<Vec<u8>>,
    transfer_encoding: bool,
    fields: usize,
}

/// Reads a head naively: lines split at LF, a CR before it dropped.
fn read_head(head: &[u8]) -> Head {
    let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    // Empty lines before the request line are skipped (RFC 9112, 2.2).
    let request_line = lines.by_ref().find(|l| !l.is_empty()).unwrap_or_default();
    let mut parts = request_line.split(|&b| b == b' ').filter(|p| !p.is_empty());
    let method = parts.next();
    let target = parts.next().unwrap_or_default().to_vec();
    let options = method == Some(&b"OPTIONS"[..]);
    let mut h = Head { target, options, content_lengths: Vec::new(), transfer_encoding: false, fields: 0 };
    for line in lines {
        if line.is_empty() {
            break;
        }
        h.fields += 1;
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let name = &line[..colon];
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            h.content_lengths.push(value.to_vec());
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            h.transfer_encoding = true;
        }
    }
    h
}

/// The invariants of a `Complete(req, n)` answer for `buf`.
fn check_complete(buf: &[u8], req: &Request, n: usize, limits: &ParseLimits) {
    let ctx = show(buf);
    assert!(n > 0 && n <= buf.len(), "Complete({n}) outside the buffer of {} bytes: {ctx}", buf.len());
    let body_len = req.body.len();
    assert!(body_len <= n, "body longer than the request: {ctx}");
    let head_len = n - body_len;
    assert_eq!(&buf[head_len..n], req.body.as_slice(), "the body is not the bytes before the end: {ctx}");
    let head = &buf[..head_len];
    assert!(head.ends_with(b"\r\n\r\n"), "the head does not end with an empty line: {ctx}");
    let bare_lf = head.iter().enumerate().any(|(i, &b)| b == b'\n' && (i == 0 || head[i - 1] != b'\r'));
    assert!(!bare_lf, "a head with a bare LF was accepted: {ctx}");
    assert!(head_len <= limits.max_head, "head of {head_len} bytes over max_head: {ctx}");
    assert!(body_len <= limits.max_body, "body of {body_len} bytes over max_body: {ctx}");
    let h = read_head(head);
    assert!(h.fields <= limits.max_headers, "{} header fields over max_headers: {ctx}", h.fields);
    assert!(!h.transfer_encoding, "a request with Transfer-Encoding was accepted: {ctx}");
    for cl in &h.content_lengths {
        let stated = std::str::from_utf8(cl).ok().filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
        let stated: Option<usize> = stated.and_then(|v| v.parse().ok());
        assert_eq!(stated, Some(body_len), "Content-Length {:?} but a body of {body_len} bytes: {ctx}", show(cl));
    }
    if h.content_lengths.is_empty() {
        assert_eq!(body_len, 0, "a body without Content-Length: {ctx}");
    }
    check_target(req, &h, &ctx);
}

/// The request's path, query and authority are what its target says (see
/// the module docs), read naively.
fn check_target(req: &Request, h: &Head, ctx: &str) {
    assert!(!req.path.contains('?'), "path {:?} holds the query: {ctx}", req.path);
    if h.target == b"*" {
        assert!(h.options && req.method == Method::Options, "* for another method than OPTIONS: {ctx}");
        assert_eq!((req.path.as_str(), req.query.as_str(), &req.authority), ("*", "", &None), "{ctx}");
        return;
    }
    // What follows the authority of an absolute URI, or the whole target.
    let mut rest = h.target.as_slice();
    if !h.target.starts_with(b"/") {
        let lower = h.target.to_ascii_lowercase();
        let scheme = [&b"http://"[..], b"https://"].into_iter().find(|s| lower.starts_with(s));
        let scheme = scheme.unwrap_or_else(|| panic!("a target that is no path, http URI or *: {ctx}"));
        let after = &h.target[scheme.len()..];
        let end = after.iter().position(|&b| b == b'/' || b == b'?').unwrap_or(after.len());
        let authority = req.authority.as_deref().unwrap_or_else(|| panic!("an absolute URI without authority: {ctx}"));
        assert_eq!(show(authority.as_bytes()), show(&after[..end]), "the authority is not the URI's: {ctx}");
        let host = authority.rsplit_once(':').map_or(authority, |(host, _)| host);
        assert!(!host.is_empty() && !authority.contains('@'), "host {authority:?} is empty or has userinfo: {ctx}");
        rest = &after[end..];
        if rest.is_empty() {
            let path = if h.options { "*" } else { "/" };
            assert_eq!((req.path.as_str(), req.query.as_str()), (path, ""), "an empty path: {ctx}");
            return;
        }
        if rest.starts_with(b"?") {
            assert_eq!(req.path, "/", "an empty path before a query: {ctx}");
            assert_eq!(show(req.query.as_bytes()), show(&rest[1..]), "the query is not the URI's: {ctx}");
            return;
        }
    } else {
        assert_eq!(req.authority, None, "an authority without an absolute URI: {ctx}");
    }
    assert!(req.path.starts_with('/'), "path {:?} does not start with '/': {ctx}", req.path);
    let mut target = req.path.clone().into_bytes();
    if !req.query.is_empty() || rest.contains(&b'?') {
        target.push(b'?');
        target.extend_from_slice(req.query.as_bytes());
    }
    assert_eq!(show(&target), show(rest), "path and query are not the request target: {ctx}");
}

/// Prefix lengths to parse: the short ones, the ends of lines and the bytes
/// around them, the end of the request, and evenly spread ones; at most
/// `max` of them (plus the end of a complete request), ascending.
fn prefix_points(buf: &[u8], end: Option<usize>, max: usize) -> Vec<usize> {
    let mut pts: Vec<usize> = (0..buf.len().min(16)).collect();
    for (i, &b) in buf.iter().enumerate() {
        if b == b'\n' {
            pts.extend([i, i + 1, i + 2]);
        }
    }
    if pts.len() > max / 2 {
        let step = pts.len() / (max / 2).max(1) + 1;
        pts = pts.into_iter().step_by(step).collect();
    }
    let spread = (max / 2).max(1);
    pts.extend((0..spread).map(|i| i * buf.len() / spread));
    if let Some(n) = end {
        pts.extend([n.saturating_sub(1), n, n + 1]);
    }
    pts.push(buf.len());
    pts.retain(|&k| k <= buf.len());
    pts.sort_unstable();
    pts.dedup();
    pts
}

/// The answers for growing prefixes of `buf` (whose own answer is `full`)
/// only go from `Partial` to `Complete` or to an error, and then stay.
fn check_prefixes(buf: &[u8], limits: &ParseLimits, full: &Outcome, max: usize) {
    let end = match full {
        Outcome::Complete(_, n) => Some(*n),
        _ => None,
    };
    let mut prev: Option<(usize, Outcome)> = None;
    for k in prefix_points(buf, end, max) {
        let now = if k == buf.len() { full.clone() } else { outcome(&buf[..k], limits) };
        if let Some((pk, p)) = &prev {
            let ok = match (p, &now) {
                (Outcome::Partial { expect_continue: true }, Outcome::Partial { expect_continue: false }) => false,
                (Outcome::Partial { .. }, _) => true,
                (Outcome::Complete(..), _) => *p == now,
                (Outcome::Error(a), Outcome::Error(b)) => a.status == b.status || a.status == 431,
                (Outcome::Error(_), _) => false,
            };
            assert!(
                ok,
                "the answer changed from {p:?} for the first {pk} bytes to {now:?} for the first {k}: {}",
                show(buf)
            );
        }
        prev = Some((k, now));
    }
}

/// xorshift64*: a tiny deterministic PRNG.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is taken as 1).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 if `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True in `percent` % of the calls.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// From `good`, or from `bad` in `percent` % of the picks.
    pub fn pick_mostly<T: Copy>(&mut self, good: &[T], bad: &[T], percent: usize) -> T {
        if self.chance(percent) {
            self.pick(bad)
        } else {
            self.pick(good)
        }
    }
}

/// Request methods, and malformed ones.
const METHODS: &[&[u8]] = &[b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"PATCH"];
const BAD_METHODS: &[&[u8]] = &[b"get", b"G\x00T", b"", b"M-SEARCH", b"GET\t", b"\xff"];

/// Request targets: routes, percent-encoding and dot-segment tricks,
/// non-ASCII; and below, targets the parser must refuse.
const PATHS: &[&[u8]] = &[
    b"/ping",
    b"/actions",
    b"/actions/hello",
    b"/actions/hello/block",
    b"/actions/%2e%2e/block",
    b"/actions/..%2Fx",
    b"/actions/a%2Fb/block",
    b"/actions/../actions/x",
    b"/actions/\xd0\xb0dmin",
    b"/invocation/0192e0a0-0000-7000-8000-000000000000",
    b"/invocations?action=x&limit=5",
    b"/",
    b"//x",
    b"/a?b?c",
    b"/%",
    b"*",
    b"http://example/ping",
    b"HTTPS://Example.com:8080/actions/hello/block",
    b"http://example",
    b"http://[::1]:80/invocations?limit=5",
];
const BAD_PATHS: &[&[u8]] = &[
    b"/actions/\xff\xfe",
    b"/actions/a\x00b",
    b"/\t",
    b"",
    b"ftp://example/ping",
    b"http://user@example/ping",
    b"http:///ping",
    b"http://exa_mple/ping",
    b"example/ping",
];

/// Header fields that keep a request valid; and below, fields that make it
/// ambiguous or malformed (smuggling shapes).
const HEADERS: &[&[u8]] = &[
    b"Host: test",
    b"Connection: close",
    b"Connection: keep-alive",
    b"Connection: Keep-Alive, Upgrade",
    b"Expect: 100-continue",
    b"Content-Length: 0",
    b"Content-Length:  3 ",
    b"Authorization: Bearer t",
    b"X-Empty:",
    b"X-Bin: \x80\xff",
    b"User-Agent: props/1.0",
    b"Accept: */*",
];
const BAD_HEADERS: &[&[u8]] = &[
    b"Expect: 200-ok",
    b"Transfer-Encoding: chunked",
    b"Transfer-Encoding: chunked, identity",
    b"transfer-encoding: identity",
    b"Content-Length: +5",
    b"Content-Length: 5, 5",
    b"Content-Length: -1",
    b"Content-Length: 99999999999999999999999",
    b"Content-Length: 0x10",
    b"Content-Length : 3",
    b"X-Fold: a\r\n b",
    b"X-Nul: a\x00b",
    b": novalue",
    b"NoColon",
    b"X Space: y",
];

/// A request-like byte string: sometimes well-formed, often not.
pub fn gen_request(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    let eol: &[u8] = if rng.chance(15) { b"\n" } else { b"\r\n" };
    out.extend_from_slice(rng.pick_mostly(METHODS, BAD_METHODS, 5));
    out.push(b' ');
    out.extend_from_slice(rng.pick_mostly(PATHS, BAD_PATHS, 5));
    if rng.chance(20) {
        out.extend_from_slice(b"?wait=1");
    }
    let versions: &[&[u8]] =
        &[b" HTTP/1.1", b" HTTP/1.1", b" HTTP/1.1", b" HTTP/1.0", b" HTTP/2.0", b"  HTTP/1.1", b""];
    out.extend_from_slice(rng.pick(versions));
    out.extend_from_slice(eol);
    let body_len = if rng.chance(50) { rng.below(40) } else { 0 };
    let fields = if rng.chance(3) { 60 + rng.below(10) } else { rng.below(6) };
    let mut wrote_cl = false;
    for _ in 0..fields {
        if rng.chance(20) && !wrote_cl {
            out.extend_from_slice(format!("Content-Length: {body_len}").as_bytes());
            wrote_cl = true;
        } else if rng.chance(5) {
            out.extend_from_slice(format!("Content-Length: {}", rng.below(40)).as_bytes());
        } else {
            out.extend_from_slice(rng.pick_mostly(HEADERS, BAD_HEADERS, 6));
        }
        out.extend_from_slice(eol);
    }
    if body_len > 0 && !wrote_cl && rng.chance(80) {
        out.extend_from_slice(format!("Content-Length: {body_len}").as_bytes());
        out.extend_from_slice(eol);
    }
    out.extend_from_slice(eol);
    for _ in 0..body_len {
        out.push(if rng.chance(90) { b'a' + rng.below(26) as u8 } else { rng.next_u64() as u8 });
    }
    if rng.chance(25) {
        // A smuggled or pipelined request after (or inside) the body.
        out.extend_from_slice(b"GET /ping HTTP/1.1\r\nHost: test\r\n\r\n");
    }
    out
}

/// Pieces the mutator inserts: line ends, separators, odd bytes.
const DICT: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n\r\n",
    b":",
    b" ",
    b"\t",
    b"\x00",
    b"\xff",
    b"%",
    b"?",
    b"/",
    b"Content-Length: 1\r\n",
];

/// One random edit of `buf`.
pub fn mutate(rng: &mut Rng, buf: &mut Vec<u8>) {
    let len = buf.len();
    match rng.below(7) {
        0 if len > 0 => {
            let i = rng.below(len);
            buf[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            buf[i] = rng.next_u64() as u8;
        }
        2 => {
            let i = rng.below(len + 1);
            let piece = rng.pick(DICT);
            buf.splice(i..i, piece.iter().copied());
        }
        3 if len > 0 => {
            let i = rng.below(len);
            let j = (i + 1 + rng.below(8)).min(len);
            buf.drain(i..j);
        }
        4 if len > 0 => {
            let i = rng.below(len);
            let j = (i + 1 + rng.below(16)).min(len);
            let copy = buf[i..j].to_vec();
            buf.splice(j..j, copy);
        }
        5 if len > 0 => buf.truncate(rng.below(len)),
        _ => {
            // CRLF to bare LF: one of them, or all.
            let crlfs: Vec<usize> = (0..len.saturating_sub(1)).filter(|&i| &buf[i..i + 2] == b"\r\n").collect();
            if crlfs.is_empty() {
                return;
            }
            if rng.chance(50) {
                buf.remove(crlfs[rng.below(crlfs.len())]);
            } else {
                for &i in crlfs.iter().rev() {
                    buf.remove(i);
                }
            }
        }
    }
}

/// 1,500 generated requests, each mutated twice, random bytes and huge
/// heads: every invariant holds, and the inputs reach all three answers.
#[test]
fn generated_and_mutated_requests_keep_the_invariants() {
    let start = std::time::Instant::now();
    let mut rng = Rng::new(0x5eed_0f5e_u64);
    let mut checked = 0;
    // Complete, partial and refused answers under the default limits.
    let mut seen = [0usize; 3];
    let mut tally = |o: &Outcome| match o {
        Outcome::Complete(..) => seen[0] += 1,
        Outcome::Partial { .. } => seen[1] += 1,
        Outcome::Error(_) => seen[2] += 1,
    };
    for _ in 0..1500 {
        let mut req = gen_request(&mut rng);
        check(&req, 32);
        tally(&outcome(&req, &ParseLimits::default()));
        checked += 1;
        for _ in 0..2 {
            for _ in 0..1 + rng.below(4) {
                mutate(&mut rng, &mut req);
            }
            check(&req, 32);
            tally(&outcome(&req, &ParseLimits::default()));
            checked += 1;
        }
    }
    eprintln!("complete {}, partial {}, refused {}", seen[0], seen[1], seen[2]);
    // The generator must exercise all three answers.
    assert!(seen.iter().all(|&n| n > 300), "{seen:?}");
    // Random bytes and long inputs, once each kind.
    for len in [0, 1, 7, 100, 5000, 70_000] {
        let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        check(&bytes, 32);
        checked += 1;
    }
    let long_head = format!("GET /ping HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    check(long_head.as_bytes(), 32);
    let many: String = (0..10_000).map(|i| format!("X-{i}: y\r\n")).collect();
    check(format!("GET /ping HTTP/1.1\r\n{many}\r\n").as_bytes(), 32);
    assert!(checked > 4000);
    eprintln!("checked {checked} inputs in {:?}", start.elapsed());
}

/// A complete request and its length, or the error status; panics on
/// `Partial`.
fn status(s: &[u8]) -> Result<(usize, Request), u16> {
    match parse(s, &ParseLimits::default()) {
        Ok(Parsed::Complete(r, n)) => Ok((n, r)),
        Ok(Parsed::Partial { .. }) => panic!("partial: {}", show(s)),
        Err(e) => Err(e.status),
    }
}

/// Ambiguous framings get their error status, never a request.
#[test]
fn smuggling_shapes_are_refused() {
    let cases: &[(&[u8], u16)] = &[
        (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 411),
        (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\nhello", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\nhello", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\nhello", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\nhello", 400),
        (b"POST / HTTP/1.1\r\nX: a\r\n Content-Length: 5\r\n\r\nhello", 400),
        (b"POST / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", 400),
        (b"GET /a\x00b HTTP/1.1\r\n\r\n", 400),
        (b"GET /\xff\xfe HTTP/1.1\r\n\r\n", 400),
        // Bare LF: a header that a CRLF-only reader sees inside X's value.
        (b"POST / HTTP/1.1\r\nX: a\nContent-Length: 5\r\n\r\nhello", 400),
        (b"POST / HTTP/1.1\nContent-Length: 5\n\nhello", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\nhello", 400),
        // A lone CR is no line end either.
        (b"POST / HTTP/1.1\r\nX: a\rContent-Length: 5\r\n\r\nhello", 400),
    ];
    for (req, want) in cases {
        assert_eq!(status(req).map(|(n, _)| n), Err(*want), "{}", show(req));
        check(req, 1000);
    }
}

/// A request inside a body stays body bytes, and bare LF is refused.
#[test]
fn bodies_cannot_hide_a_second_request() {
    // The body boundary is Content-Length alone: a request inside a body
    // is body bytes, and the bytes after it are the next request.
    let inner = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut req = b"POST /actions/x/block HTTP/1.1\r\nHost: x\r\nContent-Length: 31\r\n\r\n".to_vec();
    req.extend_from_slice(inner);
    let (n, r) = status(&req).unwrap();
    assert_eq!((n, r.body.as_slice()), (req.len(), &inner[..]), "{}", show(&req));
    check(&req, 1000);
    req.extend_from_slice(b"DELETE /actions/y HTTP/1.1\r\n\r\n");
    let (n2, r2) = status(&req).unwrap();
    assert_eq!((n2, r2), (n, r));
    let (_, next) = status(&req[n..]).unwrap();
    assert_eq!((next.method, next.path.as_str()), (Method::Delete, "/actions/y"));
    check(&req, 1000);
    // Bare LF line ends are refused wherever they are in the head (httparse
    // would accept them), so the head cannot be read two ways; in the body
    // they are only data.
    for bad in [
        &b"GET /ping HTTP/1.1\nHost: x\r\n\r\n"[..],
        b"GET /ping HTTP/1.1\r\nHost: x\n\r\n",
        b"GET /ping HTTP/1.1\r\nHost: x\r\n\n",
        b"GET /ping HTTP/1.1\nHost: x\n\n",
    ] {
        assert_eq!(status(bad).map(|(n, _)| n), Err(400), "{}", show(bad));
        check(bad, 1000);
    }
    let with_lf = b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\na\n\nb";
    assert_eq!(status(with_lf).unwrap().1.body, b"a\n\nb");
}

/// Empty lines before the request line are skipped, as RFC 9112 allows.
#[test]
fn empty_lines_before_the_request_line_are_skipped() {
    // Found by the fuzzer (in the checker, which did not skip them).
    let req = b"\r\n\r\nPOST /actions?x HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
    let (n, r) = status(req).unwrap();
    assert_eq!((n, r.path.as_str(), r.query.as_str(), r.body.as_slice()), (req.len(), "/actions", "x", &b"{}"[..]));
    check(req, 1000);
    let fuzzed =
        b"\r\nPOST /actions HTTP/1.1\r\nContent-Lenpth: 5\r\nTransfer-Enhoding: chunked\r\n\r\n\r\x1c0\r\n\r\n\n";
    check(fuzzed, 1000);
}

/// The request forms RFC 9112 (3.2) requires a server to accept besides an
/// absolute path: an absolute URI, whose authority replaces Host, and `*`
/// for OPTIONS; other targets stay refused.
#[test]
fn absolute_and_asterisk_forms_are_requests() {
    for (req, path, query) in [
        (&b"GET http://example.com/ping?x=1 HTTP/1.1\r\nHost: other\r\n\r\n"[..], "/ping", "x=1"),
        (b"POST HTTPS://Example.com:8080/actions HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", "/actions", ""),
        (b"GET http://[::1]:80 HTTP/1.1\r\n\r\n", "/", ""),
        (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", "*", ""),
        (b"OPTIONS http://example.com HTTP/1.1\r\n\r\n", "*", ""),
    ] {
        let (n, r) = status(req).unwrap_or_else(|e| panic!("{e}: {}", show(req)));
        assert_eq!((n, r.path.as_str(), r.query.as_str()), (req.len(), path, query), "{}", show(req));
        check(req, 1000);
    }
    for req in [
        &b"GET * HTTP/1.1\r\n\r\n"[..],
        b"OPTIONS *?x HTTP/1.1\r\n\r\n",
        b"GET ftp://example.com/ping HTTP/1.1\r\n\r\n",
        b"GET http://user@example.com/ping HTTP/1.1\r\n\r\n",
        b"GET http:///ping HTTP/1.1\r\n\r\n",
        b"GET example.com/ping HTTP/1.1\r\n\r\n",
    ] {
        assert_eq!(status(req).map(|(n, _)| n), Err(400), "{}", show(req));
        check(req, 1000);
    }
}
