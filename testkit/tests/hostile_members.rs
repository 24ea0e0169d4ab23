//! A hostile member, with a client of their own that signs whatever it likes, attacks the other
//! members through the real server: every attack is refused, and the others keep working.

use std::time::Duration;

use rand_core::OsRng;
use serde_bytes::ByteBuf;
use strongroom_engine::Client;
use strongroom_engine::device_file::DeviceKeys;
use strongroom_engine::device_file::KdfPolicy;
use strongroom_engine::home::Home;
use strongroom_engine::password::Password;
use strongroom_protocol::certificates::{
    Certificate, DeviceCertificate, SignedCertificate, Signer,
};
use strongroom_protocol::crypto::hash::Digest;
use strongroom_protocol::crypto::secret_key::SecretKey;
use strongroom_protocol::crypto::signing::SigningKey;
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::ids::{DeviceId, EntryId, RealmId};
use strongroom_protocol::manifests::{
    EntryName, IndexedKey, ManifestBody, SEALED_HEADER_BYTES, VlobCoordinates, seal_ciphertext,
};
use strongroom_protocol::messages::{Message, MessageBody, MessageTopic, seal_message};
use strongroom_protocol::time::Timestamp;
use strongroom_protocol::wire::{
    CreateRealmRequest, ErrorCode, OutgoingMessage, RealmCertificateRequest,
    UploadCertificateRequest, VlobReadRequest, VlobReadResponse, VlobWriteRequest,
};
use strongroom_protocol::workspace::{
    KeyRotationCertificate, RealmCertificate, RoleCertificate, WorkspaceRole, key_check,
    key_checks_digest,
};
use strongroom_testkit::forge::{BadKeyMessage, Forged, Forger, empty_file};
use strongroom_testkit::member::PASSWORD;
use strongroom_testkit::raw::{SignedRequest, keys, now};
use strongroom_testkit::scenario::{Org, join_user};
use strongroom_testkit::{Member, Server};

const YEAR_MICROS: i64 = 365 * 24 * 3600 * 1_000_000;

/// Alice (ADMIN) owns the workspace `Team`, where Bob (STANDARD, the attacker) is a MANAGER;
/// Carol and Dave are STANDARD members who never opened their workspace list.
struct World {
    org: Org,
    bob: Member,
    carol: Member,
    bob_keys: DeviceKeys,
    team: RealmId,
}

fn world() -> World {
    let org = Org::new();
    let bob = org.member("bob");
    let carol = org.member("carol");
    join_user(&org.alice, &bob, "bob@example.com", "Bob", &[]);
    join_user(&org.alice, &carol, "carol@example.com", "Carol", &[]);
    org.alice.ok(&["workspace", "create", "Team"]);
    org.alice.share("Team", "bob@example.com", "manager");
    let team = realm_of(&org.alice, "Team");
    World {
        bob_keys: keys(&bob.home),
        org,
        bob,
        carol,
        team,
    }
}

/// The member's device, opened in process, and a runtime to drive it.
fn client_of(member: &Member) -> (Client, tokio::runtime::Runtime) {
    let client = Client::open(
        &Home::new(&member.home),
        &Password::new(PASSWORD),
        KdfPolicy::AllowWeak,
    )
    .unwrap();
    (client, tokio::runtime::Runtime::new().unwrap())
}

fn realm_of(member: &Member, workspace: &str) -> RealmId {
    let (mut client, runtime) = client_of(member);
    runtime
        .block_on(client.workspaces())
        .unwrap()
        .into_iter()
        .find(|w| w.name.as_str() == workspace)
        .expect("the workspace")
        .realm
}

/// Posts a workspace certificate with its messages, signed by `by`.
fn post_realm_certificate(
    by: &DeviceKeys,
    realm: RealmId,
    certificate: Vec<u8>,
    messages: Vec<OutgoingMessage>,
) -> (u16, Option<strongroom_protocol::wire::ErrorResponse>) {
    let body = RealmCertificateRequest {
        certificate: ByteBuf::from(certificate),
        messages,
    }
    .encode();
    SignedRequest::new(
        by,
        "POST",
        format!("/authenticated/acme/realms/{realm}/certificates"),
        body,
    )
    .send()
}

fn upload_certificate(
    by: &DeviceKeys,
    certificate: Certificate,
    key: &SigningKey,
) -> (u16, Option<strongroom_protocol::wire::ErrorResponse>) {
    let body = UploadCertificateRequest {
        certificate: ByteBuf::from(SignedCertificate::sign(&certificate, key).encode()),
    }
    .encode();
    SignedRequest::new(by, "POST", "/authenticated/acme/certificates".into(), body).send()
}

