//! The end-to-end harness: it runs the real `strongroom-server` and `strongroom` binaries, each
//! client with its own home directory, and gives tests what a hostile world looks like: an SMTP
//! sink that records what the server sends, and a proxy that tampers with what the server serves.
//!
//! Test helpers panic with a message on failure: they are only ever used by tests and the demo.

pub mod bins;
pub mod exchange;
pub mod forge;
pub mod member;
pub mod mount;
pub mod proxy;
pub mod raw;
pub mod scenario;
pub mod server;
pub mod smtp;

pub use exchange::{Pick, SideResult, greet_and_claim};
pub use member::{Member, Output};
pub use mount::Mount;
pub use proxy::TamperingProxy;
pub use server::{Server, ServerOptions};
pub use smtp::SmtpSink;

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Now, in microseconds since the Unix epoch (what `--at` also accepts).
pub fn micros_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_micros() as i64
}
