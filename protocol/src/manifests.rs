//! Manifests: what the vlobs of a realm hold. Signed by their author device, then encrypted with
//! the realm's key. The signed content repeats the realm, vlob id, version, author and timestamp,
//! and the encryption binds realm, id, version and key index as associated data, so that a server
//! that swaps blobs between entries, replays another version or renames an author is caught.
//!
//! The ciphertext is sealed too: the author's device signs it with where it sits and who wrote
//! it when. The server checks that seal when it accepts a write (it holds every device's public
//! key), so a version whose seal fails at a reader was changed after its author stored it (the
//! server's doing), while a version that is sealed by a member who could write and still does
//! not open is that member's doing ([`ManifestError::Unreadable`]), and readers can step past it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use crate::crypto::hash::Digest;
use crate::crypto::secret_key::SecretKey;
use crate::crypto::signing::{Signature, SigningKey, VerifyKey};
use crate::encoding::{DecodeError, Encoded};
use crate::ids::{BlockId, DeviceId, EntryId, RealmId, UserId};
use crate::signed::Signed;
use crate::time::{CLOCK_SKEW_MICROS, OutOfBallpark, Timestamp, check_ballpark, judged_at};
use crate::trust::{CertificateChain, TrustError};
use crate::workspace::{RealmChain, key_check};

/// A name inside a folder: 1 to 255 bytes of UTF-8, without `/` or NUL, not `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EntryName(String);

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid name {name:?}: {reason}")]
pub struct InvalidEntryName {
    /// The name (truncated).
    pub name: String,
    /// Why.
    pub reason: &'static str,
}

impl EntryName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EntryName {
    type Error = InvalidEntryName;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let refuse = |reason| {
            Err(InvalidEntryName {
                name: s.chars().take(64).collect(),
                reason,
            })
        };
        if s.is_empty() {
            return refuse("a name cannot be empty");
        }
        if s.len() > 255 {
            return refuse("a name is at most 255 bytes");
        }
        if s == "." || s == ".." {
            return refuse("`.` and `..` are not names");
        }
        if s.contains('/') {
            return refuse("a name cannot contain `/`");
        }
        if s.contains('\0') {
            return refuse("a name cannot contain NUL");
        }
        Ok(Self(s))
    }
}

impl From<EntryName> for String {
    fn from(n: EntryName) -> String {
        n.0
    }
}

impl FromStr for EntryName {
    type Err = InvalidEntryName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.to_owned())
    }
}

impl fmt::Display for EntryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One block of a file: where its bytes go and how to check them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRef {
    /// The block.
    pub id: BlockId,
    /// The realm key index it was encrypted with.
    pub key_index: u32,
    /// Offset of its first byte in the file.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u32,
    /// BLAKE3 of its plaintext.
    pub digest: Digest,
}

/// A realm key with its index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedKey {
    /// The index.
    pub index: u32,
    /// The key.
    pub key: SecretKey,
}

/// Part of a large file's block list, stored as an encrypted block of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockIndex {
    /// Blocks in offset order.
    pub blocks: Vec<BlockRef>,
}

impl Encoded for BlockIndex {
    const TAG: &'static str = "block-index";
    const VERSION: u8 = 1;
}

/// A workspace as its member's user manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceEntry {
    /// The realm (also the root folder's id).
    pub realm: RealmId,
    /// The name this user gave it.
    pub name: EntryName,
    /// Every key index the user holds.
    pub keys: Vec<IndexedKey>,
}

impl WorkspaceEntry {
    /// The key of an index.
    pub fn key(&self, index: u32) -> Option<&SecretKey> {
        self.keys.iter().find(|k| k.index == index).map(|k| &k.key)
    }

    /// The highest index held.
    pub fn latest(&self) -> Option<&IndexedKey> {
        self.keys.iter().max_by_key(|k| k.index)
    }
}

/// What a manifest describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ManifestBody {
    /// A folder (a workspace root is the folder whose id is the realm's).
    Folder {
        /// The parent folder (the root is its own parent).
        parent: EntryId,
        /// Children by name.
        children: BTreeMap<EntryName, EntryId>,
    },
    /// A file.
    File {
        /// The parent folder.
        parent: EntryId,
        /// Size in bytes.
        size: u64,
        /// The block size the file was cut with.
        block_size: u32,
        /// Blocks in offset order; ranges without a block read as zeros (sparse files).
        blocks: Vec<BlockRef>,
        /// For files with very many blocks, `blocks` is empty and these index blocks hold the
        /// block list instead (each an encrypted [`BlockIndex`]), so that a huge file never
        /// makes a huge manifest.
        #[serde(default)]
        index: Vec<BlockRef>,
    },
    /// A symbolic link.
    Symlink {
        /// The parent folder.
        parent: EntryId,
        /// Where it points.
        target: String,
    },
    /// A user's own manifest: their workspaces and keys.
    User {
        /// The workspaces.
        workspaces: Vec<WorkspaceEntry>,
    },
}

