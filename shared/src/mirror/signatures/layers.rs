//! From the policy's `signatures` section to the list of rules: the built-in pack, the policy's
//! packs layered over it, categories and rules switched on or off, and the legacy `custom`
//! literals. Every error names its JSON path in the policy.

use super::pack::{
    self, Anchor, Locations, Pack, Rule, Severity, When, VIEW_PERCENT, VIEW_UNESCAPE,
};
use crate::error::Quoted;
use crate::mirror::raw::{RawLocation, RawSignatures};
use crate::ConfigError;

/// The rules the policy's `signatures` section asks for (switched-off rules included, with
/// `enabled: false`); none at all when the master switch is off.
pub fn rules(sig: &RawSignatures) -> Result<Vec<Rule>, ConfigError> {
    let mut packs = Vec::with_capacity(sig.packs.len() + 1);
    if sig.builtin {
        packs.push(Pack::builtin()?);
    }
    for (i, p) in sig.packs.iter().enumerate() {
        packs.push(Pack::compile(&format!("signatures.packs[{i}]"), p)?);
    }
    let mut rules = pack::layer(packs);
    for (i, c) in sig.custom.iter().enumerate() {
        rules.push(custom_rule(i, c, &rules)?);
    }
    for (name, on) in &sig.categories {
        let mut known = false;
        for r in rules.iter_mut().filter(|r| r.category == *name) {
            known = true;
            r.enabled = *on;
        }
        if !known {
            return Err(ConfigError::new(
                format!("signatures.categories.{name}"),
                format!(
                    "unknown category {} (no rule of the enabled packs has it)",
                    Quoted(name)
                ),
            ));
        }
    }
    for (id, on) in &sig.rules {
        match rules.iter_mut().find(|r| r.id == *id) {
            Some(r) => r.enabled = *on,
            None => {
                return Err(ConfigError::new(
                    format!("signatures.rules.{id}"),
                    format!("unknown rule id {}", Quoted(id)),
                ))
            }
        }
    }
    if !sig.enabled {
        rules.clear();
    }
    Ok(rules)
}

/// A legacy custom literal as a rule: its name is its id and its category; case-insensitive,
/// decoded, and also looked for after Log4j lookup evaluation.
fn custom_rule(
    i: usize,
    c: &crate::mirror::raw::RawCustomSignature,
    rules: &[Rule],
) -> Result<Rule, ConfigError> {
    let at = |f: &str| format!("signatures.custom[{i}].{f}");
    if !pack::valid_name(&c.name) {
        return Err(ConfigError::new(
            at("name"),
            "signature names are 1-64 characters of A-Z a-z 0-9 _ - .",
        ));
    }
    if rules.iter().any(|r| r.id == c.name || r.category == c.name) {
        return Err(ConfigError::new(
            at("name"),
            format!("duplicate signature name {}", Quoted(&c.name)),
        ));
    }
    if c.literal.is_empty() {
        return Err(ConfigError::new(at("literal"), "must not be empty"));
    }
    if c.literal.len() > pack::MAX_LITERAL_LEN {
        return Err(ConfigError::new(
            at("literal"),
            format!("literals are at most {} bytes", pack::MAX_LITERAL_LEN),
        ));
    }
    if c.locations.is_empty() {
        return Err(ConfigError::new(
            at("in"),
            "must name at least one of path, query, headers, body",
        ));
    }
    let locations = c.locations.iter().fold(Locations::NONE, |acc, l| {
        acc.with(match l {
            RawLocation::Path => Locations::PATH,
            RawLocation::Query => Locations::QUERY,
            RawLocation::Headers => Locations::HEADERS,
            RawLocation::Body => Locations::BODY,
        })
    });
    Ok(Rule {
        id: c.name.clone(),
        name: c.name.clone(),
        category: c.name.clone(),
        severity: Severity::Medium,
        references: Vec::new(),
        locations,
        exclude: Locations::NONE,
        params: Vec::new(),
        headers: Vec::new(),
        view: VIEW_PERCENT | VIEW_UNESCAPE,
        lookups: true,
        case_insensitive: true,
        when: When::default(),
        groups: vec![vec![c.literal.to_ascii_lowercase()]],
        none: Vec::new(),
        anchor: Anchor::Anywhere,
        any_group: Some(0),
        enabled: true,
    })
}
