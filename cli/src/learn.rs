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
//! Each path template remembers who called it: the principals (SPIFFE IDs, one per service
//! account) of its mTLS peers and their namespaces, or that some caller had no identity.
//! Templates of one host and method with the same callers form one rule, whose `sources` name
//! exactly the principals that called (least privilege: a workload is admitted only to what it
//! was seen doing, so a compromised one cannot move laterally to what its neighbours in the
//! same namespace call). Namespaces are named only when asked (`SourceMode::Namespaces`) or when
//! more principals called a template than are remembered; no `sources` (any caller) when a
//! caller had no mTLS identity, since a plaintext request matches no `principals` or
//! `namespaces` rule. Every widening (a path generalized or parameterized, sources wider than
//! the principals seen) is reported with its reason ([`Widening`]).
//!
//! Every learned request is allowed by the proposal, so replaying the learning records gives no
//! denial of a learned request; the proposal compiles (and passes `check`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use meshsight_policy::allowlist::{RawPolicy, RawRule, RawSources};
use meshsight_policy::decision::Mode;
use meshsight_policy::identity::spiffe_namespace;
use meshsight_policy::matching::path::PathPattern;
use meshsight_policy::matching::{MethodMatch, RawPathMatch};
use serde::Serialize;

use crate::records::ObservedRequest;

/// Most principals, and most namespaces, remembered per path template.
pub const MAX_CALLERS: usize = 64;

/// What callers a rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceMode {
    /// `sources.principals`: the peers' SPIFFE IDs (service accounts) that called.
    #[value(alias = "principal")]
    Principals,
    /// `sources.namespaces` from the peers' SPIFFE IDs: every workload of a namespace that
    /// called, including those never seen calling.
    #[value(alias = "namespace")]
    Namespaces,
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
            sources: SourceMode::Principals,
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
    /// Learned records whose caller had an mTLS identity (a principal).
    pub identified: u64,
    /// Records flagged as attacks (not learned).
    pub flagged: u64,
    /// Records with a probe status (not learned).
    pub probe_status: u64,
    /// Records that cannot be learned (malformed, bad method).
    pub unlearnable: u64,
}

/// How a path template's node was generalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Generalized {
    /// Distinct children when it was generalized.
    pub children: usize,
    /// Requests through it by then.
    pub requests: u64,
    /// Generalized because `max_children` was reached (else `fanout`).
    pub max_children: bool,
}

/// Why a proposed rule admits more than the learning records show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Why {
    /// A path node with wide fan-out became `*` or `**`.
    Generalized {
        /// `*` or `**`.
        tail: &'static str,
        /// What made it generalize.
        by: Generalized,
        /// The `fanout` option in force.
        fanout: usize,
    },
    /// Segments that looked like values became parameters: (parameter, a value seen).
    Parameterized {
        /// Each parameter with a value it stands for.
        params: Vec<(String, String)>,
    },
    /// No `sources`: some callers had no mTLS identity.
    AnyCaller {
        /// Requests without an identity.
        anonymous: u64,
        /// The address of one of them.
        example: Option<IpAddr>,
    },
    /// No `sources`: more distinct callers than can be named.
    TooManyCallers,
    /// `sources.namespaces` although principals were asked: more principals called than are
    /// remembered.
    TooManyPrincipals {
        /// The namespaces named.
        namespaces: Vec<String>,
    },
    /// `sources.namespaces` as asked: every workload of these namespaces is admitted.
    Namespaces {
        /// The namespaces named.
        namespaces: Vec<String>,
        /// The principals that called (all of them unless `more`).
        principals: Vec<String>,
        /// More principals called than are listed.
        more: bool,
    },
    /// `sources.principals` although namespaces were asked: a caller's SPIFFE ID names no
    /// namespace (not the Istio shape `spiffe://<td>/ns/<ns>/sa/<sa>`).
    NoNamespace,
}

/// One widening of one proposed rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Widening {
    /// Index of the rule in the proposal.
    pub rule: usize,
    /// The rule's name.
    pub name: String,
    /// The path template concerned (`None`: the whole rule, e.g. its sources).
    pub path: Option<String>,
    /// Why.
    pub why: Why,
}

