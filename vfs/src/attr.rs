//! Attributes, as every driver reports them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strongroom_protocol::time::Timestamp;

use strongroom_engine::files::{EntryInfo, EntryKind};

use crate::inodes::Ino;

/// The kind of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A folder.
    Directory,
    /// A symbolic link.
    Symlink,
}

/// What `stat` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// The inode number.
    pub ino: Ino,
    /// File, folder or link.
    pub kind: Kind,
    /// Bytes (a link: the length of its target; a folder: 0).
    pub size: u64,
    /// Last change of the content.
    pub modified: SystemTime,
    /// Permission bits: workspaces have no per-file permissions; read-only mounts drop the
    /// write bits.
    pub perm: u16,
    /// Links: 2 for a folder (itself and "."), plus its subfolders (1 while its children are not
    /// all on this device: unknown); 1 otherwise.
    pub nlink: u32,
}

/// A protocol time as a system time.
pub fn system_time(time: Timestamp) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(time.as_micros().max(0) as u64)
}

/// The preferred IO size reported to applications: one block.
pub const IO_SIZE: u32 = strongroom_engine::files::BLOCK_SIZE;

impl Attr {
    /// The attributes of an entry.
    pub fn of(
        ino: Ino,
        info: &EntryInfo,
        modified: SystemTime,
        subfolders: Option<u32>,
        read_only: bool,
    ) -> Self {
        let write = if read_only { 0 } else { 0o200 };
        let (kind, size, perm, nlink) = match &info.kind {
            // Unknown (its children not on this device yet): 1, which find(1) and others read
            // as "do not count on links" rather than a wrong count.
            EntryKind::Folder => (
                Kind::Directory,
                0,
                0o555 | write,
                subfolders.map_or(1, |n| 2 + n),
            ),
            EntryKind::File { size } => (Kind::File, *size, 0o444 | write, 1),
            EntryKind::Symlink { target } => (Kind::Symlink, target.len() as u64, 0o777, 1),
        };
        Self {
            ino,
            kind,
            size,
            modified,
            perm,
            nlink,
        }
    }

    /// Allocated 512-byte blocks, as `du` counts them.
    pub fn blocks(&self) -> u64 {
        self.size.div_ceil(512)
    }
}
