//! Mirror policy: targets, rules, deterministic sampling, rate caps and exploit signatures.
//!
//! The plugin configuration ([`raw::RawMirrorPolicy`]) compiles once into a [`MirrorPolicy`].
//! Per request the filter scans the head (and, when [`MirrorPolicy::wants_body`] says so, the
//! first `max_body_bytes` of the body) for signatures, asks [`MirrorPolicy::select`] which
//! target and why, and passes the selection through the worker's [`RateLimiter`] to get the
//! [`MirrorDecision`] that goes to filter state. A signature hit always mirrors; otherwise the
//! first rule that matches decides (`always`, `sample`, `never`); no match: not mirrored.
//!
//! Rule selectors (`sources`, `request`) are compiled and matched by [`crate::matching`], with
//! the meaning they have in allowlist rules; paths and hosts are compared in normalized form,
//! so one [`RequestFacts`] per request serves both filters ([`MirrorPolicy::select_facts`]).
//! Signatures, by contrast, look at the request as received (see [`signatures`]).

pub mod copy;
pub mod decode;
pub mod delivery;
pub mod rate;
pub mod raw;
pub mod signatures;

#[cfg(test)]
mod tests;

use crate::decision::{MirrorDecision, MirrorReason};
use crate::error::ConfigError;
use crate::headers::{is_token, HeaderBlock};
use crate::matching::{RequestFacts, RequestMatch, SourceMatch};
use rate::TokenBucket;
use raw::{ActionType, RawMirrorPolicy, RawRule, RawTarget};
use signatures::{CleanPieces, RequestView, SignatureHits, SignatureSet};
use std::collections::{BTreeMap, BTreeSet};

pub use crate::matching::Peer;
pub use crate::sampling;
pub use raw::Delivery;

/// Most `max_body_bytes` accepted (Envoy's default per-connection buffer limit).
pub const MAX_BODY_BYTES_LIMIT: usize = 1024 * 1024;

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

#[derive(Debug, Clone, PartialEq)]
enum Action {
    Always,
    Sample(f64),
    Never,
}

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
    copy_denied: bool,
    decision_headers: Vec<String>,
}

/// What the policy looks at in a request head.
#[derive(Debug, Clone, Copy)]
pub struct MirrorRequest<'a> {
    /// `:method`.
    pub method: &'a str,
    /// `:path` as received.
    pub path: &'a str,
    /// `:authority` (or `host`).
    pub authority: &'a str,
    /// All request headers, the client-supplied decision header already removed.
    pub headers: &'a HeaderBlock,
    /// Connection peer.
    pub peer: Peer<'a>,
    /// The request already normalized for the allowlist, when the caller has it (with a peer
    /// that carries what this policy's selectors look at): selection reuses it rather than
    /// normalizing the request a second time.
    pub normalized: Option<&'a RequestFacts<'a>>,
}

impl<'a> MirrorRequest<'a> {
    fn view(&self) -> RequestView<'a> {
        RequestView {
            method: self.method,
            path: self.path,
            headers: self.headers,
        }
    }

    /// The `x-request-id` header, the sampling key.
    pub fn request_id(&self) -> Option<&'a str> {
        self.headers.value("x-request-id")
    }

    /// The request normalized once for the selectors (the scheme, for the default port, is
    /// read from `:scheme` when the headers carry it).
    pub fn facts(&self) -> RequestFacts<'a> {
        let scheme = self.headers.value(":scheme").unwrap_or("");
        RequestFacts::new(
            self.method,
            self.path,
            self.authority,
            scheme,
            self.headers,
            self.peer,
        )
    }
}

/// Which target (if any) a request goes to and why, before the rate cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Chosen target when the request is selected.
    pub target: Option<TargetId>,
    /// `Signature`, `Rule`, `Sample` (selected) or `NotSelected`.
    pub reason: MirrorReason,
    /// Name of the rule that decided.
    pub rule: Option<String>,
    /// Categories of the matched signature rules.
    pub signatures: Vec<String>,
    /// Ids of the matched signature rules.
    pub signature_rules: Vec<String>,
}

impl Selection {
    /// Whether the policy wants a copy.
    pub fn selected(&self) -> bool {
        self.target.is_some()
    }
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

