//! Workspaces: the user manifest (this user's workspaces and their keys, synced across the
//! user's devices through the user's own realm), realm chains, creation, sharing with roles,
//! unsharing with key rotation, and the messages that carry keys between users.

use rand_core::OsRng;
use serde_bytes::ByteBuf;
use strongroom_protocol::crypto::hash::derive_key;
use strongroom_protocol::crypto::secret_key::SecretKey;
use strongroom_protocol::ids::{Email, EntryId, RealmId, UserId};
use strongroom_protocol::manifests::{
    EntryName, IndexedKey, Manifest, ManifestBody, ManifestError, VlobCoordinates, WorkspaceEntry,
    WriteAuthority, check_sealed_manifest, open_manifest, seal_manifest,
};
use strongroom_protocol::messages::{
    Envelope, Message, MessageBody, MessageTopic, open_envelope, open_message, seal_message,
};
use strongroom_protocol::wire::{
    ErrorCode, MAX_VLOB_BYTES, OutgoingMessage, VlobVersion, VlobWriteRequest,
};
use strongroom_protocol::workspace::{
    KeyRotationCertificate, RealmCertificate, RealmChain, RoleCertificate, WorkspaceRole, key_check,
};

use crate::client::Client;
use crate::clock::{certificate_time, now};
use crate::error::{EngineError, Result};
use crate::local_db::{KeyStandIn, LocalEntry, UndeliveredKey};
use crate::remote::WriteOutcome;
use strongroom_protocol::time::{CLOCK_SKEW_MICROS, check_not_backdated, check_received};

/// A workspace as listed for the user.
#[derive(Debug, Clone)]
pub struct WorkspaceInfo {
    /// The realm.
    pub realm: RealmId,
    /// Its name for this user.
    pub name: EntryName,
    /// This user's role.
    pub role: Option<WorkspaceRole>,
    /// The current key index.
    pub key_index: u32,
    /// Members and roles.
    pub members: Vec<(Email, WorkspaceRole)>,
}

/// What it takes to read and write one realm: its keys, its chain (workspaces) or owner (the
/// user's own realm).
#[derive(Debug, Clone)]
pub struct RealmContext {
    /// The realm.
    pub realm: RealmId,
    /// Keys by index.
    pub keys: Vec<IndexedKey>,
    /// The workspace's chain; `None` for the user's own realm.
    pub chain: Option<RealmChain>,
    /// The user whose own realm this is.
    pub owner: Option<UserId>,
    /// Key indexes that a member handed this user in messages that do not work.
    pub undelivered: Vec<UndeliveredKey>,
}

impl RealmContext {
    /// Who may write its manifests.
    pub fn authority(&self) -> WriteAuthority<'_> {
        match (&self.chain, self.owner) {
            (Some(chain), _) => WriteAuthority::Workspace(chain),
            (None, Some(owner)) => WriteAuthority::User(owner),
            (None, None) => unreachable!("a realm context has a chain or an owner"),
        }
    }

    /// The key of an index.
    pub fn key(&self, index: u32) -> Result<&SecretKey> {
        self.keys
            .iter()
            .find(|k| k.index == index)
            .map(|k| &k.key)
            .ok_or(EngineError::Manifest(
                strongroom_protocol::manifests::ManifestError::UnknownKeyIndex(index),
            ))
    }

    /// The key that encrypts new data, and its index.
    pub fn current_key(&self) -> Result<(u32, &SecretKey)> {
        let index = self.chain.as_ref().map(|c| c.key_index()).unwrap_or(0);
        let key = self.key(index).map_err(|_| {
            if let Some(undelivered) = self.undelivered.iter().find(|u| u.index == index) {
                return EngineError::NotAllowed(format!(
                    "key {index} of the workspace was handed to this user in a message that does not work ({}): this device cannot write in it until the key is handed anew (sharing the workspace with this user again does)",
                    undelivered.reason
                ));
            }
            EngineError::Protocol(format!(
                "this device does not hold key {index} of the workspace yet; run `strongroom sync`"
            ))
        })?;
        Ok((index, key))
    }
}

const MESSAGES_COUNTER: &str = "messages";

/// How many versions before one that opens for nobody a reader looks through for one that
/// opens (a bound on what a hostile writer's string of such versions costs each reader).
pub const STAND_IN_LOOKBACK: u32 = 32;

impl Client {
    /// The realm of this user's own manifest.
    pub fn user_realm(&self) -> RealmId {
        RealmId::of_user(&self.keys().user_id)
    }

    fn user_context(&self) -> RealmContext {
        let key = derive_key(
            "strongroom 2026-11 user manifest key",
            &self.keys().user_private_key.0,
        );
        RealmContext {
            realm: self.user_realm(),
            keys: vec![IndexedKey {
                index: 0,
                key: SecretKey::from_bytes(key),
            }],
            chain: None,
            owner: Some(self.keys().user_id),
            undelivered: Vec::new(),
        }
    }

