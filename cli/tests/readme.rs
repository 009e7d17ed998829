//! The README is its own test: the command blocks of README.md (Quick
//! start, walkthrough, tutorial, plugin guide), taken from the file itself,
//! run in order in a fresh copy of the repository against the real
//! `slserver` and `slcli` of this build, and each documented output is
//! checked. A command or an output changed in the README or in the code
//! without the other fails here.
//!
//! How README.md is read (the marks are HTML comments, which GitHub does
//! not show, or a comment on a command line, which a shell ignores):
//!
//! - A ```` ```console ```` block is a shell session: each `$ COMMAND` line
//!   (continued by a trailing `\`) is run in one `bash`, so variables,
//!   `cd` and `export` carry over from one command to the next. The lines
//!   after a command, up to the next, are its output (stdout and stderr
//!   together), all of it, line by line. In an output line `...` stands
//!   for any text; a line that is only `...` for any number of lines; a
//!   JSON object matches the same object with its members in another order
//!   (an action's result is a Lua table, whose keys have no order), and so
//!   does a whole output that is one JSON object (on several lines). A
//!   command whose output has a line starting with `error:` must fail
//!   (exit status other than 0); every other command must succeed.
//! - A command ending with `# (runs until Ctrl-C)` (a server, `slcli dev`)
//!   is started in the background, in a process group of its own, and its
//!   output so far must match the lines after it within 30 s (more may
//!   follow).
//! - `<!-- readme-test: output of PREFIX -->` before a block: the block's
//!   lines must show up within 15 s among the output of the running
//!   background command whose text starts with `PREFIX` (in another
//!   terminal, for a reader).
//! - `<!-- readme-test: ctrl-c PREFIX -->`: that command gets Ctrl-C
//!   (SIGINT to its process group) and must exit within 15 s.
//! - `<!-- readme-test: write PATH -->` before a block: the block is saved
//!   as `PATH`, relative to the session's current directory (the file the
//!   README tells the reader to save).
//! - `<!-- readme-test: shows PATH -->` before a block: the block is the
//!   text of the repository's file `PATH`, as it is when the step comes.
//! - `<!-- readme-test: skip REASON -->` before a block: not run, for the
//!   reason given. A ```` ```sh ```` block must have one: commands that the
//!   test does not run say why.
//!
//! The session starts in `sl/`, a copy of the repository's files (those
//! git tracks or would, without `target/`), in a temporary directory,
//! whose `target/release` holds links to this build's binaries and plugin
//! libraries, so that the README's `target/release` paths work. The port
//! numbers of the README (`:8080`, `port = 8081`, ...) are moved to free
//! ports, the same in commands, outputs and configuration files. `slcli`
//! keeps its saved URL in the temporary directory (`SLCLI_CONFIG`), curl
//! shows no progress meter (as on a terminal, through `CURL_HOME`), and
//! cargo works offline (`CARGO_NET_OFFLINE`), from the crates this build
//! already downloaded.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const SLCLI: &str = env!("CARGO_BIN_EXE_slcli");

/// The mark of a command that runs until Ctrl-C.
const BACKGROUND: &str = "# (runs until Ctrl-C)";

/// The start of the marks in HTML comments.
const MARK: &str = "<!-- readme-test:";

/// One thing the README has the reader do.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// Run `command`; `expected` is its output.
    Run { line: usize, command: String, expected: Vec<String>, background: bool },
    /// Save `text` as `path`.
    Write { line: usize, path: String, text: String },
    /// `text` is the repository's file `path`.
    Shows { line: usize, path: String, text: String },
    /// `expected` shows up in the output of the background command `of`.
    Output { line: usize, of: String, expected: Vec<String> },
    /// Ctrl-C for the background command `of`.
    CtrlC { line: usize, of: String },
}

/// A mark that applies to the next block.
#[derive(Debug)]
enum BlockMark {
    Skip,
    Write(String),
    Shows(String),
    Output(String),
}

