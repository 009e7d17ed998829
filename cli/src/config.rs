//! The configuration file (`~/.slcli` unless `--config`/`SLCLI_CONFIG`
//! say otherwise): a JSON object whose `url` is the server to talk to, and
//! where the server URL of a command comes from.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{Map, Value};

use crate::args::MAX_BODY_MIB;
use crate::client;

/// What `slcli` says when no URL is known.
pub const NO_SERVER: &str = "no server configured: run 'slcli connect URL' first, or pass --url / set SLCLI_URL";

/// The default config file: `.slcli` in the home directory.
pub fn default_path() -> Result<PathBuf> {
    let home = ["HOME", "USERPROFILE"].iter().filter_map(std::env::var_os).find(|h| !h.is_empty());
    match home {
        Some(home) => Ok(PathBuf::from(home).join(".slcli")),
        None => bail!("cannot find the home directory (HOME is not set): pass --config PATH or set SLCLI_CONFIG"),
    }
}

/// The config file's contents. Keys other than `url` are kept as they are.
#[derive(Debug)]
pub struct Config {
    path: PathBuf,
    values: Map<String, Value>,
}

impl Config {
    /// Reads `path`; a missing or empty file is an empty config.
    pub fn load(path: &Path) -> Result<Self> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read config file {}", path.display())),
        };
        let values = if text.trim().is_empty() {
            Map::new()
        } else {
            match serde_json::from_str(&text)
                .with_context(|| format!("config file {} is not valid JSON", path.display()))?
            {
                Value::Object(map) => map,
                _ => bail!("config file {} must hold a JSON object like {{\"url\": \"http://...\"}}", path.display()),
            }
        };
        Ok(Self { path: path.to_path_buf(), values })
    }

    /// The saved server URL, if any.
    pub fn url(&self) -> Result<Option<&str>> {
        match self.values.get("url") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(anyhow!("config file {}: \"url\" must be a string", self.path.display())),
        }
    }

    /// The saved API token, if any.
    pub fn token(&self) -> Result<Option<&str>> {
        match self.values.get("token") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(t)) => Ok(Some(t)),
            Some(_) => bail!("{}: \"token\" must be a string", self.path.display()),
        }
    }

    /// Saves `token` with the URL, or forgets the saved one.
    pub fn set_token(&mut self, token: Option<&str>) {
        match token {
            Some(t) => self.values.insert("token".to_string(), Value::String(t.to_string())),
            None => self.values.remove("token"),
        };
    }

    pub fn set_url(&mut self, url: &str) {
        self.values.insert("url".to_string(), Value::String(url.to_string()));
    }

    /// Writes the file atomically (a temporary file in the same directory,
    /// then a rename), readable by its owner only on unix.
    pub fn save(&self) -> Result<()> {
        // Through a symlink, replace the file it points to rather than the link.
        let target = fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        let mut text = serde_json::to_string_pretty(&self.values)?;
        text.push('\n');
        write_atomically(&target, text.as_bytes())
            .with_context(|| format!("cannot write config file {}", self.path.display()))
    }
}

fn write_atomically(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "slcli".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        // The mode above only applies to a new file, and only through the umask.
        #[cfg(unix)]
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    } else {
        // Make the rename itself durable; not every platform can open a directory.
        let _ = fs::File::open(dir).and_then(|d| d.sync_all());
    }
    result
}

/// Where the server URL came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlSource {
    Flag,
    Env,
    File(PathBuf),
}

impl fmt::Display for UrlSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlSource::Flag => write!(f, "--url"),
            UrlSource::Env => write!(f, "SLCLI_URL"),
            UrlSource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The server URL: `--url`, else `SLCLI_URL` (if not empty), else the saved
/// one, which `saved` reads only when needed.
pub fn resolve_url(
    flag: Option<&str>,
    env: Option<&str>,
    saved: impl FnOnce() -> Result<Option<(String, PathBuf)>>,
) -> Result<(String, UrlSource)> {
    if let Some(url) = flag {
        return Ok((url.to_string(), UrlSource::Flag));
    }
    if let Some(url) = env.filter(|u| !u.trim().is_empty()) {
        return Ok((url.to_string(), UrlSource::Env));
    }
    match saved()? {
        Some((url, path)) => Ok((url, UrlSource::File(path))),
        None => bail!(NO_SERVER),
    }
}

