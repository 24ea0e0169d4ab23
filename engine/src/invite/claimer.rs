//! The claimer: the invited person, or a user's new device. It generates its keys, sends their
//! public halves over the channel once codes match, and on confirmation checks that the
//! certificates on the server carry exactly its keys before writing its device file.

use std::sync::Arc;

use rand_core::OsRng;
use reqwest::Method;
use strongroom_protocol::crypto::SecretBytes;
use strongroom_protocol::crypto::sealed_box::PrivateKey;
use strongroom_protocol::crypto::secret_key::SecretKey;
use strongroom_protocol::crypto::signing::SigningKey;
use strongroom_protocol::ids::{DeviceLabel, HumanName};
use strongroom_protocol::invite::{
    ClaimerDeviceIdentity, ClaimerStart, ClaimerUserIdentity, InviteConfirmation, InviteError,
    InviteSide, InviteStep,
};
use strongroom_protocol::links::InvitationLink;
use strongroom_protocol::wire::{InvitationInfo, InvitationKind};

use super::relay::Relay;
use super::{CodeUi, Participant};
use crate::bootstrap::install_device;
use crate::connection::{Connection, Credentials};
use crate::device_file::{DeviceKeys, KdfCost};
use crate::error::{EngineError, Result};
use crate::home::Home;
use crate::password::Password;
use crate::trust::TrustStore;

/// The new device.
#[derive(Debug, Clone)]
pub struct ClaimOutcome {
    /// Its keys and identity (already written to the home directory).
    pub keys: DeviceKeys,
    /// Whether a new user was created (else a device of an existing user).
    pub new_user: bool,
}

/// What the invitation is, before claiming it.
pub async fn invitation_info(link: &InvitationLink) -> Result<InvitationInfo> {
    let connection = Connection::new(link.server.clone())?;
    connection
        .call(
            Method::GET,
            &format!("/invited/{}/invitation", link.organization),
            None,
            Credentials::Invitation(&link.token),
        )
        .await
}

/// Who claims: their name (user invitations; defaults to the part of the email before `@`) and
/// the new device's label.
#[derive(Debug, Clone)]
pub struct Claimant {
    /// The person's name.
    pub human_name: Option<HumanName>,
    /// The new device's label.
    pub device_label: DeviceLabel,
}

/// Claims the invitation of `link` into `home`, protecting the new device file with `password`.
pub async fn claim(
    home: &Home,
    link: &InvitationLink,
    claimant: Claimant,
    password: &Password,
    cost: KdfCost,
    participant: Participant,
) -> Result<ClaimOutcome> {
    if home.device_file().exists() {
        return Err(EngineError::DeviceExists(home.dir().to_path_buf()));
    }
    let info = invitation_info(link).await?;
    let connection = Connection::new(link.server.clone())?;
    let mut relay = Relay::new(
        &connection,
        Credentials::Invitation(&link.token),
        format!("/invited/{}/invitation", link.organization),
        format!("/invited/{}/invitation/events", link.organization),
        InviteSide::Claimer,
        participant.timeout,
    );
    relay.join().await?;
    let result = tokio::select! {
        result = exchange(link, &info, claimant, &mut relay, participant.ui) => result,
        () = participant.interrupted => Err(EngineError::Interrupted),
    };
    let keys = match result {
        Ok(keys) => keys,
        Err(e) => return Err(relay.fail(e).await),
    };
    let new_user = matches!(info.kind, InvitationKind::User { .. });
    verify_and_install(home, &connection, keys, password, cost)
        .await
        .map(|keys| ClaimOutcome { keys, new_user })
}

