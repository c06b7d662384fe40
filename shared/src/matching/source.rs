//! Source matching: who sent the request, from the connection (never from headers).
//!
//! `cidrs` are checked against Envoy's `source.address` (the downstream peer address; an
//! IPv4-mapped IPv6 address counts as its IPv4 address); `principals` against the mTLS peer
//! certificate's URI SAN (`connection.uri_san_peer_certificate`), which in Istio is the
//! workload's SPIFFE ID, exactly or under a `/*` prefix; `namespaces` against the namespace in
//! that SPIFFE ID, which only the Istio workload shape `spiffe://<td>/ns/<ns>/sa/<sa>` has (see
//! [`crate::identity::SpiffeId`]). Every kind that is named must hold, by one of its entries. A
//! plaintext request has no peer identity and matches no rule that names principals or
//! namespaces, so namespaces are only as trustworthy as mTLS.

use crate::error::Quoted;
use std::net::IpAddr;

#[cfg(feature = "serde")]
use serde::Serialize;
use thiserror::Error;

use crate::error::json_path::{At, PathError, ReadJson};

use super::compile_list;
use crate::identity::{self, cidr_contains, Cidr, CidrError, PrincipalPattern, SpiffeId};
use crate::ConfigError;

/// Source constraints as written; every kind that is named must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct RawSources {
    /// Networks the downstream address (`source.address`) must be in: `10.0.0.0/8`,
    /// `2001:db8::/32` or a bare address; host bits must be clear.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub cidrs: Option<Vec<String>>,
    /// SPIFFE IDs of the mTLS peer: exact, or a prefix ending in `/*`.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub principals: Option<Vec<String>>,
    /// Kubernetes namespaces, taken from the mTLS peer's SPIFFE ID
    /// (`spiffe://<trust domain>/ns/<namespace>/sa/<service account>`).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub namespaces: Option<Vec<String>>,
}

impl ReadJson for RawSources {
    fn read_json(at: At<'_, '_>) -> Result<RawSources, PathError> {
        let (mut cidrs, mut principals, mut namespaces) = (None, None, None);
        at.object(
            "struct RawSources",
            &["cidrs", "principals", "namespaces"],
            &mut |m| match m.name {
                "cidrs" => m.read(&mut cidrs),
                "principals" => m.read(&mut principals),
                _ => m.read(&mut namespaces),
            },
        )?;
        Ok(RawSources {
            cidrs: cidrs.flatten(),
            principals: principals.flatten(),
            namespaces: namespaces.flatten(),
        })
    }
}

/// Why a source entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SourceError {
    /// `sources: {}` names nothing.
    #[error("must not be empty: name at least one of \"cidrs\", \"principals\", \"namespaces\" (omit \"sources\" to match any source)")]
    Empty,
    /// A CIDR that does not parse.
    #[error("{} is not a CIDR (10.0.0.0/8, 2001:db8::/32) or IP address", Quoted(.0))]
    BadCidr(String),
    /// A CIDR with host bits set is almost always a typo for a narrower or wider range.
    #[error("{} has host bits set; did you mean {}?", Quoted(.0), .1)]
    CidrHostBits(String, Cidr),
    /// Not a SPIFFE ID or prefix.
    #[error("{} is not a SPIFFE ID spiffe://<trust domain>/<path>, exact or ending in \"/*\" for a prefix: {}", Quoted(.0), .1)]
    BadPrincipal(String, &'static str),
    /// Not a Kubernetes namespace name.
    #[error("{} is not a namespace name: must be a Kubernetes namespace name (lowercase [a-z0-9-], at most 63)", Quoted(.0))]
    BadNamespace(String),
}

/// A peer's mTLS identity as its connection reports it, parsed once: the SPIFFE ID and the
/// Kubernetes namespace in it. A connection keeps one, and each request's [`Peer`] borrows it
/// ([`Peer::with_identity`]) instead of parsing the ID again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    id: String,
    /// The namespace, copied once per connection so that each request reads it without slicing
    /// `id` again (a character-boundary check, a call at opt-level "z").
    namespace: Option<Box<str>>,
}

impl PeerIdentity {
    /// The identity in `id` (the peer certificate's URI SAN); `None` when empty.
    pub fn new(id: String) -> Option<PeerIdentity> {
        if id.is_empty() {
            return None;
        }
        let namespace = SpiffeId::parse(&id)
            .and_then(|parsed| parsed.namespace())
            .map(Box::from);
        Some(PeerIdentity { id, namespace })
    }

    /// The SPIFFE ID as reported.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The Kubernetes namespace in an Istio workload ID.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }
}

/// Who sent a request, as the connection says. The SPIFFE ID is parsed once, when the peer is
/// made, however many rules then ask for its namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Peer<'a> {
    address: Option<IpAddr>,
    principal: Option<&'a str>,
    namespace: Option<&'a str>,
}

