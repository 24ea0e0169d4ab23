//! Messages between users: signed by the sender's device, sealed to the recipient's encryption
//! key, then the sealed box is itself sealed (an Ed25519 signature by the sending device) with
//! what it is about in clear: the workspace and its key index as of the certificate it goes
//! with, and its date. How workspace ids and keys travel when a workspace is shared or rotated.
//!
//! The outer seal is what makes a message that does not work attributable. The server checks
//! it on arrival (it knows the sending device's key, the workspace and the certificate), and so
//! does the recipient ([`open_envelope`]): a seal that fails is the server's doing
//! ([`EnvelopeError`]). A sealed box that then does not open, or opens to something other than
//! what the seal says, is its sender's doing ([`MessageError`]): the recipient knows who handed
//! out a key that does not work, for which workspace and key index.

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use crate::crypto::hash::Digest;
use crate::crypto::sealed_box::{PrivateKey, PublicKey};
use crate::crypto::signing::{Signature, SigningKey, VerifyKey};
use crate::encoding::{DecodeError, Encoded};
use crate::ids::{DeviceId, RealmId, UserId};
use crate::manifests::{EntryName, IndexedKey};
use crate::signed::Signed;
use crate::time::{OutOfBallpark, Timestamp, check_ballpark};
use crate::trust::{CertificateChain, TrustError};
use crate::workspace::{RealmChain, WorkspaceRole};

/// What a message says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageBody {
    /// You were given a role in a workspace: its name and every key index.
    WorkspaceShared {
        /// The realm.
        realm: RealmId,
        /// The sharer's name for it.
        name: EntryName,
        /// The role.
        role: WorkspaceRole,
        /// The keys.
        keys: Vec<IndexedKey>,
    },
    /// A workspace's key was rotated: the new key.
    WorkspaceKey {
        /// The realm.
        realm: RealmId,
        /// The new key.
        key: IndexedKey,
    },
    /// You were removed from a workspace.
    WorkspaceUnshared {
        /// The realm.
        realm: RealmId,
    },
}

/// A message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The sending device.
    pub author: DeviceId,
    /// When.
    pub timestamp: Timestamp,
    /// The recipient.
    pub recipient: UserId,
    /// The content.
    pub body: MessageBody,
}

impl Encoded for Message {
    const TAG: &'static str = "message";
    const VERSION: u8 = 1;
}

/// What a message is about, in clear beside it and sealed with it: the workspace, and its key
/// index as of the certificate the message goes with (the new index of a rotation, the current
/// one of a share).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageTopic {
    /// The workspace.
    pub realm: RealmId,
    /// Its key index as of the certificate.
    pub key_index: u32,
    /// The digest of the certified check values of key indexes 1 to `key_index`
    /// ([`crate::workspace::key_checks_digest`]): the keys the sender hands out must match them.
    pub key_checks: Digest,
}

impl MessageTopic {
    /// The topic of a message that goes with the certificate that made `chain` what it is:
    /// its workspace, current key index and the check values up to it.
    pub fn of(chain: &RealmChain) -> Self {
        let key_index = chain.key_index();
        Self {
            realm: chain.realm(),
            key_index,
            key_checks: chain
                .key_checks_digest(key_index)
                .expect("a chain certifies every index up to its current one"),
        }
    }
}

/// The length of what precedes the sealed box in an envelope: the realm (16), the key index
/// (u32 BE), the key checks digest (32), the date (i64 BE, microseconds) and the seal (64).
pub const ENVELOPE_HEADER_BYTES: usize = 16 + 4 + 32 + 8 + 64;

/// A message whose outer seal holds: what it is about, by whom, for whom and when, and the
/// sealed box (which only the recipient opens, with [`open_message`]).
#[derive(Debug, Clone)]
pub struct Envelope<'b> {
    /// The workspace and key index it is about.
    pub topic: MessageTopic,
    /// When its sender sealed it.
    pub timestamp: Timestamp,
    /// The sending device.
    pub sender: DeviceId,
    /// The sending device's user.
    pub sender_user: UserId,
    /// The recipient.
    pub recipient: UserId,
    sender_key: VerifyKey,
    sealed_box: &'b [u8],
}

/// Why an envelope was refused: its outer seal does not hold for the sender, recipient, topic
/// and date the server names, so the server changed, swapped or invented it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Shorter than a header.
    #[error("message refused: it is too short to be a sealed message")]
    Truncated,
    /// The seal fails.
    #[error(
        "message refused: it is not sealed by the device the server names as its sender, for this user (tampered or swapped after it was sent)"
    )]
    Unsealed,
    /// The sending device fails the identity chain at the message's date.
    #[error("message refused: {0}")]
    Sender(TrustError),
    /// Dated too far from when the server says it received it.
    #[error("message refused: {0}")]
    OutOfBallpark(#[from] OutOfBallpark),
}

