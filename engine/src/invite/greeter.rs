//! The greeter: the member who invited. After codes match it signs the new certificates,
//! uploads them with its confirmation, and the invitation is spent.

use std::sync::Arc;

use rand_core::OsRng;
use reqwest::Method;
use serde_bytes::ByteBuf;
use strongroom_protocol::certificates::{Certificate, DeviceCertificate, Signer, UserCertificate};
use strongroom_protocol::crypto::SecretBytes;
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::ids::{DeviceId, Email, InvitationToken, UserId};
use strongroom_protocol::invite::{
    ClaimerDeviceIdentity, ClaimerUserIdentity, GreeterStart, InviteConfirmation, InviteError,
    InviteSide, InviteStep,
};
use strongroom_protocol::wire::{
    Ack, CompleteInvitationRequest, InvitationInfo, InvitationKind, InvitationStatus,
};

use super::relay::Relay;
use super::{CodeUi, Participant};
use crate::client::Client;
use crate::clock::certificate_time;
use crate::connection::Credentials;
use crate::error::{EngineError, Result};

/// Who joined.
#[derive(Debug, Clone)]
pub struct GreetOutcome {
    /// The user (new, or this user for a device invitation).
    pub user_id: UserId,
    /// Their email.
    pub email: Email,
    /// The new device.
    pub device_id: DeviceId,
    /// Whether a new user was created (else a device was added).
    pub new_user: bool,
}

/// Greets the invitation of `token`: relays the exchange, has the person compare codes, then
/// certifies the claimer.
pub async fn greet(
    client: &mut Client,
    token: &InvitationToken,
    participant: Participant,
) -> Result<GreetOutcome> {
    client.refresh().await?;
    let id = token.id();
    let info: InvitationInfo = client
        .call(Method::GET, &format!("/invitations/{id}"), None)
        .await?;
    if info.status != InvitationStatus::Pending {
        return Err(EngineError::InvalidInput(
            format!("this invitation is {:?}, not pending", info.status).to_lowercase(),
        ));
    }
    // The relay keeps its own handles on the connection and key: `run` needs the client
    // mutably (to refresh its chain) while the relay is in use.
    let org = client.keys().organization.clone();
    let connection = client.connection().clone();
    let key = client.signing_key().clone();
    let credentials = Credentials::Device {
        organization: &org,
        device: client.keys().device_id,
        key: &key,
    };
    let mut relay = Relay::new(
        &connection,
        credentials,
        format!("/authenticated/{org}/invitations/{id}"),
        format!("/authenticated/{org}/events"),
        InviteSide::Greeter,
        participant.timeout,
    );
    relay.join().await?;
    let result = tokio::select! {
        result = run(client, &info, &mut relay, participant.ui) => result,
        () = participant.interrupted => Err(EngineError::Interrupted),
    };
    match result {
        Ok(outcome) => Ok(outcome),
        Err(e) => Err(relay.fail(e).await),
    }
}

async fn run(
    client: &mut Client,
    info: &InvitationInfo,
    relay: &mut Relay<'_>,
    ui: Arc<dyn CodeUi>,
) -> Result<GreetOutcome> {
    let start = GreeterStart::new(&mut OsRng);
    relay.post(&start.hello()).await?;
    let claimer = relay.wait_for(2).await?;
    let (waiting, nonce) = start.receive_claimer(&claimer[0], &claimer[1], &mut OsRng)?;
    relay.post(&nonce).await?;
    let claimer = relay.wait_for(3).await?;
    let check = waiting.receive_nonce(&claimer[2])?;
    let channel = relay.compare_codes(check, &ui).await?;
    relay.post(&InviteStep::CodeConfirmed).await?;
    let claimer = relay.wait_for(5).await?;
    if claimer[3] != InviteStep::CodeConfirmed {
        return Err(InviteError::UnexpectedStep {
            expected: "code confirmation",
            found: claimer[3].name(),
        }
        .into());
    }
    client.refresh().await?;
    let keys = client.keys().clone();
    let me = client.me()?.certificate.clone();
    let author = Signer::Device(keys.device_id);
    let timestamp = certificate_time(client.chain().last_timestamp());
    let device_id = DeviceId::generate(&mut OsRng);
    let (certificates, confirmation, new_user) = match &info.kind {
        InvitationKind::User { email, profile } => {
            let identity: ClaimerUserIdentity = channel.open(&claimer[4])?;
            let user_id = UserId::generate(&mut OsRng);
            let user = Certificate::User(UserCertificate {
                author,
                timestamp,
                user_id,
                email: email.clone(),
                human_name: identity.human_name.clone(),
                public_key: identity.public_key,
                profile: *profile,
            });
            let device = Certificate::Device(DeviceCertificate {
                author,
                timestamp: timestamp.plus_micros(1),
                user_id,
                device_id,
                device_label: identity.device_label,
                verify_key: identity.verify_key,
            });
            let confirmation = InviteConfirmation {
                organization: keys.organization.clone(),
                root_verify_key: keys.root_verify_key,
                user_id,
                device_id,
                email: email.clone(),
                human_name: identity.human_name,
                profile: *profile,
                user_private_key: None,
            };
            (vec![user, device], confirmation, true)
        }
        InvitationKind::Device => {
            let identity: ClaimerDeviceIdentity = channel.open(&claimer[4])?;
            let device = Certificate::Device(DeviceCertificate {
                author,
                timestamp,
                user_id: keys.user_id,
                device_id,
                device_label: identity.device_label,
                verify_key: identity.verify_key,
            });
            let confirmation = InviteConfirmation {
                organization: keys.organization.clone(),
                root_verify_key: keys.root_verify_key,
                user_id: keys.user_id,
                device_id,
                email: me.email.clone(),
                human_name: me.human_name.clone(),
                profile: me.profile,
                user_private_key: Some(SecretBytes(keys.user_private_key.0)),
            };
            (vec![device], confirmation, false)
        }
    };
    // Check the certificates against the chain as this client knows it before uploading.
    let mut chain = client.chain().clone();
    let mut signed = Vec::with_capacity(certificates.len());
    for certificate in certificates {
        let bytes = client.sign_checked_against(&chain, certificate)?;
        chain.add(&bytes, crate::clock::now())?;
        signed.push(ByteBuf::from(bytes));
    }
    let request = CompleteInvitationRequest {
        attempt: relay.attempt(),
        certificates: signed,
        final_step: ByteBuf::from(channel.seal(&confirmation, &mut OsRng).encode()),
    };
    let _: Ack = client
        .call(
            Method::POST,
            &format!("/invitations/{}/complete", info.id),
            Some(&request),
        )
        .await?;
    client.refresh().await?;
    Ok(GreetOutcome {
        user_id: confirmation.user_id,
        email: confirmation.email.clone(),
        device_id,
        new_user,
    })
}
