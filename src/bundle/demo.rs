//! The demo bundle (`models/demo`, ~3 MB) embedded in the binary, so that an installed
//! `recserve serve` with no bundle configured still serves something: the files are unpacked once
//! into a directory the caller picks (a cache directory) and read from there like any bundle.
//! Never used when a bundle is configured.

use std::path::{Path, PathBuf};

macro_rules! embed {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!("../../models/demo/", $name)).as_slice(),
        )
    };
}

/// Every file of `models/demo`, by name (a test checks the list against the directory).
pub const FILES: &[(&str, &[u8])] = &[
    embed!("categories.txt"),
    embed!("item2item_ids.npy"),
    embed!("item2item_weights.npy"),
    embed!("item_bias.npy"),
    embed!("item_categories.npy"),
    embed!("item_categories_indptr.npy"),
    embed!("item_cf.npy"),
    embed!("item_content.npy"),
    embed!("item_feature_emb.npy"),
    embed!("item_features.json"),
    embed!("item_ids.txt"),
    embed!("item_stats.npy"),
    embed!("manifest.json"),
    embed!("ranker.txt"),
    embed!("segment_pop_ids.npy"),
    embed!("segment_pop_scores.npy"),
    embed!("segments.txt"),
    embed!("user_cf.npy"),
    embed!("user_feature_emb.npy"),
    embed!("user_features.json"),
    embed!("user_history_indptr.npy"),
    embed!("user_history_items.npy"),
    embed!("user_history_ts.npy"),
    embed!("user_ids.txt"),
    embed!("user_segments.npy"),
    embed!("user_segments_indptr.npy"),
];

/// A short content hash of the embedded files: the unpacked directory's name, so a binary with
/// a retrained demo never reads another binary's copy.
pub fn fingerprint() -> String {
    let mut h = crc32fast::Hasher::new();
    for (name, bytes) in FILES {
        h.update(name.as_bytes());
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    format!("{:08x}", h.finalize())
}

/// Unpacks the demo bundle under `root` (as `root/demo-<fingerprint>`) unless it is there
/// already, and returns its directory. Writes into a fresh sibling directory and renames it into
/// place, so a concurrent start or a crash never leaves a half-written bundle at the final path.
pub fn unpack(root: &Path) -> std::io::Result<PathBuf> {
    let dir = root.join(format!("demo-{}", fingerprint()));
    if dir.join("manifest.json").is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(root)?;
    let tmp = root.join(format!(".demo-{}-{}", fingerprint(), std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    for (name, bytes) in FILES {
        std::fs::write(tmp.join(name), bytes)?;
    }
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => Ok(dir),
        // Another process won the race: its copy is complete (it was renamed whole).
        Err(_) if dir.join("manifest.json").is_file() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dir)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeds_every_file_of_the_demo_bundle() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let embedded: Vec<String> = FILES.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(
            embedded, on_disk,
            "models/demo changed: update bundle/demo.rs"
        );
    }

    #[test]
    fn unpacks_a_readable_bundle_once() {
        let root = tempfile::tempdir().unwrap();
        let dir = unpack(root.path()).unwrap();
        let model = crate::bundle::Model::read(&dir).unwrap();
        let want =
            crate::bundle::Model::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo"))
                .unwrap();
        assert_eq!(model.manifest.model_version, want.manifest.model_version);
        assert_eq!(model.item_ids, want.item_ids);
        // A second call finds the unpacked copy and leaves no temporary directory behind.
        assert_eq!(unpack(root.path()).unwrap(), dir);
        let entries = std::fs::read_dir(root.path()).unwrap().count();
        assert_eq!(entries, 1);
    }
}
