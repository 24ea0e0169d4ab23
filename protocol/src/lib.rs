//! Strongroom's protocol: the pure core shared by the server and the clients.
//!
//! Everything here is data and pure functions: no IO, no async, no clock reads. Randomness is
//! taken from the caller (`rand_core::CryptoRngCore`) wherever a test needs determinism, and from
//! the operating system's generator otherwise.
//!
//! - [`encoding`]: every serialized object starts with a type tag and a format version.
//! - [`ids`], [`time`]: identifiers and timestamps.
//! - [`crypto`]: signing, sealed boxes, authenticated encryption, hashing, password keys.
//! - [`certificates`] and [`trust`]: the identity certificates and their validation.
//! - [`sas`] and [`invite`]: the invitation exchange confirmed by short codes.
//! - [`workspace`], [`manifests`], [`blocks`], [`messages`]: workspaces and their roles and keys,
//!   signed and encrypted manifests, encrypted blocks, messages sealed to a user.
//! - [`wire`]: request and response bodies, errors, events and request signatures.
//! - [`links`]: bootstrap and invitation URLs.
//! - [`display`]: untrusted text shown safely to people.
#![forbid(unsafe_code)]

pub mod blocks;
pub mod certificates;
pub mod crypto;
pub mod display;
pub mod encoding;
pub mod ids;
pub mod invite;
pub mod links;
pub mod manifests;
pub mod messages;
pub mod sas;
pub mod signed;
pub mod time;
pub mod trust;
pub mod wire;
pub mod workspace;

#[cfg(test)]
mod test_vectors;
#[cfg(test)]
mod testing;
