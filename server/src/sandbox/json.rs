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

use std::cell::Cell;
use std::ffi::c_int;

use mlua::{ffi, Lua, Table, Value};

use super::error::error_message;
use super::hook::{with_active, ErasedTree, LimitKind};

/// Deepest nesting converted in either direction.
pub const MAX_DEPTH: usize = 100;

/// How deep JSON text nests (arrays and objects), read without building it.
pub fn nesting(text: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in text {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Registry key of the metatable that marks tables decoded from arrays.
pub const ARRAY_MT_KEY: &str = "sl.json.array";
/// [`ARRAY_MT_KEY`] for the C API.
const ARRAY_MT_CKEY: &std::ffi::CStr = c"sl.json.array";

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
    // SAFETY: `push` only pushes onto the stack of the protected call that
    // `exec_raw` runs it in (see `push`'s contract), leaving one value.
    unsafe { lua.exec_raw((), |state| push(state, value)) }
}

/// A JSON tree that [`push`] can put on a Lua stack: a `serde_json::Value`,
/// or a [`Doc`](super::Doc) parsed from text.
pub trait JsonTree: Sized {
    /// The elements of an array.
    type Items<'a>: ExactSizeIterator<Item = &'a Self>
    where
        Self: 'a;
    /// The members of an object, in order; a later duplicate wins.
    type Members<'a>: ExactSizeIterator<Item = (&'a str, &'a Self)>
    where
        Self: 'a;

    /// What this value is.
    fn node(&self) -> Node<'_, Self>;
}

/// One value of a [`JsonTree`].
pub enum Node<'a, T: JsonTree + 'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    Array(T::Items<'a>),
    Object(T::Members<'a>),
}

type ValueMembers<'a> = std::iter::Map<
    serde_json::map::Iter<'a>,
    fn((&'a String, &'a serde_json::Value)) -> (&'a str, &'a serde_json::Value),
>;

fn member<'a>((k, v): (&'a String, &'a serde_json::Value)) -> (&'a str, &'a serde_json::Value) {
    (k, v)
}

impl JsonTree for serde_json::Value {
    type Items<'a> = std::slice::Iter<'a, serde_json::Value>;
    type Members<'a> = ValueMembers<'a>;

    fn node(&self) -> Node<'_, Self> {
        use serde_json::Value as J;
        match self {
            J::Null => Node::Null,
            J::Bool(b) => Node::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Node::Int(i),
                None => Node::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => Node::Str(s),
            J::Array(items) => Node::Array(items.iter()),
            J::Object(map) => Node::Object(map.iter().map(member as _)),
        }
    }
}

/// Pushes the Lua form of `tree` onto `state`'s stack (one slot), with the
/// mapping of [`to_lua`]: a few C API calls per value instead of a
/// protected call for every table and string.
///
/// # Safety
///
/// `state` must be a live Lua state of an SL instance, and the call must
/// run inside a protected call (`Lua::exec_raw`): a memory error, or
/// nesting deeper than [`MAX_DEPTH`], raises a Lua error that unwinds
/// (longjmp) through this function, whose frames own nothing to drop
/// (the trees' iterators only borrow).
pub unsafe fn push<T: JsonTree>(state: *mut ffi::lua_State, tree: &T) {
    // The array metatable is looked up at the first array only (most
    // arguments have none); its slot is `nil` until then.
    ffi::lua_pushnil(state);
    let mt = ffi::lua_gettop(state);
    push_value(state, tree, mt, 0);
    ffi::lua_remove(state, mt);
}

