//! A workspace kept open for a long time, for the mount: opened once (one pull from the server),
//! then read by entry id, from the local database first, without a round trip per call. Safe to
//! share between threads; every method takes `&self`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::{StreamExt, TryStreamExt};
use strongroom_protocol::ids::{BlockId, EntryId, RealmId};
use strongroom_protocol::manifests::{BlockRef, EntryName, ManifestBody};
use strongroom_protocol::time::Timestamp;

use super::io::{Keep, PARALLEL_TRANSFERS};
use super::ops::{EntryKind, Opened, kind_of};
use super::tree;
use crate::client::Client;
use crate::error::{EngineError, Result};
use crate::local_db::{Durability, LocalEntry};

/// What the mount needs to know of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// The entry's id (stable across renames and versions).
    pub id: EntryId,
    /// Folder, file (with its size) or symlink (with its target).
    pub kind: EntryKind,
    /// When its current content was written: the time of its latest version, or of the local
    /// change not yet synced.
    pub modified: Timestamp,
    /// A folder's children by name (empty for the others).
    pub children: Vec<(EntryName, EntryId)>,
    /// The latest version this device has taken or uploaded (0: never uploaded).
    pub version: u32,
    /// Whether it has changes on this device not uploaded yet.
    pub pending: bool,
}

/// What [`WorkspaceSession::stat`] tells of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryStat {
    /// The entry, its `children` left empty.
    pub info: EntryInfo,
    /// How many of its children are folders (0 for a file or link; `None`: not known yet, its
    /// children are not all on this device).
    pub subfolders: Option<u32>,
}

/// A file's complete block list, shared.
type BlockList = Arc<Vec<BlockRef>>;

/// One workspace, opened for reading by id. See the module documentation.
pub struct WorkspaceSession {
    client: Client,
    opened: Opened,
    /// The workspace's name, for messages.
    workspace: String,
    /// Block lists of files with index blocks, by entry and version, so that reading a huge
    /// file does not re-read its index for every request.
    block_lists: std::sync::Mutex<HashMap<(EntryId, u32), BlockList>>,
    /// Serializes changes and uploads: a push never sees half of a change, and two changes of
    /// one folder never race.
    changes: tokio::sync::Mutex<()>,
    /// When changes reach the disk (see [`WorkspaceSession::defer_durability`]).
    durability: Durability,
    /// Blocks stored, and database commits made, since the last [`WorkspaceSession::sync`].
    unsynced_blocks: AtomicBool,
    unsynced_commits: AtomicBool,
    /// One sync at a time: a sync that finds nothing to do has waited for the one under way.
    syncing: tokio::sync::Mutex<()>,
    /// Decoded entries as this session last read or wrote them (see [`EntryCache`]).
    cache: std::sync::Mutex<EntryCache>,
    /// Folders not followed that were already logged (each once, not at every listing).
    warned: std::sync::Mutex<std::collections::HashSet<(EntryId, EntryName)>>,
}

/// Decoded entries, so that a mount's every lookup is not a database read and a decryption.
/// Writes of this session go through it; a pull or push (which write the database directly)
/// empties it, and so does [`WorkspaceSession::forget_cached`], which a mount calls every few
/// seconds for what other processes of this device (the command line) may have changed.
#[derive(Default)]
struct EntryCache {
    entries: HashMap<EntryId, Arc<LocalEntry>>,
    /// Bumped by every write and every emptying: a read that started before one of them does
    /// not put what it read into the cache.
    generation: u64,
}

/// What a file's content is, in short (its size and the ids of its blocks or index blocks):
/// [`WorkspaceSession::set_content`] compares it to notice another device's version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentStamp(u64, Vec<strongroom_protocol::ids::BlockId>);

impl ContentStamp {
    fn of(body: &ManifestBody) -> Option<Self> {
        match body {
            ManifestBody::File {
                size,
                blocks,
                index,
                ..
            } => Some(Self(
                *size,
                blocks.iter().chain(index).map(|b| b.id).collect(),
            )),
            _ => None,
        }
    }
}

/// What [`WorkspaceSession::create`] makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewEntry {
    /// An empty file.
    File,
    /// An empty folder.
    Folder,
    /// A symbolic link to this target.
    Symlink(String),
}

impl Client {
    /// Opens `workspace` for a long session: the current state (pulled from the server when it
    /// answers, else the local one), or a read-only view as it was at `at`.
    pub async fn open_session(
        mut self,
        workspace: &str,
        at: Option<Timestamp>,
    ) -> Result<WorkspaceSession> {
        let opened = match at {
            Some(at) => self.open_workspace_at(workspace, at).await?,
            None => self.open_workspace(workspace).await?,
        };
        Ok(WorkspaceSession {
            client: self,
            opened,
            workspace: workspace.to_owned(),
            block_lists: Default::default(),
            changes: Default::default(),
            durability: Durability::Now,
            unsynced_blocks: AtomicBool::new(false),
            unsynced_commits: AtomicBool::new(false),
            syncing: Default::default(),
            cache: Default::default(),
            warned: Default::default(),
        })
    }
}

