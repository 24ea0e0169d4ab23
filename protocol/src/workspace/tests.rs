use super::*;
use crate::certificates::UserProfile;
use crate::testing::{Member, Org};
use rand_core::OsRng;

struct Setup {
    org: Org,
    alice: Member,
    bob: Member,
    carol: Member,
    realm: RealmId,
    chain: RealmChain,
}

fn role(
    org: &mut Org,
    by: &Member,
    realm: RealmId,
    user: UserId,
    role: Option<WorkspaceRole>,
) -> Vec<u8> {
    RealmCertificate::Role(RoleCertificate {
        author: by.device_id,
        timestamp: org.tick(),
        realm,
        user_id: user,
        role,
    })
    .sign(&by.key)
}

fn rotation(org: &mut Org, by: &Member, realm: RealmId, index: u32) -> Vec<u8> {
    let key = SecretKey::generate(&mut OsRng);
    RealmCertificate::KeyRotation(KeyRotationCertificate {
        author: by.device_id,
        timestamp: org.tick(),
        realm,
        key_index: index,
        key_check: key_check(&key, &realm, index),
    })
    .sign(&by.key)
}

/// Alice creates a workspace (OWNER, key 1); Bob and Carol are STANDARD users, not members.
fn setup() -> Setup {
    let (mut org, alice) = Org::bootstrap();
    let bob = org
        .invite(&alice, "bob@example.com", UserProfile::Standard)
        .unwrap();
    let carol = org
        .invite(&alice, "carol@example.com", UserProfile::Standard)
        .unwrap();
    let realm = RealmId::generate(&mut OsRng);
    let mut chain = RealmChain::new(realm);
    let create = role(
        &mut org,
        &alice,
        realm,
        alice.user_id,
        Some(WorkspaceRole::Owner),
    );
    chain.add(&org.chain, &create, org.now()).unwrap();
    let first_key = rotation(&mut org, &alice, realm, 1);
    chain.add(&org.chain, &first_key, org.now()).unwrap();
    Setup {
        org,
        alice,
        bob,
        carol,
        realm,
        chain,
    }
}

#[test]
fn creation_sharing_and_roles_over_time() {
    let mut s = setup();
    assert_eq!(s.chain.role(&s.alice.user_id), Some(WorkspaceRole::Owner));
    assert_eq!(s.chain.key_index(), 1);
    let before = s.org.tick();
    let share = role(
        &mut s.org,
        &s.alice,
        s.realm,
        s.bob.user_id,
        Some(WorkspaceRole::Reader),
    );
    s.chain.add(&s.org.chain, &share, s.org.now()).unwrap();
    let after = s.org.tick();
    assert_eq!(s.chain.role_at(&s.bob.user_id, before), None);
    assert_eq!(
        s.chain.role_at(&s.bob.user_id, after),
        Some(WorkspaceRole::Reader)
    );
    let promote = role(
        &mut s.org,
        &s.alice,
        s.realm,
        s.bob.user_id,
        Some(WorkspaceRole::Contributor),
    );
    s.chain.add(&s.org.chain, &promote, s.org.now()).unwrap();
    assert_eq!(
        s.chain.role(&s.bob.user_id),
        Some(WorkspaceRole::Contributor)
    );
    assert_eq!(
        s.chain.role_at(&s.bob.user_id, after),
        Some(WorkspaceRole::Reader)
    );
    assert_eq!(s.chain.members().count(), 2);
}