/// # Safety
///
/// As for [`push`]; `mt` is the stack slot of the array metatable.
unsafe fn push_value<T: JsonTree>(state: *mut ffi::lua_State, tree: &T, mt: c_int, depth: usize) {
    if depth > MAX_DEPTH || ffi::lua_checkstack(state, 3) == 0 {
        raise(state, "JSON nesting too deep");
    }
    match tree.node() {
        Node::Null => ffi::lua_pushlightuserdata(state, std::ptr::null_mut()),
        Node::Bool(b) => ffi::lua_pushboolean(state, c_int::from(b)),
        Node::Int(i) => ffi::lua_pushinteger(state, i),
        Node::Float(x) => ffi::lua_pushnumber(state, x),
        Node::Str(s) => {
            ffi::lua_pushlstring(state, s.as_ptr().cast(), s.len());
        }
        Node::Array(items) => {
            ffi::lua_createtable(state, c_int::try_from(items.len()).unwrap_or(c_int::MAX), 0);
            for (i, item) in items.enumerate() {
                push_value(state, item, mt, depth + 1);
                ffi::lua_rawseti(state, -2, i as ffi::lua_Integer + 1);
            }
            if ffi::lua_isnil(state, mt) != 0 {
                ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, ARRAY_MT_CKEY.as_ptr());
                ffi::lua_replace(state, mt);
            }
            if ffi::lua_istable(state, mt) != 0 {
                ffi::lua_pushvalue(state, mt);
                ffi::lua_setmetatable(state, -2);
            }
        }
        Node::Object(members) => {
            ffi::lua_createtable(state, 0, c_int::try_from(members.len()).unwrap_or(c_int::MAX));
            for (k, v) in members {
                ffi::lua_pushlstring(state, k.as_ptr().cast(), k.len());
                // A null member is no key at all (and undoes an earlier
                // duplicate of a Doc): storing nil under a new key stores
                // nothing.
                match v.node() {
                    Node::Null => ffi::lua_pushnil(state),
                    _ => push_value(state, v, mt, depth + 1),
                }
                ffi::lua_rawset(state, -3);
            }
        }
    }
}

// `ErasedTree` is declared in hook.rs, where `Control` holds the pending
// arguments; it is made and pushed here, next to `JsonTree` and `push`.
impl ErasedTree {
    /// Erases `tree`'s type. The result must not be pushed after `tree`
    /// is gone.
    pub(crate) fn new<T: JsonTree>(tree: &T) -> Self {
        /// # Safety
        ///
        /// As for [`push`]; `tree` points to a live `T`.
        unsafe fn push_typed<T: JsonTree>(state: *mut ffi::lua_State, tree: *const std::ffi::c_void) {
            push(state, &*tree.cast::<T>())
        }
        Self { tree: (tree as *const T).cast(), push: push_typed::<T> }
    }

    /// [`push`] of the tree.
    ///
    /// # Safety
    ///
    /// As for [`push`], and the tree given to [`new`](Self::new) is alive.
    pub(crate) unsafe fn push(self, state: *mut ffi::lua_State) {
        (self.push)(state, self.tree)
    }
}

/// Raises `message` as a Lua error.
///
/// # Safety
///
/// Inside a protected call on `state`; does not return.
unsafe fn raise(state: *mut ffi::lua_State, message: &str) -> ! {
    ffi::lua_pushlstring(state, message.as_ptr().cast(), message.len());
    ffi::lua_error(state)
}

/// Parses JSON text straight into a Lua value (with the mapping of
/// [`to_lua`]), without building a `serde_json::Value` first: everything
/// the text turns into is allocated by Lua, under the state's memory limit.
pub fn decode_to_lua(lua: &Lua, text: &[u8]) -> mlua::Result<Value> {
    let array_mt: Option<Table> = lua.named_registry_value(ARRAY_MT_KEY)?;
    let mut de = serde_json::Deserializer::from_slice(text);
    let values = Cell::new(0);
    let seed = Seed { lua, array_mt: array_mt.as_ref(), depth: 0, values: &values };
    let value = serde::de::DeserializeSeed::deserialize(seed, &mut de).map_err(decode_error)?;
    de.end().map_err(decode_error)?;
    Ok(value)
}

fn decode_error(e: serde_json::Error) -> mlua::Error {
    mlua::Error::runtime(format!("invalid JSON: {e}"))
}

/// Builds the Lua value of one JSON value as the parser reads it.
#[derive(Clone, Copy)]
struct Seed<'a> {
    lua: &'a Lua,
    array_mt: Option<&'a Table>,
    depth: usize,
    /// Values built so far, to look at the clock now and then.
    values: &'a Cell<usize>,
}

impl Seed<'_> {
    fn nested(self) -> Self {
        Self { depth: self.depth + 1, ..self }
    }

    /// Counts a value; every [`CLOCK_EVERY`] values, checks the limits of
    /// code that cannot be paused (decoding runs in one Rust call).
    fn tick<E: serde::de::Error>(self) -> Result<(), E> {
        let n = self.values.get() + 1;
        self.values.set(n);
        if n.is_multiple_of(CLOCK_EVERY) {
            if let Some(kind) = with_active(|c| c.check_stall()).flatten() {
                return Err(E::custom(format!("{} limit", kind.kind())));
            }
        }
        Ok(())
    }
}

fn lua_err<E: serde::de::Error>(e: mlua::Error) -> E {
    E::custom(error_message(&e))
}

