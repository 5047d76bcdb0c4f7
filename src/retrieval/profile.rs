//! The requesting user as candidate generation and the features see them, computed once per
//! request from the bundle, the online history and the live session.

use crate::bundle::Model;
use rustc_hash::FxHashMap;

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
    /// The item-to-item source's seeds: the last [`ITEM2ITEM_SEEDS`] distinct items of history,
    /// online events and session together, most recent last.
    pub seeds: Vec<u32>,
    /// The user's segments (values of their features) when the bundle has segment popularity.
    pub segments: Vec<u32>,
}

/// Items of history + session the item-to-item source sums neighbour weights over.
pub const ITEM2ITEM_SEEDS: usize = 50;

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
        let mut seeds: Vec<u32> = Vec::with_capacity(ITEM2ITEM_SEEDS);
        if model.item2item_k > 0 {
            for i in history_items().chain(request_recent.iter().copied()).rev() {
                if seeds.len() == ITEM2ITEM_SEEDS {
                    break;
                }
                if !seeds.contains(&i) {
                    seeds.push(i);
                }
            }
            seeds.reverse();
        }
        let segments = user.map_or_else(Vec::new, |u| model.segments.of_user(u).to_vec());
        Self {
            user,
            recent,
            recent_from_request,
            history_len,
            last_ts,
            now,
            cat_share,
            content_profile,
            seeds,
            segments,
        }
    }
}
