//! Workspaces mounted with `strongroom mount` (real FUSE mounts; the tests run as root), read by
//! ordinary programs and compared byte for byte with what was stored.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use strongroom_testkit::mount::is_mounted;
use strongroom_testkit::scenario::{Org, join_user};
use strongroom_testkit::{Mount, micros_now, random_bytes};

/// A tree with small files, a multi-block file, a sparse file, an empty file, a nested folder
/// and a symbolic link.
fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("docs/deep/deeper")).unwrap();
    for i in 0..20 {
        std::fs::write(
            root.join(format!("docs/note-{i}.txt")),
            format!("note {i}\n"),
        )
        .unwrap();
    }
    std::fs::write(root.join("docs/deep/deeper/bottom.txt"), "the bottom\n").unwrap();
    std::fs::write(root.join("big.bin"), random_bytes((5 << 20) + 12_345, 1)).unwrap();
    let sparse = std::fs::File::create(root.join("sparse.img")).unwrap();
    sparse.set_len(40 << 20).unwrap();
    drop(sparse);
    std::fs::write(root.join("empty"), b"").unwrap();
    symlink("docs/note-1.txt", root.join("link-to-note")).unwrap();
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_mounted_workspace_reads_like_the_tree_that_was_stored() {
    let org = Org::new();
    let alice = &org.alice;
    let tree = org.path().join("tree");
    make_tree(&tree);
    alice.ok(&["workspace", "create", "Docs"]);
    alice.ok(&["put", tree.to_str().unwrap(), "Docs:/"]);

    let dir = org.path().join("mnt");
    let mut mount = Mount::start(alice, "Docs", &dir, &[]);
    let mounted = dir.join("tree");
    // diff compares names, kinds, link targets and every byte.
    run(
        "diff",
        &[
            "-r",
            "--no-dereference",
            tree.to_str().unwrap(),
            mounted.to_str().unwrap(),
        ],
    );
    let listing = run("ls", &["-lR", mounted.to_str().unwrap()]);
    assert!(listing.contains("bottom.txt"), "{listing}");
    assert_eq!(
        std::fs::read_link(mounted.join("link-to-note")).unwrap(),
        Path::new("docs/note-1.txt")
    );
    let meta = std::fs::metadata(mounted.join("big.bin")).unwrap();
    assert_eq!(meta.len(), (5 << 20) + 12_345);
    // A read through mmap, as editors and databases do.
    let mapped = run(
        "python3",
        &[
            "-c",
            "import mmap,sys,hashlib\n\
             f=open(sys.argv[1],'rb'); m=mmap.mmap(f.fileno(),0,access=mmap.ACCESS_READ)\n\
             print(hashlib.sha256(m[1000:3000000]).hexdigest())",
            mounted.join("big.bin").to_str().unwrap(),
        ],
    );
    let expected = run(
        "python3",
        &[
            "-c",
            "import sys,hashlib\n\
             print(hashlib.sha256(open(sys.argv[1],'rb').read()[1000:3000000]).hexdigest())",
            tree.join("big.bin").to_str().unwrap(),
        ],
    );
    assert_eq!(mapped, expected);
    let stats = run("stat", &["-f", "-c", "%S %b %a", dir.to_str().unwrap()]);
    let numbers: Vec<u64> = stats
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(
        numbers[0] > 0 && numbers[1] >= numbers[2] && numbers[2] > 0,
        "statfs: {stats}"
    );

    // SIGTERM: the mount ends cleanly.
    let status = mount.signal("TERM").expect("the mount stops on SIGTERM");
    assert!(status.success(), "{status}");
    assert!(!is_mounted(&dir));
}

#[test]
fn a_readers_mount_and_a_view_of_the_past_are_read_only() {
    let org = Org::new();
    let alice = &org.alice;
    let bob = org.member("bob");
    join_user(alice, &bob, "bob@example.com", "Bob", &[]);
    alice.ok(&["workspace", "create", "Docs"]);
    let file = org.path().join("plan.txt");
    std::fs::write(&file, "first plan\n").unwrap();
    alice.ok(&["put", file.to_str().unwrap(), "Docs:/plan.txt"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let between = micros_now().to_string();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(&file, "second plan, longer\n").unwrap();
    alice.ok(&["put", file.to_str().unwrap(), "Docs:/plan.txt"]);
    alice.share("Docs", "bob@example.com", "reader");

    let dir = org.path().join("bob-mnt");
    let mut mount = Mount::start(&bob, "Docs", &dir, &[]);
    assert_eq!(
        std::fs::read_to_string(dir.join("plan.txt")).unwrap(),
        "second plan, longer\n"
    );
    let refused = std::fs::write(dir.join("plan.txt"), "mine").unwrap_err();
    assert_eq!(refused.raw_os_error(), Some(30), "EROFS: {refused}");
    let refused = std::fs::create_dir(dir.join("new")).unwrap_err();
    assert_eq!(refused.raw_os_error(), Some(30), "EROFS: {refused}");
    // `strongroom unmount` ends the mount process.
    bob.ok(&["unmount", dir.to_str().unwrap()]);
    let status = mount.wait().expect("the mount process ends after unmount");
    assert!(status.success(), "{status}");
    assert!(!is_mounted(&dir));

    let past = org.path().join("past");
    let _past = Mount::start(alice, "Docs", &past, &["--at", &between]);
    assert_eq!(
        std::fs::read_to_string(past.join("plan.txt")).unwrap(),
        "first plan\n"
    );
    let refused = std::fs::write(past.join("other.txt"), "x").unwrap_err();
    assert_eq!(refused.raw_os_error(), Some(30), "EROFS: {refused}");
}

#[test]
fn a_killed_mount_leaves_a_stale_folder_that_the_next_mount_cleans() {
    let org = Org::new();
    let alice = &org.alice;
    alice.ok(&["workspace", "create", "Docs"]);
    let file = org.path().join("a.txt");
    std::fs::write(&file, "still here\n").unwrap();
    alice.ok(&["put", file.to_str().unwrap(), "Docs:/a.txt"]);
    let dir = org.path().join("mnt");
    let mut mount = Mount::start(alice, "Docs", &dir, &[]);
    mount.signal("KILL");
    let stale = std::fs::metadata(&dir).unwrap_err();
    assert_eq!(stale.raw_os_error(), Some(107), "ENOTCONN: {stale}");
    let _again = Mount::start(alice, "Docs", &dir, &[]);
    assert_eq!(
        std::fs::read_to_string(dir.join("a.txt")).unwrap(),
        "still here\n"
    );
}
