//! One request's path through the filter.
//!
//! Headers: strip client-supplied decision headers, scan the head for signatures. When the
//! body can still matter (an enabled signature looks in bodies and the request has one), read
//! at most `max_body_bytes` of it first. By default the request flows meanwhile (the body is
//! copied as it passes) and a copy decided after the headers went on is sent by HTTP call even
//! for a `header` target; with `hold_for_body` the headers wait (`Pause`) so the decision
//! header can still be set. Then decide, deliver, and write the decision to filter state.

use super::delivery::{self, QueuedCopy};
use super::metrics::Metrics;
use super::Configured;
use crate::host::{self, ConnectionFact, Properties};
use meshsight_policy::decision::{MirrorDecision, MirrorReason};
use meshsight_policy::head::RequestHead;
use meshsight_policy::identity::parse_socket_address;
use meshsight_policy::mirror::signatures::SignatureHits;
use meshsight_policy::mirror::{Delivery, MirrorRequest, Peer, Target, TargetId};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{Action, BufferType, MapType};
use std::net::IpAddr;

/// Credentials a `dispatch` copy drops unless the target sets `include_secrets`.
const SECRET_HEADERS: &[&str] = &["authorization", "cookie", "proxy-authorization"];
/// Prefix of the headers a `dispatch` copy carries about the decision.
const COPY_HEADER_PREFIX: &str = "x-meshsight-mirror-";
/// Headers that describe the original connection or framing, not the request.
const HOP_HEADERS: &[&str] = &[
    "connection",
    "content-length",
    "expect",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing left to do for this request.
    Done,
    /// Reading the body: to inspect it, to copy it, or both.
    Body,
}

/// What the mirror reads of the request: the head the stream read once, and the peer.
struct Request<'a> {
    head: &'a RequestHead,
    address: Option<IpAddr>,
    principal: Option<&'a str>,
}

impl Request<'_> {
    fn view(&self) -> MirrorRequest<'_> {
        MirrorRequest {
            method: self.head.method(),
            path: self.head.path(),
            authority: self.head.authority(),
            headers: self.head.headers(),
            peer: Peer {
                address: self.address,
                principal: self.principal,
            },
        }
    }
}

/// A decision taken at the head and finished once the body has been read: a `dispatch` copy
/// waiting for the body, or a rule decision already acted on through the decision header.
struct Early {
    target: Option<TargetId>,
    decision: MirrorDecision,
    /// The decision header is set: the route makes the copy.
    header_set: bool,
}

/// One request's mirror state, driven by the stream with the head it read once.
pub struct MirrorStream {
    configured: Configured,
    address: Option<IpAddr>,
    hits: SignatureHits,
    phase: Phase,
    /// The request is held (headers paused) while the body is read.
    holding: bool,
    /// The body is read for signatures (not only to be copied).
    inspect_body: bool,
    body: Vec<u8>,
    body_seen: usize,
    early: Option<Early>,
    /// The final decision, once taken.
    decision: Option<MirrorDecision>,
    /// The allowlist answered the request locally: decide as for a denied request once the
    /// body is read.
    denied: bool,
}

