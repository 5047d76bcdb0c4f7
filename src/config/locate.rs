//! Where `serve` finds its bundle, so the binary runs from any directory: a configured path
//! (`--bundle`, `RECSERVE_SERVER__BUNDLE`, `server.bundle` in a config file) is checked and used;
//! with none, the search order is `./models/demo` (a source checkout), then the demo bundle
//! embedded in the binary, unpacked into a cache directory. Every miss is one clear line.

use super::ConfigError;
use std::path::{Path, PathBuf};

/// How the serving bundle was found (logged at start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleOrigin {
    /// `--bundle`, `RECSERVE_SERVER__BUNDLE` or `server.bundle` from a config file.
    Configured,
    /// `models/demo` under the working directory.
    WorkingDir,
    /// The embedded demo bundle, unpacked under the cache directory.
    Embedded,
}

impl BundleOrigin {
    pub fn as_str(&self) -> &'static str {
        match self {
            BundleOrigin::Configured => "configured",
            BundleOrigin::WorkingDir => "working directory",
            BundleOrigin::Embedded => "embedded demo",
        }
    }
}

/// The relative path searched in the working directory when no bundle is configured.
pub const WORKING_DIR_BUNDLE: &str = "models/demo";

/// Resolves the bundle directory: `configured` when non-empty (it must be a bundle directory),
/// else `cwd/models/demo` when it holds a manifest, else the embedded demo unpacked under
/// `cache_root`.
pub fn resolve_bundle(
    configured: &Path,
    cwd: &Path,
    cache_root: &Path,
) -> Result<(PathBuf, BundleOrigin), ConfigError> {
    if !configured.as_os_str().is_empty() {
        check_bundle_dir(configured)?;
        return Ok((configured.to_path_buf(), BundleOrigin::Configured));
    }
    let local = cwd.join(WORKING_DIR_BUNDLE);
    if local.join("manifest.json").is_file() {
        return Ok((local, BundleOrigin::WorkingDir));
    }
    let dir = crate::bundle::demo::unpack(cache_root).map_err(|e| {
        ConfigError::Invalid(format!(
            "no bundle configured and the embedded demo cannot be unpacked into {}: {e} \
             (give --bundle DIR or set server.demo_cache_dir)",
            cache_root.display()
        ))
    })?;
    Ok((dir, BundleOrigin::Embedded))
}

/// A configured bundle path must be a directory holding `manifest.json`; anything else is one
/// line naming the path and the fix.
pub fn check_bundle_dir(dir: &Path) -> Result<(), ConfigError> {
    let hint = "give --bundle DIR or RECSERVE_SERVER__BUNDLE=DIR";
    if !dir.exists() {
        return Err(ConfigError::Invalid(format!(
            "bundle directory {} not found ({hint})",
            dir.display()
        )));
    }
    if !dir.is_dir() {
        return Err(ConfigError::Invalid(format!(
            "bundle {} is not a directory ({hint})",
            dir.display()
        )));
    }
    if !dir.join("manifest.json").is_file() {
        return Err(ConfigError::Invalid(format!(
            "{} is not a bundle: it has no manifest.json (build one with `recserve train`)",
            dir.display()
        )));
    }
    Ok(())
}

/// The cache directory: `configured` when non-empty, else `$XDG_CACHE_HOME/recserve`, else
/// `$HOME/.cache/recserve`, else `<temp dir>/recserve`.
pub fn cache_root(configured: &Path, env: impl Fn(&str) -> Option<String>) -> PathBuf {
    if !configured.as_os_str().is_empty() {
        return configured.to_path_buf();
    }
    let non_empty = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(x) = non_empty("XDG_CACHE_HOME") {
        return x.join("recserve");
    }
    if let Some(h) = non_empty("HOME") {
        return h.join(".cache").join("recserve");
    }
    std::env::temp_dir().join("recserve")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo")
    }

    #[test]
    fn search_order_configured_then_working_dir_then_embedded() {
        let cache = tempfile::tempdir().unwrap();
        let empty = tempfile::tempdir().unwrap();
        // Configured wins even when the working directory has a demo bundle.
        let (d, o) =
            resolve_bundle(&demo(), Path::new(env!("CARGO_MANIFEST_DIR")), cache.path()).unwrap();
        assert_eq!((d, o), (demo(), BundleOrigin::Configured));
        // Nothing configured, in a checkout: ./models/demo.
        let (d, o) = resolve_bundle(
            Path::new(""),
            Path::new(env!("CARGO_MANIFEST_DIR")),
            cache.path(),
        )
        .unwrap();
        assert_eq!((d, o), (demo(), BundleOrigin::WorkingDir));
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
        // Nothing configured, anywhere else: the embedded demo, unpacked into the cache.
        let (d, o) = resolve_bundle(Path::new(""), empty.path(), cache.path()).unwrap();
        assert_eq!(o, BundleOrigin::Embedded);
        assert!(d.starts_with(cache.path()) && d.join("manifest.json").is_file());
    }

    #[test]
    fn a_missing_bundle_is_one_line_naming_it() {
        let cache = tempfile::tempdir().unwrap();
        let cwd = tempfile::tempdir().unwrap();
        let err = resolve_bundle(Path::new("/no/such/bundle"), cwd.path(), cache.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/no/such/bundle") && err.contains("not found"),
            "{err}"
        );
        assert!(!err.contains('\n') && !err.contains("os error"), "{err}");
        let err = resolve_bundle(cwd.path(), cwd.path(), cache.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no manifest.json"), "{err}");
    }

    #[test]
    fn cache_root_follows_xdg_then_home() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            cache_root(
                Path::new(""),
                env(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")])
            ),
            PathBuf::from("/x/recserve")
        );
        assert_eq!(
            cache_root(Path::new(""), env(&[("HOME", "/h")])),
            PathBuf::from("/h/.cache/recserve")
        );
        assert_eq!(
            cache_root(Path::new("/c"), env(&[("HOME", "/h")])),
            PathBuf::from("/c")
        );
    }
}
