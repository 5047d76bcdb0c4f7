//! Synthetic data in the generic layout (`interactions.csv`, `items.csv`, `users.csv`) with planted
//! structure that a good hybrid recommender can find and a popularity baseline cannot — and, on
//! purpose, structure that no single feature owns: item-to-item co-consumption ("bundles") that
//! categories and content do not explain, and noise. Output is streamed; memory is
//! O(users + items), and the same config gives byte-identical files.
//!
//! # Generative model
//! Time runs over `days` days ending at 2026-06-01T00:00:00Z (Unix 1780272000). Numbers below are
//! for [`Regime::Default`]; [`Regime::WeakFeatures`] changes the ones listed under *Regimes*.
//!
//! **Categories** `c00`, `c01`, …: sizes follow a mild power law (weight ∝ (k+1)^-0.5). Each has a
//! centroid in an 8-dimensional latent space, 12 title words and 3–6 brands (pronounceable
//! pseudo-words unique to the category), a median price (log-uniform in 5–500), and a
//! preferred age group and region.
//!
//! **Items** (`i000000`, …; columns `item_id,title,category,brand,price`): a primary category
//! drawn by category size; 25% also get a second category (written `c03|c11`). The latent
//! vector is the category centroid (0.7 primary + 0.3 secondary) plus Gaussian noise.
//! Popularity is Zipf (exponent 0.8) by a random rank within the primary category (half weight
//! in the secondary category). 35% of items are on the catalogue before the period; the others are
//! released uniformly during it, and nobody interacts with an item before its release. The brand
//! is one of the primary category's brands (skewed to the first) with probability 0.9, else any
//! brand; the price is log-normal around the category median (σ = 0.35), missing for 3% of
//! items; the title holds two words of the primary category, often one of the secondary, and
//! generic words ("deluxe", "pack", …) that carry no category signal, plus rare noise words.
//!
//! **Lifecycles** (on unless `item_lifecycle` is off): an item's interest is 1 at release and
//! halves every half-life (log-uniform in 10–90 days) towards an evergreen floor u² (u uniform in
//! 0.05–1, so most items fade to little and a few stay strong); a taste pick accepts a
//! popularity draw with probability equal to its interest, so items are drawn ∝ popularity ·
//! interest at the event's time. Popularity therefore drifts: what was popular over the whole
//! history is not what is popular now, and recent popularity beats all-time popularity on the
//! future, as on real catalogues. Noise picks and bundle follow-ups ignore lifecycles.
//!
//! **Bundles** (sequels, series, accessories: items consumed together): disjoint groups of
//! 2..=`max_bundle_size` (default 6, uniform) warm items, `bundle_share` of the warm items in all
//! (default 40%). A bundle's first member is a random warm item; each further member is, with
//! probability `bundle_cross_share` (0.7), a random warm item of any category (drawn ∝ category
//! size, so mostly another one), else one of the first member's primary category — so most
//! bundles (88% with 10 categories) span two or more primary categories, and members' latent
//! vectors are far less alike than those of items of one category. Bundles come from their own
//! seeded stream and are written nowhere: they only show in the interactions.
//!
//! **Users** (`u000000`, …; columns `user_id,age_group,region,device_pref`): 1–3 favourite
//! categories (40/35/25%) drawn by category size, with random weights; a latent vector = the
//! weighted favourite centroids + noise. `age_group` is the top favourite's preferred group with
//! probability 0.65 (else uniform), `region` likewise with 0.55; `device_pref` is independent
//! of taste (mobile 55%, desktop 35%, tablet 10%). Half of the users drift: their picks move
//! towards one other category, linearly up to 20–60% of picks by the end of the period. Users
//! join at the start (40%) or at a uniform time in the first 70% of the period.
//!
//! **Interactions** (`user_id,item_id,timestamp,weight`): each non-cold user gets at least one
//! row (when `interactions` allows), the rest is split ∝ a Pareto(1.2) activity capped at 300×
//! the minimum, so a few users are very active and most have a handful. A user's rows form
//! sessions (geometric length, mean 4, at most 50) starting uniformly over the user's active
//! window, 20–900 s between events; a user's sessions are simulated in order of their start.
//! Each event of a session is one of three kinds, decided in this order:
//! 1. *noise*, with probability `noise_share` (5%): a uniform pick among the warm items released
//!    by then, ignoring taste and popularity;
//! 2. *bundle follow-up*: when the session's previous event was a bundle member, with probability
//!    `bundle_follow` (0.45) another member of the same bundle, uniformly among those released by
//!    then that the user has not consumed yet (among all released other members when the user
//!    has seen them all); when no other member is released yet, the event falls through to 3;
//! 3. *taste*: a category (the session's with probability 0.75, else one picked afresh; a pick is
//!    10% exploration by global category size, else the drift category with the drift
//!    probability, else a favourite by weight), then an item of that category released by then
//!    ∝ popularity · interest · exp(3 · <user, item>), approximated by
//!    sampling-importance-resampling: 8 candidates drawn by popularity · interest, one kept ∝
//!    exp(3 · <user, item>).
//!
//! A follow-up can itself be followed, so users walk through a bundle within a session. About 5%
//! of rows are noise and 13–14% follow-ups (30% under weak features);
//! [`GenerateSummary::noise_events`] and [`GenerateSummary::bundle_events`] are the exact counts.
//! The weight is 1 (view), 2 (like), 3 (cart) or 5 (purchase, likelier for high affinity); about
//! 80% of rows weigh 1.
//!
//! **Cold start**: `cold_item_share` of the items (random) are written to `items.csv` but never
//! interacted with (nor put in bundles); `cold_user_share` of the users only appear in
//! `users.csv`.
//!
//! **Counts**: `interactions.csv` holds exactly `interactions` rows. A user may pick the same
//! item again (heavy users revisit popular items), so after the readers' (user, item)
//! aggregation there are fewer interactions: [`GenerateSummary::distinct_pairs`] is that
//! number — about 96% of the rows at 1M users / 1M items / 10M rows, 85% at 50k / 20k / 1M, and
//! less on small catalogues. Rows are grouped by user (in id order), sorted by time within a user.
//!
//! # Regimes
//! [`Regime::Default`] has the feature strength described above. [`Regime::WeakFeatures`] ("weak
//! features, strong co-consumption") keeps categories, latent vectors, sessions, drift and
//! popularity, and changes:
//! - titles: a word of the primary category with probability 0.2 only (no secondary-category
//!   word), 1–2 words of uniformly random categories, generic words — about a third of titles
//!   hold a word of their primary category (all do by default);
//! - brands: the primary category's with probability 0.15, else a random category's;
//! - prices: category medians log-uniform in 40–60 and σ = 0.6, so the category explains ~4% of
//!   the variance of log price (~93% by default);
//! - demographics: `age_group` and `region` follow the top favourite with probability 0.1 each;
//! - co-consumption: `bundle_share` 60% and `bundle_follow` 0.65 unless set explicitly.
//!
//! Both regimes have bundles and noise; under weak features the ranker's feature-based signals
//! (content similarity, category popularity, demographics) lose most of their value, and what is
//! left to find is collaborative: who consumed what next to what.
//!
//! **What each signal is for**: favourite categories and latent vectors reward collaborative
//! filtering beyond popularity; title words, brands and prices identify categories (content
//! retrieval, cold items); age group and region predict taste (cold users); sticky sessions
//! make recent items predictive (session recommendations); release times and drift reward
//! recency; Zipf popularity is the baseline to beat. Bundles reward item-to-item co-consumption
//! models (co-visitation, item2item, sequence-aware session models): their members cross
//! categories and are not close in taste space, so neither category popularity nor content
//! features find them, and a low-rank CF model only partly captures them (a bundle is a small,
//! sharp clique that a few dozen latent dimensions blur). Noise keeps every signal imperfect
//! and gives long-tail items some traffic. The weak-features regime tests whether the ranker
//! still wins when features are nearly useless and co-consumption carries the signal — closer
//! to real ratings data than the default.
//!
//! Determinism: every item and every user has its own seeded `StdRng` stream, and bundles have
//! one of their own, so the output depends only on the config (and the `rand` version that
//! defines `StdRng`).

