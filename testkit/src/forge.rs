//! A hostile member: a device that may write in a workspace (a CONTRIBUTOR, say) and signs
//! manifests no honest client would write (folders that list each other, a folder listed under
//! many names, timestamps of its choosing). What it writes is genuinely signed and encrypted,
//! so every reader's validation accepts it: only the readers' handling of the tree stands
//! between such a member and the others.

use reqwest::Method;
use serde_bytes::ByteBuf;
use strongroom_engine::Client;
use strongroom_engine::device_file::KdfPolicy;
use strongroom_engine::files::WorkspacePath;
use strongroom_engine::home::Home;
use strongroom_engine::password::Password;
use strongroom_engine::workspaces::RealmContext;
use strongroom_protocol::crypto::hash::Digest;
use strongroom_protocol::crypto::secret_key::SecretKey;
use strongroom_protocol::ids::EntryId;
use strongroom_protocol::manifests::IndexedKey;
use strongroom_protocol::manifests::{
    Manifest, ManifestBody, SEALED_HEADER_BYTES, VlobCoordinates, seal_ciphertext, seal_manifest,
};
use strongroom_protocol::messages::{
    Message, MessageBody, MessageTopic, seal_envelope, seal_message,
};
use strongroom_protocol::time::Timestamp;
use strongroom_protocol::wire::{Ack, OutgoingMessage, RealmCertificateRequest};
use strongroom_protocol::wire::{
    VlobBatchWriteRequest, VlobBatchWriteResponse, VlobWriteRequest, VlobWriteResult,
};
use strongroom_protocol::workspace::{KeyRotationCertificate, RealmCertificate, key_check};

use crate::member::{Member, PASSWORD};

/// One version to write: the entry, its version number (one more than the last), its body.
pub struct Forged {
    /// The entry.
    pub id: EntryId,
    /// The new version (1 for a new entry).
    pub version: u32,
    /// What it says.
    pub body: ManifestBody,
    /// Its timestamp (`None`: now). The server accepts 5 minutes either way of its clock.
    pub timestamp: Option<Timestamp>,
}

impl Forged {
    /// Version `version` of `id`, timestamped now.
    pub fn new(id: EntryId, version: u32, body: ManifestBody) -> Self {
        Self {
            id,
            version,
            body,
            timestamp: None,
        }
    }
}

/// An empty file in `parent`.
pub fn empty_file(parent: EntryId) -> ManifestBody {
    ManifestBody::File {
        parent,
        size: 0,
        block_size: 1 << 20,
        blocks: Vec::new(),
        index: Vec::new(),
    }
}

/// How a hostile MANAGER's key message fails for the members it cheats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadKeyMessage {
    /// Bytes that open for nobody, sealed by the manager's device as the new key's message.
    Garbage,
    /// A genuine message whose key is not the certified one.
    WrongKey,
}

/// A member's device writing chosen manifests into one workspace, in process.
pub struct Forger {
    runtime: tokio::runtime::Runtime,
    client: Client,
    context: RealmContext,
    workspace: String,
}

impl Forger {
    /// Opens `member`'s device on `workspace` (which must be shared with it).
    pub fn new(member: &Member, workspace: &str) -> Self {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let mut client = Client::open(
            &Home::new(&member.home),
            &Password::new(PASSWORD),
            KdfPolicy::AllowWeak,
        )
        .expect("device");
        let root: WorkspacePath = format!("{workspace}:/").parse().expect("path");
        // Listing takes the workspace's key from the messages, as any command does.
        runtime
            .block_on(client.list(&root, None))
            .expect("listing the workspace");
        let context = runtime
            .block_on(client.workspace_context(workspace))
            .expect("workspace context");
        Self {
            runtime,
            client,
            context,
            workspace: workspace.to_owned(),
        }
    }

    /// The workspace's root folder.
    pub fn root(&self) -> EntryId {
        self.context.realm.into()
    }

    /// A new entry id.
    pub fn new_id() -> EntryId {
        EntryId::generate(&mut rand_core::OsRng)
    }

