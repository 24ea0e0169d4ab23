//! Replays every fuzz corpus (and the protocol's test vectors, with mutations) through the fuzz
//! targets on the stable toolchain, so that CI catches a decoder that panics.

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The seeds: every test vector of the workspace, decoded from hex, and the bytes of every
/// failure vector (`hex:` lines).
fn vectors() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for dir in ["../protocol/tests/vectors", "../engine/tests/vectors"] {
        for file in files(&root().join(dir)) {
            if file.extension().is_some_and(|e| e == "hex") {
                let text = std::fs::read_to_string(&file).unwrap();
                seeds.push(data_decode(text.trim()));
            }
        }
    }
    for file in files(&root().join("../protocol/tests/vectors/failures")) {
        let text = std::fs::read_to_string(&file).unwrap();
        if let Some(hex) = text.lines().find_map(|l| l.strip_prefix("hex: ")) {
            seeds.push(data_decode(hex.trim()));
        }
    }
    assert!(seeds.len() > 20, "the test vectors are missing");
    seeds
}

fn data_decode(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn every_corpus_replays_without_panicking() {
    let mut replayed = 0;
    for (name, target) in strongroom_fuzz::TARGETS {
        let corpus = files(&root().join("corpus").join(name));
        assert!(!corpus.is_empty(), "corpus/{name} is empty");
        for file in corpus {
            target(&std::fs::read(&file).unwrap());
            replayed += 1;
        }
    }
    assert!(replayed >= strongroom_fuzz::TARGETS.len());
}

#[test]
fn mutated_vectors_do_not_panic() {
    // A deterministic little fuzzer: truncations and bit flips of every vector, through every
    // target. It finds shallow bugs on every CI run; `cargo fuzz` goes deeper.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for seed in vectors() {
        for (_, target) in strongroom_fuzz::TARGETS {
            target(&seed);
            for cut in [0, 1, seed.len() / 2, seed.len().saturating_sub(1)] {
                target(&seed[..cut.min(seed.len())]);
            }
            for _ in 0..32 {
                let mut mutated = seed.clone();
                if mutated.is_empty() {
                    break;
                }
                for _ in 0..(1 + next() % 4) {
                    let i = (next() as usize) % mutated.len();
                    mutated[i] ^= 1 << (next() % 8);
                }
                target(&mutated);
            }
        }
    }
}
