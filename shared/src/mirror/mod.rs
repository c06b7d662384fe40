//! Mirror policy: targets, rules, deterministic sampling, rate caps and exploit signatures.
//!
//! The plugin configuration is read into [`RawMirrorPolicy`] (`ReadJson`, unknown fields refused,
//! `raw`), then compiled once into an immutable [`MirrorPolicy`] (`MirrorPolicy::try_from(raw)`
//! or [`MirrorPolicy::from_json`], `compile`); any invalid value refuses the whole policy with a
//! [`ConfigError`] naming its JSON path.
//!
//! Per request (`judge`) the filter scans the head (and, when [`MirrorPolicy::wants_body`] says
//! so, the first `max_body_bytes` of the body) for signatures, asks [`MirrorPolicy::select`]
//! which target and why, and passes the [`Selection`] through the worker's [`RateLimiter`]
//! (`rate`) to get the [`MirrorDecision`](crate::decision::MirrorDecision) that goes to filter
//! state. A signature hit always mirrors; otherwise the first rule that matches decides
//! (`always`, `sample`, `never`); no match: not mirrored.
//!
//! Rule selectors (`sources`, `request`) are compiled and matched by [`crate::matching`], with
//! the meaning they have in allowlist rules; paths and hosts are compared in normalized form,
//! so one [`RequestFacts`] per request serves both jobs ([`MirrorPolicy::select_facts`]).
//! Signatures, by contrast, look at the request as received (see [`signatures`]). What follows
//! a decision is the mirror's own: the copy's state machine ([`copy`]), its delivery
//! ([`delivery`]) and the decoding the signatures look through ([`decode`]).

mod compile;
pub mod copy;
pub mod decode;
pub mod delivery;
pub mod hold;
mod judge;
pub mod rate;
pub mod raw;
pub mod signatures;

#[cfg(test)]
mod tests;

use crate::error::ConfigError;
use crate::matching::{RequestFacts, RequestMatch, SourceMatch};
use raw::RawMirrorPolicy;
use signatures::SignatureSet;

pub use crate::matching::Peer;
pub use crate::sampling;
pub use compile::MAX_BODY_BYTES_LIMIT;
pub use judge::{MirrorRequest, Selection};
pub use rate::RateLimiter;
pub use raw::Delivery;

/// A named sensor and how copies reach it.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Name used in rules, decisions, metrics and the decision header value.
    pub name: String,
    /// Envoy cluster of the sensor.
    pub cluster: String,
    /// `header` or `dispatch`.
    pub delivery: Delivery,
    /// Copies per second per worker.
    pub max_rps: f64,
    /// Token-bucket size.
    pub burst: f64,
    /// Decision header (lower-case) for `header` delivery.
    pub header: String,
    /// Whether `dispatch` copies keep credentials.
    pub include_secrets: bool,
    /// `dispatch` call timeout in milliseconds.
    pub timeout_ms: u64,
    /// Most `dispatch` calls in flight per worker.
    pub max_in_flight: u32,
    /// `:authority` override for `dispatch` copies.
    pub authority: Option<String>,
}

/// Index of a target in [`MirrorPolicy::targets`].
pub type TargetId = usize;

/// What a rule does with a request its selector matches.
#[derive(Debug, Clone, PartialEq)]
enum Action {
    Always,
    Sample(f64),
    Never,
}

/// A compiled rule: its selector, action and resolved target.
#[derive(Debug, Clone)]
struct Rule {
    name: String,
    sources: SourceMatch,
    request: RequestMatch,
    action: Action,
    target: Option<TargetId>,
}

/// The compiled, validated mirror policy.
#[derive(Debug)]
pub struct MirrorPolicy {
    targets: Vec<Target>,
    rules: Vec<Rule>,
    signatures: SignatureSet,
    signature_target: Option<TargetId>,
    max_body_bytes: usize,
    hold_for_body: bool,
    hold_timeout_ms: u64,
    copy_denied: bool,
    decision_headers: Vec<String>,
    responses: Option<crate::response::ResponsePolicy>,
}

impl MirrorPolicy {
    /// Parses and compiles a policy from the plugin configuration bytes.
    pub fn from_json(bytes: &[u8]) -> Result<MirrorPolicy, ConfigError> {
        let raw: RawMirrorPolicy = ConfigError::parse_json(bytes)?;
        MirrorPolicy::try_from(raw)
    }

    /// The targets, indexed by [`TargetId`].
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// Most body bytes inspected and copied.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// Whether the request is held while its body is inspected (see
    /// [`raw::RawMirrorPolicy::hold_for_body`]); only matters with `header` targets.
    pub fn hold_for_body(&self) -> bool {
        self.hold_for_body && self.targets.iter().any(|t| t.delivery == Delivery::Header)
    }

    /// Whether the policy lets the filter hold a request while it reads the body
    /// (`hold_for_body`, whatever the targets' delivery): for a request the allowlist answers
    /// locally, that is what lets a body-borne indicator still be seen.
    pub fn holds_bodies(&self) -> bool {
        self.hold_for_body
    }

    /// Longest a request is held for its body, in milliseconds (see
    /// [`raw::RawMirrorPolicy::hold_timeout_ms`]).
    pub fn hold_timeout_ms(&self) -> u64 {
        self.hold_timeout_ms
    }

    /// Whether a request the allowlist denied at its head still gets a copy when a signature
    /// matched that head (see [`raw::RawMirrorPolicy::copy_denied`]).
    pub fn copy_denied(&self) -> bool {
        self.copy_denied
    }

    /// Every decision-header name of `header` targets (and the default name), lower-case,
    /// without duplicates: the filter strips all of them from incoming requests.
    pub fn decision_headers(&self) -> &[String] {
        &self.decision_headers
    }

    /// Categories of the enabled signature rules, in report order (what a decision's
    /// `signatures` lists).
    pub fn signature_names(&self) -> &[String] {
        self.signatures.names()
    }

    /// Ids of the enabled signature rules, in report order (what a decision's
    /// `signature_rules` lists).
    pub fn signature_rule_ids(&self) -> &[String] {
        self.signatures.rule_ids()
    }

    /// The compiled signatures (rules, categories, automaton).
    pub fn signature_set(&self) -> &SignatureSet {
        &self.signatures
    }

    /// The target signature hits (and response copies) go to.
    pub fn signature_target(&self) -> Option<TargetId> {
        self.signature_target
    }

    /// When responses are scanned and with which rules (`None`: never).
    pub fn responses(&self) -> Option<&crate::response::ResponsePolicy> {
        self.responses.as_ref()
    }

    /// Whether any rule looks at the peer (address, principal, namespace): only then does the
    /// filter read them.
    pub fn needs_peer(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.sources.needs_address() || r.sources.needs_identity())
    }
}
