//! Building an audit record from what the proxy saw of one HTTP exchange, and rendering it as
//! OCSF 1.7.0 HTTP Activity or as ECS. The field mapping is documented in
//! `filters/audit/README.md`.

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::decision::{AllowlistDecision, AllowlistOutcome, MirrorDecision, MirrorReason};
use crate::headers::{header_value, split_authority};
use crate::identity::{parse_socket_address, SpiffeId};

use super::policy::{AuditFormat, AuditPolicy};
use super::redact::{redact_query, select_headers};

/// OCSF schema version the records follow.
pub const OCSF_VERSION: &str = "1.7.0";
/// ECS version the `ecs` records follow.
pub const ECS_VERSION: &str = "8.11.0";
/// Product name in every record.
pub const PRODUCT_NAME: &str = "meshsight";
/// Product version in every record.
pub const PRODUCT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Istio workload identity of one side of the exchange (from peer metadata).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerWorkload {
    /// Kubernetes namespace.
    pub namespace: Option<String>,
    /// Workload name (e.g. the Deployment).
    pub workload: Option<String>,
    /// Canonical service name.
    pub service: Option<String>,
}

impl PeerWorkload {
    fn is_empty(&self) -> bool {
        self.namespace.is_none() && self.workload.is_none() && self.service.is_none()
    }
}

/// Envoy response flags (the `response.flags` bitmask), by bit, with their short names.
pub const RESPONSE_FLAGS: [(u64, &str); 29] = [
    (1 << 0, "LH"),
    (1 << 1, "UH"),
    (1 << 2, "UT"),
    (1 << 3, "LR"),
    (1 << 4, "UR"),
    (1 << 5, "UF"),
    (1 << 6, "UC"),
    (1 << 7, "UO"),
    (1 << 8, "NR"),
    (1 << 9, "DI"),
    (1 << 10, "FI"),
    (1 << 11, "RL"),
    (1 << 12, "UAEX"),
    (1 << 13, "RLSE"),
    (1 << 14, "DC"),
    (1 << 15, "URX"),
    (1 << 16, "SI"),
    (1 << 17, "IH"),
    (1 << 18, "DPE"),
    (1 << 19, "UMSDR"),
    (1 << 20, "RFCF"),
    (1 << 21, "NFCF"),
    (1 << 22, "DT"),
    (1 << 23, "UPE"),
    (1 << 24, "NC"),
    (1 << 25, "OM"),
    (1 << 26, "DF"),
    (1 << 27, "DO"),
    (1 << 28, "DR"),
];

/// Flags meaning the upstream failed (no healthy host, connect failure, reset, timeout...).
const UPSTREAM_FAILURE_FLAGS: [&str; 9] = ["UH", "UT", "UR", "UF", "UC", "UO", "URX", "UPE", "NC"];
/// Flags meaning the client went away before the response completed.
const CLIENT_ABORT_FLAGS: [&str; 2] = ["DC", "DR"];

/// Names of the flags set in an Envoy `response.flags` bitmask.
pub fn response_flag_names(bits: u64) -> Vec<String> {
    RESPONSE_FLAGS
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, name)| (*name).to_string())
        .collect()
}

/// Everything the proxy knows about one finished HTTP exchange; the filter fills it from
/// headers and properties at stream end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpExchange {
    /// `:method`.
    pub method: String,
    /// `:scheme`.
    pub scheme: String,
    /// `:authority` (host and optional port).
    pub authority: String,
    /// `:path` including the query string, as received.
    pub path: String,
    /// Protocol, e.g. `HTTP/1.1`, `HTTP/2`.
    pub protocol: Option<String>,
    /// All request headers (selection and redaction happen when the record is built).
    pub request_headers: Vec<(String, String)>,
    /// All response headers (empty when no response was sent).
    pub response_headers: Vec<(String, String)>,
    /// Response status; `None` (or 0) when no response was sent (client abort, reset).
    pub status: Option<u16>,
    /// Request size in bytes (headers and body), when known.
    pub request_bytes: Option<u64>,
    /// Response size in bytes (headers and body), when known.
    pub response_bytes: Option<u64>,
    /// Start of the request, ns since the Unix epoch.
    pub start_ns: u64,
    /// End of the exchange, ns since the Unix epoch.
    pub end_ns: u64,
    /// Downstream (client) address `ip:port`.
    pub source_address: Option<String>,
    /// Local (destination) address `ip:port`.
    pub destination_address: Option<String>,
    /// Istio metadata of the downstream peer.
    pub source_peer: PeerWorkload,
    /// Istio metadata of the upstream peer (or of this workload on inbound traffic).
    pub destination_peer: PeerWorkload,
    /// mTLS peer identity (SPIFFE ID from the client certificate's URI SAN).
    pub peer_identity: Option<String>,
    /// `x-request-id`.
    pub request_id: Option<String>,
    /// The allowlist filter's decision, when it ran.
    pub allowlist: Option<AllowlistDecision>,
    /// The mirror filter's decision, when it ran.
    pub mirror: Option<MirrorDecision>,
    /// Envoy response flags bitmask.
    pub response_flags: u64,
    /// Envoy response code details (`via_upstream`, `upstream_reset_before_response_started{...}`).
    pub response_code_details: Option<String>,
}

