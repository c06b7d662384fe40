//! One request's path through the filter.
//!
//! Headers: strip client-supplied decision headers, scan the head for signatures. When the
//! body can still matter (an enabled signature looks in bodies and the request has one), read
//! at most `max_body_bytes` of it first. By default the request flows meanwhile (the body is
//! copied as it passes) and a copy decided after the headers went on is sent by HTTP call even
//! for a `header` target; with `hold_for_body` the headers wait (`Pause`) so the decision
//! header can still be set. Then decide, deliver, and write the decision to filter state.

use crate::metrics::Metrics;
use crate::Configured;
use meshsight_policy::decision::{MirrorDecision, MirrorReason, MIRROR_DECISION_PROPERTY};
use meshsight_policy::mirror::signatures::SignatureHits;
use meshsight_policy::mirror::{Delivery, MirrorRequest, Peer, Target, TargetId};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, MapType};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, UNIX_EPOCH};

/// Envoy's foreign function that makes the router pick the route again.
const CLEAR_ROUTE_CACHE: &str = "clear_route_cache";
/// Credentials a `dispatch` copy drops unless the target sets `include_secrets`.
const SECRET_HEADERS: &[&str] = &["authorization", "cookie", "proxy-authorization"];
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
/// Extra time after a call's timeout by which Envoy has certainly answered or reset it.
const IN_FLIGHT_GRACE_NANOS: u64 = 1_000_000_000;

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

/// A decision taken at the head whose `dispatch` copy waits for the body.
struct PendingCopy {
    target: TargetId,
    decision: MirrorDecision,
}

pub(crate) struct MirrorStream {
    context_id: u32,
    root_context_id: u32,
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
    pending: Option<PendingCopy>,
    /// `dispatch` calls this stream made: (target, token).
    calls: Vec<(TargetId, u32)>,
}

impl MirrorStream {
    pub(crate) fn new(
        context_id: u32,
        root_context_id: u32,
        configured: Option<Configured>,
    ) -> MirrorStream {
        MirrorStream {
            context_id,
            root_context_id,
            configured,
            head: None,
            hits: None,
            phase: Phase::Done,
            holding: false,
            inspect_body: false,
            body: Vec::new(),
            body_seen: 0,
            pending: None,
            calls: Vec::new(),
        }
    }