mod activity;
mod bundles;
mod sampling;
#[cfg(test)]
mod tests;
mod words;
mod world;

use std::fmt;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::error::DataError;
use activity::{Simulation, rows_per_user, simulate_user};
use world::{AGE_GROUPS, DEVICES, REGIONS, Stream, World, rng_for};

/// The end of the generated period: 2026-06-01T00:00:00Z.
pub const END_TS: i64 = 1_780_272_000;

/// How strongly item and user features encode the hidden taste structure, against how strongly
/// items are consumed together (see the module documentation).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Regime {
    /// Informative titles, brands, prices and demographics; moderate co-consumption.
    #[default]
    Default,
    /// Weak features, strong co-consumption: titles, brands, prices and demographics say little
    /// about categories or taste, and more items are in bundles that are followed more often.
    WeakFeatures,
}

impl Regime {
    pub const ALL: [Regime; 2] = [Regime::Default, Regime::WeakFeatures];

    /// The name used on the command line and in serialised form.
    pub fn as_str(self) -> &'static str {
        match self {
            Regime::Default => "default",
            Regime::WeakFeatures => "weak-features",
        }
    }

    /// [`GenerateConfig::bundle_share`] when it is `None`.
    pub fn default_bundle_share(self) -> f64 {
        match self {
            Regime::Default => 0.40,
            Regime::WeakFeatures => 0.60,
        }
    }

    /// [`GenerateConfig::bundle_follow`] when it is `None`.
    pub fn default_bundle_follow(self) -> f64 {
        match self {
            Regime::Default => 0.45,
            Regime::WeakFeatures => 0.65,
        }
    }
}

