use crate::crypto::signing::VerifyKey;
use crate::encoding::Encoded;
use crate::ids::{BootstrapToken, OrganizationId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// An empty success.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Ack {}

impl Encoded for Ack {
    const TAG: &'static str = "ack";
    const VERSION: u8 = 1;
}

/// `POST /admin/organizations`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateOrganizationRequest {
    /// The name of the new organization.
    pub organization: OrganizationId,
}

impl Encoded for CreateOrganizationRequest {
    const TAG: &'static str = "create-organization-request";
    const VERSION: u8 = 1;
}

/// The answer to [`CreateOrganizationRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateOrganizationResponse {
    /// The link to hand to the person who bootstraps (a
    /// [`BootstrapLink`](crate::links::BootstrapLink)).
    pub bootstrap_url: String,
}

impl Encoded for CreateOrganizationResponse {
    const TAG: &'static str = "create-organization-response";
    const VERSION: u8 = 1;
}

/// `GET` and `PUT /admin/organizations/{org}/quotas`: what the server administrator allows an
/// organization (`None`: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OrganizationQuotas {
    /// Bytes stored: blocks, manifests, workspace certificates and messages.
    pub storage_bytes: Option<u64>,
    /// Workspaces.
    pub workspaces: Option<u64>,
    /// Devices of users who are not revoked.
    pub devices: Option<u64>,
    /// What the organization stores now, counted against `storage_bytes`: set by the server's
    /// `GET` answer, ignored in a `PUT`. Absent from older servers' answers (and left out when
    /// `None`, so that older decoders read the rest unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_bytes: Option<u64>,
}

impl Encoded for OrganizationQuotas {
    const TAG: &'static str = "organization-quotas";
    const VERSION: u8 = 1;
}

/// `POST /anonymous/{org}/bootstrap`: the root public key and the first user and device
/// certificates, signed by the root key (whose secret never leaves the client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootstrapRequest {
    /// The one-time token from the bootstrap link.
    pub token: BootstrapToken,
    /// The organization's root verify key.
    pub root_verify_key: VerifyKey,
    /// The first user, signed by the root key.
    pub user_certificate: ByteBuf,
    /// The first device, signed by the root key.
    pub device_certificate: ByteBuf,
}

impl Encoded for BootstrapRequest {
    const TAG: &'static str = "bootstrap-request";
    const VERSION: u8 = 1;
}

/// A certificate as the server keeps it: the signed bytes, and when the server received them
/// (by its clock), against which every client checks the certificate's own date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedCertificate {
    /// The signed certificate.
    pub certificate: ByteBuf,
    /// When the server received it.
    pub received: Timestamp,
}

/// `GET /authenticated/{org}/certificates?from=N`: certificates from index `N` on, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificatesResponse {
    /// The index of the first certificate returned.
    pub from: u64,
    /// Signed certificates, in the order they were accepted, at most
    /// [`CERTIFICATES_PAGE`](super::CERTIFICATES_PAGE).
    pub certificates: Vec<ReceivedCertificate>,
}

impl Encoded for CertificatesResponse {
    const TAG: &'static str = "certificates-response";
    const VERSION: u8 = 2;
}

/// `POST /authenticated/{org}/certificates`: a certificate signed by the caller's device
/// (today: a user revocation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadCertificateRequest {
    /// The signed certificate.
    pub certificate: ByteBuf,
}

impl Encoded for UploadCertificateRequest {
    const TAG: &'static str = "upload-certificate-request";
    const VERSION: u8 = 1;
}

/// The answer to [`UploadCertificateRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadCertificateResponse {
    /// The index the certificate got in the chain.
    pub index: u64,
}

impl Encoded for UploadCertificateResponse {
    const TAG: &'static str = "upload-certificate-response";
    const VERSION: u8 = 1;
}
