//! Strongroom's benchmarks. The binaries: `side-by-side` (the suite: Strongroom next to plain
//! tmpfs, gocryptfs and rclone crypt, written up as a report), `mount-bench` (the mount next to
//! gocryptfs) and `transfer-bench` (`put`/`get` next to plain HTTP); the criterion
//! micro-benchmarks are under `benches/`.

pub mod suite;
