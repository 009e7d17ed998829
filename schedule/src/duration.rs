//! Durations such as `30s`, `5m` or `1h30m`: the `@every` interval specs and
//! jitter and grace settings.
//!
//! This is the only text this crate parses by hand, because no maintained
//! crate reads this form as it stands. Cron crates know `@every` not at all
//! (croner's nicknames stop at `@hourly` … `@yearly`; the `cron` crate has
//! the same and wants a seconds field besides). General duration parsers
//! read a much wider language with other meanings: humantime takes
//! `2h 37min`, `1hour` and `M` for a month of 30.44 days next to `m` for a
//! minute (and is no longer maintained); jiff's friendly format also reads
//! fractions, signs and ISO 8601 (`PT1H30M`). Accepting theirs would make
//! `@every 1M` a month, and rejecting the rest after them would be more code
//! than this. The grammar here is small and strict, one spelling per
//! duration:
//!
//! ```text
//! duration = group { group }
//! group    = digits unit
//! unit     = "d" | "h" | "m" | "s" | "ms"      (24 h, 60 min, 60 s, 1000 ms, 1 ms)
//! ```
//!
//! Units go from largest to smallest and each appears at most once (`1h30m`,
//! not `30m1h` nor `1h1h`); numbers are unsigned decimal integers (no sign, no
//! fraction, no spaces inside); the whole text may be surrounded by spaces and
//! is case-sensitive (`5M` is rejected). A day is always 86,400 s: intervals
//! are real elapsed time, not calendar days.

use crate::ScheduleError;

/// The units, largest first, with their length in milliseconds.
const UNITS: [(&str, u64); 5] = [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// Parses a duration such as `30s`, `5m`, `1h30m`, `2d` or `1500ms` into
/// milliseconds.
///
/// ```text
/// duration = group { group }
/// group    = digits unit
/// unit     = "d" | "h" | "m" | "s" | "ms"      (24 h, 60 min, 60 s, 1000 ms, 1 ms)
/// ```
///
/// Units go from largest to smallest and each appears at most once (`1h30m`,
/// not `30m1h` nor `1h1h`); numbers are unsigned decimal integers (no sign,
/// no fraction, no spaces inside); the whole text may be surrounded by
/// spaces; units are lower-case. A day is always 86,400 s. The total must
/// fit in an `i64` of milliseconds.
///
/// `0s` is a valid duration (zero); callers that need a positive one check
/// it themselves (an `@every` interval must be at least 1 s, see
/// [`ScheduleError::IntervalTooShort`]).
///
/// This is the only syntax the crate parses by hand: no maintained crate
/// reads durations in exactly this form (see the source's module docs).
///
/// # Errors
///
/// [`ScheduleError::InvalidDuration`] naming the text and what is wrong with
/// it, e.g. `invalid duration '5x': unknown unit 'x' (expected d, h, m, s or
/// ms)`.
///
/// ```
/// assert_eq!(sl_schedule::parse_duration("1h30m").unwrap(), 5_400_000);
/// assert_eq!(sl_schedule::parse_duration(" 250ms ").unwrap(), 250);
/// assert!(sl_schedule::parse_duration("30m1h").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<u64, ScheduleError> {
    parse_ms(text).map_err(|reason| ScheduleError::InvalidDuration { text: text.to_string(), reason })
}

/// The grammar itself; the error is the reason only, for the caller to wrap.
pub(crate) fn parse_ms(text: &str) -> Result<u64, String> {
    let body = text.trim();
    if body.is_empty() {
        return Err("empty (expected e.g. 30s, 5m or 1h30m)".to_string());
    }
    let bytes = body.as_bytes();
    let mut pos = 0;
    let mut total: u64 = 0;
    // Index into UNITS of the last unit seen; the next one must come later.
    let mut last_unit: Option<usize> = None;
    while pos < bytes.len() {
        let digits_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos == digits_start {
            return Err(format!("expected a number at '{}'", &body[digits_start..]));
        }
        let digits = &body[digits_start..pos];
        let unit_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_alphabetic() {
            pos += 1;
        }
        let unit = &body[unit_start..pos];
        if unit.is_empty() {
            return Err(format!("missing unit after '{digits}' (expected d, h, m, s or ms)"));
        }
        let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(format!("unknown unit '{unit}' (expected d, h, m, s or ms)"));
        };
        if let Some(last) = last_unit {
            if index == last {
                return Err(format!("unit '{unit}' appears twice"));
            }
            if index < last {
                return Err(format!("unit '{unit}' comes after a smaller unit (write units from largest to smallest)"));
            }
        }
        last_unit = Some(index);
        let value: u64 = digits.parse().map_err(|_| "too large".to_string())?;
        total = value
            .checked_mul(UNITS[index].1)
            .and_then(|ms| total.checked_add(ms))
            .filter(|ms| *ms <= i64::MAX as u64)
            .ok_or_else(|| "too large".to_string())?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_units() {
        assert_eq!(parse_duration("30s").unwrap(), 30_000);
        assert_eq!(parse_duration("5m").unwrap(), 300_000);
        assert_eq!(parse_duration("2h").unwrap(), 7_200_000);
        assert_eq!(parse_duration("1d").unwrap(), 86_400_000);
        assert_eq!(parse_duration("1500ms").unwrap(), 1_500);
        assert_eq!(parse_duration("0s").unwrap(), 0);
    }

    #[test]
    fn compound_and_padding() {
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration("1d2h3m4s5ms").unwrap(), 86_400_000 + 7_200_000 + 180_000 + 4_000 + 5);
        assert_eq!(parse_duration("  90s\t").unwrap(), 90_000);
        assert_eq!(parse_duration("1m90s").unwrap(), 150_000);
        assert_eq!(parse_duration("007s").unwrap(), 7_000);
    }

    fn reason(text: &str) -> String {
        parse_duration(text).unwrap_err().to_string()
    }

    #[test]
    fn errors() {
        assert_eq!(reason(""), "invalid duration '': empty (expected e.g. 30s, 5m or 1h30m)");
        assert_eq!(reason("5x"), "invalid duration '5x': unknown unit 'x' (expected d, h, m, s or ms)");
        assert_eq!(reason("5"), "invalid duration '5': missing unit after '5' (expected d, h, m, s or ms)");
        assert_eq!(reason("m"), "invalid duration 'm': expected a number at 'm'");
        assert_eq!(reason("1h 30m"), "invalid duration '1h 30m': expected a number at ' 30m'");
        assert_eq!(reason("-5s"), "invalid duration '-5s': expected a number at '-5s'");
        assert_eq!(reason("1.5h"), "invalid duration '1.5h': missing unit after '1' (expected d, h, m, s or ms)");
        assert_eq!(
            reason("30m1h"),
            "invalid duration '30m1h': unit 'h' comes after a smaller unit (write units from largest to smallest)"
        );
        assert_eq!(reason("1h1h"), "invalid duration '1h1h': unit 'h' appears twice");
        assert_eq!(reason("5M"), "invalid duration '5M': unknown unit 'M' (expected d, h, m, s or ms)");
        assert_eq!(reason("5sec"), "invalid duration '5sec': unknown unit 'sec' (expected d, h, m, s or ms)");
        assert_eq!(reason("99999999999999999999s"), "invalid duration '99999999999999999999s': too large");
        assert_eq!(reason("200000000000d"), "invalid duration '200000000000d': too large");
    }
}
