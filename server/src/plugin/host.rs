//! Loading plugins and calling them.

use std::collections::BTreeMap;
use std::ffi::{c_void, CStr};
use std::fmt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;

use libloading::Library;
use serde_json::{json, Value};

use super::abi::{CallFn, FreeFn, InfoFn, InitFn, ShutdownFn, SlBuf, CALL_ERR, CALL_OK};

/// The oldest plugin ABI version this server accepts.
pub const ABI_MIN: u32 = 1;
/// The newest plugin ABI version this server accepts.
pub const ABI_MAX: u32 = 1;

const SYM_INFO: &str = "sl_plugin_info";
const SYM_INIT: &str = "sl_plugin_init";
const SYM_CALL: &str = "sl_plugin_call";
const SYM_FREE: &str = "sl_plugin_free";
const SYM_SHUTDOWN: &str = "sl_plugin_shutdown";

/// One `Plugin "name" { file = ..., ... }` block of the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginSpec {
    /// The name actions use in `call(name, ...)`.
    pub name: String,
    /// The shared library. The configuration resolves relative paths
    /// against the directory of config.lua; a path that is still relative
    /// here is taken from the working directory. It is never looked up in
    /// the system's library paths.
    pub file: PathBuf,
    /// The rest of the block (everything but `file`) as a JSON object,
    /// passed to the plugin's `init`.
    pub config: Value,
}

/// Why a plugin could not be loaded. Every message names the plugin and its file.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The file does not exist.
    #[error("plugin '{name}': file {} not found", file.display())]
    NotFound { name: String, file: PathBuf },
    /// The file exists but cannot be used (not a regular file, no permission).
    #[error("plugin '{name}': cannot read {}: {reason}", file.display())]
    Unreadable { name: String, file: PathBuf, reason: String },
    /// The dynamic loader refused the file (not a shared library, wrong
    /// architecture, unresolved dependency).
    #[error("plugin '{name}': cannot load {}: {reason}", file.display())]
    Load { name: String, file: PathBuf, reason: String },
    /// A function every plugin exports is missing.
    #[error(
        "plugin '{name}': {} does not export {symbol}: is it an SL plugin (built with sl_plugin::export_plugin!)?",
        file.display()
    )]
    MissingSymbol { name: String, file: PathBuf, symbol: &'static str },
    /// The plugin was built for an ABI version this server does not accept.
    #[error(
        "plugin '{name}': {} uses plugin ABI version {found}, this server accepts {min}..={max}; \
         rebuild the plugin against this server's sl-plugin SDK",
        file.display()
    )]
    Abi { name: String, file: PathBuf, found: u32, min: u32, max: u32 },
    /// `sl_plugin_info` returned unusable strings.
    #[error("plugin '{name}': {} returned invalid info: {reason}", file.display())]
    BadInfo { name: String, file: PathBuf, reason: String },
    /// The plugin's `init` refused its configuration.
    #[error("plugin '{name}': {} failed to initialise: {message}", file.display())]
    Init { name: String, file: PathBuf, message: String },
    /// Two blocks have the same name.
    #[error("plugin '{name}' is configured twice")]
    Duplicate { name: String },
}

/// A loaded and initialised plugin.
///
/// Dropping it calls the plugin's `sl_plugin_shutdown` and then unloads the
/// library. Shared as `Arc<Plugin>`, it is dropped only after the last call
/// has returned.
pub struct Plugin {
    name: String,
    reported_name: String,
    version: String,
    file: PathBuf,
    abi: u32,
    handle: NonNull<c_void>,
    call_fn: CallFn,
    free_fn: FreeFn,
    shutdown_fn: ShutdownFn,
    // Declared last and only dropped after `Drop::drop` ran the shutdown:
    // the function pointers above point into it.
    _library: Library,
}

// SAFETY: `Plugin` owns the handle and the library. The function pointers are
// plain code addresses that stay valid while `_library` is loaded, which is
// as long as the `Plugin` lives. The plugin ABI requires `sl_plugin_call` to
// be callable concurrently from any thread with the same handle (the SDK
// enforces it by requiring `Send + Sync` of the plugin type, and documents
// it), so sharing `&Plugin` across threads (`Sync`) is sound, and so is
// moving it to another thread (`Send`): nothing in it is tied to the thread
// that loaded it. `sl_plugin_shutdown` is only called from `Drop`, which has
// exclusive access, so no call can be running then.
unsafe impl Send for Plugin {}
// SAFETY: see the `Send` impl above.
unsafe impl Sync for Plugin {}