/// The steps of `readme`, in order; an error names the line of a mark or
/// block the test cannot read.
fn parse(readme: &str) -> Result<Vec<Step>, String> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut steps = Vec::new();
    let mut pending: Option<(usize, BlockMark)> = None;
    let mut i = 0;
    while i < lines.len() {
        let n = i + 1;
        let line = lines[i].trim();
        i += 1;
        if let Some(mark) = line.strip_prefix(MARK) {
            let mark = mark.strip_suffix("-->").ok_or(format!("line {n}: a mark is one line ending with -->"))?.trim();
            if let Some((other, _)) = &pending {
                return Err(format!("line {n}: the mark of line {other} has no block after it"));
            }
            let (verb, rest) = mark.split_once(' ').unwrap_or((mark, ""));
            let rest = rest.trim().to_string();
            match verb {
                "skip" if !rest.is_empty() => pending = Some((n, BlockMark::Skip)),
                "write" if !rest.is_empty() => pending = Some((n, BlockMark::Write(rest))),
                "shows" if !rest.is_empty() => pending = Some((n, BlockMark::Shows(rest))),
                "output" if rest.starts_with("of ") => {
                    pending = Some((n, BlockMark::Output(rest["of ".len()..].trim().to_string())))
                }
                "ctrl-c" if !rest.is_empty() => steps.push(Step::CtrlC { line: n, of: rest }),
                _ => {
                    return Err(format!(
                        "line {n}: unknown mark {mark:?} (skip REASON, write PATH, shows PATH, output of PREFIX, \
                         ctrl-c PREFIX)"
                    ))
                }
            }
            continue;
        }
        let Some(info) = line.strip_prefix("```") else {
            if let Some((at, _)) = &pending {
                if !line.is_empty() {
                    return Err(format!("line {at}: a mark must come right before its block (line {n} is between)"));
                }
            }
            continue;
        };
        let start = i;
        while i < lines.len() && lines[i].trim() != "```" {
            i += 1;
        }
        if i == lines.len() {
            return Err(format!("line {n}: the block never ends"));
        }
        let body: Vec<&str> = lines[start..i].to_vec();
        i += 1;
        match pending.take() {
            Some((_, BlockMark::Skip)) => {}
            Some((_, BlockMark::Write(path))) => {
                let mut text = body.join("\n");
                text.push('\n');
                steps.push(Step::Write { line: n, path, text });
            }
            Some((_, BlockMark::Shows(path))) => {
                let mut text = body.join("\n");
                text.push('\n');
                steps.push(Step::Shows { line: n, path, text });
            }
            Some((_, BlockMark::Output(of))) => {
                steps.push(Step::Output { line: n, of, expected: body.iter().map(|l| l.to_string()).collect() })
            }
            None if info.trim() == "console" => steps.extend(transcript(n + 1, &body)?),
            None if ["sh", "bash", "shell"].contains(&info.trim()) => {
                return Err(format!(
                    "line {n}: a ```{} block that is not run: make it a ```console session, or say why it is not \
                     run with <!-- readme-test: skip REASON -->",
                    info.trim()
                ))
            }
            None => {}
        }
    }
    match pending {
        Some((at, _)) => Err(format!("line {at}: the mark has no block after it")),
        None => Ok(steps),
    }
}

/// The commands of a console block whose first line is README line `first`.
fn transcript(first: usize, body: &[&str]) -> Result<Vec<Step>, String> {
    let mut steps: Vec<Step> = Vec::new();
    let mut k = 0;
    while k < body.len() {
        let n = first + k;
        let line = body[k];
        k += 1;
        if let Some(command) = line.strip_prefix("$ ") {
            let mut command = command.to_string();
            while command.ends_with('\\') && k < body.len() {
                command.push('\n');
                command.push_str(body[k]);
                k += 1;
            }
            if command.contains("<<") {
                return Err(format!("line {n}: here-documents are not supported; save files with a write mark"));
            }
            let background = command.trim_end().ends_with(BACKGROUND);
            steps.push(Step::Run { line: n, command, expected: Vec::new(), background });
        } else {
            match steps.last_mut() {
                Some(Step::Run { expected, .. }) => expected.push(line.to_string()),
                _ => return Err(format!("line {n}: output before any `$ ` command")),
            }
        }
    }
    Ok(steps)
}

