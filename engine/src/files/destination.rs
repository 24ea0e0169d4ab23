//! The local side of `get`: writing a workspace's tree into a folder of this device so that
//! nothing a member stored can make it write anywhere else.
//!
//! The rules, whatever the tree holds:
//! - nothing below the destination is ever followed: each folder is opened from its parent's
//!   descriptor without following a link (`openat(O_NOFOLLOW | O_DIRECTORY)`), missing ones are
//!   created there (`mkdirat`), and a link found where a folder goes is replaced by the folder
//!   (removing a link changes nothing it points to);
//! - file content goes to a temporary file with a random name, created exclusively and without
//!   following a link (`O_CREAT | O_EXCL | O_NOFOLLOW`) in its folder's descriptor, then put in
//!   place with `renameat`, which replaces a link of that name rather than writing through it;
//! - symbolic links are created last (the caller's order), through a temporary name and
//!   `renameat` as well, and nothing is ever written through one.
//!
//! Only the destination the user named is taken as given (it may be a link: their choice).
//! These rules also make case-insensitive file systems safe: a link `a` and a folder `A` of one
//! stored folder are one name there, and whichever comes second finds the first in its way and
//! replaces it (a link) or fails (a folder under a link's name), never following it.
//!
//! Elsewhere than Unix a portable fallback does the same with paths: each component is checked
//! with `symlink_metadata` (on Windows a reparse point counts as a link), temporary files are
//! created with `create_new` and renamed into place. Its limit: between that check and the use of
//! the path, another program of this device could swap a folder for a link (a race the
//! descriptor-relative calls of Unix close); what a hostile member stores cannot.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::path::{Path, PathBuf};

use rand_core::RngCore;

use crate::error::{EngineError, Result};

/// Which names the local file system can hold as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameRules {
    /// Any workspace name (no `/`, no NUL, never `.` or `..`) is a plain file name.
    Unix,
    /// Windows refuses or reinterprets many names (see [`unrepresentable`]).
    Windows,
}

impl NameRules {
    /// The rules of the system this runs on.
    pub(crate) const HOST: NameRules = if cfg!(windows) {
        NameRules::Windows
    } else {
        NameRules::Unix
    };
}

/// Names Windows reserves for devices, whatever their case and extension.
const WINDOWS_DEVICES: [&str; 30] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "COM¹", "COM²", "COM³", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8",
    "LPT9", "LPT¹", "LPT²", "LPT³", "CONIN$", "CONOUT$",
];

/// Why `name` (a workspace entry's name) cannot be written safely as one file name under
/// `rules`, or `None` if it can. On Windows such a name would name a device, a drive, a stream
/// of another file or a path of several components, or silently become another name.
pub(crate) fn unrepresentable(name: &str, rules: NameRules) -> Option<&'static str> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        // Never a workspace name; refused anyway so that this check stands on its own.
        return Some("it is not a single name");
    }
    if rules == NameRules::Unix {
        return None;
    }
    if name.contains('\\') {
        return Some("Windows reads `\\` as a separator between folders");
    }
    if name.contains(':') {
        return Some("Windows reads `:` as a drive or as a stream of another file");
    }
    if name.contains(['<', '>', '"', '|', '?', '*']) {
        return Some("Windows does not allow < > \" | ? * in names");
    }
    if name.chars().any(|c| c.is_control() && (c as u32) < 0x20) {
        return Some("Windows does not allow control characters in names");
    }
    if name.ends_with(['.', ' ']) {
        return Some(
            "Windows drops a name's trailing dots and spaces, which makes it another name",
        );
    }
    // `nul.txt`, `Com1.tar.gz` and `CON .txt` all name the device.
    let stem = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    if WINDOWS_DEVICES
        .iter()
        .any(|device| device.to_lowercase() == stem.to_lowercase())
    {
        return Some("Windows reserves this name for a device");
    }
    None
}

/// A folder inside `get`'s destination, reached without following any link.
pub(crate) struct LocalFolder {
    handle: imp::Handle,
    display: PathBuf,
}

/// A file being written: a temporary name in its folder until [`PendingFile::put_in_place`]
/// gives it its final name; dropped before that, it is removed.
pub(crate) struct PendingFile {
    /// Where the content goes.
    pub file: File,
    folder: imp::Handle,
    temporary: OsString,
    display: PathBuf,
    placed: bool,
}

