//! Every Redis key this service writes, in one place: `<key_prefix><family>…`. Each family has
//! a TTL and a cap (see the README's memory table); nothing else is written.

#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }

    /// A user's recent positive items: sorted set member = item id, score = event time.
    pub fn history(&self, user: &str) -> String {
        format!("{}h:{user}", self.prefix)
    }

    /// A served list, compact (hashes of the user and the items), by impression id.
    pub fn impression(&self, id: &str) -> String {
        format!("{}imp:{id}", self.prefix)
    }

    /// The fleet's feedback stream.
    pub fn stream(&self) -> String {
        format!("{}events", self.prefix)
    }

    /// The highest log sequence number of `replica` already in the stream.
    pub fn shipped(&self, replica: &str) -> String {
        format!("{}events:shipped:{replica}", self.prefix)
    }

    /// The bandit's fleet counters (one hash: `<context>|<arm>|<stat>` → sum).
    pub fn bandit(&self) -> String {
        format!("{}bandit", self.prefix)
    }

    /// The last bandit flush of `replica` applied (flushes are applied once).
    pub fn bandit_flushed(&self, replica: &str) -> String {
        format!("{}bandit:flushed:{replica}", self.prefix)
    }

    /// The announced model bundle.
    pub fn rollout(&self) -> String {
        format!("{}model:announce", self.prefix)
    }

    /// The fleet view: replica id → its status.
    pub fn replicas(&self) -> String {
        format!("{}replicas", self.prefix)
    }

    /// The runtime catalogue's features per item (`<ms>|<origin>|<json>`).
    pub fn catalogue_features(&self) -> String {
        format!("{}catalogue:features", self.prefix)
    }

    /// The runtime catalogue's availability per item (`<ms>|<origin>|<0 or 1>`).
    pub fn catalogue_status(&self) -> String {
        format!("{}catalogue:status", self.prefix)
    }

    /// Bumped on every catalogue change: replicas poll it.
    pub fn catalogue_version(&self) -> String {
        format!("{}catalogue:version", self.prefix)
    }

    /// Every key of this deployment matches this pattern (for tests and tools).
    pub fn pattern(&self) -> String {
        format!("{}*", self.prefix)
    }
}