impl WorkspaceSession {
    /// The id of the workspace's root folder.
    pub fn root(&self) -> EntryId {
        self.opened.context.realm.into()
    }

    /// Whether nothing may be written: a view of the past, or a role that cannot write.
    pub fn read_only(&self) -> bool {
        if self.opened.at.is_some() {
            return true;
        }
        let user = self.client.keys().user_id;
        !self
            .opened
            .context
            .chain
            .as_ref()
            .and_then(|chain| chain.role(&user))
            .is_some_and(|role| role.can_write())
    }

    /// Whether the server answered when the session opened.
    pub fn online(&self) -> bool {
        self.opened.online
    }

    /// One entry, or `None` if it does not exist (or is not available offline).
    pub async fn entry(&self, id: EntryId) -> Result<Option<EntryInfo>> {
        Ok(self.entries(&[id]).await?.remove(&id))
    }

    /// Entries through the cache; those not cached are loaded (from the database, or the
    /// server for those missing locally) and cached.
    async fn load(&self, ids: &[EntryId]) -> Result<HashMap<EntryId, Arc<LocalEntry>>> {
        self.load_from(ids, true).await
    }

    /// As [`WorkspaceSession::load`]; with `fetch_missing` false, only what this device holds.
    async fn load_from(
        &self,
        ids: &[EntryId],
        fetch_missing: bool,
    ) -> Result<HashMap<EntryId, Arc<LocalEntry>>> {
        let (mut found, missing, generation) = {
            let cache = self.cache.lock().expect("entry cache");
            let mut found = HashMap::with_capacity(ids.len());
            let mut missing = Vec::new();
            for id in ids {
                match cache.entries.get(id) {
                    Some(entry) => {
                        found.insert(*id, entry.clone());
                    }
                    None => missing.push(*id),
                }
            }
            (found, missing, cache.generation)
        };
        if missing.is_empty() {
            return Ok(found);
        }
        let loaded = self
            .client
            .load_entries_from(&self.opened, &missing, fetch_missing)
            .await?;
        let mut cache = self.cache.lock().expect("entry cache");
        let keep = cache.generation == generation;
        for (id, entry) in loaded {
            let entry = Arc::new(entry);
            if keep {
                cache.entries.insert(id, entry.clone());
            }
            found.insert(id, entry);
        }
        Ok(found)
    }

    /// Forgets every cached entry: the next reads come from the database.
    pub fn forget_cached(&self) {
        let mut cache = self.cache.lock().expect("entry cache");
        cache.entries.clear();
        cache.generation += 1;
    }

    /// Several entries at once (one request for those missing locally); unknown ones are left
    /// out.
    pub async fn entries(&self, ids: &[EntryId]) -> Result<HashMap<EntryId, EntryInfo>> {
        let root = self.root();
        let mut found: HashMap<EntryId, EntryInfo> = self
            .load(ids)
            .await?
            .into_iter()
            .map(|(id, entry)| (id, info(id, &entry)))
            .collect();
        // A workspace nobody has written to yet has no root manifest: an empty folder.
        if ids.contains(&root) && !found.contains_key(&root) {
            let entry = self.client.root(&self.opened).await?;
            found.insert(root, info(root, &entry));
        }
        Ok(found)
    }

    /// One entry's attributes, cheaply even for a large folder: the entry without its
    /// children's names, and how many of its children are folders (its link count) when this
    /// device holds them all (none is fetched for it: a lookup on a fresh device stays one
    /// request). `None` if it does not exist (or is not available offline).
    pub async fn stat(&self, id: EntryId) -> Result<Option<EntryStat>> {
        let Some(entry) = self.cached(id).await? else {
            return Ok(None);
        };
        let subfolders = match &entry.body {
            ManifestBody::Folder { children, .. } if !children.is_empty() => {
                let ids: Vec<EntryId> = children.values().copied().collect();
                let held = self.load_from(&ids, false).await?;
                tree::followed_subfolders(id, children, |c| held.get(c).map(|e| &**e))
            }
            _ => Some(0),
        };
        Ok(Some(EntryStat {
            info: summary(id, &entry, false),
            subfolders,
        }))
    }

    /// The id of `name` in folder `parent`, found without copying the folder's children;
    /// `None` if there is no such name (or, offline, the entry is not on this device). A folder
    /// the mount does not follow (see [`tree::check_followed`]: it would make a cycle, or a
    /// folder with two parents or names) is [`EngineError::NotFollowed`], and an entry the
    /// server left out of its answer [`EngineError::Withheld`].
    pub async fn child(&self, parent: EntryId, name: &EntryName) -> Result<Option<EntryId>> {
        let folder = self.existing(parent).await?;
        let ManifestBody::Folder { children, .. } = &folder.body else {
            return Err(EngineError::NotAFolder(format!("entry {parent}")));
        };
        let Some(id) = children.get(name).copied() else {
            return Ok(None);
        };
        let Some(entry) = self.load_listed(parent, children, &[id]).await?.remove(&id) else {
            return Ok(None);
        };
        if let ManifestBody::Folder {
            parent: declared, ..
        } = &entry.body
        {
            let first = children
                .iter()
                .find(|(_, child)| **child == id)
                .map(|(first, _)| first)
                .expect("listed");
            if let Err(why) = tree::check_followed(parent, name, id, *declared, first) {
                return Err(EngineError::NotFollowed {
                    path: self.path_of(parent, Some(name)).await,
                    reason: why.to_string(),
                });
            }
        }
        Ok(Some(id))
    }

