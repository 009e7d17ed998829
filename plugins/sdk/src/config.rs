//! Small helpers for reading a plugin's configuration and payloads, so that
//! every plugin words its errors the same way.

use serde_json::{Map, Value};

/// What a JSON value is, in the words of a Lua author: `nil`, `a boolean`,
/// `a number`, `a string`, `a list` or `a table`.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}

/// The configuration `init` received, as a table whose keys are all in
/// `known` (no configuration at all is an empty table). Errors name the
/// plugin: `kv: unknown setting 'pth' (known: path)`.
pub fn config_table(plugin: &str, config: Value, known: &[&str]) -> Result<Map<String, Value>, String> {
    let config = match config {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        other => return Err(format!("{plugin}: the configuration must be a table, got {}", kind(&other))),
    };
    if let Some(key) = config.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!("{plugin}: unknown setting '{key}' (known: {})", known.join(", ")));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_with_known_keys_only() {
        assert_eq!(config_table("p", Value::Null, &["a"]).unwrap(), Map::new());
        assert_eq!(config_table("p", json!({"a": 1}), &["a", "b"]).unwrap().len(), 1);
        assert_eq!(
            config_table("p", json!({"c": 1}), &["a", "b"]).unwrap_err(),
            "p: unknown setting 'c' (known: a, b)"
        );
        assert_eq!(
            config_table("p", json!([1]), &["a"]).unwrap_err(),
            "p: the configuration must be a table, got a list"
        );
        assert_eq!([kind(&json!(null)), kind(&json!(true)), kind(&json!("s"))], ["nil", "a boolean", "a string"]);
    }
}
