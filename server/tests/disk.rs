//! A data directory that stops taking writes (full, read-only, or a file
//! size limit) while the server runs: writes get a clear 503 `unavailable`,
//! reads and runs of existing actions go on, and writes work again once the
//! condition is lifted.
//!
//! The tests run as root here, and root ignores file modes, so `chmod` cannot
//! make the database read-only. What works instead:
//!
//! - read-only: the inode flag `FS_IMMUTABLE_FL` (what `chattr +i` sets) on
//!   the database, its WAL and their directory. It needs `CAP_LINUX_IMMUTABLE`
//!   and a file system that supports the flag (ext4, xfs, btrfs, tmpfs since
//!   Linux 6.0). Writes through descriptors the server already holds fail with
//!   `EPERM`. The WAL index (`sl.db-shm`) is left alone: SQLite writes it
//!   through `mmap`, where an immutable file would raise `SIGBUS`, and
//!   readers need it too.
//! - full disk: a 4 MiB tmpfs mounted on the data directory (needs
//!   `CAP_SYS_ADMIN`), filled with a filler file until `ENOSPC`.
//! - file size limit: `RLIMIT_FSIZE` set on the running server with
//!   `prlimit(2)` (with `SIGXFSZ` ignored, a disposition the server inherits
//!   from this process), at the current size of the WAL. Works unprivileged.
//!
//! A test whose mechanism is not available prints `SKIPPED: ...` and passes.

mod common;

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{wait_until, Resp, TestServer, HELLO};
use serde_json::json;

/// `FS_IOC_GETFLAGS` and `FS_IOC_SETFLAGS` (`_IOR('f', 1, long)` and
/// `_IOW('f', 2, long)`) in the generic ioctl encoding of x86_64, aarch64 and
/// riscv64. The kernel reads and writes an `int`.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "riscv64"))]
const FS_IOC_GETFLAGS: u64 = 0x8008_6601;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "riscv64"))]
const FS_IOC_SETFLAGS: u64 = 0x4008_6602;
const FS_IMMUTABLE_FL: libc::c_int = 0x10;

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// Sets or clears the immutable flag of `path` (a file or a directory).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "riscv64"))]
fn set_immutable(path: &Path, on: bool) -> std::io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: plain system calls on a descriptor we own; `flags` outlives them.
    unsafe {
        let fd = libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(errno());
        }
        let mut flags: libc::c_int = 0;
        let mut r = libc::ioctl(fd, FS_IOC_GETFLAGS as _, &mut flags as *mut libc::c_int);
        if r == 0 {
            flags = if on { flags | FS_IMMUTABLE_FL } else { flags & !FS_IMMUTABLE_FL };
            r = libc::ioctl(fd, FS_IOC_SETFLAGS as _, &flags as *const libc::c_int);
        }
        let err = errno();
        libc::close(fd);
        if r == 0 {
            Ok(())
        } else {
            Err(err)
        }
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "riscv64")))]
fn set_immutable(_: &Path, _: bool) -> std::io::Result<()> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "FS_IOC_SETFLAGS not encoded for this architecture"))
}

/// Paths made immutable; made mutable again when dropped, so that a failed
/// test leaves nothing undeletable behind.
struct Immutable(Vec<PathBuf>);

impl Immutable {
    fn set(paths: &[PathBuf]) -> std::io::Result<Immutable> {
        let mut done = Immutable(Vec::new());
        for p in paths {
            set_immutable(p, true).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
            done.0.push(p.clone());
        }
        Ok(done)
    }

    fn lift(&mut self) {
        for p in self.0.drain(..) {
            if let Err(e) = set_immutable(&p, false) {
                eprintln!("cannot clear the immutable flag of {}: {e}", p.display());
            }
        }
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        self.lift();
    }
}