    /// The children of folder `id` that the mount shows, by name, each with its attributes
    /// and link count. A folder not followed (see [`WorkspaceSession::child`]) is left out,
    /// with a warning; an entry the server left out of its answer fails the listing
    /// ([`EngineError::Withheld`]): a listing that silently lacks it is what such a server
    /// wants. Offline, what this device does not hold is left out.
    pub async fn list(&self, id: EntryId) -> Result<Vec<(EntryName, EntryStat)>> {
        let folder = self.existing(id).await?;
        let ManifestBody::Folder { children, .. } = &folder.body else {
            return Err(EngineError::NotAFolder(format!("entry {id}")));
        };
        let ids: Vec<EntryId> = children.values().copied().collect();
        let loaded = self.load_listed(id, children, &ids).await?;
        let first = tree::first_names(children);
        let mut shown = Vec::with_capacity(children.len());
        for (name, child) in children {
            let Some(entry) = loaded.get(child) else {
                continue;
            };
            if let ManifestBody::Folder { parent, .. } = &entry.body
                && let Err(why) = tree::check_followed(id, name, *child, *parent, first[child])
            {
                let first_time = self
                    .warned
                    .lock()
                    .expect("warned folders")
                    .insert((id, name.clone()));
                if !first_time {
                    continue;
                }
                tracing::warn!(
                    folder = %self.path_of(id, Some(name)).await,
                    reason = %why,
                    "a folder is not shown: following it would make a cycle, or a folder with two parents or names"
                );
                continue;
            }
            shown.push((name, *child, entry));
        }
        // One more batch for the grandchildren, so that each subfolder's link count is right.
        let grandchildren: Vec<EntryId> = shown
            .iter()
            .filter_map(|(_, _, entry)| match &entry.body {
                ManifestBody::Folder { children, .. } => Some(children.values().copied()),
                _ => None,
            })
            .flatten()
            .collect();
        let grand = if grandchildren.is_empty() {
            HashMap::new()
        } else {
            self.load(&grandchildren).await?
        };
        Ok(shown
            .into_iter()
            .map(|(name, child, entry)| {
                let subfolders = match &entry.body {
                    ManifestBody::Folder { children, .. } => {
                        // Those not held are not counted (they are checked when listed).
                        let known: BTreeMap<EntryName, EntryId> = children
                            .iter()
                            .filter(|(_, g)| grand.contains_key(g))
                            .map(|(n, g)| (n.clone(), *g))
                            .collect();
                        tree::followed_subfolders(child, &known, |g| grand.get(g).map(|e| &**e))
                    }
                    _ => Some(0),
                };
                (
                    name.clone(),
                    EntryStat {
                        info: summary(child, entry, false),
                        subfolders,
                    },
                )
            })
            .collect())
    }

    /// Children `ids` of folder `folder` (whose `children` they are), through the cache; one
    /// the server should have sent and did not is [`EngineError::Withheld`] (see
    /// [`Client::first_withheld`]).
    async fn load_listed(
        &self,
        folder: EntryId,
        children: &BTreeMap<EntryName, EntryId>,
        ids: &[EntryId],
    ) -> Result<HashMap<EntryId, Arc<LocalEntry>>> {
        let found = self.load(ids).await?;
        let missing: Vec<EntryId> = ids
            .iter()
            .filter(|id| !found.contains_key(id))
            .copied()
            .collect();
        if let Some(hidden) = self.client.first_withheld(&self.opened, &missing).await? {
            let name = children
                .iter()
                .find(|(_, id)| **id == hidden)
                .map(|(name, _)| name);
            return Err(EngineError::Withheld(self.path_of(folder, name).await));
        }
        Ok(found)
    }

    /// A path for messages: `WORKSPACE:/a/b[/name]` of folder `folder`, found by following
    /// parents up to the root (as far as they lead, without looping).
    async fn path_of(&self, folder: EntryId, name: Option<&EntryName>) -> String {
        let mut names: Vec<String> = name.iter().map(|n| n.as_str().to_owned()).collect();
        let mut at = folder;
        let mut visited = std::collections::HashSet::new();
        while at != self.root() && visited.insert(at) {
            let Ok(Some(entry)) = self.cached(at).await else {
                break;
            };
            let Some(parent) = super::sync::parent_of(&entry.body) else {
                break;
            };
            let Ok(Some(up)) = self.cached(parent).await else {
                break;
            };
            let ManifestBody::Folder { children, .. } = &up.body else {
                break;
            };
            match children.iter().find(|(_, id)| **id == at) {
                Some((name, _)) => names.push(name.as_str().to_owned()),
                None => {
                    names.push(format!("(folder {at})"));
                    break;
                }
            }
            at = parent;
        }
        names.reverse();
        format!("{}:/{}", self.workspace, names.join("/"))
    }

