//! The side-by-side suite: file systems under test ([`systems`]), the workloads run on each
//! ([`workloads`]), the machine they ran on ([`machine`]), the report ([`report`]) and its chart ([`chart`]).

pub mod chart;
pub mod machine;
pub mod report;
pub mod systems;
pub mod workloads;
