//! SDK for SL plugins.
//!
//! A plugin is a Rust crate built as a `cdylib` that the SL server loads at
//! start-up; actions call it from Lua with `call(plugin, action, payload)`.
//! The author implements the safe [`Plugin`] trait and invokes
//! [`export_plugin!`] once; the macro generates the C functions the server
//! looks for (see [`abi`]). The author writes no `unsafe` code.
//!
//! ```
//! use sl_plugin::{export_plugin, json, Plugin, Value};
//!
//! pub struct Greeter {
//!     greeting: String,
//! }
//!
//! impl Plugin for Greeter {
//!     const NAME: &'static str = "greeter";
//!     const VERSION: &'static str = env!("CARGO_PKG_VERSION");
//!
//!     fn init(config: Value) -> Result<Self, String> {
//!         let greeting = config.get("greeting").and_then(Value::as_str).unwrap_or("hello");
//!         Ok(Greeter { greeting: greeting.to_string() })
//!     }
//!
//!     fn call(&self, action: &str, payload: Value) -> Result<Value, String> {
//!         match action {
//!             "greet" => {
//!                 let name = payload.get("name").and_then(Value::as_str).ok_or("greet needs a string 'name'")?;
//!                 Ok(json!({ "text": format!("{}, {name}!", self.greeting) }))
//!             }
//!             other => Err(format!("unknown action '{other}' (known: greet)")),
//!         }
//!     }
//! }
//!
//! export_plugin!(Greeter);
//! ```
//!
//! # The rules
//!
//! - **JSON in, JSON out.** The configuration, every payload and every result
//!   cross the boundary as JSON. In Lua, tables become JSON objects or arrays
//!   and come back as tables.
//! - **Send + Sync.** The server calls a plugin from its blocking thread
//!   pool: several calls may run at the same time, on different threads,
//!   with the same `&self`. [`Plugin`] therefore requires `Send + Sync`; keep
//!   mutable state behind a `Mutex`, an atomic or similar.
//! - **Calls block a pool thread, not the server.** The action that called
//!   the plugin is parked until the call returns; other requests go on.
//!   Still, return in bounded time: a call that never returns holds a pool
//!   thread for ever.
//! - **Errors are catchable Lua errors.** An `Err(message)` from
//!   [`Plugin::call`] raises a Lua error in the calling action with that
//!   message; the action may catch it with `pcall`.
//! - **Panics become errors.** A panic in `init`, `call` or `shutdown` is
//!   caught before it reaches the C boundary: in `call` it becomes the error
//!   `plugin panicked: <message>` for that call only, and the plugin keeps
//!   serving later calls (so do not leave shared state half-updated across a
//!   point that can panic; a poisoned `Mutex` stays poisoned). This requires
//!   the default `panic = "unwind"`: a plugin built with `panic = "abort"`
//!   takes the whole server down when it panics.
//! - **Memory is freed by the side that allocated it.** Buffers the plugin
//!   returns are freed by the plugin's own `sl_plugin_free`; the generated
//!   code handles this.
//! - **ABI version.** The plugin reports [`abi::ABI_VERSION`]; the server
//!   refuses to load a plugin whose ABI version it does not accept, before
//!   calling anything else in it. Rebuild plugins against the SDK of the
//!   server they run in.
//! - **Configuration.** `init` receives the plugin's block from `config.lua`
//!   without `file`, as a JSON object. An `Err` from `init` stops the server
//!   at start-up with the message and the plugin's file.

pub mod abi;
pub mod config;

#[doc(hidden)]
pub mod export;

pub use abi::{SlBuf, SlPluginInfo, ABI_VERSION};
/// The JSON library of the SDK, re-exported so that plugins use the same
/// version of [`Value`].
pub use serde_json;
pub use serde_json::{json, Value};

