//! Fixed test vectors: one file per encoded type under `tests/vectors/`, so that a change of the
//! wire format shows up as a failing test and a diff. Regenerate deliberately with
//! `STRONGROOM_UPDATE_VECTORS=1 cargo test -p strongroom-protocol test_vectors`.

use crate::certificates::*;
use crate::crypto::SecretBytes;
use crate::crypto::hash::Digest;
use crate::crypto::sealed_box::PrivateKey;
use crate::crypto::signing::SigningKey;
use crate::encoding::Encoded;
use crate::ids::*;
use crate::invite::*;
use crate::time::Timestamp;
use crate::wire::*;
use rand_core::{CryptoRng, RngCore};
use serde_bytes::ByteBuf;
use std::path::PathBuf;

/// A deterministic generator (BLAKE3 in XOF mode) so vectors do not change between runs.
pub(crate) struct TestRng(blake3::OutputReader);

impl TestRng {
    pub(crate) fn new(seed: &str) -> Self {
        Self(
            blake3::Hasher::new_derive_key("strongroom test rng")
                .update(seed.as_bytes())
                .finalize_xof(),
        )
    }
}

impl RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.fill(dest);
        Ok(())
    }
}
impl CryptoRng for TestRng {}

fn check<T: Encoded + std::fmt::Debug>(name: &str, value: &T) {
    let bytes = value.encode();
    // Round trip: decoding and re-encoding gives the same bytes.
    let decoded = T::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        decoded.encode(),
        bytes,
        "{name}: round trip changed the bytes"
    );
    check_bytes(name, &bytes);
    // Beside the bytes, what they decode to, for a reader to check by hand.
    let pretty = compact_byte_lists(&format!("{decoded:#?}"));
    check_file(
        &format!("{name}.txt"),
        &format!("{}, format version {}\n{pretty}\n", T::TAG, T::VERSION),
    );
}

/// Pretty debug output with each list of byte values (`[\n 147,\n 178,\n ...]`) written as one
/// `hex(...)` instead, so that a reader sees the structure rather than thousands of lines.
fn compact_byte_lists(pretty: &str) -> String {
    let lines: Vec<&str> = pretty.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.ends_with('[') {
            let mut bytes = Vec::new();
            let mut j = i + 1;
            while let Some(value) = lines
                .get(j)
                .and_then(|l| l.trim().strip_suffix(','))
                .and_then(|v| v.parse::<u8>().ok())
            {
                bytes.push(value);
                j += 1;
            }
            if let Some(close) = lines.get(j).map(|l| l.trim())
                && !bytes.is_empty()
                && (close == "]" || close == "],")
            {
                let comma = if close.ends_with(',') { "," } else { "" };
                out.push(format!(
                    "{}hex({}){comma}",
                    line.strip_suffix('[').unwrap(),
                    data_encoding::HEXLOWER.encode(&bytes)
                ));
                i = j + 1;
                continue;
            }
        }
        out.push(line.to_owned());
        i += 1;
    }
    out.join("\n")
}

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// Compares `contents` with the stored file `tests/vectors/NAME` (or writes it, when updating).
fn check_file(name: &str, contents: &str) {
    let path = vectors_dir().join(name);
    if std::env::var_os("STRONGROOM_UPDATE_VECTORS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (set STRONGROOM_UPDATE_VECTORS=1 to create)",
            path.display()
        )
    });
    assert_eq!(
        stored,
        contents,
        "{}: differs from the stored vector",
        path.display()
    );
}

/// Compares `bytes` with the stored vector `name` (or writes it, when updating).
fn check_bytes(name: &str, bytes: &[u8]) {
    let hex = data_encoding::HEXLOWER.encode(bytes);
    check_file(&format!("{name}.hex"), &format!("{hex}\n"));
}

struct Fixture {
    rng: TestRng,
    root: SigningKey,
    device: SigningKey,
    user_id: UserId,
    device_id: DeviceId,
}

impl Fixture {
    fn new() -> Self {
        let mut rng = TestRng::new("vectors");
        Self {
            root: SigningKey::generate(&mut rng),
            device: SigningKey::generate(&mut rng),
            user_id: UserId::generate(&mut rng),
            device_id: DeviceId::generate(&mut rng),
            rng,
        }
    }

    fn user(&mut self) -> UserCertificate {
        UserCertificate {
            author: Signer::Root,
            timestamp: Timestamp::from_micros(1_795_000_000_000_000),
            user_id: self.user_id,
            email: "alice@example.com".parse().unwrap(),
            human_name: "Alice".parse().unwrap(),
            public_key: PrivateKey::generate(&mut self.rng).public_key(),
            profile: UserProfile::Admin,
        }
    }

