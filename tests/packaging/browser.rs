//! The demo page in a real browser: the real binary on a random port, headless Chromium (Debian)
//! driven by selenium (`scripts/browser_demo.py`). The list renders, a click changes the next list
//! and excludes the clicked item (anonymous session and known user), a screenshot is written.
//! Needs `RECSERVE_PYTHON` with selenium and /usr/bin/chromium + chromedriver, which
//! `scripts/test.sh` installs; without them the test fails, it never passes silently.
//! `RECSERVE_UPDATE_SCREENSHOT=1` also copies the screenshot to docs/demo.png.

use crate::helpers::*;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_page_renders_and_a_click_changes_the_next_list() {
    let python = python();
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            std::path::Path::new(tool).exists(),
            "{tool} is missing: run scripts/setup-browser.sh"
        );
    }
    let root = root();
    let work = tempfile::tempdir().unwrap();
    let bundle = root.join("models/demo");
    let port = free_port();
    let mut child = start_in(
        work.path(),
        port,
        &["--bundle", bundle.to_str().unwrap()],
        &[],
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&reqwest::Client::new(), &base).await;
    // A user with some history.
    let user = "u000042";
    let shot = work.path().join("demo.png");
    let out = Command::new(&python)
        .arg(root.join("scripts/browser_demo.py"))
        .args([&base, user, shot.to_str().unwrap()])
        .output()
        .expect("run the browser script");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        out.status.success(),
        "browser script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let variants: Vec<&str> = summary["variants"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        variants.contains(&"control") && variants.contains(&"blend"),
        "{variants:?}"
    );
    for flow in ["anonymous", "user"] {
        let before = summary[flow][0].as_array().unwrap();
        let after = summary[flow][1].as_array().unwrap();
        assert_eq!(before.len(), 10, "{flow}");
        assert!(
            !after.contains(&before[0]),
            "{flow}: the clicked item is excluded"
        );
    }
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    assert!(
        png.len() > 20_000,
        "a real page, not a blank image ({} bytes)",
        png.len()
    );
    if std::env::var("RECSERVE_UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        std::fs::copy(&shot, root.join("docs/demo.png")).unwrap();
    }
}
