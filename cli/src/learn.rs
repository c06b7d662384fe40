//! `meshsight learn`: an allowlist proposed from audit records gathered in `monitor` mode.
//!
//! Records flagged as attacks (a signature matched) are never learned, nor requests the
//! application answered with a status that says "no such endpoint" (`exclude_status`, default
//! 400, 404, 405, 501: scanners' probes), nor malformed targets. Every other request is
//! normalized as the module normalizes it and added to a segment trie per host and method:
//!
//! - a segment that looks like a value becomes a named parameter segment: numbers `{id}`, UUIDs
//!   `{uuid}`, hex digests and other long hex strings `{hash}`, base64-ish tokens `{token}`;
//! - a node whose distinct children pass `fanout` (default 20), once at least
//!   `fanout_min_requests` (default 50) requests went through it, is generalized: `*` when every
//!   child is a last segment, `**` otherwise; past `max_children` (default 1000) it is
//!   generalized at once whatever the counts, which bounds memory on any input;
//! - a path seen fewer than `min_hits` times (default 1) is left out.
//!
//! Each path template remembers who called it: the namespaces (or principals) of its mTLS
//! peers, or that some caller had no identity. Templates of one host and method with the same
//! callers form one rule, with `sources` naming them (none when a caller had no identity).
//! Every learned request is allowed by the proposal, so replaying the learning records gives no
//! denial of a learned request; the proposal compiles (and passes `check`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use meshsight_policy::allowlist::{RawPolicy, RawRule, RawSources};
use meshsight_policy::decision::Mode;
use meshsight_policy::matching::path::PathPattern;
use meshsight_policy::matching::{MethodMatch, RawPathMatch};
use serde::Serialize;

use crate::records::ObservedRequest;

/// Most namespaces or principals remembered per path template.
const MAX_CALLERS: usize = 64;

/// What callers a rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceMode {
    /// `sources.namespaces` from the peers' SPIFFE IDs.
    Namespaces,
    /// `sources.principals`: the peers' SPIFFE IDs.
    Principals,
    /// No `sources`: any caller.
    None,
}

/// The thresholds of learning (each a command-line option).
#[derive(Debug, Clone, PartialEq)]
pub struct LearnOptions {
    /// Distinct children of a path node that make it generalize.
    pub fanout: usize,
    /// Requests through a node before its fan-out counts.
    pub fanout_min_requests: u64,
    /// Distinct children past which a node generalizes at once (bounds memory).
    pub max_children: usize,
    /// Fewest requests for a path template to be learned.
    pub min_hits: u64,
    /// Statuses that mark a request as a probe for something that is not there.
    pub exclude_status: Vec<u16>,
    /// What callers the rules name.
    pub sources: SourceMode,
    /// The proposal's mode.
    pub mode: Mode,
}

impl Default for LearnOptions {
    fn default() -> Self {
        LearnOptions {
            fanout: 20,
            fanout_min_requests: 50,
            max_children: 1000,
            min_hits: 1,
            exclude_status: vec![400, 404, 405, 501],
            sources: SourceMode::Namespaces,
            mode: Mode::Enforce,
        }
    }
}

/// Why a record was not learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Learned.
    Learned,
    /// Flagged as an attack.
    Flagged,
    /// A probe status (`exclude_status`).
    ProbeStatus,
    /// Malformed target or host, or a method no rule can name.
    Unlearnable,
}

/// Counts of a learning pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LearnCounts {
    /// Records learned from.
    pub learned: u64,
    /// Records flagged as attacks (not learned).
    pub flagged: u64,
    /// Records with a probe status (not learned).
    pub probe_status: u64,
    /// Records that cannot be learned (malformed, bad method).
    pub unlearnable: u64,
}

/// A segment's kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Segment {
    Literal(String),
    Param(&'static str),
}

#[derive(Debug, Default)]
struct Callers {
    names: BTreeSet<String>,
    anonymous: bool,
    /// More distinct callers than remembered: name none.
    overflow: bool,
}

impl Callers {
    fn add(&mut self, name: Option<&str>) {
        match name {
            None => self.anonymous = true,
            Some(n) => {
                if !self.names.contains(n) {
                    if self.names.len() >= MAX_CALLERS {
                        self.overflow = true;
                    } else {
                        self.names.insert(n.to_string());
                    }
                }
            }
        }
    }

    fn merge(&mut self, other: &Callers) {
        self.anonymous |= other.anonymous;
        self.overflow |= other.overflow;
        for n in &other.names {
            self.add(Some(n));
        }
    }

    /// The sources a rule names for these callers (`None`: any caller).
    fn key(&self) -> Option<Vec<String>> {
        (!self.anonymous && !self.overflow && !self.names.is_empty())
            .then(|| self.names.iter().cloned().collect())
    }
}

#[derive(Debug, Default)]
struct Node {
    children: HashMap<Segment, Node>,
    /// Requests whose path ends here.
    ends: u64,
    /// Requests through this node.
    through: u64,
    callers: Callers,
    /// Generalized: everything below is one `*` (false) or `**` (true) template.
    wide: Option<bool>,
    wide_hits: u64,
}

