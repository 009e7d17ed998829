//! `slcli route`, `deploy`, `dev` and `test` end to end: the real
//! `slserver` (with its routes listener on a free port) and the real
//! `slcli`, on 127.0.0.1 with a temporary data directory.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{request, stderr, stdout, Lines, Server, SLCLI};

#[track_caller]
fn assert_exit(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "stdout:\n{}\nstderr:\n{}", stdout(o), stderr(o));
}

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `GET path` on `base` (`http://HOST:PORT`): status and body.
fn http_get(base: &str, path: &str) -> (u16, String) {
    let r = request(base, "GET", path, None, "");
    (r.status, r.body)
}

#[test]
fn route_add_list_delete() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    write(cwd, "hello.lua", "function main(args)\n  return 'hello route'\nend\n");
    server.ok(cwd, &["create", "hello", "-f", "hello.lua"]);

    assert_eq!(server.ok(cwd, &["route", "list"]), "[]\n");
    assert_eq!(
        server.ok(cwd, &["route", "add", "get", "/hello/:name", "hello"]),
        "route added GET /hello/:name -> hello\n"
    );
    assert_eq!(
        server.ok(cwd, &["route", "add", "POST", "/hello", "hello", "--host", "example.com"]),
        "route added POST example.com/hello -> hello\n"
    );
    let table = server.ok(cwd, &["route", "list"]);
    assert_eq!(
        table,
        "METHOD  HOST         PATH          ACTION\n\
         GET     *            /hello/:name  hello\n\
         POST    example.com  /hello        hello\n",
        "{table}"
    );
    let json: serde_json::Value = serde_json::from_str(&server.ok(cwd, &["--json", "route", "list"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2, "{json}");
    assert_eq!(json[0]["action"], "hello");

    // The route is served on the routes listener.
    let (status, body) = http_get(&server.routes_url, "/hello/world");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello route"), "{body}");

    // An equivalent route (another param name) conflicts.
    let o = server.slcli(cwd, &["route", "add", "GET", "/hello/:other", "hello"]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("conflict") && stderr(&o).contains("/hello/:name"), "{}", stderr(&o));
    // An unknown action, a bad method, a bad path.
    let o = server.slcli(cwd, &["route", "add", "GET", "/x", "nope"]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("not_found"), "{}", stderr(&o));
    for bad in [&["route", "add", "BREW", "/x", "hello"][..], &["route", "add", "GET", "x", "hello"]] {
        let o = server.slcli(cwd, bad);
        assert_exit(&o, 1);
        assert!(stderr(&o).contains("bad_request"), "{bad:?}: {}", stderr(&o));
    }

    assert_eq!(server.ok(cwd, &["route", "delete", "GET", "/hello/:name"]), "route deleted GET /hello/:name\n");
    let o = server.slcli(cwd, &["route", "delete", "GET", "/hello/:name"]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("not_found"), "{}", stderr(&o));
    // Without --host, the host route is not the one meant.
    assert_exit(&server.slcli(cwd, &["route", "delete", "POST", "/hello"]), 1);
    assert_eq!(
        server.ok(cwd, &["route", "delete", "post", "/hello", "--host", "Example.com"]),
        "route deleted POST example.com/hello\n"
    );
    assert_eq!(server.ok(cwd, &["route", "list"]), "[]\n");
    assert_eq!(http_get(&server.routes_url, "/hello/world").0, 404);
}

/// A small app: two actions (one in a subdirectory) and a manifest with
/// limits and a route.
fn small_app(dir: &Path) {
    write(dir, "hello.lua", "function main(args)\n  return 'hello v1'\nend\n");
    write(dir, "users/get.lua", "function main(args)\n  return 'user v1'\nend\n");
    write(dir, "users/list.lua", "function main(args)\n  return {'ann', 'bob'}\nend\n");
    write(dir, "users/get_test.lua", "function test_nothing() end\n");
    write(dir, ".hidden/secret.lua", "function main() return 1 end\n");
    // The configuration of the app's server, as examples/items has: not an
    // action (as one, it would fail: `Server` is no function in an action).
    write(dir, "config.lua", "Server { port = 8080 }\n");
    write(
        dir,
        "sl.toml",
        "[actions.\"users.get\"]\nmaxmem = 2048\ntimeout = 700\n\n\
         [[routes]]\nmethod = \"GET\"\npath = \"/users/:id\"\naction = \"users.get\"\n",
    );
}

#[test]
fn deploy_syncs_a_directory() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let app = cwd.join("app");
    small_app(&app);

    let out = server.ok(cwd, &["deploy", "app"]);
    assert_eq!(
        out,
        "created hello\ncreated users.get\ncreated users.list\nroute added GET /users/:id -> users.get\n\
         3 created, 0 updated, 0 deleted, 1 routes added, 0 routes deleted\n"
    );
    assert_eq!(server.action_names(cwd), ["hello", "users.get", "users.list"]);
    assert_eq!(server.run(cwd, "users.get"), "user v1");
    let details: serde_json::Value = serde_json::from_str(&server.ok(cwd, &["--json", "get", "users.get"])).unwrap();
    assert_eq!((details["maxmem"].as_u64(), details["timeout"].as_u64()), (Some(2048), Some(700)), "{details}");
    let (status, body) = http_get(&server.routes_url, "/users/42");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("user v1"), "{body}");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(app.join(".sl/deployed.json")).unwrap()).unwrap();
    assert_eq!(state, serde_json::json!({ server.url.clone(): ["hello", "users.get", "users.list"] }));

    // Again: nothing to do.
    assert_eq!(server.ok(cwd, &["deploy", "app"]), "nothing changed\n");

    // One file edited: that file only.
    write(&app, "hello.lua", "function main(args)\n  return 'hello v2'\nend\n");
    assert_eq!(
        server.ok(cwd, &["deploy", "app"]),
        "updated hello\n0 created, 1 updated, 0 deleted, 0 routes added, 0 routes deleted\n"
    );
    assert_eq!(server.run(cwd, "hello"), "hello v2");

    // A limit changed in the manifest, a second route.
    write(
        &app,
        "sl.toml",
        "[actions.\"users.get\"]\nmaxmem = 2048\ntimeout = 900\n\n\
         [[routes]]\nmethod = \"GET\"\npath = \"/users/:id\"\naction = \"users.get\"\n\n\
         [[routes]]\nmethod = \"GET\"\npath = \"/users\"\naction = \"users.list\"\n",
    );
    assert_eq!(
        server.ok(cwd, &["deploy", "app"]),
        "updated users.get\nroute added GET /users -> users.list\n\
         0 created, 1 updated, 0 deleted, 1 routes added, 0 routes deleted\n"
    );
    let details: serde_json::Value = serde_json::from_str(&server.ok(cwd, &["--json", "get", "users.get"])).unwrap();
    assert_eq!(details["timeout"].as_u64(), Some(900));

    // A file removed (and its manifest entries): the action and its route go.
    std::fs::remove_file(app.join("users/get.lua")).unwrap();
    write(&app, "sl.toml", "[[routes]]\nmethod = \"GET\"\npath = \"/users\"\naction = \"users.list\"\n");
    assert_eq!(
        server.ok(cwd, &["deploy", "app"]),
        "route deleted GET /users/:id -> users.get\ndeleted users.get\n\
         0 created, 0 updated, 1 deleted, 0 routes added, 1 routes deleted\n"
    );
    assert_eq!(server.action_names(cwd), ["hello", "users.list"]);
    assert_eq!(server.ok(cwd, &["route", "list"]).lines().count(), 2, "the header and /users");
    assert_eq!(server.ok(cwd, &["deploy", "app"]), "nothing changed\n");

    // Actions this directory never deployed are left alone.
    write(cwd, "other.lua", "function main() return 'other' end\n");
    server.ok(cwd, &["create", "other", "-f", "other.lua"]);
    server.ok(cwd, &["route", "add", "GET", "/other", "other"]);
    assert_eq!(server.ok(cwd, &["deploy", "app"]), "nothing changed\n");
    assert_eq!(server.action_names(cwd), ["hello", "other", "users.list"]);
}

