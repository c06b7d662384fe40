//! One request's pass through the plugin's jobs.
//!
//! At the request head: read the head once; the mirror removes client decision headers and
//! scans for signatures; the allowlist judges. A request the allowlist answers locally (403,
//! 400) is still offered to the mirror (a signature hit is copied to the sensor by HTTP call)
//! and still recorded by the audit, as an attack when a signature matched. Otherwise the path
//! rewrite is carried out and the mirror decides (now, or once it has read the body). The
//! decisions go to filter state as soon as they are taken, for other filters and access logs;
//! the audit record is built at stream end from the decisions in memory.

use std::rc::Rc;

use meshsight_policy::decision::{
    AllowlistDecision, MirrorDecision, ALLOWLIST_DECISION_PROPERTY, MIRROR_DECISION_PROPERTY,
};
use meshsight_policy::head::RequestHead;
use meshsight_policy::matching::{Peer, RequestFacts};
use meshsight_policy::response::{ResponsePolicy, ResponseScan, ResponseVerdict};

use crate::host::{self, Properties};
use crate::mirror::{LocalReply, MirrorStream};
use crate::root::Jobs;
use meshsight_host_abi::callbacks::StreamContext;
use meshsight_host_abi::Action;

/// Why a request is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// The allowlist denied it: the reply waits for the body.
    Denied,
    /// It goes on once the body is read.
    Allowed,
}

pub(crate) struct Stream {
    /// `None` only if the host creates streams without a successful `on_configure`.
    jobs: Option<Rc<Jobs>>,
    props: Properties,
    head: Option<RequestHead>,
    allowlist: Option<AllowlistDecision>,
    mirror: Option<MirrorStream>,
    /// The mirror's decision was written to filter state.
    mirror_published: bool,
    /// This stream's context id (the root lets a hold go by it).
    context_id: u32,
    /// The request is held while the mirror reads its body: denied (its local reply waits in
    /// the mirror job's held requests) or allowed. The root lets it go at `hold_timeout_ms`.
    hold: Option<Hold>,
    /// Response headers the audit record keeps (captured as the response passes, also for
    /// local replies; absent on aborts).
    response_headers: Vec<(String, String)>,
    /// The response being scanned by response rules (only when the policy asks for it).
    response_scan: Option<ResponseScan>,
    /// What the scan of the response found, for the audit record.
    response: Option<ResponseVerdict>,
    /// The host clock when the request head reached this filter: the start of a record built
    /// here (it spares the record two property reads, `request.time` and `request.duration`).
    started_ns: Option<u64>,
}

impl Stream {
    pub(crate) fn new(jobs: Option<Rc<Jobs>>, context_id: u32) -> Stream {
        let props = match &jobs {
            Some(j) => Properties::new(&j.connections),
            None => Properties::new(&Default::default()),
        };
        Stream {
            jobs,
            props,
            head: None,
            allowlist: None,
            mirror: None,
            mirror_published: false,
            context_id,
            hold: None,
            response_headers: Vec::new(),
            response_scan: None,
            response: None,
            started_ns: None,
        }
    }

    /// Writes the mirror's decision to filter state once it is taken (and, for Envoy's access
    /// logger, the verdict with it).
    fn publish_mirror(&mut self) {
        if self.mirror_published {
            return;
        }
        if let Some(d) = self.mirror.as_ref().and_then(MirrorStream::decision) {
            if self.per_job_decisions() {
                host::put_property(MIRROR_DECISION_PROPERTY, d.to_json().as_bytes());
            }
            self.mirror_published = true;
            self.publish_verdict();
        }
    }

    /// Whether each job's decision goes to filter state on its own (`wasm.meshsight_allowlist`,
    /// `wasm.meshsight_mirror`): always, unless this plugin's audit already leaves the combined
    /// verdict (both decisions) for Envoy's access logger, which other filters read as well.
    fn per_job_decisions(&self) -> bool {
        !self
            .jobs
            .as_ref()
            .and_then(|j| j.audit.as_ref())
            .is_some_and(|a| a.writes_verdict())
    }

