//! The operations on paths.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand_core::OsRng;
use strongroom_protocol::ids::EntryId;
use strongroom_protocol::manifests::{EntryName, ManifestBody};
use strongroom_protocol::time::Timestamp;

use super::destination::{LocalFolder, NameRules, unrepresentable};
use super::path::WorkspacePath;
use super::sync::SyncReport;
use super::tree::Tree;
use super::{NoProgress, Progress};
use crate::client::Client;
use crate::error::{EngineError, Result};
use crate::local_db::LocalEntry;
use crate::workspaces::RealmContext;

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A folder.
    Folder,
    /// A file of this size.
    File {
        /// Size in bytes.
        size: u64,
    },
    /// A symbolic link.
    Symlink {
        /// Its target.
        target: String,
    },
}

/// One entry of a folder listing.
#[derive(Debug, Clone)]
pub struct ListedEntry {
    /// Its name.
    pub name: EntryName,
    /// Its id.
    pub id: EntryId,
    /// What it is.
    pub kind: EntryKind,
    /// Its current version (0: not uploaded yet).
    pub version: u32,
    /// Whether it has changes waiting for upload.
    pub pending: bool,
}

pub(crate) fn kind_of(body: &ManifestBody) -> EntryKind {
    match body {
        ManifestBody::Folder { .. } | ManifestBody::User { .. } => EntryKind::Folder,
        ManifestBody::File { size, .. } => EntryKind::File { size: *size },
        ManifestBody::Symlink { target, .. } => EntryKind::Symlink {
            target: target.clone(),
        },
    }
}

fn not_a_folder(path: &WorkspacePath) -> EngineError {
    EngineError::InvalidInput(format!("{path} is not a folder"))
}

/// A workspace opened for one command: its context, whether the server answers, and the
/// changes the command staged (committed to the local database in one transaction, so that a
/// command is all or nothing, and a big tree costs one commit rather than one per file).
pub(crate) struct Opened {
    pub context: RealmContext,
    pub online: bool,
    /// Read-only view of the workspace as it was at this time.
    pub at: Option<Timestamp>,
    staged: std::sync::Mutex<HashMap<EntryId, LocalEntry>>,
    folders: std::sync::Mutex<HashMap<Vec<EntryName>, EntryId>>,
}

impl Opened {
    fn new(context: RealmContext, online: bool) -> Self {
        Self {
            context,
            online,
            at: None,
            staged: Default::default(),
            folders: Default::default(),
        }
    }

    fn staged(&self, id: &EntryId) -> Option<LocalEntry> {
        self.staged.lock().expect("staging lock").get(id).cloned()
    }

    /// Stages changed entries.
    pub(crate) fn stage(&self, rows: Vec<(EntryId, LocalEntry)>) {
        self.staged.lock().expect("staging lock").extend(rows);
    }

    /// Runs `f` on a staged entry in place (it must be staged).
    fn with_staged<T>(&self, id: &EntryId, f: impl FnOnce(&mut LocalEntry) -> T) -> T {
        let mut staged = self.staged.lock().expect("staging lock");
        f(staged.get_mut(id).expect("the entry was staged"))
    }

    /// A folder this command already resolved or created, by path.
    fn known_folder(&self, components: &[EntryName]) -> Option<EntryId> {
        self.folders
            .lock()
            .expect("folders lock")
            .get(components)
            .copied()
    }

    fn remember_folder(&self, components: &[EntryName], id: EntryId) {
        self.folders
            .lock()
            .expect("folders lock")
            .insert(components.to_vec(), id);
    }
}

impl Client {
    /// Opens a workspace: online when the server answers (after taking new messages, the user
    /// manifest and the other devices' changes), else from what this device knows.
    pub(crate) async fn open_workspace(&mut self, name: &str) -> Result<Opened> {
        let attempt: Result<RealmContext> = async {
            if self
                .local_workspaces()?
                .iter()
                .all(|w| w.name.as_str() != name)
            {
                self.process_messages().await?;
                self.sync_user_manifest().await?;
            }
            self.workspace_context(name).await
        }
        .await;
        match attempt {
            Ok(context) => {
                self.pull(&context).await?;
                Ok(Opened::new(context, true))
            }
            Err(EngineError::Unreachable { server, reason }) => {
                tracing::info!(%server, %reason, "working offline");
                Ok(Opened::new(self.workspace_context_offline(name)?, false))
            }
            Err(e) => Err(e),
        }
    }