/// Bob certifies a new device of his own, dated `timestamp`.
fn bobs_new_device(w: &World, timestamp: Timestamp) -> Certificate {
    Certificate::Device(DeviceCertificate {
        author: Signer::Device(w.bob_keys.device_id),
        timestamp,
        user_id: w.bob_keys.user_id,
        device_id: DeviceId::generate(&mut OsRng),
        device_label: "phone".parse().unwrap(),
        verify_key: SigningKey::generate(&mut OsRng).verify_key(),
    })
}

#[test]
fn a_certificate_dated_far_from_the_servers_clock_is_refused_and_the_chain_stays_usable() {
    let w = world();
    for (what, offset) in [
        ("in 2100", 75 * YEAR_MICROS),
        ("ten minutes ahead", 10 * 60 * 1_000_000),
    ] {
        let certificate = bobs_new_device(&w, now().plus_micros(offset));
        let (status, error) =
            upload_certificate(&w.bob_keys, certificate, &w.bob_keys.signing_key());
        let error = error.unwrap_or_else(|| panic!("{what}: accepted with status {status}"));
        assert_eq!(
            error.code,
            ErrorCode::StaleTimestamp,
            "{what}: {}",
            error.message
        );
    }
    // A device dated now is certified as usual.
    let certificate = bobs_new_device(&w, now());
    let (status, error) = upload_certificate(&w.bob_keys, certificate, &w.bob_keys.signing_key());
    assert_eq!(status, 200, "{error:?}");
    // Nothing froze the chain: Alice still invites and revokes.
    let dave = w.org.member("dave");
    join_user(&w.org.alice, &dave, "dave@example.com", "Dave", &[]);
    w.org.alice.ok(&["user", "revoke", "carol@example.com"]);
}

#[test]
fn a_manager_cannot_freeze_a_workspace_chain() {
    let w = world();
    let carol = keys(&w.carol.home);
    let role = |timestamp| {
        RealmCertificate::Role(RoleCertificate {
            author: w.bob_keys.device_id,
            timestamp,
            realm: w.team,
            user_id: carol.user_id,
            role: Some(WorkspaceRole::Reader),
        })
        .sign(&w.bob_keys.signing_key())
    };
    let post =
        |certificate: Vec<u8>| post_realm_certificate(&w.bob_keys, w.team, certificate, Vec::new());
    let (status, error) = post(role(now().plus_micros(75 * YEAR_MICROS)));
    let error = error.unwrap_or_else(|| panic!("accepted with status {status}"));
    assert_eq!(error.code, ErrorCode::StaleTimestamp, "{}", error.message);
    // The workspace's chain still takes new certificates.
    w.org
        .alice
        .share("Team", "carol@example.com", "contributor");
    w.org
        .alice
        .ok(&["workspace", "unshare", "Team", "bob@example.com"]);
}

#[test]
fn a_members_personal_realm_cannot_be_squatted() {
    let w = world();
    let carol = keys(&w.carol.home);
    let squatted = RealmId::of_user(&carol.user_id);
    let t = now();
    let device = w.bob_keys.device_id;
    let key = SecretKey::generate(&mut OsRng);
    let certificates = vec![
        RealmCertificate::Role(RoleCertificate {
            author: device,
            timestamp: t,
            realm: squatted,
            user_id: w.bob_keys.user_id,
            role: Some(WorkspaceRole::Owner),
        })
        .sign(&w.bob_keys.signing_key()),
        RealmCertificate::KeyRotation(KeyRotationCertificate {
            author: device,
            timestamp: t.plus_micros(1),
            realm: squatted,
            key_index: 1,
            key_check: key_check(&key, &squatted, 1),
        })
        .sign(&w.bob_keys.signing_key()),
    ];
    let body = CreateRealmRequest {
        certificates: certificates.into_iter().map(ByteBuf::from).collect(),
    }
    .encode();
    let (status, error) = SignedRequest::new(
        &w.bob_keys,
        "POST",
        format!("/authenticated/acme/realms/{squatted}"),
        body,
    )
    .send();
    let error = error.unwrap_or_else(|| panic!("accepted with status {status}"));
    assert_eq!(error.code, ErrorCode::RealmExists, "{}", error.message);
    // Carol's own list works, and keeps working once she saves it.
    w.carol.ok(&["workspace", "create", "Mine"]);
    let list = w.carol.ok(&["workspace", "list"]);
    assert!(list.contains("Mine"), "{list}");
}

