//! meshsight audit filter: an OCSF HTTP Activity record of every request, written to Envoy's log
//! or delivered in NDJSON batches to a collector cluster, with counters that always add up.
//!
//! A thin adapter: policy, record building, redaction, sampling and the delivery queue live in
//! `meshsight_policy::audit`; this crate moves data between the proxy-wasm host and that logic.
//! The record is built at stream end (`on_log`), so requests answered by an earlier filter (the
//! allowlist's 403), upstream failures and client aborts are recorded too. HTTP contexts reach
//! the root context's queue through a shared `Rc<RefCell<_>>`; only the root dispatches calls.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use meshsight_policy::audit::{
    sample_verdict, AuditPolicy, AuditRecord, DeliveryCounters, DeliveryQueue, DropReason,
    HttpExchange, HttpSink, PeerWorkload, Sink,
};
use meshsight_policy::clock::{unix_millis, unix_nanos};
use meshsight_policy::decision::{
    AllowlistDecision, MirrorDecision, ALLOWLIST_DECISION_PROPERTY, MIRROR_DECISION_PROPERTY,
};
use meshsight_policy::headers::header_value;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType, MetricType};

#[cfg(target_family = "wasm")]
#[allow(missing_docs)]
mod vm_entry {
    proxy_wasm::main! {{
        super::register();
    }}
}

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

/// Registers the filter's root context with the proxy-wasm SDK (called by `main!` in the VM and
/// by native tests through the harness).
pub fn register() {
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(AuditRoot::default()) });
}

/// Metric ids, defined once per VM.
#[derive(Debug, Default, Clone, Copy)]
struct Metrics {
    records: u32,
    delivered: u32,
    retried: u32,
    dropped: [u32; DropReason::ALL.len()],
    buffered: u32,
    buffered_bytes: u32,
    not_sampled: u32,
    batches_sent: u32,
}

impl Metrics {
    fn define() -> Option<Metrics> {
        let c = |name: &str| hostcalls::define_metric(MetricType::Counter, name).ok();
        let g = |name: &str| hostcalls::define_metric(MetricType::Gauge, name).ok();
        let mut dropped = [0; DropReason::ALL.len()];
        for (slot, reason) in dropped.iter_mut().zip(DropReason::ALL) {
            *slot = c(&format!("{}{}", metric::DROPPED_PREFIX, reason.name()))?;
        }
        Some(Metrics {
            records: c(metric::RECORDS)?,
            delivered: c(metric::DELIVERED)?,
            retried: c(metric::RETRIED)?,
            dropped,
            buffered: g(metric::BUFFERED)?,
            buffered_bytes: g(metric::BUFFERED_BYTES)?,
            not_sampled: c(metric::NOT_SAMPLED)?,
            batches_sent: c(metric::BATCHES_SENT)?,
        })
    }

    fn add(id: u32, delta: i64) {
        if delta != 0 {
            let _ = hostcalls::increment_metric(id, delta);
        }
    }

    /// Publishes the queue's counters as deltas since the last publication, so several worker
    /// VMs add up in Envoy's shared stats (gauges included).
    fn publish(&self, now: &DeliveryCounters, last: &mut DeliveryCounters) {
        let d = |a: u64, b: u64| a as i64 - b as i64;
        Self::add(self.records, d(now.records, last.records));
        Self::add(self.delivered, d(now.delivered, last.delivered));
        Self::add(self.retried, d(now.retried, last.retried));
        for (id, reason) in self.dropped.iter().zip(DropReason::ALL) {
            Self::add(*id, d(now.dropped_for(reason), last.dropped_for(reason)));
        }
        Self::add(
            self.buffered,
            d(now.buffered_records, last.buffered_records),
        );
        Self::add(
            self.buffered_bytes,
            d(now.buffered_bytes, last.buffered_bytes),
        );
        *last = *now;
    }
}

/// The HTTP sink's state, shared by the root context (which sends) and the HTTP contexts
/// (which enqueue).
#[derive(Debug)]
struct Delivery {
    sink: HttpSink,
    queue: DeliveryQueue,
    published: DeliveryCounters,
    /// Outstanding calls: (host token, batch id).
    pending: Vec<(u32, u64)>,
}

