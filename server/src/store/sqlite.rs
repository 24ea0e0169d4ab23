//! The embedded metadata store: one SQLite database in WAL mode under the data directory.
//!
//! Calls run on tokio's blocking pool behind one connection; every trait method is one
//! transaction.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use strongroom_protocol::certificates::{Certificate, UserProfile};
use strongroom_protocol::crypto::signing::VerifyKey;
use strongroom_protocol::ids::{
    BlockId, DeviceId, Email, EntryId, OrganizationId, RealmId, TokenId, UserId,
};
use strongroom_protocol::invite::InviteSide;
use strongroom_protocol::time::Timestamp;
use strongroom_protocol::wire::{
    AbortReason, AttemptAbort, ErrorCode, IncomingMessage, InvitationKind, InvitationStatus,
    MAX_PENDING_DEVICE_INVITATIONS_PER_USER, MAX_PENDING_INVITATIONS, VlobChange, VlobVersion,
    VlobVersionInfo,
};

use super::*;
use crate::error::ApiError;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS organizations (
    name TEXT PRIMARY KEY,
    bootstrap_token_id BLOB NOT NULL,
    root_verify_key BLOB,
    created_on INTEGER NOT NULL,
    bootstrapped_on INTEGER
);
CREATE TABLE IF NOT EXISTS certificates (
    org TEXT NOT NULL REFERENCES organizations(name),
    idx INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (org, idx)
);

CREATE TABLE IF NOT EXISTS users (
    org TEXT NOT NULL,
    user_id BLOB NOT NULL,
    email TEXT NOT NULL,
    human_name TEXT NOT NULL,
    profile TEXT NOT NULL,
    revoked_on INTEGER,
    PRIMARY KEY (org, user_id)
);
-- At most one non-revoked user per email, whatever the application code does.
CREATE UNIQUE INDEX IF NOT EXISTS users_active_email ON users(org, email) WHERE revoked_on IS NULL;
CREATE TABLE IF NOT EXISTS devices (
    org TEXT NOT NULL,
    device_id BLOB NOT NULL,
    user_id BLOB NOT NULL,
    verify_key BLOB NOT NULL,
    PRIMARY KEY (org, device_id)
);
CREATE TABLE IF NOT EXISTS invitations (
    org TEXT NOT NULL,
    id BLOB NOT NULL,
    kind BLOB NOT NULL,
    email TEXT NOT NULL,
    greeter_user_id BLOB NOT NULL,
    greeter_human_name TEXT NOT NULL,
    created_on INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    aborted_by TEXT,
    aborted_reason TEXT,
    PRIMARY KEY (org, id)
);
CREATE TABLE IF NOT EXISTS realms (
    org TEXT NOT NULL,
    realm BLOB NOT NULL,
    checkpoint INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (org, realm)
);
CREATE TABLE IF NOT EXISTS realm_certificates (
    org TEXT NOT NULL,
    realm BLOB NOT NULL,
    idx INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (org, realm, idx)
);
CREATE TABLE IF NOT EXISTS vlobs (
    org TEXT NOT NULL,
    realm BLOB NOT NULL,
    vlob BLOB NOT NULL,
    version INTEGER NOT NULL,
    key_index INTEGER NOT NULL,
    author BLOB NOT NULL,
    timestamp INTEGER NOT NULL,
    checkpoint INTEGER NOT NULL,
    blob BLOB NOT NULL,
    PRIMARY KEY (org, realm, vlob, version)
);
CREATE INDEX IF NOT EXISTS vlobs_by_checkpoint ON vlobs(org, realm, checkpoint);
CREATE TABLE IF NOT EXISTS messages (
    org TEXT NOT NULL,
    recipient BLOB NOT NULL,
    idx INTEGER NOT NULL,
    sender BLOB NOT NULL,
    sealed BLOB NOT NULL,
    PRIMARY KEY (org, recipient, idx)
);
CREATE TABLE IF NOT EXISTS blocks (
    org TEXT NOT NULL,
    realm BLOB NOT NULL,
    block BLOB NOT NULL,
    size INTEGER NOT NULL,
    author BLOB NOT NULL,
    PRIMARY KEY (org, realm, block)
);
CREATE TABLE IF NOT EXISTS invitation_steps (
    org TEXT NOT NULL,
    id BLOB NOT NULL,
    attempt INTEGER NOT NULL,
    side TEXT NOT NULL,
    seq INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (org, id, attempt, side, seq)
);
"#;

/// The replay cache: signed requests seen within the clock window, by digest.
const REPLAY_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS seen_requests (
    digest BLOB PRIMARY KEY,
    expires INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_requests_by_expiry ON seen_requests(expires);
"#;

/// Columns added after the first release, with their type: added to older databases when they
/// open (see [`migrate`]).
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("certificates", "received", "INTEGER"),
    ("realm_certificates", "received", "INTEGER"),
    ("vlobs", "received", "INTEGER"),
    ("messages", "received", "INTEGER"),
    ("realms", "personal", "BLOB"),
    ("invitations", "expires_on", "INTEGER"),
    ("organizations", "quota_storage_bytes", "INTEGER"),
    ("organizations", "quota_workspaces", "INTEGER"),
    ("organizations", "quota_devices", "INTEGER"),
    (
        "organizations",
        "stored_bytes",
        "INTEGER NOT NULL DEFAULT 0",
    ),
];

/// How long invitations made before expiry dates existed last (seven days from their creation).
const LEGACY_INVITATION_MICROS: i64 = 7 * 24 * 3600 * 1_000_000;