/// Why a sealed message does not work for its recipient: its sender sealed it so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The sealed box does not open with this user's key.
    #[error("it does not open with this user's key")]
    Sealed,
    /// Not a message.
    #[error("it is malformed ({0})")]
    Malformed(#[from] DecodeError),
    /// The inner signature fails.
    #[error("its signature fails")]
    BadSignature,
    /// The inner message says another sender, recipient, date, workspace or key index than
    /// its seal.
    #[error("it says {0} other than its seal")]
    Inconsistent(&'static str),
}

/// What an envelope's seal signs.
fn envelope_seal_message(
    sender: &DeviceId,
    recipient: &UserId,
    topic: &MessageTopic,
    timestamp: Timestamp,
    sealed_box: &[u8],
) -> Vec<u8> {
    let mut message = b"strongroom message seal v1".to_vec();
    message.extend_from_slice(sender.as_bytes());
    message.extend_from_slice(recipient.as_bytes());
    message.extend_from_slice(topic.realm.as_bytes());
    message.extend_from_slice(&topic.key_index.to_be_bytes());
    message.extend_from_slice(topic.key_checks.as_bytes());
    message.extend_from_slice(&timestamp.as_micros().to_be_bytes());
    message.extend_from_slice(Digest::of(sealed_box).as_bytes());
    message
}

/// Signs `message`, seals it to the recipient's key, and seals the box as sent by
/// `message.author` about `topic` at `message.timestamp`: the bytes the server delivers.
pub fn seal_message(
    message: &Message,
    topic: MessageTopic,
    signer: &SigningKey,
    recipient: &PublicKey,
    rng: &mut impl CryptoRngCore,
) -> Vec<u8> {
    let signed = zeroize::Zeroizing::new(Signed::sign(message, signer).encode());
    let sealed_box = recipient
        .seal(rng, &signed)
        .expect("recipient keys come from validated certificates");
    seal_envelope(
        &sealed_box,
        &message.author,
        &message.recipient,
        topic,
        message.timestamp,
        signer,
    )
}

/// Seals `sealed_box` as sent by `sender` (signing with `signer`) to `recipient` about `topic`
/// at `timestamp`, whatever the box holds: the envelope [`seal_message`] makes.
pub fn seal_envelope(
    sealed_box: &[u8],
    sender: &DeviceId,
    recipient: &UserId,
    topic: MessageTopic,
    timestamp: Timestamp,
    signer: &SigningKey,
) -> Vec<u8> {
    let seal = signer.sign(&envelope_seal_message(
        sender, recipient, &topic, timestamp, sealed_box,
    ));
    let mut out = Vec::with_capacity(ENVELOPE_HEADER_BYTES + sealed_box.len());
    out.extend_from_slice(topic.realm.as_bytes());
    out.extend_from_slice(&topic.key_index.to_be_bytes());
    out.extend_from_slice(topic.key_checks.as_bytes());
    out.extend_from_slice(&timestamp.as_micros().to_be_bytes());
    out.extend_from_slice(&seal.to_bytes());
    out.extend_from_slice(sealed_box);
    out
}

/// An envelope's header, unchecked: what it is about, when, the seal, the box.
fn split_envelope(
    bytes: &[u8],
) -> Result<(MessageTopic, Timestamp, Signature, &[u8]), EnvelopeError> {
    if bytes.len() < ENVELOPE_HEADER_BYTES {
        return Err(EnvelopeError::Truncated);
    }
    let (realm, rest) = bytes.split_at(16);
    let (index, rest) = rest.split_at(4);
    let (checks, rest) = rest.split_at(32);
    let (timestamp, rest) = rest.split_at(8);
    let (seal, sealed_box) = rest.split_at(64);
    let fixed = "split at the header's lengths";
    let topic = MessageTopic {
        realm: RealmId::from_bytes(realm.try_into().expect(fixed)),
        key_index: u32::from_be_bytes(index.try_into().expect(fixed)),
        key_checks: Digest::from_bytes(checks.try_into().expect(fixed)),
    };
    let timestamp = Timestamp::from_micros(i64::from_be_bytes(timestamp.try_into().expect(fixed)));
    let seal = Signature::from_bytes(seal.try_into().expect(fixed));
    Ok((topic, timestamp, seal, sealed_box))
}

/// Checks that `bytes` are sealed by `sender` (whose key is `sender_key`) for `recipient`: what
/// the server runs on arrival, before it compares the topic with the certificate the message
/// goes with and the date with its clock.
pub fn verify_envelope(
    bytes: &[u8],
    sender: &DeviceId,
    sender_key: &VerifyKey,
    recipient: &UserId,
) -> Result<(MessageTopic, Timestamp), EnvelopeError> {
    let (topic, timestamp, seal, sealed_box) = split_envelope(bytes)?;
    sender_key
        .verify(
            &envelope_seal_message(sender, recipient, &topic, timestamp, sealed_box),
            &seal,
        )
        .map_err(|_| EnvelopeError::Unsealed)?;
    Ok((topic, timestamp))
}

/// Checks a delivered message's outer seal for `me`: sent by `sender` (as the server names
/// it), a device of the identity chain that was active at the message's date, dated within the
/// clock skew of `received` (when the server says it received it). Every failure here is the
/// server's doing.
pub fn open_envelope<'b>(
    bytes: &'b [u8],
    sender: &DeviceId,
    me: &UserId,
    identity: &CertificateChain,
    received: Timestamp,
) -> Result<Envelope<'b>, EnvelopeError> {
    let (_, timestamp, _, _) = split_envelope(bytes)?;
    check_ballpark(timestamp, received)?;
    let (device, user) = identity
        .active_author_at(sender, timestamp)
        .map_err(EnvelopeError::Sender)?;
    let (topic, timestamp) = verify_envelope(bytes, sender, &device.verify_key, me)?;
    let (_, _, _, sealed_box) = split_envelope(bytes)?;
    Ok(Envelope {
        topic,
        timestamp,
        sender: *sender,
        sender_user: user.certificate.user_id,
        recipient: *me,
        sender_key: device.verify_key,
        sealed_box,
    })
}

