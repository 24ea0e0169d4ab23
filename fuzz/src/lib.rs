//! The bodies of the fuzz targets, shared by the libFuzzer binaries (`fuzz_targets/`, run with
//! `cargo fuzz run TARGET --features libfuzzer`) and by the stable-toolchain test that replays
//! every corpus in CI (`tests/replay_corpus.rs`).
//!
//! Each target feeds arbitrary bytes to decoders that read network or disk bytes. A decoder may
//! refuse input; it must never panic, and what it accepts must encode back to what decodes equal.
#![forbid(unsafe_code)]

use strongroom_engine::device_file::{DeviceFile, DeviceKeys, KdfPolicy};
use strongroom_engine::local_store::StoredCertificates;
use strongroom_engine::password::Password;
use strongroom_protocol::blocks::open_block;
use strongroom_protocol::certificates::{
    Certificate, DeviceCertificate, SignedCertificate, Signer, UserCertificate, UserProfile,
};
use strongroom_protocol::crypto::hash::Digest;
use strongroom_protocol::crypto::sealed_box::PrivateKey;
use strongroom_protocol::crypto::secret_key::SecretKey;
use strongroom_protocol::crypto::signing::SigningKey;
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::ids::{BlockId, DeviceId, EntryId, RealmId, UserId};
use strongroom_protocol::invite::{
    ClaimerDeviceIdentity, ClaimerUserIdentity, InviteConfirmation, InviteStep,
};
use strongroom_protocol::links::{BootstrapLink, InvitationLink, ServerAddr};
use strongroom_protocol::manifests::{
    BlockIndex, BlockRef, Manifest, VlobCoordinates, WriteAuthority, open_manifest, verify_seal,
};
use strongroom_protocol::messages::{
    Message, MessageTopic, open_envelope, open_message, seal_envelope, verify_envelope,
};
use strongroom_protocol::signed::Signed;
use strongroom_protocol::time::Timestamp;
use strongroom_protocol::trust::CertificateChain;
use strongroom_protocol::wire::*;
use strongroom_protocol::workspace::{
    KeyRotationCertificate, RealmCertificate, RealmChain, RoleCertificate,
};

/// Decodes as `T`; anything accepted must survive an encode/decode round trip unchanged.
fn round_trip<T: Encoded>(data: &[u8]) {
    if let Ok(value) = T::decode(data) {
        let encoded = value.encode();
        let again =
            T::decode(&encoded).expect("what decodes must encode to something that decodes");
        assert_eq!(again.encode(), encoded, "{}: unstable round trip", T::TAG);
    }
}

/// Every request and response body.
pub fn wire_message(data: &[u8]) {
    round_trip::<Ack>(data);
    round_trip::<ErrorResponse>(data);
    round_trip::<CreateOrganizationRequest>(data);
    round_trip::<CreateOrganizationResponse>(data);
    round_trip::<BootstrapRequest>(data);
    round_trip::<CertificatesResponse>(data);
    round_trip::<OrganizationQuotas>(data);
    round_trip::<UploadCertificateRequest>(data);
    round_trip::<UploadCertificateResponse>(data);
    round_trip::<CreateInvitationRequest>(data);
    round_trip::<CreateInvitationResponse>(data);
    round_trip::<InvitationInfo>(data);
    round_trip::<InvitationListResponse>(data);
    round_trip::<JoinAttemptResponse>(data);
    round_trip::<PostStepRequest>(data);
    round_trip::<AbortRequest>(data);
    round_trip::<StepsResponse>(data);
    round_trip::<CompleteInvitationRequest>(data);
    round_trip::<RequestSignature>(data);
    round_trip::<CreateRealmRequest>(data);
    round_trip::<RealmCertificateRequest>(data);
    round_trip::<RealmCertificatesResponse>(data);
    round_trip::<VlobWriteRequest>(data);
    round_trip::<VlobWriteResponse>(data);
    round_trip::<VlobBatchWriteRequest>(data);
    round_trip::<VlobBatchWriteResponse>(data);
    round_trip::<VlobReadRequest>(data);
    round_trip::<VlobReadResponse>(data);
    round_trip::<VlobVersion>(data);
    round_trip::<VlobHistoryResponse>(data);
    round_trip::<RealmChangesResponse>(data);
    round_trip::<MessagesResponse>(data);
}

