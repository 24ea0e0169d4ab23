use anyhow::Context as _;
use strongroom_engine::bootstrap::{NewUser, bootstrap, default_device_label};
use strongroom_protocol::links::BootstrapLink;

use crate::Context;
use crate::output::say;

/// `strongroom bootstrap URL --email E --name N [--label L]`
pub async fn run(
    context: &Context,
    url: &str,
    email: &str,
    name: &str,
    label: Option<String>,
) -> anyhow::Result<()> {
    let link: BootstrapLink = url.parse()?;
    let user = NewUser {
        email: email.parse()?,
        human_name: name.parse()?,
        device_label: match label {
            Some(l) => l.parse()?,
            None => default_device_label(),
        },
    };
    context.ensure_no_device()?;
    let password = context.new_password()?;
    let keys = bootstrap(&context.home, &link, user, &password, context.kdf)
        .await
        .context("bootstrap failed")?;
    context.created_device();
    say!(
        "Organization {} bootstrapped on {}. You are {} (ADMIN); this device is {} ({}).",
        keys.organization,
        keys.server,
        keys.email,
        keys.device_label,
        keys.device_id
    );
    Ok(())
}
