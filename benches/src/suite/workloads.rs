//! The workloads, the same on every system, in the order one run takes them.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::ensure;

use super::machine::{apt_install, settle};
use super::systems::System;

/// What the workloads work with.
pub struct Fixture {
    /// Size of the large file, bytes.
    pub size: u64,
    /// An uncompressed tarball of a source tree.
    pub tarball: PathBuf,
    /// What it is (for the report).
    pub tarball_description: String,
    /// Entries of the folder the remote listing case lists.
    pub listing_entries: usize,
}

/// One workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// The large file written in 1 MiB pieces, then `fsync`.
    SequentialWrite,
    /// Read once after a remount with the kernel's caches dropped.
    ColdRead,
    /// Read again at once.
    WarmReread,
    /// 16,384 random 4 KiB reads with `fio`, after a remount (cold).
    RandomReads,
    /// The tarball extracted into the system.
    Untar,
    /// Every file of the tree read and hashed (BLAKE3) after a remount (cold).
    HashCold,
    /// `ls -lR` of the tree.
    ListTree,
    /// `rm -rf` of the tree.
    RemoveTree,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 8] = [
        Workload::SequentialWrite,
        Workload::ColdRead,
        Workload::WarmReread,
        Workload::RandomReads,
        Workload::Untar,
        Workload::HashCold,
        Workload::ListTree,
        Workload::RemoveTree,
    ];

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Workload::SequentialWrite => "sequential write + fsync",
            Workload::ColdRead => "cold sequential read",
            Workload::WarmReread => "warm re-read",
            Workload::RandomReads => "random 4 KiB reads (fio, cold)",
            Workload::Untar => "untar",
            Workload::HashCold => "hash every file (cold)",
            Workload::ListTree => "ls -lR",
            Workload::RemoveTree => "rm -rf",
        }
    }
}

fn timed(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    settle();
    let started = Instant::now();
    f()?;
    Ok(started.elapsed())
}

/// Runs every workload once on `system`; returns the times in [`Workload::ALL`] order.
pub fn run_once(
    system: &mut dyn System,
    fixture: &Fixture,
    run: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(Workload::ALL.len());
    let file = system.root().join(format!("large-{run}.bin"));
    times.push(timed(|| sequential_write(&file, fixture.size))?);
    system.remount()?;
    times.push(timed(|| sequential_read(&file, fixture.size))?);
    times.push(timed(|| sequential_read(&file, fixture.size))?);
    system.remount()?;
    times.push(timed(|| random_reads(&file, fixture.size))?);
    std::fs::remove_file(&file)?;
    let tree = system.root().join(format!("tree-{run}"));
    std::fs::create_dir(&tree)?;
    times.push(timed(|| {
        shell(&tree, &format!("tar -xf {}", fixture.tarball.display()))
    })?);
    system.remount()?;
    times.push(timed(|| hash_tree(&tree).map(drop))?);
    times.push(timed(|| shell(&tree, "ls -lR > /dev/null"))?);
    times.push(timed(|| {
        shell(system.root(), &format!("rm -rf tree-{run}"))
    })?);
    Ok(times)
}

/// Writes `size` bytes in 1 MiB pieces, then `fsync`.
pub fn sequential_write(path: &Path, size: u64) -> anyhow::Result<()> {
    let chunk = strongroom_testkit::random_bytes(1 << 20, 9);
    let mut file = std::fs::File::create(path)?;
    for _ in 0..size >> 20 {
        file.write_all(&chunk)?;
    }
    file.sync_all()?;
    Ok(())
}

/// Reads the whole file in 1 MiB pieces.
pub fn sequential_read(path: &Path, size: u64) -> anyhow::Result<()> {
    let mut file = std::fs::File::open(path)?;
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    ensure!(total == size, "read {total} bytes of {size}");
    Ok(())
}

fn random_reads(path: &Path, size: u64) -> anyhow::Result<()> {
    let status = Command::new("fio")
        .args([
            "--name=random-reads",
            "--rw=randread",
            "--bs=4k",
            "--io_size=64m",
            "--ioengine=psync",
            "--invalidate=1",
            "--randrepeat=1",
        ])
        .arg(format!("--size={size}"))
        .arg(format!("--filename={}", path.display()))
        .stdout(Stdio::null())
        .status()?;
    ensure!(status.success(), "fio failed");
    Ok(())
}

/// Reads and hashes every file under `dir`; returns how many.
fn hash_tree(dir: &Path) -> anyhow::Result<usize> {
    let mut files = 0;
    let mut folders = vec![dir.to_path_buf()];
    let mut buffer = Vec::new();
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                folders.push(entry.path());
            } else if kind.is_file() {
                buffer.clear();
                std::fs::File::open(entry.path())?.read_to_end(&mut buffer)?;
                std::hint::black_box(strongroom_protocol::crypto::hash::Digest::of(&buffer));
                files += 1;
            }
        }
    }
    Ok(files)
}

/// Runs `script` with `sh -e` in `dir`; an error if it fails.
pub fn shell(dir: &Path, script: &str) -> anyhow::Result<()> {
    let status = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .current_dir(dir)
        .status()?;
    ensure!(status.success(), "{script} failed");
    Ok(())
}

/// The source tree: part of Debian's `linux-source` (fs, net, kernel, mm, include/linux: about
/// 7,700 files, 110 MB), as an uncompressed tarball under `base`. `linux-source` is installed
/// with apt when missing (as root).
pub fn linux_tarball(base: &Path) -> anyhow::Result<(PathBuf, String)> {
    let source = find_linux_source().or_else(|| {
        let _ = apt_install(&["linux-source"]);
        find_linux_source()
    });
    let Some(source) = source else {
        anyhow::bail!("no /usr/src/linux-source-*.tar.xz (apt-get install linux-source)");
    };
    let stem = source
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".tar.xz"))
        .unwrap_or("linux-source")
        .to_string();
    let parts = ["fs", "net", "kernel", "mm", "include/linux"];
    let members: Vec<String> = parts.iter().map(|p| format!("{stem}/{p}")).collect();
    let tarball = base.join("linux-tree.tar");
    shell(
        base,
        &format!(
            "xz -dc {} | tar -x {} && tar -cf {} {stem} && rm -rf {stem}",
            source.display(),
            members.join(" "),
            tarball.display()
        ),
    )?;
    Ok((tarball, format!("{stem}: {}", parts.join(", "))))
}

/// A generated source tree of `files` small files (1-32 KiB of random bytes) in folders of
/// 50, as an uncompressed tarball under `base`: for a quick run (the smoke test) without the
/// linux-source package.
pub fn generated_tarball(base: &Path, files: usize) -> anyhow::Result<(PathBuf, String)> {
    let root = base.join("generated-tree");
    for i in 0..files {
        let folder = root.join(format!("d{:03}", i / 50));
        std::fs::create_dir_all(&folder)?;
        let len = 1024 + (i * 7919) % (31 * 1024);
        std::fs::write(
            folder.join(format!("f{i:05}.c")),
            strongroom_testkit::random_bytes(len, i as u64),
        )?;
    }
    let tarball = base.join("generated-tree.tar");
    shell(
        base,
        &format!(
            "tar -cf {} generated-tree && rm -rf generated-tree",
            tarball.display()
        ),
    )?;
    Ok((tarball, format!("a generated tree of {files} files")))
}

fn find_linux_source() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/src")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("linux-source-") && n.ends_with(".tar.xz"))
        })
        .collect();
    found.sort();
    found.pop()
}
