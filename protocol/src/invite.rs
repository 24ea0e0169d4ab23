//! The invitation exchange as pure state machines (no IO): the engine relays their steps through
//! the server and shows the codes to people.
//!
//! 1. Both send ephemeral X25519 keys; the claimer also commits to a random nonce.
//! 2. The greeter sends its nonce; the claimer reveals its own; the greeter checks the commitment.
//! 3. Both derive the channel key and the two codes ([`crate::sas`]); people compare codes.
//! 4. Over the channel (XChaCha20-Poly1305 under the channel key, one direction label each way)
//!    the claimer sends its new public keys and the greeter answers with what the claimer needs.

use crate::certificates::UserProfile;
use crate::crypto::hash::{Digest, derive_key};
use crate::crypto::sealed_box::{PrivateKey, PublicKey};
use crate::crypto::secret_key::SecretKey;
use crate::crypto::signing::VerifyKey;
use crate::crypto::{CryptoError, SecretBytes};
use crate::encoding::{DecodeError, Encoded};
use crate::ids::{DeviceId, DeviceLabel, Email, HumanName, OrganizationId, UserId};
use crate::sas::{self, NONCE_LEN, SasCode, SasCodes};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

const CHANNEL_KEY_CONTEXT: &str = "strongroom 2026-11 invitation channel key";

/// One side of the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InviteSide {
    /// The member who invited.
    Greeter,
    /// The person (or new device) who was invited.
    Claimer,
}

impl InviteSide {
    /// The other side.
    pub fn peer(self) -> Self {
        match self {
            InviteSide::Greeter => InviteSide::Claimer,
            InviteSide::Claimer => InviteSide::Greeter,
        }
    }
}

/// One message of the exchange, as relayed by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InviteStep {
    /// The greeter's ephemeral key.
    GreeterPublicKey(PublicKey),
    /// The claimer's ephemeral key.
    ClaimerPublicKey(PublicKey),
    /// The claimer's commitment to its nonce.
    ClaimerCommitment(Digest),
    /// The greeter's nonce.
    GreeterNonce(#[serde(with = "serde_bytes")] [u8; NONCE_LEN]),
    /// The claimer's nonce, revealed.
    ClaimerNonce(#[serde(with = "serde_bytes")] [u8; NONCE_LEN]),
    /// The person on this side picked the right code.
    CodeConfirmed,
    /// Encrypted under the channel key.
    Channel(#[serde(with = "serde_bytes")] Vec<u8>),
}

impl Encoded for InviteStep {
    const TAG: &'static str = "invite-step";
    const VERSION: u8 = 1;
}

impl InviteStep {
    /// A short name for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            InviteStep::GreeterPublicKey(_) => "greeter public key",
            InviteStep::ClaimerPublicKey(_) => "claimer public key",
            InviteStep::ClaimerCommitment(_) => "claimer commitment",
            InviteStep::GreeterNonce(_) => "greeter nonce",
            InviteStep::ClaimerNonce(_) => "claimer nonce",
            InviteStep::CodeConfirmed => "code confirmation",
            InviteStep::Channel(_) => "channel message",
        }
    }
}

/// Why the exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// The peer (or the relay) sent something out of order.
    #[error("the invitation exchange received a {found} where it expected a {expected}")]
    UnexpectedStep {
        /// What the state machine waited for.
        expected: &'static str,
        /// What arrived.
        found: &'static str,
    },
    /// The claimer's nonce does not match its commitment: someone tampered with the exchange.
    #[error("the other side's nonce does not match its commitment: the exchange was tampered with")]
    CommitmentMismatch,
    /// A public key was unusable.
    #[error("the other side sent an unusable key")]
    WeakKey,
    /// The person picked a code that is not the one their device expected.
    #[error("wrong code: the code you picked is not the one the other device shows")]
    WrongCode,
    /// A channel message failed to decrypt: wrong key or tampered.
    #[error("a message from the other side could not be decrypted: the exchange was tampered with")]
    ChannelDecryption,
    /// A message was malformed.
    #[error("malformed invitation message: {0}")]
    Malformed(#[from] DecodeError),
}

impl From<CryptoError> for InviteError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::WeakPublicKey => InviteError::WeakKey,
            _ => InviteError::ChannelDecryption,
        }
    }
}

fn random_nonce(rng: &mut impl CryptoRngCore) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut n);
    n
}

