//! Inode numbers: each entry id gets one number the first time the kernel sees it, and keeps it
//! for the life of the mount, across renames and new versions (the id does not change). The
//! root folder is inode 1.

use std::collections::HashMap;

use strongroom_protocol::ids::EntryId;

/// An inode number.
pub type Ino = u64;

/// The inode of the workspace's root folder.
pub const ROOT_INO: Ino = 1;

/// Entry ids and inode numbers, both ways.
#[derive(Debug)]
pub struct InodeTable {
    by_ino: HashMap<Ino, EntryId>,
    by_id: HashMap<EntryId, Ino>,
    next: Ino,
}

impl InodeTable {
    /// A table that knows only the root.
    pub fn new(root: EntryId) -> Self {
        Self {
            by_ino: HashMap::from([(ROOT_INO, root)]),
            by_id: HashMap::from([(root, ROOT_INO)]),
            next: ROOT_INO + 1,
        }
    }

    /// The inode of `id`, numbered now if it has none yet.
    pub fn ino_of(&mut self, id: EntryId) -> Ino {
        if let Some(ino) = self.by_id.get(&id) {
            return *ino;
        }
        let ino = self.next;
        self.next += 1;
        self.by_ino.insert(ino, id);
        self.by_id.insert(id, ino);
        ino
    }

    /// How many inodes are numbered.
    pub fn len(&self) -> usize {
        self.by_ino.len()
    }

    /// Never: the root is always there.
    pub fn is_empty(&self) -> bool {
        self.by_ino.is_empty()
    }

    /// Gives `id` a new number (its old one still leads to it, for handles open on it).
    pub fn renumber(&mut self, id: EntryId) -> Ino {
        if self.by_id.get(&id) == Some(&ROOT_INO) {
            return ROOT_INO;
        }
        let ino = self.next;
        self.next += 1;
        self.by_ino.insert(ino, id);
        self.by_id.insert(id, ino);
        ino
    }

    /// The inode of `id` if it has one (the kernel may hold it in its caches).
    pub fn find(&self, id: &EntryId) -> Option<Ino> {
        self.by_id.get(id).copied()
    }

    /// The entry of an inode the kernel was given.
    pub fn id_of(&self, ino: Ino) -> Option<EntryId> {
        self.by_ino.get(&ino).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> EntryId {
        EntryId::from_bytes([n; 16])
    }

    #[test]
    fn numbers_are_stable_and_distinct() {
        let mut table = InodeTable::new(id(0));
        assert_eq!(table.ino_of(id(0)), ROOT_INO);
        let a = table.ino_of(id(1));
        let b = table.ino_of(id(2));
        assert_ne!(a, b);
        assert_ne!(a, ROOT_INO);
        assert_eq!(table.ino_of(id(1)), a, "the same entry keeps its number");
        assert_eq!(table.id_of(b), Some(id(2)));
        assert_eq!(table.id_of(999), None);
        assert_eq!(table.find(&id(2)), Some(b));
        assert_eq!(table.find(&id(3)), None, "finding does not number");
        let renumbered = table.renumber(id(2));
        assert_ne!(renumbered, b);
        assert_eq!(table.ino_of(id(2)), renumbered);
        assert_eq!(
            table.id_of(b),
            Some(id(2)),
            "the old number still leads to it"
        );
        assert_eq!(table.renumber(id(0)), ROOT_INO, "the root keeps its number");
    }
}
