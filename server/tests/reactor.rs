//! The I/O layer on its own: a real [`Reactor`] on 127.0.0.1 serving a
//! fake [`Service`] that knows nothing of actions. It answers a request
//! with its path, at once, at the end of the turn (`/later/...`), after
//! 300 ms (`/slow/...`), or with a body of N bytes (`/big/N`), and counts
//! what the reactor asks of it.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{connect, wait_until, FloodWriter, ResponseReader};
use slserver::http::{ParseLimits, Request, Response};
use slserver::reactor::{LINGER_BYTES, LINGER_TIME, MAX_PENDING_OUT, REQUESTS_PER_TURN};
use slserver::{ConnRef, Outbox, Reactor, Service, Settings, Side, Wake};

/// What the fake service saw.
#[derive(Default)]
struct Stats {
    calls: AtomicUsize,
    /// The most requests of one connection in one turn of the loop.
    most_in_a_turn: AtomicUsize,
}

struct Fake {
    outbox: Outbox,
    /// Answers to give at the end of a turn once due: (due, to, body).
    later: Vec<(Instant, ConnRef, String)>,
    this_turn: HashMap<usize, usize>,
    stats: Arc<Stats>,
}

impl Service for Fake {
    fn call(&mut self, conn: ConnRef, side: Side, req: Request) {
        assert_eq!(side, Side::Api);
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        let n = self.this_turn.entry(conn.key).or_default();
        *n += 1;
        self.stats.most_in_a_turn.fetch_max(*n, Ordering::Relaxed);
        let path = req.path;
        if path.starts_with("/later/") {
            self.later.push((Instant::now(), conn, path));
        } else if path.starts_with("/slow/") {
            self.later.push((Instant::now() + Duration::from_millis(300), conn, path));
        } else if let Some(n) = path.strip_prefix("/big/") {
            let body: Vec<u8> = (0..n.parse::<usize>().unwrap()).map(|i| b'a' + (i % 26) as u8).collect();
            self.outbox.respond(conn, Response::text(200, body));
        } else {
            self.outbox.respond(conn, Response::text(200, path));
        }
    }

    fn outbox(&mut self) -> &mut Outbox {
        &mut self.outbox
    }

    fn begin_turn(&mut self, _now: Instant) {
        self.this_turn.clear();
    }

    fn end_turn(&mut self, now: Instant) {
        let (due, wait): (Vec<_>, Vec<_>) = self.later.drain(..).partition(|(at, _, _)| *at <= now);
        self.later = wait;
        for (_, to, body) in due {
            self.outbox.respond(to, Response::text(200, body));
        }
    }

    fn wake(&self) -> Wake {
        match self.later.iter().map(|(at, _, _)| *at).min() {
            Some(at) => Wake::At(at),
            None => Wake::Idle,
        }
    }
}

