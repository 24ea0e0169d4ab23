//! Sync: pull the changes other devices made (by realm checkpoint), push the changes made here
//! (blocks first, then manifests with an optimistic version check), and resolve conflicts:
//! folders merge, and of two concurrent edits of a file both contents are kept, the local one
//! beside the original as a conflict copy.

use std::collections::{BTreeMap, BTreeSet};

use rand_core::OsRng;
use strongroom_protocol::ids::EntryId;
use strongroom_protocol::manifests::{BlockRef, EntryName, Manifest, ManifestBody};
use strongroom_protocol::wire::{MAX_BATCH_WRITES, REALM_PAGE};

use super::{NoProgress, Progress};
use crate::client::Client;
use crate::error::{EngineError, Result};
use crate::local_db::LocalEntry;
use crate::workspaces::RealmContext;

/// What a sync did.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    /// Entries whose newer remote version was taken.
    pub downloaded: usize,
    /// Entries uploaded.
    pub uploaded: usize,
    /// Conflict copies created, by name.
    pub conflicts: Vec<String>,
    /// Entries whose local state now holds another device's changes (conflicts resolved).
    pub remote_changes: Vec<RemoteChange>,
}

/// The parent of an entry's body, if it has one.
pub(crate) fn parent_of(body: &ManifestBody) -> Option<EntryId> {
    match body {
        ManifestBody::Folder { parent, .. }
        | ManifestBody::File { parent, .. }
        | ManifestBody::Symlink { parent, .. } => Some(*parent),
        ManifestBody::User { .. } => None,
    }
}

fn with_parent(body: &ManifestBody, new_parent: EntryId) -> ManifestBody {
    let mut body = body.clone();
    match &mut body {
        ManifestBody::Folder { parent, .. }
        | ManifestBody::File { parent, .. }
        | ManifestBody::Symlink { parent, .. } => *parent = new_parent,
        ManifestBody::User { .. } => {}
    }
    body
}

fn children_of(body: &ManifestBody) -> BTreeMap<EntryName, EntryId> {
    match body {
        ManifestBody::Folder { children, .. } => children.clone(),
        _ => BTreeMap::new(),
    }
}

/// The name of a conflict copy: `report (conflict laptop 2026-11-27 10.04.05).txt`.
pub(crate) fn conflict_name(
    name: &EntryName,
    device: &str,
    taken: &BTreeMap<EntryName, EntryId>,
) -> EntryName {
    let text = name.as_str();
    let (stem, extension) = match text.rfind('.') {
        Some(i) if i > 0 => (&text[..i], &text[i..]),
        _ => (text, ""),
    };
    let when = chrono::Utc::now().format("%Y-%m-%d %H.%M.%S");
    (1..)
        .map(|n| {
            let counter = if n == 1 {
                String::new()
            } else {
                format!(" {n}")
            };
            let mut stem: String = stem.chars().take(150).collect();
            stem.push_str(&format!(" (conflict {device} {when}{counter})"));
            format!("{stem}{extension}")
        })
        .filter_map(|candidate| candidate.parse::<EntryName>().ok())
        .find(|candidate| !taken.contains_key(candidate))
        .expect("some counter is free")
}

/// Three-way merge of a folder's parent: a move made on one side only wins. The parent must
/// follow the move, or the moved folder's new parent lists a folder whose manifest names the
/// old one, which a mount does not follow (a folder moved on one device while another added a
/// file to it would vanish from every mount). Moved on both sides, this side's move is kept.
pub(crate) fn merge_parent(base: Option<EntryId>, mine: EntryId, theirs: EntryId) -> EntryId {
    if Some(mine) == base { theirs } else { mine }
}

/// Three-way merge of a folder's children. A name changed on one side only takes that side;
/// changed on both sides differently, the remote entry keeps the name and the local one gets a
/// conflict name.
pub(crate) fn merge_children(
    base: &BTreeMap<EntryName, EntryId>,
    mine: &BTreeMap<EntryName, EntryId>,
    theirs: &BTreeMap<EntryName, EntryId>,
    device: &str,
) -> BTreeMap<EntryName, EntryId> {
    let names: BTreeSet<&EntryName> = base
        .keys()
        .chain(mine.keys())
        .chain(theirs.keys())
        .collect();
    let mut merged = BTreeMap::new();
    let mut displaced = Vec::new();
    for name in names {
        let (b, m, t) = (base.get(name), mine.get(name), theirs.get(name));
        let chosen = if m == b {
            t
        } else if t == b || m == t {
            m
        } else {
            if let Some(local) = m {
                displaced.push((name.clone(), *local));
            }
            t.or(m)
        };
        if let Some(id) = chosen {
            merged.insert(name.clone(), *id);
        }
    }
    for (name, id) in displaced {
        if !merged.values().any(|v| *v == id) {
            let renamed = conflict_name(&name, device, &merged);
            merged.insert(renamed, id);
        }
    }
    merged
}

