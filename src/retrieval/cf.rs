//! Collaborative filtering source: the user's hybrid-MF vector → maximum-inner-product search over
//! item vectors (score = user·item + item bias). Unknown users have no vector and get nothing here.

use super::{Catalog, Deadline, Eligibility, Found, SearchEligible, UserProfile};

pub fn candidates(
    catalog: &Catalog<'_>,
    profile: &UserProfile,
    elig: &Eligibility,
    k: usize,
    deadline: Deadline,
) -> Found {
    let Some(u) = profile.user else {
        return Found::default();
    };
    if k == 0 {
        return Found::default();
    }
    let query = catalog.model.user_cf(u);
    catalog.cf_index.search_eligible(
        query,
        k,
        &elig.excluded,
        elig.members(catalog.model),
        |i| elig.in_category(catalog.model, i),
        deadline,
    )
}
