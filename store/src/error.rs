//! Errors a [`Store`](crate::Store) returns.

/// What went wrong in a store call.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `create_action` for a name that exists (holds the name), or
    /// `create_route` for a key that exists (holds
    /// [`RouteRecord::label`](crate::RouteRecord::label)).
    #[error("'{0}' already exists")]
    AlreadyExists(String),
    /// The named record does not exist.
    #[error("'{0}' not found")]
    NotFound(String),
    /// `update_action` lost a race: the stored version is not the expected one.
    #[error("action '{name}' was changed concurrently (expected version {expected}, found {found})")]
    Conflict { name: String, expected: i64, found: i64 },
    /// The backend cannot be reached or refused the call (disk full,
    /// read-only, connection lost). The server answers 503.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A subscription partition's lease is held by another owner, or at
    /// another epoch, than the caller said (see [`Events`](crate::Events)).
    #[error("lease of partition {partition} of subscription '{subscription}' lost")]
    LeaseLost { subscription: String, partition: u32 },
    /// A stored record could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}
