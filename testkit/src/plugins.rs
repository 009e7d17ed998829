//! The workspace's plugin libraries for tests.
//!
//! `cargo test -p sl-server` does not build other packages' cdylibs, so the
//! first call builds them, with the profile of the running test executable.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

/// `target/<profile>`, where cargo puts the plugin libraries. `cargo
/// test -p sl-server` does not build other packages' cdylibs, so the
/// first call builds them, with the profile of this test executable.
/// It runs `cargo build --workspace --lib`, not `-p <plugin>...`: the
/// same package selection as `cargo build --workspace` gives the same
/// feature unification, so after that build this one is a no-op instead
/// of a rebuild of the plugins with other features.
pub fn lib_dir() -> &'static Path {
    static BUILD: Once = Once::new();
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> -> target/<profile>
        exe.parent().and_then(Path::parent).expect("target/<profile>/deps").to_path_buf()
    });
    BUILD.call_once(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let target_dir = dir.parent().expect("target dir");
        let mut cmd = Command::new(cargo);
        cmd.arg("build").arg("--manifest-path").arg(&manifest).arg("--target-dir").arg(target_dir);
        match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => {}
            Some("release") => {
                cmd.arg("--release");
            }
            Some(profile) => {
                cmd.args(["--profile", profile]);
            }
            None => panic!("cannot tell the cargo profile from {}", dir.display()),
        }
        cmd.args(["--workspace", "--lib"]);
        // Cargo sets these for the test process; build scripts that
        // watch them (ring watches CARGO_MANIFEST_DIR) would otherwise
        // rebuild everything that the outer build already built.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            let set_by_cargo = key.starts_with("CARGO_PKG_")
                || [
                    "CARGO_MANIFEST_DIR",
                    "CARGO_MANIFEST_PATH",
                    "CARGO_CRATE_NAME",
                    "CARGO_BIN_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "CARGO_RUSTC_CURRENT_DIR",
                    "OUT_DIR",
                ]
                .contains(&key.as_ref());
            if set_by_cargo {
                cmd.env_remove(key.as_ref());
            }
        }
        let out = cmd.output().expect("running cargo to build the plugin libraries");
        assert!(
            out.status.success(),
            "building the plugin libraries failed (run `cargo build --workspace` and retry):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    dir
}

/// The path of the library of crate `lib` (e.g. `sl_skeleton`), built first
/// if needed.
pub fn plugin_lib(lib: &str) -> PathBuf {
    use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
    lib_dir().join(format!("{DLL_PREFIX}{lib}{DLL_SUFFIX}"))
}