fn channel_key(
    own: &PrivateKey,
    peer: &PublicKey,
    greeter: &PublicKey,
    claimer: &PublicKey,
) -> Result<SecretKey, InviteError> {
    let shared = own.diffie_hellman(peer)?;
    let mut material = Zeroizing::new([0u8; 96]);
    material[..32].copy_from_slice(shared.as_ref());
    material[32..64].copy_from_slice(&greeter.to_bytes());
    material[64..].copy_from_slice(&claimer.to_bytes());
    Ok(SecretKey::from_bytes(derive_key(
        CHANNEL_KEY_CONTEXT,
        material.as_ref(),
    )))
}

/// The greeter before it has heard from the claimer.
pub struct GreeterStart {
    secret: PrivateKey,
}

impl GreeterStart {
    /// A fresh ephemeral key.
    pub fn new(rng: &mut impl CryptoRngCore) -> Self {
        Self {
            secret: PrivateKey::generate(rng),
        }
    }

    /// The first step to send.
    pub fn hello(&self) -> InviteStep {
        InviteStep::GreeterPublicKey(self.secret.public_key())
    }

    /// Takes the claimer's key and commitment; returns the state and the greeter's nonce step.
    pub fn receive_claimer(
        self,
        public_key: &InviteStep,
        commitment: &InviteStep,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(GreeterAwaitingNonce, InviteStep), InviteError> {
        let InviteStep::ClaimerPublicKey(claimer) = public_key else {
            return Err(unexpected("claimer public key", public_key));
        };
        let InviteStep::ClaimerCommitment(commitment) = commitment else {
            return Err(unexpected("claimer commitment", commitment));
        };
        let nonce = random_nonce(rng);
        let greeter = self.secret.public_key();
        let key = channel_key(&self.secret, claimer, &greeter, claimer)?;
        Ok((
            GreeterAwaitingNonce {
                key,
                commitment: *commitment,
                nonce,
            },
            InviteStep::GreeterNonce(nonce),
        ))
    }
}

/// The greeter waiting for the claimer to reveal its nonce.
pub struct GreeterAwaitingNonce {
    key: SecretKey,
    commitment: Digest,
    nonce: [u8; NONCE_LEN],
}

impl GreeterAwaitingNonce {
    /// Checks the revealed nonce against the commitment and computes the codes.
    pub fn receive_nonce(self, step: &InviteStep) -> Result<CodeCheck, InviteError> {
        let InviteStep::ClaimerNonce(claimer_nonce) = step else {
            return Err(unexpected("claimer nonce", step));
        };
        if !sas::commitment(claimer_nonce).ct_eq(&self.commitment) {
            return Err(InviteError::CommitmentMismatch);
        }
        let codes = sas::codes(&self.key, &self.nonce, claimer_nonce);
        Ok(CodeCheck::new(InviteSide::Greeter, self.key, codes))
    }
}

/// The claimer before it has heard from the greeter.
pub struct ClaimerStart {
    secret: PrivateKey,
    nonce: [u8; NONCE_LEN],
}

impl ClaimerStart {
    /// A fresh ephemeral key and nonce.
    pub fn new(rng: &mut impl CryptoRngCore) -> Self {
        Self {
            secret: PrivateKey::generate(rng),
            nonce: random_nonce(rng),
        }
    }

    /// The first two steps to send: the key and the commitment to the nonce.
    pub fn hello(&self) -> [InviteStep; 2] {
        [
            InviteStep::ClaimerPublicKey(self.secret.public_key()),
            InviteStep::ClaimerCommitment(sas::commitment(&self.nonce)),
        ]
    }

    /// Takes the greeter's key and nonce; returns the codes and the nonce-revealing step.
    pub fn receive_greeter(
        self,
        public_key: &InviteStep,
        nonce: &InviteStep,
    ) -> Result<(CodeCheck, InviteStep), InviteError> {
        let InviteStep::GreeterPublicKey(greeter) = public_key else {
            return Err(unexpected("greeter public key", public_key));
        };
        let InviteStep::GreeterNonce(greeter_nonce) = nonce else {
            return Err(unexpected("greeter nonce", nonce));
        };
        let claimer = self.secret.public_key();
        let key = channel_key(&self.secret, greeter, greeter, &claimer)?;
        let codes = sas::codes(&key, greeter_nonce, &self.nonce);
        Ok((
            CodeCheck::new(InviteSide::Claimer, key, codes),
            InviteStep::ClaimerNonce(self.nonce),
        ))
    }
}

/// Both sides at the moment people compare codes.
pub struct CodeCheck {
    side: InviteSide,
    key: SecretKey,
    codes: SasCodes,
}

impl CodeCheck {
    fn new(side: InviteSide, key: SecretKey, codes: SasCodes) -> Self {
        Self { side, key, codes }
    }

