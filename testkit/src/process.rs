//! Small process and file-system helpers.

use std::path::Path;
use std::process::{Command, Stdio};

/// Whether a process with this PID exists (on Linux through `/proc`,
/// elsewhere through `kill -0`). Unknown counts as alive.
pub(crate) fn alive(pid: u32) -> bool {
    if Path::new("/proc/self").exists() {
        return Path::new(&format!("/proc/{pid}")).exists();
    }
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_or(true, |status| status.success())
}

/// The last `max` bytes of a text file, for error messages.
pub(crate) fn tail(path: &Path, max: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let start = bytes.len().saturating_sub(max);
            let text = String::from_utf8_lossy(&bytes[start..]).into_owned();
            if start > 0 {
                format!("[...]{text}")
            } else {
                text
            }
        }
        Err(err) => format!("({} unreadable: {err})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_an_unused_pid_is_not() {
        assert!(alive(std::process::id()));
        // Linux PIDs stop at 2^22.
        assert!(!alive(4_194_304 + 17));
    }

    #[test]
    fn tail_keeps_the_end() {
        let dir = std::env::temp_dir().join(format!("sl-testkit-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("out");
        std::fs::write(&file, "0123456789").unwrap();
        assert_eq!(tail(&file, 4), "[...]6789");
        assert_eq!(tail(&file, 100), "0123456789");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(tail(&file, 4).contains("unreadable"));
    }
}