impl HttpExchange {
    /// Fills method, scheme, authority, path and request id from request headers, keeping the
    /// headers for selection.
    pub fn from_request_headers(headers: Vec<(String, String)>) -> Self {
        let mut ex = HttpExchange::default();
        for (name, value) in &headers {
            match name.as_str() {
                ":method" => ex.method = value.clone(),
                ":scheme" => ex.scheme = value.clone(),
                ":authority" => ex.authority = value.clone(),
                ":path" => ex.path = value.clone(),
                "host" if ex.authority.is_empty() => ex.authority = value.clone(),
                "x-request-id" => ex.request_id = Some(value.clone()),
                _ => {}
            }
        }
        ex.request_headers = headers;
        ex
    }

    fn request_header(&self, name: &str) -> Option<&str> {
        header_value(&self.request_headers, name)
    }

    /// The trace id: from W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`) or B3
    /// (`x-b3-traceid`, or the first field of single-header `b3`).
    pub fn trace_id(&self) -> Option<String> {
        if let Some(tp) = self.request_header("traceparent") {
            let parts: Vec<&str> = tp.trim().split('-').collect();
            if parts.len() >= 4
                && parts[1].len() == 32
                && is_hex(parts[1])
                && parts[1] != "0".repeat(32)
            {
                return Some(parts[1].to_ascii_lowercase());
            }
        }
        let b3 = self
            .request_header("x-b3-traceid")
            .map(str::trim)
            .or_else(|| {
                self.request_header("b3")
                    .and_then(|v| v.trim().split('-').next())
            });
        b3.filter(|id| (id.len() == 16 || id.len() == 32) && is_hex(id))
            .map(str::to_ascii_lowercase)
    }
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// OCSF HTTP Activity `activity_id` for a method (Connect 1, Delete 2, Get 3, Head 4, Options 5,
/// Post 6, Put 7, Trace 8, Patch 9, Other 99). Methods are case-sensitive.
pub fn activity_id(method: &str) -> u32 {
    match method {
        "CONNECT" => 1,
        "DELETE" => 2,
        "GET" => 3,
        "HEAD" => 4,
        "OPTIONS" => 5,
        "POST" => 6,
        "PUT" => 7,
        "TRACE" => 8,
        "PATCH" => 9,
        _ => 99,
    }
}

fn activity_name(id: u32) -> &'static str {
    match id {
        1 => "Connect",
        2 => "Delete",
        3 => "Get",
        4 => "Head",
        5 => "Options",
        6 => "Post",
        7 => "Put",
        8 => "Trace",
        9 => "Patch",
        _ => "Other",
    }
}

/// The security-control outcome (OCSF `action_id`/`disposition_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disposition {
    /// OCSF `action_id`: 1 Allowed, 2 Denied, 3 Observed.
    pub action_id: u32,
    /// OCSF `action` caption.
    pub action: &'static str,
    /// OCSF `disposition_id`: 1 Allowed, 2 Blocked, 17 Logged, 20 Count, 25 Rejected.
    pub disposition_id: u32,
    /// OCSF `disposition` caption.
    pub disposition: &'static str,
}

