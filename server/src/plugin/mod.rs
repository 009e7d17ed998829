//! Plugins: shared libraries loaded at start-up that actions call with
//! `call(plugin, action, payload)`.
//!
//! A plugin is a `cdylib` built with the `sl-plugin` SDK (`plugins/sdk`).
//! Only `#[repr(C)]` types and `extern "C"` functions cross the boundary;
//! payloads, configuration and results cross as JSON bytes with an explicit
//! length, and every buffer is freed by the side that allocated it. The host
//! side of that contract is [`abi`] (a copy of the SDK's `sl_plugin::abi`:
//! the server does not link the SDK, it only loads what was built with it).
//!
//! [`Plugin::load`] checks, in this order, that the file exists, that it
//! loads, that it exports `sl_plugin_info`, that the ABI version it reports
//! is in [`ABI_MIN`]`..=`[`ABI_MAX`] (before anything else in the library is
//! resolved or called), that it exports the other four functions, and that
//! its `init` accepts the configuration. [`PluginHost::load_all`] loads every
//! configured plugin; any failure refuses the start of the server with a
//! message that names the plugin and its file.
//!
//! [`Plugin::call`] blocks: run it on the blocking pool, never on the
//! reactor thread. It may run on several threads at once.

mod host;

pub use host::{Plugin, PluginError, PluginHost, PluginSpec, ABI_MAX, ABI_MIN};

/// The C ABI, as the host sees it. Must match `sl_plugin::abi` of the SDK
/// versions in `ABI_MIN..=ABI_MAX`, field for field.
pub mod abi {
    use std::ffi::{c_char, c_void};

    /// Bytes allocated by the plugin; freed only by the plugin's `sl_plugin_free`.
    #[repr(C)]
    #[derive(Debug)]
    pub struct SlBuf {
        /// Start of the bytes; null means none (nothing to free).
        pub ptr: *mut u8,
        /// Number of bytes at `ptr`.
        pub len: usize,
        /// Capacity of the plugin's allocation (only the plugin uses it).
        pub cap: usize,
    }

    impl SlBuf {
        /// A buffer that owns nothing, handed to the plugin to fill.
        pub const fn empty() -> SlBuf {
            SlBuf { ptr: std::ptr::null_mut(), len: 0, cap: 0 }
        }
    }

    /// What `sl_plugin_info` returns. Layout frozen across ABI versions.
    #[repr(C)]
    #[derive(Debug, Clone, Copy)]
    pub struct SlPluginInfo {
        /// The plugin's ABI version.
        pub abi_version: u32,
        /// NUL-terminated, static in the plugin.
        pub name: *const c_char,
        /// NUL-terminated, static in the plugin.
        pub version: *const c_char,
    }

    /// `sl_plugin_call` succeeded: `*out` is the JSON result.
    pub const CALL_OK: i32 = 0;
    /// `sl_plugin_call` failed: `*out` is a UTF-8 message.
    pub const CALL_ERR: i32 = 1;

    /// `extern "C" fn sl_plugin_info() -> SlPluginInfo`
    pub type InfoFn = unsafe extern "C" fn() -> SlPluginInfo;
    /// `extern "C" fn sl_plugin_init(config, config_len, err) -> handle`
    pub type InitFn = unsafe extern "C" fn(*const u8, usize, *mut SlBuf) -> *mut c_void;
    /// `extern "C" fn sl_plugin_call(handle, action, action_len, payload, payload_len, out) -> i32`
    pub type CallFn = unsafe extern "C" fn(*mut c_void, *const u8, usize, *const u8, usize, *mut SlBuf) -> i32;
    /// `extern "C" fn sl_plugin_free(buf)`
    pub type FreeFn = unsafe extern "C" fn(SlBuf);
    /// `extern "C" fn sl_plugin_shutdown(handle)`
    pub type ShutdownFn = unsafe extern "C" fn(*mut c_void);
}
