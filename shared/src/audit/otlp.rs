//! OTLP/HTTP logs for the HTTP sink (`"encoding": "otlp"`): a batch of records becomes one
//! protobuf `ExportLogsServiceRequest` (opentelemetry-proto `collector/logs/v1`) whose log
//! bodies are the records as JSON strings, and a collector's answer is judged by OTLP/HTTP's
//! rules (retry 429/502/503/504 honouring `Retry-After`, never retry another 4xx/5xx, count
//! `partial_success.rejected_log_records` as dropped).
//!
//! The few fields used are written by hand (a protobuf writer is 30 lines; a generated crate
//! would weigh more than the rest of the audit job in the .wasm).

use super::AuditFormat;

/// `Content-Type` of an OTLP/HTTP protobuf request.
pub const CONTENT_TYPE: &str = "application/x-protobuf";
/// Default request path of OTLP/HTTP logs.
pub const LOGS_PATH: &str = "/v1/logs";
/// The instrumentation scope named in every request.
pub const SCOPE_NAME: &str = "meshsight.audit";

/// Protobuf wire types used here.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    tag(out, field, LEN);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn fixed64_field(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, FIXED64);
    out.extend_from_slice(&v.to_le_bytes());
}

fn varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, VARINT);
    varint(out, v);
}

/// The number after `needle` (`"<key>":`) in a one-line JSON record: its first occurrence,
/// since the OCSF writer puts `severity_id` and `time` among the first top-level members,
/// before any nested object (a JSON string cannot hold the needle: its quotes are escaped). A
/// forward search stops within the first few hundred bytes of the record.
fn json_number(record: &[u8], needle: &[u8]) -> Option<u64> {
    let at = record.windows(needle.len()).position(|w| w == needle)? + needle.len();
    let digits = record.get(at..)?;
    let end = digits
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(digits.get(..end)?).ok()?.parse().ok()
}

/// OTel `SeverityNumber` of an OCSF `severity_id` (Informational 1 -> INFO 9, Low 2 -> INFO2
/// 10, Medium 3 -> WARN 13, High 4 -> ERROR 17, Critical 5 / Fatal 6 -> FATAL 21).
pub fn severity_number(ocsf_severity_id: u64) -> u64 {
    match ocsf_severity_id {
        1 => 9,
        2 => 10,
        3 => 13,
        4 => 17,
        5 | 6 => 21,
        _ => 0,
    }
}

/// Bytes of `v` as a varint.
fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Bytes of a length-delimited field (tags here are all one byte) holding `n` bytes.
fn len_field_len(n: usize) -> usize {
    1 + varint_len(n as u64) + n
}

/// Bytes of a `KeyValue` field with a string value (what [`key_value`] writes for `Str`).
fn str_key_value_len(key: &str, value: &str) -> usize {
    len_field_len(len_field_len(key.len()) + len_field_len(len_field_len(value.len())))
}

/// Writes a `KeyValue` with a string value, its sizes computed, not built in temporaries.
fn str_key_value(out: &mut Vec<u8>, field: u32, key: &str, value: &str) {
    let any = len_field_len(value.len());
    tag(out, field, LEN);
    varint(out, (len_field_len(key.len()) + len_field_len(any)) as u64);
    bytes_field(out, 1, key.as_bytes());
    tag(out, 2, LEN);
    varint(out, any as u64);
    bytes_field(out, 1, value.as_bytes());
}

/// What one NDJSON line becomes: its OCSF time (ns) and severity number, and the size of its
/// `LogRecord` message (`fixed`: the fields every log record has alike).
struct LogLine {
    time_ns: Option<u64>,
    severity: u64,
    size: usize,
}

