//! The ONE definition of the ranker's feature rows. Training builds its LightGBM rows with
//! `build_rows`, serving scores the rows `build_rows` gives it; there is no second implementation.
//! Missing values are NaN (LightGBM routes them down the learned default branch).

use crate::bundle::Model;
use rustc_hash::FxHashMap;

/// Candidate sources, in the order their score/rank columns appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Cf = 0,
    Content = 1,
    Session = 2,
    Popular = 3,
}

pub const N_SOURCES: usize = 4;

impl Source {
    pub const ALL: [Source; N_SOURCES] = [
        Source::Cf,
        Source::Content,
        Source::Session,
        Source::Popular,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cf => "cf",
            Source::Content => "content",
            Source::Session => "session",
            Source::Popular => "popular",
        }
    }
}

/// Ordered feature names; the manifest and the ranker file must list exactly these.
pub const FEATURE_NAMES: [&str; 20] = [
    "cf_score",
    "cf_rank",
    "content_score",
    "content_rank",
    "session_score",
    "session_rank",
    "popular_score",
    "popular_rank",
    "n_sources",
    "mf_dot",
    "content_sim_profile",
    "item_log_count",
    "item_pop_pct",
    "item_trend",
    "item_age_days",
    "user_log_history",
    "user_days_since_last",
    "cat_match",
    "cat_match_max",
    "session_len",
];
pub const N_FEATURES: usize = FEATURE_NAMES.len();

/// One merged candidate: the item and, per source, its score and 0-based rank (NaN when the
/// source did not propose it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub item: u32,
    pub score: [f32; N_SOURCES],
    pub rank: [f32; N_SOURCES],
}

impl Candidate {
    pub fn new(item: u32) -> Self {
        Self {
            item,
            score: [f32::NAN; N_SOURCES],
            rank: [f32::NAN; N_SOURCES],
        }
    }
    pub fn has(&self, s: Source) -> bool {
        !self.score[s as usize].is_nan()
    }
    /// Names of the sources that proposed this item.
    pub fn sources(&self) -> impl Iterator<Item = Source> + '_ {
        Source::ALL.into_iter().filter(|&s| self.has(s))
    }
}

/// What the features need to know about the requesting user, computed once per request.
#[derive(Debug, Clone, Default)]
pub struct UserProfile {
    pub user: Option<u32>,
    /// The most recent items, most recent LAST: the request's `recent`, else the latest history.
    pub recent: Vec<u32>,
    /// Whether `recent` came from the request (a live session) rather than the history.
    pub recent_from_request: bool,
    pub history_len: usize,
    pub last_ts: Option<i64>,
    pub now: i64,
    /// Share of the user's items in each category.
    pub cat_share: FxHashMap<u32, f32>,
    /// L2-normalised mean content vector of the last profile items (empty when none).
    pub content_profile: Vec<f32>,
}

impl UserProfile {
    /// `extra` holds interactions recorded since training (online history), oldest first.
    pub fn build(
        model: &Model,
        user: Option<u32>,
        extra: &[(u32, i64)],
        request_recent: &[u32],
        now: Option<i64>,
        profile_items: usize,
    ) -> Self {
        let (hist, hist_ts) = match user {
            Some(u) => model.history(u),
            None => (&[][..], &[][..]),
        };
        let history_len = hist.len() + extra.len();
        let last_ts = extra
            .iter()
            .map(|&(_, t)| t)
            .chain(hist_ts.last().copied())
            .max();
        let now = now.unwrap_or(model.manifest.reference_ts);

        // Recent: the live session when given, else the tail of history + online events.
        let recent_from_request = !request_recent.is_empty();
        // The user's items oldest first: training history, then online events. Only tails are
        // needed below, taken from the back without copying the whole history.
        let history_items = || hist.iter().copied().chain(extra.iter().map(|&(i, _)| i));
        let last_n = |it: &mut dyn DoubleEndedIterator<Item = u32>| -> Vec<u32> {
            let mut v: Vec<u32> = it.rev().take(profile_items).collect();
            v.reverse();
            v
        };
        let recent: Vec<u32> = if recent_from_request {
            last_n(&mut request_recent.iter().copied())
        } else {
            last_n(&mut history_items())
        };

        let mut cat_share: FxHashMap<u32, f32> = FxHashMap::default();
        let mut total = 0f32;
        for &i in hist
            .iter()
            .chain(extra.iter().map(|(i, _)| i))
            .chain(request_recent.iter())
        {
            for &c in model.item_categories(i) {
                *cat_share.entry(c).or_default() += 1.0;
            }
            total += 1.0;
        }
        if total > 0.0 {
            cat_share.values_mut().for_each(|v| *v /= total);
        }

        // Content profile over the last items of history and session together.
        let mut content_profile = vec![0f32; model.content_dim];
        let tail = last_n(&mut history_items().chain(request_recent.iter().copied()));
        for &i in &tail {
            for (a, b) in content_profile.iter_mut().zip(model.item_content(i)) {
                *a += b;
            }
        }
        let norm = content_profile.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            content_profile.iter_mut().for_each(|v| *v /= norm);
        } else {
            content_profile.clear();
        }
        Self {
            user,
            recent,
            recent_from_request,
            history_len,
            last_ts,
            now,
            cat_share,
            content_profile,
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Appends one row of `N_FEATURES` values per candidate to `out` (row-major).
pub fn build_rows(model: &Model, profile: &UserProfile, cands: &[Candidate], out: &mut Vec<f32>) {
    out.reserve(cands.len() * N_FEATURES);
    let user_vec = profile.user.map(|u| model.user_cf(u));
    let user_log_history = (profile.history_len as f32).ln_1p();
    // Online events may be newer than the reference time: clamp, never negative (as in training).
    let days_since_last = profile
        .last_ts
        .map_or(f32::NAN, |t| (profile.now - t).max(0) as f32 / 86_400.0);
    for c in cands {
        let i = c.item;
        let stat = model.item_stats[i as usize];
        let n_sources = c.score.iter().filter(|s| !s.is_nan()).count() as f32;
        let mf_dot = user_vec.map_or(f32::NAN, |u| {
            dot(u, model.item_cf(i)) + model.item_bias[i as usize]
        });
        let content_sim = if profile.content_profile.is_empty() {
            f32::NAN
        } else {
            dot(&profile.content_profile, model.item_content(i))
        };
        let (mut cat_sum, mut cat_max) = (0f32, 0f32);
        for c in model.item_categories(i) {
            let s = profile.cat_share.get(c).copied().unwrap_or(0.0);
            cat_sum += s;
            cat_max = cat_max.max(s);
        }
        out.extend_from_slice(&[
            c.score[0],
            c.rank[0],
            c.score[1],
            c.rank[1],
            c.score[2],
            c.rank[2],
            c.score[3],
            c.rank[3],
            n_sources,
            mf_dot,
            content_sim,
            stat.count.ln_1p(),
            model.popularity_pct[i as usize],
            stat.trend,
            stat.age_days,
            user_log_history,
            days_since_last,
            cat_sum,
            cat_max,
            profile.recent.len() as f32,
        ]);
    }
}
