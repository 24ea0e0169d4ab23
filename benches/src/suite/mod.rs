//! The side-by-side suite: file systems under test ([`systems`]), the workloads run on each
//! ([`workloads`]), what a fresh device sees of data another device uploaded ([`remote`]), the
//! machine they ran on ([`machine`]), the report ([`report`]) and its chart ([`chart`]).

pub mod chart;
pub mod machine;
pub mod remote;
pub mod report;
pub mod systems;
pub mod workloads;
