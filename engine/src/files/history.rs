//! History: every version of an entry, restoring one (as a new version reusing its blocks),
//! finding a removed entry in its folder's history.

use strongroom_protocol::ids::{DeviceId, EntryId};
use strongroom_protocol::manifests::{EntryName, Manifest, ManifestBody};
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
    /// Every version of the entry at `path`, each validated.
    pub async fn history(&mut self, path: &WorkspacePath) -> Result<Vec<VersionInfo>> {
        let opened = self.open_workspace(&path.workspace).await?;
        let (id, _) = self.resolve(&opened, path).await?;
        let versions = self.versions(&opened, id).await?;
        Ok(versions
            .into_iter()
            .map(|m| VersionInfo {
                version: m.version,
                timestamp: m.timestamp,
                author: m.author,
                author_email: self
                    .chain()
                    .device(&m.author)
                    .and_then(|d| self.chain().user(&d.user_id))
                    .map(|u| u.certificate.email.to_string())
                    .unwrap_or_else(|| m.author.to_string()),
                size: match m.body {
                    ManifestBody::File { size, .. } => size,
                    _ => 0,
                },
            })
            .collect())
    }

    /// Every stored version of an entry, decrypted and validated.
    async fn versions(&self, opened: &Opened, id: EntryId) -> Result<Vec<Manifest>> {
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
            out.push(self.open_version(&opened.context, &vlob)?);
        }
        Ok(out)
    }

    /// Restores the entry at `path` as it was at `point`: its content becomes a new version
    /// (reusing the old blocks). A path that no longer exists is looked up in its folder's
    /// history, and the removed entry is put back with its history.
    pub async fn restore(
        &mut self,
        path: &WorkspacePath,
        point: RestorePoint,
    ) -> Result<Option<SyncReport>> {
        let opened = self.open_workspace(&path.workspace).await?;
        let realm = opened.context.realm;
        let (parent_path, name) = path.split_last().ok_or_else(|| {
            EngineError::InvalidInput("a workspace's root cannot be restored this way".into())
        })?;
        let (parent_id, mut parent) = self.resolve(&opened, &parent_path).await?;
        let ManifestBody::Folder { children, .. } = &parent.body else {
            return Err(EngineError::InvalidInput(format!(
                "{parent_path} is not a folder"
            )));
        };
        let (id, removed) = match children.get(name) {
            Some(id) => (*id, false),
            None => (self.find_removed(&opened, parent_id, name).await?, true),
        };
        let versions = self.versions(&opened, id).await?;
        let chosen = match point {
            RestorePoint::Version(n) => versions.iter().find(|m| m.version == n),
            RestorePoint::At(t) => versions.iter().rev().find(|m| m.timestamp <= t),
        }
        .ok_or_else(|| EngineError::InvalidInput(format!("{path} has no such version")))?;
        let latest = versions.last().cloned().expect("an entry has a version");
        if removed {
            // An entry that left this folder may have moved rather than gone: putting it back
            // here would list it in two folders (which walks refuse and mounts hide).
            let now_in = super::sync::parent_of(&latest.body).filter(|p| *p != parent_id);
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
        let mut rows = vec![(
            id,
            LocalEntry {
                base: Some(latest),
                body,
            },
        )];
        if removed {
            if let ManifestBody::Folder { children, .. } = &mut parent.body {
                children.insert(name.clone(), id);
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
            if let ManifestBody::Folder { children, .. } = &version.body
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