/// Brings an older database to the current schema: adds the missing columns and fills them
/// (reception times from the certificates' own dates, expiry dates, personal realm
/// reservations, stored bytes).
fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let tx = conn.transaction()?;
    let mut added = Vec::new();
    for (table, column, kind) in ADDED_COLUMNS {
        let exists: bool = tx
            .prepare(&format!(
                "SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?1"
            ))?
            .exists(params![column])?;
        if !exists {
            tx.execute(
                &format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"),
                [],
            )?;
            added.push(*column);
        }
    }
    // Certificates stored before reception times were kept: their own date stands in.
    for table in ["certificates", "realm_certificates"] {
        let rows: Vec<(i64, Vec<u8>)> = tx
            .prepare(&format!(
                "SELECT rowid, bytes FROM {table} WHERE received IS NULL"
            ))?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (rowid, bytes) in rows {
            let authored = certificate_date(&bytes)?;
            tx.execute(
                &format!("UPDATE {table} SET received = ?2 WHERE rowid = ?1"),
                params![rowid, authored.as_micros()],
            )?;
        }
    }
    tx.execute(
        "UPDATE vlobs SET received = timestamp WHERE received IS NULL",
        [],
    )?;
    // A message's date is sealed: messages from before cannot be dated, and clients refuse them.
    tx.execute(
        "UPDATE messages SET received = 0 WHERE received IS NULL",
        [],
    )?;
    tx.execute(
        "UPDATE invitations SET expires_on = created_on + ?1 WHERE expires_on IS NULL",
        params![LEGACY_INVITATION_MICROS],
    )?;
    let users: Vec<(String, Vec<u8>)> = tx
        .prepare("SELECT org, user_id FROM users")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (org, user) in users {
        reserve_personal_realm(&tx, &org, &UserId::from_bytes(fixed(user)?))?;
    }
    if added.contains(&"stored_bytes") {
        tx.execute(
            "UPDATE organizations SET stored_bytes =
                 COALESCE((SELECT SUM(size) FROM blocks WHERE blocks.org = organizations.name), 0)
               + COALESCE((SELECT SUM(length(blob)) FROM vlobs WHERE vlobs.org = organizations.name), 0)
               + COALESCE((SELECT SUM(length(bytes)) FROM realm_certificates c WHERE c.org = organizations.name), 0)
               + COALESCE((SELECT SUM(length(sealed)) FROM messages m WHERE m.org = organizations.name), 0)",
            [],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// The date a signed certificate (identity or realm) gives itself.
fn certificate_date(bytes: &[u8]) -> StoreResult<Timestamp> {
    use strongroom_protocol::certificates::SignedCertificate;
    use strongroom_protocol::encoding::Encoded;
    use strongroom_protocol::workspace::RealmCertificate;
    let signed = SignedCertificate::decode(bytes).map_err(backend)?;
    if let Ok(certificate) = signed.unverified() {
        return Ok(certificate.timestamp());
    }
    match RealmCertificate::decode(&signed.content).map_err(backend)? {
        RealmCertificate::Role(c) => Ok(c.timestamp),
        RealmCertificate::KeyRotation(c) => Ok(c.timestamp),
    }
}

/// Reserves `user`'s personal realm id (their workspace list) so that no workspace can take it.
fn reserve_personal_realm(tx: &Transaction<'_>, org: &str, user: &UserId) -> StoreResult<()> {
    let realm = RealmId::of_user(user);
    tx.execute(
        "INSERT INTO realms (org, realm, personal) VALUES (?1, ?2, ?3)
         ON CONFLICT (org, realm) DO UPDATE SET personal = ?3
         WHERE NOT EXISTS (SELECT 1 FROM realm_certificates c WHERE c.org = ?1 AND c.realm = ?2)",
        params![org, realm.as_bytes(), user.as_bytes()],
    )?;
    Ok(())
}

/// An organization's quota columns (storage, workspaces, devices) and its bytes stored.
type QuotaRow = (Option<i64>, Option<i64>, Option<i64>, i64);

/// An organization's quotas and what it stores, inside a transaction.
fn quotas_of(tx: &Transaction<'_>, org: &str) -> StoreResult<(Quotas, u64)> {
    let row: Option<QuotaRow> = tx
        .query_row(
            "SELECT quota_storage_bytes, quota_workspaces, quota_devices, stored_bytes
             FROM organizations WHERE name = ?1",
            params![org],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let (storage, workspaces, devices, stored) =
        row.ok_or_else(|| StoreError::Api(ApiError::unknown_organization(org)))?;
    let unsigned = |v: Option<i64>| v.map(|v| v.max(0) as u64);
    Ok((
        Quotas {
            storage_bytes: unsigned(storage),
            workspaces: unsigned(workspaces),
            devices: unsigned(devices),
        },
        stored.max(0) as u64,
    ))
}

fn quota_exceeded(message: String) -> StoreError {
    refuse(ErrorCode::QuotaExceeded, message)
}

/// Refuses one more of what `count` counts (one number, for the organization `?1`) when the
/// organization has `limit` of them already.
fn check_count_quota(
    tx: &Transaction<'_>,
    org: &str,
    limit: Option<u64>,
    count: &str,
    what: &str,
) -> StoreResult<()> {
    let Some(limit) = limit else {
        return Ok(());
    };
    let current: i64 = tx.query_row(count, params![org], |r| r.get(0))?;
    if current.max(0) as u64 >= limit {
        return Err(quota_exceeded(format!(
            "the organization has its quota of {limit} {what} or ask the server administrator for more"
        )));
    }
    Ok(())
}

/// Refuses `size` more bytes if they would exceed the storage quota.
fn check_storage_room(quotas: &Quotas, stored: u64, size: u64) -> StoreResult<()> {
    match quotas.storage_bytes {
        Some(limit) if stored.saturating_add(size) > limit => Err(quota_exceeded(format!(
            "the organization's storage quota of {limit} bytes is reached ({stored} bytes stored); ask the server administrator for more"
        ))),
        _ => Ok(()),
    }
}

/// Counts `size` more bytes against the storage quota, refusing what would exceed it.
fn add_stored_bytes(tx: &Transaction<'_>, org: &str, size: u64) -> StoreResult<()> {
    let (quotas, stored) = quotas_of(tx, org)?;
    check_storage_room(&quotas, stored, size)?;
    tx.execute(
        "UPDATE organizations SET stored_bytes = stored_bytes + ?2 WHERE name = ?1",
        params![org, clamp(size)],
    )?;
    Ok(())
}

/// How often (in remembered requests) the expired ones are deleted.
const PRUNE_EVERY: u64 = 1024;

/// SQLite metadata store.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// The replay cache, a database of its own (`DATA/replay.sqlite`): one row per signed
    /// request, committed without waiting for the disk (`synchronous=NORMAL`: a crash of the
    /// machine may forget the last few, never corrupts), so that remembering a request costs
    /// no `fsync` and never contends with the metadata's transactions.
    replays: Arc<Mutex<Connection>>,
    remembered: Arc<std::sync::atomic::AtomicU64>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        backend(e)
    }
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> StoreError {
    StoreError::Api(ApiError::new(code, message))
}

/// A two-way mapping between an enum and the text stored for it.
macro_rules! stored_as_text {
    ($to:ident, $from:ident, $ty:ty, $what:literal, { $($variant:path => $text:literal),+ $(,)? }) => {
        fn $to(value: $ty) -> &'static str {
            match value {
                $($variant => $text),+
            }
        }

        fn $from(text: &str) -> StoreResult<$ty> {
            match text {
                $($text => Ok($variant),)+
                other => Err(backend(format!(concat!("unknown ", $what, " {:?}"), other))),
            }
        }
    };
}

stored_as_text!(side_text, side_from, InviteSide, "side", {
    InviteSide::Greeter => "greeter",
    InviteSide::Claimer => "claimer",
});
stored_as_text!(reason_text, reason_from, AbortReason, "abort reason", {
    AbortReason::WrongCode => "wrong-code",
    AbortReason::ProtocolError => "protocol-error",
    AbortReason::Interrupted => "interrupted",
});
stored_as_text!(status_text, status_from, InvitationStatus, "invitation status", {
    InvitationStatus::Pending => "pending",
    InvitationStatus::Completed => "completed",
    InvitationStatus::Cancelled => "cancelled",
});
stored_as_text!(profile_text, profile_from, UserProfile, "profile", {
    UserProfile::Admin => "ADMIN",
    UserProfile::Standard => "STANDARD",
});

/// A client-supplied index as SQLite's signed integer, saturating (a huge `from` means "none").
fn clamp(value: u64) -> i64 {
    value.min(i64::MAX as u64) as i64
}

fn fixed<const N: usize>(bytes: Vec<u8>) -> StoreResult<[u8; N]> {
    bytes
        .try_into()
        .map_err(|_| backend("stored identifier of the wrong length"))
}

fn verify_key(bytes: Vec<u8>) -> StoreResult<VerifyKey> {
    VerifyKey::from_bytes(&fixed(bytes)?).map_err(backend)
}

fn token_id(bytes: Vec<u8>) -> StoreResult<TokenId> {
    let hex = data_encoding::HEXLOWER.encode(&bytes);
    hex.parse().map_err(backend)
}

/// The invitation must still be pending for anything but reading.
pub(crate) fn ensure_pending(status: InvitationStatus) -> Result<(), ApiError> {
    match status {
        InvitationStatus::Pending => Ok(()),
        InvitationStatus::Completed => Err(ApiError::new(
            ErrorCode::InvitationAlreadyUsed,
            "this invitation was already used",
        )),
        InvitationStatus::Cancelled => Err(ApiError::new(
            ErrorCode::InvitationCancelled,
            "this invitation was cancelled",
        )),
    }
}

fn unknown_invitation() -> StoreError {
    refuse(
        ErrorCode::UnknownInvitation,
        "no such invitation in this organization",
    )
}

impl SqliteStore {
    /// Opens (creating if needed) `DATA/metadata.sqlite`.
    pub fn open(data_dir: &Path) -> StoreResult<Self> {
        let path = data_dir.join("metadata.sqlite");
        let mut conn = Connection::open(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA)?;
        migrate(&mut conn)?;
        let replays = Connection::open(data_dir.join("replay.sqlite"))?;
        replays.pragma_update(None, "journal_mode", "WAL")?;
        replays.pragma_update(None, "synchronous", "NORMAL")?;
        replays.busy_timeout(std::time::Duration::from_secs(10))?;
        replays.execute_batch(REPLAY_SCHEMA)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            replays: Arc::new(Mutex::new(replays)),
            remembered: Default::default(),
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().map_err(|_| backend("store lock poisoned"))?;
            // Immediate: a transaction that reads then writes never finds its snapshot stale
            // (another process of the deployment wrote meanwhile), it waits for its turn.
            let mut tx =
                conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let out = f(&mut tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
        .map_err(backend)?
    }
}

fn insert_certificates(
    tx: &Transaction<'_>,
    org: &str,
    first_index: u64,
    certificates: &[NewCertificate],
) -> StoreResult<()> {
    for (i, c) in certificates.iter().enumerate() {
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO certificates (org, idx, bytes, received) VALUES (?1, ?2, ?3, ?4)",
            params![org, (first_index + i as u64) as i64, c.bytes, c.received.as_micros()],
        )?;
        if inserted == 0 {
            return Err(refuse(
                ErrorCode::Conflict,
                "another certificate was added at the same time; retry",
            ));
        }
        match &c.certificate {
            Certificate::User(u) => {
                let result = tx.execute(
                    "INSERT INTO users (org, user_id, email, human_name, profile) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![org, u.user_id.as_bytes(), u.email.as_str(), u.human_name.as_str(), profile_text(u.profile)],
                );
                if let Err(rusqlite::Error::SqliteFailure(e, _)) = &result
                    && e.code == rusqlite::ErrorCode::ConstraintViolation
                {
                    return Err(refuse(
                        ErrorCode::EmailInUse,
                        format!("{} already belongs to a user who is not revoked", u.email),
                    ));
                }
                result?;
                reserve_personal_realm(tx, org, &u.user_id)?;
            }
            Certificate::Device(d) => {
                let (quotas, _) = quotas_of(tx, org)?;
                check_count_quota(
                    tx,
                    org,
                    quotas.devices,
                    "SELECT COUNT(*) FROM devices d JOIN users u ON u.org = d.org AND u.user_id = d.user_id
                     WHERE d.org = ?1 AND u.revoked_on IS NULL",
                    "devices; revoke one",
                )?;
                tx.execute(
                    "INSERT INTO devices (org, device_id, user_id, verify_key) VALUES (?1, ?2, ?3, ?4)",
                    params![org, d.device_id.as_bytes(), d.user_id.as_bytes(), d.verify_key.to_bytes()],
                )?;
            }
            Certificate::RevokedUser(r) => {
                tx.execute(
                    "UPDATE users SET revoked_on = ?3 WHERE org = ?1 AND user_id = ?2 AND revoked_on IS NULL",
                    params![org, r.user_id.as_bytes(), r.timestamp.as_micros()],
                )?;
                // What a revoked user was inviting must not go on.
                tx.execute(
                    "UPDATE invitations SET status = 'cancelled'
                     WHERE org = ?1 AND greeter_user_id = ?2 AND status = 'pending'",
                    params![org, r.user_id.as_bytes()],
                )?;
            }
        }
    }
    Ok(())
}

/// A user row: id, email, name, profile, revocation time.
type RawUser = (Vec<u8>, String, String, String, Option<i64>);

fn read_user(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawUser> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn to_user(raw: RawUser) -> StoreResult<UserRecord> {
    let (id, email, name, profile, revoked) = raw;
    Ok(UserRecord {
        user_id: UserId::from_bytes(fixed(id)?),
        email: email.parse().map_err(backend)?,
        human_name: name.parse().map_err(backend)?,
        profile: profile_from(&profile)?,
        revoked_on: revoked.map(Timestamp::from_micros),
    })
}

type RawInvitation = (Vec<u8>, Vec<u8>, String, Vec<u8>, String, i64, i64, String);

fn read_invitation(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawInvitation> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
    ))
}