/// A reactor serving a [`Fake`] on a thread of its own.
struct Running {
    addr: SocketAddr,
    stats: Arc<Stats>,
    shutdown: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn settings() -> Settings {
    let api = ParseLimits::default();
    Settings {
        max_connections: 1024,
        idle_timeout: Duration::from_secs(60),
        request_timeout: Duration::from_secs(10),
        send_timeout: Duration::from_secs(60),
        request_memory: 64 << 20,
        response_memory: 256 << 20,
        api,
        web: api,
    }
}

fn start(settings: Settings) -> Running {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(Stats::default());
    let shutdown = Arc::new(AtomicBool::new(false));
    let (stats2, shutdown2) = (Arc::clone(&stats), Arc::clone(&shutdown));
    let thread = std::thread::spawn(move || {
        let mut reactor = Reactor::new(listener, None, settings).unwrap();
        let mut fake = Fake { outbox: Outbox::default(), later: Vec::new(), this_turn: HashMap::new(), stats: stats2 };
        reactor.run(&mut fake, &shutdown2).unwrap();
    });
    Running { addr, stats, shutdown, thread: Some(thread) }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
}

/// Writes `n` pipelined requests for `path(i)` on one connection from a
/// thread, reads the answers on this one, and checks each is its path, in
/// order.
fn flood(r: &Running, n: usize, path: impl Fn(usize) -> String + Send + Clone + 'static) {
    let c = connect(r.addr);
    let p = path.clone();
    let writer = FloodWriter::spawn(&c, n, move |i| get(&p(i)));
    let mut answers = ResponseReader::new(c);
    for i in 0..n {
        let resp = answers.read_one().unwrap_or_else(|| panic!("answer {i} never came"));
        assert_eq!((resp.status, resp.text()), (200, path(i)), "answer {i}");
    }
    writer.join().unwrap();
}

/// 100,000 pipelined requests answered at once: every answer in order, and
/// never more than `REQUESTS_PER_TURN` of the connection's requests in one
/// turn of the loop, however often the connection comes up in it.
#[test]
fn pipelined_requests_are_answered_in_order_a_bounded_number_a_turn() {
    let r = start(settings());
    let n = 100_000;
    flood(&r, n, |i| format!("/now/{i}"));
    assert_eq!(r.stats.calls.load(Ordering::Relaxed), n);
    let most = r.stats.most_in_a_turn.load(Ordering::Relaxed);
    assert_eq!(most, REQUESTS_PER_TURN, "the most requests of one connection in one turn");
}

/// Pipelined requests of which every third is answered only at the end of
/// the turn (the connection waits for it meanwhile): in order all the same.
#[test]
fn answers_that_come_later_keep_their_place() {
    let r = start(settings());
    let n = 30_000;
    flood(&r, n, |i| if i % 3 == 0 { format!("/later/{i}") } else { format!("/now/{i}") });
    assert_eq!(r.stats.calls.load(Ordering::Relaxed), n);
}

/// A client that sends requests for 64 KiB answers and never reads: once
/// about `MAX_PENDING_OUT` of answers wait unsent, the reactor takes no
/// more of its requests; when it reads, every answer comes, in order.
#[test]
fn a_client_that_does_not_read_is_held_back_then_served_in_full() {
    let r = start(settings());
    let n = 2_000; // 128 MB of answers
    let c = connect(r.addr);
    let writer = FloodWriter::spawn(&c, n, |_| get("/big/65536"));
    let mut last = usize::MAX;
    let steady = wait_until(Duration::from_secs(20), || {
        let now = r.stats.calls.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(300));
        std::mem::replace(&mut last, now) == now
    });
    let served = r.stats.calls.load(Ordering::Relaxed);
    assert!(steady && served < n, "the reactor kept taking requests: {served}");
    // What is held: 1 MiB of output plus one answer, and what the kernel's
    // socket buffers took (a few MB on loopback).
    let held = served * 65536;
    eprintln!("{served} requests taken while the answers were not read ({held} bytes of answers)");
    assert!(held < MAX_PENDING_OUT + 32 * 1024 * 1024, "{held} bytes of answers held");
    let mut answers = ResponseReader::new(c);
    for i in 0..n {
        let resp = answers.read_one().unwrap_or_else(|| panic!("answer {i} never came"));
        assert_eq!((resp.status, resp.body.len()), (200, 65536), "answer {i}");
    }
    writer.join().unwrap();
}

