//! An invocation's arguments, kept as JSON text.
//!
//! A record keeps its arguments as the JSON text they came in (a request's
//! body, checked once when the server read it), not as a parsed
//! `serde_json::Value`: a submit then builds no tree of maps to store, a
//! store writes and reads the text as it is, and a run parses it once,
//! straight onto the Lua stack. Who needs the values asks for them
//! ([`JsonArgs::to_value`]); that is the rare path (an idempotency
//! fingerprint, a test).
//!
//! The text is checked to be one JSON value whenever it comes from outside
//! ([`JsonArgs::parse`], and a store reading it back), so that it can be
//! written into a JSON document as it is.

use std::borrow::Cow;
use std::fmt;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The JSON text of an invocation's arguments: a JSON object for every
/// invocation the server makes, whitespace and member order as given.
///
/// Two `JsonArgs` are equal when their texts are: `{"a":1}` and
/// `{ "a": 1 }` are not.
#[derive(Clone, PartialEq, Eq)]
pub struct JsonArgs(Cow<'static, str>);

impl JsonArgs {
    /// `{}` (allocates nothing).
    pub const fn empty() -> Self {
        Self(Cow::Borrowed("{}"))
    }

    /// `text` if it is one JSON value (whitespace around it allowed), else
    /// the parser's error.
    pub fn parse(text: String) -> Result<Self, serde_json::Error> {
        serde_json::from_str::<IgnoredAny>(&text)?;
        Ok(Self(Cow::Owned(text)))
    }

    /// `text`, which the caller has checked is one JSON value (it parsed
    /// it already). Text that is not would be written as it is into JSON
    /// documents.
    pub fn from_checked(text: String) -> Self {
        Self(Cow::Owned(text))
    }

    /// The compact JSON of `value`.
    pub fn from_value(value: &serde_json::Value) -> Self {
        Self(Cow::Owned(value.to_string()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The bytes of the text.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty (never, for arguments made by
    /// [`parse`](Self::parse), [`from_value`](Self::from_value) or
    /// [`empty`](Self::empty)).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the text is exactly `{}` (as [`empty`](Self::empty) makes
    /// it).
    pub fn is_empty_object(&self) -> bool {
        self.0 == "{}"
    }

    /// The arguments parsed.
    pub fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(&self.0)
    }
}

impl Default for JsonArgs {
    fn default() -> Self {
        Self::empty()
    }
}

impl From<serde_json::Value> for JsonArgs {
    fn from(value: serde_json::Value) -> Self {
        Self::from_value(&value)
    }
}

impl From<&serde_json::Value> for JsonArgs {
    fn from(value: &serde_json::Value) -> Self {
        Self::from_value(value)
    }
}

impl fmt::Debug for JsonArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for JsonArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Into JSON, the text as it is; into other formats, the parsed value.
impl Serialize for JsonArgs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            let raw: &serde_json::value::RawValue = serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
            raw.serialize(serializer)
        } else {
            self.to_value().map_err(serde::ser::Error::custom)?.serialize(serializer)
        }
    }
}

/// Any value, kept as its compact JSON.
impl<'de> Deserialize<'de> for JsonArgs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(deserializer).map(|v| Self::from_value(&v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_is_kept_as_given_and_checked_when_it_comes_from_outside() {
        let args = JsonArgs::parse(r#" { "b": 1,  "a": [true] } "#.into()).unwrap();
        assert_eq!(args.as_str(), r#" { "b": 1,  "a": [true] } "#);
        assert_eq!(args.to_value().unwrap(), json!({"b": 1, "a": [true]}));
        for bad in ["", "{", "{} {}", "{\"a\":}", "nul"] {
            assert!(JsonArgs::parse(bad.into()).is_err(), "{bad:?}");
        }
        assert!(JsonArgs::empty().is_empty_object() && !JsonArgs::empty().is_empty());
        assert_eq!(JsonArgs::from_value(&json!({"x": "y"})).as_str(), r#"{"x":"y"}"#);
    }

    #[test]
    fn into_json_the_text_goes_as_it_is() {
        #[derive(Serialize, Deserialize)]
        struct Rec {
            args: JsonArgs,
        }
        let rec = Rec { args: JsonArgs::parse("{ \"a\" : 1 }".into()).unwrap() };
        assert_eq!(serde_json::to_string(&rec).unwrap(), "{\"args\":{ \"a\" : 1 }}");
        assert_eq!(serde_json::to_value(&rec).unwrap(), json!({"args": {"a": 1}}));
        let back: Rec = serde_json::from_str("{\"args\": {\"a\": [1, 2]}}").unwrap();
        assert_eq!(back.args.as_str(), r#"{"a":[1,2]}"#);
    }
}