    /// The identity chain of the fixture's user and device, certified by its root key.
    fn chain(&mut self) -> crate::trust::CertificateChain {
        let user = self.user();
        let device = self.device();
        let mut chain = crate::trust::CertificateChain::new(self.root.verify_key());
        for (certificate, timestamp) in [
            (Certificate::from(user.clone()), user.timestamp),
            (device.clone().into(), device.timestamp),
        ] {
            chain
                .add(
                    &SignedCertificate::sign(&certificate, &self.root).encode(),
                    timestamp,
                )
                .unwrap();
        }
        chain
    }

    /// Where version 1 of the fixture user's own manifest sits, written by its device at
    /// `timestamp` (which the server received then too).
    fn user_manifest_coordinates(&self, timestamp: Timestamp) -> crate::manifests::VlobCoordinates {
        let realm = RealmId::of_user(&self.user_id);
        crate::manifests::VlobCoordinates {
            realm,
            id: realm.into(),
            version: 1,
            key_index: 0,
            author: self.device_id,
            timestamp,
            received: timestamp,
        }
    }

    fn device(&self) -> DeviceCertificate {
        DeviceCertificate {
            author: Signer::Root,
            timestamp: Timestamp::from_micros(1_795_000_000_000_001),
            user_id: self.user_id,
            device_id: self.device_id,
            device_label: "laptop".parse().unwrap(),
            verify_key: self.device.verify_key(),
        }
    }
}

#[test]
fn certificates() {
    let mut f = Fixture::new();
    let user = f.user();
    let device = f.device();
    let revoked = RevokedUserCertificate {
        author: Signer::Device(f.device_id),
        timestamp: Timestamp::from_micros(1_795_000_000_000_002),
        user_id: UserId::from_bytes([9; 16]),
    };
    check("user-certificate", &user);
    check("device-certificate", &device);
    check("revoked-user-certificate", &revoked);
    check(
        "signed-certificate",
        &SignedCertificate::sign(&user.into(), &f.root),
    );
}

#[test]
fn invite_steps_and_channel_payloads() {
    let mut f = Fixture::new();
    let public = PrivateKey::generate(&mut f.rng).public_key();
    check(
        "invite-step-greeter-public-key",
        &InviteStep::GreeterPublicKey(public),
    );
    check(
        "invite-step-claimer-commitment",
        &InviteStep::ClaimerCommitment(Digest::of(b"n")),
    );
    check(
        "invite-step-claimer-nonce",
        &InviteStep::ClaimerNonce([5; 32]),
    );
    check("invite-step-code-confirmed", &InviteStep::CodeConfirmed);
    check("invite-step-channel", &InviteStep::Channel(vec![1, 2, 3]));
    check(
        "invite-claimer-user",
        &ClaimerUserIdentity {
            human_name: "Bob".parse().unwrap(),
            device_label: "desktop".parse().unwrap(),
            public_key: public,
            verify_key: f.device.verify_key(),
        },
    );
    check(
        "invite-claimer-device",
        &ClaimerDeviceIdentity {
            device_label: "phone".parse().unwrap(),
            verify_key: f.device.verify_key(),
        },
    );
    check(
        "invite-confirmation",
        &InviteConfirmation {
            organization: "acme".parse().unwrap(),
            root_verify_key: f.root.verify_key(),
            user_id: f.user_id,
            device_id: f.device_id,
            email: "bob@example.com".parse().unwrap(),
            human_name: "Bob".parse().unwrap(),
            profile: UserProfile::Standard,
            user_private_key: Some(SecretBytes([7; 32])),
        },
    );
}

