//! An opened device and what it can do: keep its view of the organization up to date, list
//! users and devices, invite, revoke.

use reqwest::Method;
use serde_bytes::ByteBuf;
use strongroom_protocol::certificates::{
    Certificate, DeviceCertificate, RevokedUserCertificate, SignedCertificate, Signer, UserProfile,
};
use strongroom_protocol::crypto::signing::SigningKey;
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::ids::{Email, TokenId};
use strongroom_protocol::trust::{CertificateChain, TrustedUser};
use strongroom_protocol::wire::{
    Ack, CreateInvitationRequest, CreateInvitationResponse, InvitationInfo, InvitationKind,
    InvitationListResponse, UploadCertificateRequest, UploadCertificateResponse,
};

use crate::block_cache::{BlockCache, DEFAULT_DISK_BYTES, default_memory_bytes};
use crate::clock::certificate_time;
use crate::connection::{Connection, Credentials, ErasedEncoded, EventStream};
use crate::device_file::{self, DeviceKeys, KdfPolicy};
use crate::error::{EngineError, Result};
use crate::home::Home;
use crate::local_db::LocalDb;
use crate::local_store::EncryptedFile;
use crate::password::Password;
use crate::trust::TrustStore;

/// An opened device.
pub struct Client {
    home: Home,
    db: std::sync::Arc<LocalDb>,
    cache: std::sync::Arc<BlockCache>,
    keys: DeviceKeys,
    signing_key: SigningKey,
    connection: Connection,
    trust: TrustStore,
    refreshed: Option<std::time::Instant>,
}

impl Client {
    /// Opens the device of `home` with its password, if `policy` admits the strength of its
    /// file's password key.
    pub fn open(home: &Home, password: &Password, policy: KdfPolicy) -> Result<Self> {
        let keys = device_file::load(&home.device_file(), password, policy)?;
        Self::from_keys(home, keys)
    }

    pub(crate) fn from_keys(home: &Home, keys: DeviceKeys) -> Result<Self> {
        let trust = TrustStore::open(
            keys.root_verify_key,
            EncryptedFile::new(home.certificates_file(), keys.local_key()),
        )?;
        let db = std::sync::Arc::new(LocalDb::open(&home.local_db_file(), keys.local_key())?);
        Ok(Self {
            home: home.clone(),
            db: db.clone(),
            cache: std::sync::Arc::new(BlockCache::new(
                home.blocks_dir(),
                db,
                cache_limit("STRONGROOM_MEMORY_CACHE_MB", default_memory_bytes()),
                cache_limit("STRONGROOM_DISK_CACHE_MB", DEFAULT_DISK_BYTES),
            )),
            signing_key: keys.signing_key(),
            connection: Connection::new(keys.server()?)?,
            keys,
            trust,
            refreshed: None,
        })
    }

    /// The device's identity and keys.
    pub fn keys(&self) -> &DeviceKeys {
        &self.keys
    }

    /// The device's home.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The local database.
    pub(crate) fn db(&self) -> &LocalDb {
        &self.db
    }

    /// The local database, for blocking threads.
    pub(crate) fn db_handle(&self) -> std::sync::Arc<LocalDb> {
        self.db.clone()
    }

    /// The block caches.
    pub(crate) fn cache(&self) -> &BlockCache {
        &self.cache
    }

    /// A shared handle on the block caches, for work on the blocking pool.
    pub(crate) fn cache_handle(&self) -> std::sync::Arc<BlockCache> {
        self.cache.clone()
    }

