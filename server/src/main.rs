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
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRONGROOM_LOG")
                .unwrap_or_else(|_| "info,tower_http=info".into()),
        )
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
        } => {
            let config = ServerConfig {
                listen,
                data_dir: data.unwrap_or_else(ServerConfig::default_data_dir),
                smtp_url: smtp,
                email_from,
                public_url: public_url.as_deref().map(ServerAddr::parse).transpose()?,
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
    }
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
    let server = ServerAddr::parse(server)?;
    let token_file =
        token_file.unwrap_or_else(|| AdminToken::path(&ServerConfig::default_data_dir()));
    let token = std::fs::read_to_string(&token_file).with_context(|| {
        format!(
            "cannot read the administrator token {}",
            token_file.display()
        )
    })?;
    let response = reqwest::Client::new()
        .post(server.join("/admin/organizations"))
        .bearer_auth(token.trim())
        .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
        .body(CreateOrganizationRequest { organization }.encode())
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
    let created =
        CreateOrganizationResponse::decode(&body).context("unexpected answer from the server")?;
    println!("Organization {name} created. Send this bootstrap link to its first administrator:");
    println!("{}", created.bootstrap_url);
    Ok(())
}
