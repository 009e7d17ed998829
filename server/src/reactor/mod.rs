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

use crate::config::Config;
use crate::exec::Executor;
use crate::http::{self, ParseLimits, Parsed, Response};
use crate::plugin::PluginHost;
use crate::pool::Pool;

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
const TICK: Duration = Duration::from_millis(100);

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
}

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
    pub(crate) conns: Slab<Conn>,
    next_gen: u64,
    pub(crate) pool: Pool<Server>,
    /// Plugin calls: a pool of its own that grows with the calls waiting,
    /// so slow plugins never hold up store calls.
    pub(crate) plugin_pool: Pool<Server>,
    pub(crate) plugins: Arc<PluginHost>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) exec: Executor,
    pub(crate) waiters: HashMap<String, Vec<Waiter>>,
    /// Finished asynchronous invocations whose records are not yet stored.
    pub(crate) recent_done: HashMap<String, InvocationRecord>,
    pub(crate) recorder: Recorder,
    pub(crate) dispatch: Dispatch,
    pub(crate) owner: String,
    parse_limits: ParseLimits,
    shutdown: Arc<AtomicBool>,
    last_tick: Instant,
    last_claim: Instant,
    last_purge: Instant,
}

/// Current time in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Server {
    /// Binds the listener and starts the pool. `shutdown` stops [`run`](Self::run).
    pub fn bind(
        cfg: Arc<Config>,
        store: Arc<dyn Store>,
        plugins: Arc<PluginHost>,
        shutdown: Arc<AtomicBool>,
    ) -> io::Result<Self> {
        let addr: SocketAddr = format!("{}:{}", cfg.server.host, cfg.server.port).parse().or_else(|_| {
            use std::net::ToSocketAddrs;
            (cfg.server.host.as_str(), cfg.server.port)
                .to_socket_addrs()?
                .next()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "host resolves to no address"))
        })?;
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(addr)?;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
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
        };
        let now = Instant::now();
        Ok(Self {
            exec: Executor::default(),
            cfg,
            poll,
            listener,
            conns: Slab::new(),
            next_gen: 0,
            pool,
            plugin_pool,
            plugins,
            store,
            waiters: HashMap::new(),
            recent_done: HashMap::new(),
            recorder: Recorder::default(),
            dispatch: Dispatch::default(),
            owner: uuid::Uuid::new_v4().to_string(),
            parse_limits,
            shutdown,
            last_tick: now,
            last_claim: now,
            last_purge: now - Duration::from_secs(3600),
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
        while !self.shutdown.load(Ordering::Relaxed) {
            let timeout = if self.exec.has_runnable() {
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
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    Token(key) => {
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.drive(key);
                        }
                        if ev.is_writable() {
                            self.on_writable(key);
                        }
                    }
                }
            }
            self.run_completions();
            self.expire_parked(Instant::now());
            self.run_slices();
            self.run_completions();
            self.flush_records();
            if self.last_tick.elapsed() >= TICK {
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

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut sock, peer)) => {
                    if self.conns.len() >= self.cfg.server.max_connections {
                        warn!(%peer, limit = self.cfg.server.max_connections, "connection limit reached; refusing connection");
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
                    entry.insert(Conn::new(sock, self.next_gen));
                    debug!(%peer, key, "accepted");
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving the
                    // connections we have; the listener stays registered.
                    error!("accept failed: {e}");
                    return;
                }
            }
        }
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
            let outcome = conn.read(cap);
            if let ReadOutcome::Failed = outcome {
                self.close(key);
                return;
            }
            let before = self.conns.get(key).map(|c| c.inbuf.len()).unwrap_or(0);
            self.pump(key);
            let Some(conn) = self.conns.get(key) else { return };
            let progressed = conn.inbuf.len() < before;
            if !matches!(outcome, ReadOutcome::Capped) || !progressed || conn.busy {
                break;
            }
        }
        self.after_io(key);
    }

    fn on_writable(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        let was_backed_up = conn.pending_out() >= MAX_PENDING_OUT;
        if !conn.flush() {
            self.close(key);
            return;
        }
        if was_backed_up {
            self.drive(key);
        } else {
            self.after_io(key);
        }
    }

    /// Serves complete requests in the buffer, one at a time, in order.
    fn pump(&mut self, key: usize) {
        loop {
            let limits = self.parse_limits;
            let Some(conn) = self.conns.get_mut(key) else { return };
            if conn.busy || conn.close_after || conn.pending_out() >= MAX_PENDING_OUT {
                break;
            }
            if conn.inbuf.is_empty() {
                conn.request_started = None;
                break;
            }
            match http::parse(&conn.inbuf, &limits) {
                Ok(Parsed::Partial { expect_continue }) => {
                    conn.request_started.get_or_insert_with(Instant::now);
                    if expect_continue && !conn.sent_continue {
                        conn.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                        conn.sent_continue = true;
                    }
                    break;
                }
                Ok(Parsed::Complete(req, used)) => {
                    conn.inbuf.drain(..used);
                    conn.busy = true;
                    conn.sent_continue = false;
                    conn.request_started = None;
                    conn.keep_alive = req.keep_alive;
                    conn.head_only = req.method == http::Method::Head;
                    let cref = ConnRef { key, gen: conn.gen };
                    if let Some(resp) = self.handle(cref, req) {
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
    }

    fn write_response(&mut self, key: usize, resp: Response) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        conn.busy = false;
        let keep = conn.keep_alive && !conn.peer_closed;
        resp.write_to(&mut conn.out, keep, conn.head_only);
        if !keep {
            conn.close_after = true;
        }
    }

    /// Delivers the response of an asynchronous request, if its connection
    /// is still there, and serves the requests that waited behind it.
    pub(crate) fn complete(&mut self, cref: ConnRef, resp: Response) {
        match self.conns.get(cref.key) {
            Some(c) if c.gen == cref.gen && c.busy => {}
            _ => return,
        }
        self.write_response(cref.key, resp);
        self.drive(cref.key);
    }

    /// Flushes output and closes the connection when it is finished.
    fn after_io(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        if !conn.flush() {
            self.close(key);
            return;
        }
        let done_writing = conn.pending_out() == 0;
        if (conn.close_after && done_writing) || (conn.peer_closed && !conn.busy && done_writing) {
            self.close(key);
        }
    }

    fn close(&mut self, key: usize) {
        if self.conns.contains(key) {
            let mut conn = self.conns.remove(key);
            let _ = self.poll.registry().deregister(&mut conn.sock);
            debug!(key, "closed");
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
            if let Some(started) = conn.request_started {
                if now.duration_since(started) > request_timeout {
                    too_slow.push(key);
                }
            } else if conn.pending_out() == 0 && now.duration_since(conn.last_active) > idle {
                expired.push(key);
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
                conn.inbuf.clear();
            }
            self.write_response(key, Response::error(408, "bad_request", "request not received in time"));
            self.after_io(key);
        }
        self.expire_waiters(now);
        if now.duration_since(self.last_claim) >= Duration::from_secs(1) {
            self.last_claim = now;
            self.kick_dispatch();
        }
        if now.duration_since(self.last_purge) >= Duration::from_secs(60) {
            self.last_purge = now;
            self.purge();
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
        let batch = std::mem::take(&mut self.recorder.pending);
        self.recorder.in_flight = true;
        let store = Arc::clone(&self.store);
        self.pool.spawn(move || {
            let r = store.put_invocations(&batch);
            move |s: &mut Server| {
                s.recorder.in_flight = false;
                match r {
                    Ok(()) => {
                        for rec in &batch {
                            s.recent_done.remove(&rec.id);
                        }
                    }
                    Err(e) => {
                        error!(records = batch.len(), "cannot store invocation records, will retry: {e}");
                        let mut batch = batch;
                        batch.append(&mut s.recorder.pending);
                        s.recorder.pending = batch;
                    }
                }
            }
        });
    }
}
