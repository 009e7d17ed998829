//! What a reactor enforces on its connections.

use std::time::Duration;

use super::Side;

/// Input a connection may always buffer (or `max_head`, if larger),
/// whatever the others hold: a request head and a small body are read even
/// when `request_memory` is spent, so that small requests are not held up
/// by big uploads.
pub const MIN_READ: usize = 16 * 1024;
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
    /// Answers waiting to be sent must be read in full within this time of
    /// when they began to wait, else the connection is closed.
    pub send_timeout: Duration,
    /// Most bytes of requests bigger than [`head_room`](Self::head_room)
    /// being received, over all connections: such a request reserves its
    /// size when its head is in, and waits to be read until it can.
    pub request_memory: usize,
    /// Most bytes of answers waiting to be sent, over all connections; past
    /// it, the connections whose clients have left output waiting longest
    /// are closed.
    pub response_memory: usize,
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

    /// What a connection may buffer without a reservation: any head and a
    /// little more (so that a head over `max_head` is seen to be), and
    /// small requests whole.
    pub(super) fn head_room(&self) -> usize {
        self.api.max_head.max(self.web.max_head).max(MIN_READ) + 4096
    }
}
