use super::*;
use crate::certificates::SignedCertificate;
use crate::crypto::signing::SigningKey;
use crate::encoding::Encoded;
use crate::testing::Org;
use rand_core::OsRng;

#[test]
fn bootstrap_invite_and_add_device() {
    let (mut org, alice) = Org::bootstrap();
    let bob = org
        .invite(&alice, "bob@example.com", UserProfile::Standard)
        .unwrap();
    // Bob adds his own second device.
    let key = SigningKey::generate(&mut OsRng);
    let second = org.device_cert(Signer::Device(bob.device_id), bob.user_id, &key);
    org.chain
        .add(&Org::sign(second.into(), &bob.key), org.now())
        .unwrap();
    assert_eq!(org.chain.len(), 5);
    assert_eq!(org.chain.user(&bob.user_id).unwrap().devices.len(), 2);
    let emails: Vec<_> = org
        .chain
        .users()
        .map(|u| u.certificate.email.to_string())
        .collect();
    assert_eq!(emails, ["alice@example.com", "bob@example.com"]);
}

#[test]
fn root_key_after_bootstrap_is_refused() {
    let (mut org, _alice) = Org::bootstrap();
    let user = org.user_cert(Signer::Root, "eve@example.com", UserProfile::Admin);
    let root = org.root.clone();
    assert_eq!(
        org.chain.add(&Org::sign(user.into(), &root), org.now()),
        Err(TrustError::RootKeyAfterBootstrap)
    );
}

#[test]
fn first_user_must_be_admin_and_root_signed() {
    let root = SigningKey::generate(&mut OsRng);
    let mut org = Org {
        chain: CertificateChain::new(root.verify_key()),
        root,
        clock: 0,
    };
    let user = org.user_cert(Signer::Root, "a@example.com", UserProfile::Standard);
    let root = org.root.clone();
    assert_eq!(
        org.chain.add(&Org::sign(user.into(), &root), org.now()),
        Err(TrustError::FirstUserNotAdmin)
    );
    // A root certificate signed by another key is a forgery.
    let user = org.user_cert(Signer::Root, "a@example.com", UserProfile::Admin);
    let forger = SigningKey::generate(&mut OsRng);
    assert!(matches!(
        org.chain.add(&Org::sign(user.into(), &forger), org.now()),
        Err(TrustError::BadSignature(_))
    ));
    assert!(org.chain.is_empty());
}

#[test]
fn wrong_signer_is_refused() {
    let (mut org, alice) = Org::bootstrap();
    let user = org.user_cert(
        Signer::Device(alice.device_id),
        "eve@example.com",
        UserProfile::Admin,
    );
    let forger = SigningKey::generate(&mut OsRng);
    assert!(matches!(
        org.chain.add(&Org::sign(user.into(), &forger), org.now()),
        Err(TrustError::BadSignature(_))
    ));
    let user = org.user_cert(
        Signer::Device(DeviceId::generate(&mut OsRng)),
        "eve@example.com",
        UserProfile::Admin,
    );
    assert!(matches!(
        org.chain.add(&Org::sign(user.into(), &forger), org.now()),
        Err(TrustError::UnknownDevice(_))
    ));
}

#[test]
fn standard_users_cannot_invite_or_revoke() {
    let (mut org, alice) = Org::bootstrap();
    let bob = org
        .invite(&alice, "bob@example.com", UserProfile::Standard)
        .unwrap();
    assert_eq!(
        org.invite(&bob, "carol@example.com", UserProfile::Standard)
            .err(),
        Some(TrustError::AuthorNotAdmin(bob.device_id))
    );
    assert_eq!(
        org.revoke(&bob, alice.user_id).err(),
        Some(TrustError::AuthorNotAdmin(bob.device_id))
    );
}

#[test]
fn self_certification_is_refused() {
    let (mut org, alice) = Org::bootstrap();
    let bob = org
        .invite(&alice, "bob@example.com", UserProfile::Standard)
        .unwrap();
    let mut upgrade = org.user_cert(
        Signer::Device(bob.device_id),
        "bob2@example.com",
        UserProfile::Admin,
    );
    upgrade.user_id = bob.user_id;
    assert_eq!(
        org.chain
            .add(&Org::sign(upgrade.into(), &bob.key), org.now()),
        Err(TrustError::SelfCertification(bob.user_id))
    );
}