#[test]
fn only_managers_share_and_managers_only_below_them() {
    let mut s = setup();
    // Bob, not a member, cannot share.
    let by_bob = role(
        &mut s.org,
        &s.bob,
        s.realm,
        s.carol.user_id,
        Some(WorkspaceRole::Reader),
    );
    assert!(matches!(
        s.chain.add(&s.org.chain, &by_bob, s.org.now()),
        Err(RealmError::NotAllowed(_))
    ));
    // A CONTRIBUTOR cannot share either.
    let c = role(
        &mut s.org,
        &s.alice,
        s.realm,
        s.bob.user_id,
        Some(WorkspaceRole::Contributor),
    );
    s.chain.add(&s.org.chain, &c, s.org.now()).unwrap();
    let by_bob = role(
        &mut s.org,
        &s.bob,
        s.realm,
        s.carol.user_id,
        Some(WorkspaceRole::Reader),
    );
    assert!(matches!(
        s.chain.add(&s.org.chain, &by_bob, s.org.now()),
        Err(RealmError::NotAllowed(_))
    ));
    // A MANAGER shares READER but cannot make an OWNER or touch the OWNER.
    let m = role(
        &mut s.org,
        &s.alice,
        s.realm,
        s.bob.user_id,
        Some(WorkspaceRole::Manager),
    );
    s.chain.add(&s.org.chain, &m, s.org.now()).unwrap();
    let ok = role(
        &mut s.org,
        &s.bob,
        s.realm,
        s.carol.user_id,
        Some(WorkspaceRole::Reader),
    );
    s.chain.add(&s.org.chain, &ok, s.org.now()).unwrap();
    let owner = role(
        &mut s.org,
        &s.bob,
        s.realm,
        s.carol.user_id,
        Some(WorkspaceRole::Owner),
    );
    assert!(matches!(
        s.chain.add(&s.org.chain, &owner, s.org.now()),
        Err(RealmError::NotAllowed(_))
    ));
    let demote = role(&mut s.org, &s.bob, s.realm, s.alice.user_id, None);
    assert!(matches!(
        s.chain.add(&s.org.chain, &demote, s.org.now()),
        Err(RealmError::NotAllowed(_))
    ));
    // Nobody changes their own role.
    let own = role(
        &mut s.org,
        &s.bob,
        s.realm,
        s.bob.user_id,
        Some(WorkspaceRole::Owner),
    );
    assert_eq!(
        s.chain.add(&s.org.chain, &own, s.org.now()).err(),
        Some(RealmError::OwnRole)
    );
}

#[test]
fn creation_must_be_self_owner_and_keys_go_up_by_one() {
    let mut s = setup();
    let realm = RealmId::generate(&mut OsRng);
    let mut chain = RealmChain::new(realm);
    let bad = role(
        &mut s.org,
        &s.alice,
        realm,
        s.bob.user_id,
        Some(WorkspaceRole::Owner),
    );
    assert_eq!(
        chain.add(&s.org.chain, &bad, s.org.now()).err(),
        Some(RealmError::BadCreation)
    );
    let skip = rotation(&mut s.org, &s.alice, s.realm, 3);
    assert_eq!(
        s.chain.add(&s.org.chain, &skip, s.org.now()).err(),
        Some(RealmError::KeyIndex {
            current: 1,
            found: 3
        })
    );
    let other_realm = rotation(&mut s.org, &s.alice, realm, 2);
    assert_eq!(
        s.chain.add(&s.org.chain, &other_realm, s.org.now()).err(),
        Some(RealmError::WrongRealm)
    );
    let next = rotation(&mut s.org, &s.alice, s.realm, 2);
    s.chain.add(&s.org.chain, &next, s.org.now()).unwrap();
    assert_eq!(s.chain.key_index(), 2);
}

#[test]
fn revoked_users_neither_sign_nor_receive_roles() {
    let mut s = setup();
    let m = role(
        &mut s.org,
        &s.alice,
        s.realm,
        s.bob.user_id,
        Some(WorkspaceRole::Manager),
    );
    s.chain.add(&s.org.chain, &m, s.org.now()).unwrap();
    let bob_id = s.bob.user_id;
    let alice = Member {
        user_id: s.alice.user_id,
        device_id: s.alice.device_id,
        key: s.alice.key.clone(),
    };
    s.org.revoke(&alice, bob_id).unwrap();
    let by_revoked = role(
        &mut s.org,
        &s.bob,
        s.realm,
        s.carol.user_id,
        Some(WorkspaceRole::Reader),
    );
    assert!(matches!(
        s.chain.add(&s.org.chain, &by_revoked, s.org.now()),
        Err(RealmError::Identity(_))
    ));
    let to_revoked = role(
        &mut s.org,
        &s.alice,
        s.realm,
        bob_id,
        Some(WorkspaceRole::Reader),
    );
    assert_eq!(
        s.chain.add(&s.org.chain, &to_revoked, s.org.now()).err(),
        Some(RealmError::BadTarget(bob_id))
    );
    // Removing a revoked member is fine.
    let remove = role(&mut s.org, &s.alice, s.realm, bob_id, None);
    s.chain.add(&s.org.chain, &remove, s.org.now()).unwrap();
}

