//! The arguments of an invocation, and JSON text parsed without building
//! a `serde_json::Value`.
//!
//! A request's body is JSON text, and a record keeps it as text
//! (`sl_store::JsonArgs`). It is parsed once for a run, into an
//! [`ArgsText`]: the text and its [`Doc`] (strings borrowed from the text,
//! members in a plain vector: no hashing, few allocations), which
//! [`json::push`](super::json::push) puts on the Lua stack when the run
//! starts. Arguments made by the server (a route's request, an `invoke()`
//! call) are a `serde_json::Value` and pushed as one.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::json::{JsonTree, Node, MAX_DEPTH};

/// What `main` is called with.
#[derive(Debug)]
pub enum Args {
    /// A parsed JSON value.
    Value(serde_json::Value),
    /// A JSON object's text with its parse.
    Text(ArgsText),
}

impl From<serde_json::Value> for Args {
    fn from(v: serde_json::Value) -> Self {
        Self::Value(v)
    }
}

self_cell::self_cell!(
    /// The text of a JSON object that Lua can take, with its [`Doc`]
    /// (which borrows from the text).
    pub struct ArgsText {
        owner: Vec<u8>,
        #[covariant]
        dependent: Doc,
    }
    impl {Debug}
);

impl ArgsText {
    /// Parses `text` with the rules and messages of [`check_object`].
    pub fn parse(text: Vec<u8>) -> Result<Self, String> {
        Self::try_new(text, |t| parse_object(t))
    }

    /// The parsed arguments.
    pub fn doc(&self) -> &Doc<'_> {
        self.borrow_dependent()
    }

    /// The text parsed: JSON, hence UTF-8 (the parser checks every string,
    /// and JSON has no other bytes past ASCII).
    pub fn text(&self) -> &[u8] {
        self.borrow_owner()
    }
}

/// Checks that `text` is one JSON object that Lua can take (nested at most
/// [`json::MAX_DEPTH`](super::json::MAX_DEPTH) deep). Syntax errors have
/// the messages of parsing into a `serde_json::Value`.
pub fn check_object(text: &[u8]) -> Result<(), String> {
    parse_object(text).map(drop)
}

/// What [`check_object`] says of arguments nested too deep.
pub fn too_deep_message() -> String {
    format!("the arguments are nested deeper than {MAX_DEPTH} levels")
}

/// Whether `value`, the root of a run's arguments, nests deeper than Lua
/// takes them, counted as [`check_object`] counts (the root is level 0,
/// its members level 1, and no value may be below level
/// [`MAX_DEPTH`](super::json::MAX_DEPTH)).
pub fn nested_too_deep(value: &serde_json::Value) -> bool {
    fn below(v: &serde_json::Value, level: usize) -> bool {
        use serde_json::Value as J;
        level > MAX_DEPTH
            || match v {
                J::Array(items) => items.iter().any(|x| below(x, level + 1)),
                J::Object(members) => members.values().any(|x| below(x, level + 1)),
                _ => false,
            }
    }
    below(value, 0)
}

/// [`check_object`], keeping what it parsed.
fn parse_object(text: &[u8]) -> Result<Doc<'_>, String> {
    let too_deep = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(text);
    let parsed = DocSeed { depth: 0, too_deep: &too_deep }.deserialize(&mut de).and_then(|doc| de.end().map(|()| doc));
    if too_deep.get() {
        return Err(too_deep_message());
    }
    match parsed.map_err(|e| format!("invalid JSON: {e}"))? {
        doc @ Doc::Object(_) => Ok(doc),
        _ => Err("the arguments must be a JSON object".into()),
    }
}

/// A JSON value parsed from text that it borrows from where it can.
#[derive(Debug, PartialEq)]
pub enum Doc<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    Array(Vec<Doc<'a>>),
    /// Members in the order of the text; a later duplicate wins, as in a
    /// `serde_json::Value`.
    Object(Vec<(Cow<'a, str>, Doc<'a>)>),
}

