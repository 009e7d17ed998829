//! Why a route cannot be added.

/// Why a route cannot be added.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    /// The method, host or pattern is malformed; the message says what and where.
    #[error("{0}")]
    Invalid(String),
    /// An existing route matches exactly the same requests.
    #[error("route conflicts with {existing}")]
    Conflict {
        /// The existing route, rendered like `GET example.com/users/:id` or `GET /users/:id`.
        existing: String,
    },
}
