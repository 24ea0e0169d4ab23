//! Workspaces mounted with `strongroom mount` (real FUSE mounts; the tests run as root), read by
//! ordinary programs and compared byte for byte with what was stored.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use strongroom_testkit::mount::is_mounted;
use strongroom_testkit::scenario::{Org, join_device, join_user};
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

fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .current_dir(dir)
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "Alice")
        .env("GIT_AUTHOR_EMAIL", "alice@example.com")
        .env("GIT_COMMITTER_NAME", "Alice")
        .env("GIT_COMMITTER_EMAIL", "alice@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn ordinary_programs_write_through_the_mount_and_another_device_sees_it() {
    let org = Org::new();
    let alice = &org.alice;
    let bob = org.member("bob");
    join_user(alice, &bob, "bob@example.com", "Bob", &[]);
    alice.ok(&["workspace", "create", "Work"]);
    alice.share("Work", "bob@example.com", "reader");
    let tree = org.path().join("tree");
    make_tree(&tree);
    let dir = org.path().join("mnt");
    let mut mount = Mount::start(alice, "Work", &dir, &[]);
    let (t, m) = (tree.to_str().unwrap(), dir.to_str().unwrap());

    // cp -a, then a byte-for-byte comparison.
    sh(
        &dir,
        &format!("cp -a {t} {m}/copy && diff -r --no-dereference {t} {m}/copy"),
    );
    // tar x of an archive with a symlink, tar c back, and the two trees compared.
    sh(
        org.path(),
        &format!(
            "tar -C {t}/.. -cf src.tar tree && mkdir {m}/untar && tar -C {m}/untar -xf src.tar \
             && diff -r --no-dereference {t} {m}/untar/tree \
             && tar -C {m}/untar -cf back.tar tree && mkdir back && tar -C back -xf back.tar \
             && diff -r --no-dereference {t} back/tree"
        ),
    );
    // Appends to a log file.
    sh(&dir, "for i in 1 2 3 4 5; do echo line $i >> app.log; done");
    assert_eq!(
        std::fs::read_to_string(dir.join("app.log")).unwrap(),
        "line 1\nline 2\nline 3\nline 4\nline 5\n"
    );
    // git: a repository in the mount, and a clone out of it.
    sh(
        &dir,
        "git init -q repo && cd repo && echo 'fn main() {}' > main.rs && git add main.rs \
         && git commit -q -m first && echo '// more' >> main.rs && git commit -q -am second \
         && git log --oneline | wc -l | grep -q 2 && test -z \"$(git status --porcelain)\"",
    );
    sh(
        org.path(),
        &format!(
            "git clone -q {m}/repo cloned && test \"$(cat cloned/main.rs)\" = \"$(printf 'fn main() {{}}\\n// more')\""
        ),
    );
    // sqlite3 in WAL mode: 10,000 inserts, then an integrity check.
    if Command::new("sqlite3").arg("-version").output().is_ok() {
        let out = sh(
            &dir,
            "sqlite3 data.db 'PRAGMA journal_mode=WAL; CREATE TABLE t(i INTEGER, s TEXT);' >/dev/null \
             && { echo 'BEGIN;'; i=0; while [ $i -lt 10000 ]; do echo \"INSERT INTO t VALUES($i, 'row $i');\"; i=$((i+1)); done; echo 'COMMIT;'; } | sqlite3 data.db \
             && sqlite3 data.db 'PRAGMA integrity_check; SELECT count(*) FROM t;'",
        );
        assert_eq!(out, "ok\n10000\n");
    }
    // A save through a temporary file and os.replace keeps the file's history.
    std::fs::write(dir.join("notes.txt"), "version one\n").unwrap();
    // Uploaded in the background within seconds (until then, later local changes would simply
    // replace it: versions are what reached the server).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !alice
        .run(&["history", "Work:/notes.txt"])
        .stdout
        .contains("alice@example.com")
    {
        assert!(std::time::Instant::now() < deadline, "never uploaded");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    sh(
        &dir,
        "python3 -c \"import os; open('notes.txt.tmp','w').write('version two\\n'); os.replace('notes.txt.tmp','notes.txt')\"",
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
        "version two\n"
    );

    // Unmounting uploads what waits; the other device reads it all.
    let status = mount.signal("TERM").expect("the mount stops");
    assert!(status.success());
    let history = alice.ok(&["history", "Work:/notes.txt"]);
    assert!(history.lines().count() >= 3, "two versions: {history}");
    let back = org.path().join("bob-copy");
    bob.ok(&["get", "Work:/copy", back.to_str().unwrap()]);
    run(
        "diff",
        &["-r", "--no-dereference", t, back.to_str().unwrap()],
    );
    let log = org.path().join("bob-log");
    bob.ok(&["get", "Work:/app.log", log.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(log).unwrap().lines().count(), 5);
}

/// Waits up to 30 seconds for `check`.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !check() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn two_mounts_see_each_others_changes_and_concurrent_edits_keep_both() {
    let org = Org::new();
    let alice = &org.alice;
    let bob = org.member("bob");
    join_user(alice, &bob, "bob@example.com", "Bob", &[]);
    alice.ok(&["workspace", "create", "Shared"]);
    alice.share("Shared", "bob@example.com", "contributor");
    let seed = org.path().join("seed.txt");
    std::fs::write(&seed, "seed\n").unwrap();
    alice.ok(&["put", seed.to_str().unwrap(), "Shared:/seed.txt"]);
    let (a, b) = (org.path().join("alice-mnt"), org.path().join("bob-mnt"));
    let _alice_mount = Mount::start(alice, "Shared", &a, &[]);
    let _bob_mount = Mount::start(&bob, "Shared", &b, &[]);

    std::fs::write(a.join("from-alice.txt"), "written by Alice\n").unwrap();
    eventually("Alice's file in Bob's mount", || {
        std::fs::read_to_string(b.join("from-alice.txt"))
            .ok()
            .as_deref()
            == Some("written by Alice\n")
    });
    std::fs::write(b.join("seed.txt"), "changed by Bob\n").unwrap();
    eventually("Bob's change in Alice's mount", || {
        std::fs::read_to_string(a.join("seed.txt")).ok().as_deref() == Some("changed by Bob\n")
    });

    // Both change one file before either has seen the other's change.
    std::fs::write(a.join("seed.txt"), "Alice's edit\n").unwrap();
    std::fs::write(b.join("seed.txt"), "Bob's edit\n").unwrap();
    let contents = |dir: &Path| -> Vec<String> {
        let mut found: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("seed"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect();
        found.sort();
        found
    };
    let both = vec!["Alice's edit\n".to_string(), "Bob's edit\n".to_string()];
    eventually("both edits, in Alice's mount", || contents(&a) == both);
    eventually("both edits, in Bob's mount", || contents(&b) == both);
    let names: Vec<String> = std::fs::read_dir(&a)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.contains("conflict")),
        "one is a conflict copy: {names:?}"
    );
}

