//! A hostile server tampers with what it serves for files; every attack is refused with a
//! typed error and changes nothing on the device. The proxy in front of the real server plays
//! the hostile server; every client talks to the server only through it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rand_core::OsRng;
use serde_bytes::ByteBuf;
use strongroom_engine::Client;
use strongroom_engine::device_file::KdfPolicy;
use strongroom_engine::home::Home;
use strongroom_engine::password::Password;
use strongroom_protocol::crypto::signing::SigningKey;
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::ids::{DeviceId, EntryId};
use strongroom_protocol::manifests::{Manifest, ManifestBody, seal_manifest};
use strongroom_protocol::wire::{RealmCertificatesResponse, VlobReadResponse, VlobVersion};
use strongroom_testkit::member::PASSWORD;
use strongroom_testkit::raw::{keys, now};
use strongroom_testkit::scenario::Org;
use strongroom_testkit::scenario::join_user;
use strongroom_testkit::{Member, Server, TamperingProxy};

/// A row of Bob's local state: realm, entry, version seen, encrypted entry.
type StateRow = (Vec<u8>, Vec<u8>, i64, Vec<u8>);

struct World {
    proxy: TamperingProxy,
    _server: Server,
    dir: tempfile::TempDir,
    alice: Member,
    bob: Member,
    carol: Member,
    /// Every vlob version and block the proxy served, for replays and swaps.
    served: Arc<Mutex<Served>>,
}

#[derive(Default)]
struct Served {
    vlobs: Vec<VlobVersion>,
    blocks: HashMap<String, Vec<u8>>,
}

/// Alice owns `Docs` with files a.txt and b.txt; Bob is a READER; Carol was a CONTRIBUTOR and is
/// revoked. Bob's block cache is disabled so that every read goes to the server.
fn world() -> World {
    let (org, proxy) = Org::behind_proxy();
    let bob = org.member("bob");
    let carol = org.member("carol");
    join_user(&org.alice, &bob, "bob@example.com", "Bob", &[]);
    join_user(&org.alice, &carol, "carol@example.com", "Carol", &[]);
    let alice = org.alice.clone();
    alice.ok(&["workspace", "create", "Docs"]);
    alice.share("Docs", "bob@example.com", "reader");
    alice.share("Docs", "carol@example.com", "contributor");
    for (name, text) in [("a.txt", "file a, version 1\n"), ("b.txt", "file b\n")] {
        let path = org.path().join(name);
        std::fs::write(&path, text).unwrap();
        alice.ok(&["put", path.to_str().unwrap(), &format!("Docs:/{name}")]);
    }
    alice.ok(&["user", "revoke", "carol@example.com"]);
    let served = Arc::new(Mutex::new(Served::default()));
    record(&proxy, &served);
    let world = World {
        proxy,
        _server: org.server,
        dir: org.dir,
        alice,
        bob,
        carol,
        served,
    };
    // Bob reads both once: his device has now seen their current versions.
    assert_eq!(world.bob_get("Docs:/a.txt").unwrap(), "file a, version 1\n");
    assert_eq!(world.bob_get("Docs:/b.txt").unwrap(), "file b\n");
    world
}

/// Records what the server serves, changing nothing.
fn record(proxy: &TamperingProxy, served: &Arc<Mutex<Served>>) {
    let served = served.clone();
    proxy.set_tamper(Some(Arc::new(
        move |method: &str, path: &str, body: Vec<u8>| {
            let mut s = served.lock().unwrap();
            if method == "POST" && path.ends_with("/vlobs/read") {
                if let Ok(r) = VlobReadResponse::decode(&body) {
                    s.vlobs.extend(r.vlobs);
                }
            } else if method == "GET" && path.contains("/blocks/") {
                s.blocks
                    .insert(path.rsplit('/').next().unwrap().to_owned(), body.clone());
            }
            body
        },
    )));
}

impl World {
    fn bob_get(&self, path: &str) -> Result<String, String> {
        let out = self.dir.path().join(format!("out-{}", rand()));
        let result = self
            .bob
            .command(&["get", path, out.to_str().unwrap()])
            .env("STRONGROOM_DISK_CACHE_MB", "0")
            .output()
            .unwrap();
        if result.status.success() {
            Ok(std::fs::read_to_string(out).unwrap())
        } else {
            assert!(!out.exists(), "a refused read left a file behind");
            Err(String::from_utf8_lossy(&result.stderr).into_owned())
        }
    }

