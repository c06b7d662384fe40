//! The mirror's counters, defined once per plugin at configuration.

use crate::host::{stat_part, Counter, Stats};
use meshsight_policy::decision::MirrorReason;
use meshsight_policy::mirror::signatures::finding_names;
use meshsight_policy::mirror::MirrorPolicy;

/// Metric names (Envoy stats), all prefixed `meshsight_mirror_`.
pub mod name {
    /// Counter: requests decided.
    pub const REQUESTS: &str = "meshsight_mirror_requests";
    /// Counter prefix: copies per target and reason, `meshsight_mirror_mirrored_<target>_<reason>`
    /// (`signature`, `rule`, `sample`).
    pub const MIRRORED_PREFIX: &str = "meshsight_mirror_mirrored_";
    /// Counter: selected but over the rate cap, all targets.
    pub const RATE_LIMITED: &str = "meshsight_mirror_rate_limited";
    /// Counter prefix: selected but over the rate cap, per target
    /// (`meshsight_mirror_rate_limited_<target>`).
    pub const RATE_LIMITED_PREFIX: &str = "meshsight_mirror_rate_limited_";
    /// Counter: requests not selected.
    pub const NOT_SELECTED: &str = "meshsight_mirror_not_selected";
    /// Counter prefix: requests a signature category matched
    /// (`meshsight_mirror_signature_<category>`).
    pub const SIGNATURE_PREFIX: &str = "meshsight_mirror_signature_";
    /// Counter prefix: requests a signature rule matched
    /// (`meshsight_mirror_signature_rule_<rule id>`).
    pub const SIGNATURE_RULE_PREFIX: &str = "meshsight_mirror_signature_rule_";
    /// Counter prefix: requests whose encoding decoding found wrong, by finding
    /// (`meshsight_mirror_decode_<finding>`: `multipart_malformed`, `body_encoding_broken`, ...).
    pub const DECODE_PREFIX: &str = "meshsight_mirror_decode_";
    /// Counter: `dispatch` calls refused by the host, or answered with a reset, timeout or 5xx.
    pub const DISPATCH_FAILED: &str = "meshsight_mirror_dispatch_failed";
    /// Counter: `dispatch` calls Envoy never answered within their timeout and a grace second.
    pub const DISPATCH_UNCONFIRMED: &str = "meshsight_mirror_dispatch_unconfirmed";
    /// Counter: `dispatch` copies skipped because their target is resting after failures.
    pub const TARGET_RESTING: &str = "meshsight_mirror_target_resting";
    /// Counter: `dispatch` copies dropped because `max_in_flight` calls were outstanding.
    pub const IN_FLIGHT_DROPPED: &str = "meshsight_mirror_in_flight_dropped";
    /// Counter: client-supplied decision headers removed.
    pub const SPOOFED_HEADER_REMOVED: &str = "meshsight_mirror_spoofed_header_removed";
    /// Counter: `clear_route_cache` calls that failed.
    pub const ROUTE_CACHE_CLEAR_FAILED: &str = "meshsight_mirror_route_cache_clear_failed";
    /// Counter: bodies longer than `max_body_bytes` (inspected and copied only in part).
    pub const BODY_TRUNCATED: &str = "meshsight_mirror_body_truncated";
    /// Counter: held requests let go at `hold_timeout_ms`, their body read or not.
    pub const HOLD_TIMEOUTS: &str = "meshsight_mirror_hold_timeouts";
    /// Counter: times a worker stopped holding requests because holds kept running out
    /// without any body (the proxy lacks `allow_on_headers_stop_iteration`).
    pub const HOLD_STOPPED: &str = "meshsight_mirror_hold_stopped";
    /// Counter: responses scanned by response rules (`succeeded` + `attempted` + `clean`).
    pub const RESPONSES_SCANNED: &str = "meshsight_mirror_responses_scanned";
    /// Counter: scanned responses a response rule matched.
    pub const RESPONSES_SUCCEEDED: &str = "meshsight_mirror_responses_succeeded";
    /// Counter: scanned responses of signature hits no response rule matched.
    pub const RESPONSES_ATTEMPTED: &str = "meshsight_mirror_responses_attempted";
    /// Counter: scanned responses with neither a finding nor a signature hit.
    pub const RESPONSES_CLEAN: &str = "meshsight_mirror_responses_clean";
    /// Counter: response copies refused because their target's rate cap (shared with the
    /// request copies) was reached.
    pub const RESPONSES_RATE_LIMITED: &str = "meshsight_mirror_responses_rate_limited";
}