    /// Opens a served vlob version: decrypts and validates it (its author and their rights at
    /// its date, its date against when the server received it, its key against the
    /// workspace's rotations).
    pub(crate) fn open_version(
        &self,
        context: &RealmContext,
        vlob: &VlobVersion,
    ) -> Result<Manifest> {
        check_received(vlob.received, now())
            .map_err(|e| EngineError::Protocol(format!("a version is refused: {e}")))?;
        let coordinates = VlobCoordinates {
            realm: context.realm,
            id: vlob.id,
            version: vlob.version,
            key_index: vlob.key_index,
            author: vlob.author,
            timestamp: vlob.timestamp,
            received: vlob.received,
        };
        if let Some(chain) = &context.chain
            && vlob.key_index > chain.key_index()
        {
            return Err(EngineError::WithheldCertificates(format!(
                "an entry is encrypted with key index {}, which no workspace certificate the server sent certifies (the latest is {})",
                vlob.key_index,
                chain.key_index()
            )));
        }
        let key = match context.key(vlob.key_index) {
            Ok(key) => key,
            Err(missing) => {
                let Some(undelivered) = context
                    .undelivered
                    .iter()
                    .find(|u| u.index == vlob.key_index)
                else {
                    return Err(missing);
                };
                // Only a version its author really wrote under that key is stood in for: every
                // check that needs no key holds first, or it is the server's doing.
                check_sealed_manifest(&vlob.blob, &coordinates, self.chain(), context.authority())?;
                return Err(EngineError::KeyNotDelivered {
                    version: vlob.version,
                    key_index: vlob.key_index,
                    sender: self.email_of(&undelivered.sender),
                    reason: undelivered.reason.clone(),
                });
            }
        };
        let manifest = open_manifest(
            &vlob.blob,
            &coordinates,
            key,
            self.chain(),
            context.authority(),
        )?;
        Ok(manifest)
    }

    /// Opens a served version; one that its author stored so that it opens for nobody
    /// ([`ManifestError::Unreadable`]), or one encrypted with a key that a member handed this
    /// user in a message that does not work ([`EngineError::KeyNotDelivered`]), is stood in
    /// for, with a warning naming that member: the content of the newest earlier version that
    /// opens (looking back at most [`STAND_IN_LOOKBACK`] versions), or else an empty one (an
    /// empty folder for a root, an empty file), under the version's number, author and date.
    /// The next write supersedes a version that opens for nobody; one that others may open is
    /// never written over from this device (recorded, see [`Client::prepare_upload`]).
    /// Only a member's doing in a workspace is stood in for: every failure the server could
    /// cause is still an error, and so is one in this user's own workspace list.
    pub(crate) async fn open_or_stand_in(
        &self,
        context: &RealmContext,
        vlob: &VlobVersion,
    ) -> Result<Manifest> {
        let (failure, blamed) = match self.open_version(context, vlob) {
            Err(EngineError::Manifest(e @ ManifestError::Unreadable { .. })) => {
                let ManifestError::Unreadable { user, .. } = &e else {
                    unreachable!("matched above")
                };
                let blamed = self.email_of(user);
                (EngineError::Manifest(e), blamed)
            }
            Err(e @ EngineError::KeyNotDelivered { .. }) => {
                let EngineError::KeyNotDelivered { sender, .. } = &e else {
                    unreachable!("matched above")
                };
                let blamed = sender.clone();
                (e, blamed)
            }
            other => return other,
        };
        // Only this user's own devices write their workspace list: stepping past one of their
        // versions could drop workspaces (and their keys) from the list, so it stays an error.
        if context.owner.is_some() {
            return Err(failure);
        }
        let key_missing = matches!(failure, EngineError::KeyNotDelivered { .. });
        let floor = vlob.version.saturating_sub(STAND_IN_LOOKBACK).max(1);
        let mut found = None;
        for version in (floor..vlob.version).rev() {
            let older = self
                .remote_vlob_version(context.realm, vlob.id, version)
                .await?;
            if older.id != vlob.id || older.version != version {
                return Err(EngineError::Protocol(
                    "the server answered with another version".into(),
                ));
            }
            match self.open_version(context, &older) {
                Ok(manifest) => {
                    found = Some(manifest);
                    break;
                }
                Err(
                    EngineError::Manifest(ManifestError::Unreadable { .. })
                    | EngineError::KeyNotDelivered { .. },
                ) => continue,
                Err(e) => return Err(e),
            }
        }
        let shown = match &found {
            Some(older) => format!("shown as its version {}", older.version),
            None => "shown empty (no earlier version opens)".to_owned(),
        };
        let until = if key_missing {
            "until this user is handed the key"
        } else {
            "until a member writes a new version"
        };
        tracing::warn!(entry = %vlob.id, member = %blamed, "{failure}; {shown} {until}");
        let shown_version = found.as_ref().map_or(0, |older| older.version);
        let root: EntryId = context.realm.into();
        let body = match found {
            Some(older) => older.body,
            None if vlob.id == root => ManifestBody::Folder {
                parent: root,
                children: Default::default(),
            },
            None => ManifestBody::File {
                parent: root,
                size: 0,
                block_size: crate::files::BLOCK_SIZE,
                blocks: Vec::new(),
                index: Vec::new(),
            },
        };
        let stand_in = Manifest {
            author: vlob.author,
            timestamp: vlob.timestamp,
            realm: context.realm,
            id: vlob.id,
            version: vlob.version,
            body,
        };
        if key_missing {
            self.db().record_key_stand_in(
                &context.realm,
                &vlob.id,
                &KeyStandIn {
                    version: vlob.version,
                    key_index: vlob.key_index,
                    shown_version,
                    digest: KeyStandIn::digest_of(&stand_in),
                },
            )?;
        }
        Ok(stand_in)
    }

    /// A user's email as the identity chain has it (their id if unknown), for messages.
    pub(crate) fn email_of(&self, user: &UserId) -> String {
        self.chain()
            .user(user)
            .map(|u| u.certificate.email.to_string())
            .unwrap_or_else(|| user.to_string())
    }

