//! The filter's counters, defined once per VM at configuration.

use meshsight_policy::decision::MirrorReason;
use meshsight_policy::mirror::MirrorPolicy;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use std::collections::BTreeMap;

/// Counter ids; a counter that could not be defined is skipped (metrics never fail a request).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests decided.
    pub requests: Option<u32>,
    /// Per target: copies by reason (`signature`, `rule`, `sample`).
    pub mirrored: Vec<[Option<u32>; 3]>,
    /// Per target: selected but over the rate cap.
    pub rate_limited_by_target: Vec<Option<u32>>,
    /// All targets: selected but over the rate cap.
    pub rate_limited: Option<u32>,
    /// Not selected.
    pub not_selected: Option<u32>,
    /// Per signature name: requests it matched.
    pub signatures: BTreeMap<String, Option<u32>>,
    /// `dispatch` calls refused by the host, or answered with a reset, timeout or 5xx.
    pub dispatch_failed: Option<u32>,
    /// `dispatch` calls Envoy never answered within their timeout and a grace second.
    pub dispatch_unconfirmed: Option<u32>,
    /// `dispatch` copies skipped because their target failed repeatedly and is resting.
    pub target_resting: Option<u32>,
    /// `dispatch` copies dropped because `max_in_flight` calls were outstanding.
    pub in_flight_dropped: Option<u32>,
    /// Client-supplied decision headers removed.
    pub spoofed_header_removed: Option<u32>,
    /// `clear_route_cache` calls that failed.
    pub route_cache_clear_failed: Option<u32>,
    /// Bodies longer than `max_body_bytes` (inspected and copied only in part).
    pub body_truncated: Option<u32>,
}

fn counter(name: &str) -> Option<u32> {
    hostcalls::define_metric(MetricType::Counter, name).ok()
}

/// A name usable inside a stat name (`.` and `-` would split or confuse it).
fn stat_part(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

impl Metrics {
    /// Defines every counter the policy can move.
    pub fn define(policy: &MirrorPolicy, signature_names: &[String]) -> Metrics {
        let mirrored = policy
            .targets()
            .iter()
            .map(|t| {
                let t = stat_part(&t.name);
                ["signature", "rule", "sample"]
                    .map(|r| counter(&format!("meshsight_mirror_mirrored_{t}_{r}")))
            })
            .collect();
        let rate_limited_by_target = policy
            .targets()
            .iter()
            .map(|t| {
                counter(&format!(
                    "meshsight_mirror_rate_limited_{}",
                    stat_part(&t.name)
                ))
            })
            .collect();
        let signatures = signature_names
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    counter(&format!("meshsight_mirror_signature_{}", stat_part(n))),
                )
            })
            .collect();
        Metrics {
            requests: counter("meshsight_mirror_requests"),
            mirrored,
            rate_limited_by_target,
            rate_limited: counter("meshsight_mirror_rate_limited"),
            not_selected: counter("meshsight_mirror_not_selected"),
            signatures,
            dispatch_failed: counter("meshsight_mirror_dispatch_failed"),
            dispatch_unconfirmed: counter("meshsight_mirror_dispatch_unconfirmed"),
            target_resting: counter("meshsight_mirror_target_resting"),
            in_flight_dropped: counter("meshsight_mirror_in_flight_dropped"),
            spoofed_header_removed: counter("meshsight_mirror_spoofed_header_removed"),
            route_cache_clear_failed: counter("meshsight_mirror_route_cache_clear_failed"),
            body_truncated: counter("meshsight_mirror_body_truncated"),
        }
    }

    /// Adds one to a counter.
    pub fn bump(id: Option<u32>) {
        if let Some(id) = id {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    /// Adds `n` to a counter.
    pub fn add(id: Option<u32>, n: usize) {
        if let (Some(id), Ok(n)) = (id, i64::try_from(n)) {
            if n > 0 {
                let _ = hostcalls::increment_metric(id, n);
            }
        }
    }

    /// The counter of copies to `target` for `reason`.
    pub fn mirrored(&self, target: usize, reason: MirrorReason) -> Option<u32> {
        let slot = match reason {
            MirrorReason::Signature => 0,
            MirrorReason::Rule => 1,
            MirrorReason::Sample => 2,
            MirrorReason::NotSelected | MirrorReason::RateLimited => return None,
        };
        self.mirrored.get(target).and_then(|s| s[slot])
    }
}
