//! The allowlist job: default-deny URL allow-listing that encoding tricks cannot bypass. The
//! policy, normalization and decisions live in `meshsight_policy::allowlist`; this job asks the
//! compiled [`AllowList`] for a judgement on the request the stream read and normalized once,
//! and counts it. The stream carries the judgement out (local reply, `:path` rewrite) after the
//! other jobs have seen the request. [`metrics`] declares its counters.

pub mod metrics;

use meshsight_policy::allowlist::{AllowList, Judgement};
use meshsight_policy::decision::AllowlistOutcome;
use meshsight_policy::matching::RequestFacts;

use metrics::Metrics;

use crate::host::Stats;

/// The compiled allowlist and its counters, shared by every stream of a worker.
pub struct AllowlistJob {
    list: AllowList,
    metrics: Metrics,
}

impl AllowlistJob {
    /// Defines the counters (every rule's too, so that a dead rule shows as a zero).
    pub fn new(list: AllowList, stats: &Stats) -> AllowlistJob {
        let metrics = Metrics::define(&list, stats);
        log!(
            Info,
            "meshsight allowlist: {} rules, mode {:?}",
            list.rule_count(),
            list.mode()
        );
        AllowlistJob { list, metrics }
    }

    /// Whether a rule looks at the peer's address (then the stream reads `source.address`).
    pub fn needs_source_address(&self) -> bool {
        self.list.needs_source_address()
    }

    /// Whether a rule looks at the peer's identity (principal or namespace).
    pub fn needs_peer_identity(&self) -> bool {
        self.list.needs_peer_identity()
    }

    /// Judges the request, normalized once by the stream for every job, and counts the
    /// judgement.
    pub fn judge(&self, facts: &RequestFacts<'_>) -> Judgement<'_> {
        let list = &self.list;
        let judgement = list.judge_facts(facts);
        let m = &self.metrics;
        match judgement.decision.outcome {
            AllowlistOutcome::Allowed => m.allowed.inc(),
            AllowlistOutcome::Denied => m.denied.inc(),
            AllowlistOutcome::WouldDeny => m.monitored.inc(),
            AllowlistOutcome::Malformed => {}
        }
        if judgement.malformed {
            m.malformed.inc();
        }
        if let Some(c) = judgement.rule.and_then(|r| m.rule_hits.get(r)) {
            c.inc();
        }
        judgement
    }
}