/// Maps the allowlist decision: allowed -> Allowed/Allowed; denied -> Denied/Blocked;
/// malformed -> Denied/Rejected; would-deny (monitor mode) -> Allowed/Count (let through,
/// counted as a would-be block); no allowlist in the chain -> Observed/Logged.
pub fn disposition(decision: Option<&AllowlistDecision>) -> Disposition {
    let (action_id, action, disposition_id, disposition) = match decision.map(|d| d.outcome) {
        Some(AllowlistOutcome::Allowed) => (1, "Allowed", 1, "Allowed"),
        Some(AllowlistOutcome::Denied) => (2, "Denied", 2, "Blocked"),
        Some(AllowlistOutcome::Malformed) => (2, "Denied", 25, "Rejected"),
        Some(AllowlistOutcome::WouldDeny) => (1, "Allowed", 20, "Count"),
        None => (3, "Observed", 17, "Logged"),
    };
    Disposition {
        action_id,
        action,
        disposition_id,
        disposition,
    }
}

/// One audit record: the exchange after selection and redaction, with its derived fields.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    exchange: HttpExchange,
    /// Path without the query string.
    pub url_path: String,
    /// Redacted query string (without `?`), when there was one.
    pub query: Option<String>,
    /// Host from the authority.
    pub hostname: Option<String>,
    /// Port from the authority, or the scheme's default.
    pub port: Option<u16>,
    /// Recorded request headers (allow-listed, redacted).
    pub request_headers: Vec<(String, String)>,
    /// Recorded response headers (allow-listed, redacted).
    pub response_headers: Vec<(String, String)>,
    /// `x-forwarded-for` addresses that parse as IPs.
    pub x_forwarded_for: Vec<String>,
    /// The raw `x-forwarded-for`, kept only when some entry is not an IP.
    pub x_forwarded_for_raw: Option<String>,
    /// Trace id.
    pub trace_id: Option<String>,
    /// Security-control outcome.
    pub disposition: Disposition,
    /// OCSF `severity_id`.
    pub severity_id: u32,
    /// Names of the Envoy response flags set.
    pub response_flags: Vec<String>,
}

