//! `strongroom`: the Strongroom command line (DESIGN.md §10).

/// mimalloc keeps freed block buffers for reuse: the read and write paths allocate a megabyte per
/// block, which the system allocator returns to the kernel and faults back in every time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod commands;
mod output;
mod progress;
mod prompt;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use strongroom_engine::device_file::{self, KdfCost, KdfPolicy};
use strongroom_engine::home::Home;
use strongroom_engine::password::Password;
use strongroom_engine::{Client, EngineError};

use crate::output::tell;

/// Zero-trust, end-to-end encrypted file sharing.
#[derive(Parser)]
#[command(name = "strongroom", version)]
struct Cli {
    /// This device's directory [env: STRONGROOM_HOME; default: $XDG_DATA_HOME/strongroom].
    #[arg(long, global = true)]
    home: Option<PathBuf>,
    /// Read the device password from the first line of this file (else STRONGROOM_PASSWORD, else a prompt).
    #[arg(long, global = true)]
    password_file: Option<PathBuf>,
    /// Protect new device files with a weak password key (256 KiB, 1 pass), and open such
    /// files. For tests and demos only: others are refused.
    #[arg(long, global = true, env = "STRONGROOM_INSECURE_FAST_KDF", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::SetTrue)]
    insecure_fast_kdf: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Bootstrap an organization from the link its server administrator gave you.
    Bootstrap {
        /// The bootstrap link.
        url: String,
        /// Your email.
        #[arg(long)]
        email: String,
        /// Your name.
        #[arg(long)]
        name: String,
        /// This device's label [default: the host name].
        #[arg(long)]
        label: Option<String>,
    },
    /// Invite a person (ADMIN only) or a new device of yours; prints the link as the last line.
    Invite {
        #[command(subcommand)]
        what: InviteCommand,
    },
    /// Greet an invited person or device: compare codes, then certify them.
    Greet {
        /// The invitation link or its token.
        invitation: String,
    },
    /// Claim an invitation: compare codes with the greeter; writes this device's file.
    Claim {
        /// The invitation link.
        url: String,
        /// Your name (user invitations) [default: from your email].
        #[arg(long)]
        name: Option<String>,
        /// This device's label [default: the host name].
        #[arg(long)]
        label: Option<String>,
    },
    /// Users of the organization.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Your devices.
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
    },
    /// Workspaces: create, list, share, unshare.
    Workspace {
        #[command(subcommand)]
        command: WorkspaceCommand,
    },
    /// List a folder: `ls WS:/PATH`.
    Ls {
        /// `WORKSPACE[:/PATH]`.
        path: String,
        /// List it as it was at this time (UTC): 2026-11-27T10:00:00Z.
        #[arg(long)]
        at: Option<String>,
    },
    /// Copy a local file or folder into a workspace (durable when this returns).
    Put {
        /// The local file or folder.
        local: PathBuf,
        /// `WORKSPACE:/PATH` (an existing folder receives the copy inside it).
        path: String,
    },
    /// Copy a file or folder out of a workspace.
    Get {
        /// `WORKSPACE:/PATH`.
        path: String,
        /// The local destination; `-` writes a file to standard output.
        local: PathBuf,
        /// Copy it as it was at this time (UTC): 2026-11-27T10:00:00Z.
        #[arg(long)]
        at: Option<String>,
    },
    /// Create a folder (and its missing parents).
    Mkdir {
        /// `WORKSPACE:/PATH`.
        path: String,
    },
    /// Remove a file or folder (its history stays and it can be restored).
    Rm {
        /// Remove a folder and everything in it.
        #[arg(short, long)]
        recursive: bool,
        /// `WORKSPACE:/PATH`.
        path: String,
    },
    /// Move or rename within a workspace.
    Mv {
        /// `WORKSPACE:/FROM`.
        from: String,
        /// `WORKSPACE:/TO`.
        to: String,
    },
    /// Upload local changes and take the other devices' changes.
    Sync {
        /// Only this workspace.
        workspace: Option<String>,
        /// Keep running: sync on every change, retry while the server is unreachable.
        #[arg(long)]
        watch: bool,
    },
    /// What waits for upload, and the cache.
    Status,
    /// Every version of a file or folder.
    History {
        /// `WORKSPACE:/PATH`.
        path: String,
    },
    /// Restore a version (also of a removed file) as a new version.
    Restore {
        /// `WORKSPACE:/PATH`.
        path: String,
        /// The version number.
        #[arg(long, conflicts_with = "at")]
        version: Option<u32>,
        /// The version current at this time (UTC): 2026-11-27T10:00:00Z.
        #[arg(long)]
        at: Option<String>,
    },
    /// Mount a workspace on a folder, in the foreground (Ctrl-C or SIGTERM unmounts).
    Mount {
        /// The workspace.
        workspace: String,
        /// An existing empty folder.
        dir: PathBuf,
        /// A read-only view of the workspace as it was at this time (UTC).
        #[arg(long)]
        at: Option<String>,
    },
    /// Mount every workspace under one folder (one subfolder each, named after it; workspaces
    /// shared later appear as they arrive), in the foreground.
    MountAll {
        /// The folder (created if needed).
        dir: PathBuf,
        /// A read-only view of every workspace as it was at this time (UTC).
        #[arg(long)]
        at: Option<String>,
    },
    /// Unmount what `strongroom mount` mounted.
    Unmount {
        /// The mounted folder.
        dir: PathBuf,
    },
    /// Keep a file or folder available offline.
    Pin {
        /// `WORKSPACE:/PATH`.
        path: String,
    },
    /// Stop keeping a file or folder available offline.
    Unpin {
        /// `WORKSPACE:/PATH`.
        path: String,
    },
}

