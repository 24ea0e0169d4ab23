//! The device's local database (`HOME/local.sqlite`): manifests as this device knows them (the
//! last validated remote version and the local state), the highest version seen of each vlob
//! (to refuse rollbacks), realm checkpoints and certificates, the block cache index, and small
//! counters. Every payload that says anything about the content is encrypted with the device's
//! local key; ids and version numbers are the only clear values.
//!
//! SQLite in WAL mode with `synchronous=FULL`: a change committed here survives a crash of the
//! process or the machine. Several processes of one device (a `sync --watch` and a `put`) share
//! the database safely.

use std::path::Path;
use std::sync::Mutex;

use rand_core::OsRng;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use strongroom_protocol::crypto::hash::Digest;
use strongroom_protocol::crypto::secret_key::SecretKey;
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::ids::{BlockId, EntryId, RealmId, UserId};
use strongroom_protocol::manifests::{Manifest, ManifestBody};
use strongroom_protocol::time::Timestamp;
use strongroom_protocol::wire::ReceivedCertificate;

use crate::block_cache::Location;
use crate::error::{EngineError, Result};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS entries (
    realm BLOB NOT NULL,
    entry BLOB NOT NULL,
    base_version INTEGER NOT NULL,
    need_sync INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (realm, entry)
);
CREATE INDEX IF NOT EXISTS entries_need_sync ON entries(need_sync);
CREATE TABLE IF NOT EXISTS seen_versions (
    realm BLOB NOT NULL,
    entry BLOB NOT NULL,
    version INTEGER NOT NULL,
    seen_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (realm, entry)
);
CREATE TABLE IF NOT EXISTS realms (
    realm BLOB PRIMARY KEY,
    checkpoint INTEGER NOT NULL DEFAULT 0,
    certificates BLOB
);
CREATE TABLE IF NOT EXISTS blocks (
    realm BLOB NOT NULL,
    block BLOB NOT NULL,
    size INTEGER NOT NULL,
    dirty INTEGER NOT NULL,
    pinned INTEGER NOT NULL DEFAULT 0,
    last_access INTEGER NOT NULL,
    pack INTEGER,
    pack_offset INTEGER,
    PRIMARY KEY (realm, block)
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS undelivered_keys (
    realm BLOB NOT NULL,
    key_index INTEGER NOT NULL,
    sender BLOB NOT NULL,
    reason BLOB NOT NULL,
    PRIMARY KEY (realm, key_index)
);
CREATE TABLE IF NOT EXISTS key_stand_ins (
    realm BLOB NOT NULL,
    entry BLOB NOT NULL,
    version INTEGER NOT NULL,
    key_index INTEGER NOT NULL,
    shown_version INTEGER NOT NULL,
    stand_in BLOB NOT NULL,
    PRIMARY KEY (realm, entry, version)
);
"#;

/// An entry as this device knows it: the last remote version it validated (if any) and its
/// current local content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalEntry {
    /// The last validated remote version.
    pub base: Option<Manifest>,
    /// The local content (equal to the base's unless changed here).
    pub body: ManifestBody,
}

impl Encoded for LocalEntry {
    const TAG: &'static str = "local-entry";
    const VERSION: u8 = 1;
}

impl LocalEntry {
    /// The remote version this entry derives from (0: never synced).
    pub fn base_version(&self) -> u32 {
        self.base.as_ref().map(|b| b.version).unwrap_or(0)
    }

    /// The size of its body's encoding, to size upload batches.
    pub fn encode_len(&self) -> usize {
        rmp_serde::to_vec(&self.body).map(|v| v.len()).unwrap_or(0)
    }

    /// Whether it has changes to upload.
    pub fn need_sync(&self) -> bool {
        self.base.as_ref().is_none_or(|b| b.body != self.body)
    }
}

/// A block known to this device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRecord {
    /// Encrypted size.
    pub size: u64,
    /// Where it is in the disk cache's packs (`None`: a file of its own, as caches written
    /// before packs keep them).
    pub location: Option<Location>,
    /// Written here and not uploaded yet: never evicted.
    pub dirty: bool,
    /// Kept available offline: never evicted.
    pub pinned: bool,
}

/// When a write must be on the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Before the call returns (`synchronous=FULL`): the command line's writes.
    Now,
    /// At once safe from a crash of this process (the write is in the operating system's
    /// cache), safe from a power loss after the next [`LocalDb::sync`]: a mount's writes,
    /// durable at `fsync` as POSIX has it (`synchronous=NORMAL`).
    AtNextSync,
}

