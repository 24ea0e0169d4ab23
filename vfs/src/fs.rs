//! The operations. Drivers call them from their own threads (FUSE's, WinFsp's); each runs the
//! engine's async code on the mount's tokio runtime and blocks that driver thread only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use strongroom_engine::files::{
    ContentStamp, EntryInfo, EntryKind, NewEntry, RemoteChange, WorkspaceSession,
};
use strongroom_protocol::ids::EntryId;
use strongroom_protocol::manifests::{BlockRef, EntryName};

use crate::attr::{Attr, IO_SIZE, Kind};
use crate::error::{ErrorKind, Result, VfsError};
use crate::inodes::{Ino, InodeTable};
use crate::working::{BLOCK, Source, Working};

/// An open file being written: its content, and how many handles have it open.
struct Edit {
    id: EntryId,
    /// The file's content as this edit last saw it (another device's version differs).
    expected: ContentStamp,
    working: Working,
    writers: u32,
}

type SharedEdit = Arc<Mutex<Edit>>;

/// A file open for reading: its block list, taken once at open (the content as of then).
struct Reading {
    size: u64,
    blocks: Vec<BlockRef>,
    readers: u32,
    /// How far blocks have been asked for ahead of the reader.
    prefetched_to: u64,
    /// Bytes delivered so far of blocks read in part, by block offset (see `read_open`).
    delivered: HashMap<u64, u64>,
}

/// Beyond this many changed bytes in memory, a file's changed blocks are stored (sealed into
/// the cache, and the file's new content committed) before the file is closed.
const SPILL_BYTES: usize = 64 << 20;

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

/// What a driver's kernel cache must forget after another device's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// The attributes and cached content of an inode (a file's new version, a folder's new
    /// listing).
    Inode(Ino),
    /// The name `name` in folder `parent` (it appeared, went, or names another entry now).
    Name {
        /// The folder.
        parent: Ino,
        /// The name.
        name: String,
    },
}

/// Receives invalidations from the sync loop (the FUSE driver passes them to the kernel).
pub type Invalidator = Arc<dyn Fn(&[Invalidation]) + Send + Sync>;

/// The file system of one mounted workspace.
pub struct Vfs {
    session: Arc<WorkspaceSession>,
    runtime: tokio::runtime::Handle,
    inodes: Mutex<InodeTable>,
    /// Where the device's data lives, for `statfs`.
    home: std::path::PathBuf,
    /// The end of the last read per file, to notice sequential reads and prefetch ahead.
    last_read_end: Mutex<HashMap<Ino, u64>>,
    /// Files being written.
    edits: Mutex<HashMap<Ino, SharedEdit>>,
    /// Files open for reading (and not being written).
    reading: Mutex<HashMap<Ino, Reading>>,
    /// Modification times as this mount shows them (see [`Vfs::modified`]).
    mtimes: Mutex<HashMap<EntryId, Seen>>,
    /// Told what other devices changed, so that kernel caches can live long.
    invalidator: Mutex<Option<Invalidator>>,
    /// When this mount last changed something, to upload after a burst rather than during it.
    last_change: Mutex<std::time::Instant>,
}

/// A burst of changes (an untar, an `rm -rf`) is uploaded once it pauses this long...
const QUIET_BEFORE_UPLOAD: std::time::Duration = std::time::Duration::from_secs(1);
/// ...or after this long at the latest.
const UPLOAD_AT_LEAST_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// The version of a [`Seen`] recorded by a change before the entry was first shown.
const UNKNOWN_VERSION: u32 = u32::MAX;

/// An entry's modification time, and the state it was computed for.
#[derive(Debug, Clone, Copy)]
struct Seen {
    modified: std::time::SystemTime,
    version: u32,
    pending: bool,
}

/// How far ahead of a sequential reader blocks are fetched.
const PREFETCH_BYTES: usize = 8 * IO_SIZE as usize;