type SharedDelivery = Rc<RefCell<Delivery>>;

#[derive(Default)]
struct AuditRoot {
    policy: Option<Rc<AuditPolicy>>,
    delivery: Option<SharedDelivery>,
    metrics: Option<Metrics>,
    /// This workload's Istio identity from node metadata, read once.
    local_workload: Rc<PeerWorkload>,
}

impl AuditRoot {
    /// Counts whatever the current queue still holds as dropped (`shutdown`): this root is
    /// going away or being reconfigured, and nothing may disappear uncounted.
    fn shut_down_delivery(&mut self) {
        let (Some(delivery), Some(metrics)) = (self.delivery.take(), &self.metrics) else {
            return;
        };
        let mut d = delivery.borrow_mut();
        let n = d.queue.shut_down();
        if n > 0 {
            log::warn!("meshsight_audit: {n} buffered records dropped at shutdown");
        }
        let Delivery {
            queue, published, ..
        } = &mut *d;
        metrics.publish(&queue.counters(), published);
    }

    /// Sends every batch the queue says is due (new batches up to `max_in_flight_batches`,
    /// retries whose backoff has elapsed).
    fn pump(&self) {
        let (Some(delivery), Some(metrics)) = (&self.delivery, &self.metrics) else {
            return;
        };
        let now = unix_millis(self.get_current_time());
        let mut d = delivery.borrow_mut();
        // Bounded: each poll either sends a batch (at most max_in_flight at a time) or fails one.
        let max_polls = 2 * d.queue.limits().max_in_flight + 2;
        for _ in 0..max_polls {
            let Some(batch) = d.queue.poll(now) else {
                break;
            };
            // A re-sent batch replaces its old call: a late answer to that one is ignored.
            d.pending.retain(|(_, id)| *id != batch.id);
            let mut headers: Vec<(&str, &str)> = vec![
                (":method", "POST"),
                (":path", &d.sink.path),
                (":authority", &d.sink.authority),
                ("content-type", "application/x-ndjson"),
            ];
            for (n, v) in &d.sink.headers {
                headers.push((n, v));
            }
            let sent = self.dispatch_http_call(
                &d.sink.cluster,
                headers,
                Some(&batch.body),
                vec![],
                d.sink.timeout,
            );
            match sent {
                Ok(token) => {
                    Metrics::add(metrics.batches_sent, 1);
                    d.pending.push((token, batch.id));
                }
                Err(status) => {
                    log::warn!(
                        "meshsight_audit: cannot send a batch to cluster {:?}: {status:?}",
                        d.sink.cluster
                    );
                    d.queue.failed(batch.id, now);
                }
            }
        }
        let Delivery {
            queue, published, ..
        } = &mut *d;
        metrics.publish(&queue.counters(), published);
    }
}

impl Context for AuditRoot {
    fn on_done(&mut self) -> bool {
        self.shut_down_delivery();
        true
    }

    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        _body_size: usize,
        _trailers: usize,
    ) {
        let (Some(delivery), Some(metrics)) = (&self.delivery, &self.metrics) else {
            return;
        };
        let now = unix_millis(self.get_current_time());
        // No headers: Envoy reports a reset or timeout; do not ask for a map that is not there.
        let status = if num_headers == 0 {
            None
        } else {
            hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
                .ok()
                .flatten()
                .and_then(|s| s.parse::<u16>().ok())
        };
        let delivered = {
            let mut d = delivery.borrow_mut();
            let Some(at) = d.pending.iter().position(|(token, _)| *token == token_id) else {
                return; // an answer to a call the queue already gave up on
            };
            let (_, batch) = d.pending.remove(at);
            match status {
                Some(code) if (200..300).contains(&code) => d.queue.delivered(batch),
                other => {
                    log::warn!(
                        "meshsight_audit: collector answered {} for a batch; will retry or drop",
                        other.map_or("no response (reset or timeout)".to_string(), |c| c
                            .to_string())
                    );
                    d.queue.failed(batch, now);
                    false
                }
            }
        };
        // Keep draining without waiting for the next tick while the collector keeps up.
        if delivered {
            self.pump();
        } else {
            let mut d = delivery.borrow_mut();
            let Delivery {
                queue, published, ..
            } = &mut *d;
            metrics.publish(&queue.counters(), published);
        }
    }
}

