//! A `strongroom mount` running in the background, as a person would leave it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::member::Member;

/// A running `strongroom mount WORKSPACE DIR`; dropping it stops it (SIGTERM) and makes sure
/// nothing stays mounted.
pub struct Mount {
    child: Option<Child>,
    /// The mounted folder.
    pub dir: PathBuf,
}

/// Whether `dir` is a mount point right now (from `/proc/self/mountinfo`).
pub fn is_mounted(dir: &Path) -> bool {
    // A stale mount cannot be resolved; its path is then taken as given.
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|line| line.split(' ').nth(4) == Some(dir.to_str().unwrap_or_default()))
}

impl Mount {
    /// Mounts `workspace` of `member` on `dir` (created if missing), with extra arguments such
    /// as `--at TIME`, and waits until the mount is there.
    pub fn start(member: &Member, workspace: &str, dir: &Path, extra: &[&str]) -> Self {
        std::fs::create_dir_all(dir).ok();
        let mut args = vec!["mount", workspace, dir.to_str().expect("UTF-8 path")];
        args.extend_from_slice(extra);
        let mut child = member
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("running strongroom mount");
        // Mounted once it says so: a stale mount of the same folder (left by a killed process)
        // is in the mount table until the new process has cleaned it up.
        let stdout = child.stdout.take().expect("piped");
        let (said, hear) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = said.send(line);
            }
        });
        let mut mount = Self {
            child: Some(child),
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match hear.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.starts_with("Mounted") => break,
                Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    let status = mount.child.as_mut().and_then(|c| c.wait().ok());
                    panic!("strongroom mount exited ({status:?}) before mounting");
                }
            }
            assert!(Instant::now() < deadline, "the mount did not appear");
        }
        assert!(
            is_mounted(dir),
            "mounted, says the process, but not in the mount table"
        );
        mount
    }

    /// The mount process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends `signal` (`TERM`, `KILL`, ...) and waits up to 60 seconds for the process to end
    /// (on `TERM` it uploads what is pending first, which takes long under a loaded machine).
    pub fn signal(&mut self, signal: &str) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status();
        Self::wait_for(&mut child, Duration::from_secs(60))
    }

    /// Waits up to 20 seconds for the process to end by itself (after `strongroom unmount`).
    pub fn wait(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        Self::wait_for(&mut child, Duration::from_secs(20))
    }

    fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        self.signal("TERM");
        if is_mounted(&self.dir) {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}
