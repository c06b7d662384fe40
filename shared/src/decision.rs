//! The decisions one filter leaves for the next in the same stream's filter state.
//!
//! The allowlist and mirror filters write their decision as compact JSON with
//! `set_property([<property>], json)`; Envoy stores it in filter state as `wasm.<property>`,
//! and the audit filter reads it back with `get_property([<property>])`. These types are the
//! contract between them, so all three filters serialize through them: the contract owns its
//! JSON text (written per request with the crate's `crate::json` writer, the very text serde
//! gives; read back with [`ReadJson`]) and its names, and the jobs depend on it, never the
//! reverse. serde's derives are there only with the `serde` feature, for the CLI.

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

use crate::error::json_path::{At, PathError, ReadJson};
use crate::json::{key, JsonObject};

/// Property (filter-state key) holding the allowlist filter's [`AllowlistDecision`].
pub const ALLOWLIST_DECISION_PROPERTY: &str = "meshsight_allowlist";
/// Property (filter-state key) holding the mirror filter's [`MirrorDecision`].
pub const MIRROR_DECISION_PROPERTY: &str = "meshsight_mirror";

/// Whether a policy blocks requests or only reports what it would block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Mode {
    /// Deny requests that no rule allows.
    #[default]
    Enforce,
    /// Dry run: let every request through and record `would_deny`.
    Monitor,
}

/// What the allowlist did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
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

impl AllowlistOutcome {
    /// The outcome's name in the contract (its `serde` snake_case form).
    pub fn as_str(self) -> &'static str {
        match self {
            AllowlistOutcome::Allowed => "allowed",
            AllowlistOutcome::Denied => "denied",
            AllowlistOutcome::WouldDeny => "would_deny",
            AllowlistOutcome::Malformed => "malformed",
        }
    }
}

/// The allowlist filter's decision on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct AllowlistDecision {
    /// What happened.
    pub outcome: AllowlistOutcome,
    /// Name of the rule that allowed the request, when one did.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub rule: Option<String>,
    /// Why a request was malformed or denied, in a stable snake_case word.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub reason: Option<String>,
}

impl AllowlistDecision {
    /// Compact JSON, the same text `serde_json::to_string` gives, for filter state; written
    /// without `serde_json`, as it goes out on every request.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(64);
        let mut o = JsonObject::open(&mut out);
        self.write_members(&mut o);
        o.close();
        out
    }

    /// The decision's members as the contract serializes them, into an object being written
    /// (filter state here; the audit records' `unmapped.meshsight.allowlist`).
    pub(crate) fn write_members(&self, o: &mut JsonObject<'_>) {
        o.str(key!("outcome"), self.outcome.as_str());
        o.opt_str(key!("rule"), self.rule.as_deref());
        o.opt_str(key!("reason"), self.reason.as_deref());
    }
}

/// Why the mirror filter did or did not copy a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
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

impl MirrorReason {
    /// The reason's name in the contract (its `serde` snake_case form; also the copy's
    /// `x-meshsight-mirror-reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            MirrorReason::Signature => "signature",
            MirrorReason::Rule => "rule",
            MirrorReason::Sample => "sample",
            MirrorReason::NotSelected => "not_selected",
            MirrorReason::RateLimited => "rate_limited",
        }
    }
}

/// The mirror filter's decision on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct MirrorDecision {
    /// Whether a copy goes (or went) to the target.
    pub mirrored: bool,
    /// The target (sensor) name, when one was chosen.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub target: Option<String>,
    /// Why.
    pub reason: MirrorReason,
    /// Name of the rule that decided, when one did.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub rule: Option<String>,
    /// Signature categories that matched (e.g. `log4shell`), empty when none did.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Vec::is_empty")
    )]
    pub signatures: Vec<String>,
    /// Ids of the signature rules that matched (e.g. `ms-log4shell-jndi`), in report order;
    /// empty when none did (and in decisions written before rule packs).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Vec::is_empty")
    )]
    pub signature_rules: Vec<String>,
    /// What decoding the request's encodings found wrong (`multipart_malformed`,
    /// `body_encoding_broken`, ...), in report order; empty when nothing was (none of them stops
    /// the scan or fails the request).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Vec::is_empty")
    )]
    pub findings: Vec<String>,
}

