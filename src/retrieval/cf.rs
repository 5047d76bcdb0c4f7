//! Collaborative filtering source: the user's hybrid-MF vector → maximum-inner-product search over
//! item vectors (score = user·item + item bias). Unknown users have no vector and get nothing here.

use super::{Eligibility, SearchEligible, SourceList};
use crate::pipeline::Engine;
use crate::ranking::features::UserProfile;

pub fn candidates(
    engine: &Engine,
    profile: &UserProfile,
    elig: &Eligibility,
    k: usize,
) -> SourceList {
    let Some(u) = profile.user else {
        return Vec::new();
    };
    if k == 0 {
        return Vec::new();
    }
    let query = engine.model.user_cf(u);
    engine
        .cf_index
        .search_eligible(query, k, |i| elig.allows(&engine.model, i))
}
