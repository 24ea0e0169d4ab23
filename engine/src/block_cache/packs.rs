//! Pack files: the disk cache's encrypted blocks, appended to files of up to [`PACK_BYTES`].
//!
//! Why not a file per block: creating a file costs an inode allocation, a directory entry and a
//! journal entry, and at fsync one sync per file; for a 1 GiB file of 1 MiB blocks that is a
//! thousand of each, and creating them took 2.3 s of system time on the reference machine,
//! against 0.07 s for the same bytes appended to packs (docs/architecture.md §12).
//!
//! Each block starts at a multiple of [`ALIGN`] and owns its range rounded up to it, so that
//! large blocks are written with `O_DIRECT` on Linux: straight from memory to the disk, without
//! a second copy in the page cache (the mount keeps the plaintext there already) and without a
//! write-back burst at the next sync. A block's range is freed by punching a hole; a pack with
//! no block left is deleted.
//!
//! Several processes of one device share the cache: each appends only to packs it created, and
//! holds a lock on the one it is filling, so that nobody deletes it meanwhile.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rand_core::{OsRng, RngCore};

/// A pack is closed once it holds this many bytes.
pub const PACK_BYTES: u64 = 256 << 20;

/// Blocks start at multiples of this (the largest logical sector size `O_DIRECT` requires).
pub const ALIGN: u64 = 4096;

/// Blocks of at least this size are written with `O_DIRECT` where there is one.
const DIRECT_FROM: usize = 64 << 10;

/// Open packs kept for reading; beyond this the table is emptied and reopened on demand.
const READERS_KEPT: usize = 64;

/// Aligned buffers kept for direct writes (fresh memory costs page faults and zeroing).
const BUFFERS_KEPT: usize = 8;

/// Where a block's bytes are: a pack and an offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Location {
    /// The pack's number (its file name in hexadecimal).
    pub pack: u64,
    /// Offset of the block's first byte, a multiple of [`ALIGN`].
    pub offset: u64,
}

/// The pack this process is filling.
struct Filling {
    number: u64,
    /// Locked (see the module documentation) for as long as it is open here.
    buffered: Arc<File>,
    /// The same file opened with `O_DIRECT`, where the platform and file system allow it.
    direct: Option<Arc<File>>,
    end: u64,
}

/// The pack files of one cache directory.
pub struct Packs {
    dir: PathBuf,
    filling: Mutex<Option<Filling>>,
    readers: Mutex<HashMap<u64, Arc<File>>>,
    /// Buffers for direct writes, reused.
    buffers: Mutex<Vec<Vec<u8>>>,
    /// Cleared when the file system refuses `O_DIRECT` (tmpfs before Linux 6.6, some FUSE).
    direct_works: std::sync::atomic::AtomicBool,
}

/// `len` rounded up to [`ALIGN`].
pub fn padded(len: u64) -> u64 {
    len.div_ceil(ALIGN) * ALIGN
}