impl MirrorDecision {
    /// Compact JSON, the same text `serde_json::to_string` gives, for filter state (see
    /// [`AllowlistDecision::to_json`]).
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(96);
        let mut o = JsonObject::open(&mut out);
        self.write_members(&mut o);
        o.close();
        out
    }

    /// The decision's members as the contract serializes them, into an object being written
    /// (filter state here; the audit records' `unmapped.meshsight.mirror`).
    pub(crate) fn write_members(&self, m: &mut JsonObject<'_>) {
        m.bool(key!("mirrored"), self.mirrored);
        m.opt_str(key!("target"), self.target.as_deref());
        m.str(key!("reason"), self.reason.as_str());
        m.opt_str(key!("rule"), self.rule.as_deref());
        m.strs_unless_empty(key!("signatures"), &self.signatures);
        m.strs_unless_empty(key!("signature_rules"), &self.signature_rules);
        m.strs_unless_empty(key!("findings"), &self.findings);
    }
}

impl ReadJson for Mode {
    fn read_json(at: At<'_, '_>) -> Result<Mode, PathError> {
        match at.unit_variant("enum Mode", &["enforce", "monitor"])? {
            0 => Ok(Mode::Enforce),
            _ => Ok(Mode::Monitor),
        }
    }
}

const OUTCOMES: &[&str] = &["allowed", "denied", "would_deny", "malformed"];

impl ReadJson for AllowlistOutcome {
    fn read_json(at: At<'_, '_>) -> Result<AllowlistOutcome, PathError> {
        Ok(match at.unit_variant("enum AllowlistOutcome", OUTCOMES)? {
            0 => AllowlistOutcome::Allowed,
            1 => AllowlistOutcome::Denied,
            2 => AllowlistOutcome::WouldDeny,
            _ => AllowlistOutcome::Malformed,
        })
    }
}

/// Read back from filter state (another plugin's `to_json`); members it does not know are
/// skipped, so an older reader accepts a newer writer's decision.
impl ReadJson for AllowlistDecision {
    fn read_json(at: At<'_, '_>) -> Result<AllowlistDecision, PathError> {
        let (mut outcome, mut rule, mut reason) = (None, None, None);
        at.open_object(
            "struct AllowlistDecision",
            &["outcome", "rule", "reason"],
            &mut |m| match m.name {
                "outcome" => m.read(&mut outcome),
                "rule" => m.read(&mut rule),
                _ => m.read(&mut reason),
            },
        )?;
        Ok(AllowlistDecision {
            outcome: at.required(outcome, "outcome")?,
            rule: rule.flatten(),
            reason: reason.flatten(),
        })
    }
}

const REASONS: &[&str] = &[
    "signature",
    "rule",
    "sample",
    "not_selected",
    "rate_limited",
];

impl ReadJson for MirrorReason {
    fn read_json(at: At<'_, '_>) -> Result<MirrorReason, PathError> {
        Ok(match at.unit_variant("enum MirrorReason", REASONS)? {
            0 => MirrorReason::Signature,
            1 => MirrorReason::Rule,
            2 => MirrorReason::Sample,
            3 => MirrorReason::NotSelected,
            _ => MirrorReason::RateLimited,
        })
    }
}

const MIRROR_DECISION_FIELDS: &[&str] = &[
    "mirrored",
    "target",
    "reason",
    "rule",
    "signatures",
    "signature_rules",
    "findings",
];

