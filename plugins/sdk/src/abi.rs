//! The C ABI between the SL server and a plugin.
//!
//! Only these `#[repr(C)]` types and the five `extern "C"` functions below
//! cross the boundary; Rust has no stable ABI, so nothing else may (no
//! `String`, no `Vec`, no trait objects, no panics).
//!
//! Every plugin exports, with these exact names and signatures:
//!
//! ```text
//! extern "C" fn sl_plugin_info() -> SlPluginInfo;
//! extern "C" fn sl_plugin_init(config: *const u8, config_len: usize, err: *mut SlBuf) -> *mut c_void;
//! extern "C" fn sl_plugin_call(handle: *mut c_void,
//!                              action: *const u8, action_len: usize,
//!                              payload: *const u8, payload_len: usize,
//!                              out: *mut SlBuf) -> i32;
//! extern "C" fn sl_plugin_free(buf: SlBuf);
//! extern "C" fn sl_plugin_shutdown(handle: *mut c_void);
//! ```
//!
//! - `sl_plugin_info` only reads statics. The host calls it **first**, before
//!   it resolves or calls anything else, and refuses the library unless
//!   `abi_version` is in the range it accepts. The layout of [`SlPluginInfo`]
//!   and the signature of `sl_plugin_info` are frozen for every ABI version,
//!   so that any host can read the version of any plugin; a later ABI version
//!   may change everything else.
//! - `sl_plugin_init` receives the plugin's configuration as the bytes of a
//!   JSON object (not NUL-terminated; `config_len` bytes). It returns an
//!   opaque non-null handle, or null with a UTF-8 message written to `*err`.
//! - `sl_plugin_call` runs `action` (UTF-8, `action_len` bytes) with a JSON
//!   `payload` (`payload_len` bytes). It returns [`CALL_OK`] with the JSON
//!   result in `*out`, or [`CALL_ERR`] with a UTF-8 message in `*out`. It may
//!   be called from several threads at once with the same handle.
//! - `sl_plugin_free` releases a buffer that the plugin wrote to `*err` or
//!   `*out`. **Memory is freed by the side that allocated it**: the host never
//!   frees an [`SlBuf`] itself, and frees each one exactly once, through the
//!   `sl_plugin_free` of the library that produced it. Input pointers
//!   (`config`, `action`, `payload`) belong to the host and are only borrowed
//!   for the duration of the call.
//! - `sl_plugin_shutdown` drops the plugin. The host calls it once, after the
//!   last call has returned; the handle is invalid afterwards.

use std::ffi::c_char;

/// The version of the ABI described in this module. The server accepts a
/// range of versions and refuses any plugin outside it.
pub const ABI_VERSION: u32 = 1;

/// Return value of `sl_plugin_call`: success, `*out` holds the JSON result.
pub const CALL_OK: i32 = 0;
/// Return value of `sl_plugin_call`: failure, `*out` holds a UTF-8 message.
pub const CALL_ERR: i32 = 1;

/// Bytes allocated by the plugin and handed to the host.
///
/// `ptr`, `len` and `cap` are the parts of a `Vec<u8>` of the plugin. The
/// host reads `len` bytes from `ptr`, then gives the buffer back to the
/// plugin's `sl_plugin_free`, exactly once; it never frees it itself (the
/// plugin may use another allocator, or another copy of the standard library).
/// A null `ptr` means "no bytes" and needs no freeing (freeing it is a no-op).
#[repr(C)]
#[derive(Debug)]
pub struct SlBuf {
    /// Start of the bytes; null for an empty buffer that owns nothing.
    pub ptr: *mut u8,
    /// Number of initialised bytes at `ptr`.
    pub len: usize,
    /// Capacity of the allocation, needed by the plugin to free it.
    pub cap: usize,
}

impl SlBuf {
    /// A buffer that owns nothing, for the host to pass as `*out` / `*err`.
    pub const fn empty() -> SlBuf {
        SlBuf { ptr: std::ptr::null_mut(), len: 0, cap: 0 }
    }
}

/// What a plugin says about itself. Layout frozen across ABI versions.
///
/// `name` and `version` point to NUL-terminated UTF-8 strings with `'static`
/// lifetime inside the plugin (valid as long as the library stays loaded).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SlPluginInfo {
    /// The ABI the plugin was built for; [`ABI_VERSION`] for this SDK.
    pub abi_version: u32,
    /// The plugin's own name ([`crate::Plugin::NAME`]).
    pub name: *const c_char,
    /// The plugin's version ([`crate::Plugin::VERSION`]).
    pub version: *const c_char,
}

/// Type of `sl_plugin_info`.
pub type InfoFn = unsafe extern "C" fn() -> SlPluginInfo;
/// Type of `sl_plugin_init`.
pub type InitFn = unsafe extern "C" fn(*const u8, usize, *mut SlBuf) -> *mut std::ffi::c_void;
/// Type of `sl_plugin_call`.
pub type CallFn = unsafe extern "C" fn(*mut std::ffi::c_void, *const u8, usize, *const u8, usize, *mut SlBuf) -> i32;
/// Type of `sl_plugin_free`.
pub type FreeFn = unsafe extern "C" fn(SlBuf);
/// Type of `sl_plugin_shutdown`.
pub type ShutdownFn = unsafe extern "C" fn(*mut std::ffi::c_void);

/// Names of the exported symbols.
pub mod symbols {
    /// `sl_plugin_info`
    pub const INFO: &str = "sl_plugin_info";
    /// `sl_plugin_init`
    pub const INIT: &str = "sl_plugin_init";
    /// `sl_plugin_call`
    pub const CALL: &str = "sl_plugin_call";
    /// `sl_plugin_free`
    pub const FREE: &str = "sl_plugin_free";
    /// `sl_plugin_shutdown`
    pub const SHUTDOWN: &str = "sl_plugin_shutdown";
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    #[test]
    fn layouts_are_the_c_ones() {
        assert_eq!(offset_of!(SlBuf, ptr), 0);
        assert_eq!(offset_of!(SlBuf, len), size_of::<usize>());
        assert_eq!(offset_of!(SlBuf, cap), 2 * size_of::<usize>());
        assert_eq!(size_of::<SlBuf>(), 3 * size_of::<usize>());

        assert_eq!(offset_of!(SlPluginInfo, abi_version), 0);
        assert_eq!(offset_of!(SlPluginInfo, name), align_of::<*const c_char>().max(4));
        assert_eq!(size_of::<SlPluginInfo>(), 3 * size_of::<usize>().max(4));
    }
}