    /// Leaves the verdict for Envoy's access logger, when the audit job renders through it.
    fn publish_verdict(&self) {
        let (Some(jobs), Some(head)) = (&self.jobs, &self.head) else {
            return;
        };
        if let Some(audit) = jobs.audit.as_ref().filter(|a| a.writes_verdict()) {
            audit.put_verdict(
                head,
                self.allowlist.as_ref(),
                self.mirror.as_ref().and_then(MirrorStream::decision),
            );
        }
    }

    /// Whether this request's response is scanned: decided from what is in memory (the head,
    /// the signature hits), so a response nobody asked for costs no host call.
    fn wants_response(&self, policy: &ResponsePolicy) -> bool {
        let hit = self
            .mirror
            .as_ref()
            .is_some_and(MirrorStream::signature_hit);
        self.head.as_ref().is_some_and(|h| policy.wants(h, hit))
    }

    /// Ends the response scan: counts it, offers its copy, and (access-log sink) writes the
    /// verdict again with the finding.
    fn finish_response(&mut self) {
        let (Some(scan), Some(jobs), Some(head)) = (
            self.response_scan.take(),
            self.jobs.clone(),
            self.head.as_ref(),
        ) else {
            return;
        };
        let Some(mirror_job) = jobs.mirror.as_ref() else {
            return;
        };
        let Some(policy) = mirror_job.policy.responses() else {
            return;
        };
        let hit = self
            .mirror
            .as_ref()
            .is_some_and(MirrorStream::signature_hit);
        let mut verdict = policy.finish(head, scan, hit);
        mirror_job.response_scanned(head, &mut verdict);
        if let Some(audit) = jobs.audit.as_ref().filter(|a| a.writes_verdict()) {
            audit.put_verdict_with_response(
                head,
                self.allowlist.as_ref(),
                self.mirror.as_ref().and_then(MirrorStream::decision),
                Some(&verdict),
            );
        }
        self.response = Some(verdict);
    }

    /// Holds the request for its body until the mirror has read it or `hold_timeout_ms` has
    /// passed (`reply`: a denied request's local reply, sent then).
    fn start_hold(&mut self, jobs: &Jobs, reply: Option<LocalReply>) {
        let Some(mirror) = &jobs.mirror else {
            // Only the mirror holds; answer at once if it ever were otherwise.
            if let Some((status, content_type, body)) = reply {
                Self::respond(status, &content_type, &body);
            }
            return;
        };
        self.hold = Some(if reply.is_some() {
            Hold::Denied
        } else {
            Hold::Allowed
        });
        mirror.hold(self.context_id, host::now_nanos(), reply);
    }

    /// Ends the hold once the mirror has read the body: sends a denied request's held reply
    /// (`true`: the request stays stopped), or lets an allowed one go on. A hold the root
    /// already let go (its timeout passed) has nothing left to do.
    fn end_hold(&mut self) -> bool {
        if self.hold.is_none() || !self.mirror.as_ref().is_some_and(MirrorStream::body_done) {
            return false;
        }
        let kind = self.hold.take();
        let released = self
            .jobs
            .as_ref()
            .and_then(|j| j.mirror.as_ref())
            .and_then(|m| m.release(self.context_id));
        match released {
            Some(Some((status, content_type, body))) => {
                Self::respond(status, &content_type, &body);
                true
            }
            // Let go at the timeout: a denied request has had its reply already.
            None => kind == Some(Hold::Denied),
            Some(None) => false,
        }
    }

    fn respond(status: u32, content_type: &str, body: &[u8]) {
        host::send_local_response(status, content_type, body);
    }
}

/// The request normalized once for every job that matches on it, with the connection facts
/// the allowlist's rules or the mirror's selectors look at (read only then, once per
/// connection).
fn request_facts<'h>(
    jobs: &Jobs,
    head: &'h RequestHead,
    props: &'h Properties,
) -> RequestFacts<'h> {
    let allowlist = jobs.allowlist.as_ref();
    let mirror_peer = jobs.mirror.as_ref().is_some_and(|m| m.policy.needs_peer());
    let address = (mirror_peer || allowlist.is_some_and(|a| a.needs_source_address()))
        .then(|| props.source_ip())
        .flatten();
    let identity = (mirror_peer || allowlist.is_some_and(|a| a.needs_peer_identity()))
        .then(|| props.peer_identity())
        .flatten();
    RequestFacts::new(
        head.method(),
        head.path(),
        head.authority(),
        head.scheme(),
        head.headers(),
        Peer::with_identity(address, identity),
    )
}