/// Whether the line `actual` matches the pattern `pattern` (`...` for any text).
fn line_matches(pattern: &str, actual: &str) -> bool {
    let (pattern, actual) = (pattern.trim_end(), actual.trim_end());
    let parts: Vec<&str> = pattern.split("...").collect();
    if parts.len() == 1 {
        return pattern == actual || same_json(pattern, actual);
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !actual.starts_with(first) || actual.len() < first.len() + last.len() || !actual.ends_with(last) {
        return false;
    }
    let mut rest = &actual[first.len()..actual.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Whether both lines are the same JSON object or array, members in any
/// order (an action's result is a Lua table, whose keys have no order).
fn same_json(expected: &str, actual: &str) -> bool {
    let parse = |text: &str| {
        let starts = text.starts_with('{') || text.starts_with('[');
        starts.then(|| serde_json::from_str::<serde_json::Value>(text).ok()).flatten()
    };
    matches!((parse(expected), parse(actual)), (Some(e), Some(a)) if e == a)
}

/// Whether the lines `actual` match the pattern lines `expected` (a line
/// `...` for any number of lines).
fn lines_match(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((p, rest)) if p.trim() == "..." => (0..=actual.len()).any(|skip| lines_match(rest, &actual[skip..])),
        Some((p, rest)) => actual.first().is_some_and(|a| line_matches(p, a)) && lines_match(rest, &actual[1..]),
    }
}

/// The lines of a command's output, without carriage returns.
fn output_lines(text: &str) -> Vec<&str> {
    text.lines().map(|l| l.trim_end_matches('\r')).collect()
}

/// Replaces the README's port numbers (`:80NN`, `port = 80NN`) by free ports.
struct Ports(BTreeMap<String, String>);

impl Ports {
    fn map(&mut self, text: &str) -> String {
        let b = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        let mut i = 0;
        while i + 4 <= b.len() {
            let is_port = b[i..i + 4].iter().all(u8::is_ascii_digit)
                && &b[i..i + 2] == b"80"
                && b.get(i + 4).is_none_or(|c| !c.is_ascii_digit())
                && (text[..i].ends_with(':') || text[..i].ends_with("port = "));
            if is_port {
                let readme_port = &text[i..i + 4];
                if !self.0.contains_key(readme_port) {
                    let taken: Vec<String> = self.0.values().cloned().collect();
                    let free = std::iter::repeat_with(free_port).find(|p| !taken.contains(p)).unwrap();
                    self.0.insert(readme_port.to_string(), free);
                }
                let free = &self.0[readme_port];
                out.push_str(&text[at..i]);
                out.push_str(free);
                at = i + 4;
                i += 4;
            } else {
                i += 1;
            }
        }
        out.push_str(&text[at..]);
        out
    }
}

/// A port nobody listens on now.
fn free_port() -> String {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string()
}

/// A command running in the background, in a process group of its own.
struct Background {
    command: String,
    line: usize,
    child: Child,
    out: PathBuf,
}

impl Background {
    /// Its process id, which is its process group's too.
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

/// Whether process `pid` is running (not gone, not a zombie).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

/// `text` in single quotes for bash.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The bash session the README's commands run in.
struct Session {
    bash: Child,
    stdin: ChildStdin,
    control: Receiver<String>,
    /// Where the outputs and scripts go (outside the copy of the repository).
    aux: PathBuf,
    /// The session's current directory after the last command.
    cwd: PathBuf,
    /// The copy of the repository the session started in.
    clone: PathBuf,
    background: Vec<Background>,
    ports: Ports,
    n: usize,
}

impl Drop for Session {
    fn drop(&mut self) {
        for b in &mut self.background {
            // SAFETY: kill(2) with a process group id; no memory is involved.
            unsafe { libc::kill(-b.pid(), libc::SIGKILL) };
            let _ = b.child.wait();
        }
        let _ = self.bash.kill();
        let _ = self.bash.wait();
    }
}

impl Session {
    fn start(clone: &Path, aux: &Path) -> Self {
        let mut cmd = Command::new("bash");
        cmd.args(["--noprofile", "--norc"]).current_dir(clone);
        cmd.env("SLCLI_CONFIG", aux.join("slcli.json")).env("CARGO_NET_OFFLINE", "true");
        // curl shows a progress meter when its output is not a terminal, as
        // here; a reader, on a terminal, sees none.
        std::fs::write(aux.join(".curlrc"), "no-progress-meter\n").unwrap();
        cmd.env("CURL_HOME", aux);
        for var in ["SLCLI_URL", "SLCLI_TOKEN", "SLCLI_MAX_BODY_MIB", "SL_LOG", "SL_CONFIG", "CARGO_TARGET_DIR"] {
            cmd.env_remove(var);
        }
        for proxy in ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"] {
            cmd.env_remove(proxy);
        }
        // What cargo set for this test process, not for a build the README runs.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("CARGO_PKG_")
                || key.starts_with("CARGO_BIN_EXE_")
                || key.starts_with("CARGO_BUILD_")
                || ["CARGO_MANIFEST_DIR", "CARGO_MANIFEST_PATH", "CARGO_CRATE_NAME", "CARGO_PRIMARY_PACKAGE"]
                    .contains(&key.as_ref())
                || ["CARGO_TARGET_TMPDIR", "CARGO_RUSTC_CURRENT_DIR", "OUT_DIR"].contains(&key.as_ref())
            {
                cmd.env_remove(key.as_ref());
            }
        }
        let mut bash = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let stdin = bash.stdin.take().unwrap();
        let stdout = bash.stdout.take().unwrap();
        let (tx, control) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            bash,
            stdin,
            control,
            aux: aux.to_path_buf(),
            cwd: clone.to_path_buf(),
            clone: clone.to_path_buf(),
            background: Vec::new(),
            ports: Ports(BTreeMap::new()),
            n: 0,
        }
    }

    /// Sends `script` to bash and returns the control line that starts with `tag`.
    fn send(&mut self, script: &str, tag: &str, within: Duration) -> String {
        self.stdin.write_all(script.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.control.recv_timeout(left) {
                Ok(line) if line.starts_with(tag) => return line[tag.len()..].trim().to_string(),
                Ok(_) => continue,
                Err(e) => panic!("bash did not finish {script:?} within {within:?} ({e})"),
            }
        }
    }

    fn step(&mut self, step: &Step) {
        match step {
            Step::Run { line, command, expected, background: false } => self.run(*line, command, expected),
            Step::Run { line, command, expected, background: true } => self.start_background(*line, command, expected),
            Step::Write { line, path, text } => {
                let path = self.cwd.join(path);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, self.ports.map(text)).unwrap_or_else(|e| panic!("line {line}: {e}"));
            }
            Step::Shows { line, path, text } => {
                let file =
                    std::fs::read_to_string(self.clone.join(path)).unwrap_or_else(|e| panic!("line {line}: {e}"));
                assert_eq!(text, &file, "README line {line}: the block is not the text of {path}");
            }
            Step::Output { line, of, expected } => {
                let of = self.ports.map(of);
                let mut pattern = vec!["...".to_string()];
                pattern.extend(expected.iter().map(|l| self.ports.map(l)));
                pattern.push("...".to_string());
                let b = &self.background[self.find(*line, &of)];
                let (out, command, started) = (b.out.clone(), b.command.clone(), b.line);
                wait_for_output(&out, &pattern, Duration::from_secs(15), || {
                    format!("README line {line}: the output of `{command}` (line {started})")
                });
            }
            Step::CtrlC { line, of } => {
                let of = self.ports.map(of);
                let mut b = self.background.remove(self.find(*line, &of));
                // SAFETY: kill(2) with a process group id; no memory is involved.
                unsafe { libc::kill(-b.pid(), libc::SIGINT) };
                let start = Instant::now();
                while b.child.try_wait().unwrap().is_none() {
                    if start.elapsed() > Duration::from_secs(15) {
                        // SAFETY: as above.
                        unsafe { libc::kill(-b.pid(), libc::SIGKILL) };
                        let _ = b.child.wait();
                        panic!("README line {line}: `{}` did not stop within 15 s of Ctrl-C", b.command);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// Where in `background` the one running command that starts with `prefix` is.
    fn find(&self, line: usize, prefix: &str) -> usize {
        let found: Vec<usize> =
            (0..self.background.len()).filter(|&i| self.background[i].command.starts_with(prefix)).collect();
        match found[..] {
            [i] => i,
            [] => panic!("README line {line}: nothing runs as {prefix:?}"),
            _ => panic!("README line {line}: {prefix:?} could be any of {} running commands", found.len()),
        }
    }

    fn run(&mut self, line: usize, command: &str, expected: &[String]) {
        self.n += 1;
        let command = self.ports.map(command);
        let out = self.aux.join(format!("out.{}", self.n));
        let script = format!(
            "{{ {command}\n}} > {} 2>&1 < /dev/null\n__rc=$?; printf '\\n__readme_done__ %s %s\\n' \"$__rc\" \"$PWD\"\n",
            quoted(&out.display().to_string())
        );
        let done = self.send(&script, "__readme_done__ ", Duration::from_secs(300));
        let (rc, cwd) = done.split_once(' ').unwrap();
        self.cwd = PathBuf::from(cwd);
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let expected: Vec<String> = expected.iter().map(|l| self.ports.map(l)).collect();
        let should_fail = expected.iter().any(|l| l.starts_with("error:"));
        let failed = rc != "0";
        let shown = || {
            format!(
                "README line {line}: `{command}` exited with {rc}, printing:\n{text}\n-- the README says{}:\n{}\n",
                if should_fail { " (it fails)" } else { "" },
                expected.join("\n")
            )
        };
        assert_eq!(failed, should_fail, "{}", shown());
        let matches = match same_json(expected.join("\n").trim(), text.trim()) {
            true => true,
            false => lines_match(&expected, &output_lines(&text)),
        };
        assert!(matches, "{}", shown());
    }

    fn start_background(&mut self, line: usize, command: &str, expected: &[String]) {
        self.n += 1;
        let command = self.ports.map(command);
        let script_path = self.aux.join(format!("cmd.{}.sh", self.n));
        std::fs::write(&script_path, format!("{command}\n")).unwrap();
        let out = self.aux.join(format!("out.{}", self.n));
        // Started here, not by the session's bash, in which a command run in
        // the background ignores Ctrl-C (SIGINT), as POSIX has it; with the
        // session's directory and exported variables, in a process group of
        // its own (as a terminal's foreground job), for Ctrl-C.
        let env_path = self.aux.join(format!("env.{}", self.n));
        let script = format!("env -0 > {}\nprintf '__readme_env__\\n'\n", quoted(&env_path.display().to_string()));
        self.send(&script, "__readme_env__", Duration::from_secs(10));
        let env = std::fs::read(&env_path).unwrap();
        let vars = env.split(|b| *b == 0).filter_map(|var| {
            let var = std::str::from_utf8(var).ok()?;
            var.split_once('=')
        });
        // One open file for both streams, as `> out 2>&1` would have it.
        let file = std::fs::File::create(&out).unwrap();
        let child = Command::new("bash")
            .arg(&script_path)
            .current_dir(&self.cwd)
            .env_clear()
            .envs(vars)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        self.background.push(Background { command: command.clone(), line, child, out: out.clone() });
        let mut pattern: Vec<String> = expected.iter().map(|l| self.ports.map(l)).collect();
        pattern.push("...".to_string());
        wait_for_output(&out, &pattern, Duration::from_secs(30), || {
            format!("README line {line}: `{command}`{}", if alive(pid) { "" } else { " (it exited)" })
        });
    }
}

/// Waits until the file `out` matches `pattern`; panics after `within`
/// with `what` and the output.
fn wait_for_output(out: &Path, pattern: &[String], within: Duration, what: impl Fn() -> String) {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(out).unwrap_or_default();
        if lines_match(pattern, &output_lines(&text)) {
            return;
        }
        if start.elapsed() > within {
            panic!("{} printed, within {within:?}:\n{text}\n-- the README says:\n{}\n", what(), pattern.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The repository: the directory above this crate.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Copies the repository's files (those git tracks, or would: untracked
/// files that are not ignored) to `to`, as a fresh clone would have them.
fn copy_repository(to: &Path) {
    let out = Command::new("git")
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .current_dir(repo())
        .output()
        .expect("git, to list the repository's files");
    assert!(out.status.success(), "git ls-files: {}", String::from_utf8_lossy(&out.stderr));
    for rel in out.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).unwrap());
        let from = repo().join(rel);
        // Deleted but not yet committed: not in a clone of what is there.
        if !from.exists() {
            continue;
        }
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&from, &dest).unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
    }
}

/// `target/release` of the copy: links to this build's binaries and plugin libraries.
fn link_binaries(clone: &Path) {
    let release = clone.join("target/release");
    std::fs::create_dir_all(&release).unwrap();
    let bin_dir = Path::new(SLCLI).parent().unwrap();
    let mut linked = vec![bin_dir.join("slcli"), bin_dir.join("slserver")];
    for lib in ["sl_kv", "sl_skeleton", "sl_http", "sl_mongo"] {
        linked.push(sl_testkit::plugin_lib(lib));
    }
    for file in linked {
        assert!(file.exists(), "{} is missing: build the workspace first (./scripts/test does)", file.display());
        std::os::unix::fs::symlink(&file, release.join(file.file_name().unwrap())).unwrap();
    }
}

#[test]
fn every_command_of_the_readme_works_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let steps = parse(&readme).unwrap_or_else(|e| panic!("README.md: {e}"));
    let runs = steps.iter().filter(|s| matches!(s, Step::Run { .. })).count();
    assert!(runs >= 40, "only {runs} commands found in README.md");

    let tmp = tempfile::tempdir().unwrap();
    let clone = tmp.path().join("sl");
    let aux = tmp.path().join(".readme-test");
    std::fs::create_dir_all(&aux).unwrap();
    copy_repository(&clone);
    link_binaries(&clone);
    let mut session = Session::start(&clone, &aux);
    // The configuration files the README's commands use, on the same free ports.
    for config in ["config.lua", "examples/items/config.lua"] {
        let path = clone.join(config);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, session.ports.map(&text)).unwrap();
    }
    for step in &steps {
        session.step(step);
    }
}

#[test]
fn the_readme_reader_reads_marks_sessions_and_patterns() {
    let readme = "\
intro
```sh
echo not run
```
";
    assert!(parse(readme).unwrap_err().contains("line 2: a ```sh block that is not run"));
    let readme = "\
<!-- readme-test: skip it needs a network -->
```sh
curl example.com
```

<!-- readme-test: write hello.lua -->

```lua
function main() return 1 end
```
```console
$ slserver --config config.lua   # (runs until Ctrl-C)
slserver listening on http://127.0.0.1:8080
$ slcli ping \\
    --timeout-secs 3
OK (... ms)
$ slcli create hello -f hello.lua
```
<!-- readme-test: output of slserver --config -->
```
... WARN ...
```
<!-- readme-test: ctrl-c slserver -->
";
    let steps = parse(readme).unwrap();
    assert_eq!(
        steps,
        [
            Step::Write { line: 8, path: "hello.lua".into(), text: "function main() return 1 end\n".into() },
            Step::Run {
                line: 12,
                command: "slserver --config config.lua   # (runs until Ctrl-C)".into(),
                expected: vec!["slserver listening on http://127.0.0.1:8080".into()],
                background: true
            },
            Step::Run {
                line: 14,
                command: "slcli ping \\\n    --timeout-secs 3".into(),
                expected: vec!["OK (... ms)".into()],
                background: false
            },
            Step::Run {
                line: 17,
                command: "slcli create hello -f hello.lua".into(),
                expected: vec![],
                background: false
            },
            Step::Output { line: 20, of: "slserver --config".into(), expected: vec!["... WARN ...".into()] },
            Step::CtrlC { line: 23, of: "slserver".into() },
        ]
    );
    for bad in ["<!-- readme-test: frobnicate -->\n", "<!-- readme-test: skip -->\n```sh\nx\n```\n"] {
        assert!(parse(bad).unwrap_err().contains("unknown mark"), "{bad}");
    }
    let e = parse("<!-- readme-test: write a.lua -->\ntext\n```lua\n```\n").unwrap_err();
    assert!(e.contains("must come right before its block"), "{e}");
    assert!(parse("```console\noutput first\n```\n").unwrap_err().contains("output before any"));

    assert!(line_matches("OK (... ms)", "OK (0.4 ms)"));
    assert!(!line_matches("OK (... ms)", "OK (0.4 s)"));
    assert!(line_matches("...", "anything"));
    assert!(line_matches("a...b...c", "a-b-c"));
    assert!(!line_matches("a...b...c", "a-c-b"));
    assert!(!line_matches("ab...ba", "aba"), "the two ends do not overlap");
    assert!(line_matches(r#"{"name":"pen","id":"1"}"#, r#"{"id":"1","name":"pen"}"#), "JSON members in any order");
    assert!(!line_matches(r#"{"name":"pen","id":"1"}"#, r#"{"id":"2","name":"pen"}"#));
    assert!(!line_matches("[1,2]", "[2,1]"), "arrays keep their order");
    let pattern = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(lines_match(&pattern(&["x", "...", "z"]), &["x", "y", "y", "z"]));
    assert!(lines_match(&pattern(&["x", "...", "z"]), &["x", "z"]));
    assert!(!lines_match(&pattern(&["x", "z"]), &["x", "y", "z"]));
    assert!(!lines_match(&pattern(&["x"]), &["x", "more"]), "all of the output");
    assert!(lines_match(&pattern(&[]), &[]));

    let mut ports = Ports(BTreeMap::new());
    let mapped = ports.map("http://127.0.0.1:8080 port = 8081 :80801 18080 8080 :8080/x");
    let (a, b) = (&ports.0["8080"], &ports.0["8081"]);
    assert_ne!(a, b);
    assert_eq!(mapped, format!("http://127.0.0.1:{a} port = {b} :80801 18080 8080 :{a}/x"));
}
