//! History: every version of an entry, restoring one (as a new version reusing its blocks),
//! finding a removed entry in its folder's history.

use strongroom_protocol::ids::{DeviceId, EntryId};
use strongroom_protocol::manifests::{EntryName, Manifest, ManifestBody, ManifestError};
use strongroom_protocol::time::Timestamp;

use super::NoProgress;
use super::ops::Opened;
use super::path::WorkspacePath;
use super::sync::SyncReport;
use crate::client::Client;
use crate::error::{EngineError, Result};
use crate::local_db::LocalEntry;

/// One version, as listed.
#[derive(Debug, Clone)]
pub struct VersionInfo {
    /// The version number.
    pub version: u32,
    /// When it was written.
    pub timestamp: Timestamp,
    /// The device that wrote it.
    pub author: DeviceId,
    /// Its author's email, from the validated identity chain.
    pub author_email: String,
    /// The file's size at that version (folders and links: 0).
    pub size: u64,
    /// Why it does not open, for a version its author stored so or one encrypted with a key a
    /// member handed this user in a message that does not work (listed, never restored).
    pub unreadable: Option<String>,
}

/// Why a stored version does not open for this user, as a member's doing.
struct Unopened {
    /// What is wrong.
    reason: String,
    /// It opens for nobody (its author stored it so), and may be written over; otherwise this
    /// user lacks its key, and others may read it.
    for_nobody: bool,
}

/// One stored version: opened, or refused as a member's doing.
struct StoredVersion {
    version: u32,
    timestamp: Timestamp,
    author: DeviceId,
    opened: std::result::Result<Manifest, Unopened>,
}

/// Which version to restore.
#[derive(Debug, Clone, Copy)]
pub enum RestorePoint {
    /// A version number.
    Version(u32),
    /// The version current at that time.
    At(Timestamp),
}

impl Client {
    /// Every version of the entry at `path`, each validated; those their authors stored so
    /// that they open for nobody are listed as such.
    pub async fn history(&mut self, path: &WorkspacePath) -> Result<Vec<VersionInfo>> {
        let opened = self.open_workspace(&path.workspace).await?;
        let (id, _) = self.resolve(&opened, path).await?;
        let versions = self.versions(&opened, id).await?;
        Ok(versions
            .into_iter()
            .map(|v| VersionInfo {
                version: v.version,
                timestamp: v.timestamp,
                author: v.author,
                author_email: self
                    .chain()
                    .device(&v.author)
                    .and_then(|d| self.chain().user(&d.user_id))
                    .map(|u| u.certificate.email.to_string())
                    .unwrap_or_else(|| v.author.to_string()),
                size: match &v.opened {
                    Ok(Manifest {
                        body: ManifestBody::File { size, .. },
                        ..
                    }) => *size,
                    _ => 0,
                },
                unreadable: v.opened.err().map(|u| u.reason),
            })
            .collect())
    }

    /// Every stored version of an entry, decrypted and validated. A version its author stored
    /// so that it opens for nobody is kept, with why; any other failure is an error.
    async fn versions(&self, opened: &Opened, id: EntryId) -> Result<Vec<StoredVersion>> {
        if !opened.online {
            return Err(EngineError::InvalidInput(
                "history needs the server, which is unreachable".into(),
            ));
        }
        let history = self.remote_vlob_history(opened.context.realm, id).await?;
        let mut out = Vec::with_capacity(history.len());
        for (expected, info) in (1..).zip(&history) {
            if info.version != expected {
                return Err(EngineError::Protocol(
                    "the server's version list has gaps".into(),
                ));
            }
            let vlob = self
                .remote_vlob_version(opened.context.realm, id, info.version)
                .await?;
            if vlob.id != id || vlob.version != info.version {
                return Err(EngineError::Protocol(
                    "the server answered with another version".into(),
                ));
            }
            let opened = match self.open_version(&opened.context, &vlob) {
                Ok(manifest) => Ok(manifest),
                Err(EngineError::Manifest(e @ ManifestError::Unreadable { .. })) => Err(Unopened {
                    reason: e.to_string(),
                    for_nobody: true,
                }),
                Err(e @ EngineError::KeyNotDelivered { .. }) => Err(Unopened {
                    reason: e.to_string(),
                    for_nobody: false,
                }),
                Err(e) => return Err(e),
            };
            out.push(StoredVersion {
                version: vlob.version,
                timestamp: vlob.timestamp,
                author: vlob.author,
                opened,
            });
        }
        Ok(out)
    }

