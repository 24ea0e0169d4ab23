//! The report: every run's time, medians and spread, and each system's speed relative to
//! gocryptfs and to tmpfs, as JSON (for tools), Markdown (for people) and an SVG chart
//! ([`super::chart`]).

use std::path::Path;

use serde::Serialize;

use super::machine::Machine;

/// One system's times for one workload.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// The system.
    pub system: String,
    /// Every run, seconds.
    pub runs: Vec<f64>,
    /// Median, seconds.
    pub median: f64,
    /// Fastest and slowest run, seconds.
    pub min: f64,
    /// Slowest run, seconds.
    pub max: f64,
    /// gocryptfs's median over this one's: above 1, faster than gocryptfs.
    pub speed_vs_gocryptfs: Option<f64>,
    /// tmpfs's median over this one's: 1 is as fast as plain tmpfs.
    pub speed_vs_tmpfs: Option<f64>,
    /// rclone's median over this one's (the remote cases' reference).
    pub speed_vs_rclone: Option<f64>,
    /// Requests that reached the server during each run (the remote cases only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<usize>,
}

/// One workload on every system.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The workload.
    pub workload: String,
    /// One cell per system.
    pub cells: Vec<Cell>,
}

/// A whole run of the suite.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When (UTC).
    pub date: String,
    /// The command that produced it.
    pub command: String,
    /// Where.
    pub machine: Machine,
    /// Runs of each workload.
    pub runs: usize,
    /// The large file, MiB.
    pub file_mib: u64,
    /// The source tree.
    pub tree: String,
    /// Entries of the folder the remote listing case lists.
    pub listing_entries: usize,
    /// The results.
    pub rows: Vec<Row>,
    /// The remote cases (a fresh device), Strongroom and rclone only.
    pub remote_rows: Vec<Row>,
}

fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

impl Row {
    /// A row from each system's run times (seconds).
    pub fn new(workload: &str, times: &[(String, Vec<f64>)]) -> Self {
        let median_of = |name: &str| {
            times
                .iter()
                .find(|(system, _)| system == name)
                .map(|(_, runs)| median(runs))
        };
        let (gocryptfs, tmpfs, rclone) = (
            median_of("gocryptfs"),
            median_of("tmpfs"),
            median_of("rclone"),
        );
        let cells = times
            .iter()
            .map(|(system, runs)| {
                let m = median(runs);
                Cell {
                    system: system.clone(),
                    runs: runs.clone(),
                    median: m,
                    min: runs.iter().copied().fold(f64::INFINITY, f64::min),
                    max: runs.iter().copied().fold(0.0, f64::max),
                    speed_vs_gocryptfs: gocryptfs.map(|g| g / m),
                    speed_vs_tmpfs: tmpfs.map(|t| t / m),
                    speed_vs_rclone: rclone.map(|r| r / m),
                    requests: Vec::new(),
                }
            })
            .collect();
        Self {
            workload: workload.to_string(),
            cells,
        }
    }

    /// A row of the remote cases: each system's run times (seconds) and requests per run.
    pub fn with_requests(workload: &str, times: &[(String, Vec<f64>, Vec<usize>)]) -> Self {
        let plain: Vec<(String, Vec<f64>)> = times
            .iter()
            .map(|(system, runs, _)| (system.clone(), runs.clone()))
            .collect();
        let mut row = Self::new(workload, &plain);
        for (cell, (_, _, requests)) in row.cells.iter_mut().zip(times) {
            cell.requests = requests.clone();
        }
        row
    }

    /// The cell of `system`, if it ran this workload.
    pub fn cell(&self, system: &str) -> Option<&Cell> {
        self.cells.iter().find(|c| c.system == system)
    }
}