/// A key index of a workspace that a member handed this user in a sealed message that does
/// not work (it does not open, or its key fails its certificate's check value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndeliveredKey {
    /// The key index.
    pub index: u32,
    /// The user whose device sealed the message.
    pub sender: UserId,
    /// What is wrong with it.
    pub reason: String,
}

/// A version this device stood in for because this user lacks its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStandIn {
    /// The version stood in for.
    pub version: u32,
    /// Its key index.
    pub key_index: u32,
    /// The version shown instead (0: empty).
    pub shown_version: u32,
    /// The digest of the stand-in manifest ([`KeyStandIn::digest_of`]), to tell it from the
    /// real version once that is read.
    pub digest: Digest,
}

impl KeyStandIn {
    /// The digest a stand-in manifest is recorded by.
    pub fn digest_of(manifest: &Manifest) -> Digest {
        Digest::of(&manifest.encode())
    }
}

/// The local database.
pub struct LocalDb {
    conn: Mutex<Connection>,
    key: SecretKey,
}

fn db_error(e: rusqlite::Error) -> EngineError {
    // A full disk stays recognizable: the mount reports it as such (ENOSPC), not as damage.
    let kind = match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => std::io::ErrorKind::StorageFull,
        _ => std::io::ErrorKind::Other,
    };
    EngineError::io("the local database failed", std::io::Error::new(kind, e))
}

fn fixed16(bytes: Vec<u8>) -> Result<[u8; 16]> {
    bytes
        .try_into()
        .map_err(|_| EngineError::Protocol("a local identifier has the wrong length".into()))
}

fn fixed32(bytes: Vec<u8>) -> Result<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| EngineError::Protocol("a local digest has the wrong length".into()))
}