    /// The latest versions of `ids`, validated; a version older than one already seen is a
    /// rollback and refused. Records what was seen.
    pub(crate) async fn fetch_latest(
        &self,
        context: &RealmContext,
        ids: &[EntryId],
    ) -> Result<Vec<Manifest>> {
        let served = self.remote_read_vlobs(context.realm, ids, None).await?;
        let mut out = Vec::with_capacity(served.len());
        for vlob in &served {
            let seen_before = self.db().seen(&context.realm, &vlob.id)?;
            let manifest = self.open_or_stand_in(context, vlob).await?;
            if let Some((seen, seen_latest)) = seen_before {
                if manifest.version < seen {
                    return Err(EngineError::Rollback {
                        served: manifest.version,
                        seen,
                    });
                }
                if manifest.version > seen {
                    check_not_backdated(vlob.received, seen_latest).map_err(|e| {
                        EngineError::Backdated {
                            served: manifest.version,
                            seen,
                            reason: e.to_string(),
                        }
                    })?;
                }
            }
            out.push(manifest);
        }
        let versions: Vec<(EntryId, u32)> = out.iter().map(|m| (m.id, m.version)).collect();
        self.db().see_versions(&context.realm, &versions, now())?;
        Ok(out)
    }

    /// The manifest of a local entry as the version after its base, signed and encrypted, and
    /// the request that writes it.
    pub(crate) fn prepare_upload(
        &self,
        context: &RealmContext,
        id: EntryId,
        local: &LocalEntry,
    ) -> Result<(Manifest, VlobWriteRequest)> {
        // A stand-in's version number is the real latest's: written over as such, the real
        // content would be dropped. Without its key, refuse; with it (handed anew since), write
        // after the version shown, so that the server answers with a conflict and the change is
        // merged with the real version.
        let mut version = local.base_version() + 1;
        if let Some(base) = &local.base
            && let Some(stand_in) = self.db().key_stand_in(&context.realm, &id, base.version)?
            && stand_in.digest.ct_eq(&KeyStandIn::digest_of(base))
        {
            if context.key(stand_in.key_index).is_err() {
                let sender = context
                    .undelivered
                    .iter()
                    .find(|u| u.index == stand_in.key_index)
                    .map(|u| self.email_of(&u.sender))
                    .unwrap_or_else(|| "a member".into());
                return Err(EngineError::CannotReadLatest {
                    version: base.version,
                    key_index: stand_in.key_index,
                    sender,
                });
            }
            version = stand_in.shown_version + 1;
        }
        let (key_index, key) = context.current_key()?;
        let timestamp = certificate_time(local.base.as_ref().map(|b| b.timestamp));
        let manifest = Manifest {
            author: self.keys().device_id,
            timestamp,
            realm: context.realm,
            id,
            version,
            body: local.body.clone(),
        };
        let blob = seal_manifest(&manifest, self.signing_key(), key, key_index, &mut OsRng);
        if blob.len() > MAX_VLOB_BYTES {
            return Err(EngineError::InvalidInput(format!(
                "this entry's manifest would be {} bytes, more than the {MAX_VLOB_BYTES} a version may hold",
                blob.len()
            )));
        }
        let request = VlobWriteRequest {
            id,
            version: manifest.version,
            key_index,
            timestamp,
            blob: ByteBuf::from(blob),
        };
        Ok((manifest, request))
    }

    /// Uploads a local entry as the version after its base; `None` if another device wrote that
    /// version first.
    pub(crate) async fn upload_entry(
        &self,
        context: &RealmContext,
        id: EntryId,
        local: &LocalEntry,
    ) -> Result<Option<Manifest>> {
        let (manifest, request) = self.prepare_upload(context, id, local)?;
        match self.remote_write_vlob(context.realm, request).await? {
            WriteOutcome::Written => {
                self.db()
                    .see_version(&context.realm, &id, manifest.version, now())?;
                Ok(Some(manifest))
            }
            WriteOutcome::Conflict => Ok(None),
        }
    }

    /// The workspace list as this device knows it (no network).
    pub(crate) fn local_workspaces(&self) -> Result<Vec<WorkspaceEntry>> {
        let realm = self.user_realm();
        Ok(
            match self.db().entry(&realm, &realm.into())?.map(|e| e.body) {
                Some(ManifestBody::User { workspaces }) => workspaces,
                _ => Vec::new(),
            },
        )
    }

    /// Changes the workspace list locally; [`Client::sync_user_manifest`] uploads it.
    fn change_workspaces(&self, change: impl FnOnce(&mut Vec<WorkspaceEntry>)) -> Result<()> {
        let realm = self.user_realm();
        let id: EntryId = realm.into();
        let mut entry = self.db().entry(&realm, &id)?.unwrap_or(LocalEntry {
            base: None,
            body: ManifestBody::User {
                workspaces: Vec::new(),
            },
        });
        if let ManifestBody::User { workspaces } = &mut entry.body {
            change(workspaces);
        }
        self.db().put_entries(&realm, &[(id, entry)])
    }