impl Report {
    /// The Markdown table: medians with their spread, then Strongroom's speed relative to
    /// gocryptfs and to tmpfs.
    pub fn markdown(&self) -> String {
        let systems: Vec<&str> = self
            .rows
            .first()
            .map(|r| r.cells.iter().map(|c| c.system.as_str()).collect())
            .unwrap_or_default();
        let mut out = format!(
            "# Strongroom side by side\n\n{} · {} ({} cores, {} GiB) · Linux {}\n\n\
             {} runs of each workload; a {} MiB file; {}.\n\
             Median time, and in brackets the fastest and slowest run. \"× gocryptfs\" and \
             \"× tmpfs\": the other's median time over this system's (above 1: faster).\n\n\
             Produced by `{}`.\n\n",
            self.date,
            self.machine.cpu,
            self.machine.cores,
            self.machine.memory_gib,
            self.machine.kernel,
            self.runs,
            self.file_mib,
            self.tree,
            self.command,
        );
        out.push_str("| workload |");
        for s in &systems {
            out.push_str(&format!(" {s} |"));
        }
        for s in systems
            .iter()
            .filter(|s| **s != "gocryptfs" && **s != "tmpfs")
        {
            out.push_str(&format!(" {s} × gocryptfs | {s} × tmpfs |"));
        }
        out.push_str("\n|---|");
        for _ in &systems {
            out.push_str("---|");
        }
        for _ in systems
            .iter()
            .filter(|s| **s != "gocryptfs" && **s != "tmpfs")
        {
            out.push_str("---|---|");
        }
        out.push('\n');
        for row in &self.rows {
            out.push_str(&format!("| {} |", row.workload));
            for cell in &row.cells {
                out.push_str(&format!(
                    " {:.2} s ({:.2}-{:.2}) |",
                    cell.median, cell.min, cell.max
                ));
            }
            for cell in row
                .cells
                .iter()
                .filter(|c| c.system != "gocryptfs" && c.system != "tmpfs")
            {
                let ratio = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.2}"));
                out.push_str(&format!(
                    " {} | {} |",
                    ratio(cell.speed_vs_gocryptfs),
                    ratio(cell.speed_vs_tmpfs)
                ));
            }
            out.push('\n');
        }
        if !self.remote_rows.is_empty() {
            out.push_str(&self.remote_markdown());
        }
        out.push_str(&format!("\nPeers: {}.\n", self.machine.peers.join("; ")));
        out
    }

    /// The remote cases' table: Strongroom and rclone, each one's requests, and Strongroom's
    /// speed relative to rclone; then time to first byte over the first block alone.
    fn remote_markdown(&self) -> String {
        let mut out = format!(
            "\n## Remote: a fresh device reading what another device uploaded\n\n\
             Each measurement on a device that has never read the data (Strongroom: a member who \
             just joined and was given the workspace; rclone: a mount with an empty cache), \
             through a proxy that counts the requests reaching the server. The large folder has \
             {} entries. \"× rclone\": rclone's median time over Strongroom's.\n\n\
             | case | strongroom | rclone | strongroom × rclone | requests: strongroom | requests: rclone |\n\
             |---|---|---|---|---|---|\n",
            self.listing_entries
        );
        let time = |cell: Option<&Cell>| {
            cell.map_or("-".to_string(), |c| {
                format!("{:.3} s ({:.3}-{:.3})", c.median, c.min, c.max)
            })
        };
        let requests = |cell: Option<&Cell>| {
            cell.filter(|c| !c.requests.is_empty())
                .map_or("-".to_string(), |c| {
                    let mut sorted = c.requests.clone();
                    sorted.sort_unstable();
                    format!("{}", sorted[sorted.len() / 2])
                })
        };
        for row in &self.remote_rows {
            let (ours, theirs) = (row.cell("strongroom"), row.cell("rclone"));
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                row.workload,
                time(ours),
                time(theirs),
                ours.and_then(|c| c.speed_vs_rclone)
                    .map_or("-".to_string(), |r| format!("{r:.2}")),
                requests(ours),
                requests(theirs),
            ));
        }
        let median_of = |workload: &str| {
            self.remote_rows
                .iter()
                .find(|r| r.workload == workload)
                .and_then(|r| r.cell("strongroom"))
                .map(|c| c.median)
        };
        if let (Some(first_byte), Some(alone)) = (
            median_of(super::remote::RemoteCase::FirstByte.name()),
            median_of(super::remote::RemoteCase::FirstBlockAlone.name()),
        ) {
            out.push_str(&format!(
                "\nStrongroom's time to first byte is {:.2}× the time to fetch, check and decrypt \
                 the first block alone.\n",
                first_byte / alone
            ));
        }
        out
    }

    /// Writes `report.json`, `report.md` and `chart.svg` into `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("report.json"), serde_json::to_string_pretty(self)?)?;
        let markdown = format!(
            "{}
![Speed relative to gocryptfs](chart.svg)
",
            self.markdown()
        );
        std::fs::write(dir.join("report.md"), markdown)?;
        std::fs::write(dir.join("chart.svg"), super::chart::svg(self))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> Machine {
        Machine {
            cpu: "test CPU".into(),
            cores: 2,
            memory_gib: 4,
            kernel: "6.1".into(),
            peers: vec!["gocryptfs 2.3".into()],
        }
    }

    #[test]
    fn ratios_are_the_peers_median_over_the_systems() {
        let row = Row::new(
            "cold read",
            &[
                ("tmpfs".into(), vec![0.2, 0.1, 0.3]),
                ("gocryptfs".into(), vec![2.0, 1.0, 3.0]),
                ("strongroom".into(), vec![0.5, 1.5, 1.0]),
            ],
        );
        let ours = &row.cells[2];
        assert_eq!((ours.median, ours.min, ours.max), (1.0, 0.5, 1.5));
        assert_eq!(ours.speed_vs_gocryptfs, Some(2.0));
        assert_eq!(ours.speed_vs_tmpfs, Some(0.2));
        assert_eq!(row.cells[1].speed_vs_gocryptfs, Some(1.0));
    }

    fn report(rows: Vec<Row>, remote_rows: Vec<Row>) -> Report {
        Report {
            date: "2026-11-27".into(),
            command: "side-by-side".into(),
            machine: machine(),
            runs: 3,
            file_mib: 1024,
            tree: "a tree".into(),
            listing_entries: 10_000,
            rows,
            remote_rows,
        }
    }

    #[test]
    fn the_markdown_table_has_a_column_per_system_and_a_ratio_per_peer() {
        let report = report(
            vec![Row::new(
                "ls -lR",
                &[
                    ("tmpfs".into(), vec![0.1]),
                    ("gocryptfs".into(), vec![0.4]),
                    ("strongroom".into(), vec![0.2]),
                ],
            )],
            Vec::new(),
        );
        let markdown = report.markdown();
        assert!(markdown.contains(
            "| workload | tmpfs | gocryptfs | strongroom | strongroom × gocryptfs | strongroom × tmpfs |"
        ));
        assert!(markdown.contains("| ls -lR | 0.10 s (0.10-0.10) | 0.40 s (0.40-0.40) | 0.20 s (0.20-0.20) | 2.00 | 0.50 |"));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["rows"][0]["cells"][2]["speed_vs_gocryptfs"], 2.0);
        assert!(!markdown.contains("## Remote"), "no remote cases, no table");
    }

    #[test]
    fn the_remote_table_compares_with_rclone_and_counts_requests() {
        use crate::suite::remote::RemoteCase;
        let report = report(
            Vec::new(),
            vec![
                Row::with_requests(
                    RemoteCase::FirstByte.name(),
                    &[
                        ("strongroom".into(), vec![0.03, 0.02, 0.04], vec![5, 4, 6]),
                        ("rclone".into(), vec![0.3, 0.2, 0.4], vec![3, 3, 3]),
                    ],
                ),
                Row::with_requests(
                    RemoteCase::FirstBlockAlone.name(),
                    &[("strongroom".into(), vec![0.02, 0.01, 0.01], vec![1, 1, 1])],
                ),
            ],
        );
        let markdown = report.markdown();
        assert!(markdown.contains(&format!(
            "| {} | 0.030 s (0.020-0.040) | 0.300 s (0.200-0.400) | 10.00 | 5 | 3 |",
            RemoteCase::FirstByte.name()
        )));
        assert!(markdown.contains(&format!(
            "| {} | 0.010 s (0.010-0.020) | - | - | 1 | - |",
            RemoteCase::FirstBlockAlone.name()
        )));
        assert!(markdown.contains("first byte is 3.00× the time to fetch"));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["remote_rows"][0]["cells"][0]["requests"],
            serde_json::json!([5, 4, 6])
        );
    }
}
