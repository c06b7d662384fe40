//! One request's mirror: moves what the host says into the policy crate's copy state machine
//! (`meshsight_policy::mirror::copy::MirrorCopy`) and carries out what it answers (decision
//! header and route-cache clear, the send tick, counters). It decides nothing itself, and
//! reads nothing the stream has not already read: the head, the peer and the signature hits
//! are the one pass's.

use super::delivery;
use super::Configured;
use crate::host::{self, Properties};
use meshsight_host_abi::Action;
use meshsight_policy::decision::{MirrorDecision, MirrorReason};
use meshsight_policy::head::RequestHead;
use meshsight_policy::matching::RequestFacts;
use meshsight_policy::mirror::copy::{
    has_copy_prefix, Clock, CopyAction, CopyContext, Flow, MirrorCopy, Step,
};
use meshsight_policy::mirror::delivery::Refusal;
use meshsight_policy::mirror::signatures::{finding_names, SignatureHits};
use meshsight_policy::mirror::{MirrorRequest, Peer, TargetId};

/// The host's clock, read by the copy state machine only when it needs now.
pub(crate) static HOST_CLOCK: fn() -> u64 = host::now_nanos;

/// One request's mirror state.
pub struct MirrorStream {
    configured: Configured,
    /// Hits of the head scan, until the state machine takes them.
    hits: Option<SignatureHits>,
    copy: MirrorCopy,
    /// The decision, once recorded.
    decision: Option<MirrorDecision>,
}

/// Which later input of the state machine a host callback is.
enum Input<'b> {
    Body {
        body_size: usize,
        bytes: &'b [u8],
        end_of_stream: bool,
    },
    Trailers,
    StreamEnded,
}

impl MirrorStream {
    /// Removes every decision header the client sent (nobody outside picks whether they are
    /// mirrored), from the request and from the head every job reads, then scans the head.
    pub fn start(configured: Configured, head: &mut RequestHead, props: &Properties) -> Self {
        for name in configured.policy.decision_headers() {
            if head.header(name).is_some() {
                host::set_request_header(name, None);
                head.remove(name);
                configured.metrics.spoofed_header_removed.inc();
            }
        }
        // The copy's provenance headers too: a route's copy must not carry a client's.
        let spoofed: Vec<String> = head
            .headers()
            .names()
            .filter(|n| has_copy_prefix(n))
            .map(str::to_string)
            .collect();
        for name in spoofed {
            host::set_request_header(&name, None);
            head.remove(&name);
            configured.metrics.spoofed_header_removed.inc();
        }
        let mut stream = MirrorStream {
            configured,
            hits: None,
            copy: MirrorCopy::new(),
            decision: None,
        };
        let policy = stream.configured.policy.clone();
        let mut hits = policy.new_hits();
        {
            let mut worker = stream.configured.worker.borrow_mut();
            policy.scan_head_remembering(
                &stream.request(head, props, None, false),
                &mut hits,
                &mut worker.clean,
            );
        }
        stream.hits = Some(hits);
        stream
    }

