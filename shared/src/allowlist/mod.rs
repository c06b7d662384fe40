//! Allowlist policy: rules (methods, hosts, path patterns, query constraints, sources) compiled
//! into a matcher whose cost does not grow with the rule count.
//!
//! A policy is read into [`RawPolicy`] (serde, unknown fields refused), then compiled once into
//! an immutable [`AllowList`] (`AllowList::try_from(raw)` or [`AllowList::from_json`]); any
//! invalid value refuses the whole policy with a [`ConfigError`] naming its JSON path.
//!
//! Matching works on the normalized request target (see [`crate::normalize`]). Rules are
//! indexed by host (an exact-name map, a wildcard-suffix map, and the rules for any host), and
//! within each host by a segment trie over path patterns, so a request only visits the rules
//! whose host and path can match; those candidates are then checked in policy order for method,
//! query and source, and the first that passes allows the request.
//!
//! Sources: `cidrs` are checked against Envoy's `source.address` (the downstream peer address);
//! `principals` against the mTLS peer certificate's URI SAN (`connection.uri_san_peer_certificate`),
//! which in Istio is the workload's SPIFFE ID; `namespaces` against the namespace in that SPIFFE
//! ID, `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`. Namespaces are therefore
//! only as trustworthy as mTLS: a plaintext request has no peer identity and matches no rule that
//! names principals or namespaces.

mod compile;
mod judge;
mod pattern;
mod raw;
#[doc(hidden)]
pub mod synthetic;
mod trie;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::decision::Mode;
use crate::identity::{cidr_contains, spiffe_namespace, PrincipalPattern};
use crate::ConfigError;

pub use judge::{Judgement, TargetRequest, NO_RULE_MATCHED};
pub use pattern::PolicyError;
pub use raw::{RawPolicy, RawQueryConstraint, RawResponse, RawRule, RawSources};

use trie::{PathTrie, RuleIndex};

/// A compiled, validated allowlist policy, ready to judge requests.
#[derive(Debug)]
pub struct AllowList {
    mode: Mode,
    reject_malformed: bool,
    rewrite_path: bool,
    deny_response: DenyResponse,
    malformed_response: DenyResponse,
    rules: Vec<Rule>,
    hosts: HostIndex,
    needs_source_address: bool,
    needs_peer_identity: bool,
}

/// A locally generated response (deny or malformed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyResponse {
    /// HTTP status (400..=599).
    pub status: u32,
    /// `content-type` header value.
    pub content_type: String,
    body: Option<String>,
    error: &'static str,
}

impl DenyResponse {
    fn default_for(status: u32, error: &'static str) -> Self {
        DenyResponse {
            status,
            content_type: "application/json".to_string(),
            body: None,
            error,
        }
    }

    /// The response body: the configured body verbatim, or
    /// `{"error":"forbidden","request_id":"<id>"}` (`bad_request` for malformed requests). The
    /// request ID is the only request-derived value in it; nothing says which rule or why.
    pub fn body(&self, request_id: Option<&str>) -> Vec<u8> {
        if let Some(body) = &self.body {
            return body.as_bytes().to_vec();
        }
        // Bounded so an attacker-chosen x-request-id cannot inflate the response.
        let id = request_id.map(|id| {
            let mut end = id.len().min(128);
            while !id.is_char_boundary(end) {
                end -= 1;
            }
            &id[..end]
        });
        let doc = serde_json::json!({ "error": self.error, "request_id": id });
        doc.to_string().into_bytes()
    }
}

#[derive(Debug)]
struct Rule {
    name: String,
    methods: Option<Vec<String>>,
    query: Vec<QueryConstraint>,
    cidrs: Option<Vec<IpNet>>,
    principals: Option<Vec<PrincipalPattern>>,
    namespaces: Option<Vec<String>>,
}

#[derive(Debug)]
enum QueryConstraint {
    Present(String),
    Absent(String),
    Equals(String, String),
}

#[derive(Debug, Default)]
struct HostIndex {
    any: PathTrie,
    exact: HashMap<Box<str>, PathTrie>,
    suffix: HashMap<Box<str>, PathTrie>,
}

/// What the matcher needs to know about a request, already normalized.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestFacts<'a> {
    /// `:method`.
    pub method: &'a str,
    /// Normalized host name (lowercase, no trailing dot, no port); empty when there is none.
    pub host: &'a str,
    /// Normalized path, starting with `/`, without query.
    pub path: &'a str,
    /// Raw query string without `?`.
    pub query: Option<&'a str>,
    /// Downstream peer address, when known.
    pub source_address: Option<IpAddr>,
    /// mTLS peer SPIFFE ID, when the connection has one.
    pub peer_principal: Option<&'a str>,
}

