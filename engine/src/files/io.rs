//! File content: cutting a local file into encrypted blocks (the write path) and reading blocks
//! back through the caches, fetching the missing ones in parallel (the read path).

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use rand_core::OsRng;
use strongroom_protocol::blocks::{open_block, seal_block};
use strongroom_protocol::crypto::hash::Digest;
use strongroom_protocol::ids::BlockId;
use strongroom_protocol::manifests::BlockRef;

use super::Progress;
use crate::client::Client;
use crate::error::{EngineError, Result};
use crate::workspaces::RealmContext;

/// The size files are cut into. 1 MiB: one block per FUSE request of the largest size, large
/// enough that a cold read of a big file is dominated by bandwidth rather than round trips, and
/// small enough that a random 4 KiB read does not decrypt megabytes (see docs/architecture.md).
pub const BLOCK_SIZE: u32 = 1 << 20;

/// How many blocks are fetched (or uploaded) at once.
pub const PARALLEL_TRANSFERS: usize = 8;

/// What a local file became.
pub(crate) struct WrittenFile {
    pub size: u64,
    pub blocks: Vec<BlockRef>,
}

fn metadata_stamp(m: &std::fs::Metadata) -> (u64, Option<std::time::SystemTime>) {
    (m.len(), m.modified().ok())
}

impl Client {
    /// Cuts `local` into blocks, encrypts each with the workspace's current key and writes it to
    /// the disk cache (dirty, durable). Runs of zeros are left as holes. A file that changes while
    /// it is read is refused, and what was written for it is discarded.
    pub(crate) fn write_file_blocks(
        &self,
        context: &RealmContext,
        local: &Path,
        progress: &dyn Progress,
    ) -> Result<WrittenFile> {
        let (key_index, key) = context.current_key()?;
        let open_error = |e| EngineError::io(format!("cannot read {}", local.display()), e);
        let mut file = std::fs::File::open(local).map_err(open_error)?;
        let before = metadata_stamp(&file.metadata().map_err(open_error)?);
        let mut blocks: Vec<BlockRef> = Vec::new();
        let mut buffer = vec![0u8; BLOCK_SIZE as usize];
        let mut offset = 0u64;
        let result = (|| -> Result<()> {
            loop {
                let mut filled = 0;
                while filled < buffer.len() {
                    let n = file.read(&mut buffer[filled..]).map_err(open_error)?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                if filled == 0 {
                    return Ok(());
                }
                let chunk = &buffer[..filled];
                if chunk.iter().any(|b| *b != 0) {
                    let id = BlockId::generate(&mut OsRng);
                    let sealed = seal_block(key, &context.realm, &id, key_index, chunk, &mut OsRng);
                    blocks.push(BlockRef {
                        id,
                        key_index,
                        offset,
                        len: filled as u32,
                        digest: Digest::of(chunk),
                    });
                    self.cache()
                        .write(self.db(), &context.realm, &id, &sealed, true)?;
                }
                offset += filled as u64;
                progress.advance(filled as u64);
            }
        })();
        let after = std::fs::metadata(local).map(|m| metadata_stamp(&m));
        let changed = result.is_ok() && (after.ok() != Some(before) || offset != before.0);
        if result.is_err() || changed {
            for block in &blocks {
                self.cache().discard(&context.realm, &block.id);
                let _ = self.db().forget_block(&context.realm, &block.id);
            }
            result?;
            return Err(EngineError::InvalidInput(format!(
                "{} changed while it was being read; nothing was stored, try again",
                local.display()
            )));
        }
        Ok(WrittenFile {
            size: offset,
            blocks,
        })
    }

    /// One block's plaintext: from memory, else the disk cache, else the server; checked against
    /// its digest either way.
    pub(crate) async fn load_block(
        &self,
        context: &RealmContext,
        block: &BlockRef,
    ) -> Result<Arc<Vec<u8>>> {
        if let Some(data) = self.cache().memory_get(&context.realm, &block.id) {
            return Ok(data);
        }
        let key = context.key(block.key_index)?.clone();
        let (ciphertext, fetched) = match self.cache().read(&context.realm, &block.id)? {
            Some(c) => (c, false),
            None => (self.remote_get_block(context.realm, block.id).await?, true),
        };
        let realm = context.realm;
        let reference = block.clone();
        // Decryption and hashing run on the blocking pool, in parallel across blocks.
        let (plaintext, ciphertext) = tokio::task::spawn_blocking(move || {
            open_block(&key, &realm, &reference, &ciphertext).map(|p| (p, ciphertext))
        })
        .await
        .map_err(|e| EngineError::Protocol(e.to_string()))??;
        if fetched {
            self.cache()
                .write(self.db(), &context.realm, &block.id, &ciphertext, false)?;
        }
        let data = Arc::new(plaintext);
        self.cache()
            .memory_put(&context.realm, &block.id, data.clone());
        Ok(data)
    }

    /// Writes a file's content into `file`, block after block, with up to
    /// [`PARALLEL_TRANSFERS`] blocks in flight ahead of the one being written (sequential
    /// prefetch). Holes stay holes.
    pub(crate) async fn read_file_into(
        &self,
        context: &RealmContext,
        size: u64,
        blocks: &[BlockRef],
        file: &mut std::fs::File,
        progress: &dyn Progress,
    ) -> Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        let write_error = |e| EngineError::io("cannot write the file being downloaded", e);
        let mut stream =
            futures_util::stream::iter(blocks.iter().map(|b| self.load_block(context, b)))
                .buffered(PARALLEL_TRANSFERS);
        let mut index = 0;
        while let Some(data) = stream.try_next().await? {
            let block = &blocks[index];
            index += 1;
            file.seek(SeekFrom::Start(block.offset))
                .map_err(write_error)?;
            file.write_all(&data).map_err(write_error)?;
            progress.advance(data.len() as u64);
        }
        file.set_len(size).map_err(write_error)?;
        self.cache().evict(self.db())?;
        Ok(())
    }

    /// Uploads the dirty blocks among `blocks`, in parallel.
    pub(crate) async fn upload_blocks(
        &self,
        context: &RealmContext,
        blocks: &[BlockRef],
        progress: &dyn Progress,
    ) -> Result<()> {
        let mut dirty = Vec::new();
        for block in blocks {
            if self
                .db()
                .block(&context.realm, &block.id)?
                .is_some_and(|r| r.dirty)
            {
                dirty.push(block.clone());
            }
        }
        futures_util::stream::iter(dirty.into_iter().map(|block| async move {
            let ciphertext = self
                .cache()
                .read(&context.realm, &block.id)?
                .ok_or_else(|| {
                    EngineError::Protocol(format!(
                        "block {} waits for upload but is missing from the cache",
                        block.id
                    ))
                })?;
            self.remote_put_block(context.realm, block.id, ciphertext)
                .await?;
            self.db().block_uploaded(&context.realm, &block.id)?;
            progress.advance(block.len as u64);
            Ok::<_, EngineError>(())
        }))
        .buffer_unordered(PARALLEL_TRANSFERS)
        .try_collect::<Vec<()>>()
        .await?;
        Ok(())
    }
}
