//! The engine's errors: each says what happened in words a user understands.

use std::path::PathBuf;

use strongroom_protocol::encoding::DecodeError;
use strongroom_protocol::invite::InviteError;
use strongroom_protocol::trust::TrustError;
use strongroom_protocol::wire::ErrorCode;

/// Everything that can go wrong in the client.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The password does not open the device file.
    #[error("wrong password for the device file {0}")]
    WrongPassword(PathBuf),
    /// The device file's password key is weaker than the default, and weak files were not
    /// asked for ([`crate::device_file::KdfPolicy`]).
    #[error(
        "the device file {} is protected by a weak password key ({cost}; new files use {}), so \
         whoever copies it can try passwords fast: such files are for tests and demos only. \
         To open it anyway, pass --insecure-fast-kdf or set STRONGROOM_INSECURE_FAST_KDF=1",
        path.display(),
        crate::device_file::KdfCost::DEFAULT
    )]
    WeakPasswordKey {
        /// The file.
        path: PathBuf,
        /// Its key's cost.
        cost: crate::device_file::KdfCost,
    },
    /// No device file in the home directory.
    #[error("no Strongroom device in {0}: run `strongroom bootstrap` or `strongroom claim` first")]
    NoDevice(PathBuf),
    /// A device file exists already where a new one would go.
    #[error("a Strongroom device already exists in {0}; use another --home")]
    DeviceExists(PathBuf),
    /// A file is not what it should be.
    #[error("{path} is damaged or not a Strongroom file: {reason}")]
    CorruptFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A local file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The system's error.
        source: std::io::Error,
    },
    /// No password could be obtained.
    #[error(
        "no password: give --password-file FILE, set STRONGROOM_PASSWORD, or run in a terminal"
    )]
    NoPassword,
    /// The server could not be reached.
    #[error("cannot reach the server at {server}: {reason}")]
    Unreachable {
        /// The server.
        server: String,
        /// Why.
        reason: String,
    },
    /// The server refused the request.
    #[error("the server refused: {message}")]
    Server {
        /// The typed code.
        code: ErrorCode,
        /// The server's sentence.
        message: String,
    },
    /// The server answered something this client cannot use.
    #[error("the server sent an invalid answer: {0}")]
    Protocol(String),
    /// The server sent a certificate that fails validation: it is lying or was tampered with.
    #[error("the server sent a certificate that fails validation, nothing was changed: {0}")]
    Trust(#[from] TrustError),
    /// The server served a manifest that fails validation.
    #[error("the server sent a manifest that fails validation, nothing was changed: {0}")]
    Manifest(#[from] strongroom_protocol::manifests::ManifestError),
    /// The server served a block that fails validation.
    #[error("the server sent a block that fails validation, nothing was changed: {0}")]
    Block(#[from] strongroom_protocol::blocks::BlockError),
    /// The server served a workspace certificate that fails validation.
    #[error(
        "the server sent a workspace certificate that fails validation, nothing was changed: {0}"
    )]
    Realm(#[from] strongroom_protocol::workspace::RealmError),
    /// A message failed validation.
    #[error("{0}")]
    Envelope(#[from] strongroom_protocol::messages::EnvelopeError),
    /// The server keeps from this device workspace certificates that other members have (a
    /// forked view of the workspace, such as a key rotation withheld).
    #[error(
        "the server withholds workspace certificates from this device, nothing was changed: {0}"
    )]
    WithheldCertificates(String),
    /// The server served an older version than one this device already validated.
    #[error(
        "the server sent version {served} of an entry after version {seen} was seen (a rollback), nothing was changed"
    )]
    Rollback {
        /// The version served.
        served: u32,
        /// The highest version seen before.
        seen: u32,
    },
    /// The server served a newer version of an entry as received before this device had seen
    /// an older one as the latest: a write made later and backdated.
    #[error(
        "the server sent version {served} of an entry, after version {seen} was seen as the latest, as if received earlier: {reason} (a backdated write, such as a removed member's with the server's help); nothing was changed"
    )]
    Backdated {
        /// The version served.
        served: u32,
        /// The version seen as the latest.
        seen: u32,
        /// The times.
        reason: String,
    },
    /// No workspace by that name.
    #[error("no workspace named {0:?} (see `strongroom workspace list`)")]
    UnknownWorkspace(String),
    /// No file or folder at that path.
    #[error("{0}: no such file or folder")]
    NotFound(String),
    /// The invitation exchange failed.
    #[error("{0}")]
    Invite(#[from] InviteError),
    /// The other side aborted the exchange.
    #[error("{0}; nothing was created")]
    Aborted(String),
    /// The person interrupted the exchange.
    #[error("interrupted; the exchange was aborted on both sides and nothing was created")]
    Interrupted,
    /// The other side did not answer in time.
    #[error("the other side did not answer within {0} seconds")]
    Timeout(u64),
    /// A request that this user may not make.
    #[error("{0}")]
    NotAllowed(String),
    /// Bad input from the user.
    #[error("{0}")]
    InvalidInput(String),
    /// A name that is already taken in its folder.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// A folder that must be empty is not.
    #[error("{0} is a folder that is not empty")]
    NotEmpty(String),
    /// A file or link was expected, and this is a folder.
    #[error("{0} is a folder")]
    IsAFolder(String),
    /// A folder was expected, and this is a file or link.
    #[error("{0} is not a folder")]
    NotAFolder(String),
    /// The server's answer lacks an entry that a folder lists: it may be hiding it.
    #[error(
        "the server left out {0}, which its folder lists (a server hiding an entry?); nothing was written"
    )]
    Withheld(String),
    /// A version encrypted with a key that a member handed this user in a sealed message that
    /// does not work: that member's doing (the server cannot seal for them).
    #[error(
        "version {version} is encrypted with key index {key_index} of the workspace, which {sender} handed to this user in a message that does not work ({reason}); sharing the workspace with this user again hands out its keys anew"
    )]
    KeyNotDelivered {
        /// The version.
        version: u32,
        /// Its key index.
        key_index: u32,
        /// The email (or id) of the user who sent the message.
        sender: String,
        /// What is wrong with the message.
        reason: String,
    },
    /// This device stands in for the latest version of an entry because it lacks that
    /// version's key: writing over it would drop what others read there.
    #[error(
        "this device cannot change an entry whose latest version ({version}) it cannot read: it is encrypted with key index {key_index}, which {sender} handed to this user in a message that does not work; sharing the workspace with this user again hands out its keys anew"
    )]
    CannotReadLatest {
        /// The latest version.
        version: u32,
        /// Its key index.
        key_index: u32,
        /// The email (or id) of the user who sent the message.
        sender: String,
    },
    /// A folder listing in which the server's answer lacks some listed entries: the rest is
    /// listed, those are named (a server hiding them, or a member listing what it never wrote).
    #[error(
        "the server left out {}, which its folder lists (a server hiding an entry, or a member who listed an entry never written); the rest is listed{}",
        .withheld.join(", "),
        if *.removable { "; a writer can remove such an entry by name with `rm -r`" } else { "" }
    )]
    PartlyWithheld {
        /// What could be listed.
        listed: Vec<crate::files::ListedEntry>,
        /// The paths left out.
        withheld: Vec<String>,
        /// Whether this device may write there.
        removable: bool,
    },
    /// One entry found at two places of a tree that is walked: a folder inside itself, or an
    /// entry listed under two names or in two folders (damaged, or written by a hostile member).
    #[error(
        "{second} is the same entry as {first}: an entry appears twice in this tree (a folder inside itself, or listed twice), so it is not walked; nothing was written"
    )]
    RepeatedEntry {
        /// Where it was seen first.
        first: String,
        /// Where it was seen again.
        second: String,
    },
    /// A stored name that this device's file system cannot hold as one plain name.
    #[error("{path} cannot be written on this system: {reason}; nothing was written")]
    UnsafeName {
        /// The entry's path in the workspace.
        path: String,
        /// What the system would do with the name.
        reason: &'static str,
    },
    /// A user was revoked, but could not be removed from every workspace this user manages
    /// (their key there is not rotated yet).
    #[error(
        "the user is revoked, but could not be removed from these workspaces, whose keys they still hold: {0}; run the same `user revoke` again once this is fixed"
    )]
    EvictionIncomplete(String),
    /// A mount does not follow this folder (it would make a cycle, or a folder with two
    /// parents or two names).
    #[error("{path} is not shown: {reason}")]
    NotFollowed {
        /// The folder's path.
        path: String,
        /// Why.
        reason: String,
    },
}

impl EngineError {
    /// A helper for IO errors with their context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        EngineError::Io {
            context: context.into(),
            source,
        }
    }

    /// A file that does not decode.
    pub fn corrupt(path: impl Into<PathBuf>, e: DecodeError) -> Self {
        EngineError::CorruptFile {
            path: path.into(),
            reason: e.to_string(),
        }
    }

    /// The server's error code, if the server refused.
    pub fn server_code(&self) -> Option<ErrorCode> {
        match self {
            EngineError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Results of the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
