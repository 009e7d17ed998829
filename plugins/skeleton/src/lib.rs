//! The smallest complete SL plugin, and a helper for tests.
//!
//! ```lua
//! -- config.lua
//! Plugin "skeleton" { file = "target/release/libsl_skeleton.so" }
//! -- an action
//! return call('skeleton', 'add', { x = args.x, y = args.y })  -- 5 for x=2, y=3
//! ```
//!
//! Actions:
//! - `add` `{x, y}`: `x + y`. Two integers give an integer, otherwise a float.
//! - `echo` any value: returns it unchanged.
//! - `sleep` `{ms}`: sleeps `ms` milliseconds (at most [`MAX_SLEEP_MS`]) and
//!   returns `{slept_ms}`. For tests of parking and timeouts.

use std::time::{Duration, Instant};

use sl_plugin::serde_json::Number;
use sl_plugin::{export_plugin, json, Plugin, Value};

/// The longest `sleep` accepted, in milliseconds.
pub const MAX_SLEEP_MS: u64 = 60_000;

/// The skeleton plugin. It has no configuration and no state.
pub struct Skeleton;

impl Plugin for Skeleton {
    const NAME: &'static str = "skeleton";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn init(_config: Value) -> Result<Self, String> {
        Ok(Skeleton)
    }

    fn call(&self, action: &str, payload: Value) -> Result<Value, String> {
        match action {
            "add" => add(&payload),
            "echo" => Ok(payload),
            "sleep" => sleep(&payload),
            other => Err(format!("skeleton: unknown action '{other}' (known: add, echo, sleep)")),
        }
    }
}

export_plugin!(Skeleton);

fn number<'a>(payload: &'a Value, key: &str) -> Result<&'a Number, String> {
    match payload.get(key) {
        Some(Value::Number(n)) => Ok(n),
        Some(other) => Err(format!("skeleton add: '{key}' must be a number, got {}", kind(other))),
        None => Err(format!("skeleton add: missing number '{key}' (payload {{x = 2, y = 3}})")),
    }
}

fn add(payload: &Value) -> Result<Value, String> {
    if !payload.is_object() {
        return Err(format!("skeleton add: payload must be a table {{x = 2, y = 3}}, got {}", kind(payload)));
    }
    let (x, y) = (number(payload, "x")?, number(payload, "y")?);
    if let (Some(a), Some(b)) = (x.as_i64(), y.as_i64()) {
        return a.checked_add(b).map(Value::from).ok_or_else(|| format!("skeleton add: {a} + {b} overflows"));
    }
    let sum = x.as_f64().unwrap_or(f64::NAN) + y.as_f64().unwrap_or(f64::NAN);
    Number::from_f64(sum).map(Value::Number).ok_or_else(|| "skeleton add: the sum is not finite".to_string())
}

fn sleep(payload: &Value) -> Result<Value, String> {
    let ms = payload
        .get("ms")
        .and_then(Value::as_u64)
        .ok_or_else(|| "skeleton sleep: payload must be {ms = <milliseconds, 0 or more>}".to_string())?;
    if ms > MAX_SLEEP_MS {
        return Err(format!("skeleton sleep: ms must be at most {MAX_SLEEP_MS}, got {ms}"));
    }
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(ms));
    Ok(json!({ "slept_ms": start.elapsed().as_millis() as u64 }))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(action: &str, payload: Value) -> Result<Value, String> {
        Skeleton::init(json!({})).unwrap().call(action, payload)
    }

    #[test]
    fn add_keeps_integers_and_adds_floats() {
        assert_eq!(call("add", json!({"x": 2, "y": 3})), Ok(json!(5)));
        assert!(call("add", json!({"x": 2, "y": 3})).unwrap().is_i64());
        assert_eq!(call("add", json!({"x": -2, "y": 0.5})), Ok(json!(-1.5)));
        assert_eq!(call("add", json!({"x": 1.25, "y": 1.25})), Ok(json!(2.5)));
    }

    #[test]
    fn add_rejects_bad_payloads() {
        let e = call("add", json!({"x": 2})).unwrap_err();
        assert!(e.contains("missing number 'y'"), "{e}");
        let e = call("add", json!({"x": "2", "y": 3})).unwrap_err();
        assert!(e.contains("'x' must be a number, got a string"), "{e}");
        let e = call("add", json!([1, 2])).unwrap_err();
        assert!(e.contains("payload must be a table"), "{e}");
        let e = call("add", json!({"x": i64::MAX, "y": 1})).unwrap_err();
        assert!(e.contains("overflows"), "{e}");
    }

    #[test]
    fn echo_returns_the_payload() {
        let v = json!({"a": [1, "two", null, {"b": true}]});
        assert_eq!(call("echo", v.clone()), Ok(v));
        assert_eq!(call("echo", Value::Null), Ok(Value::Null));
    }

    #[test]
    fn sleep_sleeps() {
        let start = Instant::now();
        let r = call("sleep", json!({"ms": 50})).unwrap();
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert!(r["slept_ms"].as_u64().unwrap() >= 50);
        assert!(call("sleep", json!({"ms": -1})).unwrap_err().contains("{ms = "));
        assert!(call("sleep", json!({"ms": MAX_SLEEP_MS + 1})).unwrap_err().contains("at most"));
    }

    #[test]
    fn unknown_actions_name_the_known_ones() {
        let e = call("nope", Value::Null).unwrap_err();
        assert_eq!(e, "skeleton: unknown action 'nope' (known: add, echo, sleep)");
    }
}
