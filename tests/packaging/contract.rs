//! schemathesis (PyPI, in the tools venv) against the real binary and the document it serves:
//! every check, every phase, a fixed seed; the run must end with no failure, ≥ 1,000 requests
//! and no 5xx. The HAR report counts the requests.

use crate::helpers::*;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_all_checks_find_nothing() {
    let cli = python().with_file_name("schemathesis");
    assert!(
        cli.exists(),
        "{} is missing: run scripts/setup-python.sh",
        cli.display()
    );
    let work = tempfile::tempdir().unwrap();
    let bundle = root().join("models/demo");
    let port = free_port();
    let mut child = start_in(
        work.path(),
        port,
        &["--bundle", bundle.to_str().unwrap()],
        &[],
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&reqwest::Client::new(), &base).await;
    let har = work.path().join("run.har");
    let out = Command::new(&cli)
        .current_dir(work.path())
        .args(["run", &format!("{base}/openapi.json")])
        .args([
            "--checks",
            "all",
            "--seed",
            "20261201",
            "--max-examples",
            "60",
        ])
        .args(["--workers", "2", "--no-color", "--report", "har"])
        .arg("--report-har-path")
        .arg(&har)
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .expect("run schemathesis");
    let _ = child.kill();
    let _ = child.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let har: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&har).expect("HAR report written")).unwrap();
    let entries = har["log"]["entries"].as_array().unwrap();
    assert!(
        entries.len() >= 1_000,
        "at least 1,000 generated requests, got {}\n{stdout}",
        entries.len()
    );
    let server_errors = entries
        .iter()
        .filter(|e| e["response"]["status"].as_u64().is_some_and(|s| s >= 500))
        .count();
    assert_eq!(server_errors, 0, "no server errors\n{stdout}");
    let ops: std::collections::BTreeSet<String> = entries
        .iter()
        .filter_map(|e| e["request"]["url"].as_str())
        .map(|u| {
            u.trim_start_matches(&base)
                .split('?')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    for path in ["/recommendations", "/feedback", "/feedback/batch", "/items"] {
        assert!(ops.contains(path), "{path} was exercised: {ops:?}");
    }
}
