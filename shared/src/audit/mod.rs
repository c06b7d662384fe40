//! Audit records (OCSF HTTP Activity, ECS), redaction, sampling and the batching buffer whose
//! counters always add up.
//!
//! The filter builds an [`HttpExchange`] from headers and properties at stream end, asks
//! [`sample_verdict`] whether to record it, turns it into an [`AuditRecord`] (allow-listed and
//! redacted) and renders it as one JSON line; with the HTTP sink the line goes into a
//! [`DeliveryQueue`].

mod policy;
mod queue;
mod record;
mod redact;
mod sample;
pub mod verdict;

pub use policy::{
    AuditFormat, AuditPolicy, DropPolicy, HttpSink, QueueLimits, RawAuditPolicy, RawHttpSink,
    RawSink, Sink, DEFAULT_RECORD_HEADERS, DEFAULT_REDACT_QUERY_PARAMS, FORBIDDEN_HEADERS,
};
pub use queue::{backoff_ms, Batch, DeliveryCounters, DeliveryQueue, DropReason};
pub use record::{
    activity_id, disposition, response_flag_names, rfc3339_ms, AuditRecord, Disposition,
    HttpExchange, PeerWorkload, ECS_VERSION, OCSF_VERSION, PRODUCT_NAME, PRODUCT_VERSION,
    RESPONSE_FLAGS,
};
pub use redact::{redact_query, select_headers, REDACTED};
pub use sample::{sample_verdict, SampleVerdict};

#[cfg(test)]
mod tests;
