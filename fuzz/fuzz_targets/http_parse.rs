//! Fuzzes `slserver::http::parse` with arbitrary bytes.
//!
//! The invariants are those of the deterministic property test
//! (`server/tests/http_parse_props.rs`, included here so that both check
//! the same things): no panic; the same answer twice; a `Complete(req, n)`
//! lies inside the buffer, its head ends every line with CRLF (no bare LF),
//! has no `Transfer-Encoding`, and its body has exactly the bytes every
//! `Content-Length` states; its target is an absolute path, an http or
//! https URI (with a host and no userinfo) or `*` for OPTIONS, and path,
//! query and authority are what the target says; growing the input only
//! ever turns `Partial` into `Complete` (which then stays the same
//! request) or into an error (which stays an error); all under the default
//! and tiny limits, and a request
//! complete under the tiny limits means the same under the default ones.
//! Run it with `scripts/fuzz` (docs/hostile-clients.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code, unused_imports)]
#[path = "../../server/tests/http_parse_props.rs"]
mod props;

fuzz_target!(|data: &[u8]| {
    props::check(data, 64);
});
