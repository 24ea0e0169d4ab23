//! What can go wrong, as kinds a driver maps to its own codes (errno, NTSTATUS).

use strongroom_engine::error::EngineError;

/// The kind of a failure, for the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No such entry (ENOENT).
    NotFound,
    /// A folder was expected (ENOTDIR).
    NotADirectory,
    /// A file was expected (EISDIR).
    IsADirectory,
    /// Not a symbolic link (EINVAL for readlink).
    NotASymlink,
    /// The mount is read-only: a view of the past, or a role that cannot write (EROFS).
    ReadOnly,
    /// The role or the server refuses (EACCES).
    PermissionDenied,
    /// A name that cannot exist in a workspace (EINVAL; ENAMETOOLONG for length).
    InvalidName,
    /// The data is not on this device and the server is unreachable (EIO with a log line).
    Unavailable,
    /// The name is taken (EEXIST).
    AlreadyExists,
    /// A folder that must be empty is not (ENOTEMPTY).
    NotEmpty,
    /// The unknown handle of a driver bug or a race (EBADF).
    BadHandle,
    /// The device's disk is full (ENOSPC): nothing was lost, there is no room for more.
    StorageFull,
    /// Anything else: tampered data refused, local IO errors (EIO).
    Io,
}

/// A failed operation: its kind, and a message for the log.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct VfsError {
    /// What the driver reports.
    pub kind: ErrorKind,
    /// What the log says.
    pub message: String,
}

impl VfsError {
    /// A new error.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl From<EngineError> for VfsError {
    fn from(e: EngineError) -> Self {
        let kind = match &e {
            EngineError::NotFound(_) => ErrorKind::NotFound,
            EngineError::NotAllowed(_) => ErrorKind::PermissionDenied,
            EngineError::Unreachable { .. } => ErrorKind::Unavailable,
            EngineError::AlreadyExists(_) => ErrorKind::AlreadyExists,
            EngineError::NotEmpty(_) => ErrorKind::NotEmpty,
            EngineError::IsAFolder(_) => ErrorKind::IsADirectory,
            EngineError::NotAFolder(_) => ErrorKind::NotADirectory,
            EngineError::InvalidInput(_) => ErrorKind::InvalidName,
            EngineError::Io { source, .. } if is_storage_full(source) => ErrorKind::StorageFull,
            _ => ErrorKind::Io,
        };
        Self::new(kind, e.to_string())
    }
}

/// Whether a local IO error means the disk is full (the kind, or ENOSPC from an older path).
fn is_storage_full(e: &std::io::Error) -> bool {
    const ENOSPC: i32 = 28;
    e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || (cfg!(unix) && e.raw_os_error() == Some(ENOSPC))
}

/// The result of a file-system operation.
pub type Result<T> = std::result::Result<T, VfsError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_its_own_kind() {
        let full = EngineError::io(
            "writing a block",
            std::io::Error::from(std::io::ErrorKind::StorageFull),
        );
        assert_eq!(VfsError::from(full).kind, ErrorKind::StorageFull);
        let other = EngineError::io("writing a block", std::io::Error::other("bad sector"));
        assert_eq!(VfsError::from(other).kind, ErrorKind::Io);
    }
}
