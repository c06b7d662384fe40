//! One request's path through the filter.
//!
//! Headers: strip client-supplied decision headers, scan the head for signatures. When the
//! body can still matter (an enabled signature looks in bodies and the request has one), read
//! at most `max_body_bytes` of it first. By default the request flows meanwhile (the body is
//! copied as it passes) and a copy decided after the headers went on is sent by HTTP call even
//! for a `header` target; with `hold_for_body` the headers wait (`Pause`) so the decision
//! header can still be set. Then decide, deliver, and write the decision to filter state.

use crate::delivery::{self, QueuedCopy};
use crate::metrics::Metrics;
use crate::Configured;
use meshsight_policy::decision::{MirrorDecision, MirrorReason, MIRROR_DECISION_PROPERTY};
use meshsight_policy::headers::header_value;
use meshsight_policy::identity::parse_socket_address;
use meshsight_policy::mirror::signatures::SignatureHits;
use meshsight_policy::mirror::{Delivery, MirrorRequest, Peer, Target, TargetId};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::net::IpAddr;

/// Envoy's foreign function that makes the router pick the route again.
const CLEAR_ROUTE_CACHE: &str = "clear_route_cache";
/// Credentials a `dispatch` copy drops unless the target sets `include_secrets`.
const SECRET_HEADERS: &[&str] = &meshsight_policy::headers::CREDENTIAL_HEADERS;
/// Prefix of the headers a `dispatch` copy carries about the decision.
const COPY_HEADER_PREFIX: &str = "x-meshsight-mirror-";
/// Headers that describe the original connection or framing, not the request.
const HOP_HEADERS: &[&str] = &meshsight_policy::headers::HOP_BY_HOP_HEADERS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing left to do for this request.
    Done,
    /// Reading the body: to inspect it, to copy it, or both.
    Body,
}

/// The request head, owned for the life of the stream.
struct Head {
    method: String,
    path: String,
    authority: String,
    headers: Vec<(String, String)>,
    address: Option<IpAddr>,
    principal: Option<String>,
}