impl LocalDb {
    /// Opens (creating if needed) the database at `path`; payloads are encrypted with `key`.
    pub fn open(path: &Path, key: SecretKey) -> Result<Self> {
        let conn = Connection::open(path).map_err(db_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(db_error)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_error)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db_error)?;
        conn.execute_batch(SCHEMA).map_err(db_error)?;
        migrate_to_packs(&conn).map_err(db_error)?;
        migrate_seen_at(&conn).map_err(db_error)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Self {
            conn: Mutex::new(conn),
            key,
        })
    }

    fn aad(realm: &RealmId, entry: &EntryId) -> Vec<u8> {
        let mut aad = b"strongroom local entry v1".to_vec();
        aad.extend_from_slice(realm.as_bytes());
        aad.extend_from_slice(entry.as_bytes());
        aad
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| EngineError::Protocol("local database lock poisoned".into()))?;
        f(&mut conn).map_err(db_error)
    }

    /// An entry.
    pub fn entry(&self, realm: &RealmId, entry: &EntryId) -> Result<Option<LocalEntry>> {
        let data: Option<Vec<u8>> = self.with(|c| {
            c.prepare_cached("SELECT data FROM entries WHERE realm = ?1 AND entry = ?2")?
                .query_row(params![realm.as_bytes(), entry.as_bytes()], |r| r.get(0))
                .optional()
        })?;
        data.map(|d| self.decrypt_entry(realm, entry, &d))
            .transpose()
    }

    fn decrypt_entry(&self, realm: &RealmId, entry: &EntryId, data: &[u8]) -> Result<LocalEntry> {
        let plaintext = self
            .key
            .decrypt(data, &Self::aad(realm, entry))
            .map_err(|e| EngineError::CorruptFile {
                path: "local.sqlite".into(),
                reason: e.to_string(),
            })?;
        LocalEntry::decode(&plaintext).map_err(|e| EngineError::corrupt("local.sqlite", e))
    }

    /// Stores entries in one transaction (all or none).
    pub fn put_entries(&self, realm: &RealmId, entries: &[(EntryId, LocalEntry)]) -> Result<()> {
        self.put_entries_with(realm, entries, Durability::Now)
    }

    /// Makes every write so far durable: a write of [`Durability::AtNextSync`] is committed to
    /// the write-ahead log, which SQLite syncs only at checkpoints in that mode; syncing the log
    /// makes every commit in it durable.
    pub fn sync(&self) -> Result<()> {
        let Some(path) = self.with(|c| Ok(c.path().map(|p| format!("{p}-wal"))))? else {
            return Ok(());
        };
        match std::fs::File::open(&path) {
            Ok(wal) => wal
                .sync_data()
                .map_err(|e| EngineError::io("cannot sync the local database", e)),
            // No log: everything is checkpointed into the database, which was synced.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(EngineError::io("cannot sync the local database", e)),
        }
    }

    /// Runs `f` in one transaction, committed with `durability`.
    fn transaction(
        &self,
        durability: Durability,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>,
    ) -> Result<()> {
        self.with(|c| {
            let deferred = durability == Durability::AtNextSync;
            // Cached statements: parsing SQL is a large part of a small change's cost.
            if deferred {
                c.prepare_cached("PRAGMA synchronous = NORMAL")?
                    .execute([])?;
            }
            let result = c.transaction().and_then(|tx| {
                f(&tx)?;
                tx.commit()
            });
            if deferred {
                c.prepare_cached("PRAGMA synchronous = FULL")?.execute([])?;
            }
            result
        })
    }

    /// [`LocalDb::put_entries`], committed with `durability`.
    pub fn put_entries_with(
        &self,
        realm: &RealmId,
        entries: &[(EntryId, LocalEntry)],
        durability: Durability,
    ) -> Result<()> {
        let rows: Vec<(EntryId, u32, bool, Vec<u8>)> = entries
            .iter()
            .map(|(id, e)| {
                let data = self
                    .key
                    .encrypt(&mut OsRng, &e.encode(), &Self::aad(realm, id));
                (*id, e.base_version(), e.need_sync(), data)
            })
            .collect();
        self.transaction(durability, |tx| {
            for (id, base_version, need_sync, data) in &rows {
                tx.prepare_cached("INSERT INTO entries (realm, entry, base_version, need_sync, data) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (realm, entry) DO UPDATE SET base_version = ?3, need_sync = ?4, data = ?5")?.execute(
                    params![realm.as_bytes(), id.as_bytes(), base_version, need_sync, data],
                )?;
            }
            Ok(())
        })
    }

    /// Removes an entry (after it was deleted from its folder and the folder synced).
    pub fn remove_entry(&self, realm: &RealmId, entry: &EntryId) -> Result<()> {
        self.with(|c| {
            c.prepare_cached("DELETE FROM entries WHERE realm = ?1 AND entry = ?2")?
                .execute(params![realm.as_bytes(), entry.as_bytes()])
                .map(drop)
        })
    }

    /// Whether this device holds any entry of a realm.
    pub fn holds_entries(&self, realm: &RealmId) -> Result<bool> {
        self.with(|c| {
            c.prepare_cached("SELECT 1 FROM entries WHERE realm = ?1 LIMIT 1")?
                .query_row(params![realm.as_bytes()], |_| Ok(()))
                .optional()
        })
        .map(|found| found.is_some())
    }

    /// The entries of a realm with changes to upload.
    pub fn entries_to_sync(&self, realm: &RealmId) -> Result<Vec<(EntryId, LocalEntry)>> {
        let rows: Vec<(Vec<u8>, Vec<u8>)> = self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT entry, data FROM entries WHERE realm = ?1 AND need_sync = 1",
            )?;
            let rows = stmt.query_map(params![realm.as_bytes()], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })?;
        rows.into_iter()
            .map(|(id, data)| {
                let id = EntryId::from_bytes(fixed16(id)?);
                Ok((id, self.decrypt_entry(realm, &id, &data)?))
            })
            .collect()
    }

    /// How many entries of every realm wait for upload.
    pub fn pending_count(&self) -> Result<u64> {
        self.with(|c| {
            c.prepare_cached("SELECT COUNT(*) FROM entries WHERE need_sync = 1")?
                .query_row([], |r| r.get::<_, i64>(0))
        })
        .map(|n| n as u64)
    }

    /// The highest version of a vlob this device has validated.
    pub fn seen_version(&self, realm: &RealmId, entry: &EntryId) -> Result<u32> {
        Ok(self.seen(realm, entry)?.map_or(0, |(version, _)| version))
    }

    /// The highest version of a vlob this device has validated, and the last time (this
    /// device's clock) it knew that version to be the latest.
    pub fn seen(&self, realm: &RealmId, entry: &EntryId) -> Result<Option<(u32, Timestamp)>> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT version, seen_at FROM seen_versions WHERE realm = ?1 AND entry = ?2",
            )?
            .query_row(params![realm.as_bytes(), entry.as_bytes()], |r| {
                Ok((r.get(0)?, Timestamp::from_micros(r.get(1)?)))
            })
            .optional()
        })
    }

    /// Records validated versions, each the latest at `now`, in one transaction (keeps the
    /// highest of each, and when it was last known to be the latest).
    pub fn see_versions(
        &self,
        realm: &RealmId,
        versions: &[(EntryId, u32)],
        now: Timestamp,
    ) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            for (entry, version) in versions {
                tx.prepare_cached(SEE_VERSION)?.execute(params![
                    realm.as_bytes(),
                    entry.as_bytes(),
                    version,
                    now.as_micros()
                ])?;
            }
            tx.commit()
        })
    }

    /// Records a validated version, the latest at `now` (keeps the highest).
    pub fn see_version(
        &self,
        realm: &RealmId,
        entry: &EntryId,
        version: u32,
        now: Timestamp,
    ) -> Result<()> {
        self.see_versions(realm, &[(*entry, version)], now)
    }

    /// A realm's last processed checkpoint.
    pub fn checkpoint(&self, realm: &RealmId) -> Result<u64> {
        self.with(|c| {
            c.prepare_cached("SELECT checkpoint FROM realms WHERE realm = ?1")?
                .query_row(params![realm.as_bytes()], |r| r.get::<_, i64>(0))
                .optional()
        })
        .map(|v| v.unwrap_or(0) as u64)
    }

    /// Records a realm's processed checkpoint.
    pub fn set_checkpoint(&self, realm: &RealmId, checkpoint: u64) -> Result<()> {
        self.with(|c| {
            c.prepare_cached(
                "INSERT INTO realms (realm, checkpoint) VALUES (?1, ?2)
                 ON CONFLICT (realm) DO UPDATE SET checkpoint = max(checkpoint, ?2)",
            )?
            .execute(params![realm.as_bytes(), checkpoint as i64])
            .map(drop)
        })
    }

    /// A realm's validated certificates, as stored, with when the server received each (for
    /// certificates stored before reception times were kept, their own dates).
    pub fn realm_certificates(&self, realm: &RealmId) -> Result<Vec<ReceivedCertificate>> {
        let data: Option<Vec<u8>> = self.with(|c| {
            c.prepare_cached("SELECT certificates FROM realms WHERE realm = ?1")?
                .query_row(params![realm.as_bytes()], |r| r.get(0))
                .optional()
                .map(Option::flatten)
        })?;
        let Some(data) = data else {
            return Ok(Vec::new());
        };
        let plaintext =
            self.key
                .decrypt(&data, realm.as_bytes())
                .map_err(|e| EngineError::CorruptFile {
                    path: "local.sqlite".into(),
                    reason: e.to_string(),
                })?;
        let list: CertificateList = CertificateList::decode(&plaintext)
            .map_err(|e| EngineError::corrupt("local.sqlite", e))?;
        let corrupt = |reason: String| EngineError::CorruptFile {
            path: "local.sqlite".into(),
            reason,
        };
        let received = if list.received.len() == list.certificates.len() {
            list.received
        } else if list.received.is_empty() {
            list.certificates
                .iter()
                .map(|bytes| realm_certificate_date(bytes).map_err(corrupt))
                .collect::<Result<_>>()?
        } else {
            return Err(corrupt(
                "a workspace's reception times do not match its certificates".into(),
            ));
        };
        Ok(list
            .certificates
            .into_iter()
            .zip(received)
            .map(|(certificate, received)| ReceivedCertificate {
                certificate,
                received,
            })
            .collect())
    }

    /// Replaces a realm's stored certificates.
    pub fn set_realm_certificates(
        &self,
        realm: &RealmId,
        certificates: &[ReceivedCertificate],
    ) -> Result<()> {
        let list = CertificateList {
            certificates: certificates.iter().map(|c| c.certificate.clone()).collect(),
            received: certificates.iter().map(|c| c.received).collect(),
        };
        let data = self
            .key
            .encrypt(&mut OsRng, &list.encode(), realm.as_bytes());
        self.with(|c| {
            c.prepare_cached(
                "INSERT INTO realms (realm, certificates) VALUES (?1, ?2)
                 ON CONFLICT (realm) DO UPDATE SET certificates = ?2",
            )?
            .execute(params![realm.as_bytes(), data])
            .map(drop)
        })
    }

    /// A named counter (e.g. the next message index).
    pub fn counter(&self, name: &str) -> Result<u64> {
        self.with(|c| {
            c.prepare_cached("SELECT value FROM counters WHERE name = ?1")?
                .query_row(params![name], |r| r.get::<_, i64>(0))
                .optional()
        })
        .map(|v| v.unwrap_or(0) as u64)
    }

    /// Sets a named counter.
    pub fn set_counter(&self, name: &str, value: u64) -> Result<()> {
        self.with(|c| {
            c.prepare_cached("INSERT INTO counters (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = ?2")?.execute(
                params![name, value as i64],
            )
            .map(drop)
        })
    }

    /// Records that `sender` handed this user key `index` of `realm` in a message that does
    /// not work (the first such message of an index is kept).
    pub fn record_undelivered_key(&self, realm: &RealmId, key: &UndeliveredKey) -> Result<()> {
        let mut aad = b"strongroom undelivered key v1".to_vec();
        aad.extend_from_slice(realm.as_bytes());
        aad.extend_from_slice(&key.index.to_be_bytes());
        let reason = self.key.encrypt(&mut OsRng, key.reason.as_bytes(), &aad);
        self.with(|c| {
            c.prepare_cached(
                "INSERT OR IGNORE INTO undelivered_keys (realm, key_index, sender, reason) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                realm.as_bytes(),
                key.index,
                key.sender.as_bytes(),
                reason
            ])
            .map(drop)
        })
    }

    /// The key indexes of `realm` handed to this user in messages that do not work.
    pub fn undelivered_keys(&self, realm: &RealmId) -> Result<Vec<UndeliveredKey>> {
        let rows: Vec<(u32, Vec<u8>, Vec<u8>)> = self.with(|c| {
            c.prepare_cached(
                "SELECT key_index, sender, reason FROM undelivered_keys WHERE realm = ?1 ORDER BY key_index",
            )?
            .query_map(params![realm.as_bytes()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect()
        })?;
        rows.into_iter()
            .map(|(index, sender, reason)| {
                let mut aad = b"strongroom undelivered key v1".to_vec();
                aad.extend_from_slice(realm.as_bytes());
                aad.extend_from_slice(&index.to_be_bytes());
                let reason =
                    self.key
                        .decrypt(&reason, &aad)
                        .map_err(|e| EngineError::CorruptFile {
                            path: "local.sqlite".into(),
                            reason: e.to_string(),
                        })?;
                Ok(UndeliveredKey {
                    index,
                    sender: UserId::from_bytes(fixed16(sender)?),
                    reason: String::from_utf8_lossy(&reason).into_owned(),
                })
            })
            .collect()
    }

    /// Records that version `version` of `entry`, under key `key_index` which this user lacks,
    /// is shown as version `shown_version` (0: empty), as the manifest whose digest is
    /// `stand_in`: this device must not write over it. Kept after the key arrives, so that a
    /// stand-in still held somewhere on this device (a running mount's cache) is recognized.
    pub fn record_key_stand_in(
        &self,
        realm: &RealmId,
        entry: &EntryId,
        stand_in: &KeyStandIn,
    ) -> Result<()> {
        self.with(|c| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO key_stand_ins (realm, entry, version, key_index, shown_version, stand_in) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                realm.as_bytes(),
                entry.as_bytes(),
                stand_in.version,
                stand_in.key_index,
                stand_in.shown_version,
                stand_in.digest.as_bytes(),
            ])
            .map(drop)
        })
    }

    /// The versions of `realm` stood in for under key `key_index`, by entry.
    pub fn key_stand_ins(
        &self,
        realm: &RealmId,
        key_index: u32,
    ) -> Result<Vec<(EntryId, KeyStandIn)>> {
        let rows: Vec<(Vec<u8>, u32, u32, Vec<u8>)> = self.with(|c| {
            c.prepare_cached(
                "SELECT entry, version, shown_version, stand_in FROM key_stand_ins WHERE realm = ?1 AND key_index = ?2",
            )?
            .query_map(params![realm.as_bytes(), key_index], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect()
        })?;
        rows.into_iter()
            .map(|(entry, version, shown_version, digest)| {
                Ok((
                    EntryId::from_bytes(fixed16(entry)?),
                    KeyStandIn {
                        version,
                        key_index,
                        shown_version,
                        digest: Digest::from_bytes(fixed32(digest)?),
                    },
                ))
            })
            .collect()
    }

    /// Forgets that key `key_index` of `realm` was not delivered (the key is held now); the
    /// stand-ins stay recorded.
    pub fn forget_undelivered_key(&self, realm: &RealmId, key_index: u32) -> Result<()> {
        self.with(|c| {
            c.prepare_cached("DELETE FROM undelivered_keys WHERE realm = ?1 AND key_index = ?2")?
                .execute(params![realm.as_bytes(), key_index])
                .map(drop)
        })
    }

    /// The stand-in recorded for version `version` of `entry`, if this device stood in for it
    /// because this user lacked its key.
    pub fn key_stand_in(
        &self,
        realm: &RealmId,
        entry: &EntryId,
        version: u32,
    ) -> Result<Option<KeyStandIn>> {
        let row: Option<(u32, u32, Vec<u8>)> = self.with(|c| {
            c.prepare_cached(
                "SELECT key_index, shown_version, stand_in FROM key_stand_ins WHERE realm = ?1 AND entry = ?2 AND version = ?3",
            )?
            .query_row(params![realm.as_bytes(), entry.as_bytes(), version], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
        })?;
        row.map(|(key_index, shown_version, digest)| {
            Ok(KeyStandIn {
                version,
                key_index,
                shown_version,
                digest: Digest::from_bytes(fixed32(digest)?),
            })
        })
        .transpose()
    }

    /// Records blocks written to the disk cache (size and location), in one transaction
    /// committed with `durability`.
    pub fn put_blocks(
        &self,
        realm: &RealmId,
        blocks: &[(BlockId, u64, Location)],
        dirty: bool,
        durability: Durability,
    ) -> Result<()> {
        let now = crate::clock::now().as_micros();
        self.transaction(durability, |tx| {
            for (block, size, location) in blocks {
                tx.prepare_cached(
                    "INSERT INTO blocks (realm, block, size, dirty, last_access, pack, pack_offset)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (realm, block) DO UPDATE SET dirty = max(dirty, ?4),
                         last_access = ?5, size = ?3, pack = ?6, pack_offset = ?7",
                )?
                .execute(params![
                    realm.as_bytes(),
                    block.as_bytes(),
                    *size as i64,
                    dirty,
                    now,
                    location.pack as i64,
                    location.offset as i64
                ])?;
            }
            Ok(())
        })
    }

    /// A block's record.
    pub fn block(&self, realm: &RealmId, block: &BlockId) -> Result<Option<BlockRecord>> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT size, dirty, pinned, pack, pack_offset FROM blocks WHERE realm = ?1 AND block = ?2",
            )?
            .query_row(params![realm.as_bytes(), block.as_bytes()], |r| {
                Ok(BlockRecord {
                    size: r.get::<_, i64>(0)? as u64,
                    dirty: r.get(1)?,
                    pinned: r.get(2)?,
                    location: location(r.get(3)?, r.get(4)?),
                })
            })
            .optional()
        })
    }

    /// Marks blocks uploaded, in one transaction.
    pub fn blocks_uploaded(&self, realm: &RealmId, blocks: &[BlockId]) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            for block in blocks {
                tx.prepare_cached("UPDATE blocks SET dirty = 0 WHERE realm = ?1 AND block = ?2")?
                    .execute(params![realm.as_bytes(), block.as_bytes()])?;
            }
            tx.commit()
        })
    }

    /// Pins or unpins blocks.
    pub fn set_pinned(&self, realm: &RealmId, blocks: &[BlockId], pinned: bool) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            for block in blocks {
                tx.prepare_cached("UPDATE blocks SET pinned = ?3 WHERE realm = ?1 AND block = ?2")?
                    .execute(params![realm.as_bytes(), block.as_bytes(), pinned])?;
            }
            tx.commit()
        })
    }

    /// Cached blocks that may be evicted (clean and not pinned), the least recently used first:
    /// realm, block, size and location.
    #[allow(clippy::type_complexity)]
    pub fn evictable_blocks(
        &self,
        limit: usize,
    ) -> Result<Vec<(RealmId, BlockId, u64, Option<Location>)>> {
        type Row = (Vec<u8>, Vec<u8>, i64, Option<i64>, Option<i64>);
        let rows: Vec<Row> = self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT realm, block, size, pack, pack_offset FROM blocks WHERE dirty = 0 AND pinned = 0 ORDER BY last_access LIMIT ?1",
            )?;
            let rows = stmt.query_map(params![limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?;
            rows.collect()
        })?;
        rows.into_iter()
            .map(|(r, b, s, pack, offset)| {
                Ok((
                    RealmId::from_bytes(fixed16(r)?),
                    BlockId::from_bytes(fixed16(b)?),
                    s as u64,
                    location(pack, offset),
                ))
            })
            .collect()
    }

    /// Whether any recorded block is in `pack`.
    pub fn pack_in_use(&self, pack: u64) -> Result<bool> {
        self.with(|c| {
            c.prepare_cached("SELECT 1 FROM blocks WHERE pack = ?1 LIMIT 1")?
                .query_row(params![pack as i64], |_| Ok(()))
                .optional()
                .map(|found| found.is_some())
        })
    }

    /// Bytes of all cached blocks.
    pub fn cached_bytes(&self) -> Result<u64> {
        self.with(|c| {
            c.prepare_cached("SELECT COALESCE(SUM(size), 0) FROM blocks")?
                .query_row([], |r| r.get::<_, i64>(0))
        })
        .map(|n| n as u64)
    }

    /// Forgets an evicted block.
    pub fn forget_block(&self, realm: &RealmId, block: &BlockId) -> Result<()> {
        self.with(|c| {
            c.prepare_cached(
                "DELETE FROM blocks WHERE realm = ?1 AND block = ?2 AND dirty = 0 AND pinned = 0",
            )?
            .execute(params![realm.as_bytes(), block.as_bytes()])
            .map(drop)
        })
    }
}

