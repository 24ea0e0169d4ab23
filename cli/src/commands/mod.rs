//! One module per command family.

pub mod bootstrap;
pub mod invite;
pub mod users;
