//! The reactor: one thread's event loop over one `mio::Poll`, owning every
//! socket of its listeners. It knows connections, HTTP framing, timeouts
//! and back-pressure, and nothing of what requests mean: it is generic over
//! a [`Service`] (the application), hands it each complete request, and
//! writes the answers the service leaves in its [`Outbox`]. It never
//! blocks, and no call into the service comes back into the reactor.
//!
//! Each turn of the loop:
//! 1. wait for events (not at all if the service has runnable work or a
//!    connection is due to be served again);
//! 2. [`Service::begin_turn`];
//! 3. accept new clients, read readable sockets and serve the complete
//!    requests in them, write writable ones;
//! 4. [`Service::end_turn`] (the service's own work);
//! 5. serve again the connections that got an answer, or that stopped at
//!    their share of the turn with requests left;
//! 6. every 100 ms: close idle and lingering connections, answer slow
//!    requests with 408, [`Service::tick`].
//!
//! The outbox is drained after every call into the service. An answer to
//! the connection being served lets its next pipelined request be taken in
//! the same loop; an answer to another connection queues that connection
//! for step 5 (or the next turn). So serving a connection never nests, and
//! the per-turn bounds (at most [`REQUESTS_PER_TURN`] requests of a
//! connection, 128 accepts) hold as stated.
//!
//! A request refused at the HTTP level (400, 408, 413, 431...) gets its
//! answer and then a *lingering close*: what the client still sends is
//! read and dropped, for at most [`LINGER_TIME`] and [`LINGER_BYTES`], so
//! that a client still sending its body reads the answer instead of a
//! reset.

mod accept;
mod conn;
mod conn_ref;
mod conns;
mod outbox;
mod service;
mod settings;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};
use tracing::debug;

pub use conn::MAX_PENDING_OUT;
pub use conn_ref::{ConnRef, Side};
pub use outbox::{json_within, Outbox, Parts};
pub use service::{Service, Wake};
pub use settings::Settings;

use accept::{Acceptor, API_TOKEN, WEB_TOKEN};
use conn::ReadOutcome;
use conns::Conns;

use crate::http::{self, Parsed, Response};
use crate::metrics::ReactorMetrics;

const WAKER: Token = Token(usize::MAX - 2);
/// How often timeouts are checked and [`Service::tick`] runs.
const TICK: Duration = Duration::from_millis(100);
/// Bytes read from a socket per `read` call.
const READ_CHUNK: usize = 16 * 1024;
/// Most requests served from one connection per turn of the loop, so that a
/// client pipelining thousands of requests cannot keep the reactor from the
/// others; the rest wait for the next turn.
pub const REQUESTS_PER_TURN: usize = 64;
/// Longest a refused request's connection is read (and what is read
/// dropped) after its answer, waiting for the client to stop sending.
pub const LINGER_TIME: Duration = Duration::from_secs(5);
/// Most bytes read and dropped after a refused request's answer.
pub const LINGER_BYTES: usize = 16 * 1024 * 1024;

/// One thread's event loop over its listeners and connections.
pub struct Reactor {
    poll: Poll,
    waker: Arc<Waker>,
    acceptor: Acceptor,
    conns: Conns,
    settings: Settings,
    /// `settings.head_room()`, asked for every read.
    head_room: usize,
    /// Where sockets are read into before their bytes join a connection's
    /// buffer: zeroed once, not once a read.
    read_chunk: Box<[u8]>,
    /// Connections to serve again in this turn (step 5) or the next, which
    /// no socket event will announce: they got an answer, served their
    /// share of a turn with requests left, or their output drained below
    /// the cap.
    ready: Vec<usize>,
    /// When the current turn of the loop began (after the poll returned):
    /// the time connections were last active, to a turn's precision.
    turn: Instant,
    /// Counts the turns of the loop.
    turn_no: u64,
    /// Bytes of request memory reserved, over all connections.
    reserved: usize,
    /// A reservation was released since starved connections were last
    /// served again.
    released: bool,
    /// Bytes of output waiting to be sent, over all connections.
    out_total: usize,
    /// Connections waiting for a reservation of request memory.
    starved: Vec<usize>,
    last_tick: Instant,
    /// What this reactor counts (see [`crate::metrics`]), if metrics are on.
    metrics: Option<Arc<ReactorMetrics>>,
}

impl Reactor {
    /// A reactor accepting on `api` and, if given, `web` (both bound).
    pub fn new(api: std::net::TcpListener, web: Option<std::net::TcpListener>, settings: Settings) -> io::Result<Self> {
        let poll = Poll::new()?;
        let acceptor = Acceptor::new(api, web, settings.max_connections, poll.registry())?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let now = Instant::now();
        Ok(Self {
            poll,
            waker,
            acceptor,
            conns: Conns::default(),
            head_room: settings.head_room(),
            settings,
            read_chunk: vec![0u8; READ_CHUNK].into_boxed_slice(),
            ready: Vec::new(),
            turn: now,
            turn_no: 0,
            reserved: 0,
            released: false,
            out_total: 0,
            starved: Vec::new(),
            last_tick: now,
            metrics: None,
        })
    }

