//! Test fixtures shared by the unit tests of this crate: an organization with a root key, an
//! identity chain and members that can sign.

use crate::certificates::*;
use crate::crypto::sealed_box::PrivateKey;
use crate::crypto::signing::SigningKey;
use crate::encoding::Encoded;
use crate::ids::{DeviceId, UserId};
use crate::time::Timestamp;
use crate::trust::{CertificateChain, TrustError};
use rand_core::OsRng;

pub(crate) struct Member {
    pub(crate) user_id: UserId,
    pub(crate) device_id: DeviceId,
    pub(crate) key: SigningKey,
}

pub(crate) struct Org {
    pub(crate) root: SigningKey,
    pub(crate) chain: CertificateChain,
    pub(crate) clock: i64,
}

impl Org {
    pub(crate) fn tick(&mut self) -> Timestamp {
        self.clock += 1_000;
        Timestamp::from_micros(self.clock)
    }

    /// The fixture's clock: when the "server" receives what was just signed.
    pub(crate) fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.clock)
    }

    pub(crate) fn sign(cert: Certificate, key: &SigningKey) -> Vec<u8> {
        SignedCertificate::sign(&cert, key).encode()
    }

    pub(crate) fn user_cert(
        &mut self,
        author: Signer,
        email: &str,
        profile: UserProfile,
    ) -> UserCertificate {
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

    pub(crate) fn device_cert(
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

    pub(crate) fn bootstrap() -> (Org, Member) {
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
        let now = org.now();
        org.chain
            .add(&Self::sign(user.into(), &org.root), now)
            .unwrap();
        org.chain
            .add(&Self::sign(device.into(), &org.root), now)
            .unwrap();
        (org, alice)
    }

    pub(crate) fn invite(
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
        let now = self.now();
        self.chain.add(&Self::sign(user.into(), &by.key), now)?;
        self.chain.add(&Self::sign(device.into(), &by.key), now)?;
        Ok(member)
    }

    pub(crate) fn revoke(
        &mut self,
        by: &Member,
        user_id: UserId,
    ) -> Result<Certificate, TrustError> {
        let cert = RevokedUserCertificate {
            author: Signer::Device(by.device_id),
            timestamp: self.tick(),
            user_id,
        };
        let now = self.now();
        self.chain.add(&Self::sign(cert.into(), &by.key), now)
    }
}
