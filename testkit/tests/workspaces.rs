//! Workspaces and files end to end: sharing with roles, large transfers, a second device,
//! history and restore. Real server, real `strongroom` binaries, one home per device.

use std::path::Path;

use strongroom_testkit::Member;
use strongroom_testkit::scenario::{Org, join_device, join_user};
use strongroom_testkit::{micros_now, random_bytes};

fn write_tree(root: &Path, files: usize) {
    for i in 0..files {
        let dir = root.join(format!("dir{:02}", i % 40));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("file{i:04}.txt")),
            format!("small file number {i}\n").repeat(i % 7 + 1),
        )
        .unwrap();
    }
}

fn same_tree(a: &Path, b: &Path) {
    let status = std::process::Command::new("diff")
        .arg("-r")
        .arg(a)
        .arg(b)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "{} and {} differ",
        a.display(),
        b.display()
    );
}

#[test]
fn sharing_with_roles_large_file_and_many_small_files() {
    let org = Org::new();
    let alice = &org.alice;
    let bob = org.member("bob");
    join_user(alice, &bob, "bob@example.com", "Bob", &[]);
    let data = org.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let big = data.join("big.bin");
    std::fs::write(&big, random_bytes(200 << 20, 1)).unwrap();
    let tree = data.join("tree");
    write_tree(&tree, 2000);

    alice.ok(&["workspace", "create", "Projects"]);
    alice.ok(&["put", big.to_str().unwrap(), "Projects:/"]);
    alice.ok(&["put", tree.to_str().unwrap(), "Projects:/"]);
    alice.share("Projects", "bob@example.com", "reader");

    // Bob sees the workspace with no manual step, and reads everything byte-identical.
    let listed = bob.ok(&["workspace", "list"]);
    assert!(
        listed.contains("Projects") && listed.contains("reader"),
        "{listed}"
    );
    let out = org.path().join("bob-out");
    std::fs::create_dir_all(&out).unwrap();
    bob.ok(&[
        "get",
        "Projects:/big.bin",
        out.join("big.bin").to_str().unwrap(),
    ]);
    assert!(std::fs::read(out.join("big.bin")).unwrap() == std::fs::read(&big).unwrap());
    bob.ok(&["get", "Projects:/tree", out.to_str().unwrap()]);
    same_tree(&tree, &out.join("tree"));

    // As READER, Bob cannot write.
    let note = data.join("bob.txt");
    std::fs::write(&note, "from bob\n").unwrap();
    let err = bob.fails(&["put", note.to_str().unwrap(), "Projects:/bob.txt"]);
    assert!(err.contains("does not allow writing"), "{err}");

    // Promoted to CONTRIBUTOR, he can; Alice sees his file.
    alice.share("Projects", "bob@example.com", "contributor");
    bob.ok(&["put", note.to_str().unwrap(), "Projects:/bob.txt"]);
    let back = org.path().join("alice-bob.txt");
    alice.ok(&["get", "Projects:/bob.txt", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(back).unwrap(), "from bob\n");
    assert!(alice.ok(&["ls", "Projects"]).contains("bob.txt"));
}

#[test]
fn a_second_device_sees_workspaces_and_files_with_no_manual_step() {
    let org = Org::new();
    let alice = &org.alice;
    let file = org.path().join("a.txt");
    std::fs::write(&file, "alpha\n").unwrap();
    alice.ok(&["workspace", "create", "Docs"]);
    alice.ok(&["put", file.to_str().unwrap(), "Docs:/a.txt"]);
    let phone = org.member("alice-phone");
    join_device(alice, &phone, "phone");
    assert!(phone.ok(&["workspace", "list"]).contains("Docs"));
    let listed = phone.ok(&["ls", "Docs"]);
    assert!(listed.contains("a.txt"), "{listed}");
    let back = org.path().join("back.txt");
    phone.ok(&["get", "Docs:/a.txt", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(back).unwrap(), "alpha\n");
    // And the other way round.
    let other = org.path().join("b.txt");
    std::fs::write(&other, "beta\n").unwrap();
    phone.ok(&["put", other.to_str().unwrap(), "Docs:/b.txt"]);
    assert!(alice.ok(&["ls", "Docs"]).contains("b.txt"));
}

fn versions(member: &Member, path: &str) -> Vec<(String, String, String)> {
    member
        .ok(&["history", path])
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            (c[0].to_owned(), c[4].to_owned(), c[5].to_owned())
        })
        .collect()
}