#[derive(Subcommand)]
enum WorkspaceCommand {
    /// Create a workspace.
    Create {
        /// Its name.
        name: String,
    },
    /// List your workspaces.
    List,
    /// Give a user a role: reader, contributor, manager or owner.
    Share {
        /// The workspace.
        name: String,
        /// The user's email.
        email: String,
        /// The role.
        #[arg(long)]
        role: String,
    },
    /// Remove a user (the workspace's key is rotated).
    Unshare {
        /// The workspace.
        name: String,
        /// The user's email.
        email: String,
    },
}

#[derive(Subcommand)]
enum InviteCommand {
    /// Invite a person by email; the server emails them the link.
    User {
        /// Their email.
        email: String,
        /// Make them an ADMIN.
        #[arg(long)]
        admin: bool,
    },
    /// Invite a new device of yours.
    Device,
    /// List the pending invitations you may greet (an ADMIN: every one, with who made it).
    List,
    /// Cancel a pending invitation (yours; an ADMIN: any): its link stops working.
    Cancel {
        /// The invitation link, its token, or its id (from `invite list`).
        invitation: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// List users, with their profile and status.
    List,
    /// Revoke a user (ADMIN only): their devices are refused from now on.
    Revoke {
        /// Their email.
        email: String,
    },
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// List your devices.
    List,
}

/// What every command gets from the global options.
pub struct Context {
    /// The device's home.
    pub home: Home,
    password_file: Option<PathBuf>,
    /// The password key cost for new device files.
    pub kdf: KdfCost,
    /// Which device files may be opened (weak ones only with `--insecure-fast-kdf`).
    kdf_policy: KdfPolicy,
    /// Whether this command said already that its device file is weak.
    told_weak: std::sync::atomic::AtomicBool,
}

impl Context {
    /// Opens the device: [`Context::unlock`], then [`Context::open`].
    pub fn open_client(&self) -> anyhow::Result<Client> {
        let password = self.unlock()?;
        self.open(&password)
    }

    /// The password of the existing device, asked for only once the device file's header shows
    /// a password key the policy admits: a weak one is refused first, or (with the weak
    /// setting) named on standard error.
    pub fn unlock(&self) -> anyhow::Result<Password> {
        let path = self.home.device_file();
        let cost = device_file::kdf_cost(&path)?;
        if !self.kdf_policy.admits(cost) {
            return Err(EngineError::WeakPasswordKey { path, cost }.into());
        }
        if cost.is_weak() {
            self.tell_weak(cost);
        }
        Ok(Password::obtain(
            self.password_file.as_deref(),
            "Device password: ",
            false,
        )?)
    }

    /// Opens the device with the password from [`Context::unlock`] (which the engine checks
    /// against the same policy).
    pub fn open(&self, password: &Password) -> anyhow::Result<Client> {
        Ok(Client::open(&self.home, password, self.kdf_policy)?)
    }

    /// After a command wrote a new device file: says so if its key is weak.
    pub fn created_device(&self) {
        if self.kdf.is_weak() {
            self.tell_weak(self.kdf);
        }
    }

    /// One line per command, on standard error, for a weak device file.
    fn tell_weak(&self, cost: KdfCost) {
        if !self
            .told_weak
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tell!(
                "warning: this device file is protected by a weak password key ({cost}, \
                 --insecure-fast-kdf), for tests and demos only"
            );
        }
    }

    /// Refuses early (before asking for a password) when the home holds a device already.
    pub fn ensure_no_device(&self) -> anyhow::Result<()> {
        if self.home.device_file().exists() {
            return Err(EngineError::DeviceExists(self.home.dir().to_path_buf()).into());
        }
        Ok(())
    }