/// Writes `count` vlobs of the largest size a version may have into `realm`, as `by`.
fn large_vlobs(by: &DeviceKeys, realm: RealmId, key: &Digest, count: usize) -> Vec<EntryId> {
    (0..count)
        .map(|i| {
            let id = EntryId::generate(&mut OsRng);
            let timestamp = now();
            let coordinates = VlobCoordinates {
                realm,
                id,
                version: 1,
                key_index: 1,
                author: by.device_id,
                timestamp,
                received: timestamp,
            };
            let ciphertext = strongroom_testkit::random_bytes(
                strongroom_protocol::wire::MAX_VLOB_BYTES - 64 - SEALED_HEADER_BYTES,
                i as u64 + 1,
            );
            let body = VlobWriteRequest {
                id,
                version: 1,
                key_index: 1,
                timestamp,
                blob: ByteBuf::from(seal_ciphertext(
                    &coordinates,
                    key,
                    &ciphertext,
                    &by.signing_key(),
                )),
            }
            .encode();
            let (status, error) = SignedRequest::new(
                by,
                "POST",
                format!("/authenticated/acme/realms/{realm}/vlobs"),
                body,
            )
            .send();
            assert_eq!(status, 200, "{error:?}");
            id
        })
        .collect()
}

#[test]
fn batch_reads_cannot_make_the_server_allocate_without_bound() {
    let w = world();
    let key = Forger::new(&w.bob, "Team").key_check();
    let ids = large_vlobs(&w.bob_keys, w.team, &key, 40);
    let server: &Server = &w.org.server;
    let read = |ids: Vec<EntryId>| {
        let body = VlobReadRequest { ids, at: None }.encode();
        let (status, answer) = SignedRequest::new(
            &w.bob_keys,
            "POST",
            format!("/authenticated/acme/realms/{}/vlobs/read", w.team),
            body,
        )
        .send_raw();
        assert_eq!(status, 200);
        answer
    };
    // Let the writes' memory settle, then take the baseline.
    std::thread::sleep(Duration::from_millis(500));
    let before = server.peak_memory_bytes().expect("the server's memory");
    // The same id a hundred times (a 2 KB request for 200 MiB), and forty distinct ones (80 MiB).
    let duplicates = read(vec![ids[0]; 100]);
    let distinct = read(ids.clone());
    let after = server.peak_memory_bytes().expect("the server's memory");
    let grown = after.saturating_sub(before);
    assert!(
        grown < 64 << 20,
        "the server's peak memory grew by {} MiB",
        grown >> 20
    );
    for answer in [duplicates, distinct] {
        assert!(answer.len() <= strongroom_protocol::wire::MAX_RESPONSE_BYTES);
        let answer = VlobReadResponse::decode(&answer).unwrap();
        assert!(!answer.vlobs.is_empty());
    }
}

#[test]
fn a_replayed_request_is_refused() {
    let w = world();
    let alice = keys(&w.org.alice.home);
    let answers = SignedRequest::new(
        &alice,
        "GET",
        "/authenticated/acme/certificates?from=0".into(),
        Vec::new(),
    )
    .send_times(2);
    assert_eq!(answers[0].0, 200);
    let (status, body) = &answers[1];
    let error = strongroom_protocol::wire::ErrorResponse::decode(body)
        .unwrap_or_else(|_| panic!("the replay was answered with status {status}"));
    assert_eq!(error.code, ErrorCode::Replayed, "{}", error.message);
}

#[test]
fn a_revoked_users_open_event_stream_is_closed() {
    let w = world();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let carol = Client::open(
        &Home::new(&w.carol.home),
        &Password::new(PASSWORD),
        KdfPolicy::AllowWeak,
    )
    .unwrap();
    let mut stream = runtime
        .block_on(carol.events())
        .expect("Carol's event stream");
    w.org.alice.ok(&["user", "revoke", "carol@example.com"]);
    // The stream ends (it may first deliver the revocation's own certificate event).
    let ended = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), async {
            while stream.next().await.is_some() {}
        })
        .await
    });
    assert!(ended.is_ok(), "the revoked user's event stream stayed open");
    // And a new one is refused.
    let again = runtime.block_on(carol.events());
    assert!(
        matches!(again, Err(ref e) if e.server_code() == Some(ErrorCode::DeviceRevoked)),
        "a revoked device opened a stream: {:?}",
        again.err()
    );
}

#[test]
fn invitations_expire_and_end_with_their_greeters_revocation() {
    let org = Org::with_options(strongroom_testkit::ServerOptions {
        extra_args: vec!["--invitation-ttl".into(), "12s".into()],
        ..Default::default()
    });
    let dave = org.member("dave");
    // Joining within the lifetime works.
    join_user(&org.alice, &dave, "dave@example.com", "Dave", &["--admin"]);
    let stale = org.alice.last_line(&["invite", "user", "erin@example.com"]);
    std::thread::sleep(Duration::from_secs(13));
    let erin = org.member("erin");
    let err = erin.fails(&["claim", &stale, "--name", "Erin"]);
    assert!(err.contains("expired"), "{err}");
    assert!(
        !org.alice
            .ok(&["invite", "list"])
            .contains("erin@example.com")
    );
    // Dave invites Frank, then Dave is revoked: the invitation is cancelled.
    let pending = dave.last_line(&["invite", "user", "frank@example.com"]);
    org.alice.ok(&["user", "revoke", "dave@example.com"]);
    let frank = org.member("frank");
    let err = frank.fails(&["claim", &pending, "--name", "Frank"]);
    assert!(err.contains("cancelled"), "{err}");
}