    /// Opens a workspace read-only, as it was at `at` (this needs the server).
    pub(crate) async fn open_workspace_at(&mut self, name: &str, at: Timestamp) -> Result<Opened> {
        let mut opened = self.open_workspace(name).await?;
        if !opened.online {
            return Err(EngineError::InvalidInput(
                "reading the past needs the server, which is unreachable".into(),
            ));
        }
        opened.at = Some(at);
        Ok(opened)
    }

    async fn open_for_reading(&mut self, name: &str, at: Option<Timestamp>) -> Result<Opened> {
        match at {
            Some(at) => self.open_workspace_at(name, at).await,
            None => self.open_workspace(name).await,
        }
    }

    /// Entries by id: local ones, and (online) the missing ones fetched in one batch. In a view
    /// of the past, every entry comes from the server as of that time (nothing local is used or
    /// changed).
    pub(crate) async fn load_entries(
        &self,
        opened: &Opened,
        ids: &[EntryId],
    ) -> Result<HashMap<EntryId, LocalEntry>> {
        self.load_entries_from(opened, ids, true).await
    }

    /// As [`Client::load_entries`]; with `fetch_missing` false, those not on this device are
    /// left out instead of fetched (a view of the past always fetches).
    pub(crate) async fn load_entries_from(
        &self,
        opened: &Opened,
        ids: &[EntryId],
        fetch_missing: bool,
    ) -> Result<HashMap<EntryId, LocalEntry>> {
        let realm = opened.context.realm;
        if let Some(at) = opened.at {
            let mut found = HashMap::with_capacity(ids.len());
            for vlob in self.remote_read_vlobs(realm, ids, Some(at)).await? {
                let manifest = self.open_or_stand_in(&opened.context, &vlob).await?;
                if manifest.timestamp > at {
                    return Err(EngineError::Protocol(
                        "the server answered with a version from after the time asked".into(),
                    ));
                }
                let entry = LocalEntry {
                    body: manifest.body.clone(),
                    base: Some(manifest),
                };
                found.insert(vlob.id, entry);
            }
            return Ok(found);
        }
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match opened
                .staged(id)
                .map(Some)
                .unwrap_or(self.db().entry(&realm, id)?)
            {
                Some(entry) => {
                    found.insert(*id, entry);
                }
                None => missing.push(*id),
            }
        }
        if fetch_missing && !missing.is_empty() && opened.online {
            let fetched = self.fetch_latest(&opened.context, &missing).await?;
            let mut rows = Vec::with_capacity(fetched.len());
            for manifest in fetched {
                let entry = LocalEntry {
                    body: manifest.body.clone(),
                    base: Some(manifest),
                };
                rows.push((entry.base.as_ref().expect("set").id, entry));
            }
            self.db().put_entries(&realm, &rows)?;
            found.extend(rows);
        }
        Ok(found)
    }

    async fn load_entry(&self, opened: &Opened, id: EntryId) -> Result<Option<LocalEntry>> {
        Ok(self.load_entries(opened, &[id]).await?.remove(&id))
    }

    /// The root folder (empty until its creator's first upload reaches this device).
    pub(crate) async fn root(&self, opened: &Opened) -> Result<LocalEntry> {
        let realm = opened.context.realm;
        Ok(self
            .load_entry(opened, realm.into())
            .await?
            .unwrap_or(LocalEntry {
                base: None,
                body: ManifestBody::Folder {
                    parent: realm.into(),
                    children: Default::default(),
                },
            }))
    }

    /// The entry at a path.
    pub(crate) async fn resolve(
        &self,
        opened: &Opened,
        path: &WorkspacePath,
    ) -> Result<(EntryId, LocalEntry)> {
        let mut id: EntryId = opened.context.realm.into();
        let mut entry = self.root(opened).await?;
        for name in &path.components {
            let ManifestBody::Folder { children, .. } = &entry.body else {
                return Err(EngineError::NotFound(path.to_string()));
            };
            let child = *children
                .get(name)
                .ok_or_else(|| EngineError::NotFound(path.to_string()))?;
            entry = match self.load_entry(opened, child).await? {
                Some(entry) => entry,
                None if !opened.online => {
                    return Err(EngineError::InvalidInput(format!(
                        "{path} is not available offline (the server is unreachable)"
                    )));
                }
                // Its folder lists it: the server owes an answer (or, in a view of the past,
                // the entry was only written later).
                None => {
                    return Err(match self.first_withheld(opened, &[child]).await? {
                        Some(_) => EngineError::Withheld(path.to_string()),
                        None => EngineError::NotFound(path.to_string()),
                    });
                }
            };
            id = child;
        }
        Ok((id, entry))
    }

    /// Lists a folder (or describes a file).
    pub async fn list(
        &mut self,
        path: &WorkspacePath,
        at: Option<Timestamp>,
    ) -> Result<Vec<ListedEntry>> {
        let opened = self.open_for_reading(&path.workspace, at).await?;
        let (id, entry) = self.resolve(&opened, path).await?;
        let ManifestBody::Folder { children, .. } = &entry.body else {
            let name = path
                .components
                .last()
                .cloned()
                .unwrap_or_else(|| "/".parse().expect("never"));
            return Ok(vec![ListedEntry {
                name,
                id,
                kind: kind_of(&entry.body),
                version: entry.base_version(),
                pending: entry.need_sync(),
            }]);
        };
        let ids: Vec<EntryId> = children.values().copied().collect();
        let loaded = self.load_entries(&opened, &ids).await?;
        let missing: Vec<EntryId> = ids
            .iter()
            .filter(|id| !loaded.contains_key(id))
            .copied()
            .collect();
        let mut withheld = Vec::new();
        let mut rest = &missing[..];
        while let Some(hidden) = self.first_withheld(&opened, rest).await? {
            withheld.push(hidden);
            let at = rest
                .iter()
                .position(|id| *id == hidden)
                .expect("among the missing");
            rest = &rest[at + 1..];
        }
        // What is left out now, and not withheld, is legitimately absent (offline, or later
        // than a view's time).
        let listed: Vec<ListedEntry> = children
            .iter()
            .filter_map(|(name, id)| {
                let entry = loaded.get(id)?;
                Some(ListedEntry {
                    name: name.clone(),
                    id: *id,
                    kind: kind_of(&entry.body),
                    version: entry.base_version(),
                    pending: entry.need_sync(),
                })
            })
            .collect();
        if withheld.is_empty() {
            return Ok(listed);
        }
        Err(EngineError::PartlyWithheld {
            listed,
            withheld: children
                .iter()
                .filter(|(_, id)| withheld.contains(id))
                .map(|(name, _)| path.join(name).to_string())
                .collect(),
            removable: opened.at.is_none() && self.check_writable(&opened).is_ok(),
        })
    }

    /// Commits what the command staged, in one transaction: durable from here on.
    pub(crate) fn commit(&self, opened: &Opened) -> Result<()> {
        let rows: Vec<(EntryId, LocalEntry)> = opened
            .staged
            .lock()
            .expect("staging lock")
            .drain()
            .collect();
        self.db().put_entries(&opened.context.realm, &rows)
    }

    /// Commits, then uploads what is pending when online; offline, the change waits for the
    /// next sync.
    async fn finish(&self, opened: &Opened, progress: &dyn Progress) -> Result<Option<SyncReport>> {
        self.commit(opened)?;
        progress.stored();
        if !opened.online {
            return Ok(None);
        }
        match self.push(&opened.context, progress).await {
            Ok(report) => Ok(Some(report)),
            Err(EngineError::Unreachable { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn check_writable(&self, opened: &Opened) -> Result<()> {
        if opened.at.is_some() {
            return Err(EngineError::InvalidInput(
                "a view of the past is read-only".into(),
            ));
        }
        let chain = opened.context.chain.as_ref().expect("workspace");
        match chain.role(&self.keys().user_id) {
            Some(role) if role.can_write() => Ok(()),
            role => Err(EngineError::NotAllowed(format!(
                "your role in this workspace ({}) does not allow writing",
                role.map(|r| r.to_string().to_uppercase())
                    .unwrap_or_else(|| "none".into())
            ))),
        }
    }

    /// Creates a folder (and missing parents). Returns `None` when stored locally only.
    pub async fn mkdir(&mut self, path: &WorkspacePath) -> Result<Option<SyncReport>> {
        let opened = self.open_workspace(&path.workspace).await?;
        self.check_writable(&opened)?;
        self.ensure_folder(&opened, path).await?;
        self.finish(&opened, &NoProgress).await
    }

    /// The folder at `path`, created (with its parents) if missing.
    async fn ensure_folder(&self, opened: &Opened, path: &WorkspacePath) -> Result<EntryId> {
        if let Some(id) = opened.known_folder(&path.components) {
            return Ok(id);
        }
        let realm = opened.context.realm;
        let mut id: EntryId = realm.into();
        let mut entry = self.root(opened).await?;
        for (depth, name) in path.components.iter().enumerate() {
            let ManifestBody::Folder { children, .. } = &entry.body else {
                return Err(not_a_folder(&WorkspacePath {
                    workspace: path.workspace.clone(),
                    components: path.components[..depth].to_vec(),
                }));
            };
            match children.get(name) {
                Some(child) => {
                    let child = *child;
                    entry = self
                        .load_entry(opened, child)
                        .await?
                        .ok_or_else(|| EngineError::NotFound(path.to_string()))?;
                    id = child;
                }
                None => {
                    let child = EntryId::generate(&mut OsRng);
                    let folder = LocalEntry {
                        base: None,
                        body: ManifestBody::Folder {
                            parent: id,
                            children: Default::default(),
                        },
                    };
                    let mut parent = entry;
                    if let ManifestBody::Folder { children, .. } = &mut parent.body {
                        children.insert(name.clone(), child);
                    }
                    opened.stage(vec![(id, parent), (child, folder.clone())]);
                    entry = folder;
                    id = child;
                }
            }
        }
        if !matches!(entry.body, ManifestBody::Folder { .. }) {
            return Err(not_a_folder(path));
        }
        opened.remember_folder(&path.components, id);
        Ok(id)
    }

    /// Copies a local file or folder (recursively) into the workspace. When `dest` is an existing
    /// folder the copy goes inside it. Durable once this returns; uploaded if online.
    pub async fn put(
        &mut self,
        local: &Path,
        dest: &WorkspacePath,
        progress: &dyn Progress,
    ) -> Result<Option<SyncReport>> {
        let metadata = std::fs::symlink_metadata(local)
            .map_err(|e| EngineError::io(format!("cannot read {}", local.display()), e))?;
        let opened = self.open_workspace(&dest.workspace).await?;
        self.check_writable(&opened)?;
        let target = match self.resolve(&opened, dest).await {
            Ok((_, entry))
                if matches!(entry.body, ManifestBody::Folder { .. })
                    && !dest.components.is_empty()
                    || dest.components.is_empty() =>
            {
                let name = local.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                    EngineError::InvalidInput(format!("{} has no usable name", local.display()))
                })?;
                dest.join(&name.parse().map_err(
                    |e: strongroom_protocol::manifests::InvalidEntryName| {
                        EngineError::InvalidInput(e.to_string())
                    },
                )?)
            }
            _ => dest.clone(),
        };
        progress.add_total(if metadata.is_dir() {
            tree_size(local)
        } else {
            metadata.len()
        });
        let eager = opened
            .online
            .then(|| self.eager_uploads(opened.context.realm));
        let stored = self
            .put_tree(&opened, local, &target, progress, eager.as_ref())
            .await;
        let failed = match eager {
            Some(eager) => eager.finish().await,
            None => Vec::new(),
        };
        stored?;
        // Blocks the server did not acknowledge become dirty cache blocks, durable before the
        // manifests that name them are committed.
        self.keep_for_upload(opened.context.realm, failed)?;
        self.finish(&opened, progress).await
    }

    async fn put_tree(
        &self,
        opened: &Opened,
        local: &Path,
        target: &WorkspacePath,
        progress: &dyn Progress,
        eager: Option<&super::io::EagerUploads>,
    ) -> Result<()> {
        // Depth-first with an explicit stack: no recursion limit on deep trees.
        let mut stack = vec![(local.to_path_buf(), target.clone())];
        while let Some((local, target)) = stack.pop() {
            let metadata = std::fs::symlink_metadata(&local)
                .map_err(|e| EngineError::io(format!("cannot read {}", local.display()), e))?;
            if metadata.is_dir() {
                self.ensure_folder(opened, &target).await?;
                let mut children: Vec<_> = std::fs::read_dir(&local)
                    .map_err(|e| EngineError::io(format!("cannot list {}", local.display()), e))?
                    .collect::<std::io::Result<Vec<_>>>()
                    .map_err(|e| EngineError::io(format!("cannot list {}", local.display()), e))?;
                children.sort_by_key(|c| c.file_name());
                for child in children.into_iter().rev() {
                    let name = child.file_name();
                    let name = name.to_str().ok_or_else(|| {
                        EngineError::InvalidInput(format!(
                            "{} is not valid UTF-8",
                            child.path().display()
                        ))
                    })?;
                    let name: EntryName = name.parse().map_err(
                        |e: strongroom_protocol::manifests::InvalidEntryName| {
                            EngineError::InvalidInput(e.to_string())
                        },
                    )?;
                    stack.push((child.path(), target.join(&name)));
                }
            } else if metadata.file_type().is_symlink() {
                let link = std::fs::read_link(&local)
                    .map_err(|e| EngineError::io(format!("cannot read {}", local.display()), e))?;
                let body_target = link.to_string_lossy().into_owned();
                self.write_entry(opened, &target, |parent| ManifestBody::Symlink {
                    parent,
                    target: body_target,
                })
                .await?;
            } else {
                // Sealing blocks this thread (and eager uploads wait on it): tell the runtime, so
                // that its other tasks, the uploads among them, move to other threads.
                let written = tokio::task::block_in_place(|| {
                    self.write_file_blocks(&opened.context, &local, progress, eager)
                })?;
                self.write_entry(opened, &target, |parent| ManifestBody::File {
                    parent,
                    size: written.size,
                    block_size: written.block_size,
                    blocks: written.blocks,
                    index: written.index,
                })
                .await?;
            }
        }
        Ok(())
    }

    /// Sets the content at `path` (a new entry, or a new version of the existing file, which
    /// keeps its identity and history), in one local transaction with its folder.
    async fn write_entry(
        &self,
        opened: &Opened,
        path: &WorkspacePath,
        body: impl FnOnce(EntryId) -> ManifestBody,
    ) -> Result<EntryId> {
        let (parent_path, name) = path
            .split_last()
            .ok_or_else(|| EngineError::InvalidInput("a workspace's root is a folder".into()))?;
        let parent_id = match opened.known_folder(&parent_path.components) {
            Some(id) => id,
            None => self.ensure_folder(opened, &parent_path).await?,
        };
        // The parent is staged once, then changed in place: adding a file to a folder of n
        // entries costs O(log n), not a copy of the folder.
        if opened.staged(&parent_id).is_none() {
            let parent = self
                .load_entry(opened, parent_id)
                .await?
                .ok_or_else(|| EngineError::NotFound(parent_path.to_string()))?;
            opened.stage(vec![(parent_id, parent)]);
        }
        let existing = opened.with_staged(&parent_id, |parent| match &parent.body {
            ManifestBody::Folder { children, .. } => Ok(children.get(name).copied()),
            _ => Err(not_a_folder(&parent_path)),
        })?;
        let body = body(parent_id);
        match existing {
            Some(existing) => {
                let mut entry = self
                    .load_entry(opened, existing)
                    .await?
                    .ok_or_else(|| EngineError::NotFound(path.to_string()))?;
                if matches!(entry.body, ManifestBody::Folder { .. }) {
                    return Err(EngineError::InvalidInput(format!("{path} is a folder")));
                }
                entry.body = body;
                opened.stage(vec![(existing, entry)]);
                Ok(existing)
            }
            None => {
                let id = EntryId::generate(&mut OsRng);
                opened.with_staged(&parent_id, |parent| {
                    if let ManifestBody::Folder { children, .. } = &mut parent.body {
                        children.insert(name.clone(), id);
                    }
                });
                opened.stage(vec![(id, LocalEntry { base: None, body })]);
                Ok(id)
            }
        }
    }

    /// Copies a file or folder (recursively) out of the workspace to `local`: into it when it
    /// is an existing folder, else as that name. The whole tree is read and checked first
    /// (every entry once, every name representable here), so that a refusal writes nothing;
    /// then it is written without following any link below `local` (see
    /// [`super::destination`]), links last.
    pub async fn get(
        &mut self,
        source: &WorkspacePath,
        local: &Path,
        progress: &dyn Progress,
        at: Option<Timestamp>,
    ) -> Result<()> {
        let opened = self.open_for_reading(&source.workspace, at).await?;
        let (id, entry) = self.resolve(&opened, source).await?;
        // The folder the user named is theirs to choose (a link there is followed); the top
        // of the tree is a name inside it.
        let (base, top): (PathBuf, OsString) = if local.is_dir() {
            let name = source
                .components
                .last()
                .map(|c| c.as_str())
                .unwrap_or(source.workspace.as_str());
            if let Some(reason) = unrepresentable(name, NameRules::HOST) {
                return Err(EngineError::UnsafeName {
                    path: source.to_string(),
                    reason,
                });
            }
            (local.to_path_buf(), name.into())
        } else {
            let name = local.file_name().ok_or_else(|| {
                EngineError::InvalidInput(format!("{} is not a name to write to", local.display()))
            })?;
            let parent = local
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            (parent.to_path_buf(), name.to_owned())
        };
        let tree = self.walk(&opened, source, id, entry).await?;
        for (n, node) in tree.nodes.iter().enumerate() {
            if let Some(name) = &node.name
                && let Some(reason) = unrepresentable(name.as_str(), NameRules::HOST)
            {
                return Err(EngineError::UnsafeName {
                    path: tree.path(source, n).to_string(),
                    reason,
                });
            }
        }
        self.write_tree(&opened, &tree, &base, &top, progress)
            .await?;
        tracing::debug!(entries = tree.nodes.len(), into = %local.display(), "written");
        Ok(())
    }

    /// Writes a checked tree into folder `base` (the top as `top`): folders and files first,
    /// depth first with one open folder per level, then the links, once nothing more is
    /// written in any folder. Nothing below `base` is followed ([`super::destination`]).
    async fn write_tree(
        &self,
        opened: &Opened,
        tree: &Tree,
        base: &Path,
        top: &OsStr,
        progress: &dyn Progress,
    ) -> Result<()> {
        let base = Arc::new(LocalFolder::open_named(base)?);
        let name_of = |n: usize| -> &OsStr {
            match &tree.nodes[n].name {
                Some(name) => OsStr::new(name.as_str()),
                None => top,
            }
        };
        let mut stack = vec![(0, base.clone())];
        while let Some((n, folder)) = stack.pop() {
            let name = name_of(n);
            match &tree.nodes[n].entry.body {
                ManifestBody::Folder { .. } => {
                    let inner = Arc::new(folder.subfolder(name)?);
                    for &child in tree.nodes[n].children.iter().rev() {
                        stack.push((child, inner.clone()));
                    }
                }
                ManifestBody::File {
                    size,
                    blocks,
                    index,
                    ..
                } => {
                    let blocks = &self.file_blocks(&opened.context, blocks, index).await?;
                    progress.add_total(*size);
                    // Dropped on an error: the temporary file goes with it.
                    let mut pending = folder.new_file(name)?;
                    self.read_file_into(
                        &opened.context,
                        *size,
                        blocks,
                        &mut pending.file,
                        progress,
                    )
                    .await?;
                    pending.put_in_place(name)?;
                }
                ManifestBody::Symlink { .. } | ManifestBody::User { .. } => {}
            }
        }
        // The links, through the folders that hold some, opened again the same way.
        let mut holds_links = vec![false; tree.nodes.len()];
        for n in (0..tree.nodes.len()).rev() {
            if matches!(tree.nodes[n].entry.body, ManifestBody::Symlink { .. }) || holds_links[n] {
                holds_links[n] = true;
                if let Some(parent) = tree.nodes[n].parent {
                    holds_links[parent] = true;
                }
            }
        }
        let mut stack = vec![(0, base)];
        while let Some((n, folder)) = stack.pop() {
            if !holds_links[n] {
                continue;
            }
            let name = name_of(n);
            match &tree.nodes[n].entry.body {
                ManifestBody::Folder { .. } => {
                    let inner = Arc::new(folder.subfolder(name)?);
                    for &child in tree.nodes[n].children.iter().rev() {
                        stack.push((child, inner.clone()));
                    }
                }
                ManifestBody::Symlink { target, .. } => folder.symlink(name, target)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Writes one file's content to a stream (standard output, a pipe): holes as zeros.
    pub async fn get_to_stream(
        &mut self,
        source: &WorkspacePath,
        output: &mut dyn std::io::Write,
        progress: &dyn Progress,
        at: Option<Timestamp>,
    ) -> Result<()> {
        let opened = self.open_for_reading(&source.workspace, at).await?;
        let (_, entry) = self.resolve(&opened, source).await?;
        let ManifestBody::File {
            size,
            blocks,
            index,
            ..
        } = &entry.body
        else {
            return Err(EngineError::InvalidInput(format!(
                "{source} is not a file: only a file can be written to standard output"
            )));
        };
        let blocks = &self.file_blocks(&opened.context, blocks, index).await?;
        progress.add_total(*size);
        let mut sink = super::io::StreamSink::new(output);
        self.read_file_into(&opened.context, *size, blocks, &mut sink, progress)
            .await
    }

    /// Removes a file, a symlink, or a folder (`recursive` for a non-empty one). The entry's
    /// versions stay on the server: a removed file can be restored.
    pub async fn remove(
        &mut self,
        path: &WorkspacePath,
        recursive: bool,
    ) -> Result<Option<SyncReport>> {
        let opened = self.open_workspace(&path.workspace).await?;
        self.check_writable(&opened)?;
        let (parent_path, name) = path.split_last().ok_or_else(|| {
            EngineError::InvalidInput("a workspace's root cannot be removed".into())
        })?;
        let (parent_id, mut parent) = self.resolve(&opened, &parent_path).await?;
        match self.resolve(&opened, path).await {
            Ok((_, entry)) => {
                if let ManifestBody::Folder { children, .. } = &entry.body
                    && !children.is_empty()
                    && !recursive
                {
                    return Err(EngineError::InvalidInput(format!(
                        "{path} is a folder that is not empty (use -r)"
                    )));
                }
            }
            // Listed by its folder, not served: removed by name without reading it, which
            // `-r` asks for since what it holds cannot be seen.
            Err(EngineError::Withheld(_)) if recursive => {}
            Err(EngineError::Withheld(_)) => {
                return Err(EngineError::InvalidInput(format!(
                    "{path} cannot be read (the server does not serve it); `rm -r` removes it by name without reading it"
                )));
            }
            Err(e) => return Err(e),
        }
        if let ManifestBody::Folder { children, .. } = &mut parent.body {
            children.remove(name);
        }
        opened.stage(vec![(parent_id, parent)]);
        self.finish(&opened, &NoProgress).await
    }

    /// Moves or renames within a workspace. A file moved over an existing file replaces its
    /// content as a new version of that file, which keeps its identity and history (what editors
    /// do when they save through a temporary file).
    pub async fn rename(
        &mut self,
        from: &WorkspacePath,
        to: &WorkspacePath,
    ) -> Result<Option<SyncReport>> {
        if from.workspace != to.workspace {
            return Err(EngineError::InvalidInput(
                "moves stay within one workspace".into(),
            ));
        }
        let opened = self.open_workspace(&from.workspace).await?;
        self.check_writable(&opened)?;
        let (from_parent_path, from_name) = from.split_last().ok_or_else(|| {
            EngineError::InvalidInput("a workspace's root cannot be moved".into())
        })?;
        let (from_id, from_entry) = self.resolve(&opened, from).await?;
        // Into an existing folder, or onto a name.
        let to = match self.resolve(&opened, to).await {
            Ok((_, e)) if matches!(e.body, ManifestBody::Folder { .. }) => to.join(from_name),
            _ => to.clone(),
        };
        if to == *from {
            return Ok(None);
        }
        let (to_parent_path, to_name) = to
            .split_last()
            .ok_or_else(|| EngineError::InvalidInput("cannot replace a workspace's root".into()))?;
        if to.components.starts_with(&from.components) {
            return Err(EngineError::InvalidInput(format!(
                "cannot move {from} inside itself"
            )));
        }
        let (from_parent_id, _) = self.resolve(&opened, &from_parent_path).await?;
        let to_parent_id = self.ensure_folder(&opened, &to_parent_path).await?;
        let mut rows: Vec<(EntryId, LocalEntry)> = Vec::new();
        let mut to_parent = self
            .load_entry(&opened, to_parent_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(to_parent_path.to_string()))?;
        let ManifestBody::Folder {
            children: to_children,
            ..
        } = &mut to_parent.body
        else {
            return Err(not_a_folder(&to_parent_path));
        };
        match to_children.get(to_name).copied() {
            Some(existing) if existing != from_id => {
                let mut target = self
                    .load_entry(&opened, existing)
                    .await?
                    .ok_or_else(|| EngineError::NotFound(to.to_string()))?;
                let replaceable = !matches!(target.body, ManifestBody::Folder { .. })
                    && !matches!(from_entry.body, ManifestBody::Folder { .. });
                if !replaceable {
                    return Err(EngineError::InvalidInput(format!("{to} exists")));
                }
                // The target keeps its identity; the source's content becomes its new version.
                target.body = reparent(&from_entry.body, to_parent_id);
                rows.push((existing, target));
            }
            Some(_) => {}
            None => {
                to_children.insert(to_name.clone(), from_id);
                let mut moved = from_entry.clone();
                moved.body = reparent(&from_entry.body, to_parent_id);
                rows.push((from_id, moved));
            }
        }
        if from_parent_id == to_parent_id {
            if let ManifestBody::Folder { children, .. } = &mut to_parent.body
                && children.get(from_name) == Some(&from_id)
                && from_name != to_name
            {
                children.remove(from_name);
            }
            rows.push((to_parent_id, to_parent));
        } else {
            let mut from_parent = self
                .load_entry(&opened, from_parent_id)
                .await?
                .ok_or_else(|| EngineError::NotFound(from_parent_path.to_string()))?;
            if let ManifestBody::Folder { children, .. } = &mut from_parent.body {
                children.remove(from_name);
            }
            rows.push((to_parent_id, to_parent));
            rows.push((from_parent_id, from_parent));
        }
        opened.stage(rows);
        self.finish(&opened, &NoProgress).await
    }

    /// Keeps a file or folder available offline (fetches its blocks and protects them from
    /// eviction), or stops doing so.
    pub async fn set_pinned(&mut self, path: &WorkspacePath, pinned: bool) -> Result<u64> {
        let opened = self.open_workspace(&path.workspace).await?;
        let (id, entry) = self.resolve(&opened, path).await?;
        let tree = self.walk(&opened, path, id, entry).await?;
        let mut count = 0;
        for node in &tree.nodes {
            let ManifestBody::File { blocks, index, .. } = &node.entry.body else {
                continue;
            };
            let mut blocks = self.file_blocks(&opened.context, blocks, index).await?;
            blocks.extend(index.iter().cloned());
            if pinned {
                for block in &blocks {
                    self.load_block(&opened.context, block, super::io::Keep::OnDisk)
                        .await?;
                }
            }
            let ids: Vec<_> = blocks.iter().map(|b| b.id).collect();
            self.cache().flush()?;
            self.db().set_pinned(&opened.context.realm, &ids, pinned)?;
            count += blocks.len() as u64;
        }
        Ok(count)
    }

    /// Whether anything waits for upload, and the cache's size.
    pub fn local_status(&self) -> Result<(u64, u64)> {
        Ok((self.db().pending_count()?, self.db().cached_bytes()?))
    }
}

fn reparent(body: &ManifestBody, parent: EntryId) -> ManifestBody {
    let mut body = body.clone();
    match &mut body {
        ManifestBody::Folder { parent: p, .. }
        | ManifestBody::File { parent: p, .. }
        | ManifestBody::Symlink { parent: p, .. } => *p = parent,
        ManifestBody::User { .. } => {}
    }
    body
}

fn tree_size(path: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        } else if m.is_file() {
            total += m.len();
        }
    }
    total
}
