//! Vocabulary of the synthetic catalogue: generic title words shared by all categories, and
//! pronounceable pseudo-words made unique per category (title words, brand names), so that
//! content features carry category signal and generic words carry none.

use rand::RngExt;
use rand::rngs::StdRng;
use rustc_hash::FxHashSet;

/// Words any title may contain, whatever its category.
pub(super) const GENERIC_WORDS: [&str; 32] = [
    "classic",
    "new",
    "pro",
    "mini",
    "max",
    "deluxe",
    "edition",
    "set",
    "pack",
    "ultra",
    "premium",
    "basic",
    "smart",
    "vintage",
    "original",
    "essential",
    "compact",
    "lite",
    "plus",
    "series",
    "collection",
    "select",
    "signature",
    "everyday",
    "studio",
    "travel",
    "home",
    "limited",
    "special",
    "bundle",
    "starter",
    "advanced",
];

const ONSETS: [&str; 16] = [
    "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "st",
];
const VOWELS: [&str; 6] = ["a", "e", "i", "o", "u", "ai"];
const CODAS: [&str; 6] = ["", "", "n", "r", "s", "x"];

/// Draws pseudo-words that are distinct from each other and from the generic words.
pub(super) struct WordFactory {
    used: FxHashSet<String>,
}

impl WordFactory {
    pub(super) fn new() -> Self {
        Self {
            used: GENERIC_WORDS.iter().map(|w| w.to_string()).collect(),
        }
    }

    /// A new lower-case word of 2–3 syllables (longer after repeated collisions, so that this
    /// terminates for any vocabulary size).
    pub(super) fn word(&mut self, rng: &mut StdRng) -> String {
        let mut attempt = 0;
        loop {
            let mut w = String::new();
            for _ in 0..rng.random_range(2..=3) + attempt / 8 {
                w.push_str(ONSETS[rng.random_range(0..ONSETS.len())]);
                w.push_str(VOWELS[rng.random_range(0..VOWELS.len())]);
            }
            w.push_str(CODAS[rng.random_range(0..CODAS.len())]);
            if self.used.insert(w.clone()) {
                return w;
            }
            attempt += 1;
        }
    }
}

/// `word` with its first letter upper-cased (titles and brands are written capitalised).
pub(super) fn capitalize(word: &str, out: &mut String) {
    let mut chars = word.chars();
    if let Some(first) = chars.next() {
        out.extend(first.to_uppercase());
        out.push_str(chars.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn words_are_unique_lowercase_and_not_generic() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut f = WordFactory::new();
        let words: Vec<String> = (0..3000).map(|_| f.word(&mut rng)).collect();
        let set: FxHashSet<&String> = words.iter().collect();
        assert_eq!(set.len(), words.len());
        assert!(
            words
                .iter()
                .all(|w| w.chars().all(|c| c.is_ascii_lowercase()))
        );
        assert!(words.iter().all(|w| !GENERIC_WORDS.contains(&w.as_str())));
        let mut s = String::new();
        capitalize("kalo", &mut s);
        assert_eq!(s, "Kalo");
    }
}
