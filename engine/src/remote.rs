//! Typed calls to the server's realm endpoints, as this device.

use reqwest::Method;
use serde_bytes::ByteBuf;
use strongroom_protocol::ids::{BlockId, EntryId, RealmId};
use strongroom_protocol::time::Timestamp;
use strongroom_protocol::wire::{
    Ack, CERTIFICATES_PAGE, CreateRealmRequest, ErrorCode, HISTORY_PAGE, IncomingMessage,
    MESSAGES_PAGE, MessagesResponse, OutgoingMessage, REALM_PAGE, RealmCertificateRequest,
    RealmCertificatesResponse, RealmChangesResponse, ReceivedCertificate, VlobBatchWriteRequest,
    VlobBatchWriteResponse, VlobHistoryResponse, VlobReadRequest, VlobReadResponse, VlobVersion,
    VlobVersionInfo, VlobWriteRequest, VlobWriteResponse, VlobWriteResult,
};

use crate::client::Client;
use crate::error::{EngineError, Result};

/// The answer to a vlob write.
pub enum WriteOutcome {
    /// Stored.
    Written,
    /// Another device wrote this version first.
    Conflict,
}

impl Client {
    /// Creates a realm with its first certificates.
    pub(crate) async fn remote_create_realm(
        &self,
        realm: RealmId,
        certificates: Vec<Vec<u8>>,
    ) -> Result<()> {
        let request = CreateRealmRequest {
            certificates: certificates.into_iter().map(ByteBuf::from).collect(),
        };
        let _: Ack = self
            .call(Method::POST, &format!("/realms/{realm}"), Some(&request))
            .await?;
        Ok(())
    }

    /// A realm's certificates from `from` on, page by page, each with when the server received
    /// it.
    pub(crate) async fn remote_realm_certificates(
        &self,
        realm: RealmId,
        from: u64,
    ) -> Result<Vec<ReceivedCertificate>> {
        let mut out = Vec::new();
        loop {
            let next = from + out.len() as u64;
            let response: RealmCertificatesResponse = self
                .call(
                    Method::GET,
                    &format!("/realms/{realm}/certificates?from={next}"),
                    None,
                )
                .await?;
            if response.from != next || response.certificates.len() as u64 > CERTIFICATES_PAGE {
                return Err(EngineError::Protocol(
                    "the server answered for other workspace certificates".into(),
                ));
            }
            let full_page = response.certificates.len() as u64 == CERTIFICATES_PAGE;
            out.extend(response.certificates);
            if !full_page {
                return Ok(out);
            }
        }
    }

    /// Uploads a realm certificate with its messages.
    pub(crate) async fn remote_add_realm_certificate(
        &self,
        realm: RealmId,
        certificate: Vec<u8>,
        messages: Vec<OutgoingMessage>,
    ) -> Result<()> {
        let request = RealmCertificateRequest {
            certificate: ByteBuf::from(certificate),
            messages,
        };
        let _: Ack = self
            .call(
                Method::POST,
                &format!("/realms/{realm}/certificates"),
                Some(&request),
            )
            .await?;
        Ok(())
    }

    /// Writes a vlob version.
    pub(crate) async fn remote_write_vlob(
        &self,
        realm: RealmId,
        request: VlobWriteRequest,
    ) -> Result<WriteOutcome> {
        let result: Result<VlobWriteResponse> = self
            .call(
                Method::POST,
                &format!("/realms/{realm}/vlobs"),
                Some(&request),
            )
            .await;
        match result {
            Ok(_) => Ok(WriteOutcome::Written),
            Err(e) if e.server_code() == Some(ErrorCode::VersionConflict) => {
                Ok(WriteOutcome::Conflict)
            }
            Err(e) => Err(e),
        }
    }

    /// Writes many vlob versions in one request; `true` for each one written.
    pub(crate) async fn remote_write_vlobs(
        &self,
        realm: RealmId,
        writes: Vec<VlobWriteRequest>,
    ) -> Result<Vec<bool>> {
        let count = writes.len();
        let request = VlobBatchWriteRequest { writes };
        let response: VlobBatchWriteResponse = self
            .call(
                Method::POST,
                &format!("/realms/{realm}/vlobs/batch"),
                Some(&request),
            )
            .await?;
        if response.results.len() != count {
            return Err(EngineError::Protocol(
                "the server answered a batch with the wrong number of results".into(),
            ));
        }
        Ok(response
            .results
            .into_iter()
            .map(|r| matches!(r, VlobWriteResult::Written { .. }))
            .collect())
    }

