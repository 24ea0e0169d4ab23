use strongroom_engine::Client;
use strongroom_protocol::workspace::WorkspaceRole;

use crate::Context;
use crate::output::table;

/// `strongroom workspace create NAME`
pub async fn create(context: &Context, name: &str) -> anyhow::Result<()> {
    let mut client = Client::open(&context.home, &context.password()?)?;
    let realm = client.create_workspace(name).await?;
    println!("Workspace {name} created ({realm}).");
    Ok(())
}

/// `strongroom workspace list`
pub async fn list(context: &Context) -> anyhow::Result<()> {
    let mut client = Client::open(&context.home, &context.password()?)?;
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
    let mut client = Client::open(&context.home, &context.password()?)?;
    client.share_workspace(name, &email, role).await?;
    println!("{name} is shared with {email} as {role}.");
    Ok(())
}

/// `strongroom workspace unshare NAME EMAIL`
pub async fn unshare(context: &Context, name: &str, email: &str) -> anyhow::Result<()> {
    let email = email.parse()?;
    let mut client = Client::open(&context.home, &context.password()?)?;
    client.unshare_workspace(name, &email).await?;
    println!("{email} was removed from {name}; its key was rotated.");
    Ok(())
}
