//! Percent-decoding for path patterns and request path segments.
//!
//! Hand-written rather than taken from `percent-encoding` because the
//! matcher needs what that crate does not give: invalid escapes (`%zz`,
//! a trailing `%4`) must be errors rather than passed through, the check
//! must not allocate, and `+` is a literal (unlike `form_urlencoded`).

/// The value of an ASCII hex digit.
pub(crate) fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 unreserved characters: written as they are in a normalised pattern.
pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Appends `decoded` percent-encoded: unreserved bytes as they are, every
/// other byte as `%XX` (upper-case hex), so equal segments render equally.
pub(crate) fn encode_into(decoded: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in decoded.as_bytes() {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

/// The decoded bytes of a raw segment; `Err(offset)` (byte offset of the
/// `%`) at the first invalid escape, after which the iterator ends.
pub(crate) struct Decode<'a> {
    raw: &'a [u8],
    i: usize,
}

pub(crate) fn decode(raw: &str) -> Decode<'_> {
    Decode { raw: raw.as_bytes(), i: 0 }
}

impl Iterator for Decode<'_> {
    type Item = Result<u8, usize>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = *self.raw.get(self.i)?;
        if b != b'%' {
            self.i += 1;
            return Some(Ok(b));
        }
        let digit = |k: usize| self.raw.get(self.i + k).copied().and_then(hex);
        match (digit(1), digit(2)) {
            (Some(hi), Some(lo)) => {
                self.i += 3;
                Some(Ok(hi << 4 | lo))
            }
            _ => {
                let at = self.i;
                self.i = self.raw.len();
                Some(Err(at))
            }
        }
    }
}

/// Why a request path segment cannot be decoded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BadSegment {
    /// An invalid escape at this byte offset of the segment.
    Escape(usize),
    /// The decoded bytes are not UTF-8.
    Utf8,
}

/// Checks that `raw` percent-decodes to valid UTF-8, without allocating:
/// decoded bytes go through a small stack buffer validated chunk by chunk
/// (an incomplete character at a chunk's end is carried into the next).
pub(crate) fn check(raw: &str) -> Result<(), BadSegment> {
    if !raw.as_bytes().contains(&b'%') {
        return Ok(()); // a &str is UTF-8 already
    }
    let mut buf = [0u8; 128];
    let mut len = 0;
    for b in decode(raw) {
        buf[len] = b.map_err(BadSegment::Escape)?;
        len += 1;
        if len == buf.len() {
            len = flush(&mut buf, len)?;
        }
    }
    match flush(&mut buf, len)? {
        0 => Ok(()),
        _ => Err(BadSegment::Utf8), // ends inside a character
    }
}

/// Validates `buf[..len]`; moves an incomplete trailing character to the
/// front and returns its length.
fn flush(buf: &mut [u8], len: usize) -> Result<usize, BadSegment> {
    match std::str::from_utf8(&buf[..len]) {
        Ok(_) => Ok(0),
        Err(e) if e.error_len().is_none() => {
            let valid = e.valid_up_to();
            buf.copy_within(valid..len, 0);
            Ok(len - valid)
        }
        Err(_) => Err(BadSegment::Utf8),
    }
}

/// Decodes a valid `raw` into `buf`; `None` when it does not fit (or is invalid).
pub(crate) fn decode_into(raw: &str, buf: &mut [u8]) -> Option<usize> {
    let mut n = 0;
    for b in decode(raw) {
        *buf.get_mut(n)? = b.ok()?;
        n += 1;
    }
    Some(n)
}

/// Decodes a segment (or several, with their '/') that [`check`] accepted.
pub(crate) fn decode_string(raw: &str) -> String {
    if !raw.as_bytes().contains(&b'%') {
        return raw.to_owned();
    }
    let mut bytes = Vec::with_capacity(raw.len()); // decoding only shrinks
    bytes.extend(decode(raw).map_while(Result::ok));
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_accepts_plain_and_valid_escapes() {
        assert_eq!(check("abc"), Ok(()));
        assert_eq!(check("a%20b"), Ok(()));
        assert_eq!(check("caf%C3%A9"), Ok(()));
        assert_eq!(check("%e2%82%ac"), Ok(()));
    }

    #[test]
    fn check_rejects_bad_escapes_with_offset() {
        assert_eq!(check("ab%zz"), Err(BadSegment::Escape(2)));
        assert_eq!(check("%4"), Err(BadSegment::Escape(0)));
        assert_eq!(check("x%"), Err(BadSegment::Escape(1)));
    }

    #[test]
    fn check_rejects_invalid_utf8() {
        assert_eq!(check("%FF"), Err(BadSegment::Utf8));
        assert_eq!(check("%C3"), Err(BadSegment::Utf8)); // truncated
        assert_eq!(check("%C3x"), Err(BadSegment::Utf8));
        assert_eq!(check("%ED%A0%80"), Err(BadSegment::Utf8)); // surrogate
        assert_eq!(check("%C0%AF"), Err(BadSegment::Utf8)); // overlong '/'
    }

    #[test]
    fn check_handles_characters_across_chunk_boundaries() {
        // 127 ASCII bytes then a 3-byte character: it straddles the 128-byte chunk.
        let long = format!("{}%E2%82%AC{}", "a".repeat(127), "b".repeat(300));
        assert_eq!(check(&long), Ok(()));
        let bad = format!("{}%E2%82{}", "a".repeat(127), "b".repeat(300));
        assert_eq!(check(&bad), Err(BadSegment::Utf8));
    }

    #[test]
    fn decoding() {
        assert_eq!(decode_string("a%2Fb+c"), "a/b+c");
        assert_eq!(decode_string("caf%c3%a9"), "café");
        let mut buf = [0u8; 4];
        assert_eq!(decode_into("a%41", &mut buf), Some(2));
        assert_eq!(&buf[..2], b"aA");
        assert_eq!(decode_into("abcde", &mut buf), None);
    }

    #[test]
    fn encoding_is_canonical() {
        let mut s = String::new();
        encode_into("a~b/c é", &mut s);
        assert_eq!(s, "a~b%2Fc%20%C3%A9");
    }
}
