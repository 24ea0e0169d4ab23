//! Starting and stopping the server.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use strongroom_protocol::links::ServerAddr;
use tokio::sync::watch;

use crate::admin_token::AdminToken;
use crate::config::ServerConfig;
use crate::events::EventHub;
use crate::mail::{Mailer, OutboxMailer, SmtpMailer};
use crate::routes::router;
use crate::state::{AppState, Inner};
use crate::store::{FileBlockStore, SqliteStore};

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Runs the server until `shutdown` completes, then stops accepting, ends event streams and
/// lets requests in flight finish. Prints `listening on URL` on standard output once ready.
pub async fn run(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    create_private_dir(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let admin_token = AdminToken::load_or_create(&config.data_dir).with_context(|| {
        format!(
            "cannot read or write {}",
            AdminToken::path(&config.data_dir).display()
        )
    })?;
    let store = SqliteStore::open(&config.data_dir).context("cannot open the metadata database")?;
    let mailer: Arc<dyn Mailer> = match &config.smtp_url {
        Some(url) => Arc::new(SmtpMailer::new(url, &config.email_from)?),
        None => Arc::new(OutboxMailer::new(
            config.data_dir.join("outbox"),
            &config.email_from,
        )),
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let local = listener.local_addr()?;
    let public_url = match config.public_url {
        Some(url) => url,
        None => ServerAddr::parse(&format!("http://{local}"))?,
    };
    let (stop, stopping) = watch::channel(false);
    let state = AppState::new(Inner {
        store: Arc::new(store),
        blocks: Arc::new(FileBlockStore::new(config.data_dir.join("blocks"))),
        mailer,
        events: EventHub::new(),
        public_url: public_url.clone(),
        admin_token,
        invitation_lifetime: config.invitation_lifetime,
        shutdown: stopping,
        chains: Default::default(),
        realm_chains: Default::default(),
    });
    tracing::info!(%local, %public_url, data = %config.data_dir.display(), "strongroom-server started");
    println!("listening on http://{local}");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down");
            let _ = stop.send(true);
        })
        .await?;
    tracing::info!("stopped");
    Ok(())
}
