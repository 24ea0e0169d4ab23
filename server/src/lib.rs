//! The Strongroom metadata server.
//!
//! It stores what clients sign and encrypt and relays what they exchange; it holds no key that
//! could read a file or forge an identity. It still validates everything it stores (defence in
//! depth): clients never take its word.
//!
//! - [`config`]: the server's settings.
//! - [`store`]: the metadata store trait and its SQLite implementation.
//! - [`mail`]: invitation emails, by SMTP or into an outbox folder.
//! - [`events`]: the hub behind the Server-Sent Event streams.
//! - [`routes`]: the HTTP API, by family (admin, anonymous, invited, authenticated).

pub mod admin_token;
mod auth;
mod clock;
pub mod config;
pub mod error;
pub mod events;
mod extract;
pub mod logging;
pub mod mail;
pub mod routes;
pub mod server;
pub mod state;
pub mod store;

pub use config::ServerConfig;
pub use server::run;
