//! Typed calls to the server's realm endpoints, as this device.

use reqwest::Method;
use serde_bytes::ByteBuf;
use strongroom_protocol::ids::{BlockId, EntryId, RealmId};
use strongroom_protocol::time::Timestamp;
use strongroom_protocol::wire::{
    Ack, CreateRealmRequest, ErrorCode, MessagesResponse, OutgoingMessage, REALM_PAGE,
    RealmCertificateRequest, RealmCertificatesResponse, RealmChangesResponse,
    VlobBatchWriteRequest, VlobBatchWriteResponse, VlobHistoryResponse, VlobReadRequest,
    VlobReadResponse, VlobVersion, VlobWriteRequest, VlobWriteResponse, VlobWriteResult,
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

    /// A realm's certificates from `from` on.
    pub(crate) async fn remote_realm_certificates(
        &self,
        realm: RealmId,
        from: u64,
    ) -> Result<Vec<Vec<u8>>> {
        let response: RealmCertificatesResponse = self
            .call(
                Method::GET,
                &format!("/realms/{realm}/certificates?from={from}"),
                None,
            )
            .await?;
        if response.from != from {
            return Err(EngineError::Protocol(
                "the server answered for other certificates".into(),
            ));
        }
        Ok(response
            .certificates
            .into_iter()
            .map(|c| c.into_vec())
            .collect())
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

    /// The latest (or as of `at`) version of many vlobs, in pages.
    pub(crate) async fn remote_read_vlobs(
        &self,
        realm: RealmId,
        ids: &[EntryId],
        at: Option<Timestamp>,
    ) -> Result<Vec<VlobVersion>> {
        let mut out = Vec::with_capacity(ids.len());
        for page in ids.chunks(REALM_PAGE as usize) {
            let request = VlobReadRequest {
                ids: page.to_vec(),
                at,
            };
            let response: VlobReadResponse = self
                .call(
                    Method::POST,
                    &format!("/realms/{realm}/vlobs/read"),
                    Some(&request),
                )
                .await?;
            for vlob in &response.vlobs {
                if !page.contains(&vlob.id) {
                    return Err(EngineError::Protocol(
                        "the server answered with a vlob that was not asked for".into(),
                    ));
                }
            }
            out.extend(response.vlobs);
        }
        Ok(out)
    }

    /// Every version of a vlob, without content.
    pub(crate) async fn remote_vlob_history(
        &self,
        realm: RealmId,
        id: EntryId,
    ) -> Result<VlobHistoryResponse> {
        self.call(
            Method::GET,
            &format!("/realms/{realm}/vlobs/{id}/versions"),
            None,
        )
        .await
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

    /// This user's messages from index `from` on.
    pub(crate) async fn remote_messages(&self, from: u64) -> Result<MessagesResponse> {
        self.call(Method::GET, &format!("/messages?from={from}"), None)
            .await
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
