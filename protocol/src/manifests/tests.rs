use super::*;
use crate::certificates::UserProfile;
use crate::testing::{Member, Org};
use crate::workspace::{
    KeyRotationCertificate, RealmCertificate, RoleCertificate, WorkspaceRole, key_check,
};
use rand_core::OsRng;

struct Setup {
    org: Org,
    alice: Member,
    bob: Member,
    realm: RealmId,
    chain: RealmChain,
    key: SecretKey,
}

/// A workspace of Alice (OWNER) where Bob is READER.
fn setup() -> Setup {
    let (mut org, alice) = Org::bootstrap();
    let bob = org
        .invite(&alice, "bob@example.com", UserProfile::Standard)
        .unwrap();
    let realm = RealmId::generate(&mut OsRng);
    let key = SecretKey::generate(&mut OsRng);
    let mut chain = RealmChain::new(realm);
    for certificate in [
        RealmCertificate::Role(RoleCertificate {
            author: alice.device_id,
            timestamp: org.tick(),
            realm,
            user_id: alice.user_id,
            role: Some(WorkspaceRole::Owner),
        }),
        RealmCertificate::KeyRotation(KeyRotationCertificate {
            author: alice.device_id,
            timestamp: org.tick(),
            realm,
            key_index: 1,
            key_check: key_check(&key, &realm, 1),
        }),
        RealmCertificate::Role(RoleCertificate {
            author: alice.device_id,
            timestamp: org.tick(),
            realm,
            user_id: bob.user_id,
            role: Some(WorkspaceRole::Reader),
        }),
    ] {
        chain
            .add(&org.chain, &certificate.sign(&alice.key), org.now())
            .unwrap();
    }
    Setup {
        org,
        alice,
        bob,
        realm,
        chain,
        key,
    }
}

impl Setup {
    /// Alice, as a value apart from the setup (which `file` borrows mutably).
    fn alice_again(&self) -> Member {
        Member {
            user_id: self.alice.user_id,
            device_id: self.alice.device_id,
            key: self.alice.key.clone(),
        }
    }
}

fn file(s: &mut Setup, author: &Member, id: EntryId, version: u32) -> Manifest {
    Manifest {
        author: author.device_id,
        timestamp: s.org.tick(),
        realm: s.realm,
        id,
        version,
        body: ManifestBody::File {
            parent: s.realm.into(),
            size: 3,
            block_size: 4 << 20,
            blocks: vec![],
            index: vec![],
        },
    }
}

fn coordinates(m: &Manifest) -> VlobCoordinates {
    VlobCoordinates {
        realm: m.realm,
        id: m.id,
        version: m.version,
        key_index: 1,
        author: m.author,
        timestamp: m.timestamp,
        received: m.timestamp,
    }
}

#[test]
fn round_trip_with_every_check() {
    let mut s = setup();
    let id = EntryId::generate(&mut OsRng);
    let alice = s.alice_again();
    let m = file(&mut s, &alice, id, 1);
    let blob = seal_manifest(&m, &s.alice.key, &s.key, 1, &mut OsRng);
    let opened = open_manifest(
        &blob,
        &coordinates(&m),
        &s.key,
        &s.org.chain,
        WriteAuthority::Workspace(&s.chain),
    )
    .unwrap();
    assert_eq!(opened, m);
}