/// Opens the sealed box of an envelope whose seal holds: it must open with this user's key and
/// say what the seal says (sender, recipient, date, workspace, and for a new key its index).
/// Every failure here is the sender's doing.
pub fn open_message(
    envelope: &Envelope<'_>,
    private_key: &PrivateKey,
) -> Result<Message, MessageError> {
    let plaintext = zeroize::Zeroizing::new(
        private_key
            .open(envelope.sealed_box)
            .map_err(|_| MessageError::Sealed)?,
    );
    let signed = Signed::decode(&plaintext)?;
    signed
        .verify(&envelope.sender_key)
        .map_err(|_| MessageError::BadSignature)?;
    let message = Message::decode(&signed.content)?;
    if message.author != envelope.sender {
        return Err(MessageError::Inconsistent("another sender"));
    }
    if message.recipient != envelope.recipient {
        return Err(MessageError::Inconsistent("another recipient"));
    }
    if message.timestamp != envelope.timestamp {
        return Err(MessageError::Inconsistent("another date"));
    }
    let realm = match &message.body {
        MessageBody::WorkspaceShared { realm, .. }
        | MessageBody::WorkspaceKey { realm, .. }
        | MessageBody::WorkspaceUnshared { realm } => *realm,
    };
    if realm != envelope.topic.realm {
        return Err(MessageError::Inconsistent("another workspace"));
    }
    if let MessageBody::WorkspaceKey { key, .. } = &message.body
        && key.index != envelope.topic.key_index
    {
        return Err(MessageError::Inconsistent("another key index"));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Org;
    use crate::time::CLOCK_SKEW_MICROS;
    use rand_core::OsRng;

    struct Sent {
        org: Org,
        sender: DeviceId,
        sender_key: SigningKey,
        bob: UserId,
        bobs_key: PrivateKey,
        topic: MessageTopic,
        message: Message,
    }

    fn sent() -> Sent {
        let (org, alice) = Org::bootstrap();
        let bob = UserId::generate(&mut OsRng);
        let realm = RealmId::generate(&mut OsRng);
        let message = Message {
            author: alice.device_id,
            timestamp: org.now(),
            recipient: bob,
            body: MessageBody::WorkspaceUnshared { realm },
        };
        Sent {
            sender: alice.device_id,
            sender_key: alice.key,
            bob,
            bobs_key: PrivateKey::generate(&mut OsRng),
            topic: MessageTopic {
                realm,
                key_index: 2,
                key_checks: Digest::of(b"the check values of keys 1 and 2"),
            },
            message,
            org,
        }
    }

    impl Sent {
        fn seal(&self, message: &Message) -> Vec<u8> {
            seal_message(
                message,
                self.topic,
                &self.sender_key,
                &self.bobs_key.public_key(),
                &mut OsRng,
            )
        }

        fn open(&self, bytes: &[u8], received: Timestamp) -> Result<Message, String> {
            let envelope = open_envelope(bytes, &self.sender, &self.bob, &self.org.chain, received)
                .map_err(|e| format!("envelope: {e}"))?;
            open_message(&envelope, &self.bobs_key).map_err(|e| format!("message: {e}"))
        }
    }

    #[test]
    fn messages_open_for_their_recipient_within_the_ballpark_only() {
        let s = sent();
        let sealed = s.seal(&s.message);
        assert_eq!(s.open(&sealed, s.org.now()), Ok(s.message.clone()));
        assert_eq!(
            s.open(&sealed, s.org.now().plus_micros(CLOCK_SKEW_MICROS)),
            Ok(s.message.clone())
        );
        // Dated beyond the window of when the server says it received it: the server's doing
        // (the date is sealed, and the server checked it against its clock on arrival).
        let late = s.org.now().plus_micros(CLOCK_SKEW_MICROS + 1);
        assert!(
            s.open(&sealed, late).unwrap_err().starts_with("envelope:"),
            "refused before its box is opened"
        );
        // Another recipient: the seal fails for them.
        let other = UserId::generate(&mut OsRng);
        assert_eq!(
            open_envelope(&sealed, &s.sender, &other, &s.org.chain, s.org.now()).unwrap_err(),
            EnvelopeError::Unsealed
        );
        // Any byte changed, in the header or the box: the seal fails.
        for at in [0, 17, 21, 40, 53, ENVELOPE_HEADER_BYTES, sealed.len() - 1] {
            let mut tampered = sealed.clone();
            tampered[at] ^= 1;
            assert!(
                s.open(&tampered, s.org.now())
                    .unwrap_err()
                    .starts_with("envelope:"),
                "byte {at}"
            );
        }
        assert_eq!(
            verify_envelope(&sealed[..10], &s.sender, &s.sender_key.verify_key(), &s.bob),
            Err(EnvelopeError::Truncated)
        );
        assert_eq!(
            verify_envelope(&sealed, &s.sender, &s.sender_key.verify_key(), &s.bob),
            Ok((s.topic, s.message.timestamp))
        );
    }

    #[test]
    fn a_sealed_message_that_does_not_work_is_its_senders_doing() {
        let s = sent();
        let seal_box = |sealed_box: &[u8]| {
            seal_envelope(
                sealed_box,
                &s.sender,
                &s.bob,
                s.topic,
                s.message.timestamp,
                &s.sender_key,
            )
        };
        // Garbage, sealed by the sender: the seal holds, the box does not open.
        assert_eq!(
            s.open(&seal_box(&[0x5a; 120]), s.org.now()),
            Err("message: it does not open with this user's key".into())
        );
        // A box that opens to something else than a message.
        let not_signed = s.bobs_key.public_key().seal(&mut OsRng, b"hello").unwrap();
        assert!(
            s.open(&seal_box(&not_signed), s.org.now())
                .unwrap_err()
                .starts_with("message: it is malformed")
        );
        // Opens, but says other than its seal.
        let mut other_realm = s.message.clone();
        other_realm.body = MessageBody::WorkspaceUnshared {
            realm: RealmId::generate(&mut OsRng),
        };
        let mut other_date = s.message.clone();
        other_date.timestamp = other_date.timestamp.plus_micros(1);
        let mut other_recipient = s.message.clone();
        other_recipient.recipient = UserId::generate(&mut OsRng);
        let other_key = MessageBody::WorkspaceKey {
            realm: s.topic.realm,
            key: IndexedKey {
                index: s.topic.key_index + 1,
                key: crate::crypto::secret_key::SecretKey::generate(&mut OsRng),
            },
        };
        for (message, what) in [
            (other_realm, "another workspace"),
            (other_date, "another date"),
            (other_recipient, "another recipient"),
            (
                Message {
                    body: other_key,
                    ..s.message.clone()
                },
                "another key index",
            ),
        ] {
            let signed = Signed::sign(&message, &s.sender_key).encode();
            let sealed_box = s.bobs_key.public_key().seal(&mut OsRng, &signed).unwrap();
            assert_eq!(
                s.open(&seal_box(&sealed_box), s.org.now()),
                Err(format!("message: it says {what} other than its seal"))
            );
        }
    }
}