/// The callbacks `meshsight_host_abi`'s exports deliver to a stream context.
impl StreamContext for Stream {
    /// A stream of a root this worker does not know: no policy, so it refuses requests.
    fn orphan(context_id: u32) -> Stream {
        Stream::new(None, context_id)
    }

    /// The request head: every job's decision at the head.
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(jobs) = self.jobs.clone() else {
            // Fail closed: without a policy nothing is allowed.
            log!(Error, "meshsight: no policy loaded; refusing request");
            Self::respond(500, "application/json", br#"{"error":"internal"}"#);
            return Action::Pause;
        };
        if jobs.audit.as_ref().is_some_and(|a| !a.writes_verdict()) {
            self.started_ns = Some(host::now_nanos());
        }
        let mut head = host::read_request_head();
        // Signatures first and whatever the allowlist says: a stopped attack is still one.
        let mut mirror = jobs
            .mirror
            .as_ref()
            .map(|m| MirrorStream::start(m.clone(), &mut head, &self.props));
        // Normalized once, for the allowlist's rules and the mirror's selectors alike.
        let facts = jobs
            .allowlist
            .as_ref()
            .map(|_| request_facts(&jobs, &head, &self.props));
        let judgement = jobs
            .allowlist
            .as_ref()
            .zip(facts.as_ref())
            .map(|(a, f)| a.judge(f));
        let mut reply = None;
        // Held for the body: `Some(reply)` for a denied request, `Some(None)` for an allowed one.
        let mut to_hold = None;
        let mut action = Action::Continue;
        if let Some(judgement) = judgement {
            if self.per_job_decisions() {
                host::put_property(
                    ALLOWLIST_DECISION_PROPERTY,
                    judgement.decision.to_json().as_bytes(),
                );
            }
            if let Some(response) = judgement.response {
                let body = response.body(head.request_id());
                let held = mirror.as_mut().is_some_and(|m| {
                    m.on_denied(&head, &self.props, facts.as_ref(), end_of_stream) == Action::Pause
                });
                // Nothing reaches the upstream; a held reply goes once the body is read.
                let answer = (response.status, response.content_type.clone(), body);
                if held {
                    to_hold = Some(Some(answer));
                } else {
                    reply = Some(answer);
                }
                action = Action::Pause;
            } else if let Some(new_path) = &judgement.rewritten_path {
                host::set_request_header(":path", Some(new_path));
                // The route was chosen for the old :path; make the router choose again for
                // the path that was actually checked.
                let _ = host::clear_route_cache();
            }
            self.allowlist = Some(judgement.decision);
        }
        if action == Action::Continue {
            if let Some(m) = mirror.as_mut() {
                action = m.on_head(&head, &self.props, facts.as_ref(), end_of_stream);
                if action == Action::Pause {
                    to_hold = Some(None);
                }
            }
        }
        drop(facts);
        if let Some(held_reply) = to_hold {
            self.start_hold(&jobs, held_reply);
        }
        self.mirror = mirror;
        self.head = Some(head);
        // The verdict goes to filter state before any local reply: Envoy may write its access
        // log while the reply is sent.
        if self.mirror.as_ref().is_none_or(|m| m.decision().is_none()) {
            self.publish_verdict();
        }
        self.publish_mirror();
        if let Some((status, content_type, body)) = reply {
            Self::respond(status, &content_type, &body);
        }
        action
    }

