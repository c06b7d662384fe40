//! The request headers of a `dispatch` copy: the original head minus what must not or need not
//! reach the sensor, plus what the filter decided. The credential and hop-by-hop lists are the
//! crate's one set, in [`crate::headers`] (audit redaction uses the same).

use crate::decision::MirrorDecision;
use crate::mirror::{MirrorPolicy, MirrorRequest, Target};

/// Credentials a `dispatch` copy drops unless the target sets `include_secrets`.
pub use crate::headers::CREDENTIAL_HEADERS as SECRET_HEADERS;
/// Headers that describe the original connection or its framing, not the request: the copy is
/// a new request on another connection, with a body that may be cut.
pub use crate::headers::HOP_BY_HOP_HEADERS;

/// Prefix of the headers a `dispatch` copy carries about the decision; a client's own are
/// dropped so that they cannot mislead the sensor.
pub const COPY_HEADER_PREFIX: &str = "x-meshsight-mirror-";

/// Forwarding headers a client can write freely: a copy carries the connection's source address
/// in `x-forwarded-for` instead, and the client's claim in `x-meshsight-mirror-claimed-forwarded-for`.
pub const CLIENT_FORWARDING_HEADERS: [&str; 3] = ["x-forwarded-for", "x-real-ip", "forwarded"];

/// Headers of a copy of `request` to `target` for `decision`: the request's headers (method,
/// path and the rest as received) without hop-by-hop and framing headers, credentials (unless
/// `include_secrets`), decision headers, client-sent `x-meshsight-mirror-*` headers and
/// client-sent forwarding headers; `:authority` replaced when the target names one; then the
/// provenance, all from the connection and the filter, never from client headers:
/// `x-forwarded-for` and `x-meshsight-mirror-source-address` (the peer address),
/// `-source-principal`, `-source-namespace` (mTLS peer), `-request-id`, `-target`, `-reason`,
/// `-signatures` and `-signature-rules` (when any), `-rule` (when one decided), `-body-truncated: true` when the copied
/// body was cut, `-decision` (the decision's JSON, as in filter state), and
/// `-claimed-forwarded-for` with the client's own `x-forwarded-for`.
pub fn dispatch_headers(
    policy: &MirrorPolicy,
    target: &Target,
    request: &MirrorRequest<'_>,
    decision: &MirrorDecision,
    body_truncated: bool,
) -> Vec<(String, String)> {
    let is = listed;
    let decision_headers = policy.decision_headers();
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .filter(|(n, _)| {
            let dropped = is(n, &HOP_BY_HOP_HEADERS)
                || (!target.include_secrets && is(n, &SECRET_HEADERS))
                || decision_headers.iter().any(|d| n.eq_ignore_ascii_case(d))
                || has_copy_prefix(n)
                || is(n, &CLIENT_FORWARDING_HEADERS)
                || (target.authority.is_some() && n.eq_ignore_ascii_case(":authority"));
            !dropped
        })
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let mut add = |n: &str, v: &str| headers.push((n.to_string(), v.to_string()));
    if let Some(a) = &target.authority {
        add(":authority", a);
    }
    if let Some(ip) = request.peer.address() {
        // The crate's own printer (the same text as `Display`, without std's).
        let mut text = String::new();
        crate::identity::ip::push_ip(&mut text, ip);
        add("x-forwarded-for", &text);
        add("x-meshsight-mirror-source-address", &text);
    }
    if let Some(principal) = request.peer.principal() {
        add("x-meshsight-mirror-source-principal", principal);
    }
    if let Some(ns) = request.peer.namespace() {
        add("x-meshsight-mirror-source-namespace", ns);
    }
    if let Some(id) = request.request_id() {
        add("x-meshsight-mirror-request-id", id);
    }
    if let Some(claimed) = request.headers.value("x-forwarded-for") {
        add("x-meshsight-mirror-claimed-forwarded-for", claimed);
    }
    add("x-meshsight-mirror-target", &target.name);
    add("x-meshsight-mirror-reason", decision.reason.as_str());
    if !decision.signatures.is_empty() {
        add(
            "x-meshsight-mirror-signatures",
            &decision.signatures.join(","),
        );
    }
    if !decision.signature_rules.is_empty() {
        add(
            "x-meshsight-mirror-signature-rules",
            &decision.signature_rules.join(","),
        );
    }
    if let Some(rule) = &decision.rule {
        add("x-meshsight-mirror-rule", rule);
    }
    if body_truncated {
        add("x-meshsight-mirror-body-truncated", "true");
    }
    // The same JSON a `header`-delivery copy carries (the route's mutation copies it from
    // filter state), so that a sensor reads one header in both modes.
    add("x-meshsight-mirror-decision", &decision.to_json());
    headers
}

/// Whether `name` is in `list` (ASCII case-insensitive). Not inlined: inlined over the constant
/// lists, the comparisons unrolled into 7.6 KB of Wasm for 15 names.
#[inline(never)]
fn listed(name: &str, list: &[&str]) -> bool {
    list.iter()
        .any(|l| same_ignoring_case(name.as_bytes(), l.as_bytes()))
}

/// `a.eq_ignore_ascii_case(b)`, once in the module rather than vectorized at each use.
#[inline(never)]
fn same_ignoring_case(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Whether `name` is one of the copy's own headers (`x-meshsight-mirror-*`): a client's are
/// removed from the request, so that a route's copy cannot carry them either.
pub fn has_copy_prefix(name: &str) -> bool {
    name.as_bytes()
        .get(..COPY_HEADER_PREFIX.len())
        .is_some_and(|p| same_ignoring_case(p, COPY_HEADER_PREFIX.as_bytes()))
}
