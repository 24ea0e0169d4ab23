//! Invitation emails: by SMTP when configured, else into `DATA/outbox/` as `.eml` files.

use std::path::PathBuf;

use async_trait::async_trait;
use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use strongroom_protocol::ids::Email;
use strongroom_protocol::wire::EmailDelivery;

/// Why an email could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The message could not be built (bad sender address...).
    #[error("the invitation email could not be built: {0}")]
    Build(String),
    /// The SMTP exchange failed.
    #[error("the invitation email could not be sent by SMTP: {0}")]
    Smtp(String),
    /// The outbox could not be written.
    #[error("the invitation email could not be written to the outbox: {0}")]
    Outbox(#[from] std::io::Error),
}

/// An email to send.
#[derive(Debug, Clone)]
pub struct Mail {
    /// Recipient.
    pub to: Email,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// Sends emails.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Sends one email; says how it was delivered.
    async fn send(&self, mail: Mail) -> Result<EmailDelivery, MailError>;
}

fn build(from: &str, mail: &Mail) -> Result<Message, MailError> {
    let from: Mailbox = from
        .parse()
        .map_err(|e| MailError::Build(format!("sender {from:?}: {e}")))?;
    let to: Mailbox = mail
        .to
        .as_str()
        .parse()
        .map_err(|e| MailError::Build(format!("recipient: {e}")))?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(mail.subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .body(mail.body.clone())
        .map_err(|e| MailError::Build(e.to_string()))
}

/// Sends by SMTP (`smtp://host:port`, `smtp://host:port?tls=required`, `smtps://host:port`).
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: String,
}

impl SmtpMailer {
    /// A mailer for an SMTP URL.
    pub fn new(url: &str, from: &str) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Build(format!("SMTP URL: {e}")))?
            .build();
        build(
            from,
            &Mail {
                to: "check@example.com".parse().expect("valid"),
                subject: String::new(),
                body: String::new(),
            },
        )?;
        Ok(Self {
            transport,
            from: from.to_owned(),
        })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: Mail) -> Result<EmailDelivery, MailError> {
        let message = build(&self.from, &mail)?;
        self.transport
            .send(message)
            .await
            .map_err(|e| MailError::Smtp(e.to_string()))?;
        Ok(EmailDelivery::Sent)
    }
}

/// Writes each email as an `.eml` file (mode 0600) in a folder.
pub struct OutboxMailer {
    dir: PathBuf,
    from: String,
}

impl OutboxMailer {
    /// A mailer writing into `dir`.
    pub fn new(dir: PathBuf, from: &str) -> Self {
        Self {
            dir,
            from: from.to_owned(),
        }
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, mail: Mail) -> Result<EmailDelivery, MailError> {
        let message = build(&self.from, &mail)?;
        let dir = self.dir.clone();
        let name = format!(
            "{}-{}.eml",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros())
                .unwrap_or(0),
            mail.to.as_str().replace(['/', '\\'], "_")
        );
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            std::fs::create_dir_all(&dir)?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(dir.join(name))?;
            file.write_all(&message.formatted())?;
            file.sync_all()
        })
        .await
        .map_err(|e| MailError::Outbox(std::io::Error::other(e)))??;
        Ok(EmailDelivery::Outbox)
    }
}
