//! The args of `slcli run`: a JSON object from a file (`-p`) or inline
//! (`-d`), checked here so that a typo is reported with its place before
//! anything is sent.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// The request body for `run`: the payload's text as given, once checked
/// to be a JSON object, or `{}` without one.
pub fn load(file: Option<&Path>, inline: Option<&str>) -> Result<Vec<u8>> {
    match (file, inline) {
        (Some(path), _) => {
            let text =
                fs::read_to_string(path).with_context(|| format!("cannot read payload file {}", path.display()))?;
            check(&text, &path.display().to_string())?;
            Ok(text.into_bytes())
        }
        (None, Some(text)) => {
            check(text, "--data")?;
            Ok(text.as_bytes().to_vec())
        }
        (None, None) => Ok(b"{}".to_vec()),
    }
}

/// Checks that `text` (from `origin`) is a JSON object.
fn check(text: &str, origin: &str) -> Result<()> {
    if text.trim().is_empty() {
        bail!("{origin} is empty: the payload must be a JSON object, e.g. {{}}");
    }
    let value: Value = serde_json::from_str(text).with_context(|| format!("invalid JSON in {origin}"))?;
    let what = match value {
        Value::Object(_) => return Ok(()),
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
    };
    bail!("{origin} must hold a JSON object (the action's args), not {what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_payload_is_an_empty_object() {
        assert_eq!(load(None, None).unwrap(), b"{}");
    }

    #[test]
    fn inline_payload_is_sent_as_given() {
        let text = r#"{"name": "from Lua", "n": 12345678901234567890123}"#;
        assert_eq!(load(None, Some(text)).unwrap(), text.as_bytes());
    }

    #[test]
    fn file_payload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("payload.json");
        fs::write(&path, "{\"name\": \"from Lua\"}\n").unwrap();
        assert_eq!(load(Some(&path), None).unwrap(), b"{\"name\": \"from Lua\"}\n");
    }

    #[test]
    fn invalid_json_names_the_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        fs::write(&path, "{\n  \"name\": 'x'\n}").unwrap();
        let e = format!("{:#}", load(Some(&path), None).unwrap_err());
        assert!(e.starts_with(&format!("invalid JSON in {}: ", path.display())), "{e}");
        assert!(e.contains("line 2 column"), "{e}");

        let e = format!("{:#}", load(None, Some("{\"a\": }")).unwrap_err());
        assert!(e.starts_with("invalid JSON in --data: ") && e.contains("line 1 column 7"), "{e}");
    }

    #[test]
    fn a_payload_must_be_an_object() {
        for (text, what) in [("[1]", "an array"), ("\"x\"", "a string"), ("3", "a number"), ("null", "null")] {
            let e = load(None, Some(text)).unwrap_err().to_string();
            assert_eq!(e, format!("--data must hold a JSON object (the action's args), not {what}"));
        }
        let e = load(None, Some("  ")).unwrap_err().to_string();
        assert!(e.contains("--data is empty"), "{e}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let e = format!("{:#}", load(Some(Path::new("no/such.json")), None).unwrap_err());
        assert!(e.starts_with("cannot read payload file no/such.json: "), "{e}");
    }
}
