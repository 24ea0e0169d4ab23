//! NTSTATUS codes, and the one for each vfs error kind.
//!
//! The values are written out so that the mapping is tested on every platform; on Windows a
//! compile-time check compares each one with `windows-sys` (see `driver.rs`).

use strongroom_vfs::{ErrorKind, VfsError};

/// An NTSTATUS code.
pub type NtStatus = i32;

/// `u32` spelling of the codes, as Microsoft documents them.
const fn code(value: u32) -> NtStatus {
    value as NtStatus
}

/// Success.
pub const SUCCESS: NtStatus = 0;
/// The last component of a path does not exist.
pub const OBJECT_NAME_NOT_FOUND: NtStatus = code(0xC000_0034);
/// A folder on the way to the last component does not exist.
pub const OBJECT_PATH_NOT_FOUND: NtStatus = code(0xC000_003A);
/// The name is taken.
pub const OBJECT_NAME_COLLISION: NtStatus = code(0xC000_0035);
/// The name cannot exist.
pub const OBJECT_NAME_INVALID: NtStatus = code(0xC000_0033);
/// A folder was expected.
pub const NOT_A_DIRECTORY: NtStatus = code(0xC000_0103);
/// A file was expected.
pub const FILE_IS_A_DIRECTORY: NtStatus = code(0xC000_00BA);
/// A folder that must be empty is not.
pub const DIRECTORY_NOT_EMPTY: NtStatus = code(0xC000_0101);
/// Refused (the role, the server).
pub const ACCESS_DENIED: NtStatus = code(0xC000_0022);
/// The volume is read-only.
pub const MEDIA_WRITE_PROTECTED: NtStatus = code(0xC000_00A2);
/// A read at or beyond the end of a file.
pub const END_OF_FILE: NtStatus = code(0xC000_0011);
/// A handle this driver does not know.
pub const INVALID_HANDLE: NtStatus = code(0xC000_0008);
/// The disk is full.
pub const DISK_FULL: NtStatus = code(0xC000_007F);
/// The server is unreachable and the data is not on this device.
pub const NETWORK_UNREACHABLE: NtStatus = code(0xC000_023C);
/// Anything else: damaged or refused data, local IO errors.
pub const IO_DEVICE_ERROR: NtStatus = code(0xC000_0185);
/// A request this file system does not serve (symbolic links, for now).
pub const NOT_SUPPORTED: NtStatus = code(0xC000_00BB);

/// The NTSTATUS of a vfs error; failures other than the expected ones (a missing name, a taken
/// name) are logged, since Windows passes only the number on.
pub fn of(error: &VfsError) -> NtStatus {
    let status = match error.kind {
        ErrorKind::NotFound => OBJECT_NAME_NOT_FOUND,
        ErrorKind::NotADirectory => NOT_A_DIRECTORY,
        ErrorKind::IsADirectory => FILE_IS_A_DIRECTORY,
        ErrorKind::NotASymlink => NOT_SUPPORTED,
        ErrorKind::ReadOnly => MEDIA_WRITE_PROTECTED,
        ErrorKind::PermissionDenied => ACCESS_DENIED,
        ErrorKind::InvalidName => OBJECT_NAME_INVALID,
        ErrorKind::AlreadyExists => OBJECT_NAME_COLLISION,
        ErrorKind::NotEmpty => DIRECTORY_NOT_EMPTY,
        ErrorKind::BadHandle => INVALID_HANDLE,
        ErrorKind::StorageFull => DISK_FULL,
        ErrorKind::Unavailable => NETWORK_UNREACHABLE,
        ErrorKind::Io => IO_DEVICE_ERROR,
    };
    if !matches!(
        error.kind,
        ErrorKind::NotFound | ErrorKind::AlreadyExists | ErrorKind::NotEmpty
    ) {
        tracing::warn!(
            status = format_args!("{:#010X}", status as u32),
            "{}",
            error.message
        );
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_an_error_status() {
        for kind in [
            ErrorKind::NotFound,
            ErrorKind::NotADirectory,
            ErrorKind::IsADirectory,
            ErrorKind::NotASymlink,
            ErrorKind::ReadOnly,
            ErrorKind::PermissionDenied,
            ErrorKind::InvalidName,
            ErrorKind::AlreadyExists,
            ErrorKind::NotEmpty,
            ErrorKind::BadHandle,
            ErrorKind::StorageFull,
            ErrorKind::Unavailable,
            ErrorKind::Io,
        ] {
            let status = of(&VfsError::new(kind, "test"));
            // Severity "error" is the two top bits set.
            assert_eq!(status as u32 >> 30, 0b11, "{kind:?} maps to {status:#X}");
        }
        assert_eq!(
            of(&VfsError::new(ErrorKind::StorageFull, "full")),
            DISK_FULL
        );
        assert_eq!(
            of(&VfsError::new(ErrorKind::ReadOnly, "ro")),
            MEDIA_WRITE_PROTECTED
        );
    }
}