    /// Whether any rule looks at the peer (address, principal, namespace): only then does the
    /// filter read them.
    pub fn needs_peer(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.sources.needs_address() || r.sources.needs_identity())
    }

    /// An empty hit set for this policy's signatures.
    pub fn new_hits(&self) -> SignatureHits {
        self.signatures.new_hits()
    }

    /// Matches signatures in the request's path, query and headers.
    pub fn scan_head(&self, req: &MirrorRequest<'_>, hits: &mut SignatureHits) {
        if self.signature_target.is_some() {
            self.signatures.scan_head(&req.view(), hits);
        }
    }

    /// [`MirrorPolicy::scan_head`] for a worker that scans request after request: pieces it
    /// found clean before are not scanned again (`clean` must belong to this policy's worker).
    pub fn scan_head_remembering(
        &self,
        req: &MirrorRequest<'_>,
        hits: &mut SignatureHits,
        clean: &mut CleanPieces,
    ) {
        if self.signature_target.is_some() {
            self.signatures
                .scan_head_remembering(&req.view(), hits, Some(clean));
        }
    }

    /// Whether the body of this request should be read (up to `max_body_bytes`) before
    /// deciding. `false` when the head already decided a copy (a signature matched) and the body
    /// cannot change that, or no enabled signature looks in bodies.
    pub fn wants_body(&self, req: &MirrorRequest<'_>, hits: &SignatureHits) -> bool {
        self.max_body_bytes > 0
            && self.signature_target.is_some()
            && !hits.any()
            && self.signatures.wants_body(&req.view())
    }

    /// Matches signatures in the first `max_body_bytes` of the body (longer input is cut).
    pub fn scan_body(&self, req: &MirrorRequest<'_>, body: &[u8], hits: &mut SignatureHits) {
        if self.signature_target.is_some() {
            let body = &body[..body.len().min(self.max_body_bytes)];
            self.signatures.scan_body(&req.view(), body, hits);
        }
    }

    /// Decides, from signature hits and then the first matching rule, where a copy goes
    /// (normalizes the request, then [`MirrorPolicy::select_facts`]).
    pub fn select(&self, req: &MirrorRequest<'_>, hits: &SignatureHits) -> Selection {
        // Normalize only when a rule will look: a signature decides alone, and no rules means
        // nothing else can select.
        if let Some(selection) = self.signature_selection(hits) {
            return selection;
        }
        if self.rules.is_empty() {
            return Selection {
                target: None,
                reason: MirrorReason::NotSelected,
                rule: None,
                signatures: Vec::new(),
                signature_rules: Vec::new(),
            };
        }
        match req.normalized {
            Some(facts) => self.select_facts(facts, hits),
            None => self.select_facts(&req.facts(), hits),
        }
    }

    /// A signature decides alone: the selection when one matched and there is a target.
    fn signature_selection(&self, hits: &SignatureHits) -> Option<Selection> {
        let target = self.signature_target.filter(|_| hits.any())?;
        Some(Selection {
            target: Some(target),
            reason: MirrorReason::Signature,
            rule: None,
            signatures: self.signatures.hit_names(hits),
            signature_rules: self.signatures.hit_rule_ids(hits),
        })
    }

    /// Decides, from signature hits and then the first rule whose selector matches the request
    /// normalized once into `facts` (the same facts the allowlist judges), where a copy goes.
    pub fn select_facts(&self, facts: &RequestFacts<'_>, hits: &SignatureHits) -> Selection {
        if let Some(selection) = self.signature_selection(hits) {
            return selection;
        }
        let Some(rule) = self
            .rules
            .iter()
            .find(|r| r.sources.matches(&facts.peer) && r.request.matches(facts))
        else {
            return Selection {
                target: None,
                reason: MirrorReason::NotSelected,
                rule: None,
                signatures: Vec::new(),
                signature_rules: Vec::new(),
            };
        };
        let (target, reason) = match rule.action {
            Action::Always => (rule.target, MirrorReason::Rule),
            Action::Sample(fraction)
                if sampling::sampled(facts.headers.value("x-request-id"), fraction) =>
            {
                (rule.target, MirrorReason::Sample)
            }
            Action::Sample(_) | Action::Never => (None, MirrorReason::NotSelected),
        };
        Selection {
            target,
            reason: if target.is_some() {
                reason
            } else {
                MirrorReason::NotSelected
            },
            rule: Some(rule.name.clone()),
            signatures: Vec::new(),
            signature_rules: Vec::new(),
        }
    }
}