impl AuditRecord {
    /// Builds the record for `exchange` under `policy` (header allow-list, query redaction).
    pub fn build(exchange: HttpExchange, policy: &AuditPolicy) -> Self {
        let (raw_path, raw_query) = match exchange.path.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q)),
            None => (
                exchange.path.split('#').next().unwrap_or("").to_string(),
                None,
            ),
        };
        let query = raw_query.map(|q| redact_query(q, &policy.redact_query_params));
        let (hostname, explicit_port) = match split_authority(&exchange.authority) {
            ("", _) => (None, None),
            (host, port) => (
                Some(host.to_string()),
                port.and_then(|p| p.parse::<u16>().ok()),
            ),
        };
        let port = explicit_port.or(match exchange.scheme.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        });
        let request_headers = select_headers(
            &exchange.request_headers,
            &policy.record_headers,
            &policy.redact_query_params,
        );
        let response_headers = select_headers(
            &exchange.response_headers,
            &policy.record_headers,
            &policy.redact_query_params,
        );
        let xff = exchange
            .request_header("x-forwarded-for")
            .map(str::to_string);
        let mut x_forwarded_for = Vec::new();
        let mut xff_clean = true;
        if let Some(xff) = &xff {
            for part in xff.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                match parse_socket_address(part) {
                    Some((ip, _)) => x_forwarded_for.push(ip.to_string()),
                    None => xff_clean = false,
                }
            }
        }
        let trace_id = exchange.trace_id();
        let disposition = disposition(exchange.allowlist.as_ref());
        let response_flags = response_flag_names(exchange.response_flags);
        let signature = exchange
            .mirror
            .as_ref()
            .is_some_and(|m| m.reason == MirrorReason::Signature || !m.signatures.is_empty());
        let status = exchange.status.unwrap_or(0);
        let severity_id = if signature {
            4
        } else if disposition.action_id == 2 {
            3
        } else if disposition.disposition_id == 20 || status >= 500 || status == 0 {
            2
        } else {
            1
        };
        AuditRecord {
            url_path: raw_path,
            query,
            hostname,
            port,
            request_headers,
            response_headers,
            x_forwarded_for,
            x_forwarded_for_raw: if xff_clean { None } else { xff },
            trace_id,
            disposition,
            severity_id,
            response_flags,
            exchange,
        }
    }

    /// The exchange the record was built from (unredacted: do not serialize it).
    pub fn exchange(&self) -> &HttpExchange {
        &self.exchange
    }

    fn status(&self) -> Option<u16> {
        self.exchange.status.filter(|s| *s != 0)
    }

    fn signature_mirrored(&self) -> bool {
        self.exchange
            .mirror
            .as_ref()
            .is_some_and(|m| m.reason == MirrorReason::Signature || !m.signatures.is_empty())
    }

    /// Whether Envoy saw the upstream fail (connect failure, reset, timeout, no healthy host).
    pub fn upstream_failure(&self) -> bool {
        self.response_flags
            .iter()
            .any(|f| UPSTREAM_FAILURE_FLAGS.contains(&f.as_str()))
    }

    /// Whether the client went away before the response completed.
    pub fn client_aborted(&self) -> bool {
        self.response_flags
            .iter()
            .any(|f| CLIENT_ABORT_FLAGS.contains(&f.as_str()))
            || self
                .exchange
                .response_code_details
                .as_deref()
                .is_some_and(|d| d.starts_with("downstream_remote_disconnect"))
    }

    fn url_string(&self) -> String {
        let mut s = String::new();
        if !self.exchange.scheme.is_empty() {
            s.push_str(&self.exchange.scheme);
            s.push_str("://");
        }
        s.push_str(&self.exchange.authority);
        s.push_str(&self.url_path);
        if let Some(q) = &self.query {
            s.push('?');
            s.push_str(q);
        }
        s
    }

    fn duration_ms(&self) -> u64 {
        self.exchange.end_ns.saturating_sub(self.exchange.start_ns) / 1_000_000
    }

    /// Renders the record in the policy's format as one JSON line (no trailing newline).
    pub fn to_json_line(&self, format: AuditFormat) -> String {
        match format {
            // Straight to text: serializing borrowed structs cannot fail.
            AuditFormat::Ocsf => serde_json::to_string(&self.ocsf_event()).unwrap_or_default(),
            AuditFormat::Ecs => self.to_ecs().to_string(),
        }
    }

    /// The OCSF 1.7.0 HTTP Activity (class 4002) event, with the `security_control` profile
    /// (and `trace` when a trace id is known), as a JSON value.
    pub fn to_ocsf(&self) -> Value {
        serde_json::to_value(self.ocsf_event()).unwrap_or(Value::Null)
    }

    /// The Elastic Common Schema document (ECS 8.11 field names; meshsight specifics under
    /// `meshsight`).
    pub fn to_ecs(&self) -> Value {
        let ex = &self.exchange;
        let d = self.disposition;
        let outcome = match self.status() {
            Some(code) if code < 400 => "success",
            Some(_) => "failure",
            None => "unknown",
        };
        let mut types = vec!["access"];
        types.push(if d.action_id == 2 {
            "denied"
        } else {
            "allowed"
        });
        let mut event = json!({
            "kind": "event",
            "category": ["network", "web"],
            "type": types,
            "action": d.disposition.to_ascii_lowercase().replace(' ', "-"),
            "outcome": outcome,
            "start": rfc3339_ms(ex.start_ns),
            "end": rfc3339_ms(ex.end_ns),
            "duration": ex.end_ns.saturating_sub(ex.start_ns),
            "dataset": "meshsight.audit",
            "module": "meshsight",
            "severity": self.severity_id,
        });
        if let (Some(id), Some(obj)) = (&ex.request_id, event.as_object_mut()) {
            obj.insert("id".into(), json!(id));
        }
        let mut doc = Map::new();
        doc.insert("@timestamp".into(), json!(rfc3339_ms(ex.end_ns)));
        doc.insert("ecs".into(), json!({"version": ECS_VERSION}));
        doc.insert("event".into(), event);
        doc.insert(
            "observer".into(),
            json!({"product": PRODUCT_NAME, "vendor": PRODUCT_NAME, "version": PRODUCT_VERSION, "type": "proxy"}),
        );
        let mut request = Map::new();
        request.insert("method".into(), json!(ex.method));
        if let Some(n) = ex.request_bytes {
            request.insert("bytes".into(), json!(n));
        }
        insert_opt(&mut request, "id", ex.request_id.as_deref());
        if !self.request_headers.is_empty() {
            request.insert("headers".into(), headers_map(&self.request_headers));
        }
        let mut http = Map::new();
        http.insert("request".into(), Value::Object(request));
        if let Some(code) = self.status() {
            let mut response = Map::new();
            response.insert("status_code".into(), json!(code));
            if let Some(n) = ex.response_bytes {
                response.insert("bytes".into(), json!(n));
            }
            if !self.response_headers.is_empty() {
                response.insert("headers".into(), headers_map(&self.response_headers));
            }
            http.insert("response".into(), Value::Object(response));
        }
        if let Some(v) = ex.protocol.as_deref().and_then(|p| p.strip_prefix("HTTP/")) {
            http.insert("version".into(), json!(v));
        }
        doc.insert("http".into(), Value::Object(http));
        let mut url = Map::new();
        url.insert("full".into(), json!(self.url_string()));
        url.insert("path".into(), json!(self.url_path));
        insert_opt(&mut url, "domain", self.hostname.as_deref());
        if let Some(p) = self.port {
            url.insert("port".into(), json!(p));
        }
        if !ex.scheme.is_empty() {
            url.insert("scheme".into(), json!(ex.scheme));
        }
        insert_opt(&mut url, "query", self.query.as_deref());
        doc.insert("url".into(), Value::Object(url));
        if let Some(ua) = ex.request_header("user-agent") {
            doc.insert("user_agent".into(), json!({"original": ua}));
        }
        if let Some(src) = ecs_endpoint(ex.source_address.as_deref()) {
            doc.insert("source".into(), src);
        }
        if let Some(dst) = ecs_endpoint(ex.destination_address.as_deref()) {
            doc.insert("destination".into(), dst);
        }
        if !self.x_forwarded_for.is_empty() {
            doc.insert(
                "network".into(),
                json!({"protocol": "http", "forwarded_ip": self.x_forwarded_for[0]}),
            );
        } else {
            doc.insert("network".into(), json!({"protocol": "http"}));
        }
        if let Some(id) = &ex.peer_identity {
            doc.insert(
                "tls".into(),
                json!({"client": {"x509": {"alternative_names": [id]}}}),
            );
        }
        if let Some(t) = &self.trace_id {
            doc.insert("trace".into(), json!({"id": t}));
        }
        if let Some(rule) = ex.allowlist.as_ref().and_then(|a| a.rule.as_deref()) {
            doc.insert("rule".into(), json!({"name": rule}));
        }
        let mut meshsight = match serde_json::to_value(self.details()) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        if !ex.source_peer.is_empty() {
            meshsight.insert("source_peer".into(), peer_json(&ex.source_peer));
        }
        if !ex.destination_peer.is_empty() {
            meshsight.insert("destination_peer".into(), peer_json(&ex.destination_peer));
        }
        doc.insert("meshsight".into(), Value::Object(meshsight));
        Value::Object(doc)
    }
}

