//! The audit's counters, defined once per plugin at configuration; the queue's counters are
//! published as deltas so that several worker VMs add up in Envoy's shared stats.

use meshsight_policy::audit::{DeliveryCounters, DropReason};

use crate::host::{Counter, Gauge, Stats};

/// Metric names (Envoy stats), all prefixed `meshsight_audit_`.
pub mod name {
    /// Counter: records built (sampled in), whatever became of them.
    pub const RECORDS: &str = "meshsight_audit_records";
    /// Counter: records written to the log or acknowledged (2xx) by the collector.
    pub const DELIVERED: &str = "meshsight_audit_delivered";
    /// Counter: records re-sent in retried batches.
    pub const RETRIED: &str = "meshsight_audit_retried";
    /// Counter prefix: records dropped, by reason (`buffer_full`, `retries_exhausted`,
    /// `too_large`, `shutdown`, `rejected`).
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

/// The audit's counters and gauges.
pub(crate) struct Metrics {
    pub(crate) records: Counter,
    pub(crate) delivered: Counter,
    pub(crate) retried: Counter,
    pub(crate) dropped: [Counter; DropReason::ALL.len()],
    pub(crate) buffered: Gauge,
    pub(crate) buffered_bytes: Gauge,
    pub(crate) not_sampled: Counter,
    pub(crate) batches_sent: Counter,
}

impl Metrics {
    /// Defines every counter and gauge of the audit.
    pub(crate) fn define(stats: &Stats) -> Metrics {
        Metrics {
            records: stats.counter(name::RECORDS),
            delivered: stats.counter(name::DELIVERED),
            retried: stats.counter(name::RETRIED),
            dropped: DropReason::ALL
                .map(|r| stats.counter(&format!("{}{}", name::DROPPED_PREFIX, r.name()))),
            buffered: stats.gauge(name::BUFFERED),
            buffered_bytes: stats.gauge(name::BUFFERED_BYTES),
            not_sampled: stats.counter(name::NOT_SAMPLED),
            batches_sent: stats.counter(name::BATCHES_SENT),
        }
    }

    /// Publishes the queue's counters as deltas since the last publication, so several worker
    /// VMs add up in Envoy's shared stats (gauges included).
    pub(crate) fn publish(&self, now: &DeliveryCounters, last: &mut DeliveryCounters) {
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
