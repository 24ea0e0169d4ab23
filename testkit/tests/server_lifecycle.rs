//! The server's life: it stops cleanly on SIGTERM even with event streams open, and keeps its
//! data across restarts. The chain is served in pages that clients follow to the end.

use std::io::Read;
use std::time::{Duration, Instant};

use rand_core::OsRng;
use serde_bytes::ByteBuf;
use strongroom_protocol::certificates::{
    Certificate, SignedCertificate, Signer, UserCertificate, UserProfile,
};
use strongroom_protocol::crypto::sealed_box::PrivateKey;
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::ids::UserId;
use strongroom_protocol::links::InvitationLink;
use strongroom_protocol::wire::{CERTIFICATES_PAGE, UploadCertificateRequest};
use strongroom_testkit::raw::{SignedRequest, keys, now};
use strongroom_testkit::scenario::{Org, join_user};

#[test]
fn sigterm_stops_the_server_cleanly_with_streams_open_and_data_survives() {
    let mut org = Org::new();
    let link: InvitationLink = org
        .alice
        .last_line(&["invite", "user", "bob@example.com"])
        .parse()
        .unwrap();
    // An open event stream, as a waiting claimer holds.
    let url = format!("{}/invited/acme/invitation/events", org.server.url());
    let token = link.token.to_string();
    let stream = std::thread::spawn(move || {
        // Read until the server ends the stream.
        let mut response = reqwest::blocking_get_with_bearer(&url, &token);
        let mut received = Vec::new();
        let _ = response.read_to_end(&mut received);
        String::from_utf8_lossy(&received).into_owned()
    });
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let status = org.server.stop().expect("the server stopped on SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let received = stream.join().unwrap();
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
    assert!(received.contains("text/event-stream"), "{received}");

    // Restarted over the same data: the organization, Alice and the invitation are all there.
    org.server.restart();
    let bob = org.member("bob");
    let (g, c) = strongroom_testkit::greet_and_claim(
        &org.alice,
        &bob,
        &link.to_string(),
        &["--name", "Bob"],
        strongroom_testkit::Pick::Heard,
        strongroom_testkit::Pick::Heard,
    );
    assert!(g.success && c.success, "{}{}", g.stderr, c.stderr);
}

/// A tiny blocking client for the test above, without adding reqwest's blocking feature.
mod reqwest {
    pub fn blocking_get_with_bearer(url: &str, token: &str) -> std::net::TcpStream {
        use std::io::Write;
        let parsed = url::Url::parse(url).unwrap();
        let mut stream =
            std::net::TcpStream::connect((parsed.host_str().unwrap(), parsed.port().unwrap()))
                .unwrap();
        write!(
            stream,
            "GET {} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n",
            parsed.path()
        )
        .unwrap();
        stream
    }
}

#[test]
fn clients_page_through_a_long_chain() {
    let org = Org::new();
    let alice = keys(&org.alice.home);
    let extra = CERTIFICATES_PAGE as usize + 150;
    let start = now();
    for i in 0..extra {
        let certificate = SignedCertificate::sign(
            &Certificate::User(UserCertificate {
                author: Signer::Device(alice.device_id),
                timestamp: start.plus_micros(i as i64),
                user_id: UserId::generate(&mut OsRng),
                email: format!("user{i}@example.com").parse().unwrap(),
                human_name: format!("User {i}").parse().unwrap(),
                public_key: PrivateKey::generate(&mut OsRng).public_key(),
                profile: UserProfile::Standard,
            }),
            &alice.signing_key(),
        );
        let body = UploadCertificateRequest {
            certificate: ByteBuf::from(certificate.encode()),
        }
        .encode();
        let (status, error) = SignedRequest::new(
            &alice,
            "POST",
            "/authenticated/acme/certificates".into(),
            body,
        )
        .send();
        assert_eq!(status, 200, "{error:?}");
    }
    // Alice's device pages through them; a new member validates the whole chain from the root.
    assert_eq!(org.alice.user_list().len(), extra + 1);
    let bob = org.member("bob");
    join_user(&org.alice, &bob, "bob@example.com", "Bob", &[]);
    assert_eq!(bob.user_list().len(), extra + 2);
}