impl LogLine {
    fn new(line: &[u8], format: AuditFormat, fixed: usize) -> LogLine {
        let (mut time_ns, mut severity) = (None, 0);
        let mut size = fixed + len_field_len(len_field_len(line.len()));
        if format == AuditFormat::Ocsf {
            time_ns = json_number(line, b"\"time\":").map(|ms| ms.saturating_mul(1_000_000));
            severity = json_number(line, b"\"severity_id\":").map_or(0, severity_number);
            if time_ns.is_some() {
                size += 9;
            }
            if severity > 0 {
                size += 1 + varint_len(severity);
            }
        }
        LogLine {
            time_ns,
            severity,
            size,
        }
    }
}

/// The next non-empty line of an NDJSON batch from `*at` (a loop, not iterator adapters: they
/// cost the module more bytes than the loop).
fn next_line<'a>(ndjson: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    while *at < ndjson.len() {
        let rest = ndjson.get(*at..)?;
        let len = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
        *at += len + 1;
        if len > 0 {
            return rest.get(..len);
        }
    }
    None
}

/// One `ExportLogsServiceRequest` holding every record of an NDJSON batch: one resource with
/// `resource` attributes, one scope, one log record per line with the record as its string
/// body, `observed_time_unix_nano`, and (OCSF) `time_unix_nano` and severity from the record.
///
/// Written into one allocation of the exact size: every message's size is computed first
/// (protobuf puts a message's size before it), so no message is built apart and copied into
/// its parent. A worker's heap keeps its high-water mark (Wasm memory never shrinks), and a
/// request built by nesting held the batch three times over at its peak.
pub fn export_logs_request(
    ndjson: &[u8],
    format: AuditFormat,
    resource: &[(&str, &str)],
    scope_version: &str,
    observed_ns: u64,
) -> Vec<u8> {
    let (schema, class) = match format {
        AuditFormat::Ocsf => ("ocsf", "ocsf.http_activity"),
        AuditFormat::Ecs => ("ecs", "ecs.http"),
    };
    // observed_time_unix_nano, the schema attribute and the event name: the same in every log.
    let fixed = 9 + str_key_value_len("meshsight.schema", schema) + len_field_len(class.len());
    let scope = len_field_len(SCOPE_NAME.len()) + len_field_len(scope_version.len());
    // Two passes over the lines (sizes, then bytes) rather than a vector of them: the lines'
    // numbers are found again in a few hundred bytes each.
    let mut scope_logs = len_field_len(scope);
    let mut at = 0;
    while let Some(line) = next_line(ndjson, &mut at) {
        scope_logs += len_field_len(LogLine::new(line, format, fixed).size);
    }
    let mut resource_msg = 0;
    for (k, v) in resource {
        resource_msg += str_key_value_len(k, v);
    }
    let resource_logs = len_field_len(resource_msg) + len_field_len(scope_logs);
    let mut out = Vec::with_capacity(len_field_len(resource_logs));
    // ExportLogsServiceRequest.resource_logs = 1
    tag(&mut out, 1, LEN);
    varint(&mut out, resource_logs as u64);
    // ResourceLogs.resource = 1: Resource.attributes = 1
    tag(&mut out, 1, LEN);
    varint(&mut out, resource_msg as u64);
    for (k, v) in resource {
        str_key_value(&mut out, 1, k, v);
    }
    // ResourceLogs.scope_logs = 2: ScopeLogs.scope = 1 (name 1, version 2), log_records = 2
    tag(&mut out, 2, LEN);
    varint(&mut out, scope_logs as u64);
    tag(&mut out, 1, LEN);
    varint(&mut out, scope as u64);
    bytes_field(&mut out, 1, SCOPE_NAME.as_bytes());
    bytes_field(&mut out, 2, scope_version.as_bytes());
    let mut at = 0;
    while let Some(line) = next_line(ndjson, &mut at) {
        let l = LogLine::new(line, format, fixed);
        tag(&mut out, 2, LEN);
        varint(&mut out, l.size as u64);
        // LogRecord: time_unix_nano 1, severity_number 2, body 5 (AnyValue.string_value 1),
        // attributes 6, observed_time_unix_nano 11, event_name 12.
        if let Some(ns) = l.time_ns {
            fixed64_field(&mut out, 1, ns);
        }
        if l.severity > 0 {
            varint_field(&mut out, 2, l.severity);
        }
        tag(&mut out, 5, LEN);
        varint(&mut out, len_field_len(line.len()) as u64);
        bytes_field(&mut out, 1, line);
        str_key_value(&mut out, 6, "meshsight.schema", schema);
        fixed64_field(&mut out, 11, observed_ns);
        bytes_field(&mut out, 12, class.as_bytes());
    }
    out
}

