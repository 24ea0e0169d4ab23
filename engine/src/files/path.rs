//! Paths inside workspaces: `WORKSPACE:/folder/file`.

use std::fmt;
use std::str::FromStr;

use strongroom_protocol::manifests::EntryName;

use crate::error::EngineError;

/// A path inside a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspacePath {
    /// The workspace's name.
    pub workspace: String,
    /// The components below its root (empty: the root).
    pub components: Vec<EntryName>,
}

impl WorkspacePath {
    /// The parent folder's path and this path's last name; `None` for the root.
    pub fn split_last(&self) -> Option<(WorkspacePath, &EntryName)> {
        let (last, parent) = self.components.split_last()?;
        Some((
            WorkspacePath {
                workspace: self.workspace.clone(),
                components: parent.to_vec(),
            },
            last,
        ))
    }

    /// This path with one more component.
    pub fn join(&self, name: &EntryName) -> WorkspacePath {
        let mut components = self.components.clone();
        components.push(name.clone());
        WorkspacePath {
            workspace: self.workspace.clone(),
            components,
        }
    }
}

impl FromStr for WorkspacePath {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid =
            |why: String| EngineError::InvalidInput(format!("invalid workspace path {s:?}: {why}"));
        let (workspace, path) = s.split_once(':').unwrap_or((s, "/"));
        if workspace.is_empty() {
            return Err(invalid("it needs a workspace name before `:`".into()));
        }
        if !path.is_empty() && !path.starts_with('/') {
            return Err(invalid("the path after `:` starts with `/`".into()));
        }
        let mut components = Vec::new();
        for part in path.split('/') {
            match part {
                "" | "." => continue,
                ".." => return Err(invalid("`..` is not allowed".into())),
                name => components.push(
                    name.parse::<EntryName>()
                        .map_err(|e| invalid(e.to_string()))?,
                ),
            }
        }
        Ok(Self {
            workspace: workspace.to_owned(),
            components,
        })
    }
}

impl fmt::Display for WorkspacePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:/", self.workspace)?;
        let names: Vec<&str> = self.components.iter().map(|c| c.as_str()).collect();
        f.write_str(&names.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        let p: WorkspacePath = "Docs:/a/b.txt".parse().unwrap();
        assert_eq!(p.workspace, "Docs");
        assert_eq!(p.components.len(), 2);
        assert_eq!(p.to_string(), "Docs:/a/b.txt");
        assert_eq!("Docs".parse::<WorkspacePath>().unwrap().components.len(), 0);
        assert_eq!(
            "Docs:/".parse::<WorkspacePath>().unwrap().components.len(),
            0
        );
        assert_eq!(
            "Docs://a//./b"
                .parse::<WorkspacePath>()
                .unwrap()
                .to_string(),
            "Docs:/a/b"
        );
    }

    #[test]
    fn bad_paths_are_refused() {
        for bad in [":/a", "Docs:/a/../b", "Docs:a", "Docs:/a\0b"] {
            assert!(bad.parse::<WorkspacePath>().is_err(), "{bad:?}");
        }
        let long = format!("Docs:/{}", "x".repeat(256));
        assert!(long.parse::<WorkspacePath>().is_err());
    }
}
