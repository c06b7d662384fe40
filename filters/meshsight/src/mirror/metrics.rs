//! The mirror's counters, defined once per VM at configuration.

use crate::host::{stat_part, Counter, Stats};
use meshsight_policy::decision::MirrorReason;
use meshsight_policy::mirror::MirrorPolicy;
use std::collections::BTreeMap;

/// Counters; one the host could not define counts nowhere (metrics never fail a request).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests decided.
    pub requests: Counter,
    /// Per target: copies by reason (`signature`, `rule`, `sample`).
    pub mirrored: Vec<[Counter; 3]>,
    /// Per target: selected but over the rate cap.
    pub rate_limited_by_target: Vec<Counter>,
    /// All targets: selected but over the rate cap.
    pub rate_limited: Counter,
    /// Not selected.
    pub not_selected: Counter,
    /// Per signature category: requests it matched.
    pub signatures: BTreeMap<String, Counter>,
    /// Per signature rule id: requests it matched.
    pub signature_rules: BTreeMap<String, Counter>,
    /// `dispatch` calls refused by the host, or answered with a reset, timeout or 5xx.
    pub dispatch_failed: Counter,
    /// `dispatch` calls Envoy never answered within their timeout and a grace second.
    pub dispatch_unconfirmed: Counter,
    /// `dispatch` copies skipped because their target failed repeatedly and is resting.
    pub target_resting: Counter,
    /// `dispatch` copies dropped because `max_in_flight` calls were outstanding.
    pub in_flight_dropped: Counter,
    /// Client-supplied decision headers removed.
    pub spoofed_header_removed: Counter,
    /// `clear_route_cache` calls that failed.
    pub route_cache_clear_failed: Counter,
    /// Bodies longer than `max_body_bytes` (inspected and copied only in part).
    pub body_truncated: Counter,
}

impl Metrics {
    /// Defines every counter the policy can move.
    pub fn define(policy: &MirrorPolicy, stats: &Stats) -> Metrics {
        let c = |name: &str| stats.counter(name);
        Metrics {
            requests: c("meshsight_mirror_requests"),
            mirrored: policy
                .targets()
                .iter()
                .map(|t| {
                    let t = stat_part(&t.name);
                    ["signature", "rule", "sample"]
                        .map(|r| c(&format!("meshsight_mirror_mirrored_{t}_{r}")))
                })
                .collect(),
            rate_limited_by_target: policy
                .targets()
                .iter()
                .map(|t| {
                    c(&format!(
                        "meshsight_mirror_rate_limited_{}",
                        stat_part(&t.name)
                    ))
                })
                .collect(),
            rate_limited: c("meshsight_mirror_rate_limited"),
            not_selected: c("meshsight_mirror_not_selected"),
            signatures: policy
                .signature_names()
                .iter()
                .map(|n| {
                    let counter = c(&format!("meshsight_mirror_signature_{}", stat_part(n)));
                    (n.clone(), counter)
                })
                .collect(),
            signature_rules: policy
                .signature_rule_ids()
                .iter()
                .map(|id| {
                    let counter = c(&format!(
                        "meshsight_mirror_signature_rule_{}",
                        stat_part(id)
                    ));
                    (id.clone(), counter)
                })
                .collect(),
            dispatch_failed: c("meshsight_mirror_dispatch_failed"),
            dispatch_unconfirmed: c("meshsight_mirror_dispatch_unconfirmed"),
            target_resting: c("meshsight_mirror_target_resting"),
            in_flight_dropped: c("meshsight_mirror_in_flight_dropped"),
            spoofed_header_removed: c("meshsight_mirror_spoofed_header_removed"),
            route_cache_clear_failed: c("meshsight_mirror_route_cache_clear_failed"),
            body_truncated: c("meshsight_mirror_body_truncated"),
        }
    }

    /// The counter of copies to `target` for `reason` (none for reasons that are no copy).
    pub fn mirrored(&self, target: usize, reason: MirrorReason) -> Option<&Counter> {
        let slot = match reason {
            MirrorReason::Signature => 0,
            MirrorReason::Rule => 1,
            MirrorReason::Sample => 2,
            MirrorReason::NotSelected | MirrorReason::RateLimited => return None,
        };
        self.mirrored.get(target).and_then(|s| s.get(slot))
    }
}