#[test]
fn organization_quotas_are_enforced_with_a_typed_error() {
    let org = Org::new();
    let said = org.server.org_quota(
        "acme",
        &["--workspaces", "1", "--devices", "2", "--storage", "3MiB"],
    );
    assert!(said.contains("3145728"), "{said}");
    let alice = &org.alice;
    alice.ok(&["workspace", "create", "One"]);
    let err = alice.fails(&["workspace", "create", "Two"]);
    assert!(err.contains("quota of 1 workspaces"), "{err}");
    // Alice's device and Bob's make two: a third device is refused.
    let bob = org.member("bob");
    join_user(alice, &bob, "bob@example.com", "Bob", &[]);
    let url = bob.last_line(&["invite", "device"]);
    let phone = org.member("bob-phone");
    let (greeter, _) = strongroom_testkit::greet_and_claim(
        &bob,
        &phone,
        &url,
        &["--label", "phone"],
        strongroom_testkit::Pick::Heard,
        strongroom_testkit::Pick::Heard,
    );
    assert!(!greeter.success, "a third device was certified");
    assert!(
        greeter.stderr.contains("quota of 2 devices"),
        "{}",
        greeter.stderr
    );
    // Storage: a 1 MiB file fits, a 4 MiB one does not.
    let small = org.path().join("small");
    std::fs::write(&small, strongroom_testkit::random_bytes(1 << 20, 1)).unwrap();
    alice.ok(&["put", small.to_str().unwrap(), "One:/small"]);
    let large = org.path().join("large");
    std::fs::write(&large, strongroom_testkit::random_bytes(4 << 20, 2)).unwrap();
    let err = alice.fails(&["put", large.to_str().unwrap(), "One:/large"]);
    assert!(err.contains("storage quota"), "{err}");
    // Lifting the limit lets the waiting upload through.
    org.server.org_quota("acme", &["--storage", "none"]);
    alice.ok(&["sync"]);
    let listing = alice.ok(&["ls", "One:/"]);
    assert!(
        listing.contains("large") && listing.contains("small"),
        "{listing}"
    );
}

#[test]
fn opening_a_workspace_takes_a_rotated_key_by_itself() {
    let w = world();
    w.org
        .alice
        .share("Team", "carol@example.com", "contributor");
    // Carol reads once, so that her device holds the first key only.
    w.carol.ok(&["ls", "Team:/"]);
    w.org
        .alice
        .ok(&["workspace", "unshare", "Team", "bob@example.com"]);
    let note = w.org.path().join("note");
    std::fs::write(&note, "after the rotation\n").unwrap();
    w.org
        .alice
        .ok(&["put", note.to_str().unwrap(), "Team:/note.txt"]);
    // No `workspace list` or `sync` first: `get` finds the new key itself.
    let out = w.org.path().join("carol-note");
    w.carol
        .ok(&["get", "Team:/note.txt", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out).unwrap(),
        "after the rotation\n"
    );
}

/// Bob, a CONTRIBUTOR of Alice's `Team`, with a file `notes.txt` of his there that Alice has
/// read, and his device open as a forger (holding the workspace's current key).
fn team_with_bobs_notes() -> (Org, Member, Forger, EntryId, u32) {
    let org = Org::new();
    let bob = org.member("bob");
    join_user(&org.alice, &bob, "bob@example.com", "Bob", &[]);
    org.alice.ok(&["workspace", "create", "Team"]);
    org.alice.share("Team", "bob@example.com", "contributor");
    let notes = org.path().join("notes.txt");
    std::fs::write(&notes, "Bob's first notes\n").unwrap();
    bob.ok(&["put", notes.to_str().unwrap(), "Team:/notes.txt"]);
    assert!(org.alice.ok(&["ls", "Team:/"]).contains("notes.txt"));
    let mut forger = Forger::new(&bob, "Team");
    let (id, version) = forger.entry("/", "notes.txt");
    (org, bob, forger, id, version)
}