    /// A request body chunk: the mirror reads it; a held request may be let go.
    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.hold.is_some() {
            if let Some(m) = self.jobs.as_ref().and_then(|j| j.mirror.as_ref()) {
                m.body_arrived(self.context_id);
            }
        }
        let (Some(m), Some(head)) = (self.mirror.as_mut(), self.head.as_ref()) else {
            return Action::Continue;
        };
        let action = m.on_body(head, &self.props, body_size, end_of_stream);
        self.publish_mirror();
        if self.end_hold() {
            return Action::Pause;
        }
        action
    }

    /// The request's trailers: the body is complete.
    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if let (Some(m), Some(head)) = (self.mirror.as_mut(), self.head.as_ref()) {
            let _ = m.on_trailers(head, &self.props);
        }
        self.publish_mirror();
        if self.end_hold() {
            return Action::Pause;
        }
        Action::Continue
    }

    /// The response head: kept for a record built here, scanned when a response rule asks.
    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let jobs = self.jobs.clone();
        let audit = jobs.as_ref().and_then(|j| j.audit.as_ref());
        // Envoy's access logger has the response itself: read it only for a record built here.
        let record_here = audit.filter(|a| !a.writes_verdict());
        let scan = jobs
            .as_ref()
            .and_then(|j| j.mirror.as_ref())
            .and_then(|m| m.policy.responses())
            .filter(|p| self.wants_response(p));
        if record_here.is_none() && scan.is_none() {
            return Action::Continue;
        }
        // One read of the map serves the record and the scan.
        let block = host::read_map_block(host::WireMap::HttpResponseHeaders);
        if let Some(audit) = record_here {
            // Keep only what may be recorded (and `:status`), not the whole map.
            self.response_headers = block
                .iter()
                .filter(|(n, _)| audit.keeps_response_header(n))
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
        }
        if let (Some(policy), Some(head)) = (scan, self.head.as_ref()) {
            let status = block
                .value(":status")
                .and_then(|s| s.trim().parse::<u16>().ok())
                .unwrap_or(0);
            let started = policy.scan_head(head, status, block.iter());
            let done = end_of_stream || started.wants_body() == 0;
            self.response_scan = Some(started);
            if done {
                self.finish_response();
            }
        }
        Action::Continue
    }

    /// A response body chunk, read as it passes while the scan wants more.
    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        // Read as the chunks pass, never held: at most `max_response_bytes` in all.
        let Some(scan) = self.response_scan.as_mut() else {
            return Action::Continue;
        };
        let want = scan.wants_body().min(body_size);
        if want > 0 {
            scan.push_body(&host::response_body(want));
        }
        if end_of_stream || scan.wants_body() == 0 {
            self.finish_response();
        }
        Action::Continue
    }

    /// Access-log time: the mirror's end, and the audit record.
    fn on_log(&mut self) {
        let Some(jobs) = self.jobs.clone() else {
            return;
        };
        if let (Some(m), Some(head)) = (self.mirror.as_mut(), self.head.as_ref()) {
            m.on_end(head, &self.props);
        }
        if self.hold.take().is_some() {
            // The stream ended while held (a client reset): nothing is left to let go.
            if let Some(m) = &jobs.mirror {
                let _ = m.release(self.context_id);
            }
        }
        self.publish_mirror();
        // A response that ended without its last chunk passing (trailers, a reset): what was
        // read is scanned now.
        self.finish_response();
        let Some(audit) = &jobs.audit else { return };
        if audit.writes_verdict() {
            // Envoy's access logger writes the record from the verdict already in filter state.
            audit.handed_over();
            return;
        }
        // A job this plugin does not run may have run in another plugin of the chain.
        let allowlist = match &jobs.allowlist {
            Some(_) => self.allowlist.take(),
            None => host::get_decision::<AllowlistDecision>(ALLOWLIST_DECISION_PROPERTY),
        };
        let mirror = match &self.mirror {
            Some(m) => m.decision().cloned(),
            None if jobs.mirror.is_none() => {
                host::get_decision::<MirrorDecision>(MIRROR_DECISION_PROPERTY)
            }
            None => None,
        };
        let head = match self.head.take() {
            Some(head) => head,
            // Headers never reached this filter (an earlier filter answered): read them now.
            None => host::read_request_head(),
        };
        audit.record(
            head,
            std::mem::take(&mut self.response_headers),
            &self.props,
            allowlist,
            mirror,
            self.response.take(),
            self.started_ns,
        );
    }
}