/// Reads one [`Doc`] at `depth`, refusing values nested deeper than
/// [`MAX_DEPTH`] (serde_json's own recursion limit applies as well, as to
/// every parse that goes through `deserialize_any`).
#[derive(Clone, Copy)]
struct DocSeed<'c> {
    depth: usize,
    too_deep: &'c Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for DocSeed<'_> {
    type Value = Doc<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Doc<'de>, D::Error> {
        if self.depth > MAX_DEPTH {
            self.too_deep.set(true);
            return Err(de::Error::custom("nested too deep"));
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DocSeed<'_> {
    type Value = Doc<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Doc<'de>, E> {
        Ok(Doc::Null)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Doc<'de>, E> {
        Ok(Doc::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Doc<'de>, E> {
        Ok(Doc::Int(i))
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Doc<'de>, E> {
        // Beyond i64 a float, as `serde_json::Value::as_i64` decides.
        Ok(i64::try_from(u).map_or(Doc::Float(u as f64), Doc::Int))
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Doc<'de>, E> {
        Ok(Doc::Float(x))
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Doc<'de>, E> {
        Ok(Doc::Str(Cow::Borrowed(s)))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Doc<'de>, E> {
        Ok(Doc::Str(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Doc<'de>, E> {
        Ok(Doc::Str(Cow::Owned(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Doc<'de>, A::Error> {
        let inner = DocSeed { depth: self.depth + 1, ..self };
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Doc::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Doc<'de>, A::Error> {
        let inner = DocSeed { depth: self.depth + 1, ..self };
        // serde_json gives no size hint: room for a few members at once.
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(4).min(64));
        while let Some(Key(k)) = map.next_key()? {
            members.push((k, map.next_value_seed(inner)?));
        }
        Ok(Doc::Object(members))
    }
}

/// An object key, borrowed from the text when it has no escapes (serde's
/// own `Cow<str>` always copies).
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }

            fn visit_string<E: de::Error>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

type DocMembers<'a, 't> = std::iter::Map<
    std::slice::Iter<'a, (Cow<'t, str>, Doc<'t>)>,
    fn(&'a (Cow<'t, str>, Doc<'t>)) -> (&'a str, &'a Doc<'t>),
>;

fn member<'a, 't>((k, v): &'a (Cow<'t, str>, Doc<'t>)) -> (&'a str, &'a Doc<'t>) {
    (k, v)
}

impl<'t> JsonTree for Doc<'t> {
    type Items<'a>
        = std::slice::Iter<'a, Doc<'t>>
    where
        Self: 'a;
    type Members<'a>
        = DocMembers<'a, 't>
    where
        Self: 'a;

    fn node(&self) -> Node<'_, Self> {
        match self {
            Doc::Null => Node::Null,
            Doc::Bool(b) => Node::Bool(*b),
            Doc::Int(i) => Node::Int(*i),
            Doc::Float(x) => Node::Float(*x),
            Doc::Str(s) => Node::Str(s),
            Doc::Array(items) => Node::Array(items.iter()),
            Doc::Object(members) => Node::Object(members.iter().map(member as _)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::json;
    use super::*;
    use mlua::{Lua, Value};
    use serde_json::json;

    fn lua() -> Lua {
        let lua = Lua::new();
        let mt = lua.create_table().unwrap();
        lua.set_named_registry_value(json::ARRAY_MT_KEY, mt).unwrap();
        lua
    }

    /// The Lua value of `text` through a `Doc`, back in JSON.
    fn via_doc(lua: &Lua, text: &str) -> serde_json::Value {
        let doc = parse_object(text.as_bytes()).unwrap();
        // SAFETY: inside `exec_raw`'s protected call, as `json::push` needs.
        let v: Value = unsafe { lua.exec_raw((), |state| json::push(state, &doc)) }.unwrap();
        json::from_lua(lua, &v).unwrap()
    }

    #[test]
    fn text_and_value_give_the_same_lua_values() {
        let lua = lua();
        for text in [
            r#"{}"#,
            r#"{"name": "x", "n": 3, "f": 1.5, "neg": -7, "t": true, "no": false}"#,
            r#"{"big": 18446744073709551615, "exp": 1e3, "i": 9223372036854775807}"#,
            r#"{"s": "esc\"aped \u00e9 \n", "k\u00e9y": 1, "arr": [1, null, [], {}, "x"]}"#,
            r#"{"a": null, "b": {"c": null, "d": [null]}}"#,
            r#"{"dup": 1, "dup": 2, "gone": 1, "gone": null}"#,
        ] {
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            let through_value = json::from_lua(&lua, &json::to_lua(&lua, &value).unwrap()).unwrap();
            assert_eq!(via_doc(&lua, text), through_value, "{text}");
        }
        assert_eq!(via_doc(&lua, r#"{"dup": 1, "dup": 2, "gone": 1, "gone": null}"#), json!({"dup": 2}));
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let doc = parse_object(br#"{"plain": "text", "esc\u0041": "a\nb"}"#).unwrap();
        let Doc::Object(members) = doc else { panic!("not an object") };
        assert!(matches!(&members[0], (Cow::Borrowed("plain"), Doc::Str(Cow::Borrowed("text")))));
        assert!(matches!(&members[1].0, Cow::Owned(k) if k == "escA"));
        assert!(matches!(&members[1].1, Doc::Str(Cow::Owned(s)) if s == "a\nb"));
    }

    #[test]
    fn check_object_accepts_objects_only_with_the_value_parser_messages() {
        assert_eq!(check_object(br#" {"a": [1, 2]} "#), Ok(()));
        assert_eq!(check_object(b"[1]").unwrap_err(), "the arguments must be a JSON object");
        assert_eq!(check_object(b"3").unwrap_err(), "the arguments must be a JSON object");
        let value_err = serde_json::from_slice::<serde_json::Value>(b"{\"a\": }").unwrap_err();
        assert_eq!(check_object(b"{\"a\": }").unwrap_err(), format!("invalid JSON: {value_err}"));
        assert!(check_object(b"{} {}").unwrap_err().starts_with("invalid JSON: trailing characters"));
        let nest = |depth: usize| format!(r#"{{"a": {}1{}}}"#, "[".repeat(depth), "]".repeat(depth));
        assert_eq!(check_object(nest(json::MAX_DEPTH - 1).as_bytes()), Ok(()));
        for depth in [json::MAX_DEPTH, 120, 200, 100_000] {
            let err = check_object(nest(depth).as_bytes()).unwrap_err();
            assert_eq!(err, "the arguments are nested deeper than 100 levels", "{depth}");
        }
        // What passes the check, Lua takes.
        let lua = lua();
        let text = nest(json::MAX_DEPTH - 1).into_bytes();
        let args = ArgsText::parse(text.clone()).unwrap();
        assert_eq!(args.text(), &text[..]);
        let doc = args.doc();
        // SAFETY: inside `exec_raw`'s protected call, as `json::push` needs.
        assert!(unsafe { lua.exec_raw::<Value>((), |state| json::push(state, doc)) }.is_ok());
    }

    #[test]
    fn a_value_is_too_deep_where_the_text_check_says_so() {
        let nest = |depth: usize| format!(r#"{{"a": {}1{}}}"#, "[".repeat(depth), "]".repeat(depth));
        for depth in [0, 1, 50, json::MAX_DEPTH - 1, json::MAX_DEPTH, json::MAX_DEPTH + 1, 120] {
            let text = nest(depth);
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(nested_too_deep(&value), check_object(text.as_bytes()).is_err(), "{depth}");
        }
        assert_eq!(check_object(nest(json::MAX_DEPTH).as_bytes()).unwrap_err(), too_deep_message());
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_an_error() {
        let lua = lua();
        // Deeper than the parser lets through: built by hand.
        let doc = (0..=json::MAX_DEPTH).fold(Doc::Int(1), |inner, _| Doc::Array(vec![inner]));
        // SAFETY: inside `exec_raw`'s protected call, as `json::push` needs.
        let err = unsafe { lua.exec_raw::<Value>((), |state| json::push(state, &doc)) }.unwrap_err();
        assert!(err.to_string().contains("JSON nesting too deep"), "{err}");
    }
}
