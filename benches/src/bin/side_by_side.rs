//! `side-by-side`: the benchmark suite. The same workloads on plain tmpfs, gocryptfs, rclone
//! crypt (over `rclone serve webdav`, `--vfs-cache-mode full`) and a Strongroom mount, all
//! keeping their data and caches on tmpfs, several runs each; then, for rclone and Strongroom,
//! the remote cases (a fresh device reading what another one uploaded, requests counted).
//! Written up as a report (`report.json`, `report.md`, `chart.svg`) with the machine's facts
//! and each system's speed relative to gocryptfs, tmpfs and (remote cases) rclone.
//!
//! Needs root (FUSE mounts, dropping caches); installs gocryptfs, rclone, fio and
//! linux-source with apt when they are missing.
//! Run: `cargo run --release -p strongroom-benches --bin side-by-side`

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::ensure;
use clap::Parser;
use strongroom_benches::suite::machine::{Machine, apt_install, prefault_memory, set_settling};
use strongroom_benches::suite::remote::{FreshDevice, RemoteCase, run_case};
use strongroom_benches::suite::report::{Report, Row};
use strongroom_benches::suite::systems::{Gocryptfs, Rclone, Strongroom, System, Tmpfs};
use strongroom_benches::suite::workloads::{
    Fixture, Workload, generated_tarball, linux_tarball, run_once,
};
use strongroom_testkit::scenario::Org;
use strongroom_testkit::{Server, ServerOptions};

#[derive(Parser)]
struct Args {
    /// Size of the large file, MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Runs of each workload (medians and spread are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where every system keeps its data: a tmpfs, so that disks are not compared.
    #[arg(long, default_value = "/dev/shm")]
    dir: PathBuf,
    /// Where the report goes.
    #[arg(long, default_value = "bench-report")]
    out: PathBuf,
    /// Skip touching the machine's free memory first (see `prefault_memory`).
    #[arg(long)]
    no_prefault: bool,
    /// A check of the harness, not a measurement: no waiting for the machine to be quiet
    /// before each timed operation, no touching of free memory.
    #[arg(long)]
    smoke: bool,
    /// The systems to run, of tmpfs, gocryptfs, rclone and strongroom (all by default).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "tmpfs,gocryptfs,rclone,strongroom"
    )]
    systems: Vec<String>,
    /// The parts to run: local (the workloads on a mounted system) and remote (a fresh device).
    #[arg(long, value_delimiter = ',', default_value = "local,remote")]
    parts: Vec<String>,
    /// Entries of the folder the remote listing case lists.
    #[arg(long, default_value_t = 10_000)]
    listing_entries: usize,
    /// Untar a generated tree of this many small files instead of part of linux-source (for
    /// a quick run).
    #[arg(long)]
    generated_tree: Option<usize>,
}

/// Installs what the chosen systems and parts need with apt, when root and something is
/// missing.
fn install_peers(args: &Args) -> anyhow::Result<()> {
    let wanted = [
        ("gocryptfs", "gocryptfs", args.wants_system("gocryptfs")),
        ("rclone", "rclone", args.wants_system("rclone")),
        ("fio", "fio", args.wants_part("local")),
    ];
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(_, _, needed)| *needed)
        .filter(|(program, _, _)| {
            Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .stdout(Stdio::null())
                .status()
                .map_or(true, |s| !s.success())
        })
        .map(|(_, package, _)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("Installing {} with apt", missing.join(", "));
    apt_install(&missing)
}

impl Args {
    fn wants_system(&self, name: &str) -> bool {
        self.systems.iter().any(|s| s == name)
    }
    fn wants_part(&self, name: &str) -> bool {
        self.parts.iter().any(|s| s == name)
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        is_root(),
        "the suite mounts file systems and drops caches: run it as root"
    );
    install_peers(&args)?;
    set_settling(!args.smoke);
    if !args.no_prefault && !args.smoke {
        println!("Touching free memory once (a virtual machine's first touch is slow)");
        prefault_memory();
    }
    let base = tempfile::Builder::new()
        .prefix("strongroom-side-by-side")
        .tempdir_in(&args.dir)?;
    println!("Preparing the source tree");
    let (tarball, tree) = match args.generated_tree {
        Some(files) => generated_tarball(base.path(), files)?,
        None => linux_tarball(base.path())?,
    };
    let fixture = Fixture {
        size: args.size_mib << 20,
        tarball,
        tarball_description: tree,
        listing_entries: args.listing_entries,
    };

