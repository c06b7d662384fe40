//! `meshsight check`: the policy compiled exactly as the module compiles it (an error refuses
//! it, with the JSON path), then the allowlist's rules analysed for what compiles but cannot
//! be meant: rules that can never match (shadowed by an earlier rule that matches everything
//! they match, hosts no request is ever normalized to, header conditions on a header Envoy never
//! hands the module), rules that overlap another, and, given audit records from `monitor`
//! mode, rules that no recorded request hit and rules whose `sources` admit callers no recorded
//! request to them came from (a namespace where the records show only some of its principals
//! calling the rule: the lateral movement least privilege is meant to stop).
//!
//! The analysis is conservative: "shadowed" is said only when it is certain; "overlap" when a
//! request may match both.

use std::collections::HashSet;

use meshsight_policy::allowlist::{AllowList, RawPolicy, RawRule};
use meshsight_policy::identity::PrincipalPattern;
use meshsight_policy::matching::path::{PathPattern, SegmentPattern};
use meshsight_policy::matching::{compile_hosts, compile_paths, HostMatch, PathMatch};
use meshsight_policy::normalize::normalize_host;
use serde::Serialize;

use crate::error::CliError;
use crate::records::RecordReader;

/// Most overlap warnings listed (the rest are counted).
const MAX_OVERLAPS: usize = 50;

/// One thing `check` has to say about a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// JSON path of the rule (`allowlist.rules[3]`).
    pub at: String,
    /// The rule's name.
    pub rule: String,
    /// `shadowed`, `never_matches`, `overlap`, `never_hit`, `unseen_source`, `any_source`.
    pub kind: &'static str,
    /// What is wrong, in words.
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "warning: {} ({}): {}", self.at, self.rule, self.message)
    }
}

/// A rule's matching fields, compiled for comparison.
struct Shape<'a> {
    raw: &'a RawRule,
    hosts: Option<Vec<HostMatch>>,
    paths: Option<Vec<PathMatch>>,
}

/// The JSON path prefix of the allowlist's rules in the document.
fn rules_at(one_pass: bool) -> &'static str {
    if one_pass {
        "allowlist.rules"
    } else {
        "rules"
    }
}

/// Analyses the rules of an allowlist that compiled (`one_pass`: it is the `allowlist` section
/// of the one-pass document, for the JSON paths).
pub fn analyse(raw: &RawPolicy, one_pass: bool) -> Vec<Finding> {
    let base = rules_at(one_pass);
    let shapes: Vec<Shape<'_>> = raw
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| Shape {
            raw: r,
            hosts: compile_hosts(&format!("{base}[{i}].hosts"), r.hosts.as_deref())
                .ok()
                .flatten(),
            paths: compile_paths(&format!("{base}[{i}].paths"), r.paths.as_deref())
                .ok()
                .flatten(),
        })
        .collect();
    let mut findings = Vec::new();
    let mut overlaps = 0usize;
    for (j, b) in shapes.iter().enumerate() {
        let at = format!("{base}[{j}]");
        let finding = |kind, message: String| Finding {
            at: at.clone(),
            rule: b.raw.name.clone(),
            kind,
            message,
        };
        for why in never_matches(b) {
            findings.push(finding("never_matches", why));
        }
        if let Some((i, a)) = shapes[..j].iter().enumerate().find(|(_, a)| covers(a, b)) {
            findings.push(finding(
                "shadowed",
                format!(
                    "can never match: every request it matches is matched first by {base}[{i}] ({}), so it never allows anything and its hit counter stays 0",
                    a.raw.name
                ),
            ));
            continue;
        }
        for (i, a) in shapes[..j].iter().enumerate() {
            if may_overlap(a, b) {
                overlaps += 1;
                if overlaps <= MAX_OVERLAPS {
                    findings.push(finding(
                        "overlap",
                        format!(
                            "overlaps {base}[{i}] ({}): a request matching both is counted as a hit of {} only (the first rule that matches wins)",
                            a.raw.name, a.raw.name
                        ),
                    ));
                }
            }
        }
    }
    if overlaps > MAX_OVERLAPS {
        findings.push(Finding {
            at: base.to_string(),
            rule: String::new(),
            kind: "overlap",
            message: format!("... and {} more overlapping pairs", overlaps - MAX_OVERLAPS),
        });
    }
    findings
}