impl Client {
    /// Takes the remote versions of the entries this device holds that changed since the last
    /// pull, unless they have local changes (those merge when pushed).
    pub(crate) async fn pull(&self, context: &RealmContext) -> Result<Vec<RemoteChange>> {
        let realm = context.realm;
        let mut since = self.db().checkpoint(&realm)?;
        if since == 0 && !self.db().holds_entries(&realm)? {
            // Nothing held here yet: no past change concerns this device, start from now.
            since = self.remote_changes(realm, u64::MAX).await?.checkpoint;
            self.db().set_checkpoint(&realm, since)?;
            return Ok(Vec::new());
        }
        let mut taken = Vec::new();
        loop {
            let response = self.remote_changes(realm, since).await?;
            let mut ids: Vec<EntryId> = Vec::new();
            for change in &response.changes {
                if change.checkpoint <= since {
                    return Err(EngineError::Protocol(
                        "the server sent changes out of order".into(),
                    ));
                }
                since = change.checkpoint;
                if !ids.contains(&change.id) && self.db().entry(&realm, &change.id)?.is_some() {
                    ids.push(change.id);
                }
            }
            for manifest in self.fetch_latest(context, &ids).await? {
                taken.extend(self.take_remote(&realm, manifest)?);
            }
            if response.changes.is_empty() {
                since = since.max(response.checkpoint);
            }
            self.db().set_checkpoint(&realm, since)?;
            if (response.changes.len() as u64) < REALM_PAGE {
                return Ok(taken);
            }
        }
    }

    /// Takes a validated remote version for an entry without local changes; says what changed.
    fn take_remote(
        &self,
        realm: &strongroom_protocol::ids::RealmId,
        manifest: Manifest,
    ) -> Result<Option<RemoteChange>> {
        let local = self.db().entry(realm, &manifest.id)?;
        if local
            .as_ref()
            .is_some_and(|l| l.need_sync() || l.base_version() >= manifest.version)
        {
            return Ok(None);
        }
        let id = manifest.id;
        let body = manifest.body.clone();
        let change = RemoteChange {
            id,
            parent: match &body {
                ManifestBody::Folder { .. } => None,
                other => parent_of(other),
            },
            names: changed_names(local.as_ref().map(|l| &l.body), &body),
        };
        self.db().put_entries(
            realm,
            &[(
                id,
                LocalEntry {
                    base: Some(manifest),
                    body,
                },
            )],
        )?;
        Ok(Some(change))
    }

    /// Uploads the blocks of every file waiting for upload, and nothing else. Blocks are
    /// immutable and named by random ids, so this needs no coordination with changes made
    /// meanwhile; a mount runs it before [`Client::push`] so that the push, which must not
    /// interleave with changes, is short.
    pub(crate) async fn upload_pending_blocks(&self, context: &RealmContext) -> Result<()> {
        let pending = self.db().entries_to_sync(&context.realm)?;
        let blocks = self.blocks_of(context, &pending).await?;
        self.upload_blocks(context, &blocks, &NoProgress).await
    }

    /// Every block of the files among `entries` (data blocks and index blocks).
    async fn blocks_of(
        &self,
        context: &RealmContext,
        entries: &[(EntryId, LocalEntry)],
    ) -> Result<Vec<BlockRef>> {
        let mut blocks = Vec::new();
        for (_, local) in entries {
            if let ManifestBody::File {
                blocks: inline,
                index,
                ..
            } = &local.body
            {
                blocks.extend(self.file_blocks(context, inline, index).await?);
                blocks.extend(index.iter().cloned());
            }
        }
        Ok(blocks)
    }

    /// Uploads every local change of the realm, in waves: files and links first, then folders
    /// deepest first, so that a folder never names an entry the server does not have yet. In each
    /// wave the blocks go up in parallel, then the manifests in batches (one transaction each on
    /// the server and here).
    pub(crate) async fn push(
        &self,
        context: &RealmContext,
        progress: &dyn Progress,
    ) -> Result<SyncReport> {
        self.push_between_changes(context, progress, None).await
    }

