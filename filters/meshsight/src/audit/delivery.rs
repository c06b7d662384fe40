//! The HTTP sink on the host: streams push records into the worker's queue, and only the root
//! context sends batches (a stream's calls die with the stream) and hears the collector's
//! answers, which the policy crate judges (`meshsight_policy::collector_answer`).

use meshsight_policy::error::Quoted;
use std::cell::RefCell;

use meshsight_policy::audit::otlp;
use meshsight_policy::audit::{
    DeliveryCounters, DeliveryQueue, HttpSink, SinkEncoding, PRODUCT_VERSION,
};
use meshsight_policy::collector_answer;

use super::metrics::Metrics;
use super::AuditJob;
use crate::host;

/// The HTTP sink's state: the queue streams push into and the root context sends from.
pub(crate) struct Delivery {
    pub(crate) sink: HttpSink,
    pub(crate) queue: DeliveryQueue,
    published: DeliveryCounters,
    /// Outstanding calls: (host token, batch id).
    pending: Vec<(u32, u64)>,
}

impl Delivery {
    /// An empty queue for `sink`, its clock starting at `now_ms`.
    pub(crate) fn new(sink: &HttpSink, now_ms: u64) -> RefCell<Delivery> {
        RefCell::new(Delivery {
            queue: DeliveryQueue::new(sink.queue, now_ms),
            sink: sink.clone(),
            published: DeliveryCounters::default(),
            pending: Vec::new(),
        })
    }

    /// Publishes what the queue counted since the last time.
    pub(crate) fn publish(&mut self, metrics: &Metrics) {
        metrics.publish(&self.queue.counters(), &mut self.published);
    }
}

impl AuditJob {
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
                    log!(
                        Warn,
                        "meshsight audit: cannot send a batch to cluster {}: {status:?}",
                        Quoted(&d.sink.cluster)
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
            let encoding = d.sink.encoding;
            let retry_after = host::call_response_header("retry-after");
            let body = if body_size > 0 && collector_answer::reads_body(encoding, status) {
                host::call_response_body(body_size)
            } else {
                Vec::new()
            };
            let outcome = collector_answer::judge(encoding, status, retry_after.as_deref(), &body);
            if let Some(warning) = collector_answer::warning(&outcome, status) {
                log!(Warn, "{warning}");
            }
            collector_answer::apply(&outcome, &mut d.queue, batch, now_ms)
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
            log!(
                Warn,
                "meshsight audit: {n} buffered records dropped at shutdown"
            );
        }
        d.publish(&self.metrics);
    }
}
