//! A real `strongroom-server` process on an ephemeral loopback port.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::bins::bin;

/// How to start the server.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// `--smtp URL`.
    pub smtp: Option<String>,
    /// `--public-url URL` (links point there, e.g. to a proxy).
    pub public_url: Option<String>,
    /// `--listen ADDR` (default: an ephemeral port on 127.0.0.1).
    pub listen: Option<String>,
    /// More arguments for `strongroom-server run` (`--invitation-ttl 2s`...).
    pub extra_args: Vec<String>,
}

/// A running server; killed when dropped.
pub struct Server {
    child: Option<Child>,
    url: String,
    data: PathBuf,
    options: ServerOptions,
    _tempdir: Option<tempfile::TempDir>,
}

impl Server {
    /// A server with a fresh temporary data directory.
    pub fn start() -> Self {
        Self::start_with(ServerOptions::default())
    }

    /// A server with options and a fresh temporary data directory.
    pub fn start_with(options: ServerOptions) -> Self {
        let tempdir = tempfile::tempdir().expect("temporary directory");
        let data = tempdir.path().join("data");
        let mut server = Self::start_in(&data, options);
        server._tempdir = Some(tempdir);
        server
    }

    /// A server over an existing data directory.
    pub fn start_in(data: &Path, options: ServerOptions) -> Self {
        let (child, url) = spawn(data, &options);
        Self {
            child: Some(child),
            url,
            data: data.to_path_buf(),
            options,
            _tempdir: None,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Runs `strongroom-server org quota ORG ARGS` against this server as its administrator;
    /// what it prints. Panics if it fails.
    pub fn org_quota(&self, org: &str, args: &[&str]) -> String {
        let output = Command::new(bin("strongroom-server"))
            .args([
                "org",
                "quota",
                org,
                "--server",
                self.url(),
                "--admin-token-file",
            ])
            .arg(self.data_dir().join("admin.token"))
            .args(args)
            .output()
            .expect("running strongroom-server org quota");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The server process's id (while it runs).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server process's peak resident memory so far (`VmHWM`, Linux), in bytes.
    pub fn peak_memory_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// `strongroom-server org create NAME`; returns the bootstrap link.
    pub fn create_org(&self, name: &str) -> String {
        let output = Command::new(bin("strongroom-server"))
            .args([
                "org",
                "create",
                name,
                "--server",
                &self.url,
                "--admin-token-file",
            ])
            .arg(self.data.join("admin.token"))
            .output()
            .expect("running strongroom-server org create");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "org create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
            .lines()
            .last()
            .expect("a bootstrap link")
            .trim()
            .to_owned()
    }

    /// Stops the server gracefully (SIGTERM) and waits up to 10 seconds for it; returns its
    /// exit status, or `None` if it had to be killed (or was not running).
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        #[cfg(unix)]
        {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            for _ in 0..200 {
                if let Ok(Some(status)) = child.try_wait() {
                    return Some(status);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Starts the server again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        let mut options = self.options.clone();
        options.listen = Some(self.url.trim_start_matches("http://").to_owned());
        let (child, url) = spawn(&self.data, &options);
        self.child = Some(child);
        self.url = url;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(data: &Path, options: &ServerOptions) -> (Child, String) {
    let mut command = Command::new(bin("strongroom-server"));
    command
        .args([
            "run",
            "--listen",
            options.listen.as_deref().unwrap_or("127.0.0.1:0"),
            "--data",
        ])
        .arg(data)
        .env(
            "STRONGROOM_LOG",
            std::env::var("STRONGROOM_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(smtp) = &options.smtp {
        command.args(["--smtp", smtp]);
    }
    if let Some(url) = &options.public_url {
        command.args(["--public-url", url]);
    }
    command.args(&options.extra_args);
    let mut child = command.spawn().expect("starting strongroom-server");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(url) = line.strip_prefix("listening on ") {
                    break url.trim().to_owned();
                }
            }
            _ => panic!("strongroom-server exited before listening"),
        }
    };
    // Keep draining standard output so the server never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}
