//! The audit job: an OCSF HTTP Activity record (or ECS) of every request, carrying the
//! allowlist and mirror decisions, written to Envoy's log or delivered in NDJSON batches to a
//! collector cluster, with counters that always add up.
//!
//! Policy, record building, redaction, sampling and the delivery queue live in
//! `meshsight_policy::audit`; this job moves data between the host and that logic. The record is
//! built at stream end (`on_log`), so requests answered locally (the allowlist's 403), upstream
//! failures and client aborts are recorded too. Streams enqueue into the worker's queue; only
//! the root context sends batches (a stream's calls die with the stream).

use std::cell::RefCell;
use std::time::Duration;

use meshsight_policy::audit::otlp::{self, ExportOutcome};
use meshsight_policy::audit::{
    sample_verdict, verdict, AuditPolicy, AuditRecord, DeliveryCounters, DeliveryQueue, DropReason,
    HttpExchange, HttpSink, PeerWorkload, Sink, SinkEncoding, PRODUCT_VERSION,
};
use meshsight_policy::decision::{AllowlistDecision, MirrorDecision};
use meshsight_policy::head::RequestHead;
use meshsight_policy::headers::header_value;
use proxy_wasm::types::LogLevel;

use crate::host::{self, ConnectionFact, Counter, Gauge, Properties, Stats};

/// Metric names (Envoy stats), all prefixed `meshsight_audit_`.
pub mod metric {
    /// Counter: records built (sampled in), whatever became of them.
    pub const RECORDS: &str = "meshsight_audit_records";
    /// Counter: records written to the log or acknowledged (2xx) by the collector.
    pub const DELIVERED: &str = "meshsight_audit_delivered";
    /// Counter: records re-sent in retried batches.
    pub const RETRIED: &str = "meshsight_audit_retried";
    /// Counter prefix: records dropped, by reason (`buffer_full`, `retries_exhausted`,
    /// `too_large`, `shutdown`).
    pub const DROPPED_PREFIX: &str = "meshsight_audit_dropped_";
    /// Gauge: records buffered (waiting or in flight).
    pub const BUFFERED: &str = "meshsight_audit_buffered";
    /// Gauge: bytes buffered (waiting or in flight).
    pub const BUFFERED_BYTES: &str = "meshsight_audit_buffered_bytes";
    /// Counter: allowed, unremarkable requests that sampling passed over (not records).
    pub const NOT_SAMPLED: &str = "meshsight_audit_not_sampled";
    /// Counter: batches POSTed (first sends and retries).
    pub const BATCHES_SENT: &str = "meshsight_audit_batches_sent";
}

/// Longest interval between ticks: size-triggered batches leave within this even when the
/// flush interval is longer.
const MAX_TICK: Duration = Duration::from_millis(100);

struct Metrics {
    records: Counter,
    delivered: Counter,
    retried: Counter,
    dropped: [Counter; DropReason::ALL.len()],
    buffered: Gauge,
    buffered_bytes: Gauge,
    not_sampled: Counter,
    batches_sent: Counter,
}

impl Metrics {
    fn define(stats: &Stats) -> Metrics {
        Metrics {
            records: stats.counter(metric::RECORDS),
            delivered: stats.counter(metric::DELIVERED),
            retried: stats.counter(metric::RETRIED),
            dropped: DropReason::ALL
                .map(|r| stats.counter(&format!("{}{}", metric::DROPPED_PREFIX, r.name()))),
            buffered: stats.gauge(metric::BUFFERED),
            buffered_bytes: stats.gauge(metric::BUFFERED_BYTES),
            not_sampled: stats.counter(metric::NOT_SAMPLED),
            batches_sent: stats.counter(metric::BATCHES_SENT),
        }
    }