impl Node {
    fn depth_below(&self) -> bool {
        self.children
            .values()
            .any(|c| !c.children.is_empty() || c.wide.is_some())
    }

    /// Folds every child into this node's wide template.
    fn collapse(&mut self) {
        let deep = self.wide.unwrap_or(false)
            || self.depth_below()
            || self.children.contains_key(&Segment::Literal(String::new()));
        let mut callers = std::mem::take(&mut self.callers);
        let mut hits = self.wide_hits;
        fn gather(n: &Node, callers: &mut Callers, hits: &mut u64) {
            // Requests ending exactly here (not below) stay the node's own template.
            for c in n.children.values() {
                *hits += c.ends + c.wide_hits;
                callers.merge(&c.callers);
                gather(c, callers, hits);
            }
        }
        gather(self, &mut callers, &mut hits);
        self.children.clear();
        self.callers = callers;
        self.wide = Some(deep);
        self.wide_hits = hits;
    }
}

/// Classifies a path segment: a value that should be a parameter, or a literal.
pub fn classify(segment: &str) -> Option<&'static str> {
    let b = segment.as_bytes();
    if b.is_empty() {
        return None;
    }
    if b.iter().all(u8::is_ascii_digit) {
        return Some("id");
    }
    let is_hex = |c: &u8| c.is_ascii_hexdigit();
    if b.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        && b.iter()
            .enumerate()
            .all(|(i, c)| [8, 13, 18, 23].contains(&i) || is_hex(c))
    {
        return Some("uuid");
    }
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    let letters = b.iter().filter(|c| c.is_ascii_alphabetic()).count();
    if b.iter().all(is_hex) && (b.len() >= 16 || (b.len() >= 8 && digits > 0 && letters > 0)) {
        return Some("hash");
    }
    let b64 = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'+' | b'=' | b'~');
    let upper = b.iter().any(u8::is_ascii_uppercase);
    let lower = b.iter().any(u8::is_ascii_lowercase);
    if b.len() >= 16 && b.iter().all(b64) && digits > 0 && upper && lower {
        return Some("token");
    }
    None
}

/// What one proposed rule stands for: host, method and the callers it names.
type RuleKey = (String, String, Option<Vec<String>>);

/// The learner: feed it records, then ask for the proposal.
#[derive(Debug)]
pub struct Learner {
    options: LearnOptions,
    /// (host, method) -> path trie.
    tries: BTreeMap<(String, String), Node>,
    counts: LearnCounts,
}

impl Learner {
    /// A learner with these thresholds.
    pub fn new(options: LearnOptions) -> Learner {
        Learner {
            options,
            tries: BTreeMap::new(),
            counts: LearnCounts::default(),
        }
    }

    /// What became of each record so far.
    pub fn counts(&self) -> &LearnCounts {
        &self.counts
    }

    /// Whether `record` is learnable under these options (and why not).
    pub fn triage(&self, record: &ObservedRequest) -> Skip {
        if record.flagged() {
            return Skip::Flagged;
        }
        if record
            .status
            .is_some_and(|s| self.options.exclude_status.contains(&s))
        {
            return Skip::ProbeStatus;
        }
        let facts = record.facts();
        if facts.malformed().is_some() || MethodMatch::parse(&record.method).is_err() {
            return Skip::Unlearnable;
        }
        Skip::Learned
    }

    /// Learns from one record (or counts why not).
    pub fn observe(&mut self, record: &ObservedRequest) -> Skip {
        let skip = self.triage(record);
        match skip {
            Skip::Flagged => self.counts.flagged += 1,
            Skip::ProbeStatus => self.counts.probe_status += 1,
            Skip::Unlearnable => self.counts.unlearnable += 1,
            Skip::Learned => {}
        }
        if skip != Skip::Learned {
            return skip;
        }
        let facts = record.facts();
        let (Some(path), host) = (facts.path(), facts.host().unwrap_or("")) else {
            self.counts.unlearnable += 1;
            return Skip::Unlearnable;
        };
        self.counts.learned += 1;
        let caller = match self.options.sources {
            SourceMode::Namespaces => record.namespace().map(str::to_string),
            SourceMode::Principals => record.principal.clone(),
            SourceMode::None => Some(String::new()),
        };
        let max_children = self.options.max_children;
        let mut node = self
            .tries
            .entry((host.to_string(), record.method.clone()))
            .or_default();
        let body = path.strip_prefix('/').unwrap_or(path);
        let segments: Vec<&str> = body.split('/').collect();
        for (i, seg) in segments.iter().enumerate() {
            node.through += 1;
            if let Some(deep) = node.wide {
                // Below a generalized node: its template takes the request; one more
                // non-empty segment fits `*`, anything else needs `**`.
                let fits_one = i + 1 == segments.len() && !seg.is_empty();
                node.wide = Some(deep || !fits_one);
                node.wide_hits += 1;
                node.callers.add(caller.as_deref());
                return Skip::Learned;
            }
            let key = match classify(seg) {
                Some(kind) => Segment::Param(kind),
                None => Segment::Literal((*seg).to_string()),
            };
            if !node.children.contains_key(&key) && node.children.len() >= max_children {
                node.collapse();
                node.wide = Some(true);
                node.wide_hits += 1;
                node.callers.add(caller.as_deref());
                return Skip::Learned;
            }
            node = node.children.entry(key).or_default();
        }
        node.ends += 1;
        node.callers.add(caller.as_deref());
        Skip::Learned
    }

