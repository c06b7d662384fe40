//! Host matching: a rule's `hosts` list against the normalized request host
//! ([`crate::normalize::normalize_host`]: lowercase, no trailing dot, no port).
//!
//! An entry is an exact name (`api.example.com`), an IP literal (`10.1.2.3`, `[2001:db8::1]`)
//! or a wildcard `*.example.com`, which matches any name with one or more labels before
//! `.example.com` but not `example.com` itself. Case and one trailing dot are folded, as they are
//! in the request host; a port, a `*` elsewhere, or a bare `*` (omit `hosts` to match any host)
//! are refused. A request without a host, or with a malformed one, matches no host entry.

use crate::error::Quoted;
use crate::identity::ip;

use thiserror::Error;

/// Why a `hosts` entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HostError {
    /// Not a name, wildcard or IP literal.
    #[error("host pattern {} must be a host name (a.example.com), a wildcard (*.example.com) or an IP literal, lowercase, without port", Quoted(.0))]
    Invalid(String),
    /// `*` alone: the absent field already means any host.
    #[error("host pattern \"*\" is not allowed: omit the field to match any host")]
    Any,
}

/// One `hosts` entry, in the form the request host is compared in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    /// This host name (lowercase, no trailing dot) or IP literal (`[v6]` canonical).
    Exact(String),
    /// `*.suffix`: any name with one or more labels before `.suffix` (stored without `*.`).
    Suffix(String),
}

fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        })
}

impl HostMatch {
    /// Parses a `hosts` entry; case and a trailing dot are folded, as in the request host.
    pub fn parse(raw: &str) -> Result<HostMatch, HostError> {
        let bad = || HostError::Invalid(raw.to_string());
        if raw == "*" {
            return Err(HostError::Any);
        }
        let lower = raw.to_ascii_lowercase();
        let name = lower.strip_suffix('.').unwrap_or(&lower);
        if let Some(suffix) = name.strip_prefix("*.") {
            return if is_dns_name(suffix) {
                Ok(HostMatch::Suffix(suffix.to_string()))
            } else {
                Err(bad())
            };
        }
        if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
            // The request host keeps IPv6 literals bracketed in canonical compressed form.
            let addr = ip::parse_ipv6(v6).ok_or_else(bad)?;
            let mut exact = String::from("[");
            ip::push_ipv6(&mut exact, addr);
            exact.push(']');
            return Ok(HostMatch::Exact(exact));
        }
        if is_dns_name(name) {
            Ok(HostMatch::Exact(name.to_string()))
        } else {
            Err(bad())
        }
    }

    /// Whether the normalized request host matches; `None` (no or malformed host) never does.
    pub fn matches(&self, host: Option<&str>) -> bool {
        let Some(host) = host else {
            return false;
        };
        match self {
            HostMatch::Exact(name) => host == name,
            HostMatch::Suffix(suffix) => host
                .strip_suffix(suffix.as_str())
                .and_then(|head| head.strip_suffix('.'))
                .is_some_and(|head| !head.is_empty()),
        }
    }
}

impl TryFrom<&str> for HostMatch {
    type Error = HostError;

    fn try_from(raw: &str) -> Result<Self, Self::Error> {
        HostMatch::parse(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn names_are_folded_like_the_request_host() {
        assert_eq!(
            HostMatch::parse("Api.Example.com."),
            Ok(HostMatch::Exact("api.example.com".into()))
        );
        assert_eq!(
            HostMatch::parse("*.Example.org"),
            Ok(HostMatch::Suffix("example.org".into()))
        );
        assert_eq!(
            HostMatch::parse("[2001:0db8:0:0::1]"),
            Ok(HostMatch::Exact("[2001:db8::1]".into()))
        );
        assert_eq!(
            HostMatch::parse("10.1.2.3"),
            Ok(HostMatch::Exact("10.1.2.3".into()))
        );
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert_eq!(HostMatch::parse("*"), Err(HostError::Any));
        for h in [
            "",
            "*.",
            "a..b",
            "exa mple.com",
            "example.com:8080",
            "*.*.example.com",
            "api.*.example.com",
            "a.*",
            "[zz::1]",
            "user@example.com",
            "ex/ample.com",
        ] {
            assert_eq!(
                HostMatch::parse(h),
                Err(HostError::Invalid(h.into())),
                "{h}"
            );
        }
    }

    #[test]
    fn wildcard_needs_at_least_one_label_before_the_suffix() {
        let wild = HostMatch::parse("*.admin.example.com").unwrap();
        assert!(wild.matches(Some("eu.admin.example.com")));
        assert!(wild.matches(Some("a.b.admin.example.com")));
        assert!(!wild.matches(Some("admin.example.com")));
        assert!(!wild.matches(Some("xadmin.example.com")));
        assert!(!wild.matches(Some(".admin.example.com")));
        assert!(!wild.matches(None));
    }

    #[test]
    fn exact_names_match_only_themselves() {
        let exact = HostMatch::parse("api.example.com").unwrap();
        assert!(exact.matches(Some("api.example.com")));
        assert!(!exact.matches(Some("x.api.example.com")));
        assert!(!exact.matches(Some("api.example.com.evil")));
        assert!(!exact.matches(None));
    }
}
