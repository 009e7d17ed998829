//! The reactor: one thread, one `mio::Poll`, owning every socket and every
//! Lua state. It never blocks: store calls and compiles go to the blocking
//! [`Pool`](crate::pool::Pool) and come back as continuations.
//!
//! Each turn of the loop: wait for events (not at all if Lua work is
//! runnable), serve readable and writable sockets, run the continuations of
//! finished pool jobs, give every runnable invocation one time slice, flush
//! invocation records, and every 100 ms check timeouts.

mod conn;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use sl_store::{InvocationRecord, Store};
use slab::Slab;
use tracing::{debug, error, info, warn};

pub use conn::{Conn, ConnRef};
use conn::{ReadOutcome, MAX_PENDING_OUT};

use crate::auth::Tokens;
use crate::config::Config;
use crate::exec::Executor;
use crate::http::{self, ParseLimits, Parsed, Response};
use crate::plugin::PluginHost;
use crate::pool::Pool;

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
const ROUTES_LISTENER: Token = Token(usize::MAX - 3);
const TICK: Duration = Duration::from_millis(100);
/// Bytes read from a socket per `read` call.
const READ_CHUNK: usize = 16 * 1024;
/// Most requests served from one connection per turn of the loop, so that a
/// client pipelining thousands of requests cannot keep the reactor from the
/// others; the rest wait for the next turn.
const REQUESTS_PER_TURN: usize = 64;

/// Capacity of the JSON answer buffer kept between answers.
const JSON_BODY_KEEP: usize = 64 * 1024;

/// Most connections accepted per turn of the loop, so that a flood of new
/// connections cannot keep the reactor from the ones it has (nor from
/// seeing which of them are idle).
const ACCEPTS_PER_TURN: usize = 128;
/// How often cached actions are compared with the store, so that changes
/// made through another server (or another worker) are seen.
const ACTION_SYNC: Duration = Duration::from_millis(500);
/// How often waiters' invocations are looked up in the store (for
/// invocations run by another server).
const WAITER_POLL: Duration = Duration::from_millis(300);

/// What one reactor tells the others of its process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerMsg {
    /// This action was created, updated or deleted.
    ActionChanged(String),
    /// A route was added or deleted.
    RoutesChanged,
}

/// The links between the reactors (workers) of one process.
pub struct Peers {
    /// This reactor's index.
    pub me: usize,
    /// One sender per reactor, by index.
    pub txs: Arc<Vec<std::sync::mpsc::Sender<PeerMsg>>>,
    /// Changes made through other reactors.
    pub rx: std::sync::mpsc::Receiver<PeerMsg>,
}

/// The sockets one reactor accepts clients on.
pub struct Listeners {
    /// The management and invocation API.
    pub api: std::net::TcpListener,
    /// Routes (`Routes { ... }` in config.lua), if configured.
    pub routes: Option<std::net::TcpListener>,
}

/// Which listener a connection came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Api,
    Routes,
}

impl Peers {
    /// Links for `n` reactors.
    pub fn mesh(n: usize) -> Vec<Peers> {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| std::sync::mpsc::channel()).unzip();
        let txs = Arc::new(txs);
        rxs.into_iter().enumerate().map(|(me, rx)| Peers { me, txs: Arc::clone(&txs), rx }).collect()
    }

    /// The next change made through another reactor, if any; a lone
    /// reactor has no peers and asks no channel.
    fn try_recv(&self) -> Option<PeerMsg> {
        if self.txs.len() < 2 {
            return None;
        }
        self.rx.try_recv().ok()
    }
}

/// A client waiting on `GET /invocation/:id?wait=`.
pub(crate) struct Waiter {
    pub conn: ConnRef,
    pub deadline: Instant,
}

/// Batches invocation records into store writes.
#[derive(Default)]
pub(crate) struct Recorder {
    pub pending: Vec<InvocationRecord>,
    pub in_flight: bool,
    /// After a failed write, no new attempt before this.
    pub retry_at: Option<Instant>,
}

/// Most records kept while the store cannot be written; beyond it the
/// records of blocking invocations (whose clients have their answer) are
/// dropped first.
const MAX_PENDING_RECORDS: usize = 100_000;

