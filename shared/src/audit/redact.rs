//! Redaction: which header values are recorded, and masking of secret query parameters.

use std::collections::BTreeSet;

use crate::headers::CREDENTIAL_HEADERS;
use crate::normalize::hex_pair;

/// What a masked value is replaced with.
pub const REDACTED: &str = "REDACTED";

/// Keeps only the headers on the allow-list (names compared lowercase), never a credential
/// header whatever the list says, and masks secret query parameters in URL-valued headers
/// (`referer`, `location`). Order and repeated headers are kept.
pub fn select_headers(
    headers: &[(String, String)],
    allow: &BTreeSet<String>,
    secret_params: &BTreeSet<String>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if lower.starts_with(':')
            || CREDENTIAL_HEADERS.contains(&lower.as_str())
            || !allow.contains(&lower)
        {
            continue;
        }
        let value = if matches!(lower.as_str(), "referer" | "location") {
            match value.split_once('?') {
                Some((base, query)) => format!("{base}?{}", redact_query(query, secret_params)),
                None => value.clone(),
            }
        } else {
            value.clone()
        };
        out.push((lower, value));
    }
    out
}

/// Masks the value of every query parameter whose name (percent-decoded, `+` as space,
/// compared case-insensitively, with a trailing `[]` ignored) is in `secret_params`. The rest
/// of the query string is kept byte for byte; a fragment, if any, is dropped.
pub fn redact_query(query: &str, secret_params: &BTreeSet<String>) -> String {
    let query = query.split('#').next().unwrap_or("");
    let mut out = String::with_capacity(query.len());
    let mut rest = query;
    loop {
        let (pair, sep, tail) = match rest.find(['&', ';']) {
            Some(at) => (&rest[..at], Some(&rest[at..at + 1]), &rest[at + 1..]),
            None => (rest, None, ""),
        };
        match pair.split_once('=') {
            Some((name, value)) => {
                out.push_str(name);
                out.push('=');
                let decoded = decode_component(name).to_ascii_lowercase();
                let decoded = decoded.strip_suffix("[]").unwrap_or(&decoded);
                out.push_str(if secret_params.contains(decoded) {
                    REDACTED
                } else {
                    value
                });
            }
            None => out.push_str(pair),
        }
        match sep {
            Some(sep) => {
                out.push_str(sep);
                rest = tail;
            }
            None => return out,
        }
    }
}

/// Percent-decodes (and `+` to space) for name comparison; invalid escapes stay as they are and
/// invalid UTF-8 is replaced, which can only make a name not match, never leak a match.
fn decode_component(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => match hex_pair(bytes, i + 1) {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                None => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
