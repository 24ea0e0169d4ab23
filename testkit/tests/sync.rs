//! Offline work, crash safety, conflicts between devices, and revocation with key rotation.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use strongroom_engine::Client;
use strongroom_engine::device_file::KdfPolicy;
use strongroom_engine::files::WorkspacePath;
use strongroom_engine::home::Home;
use strongroom_engine::password::Password;
use strongroom_protocol::blocks::open_block;
use strongroom_protocol::ids::{EntryId, RealmId};
use strongroom_protocol::manifests::{
    BlockRef, ManifestBody, VlobCoordinates, WriteAuthority, open_manifest,
};
use strongroom_protocol::time::Timestamp;
use strongroom_testkit::Member;
use strongroom_testkit::member::PASSWORD;
use strongroom_testkit::scenario::{Org, join_device, join_user};

fn write(org: &Org, name: &str, text: &str) -> String {
    let path = org.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn read(member: &Member, org: &Org, path: &str) -> String {
    let out = org.path().join(format!("read-{}", rand_name()));
    member.ok(&["get", path, out.to_str().unwrap()]);
    std::fs::read_to_string(out).unwrap()
}

fn rand_name() -> u64 {
    use rand_core::RngCore;
    rand_core::OsRng.next_u64()
}

/// Retries `check` for up to 60 seconds.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn watch(member: &Member) -> Background {
    let child = member
        .command(&["sync", "--watch"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Background(child)
}

#[test]
fn offline_changes_sync_by_themselves_when_the_server_returns() {
    let mut org = Org::new();
    let bob = org.member("bob");
    join_user(&org.alice, &bob, "bob@example.com", "Bob", &[]);
    org.alice.ok(&["workspace", "create", "Docs"]);
    org.alice.share("Docs", "bob@example.com", "reader");
    let _daemon = watch(&org.alice);

    org.server.stop();
    let first = write(&org, "a.txt", "written offline\n");
    let out = org.alice.ok(&["put", &first, "Docs:/a.txt"]);
    assert!(
        out.contains("uploaded when the server is reachable"),
        "{out}"
    );
    let edited = write(&org, "a2.txt", "written offline, then edited\n");
    org.alice.ok(&["put", &edited, "Docs:/a.txt"]);
    org.alice.ok(&["mkdir", "Docs:/offline-folder"]);
    let listed = org.alice.ok(&["ls", "Docs"]);
    assert!(
        listed.contains("a.txt") && listed.contains("pending upload"),
        "{listed}"
    );

    org.server.restart();
    // Nobody runs a command for Alice: her `sync --watch` uploads by itself.
    eventually("Bob sees Alice's offline work", || {
        let out = bob.run(&["ls", "Docs"]);
        out.success && out.stdout.contains("a.txt") && out.stdout.contains("offline-folder")
    });
    assert_eq!(
        read(&bob, &org, "Docs:/a.txt"),
        "written offline, then edited\n"
    );
    eventually("Alice has nothing left to upload", || {
        org.alice
            .ok(&["status"])
            .contains("changes waiting for upload: 0")
    });
}

#[test]
fn a_client_killed_after_put_reported_durability_loses_nothing() {
    // The server answers manifest uploads slowly, so that the kill lands after the put reported
    // its change durable and before the upload finished.
    let (mut org, proxy) = Org::behind_proxy();
    let bob = org.member("bob");
    join_user(&org.alice, &bob, "bob@example.com", "Bob", &[]);
    org.alice.ok(&["workspace", "create", "Docs"]);
    org.alice.share("Docs", "bob@example.com", "reader");
    let data: Vec<u8> = (0..(24u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let file = org.path().join("big.bin");
    std::fs::write(&file, &data).unwrap();

    proxy.set_tamper(Some(std::sync::Arc::new(
        |_: &str, path: &str, body: Vec<u8>| {
            if path.ends_with("/vlobs/batch") {
                std::thread::sleep(Duration::from_secs(3));
            }
            body
        },
    )));
    let mut put = org
        .alice
        .command(&["put", file.to_str().unwrap(), "Docs:/big.bin"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(put.stderr.take().unwrap()).lines();
    assert!(lines.any(|l| l.unwrap().contains("Stored on this device")));
    put.kill().unwrap(); // SIGKILL, in the middle of the upload
    put.wait().unwrap();
    proxy.set_tamper(None);

    // The kill interrupted the upload: the change still waits on this device...
    let status = org.alice.ok(&["status"]);
    assert!(
        !status.contains("changes waiting for upload: 0"),
        "{status}"
    );
    // ...and a sync completes it.
    org.alice.ok(&["sync"]);
    assert!(
        org.alice
            .ok(&["status"])
            .contains("changes waiting for upload: 0")
    );
    let out = org.path().join("bob-big.bin");
    bob.ok(&["get", "Docs:/big.bin", out.to_str().unwrap()]);
    assert!(std::fs::read(out).unwrap() == data);
    org.server.stop();
}

#[test]
fn concurrent_edits_on_two_disconnected_devices_keep_both_contents() {
    let mut org = Org::new();
    let laptop = org.alice.clone();
    let phone = org.member("alice-phone");
    join_device(&laptop, &phone, "phone");
    laptop.ok(&["workspace", "create", "Docs"]);
    let original = write(&org, "o.txt", "original\n");
    laptop.ok(&["put", &original, "Docs:/notes.txt"]);
    assert_eq!(read(&phone, &org, "Docs:/notes.txt"), "original\n");

    org.server.stop();
    let from_laptop = write(&org, "l.txt", "edited on the laptop\n");
    let from_phone = write(&org, "p.txt", "edited on the phone\n");
    laptop.ok(&["put", &from_laptop, "Docs:/notes.txt"]);
    phone.ok(&["put", &from_phone, "Docs:/notes.txt"]);
    org.server.restart();

    laptop.ok(&["sync"]);
    let out = phone.ok(&["sync"]);
    assert!(out.contains("1 conflict copies"), "{out}");
    laptop.ok(&["sync"]);
    for device in [&laptop, &phone] {
        let listed = device.ok(&["ls", "Docs"]);
        let names: Vec<&str> = listed
            .lines()
            .skip(1)
            .map(|l| l.split("  ").next().unwrap().trim())
            .collect();
        assert_eq!(names.len(), 2, "{listed}");
        let copy = names
            .iter()
            .find(|n| n.starts_with("notes (conflict phone "))
            .expect("a conflict copy");
        assert!(copy.ends_with(").txt"), "{copy}");
        assert_eq!(
            read(device, &org, "Docs:/notes.txt"),
            "edited on the laptop\n"
        );
        assert_eq!(
            read(device, &org, &format!("Docs:/{copy}")),
            "edited on the phone\n"
        );
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

#[test]
fn revocation_refuses_the_user_and_rotates_the_key() {
    let org = Org::new();
    let alice = &org.alice;
    let bob = org.member("bob");
    join_user(alice, &bob, "bob@example.com", "Bob", &[]);
    alice.ok(&["workspace", "create", "Docs"]);
    alice.share("Docs", "bob@example.com", "contributor");
    let before = write(&org, "before.txt", "Bob may read this\n");
    alice.ok(&["put", &before, "Docs:/before.txt"]);
    assert_eq!(read(&bob, &org, "Docs:/before.txt"), "Bob may read this\n");
    // What Bob's device holds: the workspace's keys as of now.
    let bob_keys = Client::open(
        &Home::new(&bob.home),
        &Password::new(PASSWORD),
        KdfPolicy::AllowWeak,
    )
    .unwrap()
    .workspace_context_offline("Docs")
    .unwrap()
    .keys;
    assert_eq!(bob_keys.iter().map(|k| k.index).collect::<Vec<_>>(), [1]);

    alice.ok(&["user", "revoke", "bob@example.com"]);
    let err = bob.fails(&["ls", "Docs"]);
    assert!(err.contains("was revoked"), "{err}");
    let listed = alice.ok(&["workspace", "list"]);
    assert!(!listed.contains("bob@example.com"), "{listed}");

    let secret = write(&org, "after.txt", "written after Bob was revoked\n");
    alice.ok(&["put", &secret, "Docs:/after.txt"]);

    // With the key Bob held, Alice's new manifest and blocks cannot be decrypted.
    let mut alice_client = Client::open(
        &Home::new(&alice.home),
        &Password::new(PASSWORD),
        KdfPolicy::AllowWeak,
    )
    .unwrap();
    let rt = runtime();
    let entries = rt
        .block_on(alice_client.list(&"Docs:/".parse::<WorkspacePath>().unwrap(), None))
        .unwrap();
    let after = entries
        .iter()
        .find(|e| e.name.as_str() == "after.txt")
        .unwrap()
        .id;
    let realm = alice_client
        .workspace_context_offline("Docs")
        .unwrap()
        .realm;
    let db = rusqlite::Connection::open(org.server.data_dir().join("metadata.sqlite")).unwrap();
    let (version, key_index, author, timestamp, blob): (u32, u32, Vec<u8>, i64, Vec<u8>) = db
        .query_row(
            "SELECT version, key_index, author, timestamp, blob FROM vlobs WHERE vlob = ?1 ORDER BY version DESC LIMIT 1",
            [after.as_bytes().to_vec()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(key_index, 2, "the key was rotated");
    let coordinates = VlobCoordinates {
        realm,
        id: after,
        version,
        key_index,
        author: strongroom_protocol::ids::DeviceId::from_bytes(author.try_into().unwrap()),
        timestamp: Timestamp::from_micros(timestamp),
        received: Timestamp::from_micros(timestamp),
    };
    let old_key = &bob_keys[0].key;
    let err = open_manifest(
        &blob,
        &coordinates,
        old_key,
        alice_client.chain(),
        WriteAuthority::User(strongroom_protocol::ids::UserId::from_bytes([0; 16])),
    );
    assert!(
        err.is_err(),
        "Bob's old key opened a manifest written after the rotation"
    );
    // The block of the new file, read with Alice's key to find it, then tried with Bob's.
    let context = alice_client.workspace_context_offline("Docs").unwrap();
    let manifest = open_manifest(
        &blob,
        &coordinates,
        context.key(2).unwrap(),
        alice_client.chain(),
        WriteAuthority::Workspace(context.chain.as_ref().unwrap()),
    )
    .unwrap();
    let ManifestBody::File { blocks, .. } = manifest.body else {
        panic!("a file")
    };
    let block: &BlockRef = &blocks[0];
    assert_eq!(block.key_index, 2);
    let path = org
        .server
        .data_dir()
        .join("blocks/acme")
        .join(realm.to_string())
        .join(&block.id.to_string()[..2])
        .join(block.id.to_string());
    let ciphertext = std::fs::read(path).unwrap();
    assert!(open_block(old_key, &realm, block, &ciphertext).is_err());
    assert!(open_block(context.key(2).unwrap(), &realm, block, &ciphertext).is_ok());
    let _: (RealmId, EntryId) = (realm, after);
}

#[test]
fn pinned_files_stay_readable_offline_while_others_are_evicted() {
    let mut org = Org::new();
    let bob = org.member("bob");
    join_user(&org.alice, &bob, "bob@example.com", "Bob", &[]);
    org.alice.ok(&["workspace", "create", "Docs"]);
    org.alice.share("Docs", "bob@example.com", "reader");
    let pinned: Vec<u8> = (0..(3u32 << 20)).map(|i| (i % 251) as u8).collect();
    let other: Vec<u8> = (0..(3u32 << 20)).map(|i| (i % 241) as u8).collect();
    std::fs::write(org.path().join("pinned.bin"), &pinned).unwrap();
    std::fs::write(org.path().join("other.bin"), &other).unwrap();
    for name in ["pinned.bin", "other.bin"] {
        org.alice
            .ok(&["put", org.path().join(name).to_str().unwrap(), "Docs:/"]);
    }
    // Bob's disk cache may hold nothing: only pinned blocks stay.
    let bob_cmd = |args: &[&str]| {
        let out = bob
            .command(args)
            .env("STRONGROOM_DISK_CACHE_MB", "0")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(bob_cmd(&["pin", "Docs:/pinned.bin"]).0);
    let first = org.path().join("other-online.bin");
    assert!(bob_cmd(&["get", "Docs:/other.bin", first.to_str().unwrap()]).0);
    assert!(std::fs::read(&first).unwrap() == other);

    org.server.stop();
    let out = org.path().join("pinned-offline.bin");
    let (ok, err) = bob_cmd(&["get", "Docs:/pinned.bin", out.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(std::fs::read(&out).unwrap() == pinned);
    let (ok, err) = bob_cmd(&[
        "get",
        "Docs:/other.bin",
        org.path().join("x").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("cannot reach the server"), "{err}");
    org.server.restart();
    assert!(bob_cmd(&["unpin", "Docs:/pinned.bin"]).0);
}

#[test]
fn blocks_the_server_refuses_during_put_are_kept_and_uploaded_later() {
    let (org, proxy) = Org::behind_proxy();
    let bob = org.member("bob");
    join_user(&org.alice, &bob, "bob@example.com", "Bob", &[]);
    org.alice.ok(&["workspace", "create", "Docs"]);
    org.alice.share("Docs", "bob@example.com", "reader");
    let data: Vec<u8> = (0..(6u32 << 20)).map(|i| (i % 253) as u8).collect();
    let file = org.path().join("f.bin");
    std::fs::write(&file, &data).unwrap();

    // Every block upload fails: the put keeps the blocks on the device and says so.
    proxy.set_refuse(Some(std::sync::Arc::new(|method: &str, path: &str| {
        method == "PUT" && path.contains("/blocks/")
    })));
    let out = org
        .alice
        .run(&["put", file.to_str().unwrap(), "Docs:/f.bin"]);
    proxy.set_refuse(None);
    assert!(
        out.stderr.contains("Stored on this device"),
        "{}",
        out.stderr
    );
    assert!(!out.success, "the failed upload is reported");
    assert!(
        !org.alice
            .ok(&["status"])
            .contains("changes waiting for upload: 0")
    );

    org.alice.ok(&["sync"]);
    let back = org.path().join("back.bin");
    bob.ok(&["get", "Docs:/f.bin", back.to_str().unwrap()]);
    assert!(std::fs::read(back).unwrap() == data);
}
