//! The real `slcli` binary, with its config file in a temporary directory,
//! against nothing, an unreachable port, or a tiny canned HTTP responder.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const SLCLI: &str = env!("CARGO_BIN_EXE_slcli");

const COMMANDS: [&str; 18] = [
    "connect",
    "ping",
    "list",
    "get",
    "create",
    "update",
    "delete",
    "run",
    "resolve",
    "invocations",
    "route",
    "topic",
    "sub",
    "dlq",
    "schedule",
    "deploy",
    "dev",
    "test",
];

struct Cli {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    config: PathBuf,
}

impl Cli {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        Self { config: dir.join("slcli.json"), dir, _tmp: tmp }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(SLCLI);
        cmd.arg("--config").arg(&self.config).args(args).current_dir(&self.dir);
        // Nothing from the environment of the test run: no URL, no real home, no proxy.
        cmd.env("HOME", &self.dir).env_remove("SLCLI_URL").env_remove("SLCLI_CONFIG");
        for proxy in ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "https_proxy", "HTTPS_PROXY"] {
            cmd.env_remove(proxy);
        }
        cmd.output().unwrap()
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn assert_exit(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "stdout: {}\nstderr: {}", stdout(o), stderr(o));
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A request as the responder saw it.
#[derive(Debug)]
struct Seen {
    line: String,
    body: String,
}

/// Answers one connection per canned `(status, body)`, in order, then
/// returns the requests it got.
fn responder(replies: Vec<(u16, &'static str)>) -> (String, JoinHandle<Vec<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for (status, body) in replies {
            let deadline = Instant::now() + Duration::from_secs(20);
            let stream = loop {
                match listener.accept() {
                    Ok((s, _)) => break s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(e) => panic!("no request came: {e}"),
                }
            };
            seen.push(answer(stream, status, body));
        }
        seen
    });
    (url, handle)
}

fn answer(stream: TcpStream, status: u16, body: &str) -> Seen {
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap();
            }
        }
    }
    let mut request_body = vec![0; length];
    reader.read_exact(&mut request_body).unwrap();
    let response = format!(
        "HTTP/1.1 {status} Canned\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = reader.into_inner();
    stream.write_all(response.as_bytes()).unwrap();
    stream.flush().unwrap();
    Seen { line: line.trim_end().to_string(), body: String::from_utf8(request_body).unwrap() }
}

#[test]
fn help_for_every_command() {
    let cli = Cli::new();
    let o = cli.run(&["--help"]);
    assert_exit(&o, 0);
    for command in COMMANDS {
        assert!(stdout(&o).contains(command), "{command} missing from --help");
        let o = cli.run(&[command, "--help"]);
        assert_exit(&o, 0);
        assert!(stdout(&o).contains(&format!("Usage: slcli {command}")), "{}", stdout(&o));
        let o = cli.run(&["help", command]);
        assert_exit(&o, 0);
        assert!(stdout(&o).contains("Global options"), "{}", stdout(&o));
    }
    assert!(stdout(&cli.run(&["resolve", "--help"])).contains("2"));
    assert!(stdout(&cli.run(&["--help"])).contains("Exit status"));
}

#[test]
fn usage_errors_exit_1() {
    let cli = Cli::new();
    assert_exit(&cli.run(&[]), 1);
    assert_exit(&cli.run(&["frobnicate"]), 1);
    let o = cli.run(&["run", "x", "-p", "a.json", "-d", "{}"]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));
}

