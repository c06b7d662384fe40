//! Audit records (OCSF HTTP Activity, ECS), redaction, sampling and the batching buffer whose
//! counters always add up.
//!
//! The filter builds an [`HttpExchange`] from the request head and properties at stream end,
//! asks [`sample_verdict`] whether to record it, turns it into an [`AuditRecord`] (allow-listed
//! and redacted) and renders it as one JSON line ([`ocsf`](AuditRecord::to_json_line) or ECS);
//! with the HTTP sink the line goes into a [`DeliveryQueue`].
//!
//! One file per step: `exchange` (what the proxy saw), `record` (what is recorded of it),
//! `ocsf` and `ecs` (the two renderings, through the `json` text writer), `redact`, `sample`,
//! `policy` and `queue`.

mod ecs;
mod exchange;
mod json;
pub(crate) mod ocsf;
pub mod otlp;
mod policy;
mod queue;
mod record;
mod redact;
mod sample;
pub mod verdict;

pub use ecs::{rfc3339_ms, ECS_VERSION};
pub use exchange::{HttpExchange, PeerWorkload, TraceId};
pub use ocsf::{activity_id, OCSF_VERSION};
pub use policy::{
    AuditFormat, AuditPolicy, DropPolicy, HttpSink, QueueLimits, RawAuditPolicy, RawHttpSink,
    RawSink, Sink, SinkEncoding, DEFAULT_RECORD_HEADERS, DEFAULT_REDACT_QUERY_PARAMS,
    FORBIDDEN_HEADERS,
};
pub use queue::{backoff_ms, Batch, DeliveryCounters, DeliveryQueue, DropReason};
pub use record::{
    disposition, response_flag_names, AuditRecord, Disposition, PRODUCT_NAME, PRODUCT_VERSION,
    RESPONSE_FLAGS,
};
pub use redact::{recorded_header, redact_query, redacted_query, select_headers, REDACTED};
pub use sample::{sample_verdict, SampleVerdict};

#[cfg(test)]
mod tests;