/// Why a rule can never match, whatever comes before it.
fn never_matches(s: &Shape<'_>) -> Vec<String> {
    let mut why = Vec::new();
    for host in s.raw.hosts.iter().flatten() {
        if host.starts_with("*.") {
            continue;
        }
        let literal = host.to_ascii_lowercase();
        let literal = literal.strip_suffix('.').unwrap_or(&literal);
        match normalize_host(literal, "http") {
            Err(m) => why.push(format!(
                "host {host:?} never matches: a request naming it is malformed ({m})"
            )),
            Ok(h) if h.name != literal => why.push(format!(
                "host {host:?} is not in normalized form: a request for it is judged as host {:?}",
                h.name
            )),
            Ok(_) => {}
        }
    }
    for h in s.raw.headers.iter().flatten() {
        let name = h.name.to_ascii_lowercase();
        if name == "host" && h.present != Some(false) {
            why.push(
                "header \"host\" never reaches the module: Envoy turns it into \":authority\" (match the host with \"hosts\")"
                    .to_string(),
            );
        }
    }
    for q in s.raw.query.iter().flatten() {
        if q.present == Some(true) && q.absent == Some(true) {
            why.push(format!(
                "query parameter {:?} must be both present and absent",
                q.name
            ));
        }
    }
    if s.raw
        .methods
        .as_ref()
        .is_some_and(|m| m.iter().all(|m| m == "CONNECT"))
        && s.paths.is_some()
    {
        why.push(
            "CONNECT requests have no path, so a CONNECT rule with paths never matches".to_string(),
        );
    }
    why
}

/// Whether every request `b` matches is matched by `a` (certain, never guessed).
fn covers(a: &Shape<'_>, b: &Shape<'_>) -> bool {
    let ra = a.raw;
    let rb = b.raw;
    let methods = match (&ra.methods, &rb.methods) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(ma), Some(mb)) => mb.iter().all(|m| ma.contains(m)),
    };
    let hosts = match (&a.hosts, &b.hosts) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(ha), Some(hb)) => hb.iter().all(|h| ha.iter().any(|g| host_covers(g, h))),
    };
    let paths = match (&a.paths, &b.paths) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(pa), Some(pb)) => pb.iter().all(|p| pa.iter().any(|q| path_covers(q, p))),
    };
    // Conditions of `a` must all be conditions of `b` too (then `b` is at least as narrow).
    let headers = match (&ra.headers, &rb.headers) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(ha), Some(hb)) => ha.iter().all(|h| hb.contains(h)),
    };
    let query = match (&ra.query, &rb.query) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(qa), Some(qb)) => qa.iter().all(|q| qb.contains(q)),
    };
    let sources = match (&ra.sources, &rb.sources) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(sa), Some(sb)) => {
            let kind = |a: &Option<Vec<String>>, b: &Option<Vec<String>>| match (a, b) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(a), Some(b)) => b.iter().all(|x| a.contains(x)),
            };
            kind(&sa.cidrs, &sb.cidrs)
                && kind(&sa.principals, &sb.principals)
                && kind(&sa.namespaces, &sb.namespaces)
        }
    };
    methods && hosts && paths && headers && query && sources
}

fn host_covers(a: &HostMatch, b: &HostMatch) -> bool {
    match (a, b) {
        (HostMatch::Exact(x), HostMatch::Exact(y)) => x == y,
        (HostMatch::Suffix(s), HostMatch::Exact(h)) => {
            HostMatch::Suffix(s.clone()).matches(Some(h))
        }
        (HostMatch::Suffix(s), HostMatch::Suffix(t)) => {
            t == s || t.strip_suffix(s.as_str()).is_some_and(|h| h.ends_with('.'))
        }
        (HostMatch::Exact(_), HostMatch::Suffix(_)) => false,
    }
}

fn host_may_meet(a: &HostMatch, b: &HostMatch) -> bool {
    host_covers(a, b) || host_covers(b, a)
}