#[test]
fn wire_messages() {
    let mut f = Fixture::new();
    let token = InvitationToken::generate(&mut f.rng);
    let cert = ByteBuf::from(SignedCertificate::sign(&f.device().into(), &f.root).encode());
    check("ack", &Ack {});
    check(
        "error",
        &ErrorResponse {
            code: ErrorCode::StaleTimestamp,
            message: "the request's clock is 6 minutes off".into(),
        },
    );
    check(
        "create-organization-request",
        &CreateOrganizationRequest {
            organization: "acme".parse().unwrap(),
        },
    );
    check(
        "create-organization-response",
        &CreateOrganizationResponse {
            bootstrap_url: "http://127.0.0.1:6770/bootstrap/acme#token".into(),
        },
    );
    check(
        "bootstrap-request",
        &BootstrapRequest {
            token: BootstrapToken::generate(&mut f.rng),
            root_verify_key: f.root.verify_key(),
            user_certificate: cert.clone(),
            device_certificate: cert.clone(),
        },
    );
    check(
        "organization-quotas",
        &OrganizationQuotas {
            storage_bytes: Some(10 << 30),
            workspaces: Some(50),
            devices: None,
            stored_bytes: None,
        },
    );
    check(
        "organization-quotas-answer",
        &OrganizationQuotas {
            storage_bytes: Some(10 << 30),
            workspaces: None,
            devices: Some(20),
            stored_bytes: Some(123_456),
        },
    );
    check(
        "certificates-response",
        &CertificatesResponse {
            from: 3,
            certificates: vec![
                ReceivedCertificate {
                    certificate: cert.clone(),
                    received: Timestamp::from_micros(1_795_000_000_000_000),
                },
                ReceivedCertificate {
                    certificate: cert.clone(),
                    received: Timestamp::from_micros(1_795_000_000_000_001),
                },
            ],
        },
    );
    check(
        "upload-certificate-request",
        &UploadCertificateRequest {
            certificate: cert.clone(),
        },
    );
    check(
        "upload-certificate-response",
        &UploadCertificateResponse { index: 4 },
    );
    let kind = InvitationKind::User {
        email: "bob@example.com".parse().unwrap(),
        profile: UserProfile::Standard,
    };
    check(
        "create-invitation-request",
        &CreateInvitationRequest { kind: kind.clone() },
    );
    check(
        "create-invitation-response",
        &CreateInvitationResponse {
            id: token.id(),
            token: token.clone(),
            url: "http://127.0.0.1:6770/invitation/acme#x".into(),
            delivery: EmailDelivery::Sent,
        },
    );
    let info = InvitationInfo {
        id: token.id(),
        kind: InvitationKind::Device,
        email: "alice@example.com".parse().unwrap(),
        greeter_user_id: f.user_id,
        greeter_human_name: "Alice".parse().unwrap(),
        created_on: Timestamp::from_micros(1_795_000_000_000_000),
        expires_on: Timestamp::from_micros(1_795_604_800_000_000),
        status: InvitationStatus::Pending,
    };
    check("invitation-info", &info);
    check(
        "invitation-list-response",
        &InvitationListResponse {
            invitations: vec![info],
        },
    );
    check("join-attempt-response", &JoinAttemptResponse { attempt: 2 });
    check(
        "post-step-request",
        &PostStepRequest {
            attempt: 2,
            step: ByteBuf::from(InviteStep::CodeConfirmed.encode()),
        },
    );
    check(
        "abort-request",
        &AbortRequest {
            attempt: 2,
            reason: AbortReason::WrongCode,
        },
    );
    check(
        "steps-response",
        &StepsResponse {
            attempt: 2,
            aborted: Some(AttemptAbort {
                by: InviteSide::Claimer,
                reason: AbortReason::WrongCode,
            }),
            completed: false,
            greeter: vec![ByteBuf::from(InviteStep::CodeConfirmed.encode())],
            claimer: vec![],
        },
    );
    check(
        "complete-invitation-request",
        &CompleteInvitationRequest {
            attempt: 2,
            certificates: vec![cert],
            final_step: ByteBuf::from(InviteStep::Channel(vec![0; 8]).encode()),
        },
    );
    check(
        "request-signature",
        &RequestSignature {
            organization: "acme".parse().unwrap(),
            device: f.device_id,
            method: "POST".into(),
            path: "/authenticated/acme/invitations".into(),
            timestamp: Timestamp::from_micros(1_795_000_000_000_000),
            body_digest: Digest::of(b"body"),
        },
    );
}

