//! The head of a request whose body has not fully arrived: what a server
//! needs to refuse it before reading the body (its method, target and
//! credentials).

use std::mem::MaybeUninit;

use super::request::{target_path, Method};

/// The parts of a complete request head that decide whether its body is
/// worth reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: Method,
    /// The request target as sent (path and query).
    pub target: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<Vec<u8>>,
}

impl Head {
    /// The target's path, without the query (or an absolute-form
    /// target's authority).
    pub fn path(&self) -> &str {
        target_path(&self.method, &self.target)
    }
}

/// The head at the start of `buf`, if it is complete and well formed
/// (call it once [`parse`](super::parse) said the request is partial with
/// its head in: that parse checked the framing rules).
pub fn parse_head(buf: &[u8], max_headers: usize) -> Option<Head> {
    let mut slots = vec![MaybeUninit::<httparse::Header>::uninit(); max_headers];
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    let authorization =
        req.headers.iter().find(|h| h.name.eq_ignore_ascii_case("authorization")).map(|h| h.value.to_vec());
    Some(Head { method: Method::parse(req.method?), target: req.path?.to_string(), authorization })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_head_gives_method_target_and_credentials() {
        let h = parse_head(
            b"POST /actions/a/block?x=1 HTTP/1.1\r\nAuthorization: Bearer t\r\nContent-Length: 9\r\n\r\n{",
            64,
        )
        .unwrap();
        assert_eq!(
            (&h.method, h.path(), h.authorization.as_deref()),
            (&Method::Post, "/actions/a/block", Some(&b"Bearer t"[..]))
        );
        assert!(parse_head(b"POST / HTTP/1.1\r\nContent-Le", 64).is_none());
        let h = parse_head(b"POST http://h:80/actions/a?x HTTP/1.1\r\n\r\n", 64).unwrap();
        assert_eq!(h.path(), "/actions/a");
        assert_eq!(parse_head(b"GET /p HTTP/1.1\r\n\r\n", 64).unwrap().authorization, None);
    }
}
