//! The operations. Drivers call them from their own threads (FUSE's, WinFsp's); each runs the
//! engine's async code on the mount's tokio runtime and blocks that driver thread only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use strongroom_engine::files::{EntryInfo, EntryKind, WorkspaceSession};
use strongroom_protocol::ids::EntryId;
use strongroom_protocol::manifests::EntryName;

use crate::attr::{Attr, IO_SIZE, Kind};
use crate::error::{ErrorKind, Result, VfsError};
use crate::inodes::{Ino, InodeTable};

/// One entry of a folder listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Its name.
    pub name: String,
    /// Its attributes (inode included).
    pub attr: Attr,
}

/// What `statfs` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsStats {
    /// Block size for the counts below.
    pub block_size: u32,
    /// Total blocks (the device's free space plus what the workspace uses locally).
    pub blocks: u64,
    /// Free blocks.
    pub free: u64,
    /// Files known to this mount.
    pub files: u64,
    /// The longest name.
    pub name_max: u32,
}

/// The file system of one mounted workspace.
pub struct Vfs {
    session: Arc<WorkspaceSession>,
    runtime: tokio::runtime::Handle,
    inodes: Mutex<InodeTable>,
    /// Where the device's data lives, for `statfs`.
    home: std::path::PathBuf,
    /// The end of the last read per file, to notice sequential reads and prefetch ahead.
    last_read_end: Mutex<HashMap<Ino, u64>>,
}

/// How far ahead of a sequential reader blocks are fetched.
const PREFETCH_BYTES: usize = 8 * IO_SIZE as usize;

impl Vfs {
    /// A file system over `session`, running engine calls on `runtime`.
    pub fn new(
        session: WorkspaceSession,
        runtime: tokio::runtime::Handle,
        home: std::path::PathBuf,
    ) -> Self {
        let inodes = Mutex::new(InodeTable::new(session.root()));
        Self {
            session: Arc::new(session),
            runtime,
            inodes,
            home,
            last_read_end: Default::default(),
        }
    }

    /// Whether every change is refused (a view of the past, or a READER).
    pub fn read_only(&self) -> bool {
        self.session.read_only()
    }

    fn id_of(&self, ino: Ino) -> Result<EntryId> {
        self.inodes
            .lock()
            .expect("inode table")
            .id_of(ino)
            .ok_or_else(|| VfsError::new(ErrorKind::NotFound, format!("unknown inode {ino}")))
    }

    fn ino_of(&self, id: EntryId) -> Ino {
        self.inodes.lock().expect("inode table").ino_of(id)
    }

    fn info(&self, id: EntryId) -> Result<EntryInfo> {
        self.runtime
            .block_on(self.session.entry(id))?
            .ok_or_else(|| VfsError::new(ErrorKind::NotFound, format!("entry {id} is gone")))
    }

    /// Attributes of `info`; a folder's link count needs its children's kinds.
    fn attr_of(&self, ino: Ino, info: &EntryInfo) -> Result<Attr> {
        let subfolders = if matches!(info.kind, EntryKind::Folder) && !info.children.is_empty() {
            let ids: Vec<EntryId> = info.children.iter().map(|(_, id)| *id).collect();
            let children = self.runtime.block_on(self.session.entries(&ids))?;
            children
                .values()
                .filter(|c| matches!(c.kind, EntryKind::Folder))
                .count() as u32
        } else {
            0
        };
        Ok(Attr::of(ino, info, subfolders, self.read_only()))
    }

    /// `getattr`.
    pub fn getattr(&self, ino: Ino) -> Result<Attr> {
        let info = self.info(self.id_of(ino)?)?;
        self.attr_of(ino, &info)
    }

