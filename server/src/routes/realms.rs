//! Realms: workspaces (and each user's own realm), their certificates, vlobs, blocks and changes.
//! Every endpoint checks the caller's role in the realm as of now; clients check again, as of
//! each manifest's timestamp.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use strongroom_protocol::crypto::hash::Digest;
use strongroom_protocol::ids::{BlockId, EntryId, OrganizationId, RealmId};
use strongroom_protocol::wire::{
    Ack, CERTIFICATES_PAGE, CreateRealmRequest, ErrorCode, HISTORY_PAGE, MAX_BATCH_WRITES,
    MAX_BLOCK_BYTES, MAX_CLOCK_SKEW_MICROS, MAX_MESSAGE_BYTES, MAX_READ_ANSWER_BYTES,
    MAX_REALM_BODY_BYTES, MAX_VLOB_BYTES, MESSAGES_PAGE, MessagesResponse, REALM_PAGE,
    RealmCertificateRequest, RealmCertificatesResponse, RealmChangesResponse, ReceivedCertificate,
    ServerEvent, VlobBatchWriteRequest, VlobBatchWriteResponse, VlobHistoryResponse,
    VlobReadRequest, VlobReadResponse, VlobVersion, VlobWriteRequest, VlobWriteResponse,
    VlobWriteResult,
};

use strongroom_protocol::manifests::{VlobCoordinates, verify_seal};
use strongroom_protocol::messages::{MessageTopic, verify_envelope};
use strongroom_protocol::trust::CertificateChain;
use strongroom_protocol::workspace::{RealmCertificate, RealmChain, RealmError, WorkspaceRole};

use super::certificates::current_chain;
use crate::auth::AuthenticatedDevice;
use crate::clock::now;
use crate::error::ApiError;
use crate::extract::{Msgpack, too_large};
use crate::state::AppState;
use crate::store::{NewMessage, StoredCertificate};

type RealmBody<T> = Msgpack<T, MAX_REALM_BODY_BYTES>;

fn unknown_realm() -> ApiError {
    ApiError::new(
        ErrorCode::UnknownRealm,
        "no such workspace in this organization",
    )
}

fn not_member() -> ApiError {
    ApiError::new(
        ErrorCode::NotAllowed,
        "you are not a member of this workspace",
    )
}

fn parse<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, ApiError> {
    text.parse()
        .map_err(|_| ApiError::new(ErrorCode::NotFound, format!("malformed {what} in the path")))
}

/// The cached chain of a realm brought up to date with the store: only the certificates added
/// since the cached copy are read and validated. The caller holds both locks.
async fn refreshed_chain(
    state: &AppState,
    identity: &CertificateChain,
    realms: &HashMap<(OrganizationId, RealmId), RealmChain>,
    org: &OrganizationId,
    realm: RealmId,
) -> Result<RealmChain, ApiError> {
    let mut chain = realms
        .get(&(org.clone(), realm))
        .cloned()
        .unwrap_or_else(|| RealmChain::new(realm));
    let tail = state
        .store
        .realm_certificates(org, realm, chain.len(), None)
        .await?
        .ok_or_else(unknown_realm)?;
    for stored in tail {
        chain
            .add(identity, &stored.bytes, stored.received)
            .map_err(|e| {
                ApiError::new(
                    ErrorCode::Internal,
                    format!("the stored workspace chain is invalid: {e}"),
                )
            })?;
    }
    Ok(chain)
}

/// The realm's chain, brought up to date with the store (validated against the identity chain).
async fn realm_chain(
    state: &AppState,
    org: &OrganizationId,
    realm: RealmId,
) -> Result<RealmChain, ApiError> {
    let mut identities = state.chains.lock().await;
    let identity = current_chain(state, &mut identities, org).await?;
    let mut realms = state.realm_chains.lock().await;
    let chain = refreshed_chain(state, identity, &realms, org, realm).await?;
    realms.insert((org.clone(), realm), chain.clone());
    Ok(chain)
}

