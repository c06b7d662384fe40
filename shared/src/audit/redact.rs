//! Redaction: which header values are recorded, and masking of secret query parameters.

use crate::name_set::NameSet;
use std::borrow::Cow;

#[cfg(test)]
mod tests;

use crate::headers::CREDENTIAL_HEADERS;
use crate::normalize::hex_pair;

/// What a masked value is replaced with.
pub const REDACTED: &str = "REDACTED";

/// Keeps only the headers on the allow-list (names compared lowercase), never a credential
/// header whatever the list says, and masks secret query parameters in URL-valued headers
/// (`referer`, `location`). Order and repeated headers are kept.
pub fn select_headers(
    headers: &[(String, String)],
    allow: &NameSet,
    secret_params: &NameSet,
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
pub fn redact_query(query: &str, secret_params: &NameSet) -> String {
    redacted_query(query, secret_params).into_owned()
}

/// [`redact_query`] without a copy when nothing is masked: the query up to its fragment,
/// borrowed, or the masked copy.
pub fn redacted_query<'q>(query: &'q str, secret_params: &NameSet) -> Cow<'q, str> {
    let query = before(query, |b| b == b'#').0;
    if secret_params.is_empty() || !any_secret_pair(query, secret_params) {
        return Cow::Borrowed(query);
    }
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
                out.push_str(if is_secret_param(name, secret_params) {
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
            None => return Cow::Owned(out),
        }
    }
}

/// Whether a `&`- or `;`-separated pair of `query` has a secret name (before its `=`). Byte
/// scans: `split(['&', ';'])` decodes each char and searches a char set at opt-level "z", and
/// this runs on every recorded query.
fn any_secret_pair(query: &str, secret_params: &NameSet) -> bool {
    let mut rest = query;
    loop {
        let (pair, tail) = before(rest, |b| b == b'&' || b == b';');
        let (name, value) = before(pair, |b| b == b'=');
        if value.is_some() && is_secret_param(name, secret_params) {
            return true;
        }
        match tail {
            Some(tail) => rest = tail,
            None => return false,
        }
    }
}

/// `text` up to the first byte `stop` accepts (an ASCII byte, so the cut is a char boundary),
/// and what follows that byte, if there is one.
fn before(text: &str, stop: impl Fn(u8) -> bool) -> (&str, Option<&str>) {
    match text.bytes().position(stop) {
        Some(at) => (
            text.get(..at).unwrap_or_default(),
            Some(text.get(at + 1..).unwrap_or_default()),
        ),
        None => (text, None),
    }
}

/// One request or response header as recorded: `None` when it is not recorded (not on the
/// allow-list, a pseudo-header or a credential header), else its lowercase name and its value
/// with secret query parameters masked in URL-valued headers (`referer`, `location`), each
/// borrowed when unchanged. [`select_headers`] applies it to a whole list.
pub fn recorded_header<'h>(
    name: &'h str,
    value: &'h str,
    allow: &NameSet,
    secret_params: &NameSet,
) -> Option<(Cow<'h, str>, Cow<'h, str>)> {
    // Envoy hands names over lowercase: copy only the rare name that is not.
    let lower = if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    };
    // A byte compare: `starts_with(':')` is a pattern search at opt-level "z".
    if lower.as_bytes().first() == Some(&b':')
        || !allow.contains(lower.as_ref())
        || CREDENTIAL_HEADERS.contains(&lower.as_ref())
    {
        return None;
    }
    // Only URL-valued headers are searched for a query.
    let query = if matches!(lower.as_ref(), "referer" | "location") {
        value.split_once('?')
    } else {
        None
    };
    let value = match query {
        Some((base, query)) => match redacted_query(query, secret_params) {
            Cow::Borrowed(kept) if kept.len() == query.len() => Cow::Borrowed(value),
            masked => Cow::Owned(format!("{base}?{masked}")),
        },
        _ => Cow::Borrowed(value),
    };
    Some((lower, value))
}

/// Whether a query parameter's name, decoded and lowercased (a trailing `[]` ignored), is a
/// secret. Short names are decoded on the stack; only a long or odd one is copied.
fn is_secret_param(name: &str, secret_params: &NameSet) -> bool {
    let mut buf = [0u8; 64];
    let decoded = match decode_lower_into(name, &mut buf) {
        Some(len) => std::str::from_utf8(buf.get(..len).unwrap_or_default()).ok(),
        None => None,
    };
    let long;
    let d = match decoded {
        Some(d) => d,
        None => {
            long = decode_component(name).to_ascii_lowercase();
            long.as_str()
        }
    };
    // One lookup for both cases: each `contains` is an inlined B-tree search.
    secret_params.contains(d.strip_suffix("[]").unwrap_or(d))
}

/// Percent-decodes (and `+` to space) and ASCII-lowercases `s` into `buf`: the decoded length,
/// or `None` when it does not fit.
fn decode_lower_into(s: &str, buf: &mut [u8]) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut len = 0;
    let mut i = 0;
    while i < bytes.len() {
        let (byte, step) = match bytes[i] {
            b'%' => match hex_pair(bytes, i + 1) {
                Some(byte) => (byte, 3),
                None => (b'%', 1),
            },
            b'+' => (b' ', 1),
            b => (b, 1),
        };
        *buf.get_mut(len)? = byte.to_ascii_lowercase();
        len += 1;
        i += step;
    }
    Some(len)
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
