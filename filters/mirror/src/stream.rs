//! One request's path through the filter: moves what the host says into the policy crate's
//! copy state machine (`meshsight_policy::mirror::copy::MirrorCopy`) and carries out what it
//! answers.
//!
//! Headers: strip client-supplied decision headers, read the head once, scan it for
//! signatures, hand both to the state machine; body chunks, trailers and the end of the stream
//! follow. This file carries out the actions the state machine returns (decision header and
//! route-cache clear, the send tick, counters, the decision in filter state) and answers the
//! host with its hold/continue; it decides nothing itself.

use crate::delivery;
use crate::metrics::Metrics;
use crate::Configured;
use meshsight_policy::decision::{MirrorDecision, MirrorReason, MIRROR_DECISION_PROPERTY};
use meshsight_policy::headers::header_value;
use meshsight_policy::identity::parse_socket_address;
use meshsight_policy::mirror::copy::{CopyAction, CopyContext, Flow, MirrorCopy, Step};
use meshsight_policy::mirror::delivery::Refusal;
use meshsight_policy::mirror::{MirrorRequest, Peer, TargetId};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::net::IpAddr;

/// Envoy's foreign function that makes the router pick the route again.
const CLEAR_ROUTE_CACHE: &str = "clear_route_cache";

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

/// Which input of the state machine a host callback is.
enum Input<'b> {
    Body {
        body_size: usize,
        bytes: &'b [u8],
        end_of_stream: bool,
    },
    Trailers,
    StreamEnded,
}

pub(crate) struct MirrorStream {
    configured: Option<Configured>,
    head: Option<Head>,
    copy: MirrorCopy,
}

impl MirrorStream {
    pub(crate) fn new(configured: Option<Configured>) -> MirrorStream {
        MirrorStream {
            configured,
            head: None,
            copy: MirrorCopy::new(),
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

    /// Feeds a later input (body, trailers, end of stream) to the state machine and carries
    /// out its step.
    fn feed(&mut self, input: Input<'_>) -> Action {
        let (Some(configured), Some(head)) = (self.configured.clone(), self.head.as_ref()) else {
            return Action::Continue;
        };
        let now_nanos = self.now_nanos();
        let step = {
            let mut worker = configured.worker.borrow_mut();
            let mut cx = CopyContext {
                policy: &configured.policy,
                worker: &mut worker,
                now_nanos,
            };
            let request = head.request();
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
        self.carry_out(&configured, step)
    }

    /// Does what the state machine asked, in order, and answers the host.
    fn carry_out(&self, configured: &Configured, step: Step) -> Action {
        let m = &configured.metrics;
        for action in step.actions {
            match action {
                CopyAction::SetDecisionHeader { name, value } => {
                    self.set_http_request_header(&name, Some(&value));
                    // Envoy picks the route before this filter runs; make it look again so that
                    // a route matching the decision header (with its mirror policy) applies.
                    if hostcalls::call_foreign_function(CLEAR_ROUTE_CACHE, None).is_err() {
                        Metrics::bump(m.route_cache_clear_failed);
                    }
                }
                CopyAction::Queued { arm_tick, .. } => {
                    if arm_tick {
                        delivery::arm_send_tick();
                    }
                }
                CopyAction::Dropped { refusal, .. } => Metrics::bump(match refusal {
                    Refusal::Busy => m.in_flight_dropped,
                    Refusal::Resting => m.target_resting,
                }),
                CopyAction::Unconfirmed(n) => Metrics::add(m.dispatch_unconfirmed, n),
                CopyAction::BodyTruncated => Metrics::bump(m.body_truncated),
                CopyAction::Record { target, decision } => {
                    self.record(configured, target, &decision);
                }
            }
        }
        match step.flow {
            Flow::Continue => Action::Continue,
            Flow::Hold => Action::Pause,
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
        let now_nanos = self.now_nanos();
        let step = {
            let mut worker = configured.worker.borrow_mut();
            let mut cx = CopyContext {
                policy,
                worker: &mut worker,
                now_nanos,
            };
            self.copy
                .head(&mut cx, &head.request(), hits, end_of_stream)
        };
        self.head = Some(head);
        self.carry_out(&configured, step)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(wanted) = self.copy.body_to_read(body_size) else {
            return Action::Continue;
        };
        let bytes = if wanted > 0 {
            self.get_http_request_body(0, wanted).unwrap_or_default()
        } else {
            Vec::new()
        };
        self.feed(Input::Body {
            body_size,
            bytes: &bytes,
            end_of_stream,
        })
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.feed(Input::Trailers)
    }

    fn on_log(&mut self) {
        // The stream ended before the body did (client reset): decide on what was read.
        self.feed(Input::StreamEnded);
    }
}
