//! The hidden "world" of the synthetic generator: categories with centroids, brands, words,
//! price levels and audience; items with categories, latent vectors, release times and Zipf
//! popularity and bundles; per-user profiles; and the samplers that turn them into interactions.
//! Memory is O(items + categories); per-interaction work is a few O(1) alias-table draws.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rustc_hash::FxHashSet;

use super::bundles::{BundleSpec, Bundles, shuffle};
use super::sampling::{AliasTable, Entry};
use super::words::{GENERIC_WORDS, WordFactory};
use super::{GenerateConfig, Regime};

/// Dimension of the latent taste space.
pub(super) const DIM: usize = 8;
pub(super) type Vector = [f32; DIM];

pub(super) const AGE_GROUPS: [&str; 5] = ["18-24", "25-34", "35-44", "45-54", "55+"];
pub(super) const REGIONS: [&str; 5] = ["north", "south", "east", "west", "central"];
/// Device preference with its probability; independent of taste (a pure noise feature).
pub(super) const DEVICES: [(&str, f64); 3] =
    [("mobile", 0.55), ("desktop", 0.35), ("tablet", 0.10)];

/// No secondary category.
pub(super) const NONE: u32 = u32::MAX;
/// Zipf exponent of item popularity within a category.
const ZIPF: f64 = 0.8;
/// Exponent of the (milder) power law of category sizes.
const CATEGORY_ZIPF: f64 = 0.5;
/// Share of items on the catalogue before the period starts (the rest is released during it).
const BACKLIST_SHARE: f64 = 0.35;
/// Share of items with a second category.
const SECOND_CATEGORY_SHARE: f64 = 0.25;
/// Norm scale of category centroids and of the item / user noise around them.
const CENTROID_SCALE: f64 = 1.5;
const ITEM_NOISE: f64 = 0.7;
const USER_NOISE: f64 = 0.7;
/// Affinity temperature: an item is chosen ∝ popularity · exp(BETA · <user, item>).
pub(super) const BETA: f64 = 3.0;
/// Candidates drawn by popularity before the affinity-weighted pick (sampling-importance-resampling).
const CANDIDATES: usize = 8;
/// Popularity draws tried before giving up on finding an item released by the pick's time.
const RELEASE_TRIES: usize = 32;
/// Probability that a pick ignores the user's taste and follows global category popularity.
pub(super) const EXPLORE: f64 = 0.10;
/// Item interest half-lives after release are log-uniform in this range, in days.
const HALF_LIFE_DAYS: (f64, f64) = (10.0, 90.0);

/// How an item's interest changes after its release (see [`World::interest`]): it decays from 1
/// with its half-life towards an evergreen floor.
#[derive(Debug, Clone, Copy)]
pub(super) struct Lifecycle {
    /// Seconds.
    pub(super) half_life: f64,
    /// Interest long after release, in (0, 1].
    pub(super) floor: f64,
}

/// How much the observable features say about the hidden categories and tastes, by regime.
#[derive(Debug, Clone, Copy)]
pub(super) struct Strength {
    /// Weak titles: probability of one word of the primary category (default titles always
    /// hold two, see [`World::title_words`]).
    weak_title_primary: Option<f64>,
    /// Probability that the brand is one of the primary category's (else any category's).
    own_brand: f64,
    /// Category price medians are log-uniform in `price_median.0 · price_median.1^u`, u ∈ [0, 1).
    price_median: (f64, f64),
    /// σ of the log-normal price around the median.
    price_sigma: f64,
    /// Probability of an audience attribute following the user's top category (else uniform).
    pub(super) age_follows_taste: f64,
    pub(super) region_follows_taste: f64,
}

impl Strength {
    pub(super) fn of(regime: Regime) -> Self {
        match regime {
            Regime::Default => Self {
                weak_title_primary: None,
                own_brand: 0.9,
                price_median: (5.0, 100.0),
                price_sigma: 0.35,
                age_follows_taste: 0.65,
                region_follows_taste: 0.55,
            },
            Regime::WeakFeatures => Self {
                weak_title_primary: Some(0.2),
                own_brand: 0.15,
                price_median: (40.0, 1.5),
                price_sigma: 0.6,
                age_follows_taste: 0.1,
                region_follows_taste: 0.1,
            },
        }
    }
}

