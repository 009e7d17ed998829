//! A position in a topic, where a subscription starts (`slcli sub create
//! --from`, `from` in sl.toml) or where a reset moves it (`slcli sub reset
//! --to`): `beginning`, `end`, an offset, or an RFC 3339 time, which slcli
//! turns into Unix milliseconds for the server.

use std::fmt;
use std::str::FromStr;

use serde_json::{json, Value};

/// A position as the server takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// The oldest retained message of each partition.
    Beginning,
    /// After the newest message of each partition: only messages published
    /// from now on.
    End,
    /// This offset in every partition.
    Offset(i64),
    /// In each partition, the first message published at or after this
    /// time (Unix milliseconds).
    Time(i64),
}

/// What a position may be, for messages.
pub const FORMS: &str = "beginning, end, an offset such as 1042, or an RFC 3339 time such as 2026-12-08T09:00:00Z";

impl Position {
    /// The position as the API takes it: `"beginning"`, `"end"`,
    /// `{"offset": N}` or `{"time": UNIX_MS}`.
    pub fn json(self) -> Value {
        match self {
            Position::Beginning => json!("beginning"),
            Position::End => json!("end"),
            Position::Offset(n) => json!({ "offset": n }),
            Position::Time(ms) => json!({ "time": ms }),
        }
    }

    /// Reads an RFC 3339 time (`2026-12-08T09:00:00Z`, `2026-12-08T10:00:00.5+01:00`).
    pub fn time(text: &str) -> Result<Self, String> {
        chrono::DateTime::parse_from_rfc3339(text.trim())
            .map(|t| Position::Time(t.timestamp_millis()))
            .map_err(|e| format!("'{text}' is not a valid position ({e}): use {FORMS}"))
    }
}

impl FromStr for Position {
    type Err = String;

    /// `beginning`, `end`, a whole number (an offset) or an RFC 3339 time.
    fn from_str(text: &str) -> Result<Self, String> {
        let t = text.trim();
        match t {
            "beginning" => Ok(Position::Beginning),
            "end" => Ok(Position::End),
            _ if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => {
                t.parse().map(Position::Offset).map_err(|_| format!("the offset {t} is too large"))
            }
            _ if t.starts_with('-') && t[1..].bytes().all(|b| b.is_ascii_digit()) => {
                Err(format!("'{t}' is not a valid position: an offset is 0 or more"))
            }
            _ => Position::time(t),
        }
    }
}

/// `beginning`, `end`, `offset 1042`, or `2026-12-08T09:00:00Z`.
impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Beginning => f.write_str("beginning"),
            Position::End => f.write_str("end"),
            Position::Offset(n) => write!(f, "offset {n}"),
            Position::Time(ms) if ms % 1000 == 0 => f.write_str(&crate::output::timestamp(*ms)),
            Position::Time(ms) => {
                let shown = crate::output::timestamp(*ms);
                write!(f, "{}.{:03}Z", shown.trim_end_matches('Z'), ms.rem_euclid(1000))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_read() {
        assert_eq!("beginning".parse(), Ok(Position::Beginning));
        assert_eq!(" end ".parse(), Ok(Position::End));
        assert_eq!("0".parse(), Ok(Position::Offset(0)));
        assert_eq!("1042".parse(), Ok(Position::Offset(1042)));
        assert_eq!("2026-12-08T09:00:00Z".parse(), Ok(Position::Time(1_796_720_400_000)));
        assert_eq!("2026-12-08T10:00:00+01:00".parse(), Ok(Position::Time(1_796_720_400_000)));
        assert_eq!("2026-12-08T09:00:00.250Z".parse(), Ok(Position::Time(1_796_720_400_250)));
        assert_eq!("1969-12-31T23:59:59Z".parse(), Ok(Position::Time(-1000)));
    }

    #[test]
    fn bad_positions_say_what_a_position_is() {
        for bad in ["", "start", "2026-12-08", "2026-12-08T09:00:00", "tomorrow", "1e3"] {
            let e = bad.parse::<Position>().unwrap_err();
            assert!(e.contains("is not a valid position") && e.contains(FORMS), "{bad}: {e}");
        }
        assert!("-5".parse::<Position>().unwrap_err().contains("an offset is 0 or more"));
        assert!("99999999999999999999".parse::<Position>().unwrap_err().contains("too large"));
    }

    #[test]
    fn positions_as_json_and_text() {
        assert_eq!(Position::Beginning.json(), json!("beginning"));
        assert_eq!(Position::End.json(), json!("end"));
        assert_eq!(Position::Offset(7).json(), json!({"offset": 7}));
        assert_eq!(Position::Time(1_796_720_400_000).json(), json!({"time": 1_796_720_400_000_i64}));
        assert_eq!(Position::Offset(7).to_string(), "offset 7");
        assert_eq!(Position::Time(1_796_720_400_000).to_string(), "2026-12-08T09:00:00Z");
        assert_eq!(Position::Time(1_796_720_400_250).to_string(), "2026-12-08T09:00:00.250Z");
    }
}
