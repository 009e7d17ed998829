//! One client connection: its buffers and its place in the request cycle.

use std::io::{self, Read, Write};
use std::time::Instant;

use mio::net::TcpStream;

use super::{Parts, Side};

/// Most unsent response bytes before the connection stops taking requests.
pub const MAX_PENDING_OUT: usize = 1024 * 1024;

/// A refused request's connection after its answer (see
/// [`Conn::linger`]): what the client sends is read and dropped until it
/// stops, until `until`, or until `left` more bytes came, whichever is
/// first; then the connection is closed.
pub struct Linger {
    pub until: Instant,
    pub left: usize,
    /// The answer is written and the sending side shut down.
    pub shut: bool,
}

/// A client connection.
pub struct Conn {
    pub sock: TcpStream,
    pub gen: u64,
    /// The listener it came through.
    pub side: Side,
    /// Bytes read; those before `in_pos` are requests already taken.
    inbuf: Vec<u8>,
    in_pos: usize,
    pub out: Vec<u8>,
    pub out_pos: usize,
    /// A request is being served; later pipelined requests wait.
    pub busy: bool,
    /// The request being served was HEAD.
    pub head_only: bool,
    /// The request being served allows keep-alive.
    pub keep_alive: bool,
    /// Close once `out` is flushed.
    pub close_after: bool,
    /// The client shut down its sending side.
    pub peer_closed: bool,
    pub last_active: Instant,
    /// When the first byte of the request now arriving came in.
    pub request_started: Option<Instant>,
    pub sent_continue: bool,
    /// Serving stopped because the unsent output reached
    /// [`MAX_PENDING_OUT`]; it resumes once the output drains below it.
    pub stalled: bool,
    /// An event of this connection was handled since it was accepted, so
    /// `inbuf` holds what the client had sent by then.
    pub seen: bool,
    /// In the reactor's list of connections to drive on the next turn.
    pub queued: bool,
    /// Requests served in turn `served_turn` of the loop (see
    /// `REQUESTS_PER_TURN`).
    pub served: usize,
    pub served_turn: u64,
    /// The socket may hold unread bytes: set by every readable event,
    /// cleared once a read found it empty. Readiness is edge-triggered, so
    /// bytes that arrive later bring a new event; until then reading would
    /// only cost a system call that says `WouldBlock`.
    pub maybe_readable: bool,
    /// An event said the peer shut down its sending side (`EPOLLRDHUP`):
    /// reads continue until they see the end of the stream, since no new
    /// event will announce it.
    pub read_closed: bool,
    /// Refused: reading only to drop what the client still sends.
    pub linger: Option<Linger>,
    /// Since when output has been waiting to be sent without a pause (see
    /// `Settings::send_timeout`).
    pub out_since: Option<Instant>,
    /// Bytes of `Settings::request_memory` reserved for the request
    /// arriving (0: none; it fits in `Settings::head_room`).
    pub reserved: usize,
    /// The service admitted the request arriving on its head (see
    /// `Service::admit`).
    pub admitted: bool,
    /// Waiting for its reservation, in the reactor's list of such
    /// connections.
    pub starved: bool,
}

/// Capacity a buffer keeps once empty; a bigger one is freed, so that a
/// connection that once took or gave a big request does not hold its
/// memory for the rest of its life.
const BUFFER_KEEP: usize = 64 * 1024;

/// What a read did.
pub enum ReadOutcome {
    /// Drained the socket (`WouldBlock` or end of stream).
    Drained,
    /// Stopped at the buffer cap with data possibly left in the socket.
    Capped,
    /// The socket failed; close the connection.
    Failed,
}

impl Conn {
    pub fn new(sock: TcpStream, gen: u64, side: Side) -> Self {
        Self {
            sock,
            gen,
            side,
            inbuf: Vec::new(),
            in_pos: 0,
            out: Vec::new(),
            out_pos: 0,
            busy: false,
            head_only: false,
            keep_alive: true,
            close_after: false,
            peer_closed: false,
            last_active: Instant::now(),
            request_started: None,
            sent_continue: false,
            stalled: false,
            seen: false,
            maybe_readable: true,
            read_closed: false,
            queued: false,
            served: 0,
            served_turn: 0,
            linger: None,
            out_since: None,
            reserved: 0,
            admitted: false,
            starved: false,
        }
    }