#[test]
fn another_devices_changes_reach_the_kernel_caches_before_they_expire() {
    let org = Org::new();
    let alice = &org.alice;
    let laptop = org.member("laptop");
    join_device(alice, &laptop, "laptop");
    alice.ok(&["workspace", "create", "Live"]);
    for (name, content) in [("keep.txt", "version one\n"), ("gone.txt", "soon gone\n")] {
        let file = org.path().join(name);
        std::fs::write(&file, content).unwrap();
        alice.ok(&["put", file.to_str().unwrap(), &format!("Live:/{name}")]);
    }
    let dir = org.path().join("mnt");
    let _mount = Mount::start(alice, "Live", &dir, &[]);

    // The kernel caches names, attributes and pages for TTL; prime all three.
    let primed = std::time::Instant::now();
    assert_eq!(
        std::fs::read_to_string(dir.join("keep.txt")).unwrap(),
        "version one\n"
    );
    assert!(dir.join("gone.txt").exists());
    assert!(!dir.join("new.txt").exists());

    // The laptop changes a file, removes one and adds one.
    let two = org.path().join("two.txt");
    std::fs::write(&two, "version two, longer\n").unwrap();
    laptop.ok(&["put", two.to_str().unwrap(), "Live:/keep.txt"]);
    laptop.ok(&["rm", "Live:/gone.txt"]);
    laptop.ok(&["put", two.to_str().unwrap(), "Live:/new.txt"]);

    eventually("the laptop's changes in the mount", || {
        std::fs::read_to_string(dir.join("keep.txt"))
            .ok()
            .as_deref()
            == Some("version two, longer\n")
            && !dir.join("gone.txt").exists()
            && dir.join("new.txt").exists()
    });
    // Sooner than the caches would have expired: the kernel was told.
    let waited = primed.elapsed();
    assert!(
        waited < strongroom_fuse::TTL,
        "took {waited:?}, the kernel's own expiry is {:?}",
        strongroom_fuse::TTL
    );
}