#[test]
fn swapped_replayed_or_misattributed_manifests_are_refused() {
    let mut s = setup();
    let alice = s.alice_again();
    let (a, b) = (EntryId::generate(&mut OsRng), EntryId::generate(&mut OsRng));
    let ma = file(&mut s, &alice, a, 1);
    let mb = file(&mut s, &alice, b, 1);
    let blob_a = seal_manifest(&ma, &s.alice.key, &s.key, 1, &mut OsRng);
    let auth = WriteAuthority::Workspace(&s.chain);
    // Served as another entry's manifest: the seal names where it was stored.
    assert_eq!(
        open_manifest(&blob_a, &coordinates(&mb), &s.key, &s.org.chain, auth),
        Err(ManifestError::Unsealed)
    );
    // Served as version 2 of the same entry.
    let mut v2 = coordinates(&ma);
    v2.version = 2;
    assert_eq!(
        open_manifest(&blob_a, &v2, &s.key, &s.org.chain, auth),
        Err(ManifestError::Unsealed)
    );
    // Served under another key index.
    let mut other_index = coordinates(&ma);
    other_index.key_index = 2;
    assert_eq!(
        open_manifest(&blob_a, &other_index, &s.key, &s.org.chain, auth),
        Err(ManifestError::Unsealed)
    );
    // The server reports another author or time.
    let mut author = coordinates(&ma);
    author.author = s.bob.device_id;
    assert_eq!(
        open_manifest(&blob_a, &author, &s.key, &s.org.chain, auth),
        Err(ManifestError::Unsealed)
    );
    let mut time = coordinates(&ma);
    time.timestamp = time.timestamp.plus_micros(1);
    assert_eq!(
        open_manifest(&blob_a, &time, &s.key, &s.org.chain, auth),
        Err(ManifestError::Unsealed)
    );
    // A flipped bit.
    let mut flipped = blob_a.clone();
    flipped[40] ^= 1;
    assert_eq!(
        open_manifest(&flipped, &coordinates(&ma), &s.key, &s.org.chain, auth),
        Err(ManifestError::Unsealed)
    );
}

/// Bytes sealed by a member's device that do not open: refused as that member's doing when
/// they could write, as not allowed when they could not.
#[test]
fn sealed_versions_that_do_not_open_are_their_authors_doing() {
    let mut s = setup();
    let alice = s.alice_again();
    let id = EntryId::generate(&mut OsRng);
    let m = file(&mut s, &alice, id, 1);
    let unreadable = |s: &Setup, blob: &[u8], at: &VlobCoordinates| {
        let auth = WriteAuthority::Workspace(&s.chain);
        match open_manifest(blob, at, &s.key, &s.org.chain, auth) {
            Err(ManifestError::Unreadable {
                version,
                device,
                user,
                reason,
            }) => {
                assert_eq!(
                    (version, device, user),
                    (at.version, at.author, s.alice.user_id)
                );
                reason
            }
            other => panic!("expected Unreadable, got {other:?}"),
        }
    };
    let check = key_check(&s.key, &s.realm, 1);
    let garbage = seal_ciphertext(&coordinates(&m), &check, &[7u8; 100], &s.alice.key);
    assert!(unreadable(&s, &garbage, &coordinates(&m)).contains("does not decrypt"));

    // Encrypted for another version, sealed for this one.
    let mut other = m.clone();
    other.version = 2;
    let sealed_other = seal_manifest(&other, &s.alice.key, &s.key, 1, &mut OsRng);
    let moved = seal_ciphertext(
        &coordinates(&m),
        &check,
        &sealed_other[SEALED_HEADER_BYTES..],
        &s.alice.key,
    );
    assert!(unreadable(&s, &moved, &coordinates(&m)).contains("does not decrypt"));

    // A root that is not a folder.
    let realm = s.realm;
    let root = file(&mut s, &alice, realm.into(), 1);
    let blob = seal_manifest(&root, &s.alice.key, &s.key, 1, &mut OsRng);
    assert!(unreadable(&s, &blob, &coordinates(&root)).contains("root must be a folder"));

    // Bob, a READER, sealing garbage: not his to write at all.
    let bob = Member {
        user_id: s.bob.user_id,
        device_id: s.bob.device_id,
        key: s.bob.key.clone(),
    };
    let mb = file(&mut s, &bob, id, 2);
    let garbage = seal_ciphertext(&coordinates(&mb), &check, &[7u8; 100], &s.bob.key);
    let auth = WriteAuthority::Workspace(&s.chain);
    assert_eq!(
        open_manifest(&garbage, &coordinates(&mb), &s.key, &s.org.chain, auth),
        Err(ManifestError::NotAllowed(s.bob.user_id))
    );
    // Encrypted with another key of the same index (a split history of certificates): not
    // the author's doing, and refused as such.
    let other_key = SecretKey::generate(&mut OsRng);
    let split = seal_manifest(&m, &s.alice.key, &other_key, 1, &mut OsRng);
    assert_eq!(
        open_manifest(&split, &coordinates(&m), &s.key, &s.org.chain, auth),
        Err(ManifestError::OtherKey(1))
    );
    // Sealed for the certified key, read with another key of that index this device holds:
    // not the author's doing either.
    let honest = seal_manifest(&m, &s.alice.key, &s.key, 1, &mut OsRng);
    assert_eq!(
        open_manifest(&honest, &coordinates(&m), &other_key, &s.org.chain, auth),
        Err(ManifestError::OtherKey(1))
    );
    // Too short to hold a seal.
    assert_eq!(
        open_manifest(&[0u8; 10], &coordinates(&m), &s.key, &s.org.chain, auth),
        Err(ManifestError::Unsealed)
    );
}