impl Plugin {
    /// Loads, checks and initialises one plugin.
    ///
    /// Order: the file exists, the library loads, `sl_plugin_info` exists,
    /// its ABI version is accepted (nothing else is resolved or called
    /// before), the other four functions exist, `init` succeeds.
    pub fn load(spec: &PluginSpec) -> Result<Plugin, PluginError> {
        let name = || spec.name.clone();
        let file = || spec.file.clone();

        // 1. The file exists and is a regular file.
        match std::fs::metadata(&spec.file) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(PluginError::Unreadable { name: name(), file: file(), reason: "not a file".into() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(PluginError::NotFound { name: name(), file: file() })
            }
            Err(e) => return Err(PluginError::Unreadable { name: name(), file: file(), reason: e.to_string() }),
        }
        // An absolute path, so that the loader never searches system paths
        // for a bare file name.
        let path = std::fs::canonicalize(&spec.file).map_err(|e| PluginError::Unreadable {
            name: name(),
            file: file(),
            reason: e.to_string(),
        })?;

        // 2. Load it.
        let library =
            open(&path).map_err(|e| PluginError::Load { name: name(), file: file(), reason: e.to_string() })?;

        // 3. Resolve `sl_plugin_info` and check the ABI before anything else.
        // SAFETY: `InfoFn` is the type every ABI version gives `sl_plugin_info`
        // (its signature and `SlPluginInfo`'s layout are frozen).
        let info_fn: InfoFn = unsafe { symbol(&library, SYM_INFO) }.ok_or_else(|| PluginError::MissingSymbol {
            name: name(),
            file: file(),
            symbol: SYM_INFO,
        })?;
        // SAFETY: `sl_plugin_info` takes nothing and only reads statics.
        let info = unsafe { info_fn() };
        if !(ABI_MIN..=ABI_MAX).contains(&info.abi_version) {
            return Err(PluginError::Abi {
                name: name(),
                file: file(),
                found: info.abi_version,
                min: ABI_MIN,
                max: ABI_MAX,
            });
        }
        let bad_info = |reason: &str| PluginError::BadInfo { name: name(), file: file(), reason: reason.to_string() };
        if info.name.is_null() || info.version.is_null() {
            return Err(bad_info("null name or version"));
        }
        // SAFETY: non-null, and the accepted ABI promises NUL-terminated
        // strings that live as long as the library.
        let (reported_name, version) = unsafe {
            (
                CStr::from_ptr(info.name).to_string_lossy().into_owned(),
                CStr::from_ptr(info.version).to_string_lossy().into_owned(),
            )
        };

        // 4. The other four functions.
        let missing = |symbol| PluginError::MissingSymbol { name: name(), file: file(), symbol };
        // SAFETY: for an accepted ABI version these are the symbols' types.
        let (init_fn, call_fn, free_fn, shutdown_fn) = unsafe {
            (
                symbol::<InitFn>(&library, SYM_INIT).ok_or_else(|| missing(SYM_INIT))?,
                symbol::<CallFn>(&library, SYM_CALL).ok_or_else(|| missing(SYM_CALL))?,
                symbol::<FreeFn>(&library, SYM_FREE).ok_or_else(|| missing(SYM_FREE))?,
                symbol::<ShutdownFn>(&library, SYM_SHUTDOWN).ok_or_else(|| missing(SYM_SHUTDOWN))?,
            )
        };

        // 5. Initialise.
        let config = serde_json::to_vec(&spec.config).unwrap_or_else(|_| b"{}".to_vec());
        let mut err = SlBuf::empty();
        // SAFETY: `config` is valid for its length during the call; `err` is
        // a valid, empty slot the plugin may fill.
        let handle = unsafe { init_fn(config.as_ptr(), config.len(), &mut err) };
        // SAFETY: `err` is empty or was filled by this plugin, and is taken once.
        let message = unsafe { take(free_fn, err) };
        let Some(handle) = NonNull::new(handle) else {
            let message = String::from_utf8_lossy(&message).into_owned();
            let message = if message.is_empty() { "init failed without a message".to_string() } else { message };
            return Err(PluginError::Init { name: name(), file: file(), message });
        };

        Ok(Plugin {
            name: spec.name.clone(),
            reported_name,
            version,
            file: spec.file.clone(),
            abi: info.abi_version,
            handle,
            call_fn,
            free_fn,
            shutdown_fn,
            _library: library,
        })
    }

