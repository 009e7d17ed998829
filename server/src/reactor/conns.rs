//! The connections of one reactor: a slab of [`Conn`]s with their
//! generations, the timers that close them, and the choice of which to
//! close at the connection limit.

use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use slab::Slab;
use tracing::debug;

use super::conn::Conn;
use super::{ConnRef, Side};

/// Every connection of a reactor.
#[derive(Default)]
pub(super) struct Conns {
    slab: Slab<Conn>,
    /// The generation of the last connection accepted.
    last_gen: u64,
}

/// Connections whose time ran out, by what they were doing.
#[derive(Default)]
pub(super) struct Expired {
    /// Idle for `idle_timeout`, or never reading their answers for that
    /// long, or not reading them in full within `send_timeout`; or
    /// lingering past their time: closed.
    pub close: Vec<usize>,
    /// A request that has not arrived in full within `request_timeout`:
    /// answered with 408.
    pub too_slow: Vec<usize>,
}

impl Conns {
    /// How many connections are open.
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn get(&self, key: usize) -> Option<&Conn> {
        self.slab.get(key)
    }

    pub fn get_mut(&mut self, key: usize) -> Option<&mut Conn> {
        self.slab.get_mut(key)
    }

    /// The connection `to` names, if it is still that connection.
    pub fn get_ref(&mut self, to: ConnRef) -> Option<&mut Conn> {
        self.slab.get_mut(to.key).filter(|c| c.gen == to.gen)
    }

    /// Registers a new connection for readiness events and keeps it.
    pub fn insert(&mut self, mut sock: TcpStream, side: Side, registry: &Registry) -> std::io::Result<usize> {
        let entry = self.slab.vacant_entry();
        let key = entry.key();
        registry.register(&mut sock, Token(key), Interest::READABLE | Interest::WRITABLE)?;
        self.last_gen += 1;
        entry.insert(Conn::new(sock, self.last_gen, side));
        Ok(key)
    }

    /// Closes connection `key`; the bytes of request memory it had
    /// reserved and of output it held, or `None` if there was none.
    pub fn remove(&mut self, key: usize, registry: &Registry) -> Option<(usize, usize)> {
        let mut conn = self.slab.try_remove(key)?;
        let _ = registry.deregister(&mut conn.sock);
        debug!(key, "closed");
        Some((conn.reserved, conn.pending_out()))
    }

    /// The bytes of request memory all connections reserved, and of
    /// output they hold (checked against the reactor's counts in debug
    /// builds).
    pub fn held(&self) -> (usize, usize) {
        self.slab.iter().fold((0, 0), |(r, o), (_, c)| (r + c.reserved, o + c.pending_out()))
    }

    /// The connections with output waiting on their clients, those waiting
    /// longest first, but for those whose output began to wait at `spare`.
    pub fn slowest_readers(&self, spare: Option<Instant>) -> Vec<usize> {
        let mut waiting: Vec<(Instant, usize)> = self
            .slab
            .iter()
            .filter_map(|(key, c)| c.out_since.filter(|t| Some(*t) != spare).map(|t| (t, key)))
            .collect();
        waiting.sort_unstable();
        waiting.into_iter().map(|(_, key)| key).collect()
    }

    /// At the connection limit: closes up to `n` of the connections that
    /// have been idle longest (see [`Conn::is_idle`]), so that idle
    /// keep-alive connections, however many a client opens, cannot keep
    /// new clients out. Returns how many were closed.
    pub fn close_idle(&mut self, n: usize, registry: &Registry) -> usize {
        let idle: Vec<(Instant, usize)> =
            self.slab.iter().filter(|(_, c)| c.is_idle()).map(|(key, c)| (c.last_active, key)).collect();
        let keys = longest_idle(idle, n);
        for &key in &keys {
            self.remove(key, registry);
        }
        keys.len()
    }

    /// The connections whose time ran out at `now`: idle for `idle`, a
    /// request arriving for longer than `request`, output waiting for
    /// longer than `send`.
    pub fn expired(&self, now: Instant, idle: Duration, request: Duration, send: Duration) -> Expired {
        let mut out = Expired::default();
        for (key, conn) in self.slab.iter() {
            if conn.out_since.is_some_and(|t| now.duration_since(t) > send) {
                out.close.push(key);
                continue;
            }
            if let Some(linger) = &conn.linger {
                if now >= linger.until {
                    out.close.push(key);
                }
                continue;
            }
            if conn.busy {
                continue;
            }
            match conn.request_started {
                Some(started) if !conn.close_after => {
                    if now.duration_since(started) > request {
                        out.too_slow.push(key);
                    }
                }
                // Idle, or with output the client has not read for all that
                // time (the responses it never reads would hold memory).
                _ => {
                    if now.duration_since(conn.last_active) > idle {
                        out.close.push(key);
                    }
                }
            }
        }
        out
    }
}

/// Of the idle connections (`(last active, key)`), the keys of the `n`
/// longest idle.
fn longest_idle(mut idle: Vec<(Instant, usize)>, n: usize) -> Vec<usize> {
    let n = n.min(idle.len());
    if n == 0 {
        return Vec::new();
    }
    if n < idle.len() {
        idle.select_nth_unstable(n - 1);
        idle.truncate(n);
    }
    idle.into_iter().map(|(_, key)| key).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_idle_picks_the_oldest_first() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let idle = vec![(at(30), 3), (at(10), 1), (at(50), 5), (at(20), 2), (at(40), 4)];
        let mut two = longest_idle(idle.clone(), 2);
        two.sort_unstable();
        assert_eq!(two, vec![1, 2]);
        let mut all = longest_idle(idle.clone(), 10);
        all.sort_unstable();
        assert_eq!(all, vec![1, 2, 3, 4, 5]);
        assert_eq!(longest_idle(idle, 0), Vec::<usize>::new());
        assert_eq!(longest_idle(Vec::new(), 3), Vec::<usize>::new());
    }
}