#[test]
fn workspaces_manifests_and_messages() {
    use crate::manifests::*;
    use crate::workspace::*;
    use std::collections::BTreeMap;
    let mut f = Fixture::new();
    let realm = RealmId::from_bytes([4; 16]);
    let key = crate::crypto::secret_key::SecretKey::from_bytes([5; 32]);
    let t = Timestamp::from_micros(1_795_000_000_000_000);
    check(
        "role-certificate",
        &RoleCertificate {
            author: f.device_id,
            timestamp: t,
            realm,
            user_id: f.user_id,
            role: Some(WorkspaceRole::Contributor),
        },
    );
    check(
        "key-rotation-certificate",
        &KeyRotationCertificate {
            author: f.device_id,
            timestamp: t,
            realm,
            key_index: 2,
            key_check: key_check(&key, &realm, 2),
        },
    );
    let block = BlockRef {
        id: BlockId::from_bytes([6; 16]),
        key_index: 1,
        offset: 0,
        len: 5,
        digest: Digest::of(b"hello"),
    };
    let mut children = BTreeMap::new();
    children.insert("notes.txt".parse().unwrap(), EntryId::from_bytes([7; 16]));
    for (name, body) in [
        (
            "manifest-folder",
            ManifestBody::Folder {
                parent: realm.into(),
                children,
            },
        ),
        (
            "manifest-file",
            ManifestBody::File {
                parent: realm.into(),
                size: 5,
                block_size: 1 << 20,
                blocks: vec![block.clone()],
                index: vec![],
            },
        ),
        (
            "manifest-symlink",
            ManifestBody::Symlink {
                parent: realm.into(),
                target: "../notes.txt".into(),
            },
        ),
        (
            "manifest-user",
            ManifestBody::User {
                workspaces: vec![WorkspaceEntry {
                    realm,
                    name: "Projects".parse().unwrap(),
                    keys: vec![IndexedKey {
                        index: 1,
                        key: key.clone(),
                    }],
                }],
            },
        ),
    ] {
        check(
            name,
            &Manifest {
                author: f.device_id,
                timestamp: t,
                realm,
                id: EntryId::from_bytes([7; 16]),
                version: 3,
                body,
            },
        );
    }
    check(
        "signed",
        &crate::signed::Signed::sign(&block_message(&f, realm, &key, t), &f.device),
    );
    check("message", &block_message(&f, realm, &key, t));
    check(
        "block-index",
        &BlockIndex {
            blocks: vec![block.clone()],
        },
    );
    let _ = &mut f.rng;
}

fn block_message(
    f: &Fixture,
    realm: RealmId,
    key: &crate::crypto::secret_key::SecretKey,
    t: Timestamp,
) -> crate::messages::Message {
    crate::messages::Message {
        author: f.device_id,
        timestamp: t,
        recipient: f.user_id,
        body: crate::messages::MessageBody::WorkspaceShared {
            realm,
            name: "Projects".parse().unwrap(),
            role: crate::workspace::WorkspaceRole::Reader,
            keys: vec![crate::manifests::IndexedKey {
                index: 1,
                key: key.clone(),
            }],
        },
    }
}

#[test]
fn realm_wire_messages() {
    let f = Fixture::new();
    let t = Timestamp::from_micros(1_795_000_000_000_000);
    let id = EntryId::from_bytes([7; 16]);
    let blob = ByteBuf::from(vec![1, 2, 3]);
    check(
        "create-realm-request",
        &CreateRealmRequest {
            certificates: vec![blob.clone()],
        },
    );
    check(
        "realm-certificate-request",
        &RealmCertificateRequest {
            certificate: blob.clone(),
            messages: vec![OutgoingMessage {
                recipient: f.user_id,
                sealed: blob.clone(),
            }],
        },
    );
    check(
        "realm-certificates-response",
        &RealmCertificatesResponse {
            from: 2,
            certificates: vec![ReceivedCertificate {
                certificate: blob.clone(),
                received: t,
            }],
        },
    );
    check(
        "vlob-write-request",
        &VlobWriteRequest {
            id,
            version: 2,
            key_index: 1,
            timestamp: t,
            blob: blob.clone(),
        },
    );
    check("vlob-write-response", &VlobWriteResponse { checkpoint: 9 });
    check(
        "vlob-batch-write-request",
        &VlobBatchWriteRequest {
            writes: vec![VlobWriteRequest {
                id,
                version: 1,
                key_index: 1,
                timestamp: t,
                blob: blob.clone(),
            }],
        },
    );
    check(
        "vlob-batch-write-response",
        &VlobBatchWriteResponse {
            results: vec![
                VlobWriteResult::Written { checkpoint: 3 },
                VlobWriteResult::VersionConflict,
            ],
        },
    );
    check(
        "vlob-read-request",
        &VlobReadRequest {
            ids: vec![id],
            at: Some(t),
        },
    );
    let version = VlobVersion {
        id,
        version: 2,
        key_index: 1,
        author: f.device_id,
        timestamp: t,
        received: t.plus_micros(1_500),
        blob: blob.clone(),
    };
    check("vlob-version", &version);
    check(
        "vlob-read-response",
        &VlobReadResponse {
            vlobs: vec![version],
            deferred: vec![EntryId::from_bytes([7; 16])],
        },
    );
    check(
        "vlob-history-response",
        &VlobHistoryResponse {
            versions: vec![VlobVersionInfo {
                version: 1,
                key_index: 1,
                author: f.device_id,
                timestamp: t,
                received: t.plus_micros(1_500),
                size: 3,
            }],
        },
    );
    check(
        "realm-changes-response",
        &RealmChangesResponse {
            checkpoint: 9,
            changes: vec![VlobChange {
                checkpoint: 9,
                id,
                version: 2,
            }],
        },
    );
    check(
        "messages-response",
        &MessagesResponse {
            messages: vec![IncomingMessage {
                index: 0,
                sender: f.device_id,
                received: t,
                sealed: blob,
            }],
            more: false,
        },
    );
}

