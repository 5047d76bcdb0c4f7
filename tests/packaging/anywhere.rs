//! The binary runs from anywhere: no bundle configured in an empty directory (the embedded demo),
//! a config file elsewhere whose relative paths resolve against its directory, and a missing
//! bundle as one line.

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_from_an_empty_directory_outside_the_repository() {
    let client = reqwest::Client::new();
    let cwd = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();

    // 1. Nothing configured, an empty working directory: the embedded demo bundle, unpacked into
    //    the cache directory; the event log goes under the working directory.
    let port = free_port();
    let mut child = start_in(
        cwd.path(),
        port,
        &[],
        &[("RECSERVE_SERVER__DEMO_CACHE_DIR", cache.path())],
    );
    assert_serves_demo(&client, &format!("http://127.0.0.1:{port}")).await;
    signal(&child, "-TERM");
    assert!(child.wait().unwrap().success());
    let unpacked: Vec<_> = std::fs::read_dir(cache.path()).unwrap().collect();
    assert_eq!(unpacked.len(), 1, "one unpacked demo bundle");
    assert!(cwd.path().join("data/events").is_dir());

    // 2. A config file elsewhere whose relative paths resolve against its own directory.
    let conf_dir = tempfile::tempdir().unwrap();
    let demo = root().join("models/demo");
    std::os::unix::fs::symlink(&demo, conf_dir.path().join("my-bundle")).unwrap();
    std::fs::write(
        conf_dir.path().join("variants.toml"),
        "default = \"only\"\n[[variant]]\nname = \"only\"\n[[variant]]\nname = \"blend\"\nranker = false\n",
    )
    .unwrap();
    std::fs::write(
        conf_dir.path().join("recserve.toml"),
        "variants_file = \"variants.toml\"\n[server]\nbundle = \"my-bundle\"\n\
         [feedback.log]\ndir = \"events\"\n",
    )
    .unwrap();
    let port = free_port();
    let config = conf_dir.path().join("recserve.toml");
    let mut child = start_in(
        cwd.path(),
        port,
        &["--config", config.to_str().unwrap()],
        &[],
    );
    let base = format!("http://127.0.0.1:{port}");
    assert_serves_demo(&client, &base).await;
    let body: serde_json::Value = client
        .get(format!("{base}/recommendations?n=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["variant"], "only",
        "the config file's variants are used"
    );
    signal(&child, "-TERM");
    assert!(child.wait().unwrap().success());
    assert!(conf_dir.path().join("events").is_dir());

    // 3. A missing bundle: exit status 1 and one line naming it, before listening.
    let child = start_in(cwd.path(), free_port(), &["--bundle", "nowhere"], &[]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("nowhere") && stderr.contains("not found"),
        "{stderr}"
    );
}