/// A tmpfs mounted by the test; lazily unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> std::io::Result<Tmpfs> {
        let target = CString::new(at.as_os_str().as_bytes()).unwrap();
        let options = CString::new(format!("size={size},mode=0755")).unwrap();
        // SAFETY: NUL-terminated strings that outlive the call.
        let r =
            unsafe { libc::mount(c"tmpfs".as_ptr(), target.as_ptr(), c"tmpfs".as_ptr(), 0, options.as_ptr().cast()) };
        if r == 0 {
            Ok(Tmpfs(at.to_path_buf()))
        } else {
            Err(errno())
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let target = CString::new(self.0.as_os_str().as_bytes()).unwrap();
        // SAFETY: as above.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

fn code(src: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(src)
}

/// The state every test starts from: `hello` (run, so warm) and `other`
/// (never run), and one finished asynchronous invocation.
struct Setup {
    async_id: String,
}

fn setup(s: &TestServer) -> Setup {
    assert_eq!(s.create("hello", HELLO, "").status, 201);
    assert_eq!(s.create("other", "function main(a) return (a.x or 0) * 2 end", "").status, 201);
    assert_eq!(s.post("/actions/hello/block", "").json(), json!("Hello World"));
    let r = s.post("/actions/hello", r#"{"name": "async"}"#);
    assert_eq!(r.status, 202, "{}", r.text());
    let async_id = r.json()["InvocationId"].as_str().unwrap().to_string();
    assert_eq!(s.get(&format!("/invocation/{async_id}?wait=10")).json(), json!("Hello async"));
    Setup { async_id }
}

/// Checks a refused write: 503 `unavailable` with `Retry-After`, a message
/// naming the database and containing one of `words`. Returns the message.
fn refused(what: &str, r: &Resp, words: &[&str]) -> String {
    assert_eq!(r.status, 503, "{what} should be refused with 503: {} {}", r.status, r.text());
    assert_eq!(r.error_kind(), "unavailable", "{what}: {}", r.text());
    assert!(r.header("retry-after").is_some(), "{what}: no Retry-After: {r:?}");
    let msg = r.json()["error"]["message"].as_str().unwrap_or_default().to_string();
    assert!(msg.contains("sl.db"), "{what}: the message does not name the database: {msg}");
    assert!(
        words.iter().any(|w| msg.contains(w)),
        "{what}: the message does not say what happened (expected one of {words:?}): {msg}"
    );
    msg
}

/// Every kind of write is refused clearly and changes nothing.
fn writes_refused(s: &TestServer, words: &[&str]) -> String {
    // A body of a few pages, so that the write needs new space in any case.
    let big = format!("function main() return 'new' end\n--{}\n", "x".repeat(20_000));
    let msg = refused("create", &s.create("new", &big, ""), words);
    let put =
        s.request("PUT", "/actions/hello", Some(&json!({"code": code("function main() return 2 end")}).to_string()));
    refused("update", &put, words);
    refused("async submit", &s.post("/actions/hello", "{}"), words);
    refused("delete", &s.request("DELETE", "/actions/other", None), words);
    // Nothing changed.
    assert_eq!(s.get("/actions/new").status, 404);
    assert_eq!(s.get("/actions/hello").json()["version"], json!(1));
    assert_eq!(s.get("/actions/other").status, 200);
    msg
}

/// Reads and runs go on.
fn reads_served(s: &TestServer, setup: &Setup) {
    assert_eq!(s.get("/ping").status, 200);
    let list = s.get("/actions");
    assert_eq!(list.status, 200, "{}", list.text());
    let names: Vec<_> = list.json().as_array().unwrap().iter().map(|a| a["name"].clone()).collect();
    assert_eq!(names, vec![json!("hello"), json!("other")]);
    let hello = s.get("/actions/hello");
    assert_eq!(hello.status, 200, "{}", hello.text());
    assert_eq!(hello.json()["code"], json!(code(HELLO)));
    for i in 0..5 {
        let r = s.post("/actions/hello/block", &format!(r#"{{"name": "run {i}"}}"#));
        assert_eq!(r.status, 200, "a warm run failed: {}", r.text());
        assert_eq!(r.json(), json!(format!("Hello run {i}")));
    }
    // An action not run before loads from the store (a read) and runs.
    let r = s.post("/actions/other/block", r#"{"x": 21}"#);
    assert_eq!(r.status, 200, "a cold run failed: {}", r.text());
    assert_eq!(r.json(), json!(42));
    assert_eq!(s.get(&format!("/invocation/{}", setup.async_id)).json(), json!("Hello async"));
    assert_eq!(s.get("/invocations?limit=10").status, 200);
}

/// Once the condition is lifted, writes work again, and the records of the
/// runs made meanwhile reach the store.
fn writes_work_again(s: &TestServer) {
    let start = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let r = s.create("later", "function main() return 'later' end", "");
        if r.status == 201 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "writes still fail after the lift: {}", r.text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let first_write = start.elapsed();
    let put =
        s.request("PUT", "/actions/hello", Some(&json!({"code": code("function main() return 2 end")}).to_string()));
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(s.post("/actions/hello/block", "").json(), json!(2));
    assert_eq!(s.post("/actions/later/block", "").json(), json!("later"));
    let id = s.post("/actions/other", r#"{"x": 5}"#).json()["InvocationId"].as_str().unwrap().to_string();
    assert_eq!(s.get(&format!("/invocation/{id}?wait=10")).json(), json!(10));
    assert_eq!(s.request("DELETE", "/actions/later", None).status, 200);
    // The five warm runs and the cold run made while writes failed were kept
    // in memory and retried.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let recs = s.get("/invocations?action=hello&limit=100").json();
        let runs = recs
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["args"]["name"].as_str().is_some_and(|n| n.starts_with("run ")))
            .count();
        if runs == 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the records of runs made while writes failed were lost: {runs} of 5 stored"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "writes worked again at attempt {attempts} ({} ms); the records of runs made meanwhile were stored after {} ms",
        first_write.as_millis(),
        start.elapsed().as_millis()
    );
}

#[test]
fn read_only_data_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(tmp.path(), "");
    let setup = setup(&s);
    let data = tmp.path().join("data");
    let paths = [data.join("sl.db"), data.join("sl.db-wal"), data.clone()];
    let mut guard = match Immutable::set(&paths) {
        Ok(g) => g,
        Err(e) => {
            eprintln!(
                "SKIPPED read_only_data_directory: cannot set the immutable flag ({e}); it needs \
                 CAP_LINUX_IMMUTABLE and a file system with FS_IMMUTABLE_FL (ext4, xfs, btrfs)"
            );
            return;
        }
    };
    // SQLite reports a write that the OS refuses on an open file as an I/O
    // error; "read-only" is what it says for a file it opened read-only.
    let msg = writes_refused(&s, &["read-only", "disk I/O error"]);
    eprintln!("read-only data directory: writes answered 503: {msg}");
    reads_served(&s, &setup);
    // Records are written in batches after the runs answered: the failure
    // is logged when the batch is tried.
    assert!(
        wait_until(Duration::from_secs(10), || s.log().contains("cannot store invocation records")),
        "the failed record writes are not logged"
    );
    guard.lift();
    writes_work_again(&s);
}

#[test]
fn full_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let _mount = match Tmpfs::mount(&data, "4m") {
        Ok(m) => m,
        Err(e) => {
            eprintln!("SKIPPED full_disk: cannot mount a tmpfs ({e}); it needs CAP_SYS_ADMIN");
            return;
        }
    };
    // Declared after the mount, so dropped (killed) before it is unmounted.
    let s = TestServer::start_in(tmp.path(), "");
    let setup = setup(&s);

    // Fill the file system to the last page.
    let filler = data.join("filler");
    let mut f = File::create(&filler).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut filled = 0usize;
    let err = loop {
        match f.write(&chunk) {
            Ok(0) => break std::io::Error::from_raw_os_error(libc::ENOSPC),
            Ok(n) => filled += n,
            Err(e) => break e,
        }
    };
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "filling the tmpfs: {err}");
    drop(f);
    eprintln!("full disk: filled the 4 MiB tmpfs with {} KiB", filled / 1024);

    let msg = writes_refused(&s, &["database or disk is full"]);
    eprintln!("full disk: writes answered 503: {msg}");
    reads_served(&s, &setup);
    // Records are written in batches after the runs answered: the failure
    // is logged when the batch is tried.
    assert!(
        wait_until(Duration::from_secs(10), || s.log().contains("cannot store invocation records")),
        "the failed record writes are not logged"
    );

    std::fs::remove_file(&filler).unwrap();
    writes_work_again(&s);
}

#[test]
fn file_size_limit() {
    // The server inherits an ignored SIGXFSZ (exec keeps ignored signals),
    // so passing the limit fails the write with EFBIG instead of killing it.
    // SAFETY: changes the disposition of a signal nothing here handles.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let tmp = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(tmp.path(), "");
    let setup = setup(&s);
    let wal = std::fs::metadata(tmp.path().join("data/sl.db-wal")).unwrap().len();
    let pid = s.child.id() as libc::pid_t;
    let set = |limit: libc::rlim_t| {
        let l = libc::rlimit { rlim_cur: limit, rlim_max: libc::RLIM_INFINITY };
        // SAFETY: `l` is a valid rlimit; the old value is not asked for.
        if unsafe { libc::prlimit(pid, libc::RLIMIT_FSIZE, &l, std::ptr::null_mut()) } != 0 {
            Err(errno())
        } else {
            Ok(())
        }
    };
    if let Err(e) = set(wal) {
        eprintln!("SKIPPED file_size_limit: prlimit on the server failed: {e}");
        return;
    }
    // SQLite reports EFBIG as an I/O error (only ENOSPC is "disk is full").
    let msg = writes_refused(&s, &["disk I/O error", "database or disk is full"]);
    eprintln!("file size limit: writes answered 503: {msg}");
    reads_served(&s, &setup);
    // Records are written in batches after the runs answered: the failure
    // is logged when the batch is tried.
    assert!(
        wait_until(Duration::from_secs(10), || s.log().contains("cannot store invocation records")),
        "the failed record writes are not logged"
    );
    set(libc::RLIM_INFINITY).unwrap();
    writes_work_again(&s);
}

/// What the message of a write refused because the data directory became
/// read-only should say. SQLite reports any write the OS refuses on a file
/// it holds open as `SQLITE_IOERR_WRITE` ("disk I/O error"), so today the
/// answer is `store unavailable: disk I/O error (.../sl.db)`, which does not
/// say why. The store could add the OS error (`sqlite3_system_errno`, e.g.
/// "Operation not permitted", "Read-only file system", "File too large").
#[test]
fn read_only_message_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(tmp.path(), "");
    setup(&s);
    let data = tmp.path().join("data");
    let _guard = match Immutable::set(&[data.join("sl.db"), data.join("sl.db-wal"), data.clone()]) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("SKIPPED read_only_message_says_why: cannot set the immutable flag ({e})");
            return;
        }
    };
    writes_refused(&s, &["read-only", "Read-only", "Operation not permitted", "permission"]);
}