    /// Brings the user manifest up to date both ways: takes the remote version, merges local
    /// changes into it, and uploads the result.
    pub async fn sync_user_manifest(&mut self) -> Result<Vec<WorkspaceEntry>> {
        self.refresh().await?;
        let context = self.user_context();
        let realm = context.realm;
        let id: EntryId = realm.into();
        loop {
            let mut local = self.db().entry(&realm, &id)?.unwrap_or(LocalEntry {
                base: None,
                body: ManifestBody::User {
                    workspaces: Vec::new(),
                },
            });
            if let Some(remote) = self.fetch_latest(&context, &[id]).await?.pop()
                && remote.version > local.base_version()
            {
                let merged = merge_workspace_lists(&local, &remote);
                local = LocalEntry {
                    base: Some(remote),
                    body: ManifestBody::User { workspaces: merged },
                };
                self.db().put_entries(&realm, &[(id, local.clone())])?;
            }
            if !local.need_sync() {
                return Ok(workspaces_of(&local.body));
            }
            if let Some(uploaded) = self.upload_entry(&context, id, &local).await? {
                let body = uploaded.body.clone();
                self.db().put_entries(
                    &realm,
                    &[(
                        id,
                        LocalEntry {
                            base: Some(uploaded),
                            body: body.clone(),
                        },
                    )],
                )?;
                return Ok(workspaces_of(&body));
            }
            // Another device of this user wrote first: merge with its version and try again.
        }
    }

    /// A workspace's chain: the stored certificates, validated again, plus new ones from the
    /// server, validated against the (refreshed) identity chain; each dated within the clock
    /// skew of when the server received it, which cannot be after this computer's clock.
    pub(crate) async fn realm_chain(&self, realm: RealmId) -> Result<RealmChain> {
        let mut stored = self.db().realm_certificates(&realm)?;
        let mut chain = RealmChain::new(realm);
        for c in &stored {
            chain.add(self.chain(), &c.certificate, c.received)?;
        }
        let new = self.remote_realm_certificates(realm, chain.len()).await?;
        if !new.is_empty() {
            let now = now();
            for c in &new {
                check_received(c.received, now).map_err(|e| {
                    EngineError::Protocol(format!("a workspace certificate is refused: {e}"))
                })?;
                chain.add(self.chain(), &c.certificate, c.received)?;
            }
            stored.extend(new);
            self.db().set_realm_certificates(&realm, &stored)?;
        }
        Ok(chain)
    }

    /// What it takes to work in the workspace named `name`. When the workspace's key was
    /// rotated since this device last looked, the new keys are taken from this user's messages
    /// (and the other devices' copy of the workspace list) first.
    pub async fn workspace_context(&mut self, name: &str) -> Result<RealmContext> {
        let mut entry = self.find_workspace(name)?;
        self.refresh().await?;
        let chain = self.realm_chain(entry.realm).await?;
        let holds = |entry: &WorkspaceEntry, index: u32| {
            certified_keys(&chain, entry.keys.clone())
                .iter()
                .any(|k| k.index == index)
        };
        // A key handed in a message that did not work may come anew (a new share).
        let undelivered = self.db().undelivered_keys(&entry.realm)?;
        let lacks_undelivered = undelivered.iter().any(|u| !holds(&entry, u.index));
        if chain.key_index() > 0 && (!holds(&entry, chain.key_index()) || lacks_undelivered) {
            self.process_messages().await?;
            self.sync_user_manifest().await?;
            entry = self.find_workspace(name)?;
        }
        let keys = certified_keys(&chain, entry.keys);
        let undelivered = self.heal_undelivered(entry.realm, &keys)?;
        Ok(RealmContext {
            realm: entry.realm,
            keys,
            chain: Some(chain),
            owner: None,
            undelivered,
        })
    }

    /// The key indexes of `realm` handed to this user in messages that do not work, less those
    /// it holds now (handed anew by a new share, or by another device): their stand-ins are
    /// read again. An entry changed here on top of a stand-in keeps it as its base: its upload
    /// conflicts with the real latest version and is merged with it
    /// ([`Client::prepare_upload`]).
    fn heal_undelivered(&self, realm: RealmId, keys: &[IndexedKey]) -> Result<Vec<UndeliveredKey>> {
        let mut still = Vec::new();
        for undelivered in self.db().undelivered_keys(&realm)? {
            if !keys.iter().any(|k| k.index == undelivered.index) {
                still.push(undelivered);
                continue;
            }
            for (id, stand_in) in self.db().key_stand_ins(&realm, undelivered.index)? {
                let Some(local) = self.db().entry(&realm, &id)? else {
                    continue;
                };
                let is_stand_in = local
                    .base
                    .as_ref()
                    .is_some_and(|b| KeyStandIn::digest_of(b).ct_eq(&stand_in.digest));
                if is_stand_in && !local.need_sync() {
                    self.db().remove_entry(&realm, &id)?;
                }
            }
            self.db()
                .forget_undelivered_key(&realm, undelivered.index)?;
            tracing::info!(
                key_index = undelivered.index,
                "this device holds a key it was handed in a message that did not work: what was shown as earlier versions is read again"
            );
        }
        Ok(still)
    }

    /// The same, without asking the server (for offline work).
    pub fn workspace_context_offline(&self, name: &str) -> Result<RealmContext> {
        let entry = self.find_workspace(name)?;
        let mut chain = RealmChain::new(entry.realm);
        for c in self.db().realm_certificates(&entry.realm)? {
            chain.add(self.chain(), &c.certificate, c.received)?;
        }
        let keys = certified_keys(&chain, entry.keys);
        let undelivered = self.heal_undelivered(entry.realm, &keys)?;
        Ok(RealmContext {
            realm: entry.realm,
            keys,
            chain: Some(chain),
            owner: None,
            undelivered,
        })
    }

    fn find_workspace(&self, name: &str) -> Result<WorkspaceEntry> {
        self.local_workspaces()?
            .into_iter()
            .find(|w| w.name.as_str() == name)
            .ok_or_else(|| EngineError::UnknownWorkspace(name.to_owned()))
    }