#[test]
fn tampered_or_forged_certificates_are_refused() {
    let mut s = setup();
    let mut forged = role(
        &mut s.org,
        &s.alice,
        s.realm,
        s.bob.user_id,
        Some(WorkspaceRole::Owner),
    );
    let last = forged.len() - 5;
    forged[last] ^= 1;
    assert!(s.chain.add(&s.org.chain, &forged, s.org.now()).is_err());
    let certificate = RealmCertificate::Role(RoleCertificate {
        author: s.alice.device_id,
        timestamp: s.org.tick(),
        realm: s.realm,
        user_id: s.bob.user_id,
        role: Some(WorkspaceRole::Owner),
    });
    let signed_by_bob = certificate.sign(&s.bob.key);
    assert!(matches!(
        s.chain.add(&s.org.chain, &signed_by_bob, s.org.now()),
        Err(RealmError::Identity(_))
    ));
    let old = RealmCertificate::Role(RoleCertificate {
        author: s.alice.device_id,
        timestamp: s.chain.last_timestamp().unwrap(),
        realm: s.realm,
        user_id: s.bob.user_id,
        role: Some(WorkspaceRole::Reader),
    })
    .sign(&s.alice.key);
    assert_eq!(
        s.chain.add(&s.org.chain, &old, s.org.now()).err(),
        Some(RealmError::TimestampNotIncreasing)
    );
    // A MANAGER's certificate dated in 2100 would freeze the workspace's chain.
    let frozen = RealmCertificate::Role(RoleCertificate {
        author: s.alice.device_id,
        timestamp: Timestamp::from_micros(4_102_444_800_000_000),
        realm: s.realm,
        user_id: s.bob.user_id,
        role: Some(WorkspaceRole::Reader),
    })
    .sign(&s.alice.key);
    assert!(matches!(
        s.chain.add(&s.org.chain, &frozen, s.org.now()).err(),
        Some(RealmError::OutOfBallpark(_))
    ));
}

#[test]
fn key_checks_bind_key_realm_and_index() {
    let key = SecretKey::from_bytes([1; 32]);
    let realm = RealmId::from_bytes([2; 16]);
    assert_eq!(key_check(&key, &realm, 1), key_check(&key, &realm, 1));
    assert_ne!(key_check(&key, &realm, 1), key_check(&key, &realm, 2));
    assert_ne!(
        key_check(&key, &realm, 1),
        key_check(&SecretKey::from_bytes([3; 32]), &realm, 1)
    );
}

/// A removal after the current key leaves a rotation due (the removed member holds that key);
/// the rotation settles it; a member never removed, or removed before, owes none.
#[test]
fn a_removal_after_the_current_key_leaves_a_rotation_due() {
    let mut s = setup();
    let (bob, carol, realm) = (s.bob.user_id, s.carol.user_id, s.realm);
    for user in [bob, carol] {
        let share = role(
            &mut s.org,
            &s.alice,
            realm,
            user,
            Some(WorkspaceRole::Reader),
        );
        s.chain.add(&s.org.chain, &share, s.org.now()).unwrap();
    }
    assert!(!s.chain.removed_since_rotation(&bob));
    let remove = role(&mut s.org, &s.alice, realm, bob, None);
    s.chain.add(&s.org.chain, &remove, s.org.now()).unwrap();
    assert!(s.chain.removed_since_rotation(&bob));
    assert!(!s.chain.removed_since_rotation(&carol));
    let rotate = rotation(&mut s.org, &s.alice, realm, 2);
    s.chain.add(&s.org.chain, &rotate, s.org.now()).unwrap();
    assert!(!s.chain.removed_since_rotation(&bob));
}