/// The asynchronous queue's consumer on this server.
#[derive(Default)]
pub(crate) struct Dispatch {
    pub running: usize,
    pub claiming: bool,
    pub again: bool,
}

/// All state of one reactor thread.
pub struct Server {
    pub(crate) cfg: Arc<Config>,
    poll: Poll,
    listener: TcpListener,
    routes_listener: Option<TcpListener>,
    /// The routes this server serves, refreshed from the store.
    pub(crate) routes: crate::routes::RouteTable<String>,
    pub(crate) routes_sync: crate::api::RoutesSync,
    pub(crate) conns: Slab<Conn>,
    /// Where sockets are read into before their bytes join a connection's
    /// buffer: zeroed once, not once a read.
    read_chunk: Box<[u8]>,
    next_gen: u64,
    pub(crate) pool: Pool<Server>,
    /// Plugin calls: a pool of its own that grows with the calls waiting,
    /// so slow plugins never hold up store calls.
    pub(crate) plugin_pool: Pool<Server>,
    pub(crate) plugins: Arc<PluginHost>,
    pub(crate) tokens: Tokens,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) exec: Executor,
    pub(crate) waiters: HashMap<String, Vec<Waiter>>,
    /// Finished invocations whose ids their clients know (asynchronous
    /// ones, and runs of routes) and whose records are not yet stored.
    pub(crate) recent_done: HashMap<String, InvocationRecord>,
    pub(crate) recorder: Recorder,
    pub(crate) dispatch: Dispatch,
    pub(crate) owner: String,
    parse_limits: ParseLimits,
    /// Limits for the routes listener: the same, but headers are kept.
    routes_parse_limits: ParseLimits,
    /// Connections to drive again on the next turn, which no socket event
    /// will announce: they served their share of a turn with requests left,
    /// or their output drained below the cap within a turn.
    ready: Vec<usize>,
    /// Accepting failed (out of descriptors or memory); clients wait in the
    /// listen backlog, and the edge-triggered listener will not report them
    /// again, so accepting is retried when a connection closes and on ticks.
    /// By listener: `[api, routes]`.
    accept_paused: [bool; 2],
    /// Accept again on the next turn: a connection closed while accepting
    /// was paused, or the last turn accepted its share with more waiting.
    retry_accept: bool,
    /// The connection limit: new clients refused and idle connections
    /// closed since it was last logged, and when that was.
    limit_log: LimitLog,
    shutdown: Arc<AtomicBool>,
    peers: Peers,
    last_tick: Instant,
    /// The body of the JSON answer being written by `complete_json`.
    json_body: Vec<u8>,
    /// When the current turn of the loop began (after the poll returned):
    /// the time connections were last active, to a turn's precision.
    turn: Instant,
    last_claim: Instant,
    last_purge: Instant,
    last_sync: Instant,
    syncing: bool,
    last_waiter_poll: Instant,
}

