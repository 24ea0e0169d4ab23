//! `strongroom-demo`: the quick start. Runs the real server and the real clients on this
//! machine and walks through what the product does today: an organization bootstrapped without
//! the server seeing its root key, a user invited by email and confirmed with short codes, a
//! second device, every client validating the whole chain, and an encrypted workspace shared
//! with a role, read back on another device, with its history.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Parser;
use strongroom_testkit::member::PASSWORD;
use strongroom_testkit::{Member, Mount, Pick, Server, ServerOptions, greet_and_claim};

#[derive(Parser)]
#[command(about = "Walk through Strongroom with a real server and real clients on this machine")]
struct Args {
    /// Where the demo keeps its server data and device homes (recreated on each run).
    #[arg(long, default_value = "strongroom-demo")]
    dir: PathBuf,
    /// Stop the server and exit after the walkthrough instead of serving until Ctrl-C.
    #[arg(long)]
    exit: bool,
}

const MARKER: &str = ".strongroom-demo";

/// Mounts Alice's workspace in the background, or says why it cannot here.
fn mount_workspace(alice: &Member, dir: &std::path::Path) -> Option<Mount> {
    if !std::path::Path::new("/dev/fuse").exists() {
        println!("      skipped: this machine has no /dev/fuse");
        return None;
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Mount::start(alice, "Projects", dir, &[])
    })) {
        Ok(mount) => {
            println!("      mounted on {}", dir.display());
            Some(mount)
        }
        Err(_) => {
            println!("      skipped: mounting failed (FUSE needs root or fuse3's fusermount3)");
            None
        }
    }
}

