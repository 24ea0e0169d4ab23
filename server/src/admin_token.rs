//! The server administrator's token: written once to `DATA/admin.token` (mode 0600), compared in
//! constant time.

use rand_core::{OsRng, RngCore};
use std::io::Write;
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The administrator token.
pub struct AdminToken(Zeroizing<String>);

impl AdminToken {
    /// The token file in a data directory.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("admin.token")
    }

    /// Reads the token of `data_dir`, creating it on first start.
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<Self> {
        let path = Self::path(data_dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => return Ok(Self(Zeroizing::new(text.trim().to_owned()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(bytes.as_mut());
        let token = Zeroizing::new(
            data_encoding::BASE32_NOPAD
                .encode(bytes.as_ref())
                .to_lowercase(),
        );
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path)?;
        file.write_all(token.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        Ok(Self(token))
    }

    /// Constant-time check of a presented token.
    pub fn matches(&self, presented: &str) -> bool {
        let a = self.0.as_bytes();
        let b = presented.trim().as_bytes();
        a.len() == b.len() && bool::from(a.ct_eq(b))
    }
}
