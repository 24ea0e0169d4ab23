//! The file systems under test, each mounted (or not) at a folder where the workloads run:
//! plain tmpfs (the ceiling), gocryptfs, rclone crypt over `rclone serve webdav` with a full
//! VFS cache, and Strongroom. Everything each keeps (cipher folders, caches, the server's
//! data) is on the same tmpfs, so that the runs compare software, not disks.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use strongroom_testkit::Mount;
use strongroom_testkit::mount::is_mounted;
use strongroom_testkit::scenario::Org;

use super::machine::drop_caches;
use super::remote::{FreshDevice, RcloneFresh, StrongroomFresh, populate};
use super::workloads::Fixture;

/// A file system under test.
pub trait System {
    /// Its name in the report.
    fn name(&self) -> &'static str;
    /// The folder the workloads run in.
    fn root(&self) -> &Path;
    /// Makes the next reads cold: unmounted, the kernel's caches dropped, mounted again.
    fn remount(&mut self) -> anyhow::Result<()>;
    /// For systems with a server: uploads what the remote cases read ([`populate`]) and
    /// returns a fresh device of the same data, its folders under `base`.
    fn prepare_remote(
        &mut self,
        _base: &Path,
        _fixture: &Fixture,
    ) -> anyhow::Result<Option<Box<dyn FreshDevice>>> {
        Ok(None)
    }
}

/// Plain tmpfs: no encryption, no FUSE; the ceiling.
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// A folder under `base` (itself on tmpfs).
    pub fn new(base: &Path) -> anyhow::Result<Self> {
        let dir = base.join("tmpfs-plain");
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }
}

impl System for Tmpfs {
    fn name(&self) -> &'static str {
        "tmpfs"
    }
    fn root(&self) -> &Path {
        &self.dir
    }
    fn remount(&mut self) -> anyhow::Result<()> {
        // tmpfs is the page cache: its content stays; the dentry and inode caches go.
        drop_caches();
        Ok(())
    }
}

/// gocryptfs, its cipher folder on tmpfs.
pub struct Gocryptfs {
    cipher: PathBuf,
    dir: PathBuf,
    mounted: bool,
}

const PASSWORD_COMMAND: &str = "echo bench-password";

impl Gocryptfs {
    /// Initializes a cipher folder under `base`.
    pub fn new(base: &Path) -> anyhow::Result<Self> {
        let cipher = base.join("gocryptfs-cipher");
        let dir = base.join("gocryptfs-plain");
        std::fs::create_dir_all(&cipher)?;
        std::fs::create_dir_all(&dir)?;
        let status = Command::new("gocryptfs")
            .args(["-init", "-quiet", "-extpass", PASSWORD_COMMAND])
            .arg(&cipher)
            .stderr(Stdio::null())
            .status()
            .context("gocryptfs (apt-get install gocryptfs)")?;
        ensure!(status.success(), "gocryptfs -init failed");
        Ok(Self {
            cipher,
            dir,
            mounted: false,
        })
    }
}

impl System for Gocryptfs {
    fn name(&self) -> &'static str {
        "gocryptfs"
    }
    fn root(&self) -> &Path {
        &self.dir
    }
    fn remount(&mut self) -> anyhow::Result<()> {
        if self.mounted {
            unmount(&self.dir);
        }
        drop_caches();
        let status = Command::new("gocryptfs")
            .args(["-quiet", "-extpass", PASSWORD_COMMAND])
            .arg(&self.cipher)
            .arg(&self.dir)
            .stderr(Stdio::null())
            .status()?;
        ensure!(status.success(), "mounting gocryptfs failed");
        self.mounted = true;
        Ok(())
    }
}

impl Drop for Gocryptfs {
    fn drop(&mut self) {
        if self.mounted {
            unmount(&self.dir);
        }
    }
}

pub(crate) fn unmount(dir: &Path) {
    let _ = Command::new("fusermount3")
        .arg("-u")
        .arg(dir)
        .stderr(Stdio::null())
        .status();
    if is_mounted(dir) {
        let _ = Command::new("umount").arg("-l").arg(dir).status();
    }
}

