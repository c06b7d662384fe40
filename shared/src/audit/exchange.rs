//! What the proxy saw of one finished HTTP exchange: the request head (taken over as read from
//! the host, never copied), the response, addresses, Istio peers and the other jobs' decisions.

use crate::name_set::NameSet;
use std::fmt;
use std::ops::Deref;

use crate::decision::{AllowlistDecision, MirrorDecision};
use crate::head::RequestHead;
use crate::headers::header_value;

#[cfg(test)]
mod tests;

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
    /// Whether nothing is known about the peer.
    pub fn is_empty(&self) -> bool {
        self.namespace.is_none() && self.workload.is_none() && self.service.is_none()
    }
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
    /// The regular request headers, in order (pseudo-headers are in the fields above;
    /// selection and redaction happen when the record is built).
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
    /// What the scan of the response found, when it was scanned.
    pub response: Option<crate::response::ResponseVerdict>,
    /// Envoy response flags bitmask.
    pub response_flags: u64,
    /// Envoy response code details (`via_upstream`, `upstream_reset_before_response_started{...}`).
    pub response_code_details: Option<String>,
}

impl HttpExchange {
    /// Takes over the request head as read from the host (no copy of it is made): the values
    /// of `:method`, `:scheme`, `:authority` and `:path` move into their fields, the other
    /// pseudo-headers are dropped, and the regular headers stay, in order, for selection.
    /// `x-request-id` also fills `request_id`, and `host` the authority when `:authority` is
    /// missing.
    pub fn from_request_headers(mut headers: Vec<(String, String)>) -> Self {
        let mut ex = HttpExchange::default();
        let mut pseudo = false;
        for (name, value) in headers.iter_mut() {
            match name.as_str() {
                ":method" => ex.method = std::mem::take(value),
                ":scheme" => ex.scheme = std::mem::take(value),
                ":authority" => ex.authority = std::mem::take(value),
                ":path" => ex.path = std::mem::take(value),
                "x-request-id" => ex.request_id = Some(value.clone()),
                _ => {}
            }
            pseudo |= is_pseudo(name);
        }
        if pseudo {
            headers.retain(|(name, _)| !is_pseudo(name));
        }
        if ex.authority.is_empty() {
            if let Some((_, host)) = headers.iter().find(|(name, _)| name == "host") {
                ex.authority = host.clone();
            }
        }
        ex.request_headers = headers;
        ex
    }

    /// [`HttpExchange::from_request_headers`] of `head`'s pairs, but copying only the request
    /// headers a record reads: those `recorded` (the policy's `record_headers`) and those it
    /// derives fields from. The record written is the same; the headers it never reads
    /// (cookies, tokens, accept-*) are not copied and freed on every request.
    pub fn from_head(head: &RequestHead, recorded: &NameSet) -> Self {
        let mut ex = HttpExchange::default();
        let mut host = None;
        let mut headers = Vec::new();
        for (name, value) in head.headers().iter() {
            // One match both takes the fields over and says whether the record reads the
            // header: the ones it derives fields from (user agent, forwarded-for, trace and
            // request ids), else those recorded.
            let read = match name {
                ":method" => {
                    ex.method = value.to_string();
                    false
                }
                ":scheme" => {
                    ex.scheme = value.to_string();
                    false
                }
                ":authority" => {
                    ex.authority = value.to_string();
                    false
                }
                ":path" => {
                    ex.path = value.to_string();
                    false
                }
                "x-request-id" => {
                    ex.request_id = Some(value.to_string());
                    true
                }
                "host" => {
                    host = host.or(Some(value));
                    recorded.contains(name)
                }
                "user-agent" | "x-forwarded-for" | "traceparent" | "x-b3-traceid" | "b3" => true,
                _ => !is_pseudo(name) && recorded_or_not_lowercase(name, recorded),
            };
            if read {
                headers.push((name.to_string(), value.to_string()));
            }
        }
        if ex.authority.is_empty() {
            if let Some(host) = host {
                ex.authority = host.to_string();
            }
        }
        ex.request_headers = headers;
        ex
    }

    /// The first value of request header `name` (ASCII case-insensitive).
    // Out of line: inlined, each call site unrolled the case-insensitive compare for its
    // constant name (three in `trace_id` alone).
    #[inline(never)]
    pub fn request_header(&self, name: &str) -> Option<&str> {
        header_value(&self.request_headers, name)
    }

    /// The trace id: from W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`) or B3
    /// (`x-b3-traceid`, or the first field of single-header `b3`), lowercase.
    pub fn trace_id(&self) -> Option<TraceId> {
        if let Some(tp) = self.request_header("traceparent") {
            let mut parts = trim(tp).split('-');
            let _version = parts.next();
            let id = parts.next();
            let complete = parts.next().is_some() && parts.next().is_some();
            if let Some(id) = id.filter(|id| complete && id.len() == 32) {
                if id.bytes().any(|b| b != b'0') {
                    if let Some(trace) = TraceId::parse(id) {
                        return Some(trace);
                    }
                }
            }
        }
        let b3 = self.request_header("x-b3-traceid").map(trim).or_else(|| {
            self.request_header("b3")
                .and_then(|v| trim(v).split('-').next())
        });
        b3.filter(|id| id.len() == 16 || id.len() == 32)
            .and_then(TraceId::parse)
    }
}

/// A trace id: 16 or 32 lowercase hex digits, held inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TraceId {
    hex: [u8; 32],
    len: u8,
}

impl TraceId {
    /// Parses 1 to 32 hex digits (any case) into their lowercase form.
    #[inline(never)]
    pub fn parse(text: &str) -> Option<TraceId> {
        let bytes = text.as_bytes();
        if bytes.is_empty() || bytes.len() > 32 {
            return None;
        }
        // One pass that checks and lowercases (the iterator adapters of a check-then-copy are
        // calls per byte at opt-level "z").
        let mut hex = [0u8; 32];
        for (slot, b) in hex.iter_mut().zip(bytes) {
            *slot = match b {
                b'0'..=b'9' | b'a'..=b'f' => *b,
                b'A'..=b'F' => b + (b'a' - b'A'),
                _ => return None,
            };
        }
        Some(TraceId {
            hex,
            len: bytes.len() as u8,
        })
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(self.hex.get(..usize::from(self.len)).unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Deref for TraceId {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether header `name` is recorded (the allow-list holds lowercase names), or has an
/// uppercase letter (rare from Envoy): kept whatever it is, as the record looks the headers it
/// derives fields from up ASCII case-insensitively.
fn recorded_or_not_lowercase(name: &str, recorded: &NameSet) -> bool {
    name.bytes().any(|b| b.is_ascii_uppercase()) || recorded.contains(name)
}

/// Whether a header name is a pseudo-header (`:path`...): a byte compare, where
/// `starts_with(':')` is a pattern search with the char encoded first at opt-level "z".
#[inline(always)]
fn is_pseudo(name: &str) -> bool {
    name.as_bytes().first() == Some(&b':')
}

/// `str::trim`, skipped when both ends are printable ASCII (the usual header value): the
/// trim decodes chars from each end, a chain of calls at opt-level "z".
fn trim(value: &str) -> &str {
    let printable = |b: Option<&u8>| b.is_some_and(|b| (0x21..0x7f).contains(b));
    if printable(value.as_bytes().first()) && printable(value.as_bytes().last()) {
        value
    } else {
        value.trim()
    }
}
