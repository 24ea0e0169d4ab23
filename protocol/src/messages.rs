//! Messages between users: signed by the sender's device, then sealed to the recipient's
//! encryption key. How workspace ids and keys travel when a workspace is shared or rotated.

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use crate::crypto::sealed_box::{PrivateKey, PublicKey};
use crate::crypto::signing::SigningKey;
use crate::encoding::{DecodeError, Encoded};
use crate::ids::{DeviceId, RealmId, UserId};
use crate::manifests::{EntryName, IndexedKey};
use crate::signed::Signed;
use crate::time::{OutOfBallpark, Timestamp, check_ballpark};
use crate::trust::{CertificateChain, TrustError};
use crate::workspace::WorkspaceRole;

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

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// It does not open with this user's key.
    #[error("message refused: it is not sealed to this user or was tampered with")]
    Sealed,
    /// Not a message.
    #[error("message refused: it is malformed ({0})")]
    Malformed(#[from] DecodeError),
    /// The author fails the identity chain.
    #[error("message refused: {0}")]
    Author(TrustError),
    /// The message is addressed to someone else.
    #[error("message refused: it is addressed to another user")]
    WrongRecipient,
    /// The message is dated too far from when the server received it.
    #[error("message refused: {0}")]
    OutOfBallpark(#[from] OutOfBallpark),
}

/// Signs and seals a message to the recipient's key.
pub fn seal_message(
    message: &Message,
    signer: &SigningKey,
    recipient: &PublicKey,
    rng: &mut impl CryptoRngCore,
) -> Vec<u8> {
    let signed = Signed::sign(message, signer).encode();
    recipient
        .seal(rng, &signed)
        .expect("recipient keys come from validated certificates")
}

/// Opens a message sealed to `me`, checking its author and signature against the identity chain
/// and its date against `received`, when the server received it (the server cannot read the
/// message's own date, so only its readers can hold it to the ballpark rule).
pub fn open_message(
    sealed: &[u8],
    me: &UserId,
    private_key: &PrivateKey,
    identity: &CertificateChain,
    received: Timestamp,
) -> Result<Message, MessageError> {
    let plaintext =
        zeroize::Zeroizing::new(private_key.open(sealed).map_err(|_| MessageError::Sealed)?);
    let signed = Signed::decode(&plaintext)?;
    let message = Message::decode(&signed.content)?;
    check_ballpark(message.timestamp, received)?;
    let (device, _) = identity
        .active_author_at(&message.author, message.timestamp)
        .map_err(MessageError::Author)?;
    signed.verify(&device.verify_key).map_err(|_| {
        MessageError::Author(TrustError::BadSignature(format!(
            "device {}",
            message.author
        )))
    })?;
    if message.recipient != *me {
        return Err(MessageError::WrongRecipient);
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Org;
    use crate::time::CLOCK_SKEW_MICROS;
    use rand_core::OsRng;

    #[test]
    fn messages_open_for_their_recipient_within_the_ballpark_only() {
        let (org, alice) = Org::bootstrap();
        let recipient = PrivateKey::generate(&mut OsRng);
        let bob = UserId::generate(&mut OsRng);
        let message = Message {
            author: alice.device_id,
            timestamp: org.now(),
            recipient: bob,
            body: MessageBody::WorkspaceUnshared {
                realm: RealmId::generate(&mut OsRng),
            },
        };
        let sealed = seal_message(&message, &alice.key, &recipient.public_key(), &mut OsRng);
        let open = |me: &UserId, received: Timestamp| {
            open_message(&sealed, me, &recipient, &org.chain, received)
        };
        assert_eq!(open(&bob, org.now()), Ok(message.clone()));
        assert_eq!(
            open(&bob, org.now().plus_micros(CLOCK_SKEW_MICROS)),
            Ok(message.clone())
        );
        // Backdated or postdated beyond the window (a sender avoiding its removal, or a
        // server stretching when a message counts): refused.
        let late = org.now().plus_micros(CLOCK_SKEW_MICROS + 1);
        assert_eq!(
            open(&bob, late),
            Err(MessageError::OutOfBallpark(OutOfBallpark {
                authored: message.timestamp,
                received: late
            }))
        );
        assert_eq!(
            open(&UserId::generate(&mut OsRng), org.now()),
            Err(MessageError::WrongRecipient)
        );
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            open_message(&tampered, &bob, &recipient, &org.chain, org.now()),
            Err(MessageError::Sealed)
        );
    }
}
