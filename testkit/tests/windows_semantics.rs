//! The WinFsp driver's logic, without Windows: `strongroom_winfsp::volume::Volume` (what every
//! WinFsp callback calls) over a real vfs, a real workspace session and a real server. The
//! Windows-only part of the driver converts types and is type-checked by `.ci/check-targets`.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use strongroom_engine::client::Client;
use strongroom_engine::device_file::KdfPolicy;
use strongroom_engine::home::Home;
use strongroom_engine::password::Password;
use strongroom_testkit::Member;
use strongroom_testkit::member::PASSWORD;
use strongroom_testkit::scenario::{Org, join_user};
use strongroom_vfs::{Kind, ROOT_INO, Vfs};
use strongroom_winfsp::filetime;
use strongroom_winfsp::status::{self, NtStatus};
use strongroom_winfsp::volume::{
    ACCESS_WRITE_DATA, ATTRIBUTE_READONLY, OPTION_DIRECTORY_FILE, OPTION_NON_DIRECTORY_FILE,
    OpenFile, Volume, WriteAt,
};

const READ: u32 = 0x1; // FILE_READ_DATA

/// `member`'s workspace as WinFsp would serve it.
fn volume(runtime: &tokio::runtime::Runtime, member: &Member, workspace: &str) -> Volume {
    let home = Home::new(&member.home);
    let client = Client::open(&home, &Password::new(PASSWORD), KdfPolicy::AllowWeak).unwrap();
    let session = runtime
        .block_on(client.open_session(workspace, None))
        .unwrap();
    let vfs = Arc::new(Vfs::new(
        session,
        runtime.handle().clone(),
        member.home.clone(),
    ));
    Volume::new(vfs, workspace)
}

fn create_file(volume: &Volume, path: &str) -> OpenFile {
    volume.create(path, OPTION_NON_DIRECTORY_FILE).unwrap().0
}

fn read_all(volume: &Volume, path: &str) -> Vec<u8> {
    let (file, info) = volume.open(path, 0, READ).unwrap();
    let mut buffer = vec![0; info.size as usize + 100];
    let n = if info.size == 0 {
        0
    } else {
        volume.read(&file, &mut buffer, 0).unwrap()
    };
    volume.close(file);
    buffer.truncate(n);
    buffer
}

fn names(listing: &[(String, strongroom_winfsp::volume::FileInfo)]) -> Vec<&str> {
    listing.iter().map(|(n, _)| n.as_str()).collect()
}

fn fails(result: Result<impl std::fmt::Debug, NtStatus>, expected: NtStatus) {
    match result {
        Err(status) => assert_eq!(
            status as u32, expected as u32,
            "got {:#X}, wanted {:#X}",
            status as u32, expected as u32
        ),
        Ok(v) => panic!("succeeded with {v:?}, wanted {:#X}", expected as u32),
    }
}

