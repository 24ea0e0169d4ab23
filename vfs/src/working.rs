//! The content of a file being written through the mount: the blocks it had (stored, encrypted)
//! and the blocks changed since (plaintext, in memory), cut at [`BLOCK`] boundaries.
//!
//! Pure bookkeeping: where bytes come from and go. Loading a stored block and storing changed
//! ones is the caller's job ([`crate::fs`]), so that this logic is unit-tested without IO.

use std::collections::BTreeMap;

use strongroom_protocol::manifests::BlockRef;

/// The block size files are cut into when written through the mount.
pub const BLOCK: u64 = strongroom_engine::files::BLOCK_SIZE as u64;

/// Writes of at least this many bytes give a new block its full capacity at once.
const LARGE_WRITE: usize = 128 << 10;

/// An open file's content while it changes.
#[derive(Debug, Clone, Default)]
pub struct Working {
    /// Bytes.
    pub size: u64,
    /// Stored blocks not changed since, by offset (each starts at a multiple of [`BLOCK`]).
    pub stored: BTreeMap<u64, BlockRef>,
    /// Changed blocks, by block number: plaintext, at most [`BLOCK`] bytes, never beyond `size`.
    pub changed: BTreeMap<u64, Vec<u8>>,
    /// Whether anything changed since the last save.
    pub unsaved: bool,
}

/// Where the bytes of one block come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Changed in memory.
    Changed,
    /// A stored block.
    Stored(BlockRef),
    /// A hole: zeros.
    Hole,
}

impl Working {
    /// From a stored file; `None` if its blocks are not cut at [`BLOCK`] boundaries (a file
    /// stored with another block size), which must then be loaded whole.
    pub fn from_stored(size: u64, blocks: &[BlockRef]) -> Option<Self> {
        let mut stored = BTreeMap::new();
        for block in blocks {
            let aligned = block.offset % BLOCK == 0
                && (block.len as u64 == BLOCK || block.offset + block.len as u64 == size);
            if !aligned {
                return None;
            }
            stored.insert(block.offset, block.clone());
        }
        Some(Self {
            size,
            stored,
            changed: BTreeMap::new(),
            unsaved: false,
        })
    }

    /// Where block `n` comes from.
    pub fn source(&self, n: u64) -> Source {
        if self.changed.contains_key(&n) {
            Source::Changed
        } else if let Some(block) = self.stored.get(&(n * BLOCK)) {
            Source::Stored(block.clone())
        } else {
            Source::Hole
        }
    }

    /// The block numbers `[offset, offset + len)` touches.
    pub fn blocks_of(offset: u64, len: u64) -> std::ops::Range<u64> {
        if len == 0 {
            return 0..0;
        }
        offset / BLOCK..(offset + len).div_ceil(BLOCK)
    }

    /// Makes block `n` changed, with `content` (its bytes as they are now, from the stored block
    /// or zeros), before a write or a truncation edits it.
    pub fn adopt(&mut self, n: u64, mut content: Vec<u8>) {
        let extent = self.size.saturating_sub(n * BLOCK).min(BLOCK) as usize;
        content.resize(extent, 0);
        self.stored.remove(&(n * BLOCK));
        self.changed.insert(n, content);
    }

