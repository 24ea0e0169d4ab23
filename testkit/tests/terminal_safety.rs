//! No text another member or the server chooses reaches the terminal raw: file, folder and
//! workspace names, link targets, conflict copies, people's names, the server's sentences and
//! links. A hostile member names things with terminal escape sequences, carriage returns,
//! newlines, C1 controls and bidirectional overrides; every command of another member then
//! writes none of them to standard output or standard error, and shows each name escaped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::wire::{CreateInvitationResponse, ErrorCode, ErrorResponse};
use strongroom_testkit::scenario::{Org, join_user};
use strongroom_testkit::{Member, Output, Pick, greet_and_claim, micros_now};

/// Sets the terminal's title.
const TITLE: &str = "title\x1b]0;pwned\x07";
/// Clears the screen.
const CLEAR: &str = "clear\x1b[2J";
/// Returns to the start of the line and writes over what came before.
const CARRIAGE: &str = "cr\rfake";
/// Makes one entry look like two lines.
const NEWLINE: &str = "new\nline";
/// The one-byte C1 form of ESC [ (CSI).
const C1: &str = "csi\u{9b}31m";
/// Reads as "bidiexe.txt": the right-to-left override reverses what follows.
const BIDI: &str = "bidi\u{202e}txt.exe";
/// A tab and DEL.
const TAB_DEL: &str = "tab\tdel\x7f";
/// A folder whose name turns the rest of the screen red.
const FOLDER: &str = "dir\x1b[31mred";
/// A symbolic link, and its target.
const LINK: &str = "link\x1b[1m";
const LINK_TARGET: &str = "\x1b]0;pwned\x07../\u{202e}target";
/// The workspace the hostile member shares.
const WORKSPACE: &str = "Evil\x1b]0;pwned\x07\u{202e}";
/// The hostile member's name (names refuse controls, not bidirectional overrides).
const PERSON: &str = "Mal\u{202e}lory";
/// What a hostile server says.
const SENTENCE: &str = "\x1b]0;pwned\x07the server \u{9b}2J says\r\n\u{202e}no";

const FILES: [&str; 7] = [TITLE, CLEAR, CARRIAGE, NEWLINE, C1, BIDI, TAB_DEL];

/// A character that untrusted text must never carry to the terminal as itself: controls (C0,
/// DEL, C1, the newline and tab included), bidirectional controls, line and paragraph
/// separators.
fn must_be_escaped(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{061c}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// How the command line shows `text`: each such character as `\u{hex}`, except the newline,
/// carriage return and tab as `\n`, `\r`, `\t`.
fn shown(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' => "\\n".to_owned(),
            '\r' => "\\r".to_owned(),
            '\t' => "\\t".to_owned(),
            c if must_be_escaped(c) => format!("\\u{{{:x}}}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

/// What the terminal was sent, and what went wrong; reported all at once at the end, so that
/// one run shows every leak.
#[derive(Default)]
struct Screen {
    problems: Vec<String>,
}

impl Screen {
    /// Records raw characters in `text` (the newlines the program writes between lines are
    /// layout, and allowed).
    fn check(&mut self, what: &str, text: &str) {
        let leaked: Vec<char> = text
            .chars()
            .filter(|&c| c != '\n' && must_be_escaped(c))
            .collect();
        if !leaked.is_empty() {
            self.problems
                .push(format!("{what}: raw {leaked:?} in {text:?}"));
        }
    }

    /// Records that `text` does not show `name` escaped.
    fn expect_shown(&mut self, what: &str, text: &str, name: &str) {
        if !text.contains(&shown(name)) {
            self.problems
                .push(format!("{what}: {:?} not shown in {text:?}", shown(name)));
        }
    }

    /// Runs a command of `member` and checks both of its outputs.
    fn run(&mut self, member: &Member, args: &[&str]) -> Output {
        let out = member.run(args);
        let what = format!("{args:?}");
        self.check(&format!("{what} stdout"), &out.stdout);
        self.check(&format!("{what} stderr"), &out.stderr);
        out
    }

    /// As [`Screen::run`], for a command that must succeed.
    fn ok(&mut self, member: &Member, args: &[&str]) -> Output {
        let out = self.run(member, args);
        assert!(
            out.success,
            "{args:?} failed:\n{}{}",
            out.stdout, out.stderr
        );
        out
    }

    /// As [`Screen::run`], for a command that must fail.
    fn fails(&mut self, member: &Member, args: &[&str]) -> Output {
        let out = self.run(member, args);
        assert!(!out.success, "{args:?} should have failed:\n{}", out.stdout);
        out
    }

    fn assert_clean(&self) {
        assert!(
            self.problems.is_empty(),
            "untrusted text reached the terminal raw:\n{}",
            self.problems.join("\n")
        );
    }
}

/// A process whose output lines arrive on channels, both recorded.
struct Running {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    seen_stdout: String,
}

impl Running {
    fn start(member: &Member, args: &[&str]) -> Self {
        let mut child = member
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running strongroom");
        let lines = |stream: Box<dyn std::io::Read + Send>| {
            let (send, receive) = channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = send.send(line);
                }
            });
            receive
        };
        let stdout = lines(Box::new(child.stdout.take().expect("piped")));
        let stderr = lines(Box::new(child.stderr.take().expect("piped")));
        Self {
            child,
            stdout,
            stderr,
            seen_stdout: String::new(),
        }
    }

    /// Waits (up to 60 s) for a line of standard output that contains `text`.
    fn wait_for(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.seen_stdout.contains(text) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => {
                    self.seen_stdout.push_str(&line);
                    self.seen_stdout.push('\n');
                }
                Err(_) => panic!("no {text:?} in {:?}", self.seen_stdout),
            }
        }
    }

    /// Stops it with `signal` and returns everything it wrote.
    fn stop(mut self, signal: &str) -> (String, String) {
        let _ = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let rest = |lines: &Receiver<String>| {
            let mut text = String::new();
            while let Ok(line) = lines.recv_timeout(Duration::from_secs(5)) {
                text.push_str(&line);
                text.push('\n');
            }
            text
        };
        let stdout = self.seen_stdout.clone() + &rest(&self.stdout);
        (stdout, rest(&self.stderr))
    }
}