    /// `lookup`: the entry called `name` in folder `parent`.
    pub fn lookup(&self, parent: Ino, name: &str) -> Result<Attr> {
        let folder = self.info(self.id_of(parent)?)?;
        if !matches!(folder.kind, EntryKind::Folder) {
            return Err(VfsError::new(ErrorKind::NotADirectory, "not a folder"));
        }
        let name: EntryName = name
            .parse()
            .map_err(|_| VfsError::new(ErrorKind::NotFound, "no such name"))?;
        let id = folder
            .children
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, id)| *id)
            .ok_or_else(|| VfsError::new(ErrorKind::NotFound, format!("no {name}")))?;
        let info = self.info(id)?;
        self.attr_of(self.ino_of(id), &info)
    }

    /// `readdir` (with attributes, for readdirplus): the entries of a folder, without "." and
    /// "..", which the driver adds.
    pub fn readdir(&self, ino: Ino) -> Result<Vec<DirEntry>> {
        let folder = self.info(self.id_of(ino)?)?;
        if !matches!(folder.kind, EntryKind::Folder) {
            return Err(VfsError::new(ErrorKind::NotADirectory, "not a folder"));
        }
        let ids: Vec<EntryId> = folder.children.iter().map(|(_, id)| *id).collect();
        let children = self.runtime.block_on(self.session.entries(&ids))?;
        // One more batch for the grandchildren, so that each subfolder's link count is right.
        let grandchildren: Vec<EntryId> = children
            .values()
            .filter(|c| matches!(c.kind, EntryKind::Folder))
            .flat_map(|c| c.children.iter().map(|(_, id)| *id))
            .collect();
        let grand = if grandchildren.is_empty() {
            HashMap::new()
        } else {
            self.runtime
                .block_on(self.session.entries(&grandchildren))?
        };
        let read_only = self.read_only();
        let mut out = Vec::with_capacity(children.len());
        for (name, id) in &folder.children {
            // An entry not available offline is left out rather than failing the listing.
            let Some(info) = children.get(id) else {
                continue;
            };
            let subfolders = info
                .children
                .iter()
                .filter(|(_, g)| {
                    grand
                        .get(g)
                        .is_some_and(|g| matches!(g.kind, EntryKind::Folder))
                })
                .count() as u32;
            out.push(DirEntry {
                name: name.as_str().to_owned(),
                attr: Attr::of(self.ino_of(*id), info, subfolders, read_only),
            });
        }
        Ok(out)
    }

    /// `open`: checks that `ino` is a file that may be opened this way.
    pub fn open(&self, ino: Ino, write: bool) -> Result<()> {
        let attr = self.getattr(ino)?;
        match attr.kind {
            Kind::File => {}
            Kind::Directory => {
                return Err(VfsError::new(ErrorKind::IsADirectory, "a folder"));
            }
            Kind::Symlink => return Err(VfsError::new(ErrorKind::Io, "a symbolic link")),
        }
        if write && self.read_only() {
            return Err(VfsError::new(
                ErrorKind::ReadOnly,
                "this mount is read-only",
            ));
        }
        Ok(())
    }

    /// `read`: up to `size` bytes at `offset` (fewer at the end of the file). A read that
    /// continues the previous one starts fetching the next blocks.
    pub fn read(&self, ino: Ino, offset: u64, size: u32) -> Result<Vec<u8>> {
        let id = self.id_of(ino)?;
        let data = self
            .runtime
            .block_on(self.session.read(id, offset, size as usize))?;
        let end = offset + data.len() as u64;
        let sequential = {
            let mut last = self.last_read_end.lock().expect("read positions");
            let sequential = last.get(&ino) == Some(&offset);
            last.insert(ino, end);
            sequential
        };
        if sequential && !data.is_empty() {
            let _guard = self.runtime.enter();
            self.session.prefetch(id, end, PREFETCH_BYTES);
        }
        Ok(data)
    }

    /// `release`: the file is closed.
    pub fn release(&self, ino: Ino) {
        self.last_read_end
            .lock()
            .expect("read positions")
            .remove(&ino);
    }

    /// `readlink`.
    pub fn readlink(&self, ino: Ino) -> Result<String> {
        match self.info(self.id_of(ino)?)?.kind {
            EntryKind::Symlink { target } => Ok(target),
            _ => Err(VfsError::new(ErrorKind::NotASymlink, "not a symbolic link")),
        }
    }

    /// `statfs`: the space of the disk that holds the device's data (where new content goes
    /// first), and the files this mount has seen.
    pub fn statfs(&self) -> FsStats {
        let (blocks, free) = disk_space(&self.home).unwrap_or((0, 0));
        FsStats {
            block_size: IO_SIZE,
            blocks: blocks / IO_SIZE as u64,
            free: free / IO_SIZE as u64,
            files: self.inodes.lock().expect("inode table").len() as u64,
            name_max: 255,
        }
    }
}

/// Total and available bytes of the file system holding `path`.
#[cfg(unix)]
fn disk_space(path: &std::path::Path) -> Option<(u64, u64)> {
    let stats = rustix::fs::statvfs(path).ok()?;
    Some((
        stats.f_blocks * stats.f_frsize,
        stats.f_bavail * stats.f_frsize,
    ))
}

#[cfg(not(unix))]
fn disk_space(_: &std::path::Path) -> Option<(u64, u64)> {
    None
}
