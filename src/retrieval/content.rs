//! Content-based source: the user's content profile (mean content vector of the latest history and
//! session items) → nearest items by cosine over item content embeddings. Reaches items that have
//! features but no interactions.

use super::{Catalog, Deadline, Eligibility, Found, SearchEligible, UserProfile};

pub fn candidates(
    catalog: &Catalog<'_>,
    profile: &UserProfile,
    elig: &Eligibility,
    k: usize,
    deadline: Deadline,
) -> Found {
    if k == 0 || profile.content_profile.is_empty() {
        return Found::default();
    }
    catalog.content_index.search_eligible(
        &profile.content_profile,
        k,
        &elig.excluded,
        elig.members(catalog.model),
        |i| elig.in_category(catalog.model, i),
        deadline,
    )
}