/// A member writes versions dated ahead of the server's clock (as far as the server accepts, or
/// what a fast clock does), then is removed from the workspace, or revoked: their versions
/// arrived before the removal, so every member keeps reading the workspace (before, each
/// member's client refused them as written after the removal, and every command on the
/// workspace failed from then on).
#[test]
fn versions_dated_ahead_do_not_poison_a_workspace_when_their_author_is_removed() {
    for removal in [
        &["workspace", "unshare", "Team", "bob@example.com"][..],
        &["user", "revoke", "bob@example.com"][..],
    ] {
        let (org, _bob, forger, id, version) = team_with_bobs_notes();
        let mut ahead = Forged::new(id, version + 1, empty_file(forger.root()));
        ahead.timestamp = Some(now().plus_micros(4 * 60 * 1_000_000));
        forger.write(vec![ahead]);
        org.alice.ok(removal);
        if removal[0] == "user" {
            // An eviction is taken up again by the same command (nothing left to do here).
            org.alice.ok(removal);
        }
        let listed = org.alice.ok(&["ls", "Team:/"]);
        assert!(listed.contains("notes.txt"), "{removal:?}: {listed}");
        // A member who joins later reads it too.
        let carol = org.member("carol");
        join_user(&org.alice, &carol, "carol@example.com", "Carol", &[]);
        org.alice.share("Team", "carol@example.com", "reader");
        assert!(carol.ok(&["ls", "Team:/"]).contains("notes.txt"));
    }
}

/// The server shows a version of an entry as received before a moment when it had shown Alice
/// an older version as the latest: a version written later and backdated (the way a removed
/// member, holding the old key, could write "before" their removal with the server's help).
/// Alice's client refuses it. The time that passes is simulated: Alice's record of when she
/// last saw version 1 as the latest is moved 20 minutes after Bob's version 2 arrived.
#[test]
fn a_version_backdated_before_what_a_member_already_saw_is_refused() {
    let (org, _bob, forger, id, version) = team_with_bobs_notes();
    forger.write(vec![Forged::new(
        id,
        version + 1,
        empty_file(forger.root()),
    )]);
    let later = now().plus_micros(20 * 60 * 1_000_000).as_micros();
    let db = rusqlite::Connection::open(org.alice.home.join("local.sqlite")).unwrap();
    let moved = db
        .execute(
            "UPDATE seen_versions SET seen_at = ?1 WHERE entry = ?2 AND version = ?3",
            rusqlite::params![later, id.as_bytes(), version],
        )
        .unwrap();
    assert_eq!(moved, 1, "Alice had seen version {version} of the notes");
    drop(db);
    let refused = org.alice.fails(&["get", "Team:/notes.txt", "-"]);
    assert!(refused.contains("backdated"), "{refused}");
    // Nothing of it was taken: Alice still holds version 1.
    let db = rusqlite::Connection::open(org.alice.home.join("local.sqlite")).unwrap();
    let seen: u32 = db
        .query_row(
            "SELECT version FROM seen_versions WHERE entry = ?1",
            [id.as_bytes()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(seen, version);
}

/// Bob, a CONTRIBUTOR, stores as the latest version of his notes bytes that his device sealed
/// and that open for nobody. Every reader steps past that version (showing version 1, naming
/// Bob), a member who never held the file reads it too, history lists the version as one that
/// does not open, and Alice writes over it. Before, every command on the workspace failed on
/// every device that held the file, and nobody could write over it.
#[test]
fn a_version_that_opens_for_nobody_is_stepped_past_and_written_over() {
    let (org, _bob, forger, id, version) = team_with_bobs_notes();
    let other = org.path().join("other.txt");
    std::fs::write(&other, "Alice's other file\n").unwrap();
    org.alice
        .ok(&["put", other.to_str().unwrap(), "Team:/other.txt"]);
    forger.write_unreadable(id, version + 1);

    let listed = org.alice.run(&["ls", "Team:/"]);
    let (stdout, stderr) = (listed.stdout.clone(), listed.stderr.clone());
    assert!(listed.success, "{stderr}");
    assert!(
        stdout.contains("notes.txt") && stdout.contains("other.txt"),
        "{stdout}"
    );
    assert!(
        stderr.contains("does not open") && stderr.contains("bob@example.com"),
        "the version is named with its author: {stderr}"
    );
    assert_eq!(
        org.alice.ok(&["get", "Team:/notes.txt", "-"]),
        "Bob's first notes\n"
    );
    let carol = org.member("carol");
    join_user(&org.alice, &carol, "carol@example.com", "Carol", &[]);
    org.alice.share("Team", "carol@example.com", "reader");
    assert_eq!(
        carol.ok(&["get", "Team:/notes.txt", "-"]),
        "Bob's first notes\n"
    );
    carol.ok(&["sync"]);

    let history = org.alice.run(&["history", "Team:/notes.txt"]);
    assert!(history.success);
    let table = history.stdout.clone();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&(version + 1).to_string()) && l.contains("does not open")),
        "{table}"
    );
    // Restoring the version that does not open is refused; restoring version 1 writes over it.
    let refused = org.alice.fails(&[
        "restore",
        "Team:/notes.txt",
        "--version",
        &(version + 1).to_string(),
    ]);
    assert!(refused.contains("cannot be restored"), "{refused}");
    org.alice.ok(&[
        "restore",
        "Team:/notes.txt",
        "--version",
        &version.to_string(),
    ]);
    let after = carol.run(&["get", "Team:/notes.txt", "-"]);
    assert_eq!(after.stdout.clone(), "Bob's first notes\n");
    assert!(
        !after.stderr.clone().contains("does not open"),
        "written over: {}",
        after.stderr.clone()
    );
    // And an edit writes over a new one as any version.
    forger.write_unreadable(id, version + 3);
    std::fs::write(&other, "Alice's notes now\n").unwrap();
    org.alice
        .ok(&["put", other.to_str().unwrap(), "Team:/notes.txt"]);
    assert_eq!(
        carol.ok(&["get", "Team:/notes.txt", "-"]),
        "Alice's notes now\n"
    );
}

