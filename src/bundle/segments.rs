//! Segment popularity in the bundle: the user segments (values of the users' features, such as
//! `age_group=25-34`), each user's segments, and per segment its most popular items. Optional:
//! bundles without these files (older ones, data without user features) have no segments and
//! the segment source proposes nothing. Files:
//!
//! ```text
//! segments.txt                one segment name per line; the line number is the segment id
//! user_segments_indptr.npy    int64 [n_users+1]  CSR of user → segment ids (int32 in user_segments.npy)
//! segment_pop_ids.npy         int32 [n_segments, K]  each segment's top items, best first, -1 = none
//! segment_pop_scores.npy      float32 [n_segments, K]  ln(1 + time-decayed count among the segment's users)
//! ```

use super::{BundleError, npy};
use std::path::Path;

/// The user segments and their popularity lists (empty: no segments).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Segments {
    pub names: Vec<String>,
    /// CSR user → segment ids; empty when there are no segments.
    pub user_indptr: Vec<usize>,
    pub user_seg: Vec<u32>,
    /// Items per segment row.
    pub k: usize,
    /// `n_segments × k`, best first, padded with -1 (score 0).
    pub ids: Vec<i32>,
    pub scores: Vec<f32>,
}

impl Segments {
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() || self.k == 0
    }

    /// User `u`'s segment ids (empty without segments).
    pub fn of_user(&self, u: u32) -> &[u32] {
        let u = u as usize;
        match (self.user_indptr.get(u), self.user_indptr.get(u + 1)) {
            (Some(&a), Some(&b)) => self.user_seg.get(a..b).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Segment `s`'s top items and scores, best first (padding included).
    pub fn top(&self, s: u32) -> (&[i32], &[f32]) {
        let (a, b) = (s as usize * self.k, (s as usize + 1) * self.k);
        match (self.ids.get(a..b), self.scores.get(a..b)) {
            (Some(i), Some(w)) => (i, w),
            _ => (&[], &[]),
        }
    }

    /// Writes the four files (nothing when empty).
    pub fn write(&self, dir: &Path) -> Result<(), BundleError> {
        if self.is_empty() {
            return Ok(());
        }
        let p = |f: &str| dir.join(f);
        let path = p("segments.txt");
        let mut text = self.names.join("\n");
        text.push('\n');
        std::fs::write(&path, text).map_err(|source| BundleError::Io { path, source })?;
        let indptr: Vec<i64> = self.user_indptr.iter().map(|&x| x as i64).collect();
        npy::write_i64_1d(&p("user_segments_indptr.npy"), &indptr)?;
        let segs: Vec<i32> = self.user_seg.iter().map(|&x| x as i32).collect();
        npy::write_i32_1d(&p("user_segments.npy"), &segs)?;
        let n = self.names.len();
        npy::write_i32_2d(&p("segment_pop_ids.npy"), n, self.k, &self.ids)?;
        npy::write_f32_2d(&p("segment_pop_scores.npy"), n, self.k, &self.scores)
    }

    /// Reads and validates the files for a bundle of `n_users` × `n_items`; no `segments.txt`
    /// means no segments.
    pub fn read(dir: &Path, n_users: usize, n_items: usize) -> Result<Self, BundleError> {
        let p = |f: &str| dir.join(f);
        let path = p("segments.txt");
        let names: Vec<String> = match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => return Err(BundleError::Io { path, source }),
            Ok(t) => t.lines().map(str::to_string).collect(),
        };
        let invalid = |m: String| BundleError::Invalid(m);
        let n = names.len();
        let user_seg_raw = npy::read_i32_1d(&p("user_segments.npy"))?;
        if let Some(bad) = user_seg_raw.iter().find(|&&s| s < 0 || s as usize >= n) {
            return Err(invalid(format!(
                "user_segments.npy holds {bad}, out of range 0..{n}"
            )));
        }
        let user_seg: Vec<u32> = user_seg_raw.into_iter().map(|s| s as u32).collect();
        let raw = npy::read_i64_1d(&p("user_segments_indptr.npy"))?;
        if raw.len() != n_users + 1
            || raw.first() != Some(&0)
            || raw.windows(2).any(|w| w[1] < w[0])
            || raw.last().copied() != Some(user_seg.len() as i64)
        {
            return Err(invalid(format!(
                "user_segments_indptr.npy is not a CSR index over {n_users} users and {} entries",
                user_seg.len()
            )));
        }
        let user_indptr = raw.into_iter().map(|x| x as usize).collect();
        let (r, k, ids) = npy::read_i32_2d(&p("segment_pop_ids.npy"))?;
        if r != n {
            return Err(invalid(format!(
                "segment_pop_ids.npy has {r} rows, segments.txt {n} segments"
            )));
        }
        if let Some(bad) = ids.iter().find(|&&i| i < -1 || i >= n_items as i32) {
            return Err(invalid(format!(
                "segment_pop_ids.npy holds {bad}, not an item id or -1"
            )));
        }
        let (r2, k2, scores) = npy::read_f32_2d(&p("segment_pop_scores.npy"))?;
        if (r2, k2) != (n, k) {
            return Err(invalid(format!(
                "segment_pop_scores.npy has shape [{r2}, {k2}], expected [{n}, {k}]"
            )));
        }
        if scores.iter().any(|v| !v.is_finite()) {
            return Err(invalid(
                "segment_pop_scores.npy holds a non-finite value".into(),
            ));
        }
        Ok(Self {
            names,
            user_indptr,
            user_seg,
            k,
            ids,
            scores,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Cost: a few small files in a temp dir, milliseconds.
    #[test]
    fn segments_round_trip_and_bad_ids_are_refused() {
        let s = Segments {
            names: vec!["age=young".into(), "region=north".into()],
            user_indptr: vec![0, 2, 2, 3],
            user_seg: vec![0, 1, 1],
            k: 2,
            ids: vec![3, 1, 2, -1],
            scores: vec![2.0, 1.0, 0.5, 0.0],
        };
        let dir = tempfile::tempdir().unwrap();
        s.write(dir.path()).unwrap();
        let back = Segments::read(dir.path(), 3, 4).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.of_user(0), &[0, 1]);
        assert!(back.of_user(1).is_empty() && back.of_user(9).is_empty());
        assert_eq!(back.top(1), (&[2, -1][..], &[0.5, 0.0][..]));
        // An item id beyond the catalogue is refused.
        assert!(Segments::read(dir.path(), 3, 3).is_err());
        // No files: no segments.
        let empty = tempfile::tempdir().unwrap();
        assert!(Segments::read(empty.path(), 3, 4).unwrap().is_empty());
    }
}