#[test]
fn no_url_configured() {
    let cli = Cli::new();
    for args in [&["ping"][..], &["list"], &["run", "hello", "-b"], &["resolve", "abc"]] {
        let o = cli.run(args);
        assert_exit(&o, 1);
        assert_eq!(
            stderr(&o),
            "error: no server configured: run 'slcli connect URL' first, or pass --url / set SLCLI_URL\n"
        );
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn connect_to_an_unreachable_port_saves_nothing() {
    let cli = Cli::new();
    let url = format!("http://127.0.0.1:{}", closed_port());
    let o = cli.run(&["connect", &url]);
    assert_exit(&o, 1);
    assert_eq!(stderr(&o), format!("error: cannot reach {url} (GET /ping): connection refused\n"));
    assert!(!cli.config.exists());
}

#[test]
fn connect_to_an_invalid_url_saves_nothing() {
    let cli = Cli::new();
    for (url, why) in [("127.0.0.1:8080", "it needs a scheme"), ("ftp://x", "unsupported scheme"), ("http://", "")] {
        let o = cli.run(&["connect", url]);
        assert_exit(&o, 1);
        assert!(stderr(&o).starts_with(&format!("error: invalid server URL '{url}'")), "{}", stderr(&o));
        assert!(stderr(&o).contains(why), "{}", stderr(&o));
    }
    assert!(!cli.config.exists());
}

#[test]
fn create_with_a_missing_file_names_it() {
    let cli = Cli::new();
    let url = format!("http://127.0.0.1:{}", closed_port());
    let o = cli.run(&["--url", &url, "create", "hello", "-f", "no-such.lua"]);
    assert_exit(&o, 1);
    assert!(stderr(&o).starts_with("error: cannot read Lua file no-such.lua: "), "{}", stderr(&o));
}

#[test]
fn run_with_an_invalid_payload_file() {
    let cli = Cli::new();
    cli.write("bad.json", "{\n  \"name\": \"x\",\n}\n");
    cli.write("list.json", "[1, 2]");
    let url = format!("http://127.0.0.1:{}", closed_port());
    let o = cli.run(&["--url", &url, "run", "hello", "-b", "-p", "bad.json"]);
    assert_exit(&o, 1);
    assert!(
        stderr(&o).starts_with("error: invalid JSON in bad.json: trailing comma at line 3 column 1"),
        "{}",
        stderr(&o)
    );
    let o = cli.run(&["--url", &url, "run", "hello", "-p", "list.json"]);
    assert_exit(&o, 1);
    assert_eq!(stderr(&o), "error: list.json must hold a JSON object (the action's args), not an array\n");
    let o = cli.run(&["--url", &url, "run", "hello", "-p", "missing.json"]);
    assert_exit(&o, 1);
    assert!(stderr(&o).starts_with("error: cannot read payload file missing.json: "), "{}", stderr(&o));
}

#[test]
fn update_needs_something_to_change() {
    let cli = Cli::new();
    let o = cli.run(&["--url", "http://127.0.0.1:1", "update", "hello"]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("nothing to update"), "{}", stderr(&o));
}

#[test]
fn connect_saves_the_url() {
    let cli = Cli::new();
    std::fs::write(&cli.config, r#"{"url": "http://old:1", "other": true}"#).unwrap();
    let (url, server) = responder(vec![(200, "OK"), (200, "OK")]);
    let o = cli.run(&["connect", &format!("{url}/")]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), format!("Connected to {url}\n"));
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&cli.config).unwrap()).unwrap();
    assert_eq!(saved, serde_json::json!({"url": url, "other": true}));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&cli.config).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // Later commands use the saved URL.
    let o = cli.run(&["ping"]);
    assert_exit(&o, 0);
    assert!(stdout(&o).starts_with("OK (") && stdout(&o).ends_with(" ms)\n"), "{}", stdout(&o));
    let seen = server.join().unwrap();
    assert_eq!(seen[0].line, "GET /ping HTTP/1.1");
    assert_eq!(seen[1].line, "GET /ping HTTP/1.1");
}