    /// The code this side shows, to be read aloud to the other person.
    pub fn own_code(&self) -> SasCode {
        match self.side {
            InviteSide::Greeter => self.codes.greeter,
            InviteSide::Claimer => self.codes.claimer,
        }
    }

    fn expected_peer_code(&self) -> SasCode {
        match self.side {
            InviteSide::Greeter => self.codes.claimer,
            InviteSide::Claimer => self.codes.greeter,
        }
    }

    /// The four codes the person picks from, one of them right.
    pub fn candidates(&self, rng: &mut impl CryptoRngCore) -> [SasCode; sas::CANDIDATES] {
        sas::candidates(self.expected_peer_code(), rng)
    }

    /// Checks the person's pick; the right code opens the channel.
    pub fn pick(self, picked: SasCode) -> Result<Channel, InviteError> {
        if picked != self.expected_peer_code() {
            return Err(InviteError::WrongCode);
        }
        Ok(Channel {
            side: self.side,
            key: self.key,
        })
    }
}

/// The authenticated channel once codes matched.
pub struct Channel {
    side: InviteSide,
    key: SecretKey,
}

fn direction(from: InviteSide) -> &'static [u8] {
    match from {
        InviteSide::Greeter => b"strongroom invitation greeter to claimer",
        InviteSide::Claimer => b"strongroom invitation claimer to greeter",
    }
}

impl Channel {
    /// Encrypts a message to the other side.
    pub fn seal<T: Encoded>(&self, message: &T, rng: &mut impl CryptoRngCore) -> InviteStep {
        let plaintext = Zeroizing::new(message.encode());
        InviteStep::Channel(self.key.encrypt(rng, &plaintext, direction(self.side)))
    }

    /// Decrypts and decodes a message from the other side.
    pub fn open<T: Encoded>(&self, step: &InviteStep) -> Result<T, InviteError> {
        let InviteStep::Channel(ciphertext) = step else {
            return Err(unexpected("channel message", step));
        };
        let plaintext = Zeroizing::new(self.key.decrypt(ciphertext, direction(self.side.peer()))?);
        Ok(T::decode(&plaintext)?)
    }
}

fn unexpected(expected: &'static str, found: &InviteStep) -> InviteError {
    InviteError::UnexpectedStep {
        expected,
        found: found.name(),
    }
}

/// What a claimer of a user invitation sends over the channel: the public halves of the keys it
/// generated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimerUserIdentity {
    /// The claimer's name.
    pub human_name: HumanName,
    /// The label of the claimer's first device.
    pub device_label: DeviceLabel,
    /// The new user's encryption key.
    pub public_key: PublicKey,
    /// The new device's signing key.
    pub verify_key: VerifyKey,
}

impl Encoded for ClaimerUserIdentity {
    const TAG: &'static str = "invite-claimer-user";
    const VERSION: u8 = 1;
}

/// What a claimer of a device invitation sends over the channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimerDeviceIdentity {
    /// The new device's label.
    pub device_label: DeviceLabel,
    /// The new device's signing key.
    pub verify_key: VerifyKey,
}

impl Encoded for ClaimerDeviceIdentity {
    const TAG: &'static str = "invite-claimer-device";
    const VERSION: u8 = 1;
}

/// The greeter's answer once certificates are uploaded: who the claimer now is in the
/// organization, and the root key to pin. For a device invitation it also carries the user's
/// private encryption key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InviteConfirmation {
    /// The organization.
    pub organization: OrganizationId,
    /// The organization's root verify key: the claimer's trust anchor.
    pub root_verify_key: VerifyKey,
    /// The claimer's user.
    pub user_id: UserId,
    /// The claimer's new device.
    pub device_id: DeviceId,
    /// The user's email.
    pub email: Email,
    /// The user's name.
    pub human_name: HumanName,
    /// The user's profile.
    pub profile: UserProfile,
    /// The user's private encryption key (device invitations only).
    pub user_private_key: Option<SecretBytes>,
}