    /// [`Client::push`], taking `changes` (a session's change lock) only around each batch of
    /// manifests: the round's pending entries are read in one query (a consistent snapshot),
    /// blocks go up without the lock, and each batch records what it wrote, and resolves its
    /// conflicts from the entries as they are then, under the lock, so that changes made
    /// meanwhile are neither lost nor held behind the whole upload.
    pub(crate) async fn push_between_changes(
        &self,
        context: &RealmContext,
        progress: &dyn Progress,
        interleave: Option<Interleave<'_>>,
    ) -> Result<SyncReport> {
        let realm = context.realm;
        let mut report = SyncReport::default();
        // Between a session's changes, one round: what changes meanwhile goes up with the next
        // push (a busy mount would otherwise never finish its rounds).
        let rounds = if interleave.is_some() { 1 } else { 16 };
        // Entries this device must not write (see `prepare_upload`): the rest still goes up,
        // and the first refusal is the push's error.
        let mut held_back: Vec<(EntryId, EngineError)> = Vec::new();
        let finish = |report: SyncReport, held_back: Vec<(EntryId, EngineError)>| match held_back
            .into_iter()
            .next()
        {
            Some((_, refusal)) => Err(refusal),
            None => Ok(report),
        };
        for _round in 0..rounds {
            let mut pending = self.db().entries_to_sync(&realm)?;
            pending.retain(|(id, _)| !held_back.iter().any(|(held, _)| held == id));
            if pending.is_empty() {
                return finish(report, held_back);
            }
            let mut waves: BTreeMap<u32, Vec<(EntryId, LocalEntry)>> = BTreeMap::new();
            for (id, local) in pending {
                let wave = match local.body {
                    ManifestBody::Folder { .. } => 1_000_000 - self.depth(&realm, id)?,
                    _ => 0,
                };
                waves.entry(wave).or_default().push((id, local));
            }
            for wave in waves.into_values() {
                let blocks = self.blocks_of(context, &wave).await?;
                self.upload_blocks(context, &blocks, progress).await?;
                for batch in batches(wave) {
                    let _between = match &interleave {
                        Some(i) => Some(i.changes.lock().await),
                        None => None,
                    };
                    let written = self
                        .upload_batch(context, batch, &mut report, &mut held_back)
                        .await;
                    if let Some(i) = &interleave {
                        (i.after_batch)();
                    }
                    written?;
                }
            }
        }
        if interleave.is_some() {
            return finish(report, held_back);
        }
        Err(EngineError::Protocol(
            "changes kept conflicting with other devices; run `strongroom sync` again".into(),
        ))
    }

    /// Writes a batch of manifests; records what was written, resolves what conflicted.
    async fn upload_batch(
        &self,
        context: &RealmContext,
        batch: Vec<(EntryId, LocalEntry)>,
        report: &mut SyncReport,
        held_back: &mut Vec<(EntryId, EngineError)>,
    ) -> Result<()> {
        let realm = context.realm;
        let mut prepared = Vec::with_capacity(batch.len());
        let mut requests = Vec::with_capacity(batch.len());
        for (id, local) in batch {
            let (manifest, request) = match self.prepare_upload(context, id, &local) {
                Ok(prepared) => prepared,
                Err(refusal @ EngineError::CannotReadLatest { .. }) => {
                    tracing::warn!(entry = %id, "{refusal}");
                    held_back.push((id, refusal));
                    continue;
                }
                Err(e) => return Err(e),
            };
            prepared.push((id, local, manifest));
            requests.push(request);
        }
        if requests.is_empty() {
            return Ok(());
        }
        let written = self.remote_write_vlobs(realm, requests).await?;
        let mut rows = Vec::new();
        let mut conflicts = Vec::new();
        for ((id, local, manifest), ok) in prepared.into_iter().zip(written) {
            if ok {
                // Another process of this device may have changed the entry meanwhile: keep its
                // content, on top of what was just uploaded.
                let current = self
                    .db()
                    .entry(&realm, &id)?
                    .map(|e| e.body)
                    .unwrap_or(manifest.body.clone());
                rows.push((
                    id,
                    LocalEntry {
                        base: Some(manifest),
                        body: current,
                    },
                ));
            } else {
                conflicts.push((id, local));
            }
        }
        let versions: Vec<(EntryId, u32)> =
            rows.iter().map(|(id, e)| (*id, e.base_version())).collect();
        self.db().put_entries(&realm, &rows)?;
        self.db()
            .see_versions(&realm, &versions, crate::clock::now())?;
        report.uploaded += rows.len();
        for (id, snapshot) in conflicts {
            // The entry as it is now: it may have changed since the round's snapshot.
            let local = self.db().entry(&realm, &id)?.unwrap_or(snapshot);
            if let Some(name) = self.resolve_conflict(context, id, local, report).await? {
                report.conflicts.push(name);
            }
        }
        Ok(())
    }

