use crate::certificates::UserProfile;
use crate::encoding::Encoded;
use crate::ids::{Email, HumanName, InvitationToken, TokenId, UserId};
use crate::invite::InviteSide;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// What an invitation adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvitationKind {
    /// A new user with this email and profile.
    User {
        /// The invited person's email.
        email: Email,
        /// The profile the greeter intends to give.
        profile: UserProfile,
    },
    /// A new device for the inviting user.
    Device,
}

/// `POST /authenticated/{org}/invitations`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateInvitationRequest {
    /// What to invite.
    pub kind: InvitationKind,
}

impl Encoded for CreateInvitationRequest {
    const TAG: &'static str = "create-invitation-request";
    const VERSION: u8 = 1;
}

/// How the invitation link reached the invited person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EmailDelivery {
    /// Sent by SMTP.
    Sent,
    /// Written to the server's outbox folder (no SMTP configured).
    Outbox,
    /// Not emailed (device invitations: the user copies the link themselves).
    NotSent,
    /// Sending failed (the server logged why); the link must be passed on by hand.
    Failed,
}

/// The answer to [`CreateInvitationRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateInvitationResponse {
    /// The invitation's public id.
    pub id: TokenId,
    /// The secret token (also inside `url`).
    pub token: InvitationToken,
    /// The link for the invited person.
    pub url: String,
    /// How the link was delivered.
    pub delivery: EmailDelivery,
}

impl Encoded for CreateInvitationResponse {
    const TAG: &'static str = "create-invitation-response";
    const VERSION: u8 = 1;
}

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvitationStatus {
    /// Waiting to be claimed.
    Pending,
    /// Claimed: the token is spent.
    Completed,
    /// Cancelled by an administrator or the greeter.
    Cancelled,
}

/// An invitation as the server describes it (to the claimer, and to members).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationInfo {
    /// Public id.
    pub id: TokenId,
    /// User or device.
    pub kind: InvitationKind,
    /// For a device invitation: the email of the user whose device it adds.
    pub email: Email,
    /// Who created it.
    pub greeter_user_id: UserId,
    /// Their name.
    pub greeter_human_name: HumanName,
    /// When.
    pub created_on: Timestamp,
    /// When it stops working (the server administrator sets how long invitations last).
    pub expires_on: Timestamp,
    /// Status.
    pub status: InvitationStatus,
}

impl Encoded for InvitationInfo {
    const TAG: &'static str = "invitation-info";
    const VERSION: u8 = 2;
}

/// `GET /authenticated/{org}/invitations`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationListResponse {
    /// Pending invitations.
    pub invitations: Vec<InvitationInfo>,
}

impl Encoded for InvitationListResponse {
    const TAG: &'static str = "invitation-list-response";
    const VERSION: u8 = 2;
}

/// The answer to joining an invitation's exchange: the attempt to post steps to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinAttemptResponse {
    /// The attempt number.
    pub attempt: u32,
}

impl Encoded for JoinAttemptResponse {
    const TAG: &'static str = "join-attempt-response";
    const VERSION: u8 = 1;
}

/// One step of the exchange, to be relayed to the other side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostStepRequest {
    /// The attempt the step belongs to.
    pub attempt: u32,
    /// An encoded [`InviteStep`](crate::invite::InviteStep), opaque to the server.
    pub step: ByteBuf,
}

impl Encoded for PostStepRequest {
    const TAG: &'static str = "post-step-request";
    const VERSION: u8 = 1;
}

/// Why an attempt was aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AbortReason {
    /// The person picked a wrong code.
    WrongCode,
    /// The exchange was tampered with or went out of order.
    ProtocolError,
    /// The person stopped the program.
    Interrupted,
}

/// `POST .../abort`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortRequest {
    /// The attempt to abort.
    pub attempt: u32,
    /// Why.
    pub reason: AbortReason,
}

impl Encoded for AbortRequest {
    const TAG: &'static str = "abort-request";
    const VERSION: u8 = 1;
}

/// How an attempt ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptAbort {
    /// Which side aborted.
    pub by: InviteSide,
    /// Why.
    pub reason: AbortReason,
}

/// The steps of one attempt so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepsResponse {
    /// The current attempt.
    pub attempt: u32,
    /// Set when the attempt was aborted.
    pub aborted: Option<AttemptAbort>,
    /// Whether the invitation was completed (the last greeter step is the confirmation).
    pub completed: bool,
    /// The greeter's steps, in order.
    pub greeter: Vec<ByteBuf>,
    /// The claimer's steps, in order.
    pub claimer: Vec<ByteBuf>,
}

impl Encoded for StepsResponse {
    const TAG: &'static str = "steps-response";
    const VERSION: u8 = 1;
}

/// `POST /authenticated/{org}/invitations/{id}/complete`: the certificates the greeter signed
/// and its final (encrypted) step, stored atomically; the token is spent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteInvitationRequest {
    /// The attempt that succeeded.
    pub attempt: u32,
    /// The new user and device certificates (user invitations), or the new device certificate.
    pub certificates: Vec<ByteBuf>,
    /// The greeter's confirmation step for the claimer.
    pub final_step: ByteBuf,
}

impl Encoded for CompleteInvitationRequest {
    const TAG: &'static str = "complete-invitation-request";
    const VERSION: u8 = 1;
}
