//! Strongroom's client core.
//!
//! Each module is one job of the client:
//! - [`home`]: where a device keeps its files;
//! - [`password`]: where the password comes from;
//! - [`device_file`]: the device's keys, encrypted with a password-derived key;
//! - [`local_store`]: small encrypted records at rest (the certificate chain);
//! - [`trust`]: the certificate chain, validated up to the pinned root key on every fetch;
//! - [`connection`]: HTTP to the server, request signing, event streams;
//! - [`bootstrap`]: creating an organization's first user and device;
//! - [`invite`]: the greeter and claimer sides of invitations;
//! - [`local_db`]: the device's local database (manifests, versions seen, block index);
//! - [`workspaces`]: the user manifest, workspace chains, sharing, key rotation, messages;
//! - [`client`]: an opened device and what it can do (users, devices, revocation).
#![forbid(unsafe_code)]

pub mod block_cache;
pub mod bootstrap;
pub mod client;
mod clock;
pub mod connection;
pub mod device_file;
pub mod error;
pub mod files;
pub mod home;
pub mod invite;
pub mod local_db;
pub mod local_store;
pub mod password;
mod remote;
pub mod trust;
pub mod workspaces;

pub use client::Client;
pub use error::EngineError;
