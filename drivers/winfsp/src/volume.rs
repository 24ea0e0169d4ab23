//! Windows file-system semantics over the vfs, written without Windows types so that they run
//! (and are tested) on every platform: paths instead of inodes, create/open/overwrite, the three
//! write modes, cleanup that deletes, rename with or without replacing, and directory listings
//! continued from a marker. The Windows-only `driver` module converts WinFsp's types to these
//! calls and back.

use std::sync::Arc;

use strongroom_vfs::error::Result as VfsResult;
use strongroom_vfs::{Attr, ErrorKind, Ino, Kind, ROOT_INO, Vfs};

use crate::filetime;
use crate::names;
use crate::status::{self, NtStatus};

/// `FILE_ATTRIBUTE_READONLY`.
pub const ATTRIBUTE_READONLY: u32 = 0x1;
/// `FILE_ATTRIBUTE_DIRECTORY`.
pub const ATTRIBUTE_DIRECTORY: u32 = 0x10;
/// `FILE_ATTRIBUTE_ARCHIVE`: what Windows gives ordinary files.
pub const ATTRIBUTE_ARCHIVE: u32 = 0x20;
/// `FILE_WRITE_DATA` access.
pub const ACCESS_WRITE_DATA: u32 = 0x2;
/// `FILE_APPEND_DATA` access.
pub const ACCESS_APPEND_DATA: u32 = 0x4;
/// `FILE_DIRECTORY_FILE` create option: the caller wants a folder.
pub const OPTION_DIRECTORY_FILE: u32 = 0x1;
/// `FILE_NON_DIRECTORY_FILE` create option: the caller wants a file.
pub const OPTION_NON_DIRECTORY_FILE: u32 = 0x40;
/// Allocation sizes are reported in units of this many bytes.
pub const ALLOCATION_UNIT: u64 = 4096;

/// What Windows shows of a file or folder (`FSP_FSCTL_FILE_INFO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileInfo {
    /// `FILE_ATTRIBUTE_*` bits.
    pub attributes: u32,
    /// Bytes.
    pub size: u64,
    /// Bytes allocated: the size rounded up to [`ALLOCATION_UNIT`].
    pub allocation_size: u64,
    /// Creation, access, write and change time alike: the last change, as a file time.
    pub time: u64,
    /// A stable number per entry: the vfs inode.
    pub index_number: u64,
}

impl FileInfo {
    /// What Windows shows of `attr`.
    pub fn of(attr: &Attr, read_only: bool) -> Self {
        let mut attributes = match attr.kind {
            Kind::Directory => ATTRIBUTE_DIRECTORY,
            Kind::File | Kind::Symlink => ATTRIBUTE_ARCHIVE,
        };
        if read_only && attr.kind != Kind::Directory {
            attributes |= ATTRIBUTE_READONLY;
        }
        let size = if attr.kind == Kind::Directory {
            0
        } else {
            attr.size
        };
        Self {
            attributes,
            size,
            allocation_size: size.div_ceil(ALLOCATION_UNIT) * ALLOCATION_UNIT,
            time: filetime::from_system_time(attr.modified),
            index_number: attr.ino,
        }
    }

    /// Whether this is a folder.
    pub fn is_directory(&self) -> bool {
        self.attributes & ATTRIBUTE_DIRECTORY != 0
    }
}

/// One open of a file or folder: WinFsp's file context, from create/open to close.
#[derive(Debug)]
pub struct OpenFile {
    ino: Ino,
    /// The folder it was opened in, for the ".." of a listing.
    parent: Ino,
    directory: bool,
    /// Opened with write access: the vfs counts it as a writer until close.
    writer: bool,
}

impl OpenFile {
    /// The vfs inode.
    pub fn ino(&self) -> Ino {
        self.ino
    }

    /// Whether it is a folder.
    pub fn is_directory(&self) -> bool {
        self.directory
    }
}