/// Reads one varint at `*at`.
fn read_varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// Walks a message's fields: `(field, wire type, varint value or payload)`; stops at the first
/// malformed byte.
fn fields(buf: &[u8]) -> Vec<(u32, u8, u64, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let Some(key) = read_varint(buf, &mut at) else {
            break;
        };
        let (field, wire) = ((key >> 3) as u32, (key & 7) as u8);
        match wire {
            VARINT => match read_varint(buf, &mut at) {
                Some(v) => out.push((field, wire, v, &buf[..0])),
                None => break,
            },
            FIXED64 => {
                let Some(b) = buf.get(at..at + 8) else { break };
                at += 8;
                out.push((field, wire, 0, b));
            }
            LEN => {
                let Some(n) = read_varint(buf, &mut at) else {
                    break;
                };
                let Some(b) = usize::try_from(n)
                    .ok()
                    .and_then(|n| buf.get(at..at.checked_add(n)?))
                else {
                    break;
                };
                at += b.len();
                out.push((field, wire, 0, b));
            }
            5 => {
                let Some(b) = buf.get(at..at + 4) else { break };
                at += 4;
                out.push((field, wire, 0, b));
            }
            _ => break,
        }
    }
    out
}

/// `partial_success` of an `ExportLogsServiceResponse`: records the collector rejected, and its
/// message. `(0, "")` for an empty or unreadable answer (a plain success).
pub fn partial_success(response: &[u8]) -> (u64, String) {
    let mut rejected = 0;
    let mut message = String::new();
    for (field, wire, _, payload) in fields(response) {
        if field == 1 && wire == LEN {
            for (f, w, v, p) in fields(payload) {
                match (f, w) {
                    (1, VARINT) => rejected = v,
                    (2, LEN) => message = String::from_utf8_lossy(p).into_owned(),
                    _ => {}
                }
            }
        }
    }
    (rejected, message)
}

/// What an OTLP collector's answer to a batch means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportOutcome {
    /// 2xx: delivered, except `rejected` records the collector refused (counted as dropped).
    Accepted {
        /// `partial_success.rejected_log_records`.
        rejected: u64,
        /// `partial_success.error_message`.
        message: String,
    },
    /// 429, 502, 503, 504 or no answer (reset, timeout): retry, not before `after_ms` when
    /// the collector said so (`Retry-After` in seconds).
    Retry {
        /// `Retry-After`, in ms.
        after_ms: Option<u64>,
    },
    /// Any other status (400 and the rest): the batch would fail again; drop it.
    Rejected {
        /// The status.
        status: u16,
    },
}

