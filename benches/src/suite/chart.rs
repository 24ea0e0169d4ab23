//! The report's chart, an SVG a person reads at a glance: for each workload, each system's
//! speed relative to gocryptfs (its median time over gocryptfs's) on a logarithmic scale, the
//! line at 1 being gocryptfs. Written by hand: a few rectangles and labels need no plotting
//! library.

use std::fmt::Write;

use super::report::{Cell, Report, Row};

const WIDTH: f64 = 920.0;
const LABELS: f64 = 230.0;
const BAR: f64 = 14.0;
const GAP: f64 = 12.0;
const TOP: f64 = 70.0;
/// The scale: 1/16 to 64 times gocryptfs's speed.
const LOW: f64 = -4.0;
const HIGH: f64 = 6.0;
const COLORS: [&str; 5] = ["#9e9e9e", "#f4a261", "#2a9d8f", "#264653", "#e76f51"];

fn x(ratio: f64) -> f64 {
    let plot = WIDTH - LABELS - 40.0;
    let at = ratio.max(f64::MIN_POSITIVE).log2().clamp(LOW, HIGH);
    LABELS + (at - LOW) / (HIGH - LOW) * plot
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One group of bars per row from `top`: each cell's `ratio` to `reference`, colored by its
/// system's place in `systems`.
fn bars(
    out: &mut String,
    rows: &[Row],
    systems: &[&str],
    top: f64,
    reference: &str,
    ratio: impl Fn(&Cell) -> Option<f64>,
) {
    let group = systems.len() as f64 * BAR + GAP;
    for (r, row) in rows.iter().enumerate() {
        let gy = top + r as f64 * group;
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" text-anchor="end">{}</text>"##,
            LABELS - 8.0,
            gy + group / 2.0,
            escape(&row.workload)
        );
        for cell in &row.cells {
            let (Some(ratio), Some(i)) =
                (ratio(cell), systems.iter().position(|s| *s == cell.system))
            else {
                continue;
            };
            let y = gy + i as f64 * BAR;
            let (from, to) = (x(1.0).min(x(ratio)), x(1.0).max(x(ratio)));
            let _ = writeln!(
                out,
                r##"<rect x="{from}" y="{y}" width="{}" height="{}" fill="{}"><title>{}: {:.3} s, {:.2}× {reference}</title></rect><text x="{}" y="{}" font-size="10" fill="#333">{:.2}</text>"##,
                (to - from).max(1.0),
                BAR - 2.0,
                COLORS[i % COLORS.len()],
                escape(&cell.system),
                cell.median,
                ratio,
                to + 3.0,
                y + BAR - 4.0,
                ratio
            );
        }
    }
}

