//! The device's disk cache (pack files under `HOME/blocks/packs`) is not trusted either: bytes
//! damaged or lost on the device's disk are noticed when read, and the blocks are fetched
//! again from the server.

use strongroom_testkit::random_bytes;
use strongroom_testkit::scenario::Org;

fn packs(home: &std::path::Path) -> Vec<std::path::PathBuf> {
    let dir = home.join("blocks").join("packs");
    let mut packs: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    packs.sort();
    packs
}

/// Alice stores a 3 MiB file (three 1 MiB blocks, cached with direct writes) and a small one
/// (a block cached through the page cache), and keeps them available offline (in her cache).
fn stored(org: &Org) -> (Vec<u8>, Vec<u8>) {
    let alice = &org.alice;
    alice.ok(&["workspace", "create", "Docs"]);
    let large = random_bytes(3 << 20, 1);
    let small = b"a small file, one short block\n".to_vec();
    for (name, content) in [("large.bin", &large), ("small.txt", &small)] {
        let path = org.path().join(name);
        std::fs::write(&path, content).unwrap();
        alice.ok(&["put", path.to_str().unwrap(), &format!("Docs:/{name}")]);
    }
    alice.ok(&["pin", "Docs:/"]);
    assert!(
        !packs(&alice.home).is_empty(),
        "the blocks were cached in packs"
    );
    (large, small)
}

fn read_back(org: &Org, name: &str) -> Vec<u8> {
    let out = org.path().join(format!("read-{name}"));
    let _ = std::fs::remove_file(&out);
    org.alice
        .ok(&["get", &format!("Docs:/{name}"), out.to_str().unwrap()]);
    std::fs::read(out).unwrap()
}

fn reads_back(org: &Org, large: &[u8], small: &[u8]) {
    assert_eq!(read_back(org, "large.bin"), large);
    assert_eq!(read_back(org, "small.txt"), small);
}

#[test]
fn damaged_cached_blocks_are_refused_and_fetched_again() {
    let mut org = Org::new();
    let (large, small) = stored(&org);
    // Every 512th byte of every pack flipped: every cached block is damaged.
    for pack in packs(&org.alice.home) {
        let mut bytes = std::fs::read(&pack).unwrap();
        for i in (0..bytes.len()).step_by(512) {
            bytes[i] ^= 0xff;
        }
        std::fs::write(&pack, bytes).unwrap();
    }
    reads_back(&org, &large, &small);
    // The damaged copies were replaced: offline, the files still read.
    org.server.stop();
    reads_back(&org, &large, &small);
}

#[test]
fn lost_packs_are_fetched_again() {
    let org = Org::new();
    let (large, small) = stored(&org);
    std::fs::remove_dir_all(org.alice.home.join("blocks").join("packs")).unwrap();
    reads_back(&org, &large, &small);
}

#[test]
fn truncated_packs_are_fetched_again() {
    let org = Org::new();
    let (large, small) = stored(&org);
    for pack in packs(&org.alice.home) {
        let file = std::fs::OpenOptions::new().write(true).open(&pack).unwrap();
        file.set_len(file.metadata().unwrap().len() / 3).unwrap();
    }
    reads_back(&org, &large, &small);
}