/// A member's device cannot store what it did not seal: the server refuses the write, so a
/// seal that fails at a reader is the server's doing (refused as tampering, see
/// `hostile_files::tampered_manifests_are_refused`).
#[test]
fn the_server_refuses_a_version_its_writer_did_not_seal() {
    let (_org, _bob, forger, id, version) = team_with_bobs_notes();
    let refused = forger.write_with_broken_seal(id, version + 1);
    assert!(
        refused.contains("not sealed by the writing device"),
        "{refused}"
    );
}

/// Bob stores a root version that is a file (genuinely signed), then one that lists an entry
/// never written. The root stays usable: listed as before (the file root stepped past, naming
/// Bob), restored by Alice; the entry never written is named, the rest listed, the command
/// fails, and `rm -r` removes it by name. Before, every listing of the root failed, `rm` of the
/// name failed, and the root could not be restored.
#[test]
fn a_writer_cannot_make_the_root_unusable() {
    let (org, _bob, mut forger, _, _) = team_with_bobs_notes();
    let root = forger.root();
    let first_root = root_version(&org.alice);
    forger.write(vec![Forged::new(root, first_root + 1, empty_file(root))]);
    let listed = org.alice.run(&["ls", "Team:/"]);
    let stderr = listed.stderr.clone();
    assert!(listed.success, "{stderr}");
    assert!(listed.stdout.clone().contains("notes.txt"));
    assert!(stderr.contains("root must be a folder"), "{stderr}");
    org.alice
        .ok(&["restore", "Team:/", "--version", &first_root.to_string()]);
    let listed = org.alice.run(&["ls", "Team:/"]);
    assert!(listed.success);
    assert!(!listed.stderr.clone().contains("root must be a folder"));

    let (notes, _) = forger.entry("/", "notes.txt");
    let ghost = Forger::new_id();
    let children = [("notes.txt", notes), ("ghost", ghost)]
        .into_iter()
        .map(|(name, id)| (name.parse::<EntryName>().unwrap(), id))
        .collect();
    forger.write(vec![Forged::new(
        root,
        root_version(&org.alice) + 1,
        ManifestBody::Folder {
            parent: root,
            children,
        },
    )]);
    let listed = org.alice.run(&["ls", "Team:/"]);
    let stderr = listed.stderr.clone();
    assert!(
        !listed.success,
        "a name the server does not serve fails the listing"
    );
    assert!(listed.stdout.clone().contains("notes.txt"));
    assert!(
        stderr.contains("Team:/ghost") && stderr.contains("left out"),
        "{stderr}"
    );
    let refused = org.alice.fails(&["rm", "Team:/ghost"]);
    assert!(refused.contains("rm -r"), "{refused}");
    org.alice.ok(&["rm", "-r", "Team:/ghost"]);
    let listed = org.alice.ok(&["ls", "Team:/"]);
    assert!(
        listed.contains("notes.txt") && !listed.contains("ghost"),
        "{listed}"
    );
}

/// The version of the root folder the member's client holds now.
fn root_version(member: &Member) -> u32 {
    let (mut client, runtime) = client_of(member);
    runtime.block_on(client.sync_all()).unwrap();
    let context = client.workspace_context_offline("Team").unwrap();
    let db = rusqlite::Connection::open(member.home.join("local.sqlite")).unwrap();
    let root: EntryId = context.realm.into();
    db.query_row(
        "SELECT base_version FROM entries WHERE realm = ?1 AND entry = ?2",
        rusqlite::params![context.realm.as_bytes(), root.as_bytes()],
        |r| r.get(0),
    )
    .unwrap()
}

