//! Parsing and normalisation of a route's method, host and path pattern.

use super::error::RouteError;
use super::pct;

/// Longest pattern accepted, in bytes as written.
pub const MAX_PATTERN_LEN: usize = 1024;
/// Most segments a pattern may have.
pub const MAX_SEGMENTS: usize = 64;
/// Longest host name accepted (without a trailing '.').
pub const MAX_HOST_LEN: usize = 253;

/// A route's method. Declared in alphabetical order, so a bit set of
/// methods iterates sorted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Delete,
    Get,
    Head,
    Options,
    Patch,
    Post,
    Put,
    /// `*`: any method.
    Any,
}

pub(crate) const METHODS: [Method; 8] =
    [Method::Delete, Method::Get, Method::Head, Method::Options, Method::Patch, Method::Post, Method::Put, Method::Any];

impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method::Delete => "DELETE",
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
            Method::Patch => "PATCH",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Any => "*",
        }
    }

    /// A route's method, case-insensitive.
    pub(crate) fn parse(input: &str) -> Result<Self, RouteError> {
        METHODS.iter().copied().find(|m| m.as_str().eq_ignore_ascii_case(input)).ok_or_else(|| {
            RouteError::Invalid(format!(
                "invalid method {:?}: expected GET, POST, PUT, PATCH, DELETE, OPTIONS, HEAD or *",
                clip(input)
            ))
        })
    }

    /// A request's method: exact (HTTP methods are case-sensitive); `None`
    /// for any other method, which only `*` routes accept.
    pub(crate) fn from_request(input: &str) -> Option<Self> {
        METHODS[..7].iter().copied().find(|m| m.as_str() == input)
    }

    pub(crate) fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// One segment of a parsed pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    /// Static text, percent-decoded.
    Static(Box<str>),
    /// `:name`
    Param,
    /// `*name` (always last)
    Wildcard,
}

/// A named param of a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Param {
    pub name: Box<str>,
    /// Index of its segment (0-based).
    pub index: usize,
    pub wildcard: bool,
}

/// A parsed pattern.
#[derive(Debug)]
pub(crate) struct Pattern {
    pub segments: Vec<Segment>,
    pub params: Vec<Param>,
    /// The normalised text: no trailing slash, static text percent-encoded canonically.
    pub text: String,
}

/// At most 64 characters of user input, for error messages.
fn clip(input: &str) -> String {
    match input.char_indices().nth(64) {
        Some((i, _)) => format!("{}...", &input[..i]),
        None => input.to_owned(),
    }
}

/// Normalises a route's host: "" (any host) or a lower-case host name.
pub(crate) fn parse_host(input: &str) -> Result<String, RouteError> {
    if input.is_empty() {
        return Ok(String::new());
    }
    let fail = |what: String| RouteError::Invalid(format!("invalid host {:?}: {what}", clip(input)));
    let name = input.strip_suffix('.').unwrap_or(input);
    if name.len() > MAX_HOST_LEN {
        return Err(fail(format!("it is {} bytes long; the maximum is {MAX_HOST_LEN}", name.len())));
    }
    if name.contains(':') {
        return Err(fail("a host must not carry a port (routes match any port)".into()));
    }
    if let Some((i, c)) = name.char_indices().find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '-' || c == '.')) {
        return Err(fail(format!(
            "character {c:?} at byte {} is not allowed (letters, digits, '-' and '.' only)",
            i + 1
        )));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(fail("empty label (a leading '.' or \"..\")".into()));
        }
        if label.len() > 63 {
            return Err(fail(format!("label {:?} is longer than 63 characters", clip(label))));
        }
    }
    Ok(name.to_ascii_lowercase())
}

