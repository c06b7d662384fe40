//! Compiling a [`RawPolicy`] into an [`AllowList`]: validate every value (errors carry the JSON
//! path) and build the host index and path tries. Methods, hosts, paths, headers, query and
//! sources are compiled by [`crate::matching`], the same code the mirror's selectors use; this
//! file only adds what is the allowlist's own: rule names, responses and the index.

use crate::error::Quoted;
use thiserror::Error;

use super::raw::{RawPolicy, RawResponse, RawRule};
use super::trie::{PathTrie, RuleIndex};
use super::{AllowList, DenyResponse, HostIndex, Rule};
use crate::matching::{
    compile_headers, compile_hosts, compile_methods, compile_paths, compile_query, HostMatch,
    PathMatch, RequestMatch, SourceMatch,
};
use crate::ConfigError;

/// What is wrong with an allowlist-only value (rule names, responses); matching values have
/// their own errors in [`crate::matching`]. The compiler adds the JSON path.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    /// Rule names are used in counters and decisions.
    #[error("rule name {} must be 1 to 64 characters of [A-Za-z0-9_-]", Quoted(.0))]
    BadRuleName(String),
    /// Two rules with the same name.
    #[error("duplicate rule name {} (also rules[{}])", Quoted(.0), .1)]
    DuplicateRuleName(String, usize),
    /// More rules than the index can number.
    #[error("too many rules (at most {0})")]
    TooManyRules(RuleIndex),
    /// Local responses must be errors.
    #[error("status {0} must be between 400 and 599")]
    BadStatus(u32),
    /// A header value that cannot be sent.
    #[error("content type {} must be visible ASCII", Quoted(.0))]
    BadContentType(String),
    /// A huge body in every deny response is a mistake.
    #[error("body is {0} bytes; at most 4096")]
    BodyTooLarge(usize),
}

/// Checks a rule name (it becomes part of a stat name).
fn check_rule_name(raw: &str) -> Result<(), PolicyError> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(PolicyError::BadRuleName(raw.to_string()))
    }
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
        return Err(ConfigError::at(
            format!("{path}.status"),
            PolicyError::BadStatus(raw.status),
        ));
    }
    resp.status = raw.status;
    if let Some(body) = &raw.body {
        if body.len() > 4096 {
            return Err(ConfigError::at(
                format!("{path}.body"),
                PolicyError::BodyTooLarge(body.len()),
            ));
        }
        resp.body = Some(body.clone());
    }
    if let Some(ct) = &raw.content_type {
        if ct.is_empty() || !ct.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(ConfigError::at(
                format!("{path}.content_type"),
                PolicyError::BadContentType(ct.clone()),
            ));
        }
        resp.content_type = ct.clone();
    }
    Ok(resp)
}

struct CompiledRule {
    rule: Rule,
    hosts: Option<Vec<HostMatch>>,
    paths: Option<Vec<PathMatch>>,
}

fn rule(path: &str, raw: &RawRule) -> Result<CompiledRule, ConfigError> {
    check_rule_name(&raw.name).map_err(|e| ConfigError::at(format!("{path}.name"), e))?;
    let request = RequestMatch {
        methods: compile_methods(&format!("{path}.methods"), raw.methods.as_deref())?,
        // Host and path are matched by the index, not per rule.
        hosts: None,
        paths: None,
        headers: compile_headers(&format!("{path}.headers"), raw.headers.as_deref())?,
        query: compile_query(&format!("{path}.query"), raw.query.as_deref())?,
    };
    let hosts = compile_hosts(&format!("{path}.hosts"), raw.hosts.as_deref())?;
    let paths = compile_paths(&format!("{path}.paths"), raw.paths.as_deref())?;
    let sources = SourceMatch::compile(&format!("{path}.sources"), raw.sources.as_ref())?;
    Ok(CompiledRule {
        rule: Rule {
            name: raw.name.clone(),
            request,
            sources,
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
            return Err(ConfigError::at(
                "rules",
                PolicyError::TooManyRules(RuleIndex::MAX),
            ));
        }
        // Names seen, sorted, with the first rule of each: a binary search rather than a
        // `HashMap<&str, usize>`, whose hashing and table code the module would carry only for
        // this check.
        let mut names: Vec<(&str, usize)> = Vec::with_capacity(raw.rules.len());
        let mut hosts = HostIndex::default();
        let mut rules = Vec::with_capacity(raw.rules.len());
        for (i, raw_rule) in raw.rules.iter().enumerate() {
            let path = format!("rules[{i}]");
            let compiled = rule(&path, raw_rule)?;
            match names.binary_search_by(|(n, _)| (*n).cmp(raw_rule.name.as_str())) {
                Ok(found) => {
                    let first = names.get(found).map_or(0, |(_, first)| *first);
                    return Err(ConfigError::at(
                        format!("{path}.name"),
                        PolicyError::DuplicateRuleName(raw_rule.name.clone(), first),
                    ));
                }
                Err(at) => names.insert(at, (raw_rule.name.as_str(), i)),
            }
            let index = i as RuleIndex;
            let insert = |trie: &mut PathTrie| match &compiled.paths {
                Some(paths) => paths.iter().for_each(|p| trie.insert(p, index)),
                None => trie.insert_any(index),
            };
            match &compiled.hosts {
                None => insert(&mut hosts.any),
                Some(list) => {
                    for host in list {
                        match host {
                            HostMatch::Exact(name) => {
                                insert(hosts.exact.entry(name.as_str().into()).or_default())
                            }
                            HostMatch::Suffix(suffix) => {
                                insert(hosts.suffix.entry(suffix.as_str().into()).or_default())
                            }
                        }
                    }
                }
            }
            rules.push(compiled.rule);
        }
        let needs_source_address = rules.iter().any(|r| r.sources.needs_address());
        let needs_peer_identity = rules.iter().any(|r| r.sources.needs_identity());
        let needs_headers = rules.iter().any(|r| r.request.needs_headers());
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
            needs_headers,
        })
    }
}
