//! What the reactor asks of the application above it.
//!
//! The reactor knows connections and bytes; the application (a
//! [`Service`]) knows what requests mean. The reactor hands it each
//! complete request with a [`ConnRef`] naming the connection, and the
//! application puts the answer, now or later, in its [`Outbox`]. The
//! reactor drains the outbox after every call into the service, so answers
//! travel as data and the application never calls back into the reactor:
//! no path through the two re-enters the loop, and the loop's per-turn
//! bounds hold as stated.

use std::time::Instant;

use super::{ConnRef, Outbox, Side};
use crate::http::{Head, Request, Response};

/// When the application next needs a turn of the loop, whatever the
/// sockets do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Work is runnable now: the loop does not wait for events.
    Now,
    /// Not before this time (a deadline of the application's).
    At(Instant),
    /// Only for events (and the reactor's own tick).
    Idle,
}

/// The application a reactor serves.
///
/// Each method runs on the reactor's thread and must not block. Answers go
/// in [`outbox`](Self::outbox); the reactor writes an answer only to the
/// connection and request it names (a connection that closed or moved on
/// drops it), in the order the outbox holds them.
pub trait Service {
    /// A complete request arrived on `conn` through `side`. While it is
    /// unanswered, the connection's next requests wait.
    fn call(&mut self, conn: ConnRef, side: Side, req: Request);

    /// The head of a request on `side` is in and its body is not: refuse
    /// it now (`Some(answer)`), before its body is read or memory reserved
    /// for it, or let it come (`None`). The request, once complete, still
    /// goes to [`call`](Self::call), which decides again.
    fn admit(&mut self, _side: Side, _head: &Head) -> Option<Response> {
        None
    }

    /// Answers waiting to be written.
    fn outbox(&mut self) -> &mut Outbox;

    /// At the start of every turn of the loop, before any socket is
    /// served: take in what changed elsewhere, so that the requests read
    /// in this turn see it.
    fn begin_turn(&mut self, _now: Instant) {}

    /// After the sockets of a turn: the application's own work (the
    /// continuations of blocking jobs, time slices, timers).
    fn end_turn(&mut self, now: Instant);

    /// About every 100 ms: slower housekeeping.
    fn tick(&mut self, _now: Instant) {}

    /// When the application needs its next turn.
    fn wake(&self) -> Wake;

    /// The loop is stopping: finish what must not be lost, briefly.
    fn stop(&mut self) {}
}
