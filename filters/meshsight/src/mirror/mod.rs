//! The mirror job: per-request decisions on which requests a security sensor gets a copy of.
//! Policy, signatures, sampling and rate caps live in `meshsight_policy::mirror`; this job
//! removes any client-supplied decision header, and delivers the decision: a decision header
//! for an Envoy route / Istio VirtualService to mirror on (`header`), or an HTTP call to the
//! sensor's cluster made by the worker's root context (`dispatch`).

mod delivery;
pub mod metrics;
mod stream;

pub use stream::MirrorStream;

use crate::host::Stats;
use meshsight_policy::head::RequestHead;
use meshsight_policy::mirror::copy::MirrorWorker;
use meshsight_policy::mirror::delivery::call_succeeded;
use meshsight_policy::mirror::delivery::Refusal;
use meshsight_policy::mirror::MirrorPolicy;
use meshsight_policy::response::copy::response_copy;
use meshsight_policy::response::ResponseVerdict;
use metrics::Metrics;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// The compiled mirror policy, its counters and the worker's shared state; cloned (cheaply)
/// into every stream.
#[derive(Clone)]
pub struct Configured {
    pub(crate) policy: Rc<MirrorPolicy>,
    pub(crate) worker: Rc<RefCell<MirrorWorker>>,
    pub(crate) metrics: Rc<Metrics>,
    /// The root's tick period when no copy waits (another job's, or none).
    pub(crate) idle_tick: Duration,
}

/// The mirror job of one plugin.
pub type MirrorJob = Configured;

impl Configured {
    /// Defines the counters and the worker state for `policy`; `idle_tick` is the tick period
    /// the root context needs when no copy waits to be sent.
    pub fn new(policy: MirrorPolicy, stats: &Stats, idle_tick: Duration) -> Configured {
        let metrics = Metrics::define(&policy, stats);
        let worker = MirrorWorker::new(&policy);
        log::info!(
            "meshsight mirror: {} targets, signatures: {}",
            policy.targets().len(),
            policy.signature_names().join(",")
        );
        Configured {
            policy: Rc::new(policy),
            worker: Rc::new(RefCell::new(worker)),
            metrics: Rc::new(metrics),
            idle_tick,
        }
    }

    /// Whether a signature can ever make a copy (the policy names a signature target).
    pub fn scans(&self) -> bool {
        !self.policy.signature_names().is_empty()
    }

    /// Counts a scanned response by outcome and offers its copy to the signature target (sent
    /// on the root's next tick, within the target's `max_in_flight`).
    pub fn response_scanned(&self, head: &RequestHead, verdict: &ResponseVerdict) {
        let m = &self.metrics;
        m.responses[0].inc();
        let slot = match verdict.outcome() {
            "succeeded" => 1,
            "attempted" => 2,
            _ => 3,
        };
        m.responses[slot].inc();
        if slot == 3 {
            return;
        }
        let Some(copy) = response_copy(&self.policy, head, verdict) else {
            return;
        };
        let offered = self
            .worker
            .borrow_mut()
            .deliveries
            .offer(copy, crate::host::now_nanos());
        m.dispatch_unconfirmed.add(offered.unconfirmed as u64);
        match offered.queued {
            Ok(true) => delivery::arm_send_tick(),
            Ok(false) => {}
            Err(Refusal::Busy) => m.in_flight_dropped.inc(),
            Err(Refusal::Resting) => m.target_resting.inc(),
        }
    }

    /// Sends the queued copies (root context, on tick).
    pub fn send_queued(&self, now_nanos: u64) {
        delivery::send_queued(self, now_nanos);
    }

    /// An answer to call `token` (status `None`: reset or timeout); `false` when the call is
    /// not one of this job's.
    pub fn answered(&self, token: u32, status: Option<u16>, now_nanos: u64) -> bool {
        let ok = call_succeeded(status);
        let known = self
            .worker
            .borrow_mut()
            .deliveries
            .answered(token, ok, now_nanos);
        if known && !ok {
            self.metrics.dispatch_failed.inc();
        }
        known
    }
}
