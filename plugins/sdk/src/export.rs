//! The bodies of the exported functions. [`crate::export_plugin!`] generates
//! thin `extern "C"` wrappers that call these; all the unsafe code of a
//! plugin lives here, in the SDK, so that plugin authors write none.
//!
//! Every entry point runs the plugin's code under `catch_unwind`: a panic
//! becomes an error message ("plugin panicked: ...") and never unwinds across
//! the C boundary.

use std::any::Any;
use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};

use serde_json::Value;

use crate::abi::{SlBuf, SlPluginInfo, ABI_VERSION, CALL_ERR, CALL_OK};
use crate::Plugin;

/// Copies `s` into a NUL-terminated array at compile time. `N` must be
/// `s.len() + 1`; an interior NUL byte fails the build.
pub const fn nul_terminated<const N: usize>(s: &str) -> [u8; N] {
    let bytes = s.as_bytes();
    assert!(bytes.len() + 1 == N, "array length must be the string length plus one");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < bytes.len() {
        assert!(bytes[i] != 0, "plugin NAME and VERSION must not contain NUL bytes");
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// Builds the info record from NUL-terminated statics.
pub const fn info(name: &'static [u8], version: &'static [u8]) -> SlPluginInfo {
    SlPluginInfo { abi_version: ABI_VERSION, name: name.as_ptr().cast(), version: version.as_ptr().cast() }
}

/// Hands `bytes` to the host as an [`SlBuf`]; [`free`] takes it back.
pub fn into_buf(bytes: Vec<u8>) -> SlBuf {
    let mut bytes = ManuallyDrop::new(bytes);
    SlBuf { ptr: bytes.as_mut_ptr(), len: bytes.len(), cap: bytes.capacity() }
}

/// Frees a buffer made by [`into_buf`]. A null `ptr` is a no-op.
///
/// # Safety
///
/// `buf` must come from [`into_buf`] in this same library (so from this
/// plugin's `sl_plugin_call` or `sl_plugin_init`), unchanged, and must not be
/// freed twice.
pub unsafe fn free(buf: SlBuf) {
    if buf.ptr.is_null() {
        return;
    }
    // SAFETY: by this function's contract the parts come from a
    // `ManuallyDrop<Vec<u8>>` of this library's allocator, not yet freed.
    drop(unsafe { Vec::from_raw_parts(buf.ptr, buf.len, buf.cap) });
}

/// Borrows `len` bytes at `ptr` as a slice; `len == 0` needs no pointer.
///
/// # Safety
///
/// If `len > 0`, `ptr` must be valid for reads of `len` bytes for `'a`.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], String> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err("null pointer with a non-zero length".to_string());
    }
    // SAFETY: non-null and, by this function's contract, valid for `len` bytes.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Writes `bytes` to `*dst` if `dst` is not null.
///
/// # Safety
///
/// `dst` is null or valid for writes of an [`SlBuf`].
unsafe fn put(dst: *mut SlBuf, bytes: Vec<u8>) {
    if dst.is_null() {
        return;
    }
    // SAFETY: non-null and valid for writes by this function's contract; the
    // previous value is not dropped (SlBuf has no Drop; the host hands in an
    // empty one).
    unsafe { dst.write(into_buf(bytes)) };
}

/// The text of a panic payload; the payload is dropped without letting a
/// second panic (from its destructor) escape.
pub fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    };
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
    format!("plugin panicked: {text}")
}

/// Parses JSON input; no bytes at all is `empty`.
fn parse_json(what: &str, bytes: &[u8], empty: Value) -> Result<Value, String> {
    if bytes.is_empty() {
        return Ok(empty);
    }
    serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON {what}: {e}"))
}

