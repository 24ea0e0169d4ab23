//! The end-to-end harness: it runs the real `strongroom-server` and `strongroom` binaries, each
//! client with its own home directory, and gives tests what a hostile world looks like: an SMTP
//! sink that records what the server sends, and a proxy that tampers with what the server serves.
//!
//! Test helpers panic with a message on failure: they are only ever used by tests and the demo.

pub mod bins;
pub mod exchange;
pub mod member;
pub mod proxy;
pub mod raw;
pub mod scenario;
pub mod server;
pub mod smtp;

pub use exchange::{Pick, SideResult, greet_and_claim};
pub use member::{Member, Output};
pub use proxy::TamperingProxy;
pub use server::{Server, ServerOptions};
pub use smtp::SmtpSink;
