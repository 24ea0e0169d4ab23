//! The ciphers and the hash on every byte: XChaCha20-Poly1305 (manifests, keys, messages),
//! XAES-256-GCM (file blocks) and BLAKE3 (every block's digest), at 4 KiB, 64 KiB and 1 MiB.
//!
//! Run: `cargo bench -p strongroom-benches --bench crypto`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand_core::OsRng;
use strongroom_protocol::blocks::{open_block_owned, seal_block};
use strongroom_protocol::crypto::hash::Digest;
use strongroom_protocol::crypto::secret_key::SecretKey;
use strongroom_protocol::ids::{BlockId, RealmId};
use strongroom_protocol::manifests::BlockRef;

const SIZES: [(usize, &str); 3] = [(4 << 10, "4 KiB"), (64 << 10, "64 KiB"), (1 << 20, "1 MiB")];

fn data(len: usize) -> Vec<u8> {
    strongroom_testkit::random_bytes(len, len as u64)
}

fn xchacha20_poly1305(c: &mut Criterion) {
    let key = SecretKey::generate(&mut OsRng);
    let mut group = c.benchmark_group("XChaCha20-Poly1305");
    for (len, label) in SIZES {
        let plaintext = data(len);
        let sealed = key.encrypt(&mut OsRng, &plaintext, b"aad");
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::new("encrypt", label), |b| {
            b.iter(|| key.encrypt(&mut OsRng, &plaintext, b"aad"))
        });
        group.bench_function(BenchmarkId::new("decrypt", label), |b| {
            b.iter(|| key.decrypt(&sealed, b"aad").expect("decrypts"))
        });
    }
    group.finish();
}

fn xaes_256_gcm_blocks(c: &mut Criterion) {
    let key = SecretKey::generate(&mut OsRng);
    let realm = RealmId::generate(&mut OsRng);
    let mut group = c.benchmark_group("XAES-256-GCM block");
    for (len, label) in SIZES {
        let plaintext = data(len);
        let id = BlockId::generate(&mut OsRng);
        let sealed = seal_block(&key, &realm, &id, 1, &plaintext, &mut OsRng);
        let reference = BlockRef {
            id,
            key_index: 1,
            offset: 0,
            len: len as u32,
            digest: Digest::of(&plaintext),
        };
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::new("seal", label), |b| {
            b.iter(|| seal_block(&key, &realm, &id, 1, &plaintext, &mut OsRng))
        });
        // What every read of a block does: decrypt, then check the digest its manifest records.
        group.bench_function(BenchmarkId::new("open and verify", label), |b| {
            b.iter_batched(
                || sealed.clone(),
                |sealed| open_block_owned(&key, &realm, &reference, sealed).expect("opens"),
                criterion::BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn blake3(c: &mut Criterion) {
    let mut group = c.benchmark_group("BLAKE3");
    for (len, label) in SIZES {
        let plaintext = data(len);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::new("digest", label), |b| {
            b.iter(|| Digest::of(&plaintext))
        });
    }
    group.finish();
}

criterion_group!(benches, xchacha20_poly1305, xaes_256_gcm_blocks, blake3);
criterion_main!(benches);
