//! Locating (and building, once per process) the binaries under test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The profile directory (`target/debug` or `target/release`) of the running executable.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current executable");
    let mut dir = exe.parent().expect("executable has a folder").to_path_buf();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    dir
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Builds the server and client binaries in the profile of the running executable, once, so a
/// test never runs a stale binary.
fn build_once() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let profile_dir = profile_dir();
        let target_dir = profile_dir
            .parent()
            .expect("target directory")
            .to_path_buf();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .current_dir(workspace_root())
            // The whole workspace, as `cargo test --workspace` builds it: the same features, so
            // nothing is rebuilt when the binaries are fresh.
            .args(["build", "--quiet", "--workspace", "--bins"])
            .arg("--target-dir")
            .arg(&target_dir);
        if release {
            command.arg("--release");
        }
        let status = command.status().expect("running cargo build");
        assert!(status.success(), "building the binaries failed");
        profile_dir
    })
}

/// The path of a binary of the workspace (`strongroom`, `strongroom-server`).
pub fn bin(name: &str) -> PathBuf {
    let path = build_once().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(path.exists(), "{} was not built", path.display());
    path
}