/// The literal start every path a pattern matches has (`/api/v1/` for `/api/v1/*`).
fn pattern_prefix(p: &PathPattern) -> String {
    let mut out = String::from("/");
    for (i, seg) in p.segments.iter().enumerate() {
        match seg {
            SegmentPattern::Exact(s) => {
                out.push_str(s);
                if i + 1 < p.segments.len() {
                    out.push('/');
                }
            }
            SegmentPattern::One => return out,
        }
    }
    out
}

fn all_exact(p: &PathPattern) -> Option<String> {
    let mut out = String::new();
    for seg in &p.segments {
        match seg {
            SegmentPattern::Exact(s) => {
                out.push('/');
                out.push_str(s);
            }
            SegmentPattern::One => return None,
        }
    }
    Some(if out.is_empty() { "/".to_string() } else { out })
}

/// Whether pattern `a` matches every path pattern `b` matches.
fn pattern_covers(a: &PathPattern, b: &PathPattern) -> bool {
    for (i, sb) in b.segments.iter().enumerate() {
        let Some(sa) = a.segments.get(i) else {
            return a.rest;
        };
        let ok = match (sa, sb) {
            (SegmentPattern::Exact(x), SegmentPattern::Exact(y)) => x == y,
            (SegmentPattern::One, SegmentPattern::Exact(y)) => !y.is_empty(),
            (SegmentPattern::One, SegmentPattern::One) => true,
            (SegmentPattern::Exact(_), SegmentPattern::One) => false,
        };
        if !ok {
            return false;
        }
    }
    if b.rest {
        a.rest && a.segments.len() <= b.segments.len()
    } else {
        a.segments.len() == b.segments.len() || (a.rest && a.segments.len() <= b.segments.len())
    }
}

fn path_covers(a: &PathMatch, b: &PathMatch) -> bool {
    match (a, b) {
        (_, PathMatch::Exact(e)) => a.matches(Some(e)),
        (PathMatch::Pattern(pa), PathMatch::Pattern(pb)) => pattern_covers(pa, pb),
        (PathMatch::Pattern(pa), PathMatch::Prefix(p)) => {
            pa.rest
                && all_exact(pa).is_some_and(|lit| lit == "/" || p.starts_with(&format!("{lit}/")))
        }
        (PathMatch::Exact(e), PathMatch::Pattern(pb)) => {
            !pb.rest && all_exact(pb).as_deref() == Some(e.as_str())
        }
        (PathMatch::Exact(_), PathMatch::Prefix(_)) => false,
        (PathMatch::Prefix(p), PathMatch::Prefix(q)) => q.starts_with(p.as_str()),
        (PathMatch::Prefix(p), PathMatch::Pattern(pb)) => {
            // Every match starts with the pattern's literal start, unless `**` lets it end
            // before (a pattern `/a/**` also matches `/a`).
            let lit = pattern_prefix(pb);
            lit.starts_with(p.as_str())
                && !(pb.rest && all_exact(pb).is_some_and(|l| !l.starts_with(p.as_str())))
        }
    }
}

fn patterns_may_meet(a: &PathPattern, b: &PathPattern) -> bool {
    let n = a.segments.len().max(b.segments.len());
    for i in 0..n {
        match (a.segments.get(i), b.segments.get(i)) {
            (Some(SegmentPattern::Exact(x)), Some(SegmentPattern::Exact(y))) if x != y => {
                return false
            }
            (Some(SegmentPattern::One), Some(SegmentPattern::Exact(y)))
            | (Some(SegmentPattern::Exact(y)), Some(SegmentPattern::One))
                if y.is_empty() =>
            {
                return false
            }
            (Some(_), Some(_)) => {}
            (None, Some(_)) => return a.rest,
            (Some(_), None) => return b.rest,
            (None, None) => {}
        }
    }
    true
}