impl<'de> serde::de::DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.depth > MAX_DEPTH {
            return Err(serde::de::Error::custom("JSON nesting too deep"));
        }
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::NULL)
    }

    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Boolean(b))
    }

    fn visit_i64<E: serde::de::Error>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Integer(i))
    }

    fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<Value, E> {
        Ok(i64::try_from(u).map(Value::Integer).unwrap_or(Value::Number(u as f64)))
    }

    fn visit_f64<E: serde::de::Error>(self, x: f64) -> Result<Value, E> {
        Ok(Value::Number(x))
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Value, E> {
        self.lua.create_string(s).map(Value::String).map_err(lua_err)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let t = self.lua.create_table().map_err(lua_err)?;
        let mut i = 0i64;
        while let Some(v) = seq.next_element_seed(self.nested())? {
            self.tick()?;
            i += 1;
            t.raw_set(i, v).map_err(lua_err)?;
        }
        if let Some(mt) = self.array_mt {
            t.set_metatable(Some(mt.clone())).map_err(lua_err)?;
        }
        Ok(Value::Table(t))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let t = self.lua.create_table().map_err(lua_err)?;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let v = map.next_value_seed(self.nested())?;
            self.tick()?;
            // Tables cannot hold nil: a null member is left out.
            if v == Value::NULL {
                t.raw_remove(key.as_ref()).map_err(lua_err)?;
            } else {
                t.raw_set(key.as_ref(), v).map_err(lua_err)?;
            }
        }
        Ok(Value::Table(t))
    }
}

/// Converts a Lua value into JSON, or says why it cannot.
///
/// Inside an invocation the JSON built counts against what is left of its
/// memory limit (a table reachable twice is converted twice, so a small
/// Lua value can stand for a huge JSON one), and the clock is checked as
/// it goes. Either limit records the abort in the invocation's control
/// block and ends the conversion with an error.
pub fn from_lua(lua: &Lua, value: &Value) -> Result<serde_json::Value, JsonError> {
    convert(lua, value, false)
}

/// [`from_lua`] for a conversion inside a call from Lua code (as in
/// `json.encode`), which cannot be paused: it is also bounded by
/// [`STALL_LIMIT`](super::hook::STALL_LIMIT).
pub fn from_lua_unpausable(lua: &Lua, value: &Value) -> Result<serde_json::Value, JsonError> {
    convert(lua, value, true)
}

fn convert(lua: &Lua, value: &Value, unpausable: bool) -> Result<serde_json::Value, JsonError> {
    // Only tables can be marked arrays.
    let array_mt: Option<Table> = match value {
        Value::Table(_) => lua.named_registry_value(ARRAY_MT_KEY).ok().flatten(),
        _ => None,
    };
    Walk::new(array_mt.as_ref(), unpausable).value(value)
}

/// A Lua value that is not a table, read straight off a Lua stack (no
/// mlua handle): what most actions return.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    /// The string's bytes, not yet checked to be UTF-8.
    Str(Vec<u8>),
}

impl Scalar {
    /// Reads the value at `index` of `state`'s stack if it is a boolean,
    /// number or string (`None` for anything else, `nil` included).
    ///
    /// # Safety
    ///
    /// `state` must be a live Lua state and `index` a valid slot of its
    /// stack. Raises no Lua error.
    pub unsafe fn read(state: *mut ffi::lua_State, index: c_int) -> Option<Self> {
        match ffi::lua_type(state, index) {
            ffi::LUA_TBOOLEAN => Some(Self::Bool(ffi::lua_toboolean(state, index) != 0)),
            ffi::LUA_TNUMBER if ffi::lua_isinteger(state, index) != 0 => {
                Some(Self::Int(ffi::lua_tointegerx(state, index, std::ptr::null_mut())))
            }
            ffi::LUA_TNUMBER => Some(Self::Float(ffi::lua_tonumberx(state, index, std::ptr::null_mut()))),
            ffi::LUA_TSTRING => {
                let mut len = 0usize;
                // A string slot converts nothing: this only reads.
                let p = ffi::lua_tolstring(state, index, &mut len);
                Some(Self::Str(std::slice::from_raw_parts(p.cast::<u8>(), len).to_vec()))
            }
            _ => None,
        }
    }
}

