//! File content: cutting a local file into encrypted blocks (the write path) and reading blocks
//! back through the caches, fetching the missing ones in parallel (the read path).

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use rand_core::OsRng;
use strongroom_protocol::blocks::{open_block, seal_block};
use strongroom_protocol::crypto::hash::Digest;
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::ids::BlockId;
use strongroom_protocol::manifests::{BlockIndex, BlockRef};

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

/// Beyond this many blocks, a file's block list moves into index blocks (4,096 blocks: 4 GiB).
/// `STRONGROOM_INLINE_BLOCK_LIMIT` lowers it, for tests.
fn inline_limit() -> usize {
    std::env::var("STRONGROOM_INLINE_BLOCK_LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n: &usize| *n > 0)
        .unwrap_or(4096)
}

/// What a local file became.
pub(crate) struct WrittenFile {
    pub size: u64,
    pub blocks: Vec<BlockRef>,
    pub index: Vec<BlockRef>,
}

/// The next offset at or after `offset` where the file has data (Linux `SEEK_DATA`), so that
/// the holes of a sparse file are skipped without reading them; `None` when unknown.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn next_data(file: &std::fs::File, offset: u64) -> Option<u64> {
    match rustix::fs::seek(file, rustix::fs::SeekFrom::Data(offset)) {
        Ok(next) => Some(next),
        // ENXIO: no data after `offset`.
        Err(rustix::io::Errno::NXIO) => Some(u64::MAX),
        Err(_) => None,
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn next_data(_: &std::fs::File, _: u64) -> Option<u64> {
    None
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
        let size = before.0;
        let result = (|| -> Result<()> {
            use std::io::{Seek, SeekFrom};
            loop {
                // Skip whole blocks of holes, staying on block boundaries.
                if let Some(next) = next_data(&file, offset)
                    && next >= offset + BLOCK_SIZE as u64
                {
                    let skipped = (next.min(size) - offset) / BLOCK_SIZE as u64 * BLOCK_SIZE as u64;
                    offset += skipped;
                    progress.advance(skipped);
                    if offset >= size {
                        return Ok(());
                    }
                    file.seek(SeekFrom::Start(offset)).map_err(open_error)?;
                }
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
        if blocks.len() <= inline_limit() {
            return Ok(WrittenFile {
                size: offset,
                blocks,
                index: Vec::new(),
            });
        }
        // A long block list goes into index blocks, written like data blocks.
        let mut index = Vec::new();
        for chunk in blocks.chunks(inline_limit()) {
            let plaintext = BlockIndex {
                blocks: chunk.to_vec(),
            }
            .encode();
            let id = BlockId::generate(&mut OsRng);
            let sealed = seal_block(key, &context.realm, &id, key_index, &plaintext, &mut OsRng);
            self.cache()
                .write(self.db(), &context.realm, &id, &sealed, true)?;
            index.push(BlockRef {
                id,
                key_index,
                offset: chunk[0].offset,
                len: plaintext.len() as u32,
                digest: Digest::of(&plaintext),
            });
        }
        Ok(WrittenFile {
            size: offset,
            blocks: Vec::new(),
            index,
        })
    }

    /// A file's complete block list: inline, or read from its index blocks (through the caches,
    /// each checked like any block).
    pub(crate) async fn file_blocks(
        &self,
        context: &RealmContext,
        blocks: &[BlockRef],
        index: &[BlockRef],
    ) -> Result<Vec<BlockRef>> {
        if index.is_empty() {
            return Ok(blocks.to_vec());
        }
        let mut all = Vec::new();
        for reference in index {
            let plaintext = self.load_block(context, reference).await?;
            let part = BlockIndex::decode(&plaintext)
                .map_err(|e| EngineError::Protocol(format!("a block index is malformed: {e}")))?;
            all.extend(part.blocks);
        }
        if all
            .windows(2)
            .any(|w| w[1].offset < w[0].offset + w[0].len as u64)
        {
            return Err(EngineError::Protocol(
                "a block index lists overlapping blocks".into(),
            ));
        }
        Ok(all)
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
