//! Catalogue changes as plain data: what an admin sent (upsert an item with its features, take
//! an item down, bring it back), each stamped by a hybrid logical clock, and the change set
//! they add up to. Idempotent per item id, and mergeable across replicas field by field (last
//! writer wins for the features and, separately, for the availability), so a concurrent update
//! elsewhere can never undo a takedown it did not see.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An item's features as `items.csv` holds them: column → cell (`a|b` for multi-valued).
pub type Features = BTreeMap<String, String>;

/// One change to one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Change {
    /// Adds the item, or replaces its features. Availability is unchanged.
    Upsert {
        item_id: String,
        #[serde(default)]
        features: Features,
    },
    /// The item is never served until it is restored.
    TakeDown { item_id: String },
    /// Undoes a takedown.
    Restore { item_id: String },
}

impl Change {
    pub fn item_id(&self) -> &str {
        match self {
            Change::Upsert { item_id, .. }
            | Change::TakeDown { item_id }
            | Change::Restore { item_id } => item_id,
        }
    }
}

/// A change with the stamp that orders it, as the event log and the fleet hold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StampedChange {
    pub change: Change,
    pub stamp: Stamp,
}

/// Orders changes across replicas: milliseconds of a hybrid logical clock, then the origin.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stamp {
    pub ms: i64,
    pub origin: String,
}

/// Issues strictly increasing stamps: wall-clock milliseconds, or one more than the last
/// stamp seen (issued here or merged from elsewhere) when the clock lags.
#[derive(Debug, Default)]
pub struct StampClock {
    last: std::sync::atomic::AtomicI64,
}

impl StampClock {
    pub fn next(&self, origin: &str) -> Stamp {
        use std::sync::atomic::Ordering;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut prev = self.last.load(Ordering::Relaxed);
        loop {
            let ms = now.max(prev + 1);
            match self
                .last
                .compare_exchange(prev, ms, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Stamp {
                        ms,
                        origin: origin.to_string(),
                    };
                }
                Err(p) => prev = p,
            }
        }
    }

    /// Moves the clock past a stamp seen elsewhere, so later local changes order after it.
    pub fn observe(&self, stamp: &Stamp) {
        self.last
            .fetch_max(stamp.ms, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Everything the runtime catalogue says about one item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Features set at runtime; `None` when only its availability changed (a bundle item).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Features>,
    #[serde(default)]
    pub features_stamp: Stamp,
    #[serde(default)]
    pub taken_down: bool,
    #[serde(default)]
    pub status_stamp: Stamp,
}

impl Entry {
    /// The entry one change makes on its own.
    pub fn of(change: &Change, stamp: &Stamp) -> Self {
        match change {
            Change::Upsert { features, .. } => Entry {
                features: Some(features.clone()),
                features_stamp: stamp.clone(),
                ..Default::default()
            },
            Change::TakeDown { .. } => Entry {
                taken_down: true,
                status_stamp: stamp.clone(),
                ..Default::default()
            },
            Change::Restore { .. } => Entry {
                taken_down: false,
                status_stamp: stamp.clone(),
                ..Default::default()
            },
        }
    }

    /// Takes each half of `other` that is newer. Returns whether anything changed.
    pub fn merge(&mut self, other: &Entry) -> bool {
        let mut changed = false;
        if other.features_stamp > self.features_stamp {
            changed |= self.features != other.features;
            self.features = other.features.clone();
            self.features_stamp = other.features_stamp.clone();
        }
        if other.status_stamp > self.status_stamp {
            changed |= self.taken_down != other.taken_down;
            self.taken_down = other.taken_down;
            self.status_stamp = other.status_stamp.clone();
        }
        changed
    }

    /// The newest stamp on the entry.
    pub fn newest(&self) -> &Stamp {
        std::cmp::max(&self.features_stamp, &self.status_stamp)
    }
}

/// The runtime catalogue: one entry per item id that any change touched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeSet {
    pub entries: BTreeMap<String, Entry>,
}

impl ChangeSet {
    /// Applies `change` stamped `stamp`; returns whether the set changed.
    pub fn apply(&mut self, change: &Change, stamp: &Stamp) -> bool {
        self.merge(change.item_id(), &Entry::of(change, stamp))
    }

    /// Merges another replica's (or an older snapshot's) entry for `item`.
    pub fn merge(&mut self, item: &str, entry: &Entry) -> bool {
        match self.entries.get_mut(item) {
            Some(e) => e.merge(entry),
            None => {
                let mut e = Entry::default();
                let changed = e.merge(entry);
                self.entries.insert(item.to_string(), e);
                changed
            }
        }
    }

    pub fn get(&self, item: &str) -> Option<&Entry> {
        self.entries.get(item)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Limits on one admin request, so a batch cannot grow memory or the log without bound.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_changes: usize,
    pub max_features: usize,
    pub max_id_chars: usize,
    pub max_cell_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_changes: 10_000,
            max_features: 64,
            max_id_chars: 256,
            max_cell_chars: 4096,
        }
    }
}

