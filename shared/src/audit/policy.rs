//! The audit policy: the JSON an operator writes (`RawAuditPolicy`, read by serde with unknown
//! fields refused) and the compiled, validated [`AuditPolicy`] the filter uses per request.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;
use crate::headers::is_token;

/// Request/response headers whose values are credentials: never recorded, and refused in
/// `record_headers` (the crate's one credential list).
pub use crate::headers::CREDENTIAL_HEADERS as FORBIDDEN_HEADERS;

/// Headers recorded when the policy names none.
pub const DEFAULT_RECORD_HEADERS: [&str; 4] =
    ["content-type", "accept", "origin", "x-forwarded-proto"];

/// Query parameters whose values are masked when the policy names none (compared
/// case-insensitively after percent-decoding the parameter name).
pub const DEFAULT_REDACT_QUERY_PARAMS: [&str; 20] = [
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "password",
    "passwd",
    "pwd",
    "secret",
    "client_secret",
    "api_key",
    "apikey",
    "key",
    "code",
    "auth",
    "sig",
    "signature",
    "session",
    "sessionid",
    "x-amz-signature",
    "x-amz-security-token",
];

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
    pub headers: Option<std::collections::BTreeMap<String, String>>,
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

/// Compiled audit policy.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPolicy {
    /// Record format.
    pub format: AuditFormat,
    /// Where records go.
    pub sink: Sink,
    /// Lowercase header names recorded (never a [`FORBIDDEN_HEADERS`] name).
    pub record_headers: BTreeSet<String>,
    /// Lowercase query parameter names whose values are masked.
    pub redact_query_params: BTreeSet<String>,
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

/// Batching, retry and buffer-bound settings of the [`crate::audit::DeliveryQueue`].
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

const DEFAULT_TIMEOUT_MS: u64 = 5000;

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

fn header_name(path: String, name: &str) -> Result<String, ConfigError> {
    if !is_token(name) {
        return Err(ConfigError::new(
            path,
            format!("{name:?} is not a valid header name"),
        ));
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ConfigError::new(
            path,
            format!("{name:?} must be lowercase"),
        ));
    }
    Ok(name.to_string())
}