    /// Publishes the queue's counters as deltas since the last publication, so several worker
    /// VMs add up in Envoy's shared stats (gauges included).
    fn publish(&self, now: &DeliveryCounters, last: &mut DeliveryCounters) {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        self.records.add(d(now.records, last.records));
        self.delivered.add(d(now.delivered, last.delivered));
        self.retried.add(d(now.retried, last.retried));
        for (c, reason) in self.dropped.iter().zip(DropReason::ALL) {
            c.add(d(now.dropped_for(reason), last.dropped_for(reason)));
        }
        let g = |a: u64, b: u64| a as i64 - b as i64;
        self.buffered
            .add(g(now.buffered_records, last.buffered_records));
        self.buffered_bytes
            .add(g(now.buffered_bytes, last.buffered_bytes));
        *last = *now;
    }
}

/// The HTTP sink's state: the queue streams push into and the root context sends from.
struct Delivery {
    sink: HttpSink,
    queue: DeliveryQueue,
    published: DeliveryCounters,
    /// Outstanding calls: (host token, batch id).
    pending: Vec<(u32, u64)>,
}

impl Delivery {
    fn publish(&mut self, metrics: &Metrics) {
        metrics.publish(&self.queue.counters(), &mut self.published);
    }
}

/// The compiled audit policy, its counters and (with the HTTP sink) the worker's queue.
pub struct AuditJob {
    policy: AuditPolicy,
    metrics: Metrics,
    delivery: Option<RefCell<Delivery>>,
    /// This workload's Istio identity from node metadata, read once.
    local_workload: PeerWorkload,
}

impl AuditJob {
    /// Defines the counters and, with the HTTP sink, the queue (its clock starts at `now_ms`).
    pub fn new(policy: AuditPolicy, stats: &Stats, now_ms: u64) -> AuditJob {
        let node = host::node_metadata;
        let local_workload = PeerWorkload {
            namespace: node(&["NAMESPACE"]),
            workload: node(&["WORKLOAD_NAME"]),
            service: node(&["LABELS", "service.istio.io/canonical-name"]),
        };
        let delivery = match &policy.sink {
            Sink::AccessLog => {
                // Declared as strings living as long as the request, so that Envoy's access
                // logger can print them (PLAIN). A second plugin or a reconfiguration declaring
                // them again is refused by Envoy with BadArgument: harmless.
                for (name, args) in verdict::declarations() {
                    if let Err(status) = host::declare_property(&args) {
                        log::debug!("meshsight audit: declare_property {name}: {status:?}");
                    }
                }
                None
            }
            Sink::Log => {
                // Envoy drops wasm logs below its level (Istio sidecars default to warning):
                // say so once rather than count invisible records as delivered in silence.
                if matches!(host::envoy_log_level(), Some(level) if level as u32 > LogLevel::Info as u32)
                {
                    log::warn!(
                        "meshsight audit: the log sink writes at info level, below Envoy's wasm log \
                         level: records will not appear (raise it, e.g. `--component-log-level \
                         wasm:info`, or use the http sink)"
                    );
                }
                None
            }
            Sink::Http(sink) => Some(RefCell::new(Delivery {
                queue: DeliveryQueue::new(sink.queue, now_ms),
                sink: sink.clone(),
                published: DeliveryCounters::default(),
                pending: Vec::new(),
            })),
        };
        AuditJob {
            policy,
            metrics: Metrics::define(stats),
            delivery,
            local_workload,
        }
    }

    /// How often the root context must tick for this job's deliveries (`None`: never).
    pub fn tick_period(&self) -> Option<Duration> {
        let d = self.delivery.as_ref()?.borrow();
        Some(Duration::from_millis(d.sink.queue.flush_interval_ms).min(MAX_TICK))
    }

    /// Whether Envoy's access logger renders the record: the stream then leaves the verdict in
    /// filter state as soon as the decisions are taken, and builds no record itself.
    pub fn writes_verdict(&self) -> bool {
        self.policy.sink == Sink::AccessLog
    }