impl std::fmt::Display for Widening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rules[{}] ({})", self.rule, self.name)?;
        if let Some(p) = &self.path {
            write!(f, " {p}")?;
        }
        f.write_str(": ")?;
        match &self.why {
            Why::Generalized { tail, by, fanout } => {
                write!(f, "generalized to {tail:?}: {} distinct ", by.children)?;
                f.write_str(if *tail == "*" {
                    "last segments"
                } else {
                    "segments"
                })?;
                if by.max_children {
                    write!(f, " reached --max-children {}", by.children)
                } else {
                    write!(f, " after {} requests (--fanout {fanout})", by.requests)
                }
            }
            Why::Parameterized { params } => {
                f.write_str("parameterized")?;
                for (i, (p, example)) in params.iter().enumerate() {
                    let sep = if i == 0 { " " } else { ", " };
                    write!(f, "{sep}{p} (values like {example:?})")?;
                }
                Ok(())
            }
            Why::AnyCaller { anonymous, example } => {
                write!(
                    f,
                    "admits any caller (no sources): {anonymous} request(s) came without an mTLS identity"
                )?;
                match example {
                    Some(ip) => write!(f, " (e.g. from {ip})"),
                    None => Ok(()),
                }
            }
            Why::TooManyCallers => write!(
                f,
                "admits any caller (no sources): more than {MAX_CALLERS} distinct callers"
            ),
            Why::TooManyPrincipals { namespaces } => write!(
                f,
                "sources widened to {}: more than {MAX_CALLERS} principals called",
                namespaces_text(namespaces)
            ),
            Why::Namespaces {
                namespaces,
                principals,
                more,
            } => write!(
                f,
                "admits every workload of {} (--sources namespaces); only {}{} called",
                namespaces_text(namespaces),
                principals.join(", "),
                if *more { " and more" } else { "" }
            ),
            Why::NoNamespace => f.write_str(
                "names principals, not namespaces: a caller's SPIFFE ID names no namespace",
            ),
        }
    }
}

/// `namespace a` or `namespaces a, b`.
fn namespaces_text(namespaces: &[String]) -> String {
    let s = if namespaces.len() == 1 { "" } else { "s" };
    format!("namespace{s} {}", namespaces.join(", "))
}

/// The proposed allowlist and what it admits beyond the learning records.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// The allowlist.
    pub policy: RawPolicy,
    /// Every widening, by rule.
    pub widenings: Vec<Widening>,
    /// Path templates in the proposal.
    pub templates: usize,
}

/// A segment's kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Segment {
    Literal(String),
    Param(&'static str),
}

/// A caller as one record shows it.
#[derive(Debug, Clone, Copy)]
struct Caller<'a> {
    principal: Option<&'a str>,
    address: Option<IpAddr>,
}

/// Who called a path template.
#[derive(Debug, Default, Clone)]
struct Callers {
    principals: BTreeSet<String>,
    /// Namespaces of the principals past [`MAX_CALLERS`], not remembered themselves (the
    /// others' namespaces are read from `principals`: one set per node, not two).
    more_namespaces: BTreeSet<String>,
    /// Requests from callers with no mTLS identity, and the address of the first.
    anonymous: u64,
    anonymous_example: Option<IpAddr>,
    /// A caller past [`MAX_CALLERS`] had a SPIFFE ID that names no namespace (for the others,
    /// `principals` tells).
    no_namespace: bool,
    /// More distinct principals (namespaces) than remembered.
    principals_overflow: bool,
    namespaces_overflow: bool,
}

/// What a rule's `sources` name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum RuleSources {
    Principals(Vec<String>),
    Namespaces(Vec<String>),
}

fn remember(set: &mut BTreeSet<String>, overflow: &mut bool, name: &str) {
    if !set.contains(name) {
        if set.len() >= MAX_CALLERS {
            *overflow = true;
        } else {
            set.insert(name.to_string());
        }
    }
}

impl Callers {
    fn add(&mut self, c: Caller<'_>) {
        match c.principal {
            None => {
                self.anonymous += 1;
                if self.anonymous_example.is_none() {
                    self.anonymous_example = c.address;
                }
            }
            Some(p) => self.add_principal(p),
        }
    }

    fn add_principal(&mut self, principal: &str) {
        // The common case, a caller seen before, parses nothing.
        if self.principals.contains(principal) {
            return;
        }
        if self.principals.len() < MAX_CALLERS {
            self.principals.insert(principal.to_string());
            return;
        }
        self.principals_overflow = true;
        match spiffe_namespace(principal) {
            Some(ns) => remember(&mut self.more_namespaces, &mut self.namespaces_overflow, ns),
            None => self.no_namespace = true,
        }
    }

    /// Whether some caller's SPIFFE ID names no namespace.
    fn any_without_namespace(&self) -> bool {
        self.no_namespace
            || self
                .principals
                .iter()
                .any(|p| spiffe_namespace(p).is_none())
    }