/// One version of a vlob's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The signing device.
    pub author: DeviceId,
    /// When.
    pub timestamp: Timestamp,
    /// The realm.
    pub realm: RealmId,
    /// The vlob.
    pub id: EntryId,
    /// The version (1, 2, ...).
    pub version: u32,
    /// The content.
    pub body: ManifestBody,
}

impl Encoded for Manifest {
    const TAG: &'static str = "manifest";
    const VERSION: u8 = 1;
}

/// Where a manifest version sits, as the client asked for it and the server described it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlobCoordinates {
    /// The realm.
    pub realm: RealmId,
    /// The vlob.
    pub id: EntryId,
    /// The version.
    pub version: u32,
    /// The key index the server says encrypts it.
    pub key_index: u32,
    /// The author device the server reports.
    pub author: DeviceId,
    /// The timestamp the server reports.
    pub timestamp: Timestamp,
    /// When the server says it received this version.
    pub received: Timestamp,
}

fn manifest_aad(realm: &RealmId, id: &EntryId, version: u32, key_index: u32) -> Vec<u8> {
    let mut aad = b"strongroom manifest v1".to_vec();
    aad.extend_from_slice(realm.as_bytes());
    aad.extend_from_slice(id.as_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
    aad.extend_from_slice(&key_index.to_be_bytes());
    aad
}

/// The length of a blob's seal, which comes first.
pub const SEAL_BYTES: usize = 64;

/// The length of what precedes the ciphertext in a blob: the seal, then the check value of the
/// key that encrypts it.
pub const SEALED_HEADER_BYTES: usize = SEAL_BYTES + 32;

/// What a blob's seal signs: where the version sits, who wrote it when, which key encrypts it
/// (its check value), and its ciphertext.
fn seal_message(coordinates: &VlobCoordinates, key_check: &Digest, ciphertext: &[u8]) -> Vec<u8> {
    let mut message = b"strongroom manifest seal v2".to_vec();
    message.extend_from_slice(coordinates.realm.as_bytes());
    message.extend_from_slice(coordinates.id.as_bytes());
    message.extend_from_slice(&coordinates.version.to_be_bytes());
    message.extend_from_slice(&coordinates.key_index.to_be_bytes());
    message.extend_from_slice(coordinates.author.as_bytes());
    message.extend_from_slice(&coordinates.timestamp.as_micros().to_be_bytes());
    message.extend_from_slice(key_check.as_bytes());
    message.extend_from_slice(Digest::of(ciphertext).as_bytes());
    message
}

/// Seals `ciphertext`, encrypted with the key whose check value is `key_check`, as the version
/// at `coordinates` (their `received` is not sealed): the blob a client stores.
pub fn seal_ciphertext(
    coordinates: &VlobCoordinates,
    key_check: &Digest,
    ciphertext: &[u8],
    signer: &SigningKey,
) -> Vec<u8> {
    let seal = signer.sign(&seal_message(coordinates, key_check, ciphertext));
    let mut blob = Vec::with_capacity(SEALED_HEADER_BYTES + ciphertext.len());
    blob.extend_from_slice(&seal.to_bytes());
    blob.extend_from_slice(key_check.as_bytes());
    blob.extend_from_slice(ciphertext);
    blob
}

/// A blob whose seal holds: the check value of the key its author says encrypts it, and the
/// ciphertext.
#[derive(Debug, Clone, Copy)]
pub struct Sealed<'b> {
    /// The check value of the key that encrypts it ([`crate::workspace::key_check`]).
    pub key_check: Digest,
    /// The ciphertext.
    pub ciphertext: &'b [u8],
}

/// Checks that `blob` is sealed by `author_key` as the version at `coordinates`. The server
/// runs it on every write, with the writing device's key (and compares the key check value
/// with the workspace's certificates).
pub fn verify_seal<'b>(
    blob: &'b [u8],
    coordinates: &VlobCoordinates,
    author_key: &VerifyKey,
) -> Result<Sealed<'b>, ManifestError> {
    if blob.len() < SEALED_HEADER_BYTES {
        return Err(ManifestError::Unsealed);
    }
    let (seal, rest) = blob.split_at(SEAL_BYTES);
    let (check, ciphertext) = rest.split_at(SEALED_HEADER_BYTES - SEAL_BYTES);
    let seal = Signature::from_bytes(seal.try_into().expect("split at the seal's length"));
    let key_check = Digest::from_bytes(check.try_into().expect("split at a digest's length"));
    author_key
        .verify(&seal_message(coordinates, &key_check, ciphertext), &seal)
        .map_err(|_| ManifestError::Unsealed)?;
    Ok(Sealed {
        key_check,
        ciphertext,
    })
}

