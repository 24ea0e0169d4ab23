//! Forged certificates, refused with a typed error by the server (when a device uploads them)
//! and by every client's own validation (when a hostile server serves them).

use std::sync::Arc;

use rand_core::OsRng;
use serde_bytes::ByteBuf;
use strongroom_engine::device_file::DeviceKeys;
use strongroom_protocol::certificates::{
    Certificate, DeviceCertificate, RevokedUserCertificate, SignedCertificate, Signer,
    UserCertificate, UserProfile,
};
use strongroom_protocol::crypto::sealed_box::PrivateKey;
use strongroom_protocol::crypto::signing::SigningKey;
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::ids::{DeviceId, UserId};
use strongroom_protocol::time::Timestamp;
use strongroom_protocol::wire::{
    CertificatesResponse, ErrorCode, ReceivedCertificate, UploadCertificateRequest,
};
use strongroom_testkit::raw::{SignedRequest, bootstrap_keeping_root, keys, now};
use strongroom_testkit::scenario::join_user;
use strongroom_testkit::{Member, Server, TamperingProxy};

struct World {
    proxy: TamperingProxy,
    _server: Server,
    _dir: tempfile::TempDir,
    root: SigningKey,
    alice: Member,
    alice_keys: DeviceKeys,
    bob_keys: DeviceKeys,
    dave_keys: DeviceKeys,
}

/// Alice (ADMIN, and the test keeps the root key), Bob (STANDARD), Dave (ADMIN, revoked), all
/// behind a proxy that can play the hostile server.
fn world() -> World {
    let (proxy, server) = TamperingProxy::in_front_of_a_new_server();
    let dir = tempfile::tempdir().unwrap();
    let alice = Member::new(dir.path(), "alice");
    let root = bootstrap_keeping_root(
        &server.create_org("acme"),
        &alice.home,
        "alice@example.com",
        "Alice",
    );
    let bob = Member::new(dir.path(), "bob");
    join_user(&alice, &bob, "bob@example.com", "Bob", &[]);
    let dave = Member::new(dir.path(), "dave");
    join_user(&alice, &dave, "dave@example.com", "Dave", &["--admin"]);
    alice.ok(&["user", "revoke", "dave@example.com"]);
    World {
        alice_keys: keys(&alice.home),
        bob_keys: keys(&bob.home),
        dave_keys: keys(&dave.home),
        proxy,
        _server: server,
        _dir: dir,
        root,
        alice,
    }
}

fn new_user(author: Signer, timestamp: Timestamp, profile: UserProfile) -> UserCertificate {
    UserCertificate {
        author,
        timestamp,
        user_id: UserId::generate(&mut OsRng),
        email: "eve@example.com".parse().unwrap(),
        human_name: "Eve".parse().unwrap(),
        public_key: PrivateKey::generate(&mut OsRng).public_key(),
        profile,
    }
}

fn sign(certificate: impl Into<Certificate>, key: &SigningKey) -> Vec<u8> {
    SignedCertificate::sign(&certificate.into(), key).encode()
}

/// Each forgery with: who uploads it, what the server answers, what the client says.
fn forgeries(w: &World) -> Vec<(&'static str, Vec<u8>, &DeviceKeys, ErrorCode, &'static str)> {
    let t = now().plus_micros(1_000_000);
    let device = |k: &DeviceKeys| Signer::Device(k.device_id);
    let mut self_certified = new_user(device(&w.bob_keys), t, UserProfile::Admin);
    self_certified.user_id = w.bob_keys.user_id;
    vec![
        (
            "wrong signer",
            sign(
                new_user(device(&w.alice_keys), t, UserProfile::Admin),
                &w.bob_keys.signing_key(),
            ),
            &w.alice_keys,
            ErrorCode::InvalidCertificate,
            "signature does not match its author",
        ),
        (
            "signer not ADMIN",
            sign(
                new_user(device(&w.bob_keys), t, UserProfile::Admin),
                &w.bob_keys.signing_key(),
            ),
            &w.bob_keys,
            ErrorCode::NotAllowed,
            "is not an ADMIN",
        ),
        (
            "signer revoked",
            sign(
                new_user(device(&w.dave_keys), t, UserProfile::Admin),
                &w.dave_keys.signing_key(),
            ),
            &w.dave_keys,
            ErrorCode::DeviceRevoked,
            "whose user was revoked",
        ),
        (
            "timestamp going backwards",
            sign(
                RevokedUserCertificate {
                    author: device(&w.alice_keys),
                    // Within the clock window, but before the chain's last certificate.
                    timestamp: now().plus_micros(-4 * 60 * 1_000_000),
                    user_id: w.bob_keys.user_id,
                },
                &w.alice_keys.signing_key(),
            ),
            &w.alice_keys,
            ErrorCode::InvalidCertificate,
            "is not after the previous certificate",
        ),
        (
            "user certifying itself",
            sign(self_certified, &w.bob_keys.signing_key()),
            &w.bob_keys,
            ErrorCode::InvalidCertificate,
            "certified itself",
        ),
        (
            "root key used after bootstrap",
            sign(new_user(Signer::Root, t, UserProfile::Admin), &w.root),
            &w.alice_keys,
            ErrorCode::InvalidCertificate,
            "root key was used after bootstrap",
        ),
    ]
}

