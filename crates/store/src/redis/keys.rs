use coffee_core::Version;

/// Key names, under an optional namespace prefix (tests give each run its own).
///
/// The seed's keys are kept exactly: `{v}:metrics:total_orders`, `{v}:metrics:total_revenue`,
/// `{v}:metrics:drink_counts`, `…:drink_revenue`, `…:store_counts`, `…:store_revenue`. Ours
/// add `…:hourly_counts` / `…:hourly_revenue` (fields like `2025-01-15T10`), `…:recent_orders`
/// (a sorted set by acceptance time), `…:fence` (exactly-once positions per writer) and
/// `…:updated_at` (ms since the epoch of the last write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub namespace: String,
    pub version: Version,
}

impl Keys {
    pub fn new(namespace: &str, version: Version) -> Keys {
        Keys { namespace: namespace.to_owned(), version }
    }

    pub fn metric(&self, name: &str) -> String {
        format!("{}{}:metrics:{name}", self.namespace, self.version)
    }

    /// Every key of the projection, in the order the Lua scripts expect them.
    pub fn all(&self) -> [String; 12] {
        [
            "total_orders",
            "total_revenue",
            "drink_counts",
            "drink_revenue",
            "store_counts",
            "store_revenue",
            "hourly_counts",
            "hourly_revenue",
            "recent_orders",
            "fence",
            "updated_at",
            "newest_accepted_at",
        ]
        .map(|k| self.metric(k))
    }

    /// The pub/sub channel announcing that some version's metrics changed.
    pub fn changes_channel(namespace: &str) -> String {
        format!("{namespace}coffee-rt:metrics-changed")
    }

    /// The v2 order stream and its dead letters.
    pub fn stream(namespace: &str) -> String {
        format!("{namespace}orders:stream")
    }

    pub fn dead_letters(namespace: &str) -> String {
        format!("{namespace}orders:stream:dead")
    }
}
