//! Compiling a [`RawAuditPolicy`] into an [`AuditPolicy`]: validate every value (errors carry
//! the JSON path), fill in the defaults (recorded headers, masked query parameters, the HTTP
//! sink's batching and retry limits) and refuse credentials in `record_headers`.

use crate::error::Quoted;
use crate::name_set::NameSet;
use std::time::Duration;

use super::otlp;
use super::raw::{RawAuditPolicy, RawHttpSink, RawSink, SinkEncoding};
use super::{AuditPolicy, HttpSink, QueueLimits, Sink};
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

const DEFAULT_TIMEOUT_MS: u64 = 5000;

fn header_name(path: String, name: &str) -> Result<String, ConfigError> {
    if !is_token(name) {
        return Err(ConfigError::new(
            path,
            format!("{} is not a valid header name", Quoted(name)),
        ));
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ConfigError::new(
            path,
            format!("{} must be lowercase", Quoted(name)),
        ));
    }
    Ok(name.to_string())
}

/// A default list as a set.
fn names_set(names: &[&str]) -> NameSet {
    let mut set = NameSet::new();
    for name in names {
        set.insert(name.to_string());
    }
    set
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
            None => names_set(&DEFAULT_RECORD_HEADERS),
            Some(list) => {
                let mut set = NameSet::new();
                for (i, name) in list.iter().enumerate() {
                    let path = format!("record_headers[{i}]");
                    let name = header_name(path.clone(), name)?;
                    if FORBIDDEN_HEADERS.contains(&name.as_str()) {
                        return Err(ConfigError::new(
                            path,
                            format!(
                                "{} carries credentials and is never recorded",
                                Quoted(&name)
                            ),
                        ));
                    }
                    set.insert(name);
                }
                set
            }
        };
        let redact_query_params = match raw.redact_query_params {
            None => names_set(&DEFAULT_REDACT_QUERY_PARAMS),
            Some(list) => {
                let mut set = NameSet::new();
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
                format!(
                    "{} is not a fraction between 0 and 1",
                    crate::error::json_path::float::display(sample_allowed)
                ),
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
        SinkEncoding::Otlp => otlp::LOGS_PATH,
    };
    let path = raw.path.unwrap_or_else(|| default_path.to_string());
    if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(ConfigError::new(
            "sink.http.path",
            format!(
                "{} must start with '/' and contain no spaces or control characters",
                Quoted(&path)
            ),
        ));
    }
    let authority = raw.authority.unwrap_or_else(|| raw.cluster.clone());
    if authority.is_empty() || authority.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(ConfigError::new(
            "sink.http.authority",
            format!("{} is not a valid authority", Quoted(&authority)),
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
