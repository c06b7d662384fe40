//! Who a request comes from, as every policy reads it: the mTLS peer's SPIFFE ID (and the
//! Kubernetes namespace and service account in it), principal patterns over SPIFFE IDs,
//! Kubernetes namespace names, CIDR ranges and Envoy's `source.address`.
//!
//! One parser per concept, so that the allowlist, the mirror and the audit record agree on what
//! a peer is: a namespace rule in the mirror selects exactly the peers a namespace rule in the
//! allowlist admits, and the audit record names the same namespace. Errors are typed; each
//! policy maps them to its own messages and JSON paths.

use std::net::IpAddr;

use thiserror::Error;

pub mod ip;
#[cfg(test)]
mod tests;

pub use ip::Cidr;

/// A SPIFFE ID `spiffe://<trust domain><path>`, borrowed from the string it was parsed from.
///
/// Istio issues workload IDs of the form `spiffe://<trust domain>/ns/<namespace>/sa/<service
/// account>`; only that exact shape has a [`namespace`](SpiffeId::namespace) and a
/// [`service_account`](SpiffeId::service_account). Anything else (extra segments, a missing
/// `sa`) has neither, so a namespace can never be read out of a longer path that merely
/// contains `/ns/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpiffeId<'a> {
    trust_domain: &'a str,
    path: &'a str,
    workload: Option<(&'a str, &'a str)>,
}

impl<'a> SpiffeId<'a> {
    /// Parses a peer's SPIFFE ID as Envoy reports it (`connection.uri_san_peer_certificate`);
    /// `None` unless it starts with `spiffe://` and has a non-empty trust domain.
    pub fn parse(id: &'a str) -> Option<SpiffeId<'a>> {
        let rest = id.strip_prefix("spiffe://")?;
        let (trust_domain, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if trust_domain.is_empty() {
            return None;
        }
        let mut segments = path.split('/').skip(1);
        let workload = match (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) {
            (Some("ns"), Some(ns), Some("sa"), Some(sa), None)
                if !ns.is_empty() && !sa.is_empty() =>
            {
                Some((ns, sa))
            }
            _ => None,
        };
        Some(SpiffeId {
            trust_domain,
            path,
            workload,
        })
    }

    /// The trust domain (`cluster.local`).
    pub fn trust_domain(&self) -> &'a str {
        self.trust_domain
    }

    /// The path, starting with `/` (empty when the ID has none).
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The Kubernetes namespace of an Istio workload ID `.../ns/<namespace>/sa/<sa>`.
    pub fn namespace(&self) -> Option<&'a str> {
        self.workload.map(|(ns, _)| ns)
    }

    /// The Kubernetes service account of an Istio workload ID `.../ns/<ns>/sa/<service account>`.
    pub fn service_account(&self) -> Option<&'a str> {
        self.workload.map(|(_, sa)| sa)
    }
}

/// The namespace in a Kubernetes workload SPIFFE ID `spiffe://<td>/ns/<ns>/sa/<sa>`, the form
/// Istio issues; any other shape has no namespace.
pub fn spiffe_namespace(spiffe_id: &str) -> Option<&str> {
    SpiffeId::parse(spiffe_id)?.namespace()
}

/// Why a principal pattern was refused; the message completes "must be a SPIFFE ID ...; ".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{reason}")]
pub struct PrincipalError {
    /// What is wrong, in a few words.
    pub reason: &'static str,
}

/// A pattern over peer SPIFFE IDs: one ID exactly, or every ID under a path (`.../*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalPattern {
    /// This SPIFFE ID exactly.
    Exact(String),
    /// Any SPIFFE ID starting with this prefix, which ends in `/` (so `/ns/ops/*` does not
    /// match `/ns/opsx/...`).
    Prefix(String),
}