    /// The name from the configuration, which actions use.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name the plugin reports for itself (may differ from [`Plugin::name`]).
    pub fn reported_name(&self) -> &str {
        &self.reported_name
    }

    /// The version the plugin reports.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The configured file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The plugin's ABI version.
    pub fn abi(&self) -> u32 {
        self.abi
    }

    /// Runs `action` with a JSON `payload` and returns the JSON result, or
    /// the plugin's error message (a panic in the plugin arrives here as
    /// `plugin panicked: ...`).
    ///
    /// Blocks for as long as the plugin takes: call it from the blocking
    /// pool. Safe to call from many threads at once.
    pub fn call(&self, action: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = SlBuf::empty();
        // SAFETY: the handle is live (shutdown only happens in `Drop`); the
        // action and payload slices are valid for their lengths during the
        // call; `out` is a valid, empty slot. The ABI allows concurrent calls.
        let status = unsafe {
            (self.call_fn)(
                self.handle.as_ptr(),
                action.as_ptr(),
                action.len(),
                payload.as_ptr(),
                payload.len(),
                &mut out,
            )
        };
        // SAFETY: `out` is empty or was filled by this plugin, and is taken once.
        let bytes = unsafe { take(self.free_fn, out) };
        match status {
            CALL_OK => Ok(bytes),
            CALL_ERR => Err(String::from_utf8_lossy(&bytes).into_owned()),
            other => Err(format!("plugin '{}' returned an unknown status {other}", self.name)),
        }
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        // SAFETY: the handle came from this library's `init` and is used
        // for the last time; `&mut self` means no call is running. The
        // library is unloaded after this, when `_library` is dropped.
        unsafe { (self.shutdown_fn)(self.handle.as_ptr()) };
    }
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("reported_name", &self.reported_name)
            .field("version", &self.version)
            .field("file", &self.file)
            .field("abi", &self.abi)
            .finish_non_exhaustive()
    }
}

/// Opens a library, resolving all its symbols now (a missing dependency
/// fails here, not at the first call) and keeping them out of the global
/// namespace.
fn open(path: &Path) -> Result<Library, libloading::Error> {
    #[cfg(unix)]
    {
        use libloading::os::unix::{Library as UnixLibrary, RTLD_LOCAL, RTLD_NOW};
        // SAFETY: loading runs the library's initialisers. Loading a plugin
        // means trusting it: the operator listed it in config.lua.
        unsafe { UnixLibrary::open(Some(path), RTLD_NOW | RTLD_LOCAL) }.map(Library::from)
    }
    #[cfg(not(unix))]
    {
        // SAFETY: as above.
        unsafe { Library::new(path) }
    }
}

/// Resolves a function symbol and copies out its address.
///
/// # Safety
///
/// `T` must be the function pointer type of the symbol; the result must not
/// be called after `library` is unloaded.
unsafe fn symbol<T: Copy>(library: &Library, name: &str) -> Option<T> {
    let mut bytes = name.as_bytes().to_vec();
    bytes.push(0);
    // SAFETY: the type is right by this function's contract.
    unsafe { library.get::<T>(&bytes) }.ok().map(|s| *s)
}

/// Copies the bytes of a plugin buffer and gives it back to the plugin.
///
/// # Safety
///
/// `buf` is empty (null) or was returned by the plugin whose `sl_plugin_free`
/// is `free`, and is not used again.
unsafe fn take(free: FreeFn, buf: SlBuf) -> Vec<u8> {
    if buf.ptr.is_null() {
        return Vec::new();
    }
    // SAFETY: the plugin wrote `len` initialised bytes at `ptr`.
    let bytes = unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) }.to_vec();
    // SAFETY: given back, once, to the library that allocated it.
    unsafe { free(buf) };
    bytes
}