#[test]
fn revoked_signer_is_refused_and_email_is_freed() {
    let (mut org, alice) = Org::bootstrap();
    let bob = org
        .invite(&alice, "bob@example.com", UserProfile::Admin)
        .unwrap();
    assert_eq!(
        org.invite(&alice, "bob@example.com", UserProfile::Standard)
            .err(),
        Some(TrustError::EmailInUse("bob@example.com".parse().unwrap()))
    );
    org.revoke(&alice, bob.user_id).unwrap();
    assert!(matches!(
        org.invite(&bob, "carol@example.com", UserProfile::Standard),
        Err(TrustError::AuthorRevoked { .. })
    ));
    assert_eq!(
        org.revoke(&alice, bob.user_id).err(),
        Some(TrustError::UserRevoked(bob.user_id))
    );
    let bob_again = org
        .invite(&alice, "bob@example.com", UserProfile::Standard)
        .unwrap();
    assert_ne!(bob_again.user_id, bob.user_id);
    assert_eq!(
        org.chain
            .active_user_by_email(&"bob@example.com".parse().unwrap())
            .unwrap()
            .certificate
            .user_id,
        bob_again.user_id
    );
}

#[test]
fn revoked_users_get_no_new_device_and_cannot_revoke_self() {
    let (mut org, alice) = Org::bootstrap();
    let bob = org
        .invite(&alice, "bob@example.com", UserProfile::Standard)
        .unwrap();
    assert_eq!(
        org.revoke(&alice, alice.user_id).err(),
        Some(TrustError::CannotRevokeSelf)
    );
    org.revoke(&alice, bob.user_id).unwrap();
    let key = SigningKey::generate(&mut OsRng);
    let device = org.device_cert(Signer::Device(alice.device_id), bob.user_id, &key);
    assert_eq!(
        org.chain
            .add(&Org::sign(device.into(), &alice.key), org.now()),
        Err(TrustError::UserRevoked(bob.user_id))
    );
}

#[test]
fn admins_cannot_add_devices_to_established_users() {
    let (mut org, alice) = Org::bootstrap();
    let bob = org
        .invite(&alice, "bob@example.com", UserProfile::Standard)
        .unwrap();
    let key = SigningKey::generate(&mut OsRng);
    let device = org.device_cert(Signer::Device(alice.device_id), bob.user_id, &key);
    assert_eq!(
        org.chain
            .add(&Org::sign(device.into(), &alice.key), org.now()),
        Err(TrustError::ForeignDevice {
            author: alice.device_id,
            user: bob.user_id
        })
    );
}

#[test]
fn timestamps_going_backwards_are_refused() {
    let (mut org, alice) = Org::bootstrap();
    let mut user = org.user_cert(
        Signer::Device(alice.device_id),
        "bob@example.com",
        UserProfile::Standard,
    );
    // Within the ballpark of its reception, but not after the last certificate.
    user.timestamp = org.chain.last_timestamp().unwrap();
    assert!(matches!(
        org.chain
            .add(&Org::sign(user.into(), &alice.key), org.now()),
        Err(TrustError::TimestampNotIncreasing { .. })
    ));
}

#[test]
fn certificates_dated_far_from_their_reception_are_refused() {
    let (mut org, alice) = Org::bootstrap();
    let skew = crate::time::CLOCK_SKEW_MICROS;
    // Dated in 2100 (it would freeze the chain: every later certificate must be later still),
    // then just outside the window either way.
    for offset in [None, Some(skew + 1), Some(-skew - 1)] {
        let mut user = org.user_cert(
            Signer::Device(alice.device_id),
            "eve@example.com",
            UserProfile::Standard,
        );
        let received = org.now();
        let authored = match offset {
            Some(offset) => received.plus_micros(offset),
            None => Timestamp::from_micros(4_102_444_800_000_000),
        };
        user.timestamp = authored;
        assert_eq!(
            org.chain
                .add(&Org::sign(user.into(), &alice.key), received)
                .err(),
            Some(TrustError::OutOfBallpark(crate::time::OutOfBallpark {
                authored,
                received
            }))
        );
    }
    // A certificate dated a little before its reception (a slow clock) is fine.
    let mut user = org.user_cert(
        Signer::Device(alice.device_id),
        "eve@example.com",
        UserProfile::Standard,
    );
    let received = user.timestamp.plus_micros(skew);
    user.timestamp = user.timestamp.plus_micros(1);
    org.chain
        .add(&Org::sign(user.into(), &alice.key), received)
        .unwrap();
}

#[test]
fn tampered_content_is_refused() {
    let (mut org, alice) = Org::bootstrap();
    let user = org.user_cert(
        Signer::Device(alice.device_id),
        "bob@example.com",
        UserProfile::Standard,
    );
    let mut signed = SignedCertificate::sign(&user.clone().into(), &alice.key);
    let mut tampered = user;
    tampered.profile = UserProfile::Admin;
    signed.content = Certificate::from(tampered).encode();
    assert!(matches!(
        org.chain.add(&signed.encode(), org.now()),
        Err(TrustError::BadSignature(_))
    ));
    assert!(matches!(
        org.chain.add(b"\x93garbage", org.now()),
        Err(TrustError::Malformed(_))
    ));
    assert_eq!(org.chain.len(), 2);
}
