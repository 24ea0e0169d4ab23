//! File content: cutting a local file into encrypted blocks (the write path) and reading blocks
//! back through the caches, fetching the missing ones in parallel (the read path).

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use rand_core::OsRng;
use strongroom_protocol::blocks::{open_block_owned, seal_block};
use strongroom_protocol::crypto::hash::Digest;
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::ids::BlockId;
use strongroom_protocol::manifests::{BlockIndex, BlockRef};

use super::Progress;
use crate::block_cache::BlockCache;
use crate::client::Client;
use crate::error::{EngineError, Result};
use crate::local_db::Durability;
use crate::workspaces::RealmContext;

/// The size files are cut into. 1 MiB: one block per FUSE request of the largest size, large
/// enough that a cold read of a big file is dominated by bandwidth rather than round trips, and
/// small enough that a random 4 KiB read does not decrypt megabytes (see docs/architecture.md).
pub const BLOCK_SIZE: u32 = 1 << 20;

/// How many blocks are fetched (or uploaded) at once.
pub const PARALLEL_TRANSFERS: usize = 8;

/// The block size new files are cut into: [`BLOCK_SIZE`], unless `STRONGROOM_BLOCK_SIZE` (bytes,
/// 64 KiB to 4 MiB) says otherwise, which is there for the block-size benchmark. Readers take
/// each block's offset and length from the manifest, so files of any block size read alike.
pub fn block_size() -> u32 {
    std::env::var("STRONGROOM_BLOCK_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n: &u32| (64 << 10..=4 << 20).contains(n))
        .unwrap_or(BLOCK_SIZE)
}

/// Beyond this many blocks, a file's block list moves into index blocks (4,096 blocks: 4 GiB).
/// `STRONGROOM_INLINE_BLOCK_LIMIT` lowers it, for tests.
fn inline_limit() -> usize {
    std::env::var("STRONGROOM_INLINE_BLOCK_LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n: &usize| *n > 0)
        .unwrap_or(4096)
}

/// Uploads of sealed blocks while the rest of the file is still being read and sealed, straight
/// from memory: a block the server acknowledged is durable there and is never written to the
/// local cache; only a block whose upload failed is handed back, to be written (dirty) for the
/// next sync. The queue is bounded, so sealing waits for the network rather than filling memory.
pub(crate) struct EagerUploads {
    sender: tokio::sync::mpsc::Sender<(BlockId, Vec<u8>)>,
    task: tokio::task::JoinHandle<Vec<(BlockId, Vec<u8>)>>,
}

impl EagerUploads {
    /// Queues a sealed block, waiting while the queue is full (call it from a plain thread, never
    /// from an async task). Hands the block back if the uploads stopped.
    pub(crate) fn send(&self, block: BlockId, sealed: Vec<u8>) -> std::result::Result<(), Vec<u8>> {
        self.sender
            .blocking_send((block, sealed))
            .map_err(|e| e.0.1)
    }

    /// Waits for the queued uploads; returns the blocks that did not reach the server.
    pub(crate) async fn finish(self) -> Vec<(BlockId, Vec<u8>)> {
        drop(self.sender);
        self.task.await.unwrap_or_default()
    }
}

/// Which caches a fetched block fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    /// Memory and disk: reads that will come back (index blocks, the mount).
    Everywhere,
    /// The disk cache only: pins.
    OnDisk,
    /// Neither: a one-time copy out of the workspace (`get`), whose output is the local copy.
    Nowhere,
}

/// What a local file became.
pub(crate) struct WrittenFile {
    pub size: u64,
    pub block_size: u32,
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
    /// the disk cache (dirty), sealing blocks on every core while the file is read. Runs of zeros
    /// are left as holes. Everything is durable when this returns (one `syncfs`, then the blocks'
    /// index rows in one transaction). A file that changes while it is read is refused, and what
    /// was written for it is discarded.
    pub(crate) fn write_file_blocks(
        &self,
        context: &RealmContext,
        local: &Path,
        progress: &dyn Progress,
        eager: Option<&EagerUploads>,
    ) -> Result<WrittenFile> {
        let (key_index, key) = context.current_key()?;
        let open_error = |e| EngineError::io(format!("cannot read {}", local.display()), e);
        let mut file = std::fs::File::open(local).map_err(open_error)?;
        let before = metadata_stamp(&file.metadata().map_err(open_error)?);
        let size = before.0;
        let realm = context.realm;
        let cache = self.cache();
        let sync_each = BlockCache::sync_each_write();
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .min(8);
        let block_size = block_size() as u64;
        let mut offset = 0u64;
        let mut blocks: Vec<BlockRef> = Vec::new();
        // The blocks written to the cache (the others went straight to the server).
        let mut cached: Vec<BlockId> = Vec::new();
        let (chunks, chunk_rx) = std::sync::mpsc::sync_channel::<(u64, Vec<u8>)>(workers * 2);
        let chunk_rx = std::sync::Mutex::new(chunk_rx);
        let (done, done_rx) = std::sync::mpsc::channel::<Result<(BlockRef, bool)>>();
        let outcome = std::thread::scope(|scope| -> Result<()> {
            for _ in 0..workers {
                let (chunk_rx, done) = (&chunk_rx, done.clone());
                scope.spawn(move || {
                    loop {
                        let next = chunk_rx.lock().expect("chunk queue").recv();
                        let Ok((block_offset, data)) = next else {
                            return;
                        };
                        let id = BlockId::generate(&mut OsRng);
                        let sealed = seal_block(key, &realm, &id, key_index, &data, &mut OsRng);
                        let reference = BlockRef {
                            id,
                            key_index,
                            offset: block_offset,
                            len: data.len() as u32,
                            digest: Digest::of(&data),
                        };
                        // Straight to the server when it answers; else into the cache.
                        let local = match eager {
                            Some(eager) => eager.send(id, sealed).err(),
                            None => Some(sealed),
                        };
                        let written = match local {
                            Some(sealed) => cache
                                .write_unrecorded(&realm, &id, &sealed, sync_each)
                                .map(|()| (reference, true)),
                            None => Ok((reference, false)),
                        };
                        if done.send(written).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(done);
            let read = (|| -> Result<()> {
                use std::io::{Seek, SeekFrom};
                loop {
                    // Skip whole blocks of holes, staying on block boundaries.
                    if let Some(next) = next_data(&file, offset) {
                        let hole = next.min(size).saturating_sub(offset) / block_size * block_size;
                        if hole > 0 {
                            offset += hole;
                            progress.advance(hole);
                            if offset >= size {
                                return Ok(());
                            }
                            file.seek(SeekFrom::Start(offset)).map_err(open_error)?;
                        }
                    }
                    let mut buffer = vec![0u8; block_size as usize];
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
                    buffer.truncate(filled);
                    if buffer.iter().any(|b| *b != 0) && chunks.send((offset, buffer)).is_err() {
                        return Ok(());
                    }
                    offset += filled as u64;
                    progress.advance(filled as u64);
                }
            })();
            drop(chunks);
            let mut failure = read.err();
            for result in done_rx {
                match result {
                    Ok((block, in_cache)) => {
                        if in_cache {
                            cached.push(block.id);
                        }
                        blocks.push(block)
                    }
                    Err(e) => failure = failure.or(Some(e)),
                }
            }
            failure.map_or(Ok(()), Err)
        });
        blocks.sort_by_key(|b| b.offset);
        let after = std::fs::metadata(local).map(|m| metadata_stamp(&m));
        let changed = outcome.is_ok() && (after.ok() != Some(before) || offset != size);
        let outcome = outcome.and_then(|()| {
            if changed {
                return Err(EngineError::InvalidInput(format!(
                    "{} changed while it was being read; nothing was stored, try again",
                    local.display()
                )));
            }
            Ok(())
        });
        if let Err(e) = outcome {
            for block in &blocks {
                cache.discard(&realm, &block.id);
            }
            return Err(e);
        }
        let (blocks, index) = self.seal_index(context, blocks, sync_each)?;
        cached.extend(index.iter().map(|b| b.id));
        if !cached.is_empty() {
            cache.sync_to_disk()?;
        }
        cache.record(&realm, &cached, true, Durability::Now)?;
        if index.is_empty() {
            Ok(WrittenFile {
                size,
                block_size: block_size as u32,
                blocks,
                index,
            })
        } else {
            Ok(WrittenFile {
                size,
                block_size: block_size as u32,
                blocks: Vec::new(),
                index,
            })
        }
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
            let plaintext = self
                .load_block(context, reference, Keep::Everywhere)
                .await?;
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

    /// A long block list moves into index blocks, sealed like data blocks and written to the
    /// cache (written, not yet recorded nor synced to disk): returns the inline list and the
    /// index (empty when the list stays inline).
    fn seal_index(
        &self,
        context: &RealmContext,
        blocks: Vec<BlockRef>,
        sync_each: bool,
    ) -> Result<(Vec<BlockRef>, Vec<BlockRef>)> {
        if blocks.len() <= inline_limit() {
            return Ok((blocks, Vec::new()));
        }
        let (key_index, key) = context.current_key()?;
        let realm = context.realm;
        let mut index = Vec::new();
        for chunk in blocks.chunks(inline_limit()) {
            let plaintext = BlockIndex {
                blocks: chunk.to_vec(),
            }
            .encode();
            let id = BlockId::generate(&mut OsRng);
            let sealed = seal_block(key, &realm, &id, key_index, &plaintext, &mut OsRng);
            self.cache()
                .write_unrecorded(&realm, &id, &sealed, sync_each)?;
            index.push(BlockRef {
                id,
                key_index,
                offset: chunk[0].offset,
                len: plaintext.len() as u32,
                digest: Digest::of(&plaintext),
            });
        }
        Ok((blocks, index))
    }

    /// [`Client::seal_index`] for the mount: the index blocks are durable and recorded (dirty)
    /// when this returns.
    pub(crate) fn index_if_long(
        &self,
        context: &RealmContext,
        blocks: Vec<BlockRef>,
    ) -> Result<(Vec<BlockRef>, Vec<BlockRef>)> {
        let (blocks, index) = self.seal_index(context, blocks, false)?;
        if index.is_empty() {
            return Ok((blocks, index));
        }
        self.cache().sync_to_disk()?;
        let written: Vec<BlockId> = index.iter().map(|b| b.id).collect();
        self.cache()
            .record(&context.realm, &written, true, Durability::Now)?;
        Ok((Vec::new(), index))
    }

    /// One block's plaintext: from memory, else the disk cache, else the server; checked against
    /// its digest either way. Decryption, hashing and cache writes run on the blocking pool, so
    /// that blocks in flight proceed in parallel. A cached block that fails verification is
    /// dropped and fetched again.
    /// `keep` says which caches a fetched block fills.
    pub(crate) async fn load_block(
        &self,
        context: &RealmContext,
        block: &BlockRef,
        keep: Keep,
    ) -> Result<Arc<Vec<u8>>> {
        let realm = context.realm;
        if let Some(data) = self.cache().memory_get(&realm, &block.id) {
            return Ok(data);
        }
        // One load per block at a time when it goes to memory: whoever waited finds it there.
        let _loading = match keep {
            Keep::Everywhere => {
                let loading = self.cache().start_loading(&realm, &block.id).await;
                if let Some(data) = self.cache().memory_get(&realm, &block.id) {
                    return Ok(data);
                }
                Some(loading)
            }
            _ => None,
        };
        let key = context.key(block.key_index)?.clone();
        let cache = self.cache_handle();
        let (reference, cached_key) = (block.clone(), key.clone());
        let cached = tokio::task::spawn_blocking(move || -> Result<Option<Result<Vec<u8>>>> {
            Ok(cache.read(&realm, &reference.id)?.map(|ciphertext| {
                open_block_owned(&cached_key, &realm, &reference, ciphertext)
                    .map_err(EngineError::from)
            }))
        })
        .await
        .map_err(|e| EngineError::Protocol(e.to_string()))??;
        let plaintext = match cached {
            Some(Ok(plaintext)) => plaintext,
            other => {
                if other.is_some() {
                    tracing::warn!(block = %block.id, "a cached block failed verification; fetching it again");
                    self.cache().remove(&realm, &block.id)?;
                }
                let damaged = other.is_some();
                let ciphertext = self.remote_get_block(realm, block.id).await?;
                let cache = self.cache_handle();
                let reference = block.clone();
                // A damaged cached copy is replaced (it may be kept available offline).
                let on_disk = keep != Keep::Nowhere || damaged;
                tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
                    // Cached as served (a block that fails verification below is removed at its
                    // next read); a clean block needs no fsync: if a crash tears it, it fails
                    // verification and is fetched again.
                    if on_disk {
                        cache.write_fetched(&realm, &reference.id, &ciphertext)?;
                    }
                    open_block_owned(&key, &realm, &reference, ciphertext).map_err(|e| {
                        if on_disk {
                            cache.discard(&realm, &reference.id);
                        }
                        e.into()
                    })
                })
                .await
                .map_err(|e| EngineError::Protocol(e.to_string()))??
            }
        };
        let data = Arc::new(plaintext);
        if keep == Keep::Everywhere {
            self.cache().memory_put(&realm, &block.id, data.clone());
        }
        Ok(data)
    }

    /// Writes a file's content into `sink`, block after block, with up to
    /// [`PARALLEL_TRANSFERS`] blocks in flight ahead of the one being written (sequential
    /// prefetch).
    pub(crate) async fn read_file_into(
        &self,
        context: &RealmContext,
        size: u64,
        blocks: &[BlockRef],
        sink: &mut dyn ContentSink,
        progress: &dyn Progress,
    ) -> Result<()> {
        let write_error = |e| EngineError::io("cannot write the file being downloaded", e);
        let mut stream = futures_util::stream::iter(
            blocks
                .iter()
                .map(|b| self.load_block(context, b, Keep::Nowhere)),
        )
        .buffered(PARALLEL_TRANSFERS);
        let mut index = 0;
        let result = async {
            while let Some(data) = stream.try_next().await? {
                let block = &blocks[index];
                index += 1;
                sink.write_at(block.offset, &data).map_err(write_error)?;
                progress.advance(data.len() as u64);
            }
            sink.finish(size).map_err(write_error)
        }
        .await;
        self.cache().evict()?;
        result
    }

    /// Starts uploading sealed blocks of `realm` as they are queued, [`PARALLEL_TRANSFERS`] at
    /// once.
    pub(crate) fn eager_uploads(&self, realm: strongroom_protocol::ids::RealmId) -> EagerUploads {
        let (sender, receiver) =
            tokio::sync::mpsc::channel::<(BlockId, Vec<u8>)>(PARALLEL_TRANSFERS * 2);
        let connection = self.connection().clone();
        let key = self.signing_key().clone();
        let (organization, device) = (self.keys().organization.clone(), self.keys().device_id);
        let task = tokio::spawn(async move {
            let credentials = crate::connection::Credentials::Device {
                organization: &organization,
                device,
                key: &key,
            };
            let base = format!("/authenticated/{organization}/realms/{realm}/blocks");
            let mut receiver = receiver;
            futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
                .map(|(id, sealed): (BlockId, Vec<u8>)| {
                    let (connection, path) = (&connection, format!("{base}/{id}"));
                    async move {
                        // The body is consumed by the request: keep a copy only until it succeeds.
                        match connection
                            .send_raw(reqwest::Method::PUT, &path, sealed.clone(), credentials)
                            .await
                        {
                            Ok(_) => None,
                            Err(e) => {
                                tracing::debug!(block = %id, error = %e, "eager upload failed; kept for the next sync");
                                Some((id, sealed))
                            }
                        }
                    }
                })
                .buffer_unordered(PARALLEL_TRANSFERS)
                .filter_map(std::future::ready)
                .collect()
                .await
        });
        EagerUploads { sender, task }
    }

    /// Writes blocks whose eager upload failed to the cache, dirty and durable.
    pub(crate) fn keep_for_upload(
        &self,
        realm: strongroom_protocol::ids::RealmId,
        blocks: Vec<(BlockId, Vec<u8>)>,
    ) -> Result<()> {
        if blocks.is_empty() {
            return Ok(());
        }
        let mut written = Vec::with_capacity(blocks.len());
        for (id, sealed) in &blocks {
            self.cache()
                .write_unrecorded(&realm, id, sealed, BlockCache::sync_each_write())?;
            written.push(*id);
        }
        self.cache().sync_to_disk()?;
        self.cache().record(&realm, &written, true, Durability::Now)
    }

    /// Uploads the dirty blocks among `blocks`, in parallel, then marks them uploaded in one
    /// transaction.
    pub(crate) async fn upload_blocks(
        &self,
        context: &RealmContext,
        blocks: &[BlockRef],
        progress: &dyn Progress,
    ) -> Result<()> {
        let realm = context.realm;
        let mut dirty = Vec::new();
        for block in blocks {
            if self.db().block(&realm, &block.id)?.is_some_and(|r| r.dirty) {
                dirty.push(block.clone());
            }
        }
        let uploaded: Vec<BlockId> =
            futures_util::stream::iter(dirty.into_iter().map(|block| async move {
                let cache = self.cache_handle();
                let id = block.id;
                let ciphertext = tokio::task::spawn_blocking(move || cache.read(&realm, &id))
                    .await
                    .map_err(|e| EngineError::Protocol(e.to_string()))??
                    .ok_or_else(|| {
                        EngineError::Protocol(format!(
                            "block {id} waits for upload but is missing from the cache"
                        ))
                    })?;
                self.remote_put_block(realm, id, ciphertext).await?;
                progress.advance(block.len as u64);
                Ok::<_, EngineError>(id)
            }))
            .buffer_unordered(PARALLEL_TRANSFERS)
            .try_collect()
            .await?;
        self.db().blocks_uploaded(&realm, &uploaded)
    }
}

/// Where [`Client::read_file_into`] writes a file's content. Blocks arrive in order of offset;
/// the gaps between them are holes (zeros).
pub trait ContentSink {
    /// Writes `data` at `offset`.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()>;
    /// Ends the content at `size` bytes (a trailing hole included).
    fn finish(&mut self, size: u64) -> std::io::Result<()>;
}

/// A local file: holes stay holes.
impl ContentSink for std::fs::File {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        self.seek(SeekFrom::Start(offset))?;
        self.write_all(data)
    }

    fn finish(&mut self, size: u64) -> std::io::Result<()> {
        self.set_len(size)
    }
}

/// A stream that cannot seek (standard output, a pipe): holes are written out as zeros.
pub struct StreamSink<W: std::io::Write> {
    writer: W,
    position: u64,
}

impl<W: std::io::Write> StreamSink<W> {
    /// Writes to `writer` from its current position on.
    pub fn new(writer: W) -> Self {
        Self {
            writer,
            position: 0,
        }
    }

    fn zeros_until(&mut self, offset: u64) -> std::io::Result<()> {
        static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
        while self.position < offset {
            let n = (offset - self.position).min(ZEROS.len() as u64) as usize;
            self.writer.write_all(&ZEROS[..n])?;
            self.position += n as u64;
        }
        Ok(())
    }
}

impl<W: std::io::Write> ContentSink for StreamSink<W> {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        if offset < self.position {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "blocks out of order",
            ));
        }
        self.zeros_until(offset)?;
        self.writer.write_all(data)?;
        self.position += data.len() as u64;
        Ok(())
    }

    fn finish(&mut self, size: u64) -> std::io::Result<()> {
        self.zeros_until(size)?;
        self.writer.flush()
    }
}

#[cfg(test)]
mod sink_tests {
    use super::{ContentSink, StreamSink};

    #[test]
    fn a_stream_gets_holes_as_zeros() {
        let mut sink = StreamSink::new(Vec::new());
        sink.write_at(3, b"ab").unwrap();
        sink.write_at(70_000, b"c").unwrap();
        sink.finish(70_004).unwrap();
        let out = sink.writer;
        assert_eq!(out.len(), 70_004);
        assert_eq!(&out[..5], b"\0\0\0ab");
        assert!(out[5..70_000].iter().all(|&b| b == 0));
        assert_eq!(&out[70_000..], b"c\0\0\0");
        let mut sink = StreamSink::new(Vec::new());
        sink.write_at(10, b"x").unwrap();
        assert!(sink.write_at(5, b"y").is_err(), "a stream cannot go back");
    }
}