/// Certificates: decoding, and validation against a small chain (the path a hostile server
/// feeds).
pub fn certificate(data: &[u8]) {
    round_trip::<SignedCertificate>(data);
    let _ = Certificate::decode(data);
    let root = SigningKey::from_secret_bytes(&[7; 32]).verify_key();
    let chain = CertificateChain::new(root);
    let _ = chain.validate(data, Timestamp::from_micros(0));
    let _ = RealmCertificate::decode(data);
    round_trip::<RoleCertificate>(data);
    round_trip::<KeyRotationCertificate>(data);
    let _ = RealmChain::new(RealmId::from_bytes([1; 16])).validate(
        &chain,
        data,
        Timestamp::from_micros(0),
    );
    if let Ok(signed) = SignedCertificate::decode(data)
        && let Ok(content) = signed.unverified()
    {
        assert_eq!(Certificate::decode(&content.encode()).ok(), Some(content));
    }
}

/// Manifests, blocks and messages as a hostile server serves them.
pub fn manifest(data: &[u8]) {
    round_trip::<Manifest>(data);
    round_trip::<BlockIndex>(data);
    round_trip::<Signed>(data);
    round_trip::<Message>(data);
    let key = SecretKey::from_bytes([9; 32]);
    let realm = RealmId::from_bytes([1; 16]);
    let identity = CertificateChain::new(SigningKey::from_secret_bytes(&[7; 32]).verify_key());
    let coordinates = VlobCoordinates {
        realm,
        id: EntryId::from_bytes([2; 16]),
        version: 1,
        key_index: 1,
        author: DeviceId::from_bytes([3; 16]),
        timestamp: Timestamp::from_micros(0),
        received: Timestamp::from_micros(0),
    };
    // The seal comes first for a reader's client and is all the server checks of a write.
    let _ = verify_seal(
        data,
        &coordinates,
        &SigningKey::from_secret_bytes(&[3; 32]).verify_key(),
    );
    let _ = open_manifest(
        data,
        &coordinates,
        &key,
        &identity,
        WriteAuthority::User(UserId::from_bytes([4; 16])),
    );
    let block = BlockRef {
        id: BlockId::from_bytes([5; 16]),
        key_index: 1,
        offset: 0,
        len: data.len() as u32,
        digest: Digest::of(data),
    };
    let _ = open_block(&key, &realm, &block, data);
}

/// A sender and a recipient in a small identity chain, for the message target.
struct MessageFixture {
    chain: CertificateChain,
    sender: DeviceId,
    sender_key: SigningKey,
    recipient: UserId,
    private: PrivateKey,
}

const MESSAGE_TIME: Timestamp = Timestamp::from_micros(1_795_000_000_000_000);

fn message_fixture() -> &'static MessageFixture {
    static FIXTURE: std::sync::OnceLock<MessageFixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let root = SigningKey::from_secret_bytes(&[7; 32]);
        let private = PrivateKey::from_secret_bytes([6; 32]);
        let sender_key = SigningKey::from_secret_bytes(&[8; 32]);
        let (user, sender, recipient) = (
            UserId::from_bytes([1; 16]),
            DeviceId::from_bytes([2; 16]),
            UserId::from_bytes([3; 16]),
        );
        let mut chain = CertificateChain::new(root.verify_key());
        let certificates = [
            Certificate::User(UserCertificate {
                author: Signer::Root,
                timestamp: MESSAGE_TIME.plus_micros(-2),
                user_id: user,
                email: "alice@example.com".parse().expect("email"),
                human_name: "Alice".parse().expect("name"),
                public_key: private.public_key(),
                profile: UserProfile::Admin,
            }),
            Certificate::Device(DeviceCertificate {
                author: Signer::Root,
                timestamp: MESSAGE_TIME.plus_micros(-1),
                user_id: user,
                device_id: sender,
                device_label: "laptop".parse().expect("label"),
                verify_key: sender_key.verify_key(),
            }),
        ];
        for certificate in certificates {
            chain
                .add(
                    &SignedCertificate::sign(&certificate, &root).encode(),
                    MESSAGE_TIME,
                )
                .expect("the fixture's chain");
        }
        MessageFixture {
            chain,
            sender,
            sender_key,
            recipient,
            private,
        }
    })
}