impl MirrorStream {
    /// Removes every decision header the client sent (nobody outside picks whether they are
    /// mirrored), from the request and from the head the jobs read, then scans the head for
    /// signatures.
    pub fn start(
        configured: Configured,
        head: &mut RequestHead,
        props: &Properties,
    ) -> MirrorStream {
        for name in configured.policy.decision_headers() {
            if head.header(name).is_some() {
                let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None);
                head.remove(name);
                Metrics::bump(configured.metrics.spoofed_header_removed);
            }
        }
        let address = if configured.policy.needs_peer() {
            props
                .connection(ConnectionFact::SourceAddress)
                .and_then(parse_socket_address)
                .map(|(ip, _)| ip)
        } else {
            None
        };
        let mut hits = configured.policy.new_hits();
        let mut stream = MirrorStream {
            configured,
            address,
            hits: SignatureHits::default(),
            phase: Phase::Done,
            holding: false,
            inspect_body: false,
            body: Vec::new(),
            body_seen: 0,
            early: None,
            decision: None,
            denied: false,
        };
        let policy = stream.configured.policy.clone();
        policy.scan_head(&stream.request(head, props).view(), &mut hits);
        stream.hits = hits;
        stream
    }

    fn request<'a>(&self, head: &'a RequestHead, props: &'a Properties) -> Request<'a> {
        let principal = if self.configured.policy.needs_peer() {
            props.connection(ConnectionFact::PeerPrincipal)
        } else {
            None
        };
        Request {
            head,
            address: self.address,
            principal,
        }
    }

    /// Whether a signature matched the head (or, later, the body).
    pub fn signature_hit(&self) -> bool {
        self.hits.any()
    }

    /// The decision, once taken (at the head, or when the body has been read).
    pub fn decision(&self) -> Option<&MirrorDecision> {
        self.decision.as_ref()
    }

    fn now_nanos() -> u64 {
        hostcalls::get_current_time()
            .map(meshsight_policy::clock::unix_nanos)
            .unwrap_or(0)
    }

    /// The allowlist will answer the request locally, but its body may still carry the
    /// indicator: with `hold_for_body` (and `copy_denied`) the request is held while up to
    /// `max_body_bytes` of it are read, and [`MirrorStream::denied`] runs once they are. `false`
    /// when there is nothing to wait for (then call `denied` now).
    pub fn hold_denied(
        &mut self,
        head: &RequestHead,
        props: &Properties,
        end_of_stream: bool,
    ) -> bool {
        let policy = self.configured.policy.clone();
        let hold = !end_of_stream
            && policy.holds_bodies()
            && policy.copy_denied()
            && policy.wants_body(&self.request(head, props).view(), &self.hits);
        if hold {
            self.phase = Phase::Body;
            self.holding = true;
            self.inspect_body = true;
            self.denied = true;
        }
        hold
    }

    /// Whether the body this stream waited for has been read (or it waited for none).
    pub fn body_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The allowlist answered the request locally: it never reaches a route, so a copy the
    /// policy wants (a signature hit, with `copy_denied`) goes to the sensor by HTTP call, with
    /// the body read while it was held, if it was, within the target's caps.
    pub fn denied(&mut self, head: &RequestHead, props: &Properties) {
        self.phase = Phase::Done;
        let configured = self.configured.clone();
        let (target, mut decision) = self.decide(head, props);
        let wanted = decision.reason == MirrorReason::Signature && configured.policy.copy_denied();
        if !wanted && decision.mirrored {
            // Rules and samples are about traffic that flows; a denied request is not copied
            // for them (and the token it took is the cap's loss, not the sensor's).
            decision.mirrored = false;
            decision.reason = MirrorReason::NotSelected;
            decision.target = None;
        }
        self.deliver(head, props, target, decision, false);
    }

    /// Selects and applies the rate cap.
    fn decide(&self, head: &RequestHead, props: &Properties) -> (Option<TargetId>, MirrorDecision) {
        let policy = &self.configured.policy;
        let selection = policy.select(&self.request(head, props).view(), &self.hits);
        let target = selection.target;
        let decision = self.configured.worker.borrow_mut().limiter.decide(
            policy,
            selection,
            Self::now_nanos(),
        );
        (target, decision)
    }

    /// Delivers a decision (header, or dispatch with the body read so far) and records it.
    fn deliver(
        &mut self,
        head: &RequestHead,
        props: &Properties,
        target: Option<TargetId>,
        mut decision: MirrorDecision,
        can_set_header: bool,
    ) {
        let configured = self.configured.clone();
        if let (true, Some(id)) = (decision.mirrored, target) {
            if let Some(t) = configured.policy.targets().get(id) {
                match t.delivery {
                    Delivery::Header if can_set_header => self.set_decision_header(t),
                    // The headers already went on (the body was read without holding them,
                    // the stream ended early, or the request was answered locally): no route
                    // can mirror it now, so the copy goes by HTTP call to the target's cluster.
                    Delivery::Header | Delivery::Dispatch => {
                        decision.mirrored = self.dispatch(head, props, id, t, &decision);
                    }
                }
            }
        }
        self.record(target, decision);
    }

    fn set_decision_header(&self, target: &Target) {
        let _ = hostcalls::set_map_value(
            MapType::HttpRequestHeaders,
            &target.header,
            Some(&target.name),
        );
        // Envoy picks the route before this filter runs; make it look again so that a route
        // matching the decision header (with its mirror policy) applies.
        if !host::clear_route_cache() {
            Metrics::bump(self.configured.metrics.route_cache_clear_failed);
        }
    }

    /// Hands the copy to the worker's root context for sending; `false` when it cannot go
    /// (too many in flight, the target is resting after failures).
    fn dispatch(
        &mut self,
        head: &RequestHead,
        _props: &Properties,
        id: TargetId,
        target: &Target,
        decision: &MirrorDecision,
    ) -> bool {
        let secrets_out = !target.include_secrets;
        let decision_headers = self.configured.policy.decision_headers();
        let mut headers: Vec<(String, String)> = head
            .headers()
            .iter()
            .filter(|(n, _)| {
                let n = n.as_str();
                let dropped = HOP_HEADERS.contains(&n)
                    || (secrets_out && SECRET_HEADERS.contains(&n))
                    || decision_headers.iter().any(|d| d == n)
                    // Ours are added below; a client's could mislead the sensor.
                    || n.starts_with(COPY_HEADER_PREFIX)
                    || (n == ":authority" && target.authority.is_some());
                !dropped
            })
            .cloned()
            .collect();
        let mut add = |n: &str, v: &str| headers.push((n.to_string(), v.to_string()));
        if let Some(a) = &target.authority {
            add(":authority", a);
        }
        add("x-meshsight-mirror-target", &target.name);
        add("x-meshsight-mirror-reason", reason_name(decision.reason));
        if !decision.signatures.is_empty() {
            add(
                "x-meshsight-mirror-signatures",
                &decision.signatures.join(","),
            );
        }
        if let Some(rule) = &decision.rule {
            add("x-meshsight-mirror-rule", rule);
        }
        if self.body_seen > self.body.len() {
            add("x-meshsight-mirror-body-truncated", "true");
        }
        let copy = QueuedCopy {
            target: id,
            headers,
            body: std::mem::take(&mut self.body),
        };
        delivery::offer(&self.configured, copy, Self::now_nanos())
    }

    fn record(&mut self, target: Option<TargetId>, d: MirrorDecision) {
        let m = &self.configured.metrics;
        Metrics::bump(m.requests);
        for s in &d.signatures {
            Metrics::bump(m.signatures.get(s).copied().flatten());
        }
        match (d.mirrored, d.reason, target) {
            (true, reason, Some(t)) => Metrics::bump(m.mirrored(t, reason)),
            (_, MirrorReason::RateLimited, Some(t)) => {
                Metrics::bump(m.rate_limited);
                Metrics::bump(m.rate_limited_by_target.get(t).copied().flatten());
            }
            (_, MirrorReason::NotSelected, _) => Metrics::bump(m.not_selected),
            _ => {}
        }
        self.decision = Some(d);
    }

    /// The body is read (end of stream, limit, trailers, or the stream ended): scan, decide,
    /// deliver.
    fn complete(&mut self, head: &RequestHead, props: &Properties, can_set_header: bool) {
        self.phase = Phase::Done;
        let configured = self.configured.clone();
        if self.body_seen > self.body.len() {
            Metrics::bump(configured.metrics.body_truncated);
        }
        if self.inspect_body {
            let mut hits = std::mem::take(&mut self.hits);
            configured
                .policy
                .scan_body(&self.request(head, props).view(), &self.body, &mut hits);
            self.hits = hits;
        }
        if self.denied {
            self.denied(head, props);
            return;
        }
        let body_hit = self.hits.any();
        let Some(early) = self.early.take() else {
            let (target, decision) = self.decide(head, props);
            self.deliver(head, props, target, decision, can_set_header);
            return;
        };
        if !body_hit {
            self.finish_early(head, props, early);
            return;
        }
        let selection = configured
            .policy
            .select(&self.request(head, props).view(), &self.hits);
        if early.decision.mirrored && early.target == selection.target {
            // Already on its way to the signature target: it is now a signature copy.
            let decision = MirrorDecision {
                reason: MirrorReason::Signature,
                rule: None,
                signatures: selection.signatures,
                ..early.decision
            };
            self.finish_early(head, props, Early { decision, ..early });
            return;
        }
        // The signature goes to another target (or the rule copied nothing): its own copy,
        // after the rule's, which stands.
        if let (true, false, Some(id)) = (early.decision.mirrored, early.header_set, early.target) {
            if let Some(t) = configured.policy.targets().get(id) {
                let body = self.body.clone();
                self.dispatch(head, props, id, t, &early.decision);
                self.body = body;
            }
        }
        let target = selection.target;
        let decision = configured.worker.borrow_mut().limiter.decide(
            &configured.policy,
            selection,
            Self::now_nanos(),
        );
        self.deliver(head, props, target, decision, can_set_header);
    }

    /// Completes a head-time decision: the route already copies (header set), or the
    /// `dispatch` copy goes now with the body read.
    fn finish_early(&mut self, head: &RequestHead, props: &Properties, early: Early) {
        if early.header_set {
            self.record(early.target, early.decision);
        } else {
            self.deliver(head, props, early.target, early.decision, false);
        }
    }

    /// Takes the rule decision at the head and, for a `header` target, sets the decision
    /// header while the route can still mirror.
    fn decide_early(&mut self, head: &RequestHead, props: &Properties) -> Early {
        let (target, decision) = self.decide(head, props);
        let header_target = target
            .filter(|_| decision.mirrored)
            .and_then(|t| self.configured.policy.targets().get(t))
            .filter(|t| t.delivery == Delivery::Header);
        let header_set = match header_target {
            Some(t) => {
                self.set_decision_header(t);
                true
            }
            None => false,
        };
        Early {
            target,
            decision,
            header_set,
        }
    }

    /// The request goes on to the upstream: decide now, or arrange to read the body first.
    pub fn on_head(
        &mut self,
        head: &RequestHead,
        props: &Properties,
        end_of_stream: bool,
    ) -> Action {
        let configured = self.configured.clone();
        let policy = &configured.policy;
        let wants_body =
            !end_of_stream && policy.wants_body(&self.request(head, props).view(), &self.hits);
        if wants_body {
            self.phase = Phase::Body;
            self.inspect_body = true;
            self.holding = policy.hold_for_body();
            if self.holding {
                return Action::Pause;
            }
            // Not held: rules need only the head, so act on them while the route can still
            // mirror; a body signature found later upgrades or adds to this decision.
            self.early = Some(self.decide_early(head, props));
            return Action::Continue;
        }
        let (target, decision) = self.decide(head, props);
        let dispatch_waits_for_body = !end_of_stream
            && decision.mirrored
            && target
                .and_then(|t| policy.targets().get(t))
                .is_some_and(|t| t.delivery == Delivery::Dispatch);
        match target {
            Some(_) if dispatch_waits_for_body && policy.max_body_bytes() > 0 => {
                // Copy the body as it passes; the request is not held.
                self.phase = Phase::Body;
                self.early = Some(Early {
                    target,
                    decision,
                    header_set: false,
                });
            }
            _ => self.deliver(head, props, target, decision, true),
        }
        Action::Continue
    }

    /// A body chunk passed (`body_size`: what Envoy holds for this filter).
    pub fn on_body(
        &mut self,
        head: &RequestHead,
        props: &Properties,
        body_size: usize,
        end_of_stream: bool,
    ) -> Action {
        if self.phase != Phase::Body {
            return Action::Continue;
        }
        let max = self.configured.policy.max_body_bytes();
        if self.holding {
            // Envoy buffers what we paused on: the buffer is everything so far.
            self.body_seen = body_size;
            self.body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size.min(max))
                .ok()
                .flatten()
                .unwrap_or_default();
        } else {
            self.body_seen = self.body_seen.saturating_add(body_size);
            let room = max.saturating_sub(self.body.len());
            if room > 0 && body_size > 0 {
                let chunk =
                    hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size.min(room))
                        .ok()
                        .flatten()
                        .unwrap_or_default();
                self.body.extend_from_slice(&chunk);
            }
        }
        if end_of_stream || self.body_seen >= max {
            let holding = self.holding;
            self.complete(head, props, holding);
            return Action::Continue;
        }
        if self.holding {
            Action::Pause
        } else {
            Action::Continue
        }
    }

    /// Trailers end the body.
    pub fn on_trailers(&mut self, head: &RequestHead, props: &Properties) {
        if self.phase == Phase::Body {
            let holding = self.holding;
            self.complete(head, props, holding);
        }
    }

    /// The stream ended before the body did (client reset): decide on what was read.
    pub fn on_end(&mut self, head: &RequestHead, props: &Properties) {
        if self.phase == Phase::Body {
            self.complete(head, props, false);
        }
    }
}

fn reason_name(r: MirrorReason) -> &'static str {
    match r {
        MirrorReason::Signature => "signature",
        MirrorReason::Rule => "rule",
        MirrorReason::Sample => "sample",
        MirrorReason::NotSelected => "not_selected",
        MirrorReason::RateLimited => "rate_limited",
    }
}