/// rclone: a crypt remote over a WebDAV remote served by `rclone serve webdav` on loopback
/// from a folder (the "server"), mounted with `--vfs-cache-mode full`.
pub struct Rclone {
    served: PathBuf,
    cache: PathBuf,
    dir: PathBuf,
    remote: RcloneRemote,
    /// The mount's remote control (to see its uploads).
    rc_port: u16,
    /// What the mount process says (shown if it fails).
    log: PathBuf,
    server: Child,
    mount: Option<Child>,
}

impl Rclone {
    /// Starts the WebDAV server over a folder under `base`.
    pub fn new(base: &Path) -> anyhow::Result<Self> {
        let served = base.join("rclone-served");
        let cache = base.join("rclone-cache");
        let dir = base.join("rclone-plain");
        for d in [&served, &cache, &dir] {
            std::fs::create_dir_all(d)?;
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let rc_port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let obscured = Command::new("rclone")
            .args(["obscure", "bench-password"])
            .output()
            .context("rclone (apt-get install rclone)")?;
        ensure!(obscured.status.success(), "rclone obscure failed");
        let password = String::from_utf8(obscured.stdout)?.trim().to_string();
        let server = Command::new("rclone")
            .args(["serve", "webdav"])
            .arg(&served)
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            ensure!(
                Instant::now() < deadline,
                "rclone serve webdav did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Self {
            served,
            cache,
            dir,
            remote: RcloneRemote {
                url: format!("http://127.0.0.1:{port}/"),
                password,
            },
            rc_port,
            log: base.join("rclone-mount.log"),
            server,
            mount: None,
        })
    }

    /// The WebDAV server's address and the crypt password, for another device's mount.
    pub fn remote(&self) -> &RcloneRemote {
        &self.remote
    }

