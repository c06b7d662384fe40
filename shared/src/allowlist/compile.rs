//! Compiling a [`RawPolicy`] into an [`AllowList`]: validate every value (errors carry the JSON
//! path) and build the host index and path tries.

use std::collections::HashMap;

use ipnet::IpNet;

use super::pattern::{
    check_method, check_rule_name, parse_host_pattern, parse_path_pattern, HostPattern,
    PathPattern, PolicyError,
};
use super::raw::{RawPolicy, RawQueryConstraint, RawResponse, RawRule, RawSources};
use super::trie::RuleIndex;
use super::{AllowList, DenyResponse, HostIndex, QueryConstraint, Rule};
use crate::identity::{self, CidrError, PrincipalPattern};
use crate::ConfigError;

fn at(path: impl Into<String>) -> impl FnOnce(PolicyError) -> ConfigError {
    let path = path.into();
    move |e| ConfigError::new(path, e.to_string())
}

/// Validates a list field: not empty, no duplicates, every entry parsed by `parse`.
fn list<T>(
    path: &str,
    raw: &Option<Vec<String>>,
    mut parse: impl FnMut(&str) -> Result<T, PolicyError>,
) -> Result<Option<Vec<T>>, ConfigError> {
    let Some(items) = raw else {
        return Ok(None);
    };
    if items.is_empty() {
        return Err(at(path)(PolicyError::EmptyList));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        if items[..i].contains(item) {
            return Err(at(item_path)(PolicyError::DuplicateEntry(item.clone())));
        }
        out.push(parse(item).map_err(at(item_path))?);
    }
    Ok(Some(out))
}

fn response(
    path: &str,
    raw: &Option<RawResponse>,
    default_status: u32,
    error: &'static str,
) -> Result<DenyResponse, ConfigError> {
    let mut resp = DenyResponse::default_for(default_status, error);
    let Some(raw) = raw else {
        return Ok(resp);
    };
    if !(400..=599).contains(&raw.status) {
        return Err(at(format!("{path}.status"))(PolicyError::BadStatus(
            raw.status,
        )));
    }
    resp.status = raw.status;
    if let Some(body) = &raw.body {
        if body.len() > 4096 {
            return Err(at(format!("{path}.body"))(PolicyError::BodyTooLarge(
                body.len(),
            )));
        }
        resp.body = Some(body.clone());
    }
    if let Some(ct) = &raw.content_type {
        if ct.is_empty() || !ct.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(at(format!("{path}.content_type"))(
                PolicyError::BadContentType(ct.clone()),
            ));
        }
        resp.content_type = ct.clone();
    }
    Ok(resp)
}

fn cidr(raw: &str) -> Result<IpNet, PolicyError> {
    identity::parse_cidr(raw).map_err(|e| match e {
        CidrError::Invalid => PolicyError::BadCidr(raw.to_string()),
        CidrError::HostBits { network } => {
            PolicyError::CidrHostBits(raw.to_string(), network.to_string())
        }
    })
}

fn principal(raw: &str) -> Result<PrincipalPattern, PolicyError> {
    PrincipalPattern::parse(raw).map_err(|e| PolicyError::BadPrincipal(raw.to_string(), e.reason))
}

fn query_constraint(path: &str, raw: &RawQueryConstraint) -> Result<QueryConstraint, ConfigError> {
    if raw.name.is_empty() {
        return Err(at(format!("{path}.name"))(PolicyError::EmptyQueryName));
    }
    if raw.present == Some(false) {
        return Err(at(format!("{path}.present"))(PolicyError::QueryFlagFalse(
            "present", "absent",
        )));
    }
    if raw.absent == Some(false) {
        return Err(at(format!("{path}.absent"))(PolicyError::QueryFlagFalse(
            "absent", "present",
        )));
    }
    let name = raw.name.clone();
    match (raw.present, raw.absent, &raw.equals) {
        (Some(true), None, None) => Ok(QueryConstraint::Present(name)),
        (None, Some(true), None) => Ok(QueryConstraint::Absent(name)),
        (None, None, Some(v)) => Ok(QueryConstraint::Equals(name, v.clone())),
        _ => Err(at(path)(PolicyError::QueryConstraintKind)),
    }
}

struct CompiledRule {
    rule: Rule,
    hosts: Option<Vec<HostPattern>>,
    paths: Option<Vec<PathPattern>>,
}