/// Checks a batch; the message names the offending change.
pub fn validate(changes: &[Change], limits: Limits) -> Result<(), String> {
    if changes.is_empty() {
        return Err("no changes".into());
    }
    if changes.len() > limits.max_changes {
        return Err(format!(
            "{} changes in one request; at most {}",
            changes.len(),
            limits.max_changes
        ));
    }
    let bad = |s: &str, max: usize| s.chars().count() > max || s.chars().any(char::is_control);
    for (i, c) in changes.iter().enumerate() {
        let id = c.item_id();
        if id.trim().is_empty() || bad(id, limits.max_id_chars) {
            return Err(format!(
                "changes[{i}]: item_id must be non-empty, at most {} characters, without control characters",
                limits.max_id_chars
            ));
        }
        if let Change::Upsert { features, .. } = c {
            if features.len() > limits.max_features {
                return Err(format!(
                    "changes[{i}]: {} features; at most {}",
                    features.len(),
                    limits.max_features
                ));
            }
            for (k, v) in features {
                if k.trim().is_empty()
                    || k.eq_ignore_ascii_case("item_id")
                    || bad(k, limits.max_id_chars)
                    || bad(v, limits.max_cell_chars)
                {
                    return Err(format!(
                        "changes[{i}]: feature {k:?} must be a non-empty column name other than item_id, its value at most {} characters, without control characters",
                        limits.max_cell_chars
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(ms: i64, o: &str) -> Stamp {
        Stamp {
            ms,
            origin: o.into(),
        }
    }

    fn up(id: &str, genre: &str) -> Change {
        Change::Upsert {
            item_id: id.into(),
            features: [("genre".to_string(), genre.to_string())].into(),
        }
    }

    // Cost: microseconds.
    #[test]
    fn changes_are_idempotent_and_a_late_update_never_undoes_a_takedown() {
        let mut a = ChangeSet::default();
        assert!(a.apply(&up("x", "g1"), &st(1, "a")));
        assert!(
            !a.apply(&up("x", "g1"), &st(1, "a")),
            "the same change twice"
        );
        assert!(a.apply(
            &Change::TakeDown {
                item_id: "x".into()
            },
            &st(3, "b")
        ));
        // An update stamped before the takedown but merged after it keeps the item down.
        assert!(a.apply(&up("x", "g2"), &st(2, "c")));
        let e = a.get("x").unwrap();
        assert!(e.taken_down);
        assert_eq!(e.features.as_ref().unwrap()["genre"], "g2");
        // An older status change is ignored; a newer restore wins.
        assert!(!a.apply(
            &Change::Restore {
                item_id: "x".into()
            },
            &st(2, "z")
        ));
        assert!(a.apply(
            &Change::Restore {
                item_id: "x".into()
            },
            &st(4, "a")
        ));
        assert!(!a.get("x").unwrap().taken_down);
    }

    // Cost: a few hundred random merges, milliseconds.
    #[test]
    fn merging_in_any_order_converges() {
        use crate::splitmix::SplitMix64;
        let mut rng = SplitMix64(7);
        let changes: Vec<(Change, Stamp)> = (0..200)
            .map(|k| {
                let id = format!("i{}", rng.next_u64() % 5);
                let c = match rng.next_u64() % 3 {
                    0 => up(&id, &format!("g{}", rng.next_u64() % 3)),
                    1 => Change::TakeDown { item_id: id },
                    _ => Change::Restore { item_id: id },
                };
                (c, st(k as i64 / 3, &format!("r{}", k % 3)))
            })
            .collect();
        let mut forward = ChangeSet::default();
        for (c, s) in &changes {
            forward.apply(c, s);
        }
        let mut backward = ChangeSet::default();
        for (c, s) in changes.iter().rev() {
            backward.apply(c, s);
        }
        assert_eq!(forward, backward);
        // Two replicas merging each other's state end equal to either order.
        let (mut r1, mut r2) = (ChangeSet::default(), ChangeSet::default());
        for (k, (c, s)) in changes.iter().enumerate() {
            if k % 2 == 0 { &mut r1 } else { &mut r2 }.apply(c, s);
        }
        let snapshot2 = r2.clone();
        for (id, e) in &r1.entries {
            r2.merge(id, e);
        }
        for (id, e) in &snapshot2.entries {
            r1.merge(id, e);
        }
        assert_eq!(r1, forward);
        assert_eq!(r2, forward);
    }

    #[test]
    fn stamps_increase_even_when_issued_in_the_same_millisecond() {
        let c = StampClock::default();
        let a = c.next("r");
        let b = c.next("r");
        assert!(b > a);
        c.observe(&st(a.ms + 1_000_000, "other"));
        assert!(c.next("r").ms > a.ms + 1_000_000);
    }

    #[test]
    fn validation_names_the_bad_change() {
        let ok = vec![up("x", "g")];
        assert!(validate(&ok, Limits::default()).is_ok());
        assert!(validate(&[], Limits::default()).is_err());
        let e = validate(
            &[
                up("x", "g"),
                Change::TakeDown {
                    item_id: " ".into(),
                },
            ],
            Limits::default(),
        )
        .unwrap_err();
        assert!(e.starts_with("changes[1]"), "{e}");
        let bad = Change::Upsert {
            item_id: "y".into(),
            features: [("item_id".to_string(), "z".to_string())].into(),
        };
        assert!(validate(&[bad], Limits::default()).is_err());
    }
}