/// Per-worker rate caps, one token bucket per target.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    buckets: Vec<TokenBucket>,
}

impl RateLimiter {
    /// Full buckets for every target of `policy`.
    pub fn new(policy: &MirrorPolicy) -> RateLimiter {
        RateLimiter {
            buckets: policy
                .targets
                .iter()
                .map(|t| TokenBucket::new(t.max_rps, t.burst))
                .collect(),
        }
    }

    /// Turns a selection into the final decision: a selected request that finds its target's
    /// bucket empty at `clock`'s now becomes `RateLimited` (not mirrored). A request not
    /// selected does not read the clock.
    pub fn decide(
        &mut self,
        policy: &MirrorPolicy,
        selection: Selection,
        clock: &mut copy::Clock<'_>,
    ) -> MirrorDecision {
        let target_name = |id: TargetId| policy.targets.get(id).map(|t| t.name.clone());
        match selection.target {
            Some(id) => {
                let admitted = self
                    .buckets
                    .get_mut(id)
                    .is_some_and(|b| b.try_take(clock.now()));
                MirrorDecision {
                    mirrored: admitted,
                    target: target_name(id),
                    reason: if admitted {
                        selection.reason
                    } else {
                        MirrorReason::RateLimited
                    },
                    rule: selection.rule,
                    signatures: selection.signatures,
                    signature_rules: selection.signature_rules,
                }
            }
            None => MirrorDecision {
                mirrored: false,
                target: None,
                reason: selection.reason,
                rule: selection.rule,
                signatures: selection.signatures,
                signature_rules: selection.signature_rules,
            },
        }
    }
}

fn valid_target_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

fn compile_target(name: &str, raw: RawTarget) -> Result<Target, ConfigError> {
    let at = |field: &str| format!("targets.{name}.{field}");
    if !valid_target_name(name) {
        return Err(ConfigError::new(
            format!("targets.{name}"),
            "target names are 1-64 characters of A-Z a-z 0-9 _ - .",
        ));
    }
    if raw.cluster.trim().is_empty() {
        return Err(ConfigError::new(at("cluster"), "must not be empty"));
    }
    if !(raw.max_rps.is_finite() && raw.max_rps > 0.0) {
        return Err(ConfigError::new(at("max_rps"), "must be a positive number"));
    }
    let burst = raw.burst.unwrap_or(raw.max_rps.max(1.0));
    if !(burst.is_finite() && burst >= 1.0) {
        return Err(ConfigError::new(at("burst"), "must be at least 1"));
    }
    let header = raw
        .header
        .unwrap_or_else(|| raw::DEFAULT_DECISION_HEADER.to_string())
        .to_ascii_lowercase();
    if !is_token(&header) {
        return Err(ConfigError::new(
            at("header"),
            format!("{header:?} is not a valid header name"),
        ));
    }
    if raw.timeout_ms == 0 {
        return Err(ConfigError::new(at("timeout_ms"), "must be at least 1"));
    }
    if raw.max_in_flight == 0 {
        return Err(ConfigError::new(at("max_in_flight"), "must be at least 1"));
    }
    if raw
        .authority
        .as_deref()
        .is_some_and(|a| a.trim().is_empty())
    {
        return Err(ConfigError::new(at("authority"), "must not be empty"));
    }
    Ok(Target {
        name: name.to_string(),
        cluster: raw.cluster,
        delivery: raw.delivery,
        max_rps: raw.max_rps,
        burst,
        header,
        include_secrets: raw.include_secrets,
        timeout_ms: raw.timeout_ms,
        max_in_flight: raw.max_in_flight,
        authority: raw.authority,
    })
}

fn resolve_target(
    names: &BTreeMap<String, TargetId>,
    given: Option<&str>,
    default: Option<TargetId>,
    path: &str,
) -> Result<Option<TargetId>, ConfigError> {
    match given {
        Some(n) => names
            .get(n)
            .copied()
            .map(Some)
            .ok_or_else(|| ConfigError::new(path, format!("unknown target {n:?}"))),
        None => Ok(default),
    }
}