fn paths_may_meet(a: &PathMatch, b: &PathMatch) -> bool {
    match (a, b) {
        (PathMatch::Exact(e), other) | (other, PathMatch::Exact(e)) => other.matches(Some(e)),
        (PathMatch::Pattern(x), PathMatch::Pattern(y)) => patterns_may_meet(x, y),
        (PathMatch::Prefix(p), PathMatch::Prefix(q)) => {
            p.starts_with(q.as_str()) || q.starts_with(p.as_str())
        }
        (PathMatch::Prefix(p), PathMatch::Pattern(x))
        | (PathMatch::Pattern(x), PathMatch::Prefix(p)) => {
            let lit = pattern_prefix(x);
            lit.starts_with(p.as_str()) || p.starts_with(&lit)
        }
    }
}

/// Whether some request may match both rules (on methods, hosts and paths).
fn may_overlap(a: &Shape<'_>, b: &Shape<'_>) -> bool {
    let methods = match (&a.raw.methods, &b.raw.methods) {
        (Some(x), Some(y)) => x.iter().any(|m| y.contains(m)),
        _ => true,
    };
    let hosts = match (&a.hosts, &b.hosts) {
        (Some(x), Some(y)) => x.iter().any(|h| y.iter().any(|g| host_may_meet(h, g))),
        _ => true,
    };
    let paths = match (&a.paths, &b.paths) {
        (Some(x), Some(y)) => x.iter().any(|p| y.iter().any(|q| paths_may_meet(p, q))),
        _ => true,
    };
    methods && hosts && paths
}

/// Most principals remembered per rule, and in all the records (past it, no claim that needs
/// the whole set is made).
const MAX_PRINCIPALS: usize = 4096;

/// Most principals named in one finding's message (the rest are counted).
const MAX_NAMED: usize = 6;

/// Who the records show calling each rule: its hits and their principals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleCallers {
    /// Hits per rule (the first rule that matches takes the request, as in the module).
    pub hits: Vec<u64>,
    /// Per rule: the principals of its hits.
    principals: Vec<HashSet<String>>,
    /// Per rule: hits from callers with no mTLS identity.
    anonymous: Vec<u64>,
    /// Per rule: more principals than remembered.
    overflow: Vec<bool>,
    /// Every principal in the records, whatever it called.
    seen: HashSet<String>,
}

impl RuleCallers {
    fn new(rules: usize) -> RuleCallers {
        RuleCallers {
            hits: vec![0; rules],
            principals: vec![HashSet::new(); rules],
            anonymous: vec![0; rules],
            overflow: vec![false; rules],
            seen: HashSet::new(),
        }
    }

    fn add(&mut self, rule: Option<usize>, principal: Option<&str>) {
        if let Some(p) = principal {
            if self.seen.len() < MAX_PRINCIPALS && !self.seen.contains(p) {
                self.seen.insert(p.to_string());
            }
        }
        let Some(i) = rule else { return };
        let (Some(hits), Some(callers), Some(anonymous), Some(overflow)) = (
            self.hits.get_mut(i),
            self.principals.get_mut(i),
            self.anonymous.get_mut(i),
            self.overflow.get_mut(i),
        ) else {
            return;
        };
        *hits += 1;
        match principal {
            None => *anonymous += 1,
            Some(p) if !callers.contains(p) => {
                if callers.len() >= MAX_PRINCIPALS {
                    *overflow = true;
                } else {
                    callers.insert(p.to_string());
                }
            }
            Some(_) => {}
        }
    }
}

/// Hits per rule over the records in `reader`, judged by `list` exactly as the module would,
/// and the principals behind them.
pub fn rule_hits(list: &AllowList, reader: &mut RecordReader) -> Result<RuleCallers, CliError> {
    let mut callers = RuleCallers::new(list.rule_count());
    while let Some(record) = reader.next_record()? {
        let rule = list.judge_facts(&record.facts()).rule;
        callers.add(rule, record.principal.as_deref());
    }
    Ok(callers)
}

/// `never_hit` findings for rules with no hit in `hits`.
pub fn never_hit(list: &AllowList, hits: &[u64], records: u64, one_pass: bool) -> Vec<Finding> {
    let base = rules_at(one_pass);
    list.rule_names()
        .enumerate()
        .filter(|(i, _)| hits.get(*i) == Some(&0))
        .map(|(i, name)| Finding {
            at: format!("{base}[{i}]"),
            rule: name.to_string(),
            kind: "never_hit",
            message: format!("no request of the {records} recorded hit this rule"),
        })
        .collect()
}