#[test]
fn deploy_reports_a_syntax_error_with_file_and_line() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let app = cwd.join("app");
    small_app(&app);
    server.ok(cwd, &["deploy", "app"]);

    // users/get.lua broken on line 3, hello.lua changed, a new broken file.
    write(&app, "users/get.lua", "function main(args)\n  local x\n  x x = 1\n  return 'user v2'\nend\n");
    write(&app, "hello.lua", "function main(args)\n  return 'hello v2'\nend\n");
    write(&app, "new/thing.lua", "function main(args)\n  return (\nend\n");
    let o = server.slcli(cwd, &["deploy", "app"]);
    assert_exit(&o, 1);
    let err = stderr(&o);
    assert!(err.contains("users/get.lua:3: "), "{err}");
    assert!(err.contains("new/thing.lua:3: "), "{err}");
    assert!(!err.contains("users.get:"), "chunk names are mapped to files: {err}");
    assert_eq!(
        stdout(&o),
        "updated hello\n0 created, 1 updated, 0 deleted, 0 routes added, 0 routes deleted, 2 failed\n"
    );
    // The old version keeps answering; the good change went through; nothing half-made.
    assert_eq!(server.run(cwd, "users.get"), "user v1");
    assert_eq!(server.run(cwd, "hello"), "hello v2");
    assert_eq!(server.action_names(cwd), ["hello", "users.get", "users.list"]);

    // Fixed: deployed.
    write(&app, "users/get.lua", "function main(args)\n  return 'user v2'\nend\n");
    std::fs::remove_file(app.join("new/thing.lua")).unwrap();
    assert_eq!(
        server.ok(cwd, &["deploy", "app"]),
        "updated users.get\n0 created, 1 updated, 0 deleted, 0 routes added, 0 routes deleted\n"
    );
    assert_eq!(server.run(cwd, "users.get"), "user v2");
}

