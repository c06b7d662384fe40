//! `dispatch` delivery: copies are queued by the streams and sent by the root context.
//!
//! Envoy ties an HTTP call to the context that makes it: a stream's calls are cancelled when
//! the stream ends, and the SDK only reports an answer to a context that still exists. A copy
//! must neither depend on how fast the upstream answers nor go unaccounted, so streams queue
//! their copies and the worker's root context sends them on its next tick (1 ms, armed only
//! while copies wait). The root owns every call and sees every answer: calls in flight are
//! counted exactly, failures are counted, and a target that keeps failing is given a rest
//! (exponential backoff), so a sensor that is down costs the proxy next to nothing.

use super::metrics::Metrics;
use super::Configured;
use meshsight_policy::mirror::TargetId;
use proxy_wasm::hostcalls;
use std::collections::VecDeque;
use std::time::Duration;

/// Tick period while copies wait to be sent.
const SEND_TICK: Duration = Duration::from_millis(1);
/// Consecutive failures after which a target rests.
const FAILURES_BEFORE_BACKOFF: u32 = 3;
/// First rest, doubled on every further failure.
const BACKOFF_INITIAL_NANOS: u64 = 100_000_000;
/// Longest rest.
const BACKOFF_MAX_NANOS: u64 = 5_000_000_000;
/// Extra time after a call's timeout by which Envoy has certainly answered it.
const ANSWER_GRACE_NANOS: u64 = 1_000_000_000;

/// A copy waiting to be sent.
pub(crate) struct QueuedCopy {
    pub(crate) target: TargetId,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

#[derive(Default, Clone)]
struct TargetState {
    /// (call token, time by which Envoy has answered it).
    in_flight: Vec<(u32, u64)>,
    queued: usize,
    consecutive_failures: u32,
    resting_until: u64,
}

/// Why a copy was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `max_in_flight` copies are queued or outstanding.
    Busy,
    /// The target failed repeatedly and is resting.
    Resting,
}

/// One worker's copies: queued, in flight, and each target's health.
pub(crate) struct Deliveries {
    queue: VecDeque<QueuedCopy>,
    targets: Vec<TargetState>,
}

impl Deliveries {
    pub(crate) fn new(targets: usize) -> Deliveries {
        Deliveries {
            queue: VecDeque::new(),
            targets: vec![TargetState::default(); targets],
        }
    }

    /// Queues `copy` unless its target is busy or resting; `Ok(true)` when the queue was empty
    /// (the caller arms the tick). Also returns how many calls passed their deadline unanswered.
    pub(crate) fn offer(
        &mut self,
        copy: QueuedCopy,
        max_in_flight: u32,
        now: u64,
    ) -> (Result<bool, Refusal>, usize) {
        let Some(t) = self.targets.get_mut(copy.target) else {
            return (Err(Refusal::Busy), 0);
        };
        let before = t.in_flight.len();
        t.in_flight.retain(|(_, deadline)| *deadline > now);
        let expired = before - t.in_flight.len();
        if now < t.resting_until {
            return (Err(Refusal::Resting), expired);
        }
        if t.in_flight.len() + t.queued >= max_in_flight as usize {
            return (Err(Refusal::Busy), expired);
        }
        t.queued += 1;
        let was_empty = self.queue.is_empty();
        self.queue.push_back(copy);
        (Ok(was_empty), expired)
    }

    fn take_queue(&mut self) -> Vec<QueuedCopy> {
        for t in &mut self.targets {
            t.queued = 0;
        }
        self.queue.drain(..).collect()
    }

    fn sent(&mut self, target: TargetId, token: u32, deadline: u64) {
        if let Some(t) = self.targets.get_mut(target) {
            t.in_flight.push((token, deadline));
        }
    }

    /// Records the outcome of one copy for its target's health.
    fn outcome(&mut self, target: TargetId, ok: bool, now: u64) {
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
            t.resting_until = now.saturating_add(rest);
        }
    }

    /// An answer came for `token`; `false` when the token is not one of ours.
    pub(crate) fn answered(&mut self, token: u32, ok: bool, now: u64) -> bool {
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
        self.outcome(target, ok, now);
        true
    }
}