fn rule(path: &str, raw: &RawRule) -> Result<CompiledRule, ConfigError> {
    check_rule_name(&raw.name).map_err(at(format!("{path}.name")))?;
    let methods = list(&format!("{path}.methods"), &raw.methods, |m| {
        check_method(m).map(|()| m.to_string())
    })?;
    let hosts = list(&format!("{path}.hosts"), &raw.hosts, parse_host_pattern)?;
    if let Some(hosts) = &hosts {
        // `Example.com` and `example.com.` are the same host: catch them as duplicates too.
        for (i, h) in hosts.iter().enumerate() {
            if hosts[..i].contains(h) {
                let shown = raw.hosts.as_ref().and_then(|v| v.get(i)).cloned();
                return Err(at(format!("{path}.hosts[{i}]"))(
                    PolicyError::DuplicateEntry(shown.unwrap_or_default()),
                ));
            }
        }
    }
    let paths = list(&format!("{path}.paths"), &raw.paths, parse_path_pattern)?;
    let mut query = Vec::new();
    if let Some(constraints) = &raw.query {
        if constraints.is_empty() {
            return Err(at(format!("{path}.query"))(PolicyError::EmptyList));
        }
        for (i, c) in constraints.iter().enumerate() {
            query.push(query_constraint(&format!("{path}.query[{i}]"), c)?);
        }
    }
    let (mut cidrs, mut principals, mut namespaces) = (None, None, None);
    if let Some(RawSources {
        cidrs: raw_cidrs,
        principals: raw_principals,
        namespaces: raw_namespaces,
    }) = &raw.sources
    {
        let src = format!("{path}.sources");
        if raw_cidrs.is_none() && raw_principals.is_none() && raw_namespaces.is_none() {
            return Err(at(src)(PolicyError::EmptyList));
        }
        cidrs = list(&format!("{src}.cidrs"), raw_cidrs, cidr)?;
        principals = list(&format!("{src}.principals"), raw_principals, principal)?;
        namespaces = list(&format!("{src}.namespaces"), raw_namespaces, |n| {
            identity::check_namespace(n)
                .map(|()| n.to_string())
                .map_err(|_| PolicyError::BadNamespace(n.to_string()))
        })?;
    }
    Ok(CompiledRule {
        rule: Rule {
            name: raw.name.clone(),
            methods,
            query,
            cidrs,
            principals,
            namespaces,
        },
        hosts,
        paths,
    })
}

impl TryFrom<RawPolicy> for AllowList {
    type Error = ConfigError;

    fn try_from(raw: RawPolicy) -> Result<Self, Self::Error> {
        let deny_response = response("deny_response", &raw.deny_response, 403, "forbidden")?;
        let malformed_response = response(
            "malformed_response",
            &raw.malformed_response,
            400,
            "bad_request",
        )?;
        if raw.rules.len() > RuleIndex::MAX as usize {
            return Err(ConfigError::new("rules", "too many rules"));
        }
        let mut names: HashMap<&str, usize> = HashMap::with_capacity(raw.rules.len());
        let mut hosts = HostIndex::default();
        let mut rules = Vec::with_capacity(raw.rules.len());
        for (i, raw_rule) in raw.rules.iter().enumerate() {
            let path = format!("rules[{i}]");
            let compiled = rule(&path, raw_rule)?;
            if let Some(first) = names.insert(raw_rule.name.as_str(), i) {
                return Err(at(format!("{path}.name"))(PolicyError::DuplicateRuleName(
                    raw_rule.name.clone(),
                    first,
                )));
            }
            let index = i as RuleIndex;
            let insert = |trie: &mut super::trie::PathTrie| match &compiled.paths {
                Some(paths) => paths.iter().for_each(|p| trie.insert(p, index)),
                None => trie.insert_any(index),
            };
            match &compiled.hosts {
                None => insert(&mut hosts.any),
                Some(list) => {
                    for host in list {
                        match host {
                            HostPattern::Exact(name) => {
                                insert(hosts.exact.entry(name.as_str().into()).or_default())
                            }
                            HostPattern::Suffix(suffix) => {
                                insert(hosts.suffix.entry(suffix.as_str().into()).or_default())
                            }
                        }
                    }
                }
            }
            rules.push(compiled.rule);
        }
        let needs_source_address = rules.iter().any(|r| r.cidrs.is_some());
        let needs_peer_identity = rules
            .iter()
            .any(|r| r.principals.is_some() || r.namespaces.is_some());
        Ok(AllowList {
            mode: raw.mode,
            reject_malformed: raw.reject_malformed,
            rewrite_path: raw.rewrite_path,
            deny_response,
            malformed_response,
            rules,
            hosts,
            needs_source_address,
            needs_peer_identity,
        })
    }
}
