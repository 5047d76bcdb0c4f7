//! A replica's stable name: configured, or generated once and kept in the event log's
//! directory, because the stream's exactly-once rule is "(replica, log seq) is shipped once",
//! so the name must follow the log that owns the sequence numbers.

use std::path::Path;

/// Longest accepted replica id (it is part of Redis keys and stream entries).
const MAX_LEN: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ReplicaIdError {
    #[error("replica id {0:?} must be 1-64 characters of [A-Za-z0-9._-]")]
    Invalid(String),
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn valid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `configured` when set, else the id stored in `dir/replica.id`, else a new one written there.
pub fn resolve(configured: &str, dir: &Path) -> Result<String, ReplicaIdError> {
    if !configured.is_empty() {
        return if valid(configured) {
            Ok(configured.to_string())
        } else {
            Err(ReplicaIdError::Invalid(configured.to_string()))
        };
    }
    let path = dir.join("replica.id");
    let io = |source| ReplicaIdError::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(s) if valid(s.trim()) => return Ok(s.trim().to_string()),
        Ok(s) => return Err(ReplicaIdError::Invalid(s.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    std::fs::create_dir_all(dir).map_err(io)?;
    let id = format!("r-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let tmp = dir.join("replica.id.tmp");
    std::fs::write(&tmp, format!("{id}\n")).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_kept_and_configured_ids_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let a = resolve("", dir.path()).unwrap();
        assert!(valid(&a), "{a}");
        assert_eq!(resolve("", dir.path()).unwrap(), a, "kept across restarts");
        assert_eq!(resolve("web-1", dir.path()).unwrap(), "web-1");
        assert!(resolve("has space", dir.path()).is_err());
        assert!(resolve(&"x".repeat(65), dir.path()).is_err());
    }
}
