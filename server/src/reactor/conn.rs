//! One client connection: its buffers and its place in the request cycle.

use std::io::{self, Read, Write};
use std::time::Instant;

use mio::net::TcpStream;

/// Identifies a connection across asynchronous work: the slab key may be
/// reused after a close, the generation never is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnRef {
    pub key: usize,
    pub gen: u64,
}

/// Most unsent response bytes before the connection stops taking requests.
pub const MAX_PENDING_OUT: usize = 1024 * 1024;

/// A client connection.
pub struct Conn {
    pub sock: TcpStream,
    pub gen: u64,
    pub inbuf: Vec<u8>,
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
}

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
    pub fn new(sock: TcpStream, gen: u64) -> Self {
        Self {
            sock,
            gen,
            inbuf: Vec::new(),
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
        }
    }

    /// Reads until `WouldBlock`, end of stream, or `cap` buffered bytes.
    /// Edge-triggered readiness: the caller must call again after `Capped`
    /// once the buffer has room.
    pub fn read(&mut self, cap: usize) -> ReadOutcome {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if self.inbuf.len() >= cap {
                return ReadOutcome::Capped;
            }
            let want = chunk.len().min(cap - self.inbuf.len());
            match self.sock.read(&mut chunk[..want]) {
                Ok(0) => {
                    self.peer_closed = true;
                    return ReadOutcome::Drained;
                }
                Ok(n) => {
                    self.inbuf.extend_from_slice(&chunk[..n]);
                    self.last_active = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadOutcome::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return ReadOutcome::Failed,
            }
        }
    }

    /// Writes buffered output until done or `WouldBlock`. Returns false if
    /// the socket failed.
    pub fn flush(&mut self) -> bool {
        while self.out_pos < self.out.len() {
            match self.sock.write(&self.out[self.out_pos..]) {
                Ok(0) => return false,
                Ok(n) => {
                    self.out_pos += n;
                    self.last_active = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        self.out.clear();
        self.out_pos = 0;
        true
    }

    /// Unsent output bytes.
    pub fn pending_out(&self) -> usize {
        self.out.len() - self.out_pos
    }
}