fn positive(path: &str, value: Option<u64>, default: u64) -> Result<u64, ConfigError> {
    match value {
        Some(0) => Err(ConfigError::new(path, "must be greater than 0")),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

impl TryFrom<RawAuditPolicy> for AuditPolicy {
    type Error = ConfigError;

    fn try_from(raw: RawAuditPolicy) -> Result<Self, ConfigError> {
        let record_headers = match raw.record_headers {
            None => DEFAULT_RECORD_HEADERS
                .iter()
                .map(|h| h.to_string())
                .collect(),
            Some(list) => {
                let mut set = BTreeSet::new();
                for (i, name) in list.iter().enumerate() {
                    let path = format!("record_headers[{i}]");
                    let name = header_name(path.clone(), name)?;
                    if FORBIDDEN_HEADERS.contains(&name.as_str()) {
                        return Err(ConfigError::new(
                            path,
                            format!("{name:?} carries credentials and is never recorded"),
                        ));
                    }
                    set.insert(name);
                }
                set
            }
        };
        let redact_query_params = match raw.redact_query_params {
            None => DEFAULT_REDACT_QUERY_PARAMS
                .iter()
                .map(|p| p.to_string())
                .collect(),
            Some(list) => {
                let mut set = BTreeSet::new();
                for (i, name) in list.iter().enumerate() {
                    if name.is_empty() {
                        return Err(ConfigError::new(
                            format!("redact_query_params[{i}]"),
                            "must not be empty",
                        ));
                    }
                    set.insert(name.to_ascii_lowercase());
                }
                set
            }
        };
        let sample_allowed = raw.sample_allowed.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&sample_allowed) {
            return Err(ConfigError::new(
                "sample_allowed",
                format!("{sample_allowed} is not a fraction between 0 and 1"),
            ));
        }
        let sink = match raw.sink {
            RawSink::Log => Sink::Log,
            RawSink::Http(http) => Sink::Http(compile_http(*http)?),
            RawSink::AccessLog => {
                if sample_allowed < 1.0 {
                    return Err(ConfigError::new(
                        "sample_allowed",
                        "sampling needs the record built in Wasm (log or http sink); with the \
                         access_log sink, sample with the access logger's own filter (e.g. \
                         runtime_filter)",
                    ));
                }
                Sink::AccessLog
            }
        };
        Ok(AuditPolicy {
            format: raw.format,
            sink,
            record_headers,
            redact_query_params,
            sample_allowed,
        })
    }
}

fn compile_http(raw: RawHttpSink) -> Result<HttpSink, ConfigError> {
    if raw.cluster.is_empty() {
        return Err(ConfigError::new("sink.http.cluster", "must not be empty"));
    }
    let default_path = match raw.encoding {
        SinkEncoding::Ndjson => "/",
        SinkEncoding::Otlp => super::otlp::LOGS_PATH,
    };
    let path = raw.path.unwrap_or_else(|| default_path.to_string());
    if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(ConfigError::new(
            "sink.http.path",
            format!("{path:?} must start with '/' and contain no spaces or control characters"),
        ));
    }
    let authority = raw.authority.unwrap_or_else(|| raw.cluster.clone());
    if authority.is_empty() || authority.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(ConfigError::new(
            "sink.http.authority",
            format!("{authority:?} is not a valid authority"),
        ));
    }
    let mut headers = Vec::new();
    for (name, value) in raw.headers.unwrap_or_default() {
        let path = format!("sink.http.headers.{name}");
        let name = header_name(path.clone(), &name)?;
        if matches!(
            name.as_str(),
            "content-type" | "content-length" | "host" | "transfer-encoding"
        ) {
            return Err(ConfigError::new(path, "is set by the filter"));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(ConfigError::new(path, "value contains CR, LF or NUL"));
        }
        headers.push((name, value));
    }
    let defaults = QueueLimits::default();
    let timeout_ms = positive("sink.http.timeout_ms", raw.timeout_ms, DEFAULT_TIMEOUT_MS)?;
    let batch_max_records = positive(
        "sink.http.batch_max_records",
        raw.batch_max_records.map(|v| v as u64),
        defaults.batch_max_records as u64,
    )? as usize;
    let batch_max_bytes = positive(
        "sink.http.batch_max_bytes",
        raw.batch_max_bytes.map(|v| v as u64),
        defaults.batch_max_bytes as u64,
    )? as usize;
    let max_buffer_bytes = positive(
        "sink.http.max_buffer_bytes",
        raw.max_buffer_bytes.map(|v| v as u64),
        defaults.max_buffer_bytes as u64,
    )? as usize;
    if max_buffer_bytes < batch_max_bytes {
        return Err(ConfigError::new(
            "sink.http.max_buffer_bytes",
            format!("{max_buffer_bytes} is smaller than batch_max_bytes ({batch_max_bytes})"),
        ));
    }
    let flush_interval_ms = positive(
        "sink.http.flush_interval_ms",
        raw.flush_interval_ms,
        defaults.flush_interval_ms,
    )?;
    let backoff_initial_ms = positive(
        "sink.http.backoff_initial_ms",
        raw.backoff_initial_ms,
        defaults.backoff_initial_ms,
    )?;
    let backoff_max_ms = positive(
        "sink.http.backoff_max_ms",
        raw.backoff_max_ms,
        defaults.backoff_max_ms,
    )?;
    if backoff_max_ms < backoff_initial_ms {
        return Err(ConfigError::new(
            "sink.http.backoff_max_ms",
            format!("{backoff_max_ms} is smaller than backoff_initial_ms ({backoff_initial_ms})"),
        ));
    }
    Ok(HttpSink {
        cluster: raw.cluster,
        encoding: raw.encoding,
        path,
        authority,
        headers,
        timeout: Duration::from_millis(timeout_ms),
        queue: QueueLimits {
            batch_max_records,
            batch_max_bytes,
            flush_interval_ms,
            max_buffer_bytes,
            max_retries: raw.max_retries.unwrap_or(defaults.max_retries),
            backoff_initial_ms,
            backoff_max_ms,
            // Envoy answers a timed-out call itself; the extra second only guards against a
            // host that never answers, so a batch cannot stay in flight forever.
            response_deadline_ms: timeout_ms.saturating_add(1000),
            max_in_flight: positive(
                "sink.http.max_in_flight_batches",
                raw.max_in_flight_batches.map(|v| v as u64),
                defaults.max_in_flight as u64,
            )? as usize,
            drop_policy: raw.drop_policy.unwrap_or_default(),
        },
    })
}
