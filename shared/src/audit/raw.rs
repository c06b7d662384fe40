//! The audit policy exactly as the operator writes it (JSON), before validation. Unknown fields
//! are errors so that a typo cannot silently change what is recorded or where it goes.

use crate::error::json_path::{At, ByName, PathError, ReadJson};

/// The record format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuditFormat {
    /// OCSF 1.7.0 HTTP Activity (class_uid 4002).
    #[default]
    Ocsf,
    /// Elastic Common Schema (ECS 8.x field names).
    Ecs,
}

/// How the HTTP sink encodes a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SinkEncoding {
    /// One JSON record per line (`application/x-ndjson`), any failure retried.
    #[default]
    Ndjson,
    /// OTLP/HTTP logs: protobuf `ExportLogsServiceRequest`, the record as each log body
    /// (`application/x-protobuf`, default path `/v1/logs`), OTLP's retry rules.
    Otlp,
}

/// Which buffered record gives way when the buffer bound is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DropPolicy {
    /// Evict the oldest waiting records to make room for the new one (keeps the most recent
    /// activity; the default).
    #[default]
    DropOldest,
    /// Refuse the new record (keeps the oldest, e.g. the start of an incident).
    DropNewest,
}

/// Raw policy document, as written by the operator.
#[derive(Debug)]
pub struct RawAuditPolicy {
    /// `ocsf` (default) or `ecs`.
    pub format: AuditFormat,
    /// `"log"` (default) or `{"http": {...}}`.
    pub sink: RawSink,
    /// Header names to record (request and response), lowercase.
    pub record_headers: Option<Vec<String>>,
    /// Query parameter names whose values are masked.
    pub redact_query_params: Option<Vec<String>>,
    /// Fraction (0..=1) of allowed, unremarkable requests to record; default 1.
    pub sample_allowed: Option<f64>,
}

/// Raw sink choice.
#[derive(Debug, Default)]
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
#[derive(Debug)]
pub struct RawHttpSink {
    /// Envoy cluster the batches go to.
    pub cluster: String,
    /// `ndjson` (default) or `otlp`.
    pub encoding: SinkEncoding,
    /// Request path, default `/` (`/v1/logs` with `otlp`).
    pub path: Option<String>,
    /// `:authority` sent, default the cluster name.
    pub authority: Option<String>,
    /// Extra request headers (e.g. `authorization` for the collector).
    pub headers: Option<ByName<String>>,
    /// Per-call timeout.
    pub timeout_ms: Option<u64>,
    /// Most records in one batch.
    pub batch_max_records: Option<usize>,
    /// Most bytes in one batch (a single larger record still goes alone).
    pub batch_max_bytes: Option<usize>,
    /// A non-empty buffer is flushed at least this often.
    pub flush_interval_ms: Option<u64>,
    /// Bound on the bytes held (waiting and in flight).
    pub max_buffer_bytes: Option<usize>,
    /// Retries of a failed batch before its records are dropped.
    pub max_retries: Option<u32>,
    /// First retry delay; doubles each retry.
    pub backoff_initial_ms: Option<u64>,
    /// Cap on the retry delay.
    pub backoff_max_ms: Option<u64>,
    /// Most batches sent and not yet answered (or waiting to be retried) at a time.
    pub max_in_flight_batches: Option<usize>,
    /// `drop_oldest` (default) or `drop_newest`.
    pub drop_policy: Option<DropPolicy>,
}

impl ReadJson for AuditFormat {
    fn read_json(at: At<'_, '_>) -> Result<AuditFormat, PathError> {
        Ok(
            match at.unit_variant("enum AuditFormat", AUDIT_FORMAT_VARIANTS)? {
                0 => AuditFormat::Ocsf,
                _ => AuditFormat::Ecs,
            },
        )
    }
}

const AUDIT_FORMAT_VARIANTS: &[&str] = &["ocsf", "ecs"];