/// What the caller may do in a realm.
enum Access {
    /// The caller's own realm (their user manifest): everything, key index 0.
    Own,
    /// A workspace the caller is a member of.
    Member {
        role: WorkspaceRole,
        key_index: u32,
        /// The check value of the current key, as its rotation certified it.
        key_check: Option<Digest>,
    },
}

async fn access(
    state: &AppState,
    auth: &AuthenticatedDevice,
    realm: RealmId,
) -> Result<Access, ApiError> {
    if realm == RealmId::of_user(&auth.user.user_id) {
        return Ok(Access::Own);
    }
    let chain = realm_chain(state, &auth.org, realm).await?;
    let role = chain.role(&auth.user.user_id).ok_or_else(not_member)?;
    Ok(Access::Member {
        role,
        key_index: chain.key_index(),
        key_check: chain.key_check(chain.key_index()).copied(),
    })
}

/// The key a writer must encrypt with: its index, and (in a workspace) its certified check
/// value.
struct WriteKey {
    index: u32,
    check: Option<Digest>,
}

async fn writer(
    state: &AppState,
    auth: &AuthenticatedDevice,
    realm: RealmId,
) -> Result<WriteKey, ApiError> {
    match access(state, auth, realm).await? {
        Access::Own => Ok(WriteKey {
            index: 0,
            check: None,
        }),
        Access::Member {
            role,
            key_index,
            key_check,
        } if role.can_write() => Ok(WriteKey {
            index: key_index,
            check: key_check,
        }),
        Access::Member { role, .. } => Err(ApiError::new(
            ErrorCode::NotAllowed,
            format!(
                "your role in this workspace ({}) does not allow writing",
                role.to_string().to_uppercase()
            ),
        )),
    }
}

/// `POST /authenticated/{org}/realms/{realm}`: creates a workspace.
pub async fn create(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
    Path((_, realm)): Path<(String, String)>,
    Msgpack(request): RealmBody<CreateRealmRequest>,
) -> Result<Msgpack<Ack>, ApiError> {
    let realm: RealmId = parse(&realm, "workspace id")?;
    if realm == RealmId::of_user(&auth.user.user_id) {
        return Err(ApiError::new(
            ErrorCode::RealmExists,
            "this id is your own realm",
        ));
    }
    {
        let mut identities = state.chains.lock().await;
        let identity = current_chain(&state, &mut identities, &auth.org).await?;
        let mut chain = RealmChain::new(realm);
        let received = now();
        for bytes in &request.certificates {
            let certificate = chain
                .add(identity, bytes, received)
                .map_err(realm_refusal)?;
            if author(&certificate) != auth.device_id {
                return Err(signed_by_caller());
            }
        }
        // Its creator alone: members are added later, each with the keys in a message (which
        // this request cannot carry).
        if chain.is_empty()
            || chain.key_index() == 0
            || chain.members().any(|(user, _)| user != auth.user.user_id)
        {
            return Err(ApiError::new(
                ErrorCode::InvalidCertificate,
                "a workspace starts with its creator as its only member (OWNER) and a first key",
            ));
        }
        let certificates = request
            .certificates
            .into_iter()
            .map(|c| StoredCertificate {
                bytes: c.into_vec(),
                received,
            })
            .collect();
        state
            .store
            .create_realm(&auth.org, realm, certificates)
            .await?;
    }
    tracing::info!(organization = %auth.org, %realm, "workspace created");
    Ok(Msgpack(Ack {}))
}

fn author(certificate: &RealmCertificate) -> strongroom_protocol::ids::DeviceId {
    match certificate {
        RealmCertificate::Role(c) => c.author,
        RealmCertificate::KeyRotation(c) => c.author,
    }
}

/// A refused realm certificate, as the client sees it.
fn realm_refusal(e: RealmError) -> ApiError {
    let code = match e {
        RealmError::NotAllowed(_) => ErrorCode::NotAllowed,
        RealmError::OutOfBallpark(_) => ErrorCode::StaleTimestamp,
        _ => ErrorCode::InvalidCertificate,
    };
    ApiError::new(code, e.to_string())
}

fn signed_by_caller() -> ApiError {
    ApiError::new(
        ErrorCode::NotAllowed,
        "a device may only upload certificates it signed itself",
    )
}