#[test]
fn connect_to_something_else_saves_nothing() {
    let cli = Cli::new();
    let (url, server) = responder(vec![(404, r#"{"error":{"kind":"not_found","message":"no route"}}"#)]);
    let o = cli.run(&["connect", &url]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("did not answer GET /ping") && stderr(&o).contains("no route (404 not_found)"));
    assert!(!cli.config.exists());
    server.join().unwrap();
}

#[test]
fn run_block_prints_a_string_result_raw() {
    let cli = Cli::new();
    cli.write("payload.json", r#"{"name": "from Lua"}"#);
    let (url, server) = responder(vec![(200, r#""Hello from Lua""#), (200, r#"{"n":1}"#), (200, r#""x""#)]);
    let o = cli.run(&["--url", &url, "run", "hello", "-b", "-p", "payload.json"]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "Hello from Lua\n");
    let o = cli.run(&["--url", &url, "run", "hello", "--block", "-d", r#"{"n": 1}"#]);
    assert_eq!(stdout(&o), "{\n  \"n\": 1\n}\n");
    let o = cli.run(&["--url", &url, "--json", "run", "hello", "-b"]);
    assert_eq!(stdout(&o), "\"x\"\n");
    let seen = server.join().unwrap();
    assert_eq!(seen[0].line, "POST /actions/hello/block HTTP/1.1");
    assert_eq!(seen[0].body, r#"{"name": "from Lua"}"#);
    assert_eq!(seen[1].body, r#"{"n": 1}"#);
    assert_eq!(seen[2].body, "{}");
}

#[test]
fn run_without_block_prints_just_the_id() {
    let cli = Cli::new();
    let id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    let body: &'static str = Box::leak(format!(r#"{{"InvocationId": "{id}"}}"#).into_boxed_str());
    let (url, server) = responder(vec![(202, body)]);
    let o = cli.run(&["--url", &url, "run", "hello", "-d", "{}"]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), format!("{id}\n"));
    assert_eq!(server.join().unwrap()[0].line, "POST /actions/hello HTTP/1.1");
}

#[test]
fn server_errors_show_kind_and_exit_1() {
    let cli = Cli::new();
    let memory =
        r#"{"error":{"kind":"memory","message":"memory limit exceeded: action 'evil' used more than 100000 KiB"}}"#;
    let (url, server) = responder(vec![(500, memory), (500, memory)]);
    let o = cli.run(&["--url", &url, "run", "evil", "-b"]);
    assert_exit(&o, 1);
    assert_eq!(stderr(&o), "error: memory limit exceeded: action 'evil' used more than 100000 KiB (500 memory)\n");
    assert!(o.stdout.is_empty());
    // With --json the error body goes to stdout too.
    let o = cli.run(&["--url", &url, "--json", "run", "evil", "-b"]);
    assert_exit(&o, 1);
    assert_eq!(stdout(&o), format!("{memory}\n"));
    assert!(stderr(&o).contains("(500 memory)"));
    server.join().unwrap();
}

#[test]
fn resolve_exits_2_while_pending() {
    let cli = Cli::new();
    let id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    let pending = r#"{"id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "status": "queued", "action": "hello"}"#;
    let failed = r#"{"error":{"kind":"runtime","message":"hello:3: boom"}}"#;
    let (url, server) = responder(vec![(202, pending), (200, r#""Hello from Lua""#), (500, failed), (202, pending)]);
    let o = cli.run(&["--url", &url, "resolve", id, "--wait", "1"]);
    assert_exit(&o, 2);
    assert_eq!(stderr(&o), "pending (status: queued)\n");
    assert!(o.stdout.is_empty());
    let o = cli.run(&["--url", &url, "resolve", id]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "Hello from Lua\n");
    let o = cli.run(&["--url", &url, "resolve", id]);
    assert_exit(&o, 1);
    assert_eq!(stderr(&o), "error: hello:3: boom (500 runtime)\n");
    let o = cli.run(&["--url", &url, "--json", "resolve", id]);
    assert_exit(&o, 2);
    assert_eq!(stdout(&o), format!("{pending}\n"));
    let seen = server.join().unwrap();
    assert_eq!(seen[0].line, format!("GET /invocation/{id}?wait=1 HTTP/1.1"));
    assert_eq!(seen[1].line, format!("GET /invocation/{id} HTTP/1.1"));
}

#[test]
fn create_list_get_update_delete() {
    let cli = Cli::new();
    cli.write("hello.lua", "function main() return 'hi' end\n");
    let action = r#"[{"name":"hello","size":312,"maxmem":0,"timeout":200,"instructions":0,"version":2,"created":1714566896789,"updated":1714566896789}]"#;
    let details = r#"{"name":"hello","size":312,"maxmem":0,"timeout":200,"instructions":0,"version":2,"created":1714566896789,"updated":1714566896789,"checksum":"ab","code":"ZnVuY3Rpb24gbWFpbigpIHJldHVybiAnaGknIGVuZAo="}"#;
    let (url, server) = responder(vec![
        (200, "[]"),
        (201, r#"{"name":"hello","version":1,"size":312}"#),
        (200, r#"{"name":"hello","version":2,"size":312}"#),
        (200, action),
        (200, action),
        (200, details),
        (200, "OK"),
        (200, "[]"),
    ]);
    let run = |args: &[&str]| {
        let mut all = vec!["--url", url.as_str()];
        all.extend_from_slice(args);
        let o = cli.run(&all);
        assert_exit(&o, 0);
        stdout(&o)
    };
    assert_eq!(run(&["list"]), "[]\n");
    assert_eq!(
        run(&["create", "hello", "-f", "hello.lua", "-t", "200"]),
        "Created hello (version 1, 312 bytes of bytecode)\n"
    );
    assert_eq!(run(&["update", "hello", "-i", "0"]), "Updated hello (version 2, 312 bytes of bytecode)\n");
    let table = run(&["list"]);
    assert!(table.starts_with("NAME   VERSION  SIZE   MAXMEM   TIMEOUT  INSTRUCTIONS  UPDATED\n"), "{table}");
    assert!(table.contains("hello  2        312 B  default  200 ms   default       2024-05-01T12:34:56Z"), "{table}");
    assert_eq!(run(&["--json", "list"]), format!("{action}\n"));
    let shown = run(&["get", "hello"]);
    assert!(
        shown.starts_with("name:          hello\n") && shown.ends_with("\nfunction main() return 'hi' end\n"),
        "{shown}"
    );
    assert_eq!(run(&["delete", "hello"]), "Deleted hello\n");
    assert_eq!(run(&["invocations", "hello", "--limit", "5"]), "[]\n");

    let seen = server.join().unwrap();
    let lines: Vec<&str> = seen.iter().map(|s| s.line.as_str()).collect();
    assert_eq!(
        lines,
        [
            "GET /actions HTTP/1.1",
            "POST /actions HTTP/1.1",
            "PUT /actions/hello HTTP/1.1",
            "GET /actions HTTP/1.1",
            "GET /actions HTTP/1.1",
            "GET /actions/hello HTTP/1.1",
            "DELETE /actions/hello HTTP/1.1",
            "GET /invocations?action=hello&limit=5 HTTP/1.1",
        ]
    );
    let create: serde_json::Value = serde_json::from_str(&seen[1].body).unwrap();
    assert_eq!(
        create,
        serde_json::json!({"name": "hello", "code": "ZnVuY3Rpb24gbWFpbigpIHJldHVybiAnaGknIGVuZAo=", "timeout": 200})
    );
    let update: serde_json::Value = serde_json::from_str(&seen[2].body).unwrap();
    assert_eq!(update, serde_json::json!({"instructions": 0}));
}

#[test]
fn env_url_is_used_and_flag_wins() {
    let cli = Cli::new();
    let (url, server) = responder(vec![(200, "OK")]);
    let dead = format!("http://127.0.0.1:{}", closed_port());
    // SLCLI_URL over the saved URL.
    std::fs::write(&cli.config, format!(r#"{{"url": "{dead}"}}"#)).unwrap();
    let o = Command::new(SLCLI)
        .args(["--config", cli.config.to_str().unwrap(), "ping"])
        .env("SLCLI_URL", &url)
        .env("HOME", &cli.dir)
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("all_proxy")
        .env_remove("ALL_PROXY")
        .output()
        .unwrap();
    assert_exit(&o, 0);
    server.join().unwrap();
    // --url over SLCLI_URL.
    let o = Command::new(SLCLI)
        .args(["--config", cli.config.to_str().unwrap(), "--url", &dead, "ping"])
        .env("SLCLI_URL", &url)
        .env("HOME", &cli.dir)
        .output()
        .unwrap();
    assert_exit(&o, 1);
    assert!(stderr(&o).contains(&dead), "{}", stderr(&o));
}

#[test]
fn config_path_from_the_environment() {
    let cli = Cli::new();
    let path: &Path = &cli.dir.join("from-env.json");
    std::fs::write(path, r#"{"url": "not a url"}"#).unwrap();
    let o = Command::new(SLCLI).arg("ping").env("SLCLI_CONFIG", path).env_remove("SLCLI_URL").output().unwrap();
    assert_exit(&o, 1);
    assert!(
        stderr(&o).contains("from-env.json") && stderr(&o).contains("invalid server URL 'not a url'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_server_that_never_answers_times_out() {
    let cli = Cli::new();
    // Connections complete in the backlog, but nobody ever reads or answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let start = Instant::now();
    let o = cli.run(&["--url", &url, "--timeout-secs", "1", "run", "spin", "-b"]);
    assert_exit(&o, 1);
    assert_eq!(
        stderr(&o),
        format!("error: cannot reach {url} (POST /actions/spin/block): no answer within 1 s (see --timeout-secs)\n")
    );
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
    drop(listener);
}

#[test]
fn ping_and_connect_give_up_on_a_silent_server_within_5_seconds() {
    let cli = Cli::new();
    // Connections complete in the backlog, but nobody ever reads or answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let timed = |args: &[&str]| {
        let start = Instant::now();
        let o = cli.run(args);
        (o, start.elapsed())
    };
    let (ping, connect) = std::thread::scope(|s| {
        let ping = s.spawn(|| timed(&["--url", &url, "ping"]));
        let connect = s.spawn(|| timed(&["connect", &url]));
        (ping.join().unwrap(), connect.join().unwrap())
    });
    for ((o, took), what) in [(ping, "ping"), (connect, "connect")] {
        assert_exit(&o, 1);
        assert_eq!(
            stderr(&o),
            format!("error: cannot reach {url} (GET /ping): no answer within 5 s (see --timeout-secs)\n"),
            "{what}"
        );
        assert!(took >= Duration::from_millis(4900) && took < Duration::from_secs(9), "{what} took {took:?}");
    }
    assert!(!cli.config.exists(), "connect saved a server that never answered");
    drop(listener);
}

#[test]
fn route_commands_send_the_contract_requests() {
    let cli = Cli::new();
    let route = r#"{"method":"GET","host":"example.com","path":"/users/:id","action":"users.get","created":1}"#;
    let list = r#"[{"method":"GET","host":"","path":"/a","action":"a","created":1},{"method":"GET","host":"example.com","path":"/users/:id","action":"users.get","created":1}]"#;
    let (url, server) = responder(vec![(201, route), (200, list), (200, r#"{"deleted":true}"#), (200, list)]);
    let run = |args: &[&str]| {
        let mut all = vec!["--url", url.as_str()];
        all.extend_from_slice(args);
        let o = cli.run(&all);
        assert_exit(&o, 0);
        stdout(&o)
    };
    assert_eq!(
        run(&["route", "add", "get", "/users/:id", "users.get", "--host", "example.com"]),
        "route added GET example.com/users/:id -> users.get\n"
    );
    assert_eq!(
        run(&["route", "list"]),
        "METHOD  HOST         PATH        ACTION\nGET     *            /a          a\nGET     example.com  /users/:id  users.get\n"
    );
    assert_eq!(
        run(&["route", "delete", "GET", "/users/:id", "--host", "example.com"]),
        "route deleted GET example.com/users/:id\n"
    );
    assert_eq!(run(&["--json", "route", "list"]), format!("{list}\n"));
    let seen = server.join().unwrap();
    assert_eq!(seen[0].line, "POST /routes HTTP/1.1");
    let body: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"method": "GET", "path": "/users/:id", "action": "users.get", "host": "example.com"})
    );
    assert_eq!(seen[1].line, "GET /routes HTTP/1.1");
    assert_eq!(seen[2].line, "DELETE /routes?method=GET&path=%2Fusers%2F%3Aid&host=example.com HTTP/1.1");
}

#[test]
fn route_conflicts_exit_1_with_the_message() {
    let cli = Cli::new();
    let conflict = r#"{"error":{"kind":"conflict","message":"route conflicts with GET /users/:id"}}"#;
    let (url, server) = responder(vec![(409, conflict)]);
    let o = cli.run(&["--url", &url, "route", "add", "GET", "/users/:uid", "x"]);
    assert_exit(&o, 1);
    assert_eq!(stderr(&o), "error: route conflicts with GET /users/:id (409 conflict)\n");
    server.join().unwrap();
}

/// An app directory with one action, `hello`, and what a server that has it answers.
fn deployed_hello(cli: &Cli) -> (&'static str, &'static str) {
    std::fs::create_dir_all(cli.dir.join("app")).unwrap();
    cli.write("app/hello.lua", "function main() return 1 end\n");
    let list =
        r#"[{"name":"hello","size":1,"maxmem":0,"timeout":0,"instructions":0,"version":1,"created":1,"updated":1}]"#;
    let details = r#"{"name":"hello","size":1,"maxmem":0,"timeout":0,"instructions":0,"version":1,"created":1,"updated":1,"checksum":"x","code":"ZnVuY3Rpb24gbWFpbigpIHJldHVybiAxIGVuZAo="}"#;
    (list, details)
}

#[test]
fn deploy_sends_no_writes_when_nothing_changed() {
    let cli = Cli::new();
    let (list, details) = deployed_hello(&cli);
    let (url, server) = responder(vec![(200, list), (200, details), (200, "[]")]);
    let o = cli.run(&["--url", &url, "deploy", "app"]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "nothing changed\n");
    let lines: Vec<String> = server.join().unwrap().into_iter().map(|s| s.line).collect();
    assert_eq!(lines, ["GET /actions HTTP/1.1", "GET /actions/hello HTTP/1.1", "GET /routes HTTP/1.1"]);
    // The state file records what the directory has on that server.
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cli.dir.join("app/.sl/deployed.json")).unwrap()).unwrap();
    assert_eq!(state, serde_json::json!({ url.clone(): ["hello"] }));
}

#[test]
fn deploy_to_a_server_without_routes() {
    let cli = Cli::new();
    let (list, details) = deployed_hello(&cli);
    let no_route = r#"{"error":{"kind":"not_found","message":"no route for GET /routes"}}"#;
    let (url, server) =
        responder(vec![(200, list), (200, details), (404, no_route), (200, list), (200, details), (404, no_route)]);
    let o = cli.run(&["--url", &url, "deploy", "app"]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "nothing changed\n");
    cli.write("app/sl.toml", "[[routes]]\nmethod = \"GET\"\npath = \"/\"\naction = \"hello\"\n");
    let o = cli.run(&["--url", &url, "deploy", "app"]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("the server has no routes API"), "{}", stderr(&o));
    server.join().unwrap();
}

#[test]
fn deploy_updates_source_and_limits_it_finds_different() {
    let cli = Cli::new();
    let (list, details) = deployed_hello(&cli);
    cli.write("app/sl.toml", "[actions.hello]\ntimeout = 300\n");
    let updated = r#"{"name":"hello","version":2,"size":1}"#;
    let (url, server) = responder(vec![(200, list), (200, details), (200, "[]"), (200, updated)]);
    let o = cli.run(&["--url", &url, "deploy", "app"]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "updated hello\n0 created, 1 updated, 0 deleted, 0 routes added, 0 routes deleted\n");
    let seen = server.join().unwrap();
    assert_eq!(seen[3].line, "PUT /actions/hello HTTP/1.1");
    let body: serde_json::Value = serde_json::from_str(&seen[3].body).unwrap();
    assert_eq!(body, serde_json::json!({"maxmem": 0, "timeout": 300, "instructions": 0}), "only the limits changed");
}

/// Reads one request (head and body) from `stream`; returns its head.
fn read_request(stream: &mut TcpStream) -> String {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap();
            }
        }
        head.push_str(&line);
        if line.trim().is_empty() {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    head
}

/// `run -k KEY`: the submit carries the key, and one whose answer is lost
/// (the server closed the connection after reading it) is sent again with
/// the same key, which gets the answer.
#[test]
fn run_with_a_key_sends_it_and_retries_a_lost_answer() {
    let cli = Cli::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    let server = std::thread::spawn(move || {
        let (mut first, _) = listener.accept().unwrap();
        let lost = read_request(&mut first);
        drop(first);
        let (mut second, _) = listener.accept().unwrap();
        let answered = read_request(&mut second);
        let body = format!(r#"{{"InvocationId": "{id}"}}"#);
        let response = format!(
            "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        second.write_all(response.as_bytes()).unwrap();
        (lost, answered)
    });
    let o = cli.run(&["--url", &url, "run", "hello", "-d", "{}", "-k", "order-7"]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), format!("{id}\n"));
    assert!(stderr(&o).contains("trying again with the same Idempotency-Key"), "{}", stderr(&o));
    let (lost, answered) = server.join().unwrap();
    for head in [&lost, &answered] {
        assert!(head.starts_with("POST /actions/hello HTTP/1.1"), "{head}");
        assert!(head.to_ascii_lowercase().contains("idempotency-key: order-7"), "{head}");
    }
    // A key on a blocking run is refused by slcli itself.
    let o = cli.run(&["--url", &url, "run", "hello", "-b", "-k", "order-8"]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));
}

#[test]
fn help_for_every_event_subcommand() {
    let cli = Cli::new();
    for (command, subs) in [
        ("topic", &["create", "list", "get", "set", "delete", "publish", "read"][..]),
        ("sub", &["create", "list", "get", "delete", "reset"]),
        ("dlq", &["list", "show", "redrive", "purge"]),
        ("schedule", &["create", "list", "get", "delete"]),
    ] {
        let o = cli.run(&[command, "--help"]);
        assert_exit(&o, 0);
        for sub in subs {
            assert!(stdout(&o).contains(sub), "{sub} missing from `{command} --help`:\n{}", stdout(&o));
            let o = cli.run(&[command, sub, "--help"]);
            assert_exit(&o, 0);
            assert!(stdout(&o).contains(&format!("Usage: slcli {command} {sub}")), "{}", stdout(&o));
        }
    }
    assert!(stdout(&cli.run(&["sub", "reset", "--help"])).contains("RFC 3339"));
    assert!(stdout(&cli.run(&["help", "schedule"])).contains("@every DURATION"));
    assert!(stdout(&cli.run(&["help", "deploy"])).contains("[schedules.nightly]"));
}

#[test]
fn event_commands_send_the_contract_requests() {
    let cli = Cli::new();
    let topic = r#"{"name":"orders","partitions":8,"retention_ms":3600000,"retention_bytes":null,"created":1,"messages":0,"bytes":0,"offsets":[]}"#;
    let sub = r#"{"name":"mailer","topic":"orders","action":"mail.send","batch_size":20,"max_wait_ms":0,"max_retries":1,"backoff_ms":100,"backoff_max_ms":300000,"created":1,"dead":0,"partitions":[],"backlog":0}"#;
    let (url, server) = responder(vec![
        (201, topic),
        (200, topic),
        (200, topic),
        (201, r#"{"partition":3,"offset":17,"topic":"orders"}"#),
        (200, "[]"),
        (201, sub),
        (200, r#"{"name":"mailer","cursors":[0,0]}"#),
        (200, "[]"),
        (200, r#"{"redriven":1}"#),
        (200, r#"{"purged":4}"#),
    ]);
    let run = |args: &[&str]| {
        let mut all = vec!["--url", url.as_str()];
        all.extend_from_slice(args);
        let o = cli.run(&all);
        assert_exit(&o, 0);
        stdout(&o)
    };
    assert_eq!(
        run(&["topic", "create", "orders", "-p", "8", "--retention-secs", "3600"]),
        "topic created orders (8 partitions, kept 3600 s, any size)\n"
    );
    // Only the retention bytes given: the retention age is kept as the server has it.
    assert_eq!(
        run(&["topic", "set", "orders", "--retention-bytes", "none"]),
        "topic updated orders (kept 3600 s, any size)\n"
    );
    assert_eq!(
        run(&["topic", "publish", "orders", r#"{"id": 17}"#, "--key", "customer 42"]),
        "published to orders partition 3 offset 17\n"
    );
    assert_eq!(run(&["topic", "read", "orders", "-p", "3", "--from", "10", "-n", "5"]), "[]\n");
    assert_eq!(
        run(&[
            "sub",
            "create",
            "mailer",
            "--topic",
            "orders",
            "--action",
            "mail.send",
            "--batch-size",
            "20",
            "--max-retries",
            "1",
            "--backoff-ms",
            "100",
            "--from",
            "2026-12-08T09:00:00Z",
        ]),
        "subscription created mailer (orders -> mail.send, from 2026-12-08T09:00:00Z)\n"
    );
    assert!(run(&["sub", "reset", "mailer", "--to", "42"]).starts_with("subscription mailer reset to offset 42\n"));
    assert_eq!(run(&["dlq", "list", "mailer", "-n", "7"]), "[]\n");
    assert_eq!(run(&["dlq", "redrive", "mailer", "3:17"]), "redriven dead letter 3:17 of mailer\n");
    assert_eq!(run(&["dlq", "purge", "mailer"]), "purged 4 dead letters of mailer\n");

    let seen = server.join().unwrap();
    let lines: Vec<&str> = seen.iter().map(|s| s.line.as_str()).collect();
    assert_eq!(
        lines,
        [
            "POST /topics HTTP/1.1",
            "GET /topics/orders HTTP/1.1",
            "PUT /topics/orders HTTP/1.1",
            "POST /topics/orders?key=customer%2042 HTTP/1.1",
            "GET /topics/orders/messages?partition=3&from=10&limit=5 HTTP/1.1",
            "POST /subscriptions HTTP/1.1",
            "POST /subscriptions/mailer/reset HTTP/1.1",
            "GET /subscriptions/mailer/dead?limit=7 HTTP/1.1",
            "POST /subscriptions/mailer/dead/redrive?partition=3&offset=17 HTTP/1.1",
            "DELETE /subscriptions/mailer/dead HTTP/1.1",
        ]
    );
    let body = |i: usize| serde_json::from_str::<serde_json::Value>(&seen[i].body).unwrap();
    assert_eq!(body(0), serde_json::json!({"name": "orders", "partitions": 8, "retention_ms": 3_600_000}));
    assert_eq!(body(2), serde_json::json!({"retention_ms": 3_600_000, "retention_bytes": null}));
    assert_eq!(seen[3].body, r#"{"id": 17}"#, "the payload is sent as given");
    assert_eq!(
        body(5),
        serde_json::json!({"name": "mailer", "topic": "orders", "action": "mail.send", "batch_size": 20,
                           "max_retries": 1, "backoff_ms": 100, "start": {"time": 1_796_720_400_000_i64}})
    );
    assert_eq!(body(6), serde_json::json!({"to": {"offset": 42}}));
}

#[test]
fn event_commands_check_their_input_before_sending() {
    let cli = Cli::new();
    let url = format!("http://127.0.0.1:{}", closed_port());
    for (args, message) in [
        (
            &["topic", "publish", "t", "hello"][..],
            "error: PAYLOAD_JSON is not JSON (expected value at line 1 column 1)",
        ),
        (&["topic", "publish", "t", "-d", "missing.json"], "error: cannot read message file missing.json: "),
        (&["topic", "publish", "t", "1", "-k", "caf\u{e9}"], "error: an idempotency key is 1 to 255 printable ASCII"),
        (&["sub", "reset", "s", "--to", "yesterday"], "error: invalid value 'yesterday' for '--to <POSITION>'"),
        (&["dlq", "show", "s", "3"], "error: invalid value '3' for '<PARTITION:OFFSET>'"),
        (&["topic", "set", "t"], "error: the following required arguments were not provided"),
        (
            &["schedule", "create", "s", "--action", "a", "--spec", "@daily", "--args", "[1]"],
            "error: --args must hold a JSON object (the action's args), not an array",
        ),
        (
            &["schedule", "create", "s", "--action", "a", "--spec", "@daily", "--args-file", "missing.json"],
            "error: cannot read args file missing.json: ",
        ),
        (
            &["schedule", "create", "s", "--action", "a", "--spec", "@daily", "--overlap", "never"],
            "error: invalid value 'never' for '--overlap <skip|queue|allow>': invalid overlap policy 'never'",
        ),
        (
            &["schedule", "create", "s", "--action", "a", "--spec", "@daily", "--catch-up", "all:1001"],
            "error: invalid value 'all:1001' for '--catch-up <none|last|all|all:N>': invalid catch-up policy",
        ),
        (
            &["schedule", "create", "s", "--action", "a", "--spec", "@daily", "--jitter", "5 minutes"],
            "error: invalid value '5 minutes' for '--jitter <DURATION>': invalid duration '5 minutes'",
        ),
        (&["schedule", "create", "s", "--action", "a"], "error: the following required arguments were not provided"),
    ] {
        let mut all = vec!["--url", url.as_str()];
        all.extend_from_slice(args);
        let o = cli.run(&all);
        assert_exit(&o, 1);
        assert!(stderr(&o).starts_with(message), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn deploy_to_a_server_without_events() {
    let cli = Cli::new();
    let (list, details) = deployed_hello(&cli);
    cli.write("app/sl.toml", "[topics.orders]\n");
    let no_route = r#"{"error":{"kind":"not_found","message":"no route for GET /topics"}}"#;
    let (url, server) = responder(vec![(200, list), (200, details), (200, "[]"), (404, no_route)]);
    let o = cli.run(&["--url", &url, "deploy", "app"]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("the server has no events API"), "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "nothing was changed: {}", stdout(&o));
    let lines: Vec<String> = server.join().unwrap().into_iter().map(|s| s.line).collect();
    assert_eq!(
        lines,
        ["GET /actions HTTP/1.1", "GET /actions/hello HTTP/1.1", "GET /routes HTTP/1.1", "GET /topics HTTP/1.1"]
    );
}

#[test]
fn schedule_commands_send_the_contract_requests() {
    let cli = Cli::new();
    let nightly = r#"{"name":"nightly","action":"report","spec":"0 9 * * *","time_zone":"Europe/London","args":{"kind":"daily"},"overlap":"queue","catch_up":"all:3","jitter_ms":90000,"created":1,"last_fired":null,"last_fired_at":null,"last_invocation":null,"fired":0,"next":1796806800000,"next_at":"2026-12-09T09:00:00.000Z"}"#;
    let list = r#"[{"name":"nightly","action":"report","spec":"0 9 * * *","time_zone":"Europe/London","args":{},"overlap":"skip","catch_up":"none","jitter_ms":0,"created":1,"last_fired":1796720400000,"last_fired_at":"2026-12-08T09:00:00.000Z","last_invocation":"0190-1","fired":3,"next":1796806800000,"next_at":"2026-12-09T09:00:00.000Z"}]"#;
    let missing = r#"{"error":{"kind":"not_found","message":"no action named 'report'"}}"#;
    let (url, server) = responder(vec![
        (201, nightly),
        (200, list),
        (200, nightly),
        (200, r#"{"deleted":true}"#),
        (404, missing),
        (201, nightly),
    ]);
    let run = |args: &[&str]| {
        let mut all = vec!["--url", url.as_str()];
        all.extend_from_slice(args);
        cli.run(&all)
    };
    let ok = |args: &[&str]| {
        let o = run(args);
        assert_exit(&o, 0);
        stdout(&o)
    };
    assert_eq!(
        ok(&[
            "schedule",
            "create",
            "nightly",
            "--action",
            "report",
            "--spec",
            "0 9 * * *",
            "--tz",
            "Europe/London",
            "--args",
            r#"{"kind": "daily"}"#,
            "--overlap",
            "queue",
            "--catch-up",
            "all:3",
            "--jitter",
            "1m30s",
        ]),
        "schedule created nightly (0 9 * * * in Europe/London -> report, next 2026-12-09T09:00:00.000Z)\n"
    );
    assert_eq!(
        ok(&["schedule", "list"]),
        "NAME     SPEC       TIME ZONE      ACTION  FIRED  NEXT\n\
         nightly  0 9 * * *  Europe/London  report  3      2026-12-09T09:00:00.000Z\n"
    );
    let shown = ok(&["schedule", "get", "nightly"]);
    assert!(
        shown.starts_with("name:             nightly\naction:           report\nspec:             0 9 * * *\n")
            && shown.contains("\nargs:             {\"kind\":\"daily\"}\n")
            && shown.contains("\njitter:           90000 ms\n")
            && shown.ends_with(
                "\nlast fired:       never\nlast invocation:  -\nnext:             2026-12-09T09:00:00.000Z\n"
            ),
        "{shown}"
    );
    assert_eq!(ok(&["schedule", "delete", "nightly"]), "schedule deleted nightly\n");
    let o = run(&["schedule", "create", "n", "--action", "report", "--spec", "@daily"]);
    assert_exit(&o, 1);
    assert_eq!(stderr(&o), "error: no action named 'report' (404 not_found)\n");
    let o = run(&["--json", "schedule", "create", "n", "--action", "report", "--spec", "@daily", "--jitter-ms", "5"]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), format!("{nightly}\n"), "--json prints the server's answer");

    let seen = server.join().unwrap();
    let lines: Vec<&str> = seen.iter().map(|s| s.line.as_str()).collect();
    assert_eq!(
        lines,
        [
            "POST /schedules HTTP/1.1",
            "GET /schedules HTTP/1.1",
            "GET /schedules/nightly HTTP/1.1",
            "DELETE /schedules/nightly HTTP/1.1",
            "POST /schedules HTTP/1.1",
            "POST /schedules HTTP/1.1",
        ]
    );
    let body = |i: usize| serde_json::from_str::<serde_json::Value>(&seen[i].body).unwrap();
    assert_eq!(
        body(0),
        serde_json::json!({"name": "nightly", "action": "report", "spec": "0 9 * * *", "time_zone": "Europe/London",
                           "args": {"kind": "daily"}, "overlap": "queue", "catch_up": "all:3", "jitter_ms": 90_000})
    );
    // What is not given is left to the server's defaults.
    assert_eq!(body(4), serde_json::json!({"name": "n", "action": "report", "spec": "@daily"}));
    assert_eq!(body(5), serde_json::json!({"name": "n", "action": "report", "spec": "@daily", "jitter_ms": 5}));
}

#[test]
fn deploy_to_a_server_without_schedules() {
    let cli = Cli::new();
    let (list, details) = deployed_hello(&cli);
    cli.write("app/sl.toml", "[schedules.tick]\naction = \"hello\"\nspec = \"@every 1m\"\n");
    let no_route = r#"{"error":{"kind":"not_found","message":"no route for GET /schedules"}}"#;
    let (url, server) = responder(vec![(200, list), (200, details), (200, "[]"), (404, no_route)]);
    let o = cli.run(&["--url", &url, "deploy", "app"]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("the server has no schedules API"), "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "nothing was changed: {}", stdout(&o));
    let lines: Vec<String> = server.join().unwrap().into_iter().map(|s| s.line).collect();
    assert_eq!(
        lines,
        ["GET /actions HTTP/1.1", "GET /actions/hello HTTP/1.1", "GET /routes HTTP/1.1", "GET /schedules HTTP/1.1"]
    );
}

/// The server's JSON of the schedule `deploy_creates_a_schedule_with_every_setting` deploys (a
/// literal, for `concat!`).
macro_rules! deployed_nightly {
    () => {
        r#"{"name":"nightly","action":"hello","spec":"0 9 * * *","time_zone":"Europe/London","args":{"at":"2026-12-08T09:00:00Z","kind":"daily"},"overlap":"skip","catch_up":"last","jitter_ms":500,"created":1,"fired":0,"next":1,"next_at":"2026-12-09T09:00:00.000Z"}"#
    };
}

#[test]
fn deploy_creates_a_schedule_with_every_setting() {
    let cli = Cli::new();
    let (list, details) = deployed_hello(&cli);
    cli.write(
        "app/sl.toml",
        "[schedules.nightly]\naction = \"hello\"\nspec = \"0 9 * * *\"\ntime_zone = \"Europe/London\"\n\
         catch_up = \"last\"\njitter_ms = 500\nargs = { kind = \"daily\", at = 2026-12-08T09:00:00Z }\n",
    );
    let (url, server) =
        responder(vec![(200, list), (200, details), (200, "[]"), (200, "[]"), (201, deployed_nightly!())]);
    let o = cli.run(&["--url", &url, "deploy", "app"]);
    assert_exit(&o, 0);
    assert_eq!(
        stdout(&o),
        "schedule created nightly (0 9 * * * in Europe/London -> hello)\n\
         0 created, 0 updated, 0 deleted, 0 routes added, 0 routes deleted, 1 schedules created\n"
    );
    let seen = server.join().unwrap();
    assert_eq!(seen[4].line, "POST /schedules HTTP/1.1");
    let body: serde_json::Value = serde_json::from_str(&seen[4].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"name": "nightly", "action": "hello", "spec": "0 9 * * *", "time_zone": "Europe/London",
                           "args": {"kind": "daily", "at": "2026-12-08T09:00:00Z"}, "overlap": "skip",
                           "catch_up": "last", "jitter_ms": 500})
    );
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cli.dir.join("app/.sl/deployed.json")).unwrap()).unwrap();
    assert_eq!(
        state,
        serde_json::json!({ url.clone(): {"actions": ["hello"], "topics": [], "subscriptions": [], "schedules": ["nightly"]} })
    );

    // The same settings as the server lists them: nothing to do.
    let listed = concat!("[", deployed_nightly!(), "]");
    let (url, server) = responder(vec![(200, list), (200, details), (200, "[]"), (200, listed)]);
    let o = cli.run(&["--url", &url, "deploy", "app"]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "nothing changed\n");
    server.join().unwrap();
}
