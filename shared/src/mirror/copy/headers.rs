//! The request headers of a `dispatch` copy: the original head minus what must not or need not
//! reach the sensor, plus what the filter decided. The credential and hop-by-hop lists are the
//! crate's one set, in [`crate::headers`] (audit redaction uses the same).

use crate::decision::{MirrorDecision, MirrorReason};
use crate::mirror::{MirrorPolicy, MirrorRequest, Target};

/// Credentials a `dispatch` copy drops unless the target sets `include_secrets`.
pub use crate::headers::CREDENTIAL_HEADERS as SECRET_HEADERS;
/// Headers that describe the original connection or its framing, not the request: the copy is
/// a new request on another connection, with a body that may be cut.
pub use crate::headers::HOP_BY_HOP_HEADERS;

/// Prefix of the headers a `dispatch` copy carries about the decision; a client's own are
/// dropped so that they cannot mislead the sensor.
pub const COPY_HEADER_PREFIX: &str = "x-meshsight-mirror-";

/// Headers of a copy of `request` to `target` for `decision`: the request's headers (method,
/// path and the rest as received) without hop-by-hop and framing headers, credentials (unless
/// `include_secrets`), decision headers and client-sent `x-meshsight-mirror-*` headers;
/// `:authority` replaced when the target names one; then `x-meshsight-mirror-target`,
/// `-reason`, `-signatures` and `-signature-rules` (when any), `-rule` (when one decided) and `-body-truncated: true`
/// when the copied body was cut.
pub fn dispatch_headers(
    policy: &MirrorPolicy,
    target: &Target,
    request: &MirrorRequest<'_>,
    decision: &MirrorDecision,
    body_truncated: bool,
) -> Vec<(String, String)> {
    let is = |name: &str, list: &[&str]| list.iter().any(|l| name.eq_ignore_ascii_case(l));
    let decision_headers = policy.decision_headers();
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .filter(|(n, _)| {
            let dropped = is(n, &HOP_BY_HOP_HEADERS)
                || (!target.include_secrets && is(n, &SECRET_HEADERS))
                || decision_headers.iter().any(|d| n.eq_ignore_ascii_case(d))
                || has_copy_prefix(n)
                || (target.authority.is_some() && n.eq_ignore_ascii_case(":authority"));
            !dropped
        })
        .cloned()
        .collect();
    let mut add = |n: &str, v: &str| headers.push((n.to_string(), v.to_string()));
    if let Some(a) = &target.authority {
        add(":authority", a);
    }
    add("x-meshsight-mirror-target", &target.name);
    add("x-meshsight-mirror-reason", reason_name(decision.reason));
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
    headers
}

fn has_copy_prefix(name: &str) -> bool {
    name.as_bytes()
        .get(..COPY_HEADER_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(COPY_HEADER_PREFIX.as_bytes()))
}

/// The decision reason as the copy's `x-meshsight-mirror-reason` says it (as in the JSON).
pub fn reason_name(reason: MirrorReason) -> &'static str {
    match reason {
        MirrorReason::Signature => "signature",
        MirrorReason::Rule => "rule",
        MirrorReason::Sample => "sample",
        MirrorReason::NotSelected => "not_selected",
        MirrorReason::RateLimited => "rate_limited",
    }
}
