//! The facts of one request that every matcher reads, computed once per request: the method,
//! the normalized host, the normalized path and raw query, the headers and the peer. The
//! allowlist and the mirror both match against the same value, so they see the same path.

use crate::headers::HeaderBlock;
use crate::identity::parse_socket_address;
use crate::normalize::{
    normalize_host, normalize_path, Malformed, NormalizedHost, NormalizedTarget,
};

use super::source::Peer;

/// One request, normalized once, as the matchers see it. A malformed target or host is kept as
/// the reason it is malformed (see [`crate::normalize`]): it matches no host, path or query
/// entry, and the allowlist answers it with its malformed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFacts<'a> {
    /// `:method` as received.
    pub method: &'a str,
    /// `:path` as received (for the path rewrite and for signatures).
    pub raw_path: &'a str,
    /// The normalized path and raw query, or why `:path` is malformed.
    pub target: Result<NormalizedTarget<'a>, Malformed>,
    /// The normalized `:authority` (`None` when the request had none), or why it is malformed.
    pub host: Result<Option<NormalizedHost>, Malformed>,
    /// Request headers as `(name, value)` pairs.
    pub headers: &'a HeaderBlock,
    /// Who sent the request, from the connection.
    pub peer: Peer<'a>,
}

impl<'a> RequestFacts<'a> {
    /// Normalizes `:path` and `:authority` (for `scheme`, which decides the default port) once.
    pub fn new(
        method: &'a str,
        path: &'a str,
        authority: &str,
        scheme: &str,
        headers: &'a HeaderBlock,
        peer: Peer<'a>,
    ) -> RequestFacts<'a> {
        RequestFacts {
            method,
            raw_path: path,
            target: normalize_path(path),
            host: if authority.is_empty() {
                Ok(None)
            } else {
                normalize_host(authority, scheme).map(Some)
            },
            headers,
            peer,
        }
    }

    /// Why the request target or host is malformed (the target's reason first), if it is.
    pub fn malformed(&self) -> Option<Malformed> {
        self.target
            .as_ref()
            .err()
            .or(self.host.as_ref().err())
            .copied()
    }

    /// The normalized target, unless it is malformed.
    pub fn target(&self) -> Option<&NormalizedTarget<'a>> {
        self.target.as_ref().ok()
    }

    /// The normalized path (starting with `/`, without query), unless the target is malformed.
    pub fn path(&self) -> Option<&str> {
        self.target().map(|t| t.path.as_str())
    }

    /// The normalized host name (no port), unless there is none or it is malformed.
    pub fn host(&self) -> Option<&str> {
        match &self.host {
            Ok(Some(h)) => Some(h.name.as_str()),
            _ => None,
        }
    }
}

impl Peer<'_> {
    /// The peer as Envoy reports it: `source.address` text (`ip:port`) and the mTLS URI SAN; an
    /// unparsable address or an empty principal counts as absent.
    pub fn from_properties<'p>(address: Option<&str>, principal: Option<&'p str>) -> Peer<'p> {
        Peer::new(
            address.and_then(parse_socket_address).map(|(ip, _)| ip),
            principal,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::NO_HEADERS;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn normalizes_once() {
        let f = RequestFacts::new(
            "GET",
            "/a/./b/../%63?x=1",
            "Shop.Example.com.:80",
            "http",
            &NO_HEADERS,
            Peer::default(),
        );
        assert_eq!(f.path(), Some("/a/c"));
        assert_eq!(f.target().and_then(|t| t.query), Some("x=1"));
        assert_eq!(f.host(), Some("shop.example.com"));
        assert_eq!(f.malformed(), None);
        assert_eq!(f.raw_path, "/a/./b/../%63?x=1");
    }

    #[test]
    fn malformed_parts_are_represented() {
        let f = RequestFacts::new("GET", "/a%2fb", "h", "http", &NO_HEADERS, Peer::default());
        assert_eq!(f.malformed(), Some(Malformed::EncodedSlash));
        assert_eq!(f.path(), None);
        assert_eq!(f.host(), Some("h"));
        let f = RequestFacts::new("GET", "/", "user@h", "http", &NO_HEADERS, Peer::default());
        assert_eq!(f.malformed(), Some(Malformed::HostUserinfo));
        assert_eq!(f.host(), None);
        assert_eq!(f.path(), Some("/"));
        let f = RequestFacts::new("GET", "/", "", "http", &NO_HEADERS, Peer::default());
        assert_eq!((f.malformed(), f.host()), (None, None));
    }

    #[test]
    fn peer_from_envoy_properties() {
        let p = Peer::from_properties(Some("10.0.0.1:5555"), Some(""));
        assert_eq!(p.address(), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(p.principal(), None);
        let p = Peer::from_properties(Some("garbage"), Some("spiffe://td/ns/a/sa/b"));
        assert_eq!(p.address(), None);
        assert_eq!(p.namespace(), Some("a"));
    }
}