#[test]
fn a_mount_keeps_working_while_the_server_is_down_and_syncs_after() {
    let mut org = Org::new();
    let bob = org.member("bob");
    join_user(&org.alice, &bob, "bob@example.com", "Bob", &[]);
    org.alice.ok(&["workspace", "create", "Field"]);
    org.alice.share("Field", "bob@example.com", "reader");
    let seed = org.path().join("seed.txt");
    std::fs::write(&seed, "before\n").unwrap();
    org.alice
        .ok(&["put", seed.to_str().unwrap(), "Field:/seed.txt"]);
    let dir = org.path().join("mnt");
    let mut mount = Mount::start(&org.alice, "Field", &dir, &[]);

    org.server.stop();
    std::fs::write(dir.join("offline.txt"), "written offline\n").unwrap();
    std::fs::write(dir.join("seed.txt"), "edited offline\n").unwrap();
    std::fs::create_dir(dir.join("notes")).unwrap();
    std::fs::write(dir.join("notes/a.txt"), "a\n").unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("seed.txt")).unwrap(),
        "edited offline\n"
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    org.server.restart();

    // The mount uploads by itself once the server answers.
    eventually("Bob sees the offline changes", || {
        bob.run(&["ls", "Field:/notes"]).stdout.contains("a.txt")
    });
    let copy = org.path().join("bob-seed.txt");
    bob.ok(&["get", "Field:/seed.txt", copy.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), "edited offline\n");
    let copy = org.path().join("bob-offline.txt");
    bob.ok(&["get", "Field:/offline.txt", copy.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), "written offline\n");
    assert!(mount.signal("TERM").expect("stops").success());
}

#[test]
fn unmounting_during_writes_loses_nothing_the_program_wrote() {
    let org = Org::new();
    let alice = &org.alice;
    alice.ok(&["workspace", "create", "Busy"]);
    let dir = org.path().join("mnt");
    let mut mount = Mount::start(alice, "Busy", &dir, &[]);

    // A program writes 200 chunks of 64 KiB, one every 10 ms, and reports each one written.
    let mut writer = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import os,sys,time\n\
             fd=os.open(sys.argv[1], os.O_WRONLY|os.O_CREAT|os.O_TRUNC)\n\
             for i in range(200):\n\
             \x20   os.write(fd, bytes([i % 251]) * 65536)\n\
             \x20   print(i, flush=True)\n\
             \x20   time.sleep(0.01)\n\
             os.close(fd)\n\
             print('closed', flush=True)",
        )
        .arg(dir.join("stream.bin"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(writer.stdout.take().unwrap()));
    for _ in 0..20 {
        lines.next().unwrap().unwrap();
    }
    // Unmounted (SIGTERM, as Ctrl-C) in the middle of the writes: the folder is detached at
    // once, the program keeps writing to the file it has open, and the mount ends when it
    // closes it.
    let terminate = std::process::Command::new("kill")
        .args(["-TERM", &mount.pid().to_string()])
        .status()
        .unwrap();
    assert!(terminate.success());
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert_eq!(rest.last().map(String::as_str), Some("closed"), "{rest:?}");
    assert_eq!(rest.len(), 200 - 20 + 1, "every write succeeded");
    assert!(writer.wait().unwrap().success());
    let status = mount
        .wait()
        .expect("the mount ends once the file is closed");
    assert!(status.success(), "{status:?}");
    assert!(!is_mounted(&dir));

    // Every byte, as stored on this device and uploaded.
    let back = org.path().join("back.bin");
    alice.ok(&["get", "Busy:/stream.bin", back.to_str().unwrap()]);
    let expected: Vec<u8> = (0..200u32)
        .flat_map(|i| std::iter::repeat_n((i % 251) as u8, 65536))
        .collect();
    assert!(
        std::fs::read(&back).unwrap() == expected,
        "the content differs"
    );
    assert!(
        alice
            .ok(&["status"])
            .contains("changes waiting for upload: 0")
    );
}

