//! The remote cases: what a device that has never read the data sees. One device writes a
//! large file and a folder of 10,000 files and uploads them; then, for each measurement, a
//! fresh device (empty caches) mounts and reads through a [`TamperingProxy`] used only to count
//! requests (it streams what it forwards). Strongroom's fresh device is a member who joined
//! and was given the workspace and has not opened it yet (its home is restored from a copy
//! taken right after joining); rclone's is a mount of the same remote with an empty cache.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use strongroom_engine::client::Client;
use strongroom_engine::device_file::KdfPolicy;
use strongroom_engine::home::Home;
use strongroom_engine::password::Password;
use strongroom_protocol::manifests::EntryName;
use strongroom_testkit::Mount;
use strongroom_testkit::exchange::{Pick, greet_and_claim};
use strongroom_testkit::member::{Member, PASSWORD};
use strongroom_testkit::proxy::TamperingProxy;
use strongroom_testkit::scenario::Org;

use super::machine::{drop_caches, settle};
use super::systems::{RcloneRemote, stop_rclone_mount};
use super::workloads::{Fixture, sequential_read, sequential_write, shell};

/// The large file, relative to a mount's root.
pub const LARGE: &str = "remote/large.bin";
/// The folder of many files, relative to a mount's root.
pub const FOLDER: &str = "remote/many";
/// Bytes read for the time to first byte.
const FIRST_BYTES: usize = 4096;

/// One remote measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteCase {
    /// `ls -l` of the folder of many files (10,000 by default), on a fresh device.
    Listing,
    /// Opening the large file and reading its first 4 KiB, on a fresh device.
    FirstByte,
    /// Fetching, checking and decrypting the large file's first block alone, in process, on a
    /// fresh device that has just opened the workspace and found the file (its first block
    /// fetch): the floor of [`RemoteCase::FirstByte`] (Strongroom only).
    FirstBlockAlone,
    /// Reading the whole large file on a fresh device.
    ColdRead,
}

impl RemoteCase {
    /// Every case, in report order.
    pub const ALL: [RemoteCase; 4] = [
        RemoteCase::Listing,
        RemoteCase::FirstByte,
        RemoteCase::FirstBlockAlone,
        RemoteCase::ColdRead,
    ];

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            RemoteCase::Listing => "ls -l of the large folder (fresh device)",
            RemoteCase::FirstByte => "time to first byte of the large file (fresh device)",
            RemoteCase::FirstBlockAlone => "first block alone: fetch + check + decrypt",
            RemoteCase::ColdRead => "cold read with an empty cache (fresh device)",
        }
    }
}

/// One measurement: how long, and how many requests reached the server meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// The time taken.
    pub time: Duration,
    /// Requests the proxy forwarded during it.
    pub requests: usize,
}

/// A device that has never read anything, mounted anew for each measurement.
pub trait FreshDevice {
    /// Its name in the report.
    fn name(&self) -> &'static str;
    /// Mounts with empty caches; returns the mount's root.
    fn mount_fresh(&mut self) -> anyhow::Result<PathBuf>;
    /// Unmounts.
    fn unmount(&mut self);
    /// The proxy in front of its server.
    fn proxy(&self) -> &TamperingProxy;
    /// [`RemoteCase::FirstBlockAlone`], where the system has such a thing.
    fn first_block_alone(&mut self) -> anyhow::Result<Option<Measured>> {
        Ok(None)
    }
}

/// Writes what the remote cases read under `root` (a mount of the writing device): the large
/// file (the same content as [`sequential_write`]'s) and the folder of empty files.
pub fn populate(root: &Path, fixture: &Fixture) -> anyhow::Result<()> {
    std::fs::create_dir_all(root.join(FOLDER))?;
    sequential_write(&root.join(LARGE), fixture.size)?;
    shell(
        &root.join(FOLDER),
        &format!(
            "seq -w 1 {} | sed 's/^/file-/' | xargs touch",
            fixture.listing_entries
        ),
    )
}