async fn exchange(
    link: &InvitationLink,
    info: &InvitationInfo,
    claimant: Claimant,
    relay: &mut Relay<'_>,
    ui: Arc<dyn CodeUi>,
) -> Result<DeviceKeys> {
    let device_key = SigningKey::generate(&mut OsRng);
    let user_key = PrivateKey::generate(&mut OsRng);
    let start = ClaimerStart::new(&mut OsRng);
    for step in start.hello() {
        relay.post(&step).await?;
    }
    let greeter = relay.wait_for(2).await?;
    let (check, reveal) = start.receive_greeter(&greeter[0], &greeter[1])?;
    relay.post(&reveal).await?;
    let channel = relay.compare_codes(check, &ui).await?;
    relay.post(&InviteStep::CodeConfirmed).await?;
    let identity = match &info.kind {
        InvitationKind::User { email, .. } => {
            let human_name = match claimant.human_name {
                Some(name) => name,
                None => email
                    .as_str()
                    .split('@')
                    .next()
                    .unwrap_or("user")
                    .parse()
                    .map_err(|e: strongroom_protocol::ids::InvalidName| {
                        EngineError::InvalidInput(e.to_string())
                    })?,
            };
            channel.seal(
                &ClaimerUserIdentity {
                    human_name,
                    device_label: claimant.device_label.clone(),
                    public_key: user_key.public_key(),
                    verify_key: device_key.verify_key(),
                },
                &mut OsRng,
            )
        }
        InvitationKind::Device => channel.seal(
            &ClaimerDeviceIdentity {
                device_label: claimant.device_label.clone(),
                verify_key: device_key.verify_key(),
            },
            &mut OsRng,
        ),
    };
    relay.post(&identity).await?;
    let greeter = relay.wait_for(4).await?;
    if greeter[2] != InviteStep::CodeConfirmed {
        return Err(InviteError::UnexpectedStep {
            expected: "code confirmation",
            found: greeter[2].name(),
        }
        .into());
    }
    let confirmation: InviteConfirmation = channel.open(&greeter[3])?;
    if confirmation.organization != link.organization {
        return Err(EngineError::Protocol(
            "the greeter confirmed another organization".into(),
        ));
    }
    let user_private_key = match (&info.kind, &confirmation.user_private_key) {
        (InvitationKind::User { .. }, _) => SecretBytes(*user_key.to_secret_bytes()),
        (InvitationKind::Device, Some(key)) => key.clone(),
        (InvitationKind::Device, None) => {
            return Err(EngineError::Protocol(
                "the greeter did not send the user's keys".into(),
            ));
        }
    };
    Ok(DeviceKeys {
        server: link.server.to_string(),
        organization: link.organization.clone(),
        root_verify_key: confirmation.root_verify_key,
        user_id: confirmation.user_id,
        device_id: confirmation.device_id,
        device_label: claimant.device_label,
        email: confirmation.email.clone(),
        human_name: confirmation.human_name.clone(),
        signing_key: SecretBytes(*device_key.to_secret_bytes()),
        user_private_key,
        local_key: SecretBytes(*SecretKey::generate(&mut OsRng).as_bytes()),
    })
}

/// Fetches the chain as the new device, validates it from the root key the greeter sent over
/// the authenticated channel, checks it certifies exactly these keys, then writes the files.
async fn verify_and_install(
    home: &Home,
    connection: &Connection,
    keys: DeviceKeys,
    password: &Password,
    cost: KdfCost,
) -> Result<DeviceKeys> {
    // Nothing is written before every check passed.
    let signing_key = keys.signing_key();
    let credentials = Credentials::Device {
        organization: &keys.organization,
        device: keys.device_id,
        key: &signing_key,
    };
    let organization = keys.organization.to_string();
    let mut trust = TrustStore::in_memory(keys.root_verify_key);
    trust
        .refresh(connection, credentials, &organization)
        .await?;
    let chain = trust.chain();
    let mismatch = || {
        EngineError::Protocol(
            "the certificates on the server do not match the keys this device generated".into(),
        )
    };
    let device = chain.device(&keys.device_id).ok_or_else(mismatch)?;
    let user = chain.user(&keys.user_id).ok_or_else(mismatch)?;
    if device.verify_key != signing_key.verify_key()
        || device.user_id != keys.user_id
        || user.certificate.public_key != keys.user_private_key().public_key()
        || user.certificate.email != keys.email
    {
        return Err(mismatch());
    }
    let certificates = trust.into_certificates();
    install_device(home, &keys, certificates, password, cost)?;
    Ok(keys)
}
