//! The real `slcli` against a hostile server: a `TcpListener` in the test
//! that answers with what no honest slserver sends (bodies without end,
//! millions of rows, escape sequences). slcli must stop at its bound with a
//! clear error, keep its memory small, and print nothing raw.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SLCLI: &str = env!("CARGO_BIN_EXE_slcli");

/// A server on a free port of 127.0.0.1 that answers every request with
/// `answer(request line and body, stream)`, one thread per connection, for
/// the rest of the test process. Returns its URL.
fn hostile(answer: impl Fn(&str, &mut TcpStream) + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let answer = Arc::clone(&answer);
            std::thread::spawn(move || {
                let Some(line) = read_request(&mut stream) else { return };
                answer(&line, &mut stream);
            });
        }
    });
    url
}

/// Reads a request's head and body; returns its request line, a space and its body.
fn read_request(stream: &mut TcpStream) -> Option<String> {
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(format!("{} {}", line.trim_end(), String::from_utf8_lossy(&body)))
}

/// Writes a chunked answer: `[`, then `0,` forever in 64 KiB chunks (until
/// the client goes away or `max` bytes are out), then `0]`.
fn endless_zeros(stream: &mut TcpStream, max: usize) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    let chunk = "0,".repeat(32 * 1024);
    let mut out = format!("{head}1\r\n[\r\n").into_bytes();
    let mut sent = 0;
    while sent < max {
        out.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
        if stream.write_all(&out).is_err() {
            return;
        }
        out.clear();
        sent += chunk.len();
    }
    let _ = stream.write_all(b"2\r\n0]\r\n0\r\n\r\n");
}

/// A whole answer with a `Content-Length`.
fn answer(stream: &mut TcpStream, status: u16, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status} Hostile\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body));
}

/// A JSON array of `n` copies of `element`.
fn array_of(n: usize, element: &str) -> Arc<Vec<u8>> {
    let mut body = Vec::with_capacity(n * (element.len() + 1) + 2);
    body.push(b'[');
    for i in 0..n {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(element.as_bytes());
    }
    body.push(b']');
    Arc::new(body)
}

/// How a run of slcli went.
struct Run {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
    /// Lines on stdout (counted, for outputs too big to keep).
    lines: usize,
    /// Peak resident memory of the slcli process, in KiB.
    peak_kib: u64,
    took: Duration,
}