    fn depth(&self, realm: &strongroom_protocol::ids::RealmId, mut id: EntryId) -> Result<u32> {
        let root: EntryId = (*realm).into();
        let mut depth = 0;
        while id != root && depth < 4096 {
            match self
                .db()
                .entry(realm, &id)?
                .and_then(|e| parent_of(&e.body))
            {
                Some(parent) => id = parent,
                None => break,
            }
            depth += 1;
        }
        Ok(depth)
    }

    /// Another device wrote this entry first: merge folders; keep both contents of a file.
    async fn resolve_conflict(
        &self,
        context: &RealmContext,
        id: EntryId,
        local: LocalEntry,
        report: &mut SyncReport,
    ) -> Result<Option<String>> {
        let realm = context.realm;
        let remote = self
            .fetch_latest(context, &[id])
            .await?
            .pop()
            .ok_or_else(|| {
                EngineError::Protocol(
                    "the server reported a conflict on an entry it does not have".into(),
                )
            })?;
        let device = self.keys().device_label.to_string();
        match (&local.body, &remote.body) {
            (
                ManifestBody::Folder {
                    parent,
                    children: mine,
                },
                ManifestBody::Folder {
                    children: theirs, ..
                },
            ) => {
                let base = local
                    .base
                    .as_ref()
                    .map(|b| children_of(&b.body))
                    .unwrap_or_default();
                let merged = merge_children(&base, mine, theirs, &device);
                let body = ManifestBody::Folder {
                    parent: merge_parent(
                        local.base.as_ref().and_then(|b| parent_of(&b.body)),
                        *parent,
                        parent_of(&remote.body).unwrap_or(*parent),
                    ),
                    children: merged,
                };
                report.remote_changes.push(RemoteChange {
                    id,
                    parent: None,
                    names: changed_names(Some(&local.body), &body),
                });
                self.db().put_entries(
                    &realm,
                    &[(
                        id,
                        LocalEntry {
                            base: Some(remote),
                            body,
                        },
                    )],
                )?;
                Ok(None)
            }
            _ => {
                // Both contents are kept: the remote version keeps the name and the entry's
                // identity; the local content becomes a new entry beside it.
                let parent_id = parent_of(&remote.body)
                    .or_else(|| parent_of(&local.body))
                    .unwrap_or(realm.into());
                let copy_id = EntryId::generate(&mut OsRng);
                let copy = LocalEntry {
                    base: None,
                    body: with_parent(&local.body, parent_id),
                };
                let mut parent = self.db().entry(&realm, &parent_id)?.ok_or_else(|| {
                    EngineError::Protocol("the conflicting file's folder is unknown here".into())
                })?;
                let ManifestBody::Folder { children, .. } = &mut parent.body else {
                    return Err(EngineError::Protocol(
                        "a file's parent is not a folder".into(),
                    ));
                };
                let name = children
                    .iter()
                    .find(|(_, child)| **child == id)
                    .map(|(name, _)| name.clone())
                    .unwrap_or_else(|| "conflict".parse().expect("valid"));
                let copy_name = conflict_name(&name, &device, children);
                children.insert(copy_name.clone(), copy_id);
                let body = remote.body.clone();
                report.remote_changes.push(RemoteChange {
                    id,
                    parent: parent_of(&body),
                    names: Vec::new(),
                });
                report.remote_changes.push(RemoteChange {
                    id: parent_id,
                    parent: None,
                    names: vec![copy_name.clone()],
                });
                self.db().put_entries(
                    &realm,
                    &[
                        (
                            id,
                            LocalEntry {
                                base: Some(remote),
                                body,
                            },
                        ),
                        (copy_id, copy),
                        (parent_id, parent),
                    ],
                )?;
                Ok(Some(copy_name.to_string()))
            }
        }
    }

    /// Pull, then push, one workspace.
    pub async fn sync_workspace(
        &mut self,
        name: &str,
        progress: &dyn Progress,
    ) -> Result<SyncReport> {
        let context = self.workspace_context(name).await?;
        let downloaded = self.pull(&context).await?.len();
        let mut report = self.push(&context, progress).await?;
        report.downloaded = downloaded;
        Ok(report)
    }

    /// Messages, the user manifest, then every workspace.
    pub async fn sync_all(&mut self) -> Result<Vec<(String, SyncReport)>> {
        self.process_messages().await?;
        let workspaces = self.sync_user_manifest().await?;
        let mut reports = Vec::new();
        for workspace in workspaces {
            let name = workspace.name.to_string();
            let report = self.sync_workspace(&name, &NoProgress).await?;
            reports.push((name, report));
        }
        Ok(reports)
    }
}