#[test]
fn sealed_block() {
    use crate::blocks::{open_block, seal_block};
    use crate::crypto::hash::Digest;
    use crate::manifests::BlockRef;
    let key = crate::crypto::secret_key::SecretKey::from_bytes([5; 32]);
    let realm = RealmId::from_bytes([4; 16]);
    let id = BlockId::generate(&mut TestRng::new("block id"));
    let plaintext = b"a block of a file, sealed with XAES-256-GCM";
    let sealed = seal_block(&key, &realm, &id, 1, plaintext, &mut TestRng::new("block"));
    check_bytes("sealed-block", &sealed);
    let reference = BlockRef {
        id,
        key_index: 1,
        offset: 0,
        len: plaintext.len() as u32,
        digest: Digest::of(plaintext),
    };
    assert_eq!(
        open_block(&key, &realm, &reference, &sealed).unwrap(),
        plaintext
    );
}

/// The key of the fixture user's own manifest in the manifest vectors.
fn user_manifest_key() -> crate::crypto::secret_key::SecretKey {
    crate::crypto::secret_key::SecretKey::from_bytes([6; 32])
}

/// When the manifest vectors were written (and received).
const MANIFEST_TIME: Timestamp = Timestamp::from_micros(1_795_000_002_000_000);

/// The fixture user's own manifest, version 1, holding `body`, sealed by its device.
fn sealed_user_manifest(f: &Fixture, body: crate::manifests::ManifestBody) -> Vec<u8> {
    let at = f.user_manifest_coordinates(MANIFEST_TIME);
    let manifest = crate::manifests::Manifest {
        author: at.author,
        timestamp: at.timestamp,
        realm: at.realm,
        id: at.id,
        version: at.version,
        body,
    };
    crate::manifests::seal_manifest(
        &manifest,
        &f.device,
        &user_manifest_key(),
        at.key_index,
        &mut TestRng::new("sealed manifest"),
    )
}

/// A sealed manifest as a server stores it: the seal, then the ciphertext.
#[test]
fn sealed_manifest() {
    use crate::manifests::{ManifestBody, SEAL_BYTES, SEALED_HEADER_BYTES};
    let f = Fixture::new();
    let sealed = sealed_user_manifest(
        &f,
        ManifestBody::User {
            workspaces: Vec::new(),
        },
    );
    check_bytes("sealed-manifest", &sealed);
    check_file(
        "sealed-manifest.txt",
        &format!(
            "# version 1 of a user's own manifest (an empty workspace list), key index 0, written at {}\n\
             # bytes 0..{SEAL_BYTES}: the Ed25519 seal by the author device over\n\
             #   \"strongroom manifest seal v2\" || realm (16) || entry (16) || version (u32 BE)\n\
             #   || key index (u32 BE) || author device (16) || timestamp (i64 BE, microseconds)\n\
             #   || key check value || BLAKE3(ciphertext)\n\
             # bytes {SEAL_BYTES}..{SEALED_HEADER_BYTES}: the key check value of the key (workspace::key_check)\n\
             # bytes {SEALED_HEADER_BYTES}..: XChaCha20-Poly1305 ciphertext (nonce first) of the signed manifest\n\
             seal: {}\n\
             key check: {}\n\
             ciphertext: {}\n",
            MANIFEST_TIME.as_micros(),
            data_encoding::HEXLOWER.encode(&sealed[..SEAL_BYTES]),
            data_encoding::HEXLOWER.encode(&sealed[SEAL_BYTES..SEALED_HEADER_BYTES]),
            data_encoding::HEXLOWER.encode(&sealed[SEALED_HEADER_BYTES..]),
        ),
    );
    assert_eq!(refusal("sealed manifest", &sealed, Some(MANIFEST_TIME)), "");
}

/// The recipient of the message vectors (not in the fixture's chain: only senders are looked up).
fn message_recipient() -> (UserId, PrivateKey) {
    (
        UserId::from_bytes([12; 16]),
        PrivateKey::from_secret_bytes([11; 32]),
    )
}

/// When the message vectors were sealed (and received).
const MESSAGE_TIME: Timestamp = Timestamp::from_micros(1_795_000_003_000_000);

