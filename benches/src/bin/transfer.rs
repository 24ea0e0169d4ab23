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

/// Lets pending writes reach the disk, so that one measurement does not pay for the previous
/// one's writeback.
fn settle() {
    let _ = std::process::Command::new("sync").status();
}

fn timed(member: &Member, args: &[&str]) -> anyhow::Result<Duration> {
    settle();
    let started = Instant::now();
    let out = member.command(args).output()?;
    anyhow::ensure!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(started.elapsed())
}

/// Moves `count` blocks of `size` bytes over the block endpoints, `PARALLEL_TRANSFERS` at once,
/// as the device `home`: uploads fresh random blocks, or downloads the given ones.
async fn raw_transfer(
    home: &Path,
    realm: RealmId,
    upload: Option<(usize, usize)>,
    download: &[BlockId],
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
            futures_util::stream::iter(download.iter().map(|id| {
                let path = format!("{base}/{id}");
                let connection = &connection;
                async move {
                    connection
                        .send_raw(reqwest::Method::GET, &path, Vec::new(), credentials)
                        .await
                }
            }))
            .buffered(PARALLEL_TRANSFERS)
            .try_collect::<Vec<_>>()
            .await?;
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
        )?;
        client.workspace_context_offline("Bench")?.realm
    };
    let blocks = size.div_ceil(1 << 20) as usize;

    println!(
        "Strongroom transfer benchmark: a {} MiB file, {} runs, median times",
        args.size_mib, args.runs
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
        )?);
        settle();
        plain_put_times.push(runtime.block_on(raw_transfer(
            &alice.home,
            realm,
            Some((blocks, (1 << 20) + 40)),
            &[],
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
        )?);
        std::fs::remove_file(&out).context("the copy")?;
        settle();
        plain_get_times.push(runtime.block_on(raw_transfer(&reader.home, realm, None, &stored))?);
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
    show("cold get", &get_times);
    show("plain downloads", &plain_get_times);
    let rows = [
        (
            "put (encrypt, cache, upload)",
            median(put_times.clone()),
            "plain block uploads",
            median(plain_put_times.clone()),
        ),
        (
            "cold get (fetch, decrypt, verify, write)",
            median(get_times.clone()),
            "plain block downloads",
            median(plain_get_times.clone()),
        ),
    ];
    println!(
        "{:<42} {:>9} {:>10}   {:<22} {:>9} {:>10}   {:>6}",
        "strongroom", "time", "MiB/s", "baseline", "time", "MiB/s", "ratio"
    );
    for (name, time, baseline, base_time) in rows {
        println!(
            "{name:<42} {:>8.2}s {:>10.1}   {baseline:<22} {:>8.2}s {:>10.1}   {:>6.2}",
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