    /// Leaves the verdict (and the JSON-escaped request fields) in filter state for Envoy's
    /// access logger; called again when a later decision changes it.
    pub fn put_verdict(
        &self,
        head: &RequestHead,
        allowlist: Option<&AllowlistDecision>,
        mirror: Option<&MirrorDecision>,
    ) {
        for entry in verdict::entries(head, allowlist, mirror) {
            crate::host::put_property(entry.name, &entry.bytes);
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

    /// Builds the record of a finished request (head, the response headers kept, the decisions)
    /// and writes or queues it, unless sampling passes it over.
    pub fn record(
        &self,
        head: RequestHead,
        response_headers: Vec<(String, String)>,
        props: &Properties,
        allowlist: Option<AllowlistDecision>,
        mirror: Option<MirrorDecision>,
    ) {
        let mut ex = HttpExchange::from_request_headers(head.to_pairs());
        ex.response_headers = response_headers;
        ex.allowlist = allowlist;
        ex.mirror = mirror;
        self.fill(&mut ex, props);
        if !sample_verdict(&ex, self.policy.sample_allowed).is_recorded() {
            self.metrics.not_sampled.inc();
            return;
        }
        let line = AuditRecord::build(ex, &self.policy).to_json_line(self.policy.format);
        match &self.delivery {
            None => {
                log::info!("{line}");
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
    fn fill(&self, ex: &mut HttpExchange, props: &Properties) {
        // The clock only where Envoy does not say when the request started or how long it took.
        let clock = std::cell::OnceCell::new();
        let now_ns = || *clock.get_or_init(host::now_nanos);
        let conn = |f| props.connection(f).map(str::to_string);
        ex.protocol = props.string(&["request", "protocol"]);
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
        ex.start_ns = props
            .int(&["request", "time"])
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or_else(now_ns);
        ex.end_ns = match props
            .int(&["request", "duration"])
            .and_then(|n| u64::try_from(n).ok())
        {
            Some(d) => ex.start_ns.saturating_add(d),
            None => now_ns().max(ex.start_ns),
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

    /// Sends every batch the queue says is due (root context only: new batches up to
    /// `max_in_flight_batches`, retries whose backoff has elapsed).
    pub fn pump(&self, now_ms: u64) {
        let Some(delivery) = &self.delivery else {
            return;
        };
        let mut d = delivery.borrow_mut();
        // Bounded: each poll either sends a batch (at most max_in_flight at a time) or fails one.
        let max_polls = 2 * d.queue.limits().max_in_flight + 2;
        for _ in 0..max_polls {
            let Some(batch) = d.queue.poll(now_ms) else {
                break;
            };
            // A re-sent batch replaces its old call: a late answer to that one is ignored.
            d.pending.retain(|(_, id)| *id != batch.id);
            let (content_type, body) = match d.sink.encoding {
                SinkEncoding::Ndjson => ("application/x-ndjson", None),
                SinkEncoding::Otlp => (
                    otlp::CONTENT_TYPE,
                    Some(otlp::export_logs_request(
                        &batch.body,
                        self.policy.format,
                        &self.otlp_resource(),
                        PRODUCT_VERSION,
                        now_ms.saturating_mul(1_000_000),
                    )),
                ),
            };
            let mut headers: Vec<(&str, &str)> = vec![
                (":method", "POST"),
                (":path", &d.sink.path),
                (":authority", &d.sink.authority),
                ("content-type", content_type),
            ];
            for (n, v) in &d.sink.headers {
                headers.push((n, v));
            }
            let sent = host::dispatch_http_call(
                &d.sink.cluster,
                headers,
                Some(body.as_deref().unwrap_or(&batch.body)),
                d.sink.timeout,
            );
            match sent {
                Ok(token) => {
                    self.metrics.batches_sent.inc();
                    d.pending.push((token, batch.id));
                }
                Err(status) => {
                    log::warn!(
                        "meshsight audit: cannot send a batch to cluster {:?}: {status:?}",
                        d.sink.cluster
                    );
                    d.queue.failed(batch.id, now_ms);
                }
            }
        }
        d.publish(&self.metrics);
    }

    /// OTLP resource attributes: `service.name` and, from node metadata, this workload's.
    fn otlp_resource(&self) -> Vec<(&str, &str)> {
        let mut attrs = vec![("service.name", "meshsight")];
        let w = &self.local_workload;
        if let Some(ns) = &w.namespace {
            attrs.push(("k8s.namespace.name", ns));
        }
        if let Some(workload) = &w.workload {
            attrs.push(("k8s.workload.name", workload));
        }
        attrs
    }

    /// An answer to call `token`: `false` when the call is not one of this job's. A delivered
    /// batch makes room, so the queue is pumped again at once.
    pub fn answered(&self, token: u32, status: Option<u16>, body_size: usize, now_ms: u64) -> bool {
        let Some(delivery) = &self.delivery else {
            return false;
        };
        let delivered = {
            let mut d = delivery.borrow_mut();
            let Some(at) = d.pending.iter().position(|(t, _)| *t == token) else {
                return false;
            };
            let (_, batch) = d.pending.remove(at);
            if d.sink.encoding == SinkEncoding::Otlp {
                return_otlp(&mut d.queue, batch, status, body_size, now_ms)
            } else {
                match status {
                    Some(code) if (200..300).contains(&code) => d.queue.delivered(batch),
                    other => {
                        log::warn!(
                        "meshsight audit: collector answered {} for a batch; will retry or drop",
                        other.map_or("no response (reset or timeout)".to_string(), |c| c
                            .to_string())
                    );
                        d.queue.failed(batch, now_ms);
                        false
                    }
                }
            }
        };
        if delivered {
            self.pump(now_ms);
        } else {
            delivery.borrow_mut().publish(&self.metrics);
        }
        true
    }

    /// Counts whatever the queue still holds as dropped (`shutdown`): the plugin is going away
    /// or being reconfigured, and nothing may disappear uncounted.
    pub fn shut_down(&self) {
        let Some(delivery) = &self.delivery else {
            return;
        };
        let mut d = delivery.borrow_mut();
        let n = d.queue.shut_down();
        if n > 0 {
            log::warn!("meshsight audit: {n} buffered records dropped at shutdown");
        }
        d.publish(&self.metrics);
    }
}

/// Applies an OTLP collector's answer to batch `batch` (OTLP/HTTP's rules, see
/// [`otlp::export_outcome`]); returns whether it was delivered (wholly or partly).
fn return_otlp(
    queue: &mut DeliveryQueue,
    batch: u64,
    status: Option<u16>,
    body_size: usize,
    now_ms: u64,
) -> bool {
    let retry_after = host::call_response_header("retry-after");
    let body = if status.is_some_and(|s| (200..300).contains(&s)) && body_size > 0 {
        host::call_response_body(body_size)
    } else {
        Vec::new()
    };
    match otlp::export_outcome(status, retry_after.as_deref(), &body) {
        ExportOutcome::Accepted { rejected, message } => {
            if rejected > 0 {
                log::warn!(
                    "meshsight audit: collector rejected {rejected} records of a batch: {message}"
                );
            }
            queue.delivered_partially(batch, rejected)
        }
        ExportOutcome::Retry { after_ms } => {
            log::warn!(
                "meshsight audit: collector answered {} for a batch; will retry{}",
                status.map_or("no response (reset or timeout)".to_string(), |c| c
                    .to_string()),
                after_ms.map_or(String::new(), |ms| format!(" after {ms} ms (Retry-After)"))
            );
            queue.failed_retry_after(batch, now_ms, after_ms.unwrap_or(0));
            false
        }
        ExportOutcome::Rejected { status } => {
            log::warn!(
                "meshsight audit: collector answered {status} for a batch: not retryable, dropped"
            );
            queue.rejected(batch);
            false
        }
    }
}