/// `GET /authenticated/{org}/realms/{realm}/certificates?from=N`: for members and former members
/// (who learn so that they were removed).
pub async fn certificates(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
    Path((_, realm)): Path<(String, String)>,
    Query(query): Query<super::certificates::FromQuery>,
) -> Result<Msgpack<RealmCertificatesResponse>, ApiError> {
    let realm: RealmId = parse(&realm, "workspace id")?;
    let chain = realm_chain(&state, &auth.org, realm).await?;
    if !chain.was_member(&auth.user.user_id) {
        return Err(not_member());
    }
    let certificates = state
        .store
        .realm_certificates(&auth.org, realm, query.from, Some(CERTIFICATES_PAGE))
        .await?
        .ok_or_else(unknown_realm)?;
    Ok(Msgpack(RealmCertificatesResponse {
        from: query.from,
        certificates: certificates
            .into_iter()
            .map(|c| ReceivedCertificate {
                certificate: serde_bytes::ByteBuf::from(c.bytes),
                received: c.received,
            })
            .collect(),
    }))
}

/// `POST /authenticated/{org}/realms/{realm}/certificates`: a role change or key rotation and its
/// messages.
pub async fn add_certificate(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
    Path((_, realm)): Path<(String, String)>,
    Msgpack(request): RealmBody<RealmCertificateRequest>,
) -> Result<Msgpack<Ack>, ApiError> {
    let realm: RealmId = parse(&realm, "workspace id")?;
    let recipients: Vec<_> = request.messages.iter().map(|m| m.recipient).collect();
    if request
        .messages
        .iter()
        .any(|m| m.sealed.len() > MAX_MESSAGE_BYTES)
    {
        return Err(too_large(MAX_MESSAGE_BYTES));
    }
    // A cheap refusal before validating anything; the store counts the bytes for good.
    let size = request.certificate.len() as u64
        + request
            .messages
            .iter()
            .map(|m| m.sealed.len() as u64)
            .sum::<u64>();
    state.store.check_storage(&auth.org, size).await?;
    let received = now();
    {
        let mut identities = state.chains.lock().await;
        let identity = current_chain(&state, &mut identities, &auth.org).await?;
        let mut realms = state.realm_chains.lock().await;
        let mut chain = refreshed_chain(&state, identity, &realms, &auth.org, realm).await?;
        let expected_len = chain.len();
        let certificate = chain
            .add(identity, &request.certificate, received)
            .map_err(realm_refusal)?;
        if author(&certificate) != auth.device_id {
            return Err(signed_by_caller());
        }
        // Messages go to the workspace's members (new keys, as of this certificate) and to
        // the user a role certificate names (shared with, or removed from, the workspace):
        // nobody else has a reason to hear from this workspace.
        let named = match &certificate {
            RealmCertificate::Role(c) => Some(c.user_id),
            RealmCertificate::KeyRotation(_) => None,
        };
        for recipient in &recipients {
            if identity.user(recipient).is_none_or(|u| u.is_revoked()) {
                return Err(ApiError::new(
                    ErrorCode::MalformedRequest,
                    "a message is addressed to an unknown or revoked user",
                ));
            }
            if chain.role(recipient).is_none() && named != Some(*recipient) {
                return Err(ApiError::new(
                    ErrorCode::NotAllowed,
                    "a message is addressed to a user who is neither a member of this workspace nor named by the certificate",
                ));
            }
        }
        // Each message is sealed by the sending device, for its recipient, about this
        // workspace at its key index as of this certificate, and dated now: so a recipient
        // whose message does not work knows whom to hold to it.
        for message in &request.messages {
            let (topic, timestamp) = verify_envelope(
                &message.sealed,
                &auth.device_id,
                &auth.verify_key,
                &message.recipient,
            )
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::MalformedRequest,
                    "a message is not sealed by the sending device for its recipient",
                )
            })?;
            let expected = MessageTopic::of(&chain);
            if topic.realm == expected.realm
                && topic.key_index == expected.key_index
                && !topic.key_checks.ct_eq(&expected.key_checks)
            {
                return Err(ApiError::new(
                    ErrorCode::MalformedRequest,
                    "a message is sealed with key check values other than this workspace's certificates",
                ));
            }
            if topic.realm != realm || topic.key_index != chain.key_index() {
                return Err(ApiError::new(
                    ErrorCode::MalformedRequest,
                    format!(
                        "a message is sealed for key index {} of workspace {}, not key index {} of this one",
                        topic.key_index,
                        topic.realm,
                        chain.key_index()
                    ),
                ));
            }
            if timestamp.distance_micros(received) > MAX_CLOCK_SKEW_MICROS as u64 {
                return Err(ApiError::new(
                    ErrorCode::StaleTimestamp,
                    "a message's timestamp is too far from the server's clock",
                ));
            }
        }
        // A new key reaches every other member: a rotation that leaves one out would make
        // whatever is written with it unreadable to them for good.
        if let RealmCertificate::KeyRotation(rotation) = &certificate
            && let Some((left_out, _)) = chain.members().find(|(user, _)| {
                *user != auth.user.user_id
                    && identity.user(user).is_some_and(|u| !u.is_revoked())
                    && !recipients.contains(user)
            })
        {
            return Err(ApiError::new(
                ErrorCode::MalformedRequest,
                format!(
                    "key index {} carries no message for member {left_out}: a new key must reach every member",
                    rotation.key_index
                ),
            ));
        }
        let messages = request
            .messages
            .into_iter()
            .map(|m| NewMessage {
                recipient: m.recipient,
                sender: auth.device_id,
                received,
                sealed: m.sealed.into_vec(),
            })
            .collect();
        state
            .store
            .append_realm_certificate(
                &auth.org,
                realm,
                expected_len,
                StoredCertificate {
                    bytes: request.certificate.into_vec(),
                    received,
                },
                messages,
            )
            .await?;
        realms.insert((auth.org.clone(), realm), chain);
    }
    let (checkpoint, _) = state
        .store
        .realm_changes(&auth.org, realm, u64::MAX, 0)
        .await?;
    state.events.publish(
        &auth.org,
        ServerEvent::Realm {
            id: realm,
            checkpoint,
        },
    );
    for recipient in recipients {
        state
            .events
            .publish_to(&auth.org, recipient, ServerEvent::Message);
    }
    Ok(Msgpack(Ack {}))
}

