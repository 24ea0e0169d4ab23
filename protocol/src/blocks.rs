//! Block encryption: each block is encrypted with XAES-256-GCM under the block key of a realm
//! key ([`BlockKey`]), binding realm, block id and key index as associated data, and checked after decryption against the BLAKE3 digest and length
//! its file manifest records.

use rand_core::CryptoRngCore;

use crate::crypto::block_key::{BlockKey, NONCE_LEN, TAG_LEN};
use crate::crypto::hash::Digest;
use crate::crypto::secret_key::SecretKey;
use crate::ids::{BlockId, RealmId};
use crate::manifests::BlockRef;

/// Bytes that encryption adds to a block.
pub const BLOCK_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// Why a block was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// Decryption failed: tampered, swapped with another block, or the wrong key.
    #[error("block {0} refused: it does not decrypt (tampered, swapped or truncated)")]
    Decryption(BlockId),
    /// Its content does not match the manifest's digest or length.
    #[error("block {0} refused: its content does not match the digest its file records")]
    Digest(BlockId),
}

fn block_aad(realm: &RealmId, id: &BlockId, key_index: u32) -> Vec<u8> {
    let mut aad = b"strongroom block v1".to_vec();
    aad.extend_from_slice(realm.as_bytes());
    aad.extend_from_slice(id.as_bytes());
    aad.extend_from_slice(&key_index.to_be_bytes());
    aad
}

/// Encrypts a block's plaintext.
pub fn seal_block(
    key: &SecretKey,
    realm: &RealmId,
    id: &BlockId,
    key_index: u32,
    plaintext: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Vec<u8> {
    BlockKey::of_workspace_key(key).encrypt(rng, plaintext, &block_aad(realm, id, key_index))
}

/// Decrypts a block and checks it against its reference.
pub fn open_block(
    key: &SecretKey,
    realm: &RealmId,
    block: &BlockRef,
    ciphertext: &[u8],
) -> Result<Vec<u8>, BlockError> {
    open_block_owned(key, realm, block, ciphertext.to_vec())
}

/// [`open_block`] decrypting in place, in the buffer that held the ciphertext.
pub fn open_block_owned(
    key: &SecretKey,
    realm: &RealmId,
    block: &BlockRef,
    ciphertext: Vec<u8>,
) -> Result<Vec<u8>, BlockError> {
    let plaintext = BlockKey::of_workspace_key(key)
        .decrypt_owned(ciphertext, &block_aad(realm, &block.id, block.key_index))
        .map_err(|_| BlockError::Decryption(block.id))?;
    if plaintext.len() != block.len as usize || !Digest::of(&plaintext).ct_eq(&block.digest) {
        return Err(BlockError::Digest(block.id));
    }
    Ok(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    fn setup(data: &[u8]) -> (SecretKey, RealmId, BlockRef, Vec<u8>) {
        let key = SecretKey::generate(&mut OsRng);
        let realm = RealmId::generate(&mut OsRng);
        let id = BlockId::generate(&mut OsRng);
        let sealed = seal_block(&key, &realm, &id, 1, data, &mut OsRng);
        let reference = BlockRef {
            id,
            key_index: 1,
            offset: 0,
            len: data.len() as u32,
            digest: Digest::of(data),
        };
        (key, realm, reference, sealed)
    }

    #[test]
    fn round_trip() {
        let (key, realm, reference, sealed) = setup(b"hello block");
        assert_eq!(sealed.len(), 11 + BLOCK_OVERHEAD);
        assert_eq!(
            open_block(&key, &realm, &reference, &sealed).unwrap(),
            b"hello block"
        );
    }

    #[test]
    fn flipped_bit_swapped_block_and_truncation_are_refused() {
        let (key, realm, reference, mut sealed) = setup(b"hello block");
        let mut other = reference.clone();
        other.id = BlockId::generate(&mut OsRng);
        assert_eq!(
            open_block(&key, &realm, &other, &sealed),
            Err(BlockError::Decryption(other.id))
        );
        let mut wrong_index = reference.clone();
        wrong_index.key_index = 2;
        assert!(open_block(&key, &realm, &wrong_index, &sealed).is_err());
        assert!(open_block(&key, &realm, &reference, &sealed[..sealed.len() - 1]).is_err());
        sealed[30] ^= 1;
        assert_eq!(
            open_block(&key, &realm, &reference, &sealed),
            Err(BlockError::Decryption(reference.id))
        );
    }

    #[test]
    fn digest_mismatch_is_refused() {
        let (key, realm, mut reference, sealed) = setup(b"hello block");
        reference.digest = Digest::of(b"something else");
        assert_eq!(
            open_block(&key, &realm, &reference, &sealed),
            Err(BlockError::Digest(reference.id))
        );
    }
}