    /// The request as the policy sees it; `with_peer`: with the connection's peer (address
    /// and identity, read once per connection), which only selectors that look at it and a
    /// copy's provenance headers need; the signature scan and a request nothing can select
    /// leave the connection unread.
    fn request<'a>(
        &self,
        head: &'a RequestHead,
        props: &'a Properties,
        normalized: Option<&'a RequestFacts<'a>>,
        with_peer: bool,
    ) -> MirrorRequest<'a> {
        let peer = if with_peer {
            Peer::with_identity(props.source_ip(), props.peer_identity())
        } else {
            Peer::with_identity(None, None)
        };
        MirrorRequest {
            method: head.method(),
            path: head.path(),
            authority: head.authority(),
            headers: head.headers(),
            peer,
            normalized,
        }
    }

    /// Whether deciding on this head can need the peer: a selector looks at it, or the request
    /// is selected (its copy carries the peer as provenance). Selection is pure, so asking it
    /// without the peer first costs no host call and changes nothing.
    fn head_needs_peer(
        &self,
        head: &RequestHead,
        props: &Properties,
        normalized: Option<&RequestFacts<'_>>,
        hits: &SignatureHits,
    ) -> bool {
        let policy = &self.configured.policy;
        policy.needs_peer()
            || policy
                .select(&self.request(head, props, normalized, false), hits)
                .selected()
    }

    /// The decision, once taken (at the head, or when the body has been read).
    pub fn decision(&self) -> Option<&MirrorDecision> {
        self.decision.as_ref()
    }

    /// Whether a request signature matched (the head's hits, or the decision once taken).
    pub fn signature_hit(&self) -> bool {
        match (&self.decision, &self.hits) {
            (Some(d), _) => !d.signatures.is_empty(),
            (None, Some(h)) => h.any(),
            (None, None) => false,
        }
    }

    /// Whether the state machine is done with the body (or never wanted it).
    pub fn body_done(&self) -> bool {
        !self.copy.reading_body()
    }

    /// The request goes on to the upstream: decide now, or arrange to read the body first.
    /// `normalized`: the request as the allowlist normalized it, when it ran (reused for the
    /// selectors).
    pub fn on_head(
        &mut self,
        head: &RequestHead,
        props: &Properties,
        normalized: Option<&RequestFacts<'_>>,
        end_of_stream: bool,
    ) -> Action {
        self.first(head, props, normalized, end_of_stream, false)
    }

    /// The allowlist answers the request locally: a signature hit is still copied (by HTTP
    /// call). `Pause` when the state machine holds the request to read its body first: the
    /// caller keeps its reply back until [`MirrorStream::body_done`].
    pub fn on_denied(
        &mut self,
        head: &RequestHead,
        props: &Properties,
        normalized: Option<&RequestFacts<'_>>,
        end_of_stream: bool,
    ) -> Action {
        self.first(head, props, normalized, end_of_stream, true)
    }

    fn first(
        &mut self,
        head: &RequestHead,
        props: &Properties,
        normalized: Option<&RequestFacts<'_>>,
        end_of_stream: bool,
        denied: bool,
    ) -> Action {
        let configured = self.configured.clone();
        let hits = self.hits.take().unwrap_or_default();
        let with_peer = self.head_needs_peer(head, props, normalized, &hits);
        let request = self.request(head, props, normalized, with_peer);
        let step = {
            let mut worker = configured.worker.borrow_mut();
            let mut cx = CopyContext {
                policy: &configured.policy,
                worker: &mut worker,
                clock: Clock::reading(&HOST_CLOCK),
            };
            if denied {
                self.copy.denied(&mut cx, &request, hits, end_of_stream)
            } else {
                self.copy.head(&mut cx, &request, hits, end_of_stream)
            }
        };
        self.carry_out(step)
    }

    /// A body chunk passed (`body_size`: what Envoy holds for this filter).
    pub fn on_body(
        &mut self,
        head: &RequestHead,
        props: &Properties,
        body_size: usize,
        end_of_stream: bool,
    ) -> Action {
        let Some(wanted) = self.copy.body_to_read(body_size) else {
            return Action::Continue;
        };
        let bytes = if wanted > 0 {
            host::request_body(wanted)
        } else {
            Vec::new()
        };
        self.feed(
            head,
            props,
            Input::Body {
                body_size,
                bytes: &bytes,
                end_of_stream,
            },
        )
    }

    /// Trailers end the body.
    pub fn on_trailers(&mut self, head: &RequestHead, props: &Properties) -> Action {
        self.feed(head, props, Input::Trailers)
    }

    /// The stream ended (client reset, or its last callback): decide on what was read.
    pub fn on_end(&mut self, head: &RequestHead, props: &Properties) {
        self.feed(head, props, Input::StreamEnded);
    }

    fn feed(&mut self, head: &RequestHead, props: &Properties, input: Input<'_>) -> Action {
        if !self.copy.reading_body() {
            return Action::Continue;
        }
        let configured = self.configured.clone();
        // A body can still select the request (a body signature), and the copy then carries
        // the peer.
        let request = self.request(head, props, None, true);
        let step = {
            let mut worker = configured.worker.borrow_mut();
            let mut cx = CopyContext {
                policy: &configured.policy,
                worker: &mut worker,
                clock: Clock::reading(&HOST_CLOCK),
            };
            match input {
                Input::Body {
                    body_size,
                    bytes,
                    end_of_stream,
                } => self
                    .copy
                    .body(&mut cx, &request, body_size, bytes, end_of_stream),
                Input::Trailers => self.copy.trailers(&mut cx, &request),
                Input::StreamEnded => self.copy.stream_ended(&mut cx, &request),
            }
        };
        self.carry_out(step)
    }

    /// Does what the state machine asked, in order, and answers the host.
    fn carry_out(&mut self, step: Step) -> Action {
        let m = self.configured.metrics.clone();
        for action in step.actions {
            match action {
                CopyAction::SetDecisionHeader { name, value } => {
                    host::set_request_header(&name, Some(&value));
                    // Envoy picks the route before this filter runs; make it look again so
                    // that a route matching the decision header (with its mirror policy)
                    // applies.
                    if !host::clear_route_cache() {
                        m.route_cache_clear_failed.inc();
                    }
                }
                CopyAction::Queued { arm_tick, .. } => {
                    if arm_tick {
                        delivery::arm_send_tick();
                    }
                }
                CopyAction::Dropped { refusal, .. } => match refusal {
                    Refusal::Busy => m.in_flight_dropped.inc(),
                    Refusal::Resting => m.target_resting.inc(),
                },
                CopyAction::Unconfirmed(n) => m.dispatch_unconfirmed.add(n as u64),
                CopyAction::BodyTruncated => m.body_truncated.inc(),
                CopyAction::Record { target, decision } => {
                    self.record(target, &decision);
                    self.decision = Some(decision);
                }
            }
        }
        match step.flow {
            Flow::Continue => Action::Continue,
            Flow::Hold => Action::Pause,
        }
    }

    fn record(&self, target: Option<TargetId>, d: &MirrorDecision) {
        let m = &self.configured.metrics;
        m.requests.inc();
        for s in &d.signatures {
            if let Some(c) = m.signatures.get(s) {
                c.inc();
            }
        }
        for id in &d.signature_rules {
            if let Some(c) = m.signature_rules.get(id) {
                c.inc();
            }
        }
        for (name, c) in finding_names().zip(&m.decode_findings) {
            if d.findings.iter().any(|f| f == name) {
                c.inc();
            }
        }
        match (d.mirrored, d.reason, target) {
            (true, reason, Some(t)) => {
                if let Some(c) = m.mirrored(t, reason) {
                    c.inc();
                }
            }
            (_, MirrorReason::RateLimited, Some(t)) => {
                m.rate_limited.inc();
                if let Some(c) = m.rate_limited_by_target.get(t) {
                    c.inc();
                }
            }
            (_, MirrorReason::NotSelected, _) => m.not_selected.inc(),
            _ => {}
        }
    }
}
