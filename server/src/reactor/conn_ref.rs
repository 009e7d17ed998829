//! How the application names a connection: which one ([`ConnRef`]), and
//! which listener it came through ([`Side`]).

/// Identifies a connection across asynchronous work: the slab key may be
/// reused after a close, the generation never is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnRef {
    /// The connection's slot in the reactor.
    pub key: usize,
    /// Unique for the life of the reactor.
    pub gen: u64,
}

/// Which listener a connection came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The management and invocation API.
    Api,
    /// The web listener: routes to actions (`Routes { ... }` in config.lua).
    Web,
}
