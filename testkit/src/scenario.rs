//! Common setups: a server with an organization bootstrapped by Alice, and people joining it.

use std::path::Path;

use crate::exchange::{Pick, greet_and_claim};
use crate::member::Member;
use crate::proxy::TamperingProxy;
use crate::server::{Server, ServerOptions};

/// A server, a folder for homes, and Alice, the organization's first ADMIN.
pub struct Org {
    /// The server.
    pub server: Server,
    /// Holds every home of the test.
    pub dir: tempfile::TempDir,
    /// Alice's device.
    pub alice: Member,
    /// The bootstrap link (already used).
    pub bootstrap_url: String,
}

impl Org {
    /// Starts a server, creates the organization `acme` and bootstraps it as Alice.
    pub fn new() -> Self {
        Self::with_server(Server::start())
    }

    /// As [`Org::new`], with server options.
    pub fn with_options(options: ServerOptions) -> Self {
        Self::with_server(Server::start_with(options))
    }

    /// As [`Org::new`], over a started server.
    pub fn with_server(server: Server) -> Self {
        Self::with_server_in(server, tempfile::tempdir().expect("temporary directory"))
    }

    /// As [`Org::with_server`], with the homes in `dir`.
    pub fn with_server_in(server: Server, dir: tempfile::TempDir) -> Self {
        let alice = Member::new(dir.path(), "alice");
        let bootstrap_url = server.create_org("acme");
        alice.bootstrap(&bootstrap_url, "alice@example.com", "Alice");
        Self {
            server,
            dir,
            alice,
            bootstrap_url,
        }
    }

    /// As [`Org::new`], with the server reached only through a [`TamperingProxy`].
    pub fn behind_proxy() -> (Self, TamperingProxy) {
        let (proxy, server) = TamperingProxy::in_front_of_a_new_server();
        (Self::with_server(server), proxy)
    }

    /// A member whose home is in this test's folder.
    pub fn member(&self, name: &str) -> Member {
        Member::new(self.dir.path(), name)
    }

    /// The folder holding every home.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for Org {
    fn default() -> Self {
        Self::new()
    }
}

/// `by` invites `email` (with extra `invite user` flags) and greets `who`, who claims; both
/// must succeed.
pub fn join_user(by: &Member, who: &Member, email: &str, name: &str, flags: &[&str]) {
    let mut args = vec!["invite", "user", email];
    args.extend_from_slice(flags);
    let url = by.last_line(&args);
    let (g, c) = greet_and_claim(
        by,
        who,
        &url,
        &["--name", name, "--label", "desktop"],
        Pick::Heard,
        Pick::Heard,
    );
    assert!(
        g.success && c.success,
        "joining {email} failed:\ngreeter: {}{}\nclaimer: {}{}",
        g.stdout,
        g.stderr,
        c.stdout,
        c.stderr
    );
}

/// `owner` invites a new device of theirs, claimed into `device`.
pub fn join_device(owner: &Member, device: &Member, label: &str) {
    let url = owner.last_line(&["invite", "device"]);
    let (g, c) = greet_and_claim(
        owner,
        device,
        &url,
        &["--label", label],
        Pick::Heard,
        Pick::Heard,
    );
    assert!(
        g.success && c.success,
        "adding a device failed:\ngreeter: {}{}\nclaimer: {}{}",
        g.stdout,
        g.stderr,
        c.stdout,
        c.stderr
    );
}