/// Splits a wave into batches the server accepts: at most [`MAX_BATCH_WRITES`] writes and about
/// 3 MiB of manifests each (a body is at most 4 MiB).
fn batches(wave: Vec<(EntryId, LocalEntry)>) -> Vec<Vec<(EntryId, LocalEntry)>> {
    const BUDGET: usize = 3 << 20;
    let mut out: Vec<Vec<(EntryId, LocalEntry)>> = Vec::new();
    let mut size = 0;
    for item in wave {
        // The encrypted manifest is a little larger than the encoded body.
        let estimate = item.1.encode_len() + 256;
        let full = out
            .last()
            .is_none_or(|b| b.len() >= MAX_BATCH_WRITES || size + estimate > BUDGET);
        if full {
            out.push(Vec::new());
            size = 0;
        }
        size += estimate;
        out.last_mut().expect("pushed").push(item);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> EntryId {
        EntryId::from_bytes([n; 16])
    }

    fn map(items: &[(&str, u8)]) -> BTreeMap<EntryName, EntryId> {
        items
            .iter()
            .map(|(n, i)| (n.parse().unwrap(), id(*i)))
            .collect()
    }

    #[test]
    fn folders_merge_additions_and_removals_from_both_sides() {
        let base = map(&[("a", 1), ("b", 2)]);
        let mine = map(&[("a", 1), ("c", 3)]); // removed b, added c
        let theirs = map(&[("a", 1), ("b", 2), ("d", 4)]); // added d
        assert_eq!(
            merge_children(&base, &mine, &theirs, "laptop"),
            map(&[("a", 1), ("c", 3), ("d", 4)])
        );
    }

    #[test]
    fn same_name_added_on_both_sides_keeps_both() {
        let base = map(&[]);
        let mine = map(&[("x.txt", 1)]);
        let theirs = map(&[("x.txt", 2)]);
        let merged = merge_children(&base, &mine, &theirs, "laptop");
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[&"x.txt".parse::<EntryName>().unwrap()], id(2));
        let (copy, copy_id) = merged.iter().find(|(n, _)| n.as_str() != "x.txt").unwrap();
        assert_eq!(*copy_id, id(1));
        assert!(copy.as_str().starts_with("x (conflict laptop "), "{copy}");
        assert!(copy.as_str().ends_with(").txt"), "{copy}");
    }

    #[test]
    fn a_folder_moved_on_one_side_keeps_the_move() {
        let (old, new, other) = (id(1), id(2), id(3));
        assert_eq!(merge_parent(Some(old), old, new), new, "moved remotely");
        assert_eq!(merge_parent(Some(old), new, old), new, "moved here");
        assert_eq!(
            merge_parent(Some(old), new, other),
            new,
            "moved on both sides"
        );
        assert_eq!(
            merge_parent(None, new, other),
            new,
            "never uploaded from here"
        );
    }

    #[test]
    fn removal_against_a_remote_change_keeps_the_change() {
        let base = map(&[("a", 1)]);
        let mine = map(&[]);
        let theirs = map(&[("a", 5)]);
        assert_eq!(merge_children(&base, &mine, &theirs, "d"), map(&[("a", 5)]));
    }
}

/// How a long-lived session lets a push interleave with its changes
/// ([`Client::push_between_changes`]).
pub(crate) struct Interleave<'a> {
    /// The session's change lock, taken around each batch of manifests.
    pub changes: &'a tokio::sync::Mutex<()>,
    /// Called under that lock after each batch: the batch changed entries in the database.
    pub after_batch: &'a (dyn Fn() + Send + Sync),
}

/// An entry another device changed, as taken by a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteChange {
    /// The entry (its content, attributes or children changed).
    pub id: EntryId,
    /// For a file or link, the folder that holds it now.
    pub parent: Option<EntryId>,
    /// For a folder, the names of children that appeared, went or now name another entry.
    pub names: Vec<EntryName>,
}

/// The child names whose entry differs between two versions of a folder.
fn changed_names(old: Option<&ManifestBody>, new: &ManifestBody) -> Vec<EntryName> {
    let empty = BTreeMap::new();
    let children = |body: Option<&ManifestBody>| match body {
        Some(ManifestBody::Folder { children, .. }) => children.clone(),
        _ => empty.clone(),
    };
    let (old, new) = (children(old), children(Some(new)));
    let mut names: Vec<EntryName> = old
        .iter()
        .filter(|(name, id)| new.get(*name) != Some(*id))
        .map(|(name, _)| name.clone())
        .collect();
    names.extend(new.keys().filter(|name| !old.contains_key(*name)).cloned());
    names
}
