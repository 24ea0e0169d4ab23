use axum::extract::{Path, State};
use rand_core::OsRng;
use serde_bytes::ByteBuf;
use strongroom_protocol::certificates::{Certificate, UserProfile};
use strongroom_protocol::ids::{InvitationToken, OrganizationId, TokenId};
use strongroom_protocol::invite::InviteSide;
use strongroom_protocol::links::InvitationLink;
use strongroom_protocol::wire::{
    AbortRequest, Ack, AttemptAbort, CompleteInvitationRequest, CreateInvitationRequest,
    CreateInvitationResponse, EmailDelivery, ErrorCode, InvitationInfo, InvitationKind,
    InvitationListResponse, InvitationStatus, JoinAttemptResponse, MAX_STEP_BYTES, PostStepRequest,
    ServerEvent, StepsResponse,
};

use super::certificates::append_signed_by;
use crate::auth::{AuthenticatedDevice, Claimer, ensure_not_expired};
use crate::clock::now;
use crate::error::ApiError;
use crate::extract::Msgpack;
use crate::mail::Mail;
use crate::state::AppState;
use crate::store::{Completion, InvitationRecord, ensure_pending};

fn describe(record: &InvitationRecord) -> InvitationInfo {
    InvitationInfo {
        id: record.id,
        kind: record.kind.clone(),
        email: record.email.clone(),
        greeter_user_id: record.greeter_user_id,
        greeter_human_name: record.greeter_human_name.clone(),
        created_on: record.created_on,
        expires_on: record.expires_on,
        status: record.status,
    }
}

fn not_allowed(message: &str) -> ApiError {
    ApiError::new(ErrorCode::NotAllowed, message)
}

/// May this device act as greeter (or see, or cancel) this invitation? User invitations belong
/// to the organization's ADMINs; device invitations to the user who created them.
fn check_greeter(
    auth: &AuthenticatedDevice,
    invitation: &InvitationRecord,
) -> Result<(), ApiError> {
    match invitation.kind {
        InvitationKind::User { .. } if auth.user.profile == UserProfile::Admin => Ok(()),
        InvitationKind::User { .. } => {
            Err(not_allowed("only an ADMIN can greet a user invitation"))
        }
        InvitationKind::Device if invitation.greeter_user_id == auth.user.user_id => Ok(()),
        InvitationKind::Device => Err(not_allowed(
            "only the user who invited a device can greet it",
        )),
    }
}

/// May this device see or cancel this invitation? Its greeter may, and an ADMIN may see and
/// cancel every invitation of the organization (so that no member's device invitations stay
/// out of the ADMINs' reach) without greeting the device invitations of others.
fn check_manager(
    auth: &AuthenticatedDevice,
    invitation: &InvitationRecord,
) -> Result<(), ApiError> {
    if auth.user.profile == UserProfile::Admin {
        return Ok(());
    }
    check_greeter(auth, invitation)
}

async fn greeter_invitation(
    state: &AppState,
    auth: &AuthenticatedDevice,
    id: &str,
) -> Result<InvitationRecord, ApiError> {
    checked_invitation(state, auth, id, check_greeter).await
}

async fn checked_invitation(
    state: &AppState,
    auth: &AuthenticatedDevice,
    id: &str,
    check: fn(&AuthenticatedDevice, &InvitationRecord) -> Result<(), ApiError>,
) -> Result<InvitationRecord, ApiError> {
    let id: TokenId = id
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::UnknownInvitation, "malformed invitation id"))?;
    let invitation = state
        .store
        .invitation(&auth.org, id)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnknownInvitation,
                "no such invitation in this organization",
            )
        })?;
    check(auth, &invitation)?;
    ensure_not_expired(&invitation)?;
    Ok(invitation)
}

