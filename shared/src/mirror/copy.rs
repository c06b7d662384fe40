//! One request's copy: when to decide, whether to hold the request, and how the copy travels,
//! as a state machine the filter drives with what the host tells it.
//!
//! Inputs, in stream order: the head ([`MirrorCopy::head`], with the signature hits the caller
//! computed on it), or a head the allowlist denied ([`MirrorCopy::denied`]); then body chunks
//! ([`MirrorCopy::body`]), trailers ([`MirrorCopy::trailers`]) and the end of the stream
//! ([`MirrorCopy::stream_ended`]). Each returns a [`Step`]: whether the request may go on and
//! the [`CopyAction`]s for the adapter to carry out (set the decision header, arm the send
//! tick, count, record the decision). Nothing is read twice: the caller keeps the head and
//! passes the same [`MirrorRequest`] to every input.
//!
//! When the body can matter (an enabled signature looks in it), at most `max_body_bytes` are
//! read first. By default the request flows meanwhile: rules need only the head, so a rule's
//! `header` copy is decided at once, and a body signature later either upgrades that decision
//! (same target: no second copy) or adds a copy by HTTP call (too late for the route). With
//! `hold_for_body` the request waits until the body is read, so even a body-only hit can set
//! the decision header. A `dispatch` copy waits for the body (not the request) and carries it.

mod headers;
#[cfg(test)]
mod tests;

pub use headers::{
    dispatch_headers, has_copy_prefix, CLIENT_FORWARDING_HEADERS, COPY_HEADER_PREFIX,
    HOP_BY_HOP_HEADERS, SECRET_HEADERS,
};

use super::delivery::{Deliveries, DispatchCopy, Refusal};
use super::signatures::{CleanPieces, SignatureHits};
use super::{Delivery, MirrorPolicy, MirrorRequest, RateLimiter, Selection, TargetId};
use crate::decision::{MirrorDecision, MirrorReason};
use std::fmt;

/// One worker's mirror state, shared by its streams: the rate-cap buckets and the `dispatch`
/// deliveries.
#[derive(Debug, Clone)]
pub struct MirrorWorker {
    /// Token bucket per target.
    pub limiter: RateLimiter,
    /// Queued and in-flight `dispatch` copies and each target's health.
    pub deliveries: Deliveries,
    /// Request pieces this worker's scans found clean (see [`CleanPieces`]).
    pub clean: CleanPieces,
    /// Whether requests may be held for their body on this worker: the adapter turns it off
    /// when holds keep running out before any body arrives (see [`super::hold`]).
    pub may_hold: bool,
}

impl MirrorWorker {
    /// Full buckets and idle, healthy targets for `policy`.
    pub fn new(policy: &MirrorPolicy) -> MirrorWorker {
        MirrorWorker {
            limiter: RateLimiter::new(policy),
            deliveries: Deliveries::new(policy),
            clean: CleanPieces::new(),
            may_hold: true,
        }
    }
}

/// What every input needs besides the request: the policy, the worker's shared state and the
/// time.
#[derive(Debug)]
pub struct CopyContext<'a> {
    /// The compiled policy.
    pub policy: &'a MirrorPolicy,
    /// The worker's rate caps and deliveries.
    pub worker: &'a mut MirrorWorker,
    /// Now.
    pub clock: Clock<'a>,
}

/// Now, in nanoseconds (any clock that does not jump; the host's is fine), read when a rate
/// cap or a delivery first needs it and then kept for the rest of the input: a request no rule
/// or signature selects never reads it (in Envoy each read is a host call).
pub struct Clock<'a> {
    read: Option<&'a dyn Fn() -> u64>,
    now: Option<u64>,
}

impl<'a> Clock<'a> {
    /// A clock that calls `read` the first time it is asked.
    pub fn reading(read: &'a dyn Fn() -> u64) -> Self {
        Self {
            read: Some(read),
            now: None,
        }
    }

    /// A clock that says `now_nanos`.
    pub fn at(now_nanos: u64) -> Self {
        Self {
            read: None,
            now: Some(now_nanos),
        }
    }

    /// Now, read at most once.
    pub fn now(&mut self) -> u64 {
        let read = self.read;
        *self
            .now
            .get_or_insert_with(|| read.map_or(0, |read| read()))
    }
}

impl fmt::Debug for Clock<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clock")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// Whether the request may go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Let it go on.
    Continue,
    /// Hold it (pause the headers / body) until more of the body is read.
    Hold,
}

