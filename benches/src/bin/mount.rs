//! `mount-bench`: the same work through a Strongroom mount and a gocryptfs mount on this
//! machine, in the same run: a large sequential write (fsynced), a cold sequential read (both
//! unmounted, the kernel's caches dropped, mounted again), and a source tree untarred, listed
//! (`ls -lR`) and removed (`rm -rf`). Prints times and gocryptfs time / Strongroom time (above 1:
//! Strongroom is faster). Issue 4's targets: 2 or more for the sequential write and read, 1 or
//! more for the tree.
//!
//! Before each timed operation the machine is left to settle (under 10 % busy), and the systems
//! take turns going first, so that one's background work does not land in the other's times.
//!
//! Needs root (FUSE mounts, dropping caches) and `gocryptfs`.
//! Run: `cargo run --release -p strongroom-benches --bin mount-bench -- --size-mib 1024 --dir /tmp`

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use strongroom_benches::suite::machine::settle;
use strongroom_benches::suite::systems::{Gocryptfs, Strongroom, System};
use strongroom_benches::suite::workloads::{sequential_read, sequential_write, shell};
use strongroom_testkit::scenario::Org;
use strongroom_testkit::{Server, ServerOptions};

#[derive(Parser)]
struct Args {
    /// Size of the sequentially written and read file, in MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Files in the generated source tree (about 20 KiB each).
    #[arg(long, default_value_t = 5000)]
    files: usize,
    /// Runs of each measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where the server, the homes, gocryptfs's cipher folder and the mount points go.
    #[arg(long, default_value = "/tmp")]
    dir: PathBuf,
}

fn timed(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    settle();
    let started = Instant::now();
    f()?;
    Ok(started.elapsed())
}

/// A source-like tree: `files` text files of about 20 KiB in nested folders, as a tarball.
fn make_tarball(base: &Path, files: usize) -> anyhow::Result<PathBuf> {
    let tree = base.join("tree-src");
    for i in 0..files {
        let folder = tree.join(format!("mod{:02}/sub{:02}", i % 50, (i / 50) % 10));
        std::fs::create_dir_all(&folder)?;
        let line = format!("pub fn function_{i}() -> u64 {{ {i} }} // some source text\n");
        std::fs::write(
            folder.join(format!("file{i}.rs")),
            line.repeat(20_000 / line.len()),
        )?;
    }
    let tarball = base.join("tree.tar");
    shell(base, "tar -cf tree.tar tree-src && rm -rf tree-src")?;
    Ok(tarball)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let size = args.size_mib << 20;
    let base = tempfile::Builder::new()
        .prefix("strongroom-mount-bench")
        .tempdir_in(&args.dir)?;
    let tarball = make_tarball(base.path(), args.files)?;
    let tar_mib = std::fs::metadata(&tarball)?.len() >> 20;

    let server = Server::start_in(&base.path().join("server"), ServerOptions::default());
    let homes = tempfile::Builder::new()
        .prefix("strongroom-mount-bench-homes")
        .tempdir_in(&args.dir)?;
    let org = Org::with_server_in(server, homes);
    let mut strongroom = Strongroom::new(&org, base.path());
    let mut gocryptfs = Gocryptfs::new(base.path())?;
    let mut systems: [&mut dyn System; 2] = [&mut strongroom, &mut gocryptfs];
    for fs in systems.iter_mut() {
        fs.remount()?;
    }

    println!(
        "Mount benchmark: a {} MiB file, a {tar_mib} MiB tarball of {} files, {} runs, median times",
        args.size_mib, args.files, args.runs
    );
    let names = [
        "sequential write (fsync)",
        "cold sequential read",
        "untar",
        "ls -lR",
        "rm -rf",
    ];
    let mut times: Vec<Vec<Vec<Duration>>> = vec![vec![Vec::new(); names.len()]; 2];
    for run in 0..args.runs {
        // Each system goes first in turn.
        let order: Vec<usize> = if run % 2 == 0 { vec![0, 1] } else { vec![1, 0] };
        for i in order {
            let fs = &mut systems[i];
            let file = fs.root().join(format!("big-{run}.bin"));
            times[i][0].push(timed(|| sequential_write(&file, size))?);
            // Cold: unmounted, the kernel's caches dropped, mounted again.
            fs.remount()?;
            times[i][1].push(timed(|| sequential_read(&file, size))?);
            std::fs::remove_file(&file)?;
            let tree = format!("tree-{run}");
            std::fs::create_dir(fs.root().join(&tree))?;
            let untar = format!("tar -C {tree} -xf {}", tarball.display());
            times[i][2].push(timed(|| shell(fs.root(), &untar))?);
            let list = format!("ls -lR {tree} > /dev/null");
            times[i][3].push(timed(|| shell(fs.root(), &list))?);
            let remove = format!("rm -rf {tree}");
            times[i][4].push(timed(|| shell(fs.root(), &remove))?);
        }
    }

    for (i, fs) in systems.iter().enumerate() {
        for (n, name) in names.iter().enumerate() {
            let text: Vec<String> = times[i][n]
                .iter()
                .map(|d| format!("{:.2}", d.as_secs_f64()))
                .collect();
            println!("  {:<11} {name:<26} runs: {} s", fs.name(), text.join(" "));
        }
    }
    println!(
        "{:<26} {:>12} {:>12} {:>9}",
        "operation", "strongroom", "gocryptfs", "ratio"
    );
    for (n, name) in names.iter().enumerate() {
        let ours = median(times[0][n].clone());
        let theirs = median(times[1][n].clone());
        println!(
            "{name:<26} {:>11.2}s {:>11.2}s {:>9.2}",
            ours.as_secs_f64(),
            theirs.as_secs_f64(),
            theirs.as_secs_f64() / ours.as_secs_f64()
        );
    }
    println!(
        "(ratio = gocryptfs time / strongroom time; the targets are 2 for the file, 1 for the tree; \
         {} MiB file: {:.0} MiB/s written, {:.0} MiB/s read by strongroom)",
        args.size_mib,
        args.size_mib as f64 / median(times[0][0].clone()).as_secs_f64(),
        args.size_mib as f64 / median(times[0][1].clone()).as_secs_f64()
    );
    Ok(())
}