/// What the message vectors are about: key index 2 of realm 4, whose keys 1 and 2 are the
/// secret bytes 06..06 and 05..05.
fn message_topic() -> crate::messages::MessageTopic {
    use crate::crypto::secret_key::SecretKey;
    use crate::workspace::{key_check, key_checks_digest};
    let realm = RealmId::from_bytes([4; 16]);
    let checks = [
        key_check(&SecretKey::from_bytes([6; 32]), &realm, 1),
        key_check(&SecretKey::from_bytes([5; 32]), &realm, 2),
    ];
    crate::messages::MessageTopic {
        realm,
        key_index: 2,
        key_checks: key_checks_digest(&realm, 2, &checks),
    }
}

/// Key index 2 of realm 4 handed to the recipient by the fixture's device, sealed.
fn sealed_key_message(f: &Fixture) -> Vec<u8> {
    let (recipient, private) = message_recipient();
    let message = crate::messages::Message {
        author: f.device_id,
        timestamp: MESSAGE_TIME,
        recipient,
        body: crate::messages::MessageBody::WorkspaceKey {
            realm: message_topic().realm,
            key: crate::manifests::IndexedKey {
                index: 2,
                key: crate::crypto::secret_key::SecretKey::from_bytes([5; 32]),
            },
        },
    };
    crate::messages::seal_message(
        &message,
        message_topic(),
        &f.device,
        &private.public_key(),
        &mut TestRng::new("sealed message"),
    )
}

/// A sealed message as the server stores it: what it is about in clear, the seal, the box.
#[test]
fn sealed_message() {
    use crate::messages::ENVELOPE_HEADER_BYTES;
    let f = Fixture::new();
    let sealed = sealed_key_message(&f);
    check_bytes("sealed-message", &sealed);
    let seal_at = ENVELOPE_HEADER_BYTES - 64;
    assert_eq!(&sealed[20..52], message_topic().key_checks.as_bytes());
    check_file(
        "sealed-message.txt",
        &format!(
            "# key index 2 of workspace 04..04 (a WorkspaceKey message), sent by the fixture's device at {}\n\
             # bytes 0..16: the workspace; 16..20: the key index (u32 BE); 20..52: the key checks digest,\n\
             #   BLAKE3(\"strongroom key checks v1\" || workspace || 2 (u32 BE) || check of key 1 || check of key 2),\n\
             #   keys 1 and 2 being the secret bytes 06..06 and 05..05; 52..60: the date (i64 BE, microseconds)\n\
             # bytes 60..{ENVELOPE_HEADER_BYTES}: the Ed25519 seal by the sending device over\n\
             #   \"strongroom message seal v1\" || sender device (16) || recipient user (16) || workspace (16)\n\
             #   || key index (u32 BE) || key checks digest (32) || date (i64 BE) || BLAKE3(sealed box)\n\
             # bytes {ENVELOPE_HEADER_BYTES}..: the sealed box (X25519 + XChaCha20-Poly1305) of the signed message,\n\
             #   to the recipient's key (secret bytes 0b..0b)\n\
             workspace: {}\n\
             key index: 2\n\
             key checks digest: {}\n\
             seal: {}\n\
             sealed box: {}\n",
            MESSAGE_TIME.as_micros(),
            data_encoding::HEXLOWER.encode(&sealed[..16]),
            data_encoding::HEXLOWER.encode(&sealed[20..52]),
            data_encoding::HEXLOWER.encode(&sealed[seal_at..ENVELOPE_HEADER_BYTES]),
            data_encoding::HEXLOWER.encode(&sealed[ENVELOPE_HEADER_BYTES..]),
        ),
    );
    assert_eq!(refusal("sealed message", &sealed, Some(MESSAGE_TIME)), "");
}

/// A failure vector: bytes that a reader must refuse, and the error they must raise.
struct Failure {
    /// The file name under `tests/vectors/failures/`.
    name: &'static str,
    /// What is wrong with the bytes.
    what: &'static str,
    /// How the bytes are read (see [`refusal`]).
    check: &'static str,
    /// When the server received them (for the ballpark rule), if it matters.
    received: Option<Timestamp>,
    bytes: Vec<u8>,
}

