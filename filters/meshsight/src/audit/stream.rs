//! One request's audit: at stream end, the exchange filled from the head, the response headers
//! kept and each property read once, sampled, built into a record and written or queued; or,
//! with the `access_log` sink, the verdict left in filter state for Envoy's access logger.

use meshsight_policy::audit::{sample_verdict, verdict, AuditRecord, HttpExchange, PeerWorkload};
use meshsight_policy::decision::{AllowlistDecision, MirrorDecision};
use meshsight_policy::head::RequestHead;
use meshsight_policy::headers::header_value;
use meshsight_policy::response::ResponseVerdict;

use super::AuditJob;
use crate::host::{self, ConnectionFact, Properties};

impl AuditJob {
    /// Leaves the verdict (and the JSON-escaped request fields) in filter state for Envoy's
    /// access logger; called again when a later decision changes it.
    pub fn put_verdict(
        &self,
        head: &RequestHead,
        allowlist: Option<&AllowlistDecision>,
        mirror: Option<&MirrorDecision>,
    ) {
        self.put_verdict_with_response(head, allowlist, mirror, None);
    }

    /// [`AuditJob::put_verdict`] with what the scan of the response found: written again once
    /// the response is scanned (Envoy's access logger runs after it).
    pub fn put_verdict_with_response(
        &self,
        head: &RequestHead,
        allowlist: Option<&AllowlistDecision>,
        mirror: Option<&MirrorDecision>,
        response: Option<&ResponseVerdict>,
    ) {
        for entry in verdict::entries_with_response(head, allowlist, mirror, response) {
            host::put_property(entry.name, &entry.bytes);
        }
    }

    /// Counts a record Envoy's access logger writes (`access_log` sink) as made and handed over.
    pub fn handed_over(&self) {
        self.metrics.records.inc();
        self.metrics.delivered.inc();
    }

    /// Whether the record keeps response headers (`:status` and any configured for recording).
    pub fn keeps_response_header(&self, name: &str) -> bool {
        name == ":status" || self.policy.record_headers.contains(name)
    }

    /// Builds the record of a finished request (head, the response headers kept, the decisions,
    /// what the response scan found) and writes or queues it, unless sampling passes it over.
    /// `started_ns`: the host clock when the head reached the filter (`None` when it never did).
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        head: RequestHead,
        response_headers: Vec<(String, String)>,
        props: &Properties,
        allowlist: Option<AllowlistDecision>,
        mirror: Option<MirrorDecision>,
        response: Option<ResponseVerdict>,
        started_ns: Option<u64>,
    ) {
        let mut ex = HttpExchange::from_head(&head, &self.policy.record_headers);
        ex.response_headers = response_headers;
        ex.allowlist = allowlist;
        ex.mirror = mirror;
        ex.response = response;
        self.fill(&mut ex, props, started_ns);
        if !sample_verdict(&ex, self.policy.sample_allowed).is_recorded() {
            self.metrics.not_sampled.inc();
            return;
        }
        let line = AuditRecord::build(ex, &self.policy).to_json_line(self.policy.format);
        match &self.delivery {
            None => {
                log!(Info, "{line}");
                self.metrics.records.inc();
                self.metrics.delivered.inc();
            }
            Some(delivery) => {
                let mut d = delivery.borrow_mut();
                d.queue.push(line);
                d.publish(&self.metrics);
            }
        }
    }

    /// What the proxy knows of the exchange beyond its head: each property read once.
    fn fill(&self, ex: &mut HttpExchange, props: &Properties, started_ns: Option<u64>) {
        let conn = |f| props.connection(f).map(str::to_string);
        ex.protocol = conn(ConnectionFact::Protocol);
        // The response that passed this filter (also local replies) has the code; ask Envoy
        // only when none did.
        let status = header_value(&ex.response_headers, ":status")
            .and_then(|v| v.parse::<i64>().ok())
            .or_else(|| props.int(&["response", "code"]))
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| *c != 0);
        ex.status = status;
        ex.request_bytes = props
            .int(&["request", "total_size"])
            .and_then(|n| u64::try_from(n).ok());
        ex.response_bytes = status
            .and(props.int(&["response", "total_size"]))
            .and_then(|n| u64::try_from(n).ok());
        (ex.start_ns, ex.end_ns) = match started_ns {
            // The head reached this filter: the host clock then and now (`on_log` runs as the
            // stream ends), two cheap calls instead of `request.time` and `request.duration`.
            Some(start) => (start, host::now_nanos().max(start)),
            None => times_from_properties(props),
        };
        ex.source_address = conn(ConnectionFact::SourceAddress);
        ex.destination_address = conn(ConnectionFact::DestinationAddress);
        // Istio always knows a peer's namespace: without one there is no peer.
        if let Some(namespace) = conn(ConnectionFact::PeerNamespace) {
            ex.source_peer = PeerWorkload {
                namespace: Some(namespace),
                workload: conn(ConnectionFact::PeerWorkload),
                service: conn(ConnectionFact::PeerService),
            };
        }
        ex.destination_peer = match props.string(&["upstream_peer", "namespace"]) {
            Some(namespace) => PeerWorkload {
                namespace: Some(namespace),
                workload: props.string(&["upstream_peer", "workload"]),
                service: props.string(&["upstream_peer", "service"]),
            },
            // Inbound sidecar: the destination is this workload.
            None => self.local_workload.clone(),
        };
        ex.peer_identity = conn(ConnectionFact::PeerPrincipal);
        if ex.request_id.is_none() {
            ex.request_id = props.string(&["request", "id"]);
        }
        ex.response_flags = props.int(&["response", "flags"]).map_or(0, |n| n as u64);
        ex.response_code_details = props.string(&["response", "code_details"]);
    }
}

/// Start and end of a request whose head never reached the filter (an earlier filter answered
/// it): Envoy's `request.time` and `request.duration`, the clock where Envoy has none.
fn times_from_properties(props: &Properties) -> (u64, u64) {
    let clock = std::cell::OnceCell::new();
    let now_ns = || *clock.get_or_init(host::now_nanos);
    let start = props
        .int(&["request", "time"])
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or_else(now_ns);
    let end = match props
        .int(&["request", "duration"])
        .and_then(|n| u64::try_from(n).ok())
    {
        Some(d) => start.saturating_add(d),
        None => now_ns().max(start),
    };
    (start, end)
}
