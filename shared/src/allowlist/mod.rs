//! Allowlist policy: rules (methods, hosts, paths, headers, query constraints, sources) compiled
//! into a matcher whose cost does not grow with the rule count.
//!
//! A policy is read into [`RawPolicy`] (`ReadJson`, unknown fields refused), then compiled once into
//! an immutable [`AllowList`] (`AllowList::try_from(raw)` or [`AllowList::from_json`]); any
//! invalid value refuses the whole policy with a [`ConfigError`] naming its JSON path.
//!
//! Matching works on the normalized request target (see [`crate::normalize`]). Rules are
//! indexed by host (an exact-name map, a wildcard-suffix map, and the rules for any host), and
//! within each host by a segment trie over paths (patterns, exact paths and prefixes), so a
//! request only visits the rules whose host and path can match; those candidates are then
//! checked in policy order for method, headers, query and source, and the first that passes
//! allows the request.
//!
//! Methods, hosts, paths, headers, query and sources mean exactly what they mean in a mirror
//! selector: both are compiled and matched by [`crate::matching`] (see there for the shared
//! semantics: absent means any, an empty list is an error, methods are case-sensitive, hosts and
//! paths are compared in normalized form, sources come from the connection). The allowlist adds
//! only its index over hosts and paths. [`AllowList::judge_facts`] judges a request normalized
//! once into [`RequestFacts`]; [`AllowList::judge`] normalizes a [`TargetRequest`] first.

mod compile;
mod judge;
mod raw;
mod trie;

#[cfg(test)]
mod tests;

use crate::decision::Mode;
use crate::matching::{RequestMatch, SourceMatch};
use crate::ConfigError;

pub use crate::matching::RequestFacts;
pub use compile::PolicyError;
pub use judge::{Judgement, TargetRequest, NO_RULE_MATCHED};
pub use raw::{RawPolicy, RawQueryConstraint, RawResponse, RawRule, RawSources};

use trie::{PathTrie, PolicyKeyed, RuleIndex};

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
    needs_headers: bool,
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
        // The text serde_json gave for `{"error": .., "request_id": ..}` (keys sorted).
        let mut doc = String::from("{\"error\":");
        crate::json::push_string(&mut doc, self.error);
        doc.push_str(",\"request_id\":");
        match id {
            Some(id) => crate::json::push_string(&mut doc, id),
            None => doc.push_str("null"),
        }
        doc.push('}');
        doc.into_bytes()
    }
}

#[derive(Debug)]
struct Rule {
    name: String,
    /// Methods, headers and query; hosts and paths are in the index.
    request: RequestMatch,
    sources: SourceMatch,
}

#[derive(Debug, Default)]
struct HostIndex {
    any: PathTrie,
    exact: PolicyKeyed<Box<str>, PathTrie>,
    suffix: PolicyKeyed<Box<str>, PathTrie>,
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

    /// Whether any rule names `headers` (so the filter must pass the request headers).
    pub fn needs_headers(&self) -> bool {
        self.needs_headers
    }

    /// The first rule, in policy order, that matches everything it names; `None` when none does
    /// (always for a malformed target, which has no path to match).
    pub fn matching_rule(&self, request: &RequestFacts<'_>) -> Option<usize> {
        let path = request.path()?;
        let mut best: Option<RuleIndex> = None;
        let mut accept = |index: RuleIndex| {
            self.rules.get(index as usize).is_some_and(|rule| {
                rule.request.matches(request) && rule.sources.matches(&request.peer)
            })
        };
        if let Some(host) = request.host() {
            if let Some(trie) = self.hosts.exact.get(host) {
                trie.find(path, &mut best, &mut accept);
            }
            if !self.hosts.suffix.is_empty() {
                // `*.example.com` matches `a.example.com` and `a.b.example.com`: try every
                // proper suffix that starts after a dot.
                // By bytes: `.` is ASCII, so what follows it starts on a character boundary.
                for (i, &b) in host.as_bytes().iter().enumerate() {
                    if b != b'.' {
                        continue;
                    }
                    if let Some(trie) = host.get(i + 1..).and_then(|s| self.hosts.suffix.get(s)) {
                        trie.find(path, &mut best, &mut accept);
                    }
                }
            }
        }
        self.hosts.any.find(path, &mut best, &mut accept);
        best.map(|b| b as usize)
    }
}
