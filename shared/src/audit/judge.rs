//! Which requests are recorded (the audit's per-request decision): the remarkable ones always, allowed ones by a deterministic
//! sample keyed on the request id ([`crate::sampling`], so every proxy on a request's path makes
//! the same choice, and every request the mirror samples at a fraction up to `sample_allowed`
//! is recorded).

use crate::decision::{AllowlistOutcome, MirrorReason};
use crate::sampling::{in_sample, stable_hash};

use super::exchange::HttpExchange;
use super::AuditPolicy;

/// Why a request was recorded or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleVerdict {
    /// Denied, would-deny, malformed, mirrored for a signature, a 5xx or no response at all:
    /// recorded whatever the sampling fraction.
    AlwaysRecorded,
    /// An unremarkable request the sample picked.
    Sampled,
    /// An unremarkable request the sample passed over.
    NotSampled,
}

impl SampleVerdict {
    /// Whether a record is written.
    pub fn is_recorded(self) -> bool {
        !matches!(self, SampleVerdict::NotSampled)
    }
}

impl AuditPolicy {
    /// Whether `exchange` is recorded under this policy (its `sample_allowed`).
    pub fn judge(&self, exchange: &HttpExchange) -> SampleVerdict {
        sample_verdict(exchange, self.sample_allowed)
    }
}

/// Decides whether `exchange` is recorded when unremarkable requests are kept with
/// probability `fraction`.
pub fn sample_verdict(exchange: &HttpExchange, fraction: f64) -> SampleVerdict {
    let remarkable_decision = exchange.allowlist.as_ref().is_some_and(|d| {
        matches!(
            d.outcome,
            AllowlistOutcome::Denied | AllowlistOutcome::WouldDeny | AllowlistOutcome::Malformed
        )
    });
    let signature = exchange
        .mirror
        .as_ref()
        .is_some_and(|m| m.reason == MirrorReason::Signature || !m.signatures.is_empty());
    let failed = match exchange.status {
        None | Some(0) => true,
        Some(code) => code >= 500,
    };
    if remarkable_decision || signature || failed {
        return SampleVerdict::AlwaysRecorded;
    }
    if fraction >= 1.0 {
        return SampleVerdict::Sampled;
    }
    // The request id's point, as the mirror computes it (see `crate::sampling`); without an id,
    // a key of this proxy's own still samples such requests at the fraction.
    let key = match exchange.request_id.as_deref().filter(|id| !id.is_empty()) {
        Some(id) => stable_hash(id.as_bytes()),
        None => {
            stable_hash(&exchange.start_ns.to_le_bytes()) ^ stable_hash(exchange.path.as_bytes())
        }
    };
    if in_sample(key, fraction) {
        SampleVerdict::Sampled
    } else {
        SampleVerdict::NotSampled
    }
}