/// Judges a collector's answer by OTLP/HTTP's rules.
pub fn export_outcome(
    status: Option<u16>,
    retry_after: Option<&str>,
    body: &[u8],
) -> ExportOutcome {
    match status {
        Some(s) if (200..300).contains(&s) => {
            let (rejected, message) = partial_success(body);
            ExportOutcome::Accepted { rejected, message }
        }
        None | Some(429 | 502 | 503 | 504) => ExportOutcome::Retry {
            after_ms: retry_after
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| s.saturating_mul(1000)),
        },
        Some(status) => ExportOutcome::Rejected { status },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// `KeyValue { key = 1; AnyValue value = 2 }` with a string value.
    fn key_value(out: &mut Vec<u8>, field: u32, key: &str, value: AnyValue<'_>) {
        let mut any = Vec::new();
        match value {
            AnyValue::Str(s) => bytes_field(&mut any, 1, s.as_bytes()),
        }
        let mut kv = Vec::with_capacity(key.len() + any.len() + 4);
        bytes_field(&mut kv, 1, key.as_bytes());
        bytes_field(&mut kv, 2, &any);
        bytes_field(out, field, &kv);
    }

    /// The `AnyValue` kinds written.
    #[derive(Debug, Clone, Copy)]
    enum AnyValue<'a> {
        Str(&'a str),
    }

    /// The writer before the exact-size one: each message built apart and copied into its parent
    /// (the oracle the exact-size writer is checked against, byte for byte).
    fn nested_export_logs_request(
        ndjson: &[u8],
        format: AuditFormat,
        resource: &[(&str, &str)],
        scope_version: &str,
        observed_ns: u64,
    ) -> Vec<u8> {
        let mut scope_logs = Vec::with_capacity(ndjson.len() + ndjson.len() / 4 + 64);
        let mut scope = Vec::new();
        bytes_field(&mut scope, 1, SCOPE_NAME.as_bytes());
        bytes_field(&mut scope, 2, scope_version.as_bytes());
        bytes_field(&mut scope_logs, 1, &scope);
        let (schema, class) = match format {
            AuditFormat::Ocsf => ("ocsf", "ocsf.http_activity"),
            AuditFormat::Ecs => ("ecs", "ecs.http"),
        };
        let mut log = Vec::new();
        for line in ndjson.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            log.clear();
            if format == AuditFormat::Ocsf {
                if let Some(ms) = json_number(line, b"\"time\":") {
                    fixed64_field(&mut log, 1, ms.saturating_mul(1_000_000));
                }
                if let Some(id) = json_number(line, b"\"severity_id\":") {
                    let n = severity_number(id);
                    if n > 0 {
                        varint_field(&mut log, 2, n);
                    }
                }
            }
            let mut body = Vec::with_capacity(line.len() + 4);
            bytes_field(&mut body, 1, line);
            bytes_field(&mut log, 5, &body);
            key_value(&mut log, 6, "meshsight.schema", AnyValue::Str(schema));
            fixed64_field(&mut log, 11, observed_ns);
            bytes_field(&mut log, 12, class.as_bytes());
            bytes_field(&mut scope_logs, 2, &log);
        }
        let mut resource_msg = Vec::new();
        for (k, v) in resource {
            key_value(&mut resource_msg, 1, k, AnyValue::Str(v));
        }
        let mut resource_logs = Vec::with_capacity(scope_logs.len() + resource_msg.len() + 16);
        bytes_field(&mut resource_logs, 1, &resource_msg);
        bytes_field(&mut resource_logs, 2, &scope_logs);
        let mut request = Vec::with_capacity(resource_logs.len() + 8);
        bytes_field(&mut request, 1, &resource_logs);
        request
    }

    #[test]
    fn the_exact_size_request_is_the_nested_writers_byte_for_byte_in_one_allocation() {
        let ocsf = |severity: u64, time: u64, pad: usize| {
            format!(
                "{{\"severity_id\":{severity},\"time\":{time},\"x\":\"{}\"}}",
                "a".repeat(pad)
            )
        };
        // Lengths on each side of the varint steps (127/128 and 16383/16384 bytes), severities
        // with and without a number, a record without time, ECS records, an empty batch.
        let mut batches: Vec<(String, AuditFormat)> = vec![(String::new(), AuditFormat::Ocsf)];
        for pad in [0, 60, 61, 62, 90, 16_300, 16_330, 16_340, 70_000] {
            let mut b = String::new();
            for severity in 0..8 {
                b.push_str(&ocsf(severity, 1_700_000_000_000 + severity, pad));
                b.push('\n');
            }
            b.push_str("{\"no_time\":true}\n\n");
            batches.push((b.clone(), AuditFormat::Ocsf));
            batches.push((b, AuditFormat::Ecs));
        }
        let long = "r".repeat(200);
        let resources: [&[(&str, &str)]; 3] = [
            &[],
            &[("service.name", "meshsight")],
            &[("service.name", "meshsight"), ("k8s.namespace.name", &long)],
        ];
        for (batch, format) in &batches {
            for resource in resources {
                let req = export_logs_request(batch.as_bytes(), *format, resource, "0.1.0", 42);
                let old =
                    nested_export_logs_request(batch.as_bytes(), *format, resource, "0.1.0", 42);
                assert_eq!(
                    req,
                    old,
                    "{format:?}, {} bytes, {} attributes",
                    batch.len(),
                    resource.len()
                );
                assert_eq!(req.capacity(), req.len(), "sized exactly");
            }
        }
    }

    #[test]
    fn varints_are_little_endian_base_128() {
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        let mut at = 0;
        assert_eq!(read_varint(&out, &mut at), Some(300));
    }

    #[test]
    fn a_batch_becomes_one_request_with_a_log_record_per_line() {
        let ndjson =
            b"{\"severity_id\":4,\"time\":1700000000003}\n{\"severity_id\":1,\"time\":5}\n";
        let req = export_logs_request(
            ndjson,
            AuditFormat::Ocsf,
            &[("service.name", "meshsight")],
            "0.1.0",
            42,
        );
        let top = fields(&req);
        assert_eq!(top.len(), 1);
        let resource_logs = fields(top[0].3);
        let scope_logs = fields(resource_logs[1].3);
        let logs: Vec<_> = scope_logs.iter().filter(|f| f.0 == 2).collect();
        assert_eq!(logs.len(), 2);
        let first = fields(logs[0].3);
        assert_eq!(first[0].0, 1);
        assert_eq!(
            u64::from_le_bytes(first[0].3.try_into().unwrap()),
            1_700_000_000_003_000_000
        );
        assert_eq!((first[1].0, first[1].2), (2, 17));
        let body = fields(first[2].3);
        assert_eq!(body[0].3, b"{\"severity_id\":4,\"time\":1700000000003}");
    }

    #[test]
    fn the_record_time_is_the_top_level_one_not_a_lookalike() {
        let record = br#"{"activity_name":"x\"time\":1","severity_id":2,"start_time":5,"time":17,"trace":{"time":9}}"#;
        assert_eq!(json_number(record, b"\"time\":"), Some(17));
        assert_eq!(json_number(record, b"\"severity_id\":"), Some(2));
        assert_eq!(json_number(b"{}", b"\"time\":"), None);
    }

    #[test]
    fn answers_follow_otlp_http_retry_rules() {
        assert_eq!(
            export_outcome(Some(503), Some("2"), b""),
            ExportOutcome::Retry {
                after_ms: Some(2000)
            }
        );
        assert_eq!(
            export_outcome(Some(429), None, b""),
            ExportOutcome::Retry { after_ms: None }
        );
        assert_eq!(
            export_outcome(None, None, b""),
            ExportOutcome::Retry { after_ms: None }
        );
        assert_eq!(
            export_outcome(Some(400), Some("1"), b""),
            ExportOutcome::Rejected { status: 400 }
        );
        assert_eq!(
            export_outcome(Some(500), None, b""),
            ExportOutcome::Rejected { status: 500 }
        );
        // partial_success { rejected_log_records: 3, error_message: "bad" }
        let mut ps = Vec::new();
        varint_field(&mut ps, 1, 3);
        bytes_field(&mut ps, 2, b"bad");
        let mut resp = Vec::new();
        bytes_field(&mut resp, 1, &ps);
        assert_eq!(
            export_outcome(Some(200), None, &resp),
            ExportOutcome::Accepted {
                rejected: 3,
                message: "bad".into()
            }
        );
        assert_eq!(
            export_outcome(Some(200), None, b""),
            ExportOutcome::Accepted {
                rejected: 0,
                message: String::new()
            }
        );
    }
}