/// Parses and normalises a path pattern.
pub(crate) fn parse_pattern(input: &str) -> Result<Pattern, RouteError> {
    if input.len() > MAX_PATTERN_LEN {
        return Err(RouteError::Invalid(format!(
            "invalid pattern: it is {} bytes long; the maximum is {MAX_PATTERN_LEN}",
            input.len()
        )));
    }
    let fail = |what: String| RouteError::Invalid(format!("invalid pattern {input:?}: {what}"));
    let Some(body) = input.strip_prefix('/') else {
        return Err(fail("it must start with '/'".into()));
    };
    let mut pattern = Pattern { segments: Vec::new(), params: Vec::new(), text: String::with_capacity(input.len()) };
    if body.is_empty() {
        pattern.text.push('/');
        return Ok(pattern);
    }
    // One trailing slash is dropped; what remains must not be empty ("//").
    let body = body.strip_suffix('/').unwrap_or(body);
    let raw: Vec<&str> = body.split('/').collect();
    if raw.len() > MAX_SEGMENTS {
        return Err(fail(format!("it has {} segments; the maximum is {MAX_SEGMENTS}", raw.len())));
    }
    for (index, &seg) in raw.iter().enumerate() {
        let n = index + 1;
        if seg.is_empty() {
            return Err(fail(format!("segment {n} is empty (\"//\")")));
        }
        let at = |what: String| fail(format!("segment {n} {seg:?}: {what}"));
        pattern.text.push('/');
        let kind = seg.as_bytes()[0];
        if kind == b':' || kind == b'*' {
            let name = &seg[1..];
            check_name(name).map_err(at)?;
            let wildcard = kind == b'*';
            if wildcard && n != raw.len() {
                return Err(at("a wildcard must be the last segment".into()));
            }
            if pattern.params.iter().any(|p| &*p.name == name) {
                return Err(at(format!("param name {name:?} is used twice")));
            }
            pattern.params.push(Param { name: name.into(), index, wildcard });
            pattern.segments.push(if wildcard { Segment::Wildcard } else { Segment::Param });
            pattern.text.push_str(seg);
        } else {
            let text = parse_static(seg).map_err(at)?;
            if text == "." || text == ".." {
                return Err(at("\".\" and \"..\" segments are not allowed".into()));
            }
            pct::encode_into(&text, &mut pattern.text);
            pattern.segments.push(Segment::Static(text.into()));
        }
    }
    Ok(pattern)
}

/// A param or wildcard name: `[A-Za-z_][A-Za-z0-9_]*`.
fn check_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    match bytes.next() {
        None => Err("the name is missing".into()),
        Some(b) if !(b.is_ascii_alphabetic() || b == b'_') => {
            Err(format!("name {name:?} must start with a letter or '_'"))
        }
        _ if !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
            Err(format!("name {name:?} may only contain letters, digits and '_'"))
        }
        _ => Ok(()),
    }
}