impl<'a> Peer<'a> {
    /// A peer at `address` (`source.address`, when known) with mTLS identity `principal` (the
    /// peer certificate's URI SAN; an empty one counts as absent).
    pub fn new(address: Option<IpAddr>, principal: Option<&'a str>) -> Peer<'a> {
        let principal = principal.filter(|p| !p.is_empty());
        Peer {
            address,
            principal,
            namespace: principal
                .and_then(SpiffeId::parse)
                .and_then(|id| id.namespace()),
        }
    }

    /// A peer at `address` whose identity a connection parsed once (no parsing here).
    pub fn with_identity(address: Option<IpAddr>, identity: Option<&'a PeerIdentity>) -> Peer<'a> {
        Peer {
            address,
            principal: identity.map(PeerIdentity::id),
            namespace: identity.and_then(PeerIdentity::namespace),
        }
    }

    /// The downstream peer address, when known.
    pub fn address(&self) -> Option<IpAddr> {
        self.address
    }

    /// The mTLS peer's SPIFFE ID, when the connection has one.
    pub fn principal(&self) -> Option<&'a str> {
        self.principal
    }

    /// The Kubernetes namespace in the peer's SPIFFE ID (only the Istio workload shape
    /// `spiffe://<td>/ns/<ns>/sa/<sa>` has one, see [`SpiffeId`]).
    pub fn namespace(&self) -> Option<&'a str> {
        self.namespace
    }
}

/// Parses a `cidrs` entry.
pub fn parse_cidr(raw: &str) -> Result<Cidr, SourceError> {
    identity::parse_cidr(raw).map_err(|e| match e {
        CidrError::Invalid => SourceError::BadCidr(raw.to_string()),
        CidrError::HostBits { network } => SourceError::CidrHostBits(raw.to_string(), network),
    })
}

/// Parses a `principals` entry.
pub fn parse_principal(raw: &str) -> Result<PrincipalPattern, SourceError> {
    PrincipalPattern::parse(raw).map_err(|e| SourceError::BadPrincipal(raw.to_string(), e.reason))
}

/// Parses a `namespaces` entry.
pub fn parse_namespace(raw: &str) -> Result<String, SourceError> {
    identity::check_namespace(raw)
        .map(|()| raw.to_string())
        .map_err(|_| SourceError::BadNamespace(raw.to_string()))
}

/// Compiled source constraints; `None` fields were not named and hold for any peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceMatch {
    cidrs: Option<Vec<Cidr>>,
    principals: Option<Vec<PrincipalPattern>>,
    namespaces: Option<Vec<String>>,
}

impl SourceMatch {
    /// Compiles `sources` found at JSON path `path`; `None` (absent) holds for any peer.
    pub fn compile(path: &str, raw: Option<&RawSources>) -> Result<SourceMatch, ConfigError> {
        let Some(raw) = raw else {
            return Ok(SourceMatch::default());
        };
        if raw.cidrs.is_none() && raw.principals.is_none() && raw.namespaces.is_none() {
            return Err(ConfigError::at(path, SourceError::Empty));
        }
        Ok(SourceMatch {
            cidrs: compile_list(&format!("{path}.cidrs"), raw.cidrs.as_deref(), |c| {
                parse_cidr(c)
            })?,
            principals: compile_list(
                &format!("{path}.principals"),
                raw.principals.as_deref(),
                |p| parse_principal(p),
            )?,
            namespaces: compile_list(
                &format!("{path}.namespaces"),
                raw.namespaces.as_deref(),
                |n| parse_namespace(n),
            )?,
        })
    }

    /// Whether the constraints name the source address (so it must be read).
    pub fn needs_address(&self) -> bool {
        self.cidrs.is_some()
    }

    /// Whether the constraints name the peer identity (so it must be read).
    pub fn needs_identity(&self) -> bool {
        self.principals.is_some() || self.namespaces.is_some()
    }

    /// Whether every named kind holds for `peer`.
    pub fn matches(&self, peer: &Peer<'_>) -> bool {
        let cidrs_ok = self.cidrs.as_ref().is_none_or(|cidrs| {
            peer.address
                .is_some_and(|ip| cidrs.iter().any(|net| cidr_contains(net, ip)))
        });
        let principals_ok = self.principals.as_ref().is_none_or(|patterns| {
            peer.principal
                .is_some_and(|id| patterns.iter().any(|p| p.matches(id)))
        });
        let namespaces_ok = self.namespaces.as_ref().is_none_or(|names| {
            peer.namespace()
                .is_some_and(|ns| names.iter().any(|n| n == ns))
        });
        cidrs_ok && principals_ok && namespaces_ok
    }
}

#[cfg(test)]
mod tests;