    /// The proposed allowlist.
    pub fn propose(mut self) -> RawPolicy {
        let options = self.options.clone();
        // Generalize wide fan-out, bottom-up.
        fn generalize(node: &mut Node, o: &LearnOptions) {
            for child in node.children.values_mut() {
                generalize(child, o);
            }
            if node.wide.is_none()
                && node.children.len() >= o.fanout
                && node.through >= o.fanout_min_requests
            {
                node.collapse();
            }
        }
        // (host, method, sources) -> paths
        let mut groups: BTreeMap<RuleKey, Vec<RawPathMatch>> = BTreeMap::new();
        for ((host, method), root) in self.tries.iter_mut() {
            generalize(root, &options);
            let mut templates = Vec::new();
            collect(root, &mut Vec::new(), &options, &mut templates);
            for (path, callers) in templates {
                let sources = match options.sources {
                    SourceMode::None => None,
                    _ => callers.key(),
                };
                groups
                    .entry((host.clone(), method.clone(), sources))
                    .or_default()
                    .push(path);
            }
        }
        let mut names: HashMap<String, usize> = HashMap::new();
        let rules = groups
            .into_iter()
            .map(|((host, method, sources), paths)| {
                let label = host
                    .split('.')
                    .next()
                    .filter(|l| !l.is_empty())
                    .unwrap_or("any");
                let base: String = format!("{label}-{}", method.to_ascii_lowercase())
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .take(56)
                    .collect();
                let n = names.entry(base.clone()).or_insert(0);
                *n += 1;
                let name = if *n == 1 { base } else { format!("{base}-{n}") };
                RawRule {
                    name,
                    methods: Some(vec![method]),
                    hosts: (!host.is_empty()).then(|| vec![host]),
                    paths: Some(paths),
                    headers: None,
                    query: None,
                    sources: sources.map(|list| match options.sources {
                        SourceMode::Principals => RawSources {
                            principals: Some(list),
                            ..RawSources::default()
                        },
                        _ => RawSources {
                            namespaces: Some(list),
                            ..RawSources::default()
                        },
                    }),
                }
            })
            .collect();
        RawPolicy {
            mode: options.mode,
            rules,
            reject_malformed: true,
            rewrite_path: true,
            deny_response: None,
            malformed_response: None,
        }
    }
}

/// Emits the templates under `node` reached by `prefix` (segments as pattern text).
fn collect(
    node: &Node,
    prefix: &mut Vec<String>,
    o: &LearnOptions,
    out: &mut Vec<(RawPathMatch, Callers)>,
) {
    let path_of = |prefix: &[String], tail: Option<&str>| {
        let mut s = String::new();
        for seg in prefix {
            s.push('/');
            s.push_str(seg);
        }
        if let Some(t) = tail {
            s.push('/');
            s.push_str(t);
        }
        if s.is_empty() {
            s.push('/');
        }
        s
    };
    if let Some(deep) = node.wide {
        if node.wide_hits >= o.min_hits {
            let tail = if deep { "**" } else { "*" };
            out.push((
                entry(&path_of(prefix, Some(tail))),
                node.callers.clone_shallow(),
            ));
        }
        if node.ends >= o.min_hits && node.ends > 0 && !deep {
            // Requests that ended exactly at the generalized node.
            out.push((entry(&path_of(prefix, None)), node.callers.clone_shallow()));
        }
        return;
    }
    if node.ends >= o.min_hits && node.ends > 0 {
        out.push((entry(&path_of(prefix, None)), node.callers.clone_shallow()));
    }
    let mut children: Vec<(&Segment, &Node)> = node.children.iter().collect();
    children.sort_by(|a, b| a.0.cmp(b.0));
    for (seg, child) in children {
        let text = match seg {
            Segment::Literal(l) => l.clone(),
            Segment::Param(kind) => {
                let used = prefix
                    .iter()
                    .filter(|s| s.starts_with(&format!("{{{kind}")))
                    .count();
                if used == 0 {
                    format!("{{{kind}}}")
                } else {
                    format!("{{{kind}{}}}", used + 1)
                }
            }
        };
        prefix.push(text);
        collect(child, prefix, o, out);
        prefix.pop();
    }
}

impl Callers {
    fn clone_shallow(&self) -> Callers {
        Callers {
            names: self.names.clone(),
            anonymous: self.anonymous,
            overflow: self.overflow,
        }
    }
}

/// A `paths` entry for a template: the pattern itself when it compiles as one, else the
/// exact path (a literal segment the pattern syntax cannot say, like `*`).
fn entry(template: &str) -> RawPathMatch {
    if PathPattern::parse(template).is_ok() {
        RawPathMatch::Pattern(template.to_string())
    } else {
        RawPathMatch::Exact {
            exact: template.to_string(),
        }
    }
}

#[cfg(test)]
mod tests;
