//! The audit record of one exchange: which headers are recorded (allow-listed, redacted), the
//! masked query, the forwarded-for addresses, the trace id, the security-control disposition
//! and the severity. Rendering is in [`super::ocsf`] and [`super::ecs`]; the field mapping is
//! documented in `filters/meshsight/docs/audit.md`.
//!
//! Building borrows from the exchange it owns wherever it can: only a masked query or header
//! value, a name that was not lowercase and the parsed forwarded-for addresses are copied.

use std::net::IpAddr;
use std::ops::Range;

use crate::decision::{AllowlistDecision, AllowlistOutcome, MirrorReason};
use crate::headers::split_authority;
use crate::identity::parse_socket_address;

use super::exchange::{HttpExchange, TraceId};
use super::redact::{recorded_header, redacted_query};
use super::{AuditFormat, AuditPolicy};
use std::borrow::Cow;

#[cfg(test)]
mod tests;

/// Product name in every record.
pub const PRODUCT_NAME: &str = "meshsight";
/// Product version in every record.
pub const PRODUCT_VERSION: &str = env!("CARGO_PKG_VERSION");

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

/// Flags meaning the upstream failed (no healthy host, connect failure, reset, timeout...):
/// UH, UT, UR, UF, UC, UO, URX, UPE, NC.
const UPSTREAM_FAILURE_FLAGS: u64 =
    1 << 1 | 1 << 2 | 1 << 4 | 1 << 5 | 1 << 6 | 1 << 7 | 1 << 15 | 1 << 23 | 1 << 24;
/// Flags meaning the client went away before the response completed: DC, DR.
const CLIENT_ABORT_FLAGS: u64 = 1 << 14 | 1 << 28;

/// Names of the flags set in an Envoy `response.flags` bitmask.
pub fn response_flag_names(bits: u64) -> Vec<String> {
    set_response_flags(bits).map(str::to_string).collect()
}

/// Names of the flags set in `bits`, without copies.
pub(super) fn set_response_flags(bits: u64) -> impl Iterator<Item = &'static str> {
    RESPONSE_FLAGS
        .iter()
        .filter(move |(bit, _)| bits & bit != 0)
        .map(|(_, name)| *name)
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

/// A header kept for the record: its place in the exchange's list, and copies only of what
/// recording changed (a name that was not lowercase, a value with secrets masked).
#[derive(Debug, Clone, PartialEq)]
struct RecordedHeader {
    index: usize,
    name: Option<String>,
    value: Option<String>,
}

fn select(headers: &[(String, String)], policy: &AuditPolicy) -> Vec<RecordedHeader> {
    let mut kept = Vec::new();
    for (index, (name, value)) in headers.iter().enumerate() {
        let recorded = recorded_header(
            name,
            value,
            &policy.record_headers,
            &policy.redact_query_params,
        );
        if let Some((n, v)) = recorded {
            kept.push(RecordedHeader {
                index,
                name: match n {
                    Cow::Owned(n) => Some(n),
                    Cow::Borrowed(_) => None,
                },
                value: match v {
                    Cow::Owned(v) => Some(v),
                    Cow::Borrowed(_) => None,
                },
            });
        }
    }
    kept
}

/// One audit record: the exchange after selection and redaction, with its derived fields.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    exchange: HttpExchange,
    /// Length of the path without the query string (or fragment).
    path_len: usize,
    /// The query string (without `?` and fragment) as received, in `exchange.path`.
    query: Option<Range<usize>>,
    /// The query string with secrets masked, when one was.
    masked_query: Option<String>,
    request_headers: Vec<RecordedHeader>,
    response_headers: Vec<RecordedHeader>,
    x_forwarded_for: Vec<IpAddr>,
    x_forwarded_for_clean: bool,
    trace_id: Option<TraceId>,
    disposition: Disposition,
    severity_id: u32,
}

