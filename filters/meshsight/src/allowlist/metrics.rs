//! The allowlist's counters, defined once per plugin at configuration (every rule's too, so
//! that a dead rule shows as a zero).

use meshsight_policy::allowlist::AllowList;

use crate::host::{Counter, Stats};

/// Metric names (Envoy stats), all prefixed `meshsight_allowlist_`.
pub mod name {
    /// Counter: requests a rule allowed.
    pub const ALLOWED: &str = "meshsight_allowlist_allowed";
    /// Counter: requests answered with the deny response.
    pub const DENIED: &str = "meshsight_allowlist_denied";
    /// Counter: requests no rule allowed that monitor mode let through (`would_deny`).
    pub const MONITORED: &str = "meshsight_allowlist_monitored";
    /// Counter: requests with a malformed target, whatever was done with them.
    pub const MALFORMED: &str = "meshsight_allowlist_malformed";
    /// Counter prefix: hits per rule, `meshsight_allowlist_rule_hits.<rule name>`.
    pub const RULE_HITS_PREFIX: &str = "meshsight_allowlist_rule_hits.";
}

/// The allowlist's counters.
pub(crate) struct Metrics {
    pub(crate) allowed: Counter,
    pub(crate) denied: Counter,
    pub(crate) monitored: Counter,
    pub(crate) malformed: Counter,
    /// By rule index.
    pub(crate) rule_hits: Vec<Counter>,
}

impl Metrics {
    /// Defines every counter of `list`.
    pub(crate) fn define(list: &AllowList, stats: &Stats) -> Metrics {
        Metrics {
            allowed: stats.counter(name::ALLOWED),
            denied: stats.counter(name::DENIED),
            monitored: stats.counter(name::MONITORED),
            malformed: stats.counter(name::MALFORMED),
            rule_hits: list
                .rule_names()
                .map(|rule| stats.counter(&format!("{}{rule}", name::RULE_HITS_PREFIX)))
                .collect(),
        }
    }
}
