//! Audit: what the proxy saw of each request, recorded as one OCSF HTTP Activity (or ECS)
//! record, allow-listed and redacted, sampled, and delivered through a buffer whose counters
//! always add up.
//!
//! A policy is read into [`RawAuditPolicy`] (`ReadJson`, unknown fields refused, `raw`), then
//! compiled once into an immutable [`AuditPolicy`] (`AuditPolicy::try_from(raw)` or
//! [`AuditPolicy::from_json`], `compile`); any invalid value refuses the whole policy with a
//! [`ConfigError`] naming its JSON path.
//!
//! Per request the filter builds an [`HttpExchange`] at stream end (`exchange`: what the proxy
//! saw, the other jobs' decisions included) and asks [`AuditPolicy::judge`] whether to record it
//! (`judge`: the remarkable always, the rest by a deterministic sample). A recorded exchange
//! becomes an [`AuditRecord`] (`record`, allow-listed and redacted by `redact`), rendered as one
//! JSON line ([`ocsf`](AuditRecord::to_json_line) or `ecs`, through the crate's JSON text
//! writer); with the HTTP sink the line goes into a [`DeliveryQueue`] (`queue`; [`otlp`] for the
//! OTLP encoding). With the access-log sink Envoy renders the record itself, around the
//! [`verdict`] the module leaves in filter state.

mod compile;
mod ecs;
mod exchange;
mod judge;
mod ocsf;
#[cfg(test)]
mod oracle;
pub mod otlp;
mod queue;
mod raw;
mod record;
mod redact;
pub mod verdict;

#[cfg(test)]
mod tests;

use crate::name_set::NameSet;
use std::time::Duration;

use crate::error::ConfigError;

pub use compile::{DEFAULT_RECORD_HEADERS, DEFAULT_REDACT_QUERY_PARAMS, FORBIDDEN_HEADERS};
pub use ecs::{rfc3339_ms, ECS_VERSION};
pub use exchange::{HttpExchange, PeerWorkload, TraceId};
pub use judge::{sample_verdict, SampleVerdict};
pub use ocsf::{activity_id, OCSF_VERSION};
pub use queue::{backoff_ms, Batch, DeliveryCounters, DeliveryQueue, DropReason};
pub use raw::{AuditFormat, DropPolicy, RawAuditPolicy, RawHttpSink, RawSink, SinkEncoding};
pub use record::{
    disposition, response_flag_names, AuditRecord, Disposition, PRODUCT_NAME, PRODUCT_VERSION,
    RESPONSE_FLAGS,
};
pub use redact::{recorded_header, redact_query, redacted_query, select_headers, REDACTED};

/// Compiled audit policy.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPolicy {
    /// Record format.
    pub format: AuditFormat,
    /// Where records go.
    pub sink: Sink,
    /// Lowercase header names recorded (never a [`FORBIDDEN_HEADERS`] name).
    pub record_headers: NameSet,
    /// Lowercase query parameter names whose values are masked.
    pub redact_query_params: NameSet,
    /// Fraction of allowed, unremarkable requests recorded.
    pub sample_allowed: f64,
}

/// Where records go.
#[derive(Debug, Clone, PartialEq)]
pub enum Sink {
    /// One JSON line per record in Envoy's log (info level).
    Log,
    /// NDJSON batches POSTed to an Envoy cluster.
    Http(HttpSink),
    /// Envoy's access logger renders the record from its own fields and the verdict the module
    /// leaves in filter state (`meshsight_policy::audit::verdict`).
    AccessLog,
}

/// Compiled HTTP sink settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSink {
    /// Envoy cluster.
    pub cluster: String,
    /// Batch encoding.
    pub encoding: SinkEncoding,
    /// Request path.
    pub path: String,
    /// `:authority`.
    pub authority: String,
    /// Extra headers, lowercase names.
    pub headers: Vec<(String, String)>,
    /// Per-call timeout.
    pub timeout: Duration,
    /// Batching, retry and bound settings.
    pub queue: QueueLimits,
}

/// Batching, retry and buffer-bound settings of the [`DeliveryQueue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most records per batch.
    pub batch_max_records: usize,
    /// Most bytes per batch (a single larger record goes alone).
    pub batch_max_bytes: usize,
    /// A non-empty buffer is flushed at least this often (ms).
    pub flush_interval_ms: u64,
    /// Bound on bytes held, waiting plus in flight.
    pub max_buffer_bytes: usize,
    /// Retries of a failed batch before its records are dropped.
    pub max_retries: u32,
    /// First retry delay (ms); doubles each retry.
    pub backoff_initial_ms: u64,
    /// Cap on the retry delay (ms).
    pub backoff_max_ms: u64,
    /// A batch whose answer has not come this long after it was sent is treated as failed (ms).
    pub response_deadline_ms: u64,
    /// Most batches out at a time (sent and unanswered, or waiting to be retried).
    pub max_in_flight: usize,
    /// Which record gives way at the bound.
    pub drop_policy: DropPolicy,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            batch_max_records: 500,
            batch_max_bytes: 512 * 1024,
            flush_interval_ms: 1000,
            max_buffer_bytes: 8 * 1024 * 1024,
            max_retries: 5,
            backoff_initial_ms: 250,
            backoff_max_ms: 30_000,
            response_deadline_ms: 5000 + 1000,
            max_in_flight: 4,
            drop_policy: DropPolicy::DropOldest,
        }
    }
}

impl AuditPolicy {
    /// Parses and compiles a policy document; any error refuses the whole policy. An empty
    /// document means all defaults (OCSF to the log).
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return AuditPolicy::try_from(ConfigError::parse_json::<RawAuditPolicy>(b"{}")?);
        }
        AuditPolicy::try_from(ConfigError::parse_json::<RawAuditPolicy>(bytes)?)
    }
}