/// The chart of `report` as an SVG document.
pub fn svg(report: &Report) -> String {
    // Every system of either part, in order of appearance (a color each).
    let mut systems: Vec<&str> = Vec::new();
    for cell in report
        .rows
        .iter()
        .chain(&report.remote_rows)
        .flat_map(|r| &r.cells)
    {
        if !systems.contains(&cell.system.as_str()) {
            systems.push(&cell.system);
        }
    }
    let group = systems.len() as f64 * BAR + GAP;
    // The remote cases that both Strongroom and rclone ran.
    let remote: Vec<Row> = report
        .remote_rows
        .iter()
        .filter(|r| r.cell("rclone").is_some() && r.cells.len() > 1)
        .cloned()
        .collect();
    let remote_height = if remote.is_empty() {
        0.0
    } else {
        60.0 + remote.len() as f64 * group
    };
    let height = TOP + report.rows.len() as f64 * group + remote_height + 50.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="12">"##
    );
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="white"/><text x="10" y="22" font-size="16" font-weight="bold">Speed relative to gocryptfs (longer is faster; log scale)</text>"##
    );
    let _ = writeln!(
        out,
        r##"<text x="10" y="42" fill="#555">{} · {} cores · Linux {} · {} MiB file · median of {} runs</text>"##,
        escape(&report.machine.cpu),
        report.machine.cores,
        escape(&report.machine.kernel),
        report.file_mib,
        report.runs
    );
    for (i, system) in systems.iter().enumerate() {
        let lx = LABELS + i as f64 * 130.0;
        let _ = writeln!(
            out,
            r##"<rect x="{lx}" y="50" width="12" height="12" fill="{}"/><text x="{}" y="60">{}</text>"##,
            COLORS[i % COLORS.len()],
            lx + 16.0,
            escape(system)
        );
    }
    // Grid: powers of two, and gocryptfs's line at 1.
    for power in (LOW as i32)..=(HIGH as i32) {
        let ratio = 2f64.powi(power);
        let gx = x(ratio);
        let (stroke, width) = if power == 0 {
            ("#000", 1.5)
        } else {
            ("#ddd", 1.0)
        };
        let label = if power >= 0 {
            format!("{}×", 1u64 << power)
        } else {
            format!("1/{}", 1u64 << -power)
        };
        let _ = writeln!(
            out,
            r##"<line x1="{gx}" y1="{TOP}" x2="{gx}" y2="{}" stroke="{stroke}" stroke-width="{width}"/><text x="{gx}" y="{}" text-anchor="middle" fill="#555">{label}</text>"##,
            height - 40.0,
            height - 25.0
        );
    }
    bars(&mut out, &report.rows, &systems, TOP, "gocryptfs", |c| {
        c.speed_vs_gocryptfs
    });
    if !remote.is_empty() {
        let top = TOP + report.rows.len() as f64 * group + 50.0;
        let _ = writeln!(
            out,
            r##"<text x="10" y="{}" font-size="16" font-weight="bold">Remote, a fresh device: speed relative to rclone (longer is faster; same scale)</text>"##,
            top - 10.0
        );
        bars(&mut out, &remote, &systems, top + 10.0, "rclone", |c| {
            c.speed_vs_rclone
        });
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::machine::Machine;

    #[test]
    fn one_bar_per_system_and_workload_from_gocryptfs_line() {
        let report = Report {
            date: "2026-11-27".into(),
            command: "side-by-side".into(),
            machine: Machine {
                cpu: "CPU <1>".into(),
                cores: 2,
                memory_gib: 4,
                kernel: "6.1".into(),
                peers: Vec::new(),
            },
            runs: 3,
            file_mib: 1024,
            tree: "tree".into(),
            listing_entries: 10_000,
            rows: vec![
                Row::new(
                    "write",
                    &[
                        ("gocryptfs".into(), vec![2.0]),
                        ("strongroom".into(), vec![1.0]),
                    ],
                ),
                Row::new(
                    "read",
                    &[
                        ("gocryptfs".into(), vec![1.0]),
                        ("strongroom".into(), vec![4.0]),
                    ],
                ),
            ],
            remote_rows: vec![
                Row::with_requests(
                    "cold read, fresh device",
                    &[
                        ("strongroom".into(), vec![1.0], vec![1030]),
                        ("rclone".into(), vec![3.0], vec![9]),
                    ],
                ),
                // Strongroom only: no bar in the rclone section.
                Row::with_requests(
                    "first block alone",
                    &[("strongroom".into(), vec![0.01], vec![1])],
                ),
            ],
        };
        let svg = svg(&report);
        assert_eq!(svg.matches("<title>").count(), 6);
        assert!(svg.contains("strongroom: 1.000 s, 2.00× gocryptfs"));
        assert!(svg.contains("strongroom: 4.000 s, 0.25× gocryptfs"));
        assert!(svg.contains("strongroom: 1.000 s, 3.00× rclone"));
        assert!(!svg.contains("first block alone"));
        assert!(svg.contains("CPU &lt;1&gt;"), "text is escaped");
        // Twice as fast starts on gocryptfs's line and goes right; four times slower goes left.
        assert!(x(2.0) > x(1.0) && x(0.25) < x(1.0));
        assert!(svg.ends_with("</svg>\n"));
    }
}