#[test]
fn after_kill_9_every_fsynced_byte_is_there() {
    let org = Org::new();
    let alice = &org.alice;
    alice.ok(&["workspace", "create", "Docs"]);
    let dir = org.path().join("mnt");
    let mut mount = Mount::start(alice, "Docs", &dir, &[]);
    let file = dir.join("journal.bin");
    // A program writes 3 MiB and fsyncs, writes more without syncing, and keeps the file open.
    let mut writer = Command::new("python3")
        .arg("-c")
        .arg(
            "import os,sys,time\n\
             fd=os.open(sys.argv[1], os.O_CREAT|os.O_WRONLY)\n\
             os.write(fd, bytes(range(256))*(3*4096)); os.fsync(fd)\n\
             os.write(fd, b'not synced'*1000)\n\
             print('synced', flush=True); time.sleep(60)",
        )
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(writer.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "synced\n");
    mount.signal("KILL");
    let _ = writer.kill();
    let _ = writer.wait();

    let _again = Mount::start(alice, "Docs", &dir, &[]);
    let data = std::fs::read(&file).unwrap();
    let synced: Vec<u8> = (0..3 * 4096).flat_map(|_| 0..=255u8).collect();
    assert!(data.len() >= synced.len(), "{} bytes", data.len());
    assert!(data[..synced.len()] == synced[..], "the fsynced bytes");
}

#[test]
fn rsync_and_stress_ng_file_stressors_run_clean_in_a_mount() {
    let org = Org::new();
    let alice = &org.alice;
    alice.ok(&["workspace", "create", "Stress"]);
    let tree = org.path().join("tree");
    make_tree(&tree);
    let dir = org.path().join("mnt");
    let mut mount = Mount::start(alice, "Stress", &dir, &[]);
    let (t, m) = (tree.to_str().unwrap(), dir.to_str().unwrap());

    // rsync -a copies, and a second run finds nothing to do (sizes and times hold).
    sh(
        org.path(),
        &format!("rsync -a {t}/ {m}/synced/ && diff -r --no-dereference {t} {m}/synced"),
    );
    let again = sh(
        org.path(),
        &format!("rsync -a --itemize-changes {t}/ {m}/synced/"),
    );
    assert_eq!(again, "", "rsync found changes: {again}");

    // stress-ng's file stressors, each checking what it reads back (--verify).
    std::fs::create_dir(dir.join("stress")).unwrap();
    for (stressor, ops) in [
        ("hdd", 500),
        ("seek", 500),
        ("dir", 300),
        ("dentry", 300),
        ("rename", 300),
        ("readahead", 200),
        ("sync-file", 50),
        ("iomix", 300),
        ("copy-file", 200),
        ("filename", 300),
        ("open", 300),
        ("fstat", 300),
        ("lockf", 300),
    ] {
        let out = Command::new("stress-ng")
            .args(["--temp-path", dir.join("stress").to_str().unwrap()])
            .args([format!("--{stressor}"), "1".into()])
            .args([format!("--{stressor}-ops"), ops.to_string()])
            // hdd and iomix default to 1 GiB of files each, stored twice (device cache and
            // server): bounded so that the test fits next to the others on a small disk.
            .args(["--hdd-bytes", "256m", "--iomix-bytes", "256m"])
            .args(["--verify", "--timeout", "60"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("successful run completed"),
            "stress-ng --{stressor}: {text}"
        );
    }
    assert!(mount.signal("TERM").expect("stops").success());
}

#[test]
fn fsx_runs_fifty_thousand_operations_without_corruption() {
    let org = Org::new();
    let alice = &org.alice;
    alice.ok(&["workspace", "create", "Fsx"]);
    let dir = org.path().join("mnt");
    let mut mount = Mount::start(alice, "Fsx", &dir, &[]);
    let artifacts = org.path().join("fsx-artifacts");
    std::fs::create_dir(&artifacts).unwrap();
    // fsx compares every read with its own model of the file, through reads, writes, mapped
    // reads and writes and truncations, and stops at the first difference.
    let out = Command::new("fsx")
        .args(["-N", "50000", "-S", "20261127", "-P"])
        .arg(&artifacts)
        .arg("fsx.bin")
        .current_dir(&dir)
        .output()
        .expect("fsx (cargo install fsx)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("All operations completed A-OK!"),
        "fsx: {text}"
    );
    assert!(mount.signal("TERM").expect("stops").success());
}
