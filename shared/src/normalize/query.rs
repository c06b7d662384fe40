//! Query parameters as the `query` constraints of a policy see them.

use std::borrow::Cow;

use super::hex_pair;

/// Splits a raw query (without `?`) on `&` into decoded `(name, value)` pairs: `+` is a space,
/// `%XY` a byte. A parameter without `=` has an empty value; empty parameters are skipped. A
/// name or value that does not decode (bad escape, not UTF-8) is returned raw, so it can still
/// match literally but never as what it might have meant.
pub fn query_pairs(query: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(name), decode_component(value))
        })
}

/// Decodes one form-encoded component; borrows when there is nothing to decode or it fails.
fn decode_component(raw: &str) -> Cow<'_, str> {
    if !raw.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'+' => {
                decoded.push(b' ');
                i += 1;
            }
            b'%' => match hex_pair(bytes, i + 1) {
                Some(value) => {
                    decoded.push(value);
                    i += 3;
                }
                None => return Cow::Borrowed(raw),
            },
            _ => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    match String::from_utf8(decoded) {
        Ok(decoded) => Cow::Owned(decoded),
        Err(_) => Cow::Borrowed(raw),
    }
}
