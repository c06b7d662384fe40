//! From the request as the filter reads it (`:method`, `:path`, `:authority`, `:scheme`, peer
//! facts) to the complete decision: normalize (once, into [`RequestFacts`], which the mirror
//! can match too), match, and apply the mode, the malformed policy and the path rewrite. The
//! filter only moves these values to and from the host.

use super::{AllowList, DenyResponse, RequestFacts};
use crate::decision::{AllowlistDecision, AllowlistOutcome, Mode};
use crate::headers::NO_HEADERS;
use crate::matching::Peer;

/// The request as the filter reads it from the host; nothing normalized yet. It carries no
/// headers: a rule that names `headers` only matches through [`AllowList::judge_facts`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TargetRequest<'a> {
    /// `:method`.
    pub method: &'a str,
    /// `:path` as received (origin-form request target).
    pub path: &'a str,
    /// `:authority` as received; empty when the request had none.
    pub authority: &'a str,
    /// `:scheme` (`http`/`https`), used to drop a default port.
    pub scheme: &'a str,
    /// Envoy's `source.address` (`ip:port`), when the policy needs it.
    pub source_address: Option<&'a str>,
    /// The mTLS peer's URI SAN (SPIFFE ID), when the policy needs it and there is one.
    pub peer_principal: Option<&'a str>,
}

/// Everything the filter must do with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement<'p> {
    /// The decision to write to filter state.
    pub decision: AllowlistDecision,
    /// Index of the rule that matched (for its hit counter).
    pub rule: Option<usize>,
    /// The request target was malformed (for the malformed counter), whatever was done about it.
    pub malformed: bool,
    /// Answer the request locally with this response instead of forwarding it.
    pub response: Option<&'p DenyResponse>,
    /// Replace `:path` with this (normalized path plus the original query) before forwarding.
    pub rewritten_path: Option<String>,
}

/// Stable reason recorded when no rule matched.
pub const NO_RULE_MATCHED: &str = "no_rule_matched";

impl AllowList {
    /// Judges one request: normalizes its target, then [`AllowList::judge_facts`]. Without
    /// headers, so a rule naming `headers` does not match (fail closed).
    pub fn judge(&self, request: &TargetRequest<'_>) -> Judgement<'_> {
        let facts = RequestFacts::new(
            request.method,
            request.path,
            request.authority,
            request.scheme,
            &NO_HEADERS,
            Peer::from_properties(request.source_address, request.peer_principal),
        );
        self.judge_facts(&facts)
    }

    /// Judges one request normalized once into `facts`: finds the first matching rule and
    /// applies the mode (enforce/monitor), the malformed policy and the path rewrite.
    pub fn judge_facts(&self, facts: &RequestFacts<'_>) -> Judgement<'_> {
        let target = match (&facts.target, &facts.host) {
            (Ok(target), Ok(_)) => target,
            (Err(m), _) | (_, Err(m)) => return self.malformed(m.reason()),
        };
        let rule = self.matching_rule(facts);
        // Built only when it differs from what was sent (most requests arrive normalized).
        let sent_as_judged = || match &target.query {
            None => facts.raw_path == target.path,
            Some(q) => facts
                .raw_path
                .strip_prefix(target.path.as_str())
                .and_then(|rest| rest.strip_prefix('?'))
                .is_some_and(|rest| rest == *q),
        };
        let rewritten_path =
            (self.rewrite_path && !sent_as_judged()).then(|| match &target.query {
                Some(q) => format!("{}?{q}", target.path),
                None => target.path.clone(),
            });
        let (outcome, reason, response) = match (rule, self.mode) {
            (Some(_), _) => (AllowlistOutcome::Allowed, None, None),
            (None, Mode::Enforce) => (
                AllowlistOutcome::Denied,
                Some(NO_RULE_MATCHED),
                Some(&self.deny_response),
            ),
            (None, Mode::Monitor) => (AllowlistOutcome::WouldDeny, Some(NO_RULE_MATCHED), None),
        };
        Judgement {
            decision: AllowlistDecision {
                outcome,
                rule: rule.and_then(|i| self.rule_name(i)).map(str::to_string),
                reason: reason.map(str::to_string),
            },
            rule,
            malformed: false,
            rewritten_path: if response.is_none() {
                rewritten_path
            } else {
                None
            },
            response,
        }
    }

    fn malformed(&self, reason: &'static str) -> Judgement<'_> {
        // Malformed targets are never matched against rules: there is no single path to judge.
        let (outcome, response) = match (self.mode, self.reject_malformed) {
            (Mode::Monitor, _) => (AllowlistOutcome::WouldDeny, None),
            (Mode::Enforce, true) => (AllowlistOutcome::Malformed, Some(&self.malformed_response)),
            (Mode::Enforce, false) => (AllowlistOutcome::Denied, Some(&self.deny_response)),
        };
        Judgement {
            decision: AllowlistDecision {
                outcome,
                rule: None,
                reason: Some(reason.to_string()),
            },
            rule: None,
            malformed: true,
            response,
            rewritten_path: None,
        }
    }
}