impl fmt::Display for Regime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Regime {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Regime::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown regime {s:?}: expected default or weak-features"))
    }
}

/// Parameters of [`generate`].
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateConfig {
    pub users: usize,
    pub items: usize,
    /// Rows written to `interactions.csv`.
    pub interactions: usize,
    pub seed: u64,
    /// Share of items with features but no interaction, in [0, 1).
    pub cold_item_share: f64,
    /// Share of users with features but no interaction, in [0, 1).
    pub cold_user_share: f64,
    pub categories: usize,
    pub days: u32,
    /// Feature strength against co-consumption strength.
    pub regime: Regime,
    /// Share of the warm items that belong to a bundle, in [0, 1]; `None`: the regime's default
    /// ([`Regime::default_bundle_share`]: 0.40, weak-features 0.60).
    pub bundle_share: Option<f64>,
    /// Probability that the event after a bundle member, in the same session, is another member
    /// of that bundle, in [0, 1]; `None`: the regime's default
    /// ([`Regime::default_bundle_follow`]: 0.45, weak-features 0.65).
    pub bundle_follow: Option<f64>,
    /// Probability that a bundle member after the first is a random item of any category rather
    /// than one of the first member's primary category, in [0, 1].
    pub bundle_cross_share: f64,
    /// Bundle sizes are uniform in `2..=max_bundle_size` (2..=64).
    pub max_bundle_size: usize,
    /// Share of events that are a uniform pick among the released warm items, ignoring taste,
    /// in [0, 1).
    pub noise_share: f64,
    /// Items' interest decays after release towards an evergreen floor (popularity drifts over
    /// time); `false` gives every item constant interest, as before lifecycles existed.
    pub item_lifecycle: bool,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        Self {
            users: 10_000,
            items: 5_000,
            interactions: 200_000,
            seed: 42,
            cold_item_share: 0.05,
            cold_user_share: 0.05,
            categories: 20,
            days: 180,
            regime: Regime::Default,
            bundle_share: None,
            bundle_follow: None,
            bundle_cross_share: 0.7,
            max_bundle_size: 6,
            noise_share: 0.05,
            item_lifecycle: true,
        }
    }
}