    /// Up to `len` bytes of file `id` from `offset` (fewer at the end of the file). Blocks are
    /// fetched in parallel, checked and decrypted, and kept in the caches for the next read.
    pub async fn read(&self, id: EntryId, offset: u64, len: usize) -> Result<Vec<u8>> {
        let (size, all, _) = self.file(id).await?;
        let end = size.min(offset.saturating_add(len as u64));
        if offset >= end {
            return Ok(Vec::new());
        }
        // Blocks are sorted by offset and do not overlap: the first one that ends after `offset`.
        let first = all.partition_point(|b| b.offset + b.len as u64 <= offset);
        let wanted: Vec<&BlockRef> = all[first..].iter().take_while(|b| b.offset < end).collect();
        let context = &self.opened.context;
        // Collected first: a lazy `map` over borrowed blocks would make this future unusable
        // with `tokio::spawn` (a known limit of the compiler's lifetime inference).
        let loads: Vec<_> = wanted
            .iter()
            .map(|b| self.client.load_block(context, b, Keep::Everywhere))
            .collect();
        let loaded: Vec<Arc<Vec<u8>>> = futures_util::stream::iter(loads)
            .buffered(PARALLEL_TRANSFERS)
            .try_collect()
            .await?;
        let mut out = Vec::with_capacity((end - offset) as usize);
        for (block, data) in wanted.iter().zip(&loaded) {
            let from = block.offset.max(offset);
            let to = (block.offset + data.len() as u64).min(end);
            if from < to {
                // Holes (ranges without a block) read as zeros.
                out.resize((from - offset) as usize, 0);
                out.extend_from_slice(
                    &data[(from - block.offset) as usize..(to - block.offset) as usize],
                );
            }
        }
        out.resize((end - offset) as usize, 0);
        Ok(out)
    }

    /// Starts fetching the blocks of file `id` that cover `[offset, offset + len)` into the
    /// caches, without waiting (sequential-read prefetch).
    pub fn prefetch(self: &Arc<Self>, id: EntryId, offset: u64, len: usize) {
        let session = self.clone();
        tokio::spawn(async move {
            if let Err(e) = session.read(id, offset, len).await {
                tracing::debug!(entry = %id, error = %e, "prefetch failed");
            }
        });
    }

    /// Starts fetching `blocks` into the caches, a few at a time, without waiting.
    pub fn prefetch_blocks(self: &Arc<Self>, blocks: Vec<BlockRef>) {
        let session = self.clone();
        tokio::spawn(async move {
            let context = &session.opened.context;
            let loads: Vec<_> = blocks
                .iter()
                .map(|b| session.client.load_block(context, b, Keep::Everywhere))
                .collect();
            let mut loading = futures_util::stream::iter(loads).buffered(PARALLEL_TRANSFERS);
            while let Some(loaded) = loading.next().await {
                if let Err(e) = loaded {
                    tracing::debug!(error = %e, "prefetch failed");
                    return;
                }
            }
        });
    }

    async fn block_list(
        &self,
        id: EntryId,
        version: u32,
        blocks: &[BlockRef],
        index: &[BlockRef],
    ) -> Result<Arc<Vec<BlockRef>>> {
        if index.is_empty() {
            return Ok(Arc::new(blocks.to_vec()));
        }
        if let Some(list) = self
            .block_lists
            .lock()
            .expect("block list cache")
            .get(&(id, version))
        {
            return Ok(list.clone());
        }
        let list = Arc::new(
            self.client
                .file_blocks(&self.opened.context, blocks, index)
                .await?,
        );
        self.block_lists
            .lock()
            .expect("block list cache")
            .insert((id, version), list.clone());
        Ok(list)
    }
}

/// Changes. Each is durable on this device when it returns (one transaction in the local
/// database; block content synced to disk first); [`WorkspaceSession::push`] uploads them.
impl WorkspaceSession {
    fn check_writable(&self) -> Result<()> {
        if self.read_only() {
            return Err(EngineError::NotAllowed(
                "this workspace is read-only here (a view of the past, or your role)".into(),
            ));
        }
        Ok(())
    }

    async fn local(&self, id: EntryId) -> Result<LocalEntry> {
        self.existing(id).await.map(Arc::unwrap_or_clone)
    }

    /// Entry `id` through the cache (a workspace nobody wrote to has an empty root folder), or
    /// `None` if it does not exist (or is not available offline).
    async fn cached(&self, id: EntryId) -> Result<Option<Arc<LocalEntry>>> {
        match self.load(&[id]).await?.remove(&id) {
            Some(entry) => Ok(Some(entry)),
            None if id == self.root() => Ok(Some(Arc::new(self.client.root(&self.opened).await?))),
            None => Ok(None),
        }
    }