/// Body of `sl_plugin_init`.
///
/// # Safety
///
/// `config` is valid for `config_len` bytes (or `config_len` is 0); `err` is
/// null or valid for writes of an [`SlBuf`].
pub unsafe fn init<T: Plugin>(config: *const u8, config_len: usize, err: *mut SlBuf) -> *mut c_void {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: forwarded from this function's contract.
        let bytes = unsafe { bytes(config, config_len) }?;
        let config = parse_json("config", bytes, Value::Object(Default::default()))?;
        T::init(config)
    }));
    let message = match result {
        Ok(Ok(plugin)) => return Box::into_raw(Box::new(plugin)).cast(),
        Ok(Err(message)) => message,
        Err(payload) => panic_message(payload),
    };
    // SAFETY: `err` is null or writable by this function's contract.
    unsafe { put(err, message.into_bytes()) };
    std::ptr::null_mut()
}

/// Body of `sl_plugin_call`.
///
/// # Safety
///
/// `handle` was returned by [`init`] with the same `T` and not yet passed to
/// [`shutdown`]; `action` and `payload` are valid for their lengths (or the
/// length is 0); `out` is null or valid for writes of an [`SlBuf`].
pub unsafe fn call<T: Plugin>(
    handle: *mut c_void,
    action: *const u8,
    action_len: usize,
    payload: *const u8,
    payload_len: usize,
    out: *mut SlBuf,
) -> i32 {
    let result = catch_unwind(AssertUnwindSafe(|| {
        if handle.is_null() {
            return Err("null plugin handle".to_string());
        }
        // SAFETY: a live handle from `init::<T>` points to a `T`; only shared
        // references are made, and `T: Sync` allows them on several threads.
        let plugin: &T = unsafe { &*handle.cast::<T>() };
        // SAFETY: forwarded from this function's contract.
        let action = unsafe { bytes(action, action_len) }?;
        let action = std::str::from_utf8(action).map_err(|e| format!("action name is not UTF-8: {e}"))?;
        // SAFETY: forwarded from this function's contract.
        let payload = unsafe { bytes(payload, payload_len) }?;
        let payload = parse_json("payload", payload, Value::Null)?;
        let value = plugin.call(action, payload)?;
        serde_json::to_vec(&value).map_err(|e| format!("cannot encode the result as JSON: {e}"))
    }));
    let (status, bytes) = match result {
        Ok(Ok(json)) => (CALL_OK, json),
        Ok(Err(message)) => (CALL_ERR, message.into_bytes()),
        Err(payload) => (CALL_ERR, panic_message(payload).into_bytes()),
    };
    // SAFETY: `out` is null or writable by this function's contract.
    unsafe { put(out, bytes) };
    status
}

