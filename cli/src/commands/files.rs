use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use strongroom_engine::files::{EntryKind, NoProgress, RestorePoint, SyncReport, WorkspacePath};
use strongroom_engine::{Client, EngineError};
use strongroom_protocol::time::Timestamp;

use crate::Context;
use crate::output::{say, table, tell, time};
use crate::progress::Bar;

fn path(text: &str) -> anyhow::Result<WorkspacePath> {
    Ok(text.parse::<WorkspacePath>()?)
}

/// Says whether a change reached the server or waits.
fn report(what: &str, outcome: Option<SyncReport>) {
    match outcome {
        Some(report) => {
            for conflict in &report.conflicts {
                say!("Conflict: the local version was kept as \"{conflict}\".");
            }
            say!("{what}.");
        }
        None => say!(
            "{what} on this device; it will be uploaded when the server is reachable (`strongroom sync`)."
        ),
    }
}

/// `strongroom ls WS[:/PATH]`
pub async fn ls(context: &Context, target: &str, at: Option<&str>) -> anyhow::Result<()> {
    let at = at.map(parse_time).transpose()?;
    let target = path(target)?;
    let mut client = context.open_client()?;
    // Entries the server leaves out are named after what it does serve, and the command fails.
    let (listed, failure) = match client.list(&target, at).await {
        Ok(listed) => (listed, None),
        Err(mut failure @ EngineError::PartlyWithheld { .. }) => {
            let EngineError::PartlyWithheld { listed, .. } = &mut failure else {
                unreachable!("matched above")
            };
            (std::mem::take(listed), Some(failure))
        }
        Err(e) => return Err(e.into()),
    };
    let rows: Vec<Vec<String>> = listed
        .into_iter()
        .map(|e| {
            let (kind, size) = match &e.kind {
                EntryKind::Folder => ("folder".to_string(), String::new()),
                EntryKind::File { size } => ("file".to_string(), size.to_string()),
                EntryKind::Symlink { target } => (format!("link -> {target}"), String::new()),
            };
            let state = if e.pending { "pending upload" } else { "" };
            vec![e.name.to_string(), kind, size, state.to_string()]
        })
        .collect();
    table(&["NAME", "KIND", "SIZE", ""], &rows);
    match failure {
        Some(failure) => Err(failure.into()),
        None => Ok(()),
    }
}

/// `strongroom put LOCAL WS:/PATH`
pub async fn put(context: &Context, local: &Path, target: &str) -> anyhow::Result<()> {
    let target = path(target)?;
    let mut client = context.open_client()?;
    let bar = Bar::new("put");
    let outcome = client.put(local, &target, &bar).await;
    bar.finish();
    report(&format!("Stored {} as {target}", local.display()), outcome?);
    Ok(())
}

/// `strongroom get WS:/PATH LOCAL` (`-`: standard output)
pub async fn get(
    context: &Context,
    source: &str,
    local: &Path,
    at: Option<&str>,
) -> anyhow::Result<()> {
    let at = at.map(parse_time).transpose()?;
    let source = path(source)?;
    let mut client = context.open_client()?;
    let bar = Bar::new("get");
    let outcome = if local == Path::new("-") {
        let mut stdout = std::io::stdout().lock();
        client.get_to_stream(&source, &mut stdout, &bar, at).await
    } else {
        client.get(&source, local, &bar, at).await
    };
    bar.finish();
    outcome?;
    Ok(())
}

/// `strongroom mkdir WS:/PATH`
pub async fn mkdir(context: &Context, target: &str) -> anyhow::Result<()> {
    let target = path(target)?;
    let mut client = context.open_client()?;
    report(&format!("Created {target}"), client.mkdir(&target).await?);
    Ok(())
}

/// `strongroom rm [-r] WS:/PATH`
pub async fn rm(context: &Context, target: &str, recursive: bool) -> anyhow::Result<()> {
    let target = path(target)?;
    let mut client = context.open_client()?;
    report(
        &format!("Removed {target}"),
        client.remove(&target, recursive).await?,
    );
    Ok(())
}

/// `strongroom mv WS:/FROM WS:/TO`
pub async fn mv(context: &Context, from: &str, to: &str) -> anyhow::Result<()> {
    let (from, to) = (path(from)?, path(to)?);
    let mut client = context.open_client()?;
    report(
        &format!("Moved {from} to {to}"),
        client.rename(&from, &to).await?,
    );
    Ok(())
}