    /// Counts answers, connections and turns into `metrics` (a worker's
    /// part of the process's registry) from now on; a reactor counts
    /// nothing until then.
    pub fn set_metrics(&mut self, metrics: Arc<ReactorMetrics>) {
        self.metrics = Some(metrics);
    }

    /// The address the API listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.acceptor.local_addr()
    }

    /// A function that wakes the loop from any thread (for work finished
    /// elsewhere, such as a blocking pool's).
    pub fn waker(&self) -> Arc<dyn Fn() + Send + Sync> {
        let waker = Arc::clone(&self.waker);
        Arc::new(move || {
            let _ = waker.wake();
        })
    }

    /// Serves `service` until `shutdown` is set, then calls
    /// [`Service::stop`].
    pub fn run<S: Service>(&mut self, service: &mut S, shutdown: &AtomicBool) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        while !shutdown.load(Ordering::Relaxed) {
            let timeout = self.timeout(service.wake());
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.turn = Instant::now();
            self.turn_no += 1;
            service.begin_turn(self.turn);
            self.deliver(service, None);
            for ev in events.iter() {
                match ev.token() {
                    API_TOKEN => self.acceptor.accept(Side::Api, &mut self.conns, self.poll.registry()),
                    WEB_TOKEN => self.acceptor.accept(Side::Web, &mut self.conns, self.poll.registry()),
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
                            self.drive(service, key);
                        }
                        if ev.is_writable() {
                            self.on_writable(service, key);
                        }
                    }
                }
            }
            if std::mem::take(&mut self.acceptor.retry) {
                self.acceptor.accept(Side::Api, &mut self.conns, self.poll.registry());
                self.acceptor.accept(Side::Web, &mut self.conns, self.poll.registry());
            }
            service.end_turn(self.turn);
            self.deliver(service, None);
            if !self.starved.is_empty() {
                self.feed_starved();
            }
            if self.out_total > self.settings.response_memory {
                // Not the answers of this turn: their clients had no time
                // to read yet.
                self.close_slow_readers(Some(self.turn));
            }
            for key in std::mem::take(&mut self.ready) {
                if let Some(conn) = self.conns.get_mut(key) {
                    conn.queued = false;
                    self.drive(service, key);
                }
            }
            // The turn's clock: a tick comes at most one turn late.
            if self.turn.saturating_duration_since(self.last_tick) >= TICK {
                self.tick(service);
            }
            if let Some(m) = &self.metrics {
                m.connections.set(self.conns.len() as u64);
                m.turns.record_time(self.turn.elapsed());
            }
        }
        service.stop();
        Ok(())
    }

    /// How long the next poll may wait for events.
    fn timeout(&self, wake: Wake) -> Duration {
        if !self.ready.is_empty() || self.acceptor.retry {
            return Duration::ZERO;
        }
        match wake {
            Wake::Now => Duration::ZERO,
            Wake::At(t) => t.saturating_duration_since(Instant::now()).min(TICK),
            Wake::Idle => TICK,
        }
    }

    /// Writes the answers the service left in its outbox. `serving` is the
    /// connection being served, if any: its loop takes the next request
    /// itself; any other connection that got an answer is queued to be
    /// served again.
    fn deliver<S: Service>(&mut self, service: &mut S, serving: Option<usize>) {
        let outbox = service.outbox();
        if outbox.is_empty() {
            return;
        }
        let (conns, ready, out_total, metrics) = (&mut self.conns, &mut self.ready, &mut self.out_total, &self.metrics);
        outbox.drain(|to, answer| {
            // Gone, or no longer waiting (the answer is late): dropped.
            let Some(conn) = conns.get_ref(to).filter(|c| c.busy) else { return };
            let before = conn.pending_out();
            if let Some(m) = metrics {
                m.response(conn.side == Side::Web, answer.status());
            }
            conn.answer(&answer);
            *out_total += conn.pending_out() - before;
            if serving != Some(to.key) && !conn.queued {
                conn.queued = true;
                ready.push(to.key);
            }
        });
    }

    /// Reads what the socket has, serves complete requests, and repeats
    /// while the read stopped at the buffer cap and requests were consumed
    /// (or a reservation made room for more).
    fn drive<S: Service>(&mut self, service: &mut S, key: usize) {
        let head_room = self.head_room;
        loop {
            let Some(conn) = self.conns.get_mut(key) else { return };
            if conn.served_turn == self.turn_no && conn.served == REQUESTS_PER_TURN {
                // Served its share of this turn already: the rest next turn.
                self.revisit(key);
                return;
            }
            if conn.linger.is_some() {
                if !conn.drop_input(&mut self.read_chunk) {
                    self.close(key);
                    return;
                }
                break;
            }
            let cap = conn.reserved.max(head_room);
            let outcome = conn.read(cap, &mut self.read_chunk[..], self.turn);
            if let ReadOutcome::Failed = outcome {
                self.close(key);
                return;
            }
            let before = conn.input().len();
            let pumped = self.pump(service, key);
            let Some(conn) = self.conns.get(key) else { return };
            let progressed = conn.input().len() < before;
            match pumped {
                Pumped::Yielded => {
                    // Served its share of this turn: the rest next turn.
                    self.revisit(key);
                    break;
                }
                Pumped::Reserved => continue,
                Pumped::Stopped => {}
            }
            if !matches!(outcome, ReadOutcome::Capped) || !progressed || conn.busy {
                break;
            }
        }
        self.after_io(key);
    }

    /// Serves complete requests in the buffer, one at a time, in order, up
    /// to [`REQUESTS_PER_TURN`] of them in this turn of the loop (however
    /// often the connection is driven in it); reserves request memory for
    /// a big request whose head is in.
    fn pump<S: Service>(&mut self, service: &mut S, key: usize) -> Pumped {
        let turn = self.turn_no;
        loop {
            if self.out_total > self.settings.response_memory {
                // Before another answer adds to it (this connection may be
                // among those closed).
                self.close_slow_readers(None);
            }
            let Some(conn) = self.conns.get_mut(key) else { return Pumped::Stopped };
            if conn.served_turn != turn {
                (conn.served_turn, conn.served) = (turn, 0);
            }
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
            if conn.served == REQUESTS_PER_TURN {
                return Pumped::Yielded;
            }
            match http::parse(conn.input(), &self.settings.limits(conn.side)) {
                Ok(Parsed::Partial { expect_continue, need }) => {
                    conn.request_started.get_or_insert(self.turn);
                    if need.is_some() && !conn.admitted {
                        // The head is in, the body is not: may it come?
                        let limits = self.settings.limits(conn.side);
                        if let Some(head) = http::parse_head(conn.input(), limits.max_headers) {
                            if let Some(resp) = service.admit(conn.side, &head) {
                                self.refuse(key, resp);
                                break;
                            }
                        }
                        conn.admitted = true;
                    }
                    if let Some(need) = need.filter(|&n| n > self.head_room && conn.reserved == 0) {
                        if self.reserved + need > self.settings.request_memory {
                            // The worker's request memory is spoken for:
                            // the body waits (and so does `100 Continue`).
                            starve(conn, key, &mut self.starved);
                            break;
                        }
                        conn.reserved = need;
                        self.reserved += need;
                        return Pumped::Reserved;
                    }
                    if expect_continue && !conn.sent_continue {
                        let before = conn.out.len();
                        http::write_continue(&mut conn.out);
                        self.out_total += conn.out.len() - before;
                        conn.sent_continue = true;
                    }
                    break;
                }
                Ok(Parsed::Complete(req, used)) => {
                    conn.served += 1;
                    conn.consume(used);
                    conn.admitted = false;
                    if conn.reserved > 0 {
                        self.reserved -= std::mem::take(&mut conn.reserved);
                        self.released = true;
                    }
                    conn.busy = true;
                    conn.sent_continue = false;
                    conn.request_started = None;
                    conn.keep_alive = req.keep_alive;
                    conn.head_only = req.method == http::Method::Head;
                    let (to, side) = (ConnRef { key, gen: conn.gen }, conn.side);
                    service.call(to, side, req);
                    self.deliver(service, Some(key));
                }
                Err(e) => {
                    debug!(key, status = e.status, "bad request: {}", e.message);
                    self.refuse(key, Response::error(e.status, "bad_request", &e.message));
                    break;
                }
            }
        }
        Pumped::Stopped
    }

    /// Answers a request the reactor itself refuses (without a body if it
    /// is a HEAD request, as far as it came), then lingers.
    fn refuse(&mut self, key: usize, resp: Response) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        conn.keep_alive = false;
        conn.head_only = http::is_head(conn.input());
        conn.busy = true;
        let output = conn.pending_out();
        if let Some(m) = &self.metrics {
            m.response(conn.side == Side::Web, resp.status);
        }
        conn.answer(&Parts::Response(&resp));
        conn.linger(self.turn, LINGER_TIME, LINGER_BYTES);
        self.out_total += conn.pending_out() - output;
        if conn.reserved > 0 {
            self.reserved -= std::mem::take(&mut conn.reserved);
            self.released = true;
        }
    }

    /// Flushes output and closes the connection when it is finished.
    fn after_io(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        let before = conn.pending_out();
        let flushed = conn.flush(self.turn);
        self.out_total -= before - conn.pending_out();
        if !flushed {
            self.close(key);
            return;
        }
        if conn.stalled && conn.pending_out() < MAX_PENDING_OUT && !conn.queued {
            // The socket took enough of the output that stopped this
            // connection; no event will say so, so serve it next turn.
            conn.queued = true;
            self.ready.push(key);
        }
        if conn.pending_out() > 0 {
            return;
        }
        if let Some(linger) = &mut conn.linger {
            // The answer is out: say so (the client reads it to the end of
            // the stream) and read on until the client stops.
            if !linger.shut {
                linger.shut = true;
                let _ = conn.sock.shutdown(std::net::Shutdown::Write);
            }
            if !conn.peer_closed {
                return;
            }
        }
        // A client that closed its side is done once its last request is
        // answered (and not before: some may wait for their turn).
        let peer_done = conn.peer_closed && !conn.busy && !conn.queued;
        if conn.close_after || peer_done {
            self.close(key);
        }
    }

    fn on_writable<S: Service>(&mut self, service: &mut S, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        let before = conn.pending_out();
        let flushed = conn.flush(self.turn);
        self.out_total -= before - conn.pending_out();
        if !flushed {
            self.close(key);
            return;
        }
        if conn.stalled && conn.pending_out() < MAX_PENDING_OUT {
            // Room again: serve the requests that waited (and read the
            // socket, which may have been left unread at the buffer cap).
            self.drive(service, key);
        } else {
            self.after_io(key);
        }
    }

    /// Serves `key` again on the next pass over the ready connections
    /// (once, however often this is called).
    fn revisit(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if !conn.queued {
                conn.queued = true;
                self.ready.push(key);
            }
        }
    }

    fn close(&mut self, key: usize) {
        let Some((reserved, output)) = self.conns.remove(key, self.poll.registry()) else { return };
        self.reserved -= reserved;
        self.released |= reserved > 0;
        self.out_total -= output;
        if self.acceptor.paused() {
            self.acceptor.retry = true;
        }
    }

    /// Serves again the connections that waited for request memory, once
    /// some was released.
    fn feed_starved(&mut self) {
        if !std::mem::take(&mut self.released) {
            return;
        }
        for key in std::mem::take(&mut self.starved) {
            if let Some(conn) = self.conns.get_mut(key).filter(|c| c.starved) {
                conn.starved = false;
                if !conn.queued {
                    conn.queued = true;
                    self.ready.push(key);
                }
            }
        }
    }

    /// Over `response_memory`: closes the connections whose clients have
    /// left output waiting longest, until the rest fits, sparing those
    /// whose output began to wait at `spare` (this turn).
    fn close_slow_readers(&mut self, spare: Option<Instant>) {
        let budget = self.settings.response_memory;
        for key in self.conns.slowest_readers(spare) {
            if self.out_total <= budget {
                break;
            }
            debug!(key, "closed: its client reads too slowly for the response memory");
            self.close(key);
        }
    }

    /// Timeouts of connections, paused accepting, then the service's tick.
    fn tick<S: Service>(&mut self, service: &mut S) {
        self.last_tick = self.turn;
        debug_assert_eq!((self.reserved, self.out_total), self.conns.held(), "the memory the reactor counts");
        let s = &self.settings;
        let expired = self.conns.expired(self.turn, s.idle_timeout, s.request_timeout, s.send_timeout);
        for key in expired.close {
            self.close(key);
        }
        for key in expired.too_slow {
            self.refuse(key, Response::error(408, "bad_request", "request not received in time"));
            if let Some(conn) = self.conns.get_mut(key) {
                conn.request_started = None;
            }
            self.after_io(key);
        }
        self.acceptor.tick(&mut self.conns, self.poll.registry());
        service.tick(self.turn);
        self.deliver(service, None);
        // Answers delivered in one turn over the bound were spared at its
        // end; their clients may never read enough to wake the loop again.
        if self.out_total > self.settings.response_memory {
            self.close_slow_readers(Some(self.turn));
        }
    }
}

/// What serving a connection's buffer ended with.
enum Pumped {
    /// Nothing more to do now (busy, waiting for bytes or room, closing).
    Stopped,
    /// It served its share of this turn with requests left.
    Yielded,
    /// A big request reserved its memory: read on.
    Reserved,
}

/// Puts `conn` (key `key`) in the list of connections waiting for memory,
/// once.
fn starve(conn: &mut conn::Conn, key: usize, starved: &mut Vec<usize>) {
    if !conn.starved {
        conn.starved = true;
        starved.push(key);
    }
}
