//! Requests the server refuses with a typed error: malformed and oversized bodies, bad
//! signatures, stale timestamps, unknown organizations, devices and invitations, spent or
//! cancelled invitation tokens, wrong administrator and bootstrap tokens.

use rand_core::OsRng;
use strongroom_protocol::crypto::signing::SigningKey;
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::ids::{BlockId, DeviceId, InvitationToken};
use strongroom_protocol::links::{BootstrapLink, InvitationLink};
use strongroom_protocol::time::Timestamp;
use strongroom_protocol::wire::{
    CreateInvitationRequest, CreateOrganizationRequest, ErrorCode, ErrorResponse, InvitationKind,
    MAX_BLOCK_BYTES, MAX_BODY_BYTES,
};
use strongroom_testkit::raw::{SignedRequest, keys, now};
use strongroom_testkit::scenario::Org;
use strongroom_testkit::{Pick, greet_and_claim};

fn plain(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Vec<u8>,
) -> (u16, Option<ErrorResponse>) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut request = reqwest::Client::new()
            .request(method.parse().unwrap(), url)
            .body(body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        (status, ErrorResponse::decode(&bytes).ok())
    })
}

fn code(result: (u16, Option<ErrorResponse>)) -> ErrorCode {
    let (status, error) = result;
    let error = error.unwrap_or_else(|| panic!("no typed error (status {status})"));
    assert!(status >= 400);
    assert!(!error.message.is_empty());
    error.code
}

#[test]
fn signed_requests_are_checked() {
    let org = Org::new();
    let alice = keys(&org.alice.home);
    let path = "/authenticated/acme/invitations".to_string();
    let valid = CreateInvitationRequest {
        kind: InvitationKind::Device,
    }
    .encode();

    // The honest request works, so the refusals below are about what was changed.
    let (status, error) = SignedRequest::new(&alice, "POST", path.clone(), valid.clone()).send();
    assert_eq!(status, 200, "{error:?}");

    let malformed =
        SignedRequest::new(&alice, "POST", path.clone(), b"\x93\xa5hello".to_vec()).send();
    assert_eq!(code(malformed), ErrorCode::MalformedRequest);

    let oversized =
        SignedRequest::new(&alice, "POST", path.clone(), vec![0; MAX_BODY_BYTES + 1]).send();
    assert_eq!(oversized.0, 413);
    assert_eq!(code(oversized), ErrorCode::PayloadTooLarge);

    let mut other_key = SignedRequest::new(&alice, "POST", path.clone(), valid.clone());
    other_key.signer = Some(SigningKey::generate(&mut OsRng));
    assert_eq!(code(other_key.send()), ErrorCode::BadSignature);

    let mut body_swapped = SignedRequest::new(&alice, "POST", path.clone(), valid.clone());
    body_swapped.sent_body = Some(
        CreateInvitationRequest {
            kind: InvitationKind::User {
                email: "x@example.com".parse().unwrap(),
                profile: strongroom_protocol::certificates::UserProfile::Admin,
            },
        }
        .encode(),
    );
    assert_eq!(code(body_swapped.send()), ErrorCode::BadSignature);

    for skew in [-10 * 60 * 1_000_000, 10 * 60 * 1_000_000] {
        let mut stale = SignedRequest::new(&alice, "POST", path.clone(), valid.clone());
        stale.timestamp = Timestamp::from_micros(now().as_micros() + skew);
        assert_eq!(code(stale.send()), ErrorCode::StaleTimestamp);
    }

    let mut unknown_device = alice.clone();
    unknown_device.device_id = DeviceId::generate(&mut OsRng);
    assert_eq!(
        code(SignedRequest::new(&unknown_device, "POST", path.clone(), valid.clone()).send()),
        ErrorCode::UnknownDevice
    );

    let mut other_org = alice.clone();
    other_org.organization = "nope".parse().unwrap();
    assert_eq!(
        code(
            SignedRequest::new(
                &other_org,
                "GET",
                "/authenticated/nope/certificates".into(),
                vec![]
            )
            .send()
        ),
        ErrorCode::UnknownOrganization
    );

    let unsigned = plain(
        "GET",
        &format!("{}/authenticated/acme/certificates", org.server.url()),
        None,
        vec![],
    );
    assert_eq!(code(unsigned), ErrorCode::BadSignature);
}

