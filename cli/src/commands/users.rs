use crate::Context;
use crate::output::{say, table, time};

/// `strongroom user list`
pub async fn list(context: &Context) -> anyhow::Result<()> {
    let mut client = context.open_client()?;
    let users = client.users().await?;
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            let c = &u.certificate;
            vec![
                c.email.to_string(),
                c.human_name.to_string(),
                c.profile.to_string(),
                match &u.revoked {
                    Some(r) => format!("revoked {}", time(r.timestamp)),
                    None => "active".into(),
                },
                u.devices.len().to_string(),
                c.user_id.to_string(),
            ]
        })
        .collect();
    table(
        &["EMAIL", "NAME", "PROFILE", "STATUS", "DEVICES", "USER ID"],
        &rows,
    );
    Ok(())
}

/// `strongroom user revoke EMAIL`
pub async fn revoke(context: &Context, email: &str) -> anyhow::Result<()> {
    let email = email.parse()?;
    let mut client = context.open_client()?;
    client.revoke_user(&email).await?;
    say!("{email} was revoked: their devices can no longer connect.");
    Ok(())
}

/// `strongroom device list`
pub async fn devices(context: &Context) -> anyhow::Result<()> {
    let mut client = context.open_client()?;
    let me = client.keys().device_id;
    let devices = client.devices().await?;
    let rows: Vec<Vec<String>> = devices
        .iter()
        .map(|d| {
            vec![
                d.device_label.to_string(),
                time(d.timestamp),
                d.device_id.to_string(),
                if d.device_id == me {
                    "this device".into()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    table(&["LABEL", "ADDED", "DEVICE ID", ""], &rows);
    Ok(())
}
