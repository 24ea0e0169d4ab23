//! One client device: the real `strongroom` binary with its own `--home`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::bins::bin;

/// The password every test device uses.
pub const PASSWORD: &str = "correct horse battery staple";

/// The result of one command.
#[derive(Debug, Clone)]
pub struct Output {
    /// Whether it exited with status 0.
    pub success: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// A device of a test: a home directory under a parent folder.
#[derive(Debug, Clone)]
pub struct Member {
    /// The home directory.
    pub home: PathBuf,
}

impl Member {
    /// A device whose home is `parent/name` (not created until a command does).
    pub fn new(parent: &Path, name: &str) -> Self {
        Self {
            home: parent.join(name),
        }
    }

    /// The command, ready to run: home, password and a fast test KDF set.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(bin("strongroom"));
        command
            .arg("--home")
            .arg(&self.home)
            .args(args)
            .env("STRONGROOM_PASSWORD", PASSWORD)
            .env("STRONGROOM_INSECURE_FAST_KDF", "1")
            .stdin(Stdio::null());
        command
    }

    /// Runs a command to its end.
    pub fn run(&self, args: &[&str]) -> Output {
        let output = self.command(args).output().expect("running strongroom");
        Output {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs a command that must succeed; returns its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.success,
            "strongroom {args:?} failed:\n{}{}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    /// Runs a command that must fail; returns its standard error.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.success,
            "strongroom {args:?} should have failed:\n{}",
            out.stdout
        );
        out.stderr
    }

    /// `workspace share WORKSPACE EMAIL --role ROLE`, which must succeed.
    pub fn share(&self, workspace: &str, email: &str, role: &str) {
        self.ok(&["workspace", "share", workspace, email, "--role", role]);
    }

    /// `bootstrap URL --email E --name N --label L`.
    pub fn bootstrap(&self, url: &str, email: &str, name: &str) {
        self.ok(&[
            "bootstrap",
            url,
            "--email",
            email,
            "--name",
            name,
            "--label",
            "laptop",
        ]);
    }

    /// The last line of a command's output (the link of `invite`).
    pub fn last_line(&self, args: &[&str]) -> String {
        self.ok(args)
            .lines()
            .last()
            .expect("output")
            .trim()
            .to_owned()
    }

    /// The emails listed by `user list`, with their status column.
    pub fn user_list(&self) -> Vec<(String, String, String)> {
        self.ok(&["user", "list"])
            .lines()
            .skip(1)
            .map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                let status = if cols[3] == "active" {
                    "active"
                } else {
                    "revoked"
                };
                (cols[0].to_owned(), cols[2].to_owned(), status.to_owned())
            })
            .collect()
    }
}