/// Queues a copy from a stream; `false` (and counted) when it cannot go.
pub(crate) fn offer(configured: &Configured, copy: QueuedCopy, now: u64) -> bool {
    let Some(target) = configured.policy.targets().get(copy.target) else {
        return false;
    };
    let (result, expired) =
        configured
            .worker
            .borrow_mut()
            .deliveries
            .offer(copy, target.max_in_flight, now);
    Metrics::add(configured.metrics.dispatch_unconfirmed, expired);
    match result {
        Ok(was_empty) => {
            if was_empty {
                // Sets the root context's tick, also when called from a stream.
                let _ = hostcalls::set_tick_period(SEND_TICK);
            }
            true
        }
        Err(Refusal::Busy) => {
            Metrics::bump(configured.metrics.in_flight_dropped);
            false
        }
        Err(Refusal::Resting) => {
            Metrics::bump(configured.metrics.target_resting);
            false
        }
    }
}

/// Sends every queued copy (root context, on tick) and disarms the tick.
pub(crate) fn send_queued(configured: &Configured, now: u64) {
    let copies = configured.worker.borrow_mut().deliveries.take_queue();
    if copies.is_empty() {
        return;
    }
    let _ = hostcalls::set_tick_period(configured.idle_tick);
    for copy in copies {
        let Some(target) = configured.policy.targets().get(copy.target) else {
            continue;
        };
        let headers: Vec<(&str, &str)> = copy
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let body = (!copy.body.is_empty()).then_some(copy.body.as_slice());
        let timeout = Duration::from_millis(target.timeout_ms);
        match hostcalls::dispatch_http_call(&target.cluster, headers, body, vec![], timeout) {
            Ok(token) => {
                let deadline = now
                    .saturating_add(target.timeout_ms.saturating_mul(1_000_000))
                    .saturating_add(ANSWER_GRACE_NANOS);
                configured
                    .worker
                    .borrow_mut()
                    .deliveries
                    .sent(copy.target, token, deadline);
            }
            Err(status) => {
                log::warn!(
                    "meshsight mirror: dispatch to cluster {:?} failed: {status:?}",
                    target.cluster
                );
                Metrics::bump(configured.metrics.dispatch_failed);
                configured
                    .worker
                    .borrow_mut()
                    .deliveries
                    .outcome(copy.target, false, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(target: TargetId) -> QueuedCopy {
        QueuedCopy {
            target,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    #[test]
    fn queued_and_in_flight_copies_share_the_bound() {
        let mut d = Deliveries::new(1);
        assert_eq!(d.offer(copy(0), 2, 0).0, Ok(true));
        assert_eq!(d.offer(copy(0), 2, 0).0, Ok(false));
        assert_eq!(d.offer(copy(0), 2, 0).0, Err(Refusal::Busy));
        assert_eq!(d.take_queue().len(), 2);
        d.sent(0, 7, 1_000);
        assert_eq!(d.offer(copy(0), 2, 0).0, Ok(true));
        assert_eq!(d.offer(copy(0), 2, 0).0, Err(Refusal::Busy));
        assert!(d.answered(7, true, 10));
        assert!(!d.answered(7, true, 10), "answered once");
        assert_eq!(d.offer(copy(0), 2, 10).0, Ok(false));
        // A call past its deadline frees its slot and is reported.
        let _ = d.take_queue();
        d.sent(0, 8, 100);
        d.sent(0, 9, 100);
        let (r, expired) = d.offer(copy(0), 2, 200);
        assert_eq!((r, expired), (Ok(true), 2));
    }

    #[test]
    fn a_failing_target_rests_longer_each_time_and_recovers_on_success() {
        let mut d = Deliveries::new(1);
        for _ in 0..2 {
            d.outcome(0, false, 0);
        }
        assert!(
            d.offer(copy(0), 10, 0).0.is_ok(),
            "two failures: no rest yet"
        );
        d.outcome(0, false, 0);
        assert_eq!(d.offer(copy(0), 10, 1).0, Err(Refusal::Resting));
        assert!(d.offer(copy(0), 10, BACKOFF_INITIAL_NANOS).0.is_ok());
        d.outcome(0, false, 1_000);
        assert_eq!(
            d.offer(copy(0), 10, 1_000 + BACKOFF_INITIAL_NANOS).0,
            Err(Refusal::Resting),
            "the rest doubles"
        );
        assert!(d
            .offer(copy(0), 10, 1_000 + 2 * BACKOFF_INITIAL_NANOS)
            .0
            .is_ok());
        for _ in 0..40 {
            d.outcome(0, false, 0);
        }
        assert!(d.offer(copy(0), 100, BACKOFF_MAX_NANOS).0.is_ok(), "capped");
        d.outcome(0, true, 0);
        d.outcome(0, false, 0);
        assert!(
            d.offer(copy(0), 100, 0).0.is_ok(),
            "success resets the count"
        );
    }
}
