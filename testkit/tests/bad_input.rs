//! Bad input gets a clear error and loses nothing: invalid paths, a file changing while it is
//! stored, a full disk under the cache; and a big folder lists in a handful of requests.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use strongroom_testkit::Member;
use strongroom_testkit::scenario::{Org, join_user};

#[test]
fn invalid_paths_are_refused_clearly() {
    let org = Org::new();
    org.alice.ok(&["workspace", "create", "Docs"]);
    let file = org.path().join("f.txt");
    std::fs::write(&file, "x").unwrap();
    let file = file.to_str().unwrap();
    let long = format!("Docs:/{}", "n".repeat(256));
    for (target, message) in [
        ("Docs:/a/../b.txt", "`..` is not allowed"),
        (long.as_str(), "at most 255 bytes"),
        ("Docs:relative", "starts with `/`"),
        (":/x", "needs a workspace name"),
        ("Nope:/x", "no workspace named \"Nope\""),
    ] {
        let err = org.alice.fails(&["put", file, target]);
        assert!(err.contains(message), "{target}: {err}");
    }
    assert_eq!(
        org.alice.ok(&["ls", "Docs"]).lines().count(),
        1,
        "nothing was stored"
    );
}

#[test]
fn a_file_changing_while_it_is_stored_is_refused() {
    let org = Org::new();
    org.alice.ok(&["workspace", "create", "Docs"]);
    let path = org.path().join("growing.log");
    std::fs::write(&path, vec![7u8; 64 << 20]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (path, stop) = (path.clone(), stop.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
            while !stop.load(Ordering::SeqCst) {
                file.write_all(b"another line\n").unwrap();
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        })
    };
    let err = org
        .alice
        .fails(&["put", path.to_str().unwrap(), "Docs:/growing.log"]);
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert!(
        err.contains("changed while it was being read; nothing was stored"),
        "{err}"
    );
    assert!(!org.alice.ok(&["ls", "Docs"]).contains("growing.log"));
    assert!(
        org.alice
            .ok(&["status"])
            .contains("changes waiting for upload: 0")
    );
    // Once it is quiet, it stores.
    org.alice
        .ok(&["put", path.to_str().unwrap(), "Docs:/growing.log"]);
}

/// A tmpfs of `size` at `dir` (the tests run as root, as CI does).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("running mount");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (CI runs as root)"
        );
        Self(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_under_the_cache_fails_cleanly_and_recovers() {
    let mut org = Org::new();
    // Bob's device lives on a small tmpfs: its database and block cache fill it up.
    let tmpfs = Tmpfs::mount(&org.path().join("small-disk"), "24m");
    let bob = Member::new(&tmpfs.0, "bob");
    join_user(&org.alice, &bob, "bob@example.com", "Bob", &[]);
    bob.ok(&["workspace", "create", "Mine"]);
    let small = org.path().join("small.txt");
    std::fs::write(&small, "kept safe\n").unwrap();
    bob.ok(&["put", small.to_str().unwrap(), "Mine:/small.txt"]);
    let filler = tmpfs.0.join("filler");
    std::fs::write(&filler, vec![1u8; 12 << 20]).unwrap();

    let big = org.path().join("big.bin");
    std::fs::write(&big, vec![9u8; 16 << 20]).unwrap();
    // Online, `put` uploads sealed blocks straight from memory; offline they must be kept in the
    // cache until the server is back, and that is what fills the disk.
    org.server.stop();
    let err = bob.fails(&["put", big.to_str().unwrap(), "Mine:/big.bin"]);
    assert!(err.contains("No space left on device"), "{err}");
    // Nothing half-written: the earlier file is intact, the failed one absent.
    let listed = bob.ok(&["ls", "Mine"]);
    assert!(
        listed.contains("small.txt") && !listed.contains("big.bin"),
        "{listed}"
    );

    // Space freed: it works again.
    std::fs::remove_file(&filler).unwrap();
    org.server.restart();
    let back = org.path().join("back.txt");
    bob.ok(&["get", "Mine:/small.txt", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "kept safe\n");
    bob.ok(&["put", big.to_str().unwrap(), "Mine:/big.bin"]);
    let out = org.path().join("big-back.bin");
    bob.ok(&["get", "Mine:/big.bin", out.to_str().unwrap()]);
    assert!(std::fs::read(out).unwrap() == std::fs::read(&big).unwrap());
}

#[test]
fn listing_ten_thousand_entries_on_a_fresh_device_takes_a_handful_of_requests() {
    let (org, proxy) = Org::behind_proxy();
    let bob = org.member("bob");
    join_user(&org.alice, &bob, "bob@example.com", "Bob", &[]);
    let folder = org.path().join("many");
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..10_000 {
        std::fs::write(folder.join(format!("f{i:05}")), b"").unwrap();
    }
    org.alice.ok(&["workspace", "create", "Big"]);
    org.alice.ok(&["put", folder.to_str().unwrap(), "Big:/"]);
    org.alice.share("Big", "bob@example.com", "reader");

    proxy.take_request_count();
    let listed = bob.ok(&["ls", "Big:/many"]);
    let requests = proxy.take_request_count();
    assert_eq!(
        listed.lines().count(),
        10_001,
        "a header and 10,000 entries"
    );
    assert!(requests <= 12, "listing took {requests} requests");
    eprintln!("a fresh device listed 10,000 entries in {requests} requests");
}
