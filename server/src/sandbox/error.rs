//! Errors as messages: the message of a Lua error, and how the sandbox's
//! Rust functions hand theirs to Lua code as strings.

use mlua::{Lua, MultiValue, Value};

/// The message of a Lua error without mlua's decorations.
pub fn error_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::RuntimeError(m) | mlua::Error::SyntaxError { message: m, .. } => m.clone(),
        mlua::Error::CallbackError { cause, .. } => error_message(cause),
        mlua::Error::MemoryError(_) => "not enough memory".into(),
        mlua::Error::WithContext { cause, .. } => error_message(cause),
        other => other.to_string(),
    }
}

/// The first value a sandbox function returns instead of raising an
/// error; the prelude raises the message that follows as a string.
pub fn error_marker() -> Value {
    static MARKER: u8 = 0;
    Value::LightUserData(mlua::LightUserData(&MARKER as *const u8 as *mut std::ffi::c_void))
}

/// Turns an error into `(error_marker(), message)` for the prelude to raise
/// as a string (errors of Rust functions would otherwise reach Lua code as
/// userdata, unlike the errors of Lua's own library).
pub fn soft(lua: &Lua, r: mlua::Result<MultiValue>) -> mlua::Result<MultiValue> {
    match r {
        Ok(v) => Ok(v),
        Err(mlua::Error::MemoryError(m)) => Err(mlua::Error::MemoryError(m)),
        Err(e) => {
            let msg = lua.create_string(error_message(&e))?;
            Ok(MultiValue::from_iter([error_marker(), Value::String(msg)]))
        }
    }
}
