//! What a reactor enforces on its connections.

use std::time::Duration;

use super::Side;
use crate::http::ParseLimits;

/// What the reactor enforces on its connections.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Most open connections; at the limit, the longest idle are closed to
    /// make room.
    pub max_connections: usize,
    /// Idle connections (and ones whose answers are not read) are closed
    /// after this long.
    pub idle_timeout: Duration,
    /// A request must arrive in full within this time of its first byte,
    /// else 408.
    pub request_timeout: Duration,
    /// What the API's clients may send.
    pub api: ParseLimits,
    /// What the web listener's clients may send.
    pub web: ParseLimits,
}

impl Settings {
    /// What clients of `side` may send.
    pub(super) fn limits(&self, side: Side) -> ParseLimits {
        match side {
            Side::Api => self.api,
            Side::Web => self.web,
        }
    }

    /// The most a connection's input buffer holds: one whole request.
    pub(super) fn read_cap(&self) -> usize {
        let (api, web) = (self.api, self.web);
        api.max_head.max(web.max_head) + api.max_body.max(web.max_body) + 16 * 1024
    }
}