/// Names, sorted, at most [`MAX_NAMED`] of them, then how many more.
fn named<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    let mut list: Vec<&str> = names.into_iter().map(String::as_str).collect();
    list.sort_unstable();
    let more = list.len().saturating_sub(MAX_NAMED);
    list.truncate(MAX_NAMED);
    let mut text = list.join(", ");
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

/// `unseen_source` and `any_source` findings: rules whose `sources` admit callers that no
/// recorded request to them came from. A namespace (or a principal prefix) whose other
/// principals the records show calling elsewhere but never this rule; a principal never seen
/// calling it; no `sources` at all when every request that hit the rule came from an mTLS
/// peer. Rules never hit are left to `never_hit`; `cidrs` are not judged.
pub fn unseen_sources(raw: &RawPolicy, callers: &RuleCallers, one_pass: bool) -> Vec<Finding> {
    let base = rules_at(one_pass);
    let mut findings = Vec::new();
    for (i, rule) in raw.rules.iter().enumerate() {
        let (Some(&hits), Some(hit_by), Some(&anonymous), Some(&overflow)) = (
            callers.hits.get(i),
            callers.principals.get(i),
            callers.anonymous.get(i),
            callers.overflow.get(i),
        ) else {
            continue;
        };
        if hits == 0 || overflow {
            continue;
        }
        let mut finding = |kind, message: String| {
            findings.push(Finding {
                at: format!("{base}[{i}]"),
                rule: rule.name.clone(),
                kind,
                message,
            })
        };
        let Some(sources) = &rule.sources else {
            if anonymous == 0 && !hit_by.is_empty() {
                finding(
                    "any_source",
                    format!(
                        "names no sources, so it admits any caller, but all {hits} recorded requests that hit it came from {} mTLS principal(s): {} (name them in sources.principals)",
                        hit_by.len(),
                        named(hit_by)
                    ),
                );
            }
            continue;
        };
        // Principals under a namespace or prefix that hit the rule, and those the records show
        // elsewhere but never hitting it.
        let split = |under: &dyn Fn(&str) -> bool| {
            let hit: Vec<&String> = hit_by.iter().filter(|p| under(p)).collect();
            let never: Vec<&String> = callers
                .seen
                .iter()
                .filter(|p| under(p) && !hit_by.contains(*p))
                .collect();
            (hit, never)
        };
        let wide = |what: String, hit: Vec<&String>, never: Vec<&String>| {
            if hit.is_empty() {
                Some(format!(
                    "admits {what}, but none of the {hits} recorded requests that hit it came from there"
                ))
            } else if !never.is_empty() {
                Some(format!(
                    "admits {what}: only {} hit it, yet the records show {} there never calling it (name principals: `meshsight learn --sources principals`)",
                    named(hit),
                    named(never)
                ))
            } else {
                None
            }
        };
        for ns in sources.namespaces.iter().flatten() {
            let under = |p: &str| meshsight_policy::identity::spiffe_namespace(p) == Some(ns);
            let (hit, never) = split(&under);
            if let Some(m) = wide(format!("every workload of namespace {ns:?}"), hit, never) {
                finding("unseen_source", m);
            }
        }
        for entry in sources.principals.iter().flatten() {
            match PrincipalPattern::parse(entry) {
                Ok(PrincipalPattern::Exact(id)) => {
                    if !hit_by.contains(&id) {
                        let elsewhere = if callers.seen.contains(&id) {
                            "the records show it calling, but never this rule"
                        } else {
                            "no record shows it at all"
                        };
                        finding(
                            "unseen_source",
                            format!("admits principal {id}, which none of the {hits} recorded requests that hit it came from: {elsewhere}"),
                        );
                    }
                }
                Ok(pattern @ PrincipalPattern::Prefix(_)) => {
                    let under = |p: &str| pattern.matches(p);
                    let (hit, never) = split(&under);
                    if let Some(m) = wide(format!("every principal under {entry}"), hit, never) {
                        finding("unseen_source", m);
                    }
                }
                // It compiled, so it parses.
                Err(_) => {}
            }
        }
    }
    findings
}

#[cfg(test)]
mod tests;