/// Signs `manifest` with the author's device key, encrypts it with the realm key and seals the
/// ciphertext with the author's device key.
pub fn seal_manifest(
    manifest: &Manifest,
    signer: &SigningKey,
    key: &SecretKey,
    key_index: u32,
    rng: &mut impl CryptoRngCore,
) -> Vec<u8> {
    let signed = Signed::sign(manifest, signer).encode();
    let ciphertext = key.encrypt(
        rng,
        &signed,
        &manifest_aad(&manifest.realm, &manifest.id, manifest.version, key_index),
    );
    let coordinates = VlobCoordinates {
        realm: manifest.realm,
        id: manifest.id,
        version: manifest.version,
        key_index,
        author: manifest.author,
        timestamp: manifest.timestamp,
        received: manifest.timestamp,
    };
    let check = key_check(key, &manifest.realm, key_index);
    seal_ciphertext(&coordinates, &check, &ciphertext, signer)
}

/// Who may write a realm's manifests.
#[derive(Debug, Clone, Copy)]
pub enum WriteAuthority<'a> {
    /// A workspace: members with a role that writes, at the manifest's timestamp.
    Workspace(&'a RealmChain),
    /// A user's own realm: that user's devices only.
    User(UserId),
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The key index is unknown to this client.
    #[error("manifest refused: it claims key index {0}, which this device does not hold")]
    UnknownKeyIndex(u32),
    /// The seal fails: the bytes are not what the named author's device stored at this place.
    #[error(
        "manifest refused: it is not sealed for this entry, version and author (tampered or swapped after it was stored)"
    )]
    Unsealed,
    /// Sealed for a key of this index other than the one this device's certificates certify:
    /// the server shows members different workspace certificates.
    #[error(
        "manifest refused: it is encrypted with a key of index {0} other than the one this device's workspace certificates certify or this device holds (the server shows members different certificates, or its author's device was shown others)"
    )]
    OtherKey(u32),
    /// Sealed by a device whose user could write, and yet it does not open (or it is not what
    /// this entry can be): that member's device stored it so.
    #[error(
        "version {version} does not open for anyone: device {device} of user {user}, who could write, stored it so ({reason})"
    )]
    Unreadable {
        /// The version.
        version: u32,
        /// The device that sealed it.
        device: DeviceId,
        /// Its user.
        user: UserId,
        /// What is wrong with it.
        reason: String,
    },
    /// The author fails the identity chain (unknown, revoked, bad signature).
    #[error("manifest refused: {0}")]
    Author(TrustError),
    /// The author may not write in this realm at that time.
    #[error(
        "manifest refused: its author (user {0}) could not write in this workspace at that time"
    )]
    NotAllowed(UserId),
    /// The manifest is dated too far from when the server received it.
    #[error("manifest refused: {0}")]
    OutOfBallpark(#[from] OutOfBallpark),
    /// Written with a key that had been replaced well before: an honest server refuses such a
    /// write, so the server accepted a write with a key a removed member may hold, or it keeps
    /// the newer workspace certificates from the author's device.
    #[error(
        "manifest refused: it is encrypted with key index {used} although key index {current} was certified well before it was written; the server accepted a write with an old key, or withholds the workspace's latest certificates from its author"
    )]
    StaleKey {
        /// The index it was encrypted with.
        used: u32,
        /// The index current well before it was written.
        current: u32,
    },
}

/// Decrypts, decodes and verifies a manifest: its date against when the server received it,
/// its key against the workspace's rotations, its author against the identity chain, its seal,
/// the author's right to write against `authority`, then its content against `expected`.
/// Failures up to the right to write are refused as the server's doing; later ones, by a
/// version its author sealed, are [`ManifestError::Unreadable`].
pub fn open_manifest(
    blob: &[u8],
    expected: &VlobCoordinates,
    key: &SecretKey,
    identity: &CertificateChain,
    authority: WriteAuthority<'_>,
) -> Result<Manifest, ManifestError> {
    let checked = check_sealed_manifest(blob, expected, identity, authority)?;
    // Only with the very key its author sealed for is a failure to open the author's doing.
    let held = key_check(key, &expected.realm, expected.key_index);
    if !checked.sealed.key_check.ct_eq(&held) {
        return Err(ManifestError::OtherKey(expected.key_index));
    }
    open_sealed(
        checked.sealed.ciphertext,
        expected,
        key,
        &checked.author_key,
        authority,
    )
    .map_err(|reason| ManifestError::Unreadable {
        version: expected.version,
        device: expected.author,
        user: checked.author,
        reason: reason.to_string(),
    })
}

/// A version whose every check short of its key holds (see [`check_sealed_manifest`]).
#[derive(Debug, Clone, Copy)]
pub struct CheckedSeal<'b> {
    /// The seal's content.
    pub sealed: Sealed<'b>,
    /// The author's user.
    pub author: UserId,
    /// The author device's key.
    pub author_key: VerifyKey,
}

