//! `strongroom-vfs`: the file system the drivers expose, independent of any OS.
//!
//! [`Vfs`] turns a [`WorkspaceSession`](strongroom_engine::files::WorkspaceSession) into
//! inode-numbered, POSIX-like operations. Everything a driver needs to decide lives here (which
//! inode a name is, what a file's attributes are, what is allowed), so that a behaviour fixed
//! here is fixed for FUSE and WinFsp alike; a driver only translates calls and maps
//! [`ErrorKind`] to its errno or NTSTATUS.
//!
//! - [`inodes`]: stable inode numbers for entry ids.
//! - [`attr`]: attributes of files, folders and links.
//! - [`error`]: the error kinds drivers map.
//! - [`fs`]: the operations.

#![forbid(unsafe_code)]

pub mod attr;
pub mod error;
pub mod fs;
pub mod inodes;
pub mod working;

pub use attr::{Attr, Kind};
pub use error::{ErrorKind, VfsError};
pub use fs::{DirEntry, FsStats, Invalidation, Invalidator, Vfs};
pub use inodes::{Ino, ROOT_INO};
