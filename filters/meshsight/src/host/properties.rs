//! Properties read at most once: per request for what changes per request, per connection for
//! what a connection fixes (its peer address, mTLS identity, Istio peer metadata, its HTTP
//! version), so that a kept-alive connection pays for those once rather than on every request.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::net::IpAddr;
use std::rc::Rc;

use meshsight_policy::identity::parse_socket_address;
use meshsight_policy::matching::PeerIdentity;

use meshsight_host_abi::callbacks::ContextIdHasher;
use meshsight_host_abi::imports as hostcalls;

/// Facts a downstream connection fixes for all its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionFact {
    /// `source.address` (`ip:port`).
    SourceAddress,
    /// `destination.address` (`ip:port`).
    DestinationAddress,
    /// The mTLS peer's SPIFFE id: `connection.uri_san_peer_certificate`, or else the filter
    /// state `io.istio.peer_principal`, where an Istio waypoint keeps the HBONE client's id (its
    /// HTTP filters run on an internal listener behind the tunnel, with no peer certificate).
    PeerPrincipal,
    /// `downstream_peer.namespace` (Istio peer metadata).
    PeerNamespace,
    /// `downstream_peer.workload`.
    PeerWorkload,
    /// `downstream_peer.service`.
    PeerService,
    /// `request.protocol` (`HTTP/1.1`, `HTTP/2`, ...): Envoy picks one codec per downstream
    /// connection. Only a client mixing HTTP/1.0 and HTTP/1.1 on one kept-alive connection
    /// (which Envoy refuses unless `accept_http_10` is set) would see its first version kept.
    Protocol,
}

const FACTS: usize = 7;

