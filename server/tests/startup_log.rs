//! What `slserver` writes at start-up when its output goes to a file, as in
//! `slserver --config config.lua > sl.log 2>&1`: plain text (no colour
//! codes, which only a terminal understands) and no line twice.

mod common;

use std::collections::HashMap;
use std::fs::File;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{plugin_lib, BIN};

#[test]
fn a_log_written_to_a_file_is_plain_text_with_each_line_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let skeleton = plugin_lib("sl_skeleton");
    std::fs::write(
        dir.join("config.lua"),
        format!(
            "Sqlite {{ path = \"data/sl.db\" }}\nLogger {{ level = \"info\" }}\nPlugin \"skeleton\" {{ file = {:?} }}\n",
            skeleton.display().to_string()
        ),
    )
    .unwrap();
    let log_path = dir.join("sl.log");
    let log = File::create(&log_path).unwrap();
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(dir.join("config.lua"))
        .args(["--listen", "127.0.0.1:0", "--routes-listen", "127.0.0.1:0"])
        .env_remove("SL_LOG")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let start = Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&log_path).unwrap();
        if text.contains("slserver serving routes on ") {
            break text;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no start-up within 20 s:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Whatever else start-up writes comes before the routes line; leave it time anyway.
    std::thread::sleep(Duration::from_millis(200));
    let text = std::fs::read_to_string(&log_path).unwrap_or(text);
    let _ = child.kill();
    let _ = child.wait();

    assert!(!text.contains('\u{1b}'), "colour codes in a log file:\n{text:?}");
    // Log lines start with a timestamp: compare what follows it.
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for line in text.lines() {
        let body = match line.split_once(' ') {
            Some((stamp, rest)) if stamp.ends_with('Z') => rest.trim_start(),
            _ => line,
        };
        *seen.entry(body).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "lines written more than once: {twice:?}\n{text}");
    for once in
        ["slserver listening on http://127.0.0.1:", "slserver serving routes on http://127.0.0.1:", "plugin loaded"]
    {
        assert_eq!(text.matches(once).count(), 1, "{once:?} in:\n{text}");
    }
    assert!(text.lines().any(|l| l.contains("INFO") && l.contains("started") && l.contains("workers=1")), "{text}");
}