impl Encoded for InviteConfirmation {
    const TAG: &'static str = "invite-confirmation";
    const VERSION: u8 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    /// Runs the exchange up to the codes; `relay` may rewrite each step in transit.
    fn exchange(
        mut relay: impl FnMut(InviteStep) -> InviteStep,
    ) -> Result<(CodeCheck, CodeCheck), InviteError> {
        let greeter = GreeterStart::new(&mut OsRng);
        let claimer = ClaimerStart::new(&mut OsRng);
        let g_hello = relay(greeter.hello());
        let [c_key, c_commit] = claimer.hello().map(&mut relay);
        let (greeter, g_nonce) = greeter.receive_claimer(&c_key, &c_commit, &mut OsRng)?;
        let g_nonce = relay(g_nonce);
        let (claimer_check, c_nonce) = claimer.receive_greeter(&g_hello, &g_nonce)?;
        let greeter_check = greeter.receive_nonce(&relay(c_nonce))?;
        Ok((greeter_check, claimer_check))
    }

    #[test]
    fn honest_exchange_agrees_and_opens_a_channel() {
        let (g, c) = exchange(|s| s).unwrap();
        let g_code = g.own_code();
        let c_code = c.own_code();
        assert!(c.candidates(&mut OsRng).contains(&g_code));
        assert!(g.candidates(&mut OsRng).contains(&c_code));
        let g = g.pick(c_code).unwrap();
        let c = c.pick(g_code).unwrap();
        let identity = ClaimerDeviceIdentity {
            device_label: "phone".parse().unwrap(),
            verify_key: crate::crypto::signing::SigningKey::generate(&mut OsRng).verify_key(),
        };
        let sealed = c.seal(&identity, &mut OsRng);
        assert_eq!(g.open::<ClaimerDeviceIdentity>(&sealed).unwrap(), identity);
        // A message cannot be reflected back to its sender.
        assert_eq!(
            c.open::<ClaimerDeviceIdentity>(&sealed).err(),
            Some(InviteError::ChannelDecryption)
        );
    }

    #[test]
    fn wrong_pick_is_refused() {
        let (g, c) = exchange(|s| s).unwrap();
        let wrong = c
            .candidates(&mut OsRng)
            .into_iter()
            .find(|x| *x != g.own_code())
            .unwrap();
        assert_eq!(c.pick(wrong).err(), Some(InviteError::WrongCode));
    }

    #[test]
    fn key_swapping_relay_makes_codes_disagree() {
        // The relay replaces both ephemeral keys with its own (a man in the middle).
        let mitm_for_claimer = PrivateKey::generate(&mut OsRng).public_key();
        let mitm_for_greeter = PrivateKey::generate(&mut OsRng).public_key();
        let (g, c) = exchange(|step| match step {
            InviteStep::GreeterPublicKey(_) => InviteStep::GreeterPublicKey(mitm_for_claimer),
            InviteStep::ClaimerPublicKey(_) => InviteStep::ClaimerPublicKey(mitm_for_greeter),
            other => other,
        })
        .unwrap();
        // Each person hears the other's code, which their own device does not expect.
        let greeter_code = g.own_code();
        let claimer_code = c.own_code();
        assert_eq!(c.pick(greeter_code).err(), Some(InviteError::WrongCode));
        assert_eq!(g.pick(claimer_code).err(), Some(InviteError::WrongCode));
    }

    #[test]
    fn altered_nonce_breaks_the_commitment() {
        let err = exchange(|step| match step {
            InviteStep::ClaimerNonce(mut n) => {
                n[0] ^= 1;
                InviteStep::ClaimerNonce(n)
            }
            other => other,
        })
        .err();
        assert_eq!(err, Some(InviteError::CommitmentMismatch));
    }

    #[test]
    fn out_of_order_steps_are_refused() {
        let greeter = GreeterStart::new(&mut OsRng);
        let hello = greeter.hello();
        assert!(matches!(
            greeter.receive_claimer(&hello, &hello, &mut OsRng),
            Err(InviteError::UnexpectedStep { .. })
        ));
    }

    #[test]
    fn low_order_key_is_refused() {
        let claimer = ClaimerStart::new(&mut OsRng);
        let zero = InviteStep::GreeterPublicKey(PublicKey::from_bytes([0; 32]));
        assert_eq!(
            claimer
                .receive_greeter(&zero, &InviteStep::GreeterNonce([0; 32]))
                .err(),
            Some(InviteError::WeakKey)
        );
    }
}