/// Decodes a static segment: unreserved characters and `%XX` escapes only.
fn parse_static(seg: &str) -> Result<String, String> {
    let bytes = seg.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if pct::is_unreserved(b) {
            out.push(b);
            i += 1;
        } else if b == b'%' {
            let digit = |k: usize| bytes.get(i + k).copied().and_then(pct::hex);
            let (Some(hi), Some(lo)) = (digit(1), digit(2)) else {
                let escape: String = seg[i..].chars().take(3).collect();
                return Err(format!("invalid percent-encoding {escape:?} at byte {}", i + 1));
            };
            out.push(hi << 4 | lo);
            i += 3;
        } else if b == b':' || b == b'*' {
            return Err(format!("'{}' is only allowed at the start of a segment", b as char));
        } else {
            // i is on a character boundary: only ASCII has been skipped.
            let c = seg[i..].chars().next().unwrap_or('?');
            return Err(format!(
                "character {c:?} at byte {} is not allowed (percent-encode it; allowed as is: A-Z a-z 0-9 - . _ ~)",
                i + 1
            ));
        }
    }
    String::from_utf8(out).map_err(|_| "the percent-encoding does not decode to UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(input: &str) -> String {
        parse_pattern(input).unwrap().text
    }

    /// The error message for `input`, checked to contain each of `parts`.
    fn err(input: &str, parts: &[&str]) {
        let RouteError::Invalid(msg) = parse_pattern(input).unwrap_err() else { panic!("not Invalid") };
        for part in parts {
            assert!(msg.contains(part), "{input:?}: {msg:?} lacks {part:?}");
        }
    }

    fn host_err(input: &str, part: &str) {
        let RouteError::Invalid(msg) = parse_host(input).unwrap_err() else { panic!("not Invalid") };
        assert!(msg.contains(part), "{input:?}: {msg:?} lacks {part:?}");
    }

    #[test]
    fn normalisation() {
        assert_eq!(text("/"), "/");
        assert_eq!(text("/users/"), "/users");
        assert_eq!(text("/users/:id/"), "/users/:id");
        assert_eq!(text("/files/*rest/"), "/files/*rest");
        assert_eq!(text("/a%7e%41/b%2f"), "/a~A/b%2F");
        assert_eq!(text("/caf%c3%a9"), "/caf%C3%A9");
        assert_eq!(text("/a.b/_x-y~"), "/a.b/_x-y~");
        let p = parse_pattern("/a/:b/x%2Fy/*c").unwrap();
        assert_eq!(
            p.segments,
            vec![Segment::Static("a".into()), Segment::Param, Segment::Static("x/y".into()), Segment::Wildcard]
        );
        assert_eq!(
            p.params.iter().map(|p| (&*p.name, p.index, p.wildcard)).collect::<Vec<_>>(),
            [("b", 1, false), ("c", 3, true)]
        );
    }

    #[test]
    fn pattern_errors_name_the_problem() {
        err("", &["must start with '/'"]);
        err("users", &["must start with '/'"]);
        err("//", &["segment 1 is empty"]);
        err("/a//b", &["segment 2 is empty"]);
        err("/a//", &["segment 2 is empty"]);
        err(&format!("/{}", "a".repeat(1024)), &["1025 bytes", "maximum is 1024"]);
        err(&"/a".repeat(65), &["65 segments", "maximum is 64"]);
        err("/a/b:c", &["segment 2", "':' is only allowed at the start"]);
        err("/a*b", &["segment 1", "'*' is only allowed at the start"]);
        err("/a b", &["segment 1", "character ' '", "not allowed"]);
        err("/é", &["character 'é'"]);
        err("/a!", &["character '!'"]);
        err("/a%zz", &["invalid percent-encoding \"%zz\" at byte 2"]);
        err("/a%4", &["invalid percent-encoding \"%4\""]);
        err("/%FF", &["does not decode to UTF-8"]);
        err("/users/:", &["segment 2", "name is missing"]);
        err("/*", &["name is missing"]);
        err("/users/:1d", &["\"1d\" must start with a letter"]);
        err("/users/:i-d", &["\"i-d\" may only contain"]);
        err("/a/:id/b/:id", &["segment 4", "\"id\" is used twice"]);
        err("/a/:id/*id", &["\"id\" is used twice"]);
        err("/a/*rest/b", &["segment 2", "wildcard must be the last segment"]);
        err("/a/./b", &["segment 2", "\".\" and \"..\""]);
        err("/a/..", &["\".\" and \"..\""]);
        err("/a/%2E%2e", &["\".\" and \"..\""]);
        assert!(parse_pattern(&"/a".repeat(64)).is_ok());
        assert!(parse_pattern(&format!("/{}", "a".repeat(1023))).is_ok());
    }

    #[test]
    fn methods() {
        assert_eq!(Method::parse("get").unwrap(), Method::Get);
        assert_eq!(Method::parse("Delete").unwrap(), Method::Delete);
        assert_eq!(Method::parse("*").unwrap(), Method::Any);
        let RouteError::Invalid(msg) = Method::parse("FETCH").unwrap_err() else { panic!() };
        assert!(msg.contains("invalid method \"FETCH\""), "{msg}");
        assert!(Method::parse("").is_err());
        assert!(Method::parse("TRACE").is_err());
        assert_eq!(Method::from_request("GET"), Some(Method::Get));
        assert_eq!(Method::from_request("get"), None);
        assert_eq!(Method::from_request("*"), None);
    }

    #[test]
    fn hosts() {
        assert_eq!(parse_host("").unwrap(), "");
        assert_eq!(parse_host("Example.COM").unwrap(), "example.com");
        assert_eq!(parse_host("example.com.").unwrap(), "example.com");
        assert_eq!(parse_host("a-1.b2").unwrap(), "a-1.b2");
        assert_eq!(parse_host(&"a".repeat(63)).unwrap().len(), 63);
        host_err("example.com:8080", "must not carry a port");
        host_err("exa mple.com", "character ' ' at byte 4");
        host_err("exa_mple.com", "character '_'");
        host_err("*.example.com", "character '*'");
        host_err(".example.com", "empty label");
        host_err("a..b", "empty label");
        host_err(".", "empty label");
        host_err(&"a".repeat(64), "longer than 63");
        let long = ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(62)].join(".");
        assert_eq!(long.len(), 254);
        host_err(&long, "254 bytes long; the maximum is 253");
    }
}