/// `strongroom history WS:/PATH`
pub async fn history(context: &Context, target: &str) -> anyhow::Result<()> {
    let target = path(target)?;
    let mut client = context.open_client()?;
    let versions = client.history(&target).await?;
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|v| {
            vec![
                v.version.to_string(),
                time(v.timestamp),
                v.author_email.clone(),
                match &v.unreadable {
                    None => v.size.to_string(),
                    Some(_) => "does not open".to_owned(),
                },
            ]
        })
        .collect();
    table(&["VERSION", "TIME", "AUTHOR", "SIZE"], &rows);
    for v in &versions {
        if let Some(why) = &v.unreadable {
            tell!("Version {}: {why}", v.version);
        }
    }
    Ok(())
}

/// Reads `2026-11-27T10:00:00Z`, `2026-11-27 10:00:00` (UTC), or microseconds since the epoch.
pub fn parse_time(text: &str) -> anyhow::Result<Timestamp> {
    if let Ok(micros) = text.parse::<i64>() {
        return Ok(Timestamp::from_micros(micros));
    }
    let parsed = chrono::DateTime::parse_from_rfc3339(text)
        .map(|d| d.with_timezone(&chrono::Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").map(|n| n.and_utc())
        })
        .with_context(|| {
            format!(
                "{text:?} is not a time: use 2026-11-27T10:00:00Z or \"2026-11-27 10:00:00\" (UTC)"
            )
        })?;
    Ok(Timestamp::from_micros(parsed.timestamp_micros()))
}

/// `strongroom restore WS:/PATH (--version N | --at TIME)`
pub async fn restore(
    context: &Context,
    target: &str,
    version: Option<u32>,
    at: Option<&str>,
) -> anyhow::Result<()> {
    let target = path(target)?;
    let point = match (version, at) {
        (Some(n), None) => RestorePoint::Version(n),
        (None, Some(t)) => RestorePoint::At(parse_time(t)?),
        _ => anyhow::bail!("give either --version N or --at TIME"),
    };
    let mut client = context.open_client()?;
    report(
        &format!("Restored {target}"),
        client.restore(&target, point).await?,
    );
    Ok(())
}

/// `strongroom pin|unpin WS:/PATH`
pub async fn pin(context: &Context, target: &str, pinned: bool) -> anyhow::Result<()> {
    let target = path(target)?;
    let mut client = context.open_client()?;
    let blocks = client.set_pinned(&target, pinned).await?;
    if pinned {
        say!("{target} is available offline ({blocks} blocks kept on this device).");
    } else {
        say!("{target} is no longer kept offline.");
    }
    Ok(())
}

/// `strongroom status`
pub async fn status(context: &Context) -> anyhow::Result<()> {
    let client = context.open_client()?;
    let (pending, cached) = client.local_status()?;
    say!(
        "device: {} ({}) of {}",
        client.keys().device_label,
        client.keys().email,
        client.keys().organization
    );
    say!("server: {}", client.keys().server);
    say!("changes waiting for upload: {pending}");
    say!("block cache: {cached} bytes");
    Ok(())
}

/// `strongroom sync [WS] [--watch]`
pub async fn sync(context: &Context, workspace: Option<&str>, watch: bool) -> anyhow::Result<()> {
    let mut client = context.open_client()?;
    if !watch {
        return sync_once(&mut client, workspace).await;
    }
    // Keep syncing: on every event from the server, and at least every 30 seconds; when the
    // server is unreachable, retry with a growing delay (at most 30 seconds).
    let mut delay = Duration::from_secs(1);
    loop {
        match sync_once(&mut client, workspace).await {
            Ok(()) => {
                delay = Duration::from_secs(1);
                match client.events().await {
                    Ok(mut events) => {
                        let _ = tokio::time::timeout(Duration::from_secs(30), events.next()).await;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            }
            Err(e) if is_unreachable(&e) => {
                tell!(
                    "The server is unreachable; retrying in {} s.",
                    delay.as_secs()
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(e),
        }
    }
}

fn is_unreachable(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<EngineError>(),
        Some(EngineError::Unreachable { .. })
    )
}

async fn sync_once(client: &mut Client, workspace: Option<&str>) -> anyhow::Result<()> {
    let reports = match workspace {
        Some(name) => {
            client.process_messages().await?;
            client.sync_user_manifest().await?;
            vec![(
                name.to_owned(),
                client.sync_workspace(name, &NoProgress).await?,
            )]
        }
        None => client.sync_all().await?,
    };
    for (name, report) in reports {
        if report.uploaded + report.downloaded > 0 || !report.conflicts.is_empty() {
            say!(
                "{name}: {} uploaded, {} downloaded, {} conflict copies",
                report.uploaded,
                report.downloaded,
                report.conflicts.len()
            );
        }
    }
    Ok(())
}
