//! Rate caps: a token bucket per target, with time passed in (the policy crate never reads a
//! clock). One bucket set ([`RateLimiter`]) lives in each worker's filter instance and turns a
//! [`Selection`] into the final [`MirrorDecision`].

use super::copy::Clock;
use super::{MirrorPolicy, Selection, TargetId};
use crate::decision::{MirrorDecision, MirrorReason};

/// A token bucket: `rate` tokens per second up to `burst`; a copy takes one token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    rate_per_sec: f64,
    burst: f64,
    tokens: f64,
    last_nanos: Option<u64>,
}

impl TokenBucket {
    /// A full bucket refilling at `rate_per_sec`, holding at most `burst` tokens.
    pub fn new(rate_per_sec: f64, burst: f64) -> TokenBucket {
        TokenBucket {
            rate_per_sec,
            burst,
            tokens: burst,
            last_nanos: None,
        }
    }

    /// Takes one token at time `now_nanos` (any monotonic or wall clock, in nanoseconds);
    /// `false` when the bucket is empty. A clock going backwards refills nothing.
    pub fn try_take(&mut self, now_nanos: u64) -> bool {
        if let Some(last) = self.last_nanos {
            let elapsed = now_nanos.saturating_sub(last) as f64 / 1e9;
            self.tokens = (self.tokens + elapsed * self.rate_per_sec).min(self.burst);
        }
        if self.last_nanos.is_none_or(|last| now_nanos > last) {
            self.last_nanos = Some(now_nanos);
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Per-worker rate caps, one token bucket per target.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    buckets: Vec<TokenBucket>,
}

impl RateLimiter {
    /// Full buckets for every target of `policy`.
    pub fn new(policy: &MirrorPolicy) -> RateLimiter {
        RateLimiter {
            buckets: policy
                .targets
                .iter()
                .map(|t| TokenBucket::new(t.max_rps, t.burst))
                .collect(),
        }
    }

    /// Takes a token from `target`'s bucket at `now_nanos`; `false` when it is empty. A
    /// response's copy takes from the same bucket as the request copies: a sensor's capacity
    /// is one number.
    pub fn admit(&mut self, target: TargetId, now_nanos: u64) -> bool {
        self.buckets
            .get_mut(target)
            .is_some_and(|b| b.try_take(now_nanos))
    }

    /// Turns a selection into the final decision: a selected request that finds its target's
    /// bucket empty at `clock`'s now becomes `RateLimited` (not mirrored). A request not
    /// selected does not read the clock.
    pub fn decide(
        &mut self,
        policy: &MirrorPolicy,
        selection: Selection,
        clock: &mut Clock<'_>,
    ) -> MirrorDecision {
        let target_name = |id: TargetId| policy.targets.get(id).map(|t| t.name.clone());
        match selection.target {
            Some(id) => {
                let admitted = self.admit(id, clock.now());
                MirrorDecision {
                    mirrored: admitted,
                    target: target_name(id),
                    reason: if admitted {
                        selection.reason
                    } else {
                        MirrorReason::RateLimited
                    },
                    rule: selection.rule,
                    signatures: selection.signatures,
                    signature_rules: selection.signature_rules,
                    findings: Vec::new(),
                }
            }
            None => MirrorDecision {
                mirrored: false,
                target: None,
                reason: selection.reason,
                rule: selection.rule,
                signatures: selection.signatures,
                signature_rules: selection.signature_rules,
                findings: Vec::new(),
            },
        }
    }
}
