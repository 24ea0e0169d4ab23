//! Encoding and decoding a file's manifest, for a file of 10 blocks and one of 100,000 blocks.
//! A file of more than 4,096 blocks keeps its block list in index blocks: for 100,000 blocks
//! that is a manifest naming 25 index blocks plus the 25 block indexes, all measured here.
//!
//! Run: `cargo bench -p strongroom-benches --bench manifests`

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rand_core::OsRng;
use strongroom_protocol::crypto::hash::Digest;
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::ids::{BlockId, DeviceId, EntryId, RealmId};
use strongroom_protocol::manifests::{BlockIndex, BlockRef, Manifest, ManifestBody};
use strongroom_protocol::time::Timestamp;

/// Block references per index block (the engine's inline limit).
const PER_INDEX: usize = 4096;
const BLOCK: u64 = 1 << 20;

fn block(n: u64) -> BlockRef {
    BlockRef {
        id: BlockId::generate(&mut OsRng),
        key_index: 1,
        offset: n * BLOCK,
        len: BLOCK as u32,
        digest: Digest::of(&n.to_le_bytes()),
    }
}

/// A file of `blocks` blocks: its manifest and, beyond [`PER_INDEX`], its block indexes.
fn file(blocks: u64) -> (Manifest, Vec<BlockIndex>) {
    let all: Vec<BlockRef> = (0..blocks).map(block).collect();
    let (inline, indexes) = if all.len() <= PER_INDEX {
        (all, Vec::new())
    } else {
        let indexes: Vec<BlockIndex> = all
            .chunks(PER_INDEX)
            .map(|chunk| BlockIndex {
                blocks: chunk.to_vec(),
            })
            .collect();
        (Vec::new(), indexes)
    };
    let index = indexes
        .iter()
        .map(|i| BlockRef {
            len: i.encode().len() as u32,
            ..block(i.blocks[0].offset / BLOCK)
        })
        .collect();
    let manifest = Manifest {
        author: DeviceId::generate(&mut OsRng),
        timestamp: Timestamp::from_micros(1_800_000_000_000_000),
        realm: RealmId::generate(&mut OsRng),
        id: EntryId::generate(&mut OsRng),
        version: 7,
        body: ManifestBody::File {
            parent: EntryId::generate(&mut OsRng),
            size: blocks * BLOCK,
            block_size: BLOCK as u32,
            blocks: inline,
            index,
        },
    };
    (manifest, indexes)
}

fn encode_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("file manifest");
    for blocks in [10u64, 100_000] {
        let (manifest, indexes) = file(blocks);
        let encoded = manifest.encode();
        let encoded_indexes: Vec<Vec<u8>> = indexes.iter().map(|i| i.encode()).collect();
        group.bench_function(
            BenchmarkId::new("encode", format!("{blocks} blocks")),
            |b| {
                b.iter(|| {
                    let indexes: Vec<Vec<u8>> = indexes.iter().map(|i| i.encode()).collect();
                    (manifest.encode(), indexes)
                })
            },
        );
        group.bench_function(
            BenchmarkId::new("decode", format!("{blocks} blocks")),
            |b| {
                b.iter(|| {
                    let indexes: Vec<BlockIndex> = encoded_indexes
                        .iter()
                        .map(|i| BlockIndex::decode(i).expect("decodes"))
                        .collect();
                    (Manifest::decode(&encoded).expect("decodes"), indexes)
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, encode_decode);
criterion_main!(benches);