    /// Creates a workspace: its realm (this user as OWNER, a first key), its empty root folder,
    /// and its entry in the user manifest.
    pub async fn create_workspace(&mut self, name: &str) -> Result<RealmId> {
        let name: EntryName =
            name.parse()
                .map_err(|e: strongroom_protocol::manifests::InvalidEntryName| {
                    EngineError::InvalidInput(e.to_string())
                })?;
        self.sync_user_manifest().await?;
        if self.local_workspaces()?.iter().any(|w| w.name == name) {
            return Err(EngineError::InvalidInput(format!(
                "a workspace named {name:?} exists already"
            )));
        }
        let realm = RealmId::generate(&mut OsRng);
        let key = SecretKey::generate(&mut OsRng);
        let device = self.keys().device_id;
        let t = certificate_time(None);
        let certificates = vec![
            RealmCertificate::Role(RoleCertificate {
                author: device,
                timestamp: t,
                realm,
                user_id: self.keys().user_id,
                role: Some(WorkspaceRole::Owner),
            })
            .sign(self.signing_key()),
            RealmCertificate::KeyRotation(KeyRotationCertificate {
                author: device,
                timestamp: t.plus_micros(1),
                realm,
                key_index: 1,
                key_check: key_check(&key, &realm, 1),
            })
            .sign(self.signing_key()),
        ];
        self.remote_create_realm(realm, certificates).await?;
        // The key goes into the user manifest (which every device of the user reads) before
        // anything is encrypted with it.
        let entry = WorkspaceEntry {
            realm,
            name: name.clone(),
            keys: vec![IndexedKey { index: 1, key }],
        };
        self.change_workspaces(|list| list.push(entry))?;
        self.sync_user_manifest().await?;
        let root = LocalEntry {
            base: None,
            body: ManifestBody::Folder {
                parent: realm.into(),
                children: Default::default(),
            },
        };
        self.db().put_entries(&realm, &[(realm.into(), root)])?;
        // Upload the root right away, so that members see the workspace before anything is in it.
        let context = self.workspace_context(name.as_str()).await?;
        self.push(&context, &crate::files::NoProgress).await?;
        Ok(realm)
    }

    /// The names of this user's workspaces: fetched (new shares included) when the server
    /// answers, else as this device knows them.
    pub async fn workspace_names(&mut self) -> Result<Vec<String>> {
        let fetched = match self.process_messages().await {
            Ok(_) => self.sync_user_manifest().await,
            Err(e) => Err(e),
        };
        let list = match fetched {
            Ok(list) => list,
            Err(EngineError::Unreachable { .. }) => self.local_workspaces()?,
            Err(e) => return Err(e),
        };
        Ok(list
            .into_iter()
            .map(|w| w.name.as_str().to_owned())
            .collect())
    }

    /// This user's workspaces after fetching messages and the user manifest.
    pub async fn workspaces(&mut self) -> Result<Vec<WorkspaceInfo>> {
        self.process_messages().await?;
        let list = self.sync_user_manifest().await?;
        let mut out = Vec::with_capacity(list.len());
        for entry in list {
            let chain = self.realm_chain(entry.realm).await?;
            let mut members: Vec<(Email, WorkspaceRole)> = chain
                .members()
                .filter_map(|(user, role)| {
                    self.chain()
                        .user(&user)
                        .map(|u| (u.certificate.email.clone(), role))
                })
                .collect();
            members.sort();
            out.push(WorkspaceInfo {
                realm: entry.realm,
                name: entry.name,
                role: chain.role(&self.keys().user_id),
                key_index: chain.key_index(),
                members,
            });
        }
        Ok(out)
    }

    /// Gives `email` a role in the workspace (OWNER or MANAGER only). Changing a member's role
    /// sends nothing; a new member receives the workspace's name and keys in a sealed message.
    pub async fn share_workspace(
        &mut self,
        name: &str,
        email: &Email,
        role: WorkspaceRole,
    ) -> Result<()> {
        let context = self.workspace_context(name).await?;
        let chain = context.chain.as_ref().expect("workspace");
        let target = self
            .chain()
            .active_user_by_email(email)
            .ok_or_else(|| {
                EngineError::InvalidInput(format!("no active user with the email {email}"))
            })?
            .certificate
            .clone();
        let certificate = RealmCertificate::Role(RoleCertificate {
            author: self.keys().device_id,
            timestamp: certificate_time(chain.last_timestamp()),
            realm: context.realm,
            user_id: target.user_id,
            role: Some(role),
        })
        .sign(self.signing_key());
        chain
            .validate(self.chain(), &certificate, now())
            .map_err(|e| EngineError::NotAllowed(e.to_string()))?;
        let message = Message {
            author: self.keys().device_id,
            timestamp: now(),
            recipient: target.user_id,
            body: MessageBody::WorkspaceShared {
                realm: context.realm,
                name: name.parse().expect("workspace names are entry names"),
                role,
                keys: context.keys.clone(),
            },
        };
        // A share without the current key would hand out a workspace nobody can write in, and
        // have its recipient blame this user for it.
        context.current_key()?;
        let topic = MessageTopic::of(chain);
        let sealed = seal_message(
            &message,
            topic,
            self.signing_key(),
            &target.public_key,
            &mut OsRng,
        );
        self.remote_add_realm_certificate(
            context.realm,
            certificate,
            vec![OutgoingMessage {
                recipient: target.user_id,
                sealed: ByteBuf::from(sealed),
            }],
        )
        .await
    }