/// Body of `sl_plugin_shutdown`: runs [`Plugin::shutdown`] and drops the
/// plugin. A panic there cannot be reported (the function returns nothing);
/// it is written to stderr and swallowed.
///
/// # Safety
///
/// `handle` is null or was returned by [`init`] with the same `T`; no call
/// is running or will run with it, and it is not used again.
pub unsafe fn shutdown<T: Plugin>(handle: *mut c_void) {
    if handle.is_null() {
        return;
    }
    // SAFETY: by this function's contract, `handle` is the `Box<T>` made by
    // `init::<T>`, now exclusively ours.
    let plugin: Box<T> = unsafe { Box::from_raw(handle.cast::<T>()) };
    let result = catch_unwind(AssertUnwindSafe(move || {
        plugin.shutdown();
        drop(plugin);
    }));
    if let Err(payload) = result {
        eprintln!("{} (in shutdown of plugin {})", panic_message(payload), T::NAME);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static SHUTDOWNS: AtomicUsize = AtomicUsize::new(0);

    struct Test {
        prefix: String,
    }

    impl Plugin for Test {
        const NAME: &'static str = "test";
        const VERSION: &'static str = "1.2.3";

        fn init(config: Value) -> Result<Self, String> {
            if config.get("fail").is_some() {
                return Err("told to fail".to_string());
            }
            if config.get("panic").is_some() {
                panic!("init exploded");
            }
            let prefix = config.get("prefix").and_then(Value::as_str).unwrap_or("").to_string();
            Ok(Test { prefix })
        }

        fn call(&self, action: &str, payload: Value) -> Result<Value, String> {
            match action {
                "echo" => Ok(payload),
                "greet" => Ok(json!(format!("{}{}", self.prefix, payload.as_str().unwrap_or("?")))),
                "fail" => Err("failed on purpose".to_string()),
                "panic" => panic!("boom {}", 42),
                "panic_str" => std::panic::panic_any("static str"),
                "panic_other" => std::panic::panic_any(7u32),
                other => Err(format!("unknown action {other}")),
            }
        }

        fn shutdown(&self) {
            SHUTDOWNS.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn take(buf: SlBuf) -> Vec<u8> {
        let v = if buf.ptr.is_null() {
            Vec::new()
        } else {
            // SAFETY: test buffers come from `into_buf`, valid for `len` bytes.
            unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) }.to_vec()
        };
        // SAFETY: made by `into_buf` in this library, freed once.
        unsafe { free(buf) };
        v
    }

    fn start(config: &str) -> Result<*mut c_void, String> {
        let mut err = SlBuf::empty();
        // SAFETY: valid slice and a valid `err` slot.
        let handle = unsafe { init::<Test>(config.as_ptr(), config.len(), &mut err) };
        if handle.is_null() {
            Err(String::from_utf8(take(err)).unwrap())
        } else {
            assert!(err.ptr.is_null());
            Ok(handle)
        }
    }

    fn run(handle: *mut c_void, action: &[u8], payload: &[u8]) -> (i32, String) {
        let mut out = SlBuf::empty();
        // SAFETY: live handle, valid slices, valid `out` slot.
        let status =
            unsafe { call::<Test>(handle, action.as_ptr(), action.len(), payload.as_ptr(), payload.len(), &mut out) };
        (status, String::from_utf8(take(out)).unwrap())
    }

    fn stop(handle: *mut c_void) {
        // SAFETY: handle from `start`, not used afterwards.
        unsafe { shutdown::<Test>(handle) };
    }

    #[test]
    fn nul_terminated_copies_and_terminates() {
        const A: [u8; 4] = nul_terminated("abc");
        assert_eq!(&A, b"abc\0");
        const E: [u8; 1] = nul_terminated("");
        assert_eq!(&E, b"\0");
        static N: [u8; 5] = nul_terminated("test");
        static V: [u8; 6] = nul_terminated("1.2.3");
        let info = info(&N, &V);
        assert_eq!(info.abi_version, ABI_VERSION);
        // SAFETY: points into the NUL-terminated static above.
        let name = unsafe { std::ffi::CStr::from_ptr(info.name) };
        assert_eq!(name.to_str().unwrap(), "test");
    }

    #[test]
    #[should_panic(expected = "NUL")]
    fn nul_terminated_rejects_interior_nul() {
        let _: [u8; 4] = nul_terminated("a\0c");
    }

    #[test]
    fn buffers_round_trip() {
        let buf = into_buf(b"hello".to_vec());
        assert_eq!(buf.len, 5);
        assert!(buf.cap >= 5);
        assert_eq!(take(buf), b"hello");
        // Empty vectors and null buffers are fine too.
        assert_eq!(take(into_buf(Vec::new())), b"");
        // SAFETY: a null buffer is a documented no-op.
        unsafe { free(SlBuf::empty()) };
    }

    #[test]
    fn init_passes_config_and_reports_errors() {
        let h = start(r#"{"prefix":"hi "}"#).unwrap();
        assert_eq!(run(h, b"greet", br#""bob""#), (CALL_OK, r#""hi bob""#.to_string()));
        stop(h);

        assert_eq!(start(r#"{"fail":true}"#).unwrap_err(), "told to fail");
        let e = start(r#"{"panic":true}"#).unwrap_err();
        assert_eq!(e, "plugin panicked: init exploded");
        let e = start("{nope").unwrap_err();
        assert!(e.starts_with("invalid JSON config:"), "{e}");

        // No config bytes at all: an empty object.
        let mut err = SlBuf::empty();
        // SAFETY: length 0 never reads the (null) pointer.
        let h = unsafe { init::<Test>(std::ptr::null(), 0, &mut err) };
        assert!(!h.is_null());
        stop(h);

        // A null `err` is tolerated: the failure is still a null handle.
        let cfg = br#"{"fail":1}"#;
        // SAFETY: valid slice; null `err` is allowed.
        let h = unsafe { init::<Test>(cfg.as_ptr(), cfg.len(), std::ptr::null_mut()) };
        assert!(h.is_null());
    }

    #[test]
    fn call_results_errors_and_panics() {
        let h = start("{}").unwrap();
        assert_eq!(run(h, b"echo", br#"{"a":[1,2.5,"x"]}"#), (CALL_OK, r#"{"a":[1,2.5,"x"]}"#.to_string()));
        assert_eq!(run(h, b"echo", b""), (CALL_OK, "null".to_string()));
        assert_eq!(run(h, b"fail", b"null"), (CALL_ERR, "failed on purpose".to_string()));
        assert_eq!(run(h, b"panic", b"null"), (CALL_ERR, "plugin panicked: boom 42".to_string()));
        assert_eq!(run(h, b"panic_str", b"null"), (CALL_ERR, "plugin panicked: static str".to_string()));
        assert_eq!(run(h, b"panic_other", b"null"), (CALL_ERR, "plugin panicked: (no message)".to_string()));
        // Still works after panics.
        assert_eq!(run(h, b"echo", b"1"), (CALL_OK, "1".to_string()));

        let (s, m) = run(h, b"echo", b"{bad json");
        assert_eq!(s, CALL_ERR);
        assert!(m.starts_with("invalid JSON payload:"), "{m}");
        let (s, m) = run(h, b"\xff\xfe", b"null");
        assert_eq!(s, CALL_ERR);
        assert!(m.starts_with("action name is not UTF-8"), "{m}");

        let mut out = SlBuf::empty();
        // SAFETY: null pointers with non-zero lengths are rejected, not read.
        let s = unsafe { call::<Test>(h, std::ptr::null(), 3, std::ptr::null(), 0, &mut out) };
        assert_eq!(s, CALL_ERR);
        assert!(String::from_utf8(take(out)).unwrap().contains("null pointer"));

        let mut out = SlBuf::empty();
        // SAFETY: a null handle is rejected, not dereferenced.
        let s = unsafe { call::<Test>(std::ptr::null_mut(), b"echo".as_ptr(), 4, b"1".as_ptr(), 1, &mut out) };
        assert_eq!(s, CALL_ERR);
        assert_eq!(take(out), b"null plugin handle");
        stop(h);
    }

    #[test]
    fn concurrent_calls_share_the_handle() {
        let h = start(r#"{"prefix":">"}"#).unwrap() as usize;
        let threads: Vec<_> = (0..8)
            .map(|i| {
                std::thread::spawn(move || {
                    for j in 0..200 {
                        let payload = format!("\"{i}-{j}\"");
                        let (s, r) = run(h as *mut c_void, b"greet", payload.as_bytes());
                        assert_eq!(s, CALL_OK);
                        assert_eq!(r, format!("\">{i}-{j}\""));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        stop(h as *mut c_void);
    }

    #[test]
    fn shutdown_runs_the_hook_once() {
        let before = SHUTDOWNS.load(Ordering::SeqCst);
        let h = start("{}").unwrap();
        stop(h);
        assert!(SHUTDOWNS.load(Ordering::SeqCst) > before);
        // A null handle is ignored.
        stop(std::ptr::null_mut());
    }
}
