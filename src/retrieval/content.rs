//! Content-based source: the user's content profile (mean content vector of the latest history and
//! session items) → nearest items by cosine over item content embeddings. Reaches items that have
//! features but no interactions.

use super::{Eligibility, SearchEligible, SourceList};
use crate::pipeline::Engine;
use crate::ranking::features::UserProfile;

pub fn candidates(
    engine: &Engine,
    profile: &UserProfile,
    elig: &Eligibility,
    k: usize,
) -> SourceList {
    if k == 0 || profile.content_profile.is_empty() {
        return Vec::new();
    }
    engine
        .content_index
        .search_eligible(&profile.content_profile, k, |i| {
            elig.allows(&engine.model, i)
        })
}
