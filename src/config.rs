//! The configuration aggregator, the top layer: it assembles the sections every layer defines for
//! itself (`[server]` from `server`, `[serving]` from `pipeline`, `[index]` from `retrieval`,
//! `[train]`, `[feedback]`, `[bandit]`, `[state]`) and applies the layering: the embedded
//! `config/default.toml` → an optional file → `RECSERVE_…` environment variables
//! (`RECSERVE_SERVING__MAX_N=50` sets `serving.max_n`; only variables whose first segment is a
//! top-level config key count). Relative paths a config file sets (`server.bundle`,
//! `server.demo_cache_dir`, `variants_file`, `feedback.log.dir`) resolve against that file's
//! directory. Validated once at start; nothing below imports this module. [`locate`] finds the
//! bundle when none is configured.

pub mod locate;

use crate::bandit::BanditConfig;
use crate::eval::cli::EvalConfig;
use crate::feedback::FeedbackConfig;
use crate::pipeline::ServingConfig;
use crate::retrieval::index::IndexConfig;
use crate::server::{ServerConfig, ServiceConfig};
use crate::train::TrainConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The shipped defaults; `config/default.toml` is the single source of them.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");
/// Prefix of environment overrides; `__` separates nested keys.
pub const ENV_PREFIX: &str = "RECSERVE_";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {} not found", .0.display())]
    NotFound(PathBuf),
    #[error("invalid TOML in {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub serving: ServingConfig,
    pub index: IndexConfig,
    pub train: TrainConfig,
    pub feedback: FeedbackConfig,
    pub bandit: BanditConfig,
    pub state: crate::state::StateConfig,
    /// Path of the variants file (A/B treatments); empty = the embedded `config/variants.toml`.
    pub variants_file: PathBuf,
}

impl Config {
    /// Defaults, then `file` (if any), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut root = parse_toml(DEFAULT_TOML, "config/default.toml")?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound => ConfigError::NotFound(path.to_path_buf()),
                _ => ConfigError::Io {
                    path: path.to_path_buf(),
                    source,
                },
            })?;
            let mut layer = parse_toml(&text, &path.display().to_string())?;
            let base = path.parent().unwrap_or(Path::new(""));
            resolve_relative_paths(&mut layer, base);
            merge(&mut root, layer);
        }
        // Only variables naming a top-level key of the config are overrides; other RECSERVE_*
        // variables (tool paths used by the scripts, …) are not configuration.
        let sections: Vec<String> = root.keys().cloned().collect();
        for (key, value) in env {
            if let Some(rest) = key.strip_prefix(ENV_PREFIX) {
                let first = rest.split("__").next().unwrap_or("").to_ascii_lowercase();
                if sections.contains(&first) {
                    apply_env(&mut root, rest, &value)?;
                }
            }
        }
        let cfg: Config = root
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                origin: "merged configuration".into(),
                message: e.to_string(),
            })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Every section's own validation, in one place.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |e: &dyn std::fmt::Display| ConfigError::Invalid(e.to_string());
        self.serving.validate().map_err(|e| invalid(&e))?;
        self.server.validate().map_err(|e| invalid(&e))?;
        self.bandit
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("bandit: {e}")))?;
        self.feedback.validate().map_err(ConfigError::Invalid)?;
        self.state
            .validate(self.bandit.discount.is_some())
            .map_err(|e| invalid(&e))?;
        Ok(())
    }

    /// Resolves `server.bundle` to a bundle directory ([`locate::resolve_bundle`]'s search order
    /// when it is empty) against the working directory; a missing bundle is one clear error.
    pub fn locate_bundle(&mut self) -> Result<locate::BundleOrigin, ConfigError> {
        let cwd = std::env::current_dir()
            .map_err(|e| ConfigError::Invalid(format!("cannot read the working directory: {e}")))?;
        let cache = locate::cache_root(&self.server.demo_cache_dir, |k| std::env::var(k).ok());
        let (dir, origin) = locate::resolve_bundle(&self.server.bundle, &cwd, &cache)?;
        self.server.bundle = dir;
        Ok(origin)
    }

    /// The sections an offline evaluation runs with.
    pub fn evaluation(&self) -> EvalConfig {
        EvalConfig {
            train: self.train.clone(),
            serving: self.serving.clone(),
            index: self.index.clone(),
        }
    }

    /// The sections the HTTP service runs with.
    pub fn service(&self) -> ServiceConfig {
        ServiceConfig {
            server: self.server.clone(),
            serving: self.serving.clone(),
            index: self.index.clone(),
            feedback: self.feedback.clone(),
            bandit: self.bandit.clone(),
            state: self.state.clone(),
            variants_file: self.variants_file.clone(),
        }
    }
}