/// A random name for a temporary file or link, hidden and unlike any name `get` writes for
/// good (a stored name could equal it only by chance: 64 random bits, and creation is exclusive).
fn temporary_name() -> OsString {
    format!(".strongroom-{:016x}.part", rand_core::OsRng.next_u64()).into()
}

impl LocalFolder {
    /// The folder the user named, created (with its parents) if missing. It is the user's
    /// choice, so a link there is followed.
    pub(crate) fn open_named(path: &Path) -> Result<Self> {
        std::fs::create_dir_all(path)
            .map_err(|e| EngineError::io(format!("cannot create {}", path.display()), e))?;
        let handle = imp::open_named(path)
            .map_err(|e| EngineError::io(format!("cannot open {}", path.display()), e))?;
        Ok(Self {
            handle,
            display: path.to_path_buf(),
        })
    }

    /// Subfolder `name`, created if missing. A link in its way is replaced by the folder;
    /// anything else in its way (a file) is an error.
    pub(crate) fn subfolder(&self, name: &OsStr) -> Result<Self> {
        let display = self.display.join(name);
        let handle = imp::subfolder(&self.handle, name).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => EngineError::InvalidInput(format!(
                "{} exists and is not a folder",
                display.display()
            )),
            _ => EngineError::io(format!("cannot create {}", display.display()), e),
        })?;
        Ok(Self { handle, display })
    }

    /// A new, empty temporary file in this folder.
    pub(crate) fn new_file(&self, name: &OsStr) -> Result<PendingFile> {
        let display = self.display.join(name);
        let (file, temporary) = imp::create_temporary(&self.handle)
            .map_err(|e| EngineError::io(format!("cannot create {}", display.display()), e))?;
        Ok(PendingFile {
            file,
            folder: self.handle.clone(),
            temporary,
            display,
            placed: false,
        })
    }

    /// The symbolic link `name` to `target`, replacing a file or link of that name. Where links
    /// cannot be made (not Unix), a file holding the target instead.
    pub(crate) fn symlink(&self, name: &OsStr, target: &str) -> Result<()> {
        let display = self.display.join(name);
        imp::symlink(&self.handle, name, target)
            .map_err(|e| EngineError::io(format!("cannot create {}", display.display()), e))
    }
}

impl PendingFile {
    /// Syncs the content and gives the file its final name (replacing a file or link there).
    pub(crate) fn put_in_place(mut self, name: &OsStr) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| EngineError::io(format!("cannot write {}", self.display.display()), e))?;
        imp::rename(&self.folder, &self.temporary, name)
            .map_err(|e| EngineError::io(format!("cannot write {}", self.display.display()), e))?;
        self.placed = true;
        Ok(())
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.placed {
            imp::remove_file(&self.folder, &self.temporary);
        }
    }
}

#[cfg(unix)]
use descriptors as imp;
#[cfg(not(unix))]
use portable as imp;

#[cfg(unix)]
mod descriptors {
    //! Descriptor-relative calls: a name is looked up in the folder's descriptor, never through
    //! a path that could hold a link.

    use std::ffi::{OsStr, OsString};
    use std::fs::File;
    use std::io;
    use std::os::fd::OwnedFd;
    use std::path::Path;
    use std::sync::Arc;