#[test]
fn history_restore_and_a_deleted_file() {
    let org = Org::new();
    let alice = &org.alice;
    alice.ok(&["workspace", "create", "Docs"]);
    let file = org.path().join("report.txt");
    let contents = ["first draft\n", "second draft, longer\n", "third\n"];
    let mut times = Vec::new();
    for text in contents {
        std::fs::write(&file, text).unwrap();
        alice.ok(&["put", file.to_str().unwrap(), "Docs:/report.txt"]);
        times.push(micros_now());
    }
    let history = versions(alice, "Docs:/report.txt");
    assert_eq!(history.len(), 3, "{history:?}");
    for (i, (version, author, size)) in history.iter().enumerate() {
        assert_eq!(*version, (i + 1).to_string());
        assert_eq!(author, "alice@example.com");
        assert_eq!(*size, contents[i].len().to_string());
    }
    alice.ok(&["restore", "Docs:/report.txt", "--version", "1"]);
    let history = versions(alice, "Docs:/report.txt");
    assert_eq!(history.len(), 4);
    assert_eq!(history[3].2, contents[0].len().to_string());
    let back = org.path().join("back.txt");
    alice.ok(&["get", "Docs:/report.txt", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), contents[0]);

    // The workspace as it was after the first and second puts.
    for (i, at) in times.iter().take(2).enumerate() {
        let old = org.path().join(format!("old-{i}.txt"));
        alice.ok(&[
            "get",
            "Docs:/report.txt",
            old.to_str().unwrap(),
            "--at",
            &at.to_string(),
        ]);
        assert_eq!(std::fs::read_to_string(&old).unwrap(), contents[i]);
    }

    // A deleted file is found in its folder's history and comes back with its history.
    let before_removal = micros_now();
    alice.ok(&["rm", "Docs:/report.txt"]);
    assert!(!alice.ok(&["ls", "Docs"]).contains("report.txt"));
    assert!(
        alice
            .ok(&["ls", "Docs", "--at", &before_removal.to_string()])
            .contains("report.txt")
    );
    let err = alice.fails(&[
        "get",
        "Docs:/report.txt",
        back.to_str().unwrap(),
        "--at",
        "0",
    ]);
    assert!(err.contains("no such file"), "{err}");
    alice.ok(&["restore", "Docs:/report.txt", "--version", "2"]);
    std::fs::remove_file(&back).unwrap();
    alice.ok(&["get", "Docs:/report.txt", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), contents[1]);
    assert_eq!(versions(alice, "Docs:/report.txt").len(), 5);
}

#[test]
fn a_ten_gib_sparse_file_and_a_file_with_index_blocks() {
    use std::io::{Seek, SeekFrom, Write};
    use std::os::unix::fs::MetadataExt;
    let org = Org::new();
    let alice = &org.alice;
    let bob = org.member("bob");
    join_user(alice, &bob, "bob@example.com", "Bob", &[]);
    alice.ok(&["workspace", "create", "Big"]);
    alice.share("Big", "bob@example.com", "reader");

    // 10 GiB, mostly holes: only the blocks with data are stored.
    const SIZE: u64 = 10 << 30;
    let marks: [(u64, &[u8]); 3] = [(0, b"head"), (5 << 30, b"middle"), (SIZE - 4, b"tail")];
    let sparse = org.path().join("sparse.img");
    let mut file = std::fs::File::create(&sparse).unwrap();
    file.set_len(SIZE).unwrap();
    for (offset, bytes) in marks {
        file.seek(SeekFrom::Start(offset)).unwrap();
        file.write_all(bytes).unwrap();
    }
    drop(file);
    let started = std::time::Instant::now();
    alice.ok(&["put", sparse.to_str().unwrap(), "Big:/sparse.img"]);
    eprintln!("put of a 10 GiB sparse file: {:?}", started.elapsed());
    assert!(alice.ok(&["ls", "Big"]).contains(&SIZE.to_string()));
    let out = org.path().join("sparse-back.img");
    bob.ok(&["get", "Big:/sparse.img", out.to_str().unwrap()]);
    let metadata = std::fs::metadata(&out).unwrap();
    assert_eq!(metadata.len(), SIZE);
    assert!(metadata.blocks() * 512 < 64 << 20, "the copy stayed sparse");
    let mut back = std::fs::File::open(&out).unwrap();
    for (offset, bytes) in marks {
        let mut read = vec![0u8; bytes.len()];
        back.seek(SeekFrom::Start(offset)).unwrap();
        std::io::Read::read_exact(&mut back, &mut read).unwrap();
        assert_eq!(read, bytes);
    }

    // A file whose block list lives in index blocks (the limit lowered from 4,096 to 4 blocks).
    let data = random_bytes(20 << 20, 7);
    let dense = org.path().join("dense.bin");
    std::fs::write(&dense, &data).unwrap();
    let out = alice
        .command(&["put", dense.to_str().unwrap(), "Big:/dense.bin"])
        .env("STRONGROOM_INLINE_BLOCK_LIMIT", "4")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copy = org.path().join("dense-back.bin");
    bob.ok(&["get", "Big:/dense.bin", copy.to_str().unwrap()]);
    assert!(std::fs::read(copy).unwrap() == data);

    // To standard output: the bytes, holes written as zeros.
    let mut small_sparse = vec![0u8; 3 << 20];
    small_sparse[(2 << 20) + 5..(2 << 20) + 9].copy_from_slice(b"data");
    let path = org.path().join("small-sparse.bin");
    std::fs::write(&path, &small_sparse).unwrap();
    alice.ok(&["put", path.to_str().unwrap(), "Big:/small-sparse.bin"]);
    for (name, expected) in [("dense.bin", &data), ("small-sparse.bin", &small_sparse)] {
        let out = bob
            .command(&["get", &format!("Big:/{name}"), "-"])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(&out.stdout == expected, "{name} on standard output");
    }
    let refused = bob.fails(&["get", "Big:/", "-"]);
    assert!(refused.contains("not a file"), "{refused}");
}
