//! `slcli schedule` and the `[schedules]` of `slcli deploy`, end to end:
//! the real `slserver` and the real `slcli`, on 127.0.0.1 with a temporary
//! data directory. The schedules that must fire here fire every second, so
//! their runs show up in `slcli invocations` within a few seconds.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{assert_exit, fails, json_of, stderr, stdout, wait_until, write, Server};
use serde_json::{json, Value};

/// The invocation records of `action`, newest first.
fn records(server: &Server, cwd: &Path, action: &str) -> Vec<Value> {
    json_of(server, cwd, &["invocations", action, "-n", "1000"]).as_array().unwrap().clone()
}

/// The names of the server's schedules.
fn schedule_names(server: &Server, cwd: &Path) -> Vec<String> {
    let list = json_of(server, cwd, &["schedule", "list"]);
    list.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect()
}

/// `DIR/.sl/deployed.json`, parsed.
fn state(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(".sl/deployed.json")).unwrap()).unwrap()
}

/// An action that returns what its firing says of itself.
const TICK: &str = "function main(args)\n  return args.schedule\nend\n";

#[test]
fn schedule_commands() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    write(cwd, "report.lua", TICK);
    server.ok(cwd, &["create", "report", "-f", "report.lua"]);

    assert_eq!(server.ok(cwd, &["schedule", "list"]), "[]\n");
    let created = server.ok(
        cwd,
        &[
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
        ],
    );
    let nightly = json_of(&server, cwd, &["schedule", "get", "nightly"]);
    let next = nightly["next_at"].as_str().unwrap().to_string();
    assert_eq!(created, format!("schedule created nightly (0 9 * * * in Europe/London -> report, next {next})\n"));
    // 09:00 in London is 09:00 UTC in winter and 08:00 UTC in summer.
    assert!(next.ends_with("T09:00:00.000Z") || next.ends_with("T08:00:00.000Z"), "{next}");
    assert_eq!(
        (&nightly["args"], &nightly["overlap"], &nightly["catch_up"], &nightly["jitter_ms"], &nightly["fired"]),
        (&json!({"kind": "daily"}), &json!("skip"), &json!("none"), &json!(0), &json!(0))
    );

    // --json: the server's schedule; the policies and jitter as given.
    let tick = json_of(
        &server,
        cwd,
        &[
            "schedule",
            "create",
            "tick",
            "--action",
            "report",
            "--spec",
            "@every 1h",
            "--overlap",
            "queue",
            "--catch-up",
            "all:5",
            "--jitter",
            "1m30s",
        ],
    );
    assert_eq!(
        (&tick["name"], &tick["spec"], &tick["time_zone"], &tick["args"]),
        (&json!("tick"), &json!("@every 1h"), &json!("UTC"), &json!({}))
    );
    assert_eq!(
        (&tick["overlap"], &tick["catch_up"], &tick["jitter_ms"]),
        (&json!("queue"), &json!("all:5"), &json!(90_000))
    );
    // An @every schedule fires one interval after its creation.
    assert_eq!(tick["next"].as_i64().unwrap() - tick["created"].as_i64().unwrap(), 3_600_000, "{tick}");

    // What the server refuses, with its message.
    fails(
        &server,
        cwd,
        &["schedule", "create", "x", "--action", "report", "--spec", "61 * * * *"],
        "error: invalid cron expression '61 * * * *': ",
    );
    fails(
        &server,
        cwd,
        &["schedule", "create", "x", "--action", "report", "--spec", "@every 1s", "--tz", "Mars/Olympus"],
        "error: unknown time zone 'Mars/Olympus' (400 bad_request)",
    );
    fails(
        &server,
        cwd,
        &["schedule", "create", "x", "--action", "report", "--spec", "@every 100ms"],
        "error: interval must be at least 1s (got '@every 100ms') (400 bad_request)",
    );
    fails(
        &server,
        cwd,
        &["schedule", "create", "x", "--action", "report", "--spec", "0 0 30 2 *"],
        "error: '0 0 30 2 *' matches no date: the schedule would never fire (400 bad_request)",
    );
    fails(
        &server,
        cwd,
        &["schedule", "create", "x", "--action", "report", "--spec", "@daily", "--jitter", "2d"],
        "error: jitter_ms must be at most 86400000 (a day) (400 bad_request)",
    );
    fails(
        &server,
        cwd,
        &["schedule", "create", "x", "--action", "nope", "--spec", "@daily"],
        "error: no action named 'nope' (404 not_found)",
    );
    fails(
        &server,
        cwd,
        &["schedule", "create", "nightly", "--action", "report", "--spec", "@daily"],
        "error: a schedule named 'nightly' already exists (409 conflict)",
    );
    fails(
        &server,
        cwd,
        &["schedule", "create", "bad name", "--action", "report", "--spec", "@daily"],
        "error: invalid schedule name 'bad name'",
    );
    let o = fails(
        &server,
        cwd,
        &["--json", "schedule", "create", "nightly", "--action", "report", "--spec", "@daily"],
        "(409 conflict)",
    );
    assert_eq!(serde_json::from_str::<Value>(&stdout(&o)).unwrap()["error"]["kind"], "conflict");
    assert_eq!(schedule_names(&server, cwd), ["nightly", "tick"], "nothing refused was made");

    let table = server.ok(cwd, &["schedule", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert_eq!(lines[0], "NAME     SPEC       TIME ZONE      ACTION  FIRED  NEXT", "{table}");
    assert_eq!(lines[1], format!("nightly  0 9 * * *  Europe/London  report  0      {next}"), "{table}");
    assert!(lines[2].starts_with("tick     @every 1h  UTC            report  0      "), "{table}");

    let shown = server.ok(cwd, &["schedule", "get", "tick"]);
    assert!(
        shown.starts_with(
            "name:             tick\naction:           report\nspec:             @every 1h\n\
             time zone:        UTC\nargs:             {}\noverlap:          queue\ncatch up:         all:5\n\
             jitter:           90000 ms\ncreated:          "
        ),
        "{shown}"
    );
    assert!(
        shown.ends_with(&format!(
            "\nfired:            0\nlast fired:       never\nlast invocation:  -\nnext:             {}\n",
            tick["next_at"].as_str().unwrap()
        )),
        "{shown}"
    );
    fails(&server, cwd, &["schedule", "get", "nope"], "error: no schedule named 'nope' (404 not_found)");

    // An action that schedules fire cannot go.
    fails(
        &server,
        cwd,
        &["delete", "report"],
        "error: schedules fire action 'report' (nightly, tick): delete them first (409 conflict)",
    );

    assert_eq!(server.ok(cwd, &["schedule", "delete", "nightly"]), "schedule deleted nightly\n");
    fails(&server, cwd, &["schedule", "delete", "nightly"], "error: no schedule named 'nightly' (404 not_found)");
    assert_eq!(json_of(&server, cwd, &["schedule", "delete", "tick"]), json!({"deleted": true}));
    assert_eq!(server.ok(cwd, &["schedule", "list"]), "[]\n");
    server.ok(cwd, &["delete", "report"]);
}

#[test]
fn a_schedule_fires_its_action_every_second() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    write(cwd, "tick.lua", TICK);
    write(cwd, "args.json", "{\"n\": 7}\n");
    server.ok(cwd, &["create", "tick", "-f", "tick.lua"]);
    server.ok(
        cwd,
        &["schedule", "create", "beat", "--action", "tick", "--spec", "@every 1s", "--args-file", "args.json"],
    );

    let succeeded = || records(&server, cwd, "tick").iter().filter(|r| r["status"] == "succeeded").count();
    wait_until(|| format!("{:?}", records(&server, cwd, "tick")), || succeeded() >= 2);
    for r in records(&server, cwd, "tick") {
        assert_eq!((&r["args"]["n"], &r["args"]["schedule"]["name"]), (&json!(7), &json!("beat")), "{r}");
        // The newest may still be queued or running.
        if r["status"] == "succeeded" {
            assert_eq!(r["result"], r["args"]["schedule"], "{r}");
        } else {
            assert!(r["status"] == "queued" || r["status"] == "running", "{r}");
        }
    }
    let beat = json_of(&server, cwd, &["schedule", "get", "beat"]);
    assert!(beat["fired"].as_u64().unwrap() >= 2, "{beat}");
    let ids: Vec<Value> = records(&server, cwd, "tick").iter().map(|r| r["id"].clone()).collect();
    assert!(ids.contains(&beat["last_invocation"]), "{beat}");
    let shown = server.ok(cwd, &["schedule", "get", "beat"]);
    assert!(shown.contains(&format!("\nlast invocation:  {}\n", beat["last_invocation"].as_str().unwrap())), "{shown}");
    assert!(!shown.contains("last fired:       never"), "{shown}");
    let runs = server.ok(cwd, &["invocations", "tick"]);
    assert!(runs.lines().count() >= 3 && runs.contains("succeeded"), "{runs}");
    server.ok(cwd, &["schedule", "delete", "beat"]);
}