    fn merge(&mut self, other: &Callers) {
        self.anonymous += other.anonymous;
        if self.anonymous_example.is_none() {
            self.anonymous_example = other.anonymous_example;
        }
        self.no_namespace |= other.no_namespace;
        self.principals_overflow |= other.principals_overflow;
        self.namespaces_overflow |= other.namespaces_overflow;
        for p in &other.principals {
            self.add_principal(p);
        }
        for n in &other.more_namespaces {
            remember(&mut self.more_namespaces, &mut self.namespaces_overflow, n);
        }
    }

    /// The namespaces of every caller (`None`: more than can be named).
    fn namespaces(&self) -> Option<BTreeSet<String>> {
        let mut all = self.more_namespaces.clone();
        for p in &self.principals {
            if let Some(ns) = spiffe_namespace(p) {
                if !all.contains(ns) {
                    all.insert(ns.to_string());
                }
            }
        }
        (!self.namespaces_overflow && all.len() <= MAX_CALLERS).then_some(all)
    }

    /// The sources a rule names for these callers (`None`: any caller), and why they admit
    /// more than the principals seen, when they do.
    fn sources(&self, mode: SourceMode) -> (Option<RuleSources>, Option<Why>) {
        if mode == SourceMode::None {
            return (None, None);
        }
        if self.anonymous > 0 {
            // A plaintext request matches no principals or namespaces rule: naming sources
            // would deny the very requests learned.
            return (
                None,
                Some(Why::AnyCaller {
                    anonymous: self.anonymous,
                    example: self.anonymous_example,
                }),
            );
        }
        if self.principals.is_empty() {
            return (None, None);
        }
        let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>();
        let by_principal =
            (!self.principals_overflow).then(|| RuleSources::Principals(list(&self.principals)));
        let no_namespace = self.any_without_namespace();
        let namespaces = self.namespaces().filter(|_| !no_namespace);
        let by_namespace = namespaces
            .as_ref()
            .map(|n| RuleSources::Namespaces(list(n)));
        match (mode, by_principal, by_namespace) {
            (SourceMode::Principals, Some(p), _) => (Some(p), None),
            (SourceMode::Principals, None, Some(n)) => (
                Some(n),
                Some(Why::TooManyPrincipals {
                    namespaces: namespaces.as_ref().map(list).unwrap_or_default(),
                }),
            ),
            (SourceMode::Namespaces, _, Some(n)) => (
                Some(n),
                Some(Why::Namespaces {
                    namespaces: namespaces.as_ref().map(list).unwrap_or_default(),
                    principals: list(&self.principals),
                    more: self.principals_overflow,
                }),
            ),
            (SourceMode::Namespaces, Some(p), None) if no_namespace => {
                (Some(p), Some(Why::NoNamespace))
            }
            _ => (None, Some(Why::TooManyCallers)),
        }
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
    /// What made it generalize.
    generalized: Option<Generalized>,
    /// For a parameter segment: the first value it stood for (for the report).
    example: Option<String>,
}

impl Node {
    fn depth_below(&self) -> bool {
        self.children
            .values()
            .any(|c| !c.children.is_empty() || c.wide.is_some())
    }

