//! Windows paths as WinFsp passes them (`\folder\file.txt`), and which workspace names Windows
//! can show.

use crate::status::{NtStatus, OBJECT_NAME_INVALID};

/// Characters a Windows file name cannot contain (besides control characters).
const FORBIDDEN: &[char] = &['\\', '/', ':', '*', '?', '"', '<', '>', '|'];

/// The components of a path relative to the volume's root; the root itself has none.
pub fn components(path: &str) -> Result<Vec<&str>, NtStatus> {
    let parts: Vec<&str> = path.split('\\').filter(|c| !c.is_empty()).collect();
    if parts.iter().any(|c| *c == "." || *c == "..") {
        return Err(OBJECT_NAME_INVALID);
    }
    Ok(parts)
}

/// A path split into its folder's components and its last name; `None` for the root.
pub fn parent_and_name(path: &str) -> Result<Option<(Vec<&str>, &str)>, NtStatus> {
    let mut parts = components(path)?;
    Ok(parts.pop().map(|name| (parts, name)))
}

/// Whether Windows can show `name`: workspaces written from Linux or macOS may hold names with
/// characters Windows forbids, or with a trailing dot or space, which Windows strips.
pub fn representable(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name
            .chars()
            .any(|c| c.is_control() || FORBIDDEN.contains(&c))
        && !name.ends_with(['.', ' '])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_components() {
        assert_eq!(components("\\").unwrap(), Vec::<&str>::new());
        assert_eq!(components("").unwrap(), Vec::<&str>::new());
        assert_eq!(
            components("\\Reports\\2026\\q3.xlsx").unwrap(),
            ["Reports", "2026", "q3.xlsx"]
        );
        assert_eq!(components("\\a\\\\b\\").unwrap(), ["a", "b"]);
        assert_eq!(components("\\a\\..\\b"), Err(OBJECT_NAME_INVALID));
    }

    #[test]
    fn the_last_name_is_split_from_its_folder() {
        assert_eq!(parent_and_name("\\").unwrap(), None);
        assert_eq!(
            parent_and_name("\\a\\b.txt").unwrap(),
            Some((vec!["a"], "b.txt"))
        );
        assert_eq!(parent_and_name("\\top").unwrap(), Some((vec![], "top")));
    }

    #[test]
    fn names_windows_cannot_show_are_recognized() {
        assert!(representable("Budget 2026 (final).xlsx"));
        assert!(representable("résumé.docx"));
        for bad in [
            "a:b",
            "what?",
            "x*y",
            "pipe|",
            "back\\slash",
            "dot.",
            "space ",
            "",
        ] {
            assert!(!representable(bad), "{bad:?}");
        }
        assert!(!representable(&"n".repeat(256)));
    }
}