const DAY: i64 = 86_400;

pub(super) struct Category {
    pub(super) name: String,
    pub(super) centroid: Vector,
    pub(super) words: Vec<String>,
    pub(super) brands: Vec<String>,
    pub(super) price_median: f64,
    pub(super) age_group: usize,
    pub(super) region: usize,
}

/// One user's hidden profile, re-derivable from (seed, user index).
#[derive(Debug, Clone)]
pub(super) struct UserProfile {
    /// Favourite categories with weights summing to 1, heaviest first.
    pub(super) favourites: [(u32, f64); 3],
    pub(super) n_favourites: usize,
    /// The category the user drifts towards, and how far (share of picks by the period's end).
    pub(super) drift_category: u32,
    pub(super) drift: f64,
    pub(super) vector: Vector,
    /// First possible interaction time.
    pub(super) join: i64,
    pub(super) age_group: usize,
    pub(super) region: usize,
    pub(super) device: usize,
}

pub(super) struct World {
    pub(super) seed: u64,
    pub(super) start: i64,
    pub(super) end: i64,
    pub(super) strength: Strength,
    /// Share of events that are uniform picks among released warm items.
    pub(super) noise_share: f64,
    /// Probability that the event after a bundle member follows its bundle.
    pub(super) bundle_follow: f64,
    pub(super) categories: Vec<Category>,
    category_cum: Vec<f64>,
    pub(super) item_primary: Vec<u32>,
    pub(super) item_secondary: Vec<u32>,
    pub(super) item_vector: Vec<Vector>,
    pub(super) item_release: Vec<i64>,
    /// Each item's interest lifecycle; `None` when the config turns lifecycles off.
    pub(super) item_lifecycle: Option<Vec<Lifecycle>>,
    #[cfg(test)]
    pub(super) item_cold: Vec<bool>,
    pub(super) bundles: Bundles,
    /// All warm items (for uniform noise picks).
    warm: Vec<u32>,
    /// Warm items by category (primary, and secondary at half weight), weighted by popularity.
    by_category: AliasTable,
    /// All warm items, weighted by popularity.
    all: AliasTable,
    /// A warm item released before the period: what any time can fall back to.
    fallback_item: u32,
}

/// Independent random streams, so that items and users can be generated in any order.
#[derive(Clone, Copy)]
pub(super) enum Stream {
    Setup = 1,
    Item = 2,
    User = 3,
    Activity = 4,
    Bundle = 5,
    Lifecycle = 6,
}