impl PrincipalPattern {
    /// Parses `spiffe://<td>/<path>` or `spiffe://<td>/<path>/*` (also `spiffe://<td>/*`).
    /// The trust domain is lowercase `[a-z0-9.-_]`; path segments are non-empty
    /// `[A-Za-z0-9-._~]`, not `.` or `..`; `*` only as the whole last segment.
    pub fn parse(raw: &str) -> Result<PrincipalPattern, PrincipalError> {
        let bad = |reason| Err(PrincipalError { reason });
        let Some(rest) = raw.strip_prefix("spiffe://") else {
            return bad("it does not start with spiffe://");
        };
        let (trust_domain, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if trust_domain.is_empty()
            || !trust_domain
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
        {
            return bad("the trust domain must be lowercase [a-z0-9.-_]");
        }
        let (path, prefix) = match path.strip_suffix("/*") {
            Some(p) => (p, true),
            None => (path, false),
        };
        if path.is_empty() && !prefix {
            return bad("it has no path");
        }
        for seg in path.split('/').skip(1) {
            if seg.is_empty() || seg == "." || seg == ".." {
                return bad("path segments must be non-empty and not . or ..");
            }
            if !seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
            {
                return bad("path segments are [A-Za-z0-9-._~]; \"*\" only as the last segment");
            }
        }
        Ok(if prefix {
            PrincipalPattern::Prefix(format!("spiffe://{trust_domain}{path}/"))
        } else {
            PrincipalPattern::Exact(raw.to_string())
        })
    }

    /// Whether the peer's SPIFFE ID matches (byte for byte; SPIFFE IDs are case-sensitive in
    /// their path).
    pub fn matches(&self, spiffe_id: &str) -> bool {
        match self {
            PrincipalPattern::Exact(id) => id == spiffe_id,
            PrincipalPattern::Prefix(prefix) => spiffe_id.starts_with(prefix.as_str()),
        }
    }
}

/// A name that is not a Kubernetes namespace name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("not a Kubernetes namespace name (lowercase [a-z0-9-], at most 63)")]
pub struct NamespaceError;

/// Checks a Kubernetes namespace name: an RFC 1123 (DNS-1123) label, 1 to 63 lowercase
/// `[a-z0-9-]`, starting and ending with a letter or digit.
pub fn check_namespace(raw: &str) -> Result<(), NamespaceError> {
    let b = raw.as_bytes();
    let ok = matches!((b.first(), b.last()), (Some(first), Some(last)) if *first != b'-' && *last != b'-')
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    if ok {
        Ok(())
    } else {
        Err(NamespaceError)
    }
}

/// Why a CIDR was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CidrError {
    /// Neither `addr/len` nor a bare IP address.
    #[error("not a CIDR or IP address")]
    Invalid,
    /// Host bits set (`10.1.2.3/8`): almost always a typo for a narrower or wider range.
    #[error("host bits set; did you mean {network}?")]
    HostBits {
        /// The range with the host bits cleared.
        network: Cidr,
    },
}

/// Parses a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a bare IP address (a `/32` or `/128`).
pub fn parse_cidr(raw: &str) -> Result<Cidr, CidrError> {
    if let Some(net) = Cidr::parse(raw) {
        let network = net.network();
        return if network == net {
            Ok(net)
        } else {
            Err(CidrError::HostBits { network })
        };
    }
    ip::parse_ip(raw).map(Cidr::host).ok_or(CidrError::Invalid)
}

/// Whether `net` contains `ip`, an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, how an IPv4
/// peer on a dual-stack socket shows up) counting as its IPv4 address.
pub fn cidr_contains(net: &Cidr, ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    net.contains(ip)
}

/// Parses an address as Envoy reports it (`source.address`, `destination.address`) or as it
/// appears in `x-forwarded-for`: `ip:port`, `[v6]:port`, a bare IP or `[v6]`; surrounding
/// ASCII whitespace is ignored.
pub fn parse_socket_address(address: &str) -> Option<(IpAddr, Option<u16>)> {
    let address = address.trim_ascii();
    if let Some((ip, port)) = ip::parse_socket(address) {
        return Some((ip, Some(port)));
    }
    let bare = address
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(address);
    ip::parse_ip(bare).map(|ip| (ip, None))
}