/// Checks a vlob write against the caller's key, the size bound, the clock and the writing
/// device's seal (so that a reader can tell a version its author stored from one changed
/// afterwards, and a version sealed for another key than the certified one is refused here).
fn check_write(
    realm: RealmId,
    auth: &AuthenticatedDevice,
    request: &VlobWriteRequest,
    key: &WriteKey,
) -> Result<(), ApiError> {
    let key_index = key.index;
    if request.key_index != key_index {
        return Err(ApiError::new(
            ErrorCode::BadKeyIndex,
            format!(
                "the workspace's current key index is {key_index}, not {}",
                request.key_index
            ),
        ));
    }
    if request.blob.len() > MAX_VLOB_BYTES {
        return Err(too_large(MAX_VLOB_BYTES));
    }
    if request.timestamp.distance_micros(now()) > MAX_CLOCK_SKEW_MICROS as u64 {
        return Err(ApiError::new(
            ErrorCode::StaleTimestamp,
            "the manifest's timestamp is too far from the server's clock",
        ));
    }
    let coordinates = VlobCoordinates {
        realm,
        id: request.id,
        version: request.version,
        key_index: request.key_index,
        author: auth.device_id,
        timestamp: request.timestamp,
        received: request.timestamp,
    };
    let sealed = verify_seal(&request.blob, &coordinates, &auth.verify_key).map_err(|_| {
        ApiError::new(
            ErrorCode::BadSignature,
            format!(
                "version {} of entry {} is not sealed by the writing device for this place",
                request.version, request.id
            ),
        )
    })?;
    if let Some(certified) = &key.check
        && !certified.ct_eq(&sealed.key_check)
    {
        return Err(ApiError::new(
            ErrorCode::BadKeyIndex,
            format!(
                "version {} of entry {} is sealed for another key than the one certified as key index {key_index}",
                request.version, request.id
            ),
        ));
    }
    Ok(())
}

