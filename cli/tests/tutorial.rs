//! The README's tutorial ("Building apps"), step by step, with the real
//! `slserver` (routes listener, the kv plugin) and the real `slcli` on the
//! app in `examples/items`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const SLCLI: &str = env!("CARGO_BIN_EXE_slcli");

struct Server {
    child: Child,
    url: String,
    routes: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path) -> Server {
    let kv = sl_testkit::plugin_lib("sl_kv");
    let config = format!(
        "Sqlite {{ path = \"data/sl.db\" }}\nLogger {{ level = \"warn\" }}\nRoutes {{ port = 0 }}\n\
         Plugin \"kv\" {{ file = {:?}, path = {:?} }}\n",
        kv.display().to_string(),
        dir.join("data/kv.db").display().to_string()
    );
    std::fs::write(dir.join("config.lua"), config).unwrap();
    let bin = Path::new(SLCLI).with_file_name("slserver");
    let mut child = Command::new(bin)
        .arg("--config")
        .arg(dir.join("config.lua"))
        .args(["--listen", "127.0.0.1:0", "--routes-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("slserver listening on ").expect("address line").to_string();
    line.clear();
    out.read_line(&mut line).unwrap();
    let routes = line.trim().strip_prefix("slserver serving routes on http://").expect("routes line").to_string();
    std::thread::spawn(move || {
        let _ = out.read_to_string(&mut String::new());
    });
    Server { child, url, routes }
}

fn slcli(server: &Server, cwd: &Path, args: &[&str]) -> Output {
    Command::new(SLCLI)
        .args(args)
        .current_dir(cwd)
        .env("SLCLI_URL", &server.url)
        .env("SLCLI_CONFIG", cwd.join("slcli.json"))
        .output()
        .unwrap()
}

#[track_caller]
fn ok(server: &Server, cwd: &Path, args: &[&str]) -> String {
    let o = slcli(server, cwd, args);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "slcli {args:?}: {out}{}", String::from_utf8_lossy(&o.stderr));
    out
}

/// A response: status, headers (lower-case names), body.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// What `curl` does in the README: one request, `Connection: close`.
fn curl(addr: &str, method: &str, target: &str, content_type: Option<&str>, body: &str) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let ct = content_type.map(|c| format!("Content-Type: {c}\r\n")).unwrap_or_default();
    let req = format!(
        "{method} {target} HTTP/1.1\r\nHost: localhost\r\n{ct}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Resp { status, headers, body: body.to_string() }
}

/// A copy of `examples/items` (deploy writes its state file into the directory).
fn copy_app(to: &Path) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/items");
    let app = to.join("items-app");
    for entry in [
        "lib/items.lua",
        "items/list.lua",
        "items/get.lua",
        "items/create.lua",
        "items/update.lua",
        "items/delete.lua",
        "sl.toml",
        "items_test.lua",
    ] {
        let dest = app.join(entry);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(from.join(entry), dest).unwrap();
    }
    app
}

#[test]
fn the_readme_tutorial() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let server = start(dir);
    let app = copy_app(dir);
    let app_arg = app.to_str().unwrap();

    let out = ok(&server, dir, &["deploy", app_arg]);
    for line in [
        "created lib.items",
        "created items.create",
        "route added GET /items -> items.list",
        "6 created, 0 updated, 0 deleted, 5 routes added, 0 routes deleted",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    let r = &server.routes;
    let created = curl(r, "POST", "/items", Some("application/json"), r#"{"name": "pen"}"#);
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.header("location"), Some("/items/1"));
    assert_eq!(created.json(), serde_json::json!({"id": "1", "name": "pen"}));
    let form = curl(r, "POST", "/items", Some("application/x-www-form-urlencoded"), "name=blue+pencil");
    assert_eq!(form.json(), serde_json::json!({"id": "2", "name": "blue pencil"}));
    let found = curl(r, "GET", "/items?q=pen", None, "");
    assert_eq!(found.json(), serde_json::json!([{"id": "1", "name": "pen"}, {"id": "2", "name": "blue pencil"}]));
    assert_eq!(curl(r, "GET", "/items?q=zzz", None, "").body, "[]");
    let put = curl(r, "PUT", "/items/1", Some("application/json"), r#"{"name": "quill"}"#);
    assert_eq!(put.json(), serde_json::json!({"id": "1", "name": "quill"}));
    assert_eq!(curl(r, "DELETE", "/items/1", None, "").status, 204);
    let gone = curl(r, "GET", "/items/1", None, "");
    assert_eq!((gone.status, gone.json()), (404, serde_json::json!({"error": "no item 1"})));
    let bad = curl(r, "POST", "/items", None, "");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("name is required"), "{}", bad.body);

    let tests = ok(&server, dir, &["test", app_arg]);
    assert!(tests.contains("ok 1 - items_test.lua: test_a_name_is_required"), "{tests}");
    assert!(tests.trim_end().ends_with("4 passed, 0 failed"), "{tests}");

    assert_eq!(ok(&server, dir, &["deploy", app_arg]).trim(), "nothing changed");
}