#[test]
fn readers_revoked_and_outside_devices_cannot_author() {
    let mut s = setup();
    let bob = Member {
        user_id: s.bob.user_id,
        device_id: s.bob.device_id,
        key: s.bob.key.clone(),
    };
    let m = file(&mut s, &bob, EntryId::generate(&mut OsRng), 1);
    let blob = seal_manifest(&m, &s.bob.key, &s.key, 1, &mut OsRng);
    assert_eq!(
        open_manifest(
            &blob,
            &coordinates(&m),
            &s.key,
            &s.org.chain,
            WriteAuthority::Workspace(&s.chain)
        ),
        Err(ManifestError::NotAllowed(s.bob.user_id))
    );
    // A device outside the organization.
    let outsider = Member {
        user_id: UserId::generate(&mut OsRng),
        device_id: DeviceId::generate(&mut OsRng),
        key: SigningKey::generate(&mut OsRng),
    };
    let m = file(&mut s, &outsider, EntryId::generate(&mut OsRng), 1);
    let blob = seal_manifest(&m, &outsider.key, &s.key, 1, &mut OsRng);
    assert!(matches!(
        open_manifest(
            &blob,
            &coordinates(&m),
            &s.key,
            &s.org.chain,
            WriteAuthority::Workspace(&s.chain)
        ),
        Err(ManifestError::Author(TrustError::UnknownDevice(_)))
    ));
    // A revoked author, at a time after the revocation.
    let alice = s.alice_again();
    let carol = s
        .org
        .invite(&alice, "carol@example.com", UserProfile::Admin)
        .unwrap();
    s.org.revoke(&alice, carol.user_id).unwrap();
    let m = file(&mut s, &carol, EntryId::generate(&mut OsRng), 1);
    let blob = seal_manifest(&m, &carol.key, &s.key, 1, &mut OsRng);
    assert!(matches!(
        open_manifest(
            &blob,
            &coordinates(&m),
            &s.key,
            &s.org.chain,
            WriteAuthority::Workspace(&s.chain)
        ),
        Err(ManifestError::Author(TrustError::AuthorRevoked { .. }))
    ));
    // In a user's own realm only that user writes.
    let m = file(&mut s, &alice, EntryId::generate(&mut OsRng), 1);
    let blob = seal_manifest(&m, &s.alice.key, &s.key, 1, &mut OsRng);
    assert_eq!(
        open_manifest(
            &blob,
            &coordinates(&m),
            &s.key,
            &s.org.chain,
            WriteAuthority::User(s.bob.user_id)
        ),
        Err(ManifestError::NotAllowed(s.alice.user_id))
    );
}