    /// Reads until `WouldBlock`, end of stream, or `cap` buffered bytes.
    /// Edge-triggered readiness: the caller must call again after `Capped`
    /// once the buffer has room.
    /// Reads through `chunk`, a scratch buffer the reactor keeps (so that
    /// no read zeroes a fresh one).
    ///
    /// A read that returns less than it asked for has emptied the socket
    /// (TCP hands over everything it holds): it ends the loop without
    /// another call to learn `WouldBlock`, as nginx does, unless the peer
    /// closed its side (then the end of the stream is read too). `now`
    /// (the turn of the loop) becomes `last_active` if anything arrived.
    pub fn read(&mut self, cap: usize, chunk: &mut [u8], now: Instant) -> ReadOutcome {
        if !self.maybe_readable {
            return ReadOutcome::Drained;
        }
        // Move what is left to the front: once a read, not once a request
        // (a pipelined flood would make that quadratic).
        if self.in_pos > 0 {
            self.inbuf.drain(..self.in_pos);
            self.in_pos = 0;
        }
        loop {
            if self.inbuf.len() >= cap {
                return ReadOutcome::Capped;
            }
            let want = chunk.len().min(cap - self.inbuf.len());
            match self.sock.read(&mut chunk[..want]) {
                Ok(0) => {
                    self.peer_closed = true;
                    self.maybe_readable = false;
                    return ReadOutcome::Drained;
                }
                Ok(n) => {
                    self.inbuf.extend_from_slice(&chunk[..n]);
                    self.last_active = now;
                    if n < want && !self.read_closed {
                        self.maybe_readable = false;
                        return ReadOutcome::Drained;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.maybe_readable = false;
                    return ReadOutcome::Drained;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return ReadOutcome::Failed,
            }
        }
    }

    /// Writes buffered output until done or `WouldBlock`. Returns false if
    /// the socket failed. `now` becomes `last_active` if anything was
    /// written, and `out_since` if output is left waiting for the first
    /// time since the output was last all sent.
    #[inline]
    pub fn flush(&mut self, now: Instant) -> bool {
        while self.out_pos < self.out.len() {
            match self.sock.write(&self.out[self.out_pos..]) {
                Ok(0) => return false,
                Ok(n) => {
                    self.out_pos += n;
                    self.last_active = now;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.out_since.get_or_insert(now);
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        self.out_since = None;
        clear(&mut self.out);
        self.out_pos = 0;
        true
    }

    /// After the answer to a refused request (400, 408, 413, 431...): the
    /// client may still be sending the request, and a client that cannot
    /// finish sending never reads the answer (the kernel resets the
    /// connection if it is closed with unread bytes). So, as nginx's
    /// lingering close does, keep reading and dropping what comes, for at
    /// most `time` and `bytes`, and close when the client stops.
    pub fn linger(&mut self, now: Instant, time: std::time::Duration, bytes: usize) {
        self.discard_input();
        self.close_after = true;
        self.linger = Some(Linger { until: now + time, left: bytes, shut: false });
    }

    /// Reads and drops what the socket has while lingering. Returns false
    /// if the connection must close now: the byte allowance ran out, or the
    /// socket failed. (When the client closes its side, the connection
    /// closes once the answer is written.)
    pub fn drop_input(&mut self, chunk: &mut [u8]) -> bool {
        let Some(linger) = &mut self.linger else { return true };
        while self.maybe_readable {
            match self.sock.read(chunk) {
                Ok(0) => {
                    self.peer_closed = true;
                    self.maybe_readable = false;
                }
                Ok(n) => match linger.left.checked_sub(n) {
                    Some(left) => linger.left = left,
                    None => return false,
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.maybe_readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Appends the answer to the request this connection is busy with; it
    /// closes after the answer unless the request allowed keep-alive.
    #[inline]
    pub fn answer(&mut self, answer: &Parts<'_>) {
        self.busy = false;
        // A client that closed its sending side still gets the answers to
        // every request it sent (the reactor closes once they are written).
        answer.write_to(&mut self.out, self.keep_alive, self.head_only);
        if !self.keep_alive {
            self.close_after = true;
        }
    }

    /// The bytes read and not yet taken as requests.
    pub fn input(&self) -> &[u8] {
        &self.inbuf[self.in_pos..]
    }

    /// Takes the first `n` bytes of [`input`](Self::input) as used.
    pub fn consume(&mut self, n: usize) {
        self.in_pos = (self.in_pos + n).min(self.inbuf.len());
        if self.in_pos == self.inbuf.len() {
            clear(&mut self.inbuf);
            self.in_pos = 0;
        }
    }

    /// Drops everything read and not yet taken.
    pub fn discard_input(&mut self) {
        clear(&mut self.inbuf);
        self.in_pos = 0;
    }

    /// Unsent output bytes.
    pub fn pending_out(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Whether closing the connection now loses nothing: the reactor has
    /// looked at it since it was accepted, no request is being served or
    /// arriving, and every response has been written. An HTTP/1.1 server
    /// may close such a keep-alive connection at any time. A lingering
    /// connection whose answer is out counts too: it only drops what its
    /// client still sends.
    pub fn is_idle(&self) -> bool {
        let answered = !self.busy && !self.close_after && self.input().is_empty() && self.pending_out() == 0;
        self.seen && (answered || self.linger.as_ref().is_some_and(|l| l.shut))
    }
}

/// Empties a buffer, freeing it if it grew past [`BUFFER_KEEP`].
fn clear(buf: &mut Vec<u8>) {
    if buf.capacity() > BUFFER_KEEP {
        *buf = Vec::new();
    } else {
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> (Conn, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        (Conn::new(TcpStream::from_std(server), 1, Side::Api), client)
    }

    #[test]
    fn idle_means_nothing_in_progress_in_either_direction() {
        let (mut c, _client) = conn();
        assert!(!c.is_idle(), "a request may wait unread in the socket");
        c.seen = true;
        assert!(c.is_idle());
        c.inbuf.extend_from_slice(b"GET /");
        assert!(!c.is_idle(), "a request is arriving");
        c.consume(5);
        c.busy = true;
        assert!(!c.is_idle(), "a request is being served");
        c.busy = false;
        c.out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        assert!(!c.is_idle(), "a response is unsent");
        assert!(c.flush(Instant::now()));
        assert!(c.is_idle());
        c.close_after = true;
        assert!(!c.is_idle(), "closing after its last response");
        c.linger(Instant::now(), std::time::Duration::from_secs(5), 1 << 20);
        assert!(!c.is_idle(), "refused, its answer not yet out");
        c.linger.as_mut().unwrap().shut = true;
        assert!(c.is_idle(), "refused and answered: it only drops what comes");
    }

    #[test]
    fn input_is_consumed_without_moving_until_the_next_read() {
        use std::io::Write;
        let (mut c, mut client) = conn();
        client.write_all(b"GET /a HTTP/1.1\r\n\r\nGET /b").unwrap();
        client.flush().unwrap();
        let mut got = 0;
        for _ in 0..1000 {
            c.maybe_readable = true; // as a readable event says
            c.read(1 << 20, &mut [0u8; 16 * 1024], Instant::now());
            got = c.input().len();
            if got == 25 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(got, 25);
        c.consume(19);
        assert_eq!(c.input(), b"GET /b");
        assert_eq!((c.in_pos, c.inbuf.len()), (19, 25), "consume does not move the bytes");
        client.write_all(b" HTTP/1.1\r\n\r\n").unwrap();
        for _ in 0..1000 {
            c.maybe_readable = true;
            c.read(1 << 20, &mut [0u8; 16 * 1024], Instant::now());
            if c.input().len() == 19 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(c.input(), b"GET /b HTTP/1.1\r\n\r\n");
        assert_eq!(c.in_pos, 0, "the next read moves what is left to the front");
        c.consume(19);
        assert!(c.input().is_empty() && c.inbuf.is_empty());
        c.inbuf.extend_from_slice(b"x");
        c.discard_input();
        assert!(c.input().is_empty());
    }

    #[test]
    fn a_short_read_ends_reading_without_another_call() {
        use std::io::Write;
        let (mut c, mut client) = conn();
        client.write_all(b"GET /a HTTP/1.1\r\n\r\n").unwrap();
        for _ in 0..1000 {
            c.maybe_readable = true;
            c.read(1 << 20, &mut [0u8; 16 * 1024], Instant::now());
            if !c.input().is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(c.input(), b"GET /a HTTP/1.1\r\n\r\n");
        assert!(!c.maybe_readable, "a short read drained the socket");
        // Until an event says there is more, reads do not touch the socket.
        client.write_all(b"more").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        c.read(1 << 20, &mut [0u8; 16 * 1024], Instant::now());
        assert_eq!(c.input().len(), 19);
        // With the peer's side closed, reading goes on to the end of the stream.
        drop(client);
        std::thread::sleep(std::time::Duration::from_millis(20));
        c.maybe_readable = true;
        c.read_closed = true;
        c.read(1 << 20, &mut [0u8; 16 * 1024], Instant::now());
        assert!(c.peer_closed);
        assert!(c.input().ends_with(b"more"));
    }
}
