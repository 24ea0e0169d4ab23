//! `strongroom mount WS DIR [--at TIME]`, `strongroom mount-all DIR` and `strongroom unmount
//! DIR`. FUSE on Linux and macOS, WinFsp on Windows; the file system itself is the vfs.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use strongroom_engine::password::Password;
use strongroom_vfs::Vfs;

use super::files::parse_time;
use crate::Context;
use crate::output::{escaped, say, tell};

/// How often other devices' changes are taken, and this device's uploaded, while mounted.
const SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// A workspace's file system, ready to mount, and whether the server answered.
async fn open_vfs(
    context: &Context,
    password: &Password,
    workspace: &str,
    at: Option<&str>,
) -> anyhow::Result<(Arc<Vfs>, bool)> {
    let at = at.map(parse_time).transpose()?;
    let client = context.open(password)?;
    let session = client.open_session(workspace, at).await?;
    let online = session.online();
    let vfs = Arc::new(Vfs::new(
        session,
        tokio::runtime::Handle::current(),
        context.home.dir().to_path_buf(),
    ));
    vfs.spawn_sync(SYNC_EVERY);
    Ok((vfs, online))
}

/// The folder `mount-all` mounts a workspace on, under its parent: the workspace's name as
/// `workspace list` shows it (escaped, so that no control or bidirectional character reaches a
/// local file name, which the user's shell and tools print as it is), and one plain component,
/// never a way out of the parent. A workspace name is an entry name (never empty, `.` or `..`,
/// no `/` or NUL); this holds whatever reached here, and on Windows also what Windows refuses or
/// reads as a device or a path (`\`, `:`, `CON`...).
fn folder_name(workspace: &str) -> anyhow::Result<String> {
    let name = escaped(workspace);
    let mut components = Path::new(&name).components();
    let one_plain_component = matches!(
        (components.next(), components.next()),
        (Some(std::path::Component::Normal(c)), None) if c == name.as_str()
    );
    if !one_plain_component {
        bail!(
            "the workspace name {name} cannot be a folder name: mount it with `strongroom mount` on a folder of your choice"
        );
    }
    #[cfg(windows)]
    if let Some(why) = windows_refuses(&name) {
        bail!(
            "the workspace name {name} cannot be a folder name on Windows ({why}): mount it with `strongroom mount` on a drive letter or a folder of your choice"
        );
    }
    Ok(name)
}

/// Why Windows cannot hold `name` as a folder name in a folder, if it cannot.
#[cfg(any(windows, test))]
fn windows_refuses(name: &str) -> Option<&'static str> {
    if name.contains(['<', '>', ':', '"', '/', '\\', '|', '?', '*']) {
        return Some("it holds one of < > : \" / \\ | ? *");
    }
    if name.ends_with(['.', ' ']) {
        return Some("it ends with a dot or a space");
    }
    let stem = name.split('.').next().unwrap_or_default().trim_end();
    let device = ["CON", "PRN", "AUX", "NUL"]
        .iter()
        .any(|d| stem.eq_ignore_ascii_case(d))
        || (stem.len() == 4
            && ["COM", "LPT"]
                .iter()
                .any(|d| stem.get(..3).is_some_and(|p| p.eq_ignore_ascii_case(d)))
            && matches!(stem.as_bytes()[3], b'1'..=b'9'));
    device.then_some("it names a device")
}

fn mounted_line(workspace: &str, dir: &Path, vfs: &Vfs, online: bool) -> String {
    format!(
        "Mounted {workspace} on {}{}{}",
        dir.display(),
        if vfs.read_only() { " (read-only)" } else { "" },
        if online { "" } else { " (offline)" },
    )
}

/// After unmounting: files still open are saved, then what waits is uploaded.
async fn finish(vfs: Arc<Vfs>, workspace: &str) -> anyhow::Result<()> {
    let saving = vfs.clone();
    tokio::task::spawn_blocking(move || saving.save_all()).await??;
    if !vfs.read_only() {
        if vfs.push_now().await? {
            say!("Every change to {workspace} is uploaded");
        } else {
            say!(
                "The server is unreachable: changes to {workspace} are kept on this device until the next sync"
            );
        }
    }
    Ok(())
}

/// Waits for Ctrl-C (or SIGTERM on Unix).
async fn stop_requested() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// Mounts a workspace on `dir` and serves it until Ctrl-C, SIGTERM or `strongroom unmount`.
#[cfg(unix)]
pub async fn mount(
    context: &Context,
    workspace: &str,
    dir: &Path,
    at: Option<&str>,
) -> anyhow::Result<()> {
    prepare_mount_point(dir)?;
    let password = context.unlock()?;
    let (vfs, online) = open_vfs(context, &password, workspace, at).await?;
    let mounted = strongroom_fuse::mount(vfs.clone(), dir, workspace)
        .with_context(|| format!("cannot mount on {}", dir.display()))?;
    say!(
        "{}; Ctrl-C or `strongroom unmount {}` to stop",
        mounted_line(workspace, dir, &vfs, online),
        dir.display()
    );
    let stopped_outside = tokio::select! {
        r = stop_requested() => { r?; false }
        _ = finished(&mounted) => true,
    };
    if stopped_outside {
        say!("{} was unmounted", dir.display());
    } else {
        unmount_when_closed(mounted, dir).await?;
    }
    finish(vfs, workspace).await
}

