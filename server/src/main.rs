//! `strongroom-server`: run the metadata server, or administer it.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::ids::OrganizationId;
use strongroom_protocol::links::ServerAddr;
use strongroom_protocol::wire::{
    CONTENT_TYPE, CreateOrganizationRequest, CreateOrganizationResponse, ErrorResponse,
    OrganizationQuotas,
};
use strongroom_server::ServerConfig;
use strongroom_server::admin_token::AdminToken;

#[derive(Parser)]
#[command(
    name = "strongroom-server",
    version,
    about = "The Strongroom metadata server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (SQLite and files under --data).
    Run {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:6770")]
        listen: SocketAddr,
        /// Data directory [default: $XDG_DATA_HOME/strongroom-server].
        #[arg(long)]
        data: Option<PathBuf>,
        /// SMTP server for invitation emails, e.g. smtp://mail.example.com:587?tls=required;
        /// without it, emails are written to DATA/outbox.
        #[arg(long)]
        smtp: Option<String>,
        /// Sender of invitation emails.
        #[arg(long, default_value = "Strongroom <no-reply@localhost>")]
        email_from: String,
        /// The URL clients use to reach this server, written into links
        /// [default: http:// and the listening address].
        #[arg(long)]
        public_url: Option<String>,
        /// How long an invitation stays valid (90s, 30m, 12h, 7d).
        #[arg(long, default_value = "7d", value_parser = strongroom_server::config::parse_duration)]
        invitation_ttl: std::time::Duration,
    },
    /// Manage organizations.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organization; prints its bootstrap URL as the last line.
    Create {
        /// Name of the organization (letters, digits, '-', '_').
        name: String,
        /// The server.
        #[arg(long, default_value = "http://127.0.0.1:6770")]
        server: String,
        /// The administrator token file [default: admin.token of the default data directory].
        #[arg(long)]
        admin_token_file: Option<PathBuf>,
    },
    /// Set an organization's quotas (what is not given stays as it was; `none` removes a limit)
    /// and show them with the bytes stored now.
    Quota {
        /// Name of the organization.
        name: String,
        /// Bytes of blocks, manifests, workspace certificates and messages stored (10GiB, 500MB,
        /// 1048576, none).
        #[arg(long)]
        storage: Option<String>,
        /// Workspaces (a number or none).
        #[arg(long)]
        workspaces: Option<String>,
        /// Devices of users who are not revoked (a number or none).
        #[arg(long)]
        devices: Option<String>,
        /// The server.
        #[arg(long, default_value = "http://127.0.0.1:6770")]
        server: String,
        /// The administrator token file [default: admin.token of the default data directory].
        #[arg(long)]
        admin_token_file: Option<PathBuf>,
    },
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRONGROOM_LOG")
                .unwrap_or_else(|_| "info,tower_http=info".into()),
        )
        .fmt_fields(strongroom_server::logging::escaped_fields())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(e) = real_main() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

#[tokio::main]
async fn real_main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run {
            listen,
            data,
            smtp,
            email_from,
            public_url,
            invitation_ttl,
        } => {
            let config = ServerConfig {
                listen,
                data_dir: data.unwrap_or_else(ServerConfig::default_data_dir),
                smtp_url: smtp,
                email_from,
                public_url: public_url.as_deref().map(ServerAddr::parse).transpose()?,
                invitation_lifetime: invitation_ttl,
            };
            strongroom_server::run(config, shutdown_signal()).await
        }
        Command::Org {
            command:
                OrgCommand::Create {
                    name,
                    server,
                    admin_token_file,
                },
        } => create_organization(&name, &server, admin_token_file).await,
        Command::Org {
            command:
                OrgCommand::Quota {
                    name,
                    storage,
                    workspaces,
                    devices,
                    server,
                    admin_token_file,
                },
        } => {
            let change = QuotaChange {
                storage_bytes: storage.as_deref().map(parse_size).transpose()?,
                workspaces: workspaces.as_deref().map(parse_count).transpose()?,
                devices: devices.as_deref().map(parse_count).transpose()?,
            };
            set_quotas(&name, &server, admin_token_file, change).await
        }
    }
}

