//! The audit job: an OCSF HTTP Activity record (or ECS) of every request, carrying the
//! allowlist and mirror decisions, written to Envoy's log, rendered by Envoy's access logger, or
//! delivered in NDJSON or OTLP batches to a collector cluster, with counters that always add up.
//!
//! Policy, record building, redaction, sampling, the delivery queue and the judgement of a
//! collector's answers live in the policy crate (`meshsight_policy::audit`,
//! `meshsight_policy::collector_answer`); this job moves data between the host and that logic,
//! in the mirror's shape: `stream` builds one request's record at stream end (`on_log`), so
//! requests answered locally (the allowlist's 403), upstream failures and client aborts are
//! recorded too; `delivery` is the root context's side of the HTTP sink (streams enqueue into
//! the worker's queue; only the root sends batches, since a stream's calls die with the stream);
//! [`metrics`] declares the counters.

mod delivery;
pub mod metrics;
mod stream;

use std::cell::RefCell;
use std::time::Duration;

use meshsight_host_abi::LogLevel;
use meshsight_policy::audit::{verdict, AuditPolicy, PeerWorkload, Sink};

use crate::host::{self, Stats};
use delivery::Delivery;
use metrics::Metrics;

/// Longest interval between ticks: size-triggered batches leave within this even when the
/// flush interval is longer.
const MAX_TICK: Duration = Duration::from_millis(100);

/// This workload's Istio identity, from the proxy's node metadata (read once, at
/// configuration): the destination of an inbound sidecar's records and the OTLP resource.
fn local_workload() -> PeerWorkload {
    PeerWorkload {
        namespace: host::node_metadata(&["NAMESPACE"]),
        workload: host::node_metadata(&["WORKLOAD_NAME"]),
        service: host::node_metadata(&["LABELS", "service.istio.io/canonical-name"]),
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
        let local_workload = local_workload();
        let delivery = match &policy.sink {
            Sink::AccessLog => {
                // Declared as strings living as long as the request, so that Envoy's access
                // logger can print them (PLAIN). A second plugin or a reconfiguration declaring
                // them again is refused by Envoy with BadArgument: harmless.
                for (name, args) in verdict::declarations() {
                    if let Err(status) = host::declare_property(&args) {
                        log!(
                            Debug,
                            "meshsight audit: declare_property {name}: {status:?}"
                        );
                    }
                }
                None
            }
            Sink::Log => {
                // Envoy drops wasm logs below its level (Istio sidecars default to warning):
                // say so once rather than count invisible records as delivered in silence.
                if matches!(host::envoy_log_level(), Some(level) if level as u32 > LogLevel::Info as u32)
                {
                    log!(Warn,
                        "meshsight audit: the log sink writes at info level, below Envoy's wasm log \
                         level: records will not appear (raise it, e.g. `--component-log-level \
                         wasm:info`, or use the http sink)"
                    );
                }
                None
            }
            Sink::Http(sink) => Some(Delivery::new(sink, now_ms)),
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
}
