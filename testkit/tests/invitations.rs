//! Bootstrap, invitations by email with the SAS exchange, devices, wrong picks and a relay that
//! swaps keys: the real server binary and the real `strongroom` binary, one home per device.

use std::sync::Arc;

use strongroom_engine::Client;
use strongroom_engine::device_file::KdfPolicy;
use strongroom_engine::home::Home;
use strongroom_engine::password::Password;
use strongroom_protocol::certificates::{Signer, UserProfile};
use strongroom_protocol::crypto::sealed_box::PrivateKey;
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::invite::InviteStep;
use strongroom_protocol::wire::StepsResponse;
use strongroom_testkit::member::PASSWORD;
use strongroom_testkit::scenario::{Org, join_device, join_user};
use strongroom_testkit::{Pick, ServerOptions, SmtpSink, greet_and_claim};

fn open(member: &strongroom_testkit::Member) -> Client {
    Client::open(
        &Home::new(&member.home),
        &Password::new(PASSWORD),
        KdfPolicy::AllowWeak,
    )
    .expect("opening the device")
}

fn all_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(all_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn bootstrap_email_invitation_and_sas_exchange() {
    let smtp = SmtpSink::start();
    let org = Org::with_options(ServerOptions {
        smtp: Some(smtp.url()),
        ..Default::default()
    });
    let alice = &org.alice;

    // The server holds the root public key that Alice pinned, and none of Alice's secrets.
    let alice_keys = open(alice).keys().clone();
    let db = rusqlite::Connection::open(org.server.data_dir().join("metadata.sqlite")).unwrap();
    let stored_root: Vec<u8> = db
        .query_row(
            "SELECT root_verify_key FROM organizations WHERE name = 'acme'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored_root, alice_keys.root_verify_key.to_bytes());
    for file in all_files(org.server.data_dir()) {
        let bytes = std::fs::read(&file).unwrap();
        for secret in [
            &alice_keys.signing_key.0,
            &alice_keys.user_private_key.0,
            &alice_keys.local_key.0,
        ] {
            assert!(
                !bytes.windows(32).any(|w| w == secret),
                "a secret of Alice is in {}",
                file.display()
            );
        }
    }

    // The bootstrap link works once.
    let mallory = org.member("mallory");
    let err = mallory.fails(&[
        "bootstrap",
        &org.bootstrap_url,
        "--email",
        "m@example.com",
        "--name",
        "M",
    ]);
    assert!(err.contains("already bootstrapped"), "{err}");
    assert!(!mallory.home.join("device.strongroom").exists());

    // The invitation arrives by a real SMTP exchange and carries the link the CLI printed.
    let url = alice.last_line(&["invite", "user", "bob@example.com"]);
    let mails = smtp.wait_for(1);
    assert_eq!(mails[0].to, ["bob@example.com"]);
    assert!(
        mails[0].data.contains("To: bob@example.com"),
        "{}",
        mails[0].data
    );
    let body = mails[0].data.replace("=\r\n", "").replace("=\n", "");
    assert!(
        body.contains(&url),
        "the email does not carry the link:\n{body}"
    );

    // Greeter and claimer run as two processes; each prints its code; the right picks succeed.
    let bob = org.member("bob");
    let (g, c) = greet_and_claim(
        alice,
        &bob,
        &url,
        &["--name", "Bob", "--label", "desktop"],
        Pick::Heard,
        Pick::Heard,
    );
    assert!(g.success, "greet failed: {}{}", g.stdout, g.stderr);
    assert!(c.success, "claim failed: {}{}", c.stdout, c.stderr);
    for side in [&g, &c] {
        let code = side.code.as_ref().expect("a code was printed");
        assert_eq!(code.len(), 4);
        assert_eq!(side.choices.len(), 4);
    }
    assert!(c.choices.contains(g.code.as_ref().unwrap()));
    assert!(g.choices.contains(c.code.as_ref().unwrap()));

    // Bob exists, certified by Alice's device, and every client validates his chain to the root.
    for member in [alice, &bob] {
        let users = member.user_list();
        assert_eq!(
            users,
            [
                ("alice@example.com".into(), "ADMIN".into(), "active".into()),
                ("bob@example.com".into(), "STANDARD".into(), "active".into())
            ]
        );
    }
    let bob_client = open(&bob);
    let bob_keys = bob_client.keys().clone();
    assert_eq!(bob_keys.root_verify_key, alice_keys.root_verify_key);
    let chain = bob_client.chain();
    let bob_user = chain.user(&bob_keys.user_id).unwrap();
    assert_eq!(
        bob_user.certificate.author,
        Signer::Device(alice_keys.device_id)
    );
    assert_eq!(bob_user.certificate.profile, UserProfile::Standard);
    let bob_device = chain.device(&bob_keys.device_id).unwrap();
    assert_eq!(bob_device.author, Signer::Device(alice_keys.device_id));
    assert_eq!(bob_device.verify_key, bob_keys.signing_key().verify_key());

    // The spent link cannot be claimed again.
    let eve = org.member("eve");
    let err = eve.fails(&["claim", &url]);
    assert!(err.contains("already used"), "{err}");
}

fn count_users(member: &strongroom_testkit::Member) -> usize {
    member.user_list().len()
}

#[test]
fn wrong_pick_aborts_both_sides_and_a_new_attempt_succeeds() {
    let org = Org::new();
    let alice = &org.alice;
    let bob = org.member("bob");
    let url = alice.last_line(&["invite", "user", "bob@example.com"]);

    // The claimer picks a wrong code.
    let (g, c) = greet_and_claim(
        alice,
        &bob,
        &url,
        &["--name", "Bob"],
        Pick::Heard,
        Pick::Wrong,
    );
    assert!(!g.success && !c.success, "both sides must fail");
    assert!(c.stderr.contains("wrong code"), "claimer: {}", c.stderr);
    assert!(
        g.stderr.contains("picked a wrong code"),
        "greeter: {}",
        g.stderr
    );
    assert!(
        g.stderr.contains("nothing was created"),
        "greeter: {}",
        g.stderr
    );
    assert!(!bob.home.join("device.strongroom").exists());
    assert_eq!(count_users(alice), 1);

    // The greeter picks a wrong code.
    let (g, c) = greet_and_claim(
        alice,
        &bob,
        &url,
        &["--name", "Bob"],
        Pick::Wrong,
        Pick::Heard,
    );
    assert!(!g.success && !c.success, "both sides must fail");
    assert!(g.stderr.contains("wrong code"), "greeter: {}", g.stderr);
    assert!(
        c.stderr.contains("picked a wrong code"),
        "claimer: {}",
        c.stderr
    );
    assert!(!bob.home.join("device.strongroom").exists());
    assert_eq!(count_users(alice), 1);

    // A new attempt with the same link succeeds.
    let (g, c) = greet_and_claim(
        alice,
        &bob,
        &url,
        &["--name", "Bob"],
        Pick::Heard,
        Pick::Heard,
    );
    assert!(g.success && c.success, "{}{}", g.stderr, c.stderr);
    assert_eq!(count_users(alice), 2);
    assert_eq!(count_users(&bob), 2);
}

#[test]
fn a_relay_that_swaps_the_keys_makes_the_codes_disagree() {
    // Every client talks to the server through a proxy that acts as a man in the middle: it
    // replaces each side's ephemeral key, as the other side receives it, with its own.
    let (org, proxy) = Org::behind_proxy();
    let alice = &org.alice;
    let bob = org.member("bob");
    let url = alice.last_line(&["invite", "user", "bob@example.com"]);
    assert!(url.starts_with(&proxy.url()));

    let mitm = PrivateKey::generate(&mut rand_core::OsRng).public_key();
    proxy.set_tamper(Some(Arc::new(
        move |method: &str, path: &str, body: Vec<u8>| {
            if method != "GET" || !path.ends_with("/steps") {
                return body;
            }
            let mut steps = StepsResponse::decode(&body).expect("steps");
            for raw in steps.greeter.iter_mut().chain(steps.claimer.iter_mut()) {
                let swapped = match InviteStep::decode(raw).expect("step") {
                    InviteStep::GreeterPublicKey(_) => InviteStep::GreeterPublicKey(mitm),
                    InviteStep::ClaimerPublicKey(_) => InviteStep::ClaimerPublicKey(mitm),
                    other => other,
                };
                *raw = serde_bytes::ByteBuf::from(swapped.encode());
            }
            steps.encode()
        },
    )));

    // Both people read their codes honestly and type what they heard: the codes disagree.
    let (g, c) = greet_and_claim(
        alice,
        &bob,
        &url,
        &["--name", "Bob"],
        Pick::Heard,
        Pick::Heard,
    );
    let (gc, cc) = (g.code.clone().unwrap(), c.code.clone().unwrap());
    assert!(
        !c.choices.contains(&gc) || !g.choices.contains(&cc),
        "the swapped keys should have made the codes disagree"
    );
    assert!(
        !g.success && !c.success,
        "the exchange must fail:\n{}\n{}",
        g.stderr,
        c.stderr
    );
    assert!(
        g.stderr.contains("wrong code") || c.stderr.contains("wrong code"),
        "{}\n{}",
        g.stderr,
        c.stderr
    );
    assert!(!bob.home.join("device.strongroom").exists());
    proxy.set_tamper(None);
    assert_eq!(count_users(alice), 1);
}

#[test]
fn second_device_acts_as_the_same_user() {
    let org = Org::new();
    let bob = org.member("bob");
    join_user(&org.alice, &bob, "bob@example.com", "Bob", &[]);
    let bob_phone = org.member("bob-phone");
    join_device(&bob, &bob_phone, "phone");

    for device in [&bob, &bob_phone] {
        let listed = device.ok(&["device", "list"]);
        let rows: Vec<&str> = listed.lines().skip(1).collect();
        assert_eq!(rows.len(), 2, "{listed}");
        assert!(
            listed.contains("desktop") && listed.contains("phone"),
            "{listed}"
        );
        assert_eq!(listed.matches("this device").count(), 1);
    }
    let first = open(&bob).keys().clone();
    let second = open(&bob_phone).keys().clone();
    assert_eq!(first.user_id, second.user_id);
    assert_ne!(first.device_id, second.device_id);
    assert_eq!(first.user_private_key, second.user_private_key);
    assert_eq!(first.email, second.email);
    // Both act as Bob: both can list users, both are listed for Bob.
    assert_eq!(bob_phone.user_list(), bob.user_list());
}

#[test]
fn standard_users_cannot_invite_users_or_revoke() {
    let org = Org::new();
    let bob = org.member("bob");
    join_user(&org.alice, &bob, "bob@example.com", "Bob", &[]);
    let err = bob.fails(&["invite", "user", "carol@example.com"]);
    assert!(err.contains("only an ADMIN can invite users"), "{err}");
    let err = bob.fails(&["user", "revoke", "alice@example.com"]);
    assert!(err.contains("only an ADMIN can revoke users"), "{err}");
    // A user invited with --admin can.
    let carol = org.member("carol");
    join_user(
        &org.alice,
        &carol,
        "carol@example.com",
        "Carol",
        &["--admin"],
    );
    carol.ok(&["invite", "user", "dave@example.com"]);
}

#[test]
fn revocation_refuses_devices_and_frees_the_email() {
    let org = Org::new();
    let alice = &org.alice;
    let bob = org.member("bob");
    join_user(alice, &bob, "bob@example.com", "Bob", &[]);
    let bob_phone = org.member("bob-phone");
    join_device(&bob, &bob_phone, "phone");
    let old_bob = open(&bob).keys().user_id;

    // While Bob is active his email cannot be invited again.
    let err = alice.fails(&["invite", "user", "bob@example.com"]);
    assert!(
        err.contains("already belongs to a user who is not revoked"),
        "{err}"
    );

    alice.ok(&["user", "revoke", "bob@example.com"]);
    for device in [&bob, &bob_phone] {
        let err = device.fails(&["user", "list"]);
        assert!(err.contains("bob@example.com was revoked"), "{err}");
        let err = device.fails(&["invite", "device"]);
        assert!(err.contains("was revoked"), "{err}");
    }

    // Inviting bob@example.com again creates a new user.
    let new_bob = org.member("bob-again");
    join_user(alice, &new_bob, "bob@example.com", "Bob", &[]);
    assert_ne!(open(&new_bob).keys().user_id, old_bob);
    let users = alice.user_list();
    let bobs: Vec<_> = users.iter().filter(|u| u.0 == "bob@example.com").collect();
    assert_eq!(bobs.len(), 2);
    assert_eq!(bobs.iter().filter(|u| u.2 == "active").count(), 1);

    // The store never holds two non-revoked users with one email.
    let db = rusqlite::Connection::open(org.server.data_dir().join("metadata.sqlite")).unwrap();
    let active: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM users WHERE email = 'bob@example.com' AND revoked_on IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(active, 1);
}

#[test]
fn cancelled_invitations_cannot_be_claimed() {
    let org = Org::new();
    let url = org.alice.last_line(&["invite", "user", "bob@example.com"]);
    assert!(
        org.alice
            .ok(&["invite", "list"])
            .contains("bob@example.com")
    );
    org.alice.ok(&["invite", "cancel", &url]);
    assert!(
        !org.alice
            .ok(&["invite", "list"])
            .contains("bob@example.com")
    );
    let bob = org.member("bob");
    let err = bob.fails(&["claim", &url]);
    assert!(err.contains("cancelled"), "{err}");
    let err = org.alice.fails(&["greet", &url]);
    assert!(err.contains("cancelled"), "{err}");
}

#[test]
fn wrong_password_and_no_secret_in_clear() {
    let org = Org::new();
    let bob = org.member("bob");
    join_user(&org.alice, &bob, "bob@example.com", "Bob", &[]);
    let out = org
        .alice
        .command(&["user", "list"])
        .env("STRONGROOM_PASSWORD", "not the password")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wrong password for the device file"), "{err}");

    // Search every file the clients wrote for their key bytes.
    for member in [&org.alice, &bob] {
        let keys = open(member).keys().clone();
        let secrets = [
            keys.signing_key.0,
            keys.user_private_key.0,
            keys.local_key.0,
        ];
        let files = all_files(&member.home);
        assert!(files.len() >= 2, "{files:?}");
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            for secret in &secrets {
                assert!(
                    !bytes.windows(32).any(|w| w == secret),
                    "a key is in clear in {}",
                    file.display()
                );
            }
            assert!(
                !bytes
                    .windows(PASSWORD.len())
                    .any(|w| w == PASSWORD.as_bytes())
            );
        }
    }
}

#[test]
fn interrupting_one_side_stops_the_other() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let org = Org::new();
    let bob = org.member("bob");
    let url = org.alice.last_line(&["invite", "user", "bob@example.com"]);
    let spawn = |member: &strongroom_testkit::Member, args: &[&str]| {
        member
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut greeter = spawn(&org.alice, &["greet", &url]);
    let mut claimer = spawn(&bob, &["claim", &url, "--name", "Bob"]);
    // Wait until the claimer shows its code, then press Ctrl-C on its side.
    let mut lines = BufReader::new(claimer.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.unwrap().starts_with("Enter the code")));
    let status = std::process::Command::new("kill")
        .args(["-INT", &claimer.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Standard input stays open: the claimer stops because of Ctrl-C, not for lack of input.
    let _stdin = claimer.stdin.take();
    let claimer = claimer.wait_with_output().unwrap();
    assert!(!claimer.status.success());
    let err = String::from_utf8_lossy(&claimer.stderr);
    assert!(err.contains("interrupted"), "{err}");
    let greeter_out = greeter_wait(&mut greeter);
    assert!(
        greeter_out.contains("the other person stopped the exchange"),
        "{greeter_out}"
    );
    assert!(!bob.home.join("device.strongroom").exists());
}

fn greeter_wait(child: &mut std::process::Child) -> String {
    use std::io::Read;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the greeter kept waiting"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!child.wait().unwrap().success());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    err
}