fn compile_rule(
    i: usize,
    raw: RawRule,
    names: &BTreeMap<String, TargetId>,
    default: Option<TargetId>,
) -> Result<Rule, ConfigError> {
    let at = |field: &str| format!("rules[{i}].{field}");
    if raw.name.trim().is_empty() {
        return Err(ConfigError::new(at("name"), "must not be empty"));
    }
    let action = match (raw.action.kind, raw.action.fraction) {
        (ActionType::Always, None) => Action::Always,
        (ActionType::Never, None) => Action::Never,
        (ActionType::Sample, Some(f)) if (0.0..=1.0).contains(&f) => Action::Sample(f),
        (ActionType::Sample, Some(_)) => {
            return Err(ConfigError::new(
                at("action.fraction"),
                "must be within 0.0..=1.0",
            ))
        }
        (ActionType::Sample, None) => {
            return Err(ConfigError::new(
                at("action.fraction"),
                "is required when the action type is \"sample\"",
            ))
        }
        (_, Some(_)) => {
            return Err(ConfigError::new(
                at("action.fraction"),
                "is only allowed when the action type is \"sample\"",
            ))
        }
    };
    let target = resolve_target(names, raw.target.as_deref(), default, &at("target"))?;
    if target.is_none() && action != Action::Never {
        return Err(ConfigError::new(
            at("target"),
            "no target given and no default_target (required with several targets)",
        ));
    }
    let sources = SourceMatch::compile(&at("sources"), raw.sources.as_ref())?;
    let request = RequestMatch::compile(&at("request"), raw.request.as_ref())?;
    Ok(Rule {
        name: raw.name,
        sources,
        request,
        action,
        target,
    })
}

impl TryFrom<RawMirrorPolicy> for MirrorPolicy {
    type Error = ConfigError;

    fn try_from(raw: RawMirrorPolicy) -> Result<Self, Self::Error> {
        if raw.targets.is_empty() {
            return Err(ConfigError::new(
                "targets",
                "at least one target is required",
            ));
        }
        let mut targets = Vec::with_capacity(raw.targets.len());
        let mut names = BTreeMap::new();
        for (name, t) in raw.targets {
            names.insert(name.clone(), targets.len());
            targets.push(compile_target(&name, t)?);
        }
        let default = match raw.default_target.as_deref() {
            Some(n) => resolve_target(&names, Some(n), None, "default_target")?,
            None if targets.len() == 1 => Some(0),
            None => None,
        };
        if raw.max_body_bytes > MAX_BODY_BYTES_LIMIT {
            return Err(ConfigError::new(
                "max_body_bytes",
                format!("must be at most {MAX_BODY_BYTES_LIMIT}"),
            ));
        }
        let mut seen = BTreeSet::new();
        let mut rules = Vec::with_capacity(raw.rules.len());
        for (i, r) in raw.rules.into_iter().enumerate() {
            if !seen.insert(r.name.clone()) {
                return Err(ConfigError::new(
                    format!("rules[{i}].name"),
                    format!("duplicate rule name {:?}", r.name),
                ));
            }
            rules.push(compile_rule(i, r, &names, default)?);
        }
        let sig = raw.signatures;
        let signature_target =
            resolve_target(&names, sig.target.as_deref(), default, "signatures.target")?;
        let rules_of_packs = signatures::layers::rules(&sig)?;
        if signature_target.is_none() && rules_of_packs.iter().any(|r| r.enabled) {
            return Err(ConfigError::new(
                "signatures.target",
                "no target given and no default_target (required with several targets)",
            ));
        }
        let signatures = SignatureSet::new(rules_of_packs, sig.inspect_body)?;
        let decision_headers: BTreeSet<String> = std::iter::once(raw::DEFAULT_DECISION_HEADER)
            .chain(targets.iter().map(|t| t.header.as_str()))
            .map(str::to_string)
            .collect();
        Ok(MirrorPolicy {
            decision_headers: decision_headers.into_iter().collect(),
            targets,
            rules,
            signatures,
            signature_target,
            max_body_bytes: raw.max_body_bytes,
            hold_for_body: raw.hold_for_body,
            copy_denied: raw.copy_denied,
        })
    }
}
