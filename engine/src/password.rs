//! Where the device password comes from: `--password-file`, `STRONGROOM_PASSWORD`, or a prompt
//! on a terminal.

use std::io::IsTerminal;
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::{EngineError, Result};

/// A password, zeroized on drop.
pub struct Password(Zeroizing<String>);

impl Password {
    /// A password from a string.
    pub fn new(text: impl Into<String>) -> Self {
        Self(Zeroizing::new(text.into()))
    }

    /// The bytes given to the key derivation.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The first line of a file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            EngineError::io(
                format!("cannot read the password file {}", path.display()),
                e,
            )
        })?);
        let line = text.lines().next().unwrap_or_default();
        if line.is_empty() {
            return Err(EngineError::InvalidInput(format!(
                "the password file {} is empty",
                path.display()
            )));
        }
        Ok(Self::new(line))
    }

    /// From the file if given, else the environment, else a prompt on a terminal. A new
    /// password (`confirm`) is asked twice on a terminal.
    pub fn obtain(file: Option<&Path>, prompt: &str, confirm: bool) -> Result<Self> {
        if let Some(path) = file {
            return Self::from_file(path);
        }
        if let Ok(text) = std::env::var("STRONGROOM_PASSWORD")
            && !text.is_empty()
        {
            return Ok(Self::new(text));
        }
        if !std::io::stdin().is_terminal() && !std::io::stderr().is_terminal() {
            return Err(EngineError::NoPassword);
        }
        loop {
            let first =
                Self::new(rpassword::prompt_password(prompt).map_err(|_| EngineError::NoPassword)?);
            if first.0.is_empty() {
                eprintln!("The password cannot be empty.");
                continue;
            }
            if !confirm {
                return Ok(first);
            }
            let second = Self::new(
                rpassword::prompt_password("Repeat the password: ")
                    .map_err(|_| EngineError::NoPassword)?,
            );
            if *first.0 == *second.0 {
                return Ok(first);
            }
            eprintln!("The passwords differ; try again.");
        }
    }
}
