//! A STANDARD member, with a client of their own that signs whatever it likes, tries to take
//! what the organization shares: its storage quota (through workspace certificates and their
//! messages) and its pending-invitation slots. Each attempt is bounded, and the ADMINs keep
//! working.

use rand_core::OsRng;
use serde_bytes::ByteBuf;
use strongroom_engine::device_file::DeviceKeys;
use strongroom_protocol::crypto::hash::Digest;
use strongroom_protocol::crypto::secret_key::SecretKey;
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::ids::{RealmId, UserId};
use strongroom_protocol::messages::{ENVELOPE_HEADER_BYTES, MessageTopic, seal_envelope};
use strongroom_protocol::time::Timestamp;
use strongroom_protocol::wire::{
    CreateRealmRequest, ErrorCode, ErrorResponse, MAX_MESSAGE_BYTES, OutgoingMessage,
    RealmCertificateRequest,
};
use strongroom_protocol::workspace::{
    KeyRotationCertificate, RealmCertificate, RoleCertificate, WorkspaceRole, key_check,
    key_checks_digest,
};
use strongroom_testkit::raw::{SignedRequest, keys, now};
use strongroom_testkit::scenario::{Org, join_user};
use strongroom_testkit::{Member, Server};

/// The bytes the organization stores, as `org quota` reports them.
fn stored_bytes(server: &Server) -> Result<u64, String> {
    let said = server.org_quota("acme", &[]);
    said.lines()
        .find_map(|l| l.strip_prefix("Stored now: "))
        .and_then(|l| l.strip_suffix(" bytes"))
        .map(|n| n.parse().unwrap())
        .ok_or_else(|| format!("no stored bytes in: {said}"))
}

/// A workspace its OWNER builds by hand, who then posts whatever certificates and messages it
/// likes.
struct HandMade<'a> {
    keys: &'a DeviceKeys,
    realm: RealmId,
    /// The check values of its keys, by index from 1.
    checks: Vec<Digest>,
    last: Timestamp,
}

impl<'a> HandMade<'a> {
    fn create(keys: &'a DeviceKeys) -> Self {
        let realm = RealmId::generate(&mut OsRng);
        let t = now();
        let key = SecretKey::generate(&mut OsRng);
        let certificates = vec![
            RealmCertificate::Role(RoleCertificate {
                author: keys.device_id,
                timestamp: t,
                realm,
                user_id: keys.user_id,
                role: Some(WorkspaceRole::Owner),
            })
            .sign(&keys.signing_key()),
            RealmCertificate::KeyRotation(KeyRotationCertificate {
                author: keys.device_id,
                timestamp: t.plus_micros(1),
                realm,
                key_index: 1,
                key_check: key_check(&key, &realm, 1),
            })
            .sign(&keys.signing_key()),
        ];
        let body = CreateRealmRequest {
            certificates: certificates.into_iter().map(ByteBuf::from).collect(),
        }
        .encode();
        let (status, error) = SignedRequest::new(
            keys,
            "POST",
            format!("/authenticated/acme/realms/{realm}"),
            body,
        )
        .send();
        assert_eq!(status, 200, "{error:?}");
        Self {
            keys,
            realm,
            checks: vec![key_check(&key, &realm, 1)],
            last: t.plus_micros(1),
        }
    }

    fn next_time(&mut self) -> Timestamp {
        let t = now();
        self.last = if t > self.last {
            t
        } else {
            self.last.plus_micros(1)
        };
        self.last
    }

    /// Posts `certificate` with messages of `len` bytes to each of `recipients`: junk, sealed
    /// by the member's device about the workspace's keys `checks` (as the server requires).
    fn post(
        &mut self,
        certificate: Vec<u8>,
        checks: &[Digest],
        recipients: &[UserId],
        len: usize,
    ) -> (u16, Option<ErrorResponse>) {
        let key_index = checks.len() as u32;
        let topic = MessageTopic {
            realm: self.realm,
            key_index,
            key_checks: key_checks_digest(&self.realm, key_index, checks),
        };
        let messages = recipients
            .iter()
            .enumerate()
            .map(|(i, recipient)| {
                let junk = strongroom_testkit::random_bytes(
                    len.saturating_sub(ENVELOPE_HEADER_BYTES),
                    i as u64,
                );
                OutgoingMessage {
                    recipient: *recipient,
                    sealed: ByteBuf::from(seal_envelope(
                        &junk,
                        &self.keys.device_id,
                        recipient,
                        topic,
                        now(),
                        &self.keys.signing_key(),
                    )),
                }
            })
            .collect();
        let body = RealmCertificateRequest {
            certificate: ByteBuf::from(certificate),
            messages,
        }
        .encode();
        SignedRequest::new(
            self.keys,
            "POST",
            format!("/authenticated/acme/realms/{}/certificates", self.realm),
            body,
        )
        .send()
    }