    /// A password for a new device file.
    pub fn new_password(&self) -> anyhow::Result<Password> {
        Ok(Password::obtain(
            self.password_file.as_deref(),
            "Choose a password for this device: ",
            true,
        )?)
    }
}

fn main() {
    tracing_subscriber::fmt()
        .fmt_fields(output::log_fields())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRONGROOM_LOG")
                // fuser warns when it unmounts a folder that was already unmounted (by
                // `strongroom unmount`), which is how a mount normally ends.
                .unwrap_or_else(|_| "warn,fuser::mnt=error".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let context = Context {
        home: Home::resolve(cli.home),
        password_file: cli.password_file,
        kdf: if cli.insecure_fast_kdf {
            KdfCost::INSECURE_FAST
        } else {
            KdfCost::DEFAULT
        },
        kdf_policy: KdfPolicy::allowing_weak(cli.insecure_fast_kdf),
        told_weak: Default::default(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("starting the async runtime");
    if let Err(e) = runtime.block_on(run(context, cli.command)) {
        // An error's sentence may quote names and the server's words: escaped, as all output.
        tell!("error: {}", one_sentence(&e));
        std::process::exit(1);
    }
    // Blocking prompt threads may still wait on standard input; do not wait for them.
    runtime.shutdown_background();
}

async fn run(context: Context, command: Command) -> anyhow::Result<()> {
    use commands::*;
    match command {
        Command::Bootstrap {
            url,
            email,
            name,
            label,
        } => bootstrap::run(&context, &url, &email, &name, label).await,
        Command::Invite {
            what: InviteCommand::User { email, admin },
        } => invite::user(&context, &email, admin).await,
        Command::Invite {
            what: InviteCommand::Device,
        } => invite::device(&context).await,
        Command::Invite {
            what: InviteCommand::List,
        } => invite::list(&context).await,
        Command::Invite {
            what: InviteCommand::Cancel { invitation },
        } => invite::cancel(&context, &invitation).await,
        Command::Greet { invitation } => invite::greet(&context, &invitation).await,
        Command::Claim { url, name, label } => invite::claim(&context, &url, name, label).await,
        Command::User {
            command: UserCommand::List,
        } => users::list(&context).await,
        Command::User {
            command: UserCommand::Revoke { email },
        } => users::revoke(&context, &email).await,
        Command::Device {
            command: DeviceCommand::List,
        } => users::devices(&context).await,
        Command::Workspace { command } => match command {
            WorkspaceCommand::Create { name } => workspace::create(&context, &name).await,
            WorkspaceCommand::List => workspace::list(&context).await,
            WorkspaceCommand::Share { name, email, role } => {
                workspace::share(&context, &name, &email, &role).await
            }
            WorkspaceCommand::Unshare { name, email } => {
                workspace::unshare(&context, &name, &email).await
            }
        },
        Command::Ls { path, at } => files::ls(&context, &path, at.as_deref()).await,
        Command::Put { local, path } => files::put(&context, &local, &path).await,
        Command::Get { path, local, at } => {
            files::get(&context, &path, &local, at.as_deref()).await
        }
        Command::Mkdir { path } => files::mkdir(&context, &path).await,
        Command::Rm { recursive, path } => files::rm(&context, &path, recursive).await,
        Command::Mv { from, to } => files::mv(&context, &from, &to).await,
        Command::Sync { workspace, watch } => {
            files::sync(&context, workspace.as_deref(), watch).await
        }
        Command::Status => files::status(&context).await,
        Command::History { path } => files::history(&context, &path).await,
        Command::Restore { path, version, at } => {
            files::restore(&context, &path, version, at.as_deref()).await
        }
        Command::Mount { workspace, dir, at } => {
            commands::mount::mount(&context, &workspace, &dir, at.as_deref()).await
        }
        Command::MountAll { dir, at } => {
            commands::mount::mount_all(&context, &dir, at.as_deref()).await
        }
        Command::Unmount { dir } => commands::mount::unmount(&dir),
        Command::Pin { path } => files::pin(&context, &path, true).await,
        Command::Unpin { path } => files::pin(&context, &path, false).await,
    }
}

/// The error and its causes as one sentence, skipping causes whose words the sentence already
/// holds (many errors quote their cause).
fn one_sentence(error: &anyhow::Error) -> String {
    let mut sentence = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !sentence.contains(&text) {
            if !sentence.is_empty() {
                sentence.push_str(": ");
            }
            sentence.push_str(&text);
        }
    }
    sentence
}