impl GenerateConfig {
    /// Checks the ranges the generator relies on.
    pub fn validate(&self) -> Result<(), DataError> {
        let fail = |reason: String| Err(DataError::InvalidConfig { reason });
        if self.users == 0 || self.items == 0 {
            return fail("users and items must be at least 1".into());
        }
        if self.users >= u32::MAX as usize || self.items >= u32::MAX as usize {
            return fail(format!("users and items must be below {}", u32::MAX));
        }
        if !(1..=10_000).contains(&self.categories) {
            return fail(format!(
                "categories must be in 1..=10000, got {}",
                self.categories
            ));
        }
        if !(1..=36_500).contains(&self.days) {
            return fail(format!("days must be in 1..=36500, got {}", self.days));
        }
        for (name, share) in [
            ("cold_item_share", self.cold_item_share),
            ("cold_user_share", self.cold_user_share),
            ("noise_share", self.noise_share),
        ] {
            if !(0.0..1.0).contains(&share) {
                return fail(format!("{name} must be in [0, 1), got {share}"));
            }
        }
        for (name, p) in [
            ("bundle_share", self.bundle_share.unwrap_or(0.0)),
            ("bundle_follow", self.bundle_follow.unwrap_or(0.0)),
            ("bundle_cross_share", self.bundle_cross_share),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return fail(format!("{name} must be in [0, 1], got {p}"));
            }
        }
        if !(2..=64).contains(&self.max_bundle_size) {
            return fail(format!(
                "max_bundle_size must be in 2..=64, got {}",
                self.max_bundle_size
            ));
        }
        Ok(())
    }

    /// Number of items that only appear in `items.csv`.
    pub fn n_cold_items(&self) -> usize {
        (self.cold_item_share * self.items as f64).floor() as usize
    }

    /// Number of users that only appear in `users.csv`.
    pub fn n_cold_users(&self) -> usize {
        (self.cold_user_share * self.users as f64).floor() as usize
    }

    /// [`GenerateConfig::bundle_share`], or the regime's default.
    pub fn effective_bundle_share(&self) -> f64 {
        self.bundle_share
            .unwrap_or_else(|| self.regime.default_bundle_share())
    }

    /// [`GenerateConfig::bundle_follow`], or the regime's default.
    pub fn effective_bundle_follow(&self) -> f64 {
        self.bundle_follow
            .unwrap_or_else(|| self.regime.default_bundle_follow())
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GenerateSummary {
    /// Rows of `users.csv` / `items.csv`.
    pub users: usize,
    pub items: usize,
    pub categories: usize,
    /// Users / items chosen to be cold (features only).
    pub cold_users: usize,
    pub cold_items: usize,
    /// Users / items with at least one interaction.
    pub active_users: usize,
    pub interacted_items: usize,
    /// Rows of `interactions.csv` (= `GenerateConfig::interactions`).
    pub interaction_rows: u64,
    /// Distinct (user, item) pairs, i.e. interactions after the readers' aggregation.
    pub distinct_pairs: u64,
    pub regime: Regime,
    /// Bundles, and warm items that belong to one.
    pub bundles: usize,
    pub bundled_items: usize,
    /// Rows that followed a bundle (the previous event's bundle chose the item).
    pub bundle_events: u64,
    /// Rows that are uniform picks among released items, ignoring taste.
    pub noise_events: u64,
    /// The period: `[start_ts, end_ts)`.
    pub start_ts: i64,
    pub end_ts: i64,
}

/// Writes `interactions.csv`, `items.csv` and `users.csv` into `out` (created if needed). Files
/// are written under temporary names and renamed at the end, so a failed run leaves no
/// half-written file under a final name.
#[tracing::instrument(skip_all, fields(out = %out.display(), seed = cfg.seed))]
pub fn generate(cfg: &GenerateConfig, out: &Path) -> Result<GenerateSummary, DataError> {
    cfg.validate()?;
    fs::create_dir_all(out).map_err(|e| DataError::io(out, e))?;
    let world = World::new(cfg, END_TS);
    let item_width = id_width(cfg.items);
    let user_width = id_width(cfg.users);

    let mut items = CsvOut::create(out, "items.csv")?;
    items.row(format_args!("item_id,title,category,brand,price\n"))?;
    let mut title = Vec::new();
    let mut title_text = String::new();
    for i in 0..cfg.items {
        let mut rng = rng_for(cfg.seed, Stream::Item, i as u64);
        world.title_words(i, &mut rng, &mut title);
        title_text.clear();
        for (k, w) in title.iter().enumerate() {
            if k > 0 {
                title_text.push(' ');
            }
            words::capitalize(w, &mut title_text);
        }
        let primary = &world.categories[world.item_primary[i] as usize].name;
        let category = match world.item_secondary.get(i) {
            Some(&s) if s != world::NONE => {
                format!("{primary}|{}", world.categories[s as usize].name)
            }
            _ => primary.clone(),
        };
        let brand = world.brand(i, &mut rng);
        let price = Price(world.price(i, &mut rng));
        let id = Id('i', i, item_width);
        items.row(format_args!(
            "{id},{title_text},{category},{brand},{price}\n"
        ))?;
    }

    let counts = rows_per_user(cfg);
    let mut users = CsvOut::create(out, "users.csv")?;
    let mut interactions = CsvOut::create(out, "interactions.csv")?;
    users.row(format_args!("user_id,age_group,region,device_pref\n"))?;
    interactions.row(format_args!("user_id,item_id,timestamp,weight\n"))?;
    let mut sim = Simulation::default();
    let mut distinct: Vec<u32> = Vec::new();
    let mut interacted = vec![false; cfg.items];
    let (mut active_users, mut rows_written, mut distinct_pairs) = (0usize, 0u64, 0u64);
    for (u, &n) in counts.iter().enumerate() {
        let (profile, mut rng) = world.user(u);
        let uid = Id('u', u, user_width);
        let (age, region, device) = (
            AGE_GROUPS[profile.age_group],
            REGIONS[profile.region],
            DEVICES[profile.device].0,
        );
        users.row(format_args!("{uid},{age},{region},{device}\n"))?;
        if n == 0 {
            continue;
        }
        simulate_user(&world, &profile, n, &mut rng, &mut sim);
        distinct.clear();
        for r in &sim.rows {
            let iid = Id('i', r.item as usize, item_width);
            interactions.row(format_args!("{uid},{iid},{},{}\n", r.ts, r.weight))?;
            interacted[r.item as usize] = true;
            distinct.push(r.item);
        }
        distinct.sort_unstable();
        distinct.dedup();
        active_users += 1;
        rows_written += sim.rows.len() as u64;
        distinct_pairs += distinct.len() as u64;
    }
    items.finish()?;
    users.finish()?;
    interactions.finish()?;
    let summary = GenerateSummary {
        users: cfg.users,
        items: cfg.items,
        categories: cfg.categories,
        cold_users: cfg.n_cold_users(),
        cold_items: cfg.n_cold_items(),
        active_users,
        interacted_items: interacted.iter().filter(|&&x| x).count(),
        interaction_rows: rows_written,
        distinct_pairs,
        regime: cfg.regime,
        bundles: world.bundles.len(),
        bundled_items: world.bundles.n_members(),
        bundle_events: sim.bundle_events,
        noise_events: sim.noise_events,
        start_ts: world.start,
        end_ts: world.end,
    };
    tracing::info!(?summary, "synthetic data written");
    Ok(summary)
}

/// Zero-padded id width: 6 digits, more when needed.
fn id_width(n: usize) -> usize {
    n.saturating_sub(1).to_string().len().max(6)
}

/// An id such as `u000123` (formatted without allocating).
struct Id(char, usize, usize);

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:0width$}", self.0, self.1, width = self.2)
    }
}

/// A price cell: two decimals, empty when missing.
struct Price(Option<f64>);

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, "{p:.2}"),
            None => Ok(()),
        }
    }
}

/// A buffered output file written under a temporary name until [`CsvOut::finish`].
struct CsvOut {
    tmp: PathBuf,
    path: PathBuf,
    w: BufWriter<File>,
}

impl CsvOut {
    fn create(dir: &Path, name: &str) -> Result<Self, DataError> {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.partial"));
        let file = File::create(&tmp).map_err(|e| DataError::io(&tmp, e))?;
        Ok(Self {
            w: BufWriter::with_capacity(1 << 20, file),
            tmp,
            path,
        })
    }

    fn row(&mut self, args: fmt::Arguments<'_>) -> Result<(), DataError> {
        self.w
            .write_fmt(args)
            .map_err(|e| DataError::io(&self.tmp, e))
    }

    fn finish(mut self) -> Result<(), DataError> {
        self.w.flush().map_err(|e| DataError::io(&self.tmp, e))?;
        fs::rename(&self.tmp, &self.path).map_err(|e| DataError::io(&self.path, e))
    }
}