    /// The latest (or as of `at`) version of many vlobs, in pages: each id is asked once, and
    /// those the server deferred (its answers are bounded in size) are asked again. An id that
    /// is neither answered nor deferred does not exist on the server (callers decide whether
    /// that can be).
    pub(crate) async fn remote_read_vlobs(
        &self,
        realm: RealmId,
        ids: &[EntryId],
        at: Option<Timestamp>,
    ) -> Result<Vec<VlobVersion>> {
        let mut unique = std::collections::HashSet::with_capacity(ids.len());
        let mut waiting: std::collections::VecDeque<EntryId> = ids
            .iter()
            .copied()
            .filter(|id| unique.insert(*id))
            .collect();
        let mut out = Vec::with_capacity(waiting.len());
        while !waiting.is_empty() {
            let count = waiting.len().min(REALM_PAGE as usize);
            let page: Vec<EntryId> = waiting.drain(..count).collect();
            let asked: std::collections::HashSet<EntryId> = page.iter().copied().collect();
            let request = VlobReadRequest { ids: page, at };
            let response: VlobReadResponse = self
                .call(
                    Method::POST,
                    &format!("/realms/{realm}/vlobs/read"),
                    Some(&request),
                )
                .await?;
            let mut answered = std::collections::HashSet::with_capacity(response.vlobs.len());
            for id in response
                .vlobs
                .iter()
                .map(|v| v.id)
                .chain(response.deferred.iter().copied())
            {
                if !asked.contains(&id) || !answered.insert(id) {
                    return Err(EngineError::Protocol(
                        "the server answered a batch read with entries that were not asked for, or twice".into(),
                    ));
                }
            }
            if response.vlobs.is_empty() && !response.deferred.is_empty() {
                return Err(EngineError::Protocol(
                    "the server deferred every entry of a batch read".into(),
                ));
            }
            out.extend(response.vlobs);
            waiting.extend(response.deferred);
        }
        Ok(out)
    }

    /// Every version of a vlob, without content, page by page. Versions are numbered 1, 2, ...
    /// without gaps: a server that leaves one out is caught.
    pub(crate) async fn remote_vlob_history(
        &self,
        realm: RealmId,
        id: EntryId,
    ) -> Result<Vec<VlobVersionInfo>> {
        let mut versions: Vec<VlobVersionInfo> = Vec::new();
        loop {
            let from = versions.len() as u32 + 1;
            let page: VlobHistoryResponse = self
                .call(
                    Method::GET,
                    &format!("/realms/{realm}/vlobs/{id}/versions?from={from}"),
                    None,
                )
                .await?;
            if page.versions.len() as u64 > HISTORY_PAGE {
                return Err(EngineError::Protocol(
                    "the server answered with a history page that is too long".into(),
                ));
            }
            for (i, info) in page.versions.iter().enumerate() {
                if info.version != from + i as u32 {
                    return Err(EngineError::Protocol(format!(
                        "the server's history of entry {id} skips or repeats versions (version {} where {} was expected)",
                        info.version,
                        from + i as u32
                    )));
                }
            }
            let full_page = page.versions.len() as u64 == HISTORY_PAGE;
            versions.extend(page.versions);
            if !full_page {
                return Ok(versions);
            }
        }
    }

    /// One version of a vlob.
    pub(crate) async fn remote_vlob_version(
        &self,
        realm: RealmId,
        id: EntryId,
        version: u32,
    ) -> Result<VlobVersion> {
        self.call(
            Method::GET,
            &format!("/realms/{realm}/vlobs/{id}/versions/{version}"),
            None,
        )
        .await
    }

    /// Changes of a realm after a checkpoint.
    pub(crate) async fn remote_changes(
        &self,
        realm: RealmId,
        since: u64,
    ) -> Result<RealmChangesResponse> {
        self.call(
            Method::GET,
            &format!("/realms/{realm}/changes?since={since}"),
            None,
        )
        .await
    }

    /// One page of this user's messages from index `from` on; `true` when more follow.
    pub(crate) async fn remote_messages(&self, from: u64) -> Result<(Vec<IncomingMessage>, bool)> {
        let page: MessagesResponse = self
            .call(Method::GET, &format!("/messages?from={from}"), None)
            .await?;
        if page.messages.len() as u64 > MESSAGES_PAGE {
            return Err(EngineError::Protocol(
                "the server answered with too many messages at once".into(),
            ));
        }
        Ok((page.messages, page.more))
    }

    /// Uploads an encrypted block.
    pub(crate) async fn remote_put_block(
        &self,
        realm: RealmId,
        block: BlockId,
        bytes: Vec<u8>,
    ) -> Result<()> {
        let path = format!(
            "/authenticated/{}/realms/{realm}/blocks/{block}",
            self.keys().organization
        );
        self.connection()
            .send_raw(Method::PUT, &path, bytes, self.credentials())
            .await
            .map(drop)
    }

    /// Downloads an encrypted block.
    pub(crate) async fn remote_get_block(&self, realm: RealmId, block: BlockId) -> Result<Vec<u8>> {
        let path = format!(
            "/authenticated/{}/realms/{realm}/blocks/{block}",
            self.keys().organization
        );
        self.connection()
            .send_raw(Method::GET, &path, Vec::new(), self.credentials())
            .await
    }
}
