//! The decisions one filter leaves for the next in the same stream's filter state.
//!
//! The allowlist and mirror filters write their decision as compact JSON with
//! `set_property([<property>], json)`; Envoy stores it in filter state as `wasm.<property>`,
//! and the audit filter reads it back with `get_property([<property>])`. These types are the
//! contract between them, so all three filters serialize through them.

use serde::{Deserialize, Serialize};

/// Property (filter-state key) holding the allowlist filter's [`AllowlistDecision`].
pub const ALLOWLIST_DECISION_PROPERTY: &str = "meshsight_allowlist";
/// Property (filter-state key) holding the mirror filter's [`MirrorDecision`].
pub const MIRROR_DECISION_PROPERTY: &str = "meshsight_mirror";

/// Whether a policy blocks requests or only reports what it would block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Deny requests that no rule allows.
    #[default]
    Enforce,
    /// Dry run: let every request through and record `would_deny`.
    Monitor,
}

/// What the allowlist did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowlistOutcome {
    /// A rule matched; the request went on.
    Allowed,
    /// No rule matched and the policy enforces: answered with the deny response.
    Denied,
    /// No rule matched, but the policy only monitors: the request went on.
    WouldDeny,
    /// The request was ambiguous (encoded slash, `%00`, overlong UTF-8...) and was rejected.
    Malformed,
}

/// The allowlist filter's decision on one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowlistDecision {
    /// What happened.
    pub outcome: AllowlistOutcome,
    /// Name of the rule that allowed the request, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why a request was malformed or denied, in a stable snake_case word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl AllowlistDecision {
    /// Compact JSON, the same text `serde_json::to_string` gives, for filter state.
    pub fn to_json(&self) -> String {
        crate::audit::ocsf::allowlist_json(self)
    }
}

/// Why the mirror filter did or did not copy a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MirrorReason {
    /// A built-in or custom signature matched.
    Signature,
    /// A rule with action `always` selected it.
    Rule,
    /// A `sample` rule's deterministic sampling picked it.
    Sample,
    /// Nothing selected it (or a `never` rule did, or sampling passed it over).
    NotSelected,
    /// It was selected, but the target's rate cap was reached: counted and not copied.
    RateLimited,
}

/// The mirror filter's decision on one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorDecision {
    /// Whether a copy goes (or went) to the target.
    pub mirrored: bool,
    /// The target (sensor) name, when one was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Why.
    pub reason: MirrorReason,
    /// Name of the rule that decided, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Signature categories that matched (e.g. `log4shell`), empty when none did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<String>,
    /// Ids of the signature rules that matched (e.g. `ms-log4shell-jndi`), in report order;
    /// empty when none did (and in decisions written before rule packs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signature_rules: Vec<String>,
}

impl MirrorDecision {
    /// Compact JSON, the same text `serde_json::to_string` gives, for filter state.
    pub fn to_json(&self) -> String {
        crate::audit::ocsf::mirror_json(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn allowlist_decision_round_trips_as_compact_json() {
        let d = AllowlistDecision {
            outcome: AllowlistOutcome::WouldDeny,
            rule: None,
            reason: Some("no_rule_matched".into()),
        };
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(
            json,
            r#"{"outcome":"would_deny","reason":"no_rule_matched"}"#
        );
        assert_eq!(serde_json::from_str::<AllowlistDecision>(&json).unwrap(), d);
    }

    #[test]
    fn mirror_decision_carries_signature_categories() {
        let d = MirrorDecision {
            mirrored: true,
            target: Some("ids".into()),
            reason: MirrorReason::Signature,
            rule: None,
            signatures: vec!["log4shell".into()],
            signature_rules: vec![],
        };
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(
            json,
            r#"{"mirrored":true,"target":"ids","reason":"signature","signatures":["log4shell"]}"#
        );
        assert_eq!(serde_json::from_str::<MirrorDecision>(&json).unwrap(), d);
    }

    /// `to_json` writes without serde_json (it runs on every request) but must give the very
    /// text serde_json gives, for every outcome, reason and optional part, escapes included.
    #[test]
    fn to_json_is_the_serde_text() {
        for outcome in [
            AllowlistOutcome::Allowed,
            AllowlistOutcome::Denied,
            AllowlistOutcome::WouldDeny,
            AllowlistOutcome::Malformed,
        ] {
            for (rule, reason) in [
                (None, None),
                (Some("pub\"lic"), None),
                (None, Some("no_rule_matched")),
                (Some("r\\1"), Some("x")),
            ] {
                let d = AllowlistDecision {
                    outcome,
                    rule: rule.map(String::from),
                    reason: reason.map(String::from),
                };
                assert_eq!(d.to_json(), serde_json::to_string(&d).unwrap());
            }
        }
        for reason in [
            MirrorReason::Signature,
            MirrorReason::Rule,
            MirrorReason::Sample,
            MirrorReason::NotSelected,
            MirrorReason::RateLimited,
        ] {
            for (target, rule, sigs) in [
                (None, None, vec![]),
                (
                    Some("ids"),
                    Some("admin\u{1}"),
                    vec!["log4shell", "path_traversal"],
                ),
            ] {
                let d = MirrorDecision {
                    mirrored: target.is_some(),
                    target: target.map(String::from),
                    reason,
                    rule: rule.map(String::from),
                    signatures: sigs.iter().map(|s| s.to_string()).collect(),
                    signature_rules: sigs.iter().map(|s| format!("ms-{s}")).collect(),
                };
                assert_eq!(d.to_json(), serde_json::to_string(&d).unwrap());
            }
        }
    }
}