fn measure(
    proxy: &TamperingProxy,
    f: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<Measured> {
    settle();
    proxy.take_request_count();
    let started = Instant::now();
    f()?;
    let time = started.elapsed();
    Ok(Measured {
        time,
        requests: proxy.take_request_count(),
    })
}

/// Runs one case on a fresh mount of `device`; `None` where the system has no such case.
pub fn run_case(
    device: &mut dyn FreshDevice,
    case: RemoteCase,
    fixture: &Fixture,
) -> anyhow::Result<Option<Measured>> {
    if case == RemoteCase::FirstBlockAlone {
        return device.first_block_alone();
    }
    let root = device.mount_fresh()?;
    let proxy = device.proxy();
    let measured = match case {
        RemoteCase::Listing => measure(proxy, || list(&root.join(FOLDER), fixture.listing_entries)),
        RemoteCase::FirstByte => measure(proxy, || first_bytes(&root.join(LARGE))),
        RemoteCase::ColdRead => measure(proxy, || sequential_read(&root.join(LARGE), fixture.size)),
        RemoteCase::FirstBlockAlone => unreachable!("handled above"),
    };
    device.unmount();
    measured.map(Some)
}

/// `ls -l` of `folder`; checks that it listed all `expected` entries.
fn list(folder: &Path, expected: usize) -> anyhow::Result<()> {
    let out = std::process::Command::new("ls")
        .arg("-l")
        .arg(folder)
        .output()?;
    ensure!(out.status.success(), "ls -l {} failed", folder.display());
    // The first line is "total N".
    let entries = out.stdout.iter().filter(|&&b| b == b'\n').count() - 1;
    ensure!(
        entries == expected,
        "ls -l listed {entries} entries of {expected}"
    );
    Ok(())
}

/// Opens `path` and reads its first bytes; checks them.
fn first_bytes(path: &Path) -> anyhow::Result<()> {
    let mut buffer = vec![0u8; FIRST_BYTES];
    std::fs::File::open(path)?.read_exact(&mut buffer)?;
    ensure!(
        buffer == strongroom_testkit::random_bytes(1 << 20, 9)[..FIRST_BYTES],
        "the first bytes of {} are not what was written",
        path.display()
    );
    Ok(())
}

/// Strongroom's fresh device: the member `reader`, who joined through the proxy and was given
/// the workspace as READER, restored for each mount to the home it had right after joining.
pub struct StrongroomFresh {
    proxy: TamperingProxy,
    reader: Member,
    pristine: PathBuf,
    workspace: String,
    dir: PathBuf,
    mount: Option<Mount>,
}

impl StrongroomFresh {
    /// Invites `reader` into `org` through a new proxy, shares `workspace` with them, and keeps
    /// a copy of their home as it is then. Mounts go to `base/strongroom-fresh`.
    pub fn new(org: &Org, workspace: &str, base: &Path) -> anyhow::Result<Self> {
        let proxy = TamperingProxy::start();
        proxy.set_upstream(org.server.url());
        let reader = org.member("reader");
        let email = "reader@example.com";
        let link = org.alice.last_line(&["invite", "user", email]);
        // The link names the server; the reader reaches it (and keeps its address) through the
        // proxy instead.
        let link = link.replacen(org.server.url(), &proxy.url(), 1);
        let (greeter, claimer) = greet_and_claim(
            &org.alice,
            &reader,
            &link,
            &["--name", "Reader", "--label", "desktop"],
            Pick::Heard,
            Pick::Heard,
        );
        ensure!(
            greeter.success && claimer.success,
            "the reader could not join: {}{}",
            greeter.stderr,
            claimer.stderr
        );
        org.alice.share(workspace, email, "READER");
        let pristine = base.join("strongroom-fresh-home");
        copy_tree(&reader.home, &pristine)?;
        Ok(Self {
            proxy,
            reader,
            pristine,
            workspace: workspace.to_string(),
            dir: base.join("strongroom-fresh"),
            mount: None,
        })
    }

    fn restore_home(&self) -> anyhow::Result<()> {
        let _ = std::fs::remove_dir_all(&self.reader.home);
        copy_tree(&self.pristine, &self.reader.home)
    }
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()?;
    ensure!(
        status.success(),
        "cp -a {} {} failed",
        from.display(),
        to.display()
    );
    Ok(())
}

impl FreshDevice for StrongroomFresh {
    fn name(&self) -> &'static str {
        "strongroom"
    }

    fn mount_fresh(&mut self) -> anyhow::Result<PathBuf> {
        self.unmount();
        self.restore_home()?;
        drop_caches();
        self.mount = Some(Mount::start(&self.reader, &self.workspace, &self.dir, &[]));
        Ok(self.dir.clone())
    }

    fn unmount(&mut self) {
        if let Some(mut mount) = self.mount.take() {
            mount.signal("TERM");
        }
    }

    fn proxy(&self) -> &TamperingProxy {
        &self.proxy
    }

    fn first_block_alone(&mut self) -> anyhow::Result<Option<Measured>> {
        self.unmount();
        self.restore_home()?;
        drop_caches();
        let runtime = tokio::runtime::Runtime::new()?;
        let measured = runtime.block_on(async {
            let client = Client::open(
                &Home::new(&self.reader.home),
                &Password::new(PASSWORD),
                KdfPolicy::AllowWeak,
            )?;
            let session = client.open_session(&self.workspace, None).await?;
            let mut id = session.root();
            for name in LARGE.split('/') {
                let name = EntryName::try_from(name.to_string())?;
                let entry = session
                    .entry(id)
                    .await?
                    .context("a folder on the way to the large file is missing")?;
                id = entry
                    .children
                    .iter()
                    .find(|(child, _)| *child == name)
                    .map(|(_, child)| *child)
                    .with_context(|| format!("{name} is missing"))?;
            }
            let (_, blocks, _) = session.file_content(id).await?;
            let first = blocks.first().context("the large file has no block")?;
            settle();
            self.proxy.take_request_count();
            let started = Instant::now();
            let plaintext = session.block(first).await?;
            let time = started.elapsed();
            ensure!(
                plaintext[..FIRST_BYTES]
                    == strongroom_testkit::random_bytes(1 << 20, 9)[..FIRST_BYTES],
                "the first block is not what was written"
            );
            anyhow::Ok(Measured {
                time,
                requests: self.proxy.take_request_count(),
            })
        })?;
        Ok(Some(measured))
    }
}