    /// As [`WorkspaceSession::cached`], an error if it does not exist.
    async fn existing(&self, id: EntryId) -> Result<Arc<LocalEntry>> {
        self.cached(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("entry {id}")))
    }

    /// An entry about to be changed and written back (under the change lock): taken out of the
    /// entry cache first, so that it is moved rather than copied (a large folder's children).
    /// The write puts the new version back.
    async fn local_for_change(&self, id: EntryId) -> Result<LocalEntry> {
        let entry = self.existing(id).await?;
        self.cache.lock().expect("entry cache").entries.remove(&id);
        Ok(Arc::unwrap_or_clone(entry))
    }

    fn folder_children(
        entry: &mut LocalEntry,
    ) -> Result<&mut std::collections::BTreeMap<EntryName, EntryId>> {
        match &mut entry.body {
            ManifestBody::Folder { children, .. } => Ok(children),
            _ => Err(EngineError::InvalidInput("not a folder".into())),
        }
    }

    /// Creates `name` in folder `parent`; fails if the name is taken.
    pub async fn create(
        &self,
        parent: EntryId,
        name: &EntryName,
        new: NewEntry,
    ) -> Result<EntryId> {
        self.check_writable()?;
        let _changing = self.changes.lock().await;
        let mut folder = self.local_for_change(parent).await?;
        let children = Self::folder_children(&mut folder)?;
        if children.contains_key(name) {
            return Err(EngineError::AlreadyExists(name.to_string()));
        }
        let id = EntryId::generate(&mut rand_core::OsRng);
        children.insert(name.clone(), id);
        let body = match new {
            NewEntry::File => ManifestBody::File {
                parent,
                size: 0,
                block_size: super::io::BLOCK_SIZE,
                blocks: Vec::new(),
                index: Vec::new(),
            },
            NewEntry::Folder => ManifestBody::Folder {
                parent,
                children: Default::default(),
            },
            NewEntry::Symlink(target) => ManifestBody::Symlink { parent, target },
        };
        self.put_entries(
            &self.opened.context.realm,
            vec![(parent, folder), (id, LocalEntry { base: None, body })],
        )?;
        Ok(id)
    }

    /// Removes `name` from folder `parent`: a file or link, or (`folder`) an empty folder. Its
    /// versions stay on the server, so it can be restored.
    pub async fn remove(&self, parent: EntryId, name: &EntryName, folder: bool) -> Result<()> {
        self.check_writable()?;
        let _changing = self.changes.lock().await;
        let mut parent_entry = self.local_for_change(parent).await?;
        let children = Self::folder_children(&mut parent_entry)?;
        let id = *children
            .get(name)
            .ok_or_else(|| EngineError::NotFound(name.to_string()))?;
        let entry = self.local(id).await?;
        match (&entry.body, folder) {
            (ManifestBody::Folder { children, .. }, true) if !children.is_empty() => {
                return Err(EngineError::NotEmpty(name.to_string()));
            }
            (ManifestBody::Folder { .. }, true) => {}
            (ManifestBody::Folder { .. }, false) => {
                return Err(EngineError::IsAFolder(name.to_string()));
            }
            (_, true) => return Err(EngineError::InvalidInput(format!("{name} is not a folder"))),
            (_, false) => {}
        }
        children.remove(name);
        self.put_entries(&self.opened.context.realm, vec![(parent, parent_entry)])
    }

    /// Moves `name` of `parent` to `new_name` in `new_parent`. Over an existing file, the moved
    /// file's content becomes a new version of the replaced one, which keeps its identity and
    /// history (what editors do when they save through a temporary file); over an empty folder,
    /// a folder replaces it.
    pub async fn rename(
        &self,
        parent: EntryId,
        name: &EntryName,
        new_parent: EntryId,
        new_name: &EntryName,
    ) -> Result<()> {
        self.check_writable()?;
        let _changing = self.changes.lock().await;
        let realm = self.opened.context.realm;
        let mut from = self.local_for_change(parent).await?;
        let id = *Self::folder_children(&mut from)?
            .get(name)
            .ok_or_else(|| EngineError::NotFound(name.to_string()))?;
        if parent == new_parent && name == new_name {
            return Ok(());
        }
        let mut moved = self.local(id).await?;
        // A folder cannot move into itself or below itself.
        if matches!(moved.body, ManifestBody::Folder { .. }) {
            let mut at = new_parent;
            // Parents a hostile member signed may loop without reaching the root.
            let mut visited = std::collections::HashSet::new();
            loop {
                if !visited.insert(at) {
                    return Err(EngineError::InvalidInput(
                        "the destination's parent folders form a loop".into(),
                    ));
                }
                if at == id {
                    return Err(EngineError::InvalidInput(
                        "a folder cannot move into itself".into(),
                    ));
                }
                if at == self.root() {
                    break;
                }
                let entry = self.local(at).await?;
                match super::sync::parent_of(&entry.body) {
                    Some(up) if up != at => at = up,
                    _ => break,
                }
            }
        }
        let mut to = if new_parent == parent {
            None
        } else {
            Some(self.local_for_change(new_parent).await?)
        };
        let target_children = match &mut to {
            Some(entry) => Self::folder_children(entry)?,
            None => Self::folder_children(&mut from)?,
        };
        let replaced = target_children.get(new_name).copied();
        let mut rows = Vec::new();
        match replaced {
            Some(existing) if existing == id => return Ok(()),
            Some(existing) => {
                let mut old = self.local(existing).await?;
                match (&mut old.body, &moved.body) {
                    (
                        ManifestBody::File { .. },
                        ManifestBody::File {
                            size,
                            block_size,
                            blocks,
                            index,
                            ..
                        },
                    ) => {
                        // The replaced file keeps its id; the moved one disappears.
                        let ManifestBody::File { parent: p, .. } = old.body else {
                            unreachable!()
                        };
                        old.body = ManifestBody::File {
                            parent: p,
                            size: *size,
                            block_size: *block_size,
                            blocks: blocks.clone(),
                            index: index.clone(),
                        };
                        Self::folder_children(&mut from)?.remove(name);
                        rows.push((existing, old));
                        rows.push((parent, from));
                        if let Some(to) = to {
                            rows.push((new_parent, to));
                        }
                        return self.put_entries(&realm, rows);
                    }
                    (ManifestBody::Folder { children, .. }, ManifestBody::Folder { .. })
                        if children.is_empty() => {}
                    (ManifestBody::Folder { .. }, ManifestBody::Folder { .. }) => {
                        return Err(EngineError::NotEmpty(new_name.to_string()));
                    }
                    (ManifestBody::Folder { .. }, _) => {
                        return Err(EngineError::IsAFolder(new_name.to_string()));
                    }
                    (_, ManifestBody::Folder { .. }) => {
                        return Err(EngineError::InvalidInput(format!(
                            "{new_name} is not a folder"
                        )));
                    }
                    // A link replaced by a file or link, or a file by a link: the name moves.
                    _ => {}
                }
            }
            None => {}
        }
        Self::folder_children(&mut from)?.remove(name);
        match &mut to {
            Some(entry) => Self::folder_children(entry)?.insert(new_name.clone(), id),
            None => Self::folder_children(&mut from)?.insert(new_name.clone(), id),
        };
        set_parent(&mut moved.body, new_parent);
        rows.push((id, moved));
        rows.push((parent, from));
        if let Some(to) = to {
            rows.push((new_parent, to));
        }
        self.put_entries(&realm, rows)
    }

    /// A file's size, block list and content stamp, as the vfs edits it.
    pub async fn file_content(&self, id: EntryId) -> Result<(u64, Vec<BlockRef>, ContentStamp)> {
        let (size, blocks, stamp) = self.file(id).await?;
        Ok((size, (*blocks).clone(), stamp))
    }

    /// A file's size, complete block list (index blocks read) and content stamp.
    async fn file(&self, id: EntryId) -> Result<(u64, BlockList, ContentStamp)> {
        let entry = self.local(id).await?;
        let ManifestBody::File {
            size,
            blocks,
            index,
            ..
        } = &entry.body
        else {
            return Err(EngineError::InvalidInput(format!(
                "entry {id} is not a file"
            )));
        };
        let list = self
            .block_list(id, entry.base_version(), blocks, index)
            .await?;
        let stamp = ContentStamp::of(&entry.body).expect("a file");
        Ok((*size, list, stamp))
    }

    /// One block's plaintext (through the caches, checked).
    pub async fn block(&self, block: &BlockRef) -> Result<Arc<Vec<u8>>> {
        self.client
            .load_block(&self.opened.context, block, Keep::Everywhere)
            .await
    }

    /// Drops one block's plaintext from the memory cache (a reader that keeps it elsewhere).
    pub fn forget_block(&self, block: &BlockRef) {
        self.client
            .cache()
            .memory_remove(&self.opened.context.realm, &block.id);
    }

    /// From now on, changes are safe from a crash of this process when a call returns, and from
    /// a power loss after [`WorkspaceSession::sync`] (or a durable [`store_blocks`]): what a
    /// mounted file system promises (POSIX: durable at `fsync`), at a fraction of the cost of
    /// syncing every change.
    ///
    /// [`store_blocks`]: WorkspaceSession::store_blocks
    pub fn defer_durability(&mut self) {
        self.durability = Durability::AtNextSync;
    }

    /// Commits local entries with the session's durability, and caches them.
    fn put_entries(&self, realm: &RealmId, entries: Vec<(EntryId, LocalEntry)>) -> Result<()> {
        {
            // Under the cache's lock, so that a read in flight cannot cache what this replaces.
            let mut cache = self.cache.lock().expect("entry cache");
            cache.generation += 1;
            let written = self
                .client
                .db()
                .put_entries_with(realm, &entries, self.durability);
            for (id, entry) in entries {
                if written.is_ok() {
                    cache.entries.insert(id, Arc::new(entry));
                } else {
                    cache.entries.remove(&id);
                }
            }
            written?;
        }
        if self.durability == Durability::AtNextSync {
            self.unsynced_commits.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Makes every change of this session durable (blocks stored, then commits).
    pub async fn sync(&self) -> Result<()> {
        let _one_at_a_time = self.syncing.lock().await;
        let blocks = self.unsynced_blocks.swap(false, Ordering::SeqCst);
        let commits = self.unsynced_commits.swap(false, Ordering::SeqCst);
        if !blocks && !commits {
            return Ok(());
        }
        let cache = self.client.cache_handle();
        let db = self.client.db_handle();
        let synced = tokio::task::spawn_blocking(move || -> Result<()> {
            if blocks {
                cache.sync_to_disk()?;
            }
            if commits {
                db.sync()?;
            }
            Ok(())
        })
        .await
        .map_err(|e| EngineError::Protocol(e.to_string()))?;
        if synced.is_err() {
            // Tried again next time.
            self.unsynced_blocks.fetch_or(blocks, Ordering::SeqCst);
            self.unsynced_commits.fetch_or(commits, Ordering::SeqCst);
        }
        synced
    }

    /// Seals `(offset, plaintext)` blocks with the workspace's current key into the disk cache,
    /// waiting for upload. With `durable`, they are synced to disk when this returns; else they
    /// are at the session's next [`WorkspaceSession::sync`].
    pub async fn store_blocks(
        &self,
        blocks: Vec<(u64, Vec<u8>)>,
        durable: bool,
    ) -> Result<Vec<BlockRef>> {
        self.check_writable()?;
        let cache = self.client.cache_handle();
        let context = self.opened.context.clone();
        let realm = context.realm;
        let (sealed, refs) = tokio::task::spawn_blocking(move || -> Result<_> {
            let (key_index, key) = context.current_key()?;
            // A few blocks (a small file fsynced) are synced one by one; many at once by one
            // sync of the cache's file system; deferred ones by the next sync (where a platform
            // has no sync of a whole file system, each file is synced as it is written).
            let sync_each = crate::block_cache::BlockCache::sync_each_write();
            let one_by_one = sync_each || (durable && blocks.len() <= 2);
            let seal_one = |(offset, data): (u64, Vec<u8>)| -> Result<(BlockId, BlockRef)> {
                let id = BlockId::generate(&mut rand_core::OsRng);
                let bytes = strongroom_protocol::blocks::seal_block(
                    key,
                    &realm,
                    &id,
                    key_index,
                    &data,
                    &mut rand_core::OsRng,
                );
                cache.write_unrecorded(&realm, &id, &bytes, one_by_one)?;
                Ok((
                    id,
                    BlockRef {
                        id,
                        key_index,
                        offset,
                        len: data.len() as u32,
                        digest: strongroom_protocol::crypto::hash::Digest::of(&data),
                    },
                ))
            };
            // Many blocks (a large file saved) are hashed, sealed and written on every core.
            let workers = if blocks.len() > 2 {
                std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
            } else {
                1
            };
            let done: Vec<Result<(BlockId, BlockRef)>> = if workers > 1 {
                let per_worker = blocks.len().div_ceil(workers);
                let mut blocks = blocks.into_iter();
                let groups: Vec<Vec<(u64, Vec<u8>)>> = (0..workers)
                    .map(|_| blocks.by_ref().take(per_worker).collect())
                    .collect();
                let seal_one = &seal_one;
                std::thread::scope(|scope| {
                    let handles: Vec<_> = groups
                        .into_iter()
                        .map(|group| {
                            scope.spawn(move || group.into_iter().map(seal_one).collect::<Vec<_>>())
                        })
                        .collect();
                    handles
                        .into_iter()
                        .flat_map(|h| h.join().expect("a sealing thread panicked"))
                        .collect()
                })
            } else {
                blocks.into_iter().map(seal_one).collect()
            };
            let mut refs = Vec::with_capacity(done.len());
            let mut sealed = Vec::with_capacity(done.len());
            for result in done {
                let (written, block) = result?;
                sealed.push(written);
                refs.push(block);
            }
            if durable && !one_by_one {
                cache.sync_to_disk()?;
            }
            Ok((sealed, refs))
        })
        .await
        .map_err(|e| EngineError::Protocol(e.to_string()))??;
        if !durable {
            self.unsynced_blocks.store(true, Ordering::SeqCst);
        }
        self.client
            .cache()
            .record(&realm, &sealed, true, self.durability)?;
        if self.durability == Durability::AtNextSync {
            self.unsynced_commits.store(true, Ordering::SeqCst);
        }
        Ok(refs)
    }

    /// Sets a file's size and blocks (a new local version); the blocks must have been stored.
    /// `expected` is the content the edit last saw (when it began, or at its last save): if
    /// the file has another content now, another device's version arrived, and this content
    /// goes to a conflict copy next to the file instead (both kept). Returns the stamp of what
    /// was written, and the conflict copy's id if there is one.
    pub async fn set_content(
        &self,
        id: EntryId,
        expected: &ContentStamp,
        size: u64,
        blocks: Vec<BlockRef>,
    ) -> Result<(ContentStamp, Option<EntryId>)> {
        self.check_writable()?;
        let _changing = self.changes.lock().await;
        let realm = self.opened.context.realm;
        let mut entry = self.local(id).await?;
        let ManifestBody::File { parent, .. } = entry.body else {
            return Err(EngineError::InvalidInput(format!(
                "entry {id} is not a file"
            )));
        };
        let (blocks, index) = self.client.index_if_long(&self.opened.context, blocks)?;
        let body = ManifestBody::File {
            parent,
            size,
            block_size: super::io::BLOCK_SIZE,
            blocks,
            index,
        };
        let stamp = ContentStamp::of(&body).expect("a file");
        if ContentStamp::of(&entry.body).as_ref() == Some(expected) {
            entry.body = body;
            self.put_entries(&realm, vec![(id, entry)])?;
            return Ok((stamp, None));
        }
        let mut folder = self.local(parent).await?;
        let children = Self::folder_children(&mut folder)?;
        let name = children
            .iter()
            .find(|(_, child)| **child == id)
            .map(|(name, _)| name.clone())
            .unwrap_or_else(|| "conflict".parse().expect("a valid name"));
        let device = self.client.keys().device_label.to_string();
        let copy_name = super::sync::conflict_name(&name, &device, children);
        let copy = EntryId::generate(&mut rand_core::OsRng);
        children.insert(copy_name.clone(), copy);
        tracing::warn!(file = %name, copy = %copy_name, "another device changed a file being edited here; this device's content is kept as a conflict copy");
        self.put_entries(
            &realm,
            vec![(parent, folder), (copy, LocalEntry { base: None, body })],
        )?;
        Ok((stamp, Some(copy)))
    }

    /// Takes the changes other devices made (files and folders this device holds), between
    /// local changes: what changed, or `None` when the server is unreachable.
    pub async fn pull(&self) -> Result<Option<Vec<super::RemoteChange>>> {
        if self.opened.at.is_some() {
            return Ok(Some(Vec::new()));
        }
        let _changing = self.changes.lock().await;
        let pulled = self.client.pull(&self.opened.context).await;
        if pulled.as_ref().is_ok_and(|changes| !changes.is_empty()) {
            self.forget_cached();
        }
        match pulled {
            Ok(changes) => Ok(Some(changes)),
            Err(EngineError::Unreachable { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Uploads what changed on this device (blocks, then manifests): what other devices'
    /// changes did to local entries (conflicts resolved), or `None` when the server is
    /// unreachable (the changes wait, durable).
    pub async fn push(&self) -> Result<Option<Vec<super::RemoteChange>>> {
        if self.read_only() {
            return Ok(Some(Vec::new()));
        }
        // The bulk (blocks) goes first, while changes continue; then the manifests, batch by
        // batch between changes.
        match self
            .client
            .upload_pending_blocks(&self.opened.context)
            .await
        {
            Ok(()) => {}
            Err(EngineError::Unreachable { .. }) => return Ok(None),
            Err(e) => return Err(e),
        }
        // Uploaded entries get new base versions in the database: the cache forgets them
        // before the next change reads them.
        let forget = || self.forget_cached();
        let pushed = self
            .client
            .push_between_changes(
                &self.opened.context,
                &super::NoProgress,
                Some(super::sync::Interleave {
                    changes: &self.changes,
                    after_batch: &forget,
                }),
            )
            .await;
        self.forget_cached();
        match pushed {
            Ok(report) => Ok(Some(report.remote_changes)),
            Err(EngineError::Unreachable { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether changes wait for upload.
    pub fn has_pending(&self) -> Result<bool> {
        Ok(!self
            .client
            .db()
            .entries_to_sync(&self.opened.context.realm)?
            .is_empty())
    }
}

fn set_parent(body: &mut ManifestBody, new_parent: EntryId) {
    match body {
        ManifestBody::Folder { parent, .. }
        | ManifestBody::File { parent, .. }
        | ManifestBody::Symlink { parent, .. } => *parent = new_parent,
        ManifestBody::User { .. } => {}
    }
}

fn info(id: EntryId, entry: &LocalEntry) -> EntryInfo {
    summary(id, entry, true)
}

/// An entry's info, with its children's names or (`with_children` false) without.
fn summary(id: EntryId, entry: &LocalEntry, with_children: bool) -> EntryInfo {
    let children = match &entry.body {
        ManifestBody::Folder { children, .. } if with_children => {
            children.iter().map(|(n, id)| (n.clone(), *id)).collect()
        }
        _ => Vec::new(),
    };
    EntryInfo {
        id,
        kind: kind_of(&entry.body),
        modified: entry
            .base
            .as_ref()
            .map(|m| m.timestamp)
            .unwrap_or_else(crate::clock::now),
        children,
        version: entry.base_version(),
        pending: entry.need_sync(),
    }
}