impl RootContext for AuditRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        let policy = match AuditPolicy::from_json(&config) {
            Ok(p) => p,
            Err(e) => {
                log::error!("meshsight_audit: invalid policy: {e}");
                return false;
            }
        };
        if self.metrics.is_none() {
            self.metrics = Metrics::define();
            if self.metrics.is_none() {
                log::error!("meshsight_audit: cannot define metrics");
                return false;
            }
        }
        self.shut_down_delivery();
        let node = |key: &[&str]| {
            let mut path = vec!["node", "metadata"];
            path.extend_from_slice(key);
            hostcalls::get_property(path)
                .ok()
                .flatten()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .filter(|s| !s.is_empty())
        };
        self.local_workload = Rc::new(PeerWorkload {
            namespace: node(&["NAMESPACE"]),
            workload: node(&["WORKLOAD_NAME"]),
            service: node(&["LABELS", "service.istio.io/canonical-name"]),
        });
        self.delivery = match &policy.sink {
            Sink::Log => {
                // Envoy drops wasm logs below its level (Istio sidecars default to warning):
                // say so once rather than count invisible records as delivered in silence.
                if matches!(hostcalls::get_log_level(), Ok(level) if level as u32 > LogLevel::Info as u32)
                {
                    log::warn!(
                        "meshsight_audit: the log sink writes at info level, below Envoy's wasm log \
                         level: records will not appear (raise it, e.g. `--component-log-level \
                         wasm:info`, or use the http sink)"
                    );
                }
                None
            }
            Sink::Http(sink) => {
                let now = unix_millis(self.get_current_time());
                let tick = Duration::from_millis(sink.queue.flush_interval_ms).min(MAX_TICK);
                self.set_tick_period(tick);
                Some(Rc::new(RefCell::new(Delivery {
                    queue: DeliveryQueue::new(sink.queue, now),
                    sink: sink.clone(),
                    published: DeliveryCounters::default(),
                    pending: Vec::new(),
                })))
            }
        };
        self.policy = Some(Rc::new(policy));
        true
    }

    fn on_tick(&mut self) {
        self.pump();
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(AuditStream {
            policy: self.policy.clone()?,
            delivery: self.delivery.clone(),
            metrics: self.metrics?,
            local_workload: self.local_workload.clone(),
            response_headers: Vec::new(),
        }))
    }
}

struct AuditStream {
    policy: Rc<AuditPolicy>,
    delivery: Option<SharedDelivery>,
    metrics: Metrics,
    local_workload: Rc<PeerWorkload>,
    /// Captured when the response passes (also for local replies); absent on aborts.
    response_headers: Vec<(String, String)>,
}

/// Text of host bytes: the bytes themselves when they are UTF-8 (no copy), else a lossy copy.
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn lossy_map(map: Vec<(String, Vec<u8>)>) -> Vec<(String, String)> {
    map.into_iter().map(|(n, v)| (n, text(v))).collect()
}

/// Envoy returns integers, timestamps and durations as 8 little-endian bytes.
fn as_i64(bytes: &[u8]) -> Option<i64> {
    match <[u8; 8]>::try_from(bytes) {
        Ok(b) => Some(i64::from_le_bytes(b)),
        Err(_) => std::str::from_utf8(bytes).ok()?.trim().parse().ok(),
    }
}