/// Something the adapter does for the copy, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyAction {
    /// Set request header `name: value` and clear the route cache, so that a route matching
    /// the header mirrors the request.
    SetDecisionHeader {
        /// Header name (lower-case).
        name: String,
        /// The target's name.
        value: String,
    },
    /// A `dispatch` copy to `target` was queued in [`Deliveries`]; `arm_tick`: the queue was
    /// empty, so the root context's send tick must be armed.
    Queued {
        /// Where the copy goes.
        target: TargetId,
        /// Arm the send tick.
        arm_tick: bool,
    },
    /// A `dispatch` copy to `target` could not go (count it).
    Dropped {
        /// Where it would have gone.
        target: TargetId,
        /// Why not.
        refusal: Refusal,
    },
    /// Calls that passed their deadline unanswered stopped counting as in flight (count them).
    Unconfirmed(usize),
    /// The body was longer than `max_body_bytes`: inspected and copied in part (count it).
    BodyTruncated,
    /// The request's final decision: count it and write it to filter state. Comes once per
    /// request, last.
    Record {
        /// The chosen target, for per-target counters.
        target: Option<TargetId>,
        /// The decision.
        decision: MirrorDecision,
    },
}

/// What one input leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Whether the request may go on.
    pub flow: Flow,
    /// What to do, in order.
    pub actions: Vec<CopyAction>,
}

impl Step {
    fn new(flow: Flow) -> Step {
        Step {
            flow,
            actions: Vec::new(),
        }
    }