/// Read back from filter state, as [`AllowlistDecision`] is.
impl ReadJson for MirrorDecision {
    fn read_json(at: At<'_, '_>) -> Result<MirrorDecision, PathError> {
        let (mut mirrored, mut target, mut reason) = (None, None, None);
        let (mut rule, mut signatures, mut signature_rules) = (None, None, None);
        let mut findings = None;
        at.open_object(
            "struct MirrorDecision",
            MIRROR_DECISION_FIELDS,
            &mut |m| match m.name {
                "mirrored" => m.read(&mut mirrored),
                "target" => m.read(&mut target),
                "reason" => m.read(&mut reason),
                "rule" => m.read(&mut rule),
                "signatures" => m.read(&mut signatures),
                "signature_rules" => m.read(&mut signature_rules),
                _ => m.read(&mut findings),
            },
        )?;
        Ok(MirrorDecision {
            mirrored: at.required(mirrored, "mirrored")?,
            target: target.flatten(),
            reason: at.required(reason, "reason")?,
            rule: rule.flatten(),
            signatures: signatures.unwrap_or_default(),
            signature_rules: signature_rules.unwrap_or_default(),
            findings: findings.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::json_path::Json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Reads a decision back as the audit job reads another plugin's.
    fn read_back<T: ReadJson>(json: &str) -> T {
        Json::parse(json.as_bytes()).unwrap().read("").unwrap()
    }

    #[test]
    fn allowlist_decision_round_trips_as_compact_json() {
        let d = AllowlistDecision {
            outcome: AllowlistOutcome::WouldDeny,
            rule: None,
            reason: Some("no_rule_matched".into()),
        };
        let json = d.to_json();
        assert_eq!(
            json,
            r#"{"outcome":"would_deny","reason":"no_rule_matched"}"#
        );
        assert_eq!(read_back::<AllowlistDecision>(&json), d);
        // A member a newer writer added is skipped.
        let newer = r#"{"outcome":"would_deny","reason":"no_rule_matched","extra":[1]}"#;
        assert_eq!(read_back::<AllowlistDecision>(newer), d);
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
            findings: vec![],
        };
        let json = d.to_json();
        assert_eq!(
            json,
            r#"{"mirrored":true,"target":"ids","reason":"signature","signatures":["log4shell"]}"#
        );
        assert_eq!(read_back::<MirrorDecision>(&json), d);
    }

    #[test]
    fn mirror_decision_findings_are_read_back() {
        // Another plugin of the chain (the audit) reads the decision back from filter state:
        // a decoding finding must survive the trip.
        let d = MirrorDecision {
            mirrored: false,
            target: None,
            reason: MirrorReason::NotSelected,
            rule: None,
            signatures: vec![],
            signature_rules: vec!["ms-log4shell-jndi".into()],
            findings: vec!["multipart_malformed".into(), "body_encoding_broken".into()],
        };
        let json = d.to_json();
        assert!(json.ends_with(r#""findings":["multipart_malformed","body_encoding_broken"]}"#));
        assert_eq!(read_back::<MirrorDecision>(&json), d);
    }

    #[test]
    fn decision_names_are_the_filter_state_contract_names() {
        for o in [
            AllowlistOutcome::Allowed,
            AllowlistOutcome::Denied,
            AllowlistOutcome::WouldDeny,
            AllowlistOutcome::Malformed,
        ] {
            assert_eq!(
                read_back::<AllowlistOutcome>(&format!("{:?}", o.as_str())),
                o
            );
        }
        for r in [
            MirrorReason::Signature,
            MirrorReason::Rule,
            MirrorReason::Sample,
            MirrorReason::NotSelected,
            MirrorReason::RateLimited,
        ] {
            assert_eq!(read_back::<MirrorReason>(&format!("{:?}", r.as_str())), r);
        }
    }

    /// `to_json` writes without serde_json (it runs on every request) but must give the very
    /// text serde_json gives, for every outcome, reason and optional part, escapes included
    /// (with the `serde` feature, which `cargo test --workspace` turns on through the CLI).
    #[cfg(feature = "serde")]
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
                    findings: sigs.iter().map(|s| format!("{s}_broken")).collect(),
                };
                assert_eq!(d.to_json(), serde_json::to_string(&d).unwrap());
            }
        }
    }
}