const INVITATION_COLUMNS: &str =
    "id, kind, email, greeter_user_id, greeter_human_name, created_on, expires_on, status";

fn to_invitation(raw: RawInvitation) -> StoreResult<InvitationRecord> {
    let (id, kind, email, greeter, name, created, expires, status) = raw;
    Ok(InvitationRecord {
        id: token_id(id)?,
        kind: rmp_serde::from_slice::<InvitationKind>(&kind).map_err(backend)?,
        email: email.parse().map_err(backend)?,
        greeter_user_id: UserId::from_bytes(fixed(greeter)?),
        greeter_human_name: name.parse().map_err(backend)?,
        created_on: Timestamp::from_micros(created),
        expires_on: Timestamp::from_micros(expires),
        status: status_from(&status)?,
    })
}

/// The invitation's status, current attempt and abort, inside a transaction.
fn attempt_state(
    tx: &Transaction<'_>,
    org: &str,
    id: &TokenId,
) -> StoreResult<(InvitationStatus, u32, Option<AttemptAbort>)> {
    let row: Option<(String, u32, Option<String>, Option<String>)> = tx
        .query_row(
            "SELECT status, attempt, aborted_by, aborted_reason FROM invitations WHERE org = ?1 AND id = ?2",
            params![org, id.as_bytes()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let (status, attempt, by, reason) = row.ok_or_else(unknown_invitation)?;
    let aborted = match (by, reason) {
        (Some(by), Some(reason)) => Some(AttemptAbort {
            by: side_from(&by)?,
            reason: reason_from(&reason)?,
        }),
        _ => None,
    };
    Ok((status_from(&status)?, attempt, aborted))
}

fn check_current_attempt(
    current: u32,
    aborted: Option<AttemptAbort>,
    attempt: u32,
) -> StoreResult<()> {
    if attempt != current {
        return Err(refuse(
            ErrorCode::AttemptMismatch,
            "the other side restarted the exchange; start again",
        ));
    }
    if let Some(abort) = aborted {
        return Err(refuse(ErrorCode::AttemptAborted, aborted_message(abort)));
    }
    Ok(())
}

/// The sentence for an aborted attempt.
pub(crate) fn aborted_message(abort: AttemptAbort) -> String {
    let who = match abort.by {
        InviteSide::Greeter => "the greeter",
        InviteSide::Claimer => "the invited person",
    };
    match abort.reason {
        AbortReason::WrongCode => format!("{who} picked a wrong code; the attempt was aborted"),
        AbortReason::ProtocolError => format!("{who} detected tampering; the attempt was aborted"),
        AbortReason::Interrupted => format!("{who} stopped the exchange"),
    }
}

fn step_count(
    tx: &Transaction<'_>,
    org: &str,
    id: &TokenId,
    attempt: u32,
    side: InviteSide,
) -> StoreResult<usize> {
    let n: i64 = tx.query_row(
        "SELECT COUNT(*) FROM invitation_steps WHERE org = ?1 AND id = ?2 AND attempt = ?3 AND side = ?4",
        params![org, id.as_bytes(), attempt, side_text(side)],
        |r| r.get(0),
    )?;
    Ok(n as usize)
}

fn append_step(
    tx: &Transaction<'_>,
    org: &str,
    id: &TokenId,
    attempt: u32,
    side: InviteSide,
    step: &[u8],
) -> StoreResult<()> {
    let seq = step_count(tx, org, id, attempt, side)?;
    if seq >= MAX_STEPS_PER_SIDE {
        return Err(refuse(
            ErrorCode::MalformedRequest,
            "too many steps in this attempt",
        ));
    }
    tx.execute(
        "INSERT INTO invitation_steps (org, id, attempt, side, seq, bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![org, id.as_bytes(), attempt, side_text(side), seq as i64, step],
    )?;
    Ok(())
}

#[async_trait]
impl MetadataStore for SqliteStore {
    async fn create_organization(
        &self,
        id: &OrganizationId,
        bootstrap_token_id: TokenId,
        now: Timestamp,
    ) -> StoreResult<()> {
        let org = id.to_string();
        self.with(move |tx| {
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO organizations (name, bootstrap_token_id, created_on) VALUES (?1, ?2, ?3)",
                params![org, bootstrap_token_id.as_bytes(), now.as_micros()],
            )?;
            if inserted == 0 {
                return Err(refuse(ErrorCode::OrganizationExists, format!("organization {org:?} already exists")));
            }
            Ok(())
        })
        .await
    }

    async fn organization(&self, id: &OrganizationId) -> StoreResult<Option<OrganizationRecord>> {
        let org = id.clone();
        self.with(move |tx| {
            let row: Option<(Vec<u8>, Option<Vec<u8>>)> = tx
                .query_row(
                    "SELECT bootstrap_token_id, root_verify_key FROM organizations WHERE name = ?1",
                    params![org.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            row.map(|(token, root)| {
                Ok(OrganizationRecord {
                    id: org.clone(),
                    bootstrap_token_id: token_id(token)?,
                    root_verify_key: root.map(verify_key).transpose()?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn bootstrap(
        &self,
        id: &OrganizationId,
        token: TokenId,
        root_verify_key: VerifyKey,
        certificates: Vec<NewCertificate>,
        now: Timestamp,
    ) -> StoreResult<()> {
        let org = id.to_string();
        self.with(move |tx| {
            let row: Option<(Vec<u8>, Option<Vec<u8>>)> = tx
                .query_row(
                    "SELECT bootstrap_token_id, root_verify_key FROM organizations WHERE name = ?1",
                    params![org],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let (stored_token, root) = row.ok_or_else(|| StoreError::Api(ApiError::unknown_organization(&org)))?;
            if root.is_some() {
                return Err(refuse(ErrorCode::AlreadyBootstrapped, "this organization was already bootstrapped; the bootstrap link cannot be used twice"));
            }
            // Ids are digests of the token, so this comparison leaks nothing about the token.
            if stored_token != token.as_bytes() {
                return Err(refuse(ErrorCode::InvalidBootstrapToken, "the bootstrap token is not this organization's"));
            }
            tx.execute(
                "UPDATE organizations SET root_verify_key = ?2, bootstrapped_on = ?3 WHERE name = ?1",
                params![org, root_verify_key.to_bytes(), now.as_micros()],
            )?;
            insert_certificates(tx, &org, 0, &certificates)
        })
        .await
    }

    async fn certificates(
        &self,
        id: &OrganizationId,
        from: u64,
        limit: Option<u64>,
    ) -> StoreResult<Vec<StoredCertificate>> {
        let org = id.to_string();
        // SQLite reads a negative LIMIT as "no limit".
        let limit = limit.map(|l| l.min(i64::MAX as u64) as i64).unwrap_or(-1);
        self.with(move |tx| {
            let mut stmt = tx.prepare(
                "SELECT bytes, received FROM certificates WHERE org = ?1 AND idx >= ?2 ORDER BY idx LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![org, clamp(from), limit], read_stored_certificate)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn append_certificates(
        &self,
        id: &OrganizationId,
        expected_len: u64,
        certificates: Vec<NewCertificate>,
        completion: Option<Completion>,
    ) -> StoreResult<u64> {
        let org = id.to_string();
        self.with(move |tx| {
            let len: i64 = tx.query_row(
                "SELECT COUNT(*) FROM certificates WHERE org = ?1",
                params![org],
                |r| r.get(0),
            )?;
            if len as u64 != expected_len {
                return Err(refuse(
                    ErrorCode::Conflict,
                    "another certificate was added at the same time; retry",
                ));
            }
            if let Some(c) = &completion {
                let (status, current, aborted) = attempt_state(tx, &org, &c.invitation)?;
                ensure_pending(status)?;
                check_current_attempt(current, aborted, c.attempt)?;
                append_step(
                    tx,
                    &org,
                    &c.invitation,
                    c.attempt,
                    InviteSide::Greeter,
                    &c.final_step,
                )?;
                tx.execute(
                    "UPDATE invitations SET status = 'completed' WHERE org = ?1 AND id = ?2",
                    params![org, c.invitation.as_bytes()],
                )?;
            }
            insert_certificates(tx, &org, expected_len, &certificates)?;
            Ok(expected_len + certificates.len() as u64)
        })
        .await
    }

    async fn user(&self, id: &OrganizationId, user: UserId) -> StoreResult<Option<UserRecord>> {
        let org = id.to_string();
        self.with(move |tx| {
            tx.query_row(
                "SELECT user_id, email, human_name, profile, revoked_on FROM users WHERE org = ?1 AND user_id = ?2",
                params![org, user.as_bytes()],
                read_user,
            )
            .optional()?
            .map(to_user)
            .transpose()
        })
        .await
    }

    async fn active_user_by_email(
        &self,
        id: &OrganizationId,
        email: &Email,
    ) -> StoreResult<Option<UserRecord>> {
        let org = id.to_string();
        let email = email.to_string();
        self.with(move |tx| {
            tx.query_row(
                "SELECT user_id, email, human_name, profile, revoked_on FROM users WHERE org = ?1 AND email = ?2 AND revoked_on IS NULL",
                params![org, email],
                read_user,
            )
            .optional()?
            .map(to_user)
            .transpose()
        })
        .await
    }

    async fn device(
        &self,
        id: &OrganizationId,
        device: DeviceId,
    ) -> StoreResult<Option<DeviceRecord>> {
        let org = id.to_string();
        self.with(move |tx| {
            let row: Option<(Vec<u8>, Vec<u8>)> = tx
                .query_row(
                    "SELECT user_id, verify_key FROM devices WHERE org = ?1 AND device_id = ?2",
                    params![org, device.as_bytes()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            row.map(|(user, key)| {
                Ok(DeviceRecord {
                    device_id: device,
                    user_id: UserId::from_bytes(fixed(user)?),
                    verify_key: verify_key(key)?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn create_invitation(
        &self,
        id: &OrganizationId,
        inv: InvitationRecord,
    ) -> StoreResult<()> {
        let org = id.to_string();
        self.with(move |tx| {
            // Device invitations (any member may create them) are counted per user, user
            // invitations (ADMINs only) per organization: a member cannot crowd out the others.
            let device = rmp_serde::to_vec(&InvitationKind::Device).map_err(backend)?;
            if inv.kind == InvitationKind::Device {
                let pending: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM invitations WHERE org = ?1 AND status = 'pending' AND expires_on >= ?2
                     AND kind = ?3 AND greeter_user_id = ?4",
                    params![org, inv.created_on.as_micros(), device, inv.greeter_user_id.as_bytes()],
                    |r| r.get(0),
                )?;
                if pending as usize >= MAX_PENDING_DEVICE_INVITATIONS_PER_USER {
                    return Err(quota_exceeded(format!(
                        "you already have {MAX_PENDING_DEVICE_INVITATIONS_PER_USER} pending device invitations; cancel one first (`strongroom invite list`, `strongroom invite cancel`)"
                    )));
                }
            } else {
                let pending: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM invitations WHERE org = ?1 AND status = 'pending' AND expires_on >= ?2
                     AND kind <> ?3",
                    params![org, inv.created_on.as_micros(), device],
                    |r| r.get(0),
                )?;
                if pending as usize >= MAX_PENDING_INVITATIONS {
                    return Err(quota_exceeded(format!(
                        "the organization already has {MAX_PENDING_INVITATIONS} pending user invitations; cancel some first"
                    )));
                }
            }
            tx.execute(
                "INSERT INTO invitations (org, id, kind, email, greeter_user_id, greeter_human_name, created_on, expires_on, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    org,
                    inv.id.as_bytes(),
                    rmp_serde::to_vec(&inv.kind).map_err(backend)?,
                    inv.email.as_str(),
                    inv.greeter_user_id.as_bytes(),
                    inv.greeter_human_name.as_str(),
                    inv.created_on.as_micros(),
                    inv.expires_on.as_micros(),
                    status_text(inv.status)
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn invitation(
        &self,
        id: &OrganizationId,
        invitation: TokenId,
    ) -> StoreResult<Option<InvitationRecord>> {
        let org = id.to_string();
        self.with(move |tx| {
            tx.query_row(
                &format!("SELECT {INVITATION_COLUMNS} FROM invitations WHERE org = ?1 AND id = ?2"),
                params![org, invitation.as_bytes()],
                read_invitation,
            )
            .optional()?
            .map(to_invitation)
            .transpose()
        })
        .await
    }

    async fn pending_invitations(
        &self,
        id: &OrganizationId,
        now: Timestamp,
    ) -> StoreResult<Vec<InvitationRecord>> {
        let org = id.to_string();
        self.with(move |tx| {
            let mut stmt = tx.prepare(&format!(
                "SELECT {INVITATION_COLUMNS} FROM invitations
                 WHERE org = ?1 AND status = 'pending' AND expires_on >= ?2 ORDER BY created_on"
            ))?;
            let rows = stmt.query_map(params![org, now.as_micros()], read_invitation)?;
            rows.map(|r| to_invitation(r?)).collect()
        })
        .await
    }

    async fn cancel_invitation(&self, id: &OrganizationId, invitation: TokenId) -> StoreResult<()> {
        let org = id.to_string();
        self.with(move |tx| {
            let (status, _, _) = attempt_state(tx, &org, &invitation)?;
            ensure_pending(status)?;
            tx.execute(
                "UPDATE invitations SET status = 'cancelled' WHERE org = ?1 AND id = ?2",
                params![org, invitation.as_bytes()],
            )?;
            Ok(())
        })
        .await
    }

    async fn join_attempt(
        &self,
        id: &OrganizationId,
        invitation: TokenId,
        side: InviteSide,
    ) -> StoreResult<u32> {
        let org = id.to_string();
        self.with(move |tx| {
            let (status, attempt, aborted) = attempt_state(tx, &org, &invitation)?;
            ensure_pending(status)?;
            let restarted = step_count(tx, &org, &invitation, attempt, side)? > 0;
            if aborted.is_none() && !restarted {
                return Ok(attempt);
            }
            let next = attempt + 1;
            tx.execute(
                "UPDATE invitations SET attempt = ?3, aborted_by = NULL, aborted_reason = NULL WHERE org = ?1 AND id = ?2",
                params![org, invitation.as_bytes(), next],
            )?;
            tx.execute(
                "DELETE FROM invitation_steps WHERE org = ?1 AND id = ?2 AND attempt < ?3",
                params![org, invitation.as_bytes(), next],
            )?;
            Ok(next)
        })
        .await
    }

    async fn post_step(
        &self,
        id: &OrganizationId,
        invitation: TokenId,
        attempt: u32,
        side: InviteSide,
        step: Vec<u8>,
    ) -> StoreResult<()> {
        let org = id.to_string();
        self.with(move |tx| {
            let (status, current, aborted) = attempt_state(tx, &org, &invitation)?;
            ensure_pending(status)?;
            check_current_attempt(current, aborted, attempt)?;
            append_step(tx, &org, &invitation, attempt, side, &step)
        })
        .await
    }

    async fn abort_attempt(
        &self,
        id: &OrganizationId,
        invitation: TokenId,
        attempt: u32,
        abort: AttemptAbort,
    ) -> StoreResult<()> {
        let org = id.to_string();
        self.with(move |tx| {
            let (status, current, aborted) = attempt_state(tx, &org, &invitation)?;
            ensure_pending(status)?;
            if attempt != current {
                return Err(refuse(ErrorCode::AttemptMismatch, "the other side restarted the exchange; start again"));
            }
            if aborted.is_none() {
                tx.execute(
                    "UPDATE invitations SET aborted_by = ?3, aborted_reason = ?4 WHERE org = ?1 AND id = ?2",
                    params![org, invitation.as_bytes(), side_text(abort.by), reason_text(abort.reason)],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn conversation(
        &self,
        id: &OrganizationId,
        invitation: TokenId,
    ) -> StoreResult<Conversation> {
        let org = id.to_string();
        self.with(move |tx| {
            let (_, attempt, aborted) = attempt_state(tx, &org, &invitation)?;
            let mut conversation = Conversation {
                attempt,
                aborted,
                ..Default::default()
            };
            let mut stmt = tx.prepare(
                "SELECT side, bytes FROM invitation_steps WHERE org = ?1 AND id = ?2 AND attempt = ?3 ORDER BY side, seq",
            )?;
            let rows = stmt.query_map(params![org, invitation.as_bytes(), attempt], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
            })?;
            for row in rows {
                let (side, bytes) = row?;
                match side_from(&side)? {
                    InviteSide::Greeter => conversation.greeter.push(bytes),
                    InviteSide::Claimer => conversation.claimer.push(bytes),
                }
            }
            Ok(conversation)
        })
        .await
    }

    async fn create_realm(
        &self,
        id: &OrganizationId,
        realm: RealmId,
        certificates: Vec<StoredCertificate>,
    ) -> StoreResult<()> {
        let org = id.to_string();
        self.with(move |tx| {
            let (quotas, _) = quotas_of(tx, &org)?;
            check_count_quota(
                tx,
                &org,
                quotas.workspaces,
                "SELECT COUNT(DISTINCT realm) FROM realm_certificates WHERE org = ?1",
                "workspaces; remove one",
            )?;
            // Taken ids include every user's personal realm, reserved when the user was certified.
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO realms (org, realm) VALUES (?1, ?2)",
                params![org, realm.as_bytes()],
            )?;
            if inserted == 0 {
                return Err(refuse(ErrorCode::RealmExists, "a workspace (or a user's own realm) with this id exists already"));
            }
            let size: u64 = certificates.iter().map(|c| c.bytes.len() as u64).sum();
            add_stored_bytes(tx, &org, size)?;
            for (i, c) in certificates.iter().enumerate() {
                tx.execute(
                    "INSERT INTO realm_certificates (org, realm, idx, bytes, received) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![org, realm.as_bytes(), i as i64, c.bytes, c.received.as_micros()],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn realm_certificates(
        &self,
        id: &OrganizationId,
        realm: RealmId,
        from: u64,
        limit: Option<u64>,
    ) -> StoreResult<Option<Vec<StoredCertificate>>> {
        let org = id.to_string();
        let limit = limit.map(clamp).unwrap_or(-1);
        self.with(move |tx| {
            let exists: bool = tx
                .query_row(
                    "SELECT 1 FROM realms WHERE org = ?1 AND realm = ?2",
                    params![org, realm.as_bytes()],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if !exists {
                return Ok(None);
            }
            let mut stmt = tx.prepare(
                "SELECT bytes, received FROM realm_certificates WHERE org = ?1 AND realm = ?2 AND idx >= ?3 ORDER BY idx LIMIT ?4",
            )?;
            let rows = stmt.query_map(
                params![org, realm.as_bytes(), clamp(from), limit],
                read_stored_certificate,
            )?;
            Ok(Some(rows.collect::<Result<Vec<_>, _>>()?))
        })
        .await
    }

    async fn append_realm_certificate(
        &self,
        id: &OrganizationId,
        realm: RealmId,
        expected_len: u64,
        certificate: StoredCertificate,
        messages: Vec<NewMessage>,
    ) -> StoreResult<()> {
        let org = id.to_string();
        self.with(move |tx| {
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO realm_certificates (org, realm, idx, bytes, received) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![org, realm.as_bytes(), expected_len as i64, certificate.bytes, certificate.received.as_micros()],
            )?;
            if inserted == 0 {
                return Err(refuse(ErrorCode::Conflict, "the workspace changed at the same time; retry"));
            }
            // Certificates and messages are stored for good: they count like blocks and
            // manifests, so that a workspace OWNER cannot store without limit through them.
            let size = certificate.bytes.len() as u64
                + messages.iter().map(|m| m.sealed.len() as u64).sum::<u64>();
            add_stored_bytes(tx, &org, size)?;
            for message in &messages {
                let next: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM messages WHERE org = ?1 AND recipient = ?2",
                    params![org, message.recipient.as_bytes()],
                    |r| r.get(0),
                )?;
                tx.execute(
                    "INSERT INTO messages (org, recipient, idx, sender, sealed, received) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![org, message.recipient.as_bytes(), next, message.sender.as_bytes(), message.sealed, message.received.as_micros()],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn write_vlob(
        &self,
        id: &OrganizationId,
        realm: RealmId,
        write: VlobVersion,
    ) -> StoreResult<u64> {
        let org = id.to_string();
        self.with(move |tx| {
            let version = write.version;
            write_one(tx, &org, realm, &write)?.ok_or_else(|| {
                refuse(
                    ErrorCode::VersionConflict,
                    format!("version {version} of this entry cannot be written: another device changed it first"),
                )
            })
        })
        .await
    }

    async fn write_vlobs(
        &self,
        id: &OrganizationId,
        realm: RealmId,
        writes: Vec<VlobVersion>,
    ) -> StoreResult<Vec<Option<u64>>> {
        let org = id.to_string();
        self.with(move |tx| {
            writes
                .iter()
                .map(|write| write_one(tx, &org, realm, write))
                .collect()
        })
        .await
    }

    async fn read_vlobs(
        &self,
        id: &OrganizationId,
        realm: RealmId,
        ids: Vec<EntryId>,
        at: Option<Timestamp>,
        budget: usize,
    ) -> StoreResult<VlobBatch> {
        let org = id.to_string();
        self.with(move |tx| {
            let mut stmt = tx.prepare(&format!(
                "SELECT {VLOB_COLUMNS} FROM vlobs
                 WHERE org = ?1 AND realm = ?2 AND vlob = ?3 AND timestamp <= ?4
                 ORDER BY version DESC LIMIT 1"
            ))?;
            let until = at.map(|t| t.as_micros()).unwrap_or(i64::MAX);
            let mut seen = std::collections::HashSet::with_capacity(ids.len());
            let mut batch = VlobBatch::default();
            let mut used = 0usize;
            for vlob in ids {
                if !seen.insert(vlob) {
                    continue;
                }
                if used >= budget {
                    batch.deferred.push(vlob);
                    continue;
                }
                if let Some(raw) = stmt
                    .query_row(
                        params![org, realm.as_bytes(), vlob.as_bytes(), until],
                        read_vlob,
                    )
                    .optional()?
                {
                    let version = to_vlob(raw)?;
                    let size = version.blob.len();
                    if !batch.vlobs.is_empty() && used + size > budget {
                        used = budget;
                        batch.deferred.push(vlob);
                        continue;
                    }
                    used += size;
                    batch.vlobs.push(version);
                }
            }
            Ok(batch)
        })
        .await
    }

    async fn vlob_history(
        &self,
        id: &OrganizationId,
        realm: RealmId,
        vlob: EntryId,
        from: u32,
        limit: u64,
    ) -> StoreResult<Vec<VlobVersionInfo>> {
        let org = id.to_string();
        self.with(move |tx| {
            let mut stmt = tx.prepare(
                "SELECT version, key_index, author, timestamp, received, length(blob) FROM vlobs
                 WHERE org = ?1 AND realm = ?2 AND vlob = ?3 AND version >= ?4 ORDER BY version LIMIT ?5",
            )?;
            let rows = stmt.query_map(
                params![org, realm.as_bytes(), vlob.as_bytes(), from, clamp(limit)],
                |r| {
                    Ok((
                        r.get::<_, u32>(0)?,
                        r.get::<_, u32>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, i64>(5)?,
                    ))
                },
            )?;
            rows.map(|row| {
                let (version, key_index, author, timestamp, received, size) = row?;
                Ok(VlobVersionInfo {
                    version,
                    key_index,
                    author: DeviceId::from_bytes(fixed(author)?),
                    timestamp: Timestamp::from_micros(timestamp),
                    received: Timestamp::from_micros(received),
                    size: size as u64,
                })
            })
            .collect()
        })
        .await
    }

    async fn vlob_version(
        &self,
        id: &OrganizationId,
        realm: RealmId,
        vlob: EntryId,
        version: u32,
    ) -> StoreResult<Option<VlobVersion>> {
        let org = id.to_string();
        self.with(move |tx| {
            tx.query_row(
                &format!(
                    "SELECT {VLOB_COLUMNS} FROM vlobs
                 WHERE org = ?1 AND realm = ?2 AND vlob = ?3 AND version = ?4"
                ),
                params![org, realm.as_bytes(), vlob.as_bytes(), version],
                read_vlob,
            )
            .optional()?
            .map(to_vlob)
            .transpose()
        })
        .await
    }

    async fn realm_changes(
        &self,
        id: &OrganizationId,
        realm: RealmId,
        since: u64,
        limit: u64,
    ) -> StoreResult<(u64, Vec<VlobChange>)> {
        let org = id.to_string();
        self.with(move |tx| {
            let checkpoint: i64 = tx
                .query_row(
                    "SELECT checkpoint FROM realms WHERE org = ?1 AND realm = ?2",
                    params![org, realm.as_bytes()],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0);
            let mut stmt = tx.prepare(
                "SELECT checkpoint, vlob, version FROM vlobs WHERE org = ?1 AND realm = ?2 AND checkpoint > ?3
                 ORDER BY checkpoint LIMIT ?4",
            )?;
            let rows = stmt.query_map(params![org, realm.as_bytes(), clamp(since), clamp(limit)], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, u32>(2)?))
            })?;
            let changes = rows
                .map(|row| {
                    let (checkpoint, vlob, version) = row?;
                    Ok(VlobChange {
                        checkpoint: checkpoint as u64,
                        id: EntryId::from_bytes(fixed(vlob)?),
                        version,
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?;
            Ok((checkpoint as u64, changes))
        })
        .await
    }

    async fn messages(
        &self,
        id: &OrganizationId,
        user: UserId,
        from: u64,
        limit: u64,
        budget: usize,
    ) -> StoreResult<(Vec<IncomingMessage>, bool)> {
        let org = id.to_string();
        self.with(move |tx| {
            let mut stmt = tx.prepare(
                "SELECT idx, sender, sealed, received FROM messages
                 WHERE org = ?1 AND recipient = ?2 AND idx >= ?3 ORDER BY idx LIMIT ?4",
            )?;
            // One more than the page, to tell whether more follow.
            let mut rows =
                stmt.query(params![org, user.as_bytes(), clamp(from), clamp(limit) + 1])?;
            let mut messages = Vec::new();
            let mut used = 0usize;
            while let Some(row) = rows.next()? {
                let sealed: Vec<u8> = row.get(2)?;
                let full = messages.len() as u64 >= limit
                    || (!messages.is_empty() && used + sealed.len() > budget);
                if full {
                    return Ok((messages, true));
                }
                used += sealed.len();
                messages.push(IncomingMessage {
                    index: row.get::<_, i64>(0)? as u64,
                    sender: DeviceId::from_bytes(fixed(row.get(1)?)?),
                    received: Timestamp::from_micros(row.get(3)?),
                    sealed: serde_bytes::ByteBuf::from(sealed),
                });
            }
            Ok((messages, false))
        })
        .await
    }

    async fn check_storage(&self, id: &OrganizationId, size: u64) -> StoreResult<()> {
        let org = id.to_string();
        self.with(move |tx| {
            let (quotas, stored) = quotas_of(tx, &org)?;
            check_storage_room(&quotas, stored, size)
        })
        .await
    }

    async fn record_block(
        &self,
        id: &OrganizationId,
        realm: RealmId,
        block: BlockId,
        size: u64,
        author: DeviceId,
    ) -> StoreResult<()> {
        let org = id.to_string();
        self.with(move |tx| {
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO blocks (org, realm, block, size, author) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![org, realm.as_bytes(), block.as_bytes(), size as i64, author.as_bytes()],
            )?;
            if inserted > 0 {
                add_stored_bytes(tx, &org, size)?;
            }
            Ok(())
        })
        .await
    }

    async fn set_quotas(&self, id: &OrganizationId, quotas: Quotas) -> StoreResult<()> {
        let org = id.to_string();
        self.with(move |tx| {
            let updated = tx.execute(
                "UPDATE organizations SET quota_storage_bytes = ?2, quota_workspaces = ?3, quota_devices = ?4 WHERE name = ?1",
                params![
                    org,
                    quotas.storage_bytes.map(clamp),
                    quotas.workspaces.map(clamp),
                    quotas.devices.map(clamp)
                ],
            )?;
            if updated == 0 {
                return Err(StoreError::Api(ApiError::unknown_organization(&org)));
            }
            Ok(())
        })
        .await
    }

    async fn quotas(&self, id: &OrganizationId) -> StoreResult<Quotas> {
        let org = id.to_string();
        self.with(move |tx| Ok(quotas_of(tx, &org)?.0)).await
    }

    async fn stored_bytes(&self, id: &OrganizationId) -> StoreResult<u64> {
        let org = id.to_string();
        self.with(move |tx| Ok(quotas_of(tx, &org)?.1)).await
    }

    async fn remember_request(
        &self,
        _id: &OrganizationId,
        request: Digest,
        expires: Timestamp,
    ) -> StoreResult<bool> {
        let conn = self.replays.clone();
        let prune = self
            .remembered
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .is_multiple_of(PRUNE_EVERY);
        tokio::task::spawn_blocking(move || {
            let conn = conn
                .lock()
                .map_err(|_| backend("replay cache lock poisoned"))?;
            if prune {
                conn.prepare_cached("DELETE FROM seen_requests WHERE expires < ?1")?
                    .execute(params![crate::clock::now().as_micros()])?;
            }
            let inserted = conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO seen_requests (digest, expires) VALUES (?1, ?2)",
                )?
                .execute(params![request.as_bytes(), expires.as_micros()])?;
            Ok(inserted == 1)
        })
        .await
        .map_err(backend)?
    }
}

/// Stores one vlob version in a transaction: the new checkpoint, or `None` if its version does
/// not follow the last one (another device wrote first).
fn write_one(
    tx: &Transaction<'_>,
    org: &str,
    realm: RealmId,
    write: &VlobVersion,
) -> StoreResult<Option<u64>> {
    let last: Option<(u32, i64)> = tx
        .query_row(
            "SELECT version, timestamp FROM vlobs WHERE org = ?1 AND realm = ?2 AND vlob = ?3 ORDER BY version DESC LIMIT 1",
            params![org, realm.as_bytes(), write.id.as_bytes()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (last_version, last_time) = last.unwrap_or((0, i64::MIN));
    if write.version != last_version + 1 {
        return Ok(None);
    }
    if write.timestamp.as_micros() < last_time {
        return Err(refuse(
            ErrorCode::MalformedRequest,
            "a new version cannot be older than the previous one",
        ));
    }
    add_stored_bytes(tx, org, write.blob.len() as u64)?;
    tx.execute(
        "INSERT OR IGNORE INTO realms (org, realm) VALUES (?1, ?2)",
        params![org, realm.as_bytes()],
    )?;
    let checkpoint: i64 = tx.query_row(
        "UPDATE realms SET checkpoint = checkpoint + 1 WHERE org = ?1 AND realm = ?2 RETURNING checkpoint",
        params![org, realm.as_bytes()],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO vlobs (org, realm, vlob, version, key_index, author, timestamp, checkpoint, blob, received)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            org,
            realm.as_bytes(),
            write.id.as_bytes(),
            write.version,
            write.key_index,
            write.author.as_bytes(),
            write.timestamp.as_micros(),
            checkpoint,
            write.blob.as_slice(),
            write.received.as_micros()
        ],
    )?;
    Ok(Some(checkpoint as u64))
}

/// The columns [`read_vlob`] reads, in order.
const VLOB_COLUMNS: &str = "vlob, version, key_index, author, timestamp, received, blob";

/// A vlob row: id, version, key index, author, timestamp, reception, blob.
type RawVlob = (Vec<u8>, u32, u32, Vec<u8>, i64, i64, Vec<u8>);

fn read_vlob(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawVlob> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    ))
}

fn to_vlob(raw: RawVlob) -> StoreResult<VlobVersion> {
    let (id, version, key_index, author, timestamp, received, blob) = raw;
    Ok(VlobVersion {
        id: EntryId::from_bytes(fixed(id)?),
        version,
        key_index,
        author: DeviceId::from_bytes(fixed(author)?),
        timestamp: Timestamp::from_micros(timestamp),
        received: Timestamp::from_micros(received),
        blob: serde_bytes::ByteBuf::from(blob),
    })
}

fn read_stored_certificate(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredCertificate> {
    Ok(StoredCertificate {
        bytes: row.get(0)?,
        received: Timestamp::from_micros(row.get(1)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;
    use strongroom_protocol::certificates::UserProfile;
    use strongroom_protocol::ids::InvitationToken;

    fn store() -> (tempfile::TempDir, SqliteStore, OrganizationId) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let org: OrganizationId = "acme".parse().unwrap();
        (dir, store, org)
    }

    async fn with_org() -> (tempfile::TempDir, SqliteStore, OrganizationId) {
        let (dir, store, org) = store();
        let token = InvitationToken::generate(&mut OsRng).id();
        store
            .create_organization(&org, token, Timestamp::from_micros(1))
            .await
            .unwrap();
        (dir, store, org)
    }

    fn code(result: StoreResult<()>) -> Option<ErrorCode> {
        match result {
            Ok(()) => None,
            Err(StoreError::Api(e)) => Some(e.code),
            Err(e) => panic!("{e}"),
        }
    }

    fn invitation(kind: InvitationKind, greeter: UserId) -> InvitationRecord {
        InvitationRecord {
            id: InvitationToken::generate(&mut OsRng).id(),
            kind,
            email: "someone@example.com".parse().unwrap(),
            greeter_user_id: greeter,
            greeter_human_name: "Someone".parse().unwrap(),
            created_on: Timestamp::from_micros(1_000),
            expires_on: Timestamp::from_micros(i64::MAX / 2),
            status: InvitationStatus::Pending,
        }
    }

    #[tokio::test]
    async fn device_invitations_are_capped_per_user_and_leave_user_invitations_free() {
        let (_dir, store, org) = with_org().await;
        let member = UserId::generate(&mut OsRng);
        let other = UserId::generate(&mut OsRng);
        let mut mine = Vec::new();
        for _ in 0..MAX_PENDING_DEVICE_INVITATIONS_PER_USER {
            let record = invitation(InvitationKind::Device, member);
            mine.push(record.id);
            store.create_invitation(&org, record).await.unwrap();
        }
        let refused = store
            .create_invitation(&org, invitation(InvitationKind::Device, member))
            .await;
        assert_eq!(code(refused), Some(ErrorCode::QuotaExceeded));
        // Another user's device, and a user invitation, still fit.
        store
            .create_invitation(&org, invitation(InvitationKind::Device, other))
            .await
            .unwrap();
        let user = InvitationKind::User {
            email: "new@example.com".parse().unwrap(),
            profile: UserProfile::Standard,
        };
        store
            .create_invitation(&org, invitation(user, other))
            .await
            .unwrap();
        // Cancelling one frees a slot.
        store.cancel_invitation(&org, mine[0]).await.unwrap();
        store
            .create_invitation(&org, invitation(InvitationKind::Device, member))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn realm_certificates_and_messages_count_against_the_storage_quota() {
        let (_dir, store, org) = with_org().await;
        let realm = RealmId::generate(&mut OsRng);
        let at = Timestamp::from_micros(1_000);
        let certificate = |len: usize| StoredCertificate {
            bytes: vec![7; len],
            received: at,
        };
        store
            .create_realm(&org, realm, vec![certificate(100), certificate(100)])
            .await
            .unwrap();
        assert_eq!(store.stored_bytes(&org).await.unwrap(), 200);
        let message = |len: usize| NewMessage {
            recipient: UserId::generate(&mut OsRng),
            sender: DeviceId::generate(&mut OsRng),
            received: at,
            sealed: vec![9; len],
        };
        store
            .append_realm_certificate(
                &org,
                realm,
                2,
                certificate(50),
                vec![message(1000), message(1000)],
            )
            .await
            .unwrap();
        assert_eq!(store.stored_bytes(&org).await.unwrap(), 2250);
        store
            .set_quotas(
                &org,
                Quotas {
                    storage_bytes: Some(3000),
                    ..Quotas::default()
                },
            )
            .await
            .unwrap();
        let refused = store
            .append_realm_certificate(&org, realm, 3, certificate(50), vec![message(1000)])
            .await;
        assert_eq!(code(refused), Some(ErrorCode::QuotaExceeded));
        // Nothing of the refused request was kept: the chain did not grow, no bytes counted.
        assert_eq!(store.stored_bytes(&org).await.unwrap(), 2250);
        let chain = store
            .realm_certificates(&org, realm, 0, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(chain.len(), 3);
        store
            .append_realm_certificate(&org, realm, 3, certificate(50), vec![message(500)])
            .await
            .unwrap();
        assert_eq!(store.stored_bytes(&org).await.unwrap(), 2800);
    }
}