/// Every configured plugin, by configured name.
#[derive(Default)]
pub struct PluginHost {
    plugins: BTreeMap<String, Arc<Plugin>>,
}

impl PluginHost {
    /// A host without plugins.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Loads every plugin, in order. The first failure is returned (plugins
    /// loaded before it are shut down again).
    pub fn load_all(specs: &[PluginSpec]) -> Result<PluginHost, PluginError> {
        let mut plugins = BTreeMap::new();
        for spec in specs {
            if plugins.contains_key(&spec.name) {
                return Err(PluginError::Duplicate { name: spec.name.clone() });
            }
            let plugin = Plugin::load(spec)?;
            tracing::info!(
                name = plugin.name(),
                plugin = plugin.reported_name(),
                version = plugin.version(),
                file = %plugin.file().display(),
                "plugin loaded"
            );
            plugins.insert(spec.name.clone(), Arc::new(plugin));
        }
        Ok(PluginHost { plugins })
    }

    /// The plugin configured under `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.plugins.get(name)
    }

    /// The configured names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.plugins.keys().cloned().collect()
    }

    /// Number of plugins.
    pub fn len(&self) -> usize {
        self.plugins.len()
    }

    /// Whether there are no plugins.
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    /// One `{name, plugin, version, file, abi}` object per plugin, sorted by
    /// name: `name` is the configured name, `plugin` the reported one.
    pub fn infos(&self) -> Vec<Value> {
        self.plugins
            .values()
            .map(|p| {
                json!({
                    "name": p.name(),
                    "plugin": p.reported_name(),
                    "version": p.version(),
                    "file": p.file().display().to_string(),
                    "abi": p.abi(),
                })
            })
            .collect()
    }
}

