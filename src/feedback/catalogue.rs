//! What the feedback loop may remember: the item and user ids the serving catalogue knows (the
//! bundle, plus items added at runtime once that exists). Implemented by the server over its
//! live engine; absent (everything known) when the service runs without one, as in tests.

pub trait Catalogue: Send + Sync {
    /// `None` while no catalogue is loaded.
    fn knows_item(&self, item: &str) -> Option<bool>;
    /// `None` while no catalogue is loaded.
    fn knows_user(&self, user: &str) -> Option<bool>;
}