#[test]
fn explorer_and_office_operations_behave_as_on_windows() {
    let org = Org::new();
    let alice = &org.alice;
    alice.ok(&["workspace", "create", "Docs"]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let volume = volume(&runtime, alice, "Docs");

    // Create a folder and a file in it; the three write modes.
    let (folder, info) = volume.create("\\Reports", OPTION_DIRECTORY_FILE).unwrap();
    assert!(info.is_directory());
    volume.close(folder);
    let file = create_file(&volume, "\\Reports\\q3.txt");
    volume.write(&file, b"hello", WriteAt::Offset(0)).unwrap();
    let (n, info) = volume.write(&file, b" world", WriteAt::End).unwrap();
    assert_eq!((n, info.size), (6, 11));
    // Paging IO never extends a file: of nine bytes at offset 6, five fit.
    let (n, info) = volume
        .write(&file, b"WORLD!!!!", WriteAt::WithinSize(6))
        .unwrap();
    assert_eq!((n, info.size), (5, 11));
    volume.cleanup(&file, Some("\\Reports\\q3.txt"), false);
    volume.close(file);
    assert_eq!(read_all(&volume, "\\Reports\\q3.txt"), b"hello WORLD");

    // Reads at the end; names taken or missing; files and folders opened as the other.
    let (file, _) = volume.open("\\Reports\\q3.txt", 0, READ).unwrap();
    let mut buffer = [0u8; 16];
    fails(volume.read(&file, &mut buffer, 11), status::END_OF_FILE);
    assert_eq!(volume.read(&file, &mut buffer, 6).unwrap(), 5);
    assert_eq!(&buffer[..5], b"WORLD");
    volume.close(file);
    fails(
        volume.create("\\Reports\\q3.txt", 0).map(|r| r.1),
        status::OBJECT_NAME_COLLISION,
    );
    fails(
        volume.open("\\Missing\\x.txt", 0, READ).map(|r| r.1),
        status::OBJECT_PATH_NOT_FOUND,
    );
    fails(
        volume.open("\\Reports\\nope.txt", 0, READ).map(|r| r.1),
        status::OBJECT_NAME_NOT_FOUND,
    );
    fails(
        volume
            .open("\\Reports", OPTION_NON_DIRECTORY_FILE, READ)
            .map(|r| r.1),
        status::FILE_IS_A_DIRECTORY,
    );
    fails(
        volume
            .open("\\Reports\\q3.txt", OPTION_DIRECTORY_FILE, READ)
            .map(|r| r.1),
        status::NOT_A_DIRECTORY,
    );
    fails(
        volume.create("\\Missing\\new.txt", 0).map(|r| r.1),
        status::OBJECT_PATH_NOT_FOUND,
    );
    fails(
        volume.create("\\bad:name.txt", 0).map(|r| r.1),
        status::OBJECT_NAME_INVALID,
    );

    // Overwrite (Office's save), sizes, allocation, times.
    let (file, _) = volume
        .open("\\Reports\\q3.txt", 0, READ | ACCESS_WRITE_DATA)
        .unwrap();
    assert_eq!(volume.overwrite(&file).unwrap().size, 0);
    volume.write(&file, b"v2", WriteAt::Offset(0)).unwrap();
    assert_eq!(volume.set_size(&file, 10, false).unwrap().size, 10);
    assert_eq!(volume.set_size(&file, 100, true).unwrap().size, 10);
    assert_eq!(volume.set_size(&file, 4, true).unwrap().size, 4);
    let when = UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    let info = volume
        .set_times(&file, filetime::from_system_time(when))
        .unwrap();
    assert_eq!(info.time, filetime::from_system_time(when));
    assert_eq!(volume.flush(Some(&file)).unwrap().unwrap().size, 4);
    volume.cleanup(&file, Some("\\Reports\\q3.txt"), false);
    volume.close(file);
    assert_eq!(read_all(&volume, "\\Reports\\q3.txt"), b"v2\0\0");

    // Rename: plain, refused over an existing name unless replacing, never over a folder.
    volume
        .rename("\\Reports\\q3.txt", "\\Reports\\final.txt", false)
        .unwrap();
    let other = create_file(&volume, "\\Reports\\draft.txt");
    volume.write(&other, b"draft", WriteAt::Offset(0)).unwrap();
    volume.cleanup(&other, None, false);
    volume.close(other);
    fails(
        volume.rename("\\Reports\\draft.txt", "\\Reports\\final.txt", false),
        status::OBJECT_NAME_COLLISION,
    );
    volume
        .rename("\\Reports\\draft.txt", "\\Reports\\final.txt", true)
        .unwrap();
    assert_eq!(read_all(&volume, "\\Reports\\final.txt"), b"draft");
    let (sub, _) = volume
        .create("\\Reports\\Archive", OPTION_DIRECTORY_FILE)
        .unwrap();
    volume.close(sub);
    fails(
        volume.rename("\\Reports\\final.txt", "\\Reports\\Archive", true),
        status::ACCESS_DENIED,
    );

    // Listings: "." and ".." first, then by name, continued after a marker; names Windows
    // cannot show and symbolic links are left out.
    for i in 0..30 {
        let f = create_file(&volume, &format!("\\Reports\\n{i:02}.txt"));
        volume.close(f);
    }
    let vfs = volume.vfs().clone();
    let reports = vfs.lookup(ROOT_INO, "Reports").unwrap();
    let odd = vfs.create(reports.ino, "a:b.txt").unwrap();
    vfs.release(odd.ino, true).unwrap();
    vfs.symlink(reports.ino, "link", "final.txt").unwrap();
    assert_eq!(vfs.lookup(reports.ino, "link").unwrap().kind, Kind::Symlink);
    let (folder, _) = volume.open("\\Reports", 0, READ).unwrap();
    let all = volume.read_directory(&folder, None).unwrap();
    let mut expected = vec![".", "..", "Archive", "final.txt"];
    let numbered: Vec<String> = (0..30).map(|i| format!("n{i:02}.txt")).collect();
    expected.extend(numbered.iter().map(String::as_str));
    assert_eq!(names(&all), expected);
    let rest = volume.read_directory(&folder, Some("n09.txt")).unwrap();
    assert_eq!(names(&rest), &expected[14..]);
    let rest = volume.read_directory(&folder, Some(".")).unwrap();
    assert_eq!(names(&rest), &expected[1..]);
    assert!(volume.dir_info_by_name(&folder, "final.txt").is_ok());
    fails(
        volume.dir_info_by_name(&folder, "link"),
        status::OBJECT_NAME_NOT_FOUND,
    );
    fails(
        volume.open("\\Reports\\link", 0, READ).map(|r| r.1),
        status::OBJECT_NAME_NOT_FOUND,
    );
    let root = volume.open("\\", 0, READ).unwrap().0;
    assert_eq!(
        names(&volume.read_directory(&root, None).unwrap()),
        ["Reports"]
    );
    volume.close(root);

    // Delete on close: a folder must be empty; a file goes.
    fails(volume.can_delete(&folder), status::DIRECTORY_NOT_EMPTY);
    volume.close(folder);
    let (file, _) = volume.open("\\Reports\\n00.txt", 0, READ).unwrap();
    volume.can_delete(&file).unwrap();
    volume.cleanup(&file, Some("\\Reports\\n00.txt"), true);
    volume.close(file);
    fails(
        volume.open("\\Reports\\n00.txt", 0, READ).map(|r| r.1),
        status::OBJECT_NAME_NOT_FOUND,
    );
    let (archive, _) = volume.open("\\Reports\\Archive", 0, READ).unwrap();
    volume.can_delete(&archive).unwrap();
    volume.cleanup(&archive, Some("\\Reports\\Archive"), true);
    volume.close(archive);
    fails(
        volume.open("\\Reports\\Archive", 0, READ).map(|r| r.1),
        status::OBJECT_NAME_NOT_FOUND,
    );

    let info = volume.volume_info();
    assert_eq!(info.label, "Docs");
    assert!(info.total > 0 && info.free > 0 && info.free <= info.total);

    // What the volume saved is the workspace's: uploaded, read back by the command line.
    volume.flush(None).unwrap();
    assert!(runtime.block_on(vfs.push_now()).unwrap());
    drop(volume);
    drop(vfs);
    let out = alice.run(&["get", "Docs:/Reports/final.txt", "-"]);
    assert!(out.success, "{}", out.stderr);
    assert_eq!(out.stdout, "draft");

    // A READER's volume is read-only: shown so, and every change refused.
    let bob = org.member("bob");
    join_user(alice, &bob, "bob@example.com", "Bob", &[]);
    alice.share("Docs", "bob@example.com", "READER");
    let readers = self::volume(&runtime, &bob, "Docs");
    assert!(readers.read_only());
    let (file, info) = readers.open("\\Reports\\final.txt", 0, READ).unwrap();
    assert_ne!(info.attributes & ATTRIBUTE_READONLY, 0);
    fails(readers.can_delete(&file), status::MEDIA_WRITE_PROTECTED);
    readers.close(file);
    fails(
        readers
            .open("\\Reports\\final.txt", 0, READ | ACCESS_WRITE_DATA)
            .map(|r| r.1),
        status::MEDIA_WRITE_PROTECTED,
    );
    fails(
        readers.create("\\new.txt", 0).map(|r| r.1),
        status::MEDIA_WRITE_PROTECTED,
    );
    assert_eq!(read_all(&readers, "\\Reports\\final.txt"), b"draft");
}