    /// The decision recorded in this step, if any.
    pub fn decision(&self) -> Option<&MirrorDecision> {
        self.actions.iter().find_map(|a| match a {
            CopyAction::Record { decision, .. } => Some(decision),
            _ => None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing seen yet.
    AwaitingHead,
    /// Reading the body: to inspect it, to copy it, or both.
    ReadingBody,
    /// Decided and recorded; later inputs change nothing.
    Done,
}

/// A decision taken at the head and finished once the body has been read: a `dispatch` copy
/// waiting for the body, or a rule decision already acted on through the decision header.
#[derive(Debug, Clone)]
struct Early {
    target: Option<TargetId>,
    decision: MirrorDecision,
    /// The decision header is set: the route makes the copy.
    header_set: bool,
}

/// One request's copy state (see the module documentation).
#[derive(Debug, Clone)]
pub struct MirrorCopy {
    phase: Phase,
    hits: SignatureHits,
    /// The request is held while the body is read.
    holding: bool,
    /// The body is read for signatures (not only to be copied).
    inspect_body: bool,
    max_body_bytes: usize,
    body: Vec<u8>,
    /// Body bytes the request carried so far (more than `body` once truncated).
    body_seen: usize,
    early: Option<Early>,
    /// The allowlist denied the request: once the held body is read, decide as for a denied
    /// request.
    denied: bool,
}

impl Default for MirrorCopy {
    fn default() -> Self {
        MirrorCopy::new()
    }
}

impl MirrorCopy {
    /// A copy state awaiting the request head.
    pub fn new() -> MirrorCopy {
        MirrorCopy {
            phase: Phase::AwaitingHead,
            hits: SignatureHits::default(),
            holding: false,
            inspect_body: false,
            max_body_bytes: 0,
            body: Vec::new(),
            body_seen: 0,
            early: None,
            denied: false,
        }
    }

    /// Whether body chunks are still wanted (the decision waits for the body).
    pub fn reading_body(&self) -> bool {
        self.phase == Phase::ReadingBody
    }

    /// Whether the request is held while its body is read.
    pub fn holding(&self) -> bool {
        self.holding && self.reading_body()
    }

    /// The body bytes read so far (at most `max_body_bytes`).
    pub fn body_read(&self) -> &[u8] {
        &self.body
    }

    /// How many bytes, from the start of the host's body buffer, to hand to
    /// [`MirrorCopy::body`] when the host reports `body_size` bytes; `None` when the body is
    /// not wanted (then do not call [`MirrorCopy::body`]). While held, the buffer is the whole
    /// body so far; otherwise it is the new chunk.
    pub fn body_to_read(&self, body_size: usize) -> Option<usize> {
        if !self.reading_body() {
            return None;
        }
        let room = if self.holding {
            self.max_body_bytes
        } else {
            self.max_body_bytes.saturating_sub(self.body.len())
        };
        Some(body_size.min(room))
    }

    /// The request head, `request` with signature hits `hits` already matched on it (by
    /// [`MirrorPolicy::scan_head`]); `end_of_stream` when it has no body. Decides now, or holds
    /// the request, or lets it go while the body is read.
    pub fn head(
        &mut self,
        cx: &mut CopyContext<'_>,
        request: &MirrorRequest<'_>,
        hits: SignatureHits,
        end_of_stream: bool,
    ) -> Step {
        let mut step = Step::new(Flow::Continue);
        if self.phase != Phase::AwaitingHead {
            return step;
        }
        let policy = cx.policy;
        self.max_body_bytes = policy.max_body_bytes();
        let wants_body = !end_of_stream && policy.wants_body(request, &hits);
        self.hits = hits;
        if wants_body {
            self.phase = Phase::ReadingBody;
            self.inspect_body = true;
            self.holding = policy.hold_for_body() && cx.worker.may_hold;
            if self.holding {
                step.flow = Flow::Hold;
                return step;
            }
            // Not held: rules need only the head, so act on them while the route can still
            // mirror; a body signature found later upgrades or adds to this decision.
            let early = self.decide_early(cx, request, &mut step);
            self.early = Some(early);
            return step;
        }
        let (target, decision) = self.decide(cx, request);
        let dispatch_waits_for_body = !end_of_stream
            && decision.mirrored
            && self.max_body_bytes > 0
            && target
                .and_then(|t| policy.targets().get(t))
                .is_some_and(|t| t.delivery == Delivery::Dispatch);
        if dispatch_waits_for_body {
            // Copy the body as it passes; the request is not held.
            self.phase = Phase::ReadingBody;
            self.early = Some(Early {
                target,
                decision,
                header_set: false,
            });
        } else {
            self.phase = Phase::Done;
            self.deliver(cx, request, target, decision, true, &mut step);
        }
        step
    }

    /// A request head the allowlist denied: it never reaches the upstream and no route mirrors
    /// it. With `copy_denied` on and a signature hit, the copy goes by HTTP call to the
    /// signature target (whatever its delivery), within the rate cap. Rules and samples never
    /// select a denied request. With `hold_for_body`, when the body can still matter, the
    /// request is held ([`Flow::Hold`]: the caller keeps its local reply back) while up to
    /// `max_body_bytes` of it are read and scanned, and the decision (a copy with that body)
    /// comes when the body is read; otherwise it is decided at once, the copy without the body
    /// (`x-meshsight-mirror-body-truncated: true` unless `end_of_stream`).
    pub fn denied(
        &mut self,
        cx: &mut CopyContext<'_>,
        request: &MirrorRequest<'_>,
        hits: SignatureHits,
        end_of_stream: bool,
    ) -> Step {
        if self.phase != Phase::AwaitingHead {
            return Step::new(Flow::Continue);
        }
        let policy = cx.policy;
        self.denied = true;
        self.max_body_bytes = policy.max_body_bytes();
        let hold = !end_of_stream
            && cx.worker.may_hold
            && policy.holds_bodies()
            && policy.copy_denied()
            && policy.wants_body(request, &hits);
        self.hits = hits;
        if hold {
            self.phase = Phase::ReadingBody;
            self.holding = true;
            self.inspect_body = true;
            return Step::new(Flow::Hold);
        }
        self.phase = Phase::Done;
        let mut step = Step::new(Flow::Continue);
        self.decide_denied(cx, request, !end_of_stream, &mut step);
        step
    }

    /// The decision on a denied request once everything it will show has been seen.
    fn decide_denied(
        &self,
        cx: &mut CopyContext<'_>,
        request: &MirrorRequest<'_>,
        body_missing: bool,
        step: &mut Step,
    ) {
        let selection = if self.hits.any() {
            cx.policy.select(request, &self.hits)
        } else {
            not_selected()
        };
        if selection.reason != MirrorReason::Signature {
            self.record(step, None, decision_of(not_selected()));
            return;
        }
        if !cx.policy.copy_denied() {
            let decision = MirrorDecision {
                signatures: selection.signatures,
                signature_rules: selection.signature_rules,
                ..decision_of(not_selected())
            };
            self.record(step, None, decision);
            return;
        }
        let target = selection.target;
        let mut decision = cx
            .worker
            .limiter
            .decide(cx.policy, selection, &mut cx.clock);
        if let (true, Some(id)) = (decision.mirrored, target) {
            decision.mirrored = self.dispatch(cx, request, id, &decision, body_missing, step);
        }
        self.record(step, target, decision);
    }

    /// A body chunk: the host reports `body_size` bytes (the whole buffer while held, else the
    /// new chunk) and `bytes` holds the first [`MirrorCopy::body_to_read`] of them;
    /// `end_of_stream` when it is the last. Decides once the body ends or `max_body_bytes`
    /// were seen.
    pub fn body(
        &mut self,
        cx: &mut CopyContext<'_>,
        request: &MirrorRequest<'_>,
        body_size: usize,
        bytes: &[u8],
        end_of_stream: bool,
    ) -> Step {
        if !self.reading_body() {
            return Step::new(Flow::Continue);
        }
        let max = self.max_body_bytes;
        if self.holding {
            // The host buffers what was held: its buffer is the body so far.
            self.body_seen = body_size;
            self.body.clear();
            self.body
                .extend_from_slice(bytes.get(..bytes.len().min(max)).unwrap_or_default());
        } else {
            self.body_seen = self.body_seen.saturating_add(body_size);
            let room = max.saturating_sub(self.body.len());
            self.body
                .extend_from_slice(bytes.get(..bytes.len().min(room)).unwrap_or_default());
        }
        if end_of_stream || self.body_seen >= max {
            return self.complete(cx, request, self.holding);
        }
        Step::new(if self.holding {
            Flow::Hold
        } else {
            Flow::Continue
        })
    }

    /// Trailers came: the body is over.
    pub fn trailers(&mut self, cx: &mut CopyContext<'_>, request: &MirrorRequest<'_>) -> Step {
        if !self.reading_body() {
            return Step::new(Flow::Continue);
        }
        self.complete(cx, request, self.holding)
    }

    /// The stream ended (client reset, or the last callback): decides on what was read, if the
    /// body was still being read. The request has gone on, so the decision header can no
    /// longer be set: a `header` copy goes by HTTP call.
    pub fn stream_ended(&mut self, cx: &mut CopyContext<'_>, request: &MirrorRequest<'_>) -> Step {
        if !self.reading_body() {
            return Step::new(Flow::Continue);
        }
        self.complete(cx, request, false)
    }

    /// Selects and applies the rate cap.
    fn decide(
        &self,
        cx: &mut CopyContext<'_>,
        request: &MirrorRequest<'_>,
    ) -> (Option<TargetId>, MirrorDecision) {
        let selection = cx.policy.select(request, &self.hits);
        let target = selection.target;
        let decision = cx
            .worker
            .limiter
            .decide(cx.policy, selection, &mut cx.clock);
        (target, decision)
    }

    /// Takes the rule decision at the head and, for a `header` target, sets the decision
    /// header while the route can still mirror.
    fn decide_early(
        &self,
        cx: &mut CopyContext<'_>,
        request: &MirrorRequest<'_>,
        step: &mut Step,
    ) -> Early {
        let (target, decision) = self.decide(cx, request);
        let header_target = target
            .filter(|_| decision.mirrored)
            .and_then(|t| cx.policy.targets().get(t))
            .filter(|t| t.delivery == Delivery::Header);
        if let Some(t) = header_target {
            step.actions.push(CopyAction::SetDecisionHeader {
                name: t.header.clone(),
                value: t.name.clone(),
            });
        }
        Early {
            target,
            decision,
            header_set: header_target.is_some(),
        }
    }

    /// The body is read (end of stream, limit, trailers, or the stream ended): scan, decide,
    /// deliver.
    fn complete(
        &mut self,
        cx: &mut CopyContext<'_>,
        request: &MirrorRequest<'_>,
        can_set_header: bool,
    ) -> Step {
        self.phase = Phase::Done;
        let mut step = Step::new(Flow::Continue);
        if self.body_truncated() {
            step.actions.push(CopyAction::BodyTruncated);
        }
        if self.inspect_body {
            cx.policy.scan_body(request, &self.body, &mut self.hits);
        }
        if self.denied {
            let truncated = self.body_truncated();
            self.decide_denied(cx, request, truncated, &mut step);
            return step;
        }
        let Some(early) = self.early.take() else {
            let (target, decision) = self.decide(cx, request);
            self.deliver(cx, request, target, decision, can_set_header, &mut step);
            return step;
        };
        if !self.hits.any() {
            self.finish_early(cx, request, early, &mut step);
            return step;
        }
        let selection = cx.policy.select(request, &self.hits);
        if early.decision.mirrored && early.target == selection.target {
            // Already on its way to the signature target: it is now a signature copy.
            let decision = MirrorDecision {
                reason: MirrorReason::Signature,
                rule: None,
                signatures: selection.signatures,
                signature_rules: selection.signature_rules,
                ..early.decision
            };
            self.finish_early(cx, request, Early { decision, ..early }, &mut step);
            return step;
        }
        // The signature goes to another target (or the rule copied nothing): its own copy,
        // after the rule's, which stands.
        if let (true, false, Some(id)) = (early.decision.mirrored, early.header_set, early.target) {
            let truncated = self.body_truncated();
            self.dispatch(cx, request, id, &early.decision, truncated, &mut step);
        }
        let target = selection.target;
        let decision = cx
            .worker
            .limiter
            .decide(cx.policy, selection, &mut cx.clock);
        self.deliver(cx, request, target, decision, can_set_header, &mut step);
        step
    }

    /// Completes a head-time decision: the route already copies (header set), or the
    /// `dispatch` copy goes now with the body read.
    fn finish_early(
        &self,
        cx: &mut CopyContext<'_>,
        request: &MirrorRequest<'_>,
        early: Early,
        step: &mut Step,
    ) {
        if early.header_set {
            self.record(step, early.target, early.decision);
        } else {
            self.deliver(cx, request, early.target, early.decision, false, step);
        }
    }

    /// Delivers a decision (decision header, or `dispatch` with the body read so far) and
    /// records it.
    fn deliver(
        &self,
        cx: &mut CopyContext<'_>,
        request: &MirrorRequest<'_>,
        target: Option<TargetId>,
        mut decision: MirrorDecision,
        can_set_header: bool,
        step: &mut Step,
    ) {
        if let (true, Some(id)) = (decision.mirrored, target) {
            match cx.policy.targets().get(id) {
                Some(t) if t.delivery == Delivery::Header && can_set_header => {
                    step.actions.push(CopyAction::SetDecisionHeader {
                        name: t.header.clone(),
                        value: t.name.clone(),
                    });
                }
                // The request already went on (the body was read without holding it, or the
                // stream ended early): the route can no longer mirror, so the copy goes by HTTP
                // call to the target's cluster.
                Some(_) => {
                    let truncated = self.body_truncated();
                    decision.mirrored = self.dispatch(cx, request, id, &decision, truncated, step);
                }
                None => decision.mirrored = false,
            }
        }
        self.record(step, target, decision);
    }

    /// Queues a copy for the root context to send; `false` when it cannot go (too many in
    /// flight, the target is resting after failures).
    fn dispatch(
        &self,
        cx: &mut CopyContext<'_>,
        request: &MirrorRequest<'_>,
        id: TargetId,
        decision: &MirrorDecision,
        body_truncated: bool,
        step: &mut Step,
    ) -> bool {
        let Some(target) = cx.policy.targets().get(id) else {
            return false;
        };
        let copy = DispatchCopy {
            target: id,
            headers: dispatch_headers(cx.policy, target, request, decision, body_truncated),
            body: self.body.clone(),
        };
        let offered = cx.worker.deliveries.offer(copy, cx.clock.now());
        if offered.unconfirmed > 0 {
            step.actions
                .push(CopyAction::Unconfirmed(offered.unconfirmed));
        }
        match offered.queued {
            Ok(arm_tick) => {
                step.actions.push(CopyAction::Queued {
                    target: id,
                    arm_tick,
                });
                true
            }
            Err(refusal) => {
                step.actions.push(CopyAction::Dropped {
                    target: id,
                    refusal,
                });
                false
            }
        }
    }

    /// Records the final decision with what decoding the request found wrong: a finding is
    /// recorded whatever was decided, as it never changes the decision.
    fn record(&self, step: &mut Step, target: Option<TargetId>, mut decision: MirrorDecision) {
        decision.findings = self.hits.findings().into_iter().map(String::from).collect();
        step.actions.push(CopyAction::Record { target, decision });
    }

    fn body_truncated(&self) -> bool {
        self.body_seen > self.body.len()
    }
}

fn not_selected() -> Selection {
    Selection {
        target: None,
        reason: MirrorReason::NotSelected,
        rule: None,
        signatures: Vec::new(),
        signature_rules: Vec::new(),
    }
}

/// The decision for a selection that takes no token (nothing selected).
fn decision_of(selection: Selection) -> MirrorDecision {
    MirrorDecision {
        mirrored: false,
        target: None,
        reason: selection.reason,
        rule: selection.rule,
        signatures: selection.signatures,
        signature_rules: selection.signature_rules,
        findings: Vec::new(),
    }
}
