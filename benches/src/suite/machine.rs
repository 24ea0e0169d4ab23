//! The machine a run happened on, and keeping runs apart: dropping the kernel's caches and
//! waiting for the machine to settle between timed operations.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// What a reader needs to compare a report with their own machine.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPU model (`/proc/cpuinfo`).
    pub cpu: String,
    /// Logical cores.
    pub cores: usize,
    /// Memory, GiB.
    pub memory_gib: u64,
    /// Kernel release.
    pub kernel: String,
    /// Versions of the peers, as they report them.
    pub peers: Vec<String>,
}

impl Machine {
    /// The machine this runs on.
    pub fn describe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let memory_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            })
            .map_or(0, |kib| (kib + (1 << 19)) >> 20);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let peers = [
            ("gocryptfs", "-version"),
            ("rclone", "version"),
            ("fio", "--version"),
        ]
        .iter()
        .filter_map(|(program, flag)| {
            let out = Command::new(program).arg(flag).output().ok()?;
            String::from_utf8(out.stdout)
                .ok()?
                .lines()
                .next()
                .map(|l| l.trim().to_string())
        })
        .collect();
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib,
            kernel,
            peers,
        }
    }
}

/// Installs Debian `packages` with apt (root; no questions asked).
pub fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| anyhow::anyhow!("apt-get: {e}"))?;
    anyhow::ensure!(
        status.success(),
        "apt-get install {} failed",
        packages.join(" ")
    );
    Ok(())
}

/// Writes dirty pages out and drops the kernel's page, dentry and inode caches (root only).
pub fn drop_caches() {
    let _ = Command::new("sync").status();
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
}

/// Busy and total CPU time since boot, from `/proc/stat`.
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().sum();
    // idle and iowait
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Whether [`settle`] waits (a smoke run of the harness, whose times mean nothing, does not).
static SETTLING: AtomicBool = AtomicBool::new(true);

/// Makes [`settle`] wait (the default) or return at once.
pub fn set_settling(on: bool) {
    SETTLING.store(on, Ordering::Relaxed);
}

/// Waits until the machine is quiet (under 10 % busy for half a second, 60 s at most), so
/// that no system's background work (an upload, a write-back) lands in another's timing.
pub fn settle() {
    if !SETTLING.load(Ordering::Relaxed) {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let Some((busy0, total0)) = cpu_times() else {
            return;
        };
        std::thread::sleep(Duration::from_millis(500));
        let Some((busy1, total1)) = cpu_times() else {
            return;
        };
        if (busy1 - busy0) * 10 < (total1 - total0).max(1) {
            return;
        }
    }
}

/// Touches the machine's free memory once, so that a virtual machine's first touch of a page
/// (which costs the host's allocation, ten times a normal fault on the reference machine) is
/// not charged to whichever system happens to run first.
pub fn prefault_memory() {
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024;
    // Leave room for everything else (2 GiB), touch the rest in 256 MiB pieces.
    let budget = available.saturating_sub(2 << 30);
    let mut pieces = Vec::new();
    let mut touched = 0u64;
    while touched < budget {
        let mut piece = vec![0u8; 256 << 20];
        for page in piece.chunks_mut(4096) {
            page[0] = 1;
        }
        pieces.push(piece);
        touched += 256 << 20;
    }
    drop(pieces);
}