#[test]
fn deploy_checks_the_directory_before_changing_anything() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let app = cwd.join("app");
    write(&app, "good.lua", "function main() return 1 end\n");
    write(&app, "bad name.lua", "function main() return 2 end\n");
    let o = server.slcli(cwd, &["deploy", "app"]);
    assert_exit(&o, 1);
    assert!(stderr(&o).starts_with("error: bad name.lua: would become the action name 'bad name'"), "{}", stderr(&o));
    assert!(server.action_names(cwd).is_empty());

    std::fs::remove_file(app.join("bad name.lua")).unwrap();
    write(&app, "sl.toml", "[actions.good]\nmaxmem = 1024\ntimeuot = 5\n");
    let o = server.slcli(cwd, &["deploy", "app"]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("sl.toml") && stderr(&o).contains("unknown field `timeuot`"), "{}", stderr(&o));
    write(&app, "sl.toml", "[[routes]]\nmethod = \"GET\"\npath = \"/x\"\naction = \"missing\"\n");
    let o = server.slcli(cwd, &["deploy", "app"]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("no file in the directory becomes the action 'missing'"), "{}", stderr(&o));
    assert!(server.action_names(cwd).is_empty());

    let o = server.slcli(cwd, &["deploy", "no-such-dir"]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("cannot read directory no-such-dir"), "{}", stderr(&o));
}