/// `POST /authenticated/{org}/invitations`
pub async fn create(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
    Msgpack(request): Msgpack<CreateInvitationRequest>,
) -> Result<Msgpack<CreateInvitationResponse>, ApiError> {
    let email = match &request.kind {
        InvitationKind::User { email, .. } => {
            if auth.user.profile != UserProfile::Admin {
                return Err(not_allowed(
                    "only an ADMIN can invite users; ask an ADMIN of your organization",
                ));
            }
            if state
                .store
                .active_user_by_email(&auth.org, email)
                .await?
                .is_some()
            {
                return Err(ApiError::new(
                    ErrorCode::EmailInUse,
                    format!("{email} already belongs to a user who is not revoked"),
                ));
            }
            email.clone()
        }
        InvitationKind::Device => auth.user.email.clone(),
    };
    let token = InvitationToken::generate(&mut OsRng);
    let created_on = now();
    let lifetime = i64::try_from(state.invitation_lifetime.as_micros()).unwrap_or(i64::MAX);
    let record = InvitationRecord {
        id: token.id(),
        kind: request.kind.clone(),
        email: email.clone(),
        greeter_user_id: auth.user.user_id,
        greeter_human_name: auth.user.human_name.clone(),
        created_on,
        expires_on: created_on.plus_micros(lifetime),
        status: InvitationStatus::Pending,
    };
    state.store.create_invitation(&auth.org, record).await?;
    let link = InvitationLink {
        server: state.public_url.clone(),
        organization: auth.org.clone(),
        token: token.clone(),
    };
    let delivery = match request.kind {
        InvitationKind::Device => EmailDelivery::NotSent,
        InvitationKind::User { .. } => {
            let mail = invitation_mail(&auth, &email, &link);
            match state.mailer.send(mail).await {
                Ok(delivery) => delivery,
                Err(e) => {
                    tracing::warn!(organization = %auth.org, error = %e, "invitation email not sent");
                    EmailDelivery::Failed
                }
            }
        }
    };
    tracing::info!(organization = %auth.org, invitation = %token.id(), ?delivery, "invitation created");
    Ok(Msgpack(CreateInvitationResponse {
        id: token.id(),
        token,
        url: link.to_string(),
        delivery,
    }))
}

fn invitation_mail(
    auth: &AuthenticatedDevice,
    to: &strongroom_protocol::ids::Email,
    link: &InvitationLink,
) -> Mail {
    Mail {
        to: to.clone(),
        subject: format!(
            "{} invites you to {} on Strongroom",
            auth.user.human_name, auth.org
        ),
        body: format!(
            "Hello,\n\n{name} <{from}> invites you to join the organization {org} on Strongroom.\n\n\
             To accept, install Strongroom and run:\n\n    strongroom claim {link}\n\n\
             {name} will then read you a short code, and you will read yours back, to make sure \
             that nobody stands between your computers.\n",
            name = auth.user.human_name,
            from = auth.user.email,
            org = auth.org,
        ),
    }
}

/// `GET /authenticated/{org}/invitations`: the pending invitations this device may greet, and
/// for an ADMIN every pending invitation of the organization (each names who created it).
pub async fn list(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
) -> Result<Msgpack<InvitationListResponse>, ApiError> {
    let invitations = state
        .store
        .pending_invitations(&auth.org, now())
        .await?
        .iter()
        .filter(|i| check_manager(&auth, i).is_ok())
        .map(describe)
        .collect();
    Ok(Msgpack(InvitationListResponse { invitations }))
}

/// `GET /authenticated/{org}/invitations/{id}`
pub async fn info(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
    Path((_, id)): Path<(String, String)>,
) -> Result<Msgpack<InvitationInfo>, ApiError> {
    Ok(Msgpack(describe(
        &checked_invitation(&state, &auth, &id, check_manager).await?,
    )))
}

/// `DELETE /authenticated/{org}/invitations/{id}`: by its greeter, or any ADMIN.
pub async fn cancel(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
    Path((_, id)): Path<(String, String)>,
) -> Result<Msgpack<Ack>, ApiError> {
    let invitation = checked_invitation(&state, &auth, &id, check_manager).await?;
    state
        .store
        .cancel_invitation(&auth.org, invitation.id)
        .await?;
    tracing::info!(organization = %auth.org, invitation = %invitation.id, "invitation cancelled");
    state
        .events
        .publish(&auth.org, ServerEvent::Invitation { id: invitation.id });
    Ok(Msgpack(Ack {}))
}