    /// Waits until the mount has uploaded everything written (as one would before unmounting:
    /// a mount started over a cache with pending uploads checks each against the server before
    /// it appears, minutes for a source tree).
    fn wait_uploaded(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(900);
        loop {
            let out = self
                .remote
                .command()
                .args([
                    "rc",
                    "--url",
                    &format!("http://127.0.0.1:{}/", self.rc_port),
                ])
                .arg("vfs/stats")
                .output()?;
            ensure!(out.status.success(), "rclone rc vfs/stats failed");
            let stats: serde_json::Value = serde_json::from_slice(&out.stdout)?;
            let cache = &stats["diskCache"];
            let waiting = cache["uploadsInProgress"].as_u64().unwrap_or(0)
                + cache["uploadsQueued"].as_u64().unwrap_or(0);
            if waiting == 0 {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "rclone still had {waiting} uploads after 15 minutes"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn stop_mount(&mut self) {
        if self.mount.is_some()
            && let Err(e) = self.wait_uploaded()
        {
            eprintln!("rclone: {e}");
        }
        if let Some(child) = self.mount.take() {
            stop_rclone_mount(child, &self.dir);
        }
    }

    /// Mounts with a cache folder emptied first: what a fresh device sees.
    pub fn remount_with_empty_cache(&mut self) -> anyhow::Result<()> {
        self.stop_mount();
        let _ = std::fs::remove_dir_all(&self.cache);
        std::fs::create_dir_all(&self.cache)?;
        self.mount()
    }

    fn mount(&mut self) -> anyhow::Result<()> {
        let rc = [
            "--rc".to_string(),
            "--rc-no-auth".to_string(),
            "--rc-addr".to_string(),
            format!("127.0.0.1:{}", self.rc_port),
        ];
        self.mount = Some(self.remote.mount(&self.dir, &self.cache, &rc, &self.log)?);
        Ok(())
    }

    /// Bytes the server holds (to check that uploads finished).
    pub fn served(&self) -> &Path {
        &self.served
    }
}

/// How to reach an rclone crypt remote: the WebDAV server's URL and the crypt password.
#[derive(Clone)]
pub struct RcloneRemote {
    /// The WebDAV server (or a proxy in front of it).
    pub url: String,
    /// The crypt password, obscured as rclone wants it.
    pub password: String,
}

impl RcloneRemote {
    /// An `rclone` command configured for the crypt remote `secret:` (no config file).
    pub fn command(&self) -> Command {
        let mut command = Command::new("rclone");
        command
            .env("RCLONE_CONFIG", "/dev/null")
            .env("RCLONE_CONFIG_STORE_TYPE", "webdav")
            .env("RCLONE_CONFIG_STORE_URL", &self.url)
            .env("RCLONE_CONFIG_STORE_VENDOR", "other")
            .env("RCLONE_CONFIG_SECRET_TYPE", "crypt")
            .env("RCLONE_CONFIG_SECRET_REMOTE", "store:")
            .env("RCLONE_CONFIG_SECRET_PASSWORD", &self.password);
        command
    }

    /// Mounts `secret:` on `dir` with a full VFS cache in `cache` (the kernel's caches dropped
    /// first) and waits until it is there; `log` gets what rclone says.
    pub fn mount(
        &self,
        dir: &Path,
        cache: &Path,
        extra: &[String],
        log: &Path,
    ) -> anyhow::Result<Child> {
        drop_caches();
        let mut child = self
            .command()
            .args(["mount", "secret:"])
            .arg(dir)
            .args(["--vfs-cache-mode", "full", "--cache-dir"])
            .arg(cache)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(300);
        while !is_mounted(dir) {
            let said = || std::fs::read_to_string(log).unwrap_or_default();
            if let Ok(Some(status)) = child.try_wait() {
                bail!("rclone mount exited ({status}): {}", said());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("rclone mount did not appear: {}", said());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(child)
    }
}

/// Unmounts an rclone mount and waits for its process (killed after a minute).
pub fn stop_rclone_mount(mut child: Child, dir: &Path) {
    unmount(dir);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl System for Rclone {
    fn name(&self) -> &'static str {
        "rclone"
    }
    fn root(&self) -> &Path {
        &self.dir
    }
    fn remount(&mut self) -> anyhow::Result<()> {
        self.stop_mount();
        self.mount()
    }
    fn prepare_remote(
        &mut self,
        base: &Path,
        fixture: &Fixture,
    ) -> anyhow::Result<Option<Box<dyn FreshDevice>>> {
        populate(&self.dir, fixture)?;
        // Unmounting waits for the uploads.
        self.remount()?;
        Ok(Some(Box::new(RcloneFresh::new(&self.remote, base)?)))
    }
}

impl Drop for Rclone {
    fn drop(&mut self) {
        self.stop_mount();
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// Strongroom: Alice's workspace `Bench` mounted, her home (caches) and the server's data on
/// tmpfs.
pub struct Strongroom<'a> {
    org: &'a Org,
    mount: Option<Mount>,
    dir: PathBuf,
}

impl<'a> Strongroom<'a> {
    /// Creates the workspace (not mounted yet).
    pub fn new(org: &'a Org, base: &Path) -> Self {
        org.alice.ok(&["workspace", "create", "Bench"]);
        Self {
            org,
            mount: None,
            dir: base.join("strongroom-plain"),
        }
    }
}

impl System for Strongroom<'_> {
    fn name(&self) -> &'static str {
        "strongroom"
    }
    fn root(&self) -> &Path {
        &self.dir
    }
    fn remount(&mut self) -> anyhow::Result<()> {
        if let Some(mut mount) = self.mount.take() {
            mount.signal("TERM");
        }
        drop_caches();
        self.mount = Some(Mount::start(&self.org.alice, "Bench", &self.dir, &[]));
        Ok(())
    }
    fn prepare_remote(
        &mut self,
        base: &Path,
        fixture: &Fixture,
    ) -> anyhow::Result<Option<Box<dyn FreshDevice>>> {
        // A workspace of its own, so that the fresh device does not also pull the local
        // workloads' history.
        self.org.alice.ok(&["workspace", "create", "Remote"]);
        let dir = base.join("strongroom-remote-writer");
        let mut writer = Mount::start(&self.org.alice, "Remote", &dir, &[]);
        populate(&dir, fixture)?;
        // Unmounting uploads everything before it ends.
        writer.signal("TERM");
        Ok(Some(Box::new(StrongroomFresh::new(
            self.org, "Remote", base,
        )?)))
    }
}
