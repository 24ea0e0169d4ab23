//! The block caches: decrypted blocks in memory, encrypted blocks on disk, both bounded in bytes
//! and emptied least recently used first. Blocks written here and not uploaded yet (dirty) and
//! pinned blocks are never evicted.
//!
//! On disk a block is kept exactly as the server stores it (encrypted with the workspace key):
//! a dirty block is encrypted once, when it is written, and uploaded as it is.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use strongroom_protocol::ids::{BlockId, RealmId};

use crate::error::{EngineError, Result};
use crate::local_db::LocalDb;

/// Default bound of the memory cache: 256 MiB.
pub const DEFAULT_MEMORY_BYTES: u64 = 256 << 20;
/// Default bound of the disk cache: 10 GiB.
pub const DEFAULT_DISK_BYTES: u64 = 10 << 30;

type Key = (RealmId, BlockId);

/// Decrypted blocks in memory, least recently used out first.
struct MemoryCache {
    entries: HashMap<Key, (Arc<Vec<u8>>, u64)>,
    order: BTreeMap<u64, Key>,
    tick: u64,
    bytes: u64,
    limit: u64,
}

impl MemoryCache {
    fn get(&mut self, key: &Key) -> Option<Arc<Vec<u8>>> {
        let (data, tick) = self.entries.get_mut(key)?;
        self.order.remove(tick);
        self.tick += 1;
        *tick = self.tick;
        self.order.insert(self.tick, *key);
        Some(data.clone())
    }

    fn put(&mut self, key: Key, data: Arc<Vec<u8>>) {
        if data.len() as u64 > self.limit {
            return;
        }
        if let Some((old, tick)) = self.entries.remove(&key) {
            self.order.remove(&tick);
            self.bytes -= old.len() as u64;
        }
        self.tick += 1;
        self.bytes += data.len() as u64;
        self.order.insert(self.tick, key);
        self.entries.insert(key, (data, self.tick));
        while self.bytes > self.limit {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some((data, _)) = self.entries.remove(&oldest) {
                self.bytes -= data.len() as u64;
            }
        }
    }
}

/// Both caches.
pub struct BlockCache {
    dir: PathBuf,
    memory: Mutex<MemoryCache>,
    disk_limit: u64,
    /// Blocks written to disk whose index rows are not recorded yet (recorded in one
    /// transaction by [`BlockCache::flush`]).
    unrecorded: Mutex<Vec<(RealmId, BlockId, u64)>>,
}

impl BlockCache {
    /// Caches under `dir`, bounded by `memory_limit` and `disk_limit` bytes.
    pub fn new(dir: PathBuf, memory_limit: u64, disk_limit: u64) -> Self {
        Self {
            dir,
            memory: Mutex::new(MemoryCache {
                entries: HashMap::new(),
                order: BTreeMap::new(),
                tick: 0,
                bytes: 0,
                limit: memory_limit,
            }),
            disk_limit,
            unrecorded: Mutex::new(Vec::new()),
        }
    }

    fn path(&self, realm: &RealmId, block: &BlockId) -> PathBuf {
        let name = block.to_string();
        self.dir.join(realm.to_string()).join(&name[..2]).join(name)
    }

    /// A decrypted block, if in memory.
    pub fn memory_get(&self, realm: &RealmId, block: &BlockId) -> Option<Arc<Vec<u8>>> {
        self.memory.lock().ok()?.get(&(*realm, *block))
    }

    /// Keeps a decrypted block in memory.
    pub fn memory_put(&self, realm: &RealmId, block: &BlockId, data: Arc<Vec<u8>>) {
        if let Ok(mut memory) = self.memory.lock() {
            memory.put((*realm, *block), data);
        }
    }