    fn now_nanos(&self) -> u64 {
        self.get_current_time()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    fn read_head(&self) -> Head {
        let headers = self.get_http_request_headers();
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let address = self
            .get_property(vec!["source", "address"])
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.parse::<SocketAddr>()
                    .map(|a| a.ip())
                    .or_else(|_| s.parse::<IpAddr>())
                    .ok()
            });
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
            if self.get_http_request_header(name).is_some() {
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

    /// Sends the copy; `false` when it could not go (too many in flight, refused by Envoy).
    fn dispatch(
        &mut self,
        configured: &Configured,
        id: TargetId,
        target: &Target,
        decision: &MirrorDecision,
    ) -> bool {
        let Some(head) = &self.head else { return false };
        let now = self.now_nanos();
        {
            let mut worker = configured.worker.borrow_mut();
            let Some(flights) = worker.in_flight.get_mut(id) else {
                return false;
            };
            // Envoy answers or times out every call by its deadline; an entry past it belongs
            // to a stream that ended before its answer came.
            let before = flights.len();
            flights.retain(|(_, deadline)| *deadline > now);
            Metrics::add(
                configured.metrics.dispatch_unconfirmed,
                before - flights.len(),
            );
            if flights.len() >= target.max_in_flight as usize {
                Metrics::bump(configured.metrics.in_flight_dropped);
                return false;
            }
        }
        let secrets_out = !target.include_secrets;
        let decision_headers = configured.policy.decision_headers();
        let mut headers: Vec<(&str, &str)> = head
            .headers
            .iter()
            .filter(|(n, _)| {
                let n = n.as_str();
                let dropped = HOP_HEADERS.contains(&n)
                    || (secrets_out && SECRET_HEADERS.contains(&n))
                    || decision_headers.iter().any(|d| d == n)
                    || (n == ":authority" && target.authority.is_some());
                !dropped
            })
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        if let Some(a) = &target.authority {
            headers.push((":authority", a));
        }
        let reason = reason_name(decision.reason);
        headers.push(("x-meshsight-mirror-target", &target.name));
        headers.push(("x-meshsight-mirror-reason", reason));
        let signatures = decision.signatures.join(",");
        if !signatures.is_empty() {
            headers.push(("x-meshsight-mirror-signatures", &signatures));
        }
        if let Some(rule) = &decision.rule {
            headers.push(("x-meshsight-mirror-rule", rule));
        }
        if self.body_seen > self.body.len() {
            headers.push(("x-meshsight-mirror-body-truncated", "true"));
        }
        let body = (!self.body.is_empty()).then_some(self.body.as_slice());
        let timeout = Duration::from_millis(target.timeout_ms);
        // Dispatch on behalf of the root context: Envoy cancels a stream's calls when the
        // stream ends, and a copy must not depend on how fast the upstream answers.
        let rooted = hostcalls::set_effective_context(self.root_context_id).is_ok();
        let result = hostcalls::dispatch_http_call(&target.cluster, headers, body, vec![], timeout);
        if rooted {
            let _ = hostcalls::set_effective_context(self.context_id);
        }
        match result {
            Ok(token) => {
                let deadline = now
                    .saturating_add(target.timeout_ms.saturating_mul(1_000_000))
                    .saturating_add(IN_FLIGHT_GRACE_NANOS);
                if let Some(flights) = configured.worker.borrow_mut().in_flight.get_mut(id) {
                    flights.push((token, deadline));
                }
                self.calls.push((id, token));
                true
            }
            Err(status) => {
                log::warn!(
                    "meshsight mirror: dispatch to cluster {:?} failed: {status:?}",
                    target.cluster
                );
                Metrics::bump(configured.metrics.dispatch_failed);
                false
            }
        }
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
        let (target, decision) = match self.pending.take() {
            Some(p) => (Some(p.target), p.decision),
            None => self.decide(&configured),
        };
        self.deliver(&configured, target, decision, can_set_header);
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

impl Context for MirrorStream {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        _body_size: usize,
        _num_trailers: usize,
    ) {
        let Some(configured) = &self.configured else {
            return;
        };
        if let Some(at) = self.calls.iter().position(|(_, t)| *t == token_id) {
            let (target, _) = self.calls.swap_remove(at);
            if let Some(f) = configured.worker.borrow_mut().in_flight.get_mut(target) {
                f.retain(|(t, _)| *t != token_id);
            }
        }
        // The call belongs to the root context (see `dispatch`), so Envoy keeps its answer
        // there: read the status with the root as effective context. Envoy answers a refused
        // connection or a timeout with a local 503/504, a reset with no headers at all.
        let rooted = hostcalls::set_effective_context(self.root_context_id).is_ok();
        let status = if num_headers == 0 {
            None
        } else {
            hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
                .ok()
                .flatten()
                .and_then(|s| s.parse::<u16>().ok())
        };
        if rooted {
            let _ = hostcalls::set_effective_context(self.context_id);
        }
        if status.is_none_or(|s| s >= 500) {
            Metrics::bump(configured.metrics.dispatch_failed);
        }
    }
}

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
            return if self.holding {
                Action::Pause
            } else {
                Action::Continue
            };
        }
        let (target, decision) = self.decide(&configured);
        let dispatch_waits_for_body = !end_of_stream
            && decision.mirrored
            && target
                .and_then(|t| policy.targets().get(t))
                .is_some_and(|t| t.delivery == Delivery::Dispatch);
        match target {
            Some(target) if dispatch_waits_for_body && policy.max_body_bytes() > 0 => {
                // Copy the body as it passes; the request is not held.
                self.phase = Phase::Body;
                self.pending = Some(PendingCopy { target, decision });
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