    /// Restores the entry at `path` (the root too) as it was at `point`: its content becomes
    /// a new version (reusing the old blocks). A path that no longer exists is looked up in its
    /// folder's history, and the removed entry is put back with its history. A version that
    /// opens for nobody cannot be chosen, and one as the latest is written over.
    pub async fn restore(
        &mut self,
        path: &WorkspacePath,
        point: RestorePoint,
    ) -> Result<Option<SyncReport>> {
        let opened = self.open_workspace(&path.workspace).await?;
        self.check_writable(&opened)?;
        let realm = opened.context.realm;
        let root: EntryId = realm.into();
        let (id, removed, parent_id, mut parent) = match path.split_last() {
            None => (root, false, root, None),
            Some((parent_path, name)) => {
                let (parent_id, parent) = self.resolve(&opened, &parent_path).await?;
                let ManifestBody::Folder { children, .. } = &parent.body else {
                    return Err(EngineError::InvalidInput(format!(
                        "{parent_path} is not a folder"
                    )));
                };
                let (id, removed) = match children.get(name) {
                    Some(id) => (*id, false),
                    None => (self.find_removed(&opened, parent_id, name).await?, true),
                };
                (id, removed, parent_id, Some((name.clone(), parent)))
            }
        };
        let versions = self.versions(&opened, id).await?;
        let chosen = match point {
            RestorePoint::Version(n) => versions.iter().find(|v| v.version == n),
            RestorePoint::At(t) => versions
                .iter()
                .rev()
                .find(|v| v.timestamp <= t && v.opened.is_ok()),
        }
        .ok_or_else(|| EngineError::InvalidInput(format!("{path} has no such version")))?;
        let chosen = chosen.opened.as_ref().map_err(|why| {
            EngineError::InvalidInput(format!(
                "version {} of {path} cannot be restored: {}",
                chosen.version, why.reason
            ))
        })?;
        let latest = versions.last().expect("an entry has a version");
        // A latest version that opens for nobody is stood in for by the chosen content, and
        // written over whatever that content is.
        let (base, write_over) = match &latest.opened {
            Ok(manifest) => (manifest.clone(), false),
            // Others may read it: restoring over it would drop what this user cannot see.
            Err(why) if !why.for_nobody => {
                return Err(EngineError::NotAllowed(format!(
                    "{path} cannot be restored from this device: its latest version ({}) does not open here: {}",
                    latest.version, why.reason
                )));
            }
            Err(_) => (
                Manifest {
                    author: latest.author,
                    timestamp: latest.timestamp,
                    realm,
                    id,
                    version: latest.version,
                    body: chosen.body.clone(),
                },
                true,
            ),
        };
        if removed {
            // An entry that left this folder may have moved rather than gone: putting it back
            // here would list it in two folders (which walks refuse and mounts hide).
            let now_in = super::sync::parent_of(&base.body).filter(|p| *p != parent_id);
            if let Some(now_in) = now_in
                && let Some(holder) = self.load_entries(&opened, &[now_in]).await?.get(&now_in)
                && matches!(&holder.body, ManifestBody::Folder { children, .. } if children.values().any(|c| *c == id))
            {
                return Err(EngineError::InvalidInput(format!(
                    "{path} was moved, not removed: the entry is still in the workspace, in another folder"
                )));
            }
        }
        let mut body = chosen.body.clone();
        match &mut body {
            ManifestBody::Folder { parent, .. }
            | ManifestBody::File { parent, .. }
            | ManifestBody::Symlink { parent, .. } => *parent = parent_id,
            ManifestBody::User { .. } => {}
        }
        let mut entry = LocalEntry {
            base: Some(base),
            body,
        };
        if write_over {
            let uploaded = self
                .upload_entry(&opened.context, id, &entry)
                .await?
                .ok_or_else(|| {
                    EngineError::InvalidInput(format!(
                        "another device wrote {path} meanwhile; look at its history again"
                    ))
                })?;
            entry.base = Some(uploaded);
        }
        let mut rows = vec![(id, entry)];
        if removed && let Some((name, mut parent)) = parent.take() {
            if let ManifestBody::Folder { children, .. } = &mut parent.body {
                children.insert(name, id);
            }
            rows.push((parent_id, parent));
        }
        self.db().put_entries(&realm, &rows)?;
        match self.push(&opened.context, &NoProgress).await {
            Ok(report) => Ok(Some(report)),
            Err(e) => Err(e),
        }
    }

    /// The entry that last had `name` in the folder's history.
    async fn find_removed(
        &self,
        opened: &Opened,
        folder: EntryId,
        name: &EntryName,
    ) -> Result<EntryId> {
        for version in self.versions(opened, folder).await?.iter().rev() {
            if let Ok(Manifest {
                body: ManifestBody::Folder { children, .. },
                ..
            }) = &version.opened
                && let Some(id) = children.get(name)
            {
                return Ok(*id);
            }
        }
        Err(EngineError::NotFound(format!(
            "{name} (not in this folder's history either)"
        )))
    }
}