fn parse_toml(text: &str, origin: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>().map_err(|e| ConfigError::Parse {
        origin: origin.to_string(),
        message: e.to_string(),
    })
}

/// The keys holding paths, as (section, key); `None` = top level.
const PATH_KEYS: &[(&[&str], &str)] = &[
    (&[], "variants_file"),
    (&["server"], "bundle"),
    (&["server"], "demo_cache_dir"),
    (&["feedback", "log"], "dir"),
];

/// Rewrites the non-empty relative paths a config file sets to paths under the file's directory.
fn resolve_relative_paths(layer: &mut toml::Table, base: &Path) {
    for (sections, key) in PATH_KEYS {
        let mut table = Some(&mut *layer);
        for s in *sections {
            table = table
                .and_then(|t| t.get_mut(*s))
                .and_then(|v| v.as_table_mut());
        }
        if let Some(toml::Value::String(p)) = table.and_then(|t| t.get_mut(*key))
            && !p.is_empty()
            && Path::new(p.as_str()).is_relative()
        {
            *p = base.join(p.as_str()).to_string_lossy().into_owned();
        }
    }
}

/// Deep-merges `layer` into `base`: tables merge key by key, everything else replaces.
fn merge(base: &mut toml::Table, layer: toml::Table) {
    for (k, v) in layer {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(l)) => merge(b, l),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Sets `a__b__c` (case-insensitive) to `value`, parsed as a TOML value when it is one
/// (`50`, `true`, `[1, 2]`, `"x"`), else taken as a plain string.
fn apply_env(root: &mut toml::Table, key: &str, value: &str) -> Result<(), ConfigError> {
    let path: Vec<String> = key.split("__").map(|s| s.to_ascii_lowercase()).collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(ConfigError::Invalid(format!(
            "environment variable {ENV_PREFIX}{key}: empty key segment"
        )));
    }
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let mut table = root;
    for seg in &path[..path.len() - 1] {
        let entry = table
            .entry(seg.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(ConfigError::Invalid(format!(
                    "environment variable {ENV_PREFIX}{key}: {seg} is not a section"
                )));
            }
        };
    }
    let leaf = &path[path.len() - 1];
    // Keep strings as strings when the default is a string (e.g. a token that looks like a number).
    let value = match (table.get(leaf), parsed) {
        (Some(toml::Value::String(_)), v) if !v.is_str() => toml::Value::String(value.to_string()),
        (_, v) => v,
    };
    table.insert(leaf.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_defaults_deserialize_and_validate() {
        let cfg = Config::load_with_env(None, Vec::new()).unwrap();
        assert!(cfg.serving.max_n >= cfg.serving.default_n);
        // Nothing depends on the working directory by default: the bundle is searched for and
        // the variants are embedded.
        assert_eq!(cfg.server.bundle, PathBuf::from(""));
        assert_eq!(cfg.variants_file, PathBuf::from(""));
    }

    #[test]
    fn relative_paths_in_a_file_resolve_against_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("prod.toml");
        std::fs::write(
            &file,
            "variants_file = \"v.toml\"\n[server]\nbundle = \"bundles/b1\"\n\
             [feedback.log]\ndir = \"/abs/events\"\n",
        )
        .unwrap();
        let cfg = Config::load_with_env(Some(&file), Vec::new()).unwrap();
        assert_eq!(cfg.variants_file, dir.path().join("v.toml"));
        assert_eq!(cfg.server.bundle, dir.path().join("bundles/b1"));
        assert_eq!(cfg.feedback.log.dir, PathBuf::from("/abs/events"));
        // The environment's paths stay as given (relative to the working directory).
        let env = vec![("RECSERVE_SERVER__BUNDLE".to_string(), "rel/b2".to_string())];
        let cfg = Config::load_with_env(Some(&file), env).unwrap();
        assert_eq!(cfg.server.bundle, PathBuf::from("rel/b2"));
    }

    #[test]
    fn the_evaluation_report_config_is_the_toml_key_for_key() {
        let cfg = Config::load_with_env(None, Vec::new()).unwrap();
        let json = crate::eval::cli::config_json(&cfg.evaluation());
        let toml: toml::Table = DEFAULT_TOML.parse().unwrap();
        // Every key the shipped file sets has its value in the report (sections may fill in
        // defaults for keys the file leaves out).
        fn agrees(want: &serde_json::Value, got: &serde_json::Value, at: &str) {
            match want.as_object() {
                Some(o) => {
                    for (k, v) in o {
                        agrees(v, &got[k], &format!("{at}.{k}"));
                    }
                }
                // f32 keys widen to f64 in JSON (0.05 → 0.0500000007…).
                None => match (want.as_f64(), got.as_f64()) {
                    (Some(w), Some(g)) if want.is_f64() => {
                        assert!((w - g).abs() <= 1e-6 * w.abs().max(1.0), "{at}: {g} vs {w}")
                    }
                    _ => assert_eq!(got, want, "{at}"),
                },
            }
        }
        for section in ["train", "serving", "index"] {
            let want = serde_json::to_value(&toml[section]).unwrap();
            agrees(&want, &json[section], section);
        }
        assert!(
            json["serving"]["default_n"].is_u64(),
            "numbers, not Debug strings"
        );
    }

    #[test]
    fn a_missing_config_file_is_one_line() {
        let err = Config::load_with_env(Some(Path::new("/no/such.toml")), Vec::new())
            .unwrap_err()
            .to_string();
        assert_eq!(err, "config file /no/such.toml not found");
    }

    #[test]
    fn shipped_config_files_parse() {
        for f in ["config/default.toml", "config/demo.toml"] {
            let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(f);
            Config::load_with_env(Some(&p), Vec::new()).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
    }

    #[test]
    fn env_overrides_nested_keys_with_typed_values() {
        let env = vec![
            ("RECSERVE_SERVING__MAX_N".to_string(), "77".to_string()),
            (
                "RECSERVE_SERVER__ADMIN_TOKEN".to_string(),
                "12345".to_string(),
            ),
            (
                "RECSERVE_SERVING__PARALLEL_SOURCES".to_string(),
                "false".to_string(),
            ),
            ("OTHER_THING".to_string(), "1".to_string()),
        ];
        let cfg = Config::load_with_env(None, env).unwrap();
        assert_eq!(cfg.serving.max_n, 77);
        assert_eq!(cfg.server.admin_token, "12345");
        assert_eq!(
            cfg.serving.parallel_sources,
            crate::pipeline::Parallelism::Sequential
        );
    }

    #[test]
    fn invalid_values_are_refused_with_the_key() {
        let env = vec![("RECSERVE_SERVING__DEFAULT_N".to_string(), "0".to_string())];
        let err = Config::load_with_env(None, env).unwrap_err().to_string();
        assert!(err.contains("default_n"), "{err}");
        let env = vec![("RECSERVE_SERVING__MAX_N".to_string(), "lots".to_string())];
        assert!(Config::load_with_env(None, env).is_err());
        let env = vec![("RECSERVE_SERVING__NOPE".to_string(), "1".to_string())];
        assert!(
            Config::load_with_env(None, env).is_err(),
            "unknown keys in a section are refused"
        );
        let env = vec![(
            "RECSERVE_PYTHON".to_string(),
            "/usr/bin/python3".to_string(),
        )];
        assert!(
            Config::load_with_env(None, env).is_ok(),
            "non-config RECSERVE_ variables are ignored"
        );
    }
}