impl AllowList {
    /// Parses and compiles a policy from its JSON text.
    pub fn from_json(bytes: &[u8]) -> Result<AllowList, ConfigError> {
        let raw: RawPolicy = ConfigError::parse_json(bytes)?;
        AllowList::try_from(raw)
    }

    /// Enforce or monitor.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether malformed request targets get the malformed response.
    pub fn reject_malformed(&self) -> bool {
        self.reject_malformed
    }

    /// Whether `:path` is rewritten to the normalized path.
    pub fn rewrite_path(&self) -> bool {
        self.rewrite_path
    }

    /// The response to requests that no rule allows.
    pub fn deny_response(&self) -> &DenyResponse {
        &self.deny_response
    }

    /// The response to malformed request targets.
    pub fn malformed_response(&self) -> &DenyResponse {
        &self.malformed_response
    }

    /// Number of rules.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Rule names in policy order (index = the rule index in decisions).
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }

    /// Name of the rule at `index`.
    pub fn rule_name(&self, index: usize) -> Option<&str> {
        self.rules.get(index).map(|r| r.name.as_str())
    }

    /// Whether any rule names `cidrs` (so the filter must read `source.address`).
    pub fn needs_source_address(&self) -> bool {
        self.needs_source_address
    }

    /// Whether any rule names principals or namespaces (so the filter must read the peer's
    /// SPIFFE ID).
    pub fn needs_peer_identity(&self) -> bool {
        self.needs_peer_identity
    }

    /// The first rule, in policy order, that matches everything it names; `None` when none does.
    pub fn matching_rule(&self, request: &RequestFacts<'_>) -> Option<usize> {
        let mut best: Option<RuleIndex> = None;
        let mut accept = |index: RuleIndex| {
            self.rules
                .get(index as usize)
                .is_some_and(|rule| rule.admits(request))
        };
        let host = request.host;
        if !host.is_empty() {
            if let Some(trie) = self.hosts.exact.get(host) {
                trie.find(request.path, &mut best, &mut accept);
            }
            if !self.hosts.suffix.is_empty() {
                // `*.example.com` matches `a.example.com` and `a.b.example.com`: try every
                // proper suffix that starts after a dot.
                for (i, _) in host.match_indices('.') {
                    if let Some(trie) = self.hosts.suffix.get(&host[i + 1..]) {
                        trie.find(request.path, &mut best, &mut accept);
                    }
                }
            }
        }
        self.hosts.any.find(request.path, &mut best, &mut accept);
        best.map(|b| b as usize)
    }
}

impl Rule {
    /// Checks everything but host and path (which the index already matched).
    fn admits(&self, request: &RequestFacts<'_>) -> bool {
        if let Some(methods) = &self.methods {
            if !methods.iter().any(|m| m == request.method) {
                return false;
            }
        }
        if !self.query.iter().all(|c| c.holds(request.query)) {
            return false;
        }
        if let Some(cidrs) = &self.cidrs {
            let Some(ip) = request.source_address else {
                return false;
            };
            if !cidrs.iter().any(|net| cidr_contains(net, ip)) {
                return false;
            }
        }
        if let Some(principals) = &self.principals {
            let Some(peer) = request.peer_principal else {
                return false;
            };
            if !principals.iter().any(|p| p.matches(peer)) {
                return false;
            }
        }
        if let Some(namespaces) = &self.namespaces {
            let Some(ns) = request.peer_principal.and_then(spiffe_namespace) else {
                return false;
            };
            if !namespaces.iter().any(|n| n == ns) {
                return false;
            }
        }
        true
    }
}

impl QueryConstraint {
    fn holds(&self, query: Option<&str>) -> bool {
        let pairs = || crate::normalize::query_pairs(query.unwrap_or(""));
        match self {
            QueryConstraint::Present(name) => pairs().any(|(n, _)| n == name.as_str()),
            QueryConstraint::Absent(name) => !pairs().any(|(n, _)| n == name.as_str()),
            QueryConstraint::Equals(name, value) => {
                let mut seen = false;
                for (n, v) in pairs() {
                    if n == name.as_str() {
                        if v != value.as_str() {
                            // Parameter pollution: every occurrence must carry the value, since
                            // the upstream may read any of them.
                            return false;
                        }
                        seen = true;
                    }
                }
                seen
            }
        }
    }
}
