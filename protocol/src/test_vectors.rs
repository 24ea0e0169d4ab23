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
}

/// Compares `bytes` with the stored vector `name` (or writes it, when updating).
fn check_bytes(name: &str, bytes: &[u8]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/vectors/{name}.hex"));
    let hex = data_encoding::HEXLOWER.encode(bytes);
    if std::env::var_os("STRONGROOM_UPDATE_VECTORS").is_some() {
        std::fs::write(&path, format!("{hex}\n")).unwrap();
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (set STRONGROOM_UPDATE_VECTORS=1 to create)",
            path.display()
        )
    });
    assert_eq!(
        stored.trim(),
        hex,
        "{name}: encoding differs from the stored vector"
    );
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