impl ReadJson for SinkEncoding {
    fn read_json(at: At<'_, '_>) -> Result<SinkEncoding, PathError> {
        Ok(
            match at.unit_variant("enum SinkEncoding", SINK_ENCODING_VARIANTS)? {
                0 => SinkEncoding::Ndjson,
                _ => SinkEncoding::Otlp,
            },
        )
    }
}

const SINK_ENCODING_VARIANTS: &[&str] = &["ndjson", "otlp"];

impl ReadJson for DropPolicy {
    fn read_json(at: At<'_, '_>) -> Result<DropPolicy, PathError> {
        Ok(
            match at.unit_variant("enum DropPolicy", DROP_POLICY_VARIANTS)? {
                0 => DropPolicy::DropOldest,
                _ => DropPolicy::DropNewest,
            },
        )
    }
}

const DROP_POLICY_VARIANTS: &[&str] = &["drop_oldest", "drop_newest"];

impl ReadJson for RawAuditPolicy {
    fn read_json(at: At<'_, '_>) -> Result<RawAuditPolicy, PathError> {
        let mut f = at.fields("struct RawAuditPolicy", RAW_AUDIT_POLICY_FIELDS)?;
        let value = RawAuditPolicy {
            format: f.get("format").unwrap_or_default(),
            sink: f.get("sink").unwrap_or_default(),
            record_headers: f.get("record_headers").flatten(),
            redact_query_params: f.get("redact_query_params").flatten(),
            sample_allowed: f.get("sample_allowed").flatten(),
        };
        f.finish(value)
    }
}

const RAW_AUDIT_POLICY_FIELDS: &[&str] = &[
    "format",
    "sink",
    "record_headers",
    "redact_query_params",
    "sample_allowed",
];

impl ReadJson for RawHttpSink {
    fn read_json(at: At<'_, '_>) -> Result<RawHttpSink, PathError> {
        let mut f = at.fields("struct RawHttpSink", RAW_HTTP_SINK_FIELDS)?;
        let value = RawHttpSink {
            cluster: f.required("cluster"),
            encoding: f.get("encoding").unwrap_or_default(),
            path: f.get("path").flatten(),
            authority: f.get("authority").flatten(),
            headers: f.get("headers").flatten(),
            timeout_ms: f.get("timeout_ms").flatten(),
            batch_max_records: f.get("batch_max_records").flatten(),
            batch_max_bytes: f.get("batch_max_bytes").flatten(),
            flush_interval_ms: f.get("flush_interval_ms").flatten(),
            max_buffer_bytes: f.get("max_buffer_bytes").flatten(),
            max_retries: f.get("max_retries").flatten(),
            backoff_initial_ms: f.get("backoff_initial_ms").flatten(),
            backoff_max_ms: f.get("backoff_max_ms").flatten(),
            max_in_flight_batches: f.get("max_in_flight_batches").flatten(),
            drop_policy: f.get("drop_policy").flatten(),
        };
        f.finish(value)
    }
}

const RAW_HTTP_SINK_FIELDS: &[&str] = &[
    "cluster",
    "encoding",
    "path",
    "authority",
    "headers",
    "timeout_ms",
    "batch_max_records",
    "batch_max_bytes",
    "flush_interval_ms",
    "max_buffer_bytes",
    "max_retries",
    "backoff_initial_ms",
    "backoff_max_ms",
    "max_in_flight_batches",
    "drop_policy",
];

impl ReadJson for RawSink {
    fn read_json(at: At<'_, '_>) -> Result<RawSink, PathError> {
        match at.variant("enum RawSink", &["log", "http", "access_log"])? {
            (1, None) => Err(at.error("invalid type: unit variant, expected newtype variant")),
            (1, Some(data)) => ReadJson::read_json(data).map(RawSink::Http),
            (_, Some(data)) if *data.json() != crate::error::json_path::Json::Null => {
                Err(data.invalid_type("unit"))
            }
            (0, _) => Ok(RawSink::Log),
            _ => Ok(RawSink::AccessLog),
        }
    }
}