// The exchange, shared by both sides.

async fn join(
    state: &AppState,
    org: &OrganizationId,
    invitation: &InvitationRecord,
    side: InviteSide,
) -> Result<Msgpack<JoinAttemptResponse>, ApiError> {
    let attempt = state.store.join_attempt(org, invitation.id, side).await?;
    state
        .events
        .publish(org, ServerEvent::Invitation { id: invitation.id });
    Ok(Msgpack(JoinAttemptResponse { attempt }))
}

async fn steps(
    state: &AppState,
    org: &OrganizationId,
    invitation: &InvitationRecord,
) -> Result<Msgpack<StepsResponse>, ApiError> {
    // A completed attempt stays readable: the claimer reads the greeter's confirmation there.
    if invitation.status != InvitationStatus::Completed {
        ensure_pending(invitation.status)?;
    }
    let conversation = state.store.conversation(org, invitation.id).await?;
    Ok(Msgpack(StepsResponse {
        attempt: conversation.attempt,
        aborted: conversation.aborted,
        completed: invitation.status == InvitationStatus::Completed,
        greeter: conversation
            .greeter
            .into_iter()
            .map(ByteBuf::from)
            .collect(),
        claimer: conversation
            .claimer
            .into_iter()
            .map(ByteBuf::from)
            .collect(),
    }))
}

async fn post_step(
    state: &AppState,
    org: &OrganizationId,
    invitation: &InvitationRecord,
    side: InviteSide,
    request: PostStepRequest,
) -> Result<Msgpack<Ack>, ApiError> {
    if request.step.len() > MAX_STEP_BYTES {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            "an invitation step is at most 64 KiB",
        ));
    }
    state
        .store
        .post_step(
            org,
            invitation.id,
            request.attempt,
            side,
            request.step.into_vec(),
        )
        .await?;
    state
        .events
        .publish(org, ServerEvent::Invitation { id: invitation.id });
    Ok(Msgpack(Ack {}))
}

async fn abort(
    state: &AppState,
    org: &OrganizationId,
    invitation: &InvitationRecord,
    side: InviteSide,
    request: AbortRequest,
) -> Result<Msgpack<Ack>, ApiError> {
    let abort = AttemptAbort {
        by: side,
        reason: request.reason,
    };
    state
        .store
        .abort_attempt(org, invitation.id, request.attempt, abort)
        .await?;
    tracing::info!(organization = %org, invitation = %invitation.id, ?side, reason = ?request.reason, "invitation attempt aborted");
    state
        .events
        .publish(org, ServerEvent::Invitation { id: invitation.id });
    Ok(Msgpack(Ack {}))
}

// Greeter side (a signed device).

/// `POST /authenticated/{org}/invitations/{id}/join`
pub async fn greeter_join(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
    Path((_, id)): Path<(String, String)>,
) -> Result<Msgpack<JoinAttemptResponse>, ApiError> {
    let invitation = greeter_invitation(&state, &auth, &id).await?;
    join(&state, &auth.org, &invitation, InviteSide::Greeter).await
}

/// `GET /authenticated/{org}/invitations/{id}/steps`
pub async fn greeter_steps(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
    Path((_, id)): Path<(String, String)>,
) -> Result<Msgpack<StepsResponse>, ApiError> {
    let invitation = greeter_invitation(&state, &auth, &id).await?;
    steps(&state, &auth.org, &invitation).await
}

/// `POST /authenticated/{org}/invitations/{id}/steps`
pub async fn greeter_post_step(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
    Path((_, id)): Path<(String, String)>,
    Msgpack(request): Msgpack<PostStepRequest>,
) -> Result<Msgpack<Ack>, ApiError> {
    let invitation = greeter_invitation(&state, &auth, &id).await?;
    post_step(&state, &auth.org, &invitation, InviteSide::Greeter, request).await
}

