//! The side-by-side suite: file systems under test ([`systems`]), the workloads run on each
//! ([`workloads`]), the machine they ran on ([`machine`]) and the report ([`report`]).

pub mod machine;
pub mod report;
pub mod systems;
pub mod workloads;