/// Messages: as the server checks one on arrival and a recipient opens one a hostile server
/// delivers (the envelope), and as a recipient opens a box a hostile sender sealed (the
/// fuzzer's bytes as the box, and as the plaintext in a box that opens).
pub fn message(data: &[u8]) {
    round_trip::<Message>(data);
    let f = message_fixture();
    let _ = verify_envelope(data, &f.sender, &f.sender_key.verify_key(), &f.recipient);
    if let Ok(envelope) = open_envelope(data, &f.sender, &f.recipient, &f.chain, MESSAGE_TIME) {
        let _ = open_message(&envelope, &f.private);
    }
    let topic = MessageTopic {
        realm: RealmId::from_bytes([4; 16]),
        key_index: 1,
        key_checks: strongroom_protocol::crypto::hash::Digest::of(b"the key checks"),
    };
    let opening_box = f
        .private
        .public_key()
        .seal(&mut rand_core::OsRng, data)
        .expect("a key of the fixture");
    for sealed_box in [data, &opening_box[..]] {
        let envelope = seal_envelope(
            sealed_box,
            &f.sender,
            &f.recipient,
            topic,
            MESSAGE_TIME,
            &f.sender_key,
        );
        let opened = open_envelope(&envelope, &f.sender, &f.recipient, &f.chain, MESSAGE_TIME)
            .expect("an envelope the fixture sealed");
        let _ = open_message(&opened, &f.private);
    }
}

/// Device files and the local store, as read from disk.
pub fn device_file(data: &[u8]) {
    round_trip::<DeviceFile>(data);
    round_trip::<DeviceKeys>(data);
    round_trip::<StoredCertificates>(data);
    if let Ok(file) = DeviceFile::decode(data) {
        // Opening runs Argon2 with the file's own parameters: keep the fuzzer fast (the bounds
        // themselves are checked in unit tests).
        if file.kdf.memory_kib <= 1024 && file.kdf.iterations <= 2 {
            let password = Password::new("fuzz");
            // Such a cost is weak: refused by the default policy before Argon2 runs.
            assert!(DeviceFile::open(data, &password, KdfPolicy::RequireDefault).is_err());
            let _ = DeviceFile::open(data, &password, KdfPolicy::AllowWeak);
        }
    }
}

/// Invitation steps as relayed by the server, and what travels inside the channel.
pub fn invite_step(data: &[u8]) {
    round_trip::<InviteStep>(data);
    round_trip::<ClaimerUserIdentity>(data);
    round_trip::<ClaimerDeviceIdentity>(data);
    round_trip::<InviteConfirmation>(data);
}

/// Text from the network or the user: event-stream blocks, links, server addresses.
pub fn text(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = strongroom_engine::connection::parse_block(&text);
    if let Some((name, rest)) = text.split_once('\n') {
        let _ = ServerEvent::from_sse(name, rest);
    }
    if let Ok(link) = text.parse::<InvitationLink>() {
        assert_eq!(link.to_string().parse::<InvitationLink>().ok(), Some(link));
    }
    if let Ok(link) = text.parse::<BootstrapLink>() {
        assert_eq!(link.to_string().parse::<BootstrapLink>().ok(), Some(link));
    }
    let _ = ServerAddr::parse(&text);
}

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// The targets by name, as the corpus folders are named.
pub const TARGETS: &[(&str, Target)] = &[
    ("wire_message", wire_message),
    ("message", message),
    ("certificate", certificate),
    ("device_file", device_file),
    ("invite_step", invite_step),
    ("manifest", manifest),
    ("text", text),
];