fn severity_name(id: u32) -> &'static str {
    match id {
        1 => "Informational",
        2 => "Low",
        3 => "Medium",
        4 => "High",
        _ => "Unknown",
    }
}

fn insert_opt(map: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(v) = value {
        map.insert(key.to_string(), json!(v));
    }
}

fn headers_map(headers: &[(String, String)]) -> Value {
    let mut m = Map::new();
    for (n, v) in headers {
        match m.get_mut(n) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(v);
            }
            _ => {
                m.insert(n.clone(), json!(v));
            }
        }
    }
    Value::Object(m)
}

fn peer_json(peer: &PeerWorkload) -> Value {
    let mut m = Map::new();
    insert_opt(&mut m, "namespace", peer.namespace.as_deref());
    insert_opt(&mut m, "workload", peer.workload.as_deref());
    insert_opt(&mut m, "service", peer.service.as_deref());
    Value::Object(m)
}

fn ecs_endpoint(address: Option<&str>) -> Option<Value> {
    let (ip, port) = address.and_then(parse_socket_address)?;
    let mut m = Map::new();
    m.insert("address".into(), json!(ip.to_string()));
    m.insert("ip".into(), json!(ip.to_string()));
    if let Some(p) = port {
        m.insert("port".into(), json!(p));
    }
    Some(Value::Object(m))
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for ns since the epoch.
pub fn rfc3339_ms(ns: u64) -> String {
    let ms = ns / 1_000_000;
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let sod = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60,
        ms % 1000
    )
}

