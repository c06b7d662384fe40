//! Header pairs as the filters read them from the host (`Vec<(name, value)>`): lookup by name,
//! header-name tokens, splitting `:authority` into host and port, and the one list of
//! credential headers and of hop-by-hop headers that every job uses (the mirror's copies drop
//! them, the audit record never carries a credential).
//!
//! Envoy hands header names over lowercase; lookups still ignore ASCII case so that values built
//! by hand (tests, configuration) behave the same.

#[cfg(test)]
mod tests;

/// Request and response headers whose values are credentials (lowercase): a mirror copy drops
/// them unless its target sets `include_secrets`, and an audit record never carries them.
pub const CREDENTIAL_HEADERS: [&str; 4] = [
    "authorization",
    "cookie",
    "proxy-authorization",
    "set-cookie",
];

/// Headers that describe the connection or the framing of one hop, not the request
/// (lowercase; RFC 9110 section 7.6.1 plus `content-length`, `expect` and `proxy-connection`):
/// a copy sent on a new connection must not carry them.
pub const HOP_BY_HOP_HEADERS: [&str; 8] = [
    "connection",
    "content-length",
    "expect",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
];

/// Whether `name` (any case) is a [`CREDENTIAL_HEADERS`] name.
pub fn is_credential_header(name: &str) -> bool {
    CREDENTIAL_HEADERS
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
}

/// Whether `name` (any case) is a [`HOP_BY_HOP_HEADERS`] name.
pub fn is_hop_by_hop_header(name: &str) -> bool {
    HOP_BY_HOP_HEADERS
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
}

/// Every value of header `name` (ASCII case-insensitive), in order.
pub fn header_values<'h>(
    headers: &'h [(String, String)],
    name: &'h str,
) -> impl Iterator<Item = &'h str> + 'h {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The first value of header `name` (ASCII case-insensitive).
pub fn header_value<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Whether `name` is an HTTP token (RFC 9110 `tchar`s): a valid header name or method.
pub fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Splits an `:authority` leniently into host and port text: `host:port`, `[v6]:port`, `[v6]`
/// (host without brackets), or the whole value as the host when there is no all-digit port
/// after a single `:` (so an unbracketed IPv6 address stays whole). Nothing is validated: this
/// is for reading what a request says, not for judging it (see [`crate::normalize`]).
pub fn split_authority(authority: &str) -> (&str, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':')),
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            (host, Some(port))
        }
        _ => (authority, None),
    }
}
