//! A smoke run of the benchmark harness (not a measurement): the real `side-by-side` binary
//! with tiny inputs on all four systems (real mounts; as root, with gocryptfs, rclone and fio
//! installed, as CI does), checked for a complete report. The suite itself is run by hand.

use std::process::Command;

use serde_json::Value;

#[test]
fn the_side_by_side_harness_runs_every_system_and_writes_a_complete_report() {
    let work = tempfile::tempdir().expect("temporary folder");
    let out = work.path().join("report");
    let run = Command::new(env!("CARGO_BIN_EXE_side-by-side"))
        .args([
            "--smoke",
            "--size-mib",
            "4",
            "--runs",
            "1",
            "--generated-tree",
            "60",
            "--listing-entries",
            "40",
            "--dir",
        ])
        .arg(work.path())
        .arg("--out")
        .arg(&out)
        .output()
        .expect("running side-by-side");
    assert!(
        run.status.success(),
        "side-by-side failed:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );

    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report.json"))
            .expect("JSON");
    let systems = |row: &Value| -> Vec<String> {
        row["cells"]
            .as_array()
            .expect("cells")
            .iter()
            .map(|c| c["system"].as_str().expect("system").to_string())
            .collect()
    };
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 8, "every local workload has a row");
    for row in rows {
        assert_eq!(
            systems(row),
            ["tmpfs", "gocryptfs", "rclone", "strongroom"],
            "{}",
            row["workload"]
        );
        for cell in row["cells"].as_array().unwrap() {
            let median = cell["median"].as_f64().expect("median");
            assert!(median > 0.0, "{} {}", row["workload"], cell["system"]);
            assert!(cell["speed_vs_gocryptfs"].as_f64().expect("ratio") > 0.0);
        }
    }

    let remote = report["remote_rows"].as_array().expect("remote rows");
    assert_eq!(remote.len(), 4, "every remote case has a row");
    for row in remote {
        let expected: &[&str] = if row["workload"]
            .as_str()
            .is_some_and(|w| w.starts_with("first block alone"))
        {
            &["strongroom"]
        } else {
            &["rclone", "strongroom"]
        };
        assert_eq!(systems(row), expected, "{}", row["workload"]);
        for cell in row["cells"].as_array().unwrap() {
            // Every remote case reaches the server: the proxy counted its requests.
            let requests = cell["requests"].as_array().expect("requests");
            assert!(
                requests.iter().all(|r| r.as_u64().expect("count") > 0),
                "{} {}: {requests:?}",
                row["workload"],
                cell["system"]
            );
        }
    }

    let markdown = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(markdown.contains("| rm -rf |"));
    assert!(markdown.contains("## Remote"));
    let svg = std::fs::read_to_string(out.join("chart.svg")).expect("chart.svg");
    assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
}