/// Alice's organization, with Mallory, an ADMIN who names things to attack other members'
/// terminals.
struct World {
    org: Org,
    mallory: Member,
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

impl World {
    fn new(org: Org) -> Self {
        let mallory = org.member("mallory");
        join_user(
            &org.alice,
            &mallory,
            "mallory@example.com",
            PERSON,
            &["--admin"],
        );
        Self { org, mallory }
    }

    /// Mallory shares the workspace [`WORKSPACE`] with Alice, holding one note.
    fn share_hostile_workspace(&self) {
        let note = write(self.org.path(), "note.txt", "a note\n");
        self.mallory.ok(&["workspace", "create", WORKSPACE]);
        self.mallory.ok(&["put", &note, &format!("{WORKSPACE}:/")]);
        self.mallory.share(WORKSPACE, "alice@example.com", "reader");
    }

    /// Alice's workspace `Shared`, where Mallory (a contributor) stores the folder `tree`:
    /// files named [`FILES`], the folder [`FOLDER`] with a file inside, the link [`LINK`].
    fn store_hostile_tree(&self) {
        self.org.alice.ok(&["workspace", "create", "Shared"]);
        self.org
            .alice
            .share("Shared", "mallory@example.com", "contributor");
        let tree = self.org.path().join("tree");
        std::fs::create_dir_all(tree.join(FOLDER)).unwrap();
        for name in FILES {
            std::fs::write(tree.join(name), format!("{name}\n")).unwrap();
        }
        std::fs::write(tree.join(FOLDER).join("inside.txt"), "inside\n").unwrap();
        std::os::unix::fs::symlink(LINK_TARGET, tree.join(LINK)).unwrap();
        self.mallory
            .ok(&["put", tree.to_str().unwrap(), "Shared:/"]);
    }
}

#[test]
fn hostile_names_are_escaped_in_every_listing_prompt_and_error() {
    let mut world = World::new(Org::new());
    world.store_hostile_tree();
    world.share_hostile_workspace();
    let (alice, mallory) = (&world.org.alice.clone(), &world.mallory.clone());
    let mut screen = Screen::default();
    let dir = |name: &str| format!("Shared:/tree/{FOLDER}/{name}");

    // Bob claims an invitation Mallory greets: the claimer is told who invites them.
    let bob = world.org.member("bob");
    let url = mallory.last_line(&["invite", "user", "bob@example.com"]);
    let (greeter, claimer) = greet_and_claim(
        mallory,
        &bob,
        &url,
        &["--name", "Bob", "--label", "desktop"],
        Pick::Heard,
        Pick::Heard,
    );
    assert!(greeter.success && claimer.success, "{claimer:?}");
    for (what, text) in [
        ("greet stdout", &greeter.stdout),
        ("greet stderr", &greeter.stderr),
        ("claim stdout", &claimer.stdout),
        ("claim stderr", &claimer.stderr),
    ] {
        screen.check(what, text);
    }
    screen.expect_shown("claim stderr", &claimer.stderr, PERSON);
    // A pending invitation of Mallory's, which Alice may greet too.
    mallory.ok(&["invite", "user", "victim@example.com"]);

    // Listings.
    let listed = screen.ok(alice, &["ls", "Shared:/tree"]).stdout;
    for name in FILES.iter().chain([&FOLDER, &LINK]) {
        screen.expect_shown("ls", &listed, name);
    }
    screen.expect_shown("ls (link target)", &listed, LINK_TARGET);
    // One line per entry and the header: a newline in a name makes no extra line.
    if listed.lines().count() != FILES.len() + 3 {
        screen
            .problems
            .push(format!("ls: not one line per entry: {listed:?}"));
    }
    let inside = screen.ok(alice, &["ls", &format!("Shared:/tree/{FOLDER}")]);
    screen.expect_shown("ls of the folder", &inside.stdout, "inside.txt");
    let at = micros_now().to_string();
    let past = screen
        .ok(alice, &["ls", "--at", &at, "Shared:/tree"])
        .stdout;
    screen.expect_shown("ls --at", &past, CLEAR);
    screen.ok(alice, &["ls", WORKSPACE]);
    let workspaces = screen.ok(alice, &["workspace", "list"]).stdout;
    screen.expect_shown("workspace list", &workspaces, WORKSPACE);
    let users = screen.ok(alice, &["user", "list"]).stdout;
    screen.expect_shown("user list", &users, PERSON);
    let invitations = screen.ok(alice, &["invite", "list"]).stdout;
    screen.expect_shown("invite list", &invitations, PERSON);
    screen.ok(alice, &["device", "list"]);
    screen.ok(alice, &["status"]);
    screen.ok(alice, &["history", &format!("Shared:/tree/{TITLE}")]);

    // Errors that name what they are about.
    let out = world.org.path().join("out");
    let missing = screen.fails(alice, &["get", &dir("missing"), out.to_str().unwrap()]);
    screen.expect_shown("get of a missing file", &missing.stderr, FOLDER);
    let missing = screen.fails(alice, &["get", &format!("{WORKSPACE}:/missing"), "-"]);
    screen.expect_shown("get in the workspace", &missing.stderr, WORKSPACE);
    let missing = screen.fails(alice, &["rm", &format!("Shared:/tree/{CLEAR}x")]);
    screen.expect_shown("rm of a missing name", &missing.stderr, CLEAR);
    let missing = screen.fails(alice, &["history", &format!("Shared:/tree/{BIDI}x")]);
    screen.expect_shown("history of a missing name", &missing.stderr, BIDI);
    screen.fails(alice, &["mkdir", &format!("{WORKSPACE}:/mine")]);

    // Messages that name what a command did.
    let note = write(world.org.path(), "alice.txt", "Alice's\n");
    let stored = screen.ok(alice, &["put", &note, &dir("")]);
    screen.expect_shown("put", &stored.stdout, FOLDER);
    let created = screen.ok(alice, &["mkdir", &dir("sub")]);
    screen.expect_shown("mkdir", &created.stdout, FOLDER);
    let moved = screen.ok(alice, &["mv", &dir("sub"), &dir(BIDI)]);
    screen.expect_shown("mv", &moved.stdout, BIDI);
    let pinned = screen.ok(alice, &["pin", &format!("Shared:/tree/{C1}")]);
    screen.expect_shown("pin", &pinned.stdout, C1);
    screen.ok(alice, &["get", &format!("Shared:/tree/{NEWLINE}"), "-"]);

    // `sync` names each workspace that changed.
    let later = write(world.org.path(), "later.txt", "later\n");
    mallory.ok(&["put", &later, &format!("{WORKSPACE}:/")]);
    let synced = screen.ok(alice, &["sync"]).stdout;
    screen.expect_shown("sync", &synced, WORKSPACE);

    // So does `sync --watch`, as changes arrive.
    let mut watch = Running::start(alice, &["sync", "--watch"]);
    std::thread::sleep(Duration::from_secs(2));
    let latest = write(world.org.path(), "latest.txt", "latest\n");
    mallory.ok(&["put", &latest, &format!("{WORKSPACE}:/")]);
    watch.wait_for("downloaded");
    let (stdout, stderr) = watch.stop("TERM");
    screen.check("sync --watch stdout", &stdout);
    screen.check("sync --watch stderr", &stderr);
    screen.expect_shown("sync --watch", &stdout, WORKSPACE);

    // A conflict copy is named after the hostile name.
    let file = format!("Shared:/tree/{CLEAR}");
    screen.ok(alice, &["get", &file, out.to_str().unwrap()]);
    world.org.server.stop();
    let offline = write(world.org.path(), "offline.txt", "Alice, offline\n");
    screen.ok(alice, &["put", &offline, &file]);
    world.org.server.restart();
    let theirs = write(world.org.path(), "theirs.txt", "Mallory's\n");
    mallory.ok(&["put", &theirs, &file]);
    let after = screen.ok(alice, &["mkdir", "Shared:/after"]).stdout;
    if !after.contains("Conflict") {
        screen
            .problems
            .push(format!("no conflict reported: {after:?}"));
    }
    screen.expect_shown("the conflict copy", &after, CLEAR);
    screen.ok(alice, &["ls", "Shared:/tree"]);

    screen.assert_clean();
}

#[test]
fn mount_all_makes_safe_folders_and_prints_names_escaped() {
    let world = World::new(Org::new());
    world.share_hostile_workspace();
    let alice = &world.org.alice;
    alice.ok(&["workspace", "create", "Mine"]);
    let mut screen = Screen::default();

    let one = world.org.path().join("one");
    std::fs::create_dir_all(&one).unwrap();
    let mut mount = Running::start(alice, &["mount", WORKSPACE, one.to_str().unwrap()]);
    mount.wait_for("Mounted");
    let (stdout, stderr) = mount.stop("TERM");
    screen.check("mount stdout", &stdout);
    screen.check("mount stderr", &stderr);
    screen.expect_shown("mount", &stdout, WORKSPACE);

    let all = world.org.path().join("all");
    let mut mount_all = Running::start(alice, &["mount-all", all.to_str().unwrap()]);
    mount_all.wait_for("mounted under");
    let folders: Vec<String> = std::fs::read_dir(&all)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for folder in &folders {
        screen.check("a folder of mount-all", folder);
    }
    if !folders.contains(&shown(WORKSPACE)) {
        screen.problems.push(format!(
            "no folder {:?} among {folders:?}",
            shown(WORKSPACE)
        ));
    }
    // What `mount`, `df` and `findmnt` show of the mounts.
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for line in table.lines().filter(|l| l.contains("strongroom")) {
        screen.check("the mount table", line);
    }

    let (stdout, stderr) = mount_all.stop("TERM");
    screen.check("mount-all stdout", &stdout);
    screen.check("mount-all stderr", &stderr);
    screen.expect_shown("mount-all", &stdout, WORKSPACE);
    screen.assert_clean();
}

#[test]
fn a_hostile_servers_sentences_and_links_are_escaped() {
    let (org, proxy) = Org::behind_proxy();
    let alice = &org.alice;
    let mut screen = Screen::default();

    // A link with an escape sequence after it.
    proxy.set_tamper(Some(Arc::new(|method: &str, path: &str, body: Vec<u8>| {
        if method != "POST" || !path.ends_with("/invitations") {
            return body;
        }
        let mut created = CreateInvitationResponse::decode(&body).expect("an invitation");
        created.url.push_str(SENTENCE);
        created.encode()
    })));
    let invited = screen.ok(alice, &["invite", "user", "carol@example.com"]);
    screen.expect_shown("invite user", &invited.stdout, SENTENCE);
    proxy.set_tamper(None);

    // Refusals in the server's words.
    let refusal = || {
        ErrorResponse {
            code: ErrorCode::NotFound,
            message: SENTENCE.to_owned(),
        }
        .encode()
    };
    proxy.set_answer(Some(Arc::new(move |method: &str, _: &str| {
        (method == "DELETE").then(|| (404, refusal()))
    })));
    let refused = screen.fails(alice, &["invite", "cancel", &"ab".repeat(16)]);
    screen.expect_shown("invite cancel", &refused.stderr, SENTENCE);

    // The same sentence in a log line: both sides of an invitation are refused their event
    // stream, warn, and poll instead.
    proxy.set_answer(Some(Arc::new(move |method: &str, path: &str| {
        let path = path.split('?').next().unwrap_or_default();
        (method == "GET" && path.ends_with("/events")).then(|| (400, refusal()))
    })));
    let carol = org.member("carol");
    let url = alice.last_line(&["invite", "user", "carol@example.com"]);
    let (greeter, claimer) = greet_and_claim(
        alice,
        &carol,
        &url,
        &["--name", "Carol"],
        Pick::Heard,
        Pick::Heard,
    );
    assert!(
        greeter.success && claimer.success,
        "{greeter:?} {claimer:?}"
    );
    for (what, out) in [("greet", &greeter), ("claim", &claimer)] {
        screen.check(&format!("{what} stdout"), &out.stdout);
        screen.check(&format!("{what} stderr"), &out.stderr);
        assert!(out.stderr.contains("polling instead"), "{what}: {out:?}");
        screen.expect_shown(&format!("{what}'s log"), &out.stderr, SENTENCE);
    }
    screen.assert_clean();
}
