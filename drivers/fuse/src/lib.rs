//! `strongroom-fuse`: the FUSE driver. Every call is translated to [`strongroom_vfs::Vfs`] and its
//! answer back; no file-system logic lives here.
//!
//! Kernel settings: several worker threads, requests and read-ahead up to 1 MiB (one block),
//! attribute and entry time-to-live of one second, readdirplus, and the page cache of a file
//! kept across opens while its content does not change.

#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    BsdFileFlags, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, InitFlags, IoctlFlags, KernelConfig, LockOwner, MountOption, OpenAccMode,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus,
    ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request,
    TimeOrNow, WriteFlags,
};
use strongroom_vfs::{Attr, ErrorKind, Invalidation, Kind, Vfs, VfsError};

/// How long the kernel may trust attributes and names before asking again. Changes made
/// through the mount reach the kernel as they happen, and other devices' changes are
/// invalidated as they arrive (see [`mount`]), so this only bounds what a missed notification
/// could cost.
pub const TTL: Duration = Duration::from_secs(30);
/// The largest read and write requests, and the read-ahead: one block.
const MAX_REQUEST: u32 = 1 << 20;
/// FUSE worker threads.
const THREADS: usize = 4;
/// The handle of a file opened for reading only.
const READER: FileHandle = FileHandle(0);
/// The handle of a file opened for writing.
const WRITER: FileHandle = FileHandle(1);

/// The FUSE file system of one mounted workspace.
pub struct FuseFs {
    vfs: Arc<Vfs>,
    uid: u32,
    gid: u32,
}