    /// A key rotation (always allowed for the OWNER) carrying junk messages.
    fn rotate(&mut self, recipients: &[UserId], len: usize) -> (u16, Option<ErrorResponse>) {
        let index = self.checks.len() as u32 + 1;
        let key = SecretKey::generate(&mut OsRng);
        let check = key_check(&key, &self.realm, index);
        let certificate = RealmCertificate::KeyRotation(KeyRotationCertificate {
            author: self.keys.device_id,
            timestamp: self.next_time(),
            realm: self.realm,
            key_index: index,
            key_check: check,
        })
        .sign(&self.keys.signing_key());
        let mut checks = self.checks.clone();
        checks.push(check);
        let answer = self.post(certificate, &checks, recipients, len);
        if answer.0 == 200 {
            self.checks = checks;
        }
        answer
    }

    /// Gives `user` a role, with junk messages.
    fn share(
        &mut self,
        user: UserId,
        role: Option<WorkspaceRole>,
        recipients: &[UserId],
    ) -> (u16, Option<ErrorResponse>) {
        let certificate = RealmCertificate::Role(RoleCertificate {
            author: self.keys.device_id,
            timestamp: self.next_time(),
            realm: self.realm,
            user_id: user,
            role,
        })
        .sign(&self.keys.signing_key());
        let checks = self.checks.clone();
        self.post(certificate, &checks, recipients, 1000)
    }
}

/// What `member` reads at `path` with `strongroom get`.
fn read(member: &Member, path: &str) -> Vec<u8> {
    let out = member.home.with_extension("got");
    let _ = std::fs::remove_file(&out);
    member.ok(&["get", path, out.to_str().unwrap()]);
    std::fs::read(&out).unwrap()
}

/// Alice (ADMIN) and Bob (STANDARD, the attacker).
fn alice_and_bob() -> (Org, Member) {
    let org = Org::new();
    let bob = org.member("bob");
    join_user(&org.alice, &bob, "bob@example.com", "Bob", &[]);
    (org, bob)
}

#[test]
fn a_member_flooding_rotations_with_messages_hits_the_storage_quota() {
    let (org, bob) = alice_and_bob();
    org.server.org_quota("acme", &["--storage", "8MiB"]);
    let before = stored_bytes(&org.server);
    let bob_keys = keys(&bob.home);
    let mut junk = HandMade::create(&bob_keys);
    // Each rotation carries 32 messages of 60 KiB (about 2 MiB) to Bob himself, an OWNER.
    let recipients = vec![bob_keys.user_id; 32];
    let len = MAX_MESSAGE_BYTES - 4096;
    let mut accepted = 0;
    let refusal = loop {
        let (status, error) = junk.rotate(&recipients, len);
        if status == 200 {
            accepted += 1;
            assert!(
                accepted < 8,
                "16 MiB of messages stored under an 8 MiB quota"
            );
            continue;
        }
        break error.expect("a typed error");
    };
    assert_eq!(
        refusal.code,
        ErrorCode::QuotaExceeded,
        "{}",
        refusal.message
    );
    assert!(
        refusal.message.contains("storage quota"),
        "{}",
        refusal.message
    );
    assert!(accepted >= 2, "refused after {accepted} rotations");
    // What was accepted is counted, within the quota.
    let before = before.unwrap();
    let after = stored_bytes(&org.server).unwrap();
    let flooded = (accepted * recipients.len() * len) as u64;
    assert!(after >= before + flooded, "{before} -> {after}");
    assert!(after <= 8 << 20, "{after}");
    // The workspace's chain still takes certificates that fit, and lifting the quota lets the
    // flood's next rotation through.
    let (status, error) = junk.rotate(&[], 0);
    assert_eq!(status, 200, "{error:?}");
    org.server.org_quota("acme", &["--storage", "none"]);
    let (status, error) = junk.rotate(&recipients, len);
    assert_eq!(status, 200, "{error:?}");
}

