//! Building a sandboxed Lua state.
//!
//! Only the libraries listed in design.md are loaded: base (without
//! `dofile`, `loadfile`, `collectgarbage`, `warn` and binary `load`),
//! `string` (without `dump`), `table`, `math`, `utf8`, `coroutine`, and `os`
//! with only `time`, `clock`, `date` and `difftime`. `print` writes to the
//! invocation's logs; `json` offers `encode`, `decode` and `null`.

use mlua::{Lua, LuaOptions, MultiValue, StdLib, Value};

use super::hook::{with_active, LimitKind};
use super::json;

const PRELUDE: &str = include_str!("prelude.lua");

fn limit_error(kind: LimitKind) -> mlua::Error {
    mlua::Error::runtime(format!("invocation aborted: {} limit", kind.kind()))
}

/// Creates a Lua state with the sandboxed globals. The caller installs the
/// memory meter and the hook.
pub fn new_state() -> mlua::Result<Lua> {
    let libs = StdLib::COROUTINE | StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::UTF8 | StdLib::OS;
    let lua = Lua::new_with(libs, LuaOptions::new())?;
    let array_mt = lua.create_table()?;
    array_mt.set("__name", "json.array")?;
    lua.set_named_registry_value(json::ARRAY_MT_KEY, array_mt)?;

    let take_preempt = lua.create_function(|_, ()| Ok(with_active(|c| c.preempted.replace(false)).unwrap_or(false)))?;
    let mark_preempt = lua.create_function(|_, ()| {
        with_active(|c| c.preempted.set(true));
        Ok(())
    })?;
    let guard = lua.create_function(|_, ()| match with_active(|c| c.check()).flatten() {
        Some(kind) => Err(limit_error(kind)),
        None => Ok(()),
    })?;
    let emit = lua.create_function(|_, line: mlua::String| {
        let line = line.to_string_lossy();
        with_active(|c| c.log_line(&line));
        Ok(())
    })?;
    let encode = lua.create_function(|lua, v: Value| {
        let j = json::from_lua(lua, &v).map_err(mlua::Error::external)?;
        serde_json::to_string(&j).map_err(mlua::Error::external)
    })?;
    let decode = lua.create_function(|lua, s: mlua::String| {
        let j: serde_json::Value = serde_json::from_slice(&s.as_bytes()).map_err(|e| mlua::Error::runtime(format!("invalid JSON: {e}")))?;
        json::to_lua(lua, &j)
    })?;
    let args: MultiValue = [
        Value::Function(take_preempt),
        Value::Function(mark_preempt),
        Value::Function(guard),
        Value::Function(emit),
        Value::Function(encode),
        Value::Function(decode),
        Value::NULL,
    ]
    .into_iter()
    .collect();
    lua.load(PRELUDE).set_name("=sandbox").call::<()>(args)?;
    Ok(lua)
}