/// [`from_lua`] of a [`Scalar`]: the same JSON, errors and charges against
/// the invocation's memory limit as for the Lua value it was read from.
pub fn from_scalar(scalar: Scalar) -> Result<serde_json::Value, JsonError> {
    use serde_json::Value as J;
    let mut walk = Walk::new(None, false);
    walk.charge(0)?;
    Ok(match scalar {
        Scalar::Bool(b) => J::Bool(b),
        Scalar::Int(i) => J::from(i),
        Scalar::Float(n) => walk.float(n)?,
        Scalar::Str(bytes) => match String::from_utf8(bytes) {
            Ok(s) => {
                walk.charge(s.len())?;
                J::String(s)
            }
            Err(_) => return Err(walk.fail("string is not valid UTF-8")),
        },
    })
}

/// Nodes converted between two looks at the clock.
const CLOCK_EVERY: usize = 1024;

/// The state of one Lua-to-JSON conversion.
struct Walk<'a> {
    array_mt: Option<&'a Table>,
    path: Vec<Seg>,
    /// Estimated bytes the JSON value may still take.
    room: usize,
    nodes: usize,
    /// Whether the stall limit applies (see [`from_lua_unpausable`]).
    unpausable: bool,
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

impl<'a> Walk<'a> {
    /// A conversion with the room left under the active invocation's
    /// memory limit.
    fn new(array_mt: Option<&'a Table>, unpausable: bool) -> Self {
        let room = with_active(|c| {
            let meter = c.meter();
            match meter.limit() {
                0 => usize::MAX,
                limit => limit.saturating_sub(meter.used()),
            }
        })
        .unwrap_or(usize::MAX);
        Walk { array_mt, path: Vec::new(), room, nodes: 0, unpausable }
    }

    fn fail(&self, reason: impl Into<String>) -> JsonError {
        fail(&self.path, reason)
    }

    /// A float's JSON number: finite ones only.
    fn float(&self, n: f64) -> Result<serde_json::Value, JsonError> {
        match serde_json::Number::from_f64(n) {
            Some(n) => Ok(serde_json::Value::Number(n)),
            None => Err(self.fail(format!("{n} is not a finite number"))),
        }
    }

    /// Charges a node of `extra` bytes beyond its own size to the budget.
    fn charge(&mut self, extra: usize) -> Result<(), JsonError> {
        let cost = std::mem::size_of::<serde_json::Value>() + extra;
        if cost > self.room {
            with_active(|c| c.abort.set(Some(c.abort.get().unwrap_or(LimitKind::Memory))));
            return Err(self.fail("memory limit exceeded (the JSON form counts against the invocation's maxmem)"));
        }
        self.room -= cost;
        self.nodes += 1;
        if self.nodes.is_multiple_of(CLOCK_EVERY) {
            let unpausable = self.unpausable;
            if let Some(kind) = with_active(|c| if unpausable { c.check_stall() } else { c.check() }).flatten() {
                return Err(self.fail(format!("{} limit", kind.kind())));
            }
        }
        Ok(())
    }

    fn value(&mut self, value: &Value) -> Result<serde_json::Value, JsonError> {
        use serde_json::Value as J;
        if self.path.len() > MAX_DEPTH {
            return Err(self.fail(format!("nested deeper than {MAX_DEPTH} levels (or a cycle)")));
        }
        self.charge(0)?;
        Ok(match value {
            Value::Nil => J::Null,
            Value::Boolean(b) => J::Bool(*b),
            Value::Integer(i) => J::from(*i),
            Value::Number(n) => self.float(*n)?,
            Value::String(s) => match s.to_str() {
                Ok(s) => {
                    self.charge(s.len())?;
                    // Through `&str`: `BorrowedStr`'s `to_string` would go
                    // through the formatting machinery.
                    J::String(String::from(&*s))
                }
                Err(_) => return Err(self.fail("string is not valid UTF-8")),
            },
            Value::LightUserData(ud) if ud.0.is_null() => J::Null,
            Value::Error(e) => J::String(error_message(e)),
            Value::Table(t) => self.table(t)?,
            other => return Err(self.fail(format!("a {} has no JSON form", other.type_name()))),
        })
    }

