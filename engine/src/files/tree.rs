//! Walking a workspace's tree when any member could have signed any folder: a folder may list
//! one that lists it back, list one folder under many names (2^n paths in n levels), or name
//! another parent than the folder listing it; and the server may leave an entry out of its
//! answer. The command line's walks ([`Client::walk`]: `get`, `pin`, `unpin`) refuse a tree in
//! which an entry appears twice, before anything is written, in time linear in the tree; the
//! mount ([`check_followed`]) follows a folder only from the one folder its manifest names as
//! its parent, so that its tree never holds a cycle or a folder with two parents or names.

use std::collections::{BTreeMap, HashMap};

use strongroom_protocol::ids::EntryId;
use strongroom_protocol::manifests::{EntryName, ManifestBody};
use strongroom_protocol::wire::ErrorCode;

use super::ops::Opened;
use super::path::WorkspacePath;
use crate::client::Client;
use crate::error::{EngineError, Result};
use crate::local_db::LocalEntry;

/// One entry of a walked tree.
pub(crate) struct Node {
    /// The folder holding it (`None` for the top).
    pub parent: Option<usize>,
    /// Its name there (`None` for the top).
    pub name: Option<EntryName>,
    /// The entry.
    pub entry: LocalEntry,
    /// What it holds, if it is a folder, in name order.
    pub children: Vec<usize>,
}

/// A tree in which every entry appears once: the top first, each folder before what it holds.
pub(crate) struct Tree {
    /// The entries, breadth first.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// The path of `node`, the top being at `top`.
    pub(crate) fn path(&self, top: &WorkspacePath, node: usize) -> WorkspacePath {
        let mut names = Vec::new();
        let mut at = Some(node);
        while let Some(n) = at {
            names.extend(self.nodes[n].name.clone());
            at = self.nodes[n].parent;
        }
        names.reverse();
        let mut path = top.clone();
        path.components.extend(names);
        path
    }
}

impl Client {
    /// Every entry below `entry` (the entry `id` at `top`), a level of the tree per batch of
    /// requests. An entry seen twice (a folder inside itself, an entry listed under two names
    /// or in two folders) is [`EngineError::RepeatedEntry`], found before it is loaded, so a
    /// hostile tree costs at most one visit per entry; one the server left out of its answer
    /// is [`EngineError::Withheld`] (see [`Client::first_withheld`]).
    pub(crate) async fn walk(
        &self,
        opened: &Opened,
        top: &WorkspacePath,
        id: EntryId,
        entry: LocalEntry,
    ) -> Result<Tree> {
        let mut tree = Tree {
            nodes: vec![Node {
                parent: None,
                name: None,
                entry,
                children: Vec::new(),
            }],
        };
        // Where each entry was first seen: its folder's node and its name there.
        let mut seen: HashMap<EntryId, Option<(usize, EntryName)>> = HashMap::from([(id, None)]);
        let path_of = |tree: &Tree, at: &Option<(usize, EntryName)>| match at {
            Some((folder, name)) => tree.path(top, *folder).join(name),
            None => top.clone(),
        };
        let mut level = vec![0];
        while !level.is_empty() {
            let mut listed: Vec<(usize, EntryName, EntryId)> = Vec::new();
            for &folder in &level {
                let ManifestBody::Folder { children, .. } = &tree.nodes[folder].entry.body else {
                    continue;
                };
                for (name, child) in children {
                    let here = Some((folder, name.clone()));
                    if let Some(earlier) = seen.get(child) {
                        return Err(EngineError::RepeatedEntry {
                            first: path_of(&tree, earlier).to_string(),
                            second: path_of(&tree, &here).to_string(),
                        });
                    }
                    seen.insert(*child, here);
                    listed.push((folder, name.clone(), *child));
                }
            }
            let ids: Vec<EntryId> = listed.iter().map(|(_, _, id)| *id).collect();
            let mut loaded = self.load_entries(opened, &ids).await?;
            let missing: Vec<EntryId> = ids
                .iter()
                .filter(|id| !loaded.contains_key(id))
                .copied()
                .collect();
            if let Some(hidden) = self.first_withheld(opened, &missing).await? {
                return Err(EngineError::Withheld(
                    path_of(&tree, &seen[&hidden]).to_string(),
                ));
            }
            let mut next = Vec::new();
            for (folder, name, id) in listed {
                // Left out legitimately: not on this device while offline, or not written yet
                // at the time of a view of the past.
                let Some(entry) = loaded.remove(&id) else {
                    continue;
                };
                let node = tree.nodes.len();
                if matches!(entry.body, ManifestBody::Folder { .. }) {
                    next.push(node);
                }
                tree.nodes.push(Node {
                    parent: Some(folder),
                    name: Some(name),
                    entry,
                    children: Vec::new(),
                });
                tree.nodes[folder].children.push(node);
            }
            level = next;
        }
        Ok(tree)
    }

