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
    if bytes.contains(&b'@') {
        return Err(Malformed::HostUserinfo);
    }
    let (name, port) = if matches!(bytes.first(), Some(b'[')) {
        // `[` is ASCII: the rest starts on a character boundary.
        let bracketed = authority.get(1..).unwrap_or("");
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

#[cfg(test)]
mod oracle {
    //! `dns_name`'s one byte pass against the label-by-label check it replaced.
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// The check as it was written with `split('.')`.
    fn dns_name_by_labels(name: &str) -> Result<String, Malformed> {
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() {
            return Err(Malformed::EmptyHost);
        }
        if name.len() > 253 {
            return Err(Malformed::InvalidHost);
        }
        for label in name.split('.') {
            let valid = !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid {
                return Err(Malformed::InvalidHost);
            }
        }
        Ok(name.to_ascii_lowercase())
    }

    #[test]
    fn a_dns_name_is_judged_as_label_by_label() {
        let long_label = "a".repeat(63);
        let too_long_label = "b".repeat(64);
        let mut names: Vec<String> = [
            "",
            ".",
            "..",
            "a",
            "a.",
            "a..",
            ".a",
            "a..b",
            "Shop.Example.COM",
            "shop.example.com.",
            "x_y-z.9",
            "a b",
            "a/b",
            "é.com",
            "a.é",
            "-.-",
            "a.b.c.d.",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        names.push(long_label.clone());
        names.push(format!("{long_label}.x"));
        names.push(too_long_label.clone());
        names.push(format!("x.{too_long_label}"));
        names.push(format!("{too_long_label}."));
        names.push(vec!["abc"; 63].join("."));
        names.push(vec!["abcd"; 51].join("."));
        names.push(format!("{}.", vec!["abcd"; 51].join(".")));
        for name in &names {
            assert_eq!(dns_name(name), dns_name_by_labels(name), "{name:?}");
        }
        // Every one- and two-byte ASCII name.
        for a in 0..128u8 {
            for b in 0..128u8 {
                let name = String::from_utf8(vec![a, b]).unwrap();
                assert_eq!(dns_name(&name), dns_name_by_labels(&name), "{name:?}");
            }
        }
    }
}