#[test]
fn names() {
    assert!("notes.txt".parse::<EntryName>().is_ok());
    assert!("é ✓".parse::<EntryName>().is_ok());
    for bad in ["", ".", "..", "a/b", "a\0b"] {
        assert!(bad.parse::<EntryName>().is_err(), "{bad:?}");
    }
    assert!("x".repeat(256).parse::<EntryName>().is_err());
    assert!("x".repeat(255).parse::<EntryName>().is_ok());
    // Decoded (from a manifest or a message) the same checks apply: a name is never a way out of
    // its folder. Controls are allowed in names (file systems allow them); the command line
    // shows them escaped.
    let decodes =
        |text: &str| rmp_serde::from_slice::<EntryName>(&rmp_serde::to_vec(text).unwrap()).is_ok();
    for bad in ["", ".", "..", "a/b", "/", "a\0b"] {
        assert!(!decodes(bad), "{bad:?}");
    }
    assert!(decodes("clear\x1b[2J\u{202e}"));
}

#[test]
fn a_manifest_dated_far_from_its_reception_is_refused() {
    let mut s = setup();
    let alice = s.alice_again();
    let m = file(&mut s, &alice, EntryId::generate(&mut OsRng), 1);
    let blob = seal_manifest(&m, &s.alice.key, &s.key, 1, &mut OsRng);
    let mut late = coordinates(&m);
    late.received = m.timestamp.plus_micros(CLOCK_SKEW_MICROS + 1);
    assert_eq!(
        open_manifest(
            &blob,
            &late,
            &s.key,
            &s.org.chain,
            WriteAuthority::Workspace(&s.chain)
        ),
        Err(ManifestError::OutOfBallpark(OutOfBallpark {
            authored: m.timestamp,
            received: late.received
        }))
    );
}

#[test]
fn a_write_with_a_key_replaced_well_before_is_refused() {
    let mut s = setup();
    let alice = s.alice_again();
    // Key index 2 is certified; a manifest still encrypted with key 1 follows it.
    let new_key = SecretKey::generate(&mut OsRng);
    let rotation = RealmCertificate::KeyRotation(KeyRotationCertificate {
        author: s.alice.device_id,
        timestamp: s.org.tick(),
        realm: s.realm,
        key_index: 2,
        key_check: key_check(&new_key, &s.realm, 2),
    })
    .sign(&s.alice.key);
    let now = s.org.now();
    s.chain.add(&s.org.chain, &rotation, now).unwrap();
    let soon = file(&mut s, &alice, EntryId::generate(&mut OsRng), 1);
    let mut late = file(&mut s, &alice, EntryId::generate(&mut OsRng), 1);
    late.timestamp = late.timestamp.plus_micros(2 * CLOCK_SKEW_MICROS + 1);
    let auth = WriteAuthority::Workspace(&s.chain);
    // Within two clock skews of the rotation, the server may have received the write first.
    let blob = seal_manifest(&soon, &s.alice.key, &s.key, 1, &mut OsRng);
    assert!(open_manifest(&blob, &coordinates(&soon), &s.key, &s.org.chain, auth).is_ok());
    // Later, an honest server would have refused it: the old key is a sign of a server that
    // accepted a stale write or withheld the rotation from the author.
    let blob = seal_manifest(&late, &s.alice.key, &s.key, 1, &mut OsRng);
    assert_eq!(
        open_manifest(&blob, &coordinates(&late), &s.key, &s.org.chain, auth),
        Err(ManifestError::StaleKey {
            used: 1,
            current: 2
        })
    );
    // The new key is fine at any time.
    let blob = seal_manifest(&late, &s.alice.key, &new_key, 2, &mut OsRng);
    let mut with_new_key = coordinates(&late);
    with_new_key.key_index = 2;
    assert!(open_manifest(&blob, &with_new_key, &new_key, &s.org.chain, auth).is_ok());
}

