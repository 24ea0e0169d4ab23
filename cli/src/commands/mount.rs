//! `strongroom mount WS DIR [--at TIME]` and `strongroom unmount DIR`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use strongroom_engine::client::Client;
use strongroom_vfs::Vfs;

use super::files::parse_time;
use crate::Context;

/// Mounts a workspace on `dir` and serves it until Ctrl-C, SIGTERM or `strongroom unmount`.
#[cfg(unix)]
pub async fn mount(
    context: &Context,
    workspace: &str,
    dir: &Path,
    at: Option<&str>,
) -> anyhow::Result<()> {
    let at = at.map(parse_time).transpose()?;
    if strongroom_fuse::is_stale_mount(dir) {
        // A mount whose process was killed: detach it so that the folder can be mounted again.
        tracing::warn!(dir = %dir.display(), "cleaning up a stale mount");
        strongroom_fuse::unmount_path(dir, true).with_context(|| {
            format!("{} is a stale mount that cannot be cleaned", dir.display())
        })?;
    }
    if !dir.is_dir() {
        bail!("{} is not a folder (create it first)", dir.display());
    }
    let client = Client::open(&context.home, &context.password()?)?;
    let session = client.open_session(workspace, at).await?;
    let online = session.online();
    let vfs = Arc::new(Vfs::new(
        session,
        tokio::runtime::Handle::current(),
        context.home.dir().to_path_buf(),
    ));
    let read_only = vfs.read_only();
    vfs.spawn_sync(std::time::Duration::from_secs(2));
    let mounted = strongroom_fuse::mount(vfs.clone(), dir, workspace)
        .with_context(|| format!("cannot mount on {}", dir.display()))?;
    println!(
        "Mounted {workspace} on {}{}{}; Ctrl-C or `strongroom unmount {}` to stop",
        dir.display(),
        if read_only { " (read-only)" } else { "" },
        if online { "" } else { " (offline)" },
        dir.display()
    );
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut ticks = tokio::time::interval(std::time::Duration::from_millis(200));
    let stopped_outside = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break false,
            _ = terminate.recv() => break false,
            _ = ticks.tick() => {
                if mounted.finished() {
                    break true;
                }
            }
        }
    };
    if stopped_outside {
        println!("{} was unmounted", dir.display());
    } else {
        tokio::task::spawn_blocking(move || mounted.unmount())
            .await?
            .with_context(|| format!("cannot unmount {}", dir.display()))?;
        println!("Unmounted {}", dir.display());
    }
    // Files still open when the mount ended are saved; then what waits is uploaded.
    let saving = vfs.clone();
    tokio::task::spawn_blocking(move || saving.save_all()).await??;
    if !read_only {
        if vfs.push_now().await? {
            println!("Every change is uploaded");
        } else {
            println!(
                "The server is unreachable: changes are kept on this device until the next sync"
            );
        }
    }
    Ok(())
}

/// Mounting needs FUSE, which this platform's build lacks.
#[cfg(not(unix))]
pub async fn mount(_: &Context, _: &str, _: &Path, _: Option<&str>) -> anyhow::Result<()> {
    bail!("mounting is not available in this build")
}

/// Unmounts what `strongroom mount` mounted on `dir`.
#[cfg(unix)]
pub fn unmount(dir: &Path) -> anyhow::Result<()> {
    strongroom_fuse::unmount_path(dir, strongroom_fuse::is_stale_mount(dir))?;
    println!("Unmounted {}", dir.display());
    Ok(())
}

/// Mounting needs FUSE, which this platform's build lacks.
#[cfg(not(unix))]
pub fn unmount(_: &Path) -> anyhow::Result<()> {
    bail!("mounting is not available in this build")
}
