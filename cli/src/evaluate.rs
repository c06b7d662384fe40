//! One request through the module's one pass, natively: the same steps in the same order as
//! `filters/meshsight/src/stream.rs`, each answered by the same policy-crate call. The mirror
//! strips client decision headers and scans the head; the allowlist judges the request
//! normalized once into [`RequestFacts`]; a request it answers locally is still offered to the
//! mirror's copy state machine as denied, any other as forwarded; the body (if any) is fed to
//! the state machine; the audit record is built from the head and both decisions.
//!
//! What Envoy alone knows is given or assumed: the upstream's status (`upstream_status`, for a
//! request that is forwarded), a fresh worker (full rate-cap buckets), and the clock.

use meshsight_policy::allowlist::Judgement;
use meshsight_policy::audit::{
    sample_verdict, AuditFormat, AuditPolicy, AuditRecord, HttpExchange, PeerWorkload,
    SampleVerdict,
};
use meshsight_policy::decision::{AllowlistDecision, MirrorDecision};
use meshsight_policy::head::RequestHead;
use meshsight_policy::headers::NO_HEADERS;
use meshsight_policy::identity::SpiffeId;
use meshsight_policy::matching::{Peer, RequestFacts};
use meshsight_policy::mirror::copy::{Clock, CopyContext, MirrorCopy, MirrorWorker, Step};
use meshsight_policy::mirror::{MirrorPolicy, MirrorRequest};
use meshsight_policy::plugin::PluginPolicy;
use serde::Serialize;
use serde_json::Value;

use crate::request::ExplainRequest;

/// The normalized request target, as every matcher sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NormalizedView {
    /// The normalized path (dot segments removed, `//` merged, unreserved escapes decoded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The raw query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The normalized host (lowercase, no default port).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Why the target or host is malformed, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub malformed: Option<String>,
}

/// What the allowlist did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllowlistView {
    /// The decision written to filter state and the record.
    pub decision: AllowlistDecision,
    /// The local reply's status, when the request is answered locally.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u32>,
    /// The `:path` the upstream receives, when it is rewritten.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewritten_path: Option<String>,
}

/// The audit record that would be written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditView {
    /// Whether the policy has an audit section (else the record shown is what the default
    /// audit policy would write).
    pub configured: bool,
    /// Whether the record is written (sampling keeps every remarkable request).
    pub recorded: bool,
    /// The record, in the policy's format.
    pub record: Value,
}

/// Everything the module decides about one request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// The request target after normalization.
    pub normalized: NormalizedView,
    /// The allowlist's judgement, when the policy has an allowlist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowlist: Option<AllowlistView>,
    /// Signature categories that matched (head and body).
    pub signatures: Vec<String>,
    /// The mirror's decision, when the policy has a mirror.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<MirrorDecision>,
    /// The status the client gets: the local reply's, or the upstream's.
    pub status: u32,
    /// The audit record.
    pub audit: AuditView,
}