#[test]
fn deploy_creates_and_deletes_schedules_that_fire() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let app = cwd.join("app");
    write(&app, "tick.lua", TICK);
    let manifest = |n: u32| {
        format!("[schedules.tick]\naction = \"tick\"\nspec = \"@every 1s\"\n\n[schedules.tick.args]\nn = {n}\n")
    };
    write(&app, "sl.toml", &manifest(7));

    assert_eq!(
        server.ok(cwd, &["deploy", "app"]),
        "created tick\nschedule created tick (@every 1s in UTC -> tick)\n\
         1 created, 0 updated, 0 deleted, 0 routes added, 0 routes deleted, 1 schedules created\n"
    );
    assert_eq!(
        state(&app),
        json!({ server.url.clone(): {"actions": ["tick"], "topics": [], "subscriptions": [], "schedules": ["tick"]} })
    );
    // The server's schedule is the manifest's: nothing to do.
    assert_eq!(server.ok(cwd, &["deploy", "app"]), "nothing changed\n");

    // It fires: `slcli invocations tick` lists its runs within a few seconds.
    wait_until(
        || server.ok(cwd, &["invocations", "tick"]),
        || {
            let runs = server.ok(cwd, &["invocations", "tick"]);
            runs.lines().filter(|l| l.contains(" tick ") && l.contains("succeeded")).count() >= 2
        },
    );
    let fired = records(&server, cwd, "tick");
    assert_eq!((&fired[0]["args"]["n"], &fired[0]["args"]["schedule"]["name"]), (&json!(7), &json!("tick")));
    let first = json_of(&server, cwd, &["schedule", "get", "tick"]);

    // Changed args: deleted and created again, its history and @every anchor restarting.
    write(&app, "sl.toml", &manifest(8));
    assert_eq!(
        server.ok(cwd, &["deploy", "app"]),
        "schedule recreated tick (@every 1s in UTC -> tick)\n\
         0 created, 0 updated, 0 deleted, 0 routes added, 0 routes deleted, 1 schedules recreated\n"
    );
    let again = json_of(&server, cwd, &["schedule", "get", "tick"]);
    assert_eq!(again["args"], json!({"n": 8}));
    let created = again["created"].as_i64().unwrap();
    assert!(created > first["created"].as_i64().unwrap(), "{first}\n{again}");
    assert_eq!((again["next"].as_i64().unwrap() - created) % 1000, 0, "@every counts from the new creation: {again}");
    // Its firings so far are the new schedule's only.
    assert!(again["last_fired"].is_null() || again["last_fired"].as_i64().unwrap() > created, "{first}\n{again}");
    wait_until(
        || format!("{:?}", records(&server, cwd, "tick")[0]),
        || records(&server, cwd, "tick")[0]["args"]["n"] == json!(8),
    );

    // Removed from sl.toml: deleted, and it fires no more.
    std::fs::remove_file(app.join("sl.toml")).unwrap();
    assert_eq!(
        server.ok(cwd, &["deploy", "app"]),
        "schedule deleted tick\n0 created, 0 updated, 0 deleted, 0 routes added, 0 routes deleted, 1 schedules deleted\n"
    );
    assert!(schedule_names(&server, cwd).is_empty());
    assert_eq!(state(&app), json!({ server.url.clone(): ["tick"] }));
    assert_eq!(server.ok(cwd, &["deploy", "app"]), "nothing changed\n");
    // A run queued just before the delete may still finish; then nothing more.
    std::thread::sleep(Duration::from_millis(1500));
    let runs = records(&server, cwd, "tick").len();
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(records(&server, cwd, "tick").len(), runs, "no firing after the delete");

    // A schedule and the action it fires, both gone from the directory: the schedule goes first.
    write(&app, "sl.toml", &manifest(9));
    server.ok(cwd, &["deploy", "app"]);
    std::fs::remove_file(app.join("sl.toml")).unwrap();
    std::fs::remove_file(app.join("tick.lua")).unwrap();
    assert_eq!(
        server.ok(cwd, &["deploy", "app"]),
        "schedule deleted tick\ndeleted tick\n\
         0 created, 0 updated, 1 deleted, 0 routes added, 0 routes deleted, 1 schedules deleted\n"
    );
    assert!(server.action_names(cwd).is_empty());
}

