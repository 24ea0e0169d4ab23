//! What XChaCha20-Poly1305 ([`super::secret_key`]) and XAES-256-GCM ([`super::block_key`]) share:
//! a 192-bit random nonce whose first part derives a one-message key for a 96-bit-nonce AEAD
//! (`ring`'s), and the layout `nonce || ciphertext || tag`, sealed and opened in place.

use ring::aead::{Aad, LessSafeKey, Nonce, Tag};

use super::CryptoError;

/// Length of the random nonce prepended to every ciphertext.
pub const NONCE_LEN: usize = 24;
/// Length of the tag appended to every ciphertext.
pub const TAG_LEN: usize = 16;

/// Derives the one-message AEAD key and its 96-bit nonce from the 192-bit nonce.
pub(crate) type PerNonce<'a> = &'a dyn Fn(&[u8; NONCE_LEN]) -> (LessSafeKey, Nonce);

/// `nonce || ciphertext || tag`, in one allocation, encrypted in place.
pub(crate) fn seal(
    per_nonce: PerNonce<'_>,
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
    aad: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(nonce);
    out.extend_from_slice(plaintext);
    let (cipher, inner_nonce) = per_nonce(nonce);
    let tag = cipher
        .seal_in_place_separate_tag(inner_nonce, Aad::from(aad), &mut out[NONCE_LEN..])
        .expect("the AEAD encrypts any message that fits in memory");
    out.extend_from_slice(tag.as_ref());
    out
}

/// Opens what [`seal`] produced: the buffer becomes the plaintext, with no second allocation.
pub(crate) fn open(
    per_nonce: PerNonce<'_>,
    mut data: Vec<u8>,
    aad: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if data.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::MalformedCiphertext);
    }
    let tag_at = data.len() - TAG_LEN;
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&data[..NONCE_LEN]);
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&data[tag_at..]);
    let (cipher, inner_nonce) = per_nonce(&nonce);
    cipher
        .open_in_place_separate_tag(
            inner_nonce,
            Aad::from(aad),
            Tag::from(tag),
            &mut data[NONCE_LEN..tag_at],
            0..,
        )
        .map_err(|_| CryptoError::DecryptionFailed)?;
    data.truncate(tag_at);
    data.drain(..NONCE_LEN);
    Ok(data)
}