    /// Removes `email` from the workspace and rotates its key, so that what is written from now
    /// on is unreadable to them.
    pub async fn unshare_workspace(&mut self, name: &str, email: &Email) -> Result<()> {
        let context = self.workspace_context(name).await?;
        let chain = context.chain.as_ref().expect("workspace");
        let target = self
            .chain()
            .users()
            .filter(|u| u.certificate.email == *email)
            .find(|u| chain.role(&u.certificate.user_id).is_some())
            .ok_or_else(|| EngineError::InvalidInput(format!("{email} is not a member of {name}")))?
            .certificate
            .user_id;
        let certificate = RealmCertificate::Role(RoleCertificate {
            author: self.keys().device_id,
            timestamp: certificate_time(chain.last_timestamp()),
            realm: context.realm,
            user_id: target,
            role: None,
        })
        .sign(self.signing_key());
        chain
            .validate(self.chain(), &certificate, now())
            .map_err(|e| EngineError::NotAllowed(e.to_string()))?;
        self.remote_add_realm_certificate(context.realm, certificate, Vec::new())
            .await?;
        self.rotate_workspace_key(context.realm).await
    }

    /// Rotates a workspace's key: a new index, certified with its check value, sent sealed to
    /// every other current member and kept in this user's manifest.
    pub async fn rotate_workspace_key(&mut self, realm: RealmId) -> Result<()> {
        // A certificate or share that reached the server meanwhile makes it refuse this one
        // (the chain moved on, or a member the messages miss): taken again on the new chain, so
        // that a removal is never left without its rotation.
        let mut attempts = 0;
        loop {
            match self.rotate_once(realm).await {
                Err(e)
                    if attempts < 3
                        && matches!(
                            e.server_code(),
                            Some(ErrorCode::Conflict | ErrorCode::MalformedRequest)
                        ) =>
                {
                    attempts += 1;
                    tracing::info!(error = %e, "the key rotation is taken again on the workspace's new certificates");
                }
                other => return other,
            }
        }
    }

    /// One attempt of [`Client::rotate_workspace_key`].
    async fn rotate_once(&mut self, realm: RealmId) -> Result<()> {
        self.refresh().await?;
        let chain = self.realm_chain(realm).await?;
        let index = chain.key_index() + 1;
        let key = SecretKey::generate(&mut OsRng);
        let certificate = RealmCertificate::KeyRotation(KeyRotationCertificate {
            author: self.keys().device_id,
            timestamp: certificate_time(chain.last_timestamp()),
            realm,
            key_index: index,
            key_check: key_check(&key, &realm, index),
        })
        .sign(self.signing_key());
        let mut rotated = chain.clone();
        rotated
            .add(self.chain(), &certificate, now())
            .map_err(|e| EngineError::NotAllowed(e.to_string()))?;
        let topic = MessageTopic::of(&rotated);
        // Keep the key before the server knows about it: losing it would lose the workspace.
        let indexed = IndexedKey {
            index,
            key: key.clone(),
        };
        self.change_workspaces(|list| {
            if let Some(w) = list.iter_mut().find(|w| w.realm == realm) {
                w.keys.push(indexed.clone());
            }
        })?;
        self.sync_user_manifest().await?;
        let me = self.keys().user_id;
        let mut messages = Vec::new();
        for (user, _) in chain.members().filter(|(u, _)| *u != me) {
            let Some(recipient) = self.chain().user(&user).filter(|u| !u.is_revoked()) else {
                continue;
            };
            let message = Message {
                author: self.keys().device_id,
                timestamp: now(),
                recipient: user,
                body: MessageBody::WorkspaceKey {
                    realm,
                    key: indexed.clone(),
                },
            };
            let sealed = seal_message(
                &message,
                topic,
                self.signing_key(),
                &recipient.certificate.public_key,
                &mut OsRng,
            );
            messages.push(OutgoingMessage {
                recipient: user,
                sealed: ByteBuf::from(sealed),
            });
        }
        self.remote_add_realm_certificate(realm, certificate, messages)
            .await
    }

