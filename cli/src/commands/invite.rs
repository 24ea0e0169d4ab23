use std::sync::Arc;

use strongroom_engine::bootstrap::default_device_label;
use strongroom_engine::invite::{self, Claimant, DEFAULT_STEP_TIMEOUT, Participant};
use strongroom_protocol::certificates::UserProfile;
use strongroom_protocol::ids::{InvitationToken, TokenId};
use strongroom_protocol::links::InvitationLink;
use strongroom_protocol::wire::{EmailDelivery, InvitationKind};

use crate::Context;
use crate::output::{say, table, tell, time};
use crate::prompt::StdinCodes;

/// `strongroom invite user EMAIL [--admin]`
pub async fn user(context: &Context, email: &str, admin: bool) -> anyhow::Result<()> {
    let email = email.parse()?;
    let mut client = context.open_client()?;
    let profile = if admin {
        UserProfile::Admin
    } else {
        UserProfile::Standard
    };
    let created = client.invite_user(email, profile).await?;
    let email = client.keys().email.clone();
    match created.delivery {
        EmailDelivery::Sent => say!("The invitation was emailed."),
        EmailDelivery::Outbox => {
            say!("The invitation was written to the server's outbox (no SMTP configured).")
        }
        EmailDelivery::Failed => {
            say!("The invitation email could not be sent; pass the link on yourself.")
        }
        EmailDelivery::NotSent => {}
    }
    say!("When they run `strongroom claim`, run `strongroom greet` with this link (as {email}):");
    say!("{}", created.url);
    Ok(())
}

/// `strongroom invite device`
pub async fn device(context: &Context) -> anyhow::Result<()> {
    let mut client = context.open_client()?;
    let created = client.invite_device().await?;
    say!(
        "Run `strongroom claim` with this link on the new device, and `strongroom greet` with it here:"
    );
    say!("{}", created.url);
    Ok(())
}

/// A person at this terminal: codes on standard input and output, Ctrl-C to stop.
fn participant() -> Participant {
    Participant {
        ui: Arc::new(StdinCodes),
        timeout: DEFAULT_STEP_TIMEOUT,
        interrupted: Box::pin(async {
            // If the handler cannot be installed, never report an interruption.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        }),
    }
}

fn parse_token(invitation: &str) -> anyhow::Result<InvitationToken> {
    if invitation.contains("://") {
        Ok(invitation.parse::<InvitationLink>()?.token)
    } else {
        Ok(invitation.parse()?)
    }
}

/// `strongroom invite list`
pub async fn list(context: &Context) -> anyhow::Result<()> {
    let client = context.open_client()?;
    let rows: Vec<Vec<String>> = client
        .invitations()
        .await?
        .iter()
        .map(|i| {
            let kind = match &i.kind {
                InvitationKind::User { profile, .. } => format!("user ({profile})"),
                InvitationKind::Device => "device".into(),
            };
            vec![
                i.email.to_string(),
                kind,
                i.greeter_human_name.to_string(),
                time(i.created_on),
                i.id.to_string(),
            ]
        })
        .collect();
    table(&["EMAIL", "KIND", "BY", "CREATED", "ID"], &rows);
    Ok(())
}

/// `strongroom invite cancel URL|TOKEN|ID`
pub async fn cancel(context: &Context, invitation: &str) -> anyhow::Result<()> {
    let id = match invitation.parse::<TokenId>() {
        Ok(id) => id,
        Err(_) => parse_token(invitation)?.id(),
    };
    let client = context.open_client()?;
    client.cancel_invitation(id).await?;
    say!("The invitation {id} was cancelled.");
    Ok(())
}

/// `strongroom greet URL|TOKEN`
pub async fn greet(context: &Context, invitation: &str) -> anyhow::Result<()> {
    let token = parse_token(invitation)?;
    let mut client = context.open_client()?;
    tell!("Waiting for the invited side to run `strongroom claim`...");
    let outcome = invite::greet(&mut client, &token, participant()).await?;
    if outcome.new_user {
        say!(
            "{} joined the organization (user {}).",
            outcome.email,
            outcome.user_id
        );
    } else {
        say!(
            "A new device of {} was added (device {}).",
            outcome.email,
            outcome.device_id
        );
    }
    Ok(())
}

/// `strongroom claim URL [--name N] [--label L]`
pub async fn claim(
    context: &Context,
    url: &str,
    name: Option<String>,
    label: Option<String>,
) -> anyhow::Result<()> {
    let link: InvitationLink = url.parse()?;
    let human_name = name.map(|n| n.parse()).transpose()?;
    let device_label = match label {
        Some(l) => l.parse()?,
        None => default_device_label(),
    };
    context.ensure_no_device()?;
    let info = invite::invitation_info(&link).await?;
    match &info.kind {
        InvitationKind::User { email, .. } => tell!(
            "{} invites {email} to the organization {}.",
            info.greeter_human_name,
            link.organization
        ),
        InvitationKind::Device => tell!(
            "This adds a device of {} to {}.",
            info.email,
            link.organization
        ),
    }
    let password = context.new_password()?;
    tell!(
        "Waiting for {} to run `strongroom greet`...",
        info.greeter_human_name
    );
    let outcome = invite::claim(
        &context.home,
        &link,
        Claimant {
            human_name,
            device_label,
        },
        &password,
        context.kdf,
        participant(),
    )
    .await?;
    context.created_device();
    let keys = outcome.keys;
    say!(
        "Welcome to {}, {} <{}>: this device ({}, {}) is ready.",
        keys.organization,
        keys.human_name,
        keys.email,
        keys.device_label,
        keys.device_id
    );
    Ok(())
}