/// The hostile server serves `certificate`, said to be received at `received`, after the
/// genuine certificates.
fn slip_in(proxy: &TamperingProxy, certificate: Vec<u8>, received: Timestamp) {
    proxy.set_tamper(Some(Arc::new(
        move |method: &str, path: &str, body: Vec<u8>| {
            if method != "GET" || !path.contains("/certificates") {
                return body;
            }
            let mut response = CertificatesResponse::decode(&body).expect("certificates");
            response.certificates.push(ReceivedCertificate {
                certificate: ByteBuf::from(certificate.clone()),
                received,
            });
            response.encode()
        },
    )));
}

#[test]
fn the_server_refuses_forged_certificates() {
    let w = world();
    for (name, certificate, uploader, code, _) in forgeries(&w) {
        let body = UploadCertificateRequest {
            certificate: ByteBuf::from(certificate),
        }
        .encode();
        let (status, error) = SignedRequest::new(
            uploader,
            "POST",
            "/authenticated/acme/certificates".into(),
            body,
        )
        .send();
        let error = error.unwrap_or_else(|| panic!("{name}: accepted with status {status}"));
        assert_eq!(error.code, code, "{name}: {}", error.message);
        assert!(status >= 400, "{name}");
    }
    // A valid certificate that the caller did not sign itself is refused too.
    let revocation = sign(
        RevokedUserCertificate {
            author: Signer::Device(w.alice_keys.device_id),
            timestamp: now(),
            user_id: w.bob_keys.user_id,
        },
        &w.alice_keys.signing_key(),
    );
    let body = UploadCertificateRequest {
        certificate: ByteBuf::from(revocation),
    }
    .encode();
    let (_, error) = SignedRequest::new(
        &w.bob_keys,
        "POST",
        "/authenticated/acme/certificates".into(),
        body,
    )
    .send();
    assert_eq!(error.unwrap().code, ErrorCode::NotAllowed);
    // Nothing was added: Bob is still active.
    let users = w.alice.user_list();
    assert!(
        users.contains(&("bob@example.com".into(), "STANDARD".into(), "active".into())),
        "{users:?}"
    );
}

#[test]
fn clients_refuse_forged_certificates_from_a_hostile_server() {
    let w = world();
    let store = w.alice.home.join("certificates.bin");
    w.alice.ok(&["user", "list"]);
    for (name, certificate, _, _, message) in forgeries(&w) {
        let before = std::fs::read(&store).unwrap();
        // The hostile server slips the forgery in after the genuine certificates.
        slip_in(&w.proxy, certificate.clone(), now());
        let err = w.alice.fails(&["user", "list"]);
        assert!(
            err.contains("fails validation, nothing was changed"),
            "{name}: {err}"
        );
        assert!(err.contains(message), "{name}: {err}");
        assert_eq!(
            std::fs::read(&store).unwrap(),
            before,
            "{name}: local state changed"
        );
        w.proxy.set_tamper(None);
        let users = w.alice.user_list();
        assert!(
            !users.iter().any(|u| u.0 == "eve@example.com"),
            "{name}: {users:?}"
        );
    }
}

#[test]
fn clients_refuse_malformed_and_oversized_answers() {
    let w = world();
    let store = w.alice.home.join("certificates.bin");
    let before = std::fs::read(&store).unwrap();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "malformed",
            b"\x93\xa5hello\x01\xc0".to_vec(),
            "invalid answer",
        ),
        (
            "a response of another type",
            strongroom_protocol::wire::Ack {}.encode(),
            "expected a certificates-response",
        ),
        (
            "oversized",
            vec![0; strongroom_protocol::wire::MAX_RESPONSE_BYTES + 1],
            "larger than",
        ),
    ];
    for (name, answer, message) in cases {
        w.proxy.set_tamper(Some(Arc::new(
            move |method: &str, path: &str, body: Vec<u8>| {
                if method == "GET" && path.contains("/certificates") {
                    answer.clone()
                } else {
                    body
                }
            },
        )));
        let err = w.alice.fails(&["user", "list"]);
        assert!(err.contains(message), "{name}: {err}");
        assert_eq!(
            std::fs::read(&store).unwrap(),
            before,
            "{name}: local state changed"
        );
    }
    w.proxy.set_tamper(None);
    assert_eq!(w.alice.user_list().len(), 3);
}

#[test]
fn clients_refuse_certificates_dated_far_from_their_reception() {
    let w = world();
    let store = w.alice.home.join("certificates.bin");
    w.alice.ok(&["user", "list"]);
    // A device certificate of Alice's own, otherwise valid, dated in 2100 (an honest server
    // refuses it; this one serves it), first said to be received now, then in 2100.
    let year_2100 = Timestamp::from_micros(4_102_444_800_000_000);
    let forged = sign(
        DeviceCertificate {
            author: Signer::Device(w.alice_keys.device_id),
            timestamp: year_2100,
            user_id: w.alice_keys.user_id,
            device_id: DeviceId::generate(&mut OsRng),
            device_label: "phone".parse().unwrap(),
            verify_key: SigningKey::generate(&mut OsRng).verify_key(),
        },
        &w.alice_keys.signing_key(),
    );
    for (name, received, message) in [
        (
            "received now",
            now(),
            "away from when the server received it",
        ),
        ("received in 2100", year_2100, "after this computer's clock"),
    ] {
        let before = std::fs::read(&store).unwrap();
        slip_in(&w.proxy, forged.clone(), received);
        let err = w.alice.fails(&["user", "list"]);
        assert!(err.contains(message), "{name}: {err}");
        assert_eq!(
            std::fs::read(&store).unwrap(),
            before,
            "{name}: local state changed"
        );
        w.proxy.set_tamper(None);
    }
    // The honest chain still works and still takes new certificates.
    w.alice.ok(&["user", "revoke", "bob@example.com"]);
}