impl Packs {
    /// The packs under `dir` (created when the first block is written).
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            filling: Mutex::new(None),
            readers: Mutex::new(HashMap::new()),
            buffers: Mutex::new(Vec::new()),
            direct_works: std::sync::atomic::AtomicBool::new(cfg!(target_os = "linux")),
        }
    }

    fn path(&self, pack: u64) -> PathBuf {
        pack_path(&self.dir, pack)
    }

    /// Appends `bytes` to the pack being filled and returns where they are; with `sync`, they
    /// are on the disk when this returns. Blocks are written in parallel: only the choice of
    /// the offset is serialized.
    pub fn append(&self, bytes: &[u8], sync: bool) -> std::io::Result<Location> {
        let span = padded(bytes.len() as u64).max(ALIGN);
        let (location, buffered, direct) = {
            let mut filling = self
                .filling
                .lock()
                .map_err(|_| std::io::Error::other("pack lock poisoned"))?;
            if filling.as_ref().is_none_or(|f| f.end + span > PACK_BYTES) {
                *filling = Some(self.start_pack()?);
            }
            let filling = filling.as_mut().expect("a pack is being filled");
            let location = Location {
                pack: filling.number,
                offset: filling.end,
            };
            filling.end += span;
            (location, filling.buffered.clone(), filling.direct.clone())
        };
        let use_direct = bytes.len() >= DIRECT_FROM
            && self.direct_works.load(std::sync::atomic::Ordering::Relaxed);
        let written = match direct {
            Some(direct) if use_direct => match self.write_aligned(&direct, bytes, location.offset)
            {
                Err(e) if e.raw_os_error() == Some(EINVAL) => {
                    // The file system takes no direct IO after all: buffered from now on.
                    self.direct_works
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                    write_all_at(&buffered, bytes, location.offset)
                }
                other => other,
            },
            _ => write_all_at(&buffered, bytes, location.offset),
        };
        written?;
        if sync {
            buffered.sync_data()?;
        }
        Ok(location)
    }

    fn start_pack(&self) -> std::io::Result<Filling> {
        std::fs::create_dir_all(&self.dir)?;
        loop {
            let number = OsRng.next_u64();
            let path = self.path(number);
            let buffered = match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            };
            // New, so nobody else holds it; the lock tells other processes it is being filled.
            buffered.try_lock().map_err(std::io::Error::other)?;
            let direct = open_direct(&path);
            return Ok(Filling {
                number,
                buffered: Arc::new(buffered),
                direct: direct.map(Arc::new),
                end: 0,
            });
        }
    }

    /// Reads `len` bytes at `location`; `None` if the pack is gone or shorter (a write a crash
    /// cut short, or a pack another process deleted): the block is then fetched again.
    pub fn read(&self, location: Location, len: u64) -> std::io::Result<Option<Vec<u8>>> {
        let Some(file) = self.reader(location.pack)? else {
            return Ok(None);
        };
        let mut buffer = vec![0u8; len as usize];
        match read_exact_at(&file, &mut buffer, location.offset) {
            Ok(()) => Ok(Some(buffer)),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn reader(&self, pack: u64) -> std::io::Result<Option<Arc<File>>> {
        let mut readers = self
            .readers
            .lock()
            .map_err(|_| std::io::Error::other("pack readers lock poisoned"))?;
        if let Some(file) = readers.get(&pack) {
            return Ok(Some(file.clone()));
        }
        let file = match File::open(self.path(pack)) {
            Ok(file) => Arc::new(file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if readers.len() >= READERS_KEPT {
            readers.clear();
        }
        readers.insert(pack, file.clone());
        Ok(Some(file))
    }

    /// Frees the space of a block of `len` bytes (a hole in its pack, where the file system
    /// allows it; else the space returns when the whole pack is deleted).
    pub fn free(&self, location: Location, len: u64) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Ok(file) = OpenOptions::new()
            .write(true)
            .open(self.path(location.pack))
        {
            use rustix::fs::FallocateFlags;
            let _ = rustix::fs::fallocate(
                &file,
                FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
                location.offset,
                padded(len).max(ALIGN),
            );
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let _ = (location, len);
    }

    /// Deletes a pack that holds no recorded block, unless a process is filling it or it was
    /// written in the last `quiet` (its writer may not have recorded its blocks yet). Returns
    /// whether it is gone.
    pub fn delete_if_idle(&self, pack: u64, quiet: std::time::Duration) -> bool {
        if self
            .filling
            .lock()
            .map(|f| f.as_ref().is_some_and(|f| f.number == pack))
            .unwrap_or(true)
        {
            return false;
        }
        let path = self.path(pack);
        let file = match OpenOptions::new().write(true).open(&path) {
            Ok(file) => file,
            Err(e) => return e.kind() == std::io::ErrorKind::NotFound,
        };
        let recent = file
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_none_or(|age| age < quiet);
        if recent || file.try_lock().is_err() {
            return false;
        }
        if let Ok(mut readers) = self.readers.lock() {
            readers.remove(&pack);
        }
        std::fs::remove_file(&path).is_ok()
    }

    /// Writes `bytes` at `offset` (a multiple of [`ALIGN`]) through an `O_DIRECT` file: copied
    /// into an aligned buffer padded with zeros to a multiple of [`ALIGN`] (what direct IO
    /// requires).
    fn write_aligned(&self, file: &File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
        let span = padded(bytes.len() as u64) as usize;
        let mut memory = self
            .buffers
            .lock()
            .ok()
            .and_then(|mut kept| kept.pop())
            .unwrap_or_default();
        memory.resize(memory.len().max(span + ALIGN as usize), 0);
        // The first address in the allocation that is a multiple of ALIGN.
        let skew = memory.as_ptr() as usize % ALIGN as usize;
        let start = if skew == 0 { 0 } else { ALIGN as usize - skew };
        let aligned = &mut memory[start..start + span];
        aligned[..bytes.len()].copy_from_slice(bytes);
        aligned[bytes.len()..].fill(0);
        let written = write_all_at(file, aligned, offset);
        if let Ok(mut kept) = self.buffers.lock()
            && kept.len() < BUFFERS_KEPT
        {
            kept.push(memory);
        }
        written
    }
}

fn pack_path(dir: &Path, pack: u64) -> PathBuf {
    dir.join(format!("{pack:016x}.pack"))
}

#[cfg(target_os = "linux")]
const EINVAL: i32 = rustix::io::Errno::INVAL.raw_os_error();
#[cfg(not(target_os = "linux"))]
const EINVAL: i32 = -1;

#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
        .open(path)
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_: &Path) -> Option<File> {
    None
}

#[cfg(unix)]
fn write_all_at(file: &File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(unix)]
fn read_exact_at(file: &File, buffer: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buffer, offset)
}

#[cfg(windows)]
fn write_all_at(file: &File, mut bytes: &[u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !bytes.is_empty() {
        let n = file.seek_write(bytes, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buffer: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buffer.is_empty() {
        let n = file.seek_read(buffer, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer = &mut buffer[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packs() -> (tempfile::TempDir, Packs) {
        let dir = tempfile::tempdir().unwrap();
        let packs = Packs::new(dir.path().join("packs"));
        (dir, packs)
    }

    #[test]
    fn blocks_round_trip_aligned_large_and_small() {
        let (_dir, packs) = packs();
        let small = vec![7u8; 100];
        let large: Vec<u8> = (0..(1 << 20) + 40).map(|i| (i % 251) as u8).collect();
        let a = packs.append(&small, false).unwrap();
        let b = packs.append(&large, true).unwrap();
        let c = packs.append(&small, false).unwrap();
        assert_eq!(a.pack, b.pack);
        assert_eq!((a.offset, b.offset), (0, ALIGN));
        assert_eq!(c.offset, ALIGN + padded(large.len() as u64));
        assert_eq!(packs.read(a, 100).unwrap().unwrap(), small);
        assert_eq!(
            packs.read(b, large.len() as u64).unwrap().unwrap(),
            large,
            "the block written directly reads back through the page cache"
        );
        assert_eq!(packs.read(c, 100).unwrap().unwrap(), small);
        assert!(
            packs
                .read(
                    Location {
                        pack: c.pack,
                        offset: c.offset + ALIGN
                    },
                    100
                )
                .unwrap()
                .is_none(),
            "beyond the end: not there"
        );
    }

    #[test]
    fn a_full_pack_is_closed_and_a_new_one_started() {
        let (_dir, packs) = packs();
        let block = vec![1u8; 4 << 20];
        let first = packs.append(&block, false).unwrap();
        let mut last = first;
        for _ in 0..(PACK_BYTES / (4 << 20)) {
            last = packs.append(&block, false).unwrap();
        }
        assert_ne!(first.pack, last.pack);
        assert_eq!(last.offset, 0);
    }

    #[test]
    fn the_pack_being_filled_and_recent_packs_are_not_deleted() {
        let (dir, packs) = packs();
        let at = packs.append(b"block", false).unwrap();
        assert!(!packs.delete_if_idle(at.pack, std::time::Duration::ZERO));
        assert!(packs.read(at, 5).unwrap().is_some(), "being filled");

        // Another process's view: the pack is locked by its writer.
        let other = Packs::new(dir.path().join("packs"));
        assert!(!other.delete_if_idle(at.pack, std::time::Duration::ZERO));
        assert!(other.read(at, 5).unwrap().is_some(), "locked by its writer");

        // Once the writer closed it, idle and old enough, it goes.
        drop(packs);
        assert!(!other.delete_if_idle(at.pack, std::time::Duration::from_secs(3600)));
        assert!(other.read(at, 5).unwrap().is_some(), "written recently");
        assert!(other.delete_if_idle(at.pack, std::time::Duration::ZERO));
        assert!(other.read(at, 5).unwrap().is_none(), "deleted");
    }

    #[test]
    fn freeing_a_block_keeps_its_neighbours() {
        let (_dir, packs) = packs();
        let big = vec![3u8; 256 << 10];
        let a = packs.append(&big, false).unwrap();
        let b = packs.append(&big, false).unwrap();
        packs.free(a, big.len() as u64);
        assert_eq!(packs.read(b, big.len() as u64).unwrap().unwrap(), big);
    }
}
