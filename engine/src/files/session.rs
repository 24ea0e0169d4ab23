//! A workspace kept open for a long time, for the mount: opened once (one pull from the server),
//! then read by entry id, from the local database first, without a round trip per call. Safe to
//! share between threads; every method takes `&self`.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use strongroom_protocol::ids::EntryId;
use strongroom_protocol::manifests::{BlockRef, EntryName, ManifestBody};
use strongroom_protocol::time::Timestamp;

use super::io::{Keep, PARALLEL_TRANSFERS};
use super::ops::{EntryKind, Opened, kind_of};
use crate::client::Client;
use crate::error::{EngineError, Result};
use crate::local_db::LocalEntry;

/// What the mount needs to know of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// The entry's id (stable across renames and versions).
    pub id: EntryId,
    /// Folder, file (with its size) or symlink (with its target).
    pub kind: EntryKind,
    /// When its current content was written: the time of its latest version, or of the local
    /// change not yet synced.
    pub modified: Timestamp,
    /// A folder's children by name (empty for the others).
    pub children: Vec<(EntryName, EntryId)>,
}

/// A file's complete block list, shared.
type BlockList = Arc<Vec<BlockRef>>;

/// One workspace, opened for reading by id. See the module documentation.
pub struct WorkspaceSession {
    client: Client,
    opened: Opened,
    /// Block lists of files with index blocks, by entry and version, so that reading a huge
    /// file does not re-read its index for every request.
    block_lists: std::sync::Mutex<HashMap<(EntryId, u32), BlockList>>,
}

impl Client {
    /// Opens `workspace` for a long session: the current state (pulled from the server when it
    /// answers, else the local one), or a read-only view as it was at `at`.
    pub async fn open_session(
        mut self,
        workspace: &str,
        at: Option<Timestamp>,
    ) -> Result<WorkspaceSession> {
        let opened = match at {
            Some(at) => self.open_workspace_at(workspace, at).await?,
            None => self.open_workspace(workspace).await?,
        };
        Ok(WorkspaceSession {
            client: self,
            opened,
            block_lists: Default::default(),
        })
    }
}

impl WorkspaceSession {
    /// The id of the workspace's root folder.
    pub fn root(&self) -> EntryId {
        self.opened.context.realm.into()
    }

    /// Whether nothing may be written: a view of the past, or a role that cannot write.
    pub fn read_only(&self) -> bool {
        if self.opened.at.is_some() {
            return true;
        }
        let user = self.client.keys().user_id;
        !self
            .opened
            .context
            .chain
            .as_ref()
            .and_then(|chain| chain.role(&user))
            .is_some_and(|role| role.can_write())
    }

    /// Whether the server answered when the session opened.
    pub fn online(&self) -> bool {
        self.opened.online
    }

    /// One entry, or `None` if it does not exist (or is not available offline).
    pub async fn entry(&self, id: EntryId) -> Result<Option<EntryInfo>> {
        Ok(self.entries(&[id]).await?.remove(&id))
    }

    /// Several entries at once (one request for those missing locally); unknown ones are left
    /// out.
    pub async fn entries(&self, ids: &[EntryId]) -> Result<HashMap<EntryId, EntryInfo>> {
        let root = self.root();
        let mut found: HashMap<EntryId, EntryInfo> = self
            .client
            .load_entries(&self.opened, ids)
            .await?
            .into_iter()
            .map(|(id, entry)| (id, info(id, &entry)))
            .collect();
        // A workspace nobody has written to yet has no root manifest: an empty folder.
        if ids.contains(&root) && !found.contains_key(&root) {
            let entry = self.client.root(&self.opened).await?;
            found.insert(root, info(root, &entry));
        }
        Ok(found)
    }

    /// Up to `len` bytes of file `id` from `offset` (fewer at the end of the file). Blocks are
    /// fetched in parallel, checked and decrypted, and kept in the caches for the next read.
    pub async fn read(&self, id: EntryId, offset: u64, len: usize) -> Result<Vec<u8>> {
        let entry = self
            .client
            .load_entries(&self.opened, &[id])
            .await?
            .remove(&id)
            .ok_or_else(|| EngineError::NotFound(format!("entry {id}")))?;
        let version = entry.base_version();
        let ManifestBody::File {
            size,
            blocks,
            index,
            ..
        } = &entry.body
        else {
            return Err(EngineError::InvalidInput(format!(
                "entry {id} is not a file"
            )));
        };
        let end = (*size).min(offset.saturating_add(len as u64));
        if offset >= end {
            return Ok(Vec::new());
        }
        let all = self.block_list(id, version, blocks, index).await?;
        // Blocks are sorted by offset and do not overlap: the first one that ends after `offset`.
        let first = all.partition_point(|b| b.offset + b.len as u64 <= offset);
        let wanted: Vec<&BlockRef> = all[first..].iter().take_while(|b| b.offset < end).collect();
        let context = &self.opened.context;
        // Collected first: a lazy `map` over borrowed blocks would make this future unusable
        // with `tokio::spawn` (a known limit of the compiler's lifetime inference).
        let loads: Vec<_> = wanted
            .iter()
            .map(|b| self.client.load_block(context, b, Keep::Everywhere))
            .collect();
        let loaded: Vec<Arc<Vec<u8>>> = futures_util::stream::iter(loads)
            .buffered(PARALLEL_TRANSFERS)
            .try_collect()
            .await?;
        // Holes (ranges without a block) read as zeros.
        let mut out = vec![0u8; (end - offset) as usize];
        for (block, data) in wanted.iter().zip(&loaded) {
            let from = block.offset.max(offset);
            let to = (block.offset + data.len() as u64).min(end);
            if from < to {
                out[(from - offset) as usize..(to - offset) as usize].copy_from_slice(
                    &data[(from - block.offset) as usize..(to - block.offset) as usize],
                );
            }
        }
        Ok(out)
    }

    /// Starts fetching the blocks of file `id` that cover `[offset, offset + len)` into the
    /// caches, without waiting (sequential-read prefetch).
    pub fn prefetch(self: &Arc<Self>, id: EntryId, offset: u64, len: usize) {
        let session = self.clone();
        tokio::spawn(async move {
            if let Err(e) = session.read(id, offset, len).await {
                tracing::debug!(entry = %id, error = %e, "prefetch failed");
            }
        });
    }

    async fn block_list(
        &self,
        id: EntryId,
        version: u32,
        blocks: &[BlockRef],
        index: &[BlockRef],
    ) -> Result<Arc<Vec<BlockRef>>> {
        if index.is_empty() {
            return Ok(Arc::new(blocks.to_vec()));
        }
        if let Some(list) = self
            .block_lists
            .lock()
            .expect("block list cache")
            .get(&(id, version))
        {
            return Ok(list.clone());
        }
        let list = Arc::new(
            self.client
                .file_blocks(&self.opened.context, blocks, index)
                .await?,
        );
        self.block_lists
            .lock()
            .expect("block list cache")
            .insert((id, version), list.clone());
        Ok(list)
    }
}

fn info(id: EntryId, entry: &LocalEntry) -> EntryInfo {
    let children = match &entry.body {
        ManifestBody::Folder { children, .. } => {
            children.iter().map(|(n, id)| (n.clone(), *id)).collect()
        }
        _ => Vec::new(),
    };
    EntryInfo {
        id,
        kind: kind_of(&entry.body),
        modified: entry
            .base
            .as_ref()
            .map(|m| m.timestamp)
            .unwrap_or_else(crate::clock::now),
        children,
    }
}