/// Runs slcli with `args` (and `env`), with no config file, URL, token or
/// proxy from the test's environment. Keeps at most 1 MiB of stdout, counts
/// its lines, and measures the child's peak RSS (`ru_maxrss` from `wait4`).
fn slcli(args: &[&str], env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(SLCLI);
    cmd.args(args)
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .env("SLCLI_CONFIG", dir.path().join("none.json"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in ["SLCLI_URL", "SLCLI_TOKEN", "SLCLI_MAX_BODY_MIB", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
    {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let start = Instant::now();
    // Reaped by `wait_with_peak` (wait4), which `Child` knows nothing of.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let (mut kept, mut lines, mut buf) = (Vec::new(), 0, vec![0; 64 * 1024]);
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            lines += buf[..n].iter().filter(|&&b| b == b'\n').count();
            let room = (1usize << 20).saturating_sub(kept.len()).min(n);
            kept.extend_from_slice(&buf[..room]);
        }
        (kept, lines)
    });
    let mut err = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    let (code, peak_kib) = wait_with_peak(child.id());
    let took = start.elapsed();
    let (stdout, lines) = stdout.join().unwrap();
    Run { code, stdout, stderr: stderr.join().unwrap(), lines, peak_kib, took }
}

/// Waits for process `pid`: its exit code and its peak RSS in KiB.
fn wait_with_peak(pid: u32) -> (Option<i32>, u64) {
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 writes into the two locals only.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(r, pid as libc::pid_t, "wait4: {}", std::io::Error::last_os_error());
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    // Linux counts ru_maxrss in KiB, macOS in bytes.
    let peak = if cfg!(target_os = "macos") { usage.ru_maxrss as u64 / 1024 } else { usage.ru_maxrss as u64 };
    (code, peak)
}

impl Run {
    #[track_caller]
    fn assert_code(&self, code: i32) {
        assert_eq!(
            self.code,
            Some(code),
            "stdout: {}\nstderr: {}",
            String::from_utf8_lossy(&self.stdout[..self.stdout.len().min(2000)]),
            self.stderr
        );
    }

    #[track_caller]
    fn assert_peak_below_mib(&self, mib: u64) {
        assert!(self.peak_kib < mib * 1024, "slcli peaked at {} MiB (stderr: {})", self.peak_kib / 1024, self.stderr);
    }
}

#[test]
fn an_endless_answer_stops_at_the_bound_with_a_clear_error() {
    // Chunked, so no Content-Length gives the size away: the read itself must stop.
    let url = hostile(|_, s| endless_zeros(s, 4 << 30));
    let run = slcli(&["--url", &url, "--max-body-mib", "8", "list"], &[]);
    run.assert_code(1);
    assert_eq!(
        run.stderr,
        format!(
            "error: the answer of {url} to GET /actions is larger than 8 MiB, the most slcli reads \
             (raise the bound with --max-body-mib N or SLCLI_MAX_BODY_MIB=N)\n"
        )
    );
    assert_eq!((run.stdout.len(), run.lines), (0, 0));
    run.assert_peak_below_mib(48);
    assert!(run.took < Duration::from_secs(20), "{:?}", run.took);
}

#[test]
fn the_bound_comes_from_the_environment_and_defaults_to_256_mib() {
    let url = hostile(|_, s| endless_zeros(s, 4 << 30));
    let run = slcli(&["--url", &url, "run", "x", "-b"], &[("SLCLI_MAX_BODY_MIB", "2")]);
    run.assert_code(1);
    assert!(run.stderr.contains("POST /actions/x/block is larger than 2 MiB"), "{}", run.stderr);
    run.assert_peak_below_mib(40);
    // The flag wins over the variable.
    let run = slcli(&["--url", &url, "--max-body-mib", "3", "list"], &[("SLCLI_MAX_BODY_MIB", "2")]);
    assert!(run.stderr.contains("larger than 3 MiB"), "{}", run.stderr);
    let run = slcli(&["--url", &url, "list"], &[("SLCLI_MAX_BODY_MIB", "0")]);
    run.assert_code(1);
    assert!(run.stderr.contains("SLCLI_MAX_BODY_MIB=\"0\" is not a number of MiB from 1 to"), "{}", run.stderr);
    let run = slcli(&["--url", &url, "invocations"], &[]);
    run.assert_code(1);
    assert!(run.stderr.contains("larger than 256 MiB"), "{}", run.stderr);
    run.assert_peak_below_mib(600);
}

#[test]
fn an_announced_length_over_the_bound_fails_before_reading() {
    // The head promises 1 TiB, then nothing comes: slcli must not wait for it.
    let url = hostile(|_, s| {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1099511627776\r\n\r\n[";
        let _ = s.write_all(head.as_bytes());
        std::thread::sleep(Duration::from_secs(30));
    });
    let run = slcli(&["--url", &url, "--timeout-secs", "20", "get", "x"], &[]);
    run.assert_code(1);
    assert!(run.stderr.contains("GET /actions/x is larger than 256 MiB"), "{}", run.stderr);
    assert!(run.took < Duration::from_secs(5), "{:?}", run.took);
}

#[test]
fn millions_of_zeros_are_refused_at_the_first_one() {
    // 2.5 million zeros, 5 MB: the old slcli built a table row for each (1.2 GB).
    let body = array_of(2_500_000, "0");
    let url = hostile(move |_, s| answer(s, 200, &body));
    let run = slcli(&["--url", &url, "list"], &[]);
    run.assert_code(1);
    assert_eq!(
        run.stderr,
        "error: the server's answer is not a JSON array of actions: invalid type: integer `0`, \
         expected an action (a JSON object) at line 1 column 2\n"
    );
    assert_eq!(run.lines, 0);
    run.assert_peak_below_mib(40);
}

#[test]
fn a_long_list_is_printed_a_row_at_a_time() {
    // 300,000 actions: the table is as wide as its widest cell, and slcli
    // holds the body and one row, not 300,000 rows (the old one: ~300 MB).
    let body = array_of(300_000, r#"{"name":"a","version":1,"size":2,"maxmem":0,"timeout":0,"instructions":0}"#);
    let url = hostile(move |_, s| answer(s, 200, &body));
    let run = slcli(&["--url", &url, "list"], &[]);
    run.assert_code(0);
    assert_eq!(run.lines, 300_001);
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(text.starts_with("NAME  VERSION  SIZE  MAXMEM   TIMEOUT  INSTRUCTIONS  UPDATED\na     1        2 B   default  default  default       -\n"), "{}", &text[..200]);
    run.assert_peak_below_mib(40);
}

#[test]
fn a_big_result_is_indented_as_it_is_read() {
    // A result of 2 million numbers, 4 MB: printed one a line, never built.
    let body = array_of(2_000_000, "7");
    let url = hostile(move |_, s| answer(s, 200, &body));
    let run = slcli(&["--url", &url, "run", "x", "-b"], &[]);
    run.assert_code(0);
    assert_eq!(run.lines, 2_000_002);
    assert!(run.stdout.starts_with(b"[\n  7,\n  7,\n"));
    run.assert_peak_below_mib(40);
}

/// What the escape-sequence server answers `request` (its line and body):
/// names, results, messages and logs full of terminal control sequences.
fn escapes(request: &str) -> (u16, Vec<u8>) {
    use base64::Engine;
    const ESC: &str = r"\u001b]0;pwned\u0007\u001b[2J\u001b[31m";
    let json = |status, text: String| (status, text.into_bytes());
    let source = base64::engine::general_purpose::STANDARD.encode("print('\u{1b}[2J')\r\nreturn 1\rX");
    let (line, body) = request.split_once(" HTTP/1.1 ").unwrap_or((request, ""));
    match line {
        "GET /ping" => (200, b"\x1b[2JOK\x1b]0;pwned\x07".to_vec()),
        "GET /actions" if body.is_empty() => json(200, format!(r#"[{{"name":"{ESC}","version":"{ESC}"}}]"#)),
        "GET /actions/x" => json(200, format!(r#"{{"name":"{ESC}","{ESC}":"{ESC}","code":"{source}"}}"#)),
        "POST /actions/x/block" => (200, b"raw \x1b[2J body\rEVIL \x9b\x7f".to_vec()),
        "POST /actions/x" => json(202, format!(r#"{{"InvocationId":"{ESC}"}}"#)),
        "POST /actions" if body.contains("_test.") => json(201, "{}".into()),
        "POST /actions" if body.contains(r#""name":"a""#) => {
            json(400, format!(r#"{{"error":{{"kind":"compile","message":"a:1: {ESC}\rEVIL"}}}}"#))
        }
        "POST /actions" => json(201, format!(r#"{{"name":"{ESC}","version":"{ESC}","size":1}}"#)),
        "GET /invocation/i" => json(200, format!(r#""{ESC}line 1\nline 2\rEVIL""#)),
        "GET /invocation/p" => json(202, format!(r#"{{"status":"{ESC}"}}"#)),
        "GET /invocations" => json(
            200,
            format!(
                r#"[{{"id":"{ESC}","action":"{ESC}","status":"{ESC}","error":{{"kind":"{ESC}"}},"logs":"{ESC}"}}]"#
            ),
        ),
        "GET /plugins" => json(200, format!(r#"[{{"name":"{ESC}","file":"{ESC}"}}]"#)),
        "GET /routes" => json(200, format!(r#"[{{"method":"{ESC}","path":"/{ESC}","action":"{ESC}"}}]"#)),
        "POST /routes" => json(201, format!(r#"{{"method":"GET","path":"/{ESC}","action":"{ESC}"}}"#)),
        l if l.starts_with("POST /actions/_test.") && body.contains("list") => json(200, format!(r#"["test_{ESC}"]"#)),
        l if l.starts_with("POST /actions/_test.") => json(200, format!(r#"{{"ok":false,"message":"{ESC}\nEVIL\r"}}"#)),
        _ => json(500, format!(r#"{{"error":{{"kind":"{ESC}","message":"{ESC}boom\rEVIL"}}}}"#)),
    }
}

#[test]
fn escape_sequences_from_the_server_are_never_printed_raw() {
    let url = hostile(|request, s| {
        let (status, body) = escapes(request);
        answer(s, status, &body)
    });
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(app.join("a.lua"), "function main() return 1 end\n").unwrap();
    std::fs::write(app.join("a_test.lua"), "function test_a() end\n").unwrap();
    let app = app.to_str().unwrap();
    let file = format!("{app}/a.lua");
    let runs: [&[&str]; 20] = [
        &["ping"],
        &["list"],
        &["--json", "list"],
        &["get", "x"],
        &["--json", "get", "x"],
        &["run", "x", "-b"],
        &["--json", "run", "x", "-b"],
        &["run", "x"],
        &["create", "x", "-f", &file],
        &["resolve", "i"],
        &["resolve", "p"],
        &["--json", "resolve", "p"],
        &["invocations"],
        &["plugins"],
        &["route", "list"],
        &["route", "add", "GET", "/x", "x"],
        &["delete", "x"],
        &["--json", "delete", "x"],
        &["deploy", app],
        &["test", app],
    ];
    let mut problems = Vec::new();
    for args in runs {
        let mut all = vec!["--url", url.as_str()];
        all.extend_from_slice(args);
        let run = slcli(&all, &[]);
        for (name, out) in [("stdout", &run.stdout[..]), ("stderr", run.stderr.as_bytes())] {
            let text = String::from_utf8_lossy(out);
            // A CR that does not end a line could overwrite it.
            let lone_cr = out.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n') || out.last() == Some(&b'\r');
            for (found, what) in [
                (out.contains(&0x1b), "a raw ESC"),
                (lone_cr, "a lone CR"),
                (text.contains(['\u{9b}', '\u{7f}', '\u{7}']), "a raw BEL, DEL or CSI"),
            ] {
                if found {
                    problems.push(format!("{what} on the {name} of slcli {args:?}: {text:?}"));
                }
            }
        }
        let both = format!("{}{}", String::from_utf8_lossy(&run.stdout), run.stderr);
        if !both.contains(r"\e[2J") && !both.contains(r"\u001b[2J") {
            problems.push(format!("nothing of the answer shown by slcli {args:?}: {both:?}"));
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}
