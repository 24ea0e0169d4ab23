//! The block caches: decrypted blocks in memory, encrypted blocks on disk, both bounded in bytes
//! and emptied least recently used first. Blocks written here and not uploaded yet (dirty) and
//! pinned blocks are never evicted.
//!
//! On disk a block is kept exactly as the server stores it (encrypted with the workspace key):
//! a dirty block is encrypted once, when it is written, and uploaded as it is. Blocks are
//! appended to pack files ([`packs`]); the local database indexes them (size, pack, offset).
//! A block is recorded by its writer once written, so that a crash never leaves an index row
//! without its bytes (a pack's unrecorded bytes are garbage until the pack is deleted).

mod packs;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use strongroom_protocol::ids::{BlockId, RealmId};

use crate::error::{EngineError, Result};
use crate::local_db::{Durability, LocalDb};

use packs::Packs;
pub use packs::{Location, PACK_BYTES};

/// Least default bound of the memory cache: 256 MiB.
pub const MIN_MEMORY_BYTES: u64 = 256 << 20;
/// Greatest default bound of the memory cache: 2 GiB.
pub const MAX_MEMORY_BYTES: u64 = 2 << 30;

/// Default bound of the memory cache: an eighth of the machine's memory, between 256 MiB and
/// 2 GiB (256 MiB where the total is unknown). A random reader of a large file decrypts a whole
/// 1 MiB block per miss; a cache that holds the file decrypts each block once.
pub fn default_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .as_deref()
        .and_then(memory_total)
        .map_or(MIN_MEMORY_BYTES, |total| {
            (total / 8).clamp(MIN_MEMORY_BYTES, MAX_MEMORY_BYTES)
        })
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn memory_total(meminfo: &str) -> Option<u64> {
    let kib = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
}
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

    fn remove(&mut self, key: &Key) {
        if let Some((old, tick)) = self.entries.remove(key) {
            self.order.remove(&tick);
            self.bytes -= old.len() as u64;
        }
    }

    fn put(&mut self, key: Key, data: Arc<Vec<u8>>) {
        if data.len() as u64 > self.limit {
            return;
        }
        self.remove(&key);
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

/// A block written to the disk cache and not recorded in the index yet.
#[derive(Debug, Clone, Copy)]
struct Unrecorded {
    size: u64,
    location: Location,
    /// Fetched from the server (clean): recorded by [`BlockCache::flush`]. Written here ones
    /// are recorded by their writer with [`BlockCache::record`].
    fetched: bool,
}

/// How long a pack with no recorded block is kept after its last write (its writer records
/// the blocks it wrote within moments; this leaves it ample time).
const PACK_QUIET: std::time::Duration = std::time::Duration::from_secs(60);

/// Both caches.
pub struct BlockCache {
    dir: PathBuf,
    db: Arc<LocalDb>,
    packs: Packs,
    memory: Mutex<MemoryCache>,
    disk_limit: u64,
    unrecorded: Mutex<HashMap<Key, Unrecorded>>,
    /// Blocks being loaded into memory: a second reader of one waits for the first instead of
    /// reading and decrypting it again (a sequential reader and its prefetch meet often).
    loading: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
    /// Packs whose blocks this process evicted, deleted once no block is recorded in them and
    /// they are idle (retried at each eviction).
    emptied: Mutex<std::collections::BTreeSet<u64>>,
}

/// A block being loaded by this holder; see [`BlockCache::start_loading`].
pub struct Loading<'a> {
    cache: &'a BlockCache,
    key: Key,
    lock: Arc<tokio::sync::Mutex<()>>,
    _held: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for Loading<'_> {
    fn drop(&mut self) {
        if let Ok(mut loading) = self.cache.loading.lock()
            // The map's handle and ours: nobody else waits.
            && Arc::strong_count(&self.lock) <= 2
        {
            loading.remove(&self.key);
        }
    }
}