/// The most bytes read of one answer: `--max-body-mib`, else
/// `SLCLI_MAX_BODY_MIB` (if not empty), else [`client::DEFAULT_MAX_BODY`].
/// The flag's value is checked by clap; the variable's here, alike.
pub fn max_body(flag: Option<u64>, env: Option<&str>) -> Result<u64> {
    let mib = match (flag, env.map(str::trim).filter(|v| !v.is_empty())) {
        (Some(mib), _) => mib,
        (None, Some(text)) => match text.parse::<u64>() {
            Ok(mib) if (1..=MAX_BODY_MIB).contains(&mib) => mib,
            _ => bail!("SLCLI_MAX_BODY_MIB={text:?} is not a number of MiB from 1 to {MAX_BODY_MIB}"),
        },
        (None, None) => return Ok(client::DEFAULT_MAX_BODY),
    };
    Ok(mib * client::MIB)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_empty_file_is_an_empty_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none");
        assert_eq!(Config::load(&path).unwrap().url().unwrap(), None);
        fs::write(&path, " \n").unwrap();
        assert_eq!(Config::load(&path).unwrap().url().unwrap(), None);
    }

    #[test]
    fn round_trip_keeps_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slcli.json");
        fs::write(&path, r#"{"url": "http://old:1", "token": "abc", "nested": {"a": [1, 2]}}"#).unwrap();
        let mut config = Config::load(&path).unwrap();
        assert_eq!(config.url().unwrap(), Some("http://old:1"));
        config.set_url("http://new:2");
        config.save().unwrap();

        let saved: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(saved, serde_json::json!({"url": "http://new:2", "token": "abc", "nested": {"a": [1, 2]}}));
        assert_eq!(Config::load(&path).unwrap().url().unwrap(), Some("http://new:2"));
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn new_file_holds_just_the_url() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".slcli");
        let mut config = Config::load(&path).unwrap();
        config.set_url("http://127.0.0.1:8080");
        config.save().unwrap();
        let saved: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(saved, serde_json::json!({"url": "http://127.0.0.1:8080"}));
    }

    #[cfg(unix)]
    #[test]
    fn saved_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slcli.json");
        fs::write(&path, "{}").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let mut config = Config::load(&path).unwrap();
        config.set_url("http://h:1");
        config.save().unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn saving_through_a_symlink_keeps_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        let link = dir.path().join("link.json");
        fs::write(&real, "{}").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut config = Config::load(&link).unwrap();
        config.set_url("http://h:1");
        config.save().unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert!(fs::read_to_string(&real).unwrap().contains("http://h:1"));
    }

    #[test]
    fn bad_files_are_errors_that_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg");
        fs::write(&path, "{not json").unwrap();
        let e = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(e.contains("cfg") && e.contains("not valid JSON") && e.contains("line 1"), "{e}");
        fs::write(&path, "[1]").unwrap();
        let e = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(e.contains("cfg") && e.contains("JSON object"), "{e}");
        fs::write(&path, r#"{"url": 5}"#).unwrap();
        let e = format!("{:#}", Config::load(&path).unwrap().url().unwrap_err());
        assert!(e.contains("must be a string"), "{e}");
    }

    #[test]
    fn a_failed_save_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("cfg");
        let mut config = Config::load(&path).unwrap();
        config.set_url("http://h:1");
        let e = format!("{:#}", config.save().unwrap_err());
        assert!(e.contains("cannot write config file") && e.contains("missing-dir"), "{e}");
    }

    fn saved(url: &str) -> impl FnOnce() -> Result<Option<(String, PathBuf)>> + '_ {
        move || Ok(Some((url.to_string(), PathBuf::from("/cfg"))))
    }

    #[test]
    fn url_precedence_is_flag_then_env_then_file() {
        assert_eq!(
            resolve_url(Some("http://flag"), Some("http://env"), saved("http://file")).unwrap(),
            ("http://flag".into(), UrlSource::Flag)
        );
        assert_eq!(
            resolve_url(None, Some("http://env"), saved("http://file")).unwrap(),
            ("http://env".into(), UrlSource::Env)
        );
        assert_eq!(
            resolve_url(None, None, saved("http://file")).unwrap(),
            ("http://file".into(), UrlSource::File("/cfg".into()))
        );
        // An empty SLCLI_URL counts as unset.
        assert_eq!(resolve_url(None, Some(""), saved("http://file")).unwrap().1, UrlSource::File("/cfg".into()));
    }

    #[test]
    fn the_file_is_read_only_when_needed() {
        let failing = || -> Result<Option<(String, PathBuf)>> { bail!("should not be read") };
        assert!(resolve_url(Some("http://flag"), None, failing).is_ok());
        assert!(resolve_url(None, Some("http://env"), failing).is_ok());
        assert!(resolve_url(None, None, failing).is_err());
    }

    #[test]
    fn the_body_bound_is_flag_then_env_then_default() {
        assert_eq!(max_body(Some(3), Some("5")).unwrap(), 3 << 20);
        assert_eq!(max_body(None, Some(" 5 ")).unwrap(), 5 << 20);
        assert_eq!(max_body(None, Some("")).unwrap(), client::DEFAULT_MAX_BODY);
        assert_eq!(max_body(None, None).unwrap(), 256 << 20);
        for bad in ["0", "x", "1.5", "1048577", "-2"] {
            let e = max_body(None, Some(bad)).unwrap_err().to_string();
            assert!(e.starts_with("SLCLI_MAX_BODY_MIB=") && e.contains("from 1 to 1048576"), "{e}");
        }
    }

    #[test]
    fn no_url_anywhere_says_how_to_connect() {
        let e = resolve_url(None, None, || Ok(None)).unwrap_err().to_string();
        assert_eq!(e, NO_SERVER);
    }
}
