//! A hostile member's tree never harms another member's client: `get` writes only inside its
//! destination and never through a link, folder cycles and folders listed under many names are
//! refused (command line) or not followed (mount), and a server that leaves an entry out of an
//! answer is caught instead of hiding it.
//!
//! Mallory is a CONTRIBUTOR of Alice's workspace `Docs` and Bob a READER; Mallory stages her
//! trees with honest commands where they suffice, and otherwise signs the manifests herself
//! ([`Forger`]): they are genuine versions by a member allowed to write, so Bob's validation of
//! signatures and roles accepts them. The server is reached through a [`TamperingProxy`], which
//! plays the hostile server of the last tests.

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strongroom_engine::Client;
use strongroom_engine::device_file::KdfPolicy;
use strongroom_engine::files::NewEntry;
use strongroom_engine::home::Home;
use strongroom_engine::password::Password;
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::ids::EntryId;
use strongroom_protocol::manifests::{EntryName, ManifestBody};
use strongroom_protocol::time::Timestamp;
use strongroom_protocol::wire::VlobReadResponse;
use strongroom_testkit::forge::{Forged, Forger, empty_file};
use strongroom_testkit::member::PASSWORD;
use strongroom_testkit::scenario::{Org, join_user};
use strongroom_testkit::{Member, Mount, TamperingProxy, micros_now};

struct World {
    proxy: TamperingProxy,
    org: Org,
    mallory: Member,
    bob: Member,
}

/// Alice owns `Docs`; Mallory is a CONTRIBUTOR, Bob a READER.
fn world() -> World {
    let (org, proxy) = Org::behind_proxy();
    let mallory = org.member("mallory");
    let bob = org.member("bob");
    join_user(&org.alice, &mallory, "mallory@example.com", "Mallory", &[]);
    join_user(&org.alice, &bob, "bob@example.com", "Bob", &[]);
    org.alice.ok(&["workspace", "create", "Docs"]);
    org.alice
        .share("Docs", "mallory@example.com", "contributor");
    org.alice.share("Docs", "bob@example.com", "reader");
    World {
        proxy,
        org,
        mallory,
        bob,
    }
}