/// Bob, a MANAGER of `Team`, certifies a new key and hands it to nobody (or to himself only):
/// the server refuses the rotation, since whatever he then wrote with that key would be
/// unreadable for Alice for good. Before, the rotation was taken and every other member's
/// commands on the workspace failed on his versions ("does not hold key 2").
#[test]
fn a_key_rotation_that_leaves_a_member_without_the_key_is_refused() {
    let w = world();
    let key = SecretKey::generate(&mut OsRng);
    let rotation = RealmCertificate::KeyRotation(KeyRotationCertificate {
        author: w.bob_keys.device_id,
        timestamp: now(),
        realm: w.team,
        key_index: 2,
        key_check: key_check(&key, &w.team, 2),
    })
    .sign(&w.bob_keys.signing_key());
    let (status, error) = post_realm_certificate(&w.bob_keys, w.team, rotation, Vec::new());
    let error = error.unwrap_or_else(|| panic!("accepted with status {status}"));
    assert_eq!(error.code, ErrorCode::MalformedRequest, "{}", error.message);
    assert!(
        error.message.contains("must reach every member"),
        "{}",
        error.message
    );
    // An honest rotation (which messages every member) still goes through.
    w.org
        .alice
        .ok(&["workspace", "unshare", "Team", "bob@example.com"]);
    assert!(w.org.alice.ok(&["workspace", "list"]).contains("Team"));
}

/// Bob, a MANAGER of `Team`, rotates its key and hands Carol a message that does not work
/// (bytes that open for nobody, or a key that fails its check value), each sealed by his device,
/// then writes the root with the new key. Carol's commands keep working: the root is shown as
/// before, naming Bob; the rest reads; she cannot write with a key she lacks, nor, once Alice
/// rotates again, write over the root she cannot read (Alice would lose Bob's file). Shared
/// again, Carol is handed every key, reads Bob's version and writes. Before, every command of
/// Carol's on the workspace failed ("does not hold key 2"), with nothing to tell Bob's doing
/// from the server's.
#[test]
fn a_key_handed_out_that_does_not_work_is_its_senders_doing_and_stepped_past() {
    for how in [BadKeyMessage::Garbage, BadKeyMessage::WrongKey] {
        let w = world();
        w.org
            .alice
            .share("Team", "carol@example.com", "contributor");
        let plan = w.org.path().join("plan.txt");
        std::fs::write(&plan, "the plan\n").unwrap();
        w.org
            .alice
            .ok(&["put", plan.to_str().unwrap(), "Team:/plan.txt"]);
        assert!(w.carol.ok(&["ls", "Team:/"]).contains("plan.txt"));

        let mut forger = Forger::new(&w.bob, "Team");
        assert_eq!(
            forger.rotate_handing_out(&["carol@example.com"], how),
            None,
            "{how:?}"
        );
        let (plan_id, _) = forger.entry("/", "plan.txt");
        let root = forger.root();
        let bobs = Forger::new_id();
        let children = [("plan.txt", plan_id), ("bobs.txt", bobs)]
            .into_iter()
            .map(|(name, id)| (name.parse::<EntryName>().unwrap(), id))
            .collect();
        forger.write(vec![
            Forged::new(bobs, 1, empty_file(root)),
            Forged::new(
                root,
                root_version(&w.org.alice) + 1,
                ManifestBody::Folder {
                    parent: root,
                    children,
                },
            ),
        ]);
        assert!(w.org.alice.ok(&["ls", "Team:/"]).contains("bobs.txt"));

        let listed = w.carol.run(&["ls", "Team:/"]);
        let (stdout, stderr) = (listed.stdout.clone(), listed.stderr.clone());
        assert!(listed.success, "{how:?}: {stderr}");
        assert!(
            stdout.contains("plan.txt") && !stdout.contains("bobs.txt"),
            "{stdout}"
        );
        assert!(
            stderr.contains("bob@example.com") && stderr.contains("does not work"),
            "{how:?}: Bob is named: {stderr}"
        );
        assert_eq!(w.carol.ok(&["get", "Team:/plan.txt", "-"]), "the plan\n");
        let history = w.carol.run(&["history", "Team:/"]);
        assert!(history.success, "{}", history.stderr.clone());
        assert!(history.stdout.clone().contains("does not open"));

        let note = w.org.path().join("note.txt");
        std::fs::write(&note, "Carol's note\n").unwrap();
        let refused = w
            .carol
            .fails(&["put", note.to_str().unwrap(), "Team:/note.txt"]);
        assert!(refused.contains("does not work"), "{refused}");
        // Alice removes Bob (a rotation that reaches Carol): Carol holds the current key, and
        // still does not write over the root version she cannot read.
        w.org
            .alice
            .ok(&["workspace", "unshare", "Team", "bob@example.com"]);
        let refused = w
            .carol
            .fails(&["put", note.to_str().unwrap(), "Team:/note.txt"]);
        assert!(
            refused.contains("cannot read") && refused.contains("bob@example.com"),
            "{refused}"
        );
        assert!(w.org.alice.ok(&["ls", "Team:/"]).contains("bobs.txt"));
        // The root held back does not hold back the rest: a new content of plan.txt goes up
        // (the command still fails for the root).
        let plan2 = w.org.path().join("plan2.txt");
        std::fs::write(&plan2, "Carol's plan\n").unwrap();
        let refused = w
            .carol
            .fails(&["put", plan2.to_str().unwrap(), "Team:/plan.txt"]);
        assert!(refused.contains("cannot read"), "{refused}");
        assert_eq!(
            w.org.alice.ok(&["get", "Team:/plan.txt", "-"]),
            "Carol's plan\n"
        );

        // Shared again: every key is handed anew; Carol's pending root (her note, refused above)
        // now uploads over Bob's, as a conflict that merges both.
        w.org
            .alice
            .share("Team", "carol@example.com", "contributor");
        let synced = w.carol.run(&["sync"]);
        assert!(synced.success, "{}", synced.stderr.clone());
        assert!(!synced.stderr.clone().contains("does not work"));
        let listed = w.carol.run(&["ls", "Team:/"]);
        assert!(listed.success, "{}", listed.stderr.clone());
        assert!(!listed.stderr.clone().contains("does not work"));
        let listed = listed.stdout.clone();
        assert!(
            ["plan.txt", "bobs.txt", "note.txt"]
                .iter()
                .all(|name| listed.contains(name))
                && !listed.contains("pending"),
            "{listed}"
        );
        let seen = w.org.alice.ok(&["ls", "Team:/"]);
        assert!(
            ["plan.txt", "bobs.txt", "note.txt"]
                .iter()
                .all(|name| seen.contains(name)),
            "{seen}"
        );
    }
}