/// Runs `request` through `policy` as the one-pass module would; `upstream_status` is what the
/// upstream answers a forwarded request; `now_ns` stamps the record.
pub fn evaluate(
    policy: &PluginPolicy,
    request: &ExplainRequest,
    upstream_status: u16,
    now_ns: u64,
) -> Evaluation {
    let mut head = RequestHead::from_pairs(request.head_pairs());
    let address = request.source_address();
    let principal = request.principal.as_deref();

    // The mirror first: strip decision headers, scan the head.
    let mut mirror = policy.mirror.as_ref().map(|m| {
        for name in m.decision_headers() {
            if head.header(name).is_some() {
                head.remove(name);
            }
        }
        (m, MirrorWorker::new(m), MirrorCopy::new())
    });
    let hits = mirror.as_ref().map(|(m, _, _)| {
        let mut hits = m.new_hits();
        m.scan_head(
            &mirror_request(m, &head, address.as_deref(), principal),
            &mut hits,
        );
        hits
    });

    // The allowlist, on the facts normalized once.
    let judgement: Option<Judgement<'_>> = policy.allowlist.as_ref().map(|list| {
        let peer = Peer::from_properties(
            list.needs_source_address()
                .then_some(address.as_deref())
                .flatten(),
            list.needs_peer_identity().then_some(principal).flatten(),
        );
        let facts = RequestFacts::new(
            head.method(),
            head.path(),
            head.authority(),
            head.scheme(),
            head.headers(),
            peer,
        );
        list.judge_facts(&facts)
    });
    let local_reply = judgement
        .as_ref()
        .and_then(|j| j.response)
        .map(|r| r.status);

    // The mirror's copy state machine: head or denied head, then the body, then the end.
    let body = request.body.as_deref().unwrap_or_default();
    let end_of_stream = body.is_empty();
    let mut mirror_decision = None;
    if let (Some((m, worker, copy)), Some(hits)) = (mirror.as_mut(), hits) {
        let req = mirror_request(m, &head, address.as_deref(), principal);
        let mut cx = CopyContext {
            policy: m,
            worker,
            clock: Clock::at(now_ns),
        };
        let mut take = |step: Step| {
            if let Some(d) = step.decision() {
                mirror_decision = Some(d.clone());
            }
        };
        take(if local_reply.is_some() {
            copy.denied(&mut cx, &req, hits, end_of_stream)
        } else {
            copy.head(&mut cx, &req, hits, end_of_stream)
        });
        if let Some(wanted) = copy.body_to_read(body.len()) {
            let bytes = &body[..wanted.min(body.len())];
            take(copy.body(&mut cx, &req, body.len(), bytes, true));
        }
        take(copy.stream_ended(&mut cx, &req));
    }

    // The audit record at stream end.
    let status = local_reply.unwrap_or(u32::from(upstream_status));
    let normalized = normalized_view(&head);
    let allowlist = judgement.map(|j| AllowlistView {
        response_status: j.response.map(|r| r.status),
        rewritten_path: j.rewritten_path.clone(),
        decision: j.decision,
    });
    let configured = policy.audit.is_some();
    // Without an audit section, show what the default audit policy would write.
    let fallback = match &policy.audit {
        Some(_) => None,
        None => AuditPolicy::from_json(b"{}").ok(),
    };
    let audit_policy = policy.audit.as_ref().or(fallback.as_ref());
    let mut ex = HttpExchange::from_request_headers(head.to_pairs());
    ex.allowlist = allowlist.as_ref().map(|a| a.decision.clone());
    ex.mirror = mirror_decision.clone();
    ex.status = u16::try_from(status).ok();
    ex.request_bytes = Some(body.len() as u64);
    ex.start_ns = now_ns;
    ex.end_ns = now_ns;
    ex.source_address = address.clone();
    ex.peer_identity = request.principal.clone();
    if let Some(ns) = principal
        .and_then(SpiffeId::parse)
        .and_then(|s| s.namespace())
    {
        ex.source_peer = PeerWorkload {
            namespace: Some(ns.to_string()),
            ..PeerWorkload::default()
        };
    }
    let (recorded, record) = match audit_policy {
        Some(p) => {
            let recorded = sample_verdict(&ex, p.sample_allowed) != SampleVerdict::NotSampled;
            let record = AuditRecord::build(ex, p);
            let record = match p.format {
                AuditFormat::Ocsf => record.to_ocsf(),
                AuditFormat::Ecs => record.to_ecs(),
            };
            (recorded, record)
        }
        None => (false, Value::Null),
    };
    Evaluation {
        normalized,
        allowlist,
        signatures: mirror_decision
            .as_ref()
            .map(|d| d.signatures.clone())
            .unwrap_or_default(),
        mirror: mirror_decision,
        status,
        audit: AuditView {
            configured,
            recorded,
            record,
        },
    }
}

/// The mirror's view of the request, with the peer only when a rule looks at it (as the
/// module reads it).
fn mirror_request<'a>(
    policy: &MirrorPolicy,
    head: &'a RequestHead,
    address: Option<&'a str>,
    principal: Option<&'a str>,
) -> MirrorRequest<'a> {
    let peer = if policy.needs_peer() {
        Peer::from_properties(address, principal)
    } else {
        Peer::default()
    };
    MirrorRequest {
        method: head.method(),
        path: head.path(),
        authority: head.authority(),
        headers: head.headers(),
        peer,
        normalized: None,
    }
}

fn normalized_view(head: &RequestHead) -> NormalizedView {
    let facts = RequestFacts::new(
        head.method(),
        head.path(),
        head.authority(),
        head.scheme(),
        &NO_HEADERS,
        Peer::default(),
    );
    NormalizedView {
        path: facts.path().map(str::to_string),
        query: facts.target().and_then(|t| t.query).map(str::to_string),
        host: facts.host().map(str::to_string),
        malformed: facts.malformed().map(|m| m.to_string()),
    }
}
