//! Where a device keeps its files: one device per home directory.
//!
//! `HOME/device.strongroom` holds the encrypted device keys; `HOME/certificates.bin` the
//! validated certificate chain, encrypted with the device's local key.

use std::path::{Path, PathBuf};

use crate::error::{EngineError, Result};

/// A home directory.
#[derive(Debug, Clone)]
pub struct Home {
    dir: PathBuf,
}

impl Home {
    /// The home at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `--home`, else `STRONGROOM_HOME`, else `$XDG_DATA_HOME/strongroom`, else
    /// `~/.local/share/strongroom`.
    pub fn resolve(explicit: Option<PathBuf>) -> Self {
        if let Some(dir) = explicit {
            return Self::new(dir);
        }
        if let Some(dir) = std::env::var_os("STRONGROOM_HOME").filter(|d| !d.is_empty()) {
            return Self::new(dir);
        }
        if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
            return Self::new(PathBuf::from(dir).join("strongroom"));
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| ".".into());
        Self::new(home.join(".local/share/strongroom"))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The device file.
    pub fn device_file(&self) -> PathBuf {
        self.dir.join("device.strongroom")
    }

    /// The local certificate store.
    pub fn certificates_file(&self) -> PathBuf {
        self.dir.join("certificates.bin")
    }

    /// The local database.
    pub fn local_db_file(&self) -> PathBuf {
        self.dir.join("local.sqlite")
    }

    /// The block cache folder.
    pub fn blocks_dir(&self) -> PathBuf {
        self.dir.join("blocks")
    }

    /// Creates the directory (mode 0700) if needed.
    pub fn create(&self) -> Result<()> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&self.dir)
            .map_err(|e| EngineError::io(format!("cannot create {}", self.dir.display()), e))
    }
}

/// Writes a file atomically and durably: a temporary file, fsync, rename, fsync of the folder.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let context = || format!("cannot write {}", path.display());
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&tmp)
        .map_err(|e| EngineError::io(context(), e))?;
    file.write_all(bytes)
        .map_err(|e| EngineError::io(context(), e))?;
    file.sync_all().map_err(|e| EngineError::io(context(), e))?;
    std::fs::rename(&tmp, path).map_err(|e| EngineError::io(context(), e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