/// A MANAGER's device cannot hand out a message it did not seal, nor one sealed for another
/// key index or workspace: the server refuses them, so a message whose seal fails at its
/// recipient is the server's doing, never a member's to be blamed for.
#[test]
fn the_server_refuses_a_key_message_its_sender_did_not_seal() {
    let w = world();
    w.org.alice.share("Team", "carol@example.com", "reader");
    let key = SecretKey::generate(&mut OsRng);
    let rotation = || {
        RealmCertificate::KeyRotation(KeyRotationCertificate {
            author: w.bob_keys.device_id,
            timestamp: now(),
            realm: w.team,
            key_index: 2,
            key_check: key_check(&key, &w.team, 2),
        })
        .sign(&w.bob_keys.signing_key())
    };
    let identity = {
        let (mut client, runtime) = client_of(&w.bob);
        runtime.block_on(client.refresh()).unwrap().clone()
    };
    let sealed_for = |email: &str, topic: MessageTopic| {
        let user = identity
            .users()
            .find(|u| u.certificate.email.as_str() == email)
            .unwrap()
            .certificate
            .clone();
        let message = Message {
            author: w.bob_keys.device_id,
            timestamp: now(),
            recipient: user.user_id,
            body: MessageBody::WorkspaceKey {
                realm: w.team,
                key: IndexedKey {
                    index: 2,
                    key: key.clone(),
                },
            },
        };
        (
            user.user_id,
            seal_message(
                &message,
                topic,
                &w.bob_keys.signing_key(),
                &user.public_key,
                &mut OsRng,
            ),
        )
    };
    let first_check = Forger::new(&w.bob, "Team").key_check();
    let right = MessageTopic {
        realm: w.team,
        key_index: 2,
        key_checks: key_checks_digest(&w.team, 2, [&first_check, &key_check(&key, &w.team, 2)]),
    };
    let send = |tamper: &dyn Fn(&mut Vec<u8>), topic: MessageTopic| {
        let messages = ["alice@example.com", "carol@example.com"]
            .iter()
            .map(|email| {
                let (recipient, mut sealed) = sealed_for(email, topic);
                if *email == "carol@example.com" {
                    tamper(&mut sealed);
                }
                OutgoingMessage {
                    recipient,
                    sealed: ByteBuf::from(sealed),
                }
            })
            .collect();
        post_realm_certificate(&w.bob_keys, w.team, rotation(), messages)
    };
    let flip_last = |sealed: &mut Vec<u8>| {
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
    };
    let (status, error) = send(&flip_last, right);
    let error = error.unwrap_or_else(|| panic!("a broken seal was accepted ({status})"));
    assert!(
        error.message.contains("not sealed by the sending device"),
        "{}",
        error.message
    );
    let (status, error) = send(
        &|_| {},
        MessageTopic {
            key_index: 3,
            ..right
        },
    );
    let error = error.unwrap_or_else(|| panic!("another key index was accepted ({status})"));
    assert!(error.message.contains("key index 3"), "{}", error.message);
    // Sealed with check values other than the certificates': a recipient would blame Bob
    // for a split view of the certificates, so the server refuses it.
    let (status, error) = send(
        &|_| {},
        MessageTopic {
            key_checks: Digest::of(b"other check values"),
            ..right
        },
    );
    let error = error.unwrap_or_else(|| panic!("other check values were accepted ({status})"));
    assert!(
        error.message.contains("key check values other than"),
        "{}",
        error.message
    );
    // Sealed right, it goes through.
    let (status, error) = send(&|_| {}, right);
    assert!(error.is_none(), "{status}: {error:?}");
}
