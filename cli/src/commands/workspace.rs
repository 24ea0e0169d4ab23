use strongroom_protocol::workspace::WorkspaceRole;

use crate::Context;
use crate::output::{say, table};

/// `strongroom workspace create NAME`
pub async fn create(context: &Context, name: &str) -> anyhow::Result<()> {
    let mut client = context.open_client()?;
    let realm = client.create_workspace(name).await?;
    say!("Workspace {name} created ({realm}).");
    Ok(())
}

/// `strongroom workspace list`
pub async fn list(context: &Context) -> anyhow::Result<()> {
    let mut client = context.open_client()?;
    let rows: Vec<Vec<String>> = client
        .workspaces()
        .await?
        .into_iter()
        .map(|w| {
            let members: Vec<String> = w
                .members
                .iter()
                .map(|(email, role)| format!("{email} ({role})"))
                .collect();
            vec![
                w.name.to_string(),
                w.role
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "removed".into()),
                members.join(", "),
                w.realm.to_string(),
            ]
        })
        .collect();
    table(&["NAME", "ROLE", "MEMBERS", "ID"], &rows);
    Ok(())
}

/// `strongroom workspace share NAME EMAIL --role R`
pub async fn share(context: &Context, name: &str, email: &str, role: &str) -> anyhow::Result<()> {
    let role: WorkspaceRole = role.parse().map_err(anyhow::Error::msg)?;
    let email = email.parse()?;
    let mut client = context.open_client()?;
    client.share_workspace(name, &email, role).await?;
    say!("{name} is shared with {email} as {role}.");
    Ok(())
}

/// `strongroom workspace unshare NAME EMAIL`
pub async fn unshare(context: &Context, name: &str, email: &str) -> anyhow::Result<()> {
    let email = email.parse()?;
    let mut client = context.open_client()?;
    client.unshare_workspace(name, &email).await?;
    say!("{email} was removed from {name}; its key was rotated.");
    Ok(())
}
