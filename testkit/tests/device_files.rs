//! Device files and the strength of their password key. A file made with
//! `--insecure-fast-kdf` (256 KiB, one pass: tests and demos) lets whoever copies it try
//! passwords fast, so it opens only when that setting is asked for again, and then every command
//! says so; a file of the default strength opens as always, without a word.

use strongroom_testkit::member::PASSWORD;
use strongroom_testkit::{Member, Output, Server};

/// The one line a command prints about a weak device file.
const WARNING: &str = "weak password key";

/// Runs `args` without the weak setting (neither the variable nor the option).
fn strict(member: &Member, args: &[&str]) -> Output {
    let output = member
        .command(args)
        .env_remove("STRONGROOM_INSECURE_FAST_KDF")
        .output()
        .expect("running strongroom");
    Output {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn warnings(out: &Output) -> usize {
    out.stderr.lines().filter(|l| l.contains(WARNING)).count()
}

#[test]
fn a_weak_device_file_is_refused_unless_asked_for_and_then_named_on_every_use() {
    let server = Server::start();
    let url = server.create_org("acme");
    let dir = tempfile::tempdir().unwrap();
    let alice = Member::new(dir.path(), "alice");
    // The test harness asks for the weak setting (STRONGROOM_INSECURE_FAST_KDF=1).
    let made = alice.run(&[
        "bootstrap",
        &url,
        "--email",
        "alice@example.com",
        "--name",
        "Alice",
    ]);
    assert!(made.success, "{made:?}");

    // Without it, every command is refused, with why and how.
    for args in [&["user", "list"][..], &["status"], &["workspace", "list"]] {
        let refused = strict(&alice, args);
        assert!(!refused.success, "{args:?} opened a weak file: {refused:?}");
        assert!(
            refused.stderr.contains(WARNING)
                && refused.stderr.contains("--insecure-fast-kdf")
                && refused.stderr.contains("STRONGROOM_INSECURE_FAST_KDF"),
            "{args:?}: {}",
            refused.stderr
        );
        assert!(refused.stdout.is_empty(), "{args:?}: {}", refused.stdout);
    }
    // Refused before the password is asked for: with no password at all, the refusal is the
    // same.
    let mut command = alice.command(&["status"]);
    command
        .env_remove("STRONGROOM_INSECURE_FAST_KDF")
        .env_remove("STRONGROOM_PASSWORD");
    let out = command.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(WARNING), "{err}");

    // With the variable, or the option, it works, and each command says so once.
    for args in [&["user", "list"][..], &["status"], &["workspace", "list"]] {
        let out = alice.run(args);
        assert!(out.success, "{args:?}: {out:?}");
        assert_eq!(warnings(&out), 1, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("tests and demos"), "{}", out.stderr);
    }
    let out = strict(&alice, &["--insecure-fast-kdf", "status"]);
    assert!(out.success, "{out:?}");
    assert_eq!(warnings(&out), 1, "{}", out.stderr);
    // Making such a file says so too.
    assert_eq!(warnings(&made), 1, "bootstrap: {made:?}");
    // A wrong password is still a wrong password.
    let out = alice
        .command(&["user", "list"])
        .env("STRONGROOM_PASSWORD", "not the password")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("wrong password"),
        "{err}"
    );
}

#[test]
fn a_default_strength_device_file_opens_without_a_word() {
    let server = Server::start();
    let url = server.create_org("acme");
    let dir = tempfile::tempdir().unwrap();
    let alice = Member::new(dir.path(), "alice");
    let made = strict(
        &alice,
        &[
            "bootstrap",
            &url,
            "--email",
            "alice@example.com",
            "--name",
            "Alice",
        ],
    );
    assert!(made.success, "{made:?}");
    assert_eq!(made.stderr, "", "bootstrap");
    let out = strict(&alice, &["status"]);
    assert!(
        out.success && out.stdout.contains("alice@example.com"),
        "{out:?}"
    );
    assert_eq!(out.stderr, "", "status");
    // The weak setting allows weak files; it does not make this one weak.
    let out = alice.run(&["status"]);
    assert!(out.success, "{out:?}");
    assert_eq!(out.stderr, "", "status with the weak setting");
    // And the password still matters.
    let wrong = alice
        .command(&["status"])
        .env_remove("STRONGROOM_INSECURE_FAST_KDF")
        .env("STRONGROOM_PASSWORD", format!("{PASSWORD}!"))
        .output()
        .unwrap();
    assert!(!wrong.status.success());
}
