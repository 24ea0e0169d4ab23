//! Validating an organization's identity chain from its certificates, as a new device does:
//! an organization of 1,000 users, each with one device (2,000 signed certificates: the root
//! bootstraps the first ADMIN, who adds everyone else).
//!
//! Run: `cargo bench -p strongroom-benches --bench chain`

use criterion::{Criterion, criterion_group, criterion_main};
use rand_core::OsRng;
use strongroom_protocol::certificates::{
    Certificate, DeviceCertificate, SignedCertificate, Signer, UserCertificate, UserProfile,
};
use strongroom_protocol::crypto::sealed_box::PrivateKey;
use strongroom_protocol::crypto::signing::SigningKey;
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::ids::{DeviceId, UserId};
use strongroom_protocol::time::Timestamp;
use strongroom_protocol::trust::CertificateChain;

const USERS: usize = 1000;

/// The signed certificates of an organization of [`USERS`] users, in chain order, each with
/// the time the server received it.
fn organization() -> (SigningKey, Vec<(Vec<u8>, Timestamp)>) {
    let root = SigningKey::generate(&mut OsRng);
    let mut clock = 1_800_000_000_000_000i64;
    let mut certificates = Vec::with_capacity(USERS * 2);
    let mut admin: Option<(DeviceId, SigningKey)> = None;
    for n in 0..USERS {
        let (author, signer) = match &admin {
            None => (Signer::Root, root.clone()),
            Some((device, key)) => (Signer::Device(*device), key.clone()),
        };
        clock += 1_000;
        let user = UserCertificate {
            author,
            timestamp: Timestamp::from_micros(clock),
            user_id: UserId::generate(&mut OsRng),
            email: format!("user{n}@example.com").parse().expect("an email"),
            human_name: format!("User {n}").parse().expect("a name"),
            public_key: PrivateKey::generate(&mut OsRng).public_key(),
            profile: if n == 0 {
                UserProfile::Admin
            } else {
                UserProfile::Standard
            },
        };
        let device_key = SigningKey::generate(&mut OsRng);
        clock += 1_000;
        let device = DeviceCertificate {
            author,
            timestamp: Timestamp::from_micros(clock),
            user_id: user.user_id,
            device_id: DeviceId::generate(&mut OsRng),
            device_label: "laptop".parse().expect("a label"),
            verify_key: device_key.verify_key(),
        };
        let device_id = device.device_id;
        for certificate in [Certificate::from(user), Certificate::from(device)] {
            let received = certificate.timestamp();
            certificates.push((
                SignedCertificate::sign(&certificate, &signer).encode(),
                received,
            ));
        }
        if admin.is_none() {
            admin = Some((device_id, device_key));
        }
    }
    (root, certificates)
}

fn validate(c: &mut Criterion) {
    let (root, certificates) = organization();
    let chain = CertificateChain::from_certificates(
        root.verify_key(),
        certificates.iter().map(|(c, t)| (c.as_slice(), *t)),
    )
    .expect("a valid chain");
    assert_eq!(chain.len(), (USERS * 2) as u64);
    c.bench_function("identity chain of 1,000 users: validate", |b| {
        b.iter(|| {
            CertificateChain::from_certificates(
                root.verify_key(),
                certificates.iter().map(|(c, t)| (c.as_slice(), *t)),
            )
            .expect("a valid chain")
        })
    });
}

criterion_group!(benches, validate);
criterion_main!(benches);