/// `POST /authenticated/{org}/invitations/{id}/abort`
pub async fn greeter_abort(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
    Path((_, id)): Path<(String, String)>,
    Msgpack(request): Msgpack<AbortRequest>,
) -> Result<Msgpack<Ack>, ApiError> {
    let invitation = greeter_invitation(&state, &auth, &id).await?;
    abort(&state, &auth.org, &invitation, InviteSide::Greeter, request).await
}

/// `POST /authenticated/{org}/invitations/{id}/complete`: the certificates for the claimer and
/// the greeter's final step; the token is spent in the same transaction.
pub async fn complete(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
    Path((_, id)): Path<(String, String)>,
    Msgpack(request): Msgpack<CompleteInvitationRequest>,
) -> Result<Msgpack<Ack>, ApiError> {
    let invitation = greeter_invitation(&state, &auth, &id).await?;
    ensure_pending(invitation.status)?;
    let completion = Completion {
        invitation: invitation.id,
        attempt: request.attempt,
        final_step: request.final_step.into_vec(),
    };
    let kind = invitation.kind.clone();
    let greeter_user = auth.user.user_id;
    append_signed_by(
        &state,
        &auth,
        request.certificates,
        Some(completion),
        move |new| {
            let certificates: Vec<&Certificate> = new.iter().map(|c| &c.certificate).collect();
            let fits = match (&kind, certificates.as_slice()) {
                (
                    InvitationKind::User { email, profile },
                    [Certificate::User(u), Certificate::Device(d)],
                ) => u.email == *email && u.profile == *profile && d.user_id == u.user_id,
                (InvitationKind::Device, [Certificate::Device(d)]) => d.user_id == greeter_user,
                _ => false,
            };
            if fits {
                Ok(())
            } else {
                Err(ApiError::new(
                    ErrorCode::InvalidCertificate,
                    "the certificates do not match the invitation (its email, profile or user)",
                ))
            }
        },
    )
    .await?;
    tracing::info!(organization = %auth.org, invitation = %invitation.id, "invitation completed");
    state
        .events
        .publish(&auth.org, ServerEvent::Invitation { id: invitation.id });
    Ok(Msgpack(Ack {}))
}

// Claimer side (the invitation token).

/// `GET /invited/{org}/invitation`: what the claimer is invited to.
pub async fn claimer_info(claimer: Claimer) -> Result<Msgpack<InvitationInfo>, ApiError> {
    ensure_pending(claimer.invitation.status)?;
    Ok(Msgpack(describe(&claimer.invitation)))
}

/// `POST /invited/{org}/invitation/join`
pub async fn claimer_join(
    State(state): State<AppState>,
    claimer: Claimer,
) -> Result<Msgpack<JoinAttemptResponse>, ApiError> {
    join(
        &state,
        &claimer.org,
        &claimer.invitation,
        InviteSide::Claimer,
    )
    .await
}

/// `GET /invited/{org}/invitation/steps`
pub async fn claimer_steps(
    State(state): State<AppState>,
    claimer: Claimer,
) -> Result<Msgpack<StepsResponse>, ApiError> {
    steps(&state, &claimer.org, &claimer.invitation).await
}

/// `POST /invited/{org}/invitation/steps`
pub async fn claimer_post_step(
    State(state): State<AppState>,
    claimer: Claimer,
    Msgpack(request): Msgpack<PostStepRequest>,
) -> Result<Msgpack<Ack>, ApiError> {
    post_step(
        &state,
        &claimer.org,
        &claimer.invitation,
        InviteSide::Claimer,
        request,
    )
    .await
}

/// `POST /invited/{org}/invitation/abort`
pub async fn claimer_abort(
    State(state): State<AppState>,
    claimer: Claimer,
    Msgpack(request): Msgpack<AbortRequest>,
) -> Result<Msgpack<Ack>, ApiError> {
    abort(
        &state,
        &claimer.org,
        &claimer.invitation,
        InviteSide::Claimer,
        request,
    )
    .await
}