/// What a command did, if it ended within its time.
struct Finished {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs `command` for at most `limit`; `Err` (after killing it) if it had not ended by then.
fn finish_within(mut command: Command, limit: Duration) -> Result<Finished, String> {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let head: String = std::fs::read_to_string(&out)
                .unwrap_or_default()
                .lines()
                .take(5)
                .collect::<Vec<_>>()
                .join("\n");
            return Err(format!(
                "{command:?} had not ended after {limit:?}; its output began with:\n{head}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ok(Finished {
        success: status.success(),
        stdout: std::fs::read_to_string(out).unwrap(),
        stderr: std::fs::read_to_string(err).unwrap(),
    })
}

/// A `strongroom` command of `member` that must end within 30 seconds.
fn strongroom(member: &Member, args: &[&str]) -> Finished {
    finish_within(member.command(args), Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"))
}

/// A file and a folder outside every destination, standing for `~/.bashrc` and `~/.ssh`.
struct Outside {
    file: PathBuf,
    dir: PathBuf,
}

const ORIGINAL: &str = "the victim's own file\n";

fn outside(root: &Path) -> Outside {
    let dir = root.join("victim-home");
    std::fs::create_dir_all(dir.join("ssh")).unwrap();
    let file = dir.join("bashrc");
    std::fs::write(&file, ORIGINAL).unwrap();
    Outside {
        file,
        dir: dir.join("ssh"),
    }
}

impl Outside {
    /// Nothing was written outside the destination.
    fn untouched(&self) {
        assert_eq!(
            std::fs::read_to_string(&self.file).unwrap(),
            ORIGINAL,
            "get wrote through a link, outside its destination"
        );
        let planted: Vec<_> = std::fs::read_dir(&self.dir).unwrap().collect();
        assert!(
            planted.is_empty(),
            "get created files outside its destination: {planted:?}"
        );
    }
}

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn folder(parent: EntryId, children: &[(&str, EntryId)]) -> ManifestBody {
    ManifestBody::Folder {
        parent,
        children: children
            .iter()
            .map(|(name, id)| (name.parse::<EntryName>().unwrap(), *id))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// How deep `exp` goes.
const LEVELS: usize = 40;

#[test]
fn get_never_writes_through_a_link_named_like_its_temporary_file() {
    let w = world();
    let victim = outside(w.org.path());
    // An honest `put` of Mallory's folder is enough: a file, and a link named the way the old
    // `get` named that file's temporary copy, to a file outside.
    let trap = w.org.path().join("trap");
    std::fs::create_dir(&trap).unwrap();
    std::fs::write(trap.join("zz"), "Mallory's content\n").unwrap();
    symlink(&victim.file, trap.join("zz.strongroom-part")).unwrap();
    w.mallory.ok(&["put", trap.to_str().unwrap(), "Docs:/"]);

    let out = w.org.path().join("bob-out");
    std::fs::create_dir(&out).unwrap();
    let got = strongroom(&w.bob, &["get", "Docs:/trap", out.to_str().unwrap()]);
    assert!(got.success, "{}", got.stderr);
    victim.untouched();
    assert_eq!(text(&out.join("trap/zz")), "Mallory's content\n");
    assert_eq!(
        std::fs::read_link(out.join("trap/zz.strongroom-part")).unwrap(),
        victim.file,
        "the link itself is part of the tree and is created as stored"
    );
    // Nothing but the tree: no temporary file left behind.
    let mut names: Vec<String> = std::fs::read_dir(out.join("trap"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["zz", "zz.strongroom-part"]);
}

#[test]
fn a_second_get_does_not_follow_the_links_the_first_one_made() {
    let w = world();
    let victim = outside(w.org.path());
    let trap = w.org.path().join("trap");
    std::fs::create_dir(&trap).unwrap();
    std::fs::write(trap.join("notes.txt"), "notes, first\n").unwrap();
    symlink(&victim.file, trap.join("notes.strongroom-part")).unwrap();
    symlink(&victim.dir, trap.join("d")).unwrap();
    w.mallory.ok(&["put", trap.to_str().unwrap(), "Docs:/"]);

    let out = w.org.path().join("bob-out");
    std::fs::create_dir(&out).unwrap();
    let first = strongroom(&w.bob, &["get", "Docs:/trap", out.to_str().unwrap()]);
    assert!(first.success, "{}", first.stderr);
    victim.untouched();

    // The link `d` becomes a folder of the same name, and notes.txt changes.
    w.mallory.ok(&["rm", "Docs:/trap/d"]);
    let staging = w.org.path().join("staging");
    std::fs::create_dir_all(staging.join("d")).unwrap();
    std::fs::write(staging.join("d/authorized_keys"), "ssh-ed25519 MALLORY\n").unwrap();
    w.mallory
        .ok(&["put", staging.join("d").to_str().unwrap(), "Docs:/trap/"]);
    std::fs::write(trap.join("notes.txt"), "notes, second\n").unwrap();
    w.mallory.ok(&[
        "put",
        trap.join("notes.txt").to_str().unwrap(),
        "Docs:/trap/notes.txt",
    ]);

    let second = strongroom(&w.bob, &["get", "Docs:/trap", out.to_str().unwrap()]);
    assert!(second.success, "{}", second.stderr);
    victim.untouched();
    assert_eq!(text(&out.join("trap/notes.txt")), "notes, second\n");
    let d = std::fs::symlink_metadata(out.join("trap/d")).unwrap();
    assert!(d.is_dir(), "the stored folder replaced the link: {d:?}");
    assert_eq!(
        text(&out.join("trap/d/authorized_keys")),
        "ssh-ed25519 MALLORY\n"
    );
}

#[test]
fn names_with_terminal_escapes_stay_plain_names_inside_the_destination() {
    let w = world();
    let names = [
        "\u{1b}]0;owned\u{7}",
        "\u{1b}[2J\u{1b}[H",
        "..\u{1b}[A",
        "\r\u{1b}[K..",
        "line\nbreak",
    ];
    let tree = w.org.path().join("esc");
    std::fs::create_dir_all(tree.join("\u{1b}[1m")).unwrap();
    for (i, name) in names.iter().enumerate() {
        std::fs::write(tree.join(name), format!("file {i}\n")).unwrap();
        std::fs::write(tree.join("\u{1b}[1m").join(name), format!("deep {i}\n")).unwrap();
    }
    w.mallory.ok(&["put", tree.to_str().unwrap(), "Docs:/"]);

    let container = w.org.path().join("box");
    let out = container.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let got = strongroom(&w.bob, &["get", "Docs:/esc", out.to_str().unwrap()]);
    assert!(got.success, "{}", got.stderr);
    for (i, name) in names.iter().enumerate() {
        assert_eq!(text(&out.join("esc").join(name)), format!("file {i}\n"));
        assert_eq!(
            text(&out.join("esc/\u{1b}[1m").join(name)),
            format!("deep {i}\n")
        );
    }
    let around: Vec<_> = std::fs::read_dir(&container)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(around, ["out"], "get wrote beside its destination");
    assert_eq!(std::fs::read_dir(out.join("esc")).unwrap().count(), 6);
}

/// Mallory's hostile folders, all signed by her: `loop` holds A, which holds B, which lists A
/// again; `exp` lists one folder under two names, which lists the next under two names, 40
/// levels deep (2^40 paths); in `liar`, X and Y list each other and each names the other as
/// its parent; `selfish` holds S, which lists itself.
fn stage_hostile_folders(w: &World) {
    for name in ["loop", "exp", "liar", "selfish"] {
        w.mallory.ok(&["mkdir", &format!("Docs:/{name}")]);
    }
    let mut forger = Forger::new(&w.mallory, "Docs");
    let root = forger.root();
    let mut writes = Vec::new();

    let (looped, version) = forger.entry("/", "loop");
    let (a, b) = (Forger::new_id(), Forger::new_id());
    writes.push(Forged::new(looped, version + 1, folder(root, &[("A", a)])));
    writes.push(Forged::new(a, 1, folder(looped, &[("B", b)])));
    writes.push(Forged::new(b, 1, folder(a, &[("A", a)])));

    let (exp, version) = forger.entry("/", "exp");
    let levels: Vec<EntryId> = (0..LEVELS).map(|_| Forger::new_id()).collect();
    writes.push(Forged::new(
        exp,
        version + 1,
        folder(root, &[("a", levels[0]), ("b", levels[0])]),
    ));
    for (i, id) in levels.iter().enumerate() {
        let parent = if i == 0 { exp } else { levels[i - 1] };
        let children = match levels.get(i + 1) {
            Some(next) => vec![("a", *next), ("b", *next)],
            None => Vec::new(),
        };
        writes.push(Forged::new(*id, 1, folder(parent, &children)));
    }

    let (liar, version) = forger.entry("/", "liar");
    let (x, y) = (Forger::new_id(), Forger::new_id());
    writes.push(Forged::new(liar, version + 1, folder(root, &[("X", x)])));
    writes.push(Forged::new(x, 1, folder(y, &[("Y", y)])));
    writes.push(Forged::new(y, 1, folder(x, &[("X", x)])));

    let (selfish, version) = forger.entry("/", "selfish");
    let s = Forger::new_id();
    writes.push(Forged::new(selfish, version + 1, folder(root, &[("S", s)])));
    writes.push(Forged::new(s, 1, folder(selfish, &[("self", s)])));

    forger.write(writes);
}

#[test]
fn get_and_pin_refuse_folder_cycles_and_repeated_folders_fast_and_write_nothing() {
    let w = world();
    stage_hostile_folders(&w);
    for (source, first, second) in [
        ("Docs:/loop", "Docs:/loop/A", "Docs:/loop/A/B/A"),
        ("Docs:/exp", "Docs:/exp/a", "Docs:/exp/b"),
        ("Docs:/liar", "Docs:/liar/X", "Docs:/liar/X/Y/X"),
        ("Docs:/selfish", "Docs:/selfish/S", "Docs:/selfish/S/self"),
        ("Docs:/", "Docs:/exp/a", "Docs:/exp/b"),
    ] {
        let out = w.org.path().join(format!("out-{}", micros_now()));
        let started = Instant::now();
        let got = strongroom(&w.bob, &["get", source, out.to_str().unwrap()]);
        assert!(!got.success, "get {source} succeeded");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "get {source} took {:?}",
            started.elapsed()
        );
        for path in [first, second] {
            assert!(got.stderr.contains(path), "get {source}: {}", got.stderr);
        }
        assert!(got.stderr.contains("appears twice"), "{}", got.stderr);
        assert!(!out.exists(), "get {source} wrote something");

        for pin in ["pin", "unpin"] {
            let pinned = strongroom(&w.bob, &[pin, source]);
            assert!(!pinned.success, "{pin} {source} succeeded");
            assert!(pinned.stderr.contains(second), "{pin}: {}", pinned.stderr);
        }
    }
}

#[test]
fn a_mount_shows_every_folder_once_and_find_and_ls_terminate() {
    let w = world();
    stage_hostile_folders(&w);
    let dir = w.org.path().join("bob-mnt");
    let _mount = Mount::start(&w.bob, "Docs", &dir, &[]);

    let mut find = Command::new("find");
    find.arg(&dir).args(["-printf", "%i %y %P\n"]);
    let found = finish_within(find, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    assert!(found.success, "find: {}{}", found.stdout, found.stderr);
    let mut inodes = std::collections::HashMap::new();
    for line in found.stdout.lines() {
        let mut parts = line.splitn(3, ' ');
        let (ino, kind, path) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap_or(""),
        );
        if kind == "d"
            && let Some(earlier) = inodes.insert(ino.to_owned(), path.to_owned())
        {
            panic!("folder inode {ino} at {earlier:?} and at {path:?}");
        }
    }
    let paths: Vec<&str> = inodes.values().map(String::as_str).collect();
    assert!(paths.contains(&"loop/A/B"), "{paths:?}");
    assert!(!paths.contains(&"loop/A/B/A"), "{paths:?}");
    assert!(paths.contains(&"exp/a"), "{paths:?}");
    assert!(!paths.iter().any(|p| p.contains("/b")), "{paths:?}");
    let deepest = format!("exp{}", "/a".repeat(LEVELS));
    assert!(paths.contains(&deepest.as_str()), "{paths:?}");
    // X names Y as its parent, not `liar`: not followed; S lists itself: not followed.
    assert!(
        paths.contains(&"liar") && !paths.contains(&"liar/X"),
        "{paths:?}"
    );
    assert!(paths.contains(&"selfish/S"), "{paths:?}");
    assert!(!paths.contains(&"selfish/S/self"), "{paths:?}");

    let mut ls = Command::new("ls");
    ls.arg("-R").arg(&dir);
    let listed = finish_within(ls, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    assert!(listed.success, "ls -R: {}", listed.stderr);
    assert!(!listed.stdout.contains("loop/A/B/A"), "{}", listed.stdout);

    // The names not followed fail a lookup (EIO) rather than leading into the loop.
    for hidden in ["loop/A/B/A", "exp/b", "liar/X", "selfish/S/self"] {
        let error = std::fs::metadata(dir.join(hidden)).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(5), "{hidden}: EIO, got {error}");
    }
    // What the loop's first folder holds is still there.
    assert!(std::fs::metadata(dir.join("loop/A/B")).unwrap().is_dir());
}

/// Drops `hidden` from every batch read the server answers.
fn hide(proxy: &TamperingProxy, hidden: EntryId) {
    proxy.set_tamper(Some(Arc::new(
        move |method: &str, path: &str, body: Vec<u8>| {
            if method != "POST" || !path.ends_with("/vlobs/read") {
                return body;
            }
            let mut response = VlobReadResponse::decode(&body).unwrap();
            response.vlobs.retain(|v| v.id != hidden);
            response.encode()
        },
    )));
}

/// Alice stores `shown/a.txt` and `shown/secret.txt`; returns secret.txt's id.
fn stage_shown(w: &World) -> EntryId {
    let shown = w.org.path().join("shown");
    std::fs::create_dir(&shown).unwrap();
    std::fs::write(shown.join("a.txt"), "a\n").unwrap();
    std::fs::write(shown.join("secret.txt"), "the board's decision\n").unwrap();
    w.org.alice.ok(&["put", shown.to_str().unwrap(), "Docs:/"]);
    Forger::new(&w.org.alice, "Docs")
        .entry("/shown", "secret.txt")
        .0
}

fn assert_hidden_is_named(what: &str, got: &Finished) {
    assert!(!got.success, "{what} succeeded: {}", got.stdout);
    assert!(
        got.stderr.contains("Docs:/shown/secret.txt") && got.stderr.contains("left out"),
        "{what}: {}",
        got.stderr
    );
}

#[test]
fn an_entry_the_server_leaves_out_fails_ls_get_and_the_mount() {
    let w = world();
    let secret = stage_shown(&w);
    hide(&w.proxy, secret);

    let listed = strongroom(&w.bob, &["ls", "Docs:/shown"]);
    assert_hidden_is_named("ls", &listed);
    let out = w.org.path().join("bob-out");
    let got = strongroom(&w.bob, &["get", "Docs:/shown", out.to_str().unwrap()]);
    assert_hidden_is_named("get of the folder", &got);
    assert!(!out.exists(), "get wrote part of the folder");
    let got = strongroom(
        &w.bob,
        &["get", "Docs:/shown/secret.txt", out.to_str().unwrap()],
    );
    assert_hidden_is_named("get of the file", &got);
    let pinned = strongroom(&w.bob, &["pin", "Docs:/shown"]);
    assert_hidden_is_named("pin", &pinned);
    let streamed = strongroom(&w.bob, &["get", "Docs:/shown/secret.txt", "-"]);
    assert_hidden_is_named("get to standard output", &streamed);
    let streamed = strongroom(&w.bob, &["get", "Docs:/shown/a.txt", "-"]);
    assert!(
        streamed.success && streamed.stdout == "a\n",
        "{}",
        streamed.stderr
    );

    let dir = w.org.path().join("bob-mnt");
    let mount = Mount::start(&w.bob, "Docs", &dir, &[]);
    assert_eq!(text(&dir.join("shown/a.txt")), "a\n");
    let error = std::fs::metadata(dir.join("shown/secret.txt")).unwrap_err();
    assert_eq!(error.raw_os_error(), Some(5), "lookup: EIO, got {error}");
    let error = std::fs::read_dir(dir.join("shown"))
        .and_then(|entries| entries.collect::<std::io::Result<Vec<_>>>())
        .unwrap_err();
    assert_eq!(error.raw_os_error(), Some(5), "readdir: EIO, got {error}");
    drop(mount);

    // An honest server again: everything is there.
    w.proxy.set_tamper(None);
    let listed = strongroom(&w.bob, &["ls", "Docs:/shown"]);
    assert!(listed.success && listed.stdout.contains("secret.txt"));
    let got = strongroom(&w.bob, &["get", "Docs:/shown", out.to_str().unwrap()]);
    assert!(got.success, "{}", got.stderr);
    assert_eq!(
        text(&out.join("secret.txt")),
        "the board's decision\n",
        "the folder is written as `out` itself"
    );
}

#[test]
fn a_view_of_the_past_refuses_a_hidden_entry_and_allows_one_written_later() {
    let w = world();
    let secret = stage_shown(&w);
    // A folder listing an entry whose first version is timestamped two minutes later than the
    // folder's: what two devices whose clocks differ can write.
    w.mallory.ok(&["mkdir", "Docs:/late"]);
    let mut forger = Forger::new(&w.mallory, "Docs");
    let (late, version) = forger.entry("/", "late");
    let future = Forger::new_id();
    let now = micros_now();
    forger.write(vec![
        Forged::new(
            late,
            version + 1,
            folder(forger.root(), &[("future.txt", future)]),
        ),
        Forged {
            timestamp: Some(Timestamp::from_micros(now + 120_000_000)),
            ..Forged::new(future, 1, empty_file(late))
        },
    ]);
    let between = (now + 30_000_000).to_string();

    let listed = strongroom(&w.bob, &["ls", "Docs:/late", "--at", &between]);
    assert!(listed.success, "{}", listed.stderr);
    assert!(!listed.stdout.contains("future.txt"), "{}", listed.stdout);
    let listed = strongroom(&w.bob, &["ls", "Docs:/late"]);
    assert!(listed.stdout.contains("future.txt"), "{}", listed.stdout);

    hide(&w.proxy, secret);
    let at = micros_now().to_string();
    let listed = strongroom(&w.bob, &["ls", "Docs:/shown", "--at", &at]);
    assert_hidden_is_named("ls --at", &listed);
    let out = w.org.path().join("bob-out");
    let got = strongroom(
        &w.bob,
        &["get", "Docs:/shown", out.to_str().unwrap(), "--at", &at],
    );
    assert_hidden_is_named("get --at", &got);
    assert!(!out.exists(), "get --at wrote part of the folder");
}

#[test]
fn honest_moves_keep_every_tree_whole() {
    let w = world();
    let alice = &w.org.alice;
    let tree = w.org.path().join("projects");
    std::fs::create_dir_all(tree.join("a/b/c")).unwrap();
    std::fs::write(tree.join("a/b/c/deep.txt"), "deep\n").unwrap();
    alice.ok(&["put", tree.to_str().unwrap(), "Docs:/"]);
    alice.ok(&["mv", "Docs:/projects/a/b", "Docs:/moved"]);
    alice.ok(&["mkdir", "Docs:/projects/a/new"]);
    alice.ok(&["mv", "Docs:/moved", "Docs:/projects/a/new/"]);
    // Restoring the old path of a moved folder would list it twice: refused.
    let refused = alice.fails(&["restore", "Docs:/projects/a/b", "--version", "1"]);
    assert!(refused.contains("moved, not removed"), "{refused}");
    // Through a mount too: a folder renamed into another.
    let dir = w.org.path().join("alice-mnt");
    {
        let _mount = Mount::start(alice, "Docs", &dir, &[]);
        std::fs::create_dir(dir.join("projects/elsewhere")).unwrap();
        std::fs::rename(dir.join("projects/a"), dir.join("projects/elsewhere/a")).unwrap();
    }

    let out = w.org.path().join("bob-out");
    let got = strongroom(&w.bob, &["get", "Docs:/", out.to_str().unwrap()]);
    assert!(got.success, "{}", got.stderr);
    assert_eq!(
        text(&out.join("projects/elsewhere/a/new/moved/c/deep.txt")),
        "deep\n"
    );
    let mnt = w.org.path().join("bob-mnt");
    let _mount = Mount::start(&w.bob, "Docs", &mnt, &[]);
    assert_eq!(
        text(&mnt.join("projects/elsewhere/a/new/moved/c/deep.txt")),
        "deep\n"
    );
}

#[test]
fn a_folder_moved_while_another_member_writes_in_it_stays_in_the_mount() {
    let w = world();
    let alice = &w.org.alice;
    alice.ok(&["mkdir", "Docs:/A/X"]);
    alice.ok(&["mkdir", "Docs:/B"]);
    // Mallory's mount-like session adds a file to X while Alice moves X; Mallory's upload then
    // conflicts on X and merges.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = Client::open(
        &Home::new(&w.mallory.home),
        &Password::new(PASSWORD),
        KdfPolicy::AllowWeak,
    )
    .unwrap();
    let session = runtime.block_on(client.open_session("Docs", None)).unwrap();
    let name = |text: &str| text.parse::<EntryName>().unwrap();
    let a = runtime
        .block_on(session.child(session.root(), &name("A")))
        .unwrap()
        .unwrap();
    let x = runtime
        .block_on(session.child(a, &name("X")))
        .unwrap()
        .unwrap();
    runtime
        .block_on(session.create(x, &name("new.txt"), NewEntry::File))
        .unwrap();
    alice.ok(&["mv", "Docs:/A/X", "Docs:/B/"]);
    for _ in 0..4 {
        runtime.block_on(session.push()).unwrap();
        if !session.has_pending().unwrap() {
            break;
        }
    }
    assert!(
        !session.has_pending().unwrap(),
        "Mallory's change was not uploaded"
    );
    drop(session);

    let out = w.org.path().join("bob-out");
    let got = strongroom(&w.bob, &["get", "Docs:/", out.to_str().unwrap()]);
    assert!(got.success, "{}", got.stderr);
    assert!(out.join("B/X/new.txt").is_file());
    let mnt = w.org.path().join("bob-mnt");
    let _mount = Mount::start(&w.bob, "Docs", &mnt, &[]);
    assert!(
        mnt.join("B/X/new.txt").is_file(),
        "the moved folder vanished from the mount: {:?}",
        std::fs::metadata(mnt.join("B/X"))
    );
}