impl Head {
    fn request(&self) -> MirrorRequest<'_> {
        MirrorRequest {
            method: &self.method,
            path: &self.path,
            authority: &self.authority,
            headers: &self.headers,
            peer: Peer {
                address: self.address,
                principal: self.principal.as_deref(),
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

pub(crate) struct MirrorStream {
    configured: Option<Configured>,
    head: Option<Head>,
    hits: Option<SignatureHits>,
    phase: Phase,
    /// The request is held (headers paused) while the body is read.
    holding: bool,
    /// The body is read for signatures (not only to be copied).
    inspect_body: bool,
    body: Vec<u8>,
    body_seen: usize,
    early: Option<Early>,
}

impl MirrorStream {
    pub(crate) fn new(configured: Option<Configured>) -> MirrorStream {
        MirrorStream {
            configured,
            head: None,
            hits: None,
            phase: Phase::Done,
            holding: false,
            inspect_body: false,
            body: Vec::new(),
            body_seen: 0,
            early: None,
        }
    }

    fn now_nanos(&self) -> u64 {
        meshsight_policy::clock::unix_nanos(self.get_current_time())
    }

    fn read_head(&self) -> Head {
        // As bytes: the SDK's string accessors abort the VM on a non-UTF-8 value (one
        // `user-agent: caf\xe9` would stop the filter for every later request).
        let headers: Vec<(String, String)> = self
            .get_http_request_headers_bytes()
            .into_iter()
            .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
            .collect();
        let find = |name: &str| header_value(&headers, name).unwrap_or_default().to_string();
        let address = self
            .get_property(vec!["source", "address"])
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| parse_socket_address(&s))
            .map(|(ip, _)| ip);
        let principal = self
            .get_property(vec!["connection", "uri_san_peer_certificate"])
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|s| !s.is_empty());
        let authority = {
            let a = find(":authority");
            if a.is_empty() {
                find("host")
            } else {
                a
            }
        };
        Head {
            method: find(":method"),
            path: find(":path"),
            authority,
            headers,
            address,
            principal,
        }
    }

    /// Removes every decision header the client sent: nobody outside picks whether they are
    /// mirrored.
    fn strip_decision_headers(&self, configured: &Configured) {
        for name in configured.policy.decision_headers() {
            if self.get_http_request_header_bytes(name).is_some() {
                self.set_http_request_header(name, None);
                Metrics::bump(configured.metrics.spoofed_header_removed);
            }
        }
    }

    /// Selects and applies the rate cap.
    fn decide(&self, configured: &Configured) -> (Option<TargetId>, MirrorDecision) {
        let policy = &configured.policy;
        let empty = policy.new_hits();
        let hits = self.hits.as_ref().unwrap_or(&empty);
        let selection = match &self.head {
            Some(head) => policy.select(&head.request(), hits),
            None => return (None, not_selected()),
        };
        let target = selection.target;
        let now = self.now_nanos();
        let decision = configured
            .worker
            .borrow_mut()
            .limiter
            .decide(policy, selection, now);
        (target, decision)
    }

    /// Delivers a decision (header, or dispatch with the body read so far) and records it.
    fn deliver(
        &mut self,
        configured: &Configured,
        target: Option<TargetId>,
        mut decision: MirrorDecision,
        can_set_header: bool,
    ) {
        if let (true, Some(id)) = (decision.mirrored, target) {
            if let Some(t) = configured.policy.targets().get(id) {
                match t.delivery {
                    Delivery::Header if can_set_header => self.set_decision_header(configured, t),
                    // The headers already went on (the body was read without holding them,
                    // or the stream ended early): the route can no longer mirror, so the copy
                    // goes by HTTP call to the target's cluster.
                    Delivery::Header | Delivery::Dispatch => {
                        decision.mirrored = self.dispatch(configured, id, t, &decision);
                    }
                }
            }
        }
        self.record(configured, target, &decision);
    }

    fn set_decision_header(&self, configured: &Configured, target: &Target) {
        self.set_http_request_header(&target.header, Some(&target.name));
        // Envoy picks the route before this filter runs; make it look again so that a route
        // matching the decision header (with its mirror policy) applies.
        if hostcalls::call_foreign_function(CLEAR_ROUTE_CACHE, None).is_err() {
            Metrics::bump(configured.metrics.route_cache_clear_failed);
        }
    }

    /// Hands the copy to the worker's root context for sending; `false` when it cannot go
    /// (too many in flight, the target is resting after failures).
    fn dispatch(
        &mut self,
        configured: &Configured,
        id: TargetId,
        target: &Target,
        decision: &MirrorDecision,
    ) -> bool {
        let Some(head) = &self.head else { return false };
        let secrets_out = !target.include_secrets;
        let decision_headers = configured.policy.decision_headers();
        let mut headers: Vec<(String, String)> = head
            .headers
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
            body: self.body.clone(),
        };
        delivery::offer(configured, copy, self.now_nanos())
    }

    fn record(&self, configured: &Configured, target: Option<TargetId>, d: &MirrorDecision) {
        let m = &configured.metrics;
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
        match serde_json::to_vec(d) {
            Ok(bytes) => self.set_property(vec![MIRROR_DECISION_PROPERTY], Some(&bytes)),
            Err(e) => log::warn!("meshsight mirror: cannot encode the decision: {e}"),
        }
    }