/// A plugin: what the author implements.
///
/// The server creates one instance with [`Plugin::init`] at start-up, calls
/// [`Plugin::call`] any number of times (concurrently, from several threads:
/// hence `Send + Sync`), and at shutdown calls [`Plugin::shutdown`] once and
/// drops the instance.
pub trait Plugin: Send + Sync + 'static {
    /// The plugin's name, as it reports it (for logs and `GET /plugins`).
    /// Actions call the plugin by the name given in `config.lua`, which
    /// usually is the same. Must not contain NUL bytes.
    const NAME: &'static str;

    /// The plugin's version, usually `env!("CARGO_PKG_VERSION")`. Must not
    /// contain NUL bytes.
    const VERSION: &'static str;

    /// Creates the plugin from its configuration: the plugin's block of
    /// `config.lua` without `file`, as a JSON object (`{}` when the block has
    /// nothing else). An `Err` refuses the start of the server with this
    /// message.
    fn init(config: Value) -> Result<Self, String>
    where
        Self: Sized;

    /// Runs `action` with `payload` (the third argument of Lua's `call`,
    /// `null` when absent). `Ok(value)` is returned to the action as a Lua
    /// value; `Err(message)` raises a Lua error with that message.
    ///
    /// May run on several threads at once.
    fn call(&self, action: &str, payload: Value) -> Result<Value, String>;

    /// Called once when the server shuts the plugin down, after the last
    /// call has returned and before the instance is dropped. Optional.
    fn shutdown(&self) {}
}

/// Exports a [`Plugin`] type as the C functions the SL server loads:
/// `sl_plugin_info`, `sl_plugin_init`, `sl_plugin_call`, `sl_plugin_free`
/// and `sl_plugin_shutdown` (see [`abi`]).
///
/// Invoke it once per crate, at the top level, with the plugin type; build
/// the crate with `crate-type = ["cdylib"]`.
///
/// ```text
/// sl_plugin::export_plugin!(MyPlugin);
/// ```
///
/// (The crate-level documentation has a complete example.)
///
/// The generated functions call the SDK's helpers, which catch every panic
/// and turn invalid input (a non-UTF-8 action name, invalid JSON) into an
/// error result.
#[macro_export]
macro_rules! export_plugin {
    ($ty:ty) => {
        /// Reports the ABI version, name and version of this plugin. Reads statics only.
        #[unsafe(no_mangle)]
        pub extern "C" fn sl_plugin_info() -> $crate::abi::SlPluginInfo {
            const NAME: &str = <$ty as $crate::Plugin>::NAME;
            const VERSION: &str = <$ty as $crate::Plugin>::VERSION;
            static NAME_C: [u8; NAME.len() + 1] = $crate::export::nul_terminated(NAME);
            static VERSION_C: [u8; VERSION.len() + 1] = $crate::export::nul_terminated(VERSION);
            $crate::export::info(&NAME_C, &VERSION_C)
        }

        /// Creates the plugin from its JSON configuration. See `sl_plugin::abi`.
        ///
        /// # Safety
        ///
        /// `config` is valid for `config_len` bytes; `err` is null or writable.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn sl_plugin_init(
            config: *const u8,
            config_len: usize,
            err: *mut $crate::abi::SlBuf,
        ) -> *mut ::std::ffi::c_void {
            // SAFETY: the caller upholds the contract of `export::init`, which is this function's.
            unsafe { $crate::export::init::<$ty>(config, config_len, err) }
        }

        /// Runs one action. See `sl_plugin::abi`.
        ///
        /// # Safety
        ///
        /// `handle` comes from `sl_plugin_init` and is live; `action` and
        /// `payload` are valid for their lengths; `out` is null or writable.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn sl_plugin_call(
            handle: *mut ::std::ffi::c_void,
            action: *const u8,
            action_len: usize,
            payload: *const u8,
            payload_len: usize,
            out: *mut $crate::abi::SlBuf,
        ) -> i32 {
            // SAFETY: the caller upholds the contract of `export::call`, which is this function's.
            unsafe { $crate::export::call::<$ty>(handle, action, action_len, payload, payload_len, out) }
        }

        /// Frees a buffer this plugin returned. See `sl_plugin::abi`.
        ///
        /// # Safety
        ///
        /// `buf` was returned by this plugin and is freed once.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn sl_plugin_free(buf: $crate::abi::SlBuf) {
            // SAFETY: the caller upholds the contract of `export::free`, which is this function's.
            unsafe { $crate::export::free(buf) }
        }

        /// Shuts the plugin down and drops it. See `sl_plugin::abi`.
        ///
        /// # Safety
        ///
        /// `handle` comes from `sl_plugin_init`, no call is running, and it is not used again.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn sl_plugin_shutdown(handle: *mut ::std::ffi::c_void) {
            // SAFETY: the caller upholds the contract of `export::shutdown`, which is this function's.
            unsafe { $crate::export::shutdown::<$ty>(handle) }
        }
    };
}