impl FuseFs {
    /// Answers a request that returns a new entry.
    fn entry(&self, reply: ReplyEntry, result: strongroom_vfs::error::Result<Attr>) {
        match result {
            Ok(attr) => reply.entry(&TTL, &self.attr(&attr), Generation(0)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    /// Serves `vfs`; files belong to the user running the mount.
    pub fn new(vfs: Arc<Vfs>) -> Self {
        Self {
            vfs,
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
        }
    }

    fn attr(&self, attr: &Attr) -> FileAttr {
        FileAttr {
            ino: INodeNo(attr.ino),
            size: attr.size,
            blocks: attr.blocks(),
            atime: attr.modified,
            mtime: attr.modified,
            ctime: attr.modified,
            crtime: attr.modified,
            kind: file_type(attr.kind),
            perm: attr.perm,
            nlink: attr.nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: MAX_REQUEST,
            flags: 0,
        }
    }
}

/// Answers a request that returns nothing.
fn empty(reply: ReplyEmpty, result: strongroom_vfs::error::Result<()>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(&e)),
    }
}

fn file_type(kind: Kind) -> FileType {
    match kind {
        Kind::File => FileType::RegularFile,
        Kind::Directory => FileType::Directory,
        Kind::Symlink => FileType::Symlink,
    }
}

/// The errno of a vfs error (logged, since the kernel only passes the number on).
fn errno(error: &VfsError) -> Errno {
    let errno = match error.kind {
        ErrorKind::NotFound => Errno::ENOENT,
        ErrorKind::NotADirectory => Errno::ENOTDIR,
        ErrorKind::IsADirectory => Errno::EISDIR,
        ErrorKind::NotASymlink => Errno::EINVAL,
        ErrorKind::ReadOnly => Errno::EROFS,
        ErrorKind::PermissionDenied => Errno::EACCES,
        ErrorKind::InvalidName => Errno::EINVAL,
        ErrorKind::AlreadyExists => Errno::EEXIST,
        ErrorKind::NotEmpty => Errno::ENOTEMPTY,
        ErrorKind::BadHandle => Errno::EBADF,
        ErrorKind::StorageFull => Errno::ENOSPC,
        ErrorKind::Unavailable | ErrorKind::Io => Errno::EIO,
    };
    if !matches!(
        error.kind,
        ErrorKind::NotFound | ErrorKind::AlreadyExists | ErrorKind::NotEmpty
    ) {
        tracing::warn!(error = %error, "file system request failed");
    }
    errno
}

fn name(name: &OsStr) -> Result<&str, Errno> {
    // Workspace names are UTF-8; another name cannot exist there.
    name.to_str().ok_or(Errno::ENOENT)
}

impl Filesystem for FuseFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_readahead(MAX_REQUEST);
        let _ = config.set_max_write(MAX_REQUEST);
        let wanted = InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_READDIRPLUS_AUTO
            | InitFlags::FUSE_ASYNC_READ
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_AUTO_INVAL_DATA
            | InitFlags::FUSE_MAX_PAGES
            // Writes land in the page cache and reach us in large requests, on fsync, close
            // or memory pressure (the kernel then keeps sizes and times of dirty files).
            | InitFlags::FUSE_WRITEBACK_CACHE;
        // Whatever the kernel does not offer is simply not used.
        let _ = config.add_capabilities(wanted & config.capabilities());
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name_: &OsStr, reply: ReplyEntry) {
        let Ok(name) = name(name_) else {
            return reply.error(Errno::ENOENT);
        };
        self.entry(reply, self.vfs.lookup(parent.0, name))
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.vfs.getattr(ino.0) {
            Ok(attr) => reply.attr(&TTL, &self.attr(&attr)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.vfs.readlink(ino.0) {
            Ok(target) => reply.data(target.as_bytes()),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let write = !matches!(flags.acc_mode(), OpenAccMode::O_RDONLY);
        match self.vfs.open(ino.0, write) {
            // The content of an entry changes only through a new version: a reader's kernel may
            // keep its cached pages across opens. The handle says whether it writes.
            Ok(()) if write => reply.opened(WRITER, writer_flags(flags)),
            Ok(()) => reply.opened(READER, FopenFlags::FOPEN_KEEP_CACHE),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.vfs.read(ino.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        empty(reply, self.vfs.release(ino.0, fh == WRITER))
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.vfs.write(ino.0, offset, data) {
            Ok(written) => reply.written(written),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        empty(reply, self.vfs.fsync(ino.0))
    }

    // Folder changes are committed as they happen.
    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name_: &OsStr,
        _mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let Ok(name) = name(name_) else {
            return reply.error(Errno::EINVAL);
        };
        match self.vfs.create(parent.0, name) {
            Ok(attr) => reply.created(
                &TTL,
                &self.attr(&attr),
                Generation(0),
                WRITER,
                writer_flags(OpenFlags(flags)),
            ),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // Workspaces keep no owners or modes: those changes are accepted and have no effect
        // (as on FAT); the size is real; a chosen modification time lasts for this mount.
        let result = match (size, mtime) {
            (Some(size), _) => self.vfs.truncate(ino.0, size),
            (None, Some(TimeOrNow::SpecificTime(at))) => self.vfs.set_modified(ino.0, at),
            (None, Some(TimeOrNow::Now)) => self.vfs.set_modified(ino.0, SystemTime::now()),
            (None, None) => self.vfs.getattr(ino.0),
        };
        match result {
            Ok(attr) => reply.attr(&TTL, &self.attr(&attr)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name_: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let Ok(name) = name(name_) else {
            return reply.error(Errno::EINVAL);
        };
        self.entry(reply, self.vfs.mkdir(parent.0, name))
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let (Ok(name), Some(target)) = (name(link_name), target.to_str()) else {
            return reply.error(Errno::EINVAL);
        };
        self.entry(reply, self.vfs.symlink(parent.0, name, target))
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name_: &OsStr, reply: ReplyEmpty) {
        let Ok(name) = name(name_) else {
            return reply.error(Errno::ENOENT);
        };
        empty(reply, self.vfs.remove(parent.0, name, false))
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name_: &OsStr, reply: ReplyEmpty) {
        let Ok(name) = name(name_) else {
            return reply.error(Errno::ENOENT);
        };
        empty(reply, self.vfs.remove(parent.0, name, true))
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name_: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        // RENAME_NOREPLACE and RENAME_EXCHANGE are not supported yet.
        if !flags.is_empty() {
            return reply.error(Errno::EINVAL);
        }
        let (Ok(from), Ok(to)) = (name(name_), name(newname)) else {
            return reply.error(Errno::EINVAL);
        };
        empty(reply, self.vfs.rename(parent.0, from, newparent.0, to))
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let entries = match self.vfs.readdir(ino.0) {
            Ok(entries) => entries,
            Err(e) => return reply.error(errno(&e)),
        };
        let dots = [
            (".", ino.0, Kind::Directory),
            ("..", ino.0, Kind::Directory),
        ];
        let all = dots.into_iter().chain(
            entries
                .iter()
                .map(|e| (e.name.as_str(), e.attr.ino, e.attr.kind)),
        );
        for (i, (name, entry_ino, kind)) in all.enumerate().skip(offset as usize) {
            if reply.add(INodeNo(entry_ino), i as u64 + 1, file_type(kind), name) {
                break;
            }
        }
        reply.ok();
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let entries = match self.vfs.readdir(ino.0) {
            Ok(entries) => entries,
            Err(e) => return reply.error(errno(&e)),
        };
        let own = match self.vfs.getattr(ino.0) {
            Ok(attr) => attr,
            Err(e) => return reply.error(errno(&e)),
        };
        let dots = [(".".to_owned(), own.clone()), ("..".to_owned(), own)];
        let all = dots
            .into_iter()
            .chain(entries.into_iter().map(|e| (e.name, e.attr)));
        for (i, (name, attr)) in all.enumerate().skip(offset as usize) {
            if reply.add(
                INodeNo(attr.ino),
                i as u64 + 1,
                &name,
                &TTL,
                &self.attr(&attr),
                Generation(0),
            ) {
                break;
            }
        }
        reply.ok();
    }

    // close(2): what this handle wrote is saved, so that an error reaches the program.
    fn flush(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let saved = if fh == WRITER {
            self.vfs.flush(ino.0)
        } else {
            Ok(())
        };
        match saved {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    // Workspaces keep no extended attributes. ENOSYS tells the kernel once for the whole mount,
    // and it stops asking (fuser's default answers the same but logs every call).
    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: ReplyXattr) {
        reply.error(Errno::ENOSYS);
    }

    // Setting one (`cp -a` copies ACLs) is "not supported", which copying tools skip quietly.
    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::ENOTSUP);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::ENOTSUP);
    }

    // No device controls here (terminal probes by some programs, for instance).
    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        reply.error(Errno::ENOTTY);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let stats = self.vfs.statfs();
        reply.statfs(
            stats.blocks,
            stats.free,
            stats.free,
            stats.files,
            u64::from(u32::MAX),
            stats.block_size,
            stats.name_max,
            stats.block_size,
        );
    }
}

/// A mounted workspace; dropping it (or [`Mounted::unmount`]) unmounts.
pub struct Mounted {
    session: fuser::BackgroundSession,
}

impl Mounted {
    /// Whether the kernel ended the session (unmounted from outside).
    pub fn finished(&self) -> bool {
        self.session.guard.is_finished()
    }

    /// Unmounts and waits for the FUSE threads to end.
    pub fn unmount(self) -> std::io::Result<()> {
        self.session.umount_and_join()
    }

    /// Waits for the FUSE threads to end, after an unmount from outside ([`unmount_path`]).
    pub fn join(self) -> std::io::Result<()> {
        self.session.join()
    }
}

/// The file system's name in the mount table (`strongroom:NAME`, what `mount`, `df` and
/// `findmnt` print), from a workspace's name, which another member may have chosen: letters,
/// digits, `-`, `_` and `.` as they are, anything else `_`. The kernel shows other controls as
/// they are, and fusermount reads a comma as the start of another mount option.
fn fs_name(name: &str) -> String {
    let shown: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("strongroom:{shown}")
}

/// Mounts `vfs` on `mountpoint` (an existing, empty folder), served by background threads.
/// `name` (the workspace's) names the file system in the mount table.
pub fn mount(vfs: Arc<Vfs>, mountpoint: &Path, name: &str) -> std::io::Result<Mounted> {
    let mut options = vec![
        MountOption::FSName(fs_name(name)),
        MountOption::Subtype("strongroom".into()),
        MountOption::DefaultPermissions,
        MountOption::NoAtime,
    ];
    if vfs.read_only() {
        options.push(MountOption::RO);
    }
    let mut config = Config::default();
    config.mount_options = options;
    config.n_threads = Some(THREADS);
    let session = fuser::spawn_mount(FuseFs::new(vfs.clone()), mountpoint, &config)?;
    let notifier = session.notifier();
    vfs.set_invalidator(Arc::new(move |invalidations: &[Invalidation]| {
        for invalidation in invalidations {
            let sent = match invalidation {
                // Offset 0, length 0: every cached page, and the attributes.
                Invalidation::Inode(ino) => notifier.inval_inode(INodeNo(*ino), 0, 0),
                Invalidation::Name { parent, name } => {
                    notifier.inval_entry(INodeNo(*parent), OsStr::new(name))
                }
            };
            // ENOENT: the kernel had nothing cached for it, which is fine.
            if let Err(e) = sent
                && e.raw_os_error() != Some(rustix::io::Errno::NOENT.raw_os_error())
            {
                tracing::debug!(error = %e, ?invalidation, "the kernel refused an invalidation");
            }
        }
    }));
    Ok(Mounted { session })
}

/// Whether `dir` is a FUSE mount whose process is gone ("transport endpoint is not connected").
pub fn is_stale_mount(dir: &Path) -> bool {
    matches!(std::fs::metadata(dir), Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTCONN.raw_os_error()))
}

/// Unmounts the FUSE file system on `dir` as its owner would: `fusermount3 -u` (or `fusermount`,
/// then `umount` for root); `lazy` detaches a mount that is busy or whose process is gone.
pub fn unmount_path(dir: &Path, lazy: bool) -> std::io::Result<()> {
    let fusermount_flag = if lazy { "-uz" } else { "-u" };
    let attempts: [(&str, &[&str]); 3] = [
        ("fusermount3", &[fusermount_flag]),
        ("fusermount", &[fusermount_flag]),
        ("umount", if lazy { &["-l"] } else { &[] }),
    ];
    let mut last = String::from("no unmount tool found (install fuse3)");
    for (tool, flags) in attempts {
        match std::process::Command::new(tool)
            .args(flags)
            .arg(dir)
            .stdin(std::process::Stdio::null())
            .output()
        {
            Ok(out) if out.status.success() => return Ok(()),
            Ok(out) => last = String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!(
        "cannot unmount {}: {last}",
        dir.display()
    )))
}

/// A handle opened for writing only (`cp`, `dd`, a download, a log) never reads or maps the
/// file: its writes go straight to the daemon (one copy, no page cache to fill and write back
/// later). Handles that also read keep the page cache and the writeback cache.
fn writer_flags(open_flags: OpenFlags) -> FopenFlags {
    if matches!(open_flags.acc_mode(), OpenAccMode::O_WRONLY) {
        FopenFlags::FOPEN_DIRECT_IO
    } else {
        FopenFlags::empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mount_tables_name_holds_no_control_comma_or_bidirectional_character() {
        assert_eq!(fs_name("Projects"), "strongroom:Projects");
        assert_eq!(fs_name("Été-2026_v1.2"), "strongroom:Été-2026_v1.2");
        assert_eq!(
            fs_name("Evil\x1b]0;pwned\x07\u{202e},allow_other x"),
            "strongroom:Evil__0_pwned___allow_other_x"
        );
    }
}