// ---- OCSF serialization -------------------------------------------------------------------
// Typed, borrowing views of the record: serialized straight to JSON text, with no intermediate
// `Value` tree (this runs once per request inside the proxy).

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Serialize)]
struct OcsfEvent<'a> {
    class_uid: u32,
    class_name: &'static str,
    category_uid: u32,
    category_name: &'static str,
    activity_id: u32,
    activity_name: &'a str,
    type_uid: u32,
    type_name: &'static str,
    severity_id: u32,
    severity: &'static str,
    time: u64,
    start_time: u64,
    end_time: u64,
    duration: u64,
    status_id: u32,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_detail: Option<&'a str>,
    metadata: OcsfMetadata<'a>,
    http_request: OcsfRequest<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_response: Option<OcsfResponse<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_endpoint: Option<OcsfEndpoint<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dst_endpoint: Option<OcsfEndpoint<'a>>,
    action_id: u32,
    action: &'static str,
    disposition_id: u32,
    disposition: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    firewall_rule: Option<OcsfNamed<'a>>,
    #[serde(skip_serializing_if = "is_false")]
    is_alert: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace: Option<OcsfTrace<'a>>,
    unmapped: OcsfUnmapped<'a>,
}

#[derive(Serialize)]
struct OcsfNamed<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct OcsfTrace<'a> {
    uid: &'a str,
}

#[derive(Serialize)]
struct OcsfProduct {
    name: &'static str,
    vendor_name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct OcsfMetadata<'a> {
    version: &'static str,
    product: OcsfProduct,
    log_name: &'static str,
    profiles: &'static [&'static str],
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_uid: Option<&'a str>,
}

#[derive(Serialize)]
struct OcsfUrl<'a> {
    path: &'a str,
    url_string: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    #[serde(skip_serializing_if = "str::is_empty")]
    scheme: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_string: Option<&'a str>,
}

#[derive(Serialize)]
struct OcsfHeader<'a> {
    name: &'a str,
    value: &'a str,
}

fn header_views(headers: &[(String, String)]) -> Vec<OcsfHeader<'_>> {
    headers
        .iter()
        .map(|(name, value)| OcsfHeader { name, value })
        .collect()
}

#[derive(Serialize)]
struct OcsfRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    http_method: Option<&'a str>,
    url: OcsfUrl<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    length: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    http_headers: Vec<OcsfHeader<'a>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    x_forwarded_for: &'a [String],
}

#[derive(Serialize)]
struct OcsfResponse<'a> {
    code: u16,
    latency: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    length: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    http_headers: Vec<OcsfHeader<'a>>,
}

#[derive(Serialize)]
struct OcsfOwner<'a> {
    uid: &'a str,
    type_id: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<&'a str>,
}

#[derive(Serialize)]
struct OcsfEndpoint<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    svc_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<OcsfOwner<'a>>,
}

fn endpoint_view<'a>(
    address: Option<&str>,
    peer: &'a PeerWorkload,
    identity: Option<&'a str>,
) -> Option<OcsfEndpoint<'a>> {
    let (ip, port) = match address.and_then(parse_socket_address) {
        Some((ip, port)) => (Some(ip.to_string()), port),
        None => (None, None),
    };
    let owner = identity.map(|id| {
        let workload = SpiffeId::parse(id);
        let ns = workload.and_then(|w| w.namespace());
        let sa = workload.and_then(|w| w.service_account());
        OcsfOwner {
            uid: id,
            type_id: 4,
            kind: "Service",
            name: sa,
            domain: ns,
        }
    });
    let named = ip.is_some() || peer.workload.is_some() || peer.service.is_some();
    let endpoint = OcsfEndpoint {
        // network_endpoint needs one of ip/name/svc_name/uid...: the identity names it.
        uid: if named { None } else { identity },
        ip,
        port,
        name: peer.workload.as_deref(),
        svc_name: peer.service.as_deref(),
        domain: peer.namespace.as_deref(),
        owner,
    };
    let empty = endpoint.ip.is_none()
        && endpoint.name.is_none()
        && endpoint.svc_name.is_none()
        && endpoint.domain.is_none()
        && endpoint.uid.is_none();
    if empty {
        None
    } else {
        Some(endpoint)
    }
}

#[derive(Serialize)]
struct MeshsightDetails<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    allowlist: Option<&'a AllowlistDecision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mirror: Option<&'a MirrorDecision>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    response_flags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    response_code_details: Option<&'a str>,
    upstream_failure: bool,
    client_aborted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_forwarded_for_raw: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_method: Option<&'a str>,
}

#[derive(Serialize)]
struct OcsfUnmapped<'a> {
    meshsight: MeshsightDetails<'a>,
}

