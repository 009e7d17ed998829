//! Building a sandboxed Lua state.
//!
//! Only these libraries are loaded (README, "Differences from Lua 5.4"): base (without
//! `dofile`, `loadfile`, `collectgarbage`, `warn` and binary `load`),
//! `string` (without `dump`), `table`, `math`, `utf8`, `coroutine`, and `os`
//! with only `time`, `clock`, `date` and `difftime`. `print` writes to the
//! invocation's logs; `json` offers `encode`, `decode` and `null`.

use std::cell::Cell;

use mlua::{Lua, LuaOptions, MultiValue, StdLib, Value};

use super::alloc::MemoryMeter;
use super::decide::{C_LOOP_MAX, PIECE, VALUES_MAX};
use super::error::{error_marker, soft};
use super::hook::{with_active, LimitKind};
use super::{baselib, dispatch};
use super::{json, tablelib};

const PRELUDE: &str = include_str!("prelude.lua");

/// The Lua versions of the guarded library functions (see `dispatch.rs`),
/// loaded in a state when one is first needed.
const PRELUDE_LONG: &str = include_str!("prelude_long.lua");

/// Bytes of a chunk handed to Lua's parser at a time by `load`: the limits
/// are checked between pieces, as the parser itself runs in C where the
/// hook never fires.
const LOAD_PIECE: usize = 16 * 1024;

fn limit_error(kind: LimitKind) -> mlua::Error {
    mlua::Error::runtime(format!("invocation aborted: {} limit", kind.kind()))
}

/// The value a coroutine yields to pass a preemption up to its resumer.
/// A light userdata with the address of a private static: user code can
/// neither forge nor reach it.
pub fn preempt_marker() -> Value {
    static MARKER: u8 = 1;
    Value::LightUserData(mlua::LightUserData(&MARKER as *const u8 as *mut std::ffi::c_void))
}

/// The first value `call` yields: the executor runs the plugin call that
/// follows it and resumes the thread with `(ok, result)`.
pub fn call_marker() -> Value {
    static MARKER: u8 = 2;
    Value::LightUserData(mlua::LightUserData(&MARKER as *const u8 as *mut std::ffi::c_void))
}

/// Follows the CALL marker when `invoke` yields: the executor runs the
/// action that follows it.
pub fn invoke_marker() -> Value {
    static MARKER: u8 = 3;
    Value::LightUserData(mlua::LightUserData(&MARKER as *const u8 as *mut std::ffi::c_void))
}

/// Follows the CALL marker when `require` yields: the executor fetches the
/// library action named next and resumes with its loaded chunk.
pub fn require_marker() -> Value {
    static MARKER: u8 = 4;
    Value::LightUserData(mlua::LightUserData(&MARKER as *const u8 as *mut std::ffi::c_void))
}

/// Follows the CALL marker when `publish` yields: the executor appends
/// the message to its topic and resumes with `{offset, partition}`.
pub fn publish_marker() -> Value {
    static MARKER: u8 = 5;
    Value::LightUserData(mlua::LightUserData(&MARKER as *const u8 as *mut std::ffi::c_void))
}

/// The prelude compiled once per process, without debug information: each
/// state loads it as a binary chunk (trusted: compiled here from our own
/// source) instead of parsing it, and its functions carry no line tables or
/// local names, which would cost every warm instance some kilobytes.
fn prelude_bytecode() -> mlua::Result<&'static [u8]> {
    static BYTECODE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    compiled_once(&BYTECODE, PRELUDE)
}

/// [`PRELUDE_LONG`] compiled once per process, like the prelude.
fn prelude_long_bytecode() -> mlua::Result<&'static [u8]> {
    static BYTECODE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    compiled_once(&BYTECODE, PRELUDE_LONG)
}