/// Unmounts `dir`: at once when no file is open in it; else the folder is detached (nothing
/// new can be opened) and the files open stay usable until their programs close them, which is
/// waited for, so that nothing they write is lost (a second Ctrl-C stops waiting).
#[cfg(unix)]
async fn unmount_when_closed(mounted: strongroom_fuse::Mounted, dir: &Path) -> anyhow::Result<()> {
    let path = dir.to_path_buf();
    let unmounted =
        tokio::task::spawn_blocking(move || strongroom_fuse::unmount_path(&path, false)).await?;
    if unmounted.is_err() {
        say!(
            "Files are open in {}: it is detached, and they stay usable until their programs close them (Ctrl-C again to stop waiting)",
            dir.display()
        );
        let path = dir.to_path_buf();
        tokio::task::spawn_blocking(move || strongroom_fuse::unmount_path(&path, true))
            .await?
            .with_context(|| format!("cannot unmount {}", dir.display()))?;
        tokio::select! {
            _ = finished(&mounted) => {}
            r = stop_requested() => {
                r?;
                // The serving threads stay blocked on the kernel; the process ends anyway.
                say!("Stopped waiting: programs still using {} get errors from now on", dir.display());
                return Ok(());
            }
        }
    }
    // Unmounted above: the serving threads end by themselves.
    tokio::task::spawn_blocking(move || mounted.join())
        .await?
        .with_context(|| format!("unmounting {}", dir.display()))?;
    say!("Unmounted {}", dir.display());
    Ok(())
}

/// Resolves when `mounted` ends without us (`strongroom unmount`, `umount`).
#[cfg(unix)]
async fn finished(mounted: &strongroom_fuse::Mounted) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_millis(200));
    loop {
        ticks.tick().await;
        if mounted.finished() {
            return;
        }
    }
}

/// A folder ready to be mounted on: a stale mount (its process was killed) is detached first.
#[cfg(unix)]
fn prepare_mount_point(dir: &Path) -> anyhow::Result<()> {
    if strongroom_fuse::is_stale_mount(dir) {
        tracing::warn!(dir = %dir.display(), "cleaning up a stale mount");
        strongroom_fuse::unmount_path(dir, true).with_context(|| {
            format!("{} is a stale mount that cannot be cleaned", dir.display())
        })?;
    }
    if !dir.is_dir() {
        bail!("{} is not a folder (create it first)", dir.display());
    }
    Ok(())
}

/// One workspace mounted by `mount-all`.
#[cfg(unix)]
struct MountedWorkspace {
    name: String,
    dir: std::path::PathBuf,
    vfs: Arc<Vfs>,
    mounted: strongroom_fuse::Mounted,
}

/// How often `mount-all` looks for workspaces shared since it started.
#[cfg(unix)]
const NEW_WORKSPACES_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Mounts every workspace of the user under `dir` (one folder each, named after it), and those
/// shared later as they arrive; serves them until Ctrl-C or SIGTERM.
#[cfg(unix)]
pub async fn mount_all(context: &Context, dir: &Path, at: Option<&str>) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let password = context.unlock()?;
    let mut lister = context.open(&password)?;
    let mut mounts: Vec<MountedWorkspace> = Vec::new();
    let mut failed: std::collections::HashSet<String> = Default::default();
    let mut look = tokio::time::interval(NEW_WORKSPACES_EVERY);
    let mut ticks = tokio::time::interval(std::time::Duration::from_millis(200));
    let mut first = true;
    // One signal listener for the whole run: a signal between two turns is not lost.
    let stop = stop_requested();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            r = &mut stop => { r?; break; }
            _ = look.tick() => {
                let names = match lister.workspace_names().await {
                    Ok(names) => names,
                    Err(e) if first => return Err(e.into()),
                    Err(e) => {
                        tracing::warn!(error = %e, "listing workspaces failed; retrying");
                        continue;
                    }
                };
                for name in names {
                    if mounts.iter().any(|m| m.name == name) || failed.contains(&name) {
                        continue;
                    }
                    match mount_one(context, &password, dir, &name, at).await {
                        Ok(m) => mounts.push(m),
                        Err(e) => {
                            tell!("cannot mount {name}: {e:#}");
                            failed.insert(name);
                        }
                    }
                }
                if first {
                    say!(
                        "{} workspace(s) mounted under {}; Ctrl-C to stop",
                        mounts.len(),
                        dir.display()
                    );
                    first = false;
                }
            }
            _ = ticks.tick() => {
                // One unmounted from outside: its changes are saved and uploaded.
                while let Some(i) = mounts.iter().position(|m| m.mounted.finished()) {
                    let m = mounts.swap_remove(i);
                    say!("{} was unmounted", m.dir.display());
                    if let Err(e) = finish(m.vfs, &m.name).await {
                        tell!("saving {}: {e:#}", m.name);
                    }
                }
            }
        }
    }
    for m in mounts {
        unmount_when_closed(m.mounted, &m.dir).await?;
        finish(m.vfs, &m.name).await?;
    }
    Ok(())
}

