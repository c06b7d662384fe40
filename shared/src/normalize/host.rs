//! The canonical host: what `hosts` rules in a policy are compared against.

use crate::identity::ip;

use super::Malformed;

/// A canonical `:authority`: lowercase name without trailing dot, port only when it is not the
/// scheme's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedHost {
    /// Lowercase DNS name or IPv4 address without trailing dot, or `[v6]` in canonical
    /// compressed form.
    pub name: String,
    /// The port, `None` when absent, empty or the scheme's default (80 for http, 443 for https).
    pub port: Option<u16>,
}

/// Normalizes an `:authority` (or `Host`) for `scheme`; refuses userinfo, empty and invalid
/// names and ports.
pub fn normalize_host(authority: &str, scheme: &str) -> Result<NormalizedHost, Malformed> {
    if authority.is_empty() {
        return Err(Malformed::EmptyHost);
    }
    // Byte searches: `@`, `[` and `:` are ASCII, so the offsets are character boundaries.
    let bytes = authority.as_bytes();
    if bytes.iter().any(|&b| b == b'@') {
        return Err(Malformed::HostUserinfo);
    }
    let (name, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (literal, after) = bracketed.split_once(']').ok_or(Malformed::InvalidHost)?;
        let address = ip::parse_ipv6(literal).ok_or(Malformed::InvalidHost)?;
        let port = if after.is_empty() {
            None
        } else {
            Some(after.strip_prefix(':').ok_or(Malformed::InvalidHost)?)
        };
        let mut name = String::from("[");
        ip::push_ipv6(&mut name, address);
        name.push(']');
        (name, port)
    } else {
        let (name, port) = match bytes.iter().rposition(|&b| b == b':') {
            Some(at) => (&authority[..at], Some(&authority[at + 1..])),
            None => (authority, None),
        };
        (dns_name(name)?, port)
    };
    let port = match port {
        None | Some("") => None,
        Some(port) => Some(parse_port(port)?),
    };
    let default = default_port(scheme);
    Ok(NormalizedHost {
        name,
        port: port.filter(|&port| Some(port) != default),
    })
}

/// Validates and lowercases a DNS name or IPv4 address, dropping one trailing dot.
fn dns_name(name: &str) -> Result<String, Malformed> {
    let name = match name.len().checked_sub(1) {
        Some(last) if name.as_bytes()[last] == b'.' => &name[..last],
        _ => name,
    };
    if name.is_empty() {
        return Err(Malformed::EmptyHost);
    }
    if name.len() > 253 {
        return Err(Malformed::InvalidHost);
    }
    // One pass over the bytes: each label 1 to 63 of `[A-Za-z0-9_-]`, separated by single dots.
    let mut label = 0usize;
    for &b in name.as_bytes() {
        if b == b'.' {
            if label == 0 {
                return Err(Malformed::InvalidHost);
            }
            label = 0;
        } else if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            label += 1;
            if label > 63 {
                return Err(Malformed::InvalidHost);
            }
        } else {
            return Err(Malformed::InvalidHost);
        }
    }
    if label == 0 {
        return Err(Malformed::InvalidHost);
    }
    Ok(name.to_ascii_lowercase())
}

/// A port: 1 to 5 ASCII digits, 1..=65535.
fn parse_port(port: &str) -> Result<u16, Malformed> {
    if port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Malformed::InvalidPort);
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(Malformed::InvalidPort),
        Ok(port) => Ok(port),
    }
}

/// The port a scheme implies when none is given.
fn default_port(scheme: &str) -> Option<u16> {
    if scheme.eq_ignore_ascii_case("http") {
        Some(80)
    } else if scheme.eq_ignore_ascii_case("https") {
        Some(443)
    } else {
        None
    }
}
