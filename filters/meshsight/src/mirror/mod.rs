//! The mirror job: per-request decisions on which requests a security sensor gets a copy of.
//! Policy, signatures, sampling and rate caps live in `meshsight_policy::mirror`; this job
//! removes any client-supplied decision header, and delivers the decision: a decision header
//! for an Envoy route / Istio VirtualService to mirror on (`header`), or an HTTP call to the
//! sensor's cluster made by the worker's root context (`dispatch`).

mod delivery;
pub mod metrics;
mod stream;

pub use stream::MirrorStream;

use crate::host::{self, Stats};
use meshsight_policy::head::RequestHead;
use meshsight_policy::mirror::copy::{Clock, MirrorWorker};
use meshsight_policy::mirror::delivery::call_succeeded;
use meshsight_policy::mirror::delivery::Refusal;
use meshsight_policy::mirror::hold::HeldRequests;
use meshsight_policy::mirror::MirrorPolicy;
use meshsight_policy::response::copy::offer_response_copy;
use meshsight_policy::response::{ResponseCopy, ResponseVerdict};
use metrics::Metrics;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

/// The compiled mirror policy, its counters and the worker's shared state; cloned (cheaply)
/// into every stream.
#[derive(Clone)]
pub struct Configured {
    pub(crate) policy: Rc<MirrorPolicy>,
    pub(crate) worker: Rc<RefCell<MirrorWorker>>,
    pub(crate) metrics: Rc<Metrics>,
    /// Requests held for their body, each with its deadline and, for a denied one, its local
    /// reply (let go by the root's tick at `hold_timeout_ms`).
    pub(crate) held: Rc<RefCell<HeldRequests<Option<LocalReply>>>>,
    /// The root's tick runs at [`HOLD_TICK`] for the held requests.
    hold_tick: Rc<Cell<bool>>,
    /// The root's tick period when no copy waits (another job's, or none).
    pub(crate) idle_tick: Duration,
}

/// A local reply held back while the body of a denied request is read: status, content type,
/// body.
pub(crate) type LocalReply = (u32, String, Vec<u8>);

/// Tick period while requests are held: the bound on a hold is `hold_timeout_ms` plus this.
const HOLD_TICK: Duration = Duration::from_millis(10);

/// The mirror job of one plugin.
pub type MirrorJob = Configured;

impl Configured {
    /// Defines the counters and the worker state for `policy`; `idle_tick` is the tick period
    /// the root context needs when no copy waits to be sent.
    pub fn new(policy: MirrorPolicy, stats: &Stats, idle_tick: Duration) -> Configured {
        let metrics = Metrics::define(&policy, stats);
        let worker = MirrorWorker::new(&policy);
        log!(
            Info,
            "meshsight mirror: {} targets, signatures: {}",
            policy.targets().len(),
            policy.signature_names().join(",")
        );
        Configured {
            policy: Rc::new(policy),
            worker: Rc::new(RefCell::new(worker)),
            metrics: Rc::new(metrics),
            held: Rc::default(),
            hold_tick: Rc::default(),
            idle_tick,
        }
    }

    /// Whether a signature can ever make a copy (the policy names a signature target).
    pub fn scans(&self) -> bool {
        !self.policy.signature_names().is_empty()
    }

    /// Counts a scanned response by outcome and offers its copy to the signature target (sent
    /// on the root's next tick, within the target's rate cap and `max_in_flight`); the verdict
    /// learns whether it was copied.
    pub fn response_scanned(&self, head: &RequestHead, verdict: &mut ResponseVerdict) {
        let m = &self.metrics;
        m.responses[0].inc();
        let slot = match verdict.outcome() {
            "succeeded" => 1,
            "attempted" => 2,
            _ => 3,
        };
        m.responses[slot].inc();
        let offered = offer_response_copy(
            &self.policy,
            &mut self.worker.borrow_mut(),
            head,
            verdict,
            &mut Clock::reading(&stream::HOST_CLOCK),
        );
        if verdict.copy == ResponseCopy::RateLimited {
            m.response_rate_limited.inc();
        }
        let Some(offered) = offered else {
            return;
        };
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

    /// Holds stream `context_id` for its body from `now_nanos` until `hold_timeout_ms` later;
    /// `reply`: the local reply of a denied request, sent when the hold ends.
    pub(crate) fn hold(&self, context_id: u32, now_nanos: u64, reply: Option<LocalReply>) {
        let timeout = self.policy.hold_timeout_ms().saturating_mul(1_000_000);
        self.held
            .borrow_mut()
            .hold(context_id, now_nanos.saturating_add(timeout), reply);
        host::set_tick_period(HOLD_TICK);
        self.hold_tick.set(true);
    }

    /// Lets go every held request whose `hold_timeout_ms` has passed (root context, on tick):
    /// a denied one gets its local reply, an allowed one goes on, with what was read. When
    /// holds keep running out before any body arrives, the proxy cannot hand bodies to a
    /// paused filter (no `allow_on_headers_stop_iteration`): this worker stops holding and
    /// says so once. `root_id`: the root context, made current again afterwards.
    pub(crate) fn let_go_expired(&self, now_nanos: u64, root_id: u32) {
        let (expired, stopped_now) = self.held.borrow_mut().expire(now_nanos);
        for e in &expired {
            self.metrics.hold_timeouts.inc();
            if !host::set_effective_context(e.context_id) {
                continue;
            }
            match &e.payload {
                Some((status, content_type, body)) => {
                    host::send_local_response(*status, content_type, body)
                }
                None => host::resume_request(),
            }
        }
        if !expired.is_empty() {
            let _ = host::set_effective_context(root_id);
        }
        if stopped_now {
            self.worker.borrow_mut().may_hold = false;
            self.metrics.hold_stopped.inc();
            log!(
                Warn,
                "meshsight mirror: {} held requests in a row got no body within hold_timeout_ms \
                 ({} ms): this proxy does not hand a paused request's body to the filter (Envoy's \
                 allow_on_headers_stop_iteration is off, as under an Istio WasmPlugin), so this \
                 worker stops holding; body-borne indicators on denied requests go unseen. Turn \
                 hold_for_body off, or deploy with the option (envoy-config/istio/body-hold/)",
                meshsight_policy::mirror::hold::BODYLESS_TIMEOUTS_TO_STOP,
                self.policy.hold_timeout_ms()
            );
        }
        // The tick stays fast while anything is held (a copy sent this tick put it back to
        // the idle period), and goes back to idle once nothing is.
        if self.held.borrow().any() {
            host::set_tick_period(HOLD_TICK);
            self.hold_tick.set(true);
        } else if self.hold_tick.replace(false) {
            host::set_tick_period(self.idle_tick);
        }
    }

    /// The held stream `context_id` got some body: the proxy does hand bodies over.
    pub(crate) fn body_arrived(&self, context_id: u32) {
        self.held.borrow_mut().body_arrived(context_id);
    }

    /// Stream `context_id` is done holding: its held reply, if it was still held.
    pub(crate) fn release(&self, context_id: u32) -> Option<Option<LocalReply>> {
        self.held.borrow_mut().release(context_id)
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
