//! Header pairs as the filters read them from the host (`Vec<(name, value)>`): lookup by name,
//! header-name tokens, and splitting `:authority` into host and port.
//!
//! Envoy hands header names over lowercase; lookups still ignore ASCII case so that values built
//! by hand (tests, configuration) behave the same.

#[cfg(test)]
mod tests;

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