#[test]
fn deploy_checks_schedules_before_changing_anything() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let app = cwd.join("app");
    write(&app, "tick.lua", TICK);

    // Checked locally, as the server would: nothing is sent.
    write(
        &app,
        "sl.toml",
        "[schedules.a]\naction = \"tick\"\nspec = \"@every 2x\"\n\n\
         [schedules.b]\naction = \"tick\"\nspec = \"0 9 * * *\"\ntime_zone = \"Europe/Londres\"\n\n\
         [schedules.c]\naction = \"tick\"\nspec = \"@daily\"\ncatch_up = \"sometimes\"\n",
    );
    let o = fails(&server, cwd, &["deploy", "app"], "sl.toml: [schedules.\"a\"]: invalid interval '@every 2x': ");
    for needle in [
        "sl.toml: [schedules.\"b\"]: unknown time zone 'Europe/Londres'",
        "sl.toml: [schedules.\"c\"]: invalid catch-up policy 'sometimes'",
    ] {
        assert!(stderr(&o).contains(needle), "{needle}: {}", stderr(&o));
    }
    write(&app, "sl.toml", "[schedules.a]\naction = \"tick\"\nspec = \"@daily\"\nevery = \"1s\"\n");
    fails(&server, cwd, &["deploy", "app"], "unknown field `every`");
    // Checked against the server: an action neither in the directory nor there.
    write(&app, "sl.toml", "[schedules.a]\naction = \"nothing\"\nspec = \"@daily\"\n");
    fails(
        &server,
        cwd,
        &["deploy", "app"],
        "sl.toml: [schedules.\"a\"]: the action 'nothing' is neither a file of the directory (nothing.lua) nor on the server",
    );
    assert!(server.action_names(cwd).is_empty(), "nothing was changed");
    assert!(schedule_names(&server, cwd).is_empty());

    // An action the server has (made elsewhere) may be named; a schedule made
    // elsewhere that fires an action of this directory is left alone, and keeps
    // that action from being deleted.
    write(cwd, "elsewhere.lua", TICK);
    server.ok(cwd, &["create", "elsewhere", "-f", "elsewhere.lua"]);
    write(&app, "sl.toml", "[schedules.a]\naction = \"elsewhere\"\nspec = \"@daily\"\n");
    assert_eq!(
        server.ok(cwd, &["deploy", "app"]),
        "created tick\nschedule created a (@daily in UTC -> elsewhere)\n\
         1 created, 0 updated, 0 deleted, 0 routes added, 0 routes deleted, 1 schedules created\n"
    );
    server.ok(cwd, &["schedule", "create", "theirs", "--action", "tick", "--spec", "@daily"]);
    std::fs::remove_file(app.join("tick.lua")).unwrap();
    std::fs::remove_file(app.join("sl.toml")).unwrap();
    let o = server.slcli(cwd, &["deploy", "app"]);
    assert_exit(&o, 1);
    assert_eq!(
        stdout(&o),
        "schedule deleted a\n0 created, 0 updated, 0 deleted, 0 routes added, 0 routes deleted, \
         1 schedules deleted, 1 failed\n"
    );
    assert!(
        stderr(&o).contains("cannot delete tick: schedules fire action 'tick' (theirs): delete them first"),
        "{}",
        stderr(&o)
    );
    assert_eq!(schedule_names(&server, cwd), ["theirs"]);
    // Once it is gone, the next deploy deletes the action.
    server.ok(cwd, &["schedule", "delete", "theirs"]);
    assert_eq!(
        server.ok(cwd, &["deploy", "app"]),
        "deleted tick\n0 created, 0 updated, 1 deleted, 0 routes added, 0 routes deleted\n"
    );
    assert_eq!(server.action_names(cwd), ["elsewhere"]);
}
