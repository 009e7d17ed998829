//! SL server library: the reactor, HTTP, the Lua sandbox and storage glue.
//!
//! The binary `slserver` is a thin wrapper over [`run`].

pub mod sandbox;
