//! `meshsight check`: the policy compiled exactly as the module compiles it (an error refuses
//! it, with the JSON path), then the allowlist's rules analysed for what compiles but cannot
//! be meant: rules that can never match (shadowed by an earlier rule that matches everything
//! they match, hosts no request is ever normalized to, header conditions on a header Envoy never
//! hands the module), rules that overlap another, and, given audit records from `monitor`
//! mode, rules that no recorded request hit.
//!
//! The analysis is conservative: "shadowed" is said only when it is certain; "overlap" when a
//! request may match both.

use meshsight_policy::allowlist::{AllowList, RawPolicy, RawRule};
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
    /// `shadowed`, `never_matches`, `overlap`, `never_hit`.
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

/// Hits per rule over the records in `reader`, judged by `list` exactly as the module would.
pub fn rule_hits(list: &AllowList, reader: &mut RecordReader) -> Result<Vec<u64>, CliError> {
    let mut hits = vec![0u64; list.rule_count()];
    while let Some(record) = reader.next_record()? {
        if let Some(i) = list.judge_facts(&record.facts()).rule {
            if let Some(h) = hits.get_mut(i) {
                *h += 1;
            }
        }
    }
    Ok(hits)
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

#[cfg(test)]
mod tests;