    /// Folds every child into this node's wide template (`max_children`: because that bound
    /// was reached, else by fan-out).
    fn collapse(&mut self, max_children: bool) {
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
        self.generalized = Some(Generalized {
            children: self.children.len(),
            requests: self.through,
            max_children,
        });
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
type RuleKey = (String, String, Option<RuleSources>);

/// One path template as collected from a trie.
struct Template {
    path: RawPathMatch,
    text: String,
    callers: Callers,
    why: Vec<Why>,
}

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
        let caller = Caller {
            principal: record.principal.as_deref(),
            address: record.source_ip,
        };
        self.counts.identified += u64::from(caller.principal.is_some());
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
                node.callers.add(caller);
                return Skip::Learned;
            }
            let kind = classify(seg);
            let key = match kind {
                Some(kind) => Segment::Param(kind),
                None => Segment::Literal((*seg).to_string()),
            };
            if !node.children.contains_key(&key) && node.children.len() >= max_children {
                node.collapse(true);
                node.wide = Some(true);
                node.wide_hits += 1;
                node.callers.add(caller);
                return Skip::Learned;
            }
            node = node.children.entry(key).or_insert_with(|| Node {
                example: kind.map(|_| (*seg).to_string()),
                ..Node::default()
            });
        }
        node.ends += 1;
        node.callers.add(caller);
        Skip::Learned
    }

    /// The proposed allowlist.
    pub fn propose(self) -> RawPolicy {
        self.proposal().policy
    }

    /// The proposed allowlist with what it admits beyond the learning records.
    pub fn proposal(mut self) -> Proposal {
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
                node.collapse(false);
            }
        }
        let mut groups: BTreeMap<RuleKey, Vec<Template>> = BTreeMap::new();
        let mut templates = 0;
        for ((host, method), root) in self.tries.iter_mut() {
            generalize(root, &options);
            let mut found = Vec::new();
            collect(root, &mut Vec::new(), &options, &mut found);
            templates += found.len();
            for t in found {
                let (sources, _) = t.callers.sources(options.sources);
                groups
                    .entry((host.clone(), method.clone(), sources))
                    .or_default()
                    .push(t);
            }
        }
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut widenings = Vec::new();
        let mut rules = Vec::with_capacity(groups.len());
        for (index, ((host, method, sources), found)) in groups.into_iter().enumerate() {
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
            let mut callers = Callers::default();
            for t in &found {
                callers.merge(&t.callers);
            }
            if let (_, Some(why)) = callers.sources(options.sources) {
                widenings.push(Widening {
                    rule: index,
                    name: name.clone(),
                    path: None,
                    why,
                });
            }
            let mut paths = Vec::with_capacity(found.len());
            for t in found {
                for why in t.why {
                    widenings.push(Widening {
                        rule: index,
                        name: name.clone(),
                        path: Some(t.text.clone()),
                        why,
                    });
                }
                paths.push(t.path);
            }
            rules.push(RawRule {
                name,
                methods: Some(vec![method]),
                hosts: (!host.is_empty()).then(|| vec![host]),
                paths: Some(paths),
                headers: None,
                query: None,
                sources: sources.map(|s| match s {
                    RuleSources::Principals(list) => RawSources {
                        principals: Some(list),
                        ..RawSources::default()
                    },
                    RuleSources::Namespaces(list) => RawSources {
                        namespaces: Some(list),
                        ..RawSources::default()
                    },
                }),
            });
        }
        Proposal {
            policy: RawPolicy {
                mode: options.mode,
                rules,
                reject_malformed: true,
                rewrite_path: true,
                deny_response: None,
                malformed_response: None,
            },
            widenings,
            templates,
        }
    }
}

/// One segment of a template being collected: its pattern text and, for a parameter, a value
/// it stood for.
type PrefixSegment = (String, Option<String>);

/// Emits the templates under `node` reached by `prefix`.
fn collect(
    node: &Node,
    prefix: &mut Vec<PrefixSegment>,
    o: &LearnOptions,
    out: &mut Vec<Template>,
) {
    let path_of = |prefix: &[PrefixSegment], tail: Option<&str>| {
        let mut s = String::new();
        for (seg, _) in prefix {
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
    let params: Vec<(String, String)> = prefix
        .iter()
        .filter_map(|(seg, example)| example.as_ref().map(|e| (seg.clone(), e.clone())))
        .collect();
    let template = |text: String, generalized: Option<Why>| {
        let mut why: Vec<Why> = generalized.into_iter().collect();
        if !params.is_empty() {
            why.push(Why::Parameterized {
                params: params.clone(),
            });
        }
        Template {
            path: entry(&text),
            text,
            callers: node.callers.clone(),
            why,
        }
    };
    if let Some(deep) = node.wide {
        if node.wide_hits >= o.min_hits {
            let tail = if deep { "**" } else { "*" };
            let generalized = node.generalized.map(|by| Why::Generalized {
                tail,
                by,
                fanout: o.fanout,
            });
            out.push(template(path_of(prefix, Some(tail)), generalized));
        }
        if node.ends >= o.min_hits && node.ends > 0 && !deep {
            // Requests that ended exactly at the generalized node.
            out.push(template(path_of(prefix, None), None));
        }
        return;
    }
    if node.ends >= o.min_hits && node.ends > 0 {
        out.push(template(path_of(prefix, None), None));
    }
    let mut children: Vec<(&Segment, &Node)> = node.children.iter().collect();
    children.sort_by(|a, b| a.0.cmp(b.0));
    for (seg, child) in children {
        let text = match seg {
            Segment::Literal(l) => l.clone(),
            Segment::Param(kind) => {
                let used = prefix
                    .iter()
                    .filter(|(s, _)| s.starts_with(&format!("{{{kind}")))
                    .count();
                if used == 0 {
                    format!("{{{kind}}}")
                } else {
                    format!("{{{kind}{}}}", used + 1)
                }
            }
        };
        prefix.push((text, child.example.clone()));
        collect(child, prefix, o, out);
        prefix.pop();
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