/// A generator for `(seed, stream, index)`, decorrelated by SplitMix64 finalisation.
pub(super) fn rng_for(seed: u64, stream: Stream, index: u64) -> StdRng {
    let mut z = seed ^ (stream as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index.rotate_left(29);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    StdRng::seed_from_u64(z ^ (z >> 31) ^ index)
}

/// A standard normal draw (Box–Muller).
pub(super) fn normal(rng: &mut StdRng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn noise(rng: &mut StdRng, scale: f64) -> Vector {
    let s = scale / (DIM as f64).sqrt();
    std::array::from_fn(|_| (normal(rng) * s) as f32)
}

pub(super) fn dot(a: &Vector, b: &Vector) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

/// Index drawn from an inclusive cumulative table.
fn draw(cum: &[f64], rng: &mut StdRng) -> usize {
    let total = cum.last().copied().unwrap_or(0.0);
    let x = rng.random::<f64>() * total;
    cum.partition_point(|&c| c <= x)
        .min(cum.len().saturating_sub(1))
}

pub(super) fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    weights
        .scan(0.0, |acc, w| {
            *acc += w;
            Some(*acc)
        })
        .collect()
}

impl World {
    /// Builds the world; the config must be valid (see `GenerateConfig::validate`).
    pub(super) fn new(cfg: &GenerateConfig, end: i64) -> Self {
        let mut rng = rng_for(cfg.seed, Stream::Setup, 0);
        let strength = Strength::of(cfg.regime);
        let start = end - i64::from(cfg.days) * DAY;
        let n_cat = cfg.categories;
        let mut words = WordFactory::new();
        let categories: Vec<Category> = (0..n_cat)
            .map(|c| Category {
                name: format!("c{c:02}"),
                centroid: noise(&mut rng, CENTROID_SCALE),
                words: (0..12).map(|_| words.word(&mut rng)).collect(),
                brands: (0..rng.random_range(3..=6))
                    .map(|_| words.word(&mut rng))
                    .collect(),
                // Log-uniform: 5–500 (default), 40–60 (weak features).
                price_median: strength.price_median.0
                    * strength.price_median.1.powf(rng.random::<f64>()),
                age_group: rng.random_range(0..AGE_GROUPS.len()),
                region: rng.random_range(0..REGIONS.len()),
            })
            .collect();
        let category_cum = cumulative((0..n_cat).map(|c| (c as f64 + 1.0).powf(-CATEGORY_ZIPF)));

        let n_items = cfg.items;
        let mut item_cold = vec![false; n_items];
        for i in rand::seq::index::sample(&mut rng, n_items, cfg.n_cold_items()) {
            item_cold[i] = true;
        }
        // Popularity ranks within a category follow a random order of the items, so that ids
        // carry no popularity information.
        let mut order: Vec<u32> = (0..n_items as u32).collect();
        shuffle(&mut order, &mut rng);
        let mut item_primary = vec![0u32; n_items];
        let mut item_secondary = vec![NONE; n_items];
        let mut item_vector = vec![[0f32; DIM]; n_items];
        let mut item_release = vec![0i64; n_items];
        let mut item_pop = vec![0f64; n_items];
        let mut rank_in_category = vec![0u64; n_cat];
        let span = end - start;
        for &i in &order {
            let i = i as usize;
            let primary = draw(&category_cum, &mut rng);
            let secondary = if n_cat > 1 && rng.random_bool(SECOND_CATEGORY_SHARE) {
                (primary + rng.random_range(1..n_cat)) % n_cat
            } else {
                usize::MAX
            };
            let mut v = noise(&mut rng, ITEM_NOISE);
            for (d, x) in v.iter_mut().enumerate() {
                let c = &categories[primary];
                *x += if secondary == usize::MAX {
                    c.centroid[d]
                } else {
                    0.7 * c.centroid[d] + 0.3 * categories[secondary].centroid[d]
                };
            }
            item_release[i] = if rng.random_bool(BACKLIST_SHARE) {
                start - rng.random_range(1..=365 * DAY)
            } else {
                start + rng.random_range(0..span)
            };
            item_primary[i] = primary as u32;
            item_secondary[i] = if secondary == usize::MAX {
                NONE
            } else {
                secondary as u32
            };
            item_vector[i] = v;
            rank_in_category[primary] += 1;
            item_pop[i] = (rank_in_category[primary] as f64).powf(-ZIPF);
        }
        // Guarantee one warm item released before the period, so every time has a candidate.
        let fallback_item = match (0..n_items).find(|&i| !item_cold[i] && item_release[i] < start) {
            Some(i) => i,
            None => {
                let i = (0..n_items).find(|&i| !item_cold[i]).unwrap_or(0);
                item_release[i] = start - DAY;
                i
            }
        } as u32;

        let bundles = Bundles::build(&BundleSpec {
            seed: cfg.seed,
            share: cfg.effective_bundle_share(),
            cross_share: cfg.bundle_cross_share,
            max_size: cfg.max_bundle_size,
            n_categories: n_cat,
            item_primary: &item_primary,
            item_cold: &item_cold,
        });
        let warm: Vec<u32> = (0..n_items as u32)
            .filter(|&i| !item_cold[i as usize])
            .collect();
        let mut by_cat = Vec::with_capacity(n_items + n_items / 3);
        let mut all = Vec::with_capacity(n_items);
        for i in warm.iter().map(|&i| i as usize) {
            let entry = |segment, weight| Entry {
                segment,
                item: i as u32,
                stamp: item_release[i],
                weight,
            };
            by_cat.push(entry(item_primary[i], item_pop[i]));
            if item_secondary[i] != NONE {
                by_cat.push(entry(item_secondary[i], 0.5 * item_pop[i]));
            }
            all.push(entry(0, item_pop[i]));
        }
        // From their own streams, so that turning lifecycles off leaves everything else as it was.
        let item_lifecycle = cfg.item_lifecycle.then(|| {
            (0..n_items)
                .map(|i| {
                    let mut r = rng_for(cfg.seed, Stream::Lifecycle, i as u64);
                    let (lo, hi) = HALF_LIFE_DAYS;
                    let days = lo * (hi / lo).powf(r.random::<f64>());
                    // u² in (0, 1]: most items fade to little, a few stay evergreen.
                    let u: f64 = r.random_range(0.05..=1.0);
                    Lifecycle {
                        half_life: days * DAY as f64,
                        floor: u * u,
                    }
                })
                .collect()
        });
        Self {
            seed: cfg.seed,
            start,
            end,
            strength,
            noise_share: cfg.noise_share,
            bundle_follow: cfg.effective_bundle_follow(),
            categories,
            category_cum,
            item_primary,
            item_secondary,
            item_vector,
            item_release,
            item_lifecycle,
            #[cfg(test)]
            item_cold,
            bundles,
            warm,
            by_category: AliasTable::build(n_cat, by_cat),
            all: AliasTable::build(1, all),
            fallback_item,
        }
    }

    /// Share of the global category distribution that category `c` holds.
    #[cfg(test)]
    pub(super) fn category_share(&self, c: u32) -> f64 {
        let c = c as usize;
        let total = self.category_cum.last().copied().unwrap_or(1.0);
        (self.category_cum[c]
            - if c == 0 {
                0.0
            } else {
                self.category_cum[c - 1]
            })
            / total
    }

    /// The hidden profile of user `u`, and the user's random stream (positioned after it).
    pub(super) fn user(&self, u: usize) -> (UserProfile, StdRng) {
        let mut rng = rng_for(self.seed, Stream::User, u as u64);
        let n_cat = self.categories.len();
        let wanted = match rng.random::<f64>() {
            x if x < 0.40 => 1,
            x if x < 0.75 => 2,
            _ => 3,
        };
        let n_favourites = wanted.min(n_cat);
        let mut favourites = [(0u32, 0f64); 3];
        for k in 0..n_favourites {
            let mut c = draw(&self.category_cum, &mut rng);
            // Distinct favourites: step to the next free category on a repeat.
            while favourites[..k].iter().any(|f| f.0 as usize == c) {
                c = (c + 1) % n_cat;
            }
            favourites[k] = (c as u32, rng.random_range(0.2..1.0));
        }
        let favs = &mut favourites[..n_favourites];
        favs.sort_by(|a, b| b.1.total_cmp(&a.1));
        let total: f64 = favs.iter().map(|f| f.1).sum();
        let mut vector = noise(&mut rng, USER_NOISE);
        for f in favs.iter_mut() {
            f.1 /= total;
            for (x, m) in vector
                .iter_mut()
                .zip(&self.categories[f.0 as usize].centroid)
            {
                *x += (f.1 * f64::from(*m)) as f32;
            }
        }
        let drift_category = rng.random_range(0..n_cat) as u32;
        let drift = if rng.random_bool(0.5) {
            rng.random_range(0.2..0.6)
        } else {
            0.0
        };
        let join_share = if rng.random_bool(0.4) {
            0.0
        } else {
            rng.random_range(0.0..0.7)
        };
        let top = &self.categories[favourites[0].0 as usize];
        let age_group = if rng.random_bool(self.strength.age_follows_taste) {
            top.age_group
        } else {
            rng.random_range(0..AGE_GROUPS.len())
        };
        let region = if rng.random_bool(self.strength.region_follows_taste) {
            top.region
        } else {
            rng.random_range(0..REGIONS.len())
        };
        let x = rng.random::<f64>();
        let device = DEVICES
            .iter()
            .scan(0.0, |acc, d| {
                *acc += d.1;
                Some(*acc)
            })
            .position(|c| x < c)
            .unwrap_or(DEVICES.len() - 1);
        let profile = UserProfile {
            favourites,
            n_favourites,
            drift_category,
            drift,
            vector,
            join: self.start + (join_share * (self.end - self.start) as f64) as i64,
            age_group,
            region,
            device,
        };
        (profile, rng)
    }

    /// A category for user `p` at time `t`: exploration, drift (growing over the period) or a
    /// favourite by weight.
    pub(super) fn pick_category(&self, p: &UserProfile, t: i64, rng: &mut StdRng) -> u32 {
        if rng.random_bool(EXPLORE) {
            return draw(&self.category_cum, rng) as u32;
        }
        let progress = (t - self.start) as f64 / (self.end - self.start) as f64;
        if rng.random::<f64>() < p.drift * progress.clamp(0.0, 1.0) {
            return p.drift_category;
        }
        let mut x = rng.random::<f64>();
        for f in &p.favourites[..p.n_favourites] {
            if x < f.1 {
                return f.0;
            }
            x -= f.1;
        }
        p.favourites[0].0
    }

    /// An item of category `c` released by `t`, ∝ popularity · exp(BETA · affinity), approximated
    /// by drawing candidates by popularity and picking one ∝ exp(BETA · affinity). Falls back to
    /// all categories when `c` has no item released yet. Returns the item and its affinity.
    pub(super) fn pick_item(
        &self,
        p: &UserProfile,
        c: u32,
        t: i64,
        rng: &mut StdRng,
    ) -> (u32, f64) {
        let mut chosen = (
            self.fallback_item,
            dot(&p.vector, &self.item_vector[self.fallback_item as usize]),
        );
        let mut total = 0.0;
        for _ in 0..CANDIDATES {
            let Some(i) = self
                .released(&self.by_category, c as usize, t, rng)
                .or_else(|| self.released(&self.all, 0, t, rng))
            else {
                break;
            };
            let affinity = dot(&p.vector, &self.item_vector[i as usize]);
            let w = (BETA * affinity).exp();
            total += w;
            if rng.random::<f64>() * total < w {
                chosen = (i, affinity);
            }
        }
        chosen
    }

    /// An item of `segment` of `table` released by `t`, ∝ popularity · interest at `t`: rejection
    /// sampling, which is exact unless the released items hold so little of the segment's
    /// popularity (and interest) that every draw misses (then `None`).
    fn released(
        &self,
        table: &AliasTable,
        segment: usize,
        t: i64,
        rng: &mut StdRng,
    ) -> Option<u32> {
        // Lifecycles reject faded items too, so they get more tries.
        let tries = RELEASE_TRIES * if self.item_lifecycle.is_some() { 3 } else { 1 };
        for _ in 0..tries {
            let Some((item, release)) = table.draw(segment, rng) else {
                continue;
            };
            if release > t {
                continue;
            }
            // Accepted with probability `interest` (1 without lifecycles: no draw at all).
            if self.item_lifecycle.is_none() || rng.random::<f64>() < self.interest(item, t) {
                return Some(item);
            }
        }
        None
    }

    /// The share of its peak interest that `item` draws at `t` (1 without lifecycles): interest
    /// halves every half-life after release, towards the item's evergreen floor.
    pub(super) fn interest(&self, item: u32, t: i64) -> f64 {
        let (Some(lives), Some(&release)) =
            (&self.item_lifecycle, self.item_release.get(item as usize))
        else {
            return 1.0;
        };
        let Some(l) = lives.get(item as usize) else {
            return 1.0;
        };
        let age = (t - release).max(0) as f64;
        l.floor + (1.0 - l.floor) * (-age / l.half_life * std::f64::consts::LN_2).exp()
    }

    /// A warm item released by `t`, uniformly, ignoring taste and popularity (a noise event), with
    /// its affinity to `p`. Rejection sampling; the fallback item when all tries miss.
    pub(super) fn uniform_item(&self, p: &UserProfile, t: i64, rng: &mut StdRng) -> (u32, f64) {
        let item = (0..RELEASE_TRIES)
            .map(|_| self.warm[rng.random_range(0..self.warm.len())])
            .find(|&i| self.item_release[i as usize] <= t)
            .unwrap_or(self.fallback_item);
        (item, dot(&p.vector, &self.item_vector[item as usize]))
    }

    /// The event after `prev` when it follows `prev`'s bundle (probability `bundle_follow`): a
    /// uniform pick among the other members released by `t` that the user has not `seen`, else
    /// among all other released members; `None` when `prev` is in no bundle, the draw says no,
    /// or no other member is released yet. Returns the item and its affinity to `p`.
    pub(super) fn follow_bundle(
        &self,
        p: &UserProfile,
        prev: u32,
        t: i64,
        seen: &FxHashSet<u32>,
        rng: &mut StdRng,
    ) -> Option<(u32, f64)> {
        let b = self.bundles.of(prev)?;
        if !rng.random_bool(self.bundle_follow) {
            return None;
        }
        let others = || {
            self.bundles
                .members(b)
                .iter()
                .copied()
                .filter(move |&m| m != prev && self.item_release[m as usize] <= t)
        };
        let fresh = others().filter(|m| !seen.contains(m)).count();
        let item = if fresh > 0 {
            others()
                .filter(|m| !seen.contains(m))
                .nth(rng.random_range(0..fresh))
        } else {
            let released = others().count();
            (released > 0)
                .then(|| others().nth(rng.random_range(0..released)))
                .flatten()
        }?;
        Some((item, dot(&p.vector, &self.item_vector[item as usize])))
    }

    /// An item drawn by popularity alone from category `c` at `t` (for tests' baselines).
    #[cfg(test)]
    pub(super) fn popular_item(&self, c: u32, t: i64, rng: &mut StdRng) -> Option<u32> {
        self.released(&self.by_category, c as usize, t, rng)
    }

    /// Title words of item `i`. Default: mostly its categories' words, some generic, a little
    /// noise. Weak features: one word of the primary category only sometimes, 1–2 words of random
    /// categories, and generic words.
    pub(super) fn title_words<'a>(&'a self, i: usize, rng: &mut StdRng, out: &mut Vec<&'a str>) {
        out.clear();
        let pick = |c: &'a Category, rng: &mut StdRng| {
            c.words[rng.random_range(0..c.words.len())].as_str()
        };
        let generic = |rng: &mut StdRng| GENERIC_WORDS[rng.random_range(0..GENERIC_WORDS.len())];
        if rng.random_bool(0.5) {
            out.push(generic(rng));
        }
        let primary = &self.categories[self.item_primary[i] as usize];
        if let Some(p_primary) = self.strength.weak_title_primary {
            if rng.random_bool(p_primary) {
                out.push(pick(primary, rng));
            }
            for _ in 0..rng.random_range(1..=2) {
                let other = &self.categories[rng.random_range(0..self.categories.len())];
                out.push(pick(other, rng));
            }
            if rng.random_bool(0.7) {
                out.push(generic(rng));
            }
            return;
        }
        out.push(pick(primary, rng));
        out.push(pick(primary, rng));
        if self.item_secondary[i] != NONE && rng.random_bool(0.6) {
            out.push(pick(&self.categories[self.item_secondary[i] as usize], rng));
        }
        if rng.random_bool(0.1) {
            let other = &self.categories[rng.random_range(0..self.categories.len())];
            out.push(pick(other, rng));
        }
        if rng.random_bool(0.7) {
            out.push(generic(rng));
        }
    }

    /// Brand of item `i`: one of its primary category's brands (skewed to the first) with
    /// probability `own_brand` (default 0.9, weak features 0.15), else any category's.
    pub(super) fn brand(&self, i: usize, rng: &mut StdRng) -> &str {
        let c = if rng.random_bool(self.strength.own_brand) {
            &self.categories[self.item_primary[i] as usize]
        } else {
            &self.categories[rng.random_range(0..self.categories.len())]
        };
        let u: f64 = rng.random();
        &c.brands[((u * u) * c.brands.len() as f64) as usize % c.brands.len()]
    }

    /// Price of item `i` around its primary category's median (log-normal), or `None` (3%).
    pub(super) fn price(&self, i: usize, rng: &mut StdRng) -> Option<f64> {
        let median = self.categories[self.item_primary[i] as usize].price_median;
        let price = median * (self.strength.price_sigma * normal(rng)).exp();
        (!rng.random_bool(0.03)).then_some((price * 100.0).round() / 100.0)
    }
}