    let server = Server::start_in(&base.path().join("server"), ServerOptions::default());
    let homes = tempfile::Builder::new()
        .prefix("strongroom-side-by-side-homes")
        .tempdir_in(&args.dir)?;
    let org = Org::with_server_in(server, homes);
    let wanted = |name: &str| args.wants_system(name);
    let mut all: Vec<Box<dyn System + '_>> = Vec::new();
    if wanted("tmpfs") {
        all.push(Box::new(Tmpfs::new(base.path())?));
    }
    if wanted("gocryptfs") {
        all.push(Box::new(Gocryptfs::new(base.path())?));
    }
    if wanted("rclone") {
        all.push(Box::new(Rclone::new(base.path())?));
    }
    if wanted("strongroom") {
        all.push(Box::new(Strongroom::new(&org, base.path())));
    }
    ensure!(!all.is_empty(), "no system chosen (--systems)");
    let mut systems: Vec<&mut dyn System> = all.iter_mut().map(|s| &mut **s as _).collect();
    for system in systems.iter_mut() {
        system.remount()?;
    }

    let count = systems.len();
    let mut times: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); Workload::ALL.len()]; count];
    if args.wants_part("local") {
        for run in 0..args.runs {
            // Each system goes first in turn.
            for k in 0..count {
                let i = (run + k) % count;
                let system = &mut systems[i];
                println!("Run {}/{}: {}", run + 1, args.runs, system.name());
                let taken = run_once(&mut **system, &fixture, run)?;
                for (w, duration) in taken.into_iter().enumerate() {
                    times[i][w].push(duration.as_secs_f64());
                }
            }
        }
    }
    let rows = if args.wants_part("local") {
        Workload::ALL
            .iter()
            .enumerate()
            .map(|(w, workload)| {
                let per_system: Vec<(String, Vec<f64>)> = systems
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (s.name().to_string(), times[i][w].clone()))
                    .collect();
                Row::new(workload.name(), &per_system)
            })
            .collect()
    } else {
        Vec::new()
    };

    let remote_rows = if args.wants_part("remote") {
        run_remote(&mut systems, base.path(), &fixture, args.runs)?
    } else {
        Vec::new()
    };

    let report = Report {
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        command: std::iter::once("side-by-side".to_string())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" "),
        machine: Machine::describe(),
        runs: args.runs,
        file_mib: args.size_mib,
        tree: fixture.tarball_description.clone(),
        listing_entries: fixture.listing_entries,
        rows,
        remote_rows,
    };
    report.write(&args.out)?;
    println!("{}", report.markdown());
    println!("Written to {}", args.out.display());
    Ok(())
}

/// The remote cases: each system with a server uploads their data, then each case runs on a
/// fresh device of each, `runs` times, the systems taking turns.
fn run_remote(
    systems: &mut [&mut dyn System],
    base: &std::path::Path,
    fixture: &Fixture,
    runs: usize,
) -> anyhow::Result<Vec<Row>> {
    let mut devices: Vec<Box<dyn FreshDevice>> = Vec::new();
    for system in systems.iter_mut() {
        println!("Uploading the remote cases' data: {}", system.name());
        if let Some(device) = system.prepare_remote(base, fixture)? {
            devices.push(device);
        }
    }
    let count = devices.len();
    // Per device, per case: times and requests of each run.
    let mut measured: Vec<Vec<(Vec<f64>, Vec<usize>)>> =
        vec![vec![(Vec::new(), Vec::new()); RemoteCase::ALL.len()]; count];
    for run in 0..runs {
        for k in 0..count {
            let i = (run + k) % count;
            let device = &mut devices[i];
            println!("Remote run {}/{runs}: {}", run + 1, device.name());
            for (c, case) in RemoteCase::ALL.iter().enumerate() {
                if let Some(m) = run_case(&mut **device, *case, fixture)? {
                    measured[i][c].0.push(m.time.as_secs_f64());
                    measured[i][c].1.push(m.requests);
                }
            }
        }
    }
    Ok(RemoteCase::ALL
        .iter()
        .enumerate()
        .map(|(c, case)| {
            let per_device: Vec<(String, Vec<f64>, Vec<usize>)> = devices
                .iter()
                .enumerate()
                .filter(|(i, _)| !measured[*i][c].0.is_empty())
                .map(|(i, d)| {
                    let (times, requests) = measured[i][c].clone();
                    (d.name().to_string(), times, requests)
                })
                .collect();
            Row::with_requests(case.name(), &per_device)
        })
        .filter(|row| !row.cells.is_empty())
        .collect())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next().map(|u| u == "0"))
        })
        .unwrap_or(false)
}
