//! The deployment files in `deploy/` against the binary they deploy: `promtool` accepts the
//! alerting rules and the scrape config (Debian's `prometheus` package, installed by
//! `scripts/setup-fleet.sh`; without it this fails), and every `RECSERVE_*` variable that the
//! compose file, the Kubernetes manifests and the Dockerfile set is a key the config accepts,
//! with a value it accepts.

use std::path::{Path, PathBuf};
use std::process::Command;

use recserve::config::{Config, DEFAULT_TOML};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn promtool(args: &[&str]) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool must be installed (scripts/setup-fleet.sh)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// ~0.1 s.
#[test]
fn promtool_accepts_the_alerting_rules_and_the_scrape_config() {
    let rules = root().join("deploy/alerts.yml");
    let (ok, text) = promtool(&["check", "rules", rules.to_str().unwrap()]);
    assert!(ok, "{text}");
    assert!(text.contains("SUCCESS"), "{text}");
    for objective in [
        "http_request_duration_seconds",
        "strategy!=\"ranked\"",
        "requests_shed_total",
        "feedback_log_fsync_seconds",
        "redis_commands_total",
    ] {
        let body = std::fs::read_to_string(&rules).unwrap();
        assert!(body.contains(objective), "no rule on {objective}");
    }
    // The scrape config, with its rule file where this checkout has it.
    let dir = tempfile::tempdir().unwrap();
    let cfg = std::fs::read_to_string(root().join("deploy/prometheus.yml"))
        .unwrap()
        .replace("/etc/prometheus/alerts.yml", rules.to_str().unwrap());
    let path = dir.path().join("prometheus.yml");
    std::fs::write(&path, cfg).unwrap();
    let (ok, text) = promtool(&["check", "config", path.to_str().unwrap()]);
    assert!(ok, "{text}");
    // And it can fail: a broken expression is refused.
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: rate(foo[5m]) >\n",
    )
    .unwrap();
    assert!(!promtool(&["check", "rules", bad.to_str().unwrap()]).0);
}

/// Every `RECSERVE_…` name in `text`, with its literal value when the line gives one
/// (`KEY: value`, `KEY=value`); `${X:-default}` stands for its default.
fn variables(text: &str) -> Vec<(String, Option<String>)> {
    let re = regex::Regex::new(r"RECSERVE_[A-Z0-9_]+").unwrap();
    let mut out = Vec::new();
    for line in text.lines() {
        for m in re.find_iter(line) {
            let name = m.as_str().to_string();
            let rest = line[m.end()..].trim_start();
            let value = rest
                .strip_prefix(':')
                .or_else(|| rest.strip_prefix('='))
                .map(|v| {
                    let v = v.split_whitespace().next().unwrap_or("");
                    let v = v.trim_matches('"');
                    match v.strip_prefix("${").and_then(|x| x.split_once(":-")) {
                        Some((_, d)) => d.trim_end_matches('}').to_string(),
                        None => v.to_string(),
                    }
                })
                .filter(|v| !v.is_empty());
            out.push((name, value));
        }
    }
    out
}

/// `None` when `name` (with `value`, or the default's own value) is a config key the config
/// accepts; else why not.
fn refused(name: &str, value: Option<&str>) -> Option<String> {
    let path: Vec<String> = name["RECSERVE_".len()..]
        .split("__")
        .map(str::to_ascii_lowercase)
        .collect();
    let mut table: toml::Value = DEFAULT_TOML.parse::<toml::Table>().unwrap().into();
    for seg in &path {
        match table.get(seg) {
            Some(v) => table = v.clone(),
            None => return Some(format!("{name}: no config key {}", path.join("."))),
        }
    }
    let v = value.map_or_else(
        || table.to_string().trim_matches('"').to_string(),
        str::to_string,
    );
    Config::load_with_env(None, vec![(name.to_string(), v)])
        .err()
        .map(|e| format!("{name}: {e}"))
}

/// ~0.1 s.
#[test]
fn every_variable_the_deployment_files_set_is_a_config_key() {
    let mut files = vec![root().join("Dockerfile")];
    for dir in ["deploy", "deploy/k8s"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                files.push(p);
            }
        }
    }
    let mut seen = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (name, value) in variables(&text) {
            seen += 1;
            if let Some(why) = refused(&name, value.as_deref()) {
                panic!(
                    "{}: {why}",
                    f.strip_prefix(root()).unwrap_or(Path::new("?")).display()
                );
            }
        }
    }
    assert!(
        seen >= 15,
        "only {seen} variables found: is the scan broken?"
    );
    // The check can fail: a misspelt key, a value of the wrong type.
    assert!(refused("RECSERVE_STATE__REDIS__URLL", Some("redis://x")).is_some());
    assert!(refused("RECSERVE_STATE__BACKEND", Some("memcached")).is_some());
    assert!(
        refused(
            "RECSERVE_STATE__REDIS__HISTORY_READ_BUDGET_MS",
            Some("fast")
        )
        .is_some()
    );
    assert_eq!(
        variables("  RECSERVE_SERVER__ADMIN_TOKEN: \"${ADMIN_TOKEN:-x}\""),
        vec![(
            "RECSERVE_SERVER__ADMIN_TOKEN".to_string(),
            Some("x".to_string())
        )]
    );
}