    fn table(&mut self, t: &Table) -> Result<serde_json::Value, JsonError> {
        let marked_array = match (t.metatable(), self.array_mt) {
            (Some(mt), Some(arr)) => mt == *arr,
            _ => false,
        };
        let mut int_keys = 0usize;
        let mut max_int = 0i64;
        let mut str_keys = 0usize;
        for pair in t.pairs::<Value, Value>() {
            let (k, _) = pair.map_err(|e| self.fail(e.to_string()))?;
            match k {
                Value::Integer(i) if i >= 1 => {
                    int_keys += 1;
                    max_int = max_int.max(i);
                }
                Value::String(_) => str_keys += 1,
                Value::Integer(i) => return Err(self.fail(format!("table key {i} is not a valid array index"))),
                Value::Number(n) => return Err(self.fail(format!("table key {n} is not an integer"))),
                other => return Err(self.fail(format!("table key of type {} is not a string", other.type_name()))),
            }
        }
        if str_keys > 0 && int_keys > 0 {
            return Err(self.fail("table mixes array items and string keys"));
        }
        if int_keys > 0 || marked_array {
            if str_keys > 0 {
                return Err(self.fail("array has string keys"));
            }
            if max_int as usize != int_keys {
                return Err(self.fail(format!("sparse array: {int_keys} items but index {max_int}")));
            }
            self.charge(int_keys.saturating_mul(std::mem::size_of::<serde_json::Value>()))?;
            let mut out = Vec::with_capacity(int_keys);
            for i in 1..=max_int {
                let v: Value = t.raw_get(i).map_err(|e| self.fail(e.to_string()))?;
                self.path.push(Seg::Index(i));
                out.push(self.value(&v)?);
                self.path.pop();
            }
            return Ok(serde_json::Value::Array(out));
        }
        let mut map = serde_json::Map::with_capacity(str_keys);
        for pair in t.pairs::<Value, Value>() {
            let (k, v) = pair.map_err(|e| self.fail(e.to_string()))?;
            let key = match &k {
                Value::String(s) => match s.to_str() {
                    Ok(s) => String::from(&*s),
                    Err(_) => return Err(self.fail("table key is not valid UTF-8")),
                },
                _ => unreachable!("keys were checked above"),
            };
            self.charge(key.len())?;
            self.path.push(Seg::Key(key.clone()));
            let json = self.value(&v)?;
            self.path.pop();
            map.insert(key, json);
        }
        Ok(serde_json::Value::Object(map))
    }
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
    fn arrays_carry_the_marker_and_nulls_in_them_become_json_null() {
        let lua = lua();
        let v = to_lua(&lua, &json!({"a": [], "b": [1, null, "x"], "c": {"d": [[]]}})).unwrap();
        let t = v.as_table().unwrap();
        let mt: Table = lua.named_registry_value(ARRAY_MT_KEY).unwrap();
        for key in ["a", "b"] {
            let arr: Table = t.raw_get(key).unwrap();
            assert_eq!(arr.metatable(), Some(mt.clone()), "{key}");
        }
        let b: Table = t.raw_get("b").unwrap();
        assert_eq!(b.raw_get::<Value>(2).unwrap(), Value::NULL);
        assert_eq!(b.raw_len(), 3);
        let inner: Table = t.raw_get::<Table>("c").unwrap().raw_get::<Table>("d").unwrap().raw_get(1).unwrap();
        assert_eq!(inner.metatable(), Some(mt));
        assert_eq!(to_lua(&lua, &json!(null)).unwrap(), Value::NULL);
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_an_error_and_leaves_the_stack_clean() {
        let lua = lua();
        let mut deep = json!(1);
        for _ in 0..=MAX_DEPTH {
            deep = json!([deep]);
        }
        let err = to_lua(&lua, &deep).unwrap_err();
        assert!(err.to_string().contains("JSON nesting too deep"), "{err}");
        let mut ok = json!(1);
        for _ in 0..MAX_DEPTH {
            ok = json!({"k": ok});
        }
        assert!(to_lua(&lua, &ok).is_ok());
        // The state still works after the error unwound the pushes.
        assert_eq!(lua.load("return 1 + 1").eval::<i64>().unwrap(), 2);
    }

    #[test]
    fn running_out_of_memory_while_pushing_is_a_memory_error() {
        let lua = lua();
        lua.set_memory_limit(lua.used_memory() + 64 * 1024).unwrap();
        let big = json!((0..10_000).map(|i| format!("value number {i}")).collect::<Vec<_>>());
        assert!(matches!(to_lua(&lua, &big), Err(mlua::Error::MemoryError(_))));
        lua.set_memory_limit(0).unwrap();
        assert!(to_lua(&lua, &big).is_ok());
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

#[cfg(test)]
mod nesting_tests {
    use super::*;

    #[test]
    fn depth_counts_arrays_and_objects_outside_strings() {
        assert_eq!(nesting(b"1"), 0);
        assert_eq!(nesting(br#"{"a": [1, {"b": []}]}"#), 4);
        assert_eq!(nesting(br#"["[[[", "\"[", {}]"#), 2);
        assert_eq!(nesting("[".repeat(97).as_bytes()), 97);
    }
}