/// What `org quota` changes: `None` keeps a quota, `Some(None)` removes it.
struct QuotaChange {
    storage_bytes: Option<Option<u64>>,
    workspaces: Option<Option<u64>>,
    devices: Option<Option<u64>>,
}

fn parse_count(text: &str) -> anyhow::Result<Option<u64>> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    Ok(Some(text.parse().with_context(|| {
        format!("{text:?} is not a number (or none)")
    })?))
}

/// `10GiB`, `500MB`, `1048576`, `none`.
fn parse_size(text: &str) -> anyhow::Result<Option<u64>> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .with_context(|| format!("{text:?} is not a size such as 10GiB or 500MB"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        other => bail!("{other:?} is not a size unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"),
    };
    number
        .checked_mul(factor)
        .map(Some)
        .with_context(|| format!("{text:?} is too large"))
}

/// The administrator token and the server's address.
fn admin_access(server: &str, token_file: Option<PathBuf>) -> anyhow::Result<(ServerAddr, String)> {
    let server = ServerAddr::parse(server)?;
    let token_file =
        token_file.unwrap_or_else(|| AdminToken::path(&ServerConfig::default_data_dir()));
    let token = std::fs::read_to_string(&token_file).with_context(|| {
        format!(
            "cannot read the administrator token {}",
            token_file.display()
        )
    })?;
    Ok((server, token.trim().to_owned()))
}

/// Sends an administrator request; returns the successful answer's body.
async fn admin_call(
    method: reqwest::Method,
    server: &ServerAddr,
    token: &str,
    path: &str,
    body: Vec<u8>,
) -> anyhow::Result<axum::body::Bytes> {
    let response = reqwest::Client::new()
        .request(method, server.join(path))
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
        .body(body)
        .send()
        .await
        .with_context(|| format!("cannot reach the server at {server}"))?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        match ErrorResponse::decode(&body) {
            Ok(e) => bail!("{}", e.message),
            Err(_) => bail!("the server answered {status}"),
        }
    }
    Ok(body)
}

async fn set_quotas(
    name: &str,
    server: &str,
    token_file: Option<PathBuf>,
    change: QuotaChange,
) -> anyhow::Result<()> {
    let organization: OrganizationId = name.parse()?;
    let (server, token) = admin_access(server, token_file)?;
    let path = format!("/admin/organizations/{organization}/quotas");
    let current = OrganizationQuotas::decode(
        &admin_call(reqwest::Method::GET, &server, &token, &path, Vec::new()).await?,
    )
    .context("unexpected answer from the server")?;
    let quotas = OrganizationQuotas {
        storage_bytes: change.storage_bytes.unwrap_or(current.storage_bytes),
        workspaces: change.workspaces.unwrap_or(current.workspaces),
        devices: change.devices.unwrap_or(current.devices),
        stored_bytes: None,
    };
    admin_call(
        reqwest::Method::PUT,
        &server,
        &token,
        &path,
        quotas.encode(),
    )
    .await?;
    let show = |v: Option<u64>| v.map_or_else(|| "no limit".to_owned(), |v| v.to_string());
    println!(
        "Quotas of {name}: storage {} bytes, {} workspaces, {} devices",
        show(quotas.storage_bytes),
        show(quotas.workspaces),
        show(quotas.devices)
    );
    if let Some(stored) = current.stored_bytes {
        println!("Stored now: {stored} bytes");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn create_organization(
    name: &str,
    server: &str,
    token_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let organization: OrganizationId = name.parse()?;
    let (server, token) = admin_access(server, token_file)?;
    let body = admin_call(
        reqwest::Method::POST,
        &server,
        &token,
        "/admin/organizations",
        CreateOrganizationRequest { organization }.encode(),
    )
    .await?;
    let created =
        CreateOrganizationResponse::decode(&body).context("unexpected answer from the server")?;
    println!("Organization {name} created. Send this bootstrap link to its first administrator:");
    println!("{}", created.bootstrap_url);
    Ok(())
}
