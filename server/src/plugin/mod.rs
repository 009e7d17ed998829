//! Plugins: shared libraries loaded at start-up that actions call with
//! `call(plugin, action, payload)`.
//!
//! A plugin is a `cdylib` built with the `sl-plugin` SDK (`plugins/sdk`).
//! Only `#[repr(C)]` types and `extern "C"` functions cross the boundary;
//! payloads, configuration and results cross as JSON bytes with an explicit
//! length, and every buffer is freed by the side that allocated it. The host
//! side of that contract is [`abi`], the SDK's own definition.
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
//! worker's thread. It may run on several threads at once.

mod host;

pub use host::{Plugin, PluginError, PluginHost, PluginSpec, ABI_MAX, ABI_MIN};

/// The C ABI (the SDK's own definition: one source of truth for both
/// sides; the host accepts the versions in `ABI_MIN..=ABI_MAX`).
pub use sl_plugin::abi;