impl Vfs {
    /// A file system over `session`, running engine calls on `runtime`.
    pub fn new(
        mut session: WorkspaceSession,
        runtime: tokio::runtime::Handle,
        home: std::path::PathBuf,
    ) -> Self {
        // Changes are durable at fsync (and safe from a crash of this process at once).
        session.defer_durability();
        let inodes = Mutex::new(InodeTable::new(session.root()));
        Self {
            session: Arc::new(session),
            runtime,
            inodes,
            home,
            last_read_end: Default::default(),
            edits: Default::default(),
            reading: Default::default(),
            mtimes: Default::default(),
            invalidator: Default::default(),
            last_change: Mutex::new(std::time::Instant::now()),
        }
    }

    /// Sets who is told what other devices changed (once the driver is mounted).
    pub fn set_invalidator(&self, invalidator: Invalidator) {
        *self.invalidator.lock().expect("invalidator") = Some(invalidator);
    }

    /// Refuses a change on a read-only mount.
    fn check_writable(&self) -> Result<()> {
        if self.read_only() {
            return Err(VfsError::new(
                ErrorKind::ReadOnly,
                "this mount is read-only",
            ));
        }
        Ok(())
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

    /// Attributes of entry `id`, shown as inode `ino`.
    fn attr_of(&self, ino: Ino, id: EntryId) -> Result<Attr> {
        let stat = self
            .runtime
            .block_on(self.session.stat(id))?
            .ok_or_else(|| VfsError::new(ErrorKind::NotFound, format!("entry {id} is gone")))?;
        Ok(Attr::of(
            ino,
            &stat.info,
            self.modified(&stat.info),
            stat.subfolders,
            self.read_only(),
        ))
    }

    /// The modification time to show. Stable: the version time of an entry jumps when this
    /// device's change is uploaded, which programs reading a tree (`tar`) take for a change; so
    /// a change made here shows the time it was made, until another device's version arrives.
    fn modified(&self, info: &EntryInfo) -> std::time::SystemTime {
        let mut mtimes = self.mtimes.lock().expect("mtimes");
        let now = std::time::SystemTime::now();
        let fresh = Seen {
            modified: if info.version == 0 {
                now
            } else {
                crate::attr::system_time(info.modified)
            },
            version: info.version,
            pending: info.pending,
        };
        let seen = mtimes.entry(info.id).or_insert(fresh);
        if seen.version == UNKNOWN_VERSION {
            // Touched before it was first shown: the touch stands.
        } else if seen.version != info.version {
            // This device's change uploaded: same content, same time. Else another device's.
            let uploaded_here = seen.pending && !info.pending;
            if !uploaded_here {
                seen.modified = crate::attr::system_time(info.modified);
            }
        } else if info.pending && !seen.pending {
            // Changed here by another program (the command line).
            seen.modified = now;
        }
        seen.version = info.version;
        seen.pending = info.pending;
        seen.modified
    }

    /// Records that this mount changed `id` now (or sets its time, for `utimensat`).
    fn touch(&self, id: EntryId, at: Option<std::time::SystemTime>) {
        *self.last_change.lock().expect("last change") = std::time::Instant::now();
        let mut mtimes = self.mtimes.lock().expect("mtimes");
        let entry = mtimes.entry(id).or_insert(Seen {
            modified: std::time::UNIX_EPOCH,
            version: UNKNOWN_VERSION,
            pending: true,
        });
        entry.modified = at.unwrap_or_else(std::time::SystemTime::now);
        entry.pending = true;
    }

    /// `setattr` of the modification time: shown by this mount from now on (workspaces store
    /// no chosen times yet).
    pub fn set_modified(&self, ino: Ino, at: std::time::SystemTime) -> Result<Attr> {
        let id = self.id_of(ino)?;
        self.touch(id, Some(at));
        self.getattr(ino)
    }

    /// `getattr`.
    pub fn getattr(&self, ino: Ino) -> Result<Attr> {
        let mut attr = self.attr_of(ino, self.id_of(ino)?)?;
        if let Some(edit) = self.edit_if_open(ino) {
            let edit = edit.lock().expect("edit");
            attr.size = edit.working.size;
        }
        Ok(attr)
    }

    fn edit_if_open(&self, ino: Ino) -> Option<SharedEdit> {
        self.edits.lock().expect("edits").get(&ino).cloned()
    }

    /// `lookup`: the entry called `name` in folder `parent`.
    pub fn lookup(&self, parent: Ino, name: &str) -> Result<Attr> {
        let parent = self.id_of(parent)?;
        let name: EntryName = name
            .parse()
            .map_err(|_| VfsError::new(ErrorKind::NotFound, "no such name"))?;
        let id = self
            .runtime
            .block_on(self.session.child(parent, &name))?
            .ok_or_else(|| VfsError::new(ErrorKind::NotFound, format!("no {name}")))?;
        let ino = self.ino_of(id);
        if self.edit_if_open(ino).is_some() {
            return self.getattr(ino);
        }
        self.attr_of(ino, id)
    }

    /// `readdir` (with attributes, for readdirplus): the entries of a folder, without "." and
    /// "..", which the driver adds. What it shows is [`WorkspaceSession::list`]: folders that
    /// would make a cycle (or a folder with two parents or names) are left out, and an entry
    /// the server left out of its answer fails the listing (EIO) rather than vanishing.
    pub fn readdir(&self, ino: Ino) -> Result<Vec<DirEntry>> {
        let id = self.id_of(ino)?;
        // A file is NotAFolder: ENOTDIR.
        let listed = self.runtime.block_on(self.session.list(id))?;
        let read_only = self.read_only();
        Ok(listed
            .into_iter()
            .map(|(name, stat)| DirEntry {
                name: name.as_str().to_owned(),
                attr: Attr::of(
                    self.ino_of(stat.info.id),
                    &stat.info,
                    self.modified(&stat.info),
                    stat.subfolders,
                    read_only,
                ),
            })
            .collect())
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
        if write {
            self.check_writable()?;
            let edit = self.edit(ino)?;
            edit.lock().expect("edit").writers += 1;
        } else if self.edit_if_open(ino).is_none() {
            let mut reading = self.reading.lock().expect("reading");
            if let Some(open) = reading.get_mut(&ino) {
                open.readers += 1;
            } else {
                drop(reading);
                let id = self.id_of(ino)?;
                let (size, blocks, _) = self.runtime.block_on(self.session.file_content(id))?;
                self.reading
                    .lock()
                    .expect("reading")
                    .entry(ino)
                    .or_insert(Reading {
                        size,
                        blocks,
                        readers: 0,
                        prefetched_to: 0,
                        delivered: HashMap::new(),
                    })
                    .readers += 1;
            }
        }
        Ok(())
    }

    /// Reads through the block list taken at open; a sequential reader has the next blocks
    /// fetched ahead.
    fn read_open(&self, ino: Ino, offset: u64, size: u32) -> Result<Option<Vec<u8>>> {
        let (wanted, end, ahead) = {
            let mut reading = self.reading.lock().expect("reading");
            let Some(open) = reading.get_mut(&ino) else {
                return Ok(None);
            };
            let end = open.size.min(offset + size as u64);
            if offset >= end {
                return Ok(Some(Vec::new()));
            }
            let first = open
                .blocks
                .partition_point(|b| b.offset + b.len as u64 <= offset);
            let wanted: Vec<BlockRef> = open.blocks[first..]
                .iter()
                .take_while(|b| b.offset < end)
                .cloned()
                .collect();
            let sequential =
                self.last_read_end.lock().expect("read positions").get(&ino) == Some(&offset);
            let target = end + PREFETCH_BYTES as u64;
            let ahead: Vec<BlockRef> = if sequential && target > open.prefetched_to {
                let from = open.prefetched_to.max(end);
                open.prefetched_to = target;
                open.blocks
                    .iter()
                    .filter(|b| b.offset + b.len as u64 > from && b.offset < target)
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            (wanted, end, ahead)
        };
        if !ahead.is_empty() {
            let _guard = self.runtime.enter();
            self.session.prefetch_blocks(ahead);
        }
        let mut out = Vec::with_capacity((end - offset) as usize);
        let mut delivered_now = Vec::new();
        for block in &wanted {
            let data = self.runtime.block_on(self.session.block(block))?;
            let from = block.offset.max(offset);
            let to = (block.offset + data.len() as u64).min(end);
            if from < to {
                // Holes (ranges without a block) read as zeros.
                out.resize((from - offset) as usize, 0);
                out.extend_from_slice(
                    &data[(from - block.offset) as usize..(to - block.offset) as usize],
                );
                delivered_now.push((block, to - from));
            }
        }
        out.resize((end - offset) as usize, 0);
        // A block delivered whole (in one read or several, in any order) is in the kernel's
        // page cache now: it leaves the memory cache, which keeps what is read in pieces
        // (random access) and what is fetched ahead rather than a second copy of a streamed
        // file, and a sequential reader reuses the same memory block after block.
        if let Some(open) = self.reading.lock().expect("reading").get_mut(&ino) {
            for (block, bytes) in delivered_now {
                let delivered = open.delivered.entry(block.offset).or_insert(0);
                *delivered += bytes;
                if *delivered >= block.len as u64 {
                    open.delivered.remove(&block.offset);
                    self.session.forget_block(block);
                }
            }
        }
        self.last_read_end
            .lock()
            .expect("read positions")
            .insert(ino, end);
        Ok(Some(out))
    }

    /// The edit of `ino`, started from its stored content if it has none yet.
    fn edit(&self, ino: Ino) -> Result<SharedEdit> {
        if let Some(edit) = self.edit_if_open(ino) {
            return Ok(edit);
        }
        // Readers' block lists go stale with the first write: their reads go through the edit,
        // then to the stored file.
        self.reading.lock().expect("reading").remove(&ino);
        let id = self.id_of(ino)?;
        let (size, blocks, expected) = self.runtime.block_on(self.session.file_content(id))?;
        let working = match Working::from_stored(size, &blocks) {
            Some(working) => working,
            None => {
                // Stored with another block size: taken whole into memory, re-cut at the next
                // save.
                let mut working = Working {
                    size,
                    ..Default::default()
                };
                for n in 0..size.div_ceil(BLOCK) {
                    let data =
                        self.runtime
                            .block_on(self.session.read(id, n * BLOCK, BLOCK as usize))?;
                    working.adopt(n, data);
                }
                working
            }
        };
        let edit = Arc::new(Mutex::new(Edit {
            id,
            expected,
            working,
            writers: 0,
        }));
        Ok(self
            .edits
            .lock()
            .expect("edits")
            .entry(ino)
            .or_insert(edit)
            .clone())
    }

    /// Gives `working` the current bytes of the blocks it needs before an edit.
    fn adopt(&self, working: &mut Working, blocks: Vec<u64>) -> Result<()> {
        for n in blocks {
            let content = match working.source(n) {
                Source::Stored(block) => {
                    self.runtime.block_on(self.session.block(&block))?.to_vec()
                }
                Source::Changed | Source::Hole => Vec::new(),
            };
            working.adopt(n, content);
        }
        Ok(())
    }

    /// Reads from a file being written.
    fn read_edit(&self, edit: &Edit, offset: u64, size: u32) -> Result<Vec<u8>> {
        let working = &edit.working;
        let end = working.size.min(offset + size as u64);
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut out = vec![0u8; (end - offset) as usize];
        for n in Working::blocks_of(offset, end - offset) {
            let start = n * BLOCK;
            let stored;
            let data: &[u8] = match working.source(n) {
                Source::Changed => &working.changed[&n],
                Source::Stored(block) => {
                    stored = self.runtime.block_on(self.session.block(&block))?;
                    &stored
                }
                Source::Hole => &[],
            };
            let from = offset.max(start);
            let to = end.min(start + data.len() as u64);
            if from < to {
                out[(from - offset) as usize..(to - offset) as usize]
                    .copy_from_slice(&data[(from - start) as usize..(to - start) as usize]);
            }
        }
        Ok(out)
    }

    /// `write`: `data` at `offset`, in memory until the file is flushed, synced or closed
    /// (or its changes grow large).
    pub fn write(&self, ino: Ino, offset: u64, data: &[u8]) -> Result<u32> {
        self.check_writable()?;
        let edit = self.edit(ino)?;
        let mut edit = edit.lock().expect("edit");
        let needs = edit.working.needs(offset, data.len() as u64);
        self.adopt(&mut edit.working, needs)?;
        edit.working.write(offset, data);
        self.touch(edit.id, None);
        if edit.working.changed_bytes() > SPILL_BYTES {
            self.save(&mut edit, false)?;
        }
        Ok(data.len() as u32)
    }

    /// `setattr` of the size (`truncate`, `O_TRUNC`): saved at once.
    pub fn truncate(&self, ino: Ino, size: u64) -> Result<Attr> {
        self.check_writable()?;
        let shared = self.edit(ino)?;
        {
            let mut edit = shared.lock().expect("edit");
            if let Some(n) = edit.working.needs_for_truncate(size) {
                self.adopt(&mut edit.working, vec![n])?;
            }
            edit.working.truncate(size);
            self.save(&mut edit, false)?;
        }
        self.drop_edit_if_closed(ino, &shared);
        self.getattr(ino)
    }

    /// Stores the changed blocks (sealed, in the cache) and commits the file's new content:
    /// safe from a crash of this process when this returns; with `durable`, the new blocks are
    /// on the disk too (the caller then syncs the commits).
    fn save(&self, edit: &mut Edit, durable: bool) -> Result<()> {
        if !edit.working.unsaved {
            return Ok(());
        }
        let changed = edit.working.take_changed();
        if !changed.is_empty() {
            let stored = self
                .runtime
                .block_on(self.session.store_blocks(changed, durable))?;
            edit.working.stored_as(stored);
        }
        let (stamp, diverted) = self.runtime.block_on(self.session.set_content(
            edit.id,
            &edit.expected,
            edit.working.size,
            edit.working.block_list(),
        ))?;
        edit.expected = stamp;
        if let Some(copy) = diverted {
            // This handle's later saves go to the conflict copy.
            edit.id = copy;
        }
        edit.working.unsaved = false;
        self.touch(edit.id, None);
        Ok(())
    }

    /// `fsync`: what was written is saved, and every change so far is on the disk.
    pub fn fsync(&self, ino: Ino) -> Result<()> {
        if let Some(edit) = self.edit_if_open(ino) {
            self.save(&mut edit.lock().expect("edit"), true)?;
        }
        Ok(self.runtime.block_on(self.session.sync())?)
    }

    /// `flush` (each `close`): what was written is saved, so that a failure reaches the
    /// program; on the disk at the next `fsync` or sync.
    pub fn flush(&self, ino: Ino) -> Result<()> {
        if let Some(edit) = self.edit_if_open(ino) {
            self.save(&mut edit.lock().expect("edit"), false)?;
        }
        Ok(())
    }

    fn drop_edit_if_closed(&self, ino: Ino, shared: &SharedEdit) {
        let edit = shared.lock().expect("edit");
        if edit.writers == 0 && !edit.working.unsaved {
            self.edits.lock().expect("edits").remove(&ino);
        }
    }

    /// Saves every file being written (before unmounting).
    pub fn save_all(&self) -> Result<()> {
        let edits: Vec<SharedEdit> = self
            .edits
            .lock()
            .expect("edits")
            .values()
            .cloned()
            .collect();
        for edit in edits {
            self.save(&mut edit.lock().expect("edit"), false)?;
        }
        Ok(self.runtime.block_on(self.session.sync())?)
    }

    fn name(name: &str) -> Result<EntryName> {
        if name.len() > 255 {
            return Err(VfsError::new(ErrorKind::InvalidName, "name too long"));
        }
        name.parse().map_err(|_| {
            VfsError::new(
                ErrorKind::InvalidName,
                format!("{name:?} is not a valid name"),
            )
        })
    }

    fn make(&self, parent: Ino, name: &str, new: NewEntry) -> Result<Attr> {
        self.check_writable()?;
        let parent_id = self.id_of(parent)?;
        let name = Self::name(name)?;
        let id = self
            .runtime
            .block_on(self.session.create(parent_id, &name, new))?;
        self.touch(parent_id, None);
        self.touch(id, None);
        self.attr_of(self.ino_of(id), id)
    }

    /// `create`: a new empty file, opened for writing.
    pub fn create(&self, parent: Ino, name: &str) -> Result<Attr> {
        let attr = self.make(parent, name, NewEntry::File)?;
        self.open(attr.ino, true)?;
        Ok(attr)
    }

    /// `mkdir`.
    pub fn mkdir(&self, parent: Ino, name: &str) -> Result<Attr> {
        self.make(parent, name, NewEntry::Folder)
    }

    /// `symlink`.
    pub fn symlink(&self, parent: Ino, name: &str, target: &str) -> Result<Attr> {
        self.make(parent, name, NewEntry::Symlink(target.to_owned()))
    }

    /// `unlink` (`folder` false) and `rmdir` (`folder` true).
    pub fn remove(&self, parent: Ino, name: &str, folder: bool) -> Result<()> {
        self.check_writable()?;
        let parent_id = self.id_of(parent)?;
        let name = Self::name(name)?;
        self.runtime
            .block_on(self.session.remove(parent_id, &name, folder))?;
        self.touch(parent_id, None);
        Ok(())
    }

    /// `rename`, replacing what `new_name` was (a file replaced keeps its history).
    pub fn rename(&self, parent: Ino, name: &str, new_parent: Ino, new_name: &str) -> Result<()> {
        self.check_writable()?;
        let (from, to) = (self.id_of(parent)?, self.id_of(new_parent)?);
        let (name, new_name) = (Self::name(name)?, Self::name(new_name)?);
        // The moved file's unsaved writes are saved first: its content moves with it.
        if let Ok(attr) = self.lookup(parent, name.as_str()) {
            self.flush(attr.ino)?;
        }
        self.runtime
            .block_on(self.session.rename(from, &name, to, &new_name))?;
        self.touch(from, None);
        self.touch(to, None);
        Ok(())
    }

    /// Uploads this device's changes and takes other devices' every `every` while mounted.
    pub fn spawn_sync(self: &Arc<Self>, every: std::time::Duration) {
        let vfs = Arc::downgrade(self);
        self.runtime.spawn(async move {
            let mut ticks = tokio::time::interval(every);
            // Since when changes wait for upload (reset while nothing waits, so that a burst
            // after an idle spell is not uploaded at its first tick).
            let mut waiting_since = std::time::Instant::now();
            loop {
                ticks.tick().await;
                let Some(vfs) = vfs.upgrade() else { return };
                // What other processes of this device (the command line) changed shows within a
                // tick.
                vfs.session.forget_cached();
                // What was saved reaches the disk within a tick, as a journaling file system
                // commits every few seconds.
                if let Err(e) = vfs.session.sync().await {
                    tracing::warn!(error = %e, "syncing the mount's changes to disk failed; retrying");
                }
                let mut changes = Vec::new();
                // Uploading during a burst of changes would share the machine with it, and
                // upload folders that change again a moment later.
                let quiet = vfs.last_change.lock().expect("last change").elapsed()
                    >= QUIET_BEFORE_UPLOAD;
                let pending = vfs.session.has_pending().unwrap_or(false);
                if !pending {
                    waiting_since = std::time::Instant::now();
                }
                let due = quiet || waiting_since.elapsed() >= UPLOAD_AT_LEAST_EVERY;
                if due && pending {
                    waiting_since = std::time::Instant::now();
                    match vfs.session.push().await {
                        Ok(resolved) => changes.extend(resolved.unwrap_or_default()),
                        Err(e) => {
                            tracing::warn!(error = %e, "uploading the mount's changes failed; retrying");
                        }
                    }
                }
                match vfs.session.pull().await {
                    Ok(taken) => changes.extend(taken.unwrap_or_default()),
                    Err(e) => {
                        tracing::warn!(error = %e, "taking other devices' changes failed; retrying");
                    }
                }
                if !changes.is_empty() {
                    vfs.invalidate(&changes).await;
                }
            }
        });
    }

    /// Tells the driver what the kernel must forget after other devices' `changes`, from a
    /// blocking thread (the kernel may wait for requests this process serves).
    async fn invalidate(&self, changes: &[RemoteChange]) {
        let invalidations = self.invalidations(changes).await;
        let invalidator = self.invalidator.lock().expect("invalidator").clone();
        if let Some(invalidate) = invalidator
            && !invalidations.is_empty()
        {
            let _ = tokio::task::spawn_blocking(move || invalidate(&invalidations)).await;
        }
    }

    /// What the kernel must forget after `changes` (only inodes it was given can be cached).
    ///
    /// A file's new version gets a new inode number under its name: with the writeback cache
    /// the kernel keeps its own idea of a cached file's size and never takes ours again, so the
    /// new content must reach it as a new inode (as if the file had been replaced, which is
    /// what another device did). Handles open on the old number keep working.
    async fn invalidations(&self, changes: &[RemoteChange]) -> Vec<Invalidation> {
        let mut out = Vec::new();
        for change in changes {
            let Some(ino) = self.inodes.lock().expect("inode table").find(&change.id) else {
                continue;
            };
            out.push(Invalidation::Inode(ino));
            out.extend(change.names.iter().map(|name| Invalidation::Name {
                parent: ino,
                name: name.as_str().to_owned(),
            }));
            let Some(parent_id) = change.parent else {
                continue;
            };
            let parent_ino = self.inodes.lock().expect("inode table").find(&parent_id);
            let folder = self.session.entry(parent_id).await.ok().flatten();
            let name = folder.and_then(|f| {
                f.children
                    .iter()
                    .find(|(_, id)| *id == change.id)
                    .map(|(n, _)| n.as_str().to_owned())
            });
            self.inodes.lock().expect("inode table").renumber(change.id);
            if let (Some(parent), Some(name)) = (parent_ino, name) {
                out.push(Invalidation::Name { parent, name });
            }
        }
        out
    }

    /// Uploads what waits (after unmounting); `Ok(false)` when the server is unreachable (the
    /// changes stay on this device, durable).
    pub async fn push_now(&self) -> Result<bool> {
        // A push takes one round of what waits; a round may leave more (conflict copies).
        for _ in 0..16 {
            let Some(changes) = self.session.push().await? else {
                return Ok(false);
            };
            if !changes.is_empty() {
                self.invalidate(&changes).await;
            }
            if !self.session.has_pending()? {
                return Ok(true);
            }
        }
        Err(VfsError::new(
            ErrorKind::Io,
            "changes kept conflicting with other devices; they stay on this device for the next sync",
        ))
    }

    /// `read`: up to `size` bytes at `offset` (fewer at the end of the file). A read that
    /// continues the previous one starts fetching the next blocks.
    pub fn read(&self, ino: Ino, offset: u64, size: u32) -> Result<Vec<u8>> {
        if let Some(edit) = self.edit_if_open(ino) {
            return self.read_edit(&edit.lock().expect("edit"), offset, size);
        }
        if let Some(data) = self.read_open(ino, offset, size)? {
            return Ok(data);
        }
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

    /// `release`: a handle is closed; the last writer's close saves the file.
    pub fn release(&self, ino: Ino, write: bool) -> Result<()> {
        self.last_read_end
            .lock()
            .expect("read positions")
            .remove(&ino);
        if !write {
            let mut reading = self.reading.lock().expect("reading");
            if let Some(open) = reading.get_mut(&ino) {
                open.readers = open.readers.saturating_sub(1);
                if open.readers == 0 {
                    reading.remove(&ino);
                }
            }
            return Ok(());
        }
        let Some(shared) = self.edit_if_open(ino) else {
            return Ok(());
        };
        {
            let mut edit = shared.lock().expect("edit");
            edit.writers = edit.writers.saturating_sub(1);
            if edit.writers == 0 {
                self.save(&mut edit, false)?;
            }
        }
        self.drop_edit_if_closed(ino, &shared);
        Ok(())
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