    /// The connection to the server.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// This device's request credentials.
    pub fn credentials(&self) -> Credentials<'_> {
        Credentials::Device {
            organization: &self.keys.organization,
            device: self.keys.device_id,
            key: &self.signing_key,
        }
    }

    /// This device's signing key.
    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing_key
    }

    /// A signed call to `/authenticated/{org}{suffix}`.
    pub async fn call<R: Encoded>(
        &self,
        method: Method,
        suffix: &str,
        body: Option<&dyn ErasedEncoded>,
    ) -> Result<R> {
        let path = format!("/authenticated/{}{suffix}", self.keys.organization);
        self.connection
            .call(method, &path, body, self.credentials())
            .await
    }

    /// The organization's event stream.
    pub async fn events(&self) -> Result<EventStream> {
        let path = format!("/authenticated/{}/events", self.keys.organization);
        self.connection.events(&path, self.credentials()).await
    }

    /// The chain as last validated, without asking the server.
    pub fn chain(&self) -> &CertificateChain {
        self.trust.chain()
    }

    /// Fetches and validates new certificates; returns the up-to-date chain.
    pub async fn refresh(&mut self) -> Result<&CertificateChain> {
        // One command asks several times; within a second the answer has not changed.
        if self
            .refreshed
            .is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(1))
        {
            return Ok(self.trust.chain());
        }
        let organization = self.keys.organization.to_string();
        let credentials = Credentials::Device {
            organization: &self.keys.organization,
            device: self.keys.device_id,
            key: &self.signing_key,
        };
        self.trust
            .refresh(&self.connection, credentials, &organization)
            .await?;
        self.refreshed = Some(std::time::Instant::now());
        Ok(self.trust.chain())
    }

    /// This device's user, as the chain knows them.
    pub fn me(&self) -> Result<&TrustedUser> {
        self.trust.chain().user(&self.keys.user_id).ok_or_else(|| {
            EngineError::Protocol("this device's user is missing from the chain".into())
        })
    }

    /// All users, fetched and validated.
    pub async fn users(&mut self) -> Result<Vec<TrustedUser>> {
        Ok(self.refresh().await?.users().cloned().collect())
    }

    /// This user's devices, fetched and validated.
    pub async fn devices(&mut self) -> Result<Vec<DeviceCertificate>> {
        self.refresh().await?;
        let chain = self.trust.chain();
        Ok(self
            .me()?
            .devices
            .iter()
            .filter_map(|d| chain.device(d).cloned())
            .collect())
    }

    /// Invites a person by email (ADMIN only); the server emails them the link.
    pub async fn invite_user(
        &mut self,
        email: Email,
        profile: UserProfile,
    ) -> Result<CreateInvitationResponse> {
        let request = CreateInvitationRequest {
            kind: InvitationKind::User { email, profile },
        };
        self.call(Method::POST, "/invitations", Some(&request))
            .await
    }

    /// Invites a new device of this user.
    pub async fn invite_device(&mut self) -> Result<CreateInvitationResponse> {
        let request = CreateInvitationRequest {
            kind: InvitationKind::Device,
        };
        self.call(Method::POST, "/invitations", Some(&request))
            .await
    }

    /// Pending invitations this device may greet; for an ADMIN, every pending invitation of the
    /// organization (each names its greeter).
    pub async fn invitations(&self) -> Result<Vec<InvitationInfo>> {
        let list: InvitationListResponse = self.call(Method::GET, "/invitations", None).await?;
        Ok(list.invitations)
    }

    /// Cancels a pending invitation: its token stops working.
    pub async fn cancel_invitation(&self, id: TokenId) -> Result<()> {
        let _: Ack = self
            .call(Method::DELETE, &format!("/invitations/{id}"), None)
            .await?;
        Ok(())
    }

    /// Signs `certificate` and checks it against `chain`, as the server and every other client
    /// will: a refusal here saves a round trip and gives the precise reason.
    pub(crate) fn sign_checked_against(
        &self,
        chain: &CertificateChain,
        certificate: Certificate,
    ) -> Result<Vec<u8>> {
        let signed = SignedCertificate::sign(&certificate, &self.signing_key).encode();
        chain.validate(&signed, crate::clock::now())?;
        Ok(signed)
    }

    /// Revokes the non-revoked user holding `email` (ADMIN only): every device of theirs is
    /// refused from now on.
    pub async fn revoke_user(&mut self, email: &Email) -> Result<()> {
        self.refresh().await?;
        if self.me()?.certificate.profile != UserProfile::Admin {
            return Err(EngineError::NotAllowed(
                "only an ADMIN can revoke users".into(),
            ));
        }
        let chain = self.trust.chain();
        let Some(user) = chain.active_user_by_email(email) else {
            // Revoked already: an eviction that did not finish is taken up again.
            let revoked = chain
                .users()
                .filter(|u| u.certificate.email == *email && u.is_revoked())
                .map(|u| u.certificate.user_id)
                .last()
                .ok_or_else(|| {
                    EngineError::InvalidInput(format!("no user with the email {email}"))
                })?;
            return self.evict_revoked(revoked).await;
        };
        let target = user.certificate.user_id;
        let certificate = Certificate::RevokedUser(RevokedUserCertificate {
            author: Signer::Device(self.keys.device_id),
            timestamp: certificate_time(chain.last_timestamp()),
            user_id: target,
        });
        let signed = self
            .sign_checked_against(self.trust.chain(), certificate)
            .map_err(|e| match e {
                EngineError::Trust(t) => EngineError::NotAllowed(t.to_string()),
                other => other,
            })?;
        let _: UploadCertificateResponse = self
            .call(
                Method::POST,
                "/certificates",
                Some(&UploadCertificateRequest {
                    certificate: ByteBuf::from(signed),
                }),
            )
            .await?;
        self.refresh().await?;
        // What they could read until now stays readable to them; what is written from now on
        // must not be: take them out of every workspace this user manages and rotate its key.
        self.evict_revoked(target).await
    }
}

/// A cache bound from the environment (in MiB), else the default.
fn cache_limit(variable: &str, default: u64) -> u64 {
    std::env::var(variable)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(|mib| mib << 20)
        .unwrap_or(default)
}