impl AuditStream {
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        hostcalls::get_property(path.to_vec()).ok().flatten()
    }

    fn string(&self, path: &[&str]) -> Option<String> {
        self.property(path).map(text).filter(|s| !s.is_empty())
    }

    fn int(&self, path: &[&str]) -> Option<i64> {
        self.property(path).and_then(|b| as_i64(&b))
    }

    /// Istio peer metadata (`downstream_peer` / `upstream_peer` filter state, fields
    /// `namespace`, `workload`, `service`). Istio always knows a peer's namespace: without one
    /// there is no peer, and the other two are not asked for.
    fn peer(&self, root: &str) -> PeerWorkload {
        let Some(namespace) = self.string(&[root, "namespace"]) else {
            return PeerWorkload::default();
        };
        PeerWorkload {
            namespace: Some(namespace),
            workload: self.string(&[root, "workload"]),
            service: self.string(&[root, "service"]),
        }
    }

    fn exchange(&mut self) -> HttpExchange {
        let headers = hostcalls::get_map_bytes(MapType::HttpRequestHeaders)
            .map(lossy_map)
            .unwrap_or_default();
        let mut ex = HttpExchange::from_request_headers(headers);
        ex.response_headers = std::mem::take(&mut self.response_headers);
        ex.protocol = self.string(&["request", "protocol"]);
        // The response that passed this filter (also local replies) has the code; ask Envoy
        // only when none did.
        let status = header_value(&ex.response_headers, ":status")
            .and_then(|v| v.parse::<i64>().ok())
            .or_else(|| self.int(&["response", "code"]))
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| *c != 0);
        ex.status = status;
        ex.request_bytes = self
            .int(&["request", "total_size"])
            .and_then(|n| u64::try_from(n).ok());
        ex.response_bytes = status
            .and(self.int(&["response", "total_size"]))
            .and_then(|n| u64::try_from(n).ok());
        let now_ns = unix_nanos(self.get_current_time());
        ex.start_ns = self
            .int(&["request", "time"])
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(now_ns);
        ex.end_ns = match self
            .int(&["request", "duration"])
            .and_then(|n| u64::try_from(n).ok())
        {
            Some(d) => ex.start_ns.saturating_add(d),
            None => now_ns.max(ex.start_ns),
        };
        ex.source_address = self.string(&["source", "address"]);
        ex.destination_address = self.string(&["destination", "address"]);
        ex.source_peer = self.peer("downstream_peer");
        ex.destination_peer = self.peer("upstream_peer");
        if ex.destination_peer == PeerWorkload::default() {
            // Inbound sidecar: the destination is this workload.
            ex.destination_peer = (*self.local_workload).clone();
        }
        ex.peer_identity = self.string(&["connection", "uri_san_peer_certificate"]);
        if ex.request_id.is_none() {
            ex.request_id = self.string(&["request", "id"]);
        }
        ex.allowlist = self
            .property(&[ALLOWLIST_DECISION_PROPERTY])
            .and_then(|b| serde_json::from_slice::<AllowlistDecision>(&b).ok());
        ex.mirror = self
            .property(&[MIRROR_DECISION_PROPERTY])
            .and_then(|b| serde_json::from_slice::<MirrorDecision>(&b).ok());
        ex.response_flags = self.int(&["response", "flags"]).map_or(0, |n| n as u64);
        ex.response_code_details = self.string(&["response", "code_details"]);
        ex
    }
}

impl Context for AuditStream {}

impl HttpContext for AuditStream {
    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // Keep only what may be recorded (and `:status`), not the whole map, until `on_log`.
        if let Ok(map) = hostcalls::get_map_bytes(MapType::HttpResponseHeaders) {
            let keep = &self.policy.record_headers;
            self.response_headers = lossy_map(
                map.into_iter()
                    .filter(|(n, _)| {
                        n == ":status"
                            || keep.contains(n.as_str())
                            || (n.bytes().any(|b| b.is_ascii_uppercase())
                                && keep.contains(n.to_ascii_lowercase().as_str()))
                    })
                    .collect(),
            );
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        let exchange = self.exchange();
        if !sample_verdict(&exchange, self.policy.sample_allowed).is_recorded() {
            Metrics::add(self.metrics.not_sampled, 1);
            return;
        }
        let line = AuditRecord::build(exchange, &self.policy).to_json_line(self.policy.format);
        match &self.delivery {
            None => {
                log::info!("{line}");
                Metrics::add(self.metrics.records, 1);
                Metrics::add(self.metrics.delivered, 1);
            }
            Some(delivery) => {
                let mut d = delivery.borrow_mut();
                d.queue.push(line);
                let Delivery {
                    queue, published, ..
                } = &mut *d;
                self.metrics.publish(&queue.counters(), published);
            }
        }
    }
}
