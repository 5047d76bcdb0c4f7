//! A/B treatments from `config/variants.toml`: candidate counts, blend weights, ranker on/off and
//! the bandit switch per variant. `X-Variant` picks one; missing or unknown → the default.
//! The shipped file is embedded in the binary (used when `variants_file` is empty), so the
//! service starts from any working directory.

use crate::bandit::BlendWeights;
use crate::pipeline::SourceCounts;
use crate::ranking::{Diversity, ExposurePolicy};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    #[serde(default)]
    pub counts: SourceCounts,
    /// Blend weights for the blend strategy; absent = the bundle's learned weights.
    #[serde(default)]
    pub weights: Option<BlendWeights>,
    #[serde(default = "yes")]
    pub ranker: bool,
    /// When true the contextual bandit picks the blend weights per request.
    #[serde(default)]
    pub bandit: bool,
    /// `diversity = { lambda = 0.3, max_per_category = 2 }`; absent = off. A request's
    /// `diversity=` / `max_per_category=` override it.
    #[serde(default)]
    pub diversity: Diversity,
    /// `exposure = { share = 0.0 }` (off) or another new-item exposure policy; absent = the
    /// `[serving.exposure]` policy.
    #[serde(default)]
    pub exposure: Option<ExposurePolicy>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variants {
    pub default: String,
    #[serde(rename = "variant")]
    pub variants: Vec<Variant>,
}

/// How a request's variant was decided (a bounded label for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariantChoice {
    Requested,
    Missing,
    Unknown,
}

impl VariantChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            VariantChoice::Requested => "requested",
            VariantChoice::Missing => "missing",
            VariantChoice::Unknown => "unknown",
        }
    }
}

/// The shipped treatments, `config/variants.toml`, embedded.
pub const DEFAULT_TOML: &str = include_str!("../../config/variants.toml");

impl Variants {
    /// The treatments from `path`, or the embedded defaults when `path` is empty.
    pub fn load(path: &Path) -> Result<Self, String> {
        if path.as_os_str().is_empty() {
            return Self::parse(DEFAULT_TOML).map_err(|e| format!("embedded variants: {e}"));
        }
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("variants file {} not found", path.display()),
            _ => format!("cannot read variants file {}: {e}", path.display()),
        })?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let v: Variants = toml::from_str(text).map_err(|e| e.to_string())?;
        if v.variants.is_empty() {
            return Err("no [[variant]] defined".into());
        }
        if !v.variants.iter().any(|x| x.name == v.default) {
            return Err(format!("default variant {:?} is not defined", v.default));
        }
        let mut names = std::collections::HashSet::new();
        for x in &v.variants {
            if !names.insert(x.name.as_str()) {
                return Err(format!("variant {:?} is defined twice", x.name));
            }
            if x.name.is_empty()
                || x.name.len() > 64
                || !x
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(format!(
                    "variant name {:?} must be 1-64 chars of [A-Za-z0-9_-]",
                    x.name
                ));
            }
            x.diversity
                .validate()
                .map_err(|e| format!("variant {:?}: {e}", x.name))?;
            if let Some(e) = &x.exposure {
                e.validate()
                    .map_err(|e| format!("variant {:?}: {e}", x.name))?;
            }
        }
        Ok(v)
    }

    /// The variant for a header value.
    pub fn select(&self, header: Option<&str>) -> (&Variant, VariantChoice) {
        let default = self
            .variants
            .iter()
            .find(|v| v.name == self.default)
            .unwrap_or(&self.variants[0]);
        match header {
            None => (default, VariantChoice::Missing),
            Some(h) => match self.variants.iter().find(|v| v.name == h.trim()) {
                Some(v) => (v, VariantChoice::Requested),
                None => (default, VariantChoice::Unknown),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_variants_parse_and_select() {
        let v = Variants::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/variants.toml"))
            .unwrap();
        let (d, c) = v.select(None);
        assert_eq!(
            (d.name.as_str(), c),
            (v.default.as_str(), VariantChoice::Missing)
        );
        let (u, c) = v.select(Some("no-such-variant"));
        assert_eq!(
            (u.name.as_str(), c),
            (v.default.as_str(), VariantChoice::Unknown)
        );
        for x in &v.variants {
            assert_eq!(v.select(Some(&x.name)).0.name, x.name);
        }
    }

    #[test]
    fn empty_path_means_the_embedded_file_and_a_missing_file_says_so() {
        let embedded = Variants::load(Path::new("")).unwrap();
        let shipped =
            Variants::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/variants.toml"))
                .unwrap();
        let names = |v: &Variants| {
            v.variants
                .iter()
                .map(|x| x.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&embedded), names(&shipped));
        let err = Variants::load(Path::new("/nonexistent/variants.toml")).unwrap_err();
        assert_eq!(err, "variants file /nonexistent/variants.toml not found");
    }

    #[test]
    fn bad_variant_files_are_refused() {
        assert!(
            Variants::parse("default = \"a\"\n[[variant]]\nname = \"b\"\n")
                .unwrap_err()
                .contains("default")
        );
        assert!(
            Variants::parse(
                "default = \"a\"\n[[variant]]\nname = \"a\"\n[[variant]]\nname = \"a\"\n"
            )
            .is_err()
        );
        assert!(Variants::parse("default = \"a\"\n").is_err());
        for bad in [
            "lambda = 1.5",
            "lambda = -0.5",
            "max_per_category = 0",
            "mmr = 1",
        ] {
            let text =
                format!("default = \"a\"\n[[variant]]\nname = \"a\"\ndiversity = {{ {bad} }}\n");
            assert!(Variants::parse(&text).is_err(), "{bad}");
        }
        let ok = "default = \"a\"\n[[variant]]\nname = \"a\"\ndiversity = { lambda = 0.4, max_per_category = 3 }\n";
        let v = Variants::parse(ok).unwrap();
        assert_eq!(
            v.variants[0].diversity,
            Diversity {
                lambda: 0.4,
                max_per_category: Some(3)
            }
        );
    }
}
