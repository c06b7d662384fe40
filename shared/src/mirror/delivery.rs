//! `dispatch` delivery accounting for one worker: the copies waiting to be sent, the calls in
//! flight, and each target's health, with time passed in.
//!
//! Envoy ties an HTTP call to the context that makes it (a stream's calls are cancelled when the
//! stream ends), so streams queue their copies here and the worker's root context sends them on
//! its next tick and reports every answer back. That keeps the count of calls in flight exact,
//! and lets a target that keeps failing rest (exponential backoff): a sensor that is down costs
//! the proxy next to nothing. A call that is never answered stops counting once its timeout
//! and a grace second have passed.

#[cfg(test)]
mod tests;

use super::{MirrorPolicy, TargetId};
use std::collections::VecDeque;

/// Consecutive failures after which a target rests.
pub const FAILURES_BEFORE_BACKOFF: u32 = 3;
/// First rest, doubled on every further failure.
pub const BACKOFF_INITIAL_NANOS: u64 = 100_000_000;
/// Longest rest.
pub const BACKOFF_MAX_NANOS: u64 = 5_000_000_000;
/// Extra time after a call's timeout by which Envoy has certainly answered it.
pub const ANSWER_GRACE_NANOS: u64 = 1_000_000_000;

/// A copy waiting to be sent by HTTP call to its target's cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchCopy {
    /// Where it goes.
    pub target: TargetId,
    /// Request headers of the copy, pseudo-headers included (see
    /// [`super::copy::dispatch_headers`]).
    pub headers: Vec<(String, String)>,
    /// The body read so far (at most `max_body_bytes`), empty for none.
    pub body: Vec<u8>,
}

/// Why a copy was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `max_in_flight` copies to the target are queued or outstanding.
    Busy,
    /// The target failed repeatedly and is resting.
    Resting,
}

/// What [`Deliveries::offer`] did with a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offered {
    /// `Ok(true)`: queued into an empty queue (the caller arms the send tick); `Ok(false)`:
    /// queued behind others; `Err`: dropped, and why.
    pub queued: Result<bool, Refusal>,
    /// Calls to the target that passed their deadline unanswered and stopped counting.
    pub unconfirmed: usize,
}

#[derive(Debug, Clone)]
struct TargetHealth {
    max_in_flight: usize,
    /// A call's timeout plus [`ANSWER_GRACE_NANOS`].
    answer_within_nanos: u64,
    /// (call token, time by which Envoy has answered it).
    in_flight: Vec<(u32, u64)>,
    queued: usize,
    consecutive_failures: u32,
    resting_until: u64,
}

/// One worker's `dispatch` copies: queued, in flight, and each target's health.
#[derive(Debug, Clone)]
pub struct Deliveries {
    queue: VecDeque<DispatchCopy>,
    targets: Vec<TargetHealth>,
}

/// Whether a call's answer counts as delivered: any status below 500. `None` (a reset: no
/// headers at all) and 5xx (Envoy answers a refused connection with a local 503, a timeout
/// with a 504) are failures.
pub fn call_succeeded(status: Option<u16>) -> bool {
    status.is_some_and(|s| s < 500)
}

impl Deliveries {
    /// Healthy, idle targets for every target of `policy`.
    pub fn new(policy: &MirrorPolicy) -> Deliveries {
        Deliveries {
            queue: VecDeque::new(),
            targets: policy
                .targets()
                .iter()
                .map(|t| TargetHealth {
                    max_in_flight: t.max_in_flight as usize,
                    answer_within_nanos: t
                        .timeout_ms
                        .saturating_mul(1_000_000)
                        .saturating_add(ANSWER_GRACE_NANOS),
                    in_flight: Vec::new(),
                    queued: 0,
                    consecutive_failures: 0,
                    resting_until: 0,
                })
                .collect(),
        }
    }