    /// An encrypted block, if on disk.
    pub fn read(&self, realm: &RealmId, block: &BlockId) -> Result<Option<Vec<u8>>> {
        let path = self.path(realm, block);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(EngineError::io(
                format!("cannot read the cached block {}", path.display()),
                e,
            )),
        }
    }

    /// Writes an encrypted block durably (written, synced, then renamed into place) and records
    /// it; `dirty` blocks wait for upload and are never evicted.
    pub fn write(
        &self,
        db: &LocalDb,
        realm: &RealmId,
        block: &BlockId,
        ciphertext: &[u8],
        dirty: bool,
    ) -> Result<()> {
        self.write_file(realm, block, ciphertext, true)?;
        db.put_block(realm, block, ciphertext.len() as u64, dirty)
    }

    /// Writes an encrypted block's file (renamed into place when complete), without recording
    /// it. Unsynced writes are made durable by [`BlockCache::sync_to_disk`].
    pub fn write_file(
        &self,
        realm: &RealmId,
        block: &BlockId,
        ciphertext: &[u8],
        sync: bool,
    ) -> Result<()> {
        let path = self.path(realm, block);
        write_block_file(&path, ciphertext, sync).map_err(|e| {
            EngineError::io(
                format!(
                    "cannot write a block to the cache in {}",
                    self.dir.display()
                ),
                e,
            )
        })
    }

    /// Makes every write to the cache's filesystem durable: one `syncfs` on Linux instead of a
    /// `fsync` per block; elsewhere every file was synced as it was written.
    pub fn sync_to_disk(&self) -> Result<()> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            std::fs::create_dir_all(&self.dir)
                .map_err(|e| EngineError::io(format!("cannot create {}", self.dir.display()), e))?;
            let dir = std::fs::File::open(&self.dir)
                .map_err(|e| EngineError::io(format!("cannot open {}", self.dir.display()), e))?;
            rustix::fs::syncfs(&dir).map_err(|e| {
                EngineError::io(format!("cannot sync {}", self.dir.display()), e.into())
            })?;
        }
        Ok(())
    }

    /// Whether writes need a `fsync` each (no `syncfs` on this platform).
    pub fn sync_each_write() -> bool {
        !cfg!(any(target_os = "linux", target_os = "android"))
    }

    /// Notes a block written with [`BlockCache::write_file`] that is clean (fetched).
    pub fn note_fetched(&self, realm: &RealmId, block: &BlockId, size: u64) {
        if let Ok(mut unrecorded) = self.unrecorded.lock() {
            unrecorded.push((*realm, *block, size));
        }
    }

    /// Records the fetched blocks noted so far, in one transaction per realm.
    pub fn flush(&self, db: &LocalDb) -> Result<()> {
        let pending: Vec<_> = match self.unrecorded.lock() {
            Ok(mut u) => std::mem::take(&mut *u),
            Err(_) => return Ok(()),
        };
        let mut by_realm: HashMap<RealmId, Vec<(BlockId, u64)>> = HashMap::new();
        for (realm, block, size) in pending {
            by_realm.entry(realm).or_default().push((block, size));
        }
        for (realm, blocks) in by_realm {
            db.put_blocks(&realm, &blocks, false)?;
        }
        Ok(())
    }

    /// Deletes a cached block (one that failed verification: it is fetched again).
    pub fn remove(&self, db: &LocalDb, realm: &RealmId, block: &BlockId) -> Result<()> {
        let _ = std::fs::remove_file(self.path(realm, block));
        db.forget_block(realm, block)
    }

    /// Removes a block file that was never recorded (a write abandoned half way).
    pub fn discard(&self, realm: &RealmId, block: &BlockId) {
        let _ = std::fs::remove_file(self.path(realm, block));
    }

    /// Evicts clean, unpinned blocks, oldest first, until the disk cache fits its bound.
    pub fn evict(&self, db: &LocalDb) -> Result<u64> {
        self.flush(db)?;
        let mut total = db.cached_bytes()?;
        let mut freed = 0;
        while total > self.disk_limit {
            let candidates = db.evictable_blocks(256)?;
            if candidates.is_empty() {
                break;
            }
            for (realm, block, size) in candidates {
                if total <= self.disk_limit {
                    break;
                }
                db.forget_block(&realm, &block)?;
                let _ = std::fs::remove_file(self.path(&realm, &block));
                total = total.saturating_sub(size);
                freed += size;
            }
        }
        Ok(freed)
    }
}

fn write_block_file(path: &Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    let dir = path.parent().expect("block paths have a folder");
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp{:x}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        if sync {
            file.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn memory_cache_is_bounded_and_lru() {
        let mut m = MemoryCache {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
            bytes: 0,
            limit: 30,
        };
        let realm = RealmId::generate(&mut OsRng);
        let keys: Vec<Key> = (0..4)
            .map(|_| (realm, BlockId::generate(&mut OsRng)))
            .collect();
        m.put(keys[0], Arc::new(vec![0; 10]));
        m.put(keys[1], Arc::new(vec![1; 10]));
        m.put(keys[2], Arc::new(vec![2; 10]));
        assert!(m.get(&keys[0]).is_some()); // keys[0] is now the most recent
        m.put(keys[3], Arc::new(vec![3; 10]));
        assert!(
            m.get(&keys[1]).is_none(),
            "the least recently used goes first"
        );
        assert!(
            m.get(&keys[0]).is_some() && m.get(&keys[2]).is_some() && m.get(&keys[3]).is_some()
        );
        assert_eq!(m.bytes, 30);
        m.put(keys[1], Arc::new(vec![0; 40]));
        assert!(
            m.get(&keys[1]).is_none(),
            "larger than the whole cache: not kept"
        );
    }

    #[test]
    fn disk_cache_evicts_only_clean_unpinned_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let db = LocalDb::open(
            &dir.path().join("db"),
            strongroom_protocol::crypto::secret_key::SecretKey::generate(&mut OsRng),
        )
        .unwrap();
        let cache = BlockCache::new(dir.path().join("blocks"), 1 << 20, 300);
        let realm = RealmId::generate(&mut OsRng);
        let blocks: Vec<BlockId> = (0..4).map(|_| BlockId::generate(&mut OsRng)).collect();
        cache
            .write(&db, &realm, &blocks[0], &[0; 100], true)
            .unwrap();
        cache
            .write(&db, &realm, &blocks[1], &[1; 100], false)
            .unwrap();
        cache
            .write(&db, &realm, &blocks[2], &[2; 100], false)
            .unwrap();
        db.set_pinned(&realm, &[blocks[2]], true).unwrap();
        cache
            .write(&db, &realm, &blocks[3], &[3; 100], false)
            .unwrap();
        assert_eq!(cache.evict(&db).unwrap(), 100);
        assert!(
            cache.read(&realm, &blocks[0]).unwrap().is_some(),
            "dirty stays"
        );
        assert!(
            cache.read(&realm, &blocks[1]).unwrap().is_none(),
            "oldest clean goes"
        );
        assert!(
            cache.read(&realm, &blocks[2]).unwrap().is_some(),
            "pinned stays"
        );
        assert!(cache.read(&realm, &blocks[3]).unwrap().is_some());
    }
}