/// Where a write goes (WinFsp's three modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteAt {
    /// At this offset, growing the file as needed.
    Offset(u64),
    /// At this offset, never past the current end (paging IO): the rest is dropped.
    WithinSize(u64),
    /// At the current end of the file (`FILE_APPEND_DATA`).
    End,
}

/// What the volume reports about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    /// Bytes in total.
    pub total: u64,
    /// Bytes free.
    pub free: u64,
    /// The label Explorer shows: the workspace's name (WinFsp keeps 32 UTF-16 units).
    pub label: String,
}

/// The result of a volume operation: WinFsp wants an NTSTATUS on failure.
pub type Result<T> = std::result::Result<T, NtStatus>;

/// A mounted workspace as Windows sees it.
pub struct Volume {
    vfs: Arc<Vfs>,
    label: String,
}

fn check<T>(result: VfsResult<T>) -> Result<T> {
    result.map_err(|e| status::of(&e))
}

impl Volume {
    /// The volume of `vfs`, labelled `label` (cut to what Windows can show).
    pub fn new(vfs: Arc<Vfs>, label: &str) -> Self {
        let mut units = 0;
        let label: String = label
            .chars()
            .take_while(|c| {
                units += c.len_utf16();
                units <= 32
            })
            .collect();
        Self { vfs, label }
    }

    /// The file system served.
    pub fn vfs(&self) -> &Arc<Vfs> {
        &self.vfs
    }

    /// Whether every change is refused.
    pub fn read_only(&self) -> bool {
        self.vfs.read_only()
    }

    fn info(&self, attr: &Attr) -> FileInfo {
        FileInfo::of(attr, self.read_only())
    }