fn stored(request: VlobWriteRequest, author: strongroom_protocol::ids::DeviceId) -> VlobVersion {
    VlobVersion {
        id: request.id,
        version: request.version,
        key_index: request.key_index,
        author,
        timestamp: request.timestamp,
        received: now(),
        blob: request.blob,
    }
}

/// `POST /authenticated/{org}/realms/{realm}/vlobs`: a new version of a vlob.
pub async fn write_vlob(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
    Path((_, realm)): Path<(String, String)>,
    Msgpack(request): RealmBody<VlobWriteRequest>,
) -> Result<Msgpack<VlobWriteResponse>, ApiError> {
    let realm: RealmId = parse(&realm, "workspace id")?;
    let key = writer(&state, &auth, realm).await?;
    check_write(realm, &auth, &request, &key)?;
    let checkpoint = state
        .store
        .write_vlob(&auth.org, realm, stored(request, auth.device_id))
        .await?;
    state.events.publish(
        &auth.org,
        ServerEvent::Realm {
            id: realm,
            checkpoint,
        },
    );
    Ok(Msgpack(VlobWriteResponse { checkpoint }))
}

/// `POST /authenticated/{org}/realms/{realm}/vlobs/batch`: many writes in one transaction.
pub async fn write_vlobs(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
    Path((_, realm)): Path<(String, String)>,
    Msgpack(request): RealmBody<VlobBatchWriteRequest>,
) -> Result<Msgpack<VlobBatchWriteResponse>, ApiError> {
    let realm: RealmId = parse(&realm, "workspace id")?;
    if request.writes.len() > MAX_BATCH_WRITES {
        return Err(ApiError::new(
            ErrorCode::MalformedRequest,
            format!("at most {MAX_BATCH_WRITES} writes per batch"),
        ));
    }
    let key = writer(&state, &auth, realm).await?;
    for write in &request.writes {
        check_write(realm, &auth, write, &key)?;
    }
    let writes = request
        .writes
        .into_iter()
        .map(|w| stored(w, auth.device_id))
        .collect();
    let outcomes = state.store.write_vlobs(&auth.org, realm, writes).await?;
    if let Some(checkpoint) = outcomes.iter().flatten().max() {
        state.events.publish(
            &auth.org,
            ServerEvent::Realm {
                id: realm,
                checkpoint: *checkpoint,
            },
        );
    }
    let results = outcomes
        .into_iter()
        .map(|o| match o {
            Some(checkpoint) => VlobWriteResult::Written { checkpoint },
            None => VlobWriteResult::VersionConflict,
        })
        .collect();
    Ok(Msgpack(VlobBatchWriteResponse { results }))
}

/// `POST /authenticated/{org}/realms/{realm}/vlobs/read`: many vlobs in one request.
pub async fn read_vlobs(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
    Path((_, realm)): Path<(String, String)>,
    Msgpack(request): RealmBody<VlobReadRequest>,
) -> Result<Msgpack<VlobReadResponse>, ApiError> {
    let realm: RealmId = parse(&realm, "workspace id")?;
    access(&state, &auth, realm).await?;
    if request.ids.len() as u64 > REALM_PAGE {
        return Err(ApiError::new(
            ErrorCode::MalformedRequest,
            format!("at most {REALM_PAGE} vlobs per read"),
        ));
    }
    let batch = state
        .store
        .read_vlobs(
            &auth.org,
            realm,
            request.ids,
            request.at,
            MAX_READ_ANSWER_BYTES,
        )
        .await?;
    Ok(Msgpack(VlobReadResponse {
        vlobs: batch.vlobs,
        deferred: batch.deferred,
    }))
}

/// `?from=N`: the first version of a history page.
#[derive(serde::Deserialize)]
pub struct VersionQuery {
    #[serde(default)]
    from: u32,
}

