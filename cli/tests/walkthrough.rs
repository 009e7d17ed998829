//! The README walkthrough, end to end: the real `slserver` and the real
//! `slcli`, on 127.0.0.1 with a free port and a temporary data directory.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SLCLI: &str = env!("CARGO_BIN_EXE_slcli");

fn slserver_bin() -> PathBuf {
    let p = Path::new(SLCLI).with_file_name(format!("slserver{}", std::env::consts::EXE_SUFFIX));
    assert!(p.exists(), "{} is missing: build the workspace first (./scripts/test does)", p.display());
    p
}

struct Server {
    child: Child,
    url: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(dir: &Path) -> Self {
        Self::start_with(dir, "")
    }

    fn start_with(dir: &Path, extra: &str) -> Self {
        let config = format!("Sqlite {{ path = \"data/sl.db\" }}\nLogger {{ level = \"info\" }}\n{extra}");
        std::fs::write(dir.join("config.lua"), config).unwrap();
        let mut child = Command::new(slserver_bin())
            .arg("--config")
            .arg(dir.join("config.lua"))
            .arg("--listen")
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (stderr, log2) = (child.stderr.take().unwrap(), Arc::clone(&log));
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log2.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let url = line.trim().strip_prefix("slserver listening on ").expect("address line").to_string();
        std::thread::spawn(move || {
            let _ = out.read_to_string(&mut String::new());
        });
        Self { child, url, log }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Cli {
    dir: PathBuf,
    config: PathBuf,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(SLCLI)
            .args(args)
            .current_dir(&self.dir)
            .env("SLCLI_CONFIG", &self.config)
            .env_remove("SLCLI_URL")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "slcli {args:?} failed ({}): {}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(!o.status.success(), "slcli {args:?} should have failed: {}", String::from_utf8_lossy(&o.stdout));
        String::from_utf8_lossy(&o.stderr).into_owned()
    }
}

#[test]
fn the_readme_walkthrough() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let server = Server::start(dir);
    let cli = Cli { dir: dir.to_path_buf(), config: dir.join("slcli.json") };

    let before = cli.fails(&["ping"]);
    assert!(before.contains("slcli connect"), "{before}");

    cli.ok(&["connect", &server.url]);
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&cli.config).unwrap()).unwrap();
    assert_eq!(saved["url"], server.url.as_str());
    cli.ok(&["ping"]);
    assert_eq!(cli.ok(&["plugins"]).trim(), "[]");
    assert_eq!(cli.ok(&["list"]).trim(), "[]");

    std::fs::write(dir.join("hello.lua"), "function main(args)\n  if args.name == nil then args.name = 'World' end\n  return 'Hello ' .. args.name\nend\n").unwrap();
    cli.ok(&["create", "hello", "-f", "hello.lua"]);
    std::fs::write(dir.join("payload.json"), r#"{"name": "from Lua"}"#).unwrap();
    assert_eq!(cli.ok(&["run", "hello", "-b", "-p", "payload.json"]).trim(), "Hello from Lua");

    let id = cli.ok(&["run", "hello", "-p", "payload.json"]).trim().to_string();
    assert_eq!(id.len(), 36, "expected an invocation id, got {id:?}");
    assert_eq!(cli.ok(&["resolve", &id]).trim(), "Hello from Lua");

    let list = cli.ok(&["list"]);
    assert!(list.contains("hello"), "{list}");
    let json: serde_json::Value = serde_json::from_str(&cli.ok(&["--json", "list"])).unwrap();
    assert!(json[0]["size"].as_u64().unwrap() > 0 && json[0].get("instructions").is_some(), "{json}");

    std::fs::write(
        dir.join("evil.lua"),
        "function main(args)\n  strings = {}\n  while true do\n    table.insert(strings, 'evil')\n  end\nend\n",
    )
    .unwrap();
    cli.ok(&["create", "evil", "-f", "evil.lua", "-m", "50000"]);
    let err = cli.fails(&["run", "evil", "-b"]);
    assert!(err.contains("memory"), "{err}");
    let start = Instant::now();
    while !server.log.lock().unwrap().contains("Action 'evil' aborted after violating memory constraints") {
        assert!(start.elapsed() < Duration::from_secs(5), "log line missing: {}", server.log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }

    std::fs::write(dir.join("spin.lua"), "function main() while true do end end\n").unwrap();
    cli.ok(&["create", "spin", "-f", "spin.lua", "-t", "200"]);
    let start = Instant::now();
    let err = cli.fails(&["run", "spin", "-b"]);
    assert!(err.contains("timeout"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());

    cli.ok(&["delete", "hello"]);
    let err = cli.fails(&["run", "hello", "-b"]);
    assert!(err.contains("not_found") || err.contains("no action"), "{err}");
    assert!(!cli.ok(&["list"]).contains("hello"));
}

#[test]
fn connect_saves_the_token_and_commands_send_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let admin = "admin-0123456789abcdef";
    let server = Server::start_with(dir, &format!("Auth {{ admin = {admin:?} }}"));
    let cli = Cli { dir: dir.to_path_buf(), config: dir.join("slcli.json") };

    let err = cli.fails(&["connect", &server.url, "--token", "wrong-0123456789abcdef"]);
    assert!(err.contains("refused the token"), "{err}");
    assert!(!cli.config.exists(), "a refused token was saved");

    cli.ok(&["connect", &server.url, "--token", admin]);
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&cli.config).unwrap()).unwrap();
    assert_eq!(saved["token"], admin);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&cli.config).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert_eq!(cli.ok(&["list"]).trim(), "[]");
    // Without the token the server says 401, and slcli says so.
    let o = Command::new(SLCLI).args(["--url", &server.url, "list"]).env_remove("SLCLI_TOKEN").output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("401"), "{}", String::from_utf8_lossy(&o.stderr));
    // SLCLI_TOKEN works with --url too.
    let o = Command::new(SLCLI).args(["--url", &server.url, "list"]).env("SLCLI_TOKEN", admin).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