impl Drop for StrongroomFresh {
    fn drop(&mut self) {
        self.unmount();
    }
}

/// rclone's fresh device: a mount of the same crypt remote through the proxy, its cache
/// folder emptied first.
pub struct RcloneFresh {
    proxy: TamperingProxy,
    remote: RcloneRemote,
    cache: PathBuf,
    dir: PathBuf,
    log: PathBuf,
    mount: Option<Child>,
}

impl RcloneFresh {
    /// A device of `remote` (reached through a new proxy); mounts go to `base/rclone-fresh`.
    pub fn new(remote: &RcloneRemote, base: &Path) -> anyhow::Result<Self> {
        let proxy = TamperingProxy::start();
        proxy.set_upstream(remote.url.trim_end_matches('/'));
        let remote = RcloneRemote {
            url: format!("{}/", proxy.url()),
            password: remote.password.clone(),
        };
        let dir = base.join("rclone-fresh");
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            proxy,
            remote,
            cache: base.join("rclone-fresh-cache"),
            dir,
            log: base.join("rclone-fresh.log"),
            mount: None,
        })
    }
}

impl FreshDevice for RcloneFresh {
    fn name(&self) -> &'static str {
        "rclone"
    }

    fn mount_fresh(&mut self) -> anyhow::Result<PathBuf> {
        self.unmount();
        let _ = std::fs::remove_dir_all(&self.cache);
        std::fs::create_dir_all(&self.cache)?;
        self.mount = Some(self.remote.mount(&self.dir, &self.cache, &[], &self.log)?);
        Ok(self.dir.clone())
    }

    fn unmount(&mut self) {
        if let Some(child) = self.mount.take() {
            stop_rclone_mount(child, &self.dir);
        }
    }

    fn proxy(&self) -> &TamperingProxy {
        &self.proxy
    }
}

impl Drop for RcloneFresh {
    fn drop(&mut self) {
        self.unmount();
    }
}
