//! nx-27017 through `Mongo::start_local`: it listens, stops, restarts on the
//! same port, and does not outlive the test process.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sl_testkit::Mongo;

fn port(m: &Mongo) -> u16 {
    let port = m.uri().strip_prefix("mongodb://127.0.0.1:").expect("a local uri");
    port.parse().expect("a port")
}

fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)).is_ok()
}

/// A legacy OP_QUERY `isMaster`: every MongoDB-protocol server answers it,
/// so it proves that a MongoDB speaks on the port (no driver needed here).
fn is_master(port: u16) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&0i32.to_le_bytes()); // flags
    body.extend_from_slice(b"admin.$cmd\0");
    body.extend_from_slice(&0i32.to_le_bytes()); // skip
    body.extend_from_slice(&(-1i32).to_le_bytes()); // return one
                                                    // {isMaster: 1}
    let mut doc = Vec::new();
    doc.push(0x10);
    doc.extend_from_slice(b"isMaster\0");
    doc.extend_from_slice(&1i32.to_le_bytes());
    doc.push(0);
    let doc_len = (doc.len() + 4) as i32;
    body.extend_from_slice(&doc_len.to_le_bytes());
    body.extend_from_slice(&doc);
    let mut msg = Vec::new();
    msg.extend_from_slice(&((16 + body.len()) as i32).to_le_bytes());
    msg.extend_from_slice(&1i32.to_le_bytes()); // request id
    msg.extend_from_slice(&0i32.to_le_bytes()); // response to
    msg.extend_from_slice(&2004i32.to_le_bytes()); // OP_QUERY
    msg.extend_from_slice(&body);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(&msg).expect("send isMaster");
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).expect("reply length");
    let mut reply = vec![0u8; i32::from_le_bytes(len) as usize - 4];
    stream.read_exact(&mut reply).expect("reply");
    reply
}

/// Whether the process runs (a zombie does not).
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_local_server_speaks_mongodb_stops_and_restarts_on_its_port() {
    let start = Instant::now();
    let mut m = Mongo::start_local();
    eprintln!("nx-27017 started in {:?}", start.elapsed());
    assert!(m.is_local());
    let port = port(&m);
    let reply = is_master(port);
    assert!(contains(&reply, b"maxWireVersion"), "isMaster reply: {reply:?}");
    assert!(m.output().contains("Listening on"), "{}", m.output());
    let pid = m.pid().expect("a running server");

    m.stop();
    assert_eq!(m.pid(), None);
    assert!(!running(pid), "the server process is gone");
    assert!(!accepts(port), "nothing listens after stop");
    m.stop(); // twice is fine

    let start = Instant::now();
    m.restart();
    eprintln!("nx-27017 restarted in {:?}", start.elapsed());
    assert_eq!(m.uri(), format!("mongodb://127.0.0.1:{port}"));
    assert!(contains(&is_master(port), b"maxWireVersion"));
    m.restart(); // restarting a running server restarts it
    assert!(accepts(port));
}

#[test]
fn two_servers_get_two_ports_and_dropping_one_kills_it() {
    let a = Mongo::start_local();
    let b = Mongo::start_local();
    assert_ne!(a.uri(), b.uri());
    assert_ne!(a.fresh_db(), b.fresh_db());
    let port_b = port(&b);
    drop(b);
    assert!(!accepts(port_b), "a dropped server is killed");
    assert!(accepts(port(&a)));
}

/// Helper run in a child process by the test below: starts a server, says
/// its PID and port, and exits without dropping it.
#[test]
fn helper_start_and_exit() {
    if std::env::var_os("SL_TESTKIT_HELPER").is_none() {
        return;
    }
    let m = Mongo::start_local();
    println!("server {} {}", m.pid().unwrap(), port(&m));
    std::io::stdout().flush().unwrap();
    std::process::exit(0);
}

#[test]
fn a_server_does_not_outlive_its_test_process() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["helper_start_and_exit", "--exact", "--nocapture", "--test-threads=1"])
        .env("SL_TESTKIT_HELPER", "1")
        .stderr(Stdio::inherit())
        .output()
        .expect("run the helper");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("server ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("{stdout}"));
    let (pid, port) = line.split_once(' ').unwrap();
    let port: u16 = port.parse().unwrap();
    let start = Instant::now();
    let pid: u32 = pid.parse().unwrap();
    while running(pid) || accepts(port) {
        assert!(start.elapsed() < Duration::from_secs(5), "nx-27017 {pid} outlived its test process");
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("the orphaned server ended {:?} after its test process", start.elapsed());
}