#[test]
fn messages_to_users_outside_the_workspace_are_refused() {
    let (org, bob) = alice_and_bob();
    let carol = org.member("carol");
    join_user(&org.alice, &carol, "carol@example.com", "Carol", &[]);
    let bob_keys = keys(&bob.home);
    let alice = keys(&org.alice.home).user_id;
    let carol_id = keys(&carol.home).user_id;
    let mut junk = HandMade::create(&bob_keys);
    // A rotation whose messages go to Alice, who is no member.
    let (status, error) = junk.rotate(&[bob_keys.user_id, alice], 1000);
    let error = error.unwrap_or_else(|| panic!("accepted with status {status}"));
    assert_eq!(error.code, ErrorCode::NotAllowed, "{}", error.message);
    assert!(error.message.contains("not a member") || error.message.contains("neither"));
    // Sharing with Carol while messaging Alice: refused too.
    let (status, error) = junk.share(carol_id, Some(WorkspaceRole::Reader), &[alice]);
    let error = error.unwrap_or_else(|| panic!("accepted with status {status}"));
    assert_eq!(error.code, ErrorCode::NotAllowed, "{}", error.message);
    // The user a role certificate names may be told, on sharing and on removal, and the
    // members hear of new keys.
    let (status, error) = junk.share(carol_id, Some(WorkspaceRole::Reader), &[carol_id]);
    assert_eq!(status, 200, "{error:?}");
    let (status, error) = junk.rotate(&[bob_keys.user_id, carol_id], 1000);
    assert_eq!(status, 200, "{error:?}");
    let (status, error) = junk.share(carol_id, None, &[carol_id]);
    assert_eq!(status, 200, "{error:?}");
    // Carol was removed: a rotation may no longer message her.
    let (status, error) = junk.rotate(&[carol_id], 1000);
    let error = error.unwrap_or_else(|| panic!("accepted with status {status}"));
    assert_eq!(error.code, ErrorCode::NotAllowed, "{}", error.message);
    // Honest flows still deliver their keys: share, unshare with rotation, revocation.
    let a = &org.alice;
    a.ok(&["workspace", "create", "Team"]);
    a.share("Team", "bob@example.com", "contributor");
    a.share("Team", "carol@example.com", "reader");
    a.ok(&["workspace", "unshare", "Team", "carol@example.com"]);
    let note = org.path().join("note");
    std::fs::write(&note, b"after the rotation").unwrap();
    a.ok(&["put", note.to_str().unwrap(), "Team:/note"]);
    assert_eq!(read(&bob, "Team:/note"), b"after the rotation");
    a.share("Team", "carol@example.com", "reader");
    a.ok(&["user", "revoke", "bob@example.com"]);
    std::fs::write(&note, b"after the revocation").unwrap();
    a.ok(&["put", note.to_str().unwrap(), "Team:/note2"]);
    assert_eq!(read(&carol, "Team:/note2"), b"after the revocation");
}

#[test]
fn a_member_cannot_take_every_pending_invitation_and_admins_see_and_cancel_theirs() {
    let (org, bob) = alice_and_bob();
    let mut urls = Vec::new();
    for _ in 0..5 {
        urls.push(bob.last_line(&["invite", "device"]));
    }
    let err = bob.fails(&["invite", "device"]);
    assert!(err.contains("5 pending device invitations"), "{err}");
    // Alice can still invite users.
    let dave = org.member("dave");
    join_user(&org.alice, &dave, "dave@example.com", "Dave", &[]);
    // Alice lists Bob's device invitations, with who created them, and cancels them.
    let listing = org.alice.ok(&["invite", "list"]);
    let bobs: Vec<&str> = listing
        .lines()
        .filter(|l| l.contains("bob@example.com") && l.contains("device"))
        .collect();
    assert_eq!(bobs.len(), 5, "{listing}");
    assert!(bobs.iter().all(|l| l.contains("Bob")), "{listing}");
    for line in bobs {
        let id = line.split_whitespace().last().unwrap();
        org.alice.ok(&["invite", "cancel", id]);
    }
    assert!(
        !org.alice
            .ok(&["invite", "list"])
            .contains("bob@example.com")
    );
    let phone = org.member("bob-phone");
    let err = phone.fails(&["claim", &urls[0], "--label", "phone"]);
    assert!(err.contains("cancelled"), "{err}");
    // Bob may invite a device again; Dave (STANDARD) still cannot see or cancel it.
    let url = bob.last_line(&["invite", "device"]);
    assert!(
        !dave.ok(&["invite", "list"]).contains("bob@example.com"),
        "a STANDARD member sees another's invitations"
    );
    let err = dave.fails(&["invite", "cancel", &url]);
    assert!(err.contains("only the user who invited"), "{err}");
}
