//! Collaborative filtering source: the user's hybrid-MF vector → maximum-inner-product search over
//! item vectors (score = user·item + item bias). Unknown users have no vector and get nothing here.

use super::{Catalog, Eligibility, SearchEligible, SourceList, UserProfile};

pub fn candidates(
    catalog: &Catalog<'_>,
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
    let query = catalog.model.user_cf(u);
    catalog
        .cf_index
        .search_eligible(query, k, &elig.excluded, elig.members(catalog.model), |i| {
            elig.in_category(catalog.model, i)
        })
}
