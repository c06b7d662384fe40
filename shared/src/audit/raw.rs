//! The audit policy exactly as the operator writes it (JSON), before validation. Unknown fields
//! are errors so that a typo cannot silently change what is recorded or where it goes.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The record format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuditFormat {
    /// OCSF 1.7.0 HTTP Activity (class_uid 4002).
    #[default]
    Ocsf,
    /// Elastic Common Schema (ECS 8.x field names).
    Ecs,
}

/// How the HTTP sink encodes a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SinkEncoding {
    /// One JSON record per line (`application/x-ndjson`), any failure retried.
    #[default]
    Ndjson,
    /// OTLP/HTTP logs: protobuf `ExportLogsServiceRequest`, the record as each log body
    /// (`application/x-protobuf`, default path `/v1/logs`), OTLP's retry rules.
    Otlp,
}

/// Which buffered record gives way when the buffer bound is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DropPolicy {
    /// Evict the oldest waiting records to make room for the new one (keeps the most recent
    /// activity; the default).
    #[default]
    DropOldest,
    /// Refuse the new record (keeps the oldest, e.g. the start of an incident).
    DropNewest,
}

/// Raw policy document, as written by the operator.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuditPolicy {
    /// `ocsf` (default) or `ecs`.
    #[serde(default)]
    pub format: AuditFormat,
    /// `"log"` (default) or `{"http": {...}}`.
    #[serde(default)]
    pub sink: RawSink,
    /// Header names to record (request and response), lowercase.
    #[serde(default)]
    pub record_headers: Option<Vec<String>>,
    /// Query parameter names whose values are masked.
    #[serde(default)]
    pub redact_query_params: Option<Vec<String>>,
    /// Fraction (0..=1) of allowed, unremarkable requests to record; default 1.
    #[serde(default)]
    pub sample_allowed: Option<f64>,
}

/// Raw sink choice.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawSink {
    /// One JSON line per record in Envoy's log.
    #[default]
    Log,
    /// NDJSON batches POSTed to an Envoy cluster.
    Http(Box<RawHttpSink>),
    /// Envoy's own access logger renders the record (file/stdout or OpenTelemetry, see
    /// `envoy-config/access-log/`); the module only leaves the verdict in filter state.
    AccessLog,
}

/// Raw settings of the HTTP sink.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpSink {
    /// Envoy cluster the batches go to.
    pub cluster: String,
    /// `ndjson` (default) or `otlp`.
    #[serde(default)]
    pub encoding: SinkEncoding,
    /// Request path, default `/` (`/v1/logs` with `otlp`).
    #[serde(default)]
    pub path: Option<String>,
    /// `:authority` sent, default the cluster name.
    #[serde(default)]
    pub authority: Option<String>,
    /// Extra request headers (e.g. `authorization` for the collector).
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Per-call timeout.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Most records in one batch.
    #[serde(default)]
    pub batch_max_records: Option<usize>,
    /// Most bytes in one batch (a single larger record still goes alone).
    #[serde(default)]
    pub batch_max_bytes: Option<usize>,
    /// A non-empty buffer is flushed at least this often.
    #[serde(default)]
    pub flush_interval_ms: Option<u64>,
    /// Bound on the bytes held (waiting and in flight).
    #[serde(default)]
    pub max_buffer_bytes: Option<usize>,
    /// Retries of a failed batch before its records are dropped.
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// First retry delay; doubles each retry.
    #[serde(default)]
    pub backoff_initial_ms: Option<u64>,
    /// Cap on the retry delay.
    #[serde(default)]
    pub backoff_max_ms: Option<u64>,
    /// Most batches sent and not yet answered (or waiting to be retried) at a time.
    #[serde(default)]
    pub max_in_flight_batches: Option<usize>,
    /// `drop_oldest` (default) or `drop_newest`.
    #[serde(default)]
    pub drop_policy: Option<DropPolicy>,
}