    /// The id and latest version of `name` in the folder at `folder` (`/` for the root), as
    /// the member's honest client sees them now.
    pub fn entry(&mut self, folder: &str, name: &str) -> (EntryId, u32) {
        let path: WorkspacePath = format!("{}:{folder}", self.workspace)
            .parse()
            .expect("path");
        let listed = self
            .runtime
            .block_on(self.client.list(&path, None))
            .expect("listing");
        let entry = listed
            .iter()
            .find(|e| e.name.as_str() == name)
            .unwrap_or_else(|| panic!("no {name} in {folder}"));
        (entry.id, entry.version)
    }

    /// Writes `versions` in one batch, signed by the member's device and encrypted with the
    /// workspace's current key; every write must be accepted.
    pub fn write(&self, versions: Vec<Forged>) {
        let (key_index, key) = self.context.current_key().expect("workspace key");
        let keys = self.client.keys();
        let writes: Vec<VlobWriteRequest> = versions
            .into_iter()
            .map(|forged| {
                let timestamp = forged.timestamp.unwrap_or_else(crate::raw::now);
                let manifest = Manifest {
                    author: keys.device_id,
                    timestamp,
                    realm: self.context.realm,
                    id: forged.id,
                    version: forged.version,
                    body: forged.body,
                };
                let blob = seal_manifest(
                    &manifest,
                    &keys.signing_key(),
                    key,
                    key_index,
                    &mut rand_core::OsRng,
                );
                VlobWriteRequest {
                    id: forged.id,
                    version: forged.version,
                    key_index,
                    timestamp,
                    blob: ByteBuf::from(blob),
                }
            })
            .collect();
        self.send(writes);
    }

    /// The check value of the workspace's current key (what a write must be sealed for).
    pub fn key_check(&self) -> Digest {
        let (key_index, key) = self.context.current_key().expect("workspace key");
        key_check(key, &self.context.realm, key_index)
    }

    /// Stores, as version `version` of `id`, bytes that open for nobody, sealed by the member's
    /// device as its write (so the server accepts them).
    pub fn write_unreadable(&self, id: EntryId, version: u32) {
        let (key_index, _) = self.context.current_key().expect("workspace key");
        let timestamp = crate::raw::now();
        let coordinates = VlobCoordinates {
            realm: self.context.realm,
            id,
            version,
            key_index,
            author: self.client.keys().device_id,
            timestamp,
            received: timestamp,
        };
        let garbage = crate::random_bytes(200, u64::from(version));
        let blob = seal_ciphertext(
            &coordinates,
            &self.key_check(),
            &garbage,
            &self.client.keys().signing_key(),
        );
        self.send(vec![VlobWriteRequest {
            id,
            version,
            key_index,
            timestamp,
            blob: ByteBuf::from(blob),
        }]);
    }

    /// Tries to store version `version` of `id` with a seal that does not match its bytes (as
    /// a device that stores what it did not seal); the server's refusal.
    pub fn write_with_broken_seal(&self, id: EntryId, version: u32) -> String {
        let (key_index, key) = self.context.current_key().expect("workspace key");
        let keys = self.client.keys();
        let timestamp = crate::raw::now();
        let manifest = Manifest {
            author: keys.device_id,
            timestamp,
            realm: self.context.realm,
            id,
            version,
            body: empty_file(self.root()),
        };
        let mut blob = seal_manifest(
            &manifest,
            &keys.signing_key(),
            key,
            key_index,
            &mut rand_core::OsRng,
        );
        blob[SEALED_HEADER_BYTES] ^= 1;
        let request = VlobBatchWriteRequest {
            writes: vec![VlobWriteRequest {
                id,
                version,
                key_index,
                timestamp,
                blob: ByteBuf::from(blob),
            }],
        };
        match self
            .runtime
            .block_on(self.client.call::<VlobBatchWriteResponse>(
                Method::POST,
                &format!("/realms/{}/vlobs/batch", self.context.realm),
                Some(&request),
            )) {
            Ok(response) => panic!("the server accepted a broken seal: {:?}", response.results),
            Err(e) => e.to_string(),
        }
    }