    /// Queues `copy` at time `now_nanos` unless its target is resting or `max_in_flight` of its
    /// copies are queued or outstanding (an unknown target counts as busy).
    pub fn offer(&mut self, copy: DispatchCopy, now_nanos: u64) -> Offered {
        let Some(t) = self.targets.get_mut(copy.target) else {
            return Offered {
                queued: Err(Refusal::Busy),
                unconfirmed: 0,
            };
        };
        let before = t.in_flight.len();
        t.in_flight.retain(|(_, deadline)| *deadline > now_nanos);
        let unconfirmed = before - t.in_flight.len();
        let queued = if now_nanos < t.resting_until {
            Err(Refusal::Resting)
        } else if t.in_flight.len() + t.queued >= t.max_in_flight {
            Err(Refusal::Busy)
        } else {
            t.queued += 1;
            let was_empty = self.queue.is_empty();
            self.queue.push_back(copy);
            Ok(was_empty)
        };
        Offered {
            queued,
            unconfirmed,
        }
    }

    /// Takes every queued copy, for sending now; each must then be reported with
    /// [`Deliveries::sent`] or [`Deliveries::refused`].
    pub fn take_queue(&mut self) -> Vec<DispatchCopy> {
        for t in &mut self.targets {
            t.queued = 0;
        }
        self.queue.drain(..).collect()
    }

    /// The host accepted the call for a copy to `target` at `now_nanos`, as `token`: it is in
    /// flight until answered or until its timeout and a grace second have passed.
    pub fn sent(&mut self, target: TargetId, token: u32, now_nanos: u64) {
        if let Some(t) = self.targets.get_mut(target) {
            let deadline = now_nanos.saturating_add(t.answer_within_nanos);
            t.in_flight.push((token, deadline));
        }
    }

    /// The host refused the call for a copy to `target` (unknown cluster...): a failure.
    pub fn refused(&mut self, target: TargetId, now_nanos: u64) {
        self.outcome(target, false, now_nanos);
    }

    /// An answer came for `token` (`ok` per [`call_succeeded`]); `false` when the token is not
    /// one of ours (never sent, already answered, or given up on).
    pub fn answered(&mut self, token: u32, ok: bool, now_nanos: u64) -> bool {
        let found = self.targets.iter().enumerate().find_map(|(i, t)| {
            t.in_flight
                .iter()
                .position(|(k, _)| *k == token)
                .map(|at| (i, at))
        });
        let Some((target, at)) = found else {
            return false;
        };
        if let Some(t) = self.targets.get_mut(target) {
            t.in_flight.swap_remove(at);
        }
        self.outcome(target, ok, now_nanos);
        true
    }

    /// Calls to `target` sent and not yet answered (nor given up on).
    pub fn in_flight(&self, target: TargetId) -> usize {
        self.targets.get(target).map_or(0, |t| t.in_flight.len())
    }

    /// Copies to `target` waiting for the next send.
    pub fn queued(&self, target: TargetId) -> usize {
        self.targets.get(target).map_or(0, |t| t.queued)
    }

    /// Failures of `target` since its last success.
    pub fn consecutive_failures(&self, target: TargetId) -> u32 {
        self.targets
            .get(target)
            .map_or(0, |t| t.consecutive_failures)
    }

    /// Whether `target` rests at `now_nanos` (copies to it are refused).
    pub fn resting(&self, target: TargetId, now_nanos: u64) -> bool {
        self.targets
            .get(target)
            .is_some_and(|t| now_nanos < t.resting_until)
    }

    /// Records the outcome of one copy for its target's health.
    fn outcome(&mut self, target: TargetId, ok: bool, now_nanos: u64) {
        let Some(t) = self.targets.get_mut(target) else {
            return;
        };
        if ok {
            t.consecutive_failures = 0;
            t.resting_until = 0;
            return;
        }
        t.consecutive_failures = t.consecutive_failures.saturating_add(1);
        if t.consecutive_failures >= FAILURES_BEFORE_BACKOFF {
            let doublings = (t.consecutive_failures - FAILURES_BEFORE_BACKOFF).min(16);
            let rest = BACKOFF_INITIAL_NANOS
                .saturating_mul(1u64 << doublings)
                .min(BACKOFF_MAX_NANOS);
            t.resting_until = now_nanos.saturating_add(rest);
        }
    }
}