    /// Writes `data` at `offset`; every block it touches that lies within the current size must
    /// have been adopted first (see [`Working::needs`]).
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        let end = offset + data.len() as u64;
        for n in Self::blocks_of(offset, data.len() as u64) {
            let start = n * BLOCK;
            // A new block written in large pieces (a large file) is given its full size at
            // once: no regrowth and copying as the writes arrive.
            let block = self.changed.entry(n).or_insert_with(|| {
                if data.len() >= LARGE_WRITE {
                    Vec::with_capacity(BLOCK as usize)
                } else {
                    Vec::new()
                }
            });
            let from = offset.max(start);
            let to = end.min(start + BLOCK);
            let need = (to - start) as usize;
            if block.len() < need {
                block.resize(need, 0);
            }
            block[(from - start) as usize..need]
                .copy_from_slice(&data[(from - offset) as usize..(to - offset) as usize]);
        }
        // Blocks between the old end and this write stay holes; the old last block may now
        // need zeros up to the next boundary, which `adopt` gave it.
        if end > self.size {
            let last_old = self.size.div_ceil(BLOCK);
            for n in self.size / BLOCK..last_old.min(offset / BLOCK) {
                if let Some(block) = self.changed.get_mut(&n) {
                    block.resize(BLOCK as usize, 0);
                }
            }
            self.size = end;
        }
        self.unsaved = true;
    }

    /// The blocks a write at `offset` of `len` bytes, or a truncation to `offset`, must adopt
    /// first: touched blocks that hold bytes now and are not changed yet. For a write that
    /// extends the file, the old last block too (it grows to a full block with zeros).
    pub fn needs(&self, offset: u64, len: u64) -> Vec<u64> {
        let mut blocks: Vec<u64> = Self::blocks_of(offset, len).collect();
        if offset + len > self.size && !self.size.is_multiple_of(BLOCK) {
            blocks.push(self.size / BLOCK);
        }
        blocks.sort_unstable();
        blocks.dedup();
        blocks
            .into_iter()
            .filter(|n| n * BLOCK < self.size && !self.changed.contains_key(n))
            .collect()
    }

    /// Truncates (or extends with a hole) to `size`; the block that holds the new end must have
    /// been adopted first when it is cut (see [`Working::needs_for_truncate`]).
    pub fn truncate(&mut self, size: u64) {
        if size < self.size {
            let keep = size.div_ceil(BLOCK);
            self.changed.retain(|n, _| *n < keep);
            self.stored.retain(|offset, _| *offset < keep * BLOCK);
            if !size.is_multiple_of(BLOCK)
                && let Some(block) = self.changed.get_mut(&(size / BLOCK))
            {
                block.truncate((size % BLOCK) as usize);
            }
        } else if size > self.size && !self.size.is_multiple_of(BLOCK) {
            // The old last block grows with zeros up to the new size or the boundary.
            let n = self.size / BLOCK;
            let extent = (size - n * BLOCK).min(BLOCK) as usize;
            if let Some(block) = self.changed.get_mut(&n) {
                block.resize(extent, 0);
            }
        }
        self.size = size;
        self.unsaved = true;
    }

    /// The block a truncation to `size` must adopt first, if any.
    pub fn needs_for_truncate(&self, size: u64) -> Option<u64> {
        let n = if size < self.size {
            if size.is_multiple_of(BLOCK) {
                return None;
            }
            size / BLOCK
        } else if size > self.size && !self.size.is_multiple_of(BLOCK) {
            self.size / BLOCK
        } else {
            return None;
        };
        (!self.changed.contains_key(&n) && self.stored.contains_key(&(n * BLOCK))).then_some(n)
    }

    /// The changed blocks, to store, with their offsets; they then become stored blocks through
    /// [`Working::stored_as`].
    pub fn take_changed(&mut self) -> Vec<(u64, Vec<u8>)> {
        std::mem::take(&mut self.changed)
            .into_iter()
            .filter(|(_, data)| !data.is_empty())
            .map(|(n, data)| (n * BLOCK, data))
            .collect()
    }

    /// Records blocks that were stored.
    pub fn stored_as(&mut self, blocks: Vec<BlockRef>) {
        for block in blocks {
            self.stored.insert(block.offset, block);
        }
    }

    /// The stored block list, in order (what the file's new version lists).
    pub fn block_list(&self) -> Vec<BlockRef> {
        self.stored.values().cloned().collect()
    }

    /// Bytes held in memory.
    pub fn changed_bytes(&self) -> usize {
        self.changed.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model of the file's bytes, to compare with.
    fn apply(model: &mut Vec<u8>, offset: u64, data: &[u8]) {
        let end = offset as usize + data.len();
        if model.len() < end {
            model.resize(end, 0);
        }
        model[offset as usize..end].copy_from_slice(data);
    }

    /// The bytes of `w`, with stored blocks read from `store` (block offset -> bytes).
    fn bytes(w: &Working, store: &BTreeMap<u64, Vec<u8>>) -> Vec<u8> {
        let mut out = vec![0u8; w.size as usize];
        for n in 0..w.size.div_ceil(BLOCK) {
            let start = (n * BLOCK) as usize;
            let data = match w.source(n) {
                Source::Changed => w.changed[&n].clone(),
                Source::Stored(b) => store[&b.offset].clone(),
                Source::Hole => Vec::new(),
            };
            let len = data.len().min(out.len() - start);
            out[start..start + len].copy_from_slice(&data[..len]);
        }
        out
    }

    fn reference(offset: u64, len: usize) -> BlockRef {
        BlockRef {
            id: strongroom_protocol::ids::BlockId::from_bytes([offset as u8; 16]),
            key_index: 1,
            offset,
            len: len as u32,
            digest: strongroom_protocol::crypto::hash::Digest::of(b""),
        }
    }

    /// Writes, truncations and saves in a fixed pseudo-random order, against a plain byte model.
    #[test]
    fn random_edits_match_a_byte_model() {
        let mut seed = 7u64;
        let mut next = |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        let mut model: Vec<u8> = Vec::new();
        let mut store: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        let mut w = Working::default();
        for step in 0..400u64 {
            match next(10) {
                0..=5 => {
                    let offset = next(4 * BLOCK);
                    let len = next(BLOCK + 5000) as usize;
                    let data: Vec<u8> = (0..len).map(|i| (i as u64 + step) as u8 | 1).collect();
                    for n in w.needs(offset, len as u64) {
                        let content = match w.source(n) {
                            Source::Stored(b) => store[&b.offset].clone(),
                            _ => Vec::new(),
                        };
                        w.adopt(n, content);
                    }
                    w.write(offset, &data);
                    apply(&mut model, offset, &data);
                }
                6 | 7 => {
                    let size = next(4 * BLOCK);
                    if let Some(n) = w.needs_for_truncate(size) {
                        let content = match w.source(n) {
                            Source::Stored(b) => store[&b.offset].clone(),
                            _ => Vec::new(),
                        };
                        w.adopt(n, content);
                    }
                    w.truncate(size);
                    model.resize(size as usize, 0);
                }
                _ => {
                    let changed = w.take_changed();
                    let refs = changed
                        .iter()
                        .map(|(offset, data)| {
                            store.insert(*offset, data.clone());
                            reference(*offset, data.len())
                        })
                        .collect();
                    w.stored_as(refs);
                }
            }
            assert_eq!(w.size as usize, model.len(), "step {step}");
            assert!(bytes(&w, &store) == model, "content differs at step {step}");
            for block in w.block_list() {
                assert!(block.offset < w.size.max(1), "a block beyond the end");
            }
        }
    }

    #[test]
    fn misaligned_files_are_refused() {
        let blocks = [reference(0, 4096), reference(4096, 4096)];
        assert!(Working::from_stored(8192, &blocks).is_none());
        let blocks = [reference(0, BLOCK as usize), reference(BLOCK, 10)];
        assert!(Working::from_stored(BLOCK + 10, &blocks).is_some());
    }
}