impl AuditRecord {
    /// Builds the record for `exchange` under `policy` (header allow-list, query redaction).
    pub fn build(exchange: HttpExchange, policy: &AuditPolicy) -> Self {
        let path = exchange.path.as_str();
        let (path_len, query, masked_query) = match path.split_once('?') {
            Some((before, raw)) => {
                let start = before.len() + 1;
                match redacted_query(raw, &policy.redact_query_params) {
                    Cow::Borrowed(kept) => (before.len(), Some(start..start + kept.len()), None),
                    Cow::Owned(masked) => (before.len(), Some(start..path.len()), Some(masked)),
                }
            }
            None => (path.split('#').next().unwrap_or("").len(), None, None),
        };
        let request_headers = select(&exchange.request_headers, policy);
        let response_headers = select(&exchange.response_headers, policy);
        let mut x_forwarded_for = Vec::new();
        let mut x_forwarded_for_clean = true;
        if let Some(xff) = exchange.request_header("x-forwarded-for") {
            for part in xff.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                match parse_socket_address(part) {
                    Some((ip, _)) => x_forwarded_for.push(ip),
                    None => x_forwarded_for_clean = false,
                }
            }
        }
        let trace_id = exchange.trace_id();
        let disposition = disposition(exchange.allowlist.as_ref());
        let status = exchange.status.unwrap_or(0);
        let response_severity = exchange.response.as_ref().and_then(|r| r.severity_id());
        let severity_id = if let Some(id) = response_severity {
            id
        } else if signature_mirrored(&exchange) {
            4
        } else if disposition.action_id == 2 {
            3
        } else if disposition.disposition_id == 20 || status >= 500 || status == 0 {
            2
        } else {
            1
        };
        AuditRecord {
            path_len,
            query,
            masked_query,
            request_headers,
            response_headers,
            x_forwarded_for,
            x_forwarded_for_clean,
            trace_id,
            disposition,
            severity_id,
            exchange,
        }
    }

    /// The exchange the record was built from (unredacted: do not serialize it).
    pub fn exchange(&self) -> &HttpExchange {
        &self.exchange
    }

    /// Path without the query string.
    pub fn url_path(&self) -> &str {
        self.exchange.path.get(..self.path_len).unwrap_or_default()
    }

    /// Redacted query string (without `?`), when there was one.
    #[inline(never)]
    pub fn query(&self) -> Option<&str> {
        match (&self.masked_query, &self.query) {
            (Some(masked), _) => Some(masked),
            (None, Some(range)) => self.exchange.path.get(range.clone()),
            (None, None) => None,
        }
    }

    /// Host from the authority.
    #[inline(never)]
    pub fn hostname(&self) -> Option<&str> {
        match split_authority(&self.exchange.authority) {
            ("", _) => None,
            (host, _) => Some(host),
        }
    }

    /// Port from the authority, or the scheme's default.
    #[inline(never)]
    pub fn port(&self) -> Option<u16> {
        let explicit = match split_authority(&self.exchange.authority) {
            ("", _) => None,
            (_, port) => port.and_then(|p| p.parse::<u16>().ok()),
        };
        explicit.or(match self.exchange.scheme.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        })
    }

    /// Recorded request headers (allow-listed, lowercase names, redacted), in order.
    pub fn request_headers(&self) -> impl Iterator<Item = (&str, &str)> {
        recorded(&self.request_headers, &self.exchange.request_headers)
    }

    /// Recorded response headers (allow-listed, lowercase names, redacted), in order.
    pub fn response_headers(&self) -> impl Iterator<Item = (&str, &str)> {
        recorded(&self.response_headers, &self.exchange.response_headers)
    }

    /// `x-forwarded-for` addresses that parse as IPs.
    pub fn x_forwarded_for(&self) -> &[IpAddr] {
        &self.x_forwarded_for
    }

    /// The raw `x-forwarded-for`, kept only when some entry is not an IP.
    pub fn x_forwarded_for_raw(&self) -> Option<&str> {
        if self.x_forwarded_for_clean {
            None
        } else {
            self.exchange.request_header("x-forwarded-for")
        }
    }

    /// Trace id (lowercase hex).
    pub fn trace_id(&self) -> Option<&str> {
        self.trace_id.as_ref().map(TraceId::as_str)
    }

    /// Security-control outcome.
    pub fn disposition(&self) -> Disposition {
        self.disposition
    }

    /// OCSF `severity_id`: 4 signature mirrored, 3 denied, 2 would-deny, 5xx or no response,
    /// else 1.
    pub fn severity_id(&self) -> u32 {
        self.severity_id
    }

    /// Names of the Envoy response flags set.
    pub fn response_flags(&self) -> impl Iterator<Item = &'static str> {
        set_response_flags(self.exchange.response_flags)
    }

    /// The response status, when a response was sent.
    pub(super) fn status(&self) -> Option<u16> {
        self.exchange.status.filter(|s| *s != 0)
    }

    /// Whether the mirror saw an exploit signature.
    pub(super) fn signature_mirrored(&self) -> bool {
        signature_mirrored(&self.exchange)
    }

    /// Whether Envoy saw the upstream fail (connect failure, reset, timeout, no healthy host).
    pub fn upstream_failure(&self) -> bool {
        self.exchange.response_flags & UPSTREAM_FAILURE_FLAGS != 0
    }

    /// Whether the client went away before the response completed.
    #[inline(never)]
    pub fn client_aborted(&self) -> bool {
        self.exchange.response_flags & CLIENT_ABORT_FLAGS != 0
            || self
                .exchange
                .response_code_details
                .as_deref()
                .is_some_and(|d| d.starts_with("downstream_remote_disconnect"))
    }

    /// The parts of `scheme://authority/path?query` (redacted), to be joined.
    #[inline(never)]
    pub(super) fn url_parts(&self) -> [&str; 6] {
        let ex = &self.exchange;
        let scheme_sep = if ex.scheme.is_empty() { "" } else { "://" };
        let query = self.query();
        [
            &ex.scheme,
            scheme_sep,
            &ex.authority,
            self.url_path(),
            if query.is_some() { "?" } else { "" },
            query.unwrap_or_default(),
        ]
    }

    /// The full URL, `scheme://authority/path?query`, with the query redacted.
    pub fn url_string(&self) -> String {
        self.url_parts().concat()
    }

    pub(super) fn duration_ms(&self) -> u64 {
        self.exchange.end_ns.saturating_sub(self.exchange.start_ns) / 1_000_000
    }

    /// A capacity that holds the rendered record in one allocation in common cases.
    fn estimated_len(&self) -> usize {
        let ex = &self.exchange;
        let headers: usize = self
            .request_headers()
            .chain(self.response_headers())
            .map(|(n, v)| n.len() + v.len() + 24)
            .sum();
        1600 + 3 * ex.path.len() + 2 * ex.authority.len() + headers
    }

    /// Renders the record in `format` as one JSON line (no trailing newline).
    pub fn to_json_line(&self, format: AuditFormat) -> String {
        let mut line = String::with_capacity(self.estimated_len());
        self.write_json_line(format, &mut line);
        line
    }

    /// Appends the record in `format` as one JSON line (no newline) to `out`, so that a caller
    /// can reuse one buffer.
    pub fn write_json_line(&self, format: AuditFormat, out: &mut String) {
        match format {
            AuditFormat::Ocsf => self.write_ocsf(out),
            AuditFormat::Ecs => self.write_ecs(out),
        }
    }
}

fn recorded<'r>(
    kept: &'r [RecordedHeader],
    headers: &'r [(String, String)],
) -> impl Iterator<Item = (&'r str, &'r str)> {
    kept.iter().filter_map(move |h| {
        let (name, value) = headers.get(h.index)?;
        Some((
            h.name.as_deref().unwrap_or(name),
            h.value.as_deref().unwrap_or(value),
        ))
    })
}

fn signature_mirrored(exchange: &HttpExchange) -> bool {
    exchange
        .mirror
        .as_ref()
        .is_some_and(|m| m.reason == MirrorReason::Signature || !m.signatures.is_empty())
}