/// Counters; one the host could not define counts nowhere (metrics never fail a request).
#[derive(Debug, Default)]
pub(crate) struct Metrics {
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
    pub signatures: CountersByName,
    /// Per signature rule id: requests it matched.
    pub signature_rules: CountersByName,
    /// Per decoding finding, in `finding_names` order: requests it was found in (defined only
    /// with a signature target).
    pub decode_findings: Vec<Counter>,
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
    /// Held requests let go at `hold_timeout_ms`, their body read or not.
    pub hold_timeouts: Counter,
    /// Times a worker stopped holding because holds ran out without a body (at most one per
    /// worker and configuration).
    pub hold_stopped: Counter,
    /// Responses scanned; by outcome: succeeded, attempted, clean (defined only with a
    /// `responses` section).
    pub responses: [Counter; 4],
    /// Response copies over their target's rate cap (defined only with `responses`).
    pub response_rate_limited: Counter,
}

impl Metrics {
    /// Defines every counter the policy can move.
    pub(crate) fn define(policy: &MirrorPolicy, stats: &Stats) -> Metrics {
        let c = |name: &str| stats.counter(name);
        Metrics {
            requests: c(name::REQUESTS),
            mirrored: policy
                .targets()
                .iter()
                .map(|t| {
                    let t = stat_part(&t.name);
                    ["signature", "rule", "sample"]
                        .map(|r| c(&format!("{}{t}_{r}", name::MIRRORED_PREFIX)))
                })
                .collect(),
            rate_limited_by_target: policy
                .targets()
                .iter()
                .map(|t| {
                    c(&format!(
                        "{}{}",
                        name::RATE_LIMITED_PREFIX,
                        stat_part(&t.name)
                    ))
                })
                .collect(),
            rate_limited: c(name::RATE_LIMITED),
            not_selected: c(name::NOT_SELECTED),
            signatures: counters_by_name(policy.signature_names(), name::SIGNATURE_PREFIX, &c),
            signature_rules: counters_by_name(
                policy.signature_rule_ids(),
                name::SIGNATURE_RULE_PREFIX,
                &c,
            ),
            decode_findings: if policy.signature_target().is_none() {
                Vec::new()
            } else {
                finding_names()
                    .map(|f| c(&format!("{}{f}", name::DECODE_PREFIX)))
                    .collect()
            },
            dispatch_failed: c(name::DISPATCH_FAILED),
            dispatch_unconfirmed: c(name::DISPATCH_UNCONFIRMED),
            target_resting: c(name::TARGET_RESTING),
            in_flight_dropped: c(name::IN_FLIGHT_DROPPED),
            spoofed_header_removed: c(name::SPOOFED_HEADER_REMOVED),
            route_cache_clear_failed: c(name::ROUTE_CACHE_CLEAR_FAILED),
            body_truncated: c(name::BODY_TRUNCATED),
            hold_timeouts: c(name::HOLD_TIMEOUTS),
            hold_stopped: c(name::HOLD_STOPPED),
            responses: if policy.responses().is_some() {
                [
                    name::RESPONSES_SCANNED,
                    name::RESPONSES_SUCCEEDED,
                    name::RESPONSES_ATTEMPTED,
                    name::RESPONSES_CLEAN,
                ]
                .map(c)
            } else {
                Default::default()
            },
            response_rate_limited: if policy.responses().is_some() {
                c(name::RESPONSES_RATE_LIMITED)
            } else {
                Counter::default()
            },
        }
    }

    /// The counter of copies to `target` for `reason` (none for reasons that are no copy).
    pub(crate) fn mirrored(&self, target: usize, reason: MirrorReason) -> Option<&Counter> {
        let slot = match reason {
            MirrorReason::Signature => 0,
            MirrorReason::Rule => 1,
            MirrorReason::Sample => 2,
            MirrorReason::NotSelected | MirrorReason::RateLimited => return None,
        };
        self.mirrored.get(target).and_then(|s| s.get(slot))
    }
}

/// Counters by name, in name order: a sorted list searched by halves, not a `BTreeMap`,
/// whose code for one more key and value type cost the module about 3 KB of Wasm. Looked up
/// only for a request a signature matched.
#[derive(Debug, Default)]
pub(crate) struct CountersByName(Vec<(String, Counter)>);

impl CountersByName {
    /// The counter of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Counter> {
        let i = self
            .0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()?;
        self.0.get(i).map(|(_, c)| c)
    }
}

/// One counter per name (`<prefix><name>`), by name; a name given twice keeps its last
/// counter (both count into the same stat).
fn counters_by_name(
    names: &[String],
    prefix: &str,
    c: &impl Fn(&str) -> Counter,
) -> CountersByName {
    let mut by_name: Vec<(String, Counter)> = Vec::with_capacity(names.len());
    for n in names {
        let counter = c(&format!("{prefix}{}", stat_part(n)));
        match by_name.binary_search_by(|(k, _)| k.as_str().cmp(n)) {
            Ok(i) => {
                if let Some(slot) = by_name.get_mut(i) {
                    slot.1 = counter;
                }
            }
            Err(i) => by_name.insert(i, (n.clone(), counter)),
        }
    }
    CountersByName(by_name)
}
