//! One module per command family.

pub mod bootstrap;
pub mod files;
pub mod invite;
pub mod mount;
pub mod users;
pub mod workspace;