    /// Removes a revoked user from every workspace this user manages, rotating each key.
    pub(crate) async fn evict_revoked(&mut self, revoked: UserId) -> Result<()> {
        // One workspace that fails (its chain refused, the server gone) must not leave the
        // others' keys with the revoked user: each is tried, the failures reported together.
        let mut failed = Vec::new();
        for entry in self.sync_user_manifest().await? {
            if let Err(e) = self.evict_from(entry.realm, revoked).await {
                tracing::warn!(workspace = %strongroom_protocol::display::escaped(entry.name.as_str()), error = %e, "the revoked user could not be removed from this workspace");
                failed.push(format!("{}: {e}", entry.name));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(EngineError::EvictionIncomplete(failed.join("; ")))
        }
    }

    /// Removes `revoked` from one workspace this user manages, and rotates its key.
    async fn evict_from(&mut self, realm: RealmId, revoked: UserId) -> Result<()> {
        let chain = self.realm_chain(realm).await?;
        let mine = chain
            .role(&self.keys().user_id)
            .is_some_and(WorkspaceRole::can_manage);
        if !mine {
            return Ok(());
        }
        if chain.role(&revoked).is_none() {
            // Removed already: by an earlier run whose rotation failed, the key is still due.
            if chain.removed_since_rotation(&revoked) {
                return self.rotate_workspace_key(realm).await;
            }
            return Ok(());
        }
        let certificate = RealmCertificate::Role(RoleCertificate {
            author: self.keys().device_id,
            timestamp: certificate_time(chain.last_timestamp()),
            realm,
            user_id: revoked,
            role: None,
        })
        .sign(self.signing_key());
        self.remote_add_realm_certificate(realm, certificate, Vec::new())
            .await?;
        self.rotate_workspace_key(realm).await
    }

    /// Reads new messages: workspaces shared with this user, new keys, removals. Each is
    /// checked against the identity chain and the workspace's chain (the sender's role, the key
    /// check values) before it changes anything. A message whose outer seal fails is the
    /// server's doing and skipped; one sealed by a member who could hand out keys that still
    /// does not work is recorded against that member ([`UndeliveredKey`]), so that versions
    /// under that key are stood in for rather than failing every command.
    pub async fn process_messages(&mut self) -> Result<usize> {
        self.refresh().await?;
        let first = self.db().counter(MESSAGES_COUNTER)?;
        let me = self.keys().user_id;
        let private = self.keys().user_private_key();
        let mut next = first;
        loop {
            let (messages, more) = self.remote_messages(next).await?;
            if more && messages.is_empty() {
                return Err(EngineError::Protocol(
                    "the server announced more messages and sent none".into(),
                ));
            }
            for incoming in messages {
                if incoming.index != next {
                    return Err(EngineError::Protocol(
                        "the server skipped or repeated a message".into(),
                    ));
                }
                let envelope = check_received(incoming.received, now())
                    .map_err(|e| EngineError::Protocol(format!("a message is refused: {e}")))
                    .and_then(|()| {
                        open_envelope(
                            &incoming.sealed,
                            &incoming.sender,
                            &me,
                            self.chain(),
                            incoming.received,
                        )
                        .map_err(EngineError::from)
                    });
                match envelope {
                    Ok(envelope) => {
                        let applied = match open_message(&envelope, &private) {
                            Ok(message) => self.apply_message(&envelope, &message).await,
                            Err(e) => Err(Refusal::Senders(e.to_string())),
                        };
                        match applied {
                            Ok(()) => {}
                            Err(Refusal::Senders(reason)) => {
                                self.record_undelivered(&envelope, reason).await?;
                            }
                            Err(Refusal::Other(e)) => {
                                tracing::warn!(error = %e, "a message was refused");
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "a message was refused"),
                }
                next += 1;
                self.db().set_counter(MESSAGES_COUNTER, next)?;
            }
            if !more {
                return Ok((next - first) as usize);
            }
        }
    }

    /// A message sealed by its sender that does not work: recorded against the sender for its
    /// key index when the sender could hand out this workspace's keys and the index is
    /// certified (else nothing is attributable, and it is only reported).
    async fn record_undelivered(&mut self, envelope: &Envelope<'_>, reason: String) -> Result<()> {
        let topic = envelope.topic;
        let sender = self.email_of(&envelope.sender_user);
        let chain = match self.realm_chain(topic.realm).await {
            Ok(chain) => chain,
            Err(e) => {
                tracing::warn!(error = %e, %sender, "a message that does not work was refused ({reason})");
                return Ok(());
            }
        };
        let could_hand_out = chain
            .role_at(&envelope.sender_user, envelope.timestamp)
            .is_some_and(WorkspaceRole::can_manage);
        // The index must have been certified when the sender sealed the message (within the
        // clock skew): a member removed since cannot hand out, as garbage, a key made after.
        let certified_then = chain.key_index_at(envelope.timestamp.plus_micros(CLOCK_SKEW_MICROS));
        if !could_hand_out || topic.key_index == 0 || topic.key_index > certified_then {
            tracing::warn!(%sender, "a message that does not work was refused ({reason}); its sender could not hand out that key");
            return Ok(());
        }
        // The sender sealed the check values of the keys it hands out: other ones than this
        // device's certificates give are a split view of them, the server's doing.
        if !chain
            .key_checks_digest(topic.key_index)
            .is_some_and(|digest| digest.ct_eq(&topic.key_checks))
        {
            tracing::warn!(%sender, "a message was refused ({reason}): its sender sealed other key check values than the workspace certificates the server sent this device");
            return Ok(());
        }
        let held = self
            .local_workspaces()?
            .into_iter()
            .find(|w| w.realm == topic.realm)
            .is_some_and(|w| {
                certified_keys(&chain, w.keys)
                    .iter()
                    .any(|k| k.index == topic.key_index)
            });
        tracing::warn!(
            %sender,
            key_index = topic.key_index,
            "{sender} handed this user key index {} of a workspace in a message that does not work ({reason}){}",
            topic.key_index,
            if held { "; this device holds that key already" } else { "; versions under that key are shown as earlier ones" }
        );
        if !held {
            self.db().record_undelivered_key(
                &topic.realm,
                &UndeliveredKey {
                    index: topic.key_index,
                    sender: envelope.sender_user,
                    reason,
                },
            )?;
        }
        Ok(())
    }

    async fn apply_message(
        &mut self,
        envelope: &Envelope<'_>,
        message: &Message,
    ) -> std::result::Result<(), Refusal> {
        let sender = envelope.sender_user;
        let topic = envelope.topic;
        let chain = self.realm_chain(topic.realm).await?;
        if !chain
            .role_at(&sender, message.timestamp)
            .is_some_and(WorkspaceRole::can_manage)
        {
            return Err(Refusal::Other(EngineError::NotAllowed(
                "the sender could not share this workspace or rotate its key".into(),
            )));
        }
        match &message.body {
            MessageBody::WorkspaceShared { name, keys, .. } => {
                if !keys.iter().any(|k| k.index == topic.key_index) {
                    return Err(Refusal::Senders(format!(
                        "it lacks key index {}",
                        topic.key_index
                    )));
                }
                check_keys(&chain, keys)?;
                let keys = keys.clone();
                let (realm, name) = (topic.realm, name.clone());
                self.change_workspaces(move |list| {
                    match list.iter_mut().find(|w| w.realm == realm) {
                        Some(existing) => add_keys(existing, &keys),
                        None => {
                            let name = unique_name(list, &name);
                            list.push(WorkspaceEntry { realm, name, keys });
                        }
                    }
                })?;
            }
            MessageBody::WorkspaceKey { key, .. } => {
                check_keys(&chain, std::slice::from_ref(key))?;
                let (realm, key) = (topic.realm, key.clone());
                self.change_workspaces(move |list| {
                    if let Some(existing) = list.iter_mut().find(|w| w.realm == realm) {
                        add_keys(existing, std::slice::from_ref(&key));
                    }
                })?;
            }
            MessageBody::WorkspaceUnshared { .. } => {}
        }
        Ok(())
    }
}

/// Why a message changed nothing: its sender's doing (recorded against them), or anything else.
enum Refusal {
    Senders(String),
    Other(EngineError),
}

impl From<EngineError> for Refusal {
    fn from(e: EngineError) -> Self {
        Refusal::Other(e)
    }
}

/// Each key must be the one its rotation certificate certified (a key that is not is its
/// sender's doing; an index no certificate the server sent certifies is not attributable).
fn check_keys(chain: &RealmChain, keys: &[IndexedKey]) -> std::result::Result<(), Refusal> {
    for k in keys {
        let certified = chain.key_check(k.index).ok_or_else(|| {
            Refusal::Other(EngineError::Protocol(format!(
                "key index {} is not certified",
                k.index
            )))
        })?;
        if !key_check(&k.key, &chain.realm(), k.index).ct_eq(certified) {
            return Err(Refusal::Senders(format!(
                "the key of index {} does not match its certificate",
                k.index
            )));
        }
    }
    Ok(())
}

/// Adds the keys not already held. Two keys of one index are both kept (a rotation refused by
/// the server after its key was kept, another device's copy): the workspace's certificates
/// pick the one to use ([`certified_keys`]).
fn add_keys(entry: &mut WorkspaceEntry, keys: &[IndexedKey]) {
    let realm = entry.realm;
    let check = |k: &IndexedKey| key_check(&k.key, &realm, k.index);
    for k in keys {
        if !entry
            .keys
            .iter()
            .any(|e| e.index == k.index && check(e).ct_eq(&check(k)))
        {
            entry.keys.push(k.clone());
        }
    }
    entry.keys.sort_by_key(|k| k.index);
}

/// The keys the workspace's certificates certify, one per index: a key of an index that another
/// key's rotation certified is never used (it would make every version of that index look
/// like its author's garbage).
fn certified_keys(chain: &RealmChain, keys: Vec<IndexedKey>) -> Vec<IndexedKey> {
    let mut out: Vec<IndexedKey> = Vec::with_capacity(keys.len());
    for k in keys {
        let certified = chain
            .key_check(k.index)
            .is_some_and(|c| key_check(&k.key, &chain.realm(), k.index).ct_eq(c));
        if certified && !out.iter().any(|o| o.index == k.index) {
            out.push(k);
        }
    }
    out
}

fn unique_name(list: &[WorkspaceEntry], name: &EntryName) -> EntryName {
    if !list.iter().any(|w| w.name == *name) {
        return name.clone();
    }
    (2..)
        .map(|n| format!("{name} ({n})"))
        .find_map(|candidate| {
            let candidate: EntryName = candidate.parse().ok()?;
            (!list.iter().any(|w| w.name == candidate)).then_some(candidate)
        })
        .expect("some suffix is free")
}

fn workspaces_of(body: &ManifestBody) -> Vec<WorkspaceEntry> {
    match body {
        ManifestBody::User { workspaces } => workspaces.clone(),
        _ => Vec::new(),
    }
}

/// Three-way merge of workspace lists: additions and removals on either side are kept, keys are
/// united, a local rename wins over the remote name.
fn merge_workspace_lists(local: &LocalEntry, remote: &Manifest) -> Vec<WorkspaceEntry> {
    let base = local
        .base
        .as_ref()
        .map(|b| workspaces_of(&b.body))
        .unwrap_or_default();
    let mine = workspaces_of(&local.body);
    let theirs = workspaces_of(&remote.body);
    let in_list =
        |list: &[WorkspaceEntry], realm: RealmId| list.iter().find(|w| w.realm == realm).cloned();
    let mut merged: Vec<WorkspaceEntry> = Vec::new();
    for remote_entry in &theirs {
        let realm = remote_entry.realm;
        match (in_list(&base, realm), in_list(&mine, realm)) {
            // Removed here since the base.
            (Some(_), None) => continue,
            (base_entry, Some(mut local_entry)) => {
                add_keys(&mut local_entry, &remote_entry.keys);
                if base_entry.is_none_or(|b| b.name == local_entry.name) {
                    local_entry.name = remote_entry.name.clone();
                }
                merged.push(local_entry);
            }
            (None, None) => merged.push(remote_entry.clone()),
        }
    }
    for local_entry in &mine {
        let added_here = in_list(&base, local_entry.realm).is_none();
        if added_here && in_list(&theirs, local_entry.realm).is_none() {
            let name = unique_name(&merged, &local_entry.name);
            merged.push(WorkspaceEntry {
                name,
                ..local_entry.clone()
            });
        }
    }
    merged
}