/// `GET /authenticated/{org}/realms/{realm}/vlobs/{id}/versions?from=N`
pub async fn vlob_history(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
    Path((_, realm, id)): Path<(String, String, String)>,
    Query(query): Query<VersionQuery>,
) -> Result<Msgpack<VlobHistoryResponse>, ApiError> {
    let realm: RealmId = parse(&realm, "workspace id")?;
    let id: EntryId = parse(&id, "entry id")?;
    access(&state, &auth, realm).await?;
    let versions = state
        .store
        .vlob_history(&auth.org, realm, id, query.from, HISTORY_PAGE)
        .await?;
    Ok(Msgpack(VlobHistoryResponse { versions }))
}

/// `GET /authenticated/{org}/realms/{realm}/vlobs/{id}/versions/{version}`
pub async fn vlob_version(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
    Path((_, realm, id, version)): Path<(String, String, String, String)>,
) -> Result<Msgpack<VlobVersion>, ApiError> {
    let realm: RealmId = parse(&realm, "workspace id")?;
    let id: EntryId = parse(&id, "entry id")?;
    let version: u32 = parse(&version, "version")?;
    access(&state, &auth, realm).await?;
    state
        .store
        .vlob_version(&auth.org, realm, id, version)
        .await?
        .map(Msgpack)
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownObject, "no such version of this entry"))
}

#[derive(serde::Deserialize)]
pub struct SinceQuery {
    #[serde(default)]
    since: u64,
}

/// `GET /authenticated/{org}/realms/{realm}/changes?since=N`
pub async fn changes(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
    Path((_, realm)): Path<(String, String)>,
    Query(query): Query<SinceQuery>,
) -> Result<Msgpack<RealmChangesResponse>, ApiError> {
    let realm: RealmId = parse(&realm, "workspace id")?;
    access(&state, &auth, realm).await?;
    let (checkpoint, changes) = state
        .store
        .realm_changes(&auth.org, realm, query.since, REALM_PAGE)
        .await?;
    Ok(Msgpack(RealmChangesResponse {
        checkpoint,
        changes,
    }))
}

/// `PUT /authenticated/{org}/realms/{realm}/blocks/{block}`: an encrypted block, raw.
pub async fn put_block(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
    Path((_, realm, block)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Msgpack<Ack>, ApiError> {
    let realm: RealmId = parse(&realm, "workspace id")?;
    let block: BlockId = parse(&block, "block id")?;
    if body.len() > MAX_BLOCK_BYTES {
        return Err(too_large(MAX_BLOCK_BYTES));
    }
    match access(&state, &auth, realm).await? {
        Access::Member { role, .. } if role.can_write() => {}
        _ => {
            return Err(ApiError::new(
                ErrorCode::NotAllowed,
                "your role in this workspace does not allow writing",
            ));
        }
    }
    let size = body.len() as u64;
    state.store.check_storage(&auth.org, size).await?;
    state
        .blocks
        .put(&auth.org, realm, block, body.to_vec())
        .await?;
    state
        .store
        .record_block(&auth.org, realm, block, size, auth.device_id)
        .await?;
    Ok(Msgpack(Ack {}))
}

/// `GET /authenticated/{org}/realms/{realm}/blocks/{block}`: an encrypted block, raw.
pub async fn get_block(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
    Path((_, realm, block)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let realm: RealmId = parse(&realm, "workspace id")?;
    let block: BlockId = parse(&block, "block id")?;
    access(&state, &auth, realm).await?;
    let bytes = state
        .blocks
        .get(&auth.org, realm, block)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnknownObject,
                format!("no block {block} in this workspace"),
            )
        })?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// `GET /authenticated/{org}/messages?from=N`: the caller's messages.
pub async fn messages(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
    Query(query): Query<super::certificates::FromQuery>,
) -> Result<Msgpack<MessagesResponse>, ApiError> {
    let (messages, more) = state
        .store
        .messages(
            &auth.org,
            auth.user.user_id,
            query.from,
            MESSAGES_PAGE,
            MAX_READ_ANSWER_BYTES,
        )
        .await?;
    Ok(Msgpack(MessagesResponse { messages, more }))
}