    /// As a MANAGER, rotates the workspace's key and hands the new key to every other member:
    /// honestly to those not in `cheated` (emails), and to those in it as `how` says. The
    /// forger then writes with the new key. Returns the server's refusal, if any (then nothing
    /// changed).
    pub fn rotate_handing_out(&mut self, cheated: &[&str], how: BadKeyMessage) -> Option<String> {
        let realm = self.context.realm;
        let chain = self.context.chain.as_ref().expect("a workspace");
        let index = chain.key_index() + 1;
        let key = SecretKey::generate(&mut rand_core::OsRng);
        let keys = self.client.keys();
        let signing = keys.signing_key();
        let certificate = RealmCertificate::KeyRotation(KeyRotationCertificate {
            author: keys.device_id,
            timestamp: chain
                .last_timestamp()
                .map_or_else(crate::raw::now, |t| crate::raw::now().max(t.plus_micros(1))),
            realm,
            key_index: index,
            key_check: key_check(&key, &realm, index),
        })
        .sign(&signing);
        let mut rotated = chain.clone();
        rotated
            .add(self.client.chain(), &certificate, crate::raw::now())
            .expect("a rotation the forger may sign");
        let topic = MessageTopic::of(&rotated);
        let mut messages = Vec::new();
        for (user, _) in chain.members().filter(|(u, _)| *u != keys.user_id) {
            let recipient = self.client.chain().user(&user).expect("a member");
            let cheat = cheated.contains(&recipient.certificate.email.as_str());
            let handed = match (cheat, how) {
                (true, BadKeyMessage::WrongKey) => SecretKey::generate(&mut rand_core::OsRng),
                _ => key.clone(),
            };
            let message = Message {
                author: keys.device_id,
                timestamp: crate::raw::now(),
                recipient: user,
                body: MessageBody::WorkspaceKey {
                    realm,
                    key: IndexedKey { index, key: handed },
                },
            };
            let sealed = match (cheat, how) {
                (true, BadKeyMessage::Garbage) => seal_envelope(
                    &crate::random_bytes(150, u64::from(index)),
                    &keys.device_id,
                    &user,
                    topic,
                    message.timestamp,
                    &signing,
                ),
                _ => seal_message(
                    &message,
                    topic,
                    &signing,
                    &recipient.certificate.public_key,
                    &mut rand_core::OsRng,
                ),
            };
            messages.push(OutgoingMessage {
                recipient: user,
                sealed: ByteBuf::from(sealed),
            });
        }
        let request = RealmCertificateRequest {
            certificate: ByteBuf::from(certificate),
            messages,
        };
        let answer = self.runtime.block_on(self.client.call::<Ack>(
            Method::POST,
            &format!("/realms/{realm}/certificates"),
            Some(&request),
        ));
        if let Err(e) = answer {
            return Some(e.to_string());
        }
        let mut context = self
            .runtime
            .block_on(self.client.workspace_context(&self.workspace))
            .expect("workspace context");
        context.keys.push(IndexedKey { index, key });
        self.context = context;
        None
    }

    /// Sends `writes` in one batch; every one must be accepted.
    fn send(&self, writes: Vec<VlobWriteRequest>) {
        let count = writes.len();
        let request = VlobBatchWriteRequest { writes };
        let response: VlobBatchWriteResponse = self
            .runtime
            .block_on(self.client.call(
                Method::POST,
                &format!("/realms/{}/vlobs/batch", self.context.realm),
                Some(&request),
            ))
            .expect("writing the forged versions");
        assert_eq!(response.results.len(), count);
        assert!(
            response
                .results
                .iter()
                .all(|r| matches!(r, VlobWriteResult::Written { .. })),
            "a forged version conflicted: {:?}",
            response.results
        );
    }
}
