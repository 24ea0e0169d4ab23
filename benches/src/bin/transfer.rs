//! `transfer-bench`: `put` and cold `get` of a large file with the real client and server,
//! against moving the same bytes over the same server's HTTP endpoints without any of the
//! client's work (no encryption, no hashing, no local cache). Reports times, throughputs and
//! ratios; the targets (issue 3) are a ratio of 0.7 or more for both.
//!
//! Run: `cargo run --release -p strongroom-benches --bin transfer-bench -- --size-mib 1024`

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use futures_util::{StreamExt, TryStreamExt};
use rand_core::{OsRng, RngCore};
use strongroom_engine::connection::{Connection, Credentials};
use strongroom_engine::files::PARALLEL_TRANSFERS;
use strongroom_protocol::ids::{BlockId, RealmId};
use strongroom_testkit::raw::keys;
use strongroom_testkit::scenario::{Org, join_user};
use strongroom_testkit::{Member, Server, ServerOptions};

#[derive(Parser)]
struct Args {
    /// Size of the file, in MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Runs of each measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where the server data, homes and files go (tmpfs by default, so that the disk does not
    /// dominate).
    #[arg(long, default_value = "/dev/shm")]
    dir: std::path::PathBuf,
    /// The block size `put` cuts the file into, in KiB (64 to 4096; the client's default is
    /// 1024). The plain transfers move blocks of the same size.
    #[arg(long, default_value_t = 1024)]
    block_size_kib: u64,
    /// Keep the server running and the folders after the runs, to profile by hand.
    #[arg(long)]
    keep: bool,
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn mib_per_s(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / time.as_secs_f64()
}

/// Puts every measurement on the same footing. Pending writes reach the disk first, so that one
/// measurement does not pay for the previous one's writeback. Then `size` bytes are written to a
/// scratch file and deleted: on a virtual machine, the first write into memory the guest has
/// given back to the host costs a fault per page (measured here: a 1 GiB `get` to a file took
/// 3.0 s after 8 s idle, 1.1 s right after such a warm-up, with the same 0.35 s of user time),
/// which otherwise falls on whichever measurement happens to run first.
fn settle(dir: &Path, size: u64) -> anyhow::Result<()> {
    let scratch = dir.join("warm-up.bin");
    {
        let mut file = std::fs::File::create(&scratch)?;
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..size.div_ceil(1 << 20) {
            std::io::Write::write_all(&mut file, &chunk)?;
        }
    }
    std::fs::remove_file(&scratch)?;
    let _ = std::process::Command::new("sync").status();
    Ok(())
}

fn timed(
    member: &Member,
    args: &[&str],
    dir: &Path,
    size: u64,
    block_size: u64,
) -> anyhow::Result<Duration> {
    settle(dir, size)?;
    let started = Instant::now();
    let out = member
        .command(args)
        .env("STRONGROOM_BLOCK_SIZE", block_size.to_string())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(started.elapsed())
}

/// Moves `count` blocks of `size` bytes over the block endpoints, `PARALLEL_TRANSFERS` at once,
/// as the device `home`: uploads fresh random blocks, or downloads the given ones (into `save`,
/// in order and then `fsync`ed as `get` does, or nowhere).
async fn raw_transfer(
    home: &Path,
    realm: RealmId,
    upload: Option<(usize, usize)>,
    download: &[BlockId],
    save: Option<&Path>,
) -> anyhow::Result<Duration> {
    let keys = keys(home);
    let signing = keys.signing_key();
    let connection = Connection::new(keys.server()?)?;
    let credentials = Credentials::Device {
        organization: &keys.organization,
        device: keys.device_id,
        key: &signing,
    };
    let base = format!("/authenticated/{}/realms/{realm}/blocks", keys.organization);
    let started = Instant::now();
    match upload {
        Some((count, size)) => {
            let mut payload = vec![0u8; size];
            OsRng.fill_bytes(&mut payload);
            futures_util::stream::iter((0..count).map(|_| {
                let path = format!("{base}/{}", BlockId::generate(&mut OsRng));
                let body = payload.clone();
                let connection = &connection;
                async move {
                    connection
                        .send_raw(reqwest::Method::PUT, &path, body, credentials)
                        .await
                }
            }))
            .buffer_unordered(PARALLEL_TRANSFERS)
            .try_collect::<Vec<_>>()
            .await?;
        }
        None => {
            let mut file = save.map(std::fs::File::create).transpose()?;
            let mut blocks = futures_util::stream::iter(download.iter().map(|id| {
                let path = format!("{base}/{id}");
                let connection = &connection;
                async move {
                    connection
                        .send_raw(reqwest::Method::GET, &path, Vec::new(), credentials)
                        .await
                }
            }))
            .buffered(PARALLEL_TRANSFERS);
            while let Some(block) = blocks.try_next().await? {
                if let Some(file) = &mut file {
                    std::io::Write::write_all(file, &block)?;
                }
            }
            if let Some(file) = file {
                file.sync_all()?;
                std::fs::remove_file(save.expect("a file to save to"))?;
            }
        }
    }
    Ok(started.elapsed())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let size = args.size_mib << 20;
    let scratch = tempfile::Builder::new()
        .prefix("strongroom-bench")
        .tempdir_in(&args.dir)?;
    let server = Server::start_in(&scratch.path().join("server"), ServerOptions::default());
    let homes = tempfile::Builder::new()
        .prefix("strongroom-bench-homes")
        .tempdir_in(&args.dir)?;
    let org = Org::with_server_in(server, homes);
    let alice = &org.alice;
    alice.ok(&["workspace", "create", "Bench"]);
    let file = scratch.path().join("big.bin");
    {
        let mut data = vec![0u8; size as usize];
        OsRng.fill_bytes(&mut data);
        std::fs::write(&file, data)?;
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let realm: RealmId = {
        let client = strongroom_engine::Client::open(
            &strongroom_engine::home::Home::new(&alice.home),
            &strongroom_engine::password::Password::new(strongroom_testkit::member::PASSWORD),
            strongroom_engine::device_file::KdfPolicy::AllowWeak,
        )?;
        client.workspace_context_offline("Bench")?.realm
    };
    let block_size = args.block_size_kib << 10;
    anyhow::ensure!(
        (64 << 10..=4 << 20).contains(&block_size),
        "--block-size-kib is between 64 and 4096"
    );
    let blocks = size.div_ceil(block_size) as usize;

    println!(
        "Strongroom transfer benchmark: a {} MiB file in {} KiB blocks, {} runs, median times",
        args.size_mib, args.block_size_kib, args.runs
    );
    let mut put_times = Vec::new();
    let mut plain_put_times = Vec::new();
    for run in 0..args.runs {
        put_times.push(timed(
            alice,
            &[
                "put",
                file.to_str().unwrap(),
                &format!("Bench:/big-{run}.bin"),
            ],
            scratch.path(),
            size,
            block_size,
        )?);
        settle(scratch.path(), size)?;
        plain_put_times.push(runtime.block_on(raw_transfer(
            &alice.home,
            realm,
            Some((blocks, block_size as usize + 40)),
            &[],
            None,
        ))?);
    }

    // Cold reads: each run on a new device of a new user, with an empty cache.
    let db = rusqlite::Connection::open(org.server.data_dir().join("metadata.sqlite"))?;
    let mut stored: Vec<BlockId> = Vec::new();
    {
        let mut stmt =
            db.prepare("SELECT block FROM blocks WHERE realm = ?1 ORDER BY rowid LIMIT ?2")?;
        let rows = stmt.query_map(rusqlite::params![realm.as_bytes(), blocks as i64], |r| {
            r.get::<_, Vec<u8>>(0)
        })?;
        for row in rows {
            stored.push(BlockId::from_bytes(
                row?.try_into().map_err(|_| anyhow::anyhow!("block id"))?,
            ));
        }
    }
    let mut get_times = Vec::new();
    let mut plain_get_times = Vec::new();
    let mut stream_times = Vec::new();
    let mut plain_stream_times = Vec::new();
    for run in 0..args.runs {
        let reader = org.member(&format!("reader{run}"));
        join_user(
            alice,
            &reader,
            &format!("reader{run}@example.com"),
            "Reader",
            &[],
        );
        alice.ok(&[
            "workspace",
            "share",
            "Bench",
            &format!("reader{run}@example.com"),
            "--role",
            "reader",
        ]);
        reader.ok(&["ls", "Bench"]);
        let out = scratch.path().join(format!("out-{run}.bin"));
        get_times.push(timed(
            &reader,
            &["get", "Bench:/big-0.bin", out.to_str().unwrap()],
            scratch.path(),
            size,
            block_size,
        )?);
        std::fs::remove_file(&out).context("the copy")?;
        settle(scratch.path(), size)?;
        plain_get_times.push(runtime.block_on(raw_transfer(
            &reader.home,
            realm,
            None,
            &stored,
            Some(&out),
        ))?);
        // The same without the local file (a `get` to standard output, discarded): what the
        // client's own work costs, free of the page cache and the disk. Still cold: `get` fills
        // no cache.
        settle(scratch.path(), size)?;
        let started = Instant::now();
        let streamed = reader
            .command(&["get", "Bench:/big-0.bin", "-"])
            .stdout(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(streamed.success(), "get to standard output failed");
        stream_times.push(started.elapsed());
        settle(scratch.path(), size)?;
        plain_stream_times.push(runtime.block_on(raw_transfer(
            &reader.home,
            realm,
            None,
            &stored,
            None,
        ))?);
    }

    let show = |name: &str, samples: &[Duration]| {
        let text: Vec<String> = samples
            .iter()
            .map(|d| format!("{:.2}", d.as_secs_f64()))
            .collect();
        println!("  {name:<24} runs: {} s", text.join(" "));
    };
    show("put", &put_times);
    show("plain uploads", &plain_put_times);
    show("cold get to a file", &get_times);
    show("plain downloads to a file", &plain_get_times);
    show("cold get to stdout", &stream_times);
    show("plain downloads", &plain_stream_times);
    let rows = [
        (
            "put (read, encrypt, upload)",
            median(put_times.clone()),
            "plain block uploads",
            median(plain_put_times.clone()),
        ),
        (
            "cold get to a file (fetch, decrypt, verify)",
            median(get_times.clone()),
            "plain downloads to a file",
            median(plain_get_times.clone()),
        ),
        (
            "cold get to stdout (fetch, decrypt, verify)",
            median(stream_times.clone()),
            "plain downloads",
            median(plain_stream_times.clone()),
        ),
    ];
    println!(
        "{:<44} {:>9} {:>10}   {:<26} {:>9} {:>10}   {:>6}",
        "strongroom", "time", "MiB/s", "baseline", "time", "MiB/s", "ratio"
    );
    for (name, time, baseline, base_time) in rows {
        println!(
            "{name:<44} {:>8.2}s {:>10.1}   {baseline:<26} {:>8.2}s {:>10.1}   {:>6.2}",
            time.as_secs_f64(),
            mib_per_s(size, time),
            base_time.as_secs_f64(),
            mib_per_s(size, base_time),
            base_time.as_secs_f64() / time.as_secs_f64()
        );
    }
    println!("(ratio = strongroom throughput / baseline throughput; the target is 0.70 or more)");
    if args.keep {
        println!(
            "kept: server {} with data in {}",
            org.server.url(),
            org.server.data_dir().display()
        );
        println!("      homes in {}", org.path().display());
        std::mem::forget(org);
        std::mem::forget(scratch);
    }
    Ok(())
}