fn step(n: u32, text: &str) {
    println!("\n[{n}/11] {text}");
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::path::absolute(&args.dir)?;
    if dir.exists() {
        if !dir.join(MARKER).exists() {
            bail!(
                "{} exists and is not a demo folder; choose another --dir",
                dir.display()
            );
        }
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(MARKER), "created by strongroom-demo\n")?;

    step(
        1,
        "Starting strongroom-server (SQLite and files, no SMTP: emails go to its outbox folder)",
    );
    let server = Server::start_in(&dir.join("server"), ServerOptions::default());
    println!(
        "      listening on {}, data in {}",
        server.url(),
        server.data_dir().display()
    );

    step(
        2,
        "The server administrator creates the organization \"demo\"",
    );
    let bootstrap_url = server.create_org("demo");
    println!("      bootstrap link: {bootstrap_url}");

    step(
        3,
        "Alice bootstraps it: her laptop creates the root key, signs her user and device, keeps no copy",
    );
    let alice = Member::new(&dir, "alice");
    alice.bootstrap(&bootstrap_url, "alice@example.com", "Alice");
    println!("      Alice's device: {}", alice.home.display());

    step(
        4,
        "Alice invites bob@example.com; the server emails him the link",
    );
    let url = alice.last_line(&["invite", "user", "bob@example.com"]);
    let outbox = server.data_dir().join("outbox");
    for mail in std::fs::read_dir(&outbox)?.flatten() {
        println!("      email written to {}", mail.path().display());
    }

    step(
        5,
        "Alice runs `greet`, Bob runs `claim`: each reads a code aloud and picks the other's",
    );
    let bob = Member::new(&dir, "bob");
    let (g, c) = greet_and_claim(
        &alice,
        &bob,
        &url,
        &["--name", "Bob", "--label", "desktop"],
        Pick::Heard,
        Pick::Heard,
    );
    if !(g.success && c.success) {
        bail!(
            "the invitation failed:\n{}{}\n{}{}",
            g.stdout,
            g.stderr,
            c.stdout,
            c.stderr
        );
    }
    println!(
        "      Alice's code {}, Bob's code {}; Bob chose among {:?}",
        g.code.unwrap_or_default(),
        c.code.unwrap_or_default(),
        c.choices
    );
    print!("      {}", c.stdout.lines().last().unwrap_or_default());
    println!();

    step(6, "Bob adds his phone with a device invitation");
    let phone = Member::new(&dir, "bob-phone");
    let url = bob.last_line(&["invite", "device"]);
    let (g, c) = greet_and_claim(
        &bob,
        &phone,
        &url,
        &["--label", "phone"],
        Pick::Heard,
        Pick::Heard,
    );
    if !(g.success && c.success) {
        bail!("adding the device failed:\n{}\n{}", g.stderr, c.stderr);
    }
    for line in phone.ok(&["device", "list"]).lines() {
        println!("      {line}");
    }

    step(
        7,
        "Users, as Bob's phone validates them up to the organization's root key",
    );
    for line in phone.ok(&["user", "list"]).lines() {
        println!("      {line}");
    }

    step(
        8,
        "Alice creates the workspace \"Projects\" and stores files in it, encrypted on her laptop",
    );
    alice.ok(&["workspace", "create", "Projects"]);
    let files = dir.join("files");
    std::fs::create_dir_all(files.join("plans"))?;
    let notes = files.join("notes.txt");
    std::fs::write(&notes, "Kick-off on Monday.\n")?;
    for week in 1..=3 {
        std::fs::write(
            files.join("plans").join(format!("week-{week}.txt")),
            format!("Plan for week {week}.\n"),
        )?;
    }
    let large: Vec<u8> = (0..(8u32 << 20)).map(|i| (i % 251) as u8).collect();
    std::fs::write(files.join("plans").join("data.bin"), &large)?;
    alice.ok(&["put", &notes.to_string_lossy(), "Projects:/notes.txt"]);
    alice.ok(&["put", &files.join("plans").to_string_lossy(), "Projects:/"]);
    std::fs::write(&notes, "Kick-off on Monday, 9:00, room 2.\n")?;
    alice.ok(&["put", &notes.to_string_lossy(), "Projects:/notes.txt"]);
    for line in alice.ok(&["ls", "Projects:/plans"]).lines() {
        println!("      {line}");
    }

    step(
        9,
        "Alice shares it with Bob as a READER: its key travels sealed to him; the server only relays",
    );
    alice.share("Projects", "bob@example.com", "reader");
    let copy = dir.join("bob-phone-data.bin");
    phone.ok(&["get", "Projects:/plans/data.bin", &copy.to_string_lossy()]);
    if std::fs::read(&copy)? != large {
        bail!("Bob's phone read different bytes");
    }
    println!("      Bob's phone fetched, checked and decrypted plans/data.bin (8 MiB): identical");
    let refused = phone.run(&["put", &notes.to_string_lossy(), "Projects:/mine.txt"]);
    if refused.success {
        bail!("a READER's write was accepted");
    }
    println!(
        "      Bob's phone tries to write: {}",
        refused.stderr.lines().last().unwrap_or_default()
    );

    step(10, "Every version is kept: the history of notes.txt");
    for line in phone.ok(&["history", "Projects:/notes.txt"]).lines() {
        println!("      {line}");
    }

    step(
        11,
        "Alice mounts the workspace as a folder (FUSE): ordinary programs read and write it",
    );
    let mount_dir = dir.join("mnt").join("Projects");
    let mount = mount_workspace(&alice, &mount_dir);
    if let Some(mount) = &mount {
        std::fs::write(
            mount.dir.join("from-the-mount.txt"),
            "written through the mount\n",
        )?;
        for entry in std::fs::read_dir(&mount.dir)?.flatten() {
            println!("      {}", entry.path().display());
        }
    }

    println!(
        "\nEvery device home is under {}. Try, with the password {PASSWORD:?}:",
        dir.display()
    );
    let exe = strongroom_testkit::bins::bin("strongroom");
    println!(
        "  {} --insecure-fast-kdf --home {} user list",
        exe.display(),
        alice.home.display()
    );
    println!(
        "  {} --insecure-fast-kdf --home {} invite user carol@example.com",
        exe.display(),
        alice.home.display()
    );
    println!(
        "  {} --insecure-fast-kdf --home {} get Projects:/notes.txt -",
        exe.display(),
        phone.home.display()
    );
    if let Some(mount) = mount.as_ref().filter(|_| !args.exit) {
        println!(
            "  ls -l {0}; echo hello > {0}/hello.txt   (mounted while the demo runs)",
            mount.dir.display()
        );
    }
    println!(
        "(Demo devices use a deliberately weak password key to run fast: a device file like theirs opens only with --insecure-fast-kdf, and every command says so.)"
    );

    if args.exit {
        return Ok(());
    }
    println!(
        "\nThe server keeps running at {}; press Ctrl-C to stop it.",
        server.url()
    );
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(tokio::signal::ctrl_c())?;
    // Unmounted (and its changes uploaded) before the server stops.
    drop(mount);
    drop(server);
    Ok(())
}