fn type_name(activity: u32) -> &'static str {
    match activity {
        1 => "HTTP Activity: Connect",
        2 => "HTTP Activity: Delete",
        3 => "HTTP Activity: Get",
        4 => "HTTP Activity: Head",
        5 => "HTTP Activity: Options",
        6 => "HTTP Activity: Post",
        7 => "HTTP Activity: Put",
        8 => "HTTP Activity: Trace",
        9 => "HTTP Activity: Patch",
        _ => "HTTP Activity: Other",
    }
}

impl AuditRecord {
    fn details(&self) -> MeshsightDetails<'_> {
        let ex = &self.exchange;
        MeshsightDetails {
            allowlist: ex.allowlist.as_ref(),
            mirror: ex.mirror.as_ref(),
            response_flags: &self.response_flags,
            response_code_details: ex.response_code_details.as_deref(),
            upstream_failure: self.upstream_failure(),
            client_aborted: self.client_aborted(),
            x_forwarded_for_raw: self.x_forwarded_for_raw.as_deref(),
            http_method: (activity_id(&ex.method) == 99).then_some(ex.method.as_str()),
        }
    }

    fn ocsf_event(&self) -> OcsfEvent<'_> {
        let ex = &self.exchange;
        let activity = activity_id(&ex.method);
        let end_ms = ex.end_ns / 1_000_000;
        let (status_id, status) = match self.status() {
            Some(code) if code < 400 => (1, "Success"),
            _ => (2, "Failure"),
        };
        let d = self.disposition;
        OcsfEvent {
            class_uid: 4002,
            class_name: "HTTP Activity",
            category_uid: 4,
            category_name: "Network Activity",
            activity_id: activity,
            activity_name: if activity == 99 {
                ex.method.as_str()
            } else {
                activity_name(activity)
            },
            type_uid: 4002 * 100 + activity,
            type_name: type_name(activity),
            severity_id: self.severity_id,
            severity: severity_name(self.severity_id),
            time: end_ms,
            start_time: ex.start_ns / 1_000_000,
            end_time: end_ms,
            duration: self.duration_ms(),
            status_id,
            status,
            status_code: (!self.response_flags.is_empty()).then(|| self.response_flags.join(",")),
            status_detail: ex.response_code_details.as_deref(),
            metadata: OcsfMetadata {
                version: OCSF_VERSION,
                product: OcsfProduct {
                    name: PRODUCT_NAME,
                    vendor_name: PRODUCT_NAME,
                    version: PRODUCT_VERSION,
                },
                log_name: "meshsight_audit",
                profiles: if self.trace_id.is_some() {
                    &["security_control", "trace"]
                } else {
                    &["security_control"]
                },
                uid: ex.request_id.as_deref(),
                correlation_uid: self.trace_id.as_deref(),
            },
            http_request: OcsfRequest {
                http_method: (activity != 99).then_some(ex.method.as_str()),
                url: OcsfUrl {
                    path: &self.url_path,
                    url_string: self.url_string(),
                    hostname: self.hostname.as_deref(),
                    port: self.port,
                    scheme: &ex.scheme,
                    query_string: self.query.as_deref(),
                },
                user_agent: ex.request_header("user-agent"),
                version: ex.protocol.as_deref(),
                uid: ex.request_id.as_deref(),
                length: ex.request_bytes,
                http_headers: header_views(&self.request_headers),
                x_forwarded_for: &self.x_forwarded_for,
            },
            http_response: self.status().map(|code| OcsfResponse {
                code,
                latency: self.duration_ms(),
                length: ex.response_bytes,
                http_headers: header_views(&self.response_headers),
            }),
            src_endpoint: endpoint_view(
                ex.source_address.as_deref(),
                &ex.source_peer,
                ex.peer_identity.as_deref(),
            ),
            dst_endpoint: endpoint_view(
                ex.destination_address.as_deref(),
                &ex.destination_peer,
                None,
            ),
            action_id: d.action_id,
            action: d.action,
            disposition_id: d.disposition_id,
            disposition: d.disposition,
            firewall_rule: ex
                .allowlist
                .as_ref()
                .and_then(|a| a.rule.as_deref())
                .map(|name| OcsfNamed { name }),
            is_alert: self.signature_mirrored(),
            trace: self.trace_id.as_deref().map(|uid| OcsfTrace { uid }),
            unmapped: OcsfUnmapped {
                meshsight: self.details(),
            },
        }
    }
}