/// The error a reader raises on `bytes`, by the way `check` names: `decode TAG` (the decoder of
/// that type), or `identity chain` (validation against the fixture's chain: its first user and
/// device, certified by the root key).
fn refusal(check: &str, bytes: &[u8], received: Option<Timestamp>) -> String {
    let decode_error = |r: Result<(), crate::encoding::DecodeError>| {
        r.err().map(|e| e.to_string()).unwrap_or_default()
    };
    match check {
        "decode user-certificate" => decode_error(UserCertificate::decode(bytes).map(drop)),
        "decode signed-certificate" => decode_error(SignedCertificate::decode(bytes).map(drop)),
        "decode request-signature" => decode_error(RequestSignature::decode(bytes).map(drop)),
        "decode vlob-read-response" => decode_error(VlobReadResponse::decode(bytes).map(drop)),
        "identity chain" => Fixture::new()
            .chain()
            .validate(bytes, received.expect("a reception time"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default(),
        "sealed manifest" => {
            let mut f = Fixture::new();
            let chain = f.chain();
            let coordinates = f.user_manifest_coordinates(received.expect("a reception time"));
            crate::manifests::open_manifest(
                bytes,
                &coordinates,
                &user_manifest_key(),
                &chain,
                crate::manifests::WriteAuthority::User(f.user_id),
            )
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
        }
        "sealed message" => {
            let mut f = Fixture::new();
            let chain = f.chain();
            let (recipient, private) = message_recipient();
            match crate::messages::open_envelope(
                bytes,
                &f.device_id,
                &recipient,
                &chain,
                received.expect("a reception time"),
            ) {
                Err(e) => format!("the server's doing: {e}"),
                Ok(envelope) => crate::messages::open_message(&envelope, &private)
                    .err()
                    .map(|e| format!("the sender's doing: {e}"))
                    .unwrap_or_default(),
            }
        }
        other => panic!("unknown check {other:?}"),
    }
}

fn failures() -> Vec<Failure> {
    let mut f = Fixture::new();
    let user = f.user();
    let device = f.device();
    let user_bytes = user.encode();
    let mut trailing = user_bytes.clone();
    trailing.push(0);
    let future_version = rmp_serde::to_vec_named(&(UserCertificate::TAG, 9u8, &user)).unwrap();
    let mut bad_email = user_bytes.clone();
    let at = bad_email
        .windows(17)
        .position(|w| w == b"alice@example.com")
        .unwrap();
    bad_email[at + 5] = b' ';
    let bob = |f: &mut Fixture, timestamp: i64| UserCertificate {
        author: Signer::Device(f.device_id),
        timestamp: Timestamp::from_micros(timestamp),
        user_id: UserId::from_bytes([2; 16]),
        email: "bob@example.com".parse().unwrap(),
        human_name: "Bob".parse().unwrap(),
        public_key: PrivateKey::generate(&mut f.rng).public_key(),
        profile: UserProfile::Standard,
    };
    let received = Timestamp::from_micros(1_795_000_001_000_000);
    let in_2100 = bob(&mut f, 4_102_444_800_000_000);
    let backwards = bob(&mut f, 1_795_000_000_000_000);
    let well_dated = bob(&mut f, 1_795_000_000_500_000);
    let intruder = SigningKey::generate(&mut f.rng);
    let mut truncated = VlobReadResponse {
        vlobs: vec![],
        deferred: vec![EntryId::from_bytes([7; 16])],
    }
    .encode();
    truncated.truncate(truncated.len() - 4);
    let empty_list = crate::manifests::ManifestBody::User {
        workspaces: Vec::new(),
    };
    let mut broken_seal = sealed_user_manifest(&f, empty_list);
    let last = broken_seal.len() - 1;
    broken_seal[last] ^= 1;
    let user_realm = RealmId::of_user(&f.user_id);
    let sealed_garbage = crate::manifests::seal_ciphertext(
        &f.user_manifest_coordinates(MANIFEST_TIME),
        &crate::workspace::key_check(&user_manifest_key(), &user_realm, 0),
        &[0x5a; 48],
        &f.device,
    );
    let folder_in_user_realm = sealed_user_manifest(
        &f,
        crate::manifests::ManifestBody::Folder {
            parent: RealmId::of_user(&f.user_id).into(),
            children: Default::default(),
        },
    );
    let mut message_seal_broken = sealed_key_message(&f);
    let last = message_seal_broken.len() - 1;
    message_seal_broken[last] ^= 1;
    let (recipient, _) = message_recipient();
    let message_sealed_garbage = crate::messages::seal_envelope(
        &[0x5a; 120],
        &f.device_id,
        &recipient,
        message_topic(),
        MESSAGE_TIME,
        &f.device,
    );
    vec![
        Failure {
            name: "message-seal-broken",
            what: "a sealed message with its last byte flipped: changed after its sender sent it (the server's doing)",
            check: "sealed message",
            received: Some(MESSAGE_TIME),
            bytes: message_seal_broken,
        },
        Failure {
            name: "message-sealed-garbage",
            what: "a box that opens for nobody, sealed by the sending device as key index 2 of a workspace: its sender's doing",
            check: "sealed message",
            received: Some(MESSAGE_TIME),
            bytes: message_sealed_garbage,
        },
        Failure {
            name: "manifest-seal-broken",
            what: "a sealed manifest with its last ciphertext byte flipped: changed after its author stored it (the server's doing)",
            check: "sealed manifest",
            received: Some(MANIFEST_TIME),
            bytes: broken_seal,
        },
        Failure {
            name: "manifest-sealed-garbage",
            what: "bytes that open for nobody, sealed by the author device: its author's doing",
            check: "sealed manifest",
            received: Some(MANIFEST_TIME),
            bytes: sealed_garbage,
        },
        Failure {
            name: "manifest-user-realm-holding-a-folder",
            what: "a user's own manifest, genuinely signed and sealed, that holds a folder",
            check: "sealed manifest",
            received: Some(MANIFEST_TIME),
            bytes: folder_in_user_realm,
        },
        Failure {
            name: "user-certificate-trailing-byte",
            what: "a user certificate followed by one more byte",
            check: "decode user-certificate",
            received: None,
            bytes: trailing,
        },
        Failure {
            name: "user-certificate-future-version",
            what: "a user certificate in a format version this build does not read",
            check: "decode user-certificate",
            received: None,
            bytes: future_version,
        },
        Failure {
            name: "user-certificate-bad-email",
            what: "a user certificate whose email holds a space",
            check: "decode user-certificate",
            received: None,
            bytes: bad_email,
        },
        Failure {
            name: "device-certificate-as-user",
            what: "a device certificate read where a user certificate is expected",
            check: "decode user-certificate",
            received: None,
            bytes: device.encode(),
        },
        Failure {
            name: "signed-certificate-garbage",
            what: "bytes that are not an envelope",
            check: "decode signed-certificate",
            received: None,
            bytes: b"\x93\xa5hello\x01\xc0".to_vec(),
        },
        Failure {
            name: "vlob-read-response-truncated",
            what: "a batch read answer cut short",
            check: "decode vlob-read-response",
            received: None,
            bytes: truncated,
        },
        Failure {
            name: "chain-certificate-dated-2100",
            what: "a user certificate dated in 2100, received by the server in 2026: the ballpark rule",
            check: "identity chain",
            received: Some(received),
            bytes: SignedCertificate::sign(&in_2100.into(), &f.device).encode(),
        },
        Failure {
            name: "chain-timestamp-not-increasing",
            what: "a user certificate dated as the chain's first one, not after its last",
            check: "identity chain",
            received: Some(received),
            bytes: SignedCertificate::sign(&backwards.into(), &f.device).encode(),
        },
        Failure {
            name: "chain-wrong-signer",
            what: "a user certificate naming Alice's device as author, signed by another key",
            check: "identity chain",
            received: Some(received),
            bytes: SignedCertificate::sign(&well_dated.clone().into(), &intruder).encode(),
        },
        Failure {
            name: "chain-root-after-bootstrap",
            what: "a user certificate signed by the organization root key after bootstrap",
            check: "identity chain",
            received: Some(received),
            bytes: SignedCertificate::sign(
                &UserCertificate {
                    author: Signer::Root,
                    ..well_dated
                }
                .into(),
                &f.root,
            )
            .encode(),
        },
    ]
}

/// Failure vectors, one file each under `tests/vectors/failures/`: what is wrong, how to read
/// the bytes, when they were received (if it matters), the bytes, and the error they must
/// raise. The stored files are read back and checked too, so that the files alone are a test.
#[test]
fn failure_vectors() {
    for failure in failures() {
        let error = refusal(failure.check, &failure.bytes, failure.received);
        assert!(!error.is_empty(), "{}: was accepted", failure.name);
        let mut text = format!("# {}\ncheck: {}\n", failure.what, failure.check);
        if let Some(received) = failure.received {
            text.push_str(&format!("received: {}\n", received.as_micros()));
        }
        text.push_str(&format!(
            "hex: {}\nerror: {error}\n",
            data_encoding::HEXLOWER.encode(&failure.bytes)
        ));
        check_file(&format!("failures/{}.txt", failure.name), &text);
    }
    // Every stored file, as a reader would use it.
    let dir = vectors_dir().join("failures");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .map(str::to_owned)
        };
        let bytes = data_encoding::HEXLOWER
            .decode(field("hex").unwrap().as_bytes())
            .unwrap();
        let received = field("received").map(|t| Timestamp::from_micros(t.parse().unwrap()));
        let check = field("check").unwrap();
        assert_eq!(
            refusal(&check, &bytes, received),
            field("error").unwrap(),
            "{text}"
        );
        count += 1;
    }
    assert_eq!(count, failures().len(), "stray files in {}", dir.display());
}