/// What the connection limit did since it was last logged (at most once a
/// second, so that a flood of connections does not flood the log).
#[derive(Default)]
struct LimitLog {
    refused: u64,
    evicted: u64,
    last: Option<Instant>,
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

/// A new invocation id: a UUIDv7 (time-ordered) in its hyphenated form,
/// written without the formatting machinery of `to_string`.
pub(crate) fn new_invocation_id() -> String {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Uuid::now_v7().hyphenated().encode_lower(&mut buf).to_owned()
}

/// Current time in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Server {
    /// Binds the listener and starts the pool. `shutdown` stops [`run`](Self::run).
    /// A reactor serving `listener` (already bound; see
    /// [`bind_listeners`](crate::workers::bind_listeners)). `peers` connects
    /// it with the other reactors of this process.
    pub fn new(
        cfg: Arc<Config>,
        listeners: Listeners,
        store: Arc<dyn Store>,
        plugins: Arc<PluginHost>,
        shutdown: Arc<AtomicBool>,
        peers: Peers,
    ) -> io::Result<Self> {
        let Listeners { api: listener, routes: routes_listener } = listeners;
        listener.set_nonblocking(true)?;
        let share = cfg.limits.total_memory.saturating_mul(1024) / cfg.server.workers.max(1) as u64;
        crate::sandbox::set_thread_budget(share as usize);
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new()?;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let routes_listener = match routes_listener {
            Some(l) => {
                l.set_nonblocking(true)?;
                let mut l = TcpListener::from_std(l);
                poll.registry().register(&mut l, ROUTES_LISTENER, Interest::READABLE)?;
                Some(l)
            }
            None => None,
        };
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let wake: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            let _ = waker.wake();
        });
        let pool = Pool::new("sl-pool", cfg.server.pool_threads, cfg.server.pool_threads, Arc::clone(&wake))?;
        let plugin_pool = Pool::new("sl-plugin", 1, cfg.server.plugin_threads, wake)?;
        let parse_limits = ParseLimits {
            max_head: cfg.server.max_head,
            max_body: cfg.server.max_body,
            max_headers: cfg.server.max_headers,
            keep_headers: false,
        };
        let now = Instant::now();
        let tokens = Tokens::new(&cfg.auth);
        Ok(Self {
            exec: Executor::default(),
            cfg,
            poll,
            listener,
            routes_listener,
            routes: crate::routes::RouteTable::new(),
            routes_sync: crate::api::RoutesSync::default(),
            conns: Slab::new(),
            read_chunk: vec![0u8; READ_CHUNK].into_boxed_slice(),
            next_gen: 0,
            pool,
            plugin_pool,
            plugins,
            tokens,
            store,
            waiters: HashMap::new(),
            recent_done: HashMap::new(),
            recorder: Recorder::default(),
            dispatch: Dispatch::default(),
            owner: uuid::Uuid::new_v4().to_string(),
            parse_limits,
            routes_parse_limits: ParseLimits { keep_headers: true, ..parse_limits },
            ready: Vec::new(),
            accept_paused: [false; 2],
            retry_accept: false,
            limit_log: LimitLog::default(),
            shutdown,
            peers,
            last_tick: now,
            json_body: Vec::new(),
            turn: now,
            last_claim: now,
            last_purge: now - Duration::from_secs(3600),
            last_sync: now,
            syncing: false,
            last_waiter_poll: now,
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the shutdown flag is set.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        self.kick_dispatch();
        self.sync_routes();
        while !self.shutdown.load(Ordering::Relaxed) {
            let timeout =
                if self.exec.has_runnable() || !self.ready.is_empty() || self.retry_accept || self.exec.has_graves() {
                    Duration::ZERO
                } else {
                    self.exec.next_deadline().map_or(TICK, |d| d.saturating_duration_since(Instant::now()).min(TICK))
                };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.turn = Instant::now();
            // Changes made through other workers first, so that requests
            // read below see them.
            while let Some(msg) = self.peers.try_recv() {
                match msg {
                    PeerMsg::ActionChanged(name) => self.invalidate(&name),
                    PeerMsg::RoutesChanged => self.sync_routes(),
                }
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(Side::Api),
                    ROUTES_LISTENER => self.accept(Side::Routes),
                    WAKER => {}
                    Token(key) => {
                        let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                        if let Some(conn) = self.conns.get_mut(key) {
                            conn.seen = true;
                            if readable {
                                conn.maybe_readable = true;
                                conn.read_closed |= ev.is_read_closed() || ev.is_error();
                            }
                        }
                        if readable {
                            self.drive(key);
                        }
                        if ev.is_writable() {
                            self.on_writable(key);
                        }
                    }
                }
            }
            if std::mem::take(&mut self.retry_accept) {
                self.accept(Side::Api);
                self.accept(Side::Routes);
            }
            for key in std::mem::take(&mut self.ready) {
                if let Some(conn) = self.conns.get_mut(key) {
                    conn.queued = false;
                    self.drive(key);
                }
            }
            self.run_completions();
            self.exec.bury_one();
            if self.exec.next_deadline().is_some() {
                self.expire_parked(Instant::now());
            }
            self.run_slices();
            self.run_completions();
            self.flush_records();
            // The turn's clock: a tick comes at most one turn late.
            if self.turn.saturating_duration_since(self.last_tick) >= TICK {
                self.tick();
            }
        }
        info!("shutting down");
        self.flush_records();
        let deadline = Instant::now() + Duration::from_secs(5);
        while (self.recorder.in_flight || !self.recorder.pending.is_empty()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            self.run_completions();
            self.flush_records();
        }
        self.pool.shutdown();
        Ok(())
    }

    fn run_completions(&mut self) {
        while let Some(c) = self.pool.try_completion() {
            c(self);
        }
        while let Some(c) = self.plugin_pool.try_completion() {
            c(self);
        }
    }

    fn accept(&mut self, side: Side) {
        if side == Side::Routes && self.routes_listener.is_none() {
            return;
        }
        let was_paused = std::mem::take(&mut self.accept_paused[side as usize]);
        for _ in 0..ACCEPTS_PER_TURN {
            let accepted = match (side, &self.routes_listener) {
                (Side::Api, _) => self.listener.accept(),
                (Side::Routes, Some(l)) => l.accept(),
                (Side::Routes, None) => return,
            };
            match accepted {
                Ok((mut sock, peer)) => {
                    let limit = self.cfg.server.max_connections;
                    if self.conns.len() >= limit && self.close_idle(eviction_batch(limit)) == 0 {
                        // Every connection is in use: this one is closed at once.
                        self.limit_log.refused += 1;
                        self.log_limit();
                        debug!(%peer, "connection limit reached; refusing connection");
                        continue;
                    }
                    let _ = sock.set_nodelay(true);
                    let entry = self.conns.vacant_entry();
                    let key = entry.key();
                    if let Err(e) =
                        self.poll.registry().register(&mut sock, Token(key), Interest::READABLE | Interest::WRITABLE)
                    {
                        warn!("cannot register connection: {e}");
                        continue;
                    }
                    self.next_gen += 1;
                    entry.insert(Conn::new(sock, self.next_gen, side));
                    debug!(%peer, key, "accepted");
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
                        && self.backlog_waiting(side)
                        && self.close_idle(eviction_batch(self.cfg.server.max_connections)) > 0 =>
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
                    self.accept_paused[side as usize] = true;
                    return;
                }
            }
        }
        // Its share for this turn, with perhaps more waiting: the listener
        // (edge-triggered) will not say so again.
        self.retry_accept = true;
    }

    /// Whether a client waits in the listen backlog (the listener is
    /// readable).
    fn backlog_waiting(&self, side: Side) -> bool {
        use std::os::fd::AsRawFd;
        let fd = match (side, &self.routes_listener) {
            (Side::Routes, Some(l)) => l.as_raw_fd(),
            _ => self.listener.as_raw_fd(),
        };
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: `pfd` is one valid pollfd for an open descriptor, the count
        // is 1 and the timeout 0; poll only writes `pfd.revents`.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        n > 0 && pfd.revents & libc::POLLIN != 0
    }

    /// At the connection limit: closes up to `n` of the connections that
    /// have been idle longest (see [`Conn::is_idle`]), so that idle
    /// keep-alive connections, however many a client opens, cannot keep new
    /// clients out. Returns how many were closed.
    fn close_idle(&mut self, n: usize) -> usize {
        let idle: Vec<(Instant, usize)> =
            self.conns.iter().filter(|(_, c)| c.is_idle()).map(|(key, c)| (c.last_active, key)).collect();
        let keys = longest_idle(idle, n);
        for &key in &keys {
            self.close(key);
        }
        self.limit_log.evicted += keys.len() as u64;
        if !keys.is_empty() {
            self.log_limit();
        }
        keys.len()
    }

    /// Logs what the connection limit did, at most once a second.
    fn log_limit(&mut self) {
        let now = Instant::now();
        if self.limit_log.last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            return;
        }
        let LimitLog { refused, evicted, .. } = std::mem::take(&mut self.limit_log);
        self.limit_log.last = Some(now);
        warn!(
            limit = self.cfg.server.max_connections,
            idle_closed = evicted,
            refused,
            "connection limit reached (max_connections or open files): closed idle connections to make room, \
             or refused new ones when none was idle"
        );
    }

    fn read_cap(&self) -> usize {
        self.parse_limits.max_head + self.parse_limits.max_body + 16 * 1024
    }

    /// Reads what the socket has, serves complete requests, and repeats
    /// while the read stopped at the buffer cap and requests were consumed.
    pub(crate) fn drive(&mut self, key: usize) {
        let cap = self.read_cap();
        loop {
            let Some(conn) = self.conns.get_mut(key) else { return };
            let outcome = conn.read(cap, &mut self.read_chunk[..], self.turn);
            if let ReadOutcome::Failed = outcome {
                self.close(key);
                return;
            }
            let before = self.conns.get(key).map(|c| c.input().len()).unwrap_or(0);
            let yielded = self.pump(key);
            let Some(conn) = self.conns.get(key) else { return };
            let progressed = conn.input().len() < before;
            if yielded {
                // Served its share of this turn: the rest next turn.
                self.revisit(key);
                break;
            }
            if !matches!(outcome, ReadOutcome::Capped) || !progressed || conn.busy {
                break;
            }
        }
        self.after_io(key);
    }

    /// Drives `key` again on the next turn of the loop (once, however often
    /// this is called).
    fn revisit(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if !conn.queued {
                conn.queued = true;
                self.ready.push(key);
            }
        }
    }

    fn on_writable(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        if !conn.flush(self.turn) {
            self.close(key);
            return;
        }
        if conn.stalled && conn.pending_out() < MAX_PENDING_OUT {
            // Room again: serve the requests that waited (and read the
            // socket, which may have been left unread at the buffer cap).
            self.drive(key);
        } else {
            self.after_io(key);
        }
    }

    /// Serves complete requests in the buffer, one at a time, in order, at
    /// most [`REQUESTS_PER_TURN`] of them. Returns true if it stopped at
    /// that number with more input waiting.
    fn pump(&mut self, key: usize) -> bool {
        let mut served = 0;
        loop {
            let Some(conn) = self.conns.get_mut(key) else { return false };
            let limits = if conn.side == Side::Routes { self.routes_parse_limits } else { self.parse_limits };
            conn.stalled = false;
            if conn.busy || conn.close_after {
                break;
            }
            if conn.pending_out() >= MAX_PENDING_OUT {
                // Back-pressure: no more requests until the client reads.
                conn.stalled = true;
                break;
            }
            if conn.input().is_empty() {
                conn.request_started = None;
                break;
            }
            if served == REQUESTS_PER_TURN {
                return true;
            }
            match http::parse(conn.input(), &limits) {
                Ok(Parsed::Partial { expect_continue }) => {
                    conn.request_started.get_or_insert_with(Instant::now);
                    if expect_continue && !conn.sent_continue {
                        conn.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                        conn.sent_continue = true;
                    }
                    break;
                }
                Ok(Parsed::Complete(req, used)) => {
                    served += 1;
                    conn.consume(used);
                    conn.busy = true;
                    conn.sent_continue = false;
                    conn.request_started = None;
                    conn.keep_alive = req.keep_alive;
                    conn.head_only = req.method == http::Method::Head;
                    let cref = ConnRef { key, gen: conn.gen };
                    let answer = match conn.side {
                        Side::Api => self.handle(cref, req),
                        Side::Routes => self.handle_route(cref, req),
                    };
                    if let Some(resp) = answer {
                        self.write_response(key, resp);
                    }
                }
                Err(e) => {
                    debug!(key, status = e.status, "bad request: {}", e.message);
                    conn.keep_alive = false;
                    conn.head_only = false;
                    conn.busy = true;
                    self.write_response(key, Response::error(e.status, "bad_request", &e.message));
                    break;
                }
            }
        }
        false
    }

    fn write_response(&mut self, key: usize, resp: Response) {
        self.write_answer(key, |out, keep_alive, head_only| resp.write_to(out, keep_alive, head_only));
    }

    /// Appends the answer to the request `key` is busy with, written by
    /// `write(out, keep_alive, head_only)`.
    fn write_answer(&mut self, key: usize, write: impl FnOnce(&mut Vec<u8>, bool, bool)) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        conn.busy = false;
        // A client that closed its sending side still gets the answers to
        // every request it sent (`after_io` closes once they are written).
        let keep = conn.keep_alive;
        write(&mut conn.out, keep, conn.head_only);
        if !keep {
            conn.close_after = true;
        }
    }

    /// Delivers the response of an asynchronous request, if its connection
    /// is still there, and serves the requests that waited behind it.
    pub(crate) fn complete(&mut self, cref: ConnRef, resp: Response) {
        if !self.awaits_answer(cref) {
            return;
        }
        self.write_response(cref.key, resp);
        self.drive(cref.key);
    }

    /// Whether `cref` is still the connection that made the request being
    /// answered, and waits for that answer.
    fn awaits_answer(&self, cref: ConnRef) -> bool {
        self.conns.get(cref.key).is_some_and(|c| c.gen == cref.gen && c.busy)
    }

    /// [`complete`](Self::complete) with a `200` JSON response of `value`,
    /// serialized into a buffer the reactor keeps (the answer of a blocking
    /// run: no response or body of its own).
    pub(crate) fn complete_json(&mut self, cref: ConnRef, value: &serde_json::Value) {
        if !self.awaits_answer(cref) {
            return;
        }
        let mut body = std::mem::take(&mut self.json_body);
        body.clear();
        if serde_json::to_writer(&mut body, value).is_err() {
            body.clear();
            body.extend_from_slice(b"null");
        }
        self.write_answer(cref.key, |out, keep_alive, head_only| {
            http::write_parts(out, 200, "application/json", &body, keep_alive, head_only)
        });
        // A big answer does not keep its buffer.
        if body.capacity() <= JSON_BODY_KEEP {
            self.json_body = body;
        }
        self.drive(cref.key);
    }

    /// Flushes output and closes the connection when it is finished.
    fn after_io(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        if !conn.flush(self.turn) {
            self.close(key);
            return;
        }
        if conn.stalled && conn.pending_out() < MAX_PENDING_OUT {
            // The socket took enough of the output that stopped this
            // connection; no event will say so, so serve it next turn.
            self.revisit(key);
        }
        let Some(conn) = self.conns.get(key) else { return };
        let done_writing = conn.pending_out() == 0;
        // A client that closed its side is done once its last request is
        // answered (and not before: some may wait for their turn).
        let peer_done = conn.peer_closed && !conn.busy && !conn.queued;
        if done_writing && (conn.close_after || peer_done) {
            self.close(key);
        }
    }

    fn close(&mut self, key: usize) {
        if self.conns.contains(key) {
            let mut conn = self.conns.remove(key);
            let _ = self.poll.registry().deregister(&mut conn.sock);
            debug!(key, "closed");
            if self.accept_paused.contains(&true) {
                self.retry_accept = true;
            }
        }
    }

    /// An action was created, updated or deleted through this reactor:
    /// forget it here and in the other reactors of this process, so that
    /// the next invocation anywhere uses the new version.
    pub(crate) fn action_changed(&mut self, name: &str) {
        self.invalidate(name);
        self.tell_peers(PeerMsg::ActionChanged(name.to_string()));
    }

    /// Sends `msg` to the other reactors of this process.
    pub(crate) fn tell_peers(&self, msg: PeerMsg) {
        for (i, tx) in self.peers.txs.iter().enumerate() {
            if i != self.peers.me {
                let _ = tx.send(msg.clone());
            }
        }
    }

    /// Timeouts of connections and waiters, the queue, and retention.
    fn tick(&mut self) {
        self.last_tick = Instant::now();
        let now = self.last_tick;
        let idle = self.cfg.server.idle_timeout;
        let request_timeout = self.cfg.server.request_timeout;
        let mut expired = Vec::new();
        let mut too_slow = Vec::new();
        for (key, conn) in self.conns.iter() {
            if conn.busy {
                continue;
            }
            match conn.request_started {
                Some(started) if !conn.close_after => {
                    if now.duration_since(started) > request_timeout {
                        too_slow.push(key);
                    }
                }
                // Idle, or with output the client has not read for all that
                // time (the responses it never reads would hold memory).
                _ => {
                    if now.duration_since(conn.last_active) > idle {
                        expired.push(key);
                    }
                }
            }
        }
        for key in expired {
            self.close(key);
        }
        for key in too_slow {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.keep_alive = false;
                conn.head_only = false;
                conn.busy = true;
                conn.discard_input();
                conn.request_started = None;
            }
            self.write_response(key, Response::error(408, "bad_request", "request not received in time"));
            self.after_io(key);
        }
        if self.accept_paused.contains(&true) {
            self.accept(Side::Api);
            self.accept(Side::Routes);
        }
        if self.limit_log.refused + self.limit_log.evicted > 0 {
            self.log_limit();
        }
        self.expire_waiters(now);
        if now.duration_since(self.last_waiter_poll) >= WAITER_POLL {
            self.last_waiter_poll = now;
            self.poll_waiters();
        }
        if now.duration_since(self.last_sync) >= ACTION_SYNC && !self.syncing {
            self.last_sync = now;
            self.sync_actions();
            if self.routes_listener.is_some() {
                self.sync_routes();
            }
        }
        if now.duration_since(self.last_claim) >= Duration::from_secs(1) {
            self.last_claim = now;
            self.kick_dispatch();
        }
        if now.duration_since(self.last_purge) >= Duration::from_secs(60) {
            self.last_purge = now;
            self.purge();
        }
    }

    /// Invalidates cached actions whose stored version changed or that were
    /// deleted.
    fn sync_actions(&mut self) {
        if !self.exec.has_cached() {
            return;
        }
        self.syncing = true;
        let store = Arc::clone(&self.store);
        self.pool.spawn(move || {
            let r = store.list_actions();
            move |s: &mut Server| {
                s.syncing = false;
                match r {
                    Ok(list) => {
                        let versions: HashMap<String, i64> = list.into_iter().map(|m| (m.name, m.version)).collect();
                        for name in s.exec.stale_actions(&versions) {
                            debug!(action = %name, "action changed in the store; reloading");
                            s.invalidate(&name);
                        }
                    }
                    Err(e) => debug!("cannot compare cached actions with the store: {e}"),
                }
            }
        });
    }

    /// Answers waiters whose invocation finished, wherever it ran.
    fn poll_waiters(&mut self) {
        let ids: Vec<String> = self.waiters.keys().cloned().collect();
        for id in ids {
            let store = Arc::clone(&self.store);
            self.pool.spawn(move || {
                let r = store.get_invocation(&id);
                move |s: &mut Server| {
                    if let Ok(Some(rec)) = r {
                        if rec.status.is_terminal() {
                            if let Some(ws) = s.waiters.remove(&rec.id) {
                                let resp = crate::exec::record_response(&rec);
                                for w in ws {
                                    s.complete(w.conn, resp.clone());
                                }
                            }
                        }
                    }
                }
            });
        }
    }

    fn purge(&mut self) {
        let store = Arc::clone(&self.store);
        let before = now_ms() - (self.cfg.invocations.retention as i64).saturating_mul(1000);
        self.pool.spawn(move || {
            let r = store.purge_invocations(before);
            move |_: &mut Server| match r {
                Ok(0) => {}
                Ok(n) => info!(deleted = n, "purged old invocation records"),
                Err(e) => warn!("cannot purge invocation records: {e}"),
            }
        });
    }

    /// Queues a record to be written with the next batch.
    pub(crate) fn record(&mut self, rec: InvocationRecord) {
        self.recorder.pending.push(rec);
    }

    fn flush_records(&mut self) {
        if self.recorder.in_flight || self.recorder.pending.is_empty() {
            return;
        }
        if self.recorder.retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let batch = std::mem::take(&mut self.recorder.pending);
        self.recorder.in_flight = true;
        let store = Arc::clone(&self.store);
        self.pool.spawn(move || {
            let r = store.put_invocations(&batch);
            move |s: &mut Server| {
                s.recorder.in_flight = false;
                match r {
                    Ok(()) => {
                        s.recorder.retry_at = None;
                        for rec in &batch {
                            s.recent_done.remove(&rec.id);
                        }
                    }
                    Err(e) => {
                        error!(records = batch.len(), "cannot store invocation records, will retry in 1 s: {e}");
                        s.recorder.retry_at = Some(Instant::now() + Duration::from_secs(1));
                        let mut batch = batch;
                        batch.append(&mut s.recorder.pending);
                        if batch.len() > MAX_PENDING_RECORDS {
                            let before = batch.len();
                            let mut excess = before - MAX_PENDING_RECORDS;
                            batch.retain(|r| {
                                if excess > 0 && !r.is_async {
                                    excess -= 1;
                                    s.recent_done.remove(&r.id);
                                    return false;
                                }
                                true
                            });
                            warn!(dropped = before - batch.len(), "dropped records of blocking invocations");
                        }
                        s.recorder.pending = batch;
                    }
                }
            }
        });
    }
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