#[cfg(unix)]
#[test]
fn deploy_test_and_dev_follow_links_inside_the_directory_only() {
    use std::os::unix::fs::symlink;
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let app = cwd.join("app");
    write(&app, "real.lua", "function main() return 'v1' end\n");
    symlink("real.lua", app.join("alias.lua")).unwrap();
    assert_eq!(
        server.ok(cwd, &["deploy", "app"]),
        "created alias\ncreated real\n2 created, 0 updated, 0 deleted, 0 routes added, 0 routes deleted\n"
    );
    assert_eq!(server.run(cwd, "alias"), "v1");

    // A link out of the directory: refused, named with its target, and nothing is sent
    // (not even the change to real.lua).
    write(cwd, "secret.lua", "function main() return 'SECRET' end\n");
    symlink("../secret.lua", app.join("leak.lua")).unwrap();
    write(&app, "real.lua", "function main() return 'v2' end\n");
    let o = server.slcli(cwd, &["deploy", "app"]);
    assert_exit(&o, 1);
    let secret = std::fs::canonicalize(cwd.join("secret.lua")).unwrap();
    assert_eq!(
        stderr(&o),
        format!(
            "error: leak.lua is a symbolic link to {}, outside the app directory app; slcli reads only files \
             inside the directory: copy the file in, or link to a file inside it\n",
            secret.display()
        )
    );
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    assert_eq!(server.action_names(cwd), ["alias", "real"]);
    assert_eq!(server.run(cwd, "real"), "v1");

    // The same for a test file, before any temporary action is made.
    write(cwd, "elsewhere_test.lua", "function test_x() end\n");
    symlink(cwd.join("elsewhere_test.lua"), app.join("x_test.lua")).unwrap();
    let o = server.slcli(cwd, &["test", "app"]);
    assert_exit(&o, 1);
    assert!(stderr(&o).starts_with("error: x_test.lua is a symbolic link to "), "{}", stderr(&o));
    assert_eq!(server.action_names(cwd), ["alias", "real"]);

    // `slcli dev` says so and keeps watching; without the link it deploys.
    let mut child = server.command(cwd, &["dev", "app"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (out, err) = (Lines::default(), Lines::default());
    out.follow(child.stdout.take().unwrap());
    err.follow(child.stderr.take().unwrap());
    let _child = Killed(child);
    out.wait_for("watching app for changes", 0, Duration::from_secs(10));
    err.wait_for("error: leak.lua is a symbolic link to ", 0, Duration::from_secs(5));
    assert_eq!(server.run(cwd, "real"), "v1");
    std::fs::remove_file(app.join("leak.lua")).unwrap();
    out.wait_for("] updated real\n", 0, Duration::from_secs(5));
    assert_eq!(server.run(cwd, "real"), "v2");
    assert!(server.action_names(cwd).iter().all(|n| n != "leak"));
}

/// Kills the child when dropped (the test may fail half way).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn dev_redeploys_saved_files() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let app = cwd.join("app");
    small_app(&app);

    let mut child = server.command(cwd, &["dev", "app"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (out, err) = (Lines::default(), Lines::default());
    out.follow(child.stdout.take().unwrap());
    err.follow(child.stderr.take().unwrap());
    let mut child = Killed(child);
    let text = out.wait_for("watching app for changes", 0, Duration::from_secs(10));
    assert!(text.contains("] created users.get\n"), "{text}");
    assert!(text.contains("] 3 created, 0 updated, 0 deleted, 1 routes added, 0 routes deleted\n"), "{text}");
    let stamped = text.lines().all(|l| l.len() > 11 && l.starts_with('[') && &l[9..11] == "] ");
    assert!(stamped, "every line starts with [HH:MM:SS]: {text}");
    assert_eq!(server.run(cwd, "hello"), "hello v1");

    // A save is live within a second or so; a save of the server's
    // configuration (config.lua at the top) is not a change of the app.
    let seen = out.text().len();
    write(&app, "config.lua", "Server { port = 8090 }\n");
    write(&app, "hello.lua", "function main(args)\n  return 'hello v2'\nend\n");
    let saved = Instant::now();
    while server.run(cwd, "hello") != "hello v2" {
        assert!(saved.elapsed() < Duration::from_secs(3), "not redeployed within 3 s:\n{}", out.text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = out.wait_for("0 created, 1 updated", seen, Duration::from_secs(5));
    assert!(text[seen..].contains("] updated hello\n"), "{text}");
    assert!(!text.contains("config"), "{text}");
    assert_eq!(err.text(), "", "nothing went wrong");

    // A syntax error: reported with file and line; the last good version keeps answering.
    write(&app, "hello.lua", "function main(args)\n  return 'hello v3' +\nend\n");
    let errors = err.wait_for("hello.lua:3: ", 0, Duration::from_secs(5));
    assert!(errors.starts_with('['), "{errors}");
    assert_eq!(server.run(cwd, "hello"), "hello v2");

    // Still watching: a new file and a fix.
    write(&app, "extra.lua", "function main() return 'extra' end\n");
    write(&app, "hello.lua", "function main(args)\n  return 'hello v4'\nend\n");
    let start = Instant::now();
    while server.action_names(cwd).iter().all(|n| n != "extra") || server.run(cwd, "hello") != "hello v4" {
        assert!(start.elapsed() < Duration::from_secs(5), "{}\n{}", out.text(), err.text());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(child.0.try_wait().unwrap().is_none(), "slcli dev exited: {}", err.text());
}

#[test]
fn dev_needs_the_server_and_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    write(&cwd.join("app"), "a.lua", "function main() return 1 end\n");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let o = Command::new(SLCLI)
        .args(["--url", &format!("http://{closed}"), "dev", "app"])
        .current_dir(cwd)
        .env("SLCLI_CONFIG", cwd.join("none.json"))
        .output()
        .unwrap();
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("slcli dev needs the server at start"), "{}", stderr(&o));

    let server = Server::start();
    let o = server.slcli(cwd, &["dev", "nope"]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("nope is not a directory"), "{}", stderr(&o));

    // The directory going away ends it.
    let mut child = server.command(cwd, &["dev", "app"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let out = Lines::default();
    out.follow(child.stdout.take().unwrap());
    let err = Lines::default();
    err.follow(child.stderr.take().unwrap());
    let mut child = Killed(child);
    out.wait_for("watching", 0, Duration::from_secs(10));
    std::fs::remove_dir_all(cwd.join("app")).unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "slcli dev still running");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1));
    err.wait_for("app is gone", 0, Duration::from_secs(2));
}

#[test]
fn test_runs_cases_and_cleans_up() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let app = cwd.join("app");
    write(
        &app,
        "items/create.lua",
        "function main(args)\n  if args.name == nil then error('name missing') end\n  \
         return { name = args.name, tags = { 'new' } }\nend\n",
    );
    write(
        &app,
        "items_test.lua",
        "-- tests of items.create\n\
         function test_create()\n  \
           local item = invoke('items.create', { name = 'pen' })\n  \
           assert_eq(item, { name = 'pen', tags = { 'new' } })\n\
         end\n\
         \n\
         function test_wrong()\n  \
           local item = invoke('items.create', { name = 'pen' })\n  \
           assert_eq(item.name, 'pencil', 'the name')\n\
         end\n\
         \n\
         function test_needs_a_name()\n  \
           assert_error(function() invoke('items.create', {}) end, 'name missing')\n  \
           assert_ne(1, 2)\n\
         end\n\
         \n\
         function helper() error('not a test') end\n",
    );
    server.ok(cwd, &["deploy", "app"]);

    let o = server.slcli(cwd, &["test", "app"]);
    assert_exit(&o, 1);
    assert_eq!(
        stdout(&o),
        "ok 1 - items_test.lua: test_create\n\
         ok 2 - items_test.lua: test_needs_a_name\n\
         not ok 3 - items_test.lua: test_wrong\n  \
           # items_test.lua:9: the name: expected \"pencil\", got \"pen\"\n\
         2 passed, 1 failed\n",
        "stderr: {}",
        stderr(&o)
    );
    assert!(server.action_names(cwd).iter().all(|n| !n.starts_with("_test.")), "{:?}", server.action_names(cwd));

    let o = server.slcli(cwd, &["test", "app", "--filter", "create"]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "ok 1 - items_test.lua: test_create\n1 passed, 0 failed\n");

    // A test file that does not compile is one failure, with file and line.
    write(&app, "sub/broken_test.lua", "function test_x()\n  return (\nend\n");
    let o = server.slcli(cwd, &["test", "app", "--filter", "create"]);
    assert_exit(&o, 1);
    assert!(stdout(&o).contains("not ok 2 - sub/broken_test.lua\n  # sub/broken_test.lua:3: "), "{}", stdout(&o));
    assert!(stdout(&o).ends_with("1 passed, 1 failed\n"), "{}", stdout(&o));
    assert!(server.action_names(cwd).iter().all(|n| !n.starts_with("_test.")), "{:?}", server.action_names(cwd));
}

#[test]
fn test_a_case_that_fails_its_invocation() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    write(
        cwd,
        "t/limits_test.lua",
        "function test_memory()\n  local t = {}\n  while true do t[#t + 1] = ('x'):rep(1024) end\nend\n\n\
         function test_after()\n  assert_eq({1, {2}}, {1, {2}})\nend\n",
    );
    let o = server.slcli(cwd, &["test", "t"]);
    assert_exit(&o, 1);
    let out = stdout(&o);
    assert!(out.contains("ok 1 - limits_test.lua: test_after\n"), "{out}");
    assert!(out.contains("not ok 2 - limits_test.lua: test_memory\n  # "), "{out}");
    assert!(out.contains("memory"), "{out}");
    assert!(out.ends_with("1 passed, 1 failed\n"), "{out}");
    assert!(server.action_names(cwd).is_empty(), "{:?}", server.action_names(cwd));

    let o = server.slcli(&cwd.join("t"), &["test", "--filter", "zzz", "."]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("no test case matches --filter \"zzz\""), "{}", stderr(&o));
    std::fs::remove_file(cwd.join("t/limits_test.lua")).unwrap();
    let o = server.slcli(cwd, &["test", "t"]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("no test files (*_test.lua) under t"), "{}", stderr(&o));
}

#[test]
fn deploy_creates_libraries_before_the_actions_that_require_them() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let app = cwd.join("app");
    // `api` sorts first, but its chunk needs `util` when it is created.
    write(&app, "api.lua", "local util = require('util')\nfunction main() return util.greet('x') end\n");
    write(&app, "util.lua", "return { greet = function(n) return 'hi ' .. n end }\n");
    assert_eq!(
        server.ok(cwd, &["deploy", "app"]),
        "created util\ncreated api\n2 created, 0 updated, 0 deleted, 0 routes added, 0 routes deleted\n"
    );
    assert_eq!(server.run(cwd, "api"), "hi x");
    // Both changed, the new api needing the new util at load time.
    write(
        &app,
        "api.lua",
        "local util = require('util')\nassert(util.v == 2)\nfunction main() return util.greet('y') end\n",
    );
    write(&app, "util.lua", "return { v = 2, greet = function(n) return 'hello ' .. n end }\n");
    assert_eq!(
        server.ok(cwd, &["deploy", "app"]),
        "updated util\nupdated api\n0 created, 2 updated, 0 deleted, 0 routes added, 0 routes deleted\n"
    );
    assert_eq!(server.run(cwd, "api"), "hello y");
}