fn compiled_once(cell: &'static std::sync::OnceLock<Vec<u8>>, source: &str) -> mlua::Result<&'static [u8]> {
    if let Some(b) = cell.get() {
        return Ok(b);
    }
    let compiled = Lua::new().load(source).set_name("=sandbox").into_function()?.dump(true);
    Ok(cell.get_or_init(|| compiled))
}

/// Creates a Lua state with the sandboxed globals and its memory meter,
/// installed before the libraries are loaded so that their objects too are
/// small blocks of the meter's region (see [`super::alloc`]). No string of
/// the state may be longer than `max_string` bytes (`Limits.max_string`):
/// the meter refuses it, and the prelude's Lua versions of library
/// functions refuse such a result before building it. The caller installs
/// the hook, and must keep the meter alive until the state is dropped.
pub fn new_state(max_string: usize) -> mlua::Result<(Lua, Box<MemoryMeter>)> {
    let lua = Lua::new_with(StdLib::NONE, LuaOptions::new())?;
    let meter = super::alloc::install(&lua, max_string)?;
    match set_up(&lua, max_string) {
        Ok(()) => Ok((lua, meter)),
        Err(e) => {
            // The state first: it frees its blocks through the meter.
            drop(lua);
            drop(meter);
            Err(e)
        }
    }
}

/// The libraries and the sandboxed globals of a new state.
fn set_up(lua: &Lua, max_string: usize) -> mlua::Result<()> {
    lua.load_std_libs(StdLib::COROUTINE | StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::UTF8 | StdLib::OS)?;
    let array_mt = lua.create_table()?;
    array_mt.set("__name", "json.array")?;
    // Hidden from getmetatable: a `__gc` added to it would mark every array
    // decoded afterwards for a finalizer, which runs outside all limits.
    array_mt.set("__metatable", false)?;
    lua.set_named_registry_value(json::ARRAY_MT_KEY, array_mt)?;
    // SAFETY: C functions that check their arguments (see `baselib`).
    unsafe {
        lua.globals().raw_set("tostring", lua.create_c_function(baselib::tostring)?)?;
        lua.globals().raw_set("ipairs", lua.create_c_function(baselib::ipairs)?)?;
        lua.globals().raw_set("ack", lua.create_c_function(super::verdicts::ack)?)?;
        lua.globals().raw_set("retry", lua.create_c_function(super::verdicts::retry)?)?;
    }

    let take_preempt = lua.create_function(|_, co: mlua::Thread| {
        Ok(with_active(|c| c.take_preempted(co.to_pointer())).unwrap_or(false))
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
        let r = json::from_lua_unpausable(lua, &v)
            .map_err(|e| mlua::Error::runtime(e.to_string()))
            .and_then(|j| Ok(Value::String(lua.create_string(j.to_string())?)));
        soft(lua, r.map(|v| MultiValue::from_iter([v])))
    })?;
    let decode = lua.create_function(|lua, s: mlua::String| {
        let r = json::decode_to_lua(lua, &s.as_bytes());
        soft(lua, r.map(|v| MultiValue::from_iter([v])))
    })?;
    let stall = lua.create_function(|_, ()| match with_active(|c| c.check_stall()).flatten() {
        Some(kind) => Err(limit_error(kind)),
        None => Ok(()),
    })?;
    let wrap_handler = lua.create_function(|lua, handler: Value| {
        let Value::Function(handler) = handler else {
            return Ok(handler); // xpcall itself reports the bad argument
        };
        let wrapped = lua.create_function(move |_, args: MultiValue| {
            if with_active(|c| c.abort.get().is_some()).unwrap_or(false) {
                return Ok(args);
            }
            handler.call::<MultiValue>(args)
        })?;
        Ok(Value::Function(wrapped))
    })?;
    let chunk_reader = lua.create_function(|lua, chunk: mlua::String| {
        let offset = Cell::new(0usize);
        lua.create_function(move |lua, ()| {
            if let Some(kind) = with_active(|c| c.check_stall()).flatten() {
                return Err(limit_error(kind));
            }
            let bytes = chunk.as_bytes();
            let start = offset.get().min(bytes.len());
            let end = (start + LOAD_PIECE).min(bytes.len());
            offset.set(end);
            if start == end {
                return Ok(Value::Nil);
            }
            Ok(Value::String(lua.create_string(&bytes[start..end])?))
        })
    })?;
    // SAFETY: `guarded` is a C function that checks its arguments.
    let guarded = unsafe { lua.create_c_function(dispatch::guarded) }?;
    // Runs prelude_long.lua (trusted bytecode compiled here) with what the
    // prelude hands it (its arguments); returns its table of functions.
    let load_long = lua.create_function(|lua, args: MultiValue| {
        lua.load(prelude_long_bytecode()?)
            .set_name("=sandbox")
            .set_mode(mlua::ChunkMode::Binary)
            .call::<mlua::Table>(args)
    })?;
    let limits = lua.create_table()?;
    limits.set("piece", PIECE)?;
    limits.set("loop", C_LOOP_MAX)?;
    limits.set("values", VALUES_MAX)?;
    limits.set("max_string", max_string)?;
    let refuse = lua.create_function(|_, ()| -> mlua::Result<()> {
        with_active(|c| c.meter().refuse_long_string());
        Err(mlua::Error::runtime("not enough memory"))
    })?;
    // SAFETY: `span_len` is a C function that checks its arguments.
    let span_len = unsafe { lua.create_c_function(span_len) }?;
    let b64 = lua.create_function(|lua, s: mlua::String| {
        use base64::Engine;
        lua.create_string(base64::engine::general_purpose::STANDARD.encode(&*s.as_bytes()))
    })?;
    let array = lua.create_function(|lua, t: Option<mlua::Table>| {
        let mt: mlua::Table = lua.named_registry_value(json::ARRAY_MT_KEY)?;
        let t = match t {
            Some(t) => t,
            None => lua.create_table()?,
        };
        match t.metatable() {
            None => t.set_metatable(Some(mt))?,
            Some(m) if m == mt => {}
            Some(_) => return soft(lua, Err(mlua::Error::runtime("json.array: the table already has a metatable"))),
        }
        soft(lua, Ok(MultiValue::from_iter([Value::Table(t)])))
    })?;
    let args: MultiValue = [
        Value::Function(take_preempt),
        preempt_marker(),
        Value::Function(guard),
        Value::Function(emit),
        Value::Function(encode),
        Value::Function(decode),
        Value::NULL,
        error_marker(),
        call_marker(),
        Value::Function(stall),
        Value::Function(wrap_handler),
        Value::Function(chunk_reader),
        Value::Function(guarded),
        invoke_marker(),
        require_marker(),
        Value::Function(b64),
        Value::Function(array),
        Value::Table(limits),
        Value::Function(refuse),
        Value::Function(span_len),
        Value::Function(super::strings::find_span(lua)?),
        Value::Function(super::strings::has_specials(lua)?),
        Value::Function(load_long),
        super::strings::paused_marker(),
        // SAFETY: a C function that checks its argument.
        Value::Function(unsafe { lua.create_c_function(baselib::set_index_helper) }?),
        publish_marker(),
    ]
    .into_iter()
    .collect();
    super::strings::install(lua)?;
    super::coroutines::install(lua)?;
    lua.load(prelude_bytecode()?).set_name("=sandbox").set_mode(mlua::ChunkMode::Binary).call::<()>(args)?;
    Ok(())
}

/// `span_len(t, sep, i, j)` for the prelude: the length of
/// `table.concat(t, sep, i, j)` of a table read raw, for at most
/// [`C_LOOP_MAX`] items, or nil if an item is not a string or a number
/// (numbers count as their longest text).
unsafe extern "C-unwind" fn span_len(state: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    // SAFETY: called by Lua with its arguments on the stack; the checks
    // raise Lua errors (no Rust value with a destructor is alive), and
    // `tablelib::span_len` reads the table raw with room for its pushes.
    unsafe {
        ffi::luaL_checktype(state, 1, ffi::LUA_TTABLE);
        let mut sep = 0usize;
        ffi::luaL_checklstring(state, 2, &mut sep);
        let i = ffi::luaL_checkinteger(state, 3);
        let j = ffi::luaL_checkinteger(state, 4);
        if j.checked_sub(i).is_none_or(|n| n >= C_LOOP_MAX) {
            return ffi::luaL_error(state, c"span_len: range too long".as_ptr());
        }
        ffi::luaL_checkstack(state, 2, std::ptr::null());
        match tablelib::span_len(state, 1, sep, i, j) {
            Some(n) => ffi::lua_pushinteger(state, n as ffi::lua_Integer),
            None => ffi::lua_pushnil(state),
        }
        1
    }
}