impl fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.plugins.values()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Barrier;
    use std::time::{Duration, Instant};

    /// The path of the library of crate `lib` (e.g. `sl_skeleton`), built
    /// by cargo if needed.
    fn lib_path(lib: &str) -> PathBuf {
        sl_testkit::plugin_lib(lib)
    }

    fn spec(name: &str, lib: &str, config: Value) -> PluginSpec {
        PluginSpec { name: name.to_string(), file: lib_path(lib), config }
    }

    fn load(name: &str, lib: &str, config: Value) -> Result<Plugin, PluginError> {
        Plugin::load(&spec(name, lib, config))
    }

    fn call_json(p: &Plugin, action: &str, payload: Value) -> Result<Value, String> {
        let bytes = p.call(action, payload.to_string().as_bytes())?;
        Ok(serde_json::from_slice(&bytes).expect("plugin returned JSON"))
    }

    #[test]
    fn skeleton_add_echo_sleep() {
        let p = load("skeleton", "sl_skeleton", json!({})).unwrap();
        assert_eq!(p.name(), "skeleton");
        assert_eq!(p.reported_name(), "skeleton");
        assert_eq!(p.version(), env!("CARGO_PKG_VERSION"));
        assert_eq!(p.abi(), 1);

        assert_eq!(call_json(&p, "add", json!({"x": 2, "y": 3})), Ok(json!(5)));
        assert_eq!(call_json(&p, "add", json!({"x": 0.5, "y": 3})), Ok(json!(3.5)));
        let v = json!({"nested": {"list": [1, "two", null, true]}, "s": "é"});
        assert_eq!(call_json(&p, "echo", v.clone()), Ok(v));
        let start = Instant::now();
        let r = call_json(&p, "sleep", json!({"ms": 100})).unwrap();
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert!(r["slept_ms"].as_u64().unwrap() >= 100);

        let e = call_json(&p, "nope", json!(null)).unwrap_err();
        assert!(e.contains("unknown action 'nope'") && e.contains("add, echo, sleep"), "{e}");
        let e = p.call("echo", b"{not json").unwrap_err();
        assert!(e.starts_with("invalid JSON payload"), "{e}");
        let e = call_json(&p, "add", json!({"x": "a"})).unwrap_err();
        assert!(e.contains("'x' must be a number"), "{e}");
    }

    #[test]
    fn concurrent_calls() {
        let p = Arc::new(load("skeleton", "sl_skeleton", json!({})).unwrap());
        let barrier = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (p, barrier) = (p.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    for j in 0..100 {
                        let v = json!({"thread": i, "n": j, "text": "x".repeat(j)});
                        assert_eq!(call_json(&p, "echo", v.clone()), Ok(v));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }

        // Calls really overlap: 4 sleeps of 300 ms take far less than 1200 ms.
        let start = Instant::now();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || call_json(&p, "sleep", json!({"ms": 300})).unwrap())
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(start.elapsed() < Duration::from_millis(1000), "took {:?}", start.elapsed());
    }

    #[test]
    fn a_panic_is_an_error_for_that_call_only() {
        let p = load("panic", "sl_fixture_panic", json!({})).unwrap();
        let e = p.call("boom", b"null").unwrap_err();
        assert!(e.contains("panicked"), "{e}");
        assert!(e.contains("boom at the fixture's request"), "{e}");
        assert_eq!(call_json(&p, "ok", json!(1)), Ok(json!({"ok": true, "payload": 1})));
        assert!(p.call("boom", b"null").is_err());
        assert!(p.call("ok", b"null").is_ok());
    }

    #[test]
    fn a_wrong_abi_is_refused_naming_file_version_and_range() {
        let s = spec("bad", "sl_fixture_badabi", json!({}));
        let e = Plugin::load(&s).unwrap_err();
        assert!(matches!(e, PluginError::Abi { found: 999, min: 1, max: 1, .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains(&s.file.display().to_string()), "{msg}");
        assert!(msg.contains("999"), "{msg}");
        assert!(msg.contains("1..=1"), "{msg}");
    }

    #[test]
    fn a_failing_init_is_refused_with_its_message() {
        let s = spec("initfail", "sl_fixture_initfail", json!({"x": 1}));
        let msg = Plugin::load(&s).unwrap_err().to_string();
        assert!(msg.contains(&s.file.display().to_string()), "{msg}");
        assert!(msg.contains("missing setting 'token'"), "{msg}");
        assert!(msg.starts_with("plugin 'initfail': "), "{msg}");
    }

    #[test]
    fn a_missing_symbol_is_named() {
        let s = spec("nosym", "sl_fixture_nosym", json!({}));
        let e = Plugin::load(&s).unwrap_err();
        assert!(matches!(e, PluginError::MissingSymbol { symbol: "sl_plugin_init", .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("sl_plugin_init") && msg.contains(&s.file.display().to_string()), "{msg}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let s = PluginSpec { name: "gone".into(), file: "no/such/libplugin.so".into(), config: json!({}) };
        let msg = Plugin::load(&s).unwrap_err().to_string();
        assert_eq!(msg, "plugin 'gone': file no/such/libplugin.so not found");
    }

    #[test]
    fn a_file_that_is_no_library_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("libfake.so");
        std::fs::write(&file, "not an ELF file").unwrap();
        let s = PluginSpec { name: "fake".into(), file: file.clone(), config: json!({}) };
        let e = Plugin::load(&s).unwrap_err();
        assert!(matches!(e, PluginError::Load { .. }), "{e:?}");
        assert!(e.to_string().contains(&file.display().to_string()), "{e}");

        let s = PluginSpec { name: "dir".into(), file: dir.path().to_path_buf(), config: json!({}) };
        assert!(matches!(Plugin::load(&s), Err(PluginError::Unreadable { .. })));
    }

    #[test]
    fn the_host_loads_all_and_lists_them() {
        let host = PluginHost::load_all(&[
            spec("sk", "sl_skeleton", json!({})),
            spec("http", "sl_http", json!({"timeout": 1000})),
            spec("boom", "sl_fixture_panic", json!(null)),
        ])
        .unwrap();
        assert_eq!(host.names(), ["boom", "http", "sk"]);
        assert_eq!(host.len(), 3);
        let sk = host.get("sk").unwrap();
        assert_eq!((sk.name(), sk.reported_name()), ("sk", "skeleton"));
        assert!(host.get("skeleton").is_none());
        let infos = host.infos();
        assert_eq!(infos[2]["name"], "sk");
        assert_eq!(infos[2]["plugin"], "skeleton");
        assert_eq!(infos[2]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(infos[2]["abi"], 1);
        assert!(infos[2]["file"].as_str().unwrap().ends_with(&format!(
            "{}sl_skeleton{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        )));
        assert!(PluginHost::empty().is_empty());
        assert!(PluginHost::empty().names().is_empty());

        let e = PluginHost::load_all(&[spec("a", "sl_skeleton", json!({})), spec("a", "sl_skeleton", json!({}))])
            .unwrap_err();
        assert_eq!(e.to_string(), "plugin 'a' is configured twice");
        let e =
            PluginHost::load_all(&[spec("a", "sl_skeleton", json!({})), spec("b", "sl_fixture_initfail", json!({}))])
                .unwrap_err();
        assert!(matches!(e, PluginError::Init { .. }), "{e:?}");
        // The http plugin's strict config reaches the host as an init error.
        let e = PluginHost::load_all(&[spec("http", "sl_http", json!({"alow": []}))]).unwrap_err();
        assert!(e.to_string().contains("unknown setting 'alow'"), "{e}");
    }

    /// A one-request-per-connection HTTP server on 127.0.0.1 for the http plugin.
    fn http_server() -> u16 {
        fn serve(stream: TcpStream) -> std::io::Result<()> {
            let mut reader = BufReader::new(stream.try_clone()?);
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let mut parts = line.split_whitespace();
            let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
            let mut headers = serde_json::Map::new();
            loop {
                let mut h = String::new();
                reader.read_line(&mut h)?;
                let Some((k, v)) = h.trim_end().split_once(':') else { break };
                headers.insert(k.trim().to_ascii_lowercase(), json!(v.trim()));
            }
            let len = headers.get("content-length").and_then(|v| v.as_str()?.parse().ok()).unwrap_or(0);
            let mut body = vec![0; len];
            reader.read_exact(&mut body)?;
            let (status, out) = match path.as_str() {
                "/echo" => (
                    "200 OK",
                    json!({"method": method, "headers": headers, "body": String::from_utf8_lossy(&body)}).to_string(),
                ),
                "/slow" => {
                    std::thread::sleep(Duration::from_millis(1500));
                    ("200 OK", "late".to_string())
                }
                _ => ("404 Not Found", "no such page".to_string()),
            };
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nX-Server: test\r\nConnection: close\r\n\r\n{out}",
                out.len()
            )?;
            stream.flush()
        }
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || serve(stream));
            }
        });
        port
    }

    #[test]
    fn http_plugin_against_a_local_server() {
        let port = http_server();
        let base = format!("http://127.0.0.1:{port}");
        let p = load("http", "sl_http", json!({"timeout": 5000, "allow": [format!("127.0.0.1:{port}")]})).unwrap();
        assert_eq!(p.reported_name(), "http");

        // GET with headers.
        let r =
            call_json(&p, "request", json!({"url": format!("{base}/echo"), "headers": {"X-Token": "t0k"}})).unwrap();
        assert_eq!(r["status"], 200);
        assert_eq!(r["headers"]["x-server"], "test");
        let echo: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        assert_eq!(echo["method"], "GET");
        assert_eq!(echo["headers"]["x-token"], "t0k");

        // POST with a body.
        let r = call_json(&p, "request", json!({"method": "POST", "url": format!("{base}/echo"), "body": "{\"a\":1}"}))
            .unwrap();
        let echo: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        assert_eq!((echo["method"].as_str(), echo["body"].as_str()), (Some("POST"), Some("{\"a\":1}")));

        // A 404 is a result.
        let r = call_json(&p, "request", json!({"url": format!("{base}/nothing")})).unwrap();
        assert_eq!((r["status"].as_u64(), r["body"].as_str()), (Some(404), Some("no such page")));

        // A host outside the allow list is an error.
        let e = call_json(&p, "request", json!({"url": format!("http://localhost:{port}/echo")})).unwrap_err();
        assert!(e.contains(&format!("host localhost:{port} is not allowed")), "{e}");

        // A timeout is an error.
        let start = Instant::now();
        let e = call_json(&p, "request", json!({"url": format!("{base}/slow"), "timeout": 200})).unwrap_err();
        assert!(e.contains("timed out after 200 ms"), "{e}");
        assert!(start.elapsed() < Duration::from_millis(1400), "took {:?}", start.elapsed());
    }
}
