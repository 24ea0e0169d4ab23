//! Bootstrapping an organization: the client creates the root key, signs the first user (an
//! ADMIN) and device with it, uploads the public half and both certificates, and discards the
//! root secret. The server never sees it.

use rand_core::OsRng;
use serde_bytes::ByteBuf;
use strongroom_protocol::certificates::{
    Certificate, DeviceCertificate, SignedCertificate, Signer, UserCertificate, UserProfile,
};
use strongroom_protocol::crypto::SecretBytes;
use strongroom_protocol::crypto::sealed_box::PrivateKey;
use strongroom_protocol::crypto::secret_key::SecretKey;
use strongroom_protocol::crypto::signing::SigningKey;
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::ids::{DeviceId, DeviceLabel, Email, HumanName, UserId};
use strongroom_protocol::links::BootstrapLink;
use strongroom_protocol::wire::{Ack, BootstrapRequest};

use crate::clock::now;
use crate::connection::{Connection, Credentials};
use crate::device_file::{self, DeviceKeys, KdfCost};
use crate::error::{EngineError, Result};
use crate::home::Home;
use crate::local_store::EncryptedFile;
use crate::password::Password;
use crate::trust::TrustStore;

/// Who a new device belongs to.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Email.
    pub email: Email,
    /// Name.
    pub human_name: HumanName,
    /// First device's label.
    pub device_label: DeviceLabel,
}

/// The label of a device when none is given: the host name, else "device".
pub fn default_device_label() -> DeviceLabel {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .and_then(|h| h.trim().parse().ok())
        .or_else(|| {
            std::env::var("COMPUTERNAME")
                .ok()
                .and_then(|h| h.parse().ok())
        })
        .unwrap_or_else(|| "device".parse().expect("valid label"))
}

/// Writes a new device's files: the device file, then its validated chain.
pub(crate) fn install_device(
    home: &Home,
    keys: &DeviceKeys,
    certificates: Vec<strongroom_protocol::wire::ReceivedCertificate>,
    password: &Password,
    cost: KdfCost,
) -> Result<()> {
    home.create()?;
    if home.device_file().exists() {
        return Err(EngineError::DeviceExists(home.dir().to_path_buf()));
    }
    let mut trust = TrustStore::open(
        keys.root_verify_key,
        EncryptedFile::new(home.certificates_file(), keys.local_key()),
    )?;
    trust.accept(certificates)?;
    device_file::create(&home.device_file(), keys, password, cost)
}

/// Everything a bootstrap creates, before anything is sent: the root key (which signs only the
/// two certificates of the request), the new device's keys and the request.
pub struct BootstrapPlan {
    /// The organization's root key. [`submit`] drops (and so zeroizes) it before any IO.
    pub root: SigningKey,
    /// The first device's keys.
    pub keys: DeviceKeys,
    /// The request: the root verify key and the first user and device certificates.
    pub request: BootstrapRequest,
}

/// Creates the root key, the first user (an ADMIN) and device, and signs their certificates.
pub fn plan(link: &BootstrapLink, user: NewUser) -> BootstrapPlan {
    let root = SigningKey::generate(&mut OsRng);
    let user_key = PrivateKey::generate(&mut OsRng);
    let device_key = SigningKey::generate(&mut OsRng);
    let user_id = UserId::generate(&mut OsRng);
    let device_id = DeviceId::generate(&mut OsRng);
    let timestamp = now();
    let user_certificate = SignedCertificate::sign(
        &Certificate::User(UserCertificate {
            author: Signer::Root,
            timestamp,
            user_id,
            email: user.email.clone(),
            human_name: user.human_name.clone(),
            public_key: user_key.public_key(),
            profile: UserProfile::Admin,
        }),
        &root,
    );
    let device_certificate = SignedCertificate::sign(
        &Certificate::Device(DeviceCertificate {
            author: Signer::Root,
            timestamp: timestamp.plus_micros(1),
            user_id,
            device_id,
            device_label: user.device_label.clone(),
            verify_key: device_key.verify_key(),
        }),
        &root,
    );
    let request = BootstrapRequest {
        token: link.token.clone(),
        root_verify_key: root.verify_key(),
        user_certificate: ByteBuf::from(user_certificate.encode()),
        device_certificate: ByteBuf::from(device_certificate.encode()),
    };
    let keys = DeviceKeys {
        server: link.server.to_string(),
        organization: link.organization.clone(),
        root_verify_key: root.verify_key(),
        user_id,
        device_id,
        device_label: user.device_label,
        email: user.email,
        human_name: user.human_name,
        signing_key: SecretBytes(*device_key.to_secret_bytes()),
        user_private_key: SecretBytes(*user_key.to_secret_bytes()),
        local_key: SecretBytes(*SecretKey::generate(&mut OsRng).as_bytes()),
    };
    BootstrapPlan {
        root,
        keys,
        request,
    }
}

/// Drops the root key, sends the request, and writes the device's files into `home`.
pub async fn submit(
    plan: BootstrapPlan,
    home: &Home,
    password: &Password,
    cost: KdfCost,
) -> Result<DeviceKeys> {
    let BootstrapPlan {
        root,
        keys,
        request,
    } = plan;
    // The root secret is used once: dropping it zeroizes it.
    drop(root);
    if home.device_file().exists() {
        return Err(EngineError::DeviceExists(home.dir().to_path_buf()));
    }
    let connection = Connection::new(keys.server()?)?;
    let _: Ack = connection
        .call(
            reqwest::Method::POST,
            &format!("/anonymous/{}/bootstrap", keys.organization),
            Some(&request),
            Credentials::Anonymous,
        )
        .await?;
    install_device(
        home,
        &keys,
        crate::trust::received_now(vec![request.user_certificate, request.device_certificate]),
        password,
        cost,
    )?;
    Ok(keys)
}

/// Bootstraps the organization of `link`, making this home its first ADMIN's first device.
pub async fn bootstrap(
    home: &Home,
    link: &BootstrapLink,
    user: NewUser,
    password: &Password,
    cost: KdfCost,
) -> Result<DeviceKeys> {
    submit(plan(link, user), home, password, cost).await
}