#[test]
fn tokens_are_checked() {
    let org = Org::new();
    let url = org.server.url();

    // Administrator token.
    let create = CreateOrganizationRequest {
        organization: "other".parse().unwrap(),
    }
    .encode();
    assert_eq!(
        code(plain(
            "POST",
            &format!("{url}/admin/organizations"),
            Some("wrong"),
            create.clone()
        )),
        ErrorCode::InvalidAdminToken
    );
    assert_eq!(
        code(plain(
            "POST",
            &format!("{url}/admin/organizations"),
            None,
            create
        )),
        ErrorCode::InvalidAdminToken
    );

    // Bootstrap: unknown organization, wrong token, used twice.
    let link: BootstrapLink = org.server.create_org("second").parse().unwrap();
    let bootstrap = |org_name: &str, token| {
        let request = strongroom_protocol::wire::BootstrapRequest {
            token,
            root_verify_key: SigningKey::generate(&mut OsRng).verify_key(),
            user_certificate: serde_bytes::ByteBuf::new(),
            device_certificate: serde_bytes::ByteBuf::new(),
        };
        plain(
            "POST",
            &format!("{url}/anonymous/{org_name}/bootstrap"),
            None,
            request.encode(),
        )
    };
    assert_eq!(
        code(bootstrap("missing", link.token.clone())),
        ErrorCode::UnknownOrganization
    );
    // Empty certificates are refused before the token is even looked at.
    assert_eq!(
        code(bootstrap("second", link.token.clone())),
        ErrorCode::InvalidCertificate
    );
    let bob_home = org.member("second-admin");
    let wrong = BootstrapLink {
        token: strongroom_protocol::ids::BootstrapToken::generate(&mut OsRng),
        ..link.clone()
    };
    let err = bob_home.fails(&[
        "bootstrap",
        &wrong.to_string(),
        "--email",
        "a@example.com",
        "--name",
        "A",
    ]);
    assert!(
        err.contains("bootstrap token is not this organization's"),
        "{err}"
    );
    bob_home.ok(&[
        "bootstrap",
        &link.to_string(),
        "--email",
        "a@example.com",
        "--name",
        "A",
    ]);
    let again = org.member("again");
    let err = again.fails(&[
        "bootstrap",
        &link.to_string(),
        "--email",
        "b@example.com",
        "--name",
        "B",
    ]);
    assert!(err.contains("already bootstrapped"), "{err}");

    // Invitation tokens: unknown, spent, cancelled.
    let unknown = InvitationToken::generate(&mut OsRng).to_string();
    let info = |token: &str| {
        plain(
            "GET",
            &format!("{url}/invited/acme/invitation"),
            Some(token),
            vec![],
        )
    };
    let join = |token: &str| {
        plain(
            "POST",
            &format!("{url}/invited/acme/invitation/join"),
            Some(token),
            vec![],
        )
    };
    assert_eq!(code(info(&unknown)), ErrorCode::UnknownInvitation);
    assert_eq!(code(info("not-a-token")), ErrorCode::UnknownInvitation);

    let bob = org.member("bob");
    let bob_url = org.alice.last_line(&["invite", "user", "bob@example.com"]);
    let (g, c) = greet_and_claim(
        &org.alice,
        &bob,
        &bob_url,
        &["--name", "Bob"],
        Pick::Heard,
        Pick::Heard,
    );
    assert!(g.success && c.success, "{}{}", g.stderr, c.stderr);
    let spent = bob_url.parse::<InvitationLink>().unwrap().token.to_string();
    assert_eq!(code(info(&spent)), ErrorCode::InvitationAlreadyUsed);
    assert_eq!(code(join(&spent)), ErrorCode::InvitationAlreadyUsed);
    let err = org.alice.fails(&["greet", &bob_url]);
    assert!(err.contains("completed"), "{err}");

    let carol_link: InvitationLink = org
        .alice
        .last_line(&["invite", "user", "carol@example.com"])
        .parse()
        .unwrap();
    let carol = carol_link.token.to_string();
    assert_eq!(
        plain(
            "GET",
            &format!("{url}/invited/acme/invitation"),
            Some(&carol),
            vec![]
        )
        .0,
        200
    );
    org.alice.ok(&["invite", "cancel", &carol_link.to_string()]);
    assert_eq!(code(info(&carol)), ErrorCode::InvitationCancelled);
    assert_eq!(code(join(&carol)), ErrorCode::InvitationCancelled);
}

#[test]
fn blocks_up_to_the_protocol_limit_are_accepted_and_larger_ones_refused() {
    let org = Org::new();
    org.alice.ok(&["workspace", "create", "Blocks"]);
    let realm = strongroom_engine::Client::open(
        &strongroom_engine::home::Home::new(&org.alice.home),
        &strongroom_engine::password::Password::new(strongroom_testkit::member::PASSWORD),
        strongroom_engine::device_file::KdfPolicy::AllowWeak,
    )
    .unwrap()
    .workspace_context_offline("Blocks")
    .unwrap()
    .realm;
    let alice = keys(&org.alice.home);
    let block_path = || {
        format!(
            "/authenticated/{}/realms/{realm}/blocks/{}",
            alice.organization,
            BlockId::generate(&mut OsRng)
        )
    };
    let largest = SignedRequest::new(&alice, "PUT", block_path(), vec![7; MAX_BLOCK_BYTES]).send();
    assert_eq!(largest.0, 200, "{:?}", largest.1);
    let too_large =
        SignedRequest::new(&alice, "PUT", block_path(), vec![7; MAX_BLOCK_BYTES + 1]).send();
    assert_eq!(too_large.0, 413);
    assert_eq!(code(too_large), ErrorCode::PayloadTooLarge);
}