    /// The entry at `parts` and the folder holding it (the root is its own parent). A missing
    /// folder on the way is `OBJECT_PATH_NOT_FOUND`, a missing last name `OBJECT_NAME_NOT_FOUND`,
    /// as Windows programs expect.
    fn resolve(&self, parts: &[&str]) -> Result<(Attr, Ino)> {
        let mut attr = check(self.vfs.getattr(ROOT_INO))?;
        let mut parent = ROOT_INO;
        for (i, name) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            if attr.kind != Kind::Directory || !names::representable(name) {
                return Err(if last {
                    status::OBJECT_NAME_NOT_FOUND
                } else {
                    status::OBJECT_PATH_NOT_FOUND
                });
            }
            parent = attr.ino;
            attr = match self.vfs.lookup(attr.ino, name) {
                Ok(found) => found,
                Err(e) if e.kind == ErrorKind::NotFound && !last => {
                    return Err(status::OBJECT_PATH_NOT_FOUND);
                }
                Err(e) => return Err(status::of(&e)),
            };
            if attr.kind == Kind::Symlink {
                // Symbolic links are not shown on Windows (no reparse points yet).
                return Err(status::OBJECT_NAME_NOT_FOUND);
            }
        }
        Ok((attr, parent))
    }

    fn resolve_path(&self, path: &str) -> Result<(Attr, Ino)> {
        self.resolve(&names::components(path)?)
    }

    /// The folder that will hold `path`'s last name, and that name.
    fn resolve_parent<'p>(&self, path: &'p str) -> Result<(Ino, &'p str)> {
        let Some((folder, name)) = names::parent_and_name(path)? else {
            return Err(status::OBJECT_NAME_COLLISION);
        };
        let (parent, _) = self.resolve(&folder).map_err(|e| {
            if e == status::OBJECT_NAME_NOT_FOUND {
                status::OBJECT_PATH_NOT_FOUND
            } else {
                e
            }
        })?;
        if parent.kind != Kind::Directory {
            return Err(status::OBJECT_PATH_NOT_FOUND);
        }
        if !names::representable(name) {
            return Err(status::OBJECT_NAME_INVALID);
        }
        Ok((parent.ino, name))
    }

    /// `GetSecurityByName`: the attributes of `path` (the security descriptor is the driver's).
    pub fn attributes_by_name(&self, path: &str) -> Result<u32> {
        let (attr, _) = self.resolve_path(path)?;
        Ok(self.info(&attr).attributes)
    }

    /// `Create`: a new file (opened) or folder at `path`.
    pub fn create(&self, path: &str, create_options: u32) -> Result<(OpenFile, FileInfo)> {
        let (parent, name) = self.resolve_parent(path)?;
        let directory = create_options & OPTION_DIRECTORY_FILE != 0;
        let attr = if directory {
            check(self.vfs.mkdir(parent, name))?
        } else {
            // The vfs opens a created file for writing.
            check(self.vfs.create(parent, name))?
        };
        let info = self.info(&attr);
        let file = OpenFile {
            ino: attr.ino,
            parent,
            directory,
            writer: !directory,
        };
        Ok((file, info))
    }

    /// `Open`: an existing file or folder; `granted_access` says whether it will be written.
    pub fn open(
        &self,
        path: &str,
        create_options: u32,
        granted_access: u32,
    ) -> Result<(OpenFile, FileInfo)> {
        let (attr, parent) = self.resolve_path(path)?;
        let directory = attr.kind == Kind::Directory;
        if directory && create_options & OPTION_NON_DIRECTORY_FILE != 0 {
            return Err(status::FILE_IS_A_DIRECTORY);
        }
        if !directory && create_options & OPTION_DIRECTORY_FILE != 0 {
            return Err(status::NOT_A_DIRECTORY);
        }
        let writer = !directory && granted_access & (ACCESS_WRITE_DATA | ACCESS_APPEND_DATA) != 0;
        if !directory {
            check(self.vfs.open(attr.ino, writer))?;
        }
        let file = OpenFile {
            ino: attr.ino,
            parent,
            directory,
            writer,
        };
        let info = self.info(&check(self.vfs.getattr(attr.ino))?);
        Ok((file, info))
    }

    /// `Overwrite` (`CREATE_ALWAYS`, `TRUNCATE_EXISTING` on an existing file): emptied.
    pub fn overwrite(&self, file: &OpenFile) -> Result<FileInfo> {
        if file.directory {
            return Err(status::FILE_IS_A_DIRECTORY);
        }
        Ok(self.info(&check(self.vfs.truncate(file.ino, 0))?))
    }

    /// `Read`: bytes at `offset` into `buffer`; reading at or past the end is `END_OF_FILE`.
    pub fn read(&self, file: &OpenFile, buffer: &mut [u8], offset: u64) -> Result<usize> {
        if file.directory {
            return Err(status::FILE_IS_A_DIRECTORY);
        }
        let size = check(self.vfs.getattr(file.ino))?.size;
        if offset >= size {
            return Err(status::END_OF_FILE);
        }
        let wanted = buffer.len().min(u32::MAX as usize) as u32;
        let data = check(self.vfs.read(file.ino, offset, wanted))?;
        buffer[..data.len()].copy_from_slice(&data);
        Ok(data.len())
    }

    /// `Write`, in one of WinFsp's three modes; returns the bytes written and the new info.
    pub fn write(&self, file: &OpenFile, data: &[u8], at: WriteAt) -> Result<(usize, FileInfo)> {
        if file.directory {
            return Err(status::FILE_IS_A_DIRECTORY);
        }
        let (offset, data) = match at {
            WriteAt::Offset(offset) => (offset, data),
            WriteAt::End => (check(self.vfs.getattr(file.ino))?.size, data),
            WriteAt::WithinSize(offset) => {
                let size = check(self.vfs.getattr(file.ino))?.size;
                if offset >= size {
                    return Ok((0, self.file_info(file)?));
                }
                let room = (size - offset).min(data.len() as u64) as usize;
                (offset, &data[..room])
            }
        };
        let written = check(self.vfs.write(file.ino, offset, data))? as usize;
        Ok((written, self.file_info(file)?))
    }

    /// `Flush` of a file (saved: durable on this device) or, with `None`, of the whole volume.
    pub fn flush(&self, file: Option<&OpenFile>) -> Result<Option<FileInfo>> {
        match file {
            Some(file) => {
                if !file.directory {
                    check(self.vfs.fsync(file.ino))?;
                }
                Ok(Some(self.file_info(file)?))
            }
            None => {
                check(self.vfs.save_all())?;
                Ok(None)
            }
        }
    }

    /// `GetFileInfo`.
    pub fn file_info(&self, file: &OpenFile) -> Result<FileInfo> {
        Ok(self.info(&check(self.vfs.getattr(file.ino))?))
    }

    /// `SetBasicInfo`: of the four times only the last write time is kept (0: unchanged);
    /// attributes other than the folder bit have no place in a workspace.
    pub fn set_times(&self, file: &OpenFile, last_write: u64) -> Result<FileInfo> {
        if let Some(at) = filetime::to_system_time(last_write) {
            check(self.vfs.set_modified(file.ino, at))?;
        }
        self.file_info(file)
    }

    /// `SetFileSize`: the file's size, or (with `allocation`) its allocation, which only shrinks
    /// a file when it is set below the size.
    pub fn set_size(&self, file: &OpenFile, size: u64, allocation: bool) -> Result<FileInfo> {
        if file.directory {
            return Err(status::FILE_IS_A_DIRECTORY);
        }
        let current = check(self.vfs.getattr(file.ino))?.size;
        if !allocation || size < current {
            return Ok(self.info(&check(self.vfs.truncate(file.ino, size))?));
        }
        self.file_info(file)
    }

    /// `CanDelete`: a folder must be empty; a read-only volume deletes nothing.
    pub fn can_delete(&self, file: &OpenFile) -> Result<()> {
        if self.read_only() {
            return Err(status::MEDIA_WRITE_PROTECTED);
        }
        if file.directory && !check(self.vfs.readdir(file.ino))?.is_empty() {
            return Err(status::DIRECTORY_NOT_EMPTY);
        }
        Ok(())
    }

    /// `Cleanup`: the last handle of this open is closed. What it wrote is saved (so a program
    /// that closed a file finds it durable); with `delete`, the entry at `path` is removed.
    /// Windows ignores failures here, so they are logged.
    pub fn cleanup(&self, file: &OpenFile, path: Option<&str>, delete: bool) {
        if delete {
            let Some(path) = path else { return };
            let removed = self
                .resolve_parent(path)
                .and_then(|(parent, name)| check(self.vfs.remove(parent, name, file.directory)));
            if let Err(status) = removed {
                tracing::warn!(
                    path,
                    status = format_args!("{:#010X}", status as u32),
                    "delete on close failed"
                );
            }
        } else if file.writer
            && let Err(e) = self.vfs.flush(file.ino)
        {
            tracing::warn!(error = %e, "saving a closed file failed; it is saved again at close");
        }
    }

    /// `Close`: the open ends (WinFsp may still have written cached pages between cleanup and
    /// close; the vfs saves them now).
    pub fn close(&self, file: OpenFile) {
        if file.directory {
            return;
        }
        if let Err(e) = self.vfs.release(file.ino, file.writer)
            && e.kind != ErrorKind::NotFound
        {
            tracing::warn!(error = %e, "saving a file at close failed");
        }
    }

    /// `Rename`: `path` becomes `new_path`; an existing file there is replaced only when
    /// `replace` (never a folder).
    pub fn rename(&self, path: &str, new_path: &str, replace: bool) -> Result<()> {
        let (from, name) = self.resolve_parent(path)?;
        let (to, new_name) = self.resolve_parent(new_path)?;
        if from == to && name == new_name {
            return Ok(());
        }
        match self.vfs.lookup(to, new_name) {
            Ok(_) if !replace => return Err(status::OBJECT_NAME_COLLISION),
            Ok(existing) if existing.kind == Kind::Directory => {
                return Err(status::ACCESS_DENIED);
            }
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(status::of(&e)),
        }
        check(self.vfs.rename(from, name, to, new_name))
    }

    /// `ReadDirectory`: the folder's entries after `marker` (the last name WinFsp received),
    /// "." and ".." first (except at the root), then by name. Entries Windows cannot show
    /// (symbolic links, names with forbidden characters) are left out. WinFsp's kernel side
    /// applies the search pattern (`*.docx`) to what this returns.
    pub fn read_directory(
        &self,
        folder: &OpenFile,
        marker: Option<&str>,
    ) -> Result<Vec<(String, FileInfo)>> {
        if !folder.directory {
            return Err(status::NOT_A_DIRECTORY);
        }
        let mut entries: Vec<(String, FileInfo)> = check(self.vfs.readdir(folder.ino))?
            .into_iter()
            .filter(|e| e.attr.kind != Kind::Symlink && names::representable(&e.name))
            .map(|e| {
                let info = self.info(&e.attr);
                (e.name, info)
            })
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        if folder.ino != ROOT_INO {
            let own = self.file_info(folder)?;
            let parent = self.info(&check(self.vfs.getattr(folder.parent))?);
            entries.splice(0..0, [(".".to_owned(), own), ("..".to_owned(), parent)]);
        }
        let Some(marker) = marker else {
            return Ok(entries);
        };
        let key = |name: &str| match name {
            "." => (0, String::new()),
            ".." => (1, String::new()),
            other => (2, other.to_owned()),
        };
        let after = key(marker);
        Ok(entries
            .into_iter()
            .filter(|(name, _)| key(name) > after)
            .collect())
    }

    /// `GetDirInfoByName`: one entry of a folder, as a listing would show it.
    pub fn dir_info_by_name(&self, folder: &OpenFile, name: &str) -> Result<FileInfo> {
        if !names::representable(name) {
            return Err(status::OBJECT_NAME_NOT_FOUND);
        }
        let attr = check(self.vfs.lookup(folder.ino, name))?;
        if attr.kind == Kind::Symlink {
            return Err(status::OBJECT_NAME_NOT_FOUND);
        }
        Ok(self.info(&attr))
    }

    /// `GetVolumeInfo`.
    pub fn volume_info(&self) -> VolumeInfo {
        let stats = self.vfs.statfs();
        VolumeInfo {
            total: stats.blocks * u64::from(stats.block_size),
            free: stats.free * u64::from(stats.block_size),
            label: self.label.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn attr(kind: Kind, size: u64) -> Attr {
        Attr {
            ino: 42,
            kind,
            size,
            modified: UNIX_EPOCH + Duration::from_secs(1_795_737_600),
            perm: 0o644,
            nlink: 1,
        }
    }

    #[test]
    fn files_and_folders_show_as_windows_expects() {
        let file = FileInfo::of(&attr(Kind::File, 5000), false);
        assert_eq!(file.attributes, ATTRIBUTE_ARCHIVE);
        assert_eq!(file.size, 5000);
        assert_eq!(file.allocation_size, 8192);
        assert_eq!(file.index_number, 42);
        assert_eq!(file.time, 134_402_112_000_000_000);
        assert!(!file.is_directory());

        let folder = FileInfo::of(&attr(Kind::Directory, 0), true);
        assert_eq!(folder.attributes, ATTRIBUTE_DIRECTORY);
        assert_eq!(folder.allocation_size, 0);
        assert!(folder.is_directory());

        let read_only = FileInfo::of(&attr(Kind::File, 0), true);
        assert_eq!(read_only.attributes, ATTRIBUTE_ARCHIVE | ATTRIBUTE_READONLY);
    }
}
