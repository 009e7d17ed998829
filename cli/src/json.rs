//! Reading the server's JSON answers without building more than is shown.
//!
//! A `serde_json::Value` of an answer costs 16 to 30 times its text (a JSON
//! array of zeros takes 2 bytes an element as text and 32 as values), and a
//! table built from it one row of strings per element on top. So answers
//! are read into the few fields slcli prints ([`Scalar`] for each), arrays
//! of records one element at a time ([`each`]), and whatever else an answer
//! holds is skipped as it is parsed (`IgnoredAny`). The memory a command
//! needs is then the body (bounded by the client) and one record.

use std::fmt;

use anyhow::{anyhow, Result};
use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A JSON value as slcli shows it: a scalar as it is, an array or object
/// only as what it is (its contents are skipped, not built). Absent fields
/// of the structs that hold it are [`Scalar::Null`].
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Scalar {
    #[default]
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Str(String),
    Array,
    Object,
}

impl Scalar {
    /// As text: a string as it is, `-` for null (or absent), `[...]` and
    /// `{...}` for an array and an object.
    pub fn text(&self) -> String {
        match self {
            Scalar::Null => "-".to_string(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Number(n) => n.to_string(),
            Scalar::Str(s) => s.clone(),
            Scalar::Array => "[...]".to_string(),
            Scalar::Object => "{...}".to_string(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Scalar::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Scalar::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Scalar::Number(n) => n.as_f64(),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }

    fn visit_none<E>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(b))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Scalar, E> {
        Ok(Scalar::Number(n.into()))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Scalar, E> {
        Ok(Scalar::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Scalar, E> {
        // JSON has no NaN or infinity, so this is always Some.
        Ok(serde_json::Number::from_f64(n).map_or(Scalar::Null, Scalar::Number))
    }

    fn visit_str<E>(self, s: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(s.to_string()))
    }

    fn visit_string<E>(self, s: String) -> Result<Scalar, E> {
        Ok(Scalar::Str(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Object)
    }
}

/// Reads `body`, a JSON array, one element at a time as a `T`, handing each
/// to `f`; returns how many there were. Only one element is in memory at a
/// time. An error of `f` stops the reading and is returned as it is.
pub fn each<T: DeserializeOwned>(body: &str, mut f: impl FnMut(T) -> Result<()>) -> Result<usize> {
    let mut each = Each { f: &mut f, stopped: None, count: 0 };
    let mut de = serde_json::Deserializer::from_str(body);
    let read = de.deserialize_seq(&mut each).and_then(|()| de.end());
    if let Some(e) = each.stopped {
        return Err(e);
    }
    read.map_err(|e| anyhow!("{e}"))?;
    Ok(each.count)
}

/// The visitor of [`each`].
struct Each<'f, T> {
    f: &'f mut dyn FnMut(T) -> Result<()>,
    /// Why `f` stopped the reading.
    stopped: Option<anyhow::Error>,
    count: usize,
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for &mut Each<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<T>()? {
            self.count += 1;
            if let Err(e) = (self.f)(item) {
                self.stopped = Some(e);
                return Err(de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

/// Whether `text` is one JSON value (checked without building it).
pub fn is_json(text: &str) -> bool {
    serde_json::from_str::<IgnoredAny>(text).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Row {
        #[serde(default)]
        name: Scalar,
        #[serde(default)]
        n: Scalar,
    }

    #[test]
    fn scalars_keep_values_and_skip_containers() {
        let row: Row = serde_json::from_str(r#"{"name": "a", "n": 12, "other": [1, {"x": 2}]}"#).unwrap();
        assert_eq!(row, Row { name: Scalar::Str("a".into()), n: Scalar::Number(12.into()) });
        let row: Row = serde_json::from_str(r#"{"name": [1, 2], "n": {"a": 1}}"#).unwrap();
        assert_eq!((row.name.text(), row.n.text()), ("[...]".to_string(), "{...}".to_string()));
        let row: Row = serde_json::from_str(r#"{"name": null}"#).unwrap();
        assert_eq!((row.name.text(), row.n.text()), ("-".to_string(), "-".to_string()));
        let s: Scalar = serde_json::from_str("-1.5").unwrap();
        assert_eq!((s.as_f64(), s.as_u64(), s.text()), (Some(-1.5), None, "-1.5".to_string()));
        let s: Scalar = serde_json::from_str("true").unwrap();
        assert_eq!((s.text(), s.as_str()), ("true".to_string(), None));
    }

    #[test]
    fn each_reads_one_element_at_a_time() {
        let mut names = Vec::new();
        let n = each(r#"[{"name": "a"}, {"name": "b", "n": 1}] "#, |r: Row| {
            names.push(r.name.text());
            Ok(())
        })
        .unwrap();
        assert_eq!((n, names), (2, vec!["a".to_string(), "b".to_string()]));
        assert_eq!(each("[]", |_: Row| Ok(())).unwrap(), 0);
    }

    #[test]
    fn each_stops_at_the_first_problem() {
        let mut seen = 0;
        let e = each(r#"[{"name": "a"}, 0, {"name": "c"}]"#, |_: Row| {
            seen += 1;
            Ok(())
        })
        .unwrap_err();
        assert_eq!(seen, 1);
        assert!(e.to_string().contains("invalid type: integer `0`"), "{e}");
        let e = each(r#"{"name": "a"}"#, |_: Row| Ok(())).unwrap_err();
        assert!(e.to_string().contains("expected a JSON array"), "{e}");
        assert!(each("[] x", |_: Row| Ok(())).unwrap_err().to_string().contains("trailing characters"));
        assert!(each(r#"[{"name": "a"}"#, |_: Row| Ok(())).is_err());
        let e = each(r#"[{}, {}]"#, |_: Row| Err(anyhow!("enough"))).unwrap_err();
        assert_eq!(e.to_string(), "enough");
    }

    #[test]
    fn json_is_recognized_without_building_it() {
        assert!(is_json(r#" {"a": [1, 2, {"b": null}]} "#));
        assert!(is_json("\"x\""));
        assert!(!is_json("OK"));
        assert!(!is_json("[1, 2"));
        assert!(!is_json("\"raw \u{1b} escape\""));
    }
}