    /// The body is read (end of stream, limit, trailers, or the stream ended): scan, decide,
    /// deliver.
    fn complete(&mut self, can_set_header: bool) {
        self.phase = Phase::Done;
        let Some(configured) = self.configured.clone() else {
            return;
        };
        if self.body_seen > self.body.len() {
            Metrics::bump(configured.metrics.body_truncated);
        }
        if self.inspect_body {
            if let (Some(head), Some(hits)) = (&self.head, self.hits.as_mut()) {
                configured
                    .policy
                    .scan_body(&head.request(), &self.body, hits);
            }
        }
        let body_hit = self.hits.as_ref().is_some_and(SignatureHits::any);
        let Some(early) = self.early.take() else {
            let (target, decision) = self.decide(&configured);
            self.deliver(&configured, target, decision, can_set_header);
            return;
        };
        if !body_hit {
            self.finish_early(&configured, early);
            return;
        }
        let selection = match (&self.head, &self.hits) {
            (Some(head), Some(hits)) => configured.policy.select(&head.request(), hits),
            _ => return self.finish_early(&configured, early),
        };
        if early.decision.mirrored && early.target == selection.target {
            // Already on its way to the signature target: it is now a signature copy.
            let decision = MirrorDecision {
                reason: MirrorReason::Signature,
                rule: None,
                signatures: selection.signatures,
                ..early.decision
            };
            self.finish_early(&configured, Early { decision, ..early });
            return;
        }
        // The signature goes to another target (or the rule copied nothing): its own copy,
        // after the rule's, which stands.
        if let (true, false, Some(id)) = (early.decision.mirrored, early.header_set, early.target) {
            if let Some(t) = configured.policy.targets().get(id) {
                self.dispatch(&configured, id, t, &early.decision);
            }
        }
        let target = selection.target;
        let now = self.now_nanos();
        let decision =
            configured
                .worker
                .borrow_mut()
                .limiter
                .decide(&configured.policy, selection, now);
        self.deliver(&configured, target, decision, can_set_header);
    }

    /// Completes a head-time decision: the route already copies (header set), or the
    /// `dispatch` copy goes now with the body read.
    fn finish_early(&mut self, configured: &Configured, early: Early) {
        if early.header_set {
            self.record(configured, early.target, &early.decision);
        } else {
            self.deliver(configured, early.target, early.decision, false);
        }
    }

    /// Takes the rule decision at the head and, for a `header` target, sets the decision
    /// header while the route can still mirror.
    fn decide_early(&mut self, configured: &Configured) -> Early {
        let (target, decision) = self.decide(configured);
        let header_target = target
            .filter(|_| decision.mirrored)
            .and_then(|t| configured.policy.targets().get(t))
            .filter(|t| t.delivery == Delivery::Header);
        let header_set = match header_target {
            Some(t) => {
                self.set_decision_header(configured, t);
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
}

fn not_selected() -> MirrorDecision {
    MirrorDecision {
        mirrored: false,
        target: None,
        reason: MirrorReason::NotSelected,
        rule: None,
        signatures: Vec::new(),
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

impl Context for MirrorStream {}

impl HttpContext for MirrorStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(configured) = self.configured.clone() else {
            return Action::Continue;
        };
        self.strip_decision_headers(&configured);
        let head = self.read_head();
        let policy = &configured.policy;
        let mut hits = policy.new_hits();
        policy.scan_head(&head.request(), &mut hits);
        let wants_body = !end_of_stream && policy.wants_body(&head.request(), &hits);
        self.head = Some(head);
        self.hits = Some(hits);
        if wants_body {
            self.phase = Phase::Body;
            self.inspect_body = true;
            self.holding = policy.hold_for_body();
            if self.holding {
                return Action::Pause;
            }
            // Not held: rules need only the head, so act on them while the route can still
            // mirror; a body signature found later upgrades or adds to this decision.
            self.early = Some(self.decide_early(&configured));
            return Action::Continue;
        }
        let (target, decision) = self.decide(&configured);
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
            _ => self.deliver(&configured, target, decision, true),
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.phase != Phase::Body {
            return Action::Continue;
        }
        let max = self
            .configured
            .as_ref()
            .map_or(0, |c| c.policy.max_body_bytes());
        if self.holding {
            // Envoy buffers what we paused on: the buffer is everything so far.
            self.body_seen = body_size;
            self.body = self
                .get_http_request_body(0, body_size.min(max))
                .unwrap_or_default();
        } else {
            self.body_seen = self.body_seen.saturating_add(body_size);
            let room = max.saturating_sub(self.body.len());
            if room > 0 && body_size > 0 {
                let chunk = self
                    .get_http_request_body(0, body_size.min(room))
                    .unwrap_or_default();
                self.body.extend_from_slice(&chunk);
            }
        }
        if end_of_stream || self.body_seen >= max {
            self.complete(self.holding);
            return Action::Continue;
        }
        if self.holding {
            Action::Pause
        } else {
            Action::Continue
        }
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if self.phase == Phase::Body {
            self.complete(self.holding);
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        // The stream ended before the body did (client reset): decide on what was read.
        if self.phase == Phase::Body {
            self.complete(false);
        }
    }
}