    /// Of `missing` (entries a folder lists that an answer of the server lacked), the first
    /// the server left out without a reason: while online and reading the workspace as it is,
    /// any (every entry a folder names was uploaded before the folder, and nothing is ever
    /// deleted from the server). Offline, none: what this device does not hold is left out.
    /// In a view of the past, one whose first version, validated, is older than the view's
    /// time: a folder can legitimately list an entry whose first version carries a later
    /// timestamp, since devices' clocks differ by up to the server's window (5 minutes each way).
    pub(crate) async fn first_withheld(
        &self,
        opened: &Opened,
        missing: &[EntryId],
    ) -> Result<Option<EntryId>> {
        if missing.is_empty() || !opened.online {
            return Ok(None);
        }
        let Some(at) = opened.at else {
            return Ok(missing.first().copied());
        };
        for &id in missing {
            let first = match self.remote_vlob_version(opened.context.realm, id, 1).await {
                Ok(first) => first,
                // The server says it has no such entry, which a folder lists.
                Err(e) if e.server_code() == Some(ErrorCode::UnknownObject) => {
                    return Ok(Some(id));
                }
                Err(e) => return Err(e),
            };
            if first.id != id || first.version != 1 {
                return Err(EngineError::Protocol(
                    "the server answered with another version".into(),
                ));
            }
            if self
                .open_or_stand_in(&opened.context, &first)
                .await?
                .timestamp
                <= at
            {
                return Ok(Some(id));
            }
            tracing::debug!(entry = %id, "not in the view of the past: its first version is later");
        }
        Ok(None)
    }
}

/// Why the mount does not follow a folder that another lists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NotFollowed {
    /// A folder listing itself.
    #[error("the folder lists itself")]
    Itself,
    /// The child's own manifest names another folder as its parent (a folder listed in two
    /// folders, or part of a cycle).
    #[error("its own manifest names another folder as its parent")]
    OtherParent,
    /// The folder lists the child under an earlier name too.
    #[error("the folder also lists it as \"{0}\"")]
    AlsoNamed(EntryName),
}

/// The first name (in name order) under which `children` lists each entry.
pub(crate) fn first_names(children: &BTreeMap<EntryName, EntryId>) -> HashMap<EntryId, &EntryName> {
    let mut first = HashMap::with_capacity(children.len());
    for (name, id) in children {
        first.entry(*id).or_insert(name);
    }
    first
}

/// Whether the mount follows folder `child`, listed as `name` in folder `folder`, its manifest
/// naming `declared_parent`; `first_name` is the first name `folder` lists it under. Every
/// folder but the root is followed from one place only (the folder its manifest names, under
/// one name), and the root (its own parent) from none: so the folders the mount shows form a
/// tree, whatever the members signed. Honest clients keep `parent` right: creations, moves
/// (`rename` in both the command line and the mount), restores and conflict copies all set it.
pub(crate) fn check_followed(
    folder: EntryId,
    name: &EntryName,
    child: EntryId,
    declared_parent: EntryId,
    first_name: &EntryName,
) -> std::result::Result<(), NotFollowed> {
    if child == folder {
        return Err(NotFollowed::Itself);
    }
    if declared_parent != folder {
        return Err(NotFollowed::OtherParent);
    }
    if first_name != name {
        return Err(NotFollowed::AlsoNamed(first_name.clone()));
    }
    Ok(())
}

/// How many of the children of `folder` (its `children`) are folders the mount follows, the
/// children's entries found by `held`; `None` if one is not found.
pub(crate) fn followed_subfolders<'a>(
    folder: EntryId,
    children: &BTreeMap<EntryName, EntryId>,
    held: impl Fn(&EntryId) -> Option<&'a LocalEntry>,
) -> Option<u32> {
    let first = first_names(children);
    let mut count = 0;
    for (name, id) in children {
        let child = held(id)?;
        if let ManifestBody::Folder { parent, .. } = &child.body
            && check_followed(folder, name, *id, *parent, first[id]).is_ok()
        {
            count += 1;
        }
    }
    Some(count)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn id(n: u8) -> EntryId {
        EntryId::from_bytes([n; 16])
    }

    fn name(text: &str) -> EntryName {
        text.parse().unwrap()
    }

    fn folder(parent: EntryId, children: &[(&str, EntryId)]) -> Arc<LocalEntry> {
        Arc::new(LocalEntry {
            base: None,
            body: ManifestBody::Folder {
                parent,
                children: children.iter().map(|(n, i)| (name(n), *i)).collect(),
            },
        })
    }

    #[test]
    fn a_folder_is_followed_from_its_parent_under_its_first_name_only() {
        let (p, c) = (id(1), id(2));
        assert_eq!(check_followed(p, &name("a"), c, p, &name("a")), Ok(()));
        assert_eq!(
            check_followed(p, &name("b"), c, p, &name("a")),
            Err(NotFollowed::AlsoNamed(name("a")))
        );
        assert_eq!(
            check_followed(p, &name("a"), c, id(3), &name("a")),
            Err(NotFollowed::OtherParent)
        );
        // A folder listing itself, even one claiming to be its own parent (as the root does).
        assert_eq!(
            check_followed(p, &name("me"), p, p, &name("me")),
            Err(NotFollowed::Itself)
        );
    }

    #[test]
    fn first_names_go_by_name_order() {
        let children: BTreeMap<EntryName, EntryId> =
            [(name("b"), id(5)), (name("a"), id(5)), (name("c"), id(6))].into();
        let first = first_names(&children);
        assert_eq!(first[&id(5)], &name("a"));
        assert_eq!(first[&id(6)], &name("c"));
    }

    #[test]
    fn link_counts_count_only_followed_folders() {
        let (root, a, b) = (id(1), id(2), id(3));
        let children: BTreeMap<EntryName, EntryId> = [
            (name("a"), a),
            (name("a-again"), a),
            (name("b"), b),
            (name("me"), root),
        ]
        .into();
        let mut held = HashMap::new();
        held.insert(a, folder(root, &[]));
        held.insert(b, folder(id(9), &[])); // claims another parent
        held.insert(root, folder(root, &[]));
        let lookup = |held: &HashMap<EntryId, Arc<LocalEntry>>| {
            followed_subfolders(root, &children, |id| held.get(id).map(|e| &**e))
        };
        assert_eq!(lookup(&held), Some(1));
        held.remove(&b);
        assert_eq!(lookup(&held), None);
    }
}