/// A grant dated ahead of its arrival (a fast clock) and a removal dated behind its arrival (a
/// slow clock): what the server accepted from the member between the two arrivals opens for
/// every member, in whichever frame it falls (before, the grantee's first write and the writes
/// made just before the removal arrived were refused by everyone, for good).
#[test]
fn rights_follow_the_servers_order_when_a_certificate_is_dated_away_from_its_arrival() {
    let mut s = setup();
    let minute = 60_000_000;
    let bob = Member {
        user_id: s.bob.user_id,
        device_id: s.bob.device_id,
        key: s.bob.key.clone(),
    };
    let role = |s: &Setup, timestamp, role| {
        RealmCertificate::Role(RoleCertificate {
            author: s.alice.device_id,
            timestamp,
            realm: s.realm,
            user_id: s.bob.user_id,
            role,
        })
        .sign(&s.alice.key)
    };
    let arrived = s.org.tick();
    let grant = role(
        &s,
        arrived.plus_micros(minute),
        Some(WorkspaceRole::Contributor),
    );
    s.chain.add(&s.org.chain, &grant, arrived).unwrap();
    let removal = role(&s, arrived.plus_micros(minute + 1), None);
    let removal_arrived = arrived.plus_micros(3 * minute);
    s.chain
        .add(&s.org.chain, &removal, removal_arrived)
        .unwrap();
    let open_at = |s: &mut Setup, at: Timestamp| {
        let mut m = file(s, &bob, EntryId::generate(&mut OsRng), 1);
        m.timestamp = at;
        let blob = seal_manifest(&m, &bob.key, &s.key, 1, &mut OsRng);
        open_manifest(
            &blob,
            &coordinates(&m),
            &s.key,
            &s.org.chain,
            WriteAuthority::Workspace(&s.chain),
        )
    };
    // Right after the grant arrived, before its date.
    assert!(open_at(&mut s, arrived.plus_micros(1_000)).is_ok());
    // After the removal's date, before it arrived.
    assert!(open_at(&mut s, arrived.plus_micros(2 * minute)).is_ok());
    // After both.
    assert_eq!(
        open_at(&mut s, removal_arrived.plus_micros(1_000)),
        Err(ManifestError::NotAllowed(s.bob.user_id))
    );
}

/// Without the key, every other check still runs: a version a device cannot open for lack of
/// its key is stood in for only if its author really wrote it, sealed for the certified key.
#[test]
fn the_checks_that_need_no_key_refuse_what_the_server_forged() {
    let mut s = setup();
    let alice = s.alice_again();
    let bob = Member {
        user_id: s.bob.user_id,
        device_id: s.bob.device_id,
        key: s.bob.key.clone(),
    };
    let id = EntryId::generate(&mut OsRng);
    let m = file(&mut s, &alice, id, 1);
    let mb = file(&mut s, &bob, id, 1);
    let blob = seal_manifest(&m, &s.alice.key, &s.key, 1, &mut OsRng);
    let auth = WriteAuthority::Workspace(&s.chain);
    let checked = check_sealed_manifest(&blob, &coordinates(&m), &s.org.chain, auth).unwrap();
    assert_eq!(checked.author, s.alice.user_id);
    // Bytes the server made up, or Alice's moved elsewhere: the seal fails.
    let mut flipped = blob.clone();
    flipped[70] ^= 1;
    assert_eq!(
        check_sealed_manifest(&flipped, &coordinates(&m), &s.org.chain, auth).unwrap_err(),
        ManifestError::Unsealed
    );
    // Sealed for a key other than the certified one: a split view of the certificates.
    let other = SecretKey::generate(&mut OsRng);
    let blob_other = seal_manifest(&m, &s.alice.key, &other, 1, &mut OsRng);
    assert_eq!(
        check_sealed_manifest(&blob_other, &coordinates(&m), &s.org.chain, auth).unwrap_err(),
        ManifestError::OtherKey(1)
    );
    // By a READER: not allowed, whatever the key.
    let blob_bob = seal_manifest(&mb, &bob.key, &s.key, 1, &mut OsRng);
    assert_eq!(
        check_sealed_manifest(&blob_bob, &coordinates(&mb), &s.org.chain, auth).unwrap_err(),
        ManifestError::NotAllowed(bob.user_id)
    );
}