impl BlockCache {
    /// Caches under `dir`, indexed in `db`, bounded by `memory_limit` and `disk_limit` bytes.
    pub fn new(dir: PathBuf, db: Arc<LocalDb>, memory_limit: u64, disk_limit: u64) -> Self {
        Self {
            packs: Packs::new(dir.join("packs")),
            dir,
            db,
            memory: Mutex::new(MemoryCache {
                entries: HashMap::new(),
                order: BTreeMap::new(),
                tick: 0,
                bytes: 0,
                limit: memory_limit,
            }),
            disk_limit,
            unrecorded: Mutex::new(HashMap::new()),
            loading: Mutex::new(HashMap::new()),
            emptied: Mutex::new(std::collections::BTreeSet::new()),
        }
    }

    /// Waits until no one else is loading this block, then marks it loaded by the caller until
    /// the returned value is dropped; the caller looks in memory again first.
    pub async fn start_loading(&self, realm: &RealmId, block: &BlockId) -> Loading<'_> {
        let key = (*realm, *block);
        let lock = self
            .loading
            .lock()
            .map(|mut loading| loading.entry(key).or_default().clone())
            .unwrap_or_default();
        let held = lock.clone().lock_owned().await;
        Loading {
            cache: self,
            key,
            lock,
            _held: held,
        }
    }

    /// Where a block written before packs is: a file of its own.
    fn legacy_path(&self, realm: &RealmId, block: &BlockId) -> PathBuf {
        let name = block.to_string();
        self.dir.join(realm.to_string()).join(&name[..2]).join(name)
    }

    /// A decrypted block, if in memory.
    pub fn memory_get(&self, realm: &RealmId, block: &BlockId) -> Option<Arc<Vec<u8>>> {
        self.memory.lock().ok()?.get(&(*realm, *block))
    }

    /// Drops a decrypted block from memory (it stays on disk if it was there).
    pub fn memory_remove(&self, realm: &RealmId, block: &BlockId) {
        if let Ok(mut memory) = self.memory.lock() {
            memory.remove(&(*realm, *block));
        }
    }

    /// Keeps a decrypted block in memory.
    pub fn memory_put(&self, realm: &RealmId, block: &BlockId, data: Arc<Vec<u8>>) {
        if let Ok(mut memory) = self.memory.lock() {
            memory.put((*realm, *block), data);
        }
    }

    fn read_error(&self, e: std::io::Error) -> EngineError {
        EngineError::io(
            format!("cannot read the block cache in {}", self.dir.display()),
            e,
        )
    }

    /// An encrypted block, if on disk.
    pub fn read(&self, realm: &RealmId, block: &BlockId) -> Result<Option<Vec<u8>>> {
        let pending = self
            .unrecorded
            .lock()
            .ok()
            .and_then(|u| u.get(&(*realm, *block)).copied());
        if let Some(pending) = pending {
            return self
                .packs
                .read(pending.location, pending.size)
                .map_err(|e| self.read_error(e));
        }
        let Some(record) = self.db.block(realm, block)? else {
            return Ok(None);
        };
        match record.location {
            Some(location) => self
                .packs
                .read(location, record.size)
                .map_err(|e| self.read_error(e)),
            None => match std::fs::read(self.legacy_path(realm, block)) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(self.read_error(e)),
            },
        }
    }

    /// Writes an encrypted block durably and records it; `dirty` blocks wait for upload and
    /// are never evicted.
    pub fn write(
        &self,
        realm: &RealmId,
        block: &BlockId,
        ciphertext: &[u8],
        dirty: bool,
    ) -> Result<()> {
        self.write_unrecorded(realm, block, ciphertext, true)?;
        self.record(realm, &[*block], dirty, Durability::Now)
    }

    /// Writes an encrypted block to the disk cache without recording it: its writer records it
    /// with [`BlockCache::record`] (or drops it with [`BlockCache::discard`]). Unsynced writes
    /// are made durable by [`BlockCache::sync_to_disk`].
    pub fn write_unrecorded(
        &self,
        realm: &RealmId,
        block: &BlockId,
        ciphertext: &[u8],
        sync: bool,
    ) -> Result<()> {
        self.append(realm, block, ciphertext, sync, false)
    }

    fn append(
        &self,
        realm: &RealmId,
        block: &BlockId,
        ciphertext: &[u8],
        sync: bool,
        fetched: bool,
    ) -> Result<()> {
        let location = self.packs.append(ciphertext, sync).map_err(|e| {
            EngineError::io(
                format!(
                    "cannot write a block to the cache in {}",
                    self.dir.display()
                ),
                e,
            )
        })?;
        if let Ok(mut unrecorded) = self.unrecorded.lock() {
            unrecorded.insert(
                (*realm, *block),
                Unrecorded {
                    size: ciphertext.len() as u64,
                    location,
                    fetched,
                },
            );
        }
        Ok(())
    }

    /// Records blocks written with [`BlockCache::write_unrecorded`], in one transaction.
    pub fn record(
        &self,
        realm: &RealmId,
        blocks: &[BlockId],
        dirty: bool,
        durability: Durability,
    ) -> Result<()> {
        let rows: Vec<(BlockId, u64, Location)> = {
            let unrecorded = self
                .unrecorded
                .lock()
                .map_err(|_| EngineError::Protocol("block cache lock poisoned".into()))?;
            blocks
                .iter()
                .map(|id| {
                    unrecorded
                        .get(&(*realm, *id))
                        .map(|u| (*id, u.size, u.location))
                        .ok_or_else(|| {
                            EngineError::Protocol(format!(
                                "block {id} was recorded without being written"
                            ))
                        })
                })
                .collect::<Result<_>>()?
        };
        self.db.put_blocks(realm, &rows, dirty, durability)?;
        if let Ok(mut unrecorded) = self.unrecorded.lock() {
            for id in blocks {
                unrecorded.remove(&(*realm, *id));
            }
        }
        Ok(())
    }

    /// Makes every write to the cache's filesystem durable: one `syncfs` on Linux instead of a
    /// `fsync` per block; elsewhere every write was synced as it was written.
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

    /// Writes a block fetched from the server (clean: a crash that tears it only means it is
    /// fetched again); recorded by the next [`BlockCache::flush`].
    pub fn write_fetched(&self, realm: &RealmId, block: &BlockId, ciphertext: &[u8]) -> Result<()> {
        self.append(realm, block, ciphertext, false, true)
    }

    /// Records the fetched blocks written so far, in one transaction per realm.
    pub fn flush(&self) -> Result<()> {
        let mut by_realm: HashMap<RealmId, Vec<BlockId>> = HashMap::new();
        if let Ok(unrecorded) = self.unrecorded.lock() {
            for ((realm, block), pending) in unrecorded.iter() {
                if pending.fetched {
                    by_realm.entry(*realm).or_default().push(*block);
                }
            }
        }
        for (realm, blocks) in by_realm {
            self.record(&realm, &blocks, false, Durability::Now)?;
        }
        Ok(())
    }

    /// Deletes a cached block (one that failed verification: it is fetched again).
    pub fn remove(&self, realm: &RealmId, block: &BlockId) -> Result<()> {
        self.discard(realm, block);
        if let Some(record) = self.db.block(realm, block)? {
            self.db.forget_block(realm, block)?;
            self.free(realm, block, record.size, record.location);
        }
        Ok(())
    }

    /// Frees the space of a block written and never recorded (a write abandoned half way).
    pub fn discard(&self, realm: &RealmId, block: &BlockId) {
        let pending = self
            .unrecorded
            .lock()
            .ok()
            .and_then(|mut u| u.remove(&(*realm, *block)));
        if let Some(pending) = pending {
            self.packs.free(pending.location, pending.size);
        }
    }

    fn free(&self, realm: &RealmId, block: &BlockId, size: u64, location: Option<Location>) {
        match location {
            Some(location) => self.packs.free(location, size),
            None => {
                let _ = std::fs::remove_file(self.legacy_path(realm, block));
            }
        }
    }

    /// Evicts clean, unpinned blocks, least recently used first, until the disk cache fits its
    /// bound; packs left without blocks are deleted.
    pub fn evict(&self) -> Result<u64> {
        self.flush()?;
        let mut total = self.db.cached_bytes()?;
        let mut freed = 0;
        let mut emptied = self
            .emptied
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default();
        while total > self.disk_limit {
            let candidates = self.db.evictable_blocks(256)?;
            if candidates.is_empty() {
                break;
            }
            for (realm, block, size, location) in candidates {
                if total <= self.disk_limit {
                    break;
                }
                self.db.forget_block(&realm, &block)?;
                self.free(&realm, &block, size, location);
                emptied.extend(location.map(|l| l.pack));
                total = total.saturating_sub(size);
                freed += size;
            }
        }
        let mut kept = std::collections::BTreeSet::new();
        for pack in emptied {
            if !self.db.pack_in_use(pack)? && !self.packs.delete_if_idle(pack, PACK_QUIET) {
                kept.insert(pack);
            }
        }
        if let Ok(mut emptied) = self.emptied.lock() {
            emptied.extend(kept);
        }
        Ok(freed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_cache_defaults_to_an_eighth_of_memory_within_bounds() {
        let meminfo = |gib: u64| format!("MemTotal:       {} kB\nMemFree: 1 kB\n", gib << 20);
        let default = |text: &str| {
            memory_total(text)
                .map(|t| (t / 8).clamp(MIN_MEMORY_BYTES, MAX_MEMORY_BYTES))
                .unwrap()
        };
        assert_eq!(memory_total(&meminfo(8)), Some(8 << 30));
        assert_eq!(default(&meminfo(8)), 1 << 30);
        assert_eq!(default(&meminfo(1)), MIN_MEMORY_BYTES);
        assert_eq!(default(&meminfo(64)), MAX_MEMORY_BYTES);
        assert_eq!(memory_total("MemFree: 1 kB\n"), None);
        assert!((MIN_MEMORY_BYTES..=MAX_MEMORY_BYTES).contains(&default_memory_bytes()));
    }
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
        let db = Arc::new(db);
        let cache = BlockCache::new(dir.path().join("blocks"), db.clone(), 1 << 20, 300);
        let realm = RealmId::generate(&mut OsRng);
        let blocks: Vec<BlockId> = (0..4).map(|_| BlockId::generate(&mut OsRng)).collect();
        cache.write(&realm, &blocks[0], &[0; 100], true).unwrap();
        cache.write(&realm, &blocks[1], &[1; 100], false).unwrap();
        cache.write(&realm, &blocks[2], &[2; 100], false).unwrap();
        db.set_pinned(&realm, &[blocks[2]], true).unwrap();
        cache.write(&realm, &blocks[3], &[3; 100], false).unwrap();
        assert_eq!(cache.evict().unwrap(), 100);
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

    #[test]
    fn blocks_cached_before_packs_are_read_and_evicted_from_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let realm = RealmId::generate(&mut OsRng);
        let block = BlockId::generate(&mut OsRng);
        // A database and a cache as they were before packs: a row without a location, a file.
        {
            let old = rusqlite::Connection::open(dir.path().join("db")).unwrap();
            old.execute_batch(
                "CREATE TABLE blocks (realm BLOB NOT NULL, block BLOB NOT NULL,
                     size INTEGER NOT NULL, dirty INTEGER NOT NULL,
                     pinned INTEGER NOT NULL DEFAULT 0, last_access INTEGER NOT NULL,
                     PRIMARY KEY (realm, block));",
            )
            .unwrap();
            old.execute(
                "INSERT INTO blocks VALUES (?1, ?2, 5, 0, 0, 0)",
                rusqlite::params![realm.as_bytes(), block.as_bytes()],
            )
            .unwrap();
        }
        let name = block.to_string();
        let file = dir
            .path()
            .join("blocks")
            .join(realm.to_string())
            .join(&name[..2])
            .join(&name);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"bytes").unwrap();

        let db = Arc::new(
            LocalDb::open(
                &dir.path().join("db"),
                strongroom_protocol::crypto::secret_key::SecretKey::generate(&mut OsRng),
            )
            .unwrap(),
        );
        let cache = BlockCache::new(dir.path().join("blocks"), db, 1 << 20, 0);
        assert_eq!(cache.read(&realm, &block).unwrap().unwrap(), b"bytes");
        assert_eq!(cache.evict().unwrap(), 5);
        assert!(!file.exists(), "evicted: its file is deleted");
        assert!(cache.read(&realm, &block).unwrap().is_none());
    }
}