/// Every check of [`open_manifest`] that needs no key: the date, the key index against the
/// workspace's rotations, the author, the seal, the author's right to write, and the sealed
/// key check value against the certified one. A version that passes them and that a device
/// cannot open for lack of its key is one its author really wrote; any failure here is the
/// server's doing.
pub fn check_sealed_manifest<'b>(
    blob: &'b [u8],
    expected: &VlobCoordinates,
    identity: &CertificateChain,
    authority: WriteAuthority<'_>,
) -> Result<CheckedSeal<'b>, ManifestError> {
    check_ballpark(expected.timestamp, expected.received)?;
    if let WriteAuthority::Workspace(chain) = authority {
        // Two skews before the manifest's own time, the rotation had reached the server before
        // the write did (each is dated within one skew of its arrival).
        let settled = expected.timestamp.plus_micros(-2 * CLOCK_SKEW_MICROS);
        let current = chain.key_index_at(settled);
        if expected.key_index < current {
            return Err(ManifestError::StaleKey {
                used: expected.key_index,
                current,
            });
        }
    }
    let judged = judged_at(expected.timestamp, expected.received);
    let (device, user) = identity
        .active_author_for(&expected.author, judged, expected.received)
        .map_err(ManifestError::Author)?;
    let sealed = verify_seal(blob, expected, &device.verify_key)?;
    let user_id = user.certificate.user_id;
    let allowed = match authority {
        WriteAuthority::Workspace(chain) => chain.could_write(&user_id, judged, expected.received),
        WriteAuthority::User(owner) => owner == user_id,
    };
    if !allowed {
        return Err(ManifestError::NotAllowed(user_id));
    }
    // The key it was sealed for and the certified one must be one (a user's own realm has no
    // certificates: there the held key is the only check).
    if let WriteAuthority::Workspace(chain) = authority
        && !chain
            .key_check(expected.key_index)
            .is_some_and(|c| c.ct_eq(&sealed.key_check))
    {
        return Err(ManifestError::OtherKey(expected.key_index));
    }
    Ok(CheckedSeal {
        sealed,
        author: user_id,
        author_key: device.verify_key,
    })
}

/// What can be wrong inside a version its author sealed.
#[derive(Debug, thiserror::Error)]
enum SealedContentError {
    #[error("it does not decrypt with the workspace key it names")]
    Decryption,
    #[error("it is malformed: {0}")]
    Malformed(#[from] DecodeError),
    #[error("its {0} differs from where it is stored")]
    Mismatch(&'static str),
    #[error("its inner signature fails")]
    Signature,
    #[error("{0}")]
    Kind(&'static str),
}

/// Decrypts, decodes and checks the content of a sealed version.
fn open_sealed(
    ciphertext: &[u8],
    expected: &VlobCoordinates,
    key: &SecretKey,
    author_key: &VerifyKey,
    authority: WriteAuthority<'_>,
) -> Result<Manifest, SealedContentError> {
    let aad = manifest_aad(
        &expected.realm,
        &expected.id,
        expected.version,
        expected.key_index,
    );
    let plaintext = key
        .decrypt(ciphertext, &aad)
        .map_err(|_| SealedContentError::Decryption)?;
    let signed = Signed::decode(&plaintext)?;
    let manifest = Manifest::decode(&signed.content)?;
    let checks = [
        (manifest.realm == expected.realm, "realm"),
        (manifest.id == expected.id, "id"),
        (manifest.version == expected.version, "version"),
        (manifest.author == expected.author, "author"),
        (manifest.timestamp == expected.timestamp, "timestamp"),
    ];
    if let Some((_, field)) = checks.iter().find(|(ok, _)| !ok) {
        return Err(SealedContentError::Mismatch(field));
    }
    signed
        .verify(author_key)
        .map_err(|_| SealedContentError::Signature)?;
    let is_root = expected.id == EntryId::from(expected.realm);
    match (authority, &manifest.body) {
        (WriteAuthority::User(_), ManifestBody::User { .. }) if is_root => {}
        (WriteAuthority::User(_), _) => {
            return Err(SealedContentError::Kind(
                "a user's own realm holds one workspace list",
            ));
        }
        (WriteAuthority::Workspace(_), ManifestBody::User { .. }) => {
            return Err(SealedContentError::Kind(
                "a workspace holds no workspace list",
            ));
        }
        (WriteAuthority::Workspace(_), ManifestBody::Folder { .. }) => {}
        (WriteAuthority::Workspace(_), _) if is_root => {
            return Err(SealedContentError::Kind(
                "a workspace's root must be a folder",
            ));
        }
        (WriteAuthority::Workspace(_), _) => {}
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests;
