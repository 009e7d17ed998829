//! Accepting clients: the listeners of one reactor, at most
//! [`ACCEPTS_PER_TURN`] new connections a turn, and what happens at the
//! connection limit or out of file descriptors.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Interest, Registry, Token};
use tracing::{debug, error, warn};

use super::conns::Conns;
use super::Side;

/// Most connections accepted per turn of the loop, so that a flood of new
/// connections cannot keep the reactor from the ones it has (nor from
/// seeing which of them are idle).
const ACCEPTS_PER_TURN: usize = 128;

/// The event tokens of the listeners, by [`Side`]; connections use their
/// slab keys, far below.
pub(super) const API_TOKEN: Token = Token(usize::MAX - 1);
pub(super) const WEB_TOKEN: Token = Token(usize::MAX - 3);

/// The listeners and the state of accepting on them.
pub(super) struct Acceptor {
    api: TcpListener,
    web: Option<TcpListener>,
    max_connections: usize,
    /// Accepting failed (out of descriptors or memory); clients wait in the
    /// listen backlog, and the edge-triggered listener will not report them
    /// again, so accepting is retried when a connection closes and on ticks.
    /// By side: `[api, web]`.
    paused: [bool; 2],
    /// Accept again on the next turn: a connection closed while accepting
    /// was paused, or the last turn accepted its share with more waiting.
    pub retry: bool,
    /// The connection limit: new clients refused and idle connections
    /// closed since it was last logged, and when that was.
    log: LimitLog,
}

/// What the connection limit did since it was last logged (at most once a
/// second, so that a flood of connections does not flood the log).
#[derive(Default)]
struct LimitLog {
    refused: u64,
    evicted: u64,
    last: Option<Instant>,
}

impl Acceptor {
    /// Takes the bound listeners and registers them with `registry`.
    pub fn new(
        api: std::net::TcpListener,
        web: Option<std::net::TcpListener>,
        max_connections: usize,
        registry: &Registry,
    ) -> io::Result<Self> {
        let listen = |l: std::net::TcpListener, token| -> io::Result<TcpListener> {
            l.set_nonblocking(true)?;
            let mut l = TcpListener::from_std(l);
            registry.register(&mut l, token, Interest::READABLE)?;
            Ok(l)
        };
        Ok(Self {
            api: listen(api, API_TOKEN)?,
            web: web.map(|l| listen(l, WEB_TOKEN)).transpose()?,
            max_connections,
            paused: [false; 2],
            retry: false,
            log: LimitLog::default(),
        })
    }

    /// The address of the API listener.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.api.local_addr()
    }

    /// Whether accepting is paused on some listener.
    pub fn paused(&self) -> bool {
        self.paused.contains(&true)
    }

    /// Accepts up to [`ACCEPTS_PER_TURN`] clients of `side` into `conns`.
    pub fn accept(&mut self, side: Side, conns: &mut Conns, registry: &Registry) {
        let listener = match side {
            Side::Api => &self.api,
            Side::Web => match &self.web {
                Some(l) => l,
                None => return,
            },
        };
        let max = self.max_connections;
        let log = &mut self.log;
        let was_paused = std::mem::take(&mut self.paused[side as usize]);
        let batch = eviction_batch(self.max_connections);
        for _ in 0..ACCEPTS_PER_TURN {
            match listener.accept() {
                Ok((sock, peer)) => {
                    if conns.len() >= max && log.close_idle(conns, batch, registry, max) == 0 {
                        // Every connection is in use: this one is closed at once.
                        log.refused += 1;
                        log.write(max);
                        debug!(%peer, "connection limit reached; refusing connection");
                        continue;
                    }
                    let _ = sock.set_nodelay(true);
                    match conns.insert(sock, side, registry) {
                        Ok(key) => debug!(%peer, key, "accepted"),
                        Err(e) => warn!("cannot register connection: {e}"),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // The client gave up before it was accepted; the next may not have.
                Err(e) if matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted) => continue,
                // Out of descriptors below max_connections (the open-file
                // limit is lower): idle connections make room here too. But
                // accept reports EMFILE even when nobody waits, so close
                // nothing unless somebody does.
                Err(e)
                    if out_of_descriptors(&e)
                        && backlog_waiting(listener)
                        && log.close_idle(conns, batch, registry, max) > 0 =>
                {
                    continue
                }
                Err(e) => {
                    // Out of file descriptors (EMFILE, ENFILE) or memory:
                    // keep serving the connections we have. The clients not
                    // accepted stay in the listen backlog, and the listener
                    // (edge-triggered) will not report them again, so try
                    // again when a connection closes and on every tick.
                    if !was_paused {
                        error!("accept failed: {e}; retrying as connections close");
                    }
                    self.paused[side as usize] = true;
                    return;
                }
            }
        }
        // Its share for this turn, with perhaps more waiting: the listener
        // (edge-triggered) will not say so again.
        self.retry = true;
    }

    /// Every 100 ms: retries paused listeners, logs the limit's work.
    pub fn tick(&mut self, conns: &mut Conns, registry: &Registry) {
        if self.paused() {
            self.accept(Side::Api, conns, registry);
            self.accept(Side::Web, conns, registry);
        }
        if self.log.refused + self.log.evicted > 0 {
            self.log.write(self.max_connections);
        }
    }
}

impl LimitLog {
    /// Closes up to `n` idle connections to make room; how many it closed.
    fn close_idle(&mut self, conns: &mut Conns, n: usize, registry: &Registry, max: usize) -> usize {
        let closed = conns.close_idle(n, registry);
        self.evicted += closed as u64;
        if closed > 0 {
            self.write(max);
        }
        closed
    }

    /// Logs what the connection limit (`max`) did, at most once a second.
    fn write(&mut self, max: usize) {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            return;
        }
        let LimitLog { refused, evicted, .. } = std::mem::take(self);
        self.last = Some(now);
        warn!(
            limit = max,
            idle_closed = evicted,
            refused,
            "connection limit reached (max_connections or open files): closed idle connections to make room, \
             or refused new ones when none was idle"
        );
    }
}

/// How many idle connections to close at once at the connection limit: a
/// 64th of the limit, so that a burst of new clients costs one scan of the
/// connections per batch rather than one per client.
fn eviction_batch(max_connections: usize) -> usize {
    (max_connections / 64).max(1)
}

/// Whether `e` says that the process or the system has no file descriptor
/// left (EMFILE, ENFILE).
fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Whether a client waits in the listen backlog (the listener is
/// readable).
fn backlog_waiting(listener: &TcpListener) -> bool {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: `pfd` is one valid pollfd for an open descriptor, the count
    // is 1 and the timeout 0; poll only writes `pfd.revents`.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n > 0 && pfd.revents & libc::POLLIN != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_descriptors_is_emfile_or_enfile() {
        assert!(out_of_descriptors(&io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(out_of_descriptors(&io::Error::from_raw_os_error(libc::ENFILE)));
        assert!(!out_of_descriptors(&io::Error::from_raw_os_error(libc::ENOMEM)));
        assert!(!out_of_descriptors(&io::Error::other("x")));
    }

    #[test]
    fn eviction_batches_are_a_64th_of_the_limit_and_never_empty() {
        assert_eq!(eviction_batch(1), 1);
        assert_eq!(eviction_batch(100), 1);
        assert_eq!(eviction_batch(4096), 64);
    }
}
