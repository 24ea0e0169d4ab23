//! The embedded block store: one file per block under `DATA/blocks/ORG/REALM/XX/BLOCK`, written
//! to a temporary file, synced, then renamed into place.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use strongroom_protocol::ids::{BlockId, OrganizationId, RealmId};
use strongroom_protocol::wire::ErrorCode;

use super::{BlockStore, StoreError, StoreResult};
use crate::error::ApiError;

/// Blocks as files.
pub struct FileBlockStore {
    root: PathBuf,
}

impl FileBlockStore {
    /// A store under `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, org: &OrganizationId, realm: RealmId, block: BlockId) -> PathBuf {
        let name = block.to_string();
        self.root
            .join(org.as_str())
            .join(realm.to_string())
            .join(&name[..2])
            .join(name)
    }
}

fn backend(e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("block store: {e}"))
}

fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    use std::io::Write;
    let dir = path.parent().expect("block paths have a folder");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile_in(dir)?;
    tmp.1.write_all(bytes)?;
    tmp.1.sync_all()?;
    // Hard-linking refuses to replace an existing block, unlike rename.
    match std::fs::hard_link(&tmp.0, path) {
        Ok(()) => {
            std::fs::remove_file(&tmp.0)?;
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(&tmp.0)?;
            Ok(false)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp.0);
            Err(e)
        }
    }
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    use rand_core::RngCore;
    let name = format!(".tmp-{:016x}", rand_core::OsRng.next_u64());
    let path = dir.join(name);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((path, file))
}

#[async_trait]
impl BlockStore for FileBlockStore {
    async fn put(
        &self,
        org: &OrganizationId,
        realm: RealmId,
        block: BlockId,
        bytes: Vec<u8>,
    ) -> StoreResult<()> {
        let path = self.path(org, realm, block);
        tokio::task::spawn_blocking(move || {
            if write_new(&path, &bytes).map_err(backend)? {
                return Ok(());
            }
            // Already there: a retried upload of the same block is fine, other bytes are not.
            let existing = std::fs::read(&path).map_err(backend)?;
            if existing == bytes {
                Ok(())
            } else {
                Err(StoreError::Api(ApiError::new(
                    ErrorCode::Conflict,
                    format!(
                        "block {block} exists already with other content; blocks are immutable"
                    ),
                )))
            }
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
    }

    async fn get(
        &self,
        org: &OrganizationId,
        realm: RealmId,
        block: BlockId,
    ) -> StoreResult<Option<Vec<u8>>> {
        let path = self.path(org, realm, block);
        tokio::task::spawn_blocking(move || match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(backend(e)),
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
    }
}
