//! Compiling a [`RawMirrorPolicy`] into a [`MirrorPolicy`]: validate every value (errors carry
//! the JSON path), resolve target names to indexes and build the signature set. Rule selectors
//! are compiled by [`crate::matching`], the same code the allowlist's rules use; this file only
//! adds what is the mirror's own: targets, actions and signatures.

use crate::error::Quoted;
use crate::name_set::NameSet;

use super::hold;
use super::raw::{self, ActionType, RawMirrorPolicy, RawRule, RawTarget};
use super::signatures::{self, SignatureSet};
use super::{Action, MirrorPolicy, Rule, Target, TargetId};
use crate::error::ConfigError;
use crate::headers::is_token;
use crate::matching::{RequestMatch, SourceMatch};

/// Most `max_body_bytes` accepted (Envoy's default per-connection buffer limit).
pub const MAX_BODY_BYTES_LIMIT: usize = 1024 * 1024;

fn valid_target_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

#[inline(never)]
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
            format!("{} is not a valid header name", Quoted(&header)),
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

/// The target named `given` (`names` holds the targets' names by [`TargetId`]), or `default`.
fn resolve_target(
    names: &[String],
    given: Option<&str>,
    default: Option<TargetId>,
    path: &str,
) -> Result<Option<TargetId>, ConfigError> {
    match given {
        Some(n) => names
            .iter()
            .position(|name| name == n)
            .map(Some)
            .ok_or_else(|| ConfigError::new(path, format!("unknown target {}", Quoted(n)))),
        None => Ok(default),
    }
}

#[inline(never)]
fn compile_rule(
    i: usize,
    raw: RawRule,
    names: &[String],
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
        // A list, not a map: a target's id is its place, and there are few (the names come
        // unique, from a `ByName`).
        let mut targets = Vec::with_capacity(raw.targets.len());
        let mut names = Vec::with_capacity(raw.targets.len());
        for (name, t) in raw.targets {
            targets.push(compile_target(&name, t)?);
            names.push(name);
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
        if !(1..=hold::MAX_HOLD_TIMEOUT_MS).contains(&raw.hold_timeout_ms) {
            return Err(ConfigError::new(
                "hold_timeout_ms",
                format!("must be 1 to {}", hold::MAX_HOLD_TIMEOUT_MS),
            ));
        }
        let mut seen = NameSet::new();
        let mut rules = Vec::with_capacity(raw.rules.len());
        for (i, r) in raw.rules.into_iter().enumerate() {
            if !seen.insert(r.name.clone()) {
                return Err(ConfigError::new(
                    format!("rules[{i}].name"),
                    format!("duplicate rule name {}", Quoted(&r.name)),
                ));
            }
            rules.push(compile_rule(i, r, &names, default)?);
        }
        let sig = raw.signatures;
        let signature_target =
            resolve_target(&names, sig.target.as_deref(), default, "signatures.target")?;
        let rules_of_packs = signatures::layers::rules(&sig)?;
        let (rules_of_packs, response_rules) = crate::response::split_rules(rules_of_packs);
        if signature_target.is_none() && rules_of_packs.iter().any(|r| r.enabled) {
            return Err(ConfigError::new(
                "signatures.target",
                "no target given and no default_target (required with several targets)",
            ));
        }
        let signatures = SignatureSet::new(rules_of_packs, sig.inspect_body)?
            .with_body_budget(raw.max_body_bytes);
        let responses = raw
            .responses
            .as_ref()
            .map(|r| crate::response::ResponsePolicy::compile(r, response_rules))
            .transpose()?;
        // Sorted and unique, kept by binary search: a collected `BTreeSet` would sort, and each
        // sort instantiated costs the module about 5 KB of Wasm.
        let mut decision_headers: Vec<String> = Vec::new();
        for header in std::iter::once(raw::DEFAULT_DECISION_HEADER)
            .chain(targets.iter().map(|t| t.header.as_str()))
        {
            if let Err(at) = decision_headers.binary_search_by(|h| h.as_str().cmp(header)) {
                decision_headers.insert(at, header.to_string());
            }
        }
        Ok(MirrorPolicy {
            decision_headers,
            targets,
            rules,
            signatures,
            signature_target,
            max_body_bytes: raw.max_body_bytes,
            hold_for_body: raw.hold_for_body,
            hold_timeout_ms: raw.hold_timeout_ms,
            copy_denied: raw.copy_denied,
            responses,
        })
    }
}
