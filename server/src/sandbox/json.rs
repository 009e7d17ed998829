//! The mapping between JSON and Lua values.
//!
//! JSON to Lua:
//! - objects become tables with string keys; a `null` member is left out
//!   (Lua tables cannot hold nil);
//! - arrays become sequences `1..n` marked with a shared metatable, so an
//!   empty array stays an array when it is sent back; a `null` element
//!   becomes `json.null` so that positions are kept;
//! - integers that fit `i64` become Lua integers, other numbers floats;
//!   strings, booleans as themselves.
//!
//! Lua to JSON:
//! - `nil` and `json.null` become `null`; booleans, integers and finite
//!   floats as themselves; strings must be valid UTF-8;
//! - a table whose keys are exactly `1..n` (or that carries the array
//!   marker) becomes an array; a table whose keys are all strings becomes an
//!   object; an empty table becomes `{}`;
//! - anything else is an error that names the path: functions, threads,
//!   userdata, NaN and infinities, tables mixing integer and string keys,
//!   sparse arrays, non-integer number keys, nesting deeper than
//!   [`MAX_DEPTH`] (which also catches cycles).

use mlua::{Lua, Table, Value};

/// Deepest nesting converted in either direction.
pub const MAX_DEPTH: usize = 100;

/// Registry key of the metatable that marks tables decoded from arrays.
pub const ARRAY_MT_KEY: &str = "sl.json.array";

/// A Lua value that has no JSON representation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot convert to JSON at {path}: {reason}")]
pub struct JsonError {
    /// Where in the value, as `$`, `$.a.b`, `$[3]`.
    pub path: String,
    /// What is wrong there.
    pub reason: String,
}

/// Converts a JSON value into a Lua value.
pub fn to_lua(lua: &Lua, value: &serde_json::Value) -> mlua::Result<Value> {
    let array_mt: Option<Table> = lua.named_registry_value(ARRAY_MT_KEY)?;
    to_lua_inner(lua, value, array_mt.as_ref(), 0)
}

fn to_lua_inner(lua: &Lua, value: &serde_json::Value, array_mt: Option<&Table>, depth: usize) -> mlua::Result<Value> {
    use serde_json::Value as J;
    if depth > MAX_DEPTH {
        return Err(mlua::Error::runtime("JSON nesting too deep"));
    }
    Ok(match value {
        J::Null => Value::NULL,
        J::Bool(b) => Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::String(lua.create_string(s)?),
        J::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, to_lua_inner(lua, item, array_mt, depth + 1)?)?;
            }
            if let Some(mt) = array_mt {
                t.set_metatable(Some(mt.clone()))?;
            }
            Value::Table(t)
        }
        J::Object(map) => {
            let t = lua.create_table_with_capacity(0, map.len())?;
            for (k, v) in map {
                if v.is_null() {
                    continue;
                }
                t.raw_set(k.as_str(), to_lua_inner(lua, v, array_mt, depth + 1)?)?;
            }
            Value::Table(t)
        }
    })
}

/// Converts a Lua value into JSON, or says why it cannot.
pub fn from_lua(lua: &Lua, value: &Value) -> Result<serde_json::Value, JsonError> {
    let array_mt: Option<Table> = lua.named_registry_value(ARRAY_MT_KEY).ok().flatten();
    let mut path = Vec::new();
    from_lua_inner(value, array_mt.as_ref(), &mut path)
}

enum Seg {
    Key(String),
    Index(i64),
}