/// A 20 MB answer to a client that reads it a little at a time comes out
/// whole, over many partial writes.
#[test]
fn a_big_answer_is_written_in_full_over_partial_writes() {
    let r = start(settings());
    let n = 20_000_000;
    let mut c = connect(r.addr);
    c.write_all(get(&format!("/big/{n}")).as_bytes()).unwrap();
    c.write_all(b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 4096];
    // Slowly at first, so that the socket fills and writes come back short.
    for _ in 0..50 {
        let k = c.read(&mut chunk).unwrap();
        got.extend_from_slice(&chunk[..k]);
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut answers = ResponseReader::new(c);
    let mut rest = Vec::new();
    answers.stream().set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    answers.stream().read_to_end(&mut rest).ok();
    got.extend_from_slice(&rest);
    let (big, used) = common::parse_response(&got).expect("the whole answer");
    assert_eq!(big.body.len(), n);
    assert!(big.body.iter().enumerate().all(|(i, b)| *b == b'a' + (i % 26) as u8), "the body came out of order");
    let (after, _) = common::parse_response(&got[used..]).expect("the answer after it");
    assert_eq!(after.text(), "/after");
}

/// A request whose head stops half-way gets 408 once `request_timeout`
/// passed, and its connection is closed; the service never hears of it.
#[test]
fn a_request_that_does_not_arrive_in_time_gets_408() {
    let r = start(Settings { request_timeout: Duration::from_millis(300), ..settings() });
    let mut c = connect(r.addr);
    c.write_all(b"GET /slowloris HTTP/1.1\r\nHost: x\r\n").unwrap();
    let start = Instant::now();
    let mut answers = ResponseReader::new(c);
    let resp = answers.read_one().expect("a 408");
    assert_eq!(resp.status, 408, "{}", resp.text());
    assert!(resp.text().contains("not received in time"));
    assert!(start.elapsed() < Duration::from_secs(2), "after {:?}", start.elapsed());
    assert!(answers.read_one().is_none(), "the connection is closed after the 408");
    assert_eq!(r.stats.calls.load(Ordering::Relaxed), 0);
}

/// A 3 MiB body over a 1 MiB limit: the reactor answers 413 as soon as the
/// head says so, then reads and drops the body the client is still
/// sending, so the client's writes all succeed and it reads the answer
/// (not a reset), then the end of the stream.
#[test]
fn a_body_over_the_limit_gets_413_while_the_client_is_still_sending() {
    let r = start(settings());
    for _ in 0..5 {
        let mut c = connect(r.addr);
        let body = vec![b'x'; 3 << 20];
        let head = format!("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len());
        c.write_all(head.as_bytes()).unwrap();
        c.write_all(&body).expect("the server drops the body rather than resetting the connection");
        let mut answers = ResponseReader::new(c);
        let resp = answers.read_one().expect("the 413");
        assert_eq!(resp.status, 413);
        let err: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        assert!(err["error"]["message"].as_str().unwrap().contains("1048576"), "{err}");
        assert!(answers.read_one().is_none(), "then the end of the stream");
    }
    assert_eq!(r.stats.calls.load(Ordering::Relaxed), 0);
}

/// An answer for a connection that closed meanwhile is dropped, even when
/// a new connection took its place (the same slot, a new generation).
#[test]
fn an_answer_for_a_closed_connection_never_reaches_another() {
    let r = start(settings());
    for i in 0..8 {
        let mut gone = connect(r.addr);
        gone.write_all(get(&format!("/slow/{i}")).as_bytes()).unwrap();
        assert!(wait_until(Duration::from_secs(2), || r.stats.calls.load(Ordering::Relaxed) > i * 2));
        drop(gone);
        std::thread::sleep(Duration::from_millis(20));
        let mut c = connect(r.addr);
        c.write_all(get(&format!("/slow/next{i}")).as_bytes()).unwrap();
        let mut answers = ResponseReader::new(c);
        assert_eq!(answers.read_one().unwrap().text(), format!("/slow/next{i}"));
    }
}

/// Thousands of connections, each pipelining a few requests answered at
/// the end of the turn: every connection gets its own answers.
#[test]
fn many_connections_each_get_their_own_answers() {
    let r = start(settings());
    let conns: Vec<TcpStream> = (0..500)
        .map(|i| {
            let mut c = connect(r.addr);
            let reqs: String = (0..10).map(|j| get(&format!("/later/{i}/{j}"))).collect();
            c.write_all(reqs.as_bytes()).unwrap();
            c
        })
        .collect();
    for (i, c) in conns.into_iter().enumerate() {
        let mut answers = ResponseReader::new(c);
        for j in 0..10 {
            assert_eq!(answers.read_one().unwrap().text(), format!("/later/{i}/{j}"));
        }
    }
}

/// After a refusal the reactor reads and drops at most `LINGER_BYTES`: a
/// client that goes on sending past it is cut off.
#[test]
fn a_refused_client_that_never_stops_sending_is_cut_off() {
    let r = start(settings());
    let mut c = connect(r.addr);
    c.write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n").unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let mut sent = 0;
    let start = Instant::now();
    while c.write_all(&chunk).is_ok() {
        sent += chunk.len();
        assert!(start.elapsed() < Duration::from_secs(20), "still accepted after {sent} bytes");
    }
    eprintln!("cut off after {sent} bytes");
    // What the reactor dropped, plus what the sockets' buffers held.
    assert!(sent >= LINGER_BYTES, "cut off after {sent} bytes, before the allowance");
    assert!(sent < LINGER_BYTES + (32 << 20), "{sent} bytes");
}

/// After a refusal a client that stops sending but keeps the connection
/// open is closed `LINGER_TIME` later.
#[test]
fn a_refused_client_that_stops_sending_is_closed_after_the_linger_time() {
    let r = start(settings());
    let mut c = connect(r.addr);
    c.write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n").unwrap();
    c.write_all(&vec![b'x'; 100_000]).unwrap();
    let start = Instant::now();
    let mut answers = ResponseReader::new(c);
    assert_eq!(answers.read_one().expect("the 413").status, 413);
    // The end of the stream comes at once (the server shut its side down);
    // the close is seen by a write after the linger time.
    assert!(answers.read_one().is_none());
    let c = answers.stream();
    let closed = wait_until(Duration::from_secs(15), || c.write_all(&[b'x'; 1024]).is_err());
    let took = start.elapsed();
    assert!(closed, "still open after {took:?}");
    assert!(took >= LINGER_TIME - Duration::from_millis(200), "closed after {took:?}");
    assert!(took < LINGER_TIME + Duration::from_secs(2), "closed after {took:?}");
}

/// Connections lingering after a refusal do not keep new clients out: at
/// the connection limit they make room as idle ones do.
#[test]
fn lingering_connections_make_room_at_the_connection_limit() {
    let r = start(Settings { max_connections: 10, request_timeout: Duration::from_millis(200), ..settings() });
    let slow: Vec<TcpStream> = (0..10)
        .map(|_| {
            let mut c = connect(r.addr);
            c.write_all(b"GET /never HTTP/1.1\r\nHost: x\r\n").unwrap();
            c
        })
        .collect();
    // Each gets its 408 and lingers (for up to 5 s), holding its slot.
    for c in &slow {
        let mut answers = ResponseReader::new(c.try_clone().unwrap());
        assert_eq!(answers.read_one().expect("a 408").status, 408);
    }
    let mut c = connect(r.addr);
    c.write_all(get("/now").as_bytes()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut answers = ResponseReader::new(c);
    assert_eq!(answers.read_one().expect("served while 10 connections linger").text(), "/now");
}