#[cfg(unix)]
async fn mount_one(
    context: &Context,
    password: &Password,
    parent: &Path,
    name: &str,
    at: Option<&str>,
) -> anyhow::Result<MountedWorkspace> {
    let dir = parent.join(folder_name(name)?);
    if !strongroom_fuse::is_stale_mount(&dir) {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    prepare_mount_point(&dir)?;
    let (vfs, online) = open_vfs(context, password, name, at).await?;
    let mounted = strongroom_fuse::mount(vfs.clone(), &dir, name)
        .with_context(|| format!("cannot mount on {}", dir.display()))?;
    say!("{}", mounted_line(name, &dir, &vfs, online));
    Ok(MountedWorkspace {
        name: name.to_owned(),
        dir,
        vfs,
        mounted,
    })
}

/// Unmounts what `strongroom mount` mounted on `dir`.
#[cfg(unix)]
pub fn unmount(dir: &Path) -> anyhow::Result<()> {
    strongroom_fuse::unmount_path(dir, strongroom_fuse::is_stale_mount(dir))?;
    say!("Unmounted {}", dir.display());
    Ok(())
}

/// Mounts a workspace on a drive letter (`S:`) or a folder that does not exist yet, and serves
/// it until Ctrl-C.
#[cfg(windows)]
pub async fn mount(
    context: &Context,
    workspace: &str,
    dir: &Path,
    at: Option<&str>,
) -> anyhow::Result<()> {
    let password = context.unlock()?;
    let (vfs, online) = open_vfs(context, &password, workspace, at).await?;
    let mounted = strongroom_winfsp::mount(vfs.clone(), dir, &escaped(workspace))
        .with_context(|| format!("cannot mount on {}", dir.display()))?;
    say!(
        "{}; Ctrl-C to stop",
        mounted_line(workspace, dir, &vfs, online)
    );
    stop_requested().await?;
    tokio::task::spawn_blocking(move || mounted.unmount()).await?;
    say!("Unmounted {}", dir.display());
    finish(vfs, workspace).await
}

/// Mounts every workspace under `dir`, one folder each, until Ctrl-C.
#[cfg(windows)]
pub async fn mount_all(context: &Context, dir: &Path, at: Option<&str>) -> anyhow::Result<()> {
    let password = context.unlock()?;
    let names = context.open(&password)?.workspace_names().await?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut mounts = Vec::new();
    for name in names {
        let folder = match folder_name(&name) {
            Ok(folder) => folder,
            Err(e) => {
                tell!("cannot mount {name}: {e:#}");
                continue;
            }
        };
        // WinFsp creates the folder it mounts on.
        let point = dir.join(&folder);
        let (vfs, online) = open_vfs(context, &password, &name, at).await?;
        let mounted = strongroom_winfsp::mount(vfs.clone(), &point, &folder)
            .with_context(|| format!("cannot mount on {}", point.display()))?;
        say!("{}", mounted_line(&name, &point, &vfs, online));
        mounts.push((name, vfs, mounted));
    }
    say!("Ctrl-C to stop");
    stop_requested().await?;
    for (name, vfs, mounted) in mounts {
        tokio::task::spawn_blocking(move || mounted.unmount()).await?;
        finish(vfs, &name).await?;
    }
    Ok(())
}

/// A WinFsp mount belongs to the process serving it.
#[cfg(windows)]
pub fn unmount(_: &Path) -> anyhow::Result<()> {
    bail!("on Windows a mount stops with Ctrl-C in the window of its `strongroom mount`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workspace_folder_is_its_escaped_name_and_one_plain_component() {
        assert_eq!(folder_name("Projects").unwrap(), "Projects");
        assert_eq!(folder_name("Été 2026").unwrap(), "Été 2026");
        assert_eq!(
            folder_name("Evil\x1b]0;pwned\x07\u{202e}").unwrap(),
            "Evil\\u{1b}]0;pwned\\u{7}\\u{202e}"
        );
        for way_out in ["", ".", "..", "a/b", "/etc", "a/", "../x"] {
            assert!(folder_name(way_out).is_err(), "{way_out:?}");
        }
    }

    #[test]
    fn windows_refuses_separators_devices_and_trailing_dots() {
        for refused in [
            "a\\b", "C:x", "..\\x", "a|b", "what?", "a*", "x.", "x ", "CON", "con.txt", "Com1",
            "LPT9.log", "nul ",
        ] {
            assert!(windows_refuses(refused).is_some(), "{refused:?}");
        }
        for fine in ["Projects", "Console", "COM0", "LPT10", "a.b", "Été", "abÉ"] {
            assert_eq!(windows_refuses(fine), None, "{fine:?}");
        }
    }
}