    /// Bob's local state: every entry, version seen and checkpoint.
    fn bob_state(&self) -> Vec<StateRow> {
        let db = rusqlite::Connection::open(self.bob.home.join("local.sqlite")).unwrap();
        let mut stmt = db
            .prepare(
                "SELECT e.realm, e.entry, COALESCE(s.version, 0), e.data FROM entries e
                 LEFT JOIN seen_versions s ON s.realm = e.realm AND s.entry = e.entry ORDER BY e.realm, e.entry",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn latest(&self, id: EntryId) -> VlobVersion {
        let s = self.served.lock().unwrap();
        s.vlobs
            .iter()
            .filter(|v| v.id == id)
            .max_by_key(|v| v.version)
            .cloned()
            .unwrap()
    }

    fn entry_id(&self, name: &str) -> EntryId {
        let mut client = Client::open(
            &Home::new(&self.alice.home),
            &Password::new(PASSWORD),
            KdfPolicy::AllowWeak,
        )
        .unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let list = rt
            .block_on(client.list(&"Docs:/".parse().unwrap(), None))
            .unwrap();
        list.iter().find(|e| e.name.as_str() == name).unwrap().id
    }

    /// Alice writes a new version of a.txt, so that Bob's next read fetches it.
    fn alice_edits_a(&self, text: &str) {
        let path = self.dir.path().join(format!("a-{}", rand()));
        std::fs::write(&path, text).unwrap();
        self.alice
            .ok(&["put", path.to_str().unwrap(), "Docs:/a.txt"]);
    }

    /// Runs an attack on Bob's next read: it must fail with `message` and leave his state as
    /// it was; then, the proxy honest again, the read works.
    fn attack(&self, name: &str, tamper: strongroom_testkit::proxy::Tamper, message: &str) {
        let before = self.bob_state();
        self.proxy.set_tamper(Some(tamper));
        let err = self.bob_get("Docs:/a.txt").expect_err(name);
        assert!(err.contains(message), "{name}: {err}");
        assert_eq!(
            self.bob_state(),
            before,
            "{name}: Bob's local state changed"
        );
        record(&self.proxy, &self.served);
        self.bob_get("Docs:/a.txt")
            .unwrap_or_else(|e| panic!("{name}: honest read failed: {e}"));
    }
}

fn rand() -> u64 {
    use rand_core::RngCore;
    OsRng.next_u64()
}

/// Rewrites the served versions of `id` in batch reads.
fn on_vlob(
    id: EntryId,
    change: impl Fn(VlobVersion) -> VlobVersion + Send + Sync + 'static,
) -> strongroom_testkit::proxy::Tamper {
    Arc::new(move |method: &str, path: &str, body: Vec<u8>| {
        if method != "POST" || !path.ends_with("/vlobs/read") {
            return body;
        }
        let mut response = VlobReadResponse::decode(&body).unwrap();
        response.vlobs = response
            .vlobs
            .into_iter()
            .map(|v| if v.id == id { change(v) } else { v })
            .collect();
        response.encode()
    })
}

/// Rewrites served blocks.
fn on_blocks(
    change: impl Fn(&str, Vec<u8>) -> Vec<u8> + Send + Sync + 'static,
) -> strongroom_testkit::proxy::Tamper {
    Arc::new(move |method: &str, path: &str, body: Vec<u8>| {
        if method == "GET" && path.contains("/blocks/") {
            change(path, body)
        } else {
            body
        }
    })
}

#[test]
fn tampered_blocks_are_refused() {
    let w = world();
    w.attack(
        "a flipped bit",
        on_blocks(|_, mut b| {
            b[40] ^= 1;
            b
        }),
        "does not decrypt",
    );
    let b_block = {
        let s = w.served.lock().unwrap();
        s.blocks.keys().cloned().collect::<Vec<_>>()
    };
    let served = w.served.clone();
    w.attack(
        "a block swapped with another file's block",
        on_blocks(move |path, body| {
            let s = served.lock().unwrap();
            let mine = path.rsplit('/').next().unwrap();
            let other = b_block
                .iter()
                .find(|k| k.as_str() != mine)
                .and_then(|k| s.blocks.get(k))
                .cloned();
            other.unwrap_or(body)
        }),
        "does not decrypt",
    );
    w.attack(
        "a dropped block",
        on_blocks(|_, _| Vec::new()),
        "does not decrypt",
    );
    w.attack(
        "a truncated block",
        on_blocks(|_, mut b| {
            b.truncate(b.len() - 3);
            b
        }),
        "does not decrypt",
    );
}

#[test]
fn tampered_manifests_are_refused() {
    let w = world();
    let a = w.entry_id("a.txt");
    let b = w.entry_id("b.txt");

    w.alice_edits_a("file a, version 2\n");
    let b_latest = w.latest(b);
    w.attack(
        "manifests swapped between two files",
        on_vlob(a, move |mut v| {
            v.blob = b_latest.blob.clone();
            v
        }),
        "not sealed for this entry",
    );

    // Bob has now seen version 2; the server replays version 1 after Alice writes version 3.
    let v1 = w
        .served
        .lock()
        .unwrap()
        .vlobs
        .iter()
        .find(|v| v.id == a && v.version == 1)
        .cloned()
        .unwrap();
    w.alice_edits_a("file a, version 3\n");
    w.attack(
        "an old version replayed (rollback)",
        on_vlob(a, move |_| v1.clone()),
        "rollback",
    );

    w.alice_edits_a("file a, version 4\n");
    w.attack(
        "a key index no certificate certifies",
        on_vlob(a, |mut v| {
            v.key_index = 7;
            v
        }),
        "which no workspace certificate the server sent certifies",
    );

    w.alice_edits_a("file a, version 4b\n");
    w.attack(
        "a version said to be received an hour before it was written",
        on_vlob(a, |mut v| {
            v.received = v.timestamp.plus_micros(-3_600_000_000);
            v
        }),
        "away from when the server received it",
    );
    w.alice_edits_a("file a, version 4c\n");
    w.attack(
        "a version said to be received after the reader's clock",
        on_vlob(a, |mut v| {
            v.received = now().plus_micros(3_600_000_000);
            v
        }),
        "after this computer's clock",
    );

    w.alice_edits_a("file a, version 5\n");
    w.attack(
        "an oversized blob",
        on_vlob(a, |mut v| {
            v.blob = ByteBuf::from(vec![0u8; 17 << 20]);
            v
        }),
        "larger than",
    );

    // Forged versions, encrypted with the real workspace key but signed by devices that may not
    // write: a revoked user, a READER, a device outside the organization.
    let alice_client = Client::open(
        &Home::new(&w.alice.home),
        &Password::new(PASSWORD),
        KdfPolicy::AllowWeak,
    )
    .unwrap();
    let context = alice_client.workspace_context_offline("Docs").unwrap();
    let (key_index, key) = {
        let (i, k) = context.current_key().unwrap();
        (i, k.clone())
    };
    let carol = keys(&w.carol.home);
    let bob = keys(&w.bob.home);
    let outsider = (
        DeviceId::generate(&mut OsRng),
        SigningKey::generate(&mut OsRng),
    );
    for (name, author, signer, message) in [
        (
            "signed by a revoked user",
            carol.device_id,
            carol.signing_key(),
            "revoked",
        ),
        (
            "signed by a READER",
            bob.device_id,
            bob.signing_key(),
            "could not write in this workspace",
        ),
        (
            "signed by a device outside the organization",
            outsider.0,
            outsider.1.clone(),
            "unknown to the organization",
        ),
    ] {
        w.alice_edits_a(&format!("file a, before the forgery {name}\n"));
        let realm = context.realm;
        let key = key.clone();
        let body = match alice_client.chain().user(&alice_client.keys().user_id) {
            Some(_) => ManifestBody::File {
                parent: realm.into(),
                size: 6,
                block_size: 1 << 20,
                blocks: vec![],
                index: vec![],
            },
            None => unreachable!(),
        };
        w.attack(
            name,
            on_vlob(a, move |mut v| {
                let timestamp = now();
                let manifest = Manifest {
                    author,
                    timestamp,
                    realm,
                    id: v.id,
                    version: v.version,
                    body: body.clone(),
                };
                v.blob = ByteBuf::from(seal_manifest(
                    &manifest, &signer, &key, key_index, &mut OsRng,
                ));
                v.author = author;
                v.timestamp = timestamp;
                v
            }),
            message,
        );
    }
}

#[test]
fn a_key_rotation_withheld_from_a_member_is_detected() {
    let w = world();
    // Alice shares Docs with Dave, Bob's device takes that in, then Alice removes Dave: the key
    // rotates.
    let dave = Member::new(w.dir.path(), "dave");
    join_user(&w.alice, &dave, "dave@example.com", "Dave", &[]);
    w.alice.share("Docs", "dave@example.com", "reader");
    w.bob.ok(&["ls", "Docs:/"]);
    w.alice
        .ok(&["workspace", "unshare", "Docs", "dave@example.com"]);
    w.alice_edits_a("file a, written with the new key\n");
    // The hostile server keeps every newer workspace certificate from Bob (and would go on
    // accepting his writes with the old key, which Dave still holds).
    let served = w.served.clone();
    let withhold: strongroom_testkit::proxy::Tamper =
        Arc::new(move |method: &str, path: &str, body: Vec<u8>| {
            if method == "GET" && path.contains("/realms/") && path.contains("/certificates") {
                let mut response = RealmCertificatesResponse::decode(&body).unwrap();
                response.certificates.clear();
                return response.encode();
            }
            if method == "POST"
                && path.ends_with("/vlobs/read")
                && let Ok(r) = VlobReadResponse::decode(&body)
            {
                served.lock().unwrap().vlobs.extend(r.vlobs);
            }
            body
        });
    w.attack(
        "the removal and the key rotation withheld",
        withhold,
        "withholds workspace certificates",
    );
    assert_eq!(
        w.bob_get("Docs:/a.txt").unwrap(),
        "file a, written with the new key\n"
    );
}
