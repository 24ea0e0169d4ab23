use super::*;
use crate::certificates::SignedCertificate;
use crate::crypto::sealed_box::PrivateKey;
use crate::crypto::signing::SigningKey;
use crate::encoding::Encoded;
use rand_core::OsRng;

struct Member {
    user_id: UserId,
    device_id: DeviceId,
    key: SigningKey,
}

struct Org {
    root: SigningKey,
    chain: CertificateChain,
    clock: i64,
}

impl Org {
    fn tick(&mut self) -> Timestamp {
        self.clock += 1_000;
        Timestamp::from_micros(self.clock)
    }

    fn sign(cert: Certificate, key: &SigningKey) -> Vec<u8> {
        SignedCertificate::sign(&cert, key).encode()
    }

    fn user_cert(&mut self, author: Signer, email: &str, profile: UserProfile) -> UserCertificate {
        UserCertificate {
            author,
            timestamp: self.tick(),
            user_id: UserId::generate(&mut OsRng),
            email: email.parse().unwrap(),
            human_name: email.split('@').next().unwrap().parse().unwrap(),
            public_key: PrivateKey::generate(&mut OsRng).public_key(),
            profile,
        }
    }

    fn device_cert(
        &mut self,
        author: Signer,
        user_id: UserId,
        key: &SigningKey,
    ) -> DeviceCertificate {
        DeviceCertificate {
            author,
            timestamp: self.tick(),
            user_id,
            device_id: DeviceId::generate(&mut OsRng),
            device_label: "laptop".parse().unwrap(),
            verify_key: key.verify_key(),
        }
    }

    fn bootstrap() -> (Org, Member) {
        let root = SigningKey::generate(&mut OsRng);
        let mut org = Org {
            chain: CertificateChain::new(root.verify_key()),
            root,
            clock: 1_700_000_000_000_000,
        };
        let user = org.user_cert(Signer::Root, "alice@example.com", UserProfile::Admin);
        let key = SigningKey::generate(&mut OsRng);
        let device = org.device_cert(Signer::Root, user.user_id, &key);
        let alice = Member {
            user_id: user.user_id,
            device_id: device.device_id,
            key,
        };
        org.chain.add(&Self::sign(user.into(), &org.root)).unwrap();
        org.chain
            .add(&Self::sign(device.into(), &org.root))
            .unwrap();
        (org, alice)
    }

    fn invite(
        &mut self,
        by: &Member,
        email: &str,
        profile: UserProfile,
    ) -> Result<Member, TrustError> {
        let user = self.user_cert(Signer::Device(by.device_id), email, profile);
        let key = SigningKey::generate(&mut OsRng);
        let device = self.device_cert(Signer::Device(by.device_id), user.user_id, &key);
        let member = Member {
            user_id: user.user_id,
            device_id: device.device_id,
            key,
        };
        self.chain.add(&Self::sign(user.into(), &by.key))?;
        self.chain.add(&Self::sign(device.into(), &by.key))?;
        Ok(member)
    }

    fn revoke(&mut self, by: &Member, user_id: UserId) -> Result<Certificate, TrustError> {
        let cert = RevokedUserCertificate {
            author: Signer::Device(by.device_id),
            timestamp: self.tick(),
            user_id,
        };
        self.chain.add(&Self::sign(cert.into(), &by.key))
    }
}

#[test]
fn bootstrap_invite_and_add_device() {
    let (mut org, alice) = Org::bootstrap();
    let bob = org
        .invite(&alice, "bob@example.com", UserProfile::Standard)
        .unwrap();
    // Bob adds his own second device.
    let key = SigningKey::generate(&mut OsRng);
    let second = org.device_cert(Signer::Device(bob.device_id), bob.user_id, &key);
    org.chain.add(&Org::sign(second.into(), &bob.key)).unwrap();
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
        org.chain.add(&Org::sign(user.into(), &root)),
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
        org.chain.add(&Org::sign(user.into(), &root)),
        Err(TrustError::FirstUserNotAdmin)
    );
    // A root certificate signed by another key is a forgery.
    let user = org.user_cert(Signer::Root, "a@example.com", UserProfile::Admin);
    let forger = SigningKey::generate(&mut OsRng);
    assert!(matches!(
        org.chain.add(&Org::sign(user.into(), &forger)),
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
        org.chain.add(&Org::sign(user.into(), &forger)),
        Err(TrustError::BadSignature(_))
    ));
    let user = org.user_cert(
        Signer::Device(DeviceId::generate(&mut OsRng)),
        "eve@example.com",
        UserProfile::Admin,
    );
    assert!(matches!(
        org.chain.add(&Org::sign(user.into(), &forger)),
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
        org.chain.add(&Org::sign(upgrade.into(), &bob.key)),
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
        org.chain.add(&Org::sign(device.into(), &alice.key)),
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
        org.chain.add(&Org::sign(device.into(), &alice.key)),
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
    user.timestamp = Timestamp::from_micros(5);
    assert!(matches!(
        org.chain.add(&Org::sign(user.into(), &alice.key)),
        Err(TrustError::TimestampNotIncreasing { .. })
    ));
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
        org.chain.add(&signed.encode()),
        Err(TrustError::BadSignature(_))
    ));
    assert!(matches!(
        org.chain.add(b"\x93garbage"),
        Err(TrustError::Malformed(_))
    ));
    assert_eq!(org.chain.len(), 2);
}