fn location(pack: Option<i64>, offset: Option<i64>) -> Option<Location> {
    Some(Location {
        pack: pack? as u64,
        offset: offset? as u64,
    })
}

/// Adds the pack columns to a database whose block cache predates packs (its blocks stay in
/// their files, readable and evicted as before).
/// Records a seen version: the highest is kept, with the time it was last known to be the
/// latest (a lower one changes nothing).
const SEE_VERSION: &str = "INSERT INTO seen_versions (realm, entry, version, seen_at)
     VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (realm, entry) DO UPDATE SET
         seen_at = CASE WHEN excluded.version >= version THEN excluded.seen_at ELSE seen_at END,
         version = max(version, excluded.version)";

/// Databases from before `seen_at` get it (0: "long ago", which constrains nothing).
fn migrate_seen_at(conn: &Connection) -> rusqlite::Result<()> {
    let has = conn
        .prepare("SELECT 1 FROM pragma_table_info('seen_versions') WHERE name = 'seen_at'")?
        .exists([])?;
    if !has {
        conn.execute_batch(
            "ALTER TABLE seen_versions ADD COLUMN seen_at INTEGER NOT NULL DEFAULT 0;",
        )?;
    }
    Ok(())
}

fn migrate_to_packs(conn: &Connection) -> rusqlite::Result<()> {
    let has_packs = conn
        .prepare("SELECT 1 FROM pragma_table_info('blocks') WHERE name = 'pack'")?
        .exists([])?;
    if !has_packs {
        conn.execute_batch(
            "ALTER TABLE blocks ADD COLUMN pack INTEGER;
             ALTER TABLE blocks ADD COLUMN pack_offset INTEGER;",
        )?;
    }
    conn.execute_batch("CREATE INDEX IF NOT EXISTS blocks_pack ON blocks(pack);")
}

/// A realm's certificates as stored locally, with when the server received each (absent from
/// lists written before reception times were kept).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct CertificateList {
    certificates: Vec<serde_bytes::ByteBuf>,
    #[serde(default)]
    received: Vec<strongroom_protocol::time::Timestamp>,
}

/// The date a signed realm certificate gives itself.
fn realm_certificate_date(
    bytes: &[u8],
) -> std::result::Result<strongroom_protocol::time::Timestamp, String> {
    use strongroom_protocol::certificates::SignedCertificate;
    use strongroom_protocol::workspace::RealmCertificate;
    let signed = SignedCertificate::decode(bytes).map_err(|e| e.to_string())?;
    match RealmCertificate::decode(&signed.content).map_err(|e| e.to_string())? {
        RealmCertificate::Role(c) => Ok(c.timestamp),
        RealmCertificate::KeyRotation(c) => Ok(c.timestamp),
    }
}

impl Encoded for CertificateList {
    const TAG: &'static str = "local-realm-certificates";
    const VERSION: u8 = 1;
}