fn render(path: &[Seg]) -> String {
    let mut s = String::from("$");
    for seg in path {
        match seg {
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn fail(path: &[Seg], reason: impl Into<String>) -> JsonError {
    JsonError { path: render(path), reason: reason.into() }
}

fn from_lua_inner(
    value: &Value,
    array_mt: Option<&Table>,
    path: &mut Vec<Seg>,
) -> Result<serde_json::Value, JsonError> {
    use serde_json::Value as J;
    if path.len() > MAX_DEPTH {
        return Err(fail(path, format!("nested deeper than {MAX_DEPTH} levels (or a cycle)")));
    }
    Ok(match value {
        Value::Nil => J::Null,
        Value::Boolean(b) => J::Bool(*b),
        Value::Integer(i) => J::from(*i),
        Value::Number(n) => match serde_json::Number::from_f64(*n) {
            Some(n) => J::Number(n),
            None => return Err(fail(path, format!("{n} is not a finite number"))),
        },
        Value::String(s) => match s.to_str() {
            Ok(s) => J::String(s.to_string()),
            Err(_) => return Err(fail(path, "string is not valid UTF-8")),
        },
        Value::LightUserData(ud) if ud.0.is_null() => J::Null,
        Value::Error(e) => J::String(super::error_message(e)),
        Value::Table(t) => table_to_json(t, array_mt, path)?,
        other => return Err(fail(path, format!("a {} has no JSON form", other.type_name()))),
    })
}

fn table_to_json(t: &Table, array_mt: Option<&Table>, path: &mut Vec<Seg>) -> Result<serde_json::Value, JsonError> {
    let marked_array = match (t.metatable(), array_mt) {
        (Some(mt), Some(arr)) => mt == *arr,
        _ => false,
    };
    let mut int_keys = 0usize;
    let mut max_int = 0i64;
    let mut str_keys = 0usize;
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair.map_err(|e| fail(path, e.to_string()))?;
        match k {
            Value::Integer(i) if i >= 1 => {
                int_keys += 1;
                max_int = max_int.max(i);
            }
            Value::String(_) => str_keys += 1,
            Value::Integer(i) => return Err(fail(path, format!("table key {i} is not a valid array index"))),
            Value::Number(n) => return Err(fail(path, format!("table key {n} is not an integer"))),
            other => return Err(fail(path, format!("table key of type {} is not a string", other.type_name()))),
        }
    }
    if str_keys > 0 && int_keys > 0 {
        return Err(fail(path, "table mixes array items and string keys"));
    }
    if int_keys > 0 || marked_array {
        if str_keys > 0 {
            return Err(fail(path, "array has string keys"));
        }
        if max_int as usize != int_keys {
            return Err(fail(path, format!("sparse array: {int_keys} items but index {max_int}")));
        }
        let mut out = Vec::with_capacity(int_keys);
        for i in 1..=max_int {
            let v: Value = t.raw_get(i).map_err(|e| fail(path, e.to_string()))?;
            path.push(Seg::Index(i));
            out.push(from_lua_inner(&v, array_mt, path)?);
            path.pop();
        }
        return Ok(serde_json::Value::Array(out));
    }
    let mut map = serde_json::Map::with_capacity(str_keys);
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(|e| fail(path, e.to_string()))?;
        let key = match &k {
            Value::String(s) => match s.to_str() {
                Ok(s) => s.to_string(),
                Err(_) => return Err(fail(path, "table key is not valid UTF-8")),
            },
            _ => unreachable!("keys were checked above"),
        };
        path.push(Seg::Key(key.clone()));
        let json = from_lua_inner(&v, array_mt, path)?;
        path.pop();
        map.insert(key, json);
    }
    Ok(serde_json::Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lua() -> Lua {
        let lua = Lua::new();
        let mt = lua.create_table().unwrap();
        lua.set_named_registry_value(ARRAY_MT_KEY, mt).unwrap();
        lua
    }

    fn roundtrip(v: serde_json::Value) -> serde_json::Value {
        let lua = lua();
        let l = to_lua(&lua, &v).unwrap();
        from_lua(&lua, &l).unwrap()
    }

    #[test]
    fn round_trips_plain_values() {
        for v in [
            json!("hello"),
            json!(42),
            json!(-7),
            json!(1.5),
            json!(true),
            json!({"a": 1, "b": [1, 2, {"c": "d"}]}),
            json!([]),
            json!({}),
            json!([[], {}]),
            json!("ünïcödé ✓"),
            json!([1, null, 3]),
        ] {
            assert_eq!(roundtrip(v.clone()), v);
        }
    }

    #[test]
    fn null_members_are_dropped() {
        assert_eq!(roundtrip(json!({"a": null, "b": 1})), json!({"b": 1}));
    }

    #[test]
    fn lua_values_without_json_form_are_errors_with_paths() {
        let lua = lua();
        let cases = [
            ("return {a = {b = function() end}}", "$.a.b"),
            ("return {1, 2, nil, 4}", "$"),
            ("return {1, x = 2}", "$"),
            ("return {[1.5] = 1}", "$"),
            ("return {0/0}", "$[1]"),
            ("return {s = '\\255'}", "$.s"),
            ("local t = {} t.t = t return t", "$.t.t"),
        ];
        for (code, path) in cases {
            let v: Value = lua.load(code).eval().unwrap();
            let err = from_lua(&lua, &v).unwrap_err();
            assert!(err.path.starts_with(path), "{code}: {err}");
        }
    }

    #[test]
    fn sequences_become_arrays_and_string_keys_objects() {
        let lua = lua();
        let v: Value = lua.load("return {x = {1, 2, 3}, y = {}, z = 2^53}").eval().unwrap();
        assert_eq!(from_lua(&lua, &v).unwrap(), json!({"x": [1, 2, 3], "y": {}, "z": 9007199254740992.0}));
    }

    #[test]
    fn big_integers_beyond_i64_become_floats() {
        let lua = lua();
        let v = to_lua(&lua, &json!(18446744073709551615u64)).unwrap();
        assert!(matches!(v, Value::Number(_)));
    }
}