impl ConnectionFact {
    /// Where the host keeps the fact, in order of preference.
    fn paths(self) -> &'static [&'static [&'static str]] {
        match self {
            ConnectionFact::SourceAddress => &[&["source", "address"]],
            ConnectionFact::DestinationAddress => &[&["destination", "address"]],
            ConnectionFact::PeerPrincipal => &[
                &["connection", "uri_san_peer_certificate"],
                &["filter_state", "io.istio.peer_principal"],
            ],
            ConnectionFact::PeerNamespace => &[&["downstream_peer", "namespace"]],
            ConnectionFact::PeerWorkload => &[&["downstream_peer", "workload"]],
            ConnectionFact::PeerService => &[&["downstream_peer", "service"]],
            ConnectionFact::Protocol => &[&["request", "protocol"]],
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// One connection's facts, each read from the host on first use.
#[derive(Debug, Default)]
pub struct ConnectionFacts {
    values: [OnceCell<Option<String>>; FACTS],
    /// [`ConnectionFact::SourceAddress`]'s IP, parsed once.
    source_ip: OnceCell<Option<IpAddr>>,
    /// [`ConnectionFact::PeerPrincipal`], parsed once.
    identity: OnceCell<Option<PeerIdentity>>,
}

impl ConnectionFacts {
    /// The fact as text; `None` when the host has none (or an empty one).
    pub fn get(&self, fact: ConnectionFact) -> Option<&str> {
        self.values
            .get(fact.slot())?
            .get_or_init(|| fact.paths().iter().find_map(|path| string_property(path)))
            .as_deref()
    }

    /// The peer's mTLS identity, parsed once per connection.
    pub fn identity(&self) -> Option<&PeerIdentity> {
        self.identity
            .get_or_init(|| {
                self.get(ConnectionFact::PeerPrincipal)
                    .and_then(|id| PeerIdentity::new(id.to_string()))
            })
            .as_ref()
    }

    /// The peer's IP (`source.address` without the port), parsed once per connection.
    pub fn source_ip(&self) -> Option<IpAddr> {
        *self.source_ip.get_or_init(|| {
            self.get(ConnectionFact::SourceAddress)
                .and_then(parse_socket_address)
                .map(|(ip, _)| ip)
        })
    }
}

/// Most connections remembered per worker; past it the cache starts over (connection ids are
/// never reused by a proxy, so a stale entry can only cost a re-read, never a wrong answer).
const MAX_CONNECTIONS: usize = 4096;

/// Connection ids the proxy hands out in order: hashed with one multiply, as context ids are,
/// not with SipHash on every request.
type ByConnectionId = HashMap<u64, Rc<ConnectionFacts>, BuildHasherDefault<ContextIdHasher>>;

/// Per-worker cache of [`ConnectionFacts`] by `connection.id`.
#[derive(Debug, Default, Clone)]
pub struct ConnectionCache {
    by_id: Rc<RefCell<ByConnectionId>>,
}

impl ConnectionCache {
    fn facts(&self, id: Option<u64>) -> Rc<ConnectionFacts> {
        let Some(id) = id else {
            return Rc::default();
        };
        let mut by_id = self.by_id.borrow_mut();
        if by_id.len() >= MAX_CONNECTIONS && !by_id.contains_key(&id) {
            by_id.clear();
        }
        by_id.entry(id).or_default().clone()
    }
}

/// The properties one request reads, each at most once.
#[derive(Debug)]
pub struct Properties {
    cache: ConnectionCache,
    connection: OnceCell<Rc<ConnectionFacts>>,
}

impl Properties {
    /// For a new request of a worker whose connections `cache` remembers.
    pub fn new(cache: &ConnectionCache) -> Properties {
        Properties {
            cache: cache.clone(),
            connection: OnceCell::new(),
        }
    }

    /// A fact of this request's connection (read once per connection).
    pub fn connection(&self, fact: ConnectionFact) -> Option<&str> {
        self.connection_facts().get(fact)
    }

    fn connection_facts(&self) -> &ConnectionFacts {
        self.connection.get_or_init(|| {
            self.cache
                .facts(int_property(&["connection", "id"]).map(|n| n as u64))
        })
    }

    /// The peer's IP, read and parsed once per connection.
    pub fn source_ip(&self) -> Option<IpAddr> {
        self.connection_facts().source_ip()
    }

    /// The peer's mTLS identity, read and parsed once per connection.
    pub fn peer_identity(&self) -> Option<&PeerIdentity> {
        self.connection_facts().identity()
    }

    /// A per-request property as text (read each time it is asked for: ask once).
    pub fn string(&self, path: &[&str]) -> Option<String> {
        string_property(path)
    }

    /// A per-request integer property (Envoy's 8 little-endian bytes, or decimal text).
    pub fn int(&self, path: &[&str]) -> Option<i64> {
        int_property(path)
    }
}

/// Where proxies keep their node metadata, in order of preference: Envoy answers
/// `xds.node.metadata.*` (checked on 1.36.4 and 1.40.0, which answer nothing under
/// `node.metadata.*`); the old path stays for proxies that still answer it.
const NODE_METADATA: [[&str; 3]; 2] = [["xds", "node", "metadata"], ["node", "metadata", ""]];

/// This proxy's node metadata at `key` (e.g. `["NAMESPACE"]`, `["LABELS", "app"]`), as text;
/// read at configuration only.
pub fn node_metadata(key: &[&str]) -> Option<String> {
    NODE_METADATA.iter().find_map(|prefix| {
        let mut path: Vec<&str> = prefix.iter().copied().filter(|p| !p.is_empty()).collect();
        path.extend_from_slice(key);
        string_property(&path)
    })
}

fn string_property(path: &[&str]) -> Option<String> {
    let bytes = hostcalls::get_property(path).ok().flatten()?;
    let s = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    (!s.is_empty()).then_some(s)
}

fn int_property(path: &[&str]) -> Option<i64> {
    let bytes = hostcalls::get_property(path).ok().flatten()?;
    as_i64(&bytes)
}

/// Envoy returns integers, timestamps and durations as 8 little-endian bytes.
pub fn as_i64(bytes: &[u8]) -> Option<i64> {
    match <[u8; 8]>::try_from(bytes) {
        Ok(b) => Some(i64::from_le_bytes(b)),
        Err(_) => std::str::from_utf8(bytes).ok()?.trim().parse().ok(),
    }
}
