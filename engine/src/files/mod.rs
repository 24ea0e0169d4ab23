//! Files and folders in workspaces: paths, listing, writing (`put`), reading (`get`), folders,
//! removal, moves, history and restore, pins. Local first: every change lands in the local
//! database (and block cache) before anything is sent, then [`sync`] uploads it.

mod destination;
mod history;
mod io;
mod ops;
mod path;
mod session;
mod sync;
mod tree;

pub use history::{RestorePoint, VersionInfo};
pub use io::{BLOCK_SIZE, PARALLEL_TRANSFERS};
pub use ops::{EntryKind, ListedEntry};
pub use path::WorkspacePath;
pub use session::{ContentStamp, EntryInfo, EntryStat, NewEntry, WorkspaceSession};
pub use sync::{RemoteChange, SyncReport};

/// Progress of a long transfer, for a progress bar.
pub trait Progress: Send + Sync {
    /// More bytes to expect.
    fn add_total(&self, bytes: u64);
    /// Bytes done.
    fn advance(&self, bytes: u64);
    /// The change is durable on this device; what follows is the upload.
    fn stored(&self) {}
}

/// No progress shown.
pub struct NoProgress;

impl Progress for NoProgress {
    fn add_total(&self, _: u64) {}
    fn advance(&self, _: u64) {}
}