    use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};
    use rustix::io::Errno;

    /// An open folder, shared with the files being written in it.
    pub(super) type Handle = Arc<OwnedFd>;

    const FOLDER: OFlags = OFlags::RDONLY
        .union(OFlags::DIRECTORY)
        .union(OFlags::CLOEXEC);

    pub(super) fn open_named(path: &Path) -> io::Result<Handle> {
        Ok(Arc::new(rustix::fs::openat(
            CWD,
            path,
            FOLDER,
            Mode::empty(),
        )?))
    }

    pub(super) fn subfolder(parent: &Handle, name: &OsStr) -> io::Result<Handle> {
        // A few rounds: another program may change the name between two calls.
        for _ in 0..4 {
            match rustix::fs::openat(parent, name, FOLDER | OFlags::NOFOLLOW, Mode::empty()) {
                Ok(fd) => return Ok(Arc::new(fd)),
                Err(Errno::NOENT) => {
                    match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o777)) {
                        Ok(()) | Err(Errno::EXIST) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                // A link (ELOOP; ENOTDIR on some systems) or something that is not a folder.
                Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                    let found = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
                    if FileType::from_raw_mode(found.st_mode) != FileType::Symlink {
                        return Err(io::ErrorKind::AlreadyExists.into());
                    }
                    tracing::info!(name = ?name, "a link is in the way of a folder; it is replaced");
                    match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
                        Ok(()) | Err(Errno::NOENT) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(io::Error::other(
            "it kept changing while it was being created",
        ))
    }

    pub(super) fn create_temporary(folder: &Handle) -> io::Result<(File, OsString)> {
        loop {
            let name = super::temporary_name();
            let flags =
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            match rustix::fs::openat(folder, &name, flags, Mode::from_raw_mode(0o666)) {
                Ok(fd) => return Ok((File::from(fd), name)),
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub(super) fn rename(folder: &Handle, from: &OsStr, to: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::renameat(folder, from, folder, to)?)
    }

    pub(super) fn remove_file(folder: &Handle, name: &OsStr) {
        let _ = rustix::fs::unlinkat(folder, name, AtFlags::empty());
    }

    pub(super) fn symlink(folder: &Handle, name: &OsStr, target: &str) -> io::Result<()> {
        let temporary = loop {
            let temporary = super::temporary_name();
            match rustix::fs::symlinkat(target, folder, &temporary) {
                Ok(()) => break temporary,
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        rename(folder, &temporary, name).inspect_err(|_| remove_file(folder, &temporary))
    }
}

// Built for tests on Unix too, where they run it.
#[cfg(any(not(unix), test))]
mod portable {
    //! The portable fallback (see the module documentation for its limit): paths, each
    //! component checked without following it.

    use std::ffi::{OsStr, OsString};
    use std::fs::File;
    use std::io;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    /// A folder's path, checked to be a real folder when it was reached.
    pub(super) type Handle = Arc<PathBuf>;

    /// A link, or on Windows any reparse point (junctions included).
    fn is_link(metadata: &std::fs::Metadata) -> bool {
        #[cfg(windows)]
        {
            use std::os::windows::fs::MetadataExt;
            const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x400;
            if metadata.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
                return true;
            }
        }
        metadata.file_type().is_symlink()
    }

    pub(super) fn open_named(path: &Path) -> io::Result<Handle> {
        if !std::fs::metadata(path)?.is_dir() {
            return Err(io::ErrorKind::NotADirectory.into());
        }
        Ok(Arc::new(path.to_path_buf()))
    }

    pub(super) fn subfolder(parent: &Handle, name: &OsStr) -> io::Result<Handle> {
        let path = parent.join(name);
        for _ in 0..4 {
            match std::fs::symlink_metadata(&path) {
                Ok(found) if is_link(&found) => {
                    tracing::info!(name = ?name, "a link is in the way of a folder; it is replaced");
                    // A link to a folder is removed as a folder on Windows; neither call
                    // touches what it points to.
                    if std::fs::remove_file(&path).is_err() {
                        std::fs::remove_dir(&path)?;
                    }
                }
                Ok(found) if found.is_dir() => return Ok(Arc::new(path)),
                Ok(_) => return Err(io::ErrorKind::AlreadyExists.into()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => match std::fs::create_dir(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(
            "it kept changing while it was being created",
        ))
    }

    pub(super) fn create_temporary(folder: &Handle) -> io::Result<(File, OsString)> {
        loop {
            let name = super::temporary_name();
            // `create_new` fails on any existing name, a link included: nothing is followed.
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(folder.join(&name))
            {
                Ok(file) => return Ok((file, name)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    pub(super) fn rename(folder: &Handle, from: &OsStr, to: &OsStr) -> io::Result<()> {
        std::fs::rename(folder.join(from), folder.join(to))
    }

    pub(super) fn remove_file(folder: &Handle, name: &OsStr) {
        let _ = std::fs::remove_file(folder.join(name));
    }

    pub(super) fn symlink(folder: &Handle, name: &OsStr, target: &str) -> io::Result<()> {
        // Links need privileges on Windows: the target is written as the file's content.
        use std::io::Write;
        let (mut file, temporary) = create_temporary(folder)?;
        let written = file
            .write_all(target.as_bytes())
            .and_then(|()| file.sync_all());
        drop(file);
        written
            .and_then(|()| rename(folder, &temporary, name))
            .inspect_err(|_| remove_file(folder, &temporary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_takes_every_workspace_name_as_it_is() {
        for name in [
            "CON",
            "a:b",
            "trailing.",
            "x\\y",
            "\u{1b}]0;title\u{7}",
            "..a",
            "a\nb",
        ] {
            assert_eq!(unrepresentable(name, NameRules::Unix), None, "{name:?}");
        }
        for name in ["", ".", "..", "a/b", "a\0b"] {
            assert!(unrepresentable(name, NameRules::Unix).is_some(), "{name:?}");
        }
    }

    #[test]
    fn windows_refuses_what_it_would_misread() {
        for name in [
            "a\\b",
            "..\\..\\evil",
            "C:",
            "C:evil",
            "file.txt:stream",
            "what?",
            "star*",
            "<tag>",
            "quote\"",
            "pipe|",
            "bell\u{7}",
            "esc\u{1b}[2J",
            "tab\t",
            "trailing.",
            "trailing ",
            "dots...",
            "CON",
            "con",
            "Con.txt",
            "nul.tar.gz",
            "NUL .txt",
            "aux",
            "PRN.",
            "COM1",
            "com9.log",
            "LPT1",
            "lpt9",
            "COM¹",
            "lpt³.txt",
            "CONIN$",
            "conout$.txt",
        ] {
            assert!(
                unrepresentable(name, NameRules::Windows).is_some(),
                "{name:?} should be refused"
            );
        }
        for name in [
            "report.txt",
            "CONSOLE",
            "COM0",
            "COM10",
            "LPT",
            "nul-but-not",
            "xCON",
            ".hidden",
            "a.b.c",
            "élan",
            "日本語",
            "space inside",
        ] {
            assert_eq!(
                unrepresentable(name, NameRules::Windows),
                None,
                "{name:?} is a plain Windows name"
            );
        }
    }

    #[test]
    fn every_name_is_checked_on_this_system_too() {
        assert!(unrepresentable("a/b", NameRules::HOST).is_some());
        assert_eq!(unrepresentable("plain.txt", NameRules::HOST), None);
    }

    #[cfg(unix)]
    mod unix {
        use std::os::unix::fs::symlink;

        use super::super::*;

        fn names(dir: &Path) -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            names
        }

        #[test]
        fn a_file_replaces_a_link_of_its_name_without_writing_through_it() {
            let dir = tempfile::tempdir().unwrap();
            let victim = dir.path().join("victim");
            std::fs::write(&victim, "victim's").unwrap();
            let out = dir.path().join("out");
            std::fs::create_dir(&out).unwrap();
            symlink(&victim, out.join("notes.txt")).unwrap();
            let folder = LocalFolder::open_named(&out).unwrap();
            let mut pending = folder.new_file(OsStr::new("notes.txt")).unwrap();
            std::io::Write::write_all(&mut pending.file, b"stored").unwrap();
            pending.put_in_place(OsStr::new("notes.txt")).unwrap();
            assert_eq!(std::fs::read_to_string(&victim).unwrap(), "victim's");
            let placed = std::fs::symlink_metadata(out.join("notes.txt")).unwrap();
            assert!(placed.is_file());
            assert_eq!(
                std::fs::read_to_string(out.join("notes.txt")).unwrap(),
                "stored"
            );
            assert_eq!(names(&out), ["notes.txt"]);
        }

        #[test]
        fn a_temporary_file_dropped_before_its_place_leaves_nothing() {
            let dir = tempfile::tempdir().unwrap();
            let folder = LocalFolder::open_named(dir.path()).unwrap();
            let pending = folder.new_file(OsStr::new("x")).unwrap();
            assert_eq!(names(dir.path()).len(), 1);
            drop(pending);
            assert!(names(dir.path()).is_empty());
        }

        #[test]
        fn a_link_where_a_folder_goes_is_replaced_and_never_followed() {
            let dir = tempfile::tempdir().unwrap();
            let elsewhere = dir.path().join("elsewhere");
            std::fs::create_dir(&elsewhere).unwrap();
            let out = dir.path().join("out");
            std::fs::create_dir(&out).unwrap();
            symlink(&elsewhere, out.join("d")).unwrap();
            let folder = LocalFolder::open_named(&out).unwrap();
            let d = folder.subfolder(OsStr::new("d")).unwrap();
            let pending = d.new_file(OsStr::new("f")).unwrap();
            pending.put_in_place(OsStr::new("f")).unwrap();
            assert!(names(&elsewhere).is_empty(), "written through the link");
            assert!(std::fs::symlink_metadata(out.join("d")).unwrap().is_dir());
            assert_eq!(names(&out.join("d")), ["f"]);
            // An existing folder is opened as it is.
            let again = folder.subfolder(OsStr::new("d")).unwrap();
            again
                .new_file(OsStr::new("g"))
                .unwrap()
                .put_in_place(OsStr::new("g"))
                .unwrap();
            assert_eq!(names(&out.join("d")), ["f", "g"]);
        }

        #[test]
        fn a_file_where_a_folder_goes_is_an_error() {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("d"), "a file").unwrap();
            let folder = LocalFolder::open_named(dir.path()).unwrap();
            let err = folder.subfolder(OsStr::new("d")).err().unwrap();
            assert!(err.to_string().contains("is not a folder"), "{err}");
            assert_eq!(
                std::fs::read_to_string(dir.path().join("d")).unwrap(),
                "a file"
            );
        }

        #[test]
        fn links_replace_links_and_files_but_not_folders() {
            let dir = tempfile::tempdir().unwrap();
            let folder = LocalFolder::open_named(dir.path()).unwrap();
            std::fs::write(dir.path().join("was-a-file"), "x").unwrap();
            symlink("old", dir.path().join("was-a-link")).unwrap();
            std::fs::create_dir(dir.path().join("is-a-folder")).unwrap();
            folder
                .symlink(OsStr::new("was-a-file"), "/outside")
                .unwrap();
            folder.symlink(OsStr::new("was-a-link"), "new").unwrap();
            assert!(folder.symlink(OsStr::new("is-a-folder"), "x").is_err());
            assert_eq!(
                std::fs::read_link(dir.path().join("was-a-file")).unwrap(),
                Path::new("/outside")
            );
            assert_eq!(
                std::fs::read_link(dir.path().join("was-a-link")).unwrap(),
                Path::new("new")
            );
            assert_eq!(
                names(dir.path()),
                ["is-a-folder", "was-a-file", "was-a-link"]
            );
        }

        /// The portable fallback, run here on the same attacks.
        #[test]
        fn the_portable_fallback_never_follows_a_link_either() {
            use super::super::portable;
            let dir = tempfile::tempdir().unwrap();
            let victim = dir.path().join("victim");
            std::fs::write(&victim, "victim's").unwrap();
            let elsewhere = dir.path().join("elsewhere");
            std::fs::create_dir(&elsewhere).unwrap();
            let out = dir.path().join("out");
            std::fs::create_dir(&out).unwrap();
            symlink(&victim, out.join("notes.txt")).unwrap();
            symlink(&elsewhere, out.join("d")).unwrap();
            std::fs::write(out.join("file"), "x").unwrap();
            let base = portable::open_named(&out).unwrap();

            let d = portable::subfolder(&base, OsStr::new("d")).unwrap();
            assert!(std::fs::symlink_metadata(out.join("d")).unwrap().is_dir());
            let (file, temporary) = portable::create_temporary(&d).unwrap();
            drop(file);
            portable::rename(&d, &temporary, OsStr::new("f")).unwrap();
            assert!(names(&elsewhere).is_empty(), "written through the link");

            let (mut file, temporary) = portable::create_temporary(&base).unwrap();
            std::io::Write::write_all(&mut file, b"stored").unwrap();
            drop(file);
            portable::rename(&base, &temporary, OsStr::new("notes.txt")).unwrap();
            assert_eq!(std::fs::read_to_string(&victim).unwrap(), "victim's");
            assert_eq!(
                std::fs::read_to_string(out.join("notes.txt")).unwrap(),
                "stored"
            );

            let err = portable::subfolder(&base, OsStr::new("file")).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
            // Links are files holding their target there.
            portable::symlink(&base, OsStr::new("link"), "/outside").unwrap();
            assert_eq!(
                std::fs::read_to_string(out.join("link")).unwrap(),
                "/outside"
            );
            assert_eq!(names(&out), ["d", "file", "link", "notes.txt"]);
        }

        #[test]
        fn the_named_destination_may_be_a_link() {
            let dir = tempfile::tempdir().unwrap();
            let real = dir.path().join("real");
            std::fs::create_dir(&real).unwrap();
            symlink(&real, dir.path().join("chosen")).unwrap();
            let folder = LocalFolder::open_named(&dir.path().join("chosen")).unwrap();
            folder.subfolder(OsStr::new("inside")).unwrap();
            assert!(real.join("inside").is_dir());
        }
    }
}
