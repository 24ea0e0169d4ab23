//! The block cache's paths for a 1 MiB block: a hit in memory (the decrypted block), and a
//! miss in memory served by the disk cache (read from its pack, decrypted, digest checked:
//! what `load_block` does before it would go to the server).
//!
//! Run: `cargo bench -p strongroom-benches --bench block_cache`

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand_core::OsRng;
use strongroom_engine::block_cache::BlockCache;
use strongroom_engine::local_db::{Durability, LocalDb};
use strongroom_protocol::blocks::{open_block_owned, seal_block};
use strongroom_protocol::crypto::hash::Digest;
use strongroom_protocol::crypto::secret_key::SecretKey;
use strongroom_protocol::ids::{BlockId, RealmId};
use strongroom_protocol::manifests::BlockRef;

fn paths(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = Arc::new(
        LocalDb::open(
            &dir.path().join("local.sqlite"),
            SecretKey::generate(&mut OsRng),
        )
        .expect("local database"),
    );
    let cache = BlockCache::new(dir.path().join("blocks"), db, 256 << 20, 10 << 30);
    let key = SecretKey::generate(&mut OsRng);
    let realm = RealmId::generate(&mut OsRng);
    let plaintext = strongroom_testkit::random_bytes(1 << 20, 5);
    let id = BlockId::generate(&mut OsRng);
    let sealed = seal_block(&key, &realm, &id, 1, &plaintext, &mut OsRng);
    let reference = BlockRef {
        id,
        key_index: 1,
        offset: 0,
        len: plaintext.len() as u32,
        digest: Digest::of(&plaintext),
    };
    cache
        .write_unrecorded(&realm, &id, &sealed, false)
        .expect("written");
    cache
        .record(&realm, &[id], true, Durability::AtNextSync)
        .expect("recorded");
    cache.memory_put(&realm, &id, Arc::new(plaintext.clone()));

    let mut group = c.benchmark_group("block cache, 1 MiB block");
    group.throughput(Throughput::Bytes(plaintext.len() as u64));
    group.bench_function("memory hit", |b| {
        b.iter(|| cache.memory_get(&realm, &id).expect("in memory"))
    });
    group.bench_function("memory miss, disk hit (read, decrypt, verify)", |b| {
        b.iter(|| {
            let ciphertext = cache.read(&realm, &id).expect("reads").expect("cached");
            open_block_owned(&key, &realm, &reference, ciphertext).expect("opens")
        })
    });
    group.finish();
}

criterion_group!(benches, paths);
criterion_main!(benches);
