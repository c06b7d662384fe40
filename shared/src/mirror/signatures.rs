//! Exploit-indicator signatures: rules from packs (the built-in one and the policy's), matched
//! in one pass of a multi-literal (Aho-Corasick) automaton over decoded views of the request.
//!
//! The request is cut into pieces (the path, the query and each of its parameters, each header,
//! the body and each of its form, JSON or multipart parameters), read as the backend reads them:
//! a `gzip` or `deflate` body is inflated (within the body budget), `Basic` credentials are
//! base64-decoded. Each such view is a location of its own that rules can name or exclude. Each piece is decoded once per distinct
//! set of transforms the enabled rules ask for (percent-decoding, `\uXXXX` unescaping, path
//! normalization, Log4j lookup evaluation); identical views are matched once. Every literal of
//! every rule sits in the one automaton, so the cost per view does not grow with the number of
//! rules; a match is then checked against the rule's location, parameter or header names,
//! anchor, case and conditions (method, path). A rule hits when one literal of each of its
//! groups, and none of its `none` literals, is found in the same view.

pub mod automaton;
pub mod clean;
pub mod layers;
pub mod pack;

#[cfg(test)]
mod decoded_tests;
#[cfg(test)]
mod location_tests;
#[cfg(test)]
mod tests;

use super::decode::inflate::{self, Coding, Outcome};
use super::decode::{base64, multipart};
use super::decode::{
    brackets_to_dots, eval_lookups, json_pairs, lower_lossy, normalize_path, percent_decode_fully,
    raw_pairs, unescape_backslash,
};
use crate::headers::HeaderBlock;
use crate::stable_sort::stable_sort_positions;
use crate::ConfigError;
use automaton::{Automaton, Match, Starts};
use clean::Known;
use pack::{
    Anchor, Locations, Rule, When, VIEW_LOOKUPS, VIEW_NORMALIZE, VIEW_PERCENT, VIEW_UNESCAPE,
};
use std::borrow::Cow;
use std::cell::OnceCell;

pub use clean::CleanPieces;
pub use pack::{Pack, Severity};

/// Which rules matched one request; fill with [`SignatureSet::scan_head`] and
/// [`SignatureSet::scan_body`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureHits {
    /// Indices of the rules that matched, ascending.
    hit: Vec<u32>,
    /// Where each rule of `hit` first matched (location bits).
    at: Vec<u16>,
    /// What decoding the request found wrong (`FINDING_*` bits).
    findings: u8,
}

/// A multipart body that does not read as multipart all through.
const FINDING_MULTIPART_MALFORMED: u8 = 1;
/// A multipart body with more parts than are read.
const FINDING_MULTIPART_CAPPED: u8 = 2;
/// A compressed body whose stream does not decode.
const FINDING_BODY_ENCODING_BROKEN: u8 = 4;
/// A compressed body that inflates past the ratio cap (a decompression bomb).
const FINDING_BODY_INFLATE_BOMB: u8 = 8;
/// `Basic` credentials that are not base64.
const FINDING_CREDENTIALS_INVALID: u8 = 16;

/// Names of the `FINDING_*` bits, in report order.
const FINDINGS: [(u8, &str); 5] = [
    (FINDING_MULTIPART_MALFORMED, "multipart_malformed"),
    (FINDING_MULTIPART_CAPPED, "multipart_too_many_parts"),
    (FINDING_BODY_ENCODING_BROKEN, "body_encoding_broken"),
    (FINDING_BODY_INFLATE_BOMB, "body_inflate_bomb"),
    (FINDING_CREDENTIALS_INVALID, "basic_credentials_invalid"),
];

/// Every name [`SignatureHits::findings`] can report, in report order (a counter each).
pub fn finding_names() -> impl Iterator<Item = &'static str> {
    FINDINGS.iter().map(|(_, name)| *name)
}

impl SignatureHits {
    /// Whether anything matched.
    pub fn any(&self) -> bool {
        !self.hit.is_empty()
    }

    fn add(&mut self, rule: u32, at: Locations) {
        if let Err(i) = self.hit.binary_search(&rule) {
            self.hit.insert(i, rule);
            self.at.insert(i, at.0);
        }
    }

    /// What decoding the request found wrong, e.g. `multipart_malformed`,
    /// `body_encoding_broken` (none of them stops the scan or fails the request).
    pub fn findings(&self) -> Vec<&'static str> {
        FINDINGS
            .iter()
            .filter(|(bit, _)| self.findings & bit != 0)
            .map(|(_, name)| *name)
            .collect()
    }
}

/// The request facts signatures look at.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// `:method`.
    pub method: &'a str,
    /// `:path` as received, query included.
    pub path: &'a str,
    /// Request headers (pseudo-headers may be included; `:path` is skipped).
    pub headers: &'a HeaderBlock,
}

impl RequestView<'_> {
    fn split_path(&self) -> (&str, Option<&str>) {
        match self.path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (self.path, None),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.value(name)
    }
}

/// Facts rule conditions look at, computed at most once per scan, and only when a condition
/// is asked (most scans find no literal, so never ask).
struct Context<'a> {
    method: &'a str,
    raw_path: &'a str,
    /// Decoded, normalized, lower-case path.
    path: OnceCell<String>,
}

impl<'a> Context<'a> {
    fn of(req: &RequestView<'a>) -> Context<'a> {
        Context {
            method: req.method,
            raw_path: req.path.split_once('?').map_or(req.path, |(p, _)| p),
            path: OnceCell::new(),
        }
    }

    fn holds(&self, when: &When) -> bool {
        when.is_empty() || when.holds(self.method, self.path())
    }

    fn path(&self) -> &str {
        self.path.get_or_init(|| {
            let decoded = percent_decode_fully(self.raw_path.as_bytes(), false);
            lower_lossy(&normalize_path(&decoded))
        })
    }
}

/// What a piece of the request is, for rules narrowed to named parameters or headers.
#[derive(Clone, Copy)]
enum Piece<'n> {
    /// Not a parameter or a header (the path, the whole query, the whole body).
    Whole,
    /// A parameter's name.
    ParamName,
    /// The value of the parameter with this name.
    ParamValue(ParamName<'n>),
    /// A header line; the header's name.
    Header(&'n [u8]),
}

/// A parameter's name as the request spells it: decoded (percent-decoding, lower case) only
/// when a rule narrowed to named parameters asks, since most pieces hold no literal at all.
#[derive(Clone, Copy)]
enum ParamName<'n> {
    /// A query or form name, still percent-encoded (`+` a space).
    Encoded(&'n [u8]),
    /// A JSON key or a multipart name: only lower-cased.
    Plain(&'n [u8]),
}

impl ParamName<'_> {
    /// The name as rules' `params` spell it: decoded, lower-case.
    fn decoded(self) -> String {
        match self {
            ParamName::Encoded(n) => lower_lossy(&percent_decode_fully(n, true)),
            ParamName::Plain(n) => lower_lossy(n),
        }
    }
}

/// What a literal is to one rule: which group it counts for, or a veto (`none`).
const VETO: u8 = u8::MAX;
/// `Trigger::exact` of a case-insensitive rule's literal.
const ANY_CASE: u32 = u32::MAX;

/// One rule a literal counts for.
#[derive(Debug, Clone, Copy)]
struct Trigger {
    rule: u32,
    /// Where the literal as written sits in `SignatureSet::exact` (a case-sensitive rule), or
    /// [`ANY_CASE`].
    exact: u32,
    /// The rule's locations and excluded views, to filter matches without reading the rule.
    locations: u16,
    exclude: u16,
    /// The group the literal counts for, or [`VETO`].
    slot: u8,
}

impl Trigger {
    fn looks_at(&self, piece: Locations) -> bool {
        self.locations & piece.0 != 0 && self.exclude & piece.0 == 0
    }
}

/// Per-rule match progress inside one view.
struct Progress {
    rule: u32,
    groups: u32,
    vetoed: bool,
}

/// What the pieces found at one combination of location bits are matched for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Class {
    /// The views (bit per `VIEW_*` mask) some rule looking there needs; 0: no rule looks.
    views: u16,
    /// The bytes (either case) the literals of those rules start with: the automaton skips the
    /// others at its root, so that a header is not walked for literals only parameters or
    /// bodies care about (short ones such as `/` or `true` would start all over ordinary
    /// headers).
    starts: Starts,
}

/// Compiled signatures: the enabled rules, their categories and one automaton.
pub struct SignatureSet {
    rules: Vec<Rule>,
    rule_ids: Vec<String>,
    /// Category index of each rule.
    rule_category: Vec<usize>,
    /// Bit `1 << view` for each view a rule accepts.
    rule_views: Vec<u16>,
    categories: Vec<String>,
    /// Every distinct (lower-cased) literal of every enabled rule. One automaton for every
    /// location: a match is kept only when one of its literal's rules looks where the piece was
    /// found (measured: one automaton per location set held 746 KB per worker with the built-in
    /// pack; this one and its tables 51 KB, with fewer instructions per scan).
    automaton: Automaton,
    /// The triggers of literal `i` are `triggers[trigger_at[i]..trigger_at[i + 1]]`.
    trigger_at: Vec<u32>,
    triggers: Vec<Trigger>,
    /// Case-sensitive rules' literals as written, end to end.
    exact: Vec<u8>,
    /// Per combination of location bits, its index in `classes` (class 0: no rule looks).
    class_of: Box<[u16]>,
    classes: Vec<Class>,
    /// A rule without conditions looks in bodies.
    body_always: bool,
    /// Distinct conditions of the rules that look in bodies.
    body_whens: Vec<When>,
    inspect_body: bool,
    /// Most bytes a compressed body inflates to (the scan's `max_body_bytes`); a body this long
    /// may have been cut.
    body_budget: usize,
    /// Also match base64-looking parameter values decoded (off by default: measured against
    /// the benign corpus first).
    base64_params: bool,
}

/// Every combination of location bits (request and response): `class_of` is indexed by a
/// piece's locations.
const LOCATION_SETS: usize = 2048;

/// Body budget until the policy gives its `max_body_bytes`.
const DEFAULT_BODY_BUDGET: usize = 16384;

impl std::fmt::Debug for SignatureSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureSet")
            .field("rules", &self.rule_ids.len())
            .field("categories", &self.categories)
            .field("literals", &self.trigger_at.len().saturating_sub(1))
            .field("inspect_body", &self.inspect_body)
            .finish()
    }
}

fn rule_views(rule: &Rule) -> u16 {
    let mut bits = 1u16 << rule.view;
    if rule.lookups {
        bits |= 1 << (rule.view | VIEW_LOOKUPS);
    }
    bits
}

/// Marks the first byte of `literal`, in either case, in `starts`.
fn add_start(starts: &mut Starts, literal: &str) {
    if let Some(b) = literal.bytes().next() {
        for c in [b.to_ascii_lowercase(), b.to_ascii_uppercase()] {
            if let Some(s) = starts.get_mut(usize::from(c)) {
                *s = true;
            }
        }
    }
}

impl SignatureSet {
    /// Compiles the enabled `rules` (ids must be unique) into one automaton; an automaton that
    /// cannot be built (too many or too long literals) is a [`ConfigError`] at `signatures`.
    pub fn new(rules: Vec<Rule>, inspect_body: bool) -> Result<SignatureSet, ConfigError> {
        let rules: Vec<Rule> = rules.into_iter().filter(|r| r.enabled).collect();
        let mut categories: Vec<String> = Vec::new();
        let mut rule_category = Vec::with_capacity(rules.len());
        // Every (lower-cased literal, trigger), sorted below: equal literals become one.
        let mut literals: Vec<(&str, Trigger)> = Vec::new();
        let mut exact: Vec<u8> = Vec::new();
        // The rules grouped by where they look: locations, excluded views, the views they need
        // and the bytes their literals start with.
        let mut looks: Vec<(u16, u16, Class)> = Vec::new();
        let mut body_always = false;
        let mut body_whens: Vec<When> = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let index =
                u32::try_from(i).map_err(|_| ConfigError::new("signatures", "too many rules"))?;
            let category = match categories.iter().position(|c| *c == rule.category) {
                Some(c) => c,
                None => {
                    categories.push(rule.category.clone());
                    categories.len() - 1
                }
            };
            rule_category.push(category);
            let at = match looks
                .iter()
                .position(|(l, e, _)| (*l, *e) == (rule.locations.0, rule.exclude.0))
            {
                Some(at) => at,
                None => {
                    let class = Class {
                        views: 0,
                        starts: [false; 256],
                    };
                    looks.push((rule.locations.0, rule.exclude.0, class));
                    looks.len() - 1
                }
            };
            let Some((_, _, class)) = looks.get_mut(at) else {
                continue;
            };
            class.views |= rule_views(rule);
            let slots = rule.groups.iter().enumerate().flat_map(|(g, group)| {
                let g = u8::try_from(g).unwrap_or(VETO - 1);
                group.iter().map(move |l| (l, g))
            });
            for (literal, slot) in slots.chain(rule.none.iter().map(|l| (l, VETO))) {
                add_start(&mut class.starts, literal);
                let at = if rule.case_insensitive {
                    ANY_CASE
                } else {
                    let at = u32::try_from(exact.len())
                        .map_err(|_| ConfigError::new("signatures", "too many literals"))?;
                    exact.extend_from_slice(literal.as_bytes());
                    at
                };
                literals.push((
                    literal,
                    Trigger {
                        rule: index,
                        exact: at,
                        locations: rule.locations.0,
                        exclude: rule.exclude.0,
                        slot,
                    },
                ));
            }
            let body = Locations::BODY
                .with(Locations::PARAMS)
                .with(Locations::MULTIPART)
                .with(Locations::INFLATED);
            if rule.locations.has(body) && !rule.exclude.has(Locations::BODY) {
                if rule.when.is_empty() {
                    body_always = true;
                } else if !body_whens.contains(&rule.when) {
                    body_whens.push(rule.when.clone());
                }
            }
        }
        let lower: Vec<String> = literals
            .iter()
            .map(|(l, _)| l.to_ascii_lowercase())
            .collect();
        let mut order: Vec<u32> = (0..u32::try_from(lower.len()).unwrap_or(u32::MAX)).collect();
        let key = |i: &u32| lower.get(*i as usize).map_or("", String::as_str);
        stable_sort_positions(&mut order, &|a, b| key(&a) < key(&b));
        let mut patterns: Vec<&[u8]> = Vec::new();
        let mut trigger_at: Vec<u32> = Vec::new();
        let mut triggers: Vec<Trigger> = Vec::with_capacity(order.len());
        for i in &order {
            let literal = key(i).as_bytes();
            if patterns.last() != Some(&literal) {
                patterns.push(literal);
                trigger_at.push(u32::try_from(triggers.len()).unwrap_or(u32::MAX));
            }
            if let Some((_, t)) = literals.get(*i as usize) {
                triggers.push(*t);
            }
        }
        trigger_at.push(u32::try_from(triggers.len()).unwrap_or(u32::MAX));
        // Sparse states, no DFA table (every state times every byte): the tables of a DFA
        // were most of the policy state kept in every sidecar's linear memory (measured in
        // `make v8-profile` on the bench's one pass: heap 4.2 -> 2.4 MiB with the
        // `aho-corasick` crate's contiguous NFA, which `automaton` replaced).
        let automaton = Automaton::new(&patterns).map_err(|e| ConfigError::at("signatures", e))?;
        let mut classes = vec![Class {
            views: 0,
            starts: [false; 256],
        }];
        let mut class_of = vec![0u16; LOCATION_SETS].into_boxed_slice();
        for (bits, slot) in (0u16..).zip(class_of.iter_mut()) {
            let mut here = Class {
                views: 0,
                starts: [false; 256],
            };
            for (locations, exclude, class) in &looks {
                if locations & bits != 0 && exclude & bits == 0 {
                    here.views |= class.views;
                    for (s, c) in here.starts.iter_mut().zip(&class.starts) {
                        *s |= *c;
                    }
                }
            }
            *slot = match classes.iter().position(|c| *c == here) {
                Some(at) => u16::try_from(at).unwrap_or(0),
                None => {
                    classes.push(here);
                    u16::try_from(classes.len() - 1).unwrap_or(0)
                }
            };
        }
        triggers.shrink_to_fit();
        exact.shrink_to_fit();
        classes.shrink_to_fit();
        Ok(SignatureSet {
            rule_ids: rules.iter().map(|r| r.id.clone()).collect(),
            rule_views: rules.iter().map(rule_views).collect(),
            rules,
            rule_category,
            categories,
            automaton,
            trigger_at,
            triggers,
            exact,
            class_of,
            classes,
            body_always,
            body_whens,
            inspect_body,
            body_budget: DEFAULT_BODY_BUDGET,
            base64_params: false,
        })
    }

    /// The set with `max_body_bytes`, the most a compressed body inflates to.
    pub fn with_body_budget(mut self, max_body_bytes: usize) -> SignatureSet {
        self.body_budget = max_body_bytes;
        self
    }

    /// The set also matching base64-looking parameter values decoded (the `base64` location).
    pub fn with_base64_params(mut self, on: bool) -> SignatureSet {
        self.base64_params = on;
        self
    }

    /// Categories of the enabled rules, in report order (first appearance in pack order).
    pub fn names(&self) -> &[String] {
        &self.categories
    }

    /// Ids of the enabled rules, in report order.
    pub fn rule_ids(&self) -> &[String] {
        &self.rule_ids
    }

    /// The enabled rules, in report order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Bytes the matching engine holds on the heap (the automaton, its literals' triggers and
    /// the location classes; not the rules), for the memory reports of
    /// `examples/automaton_cost.rs`.
    pub fn automaton_heap_bytes(&self) -> usize {
        self.automaton.heap_bytes()
            + self.trigger_at.capacity() * 4
            + self.triggers.capacity() * std::mem::size_of::<Trigger>()
            + self.exact.capacity()
            + self.class_of.len() * 2
            + self.classes.capacity() * std::mem::size_of::<Class>()
    }

    /// What pieces found at `locations` are matched for (asked for every piece).
    #[inline(always)]
    fn class(&self, locations: Locations) -> Option<&Class> {
        let at = self.class_of.get(usize::from(locations.0)).copied()?;
        self.classes.get(usize::from(at)).filter(|c| c.views != 0)
    }

    /// The literals in `text` that some rule looking at `locations` (of `class`) has, as the
    /// automaton of only those literals would find them, each with its triggers. A literal only
    /// rules looking elsewhere have is no find here.
    fn finds<'a>(
        &'a self,
        text: &'a [u8],
        class: &'a Class,
        locations: Locations,
    ) -> impl Iterator<Item = (Match, &'a [Trigger])> + 'a {
        let found = self
            .automaton
            .find_overlapping_starting(text, &class.starts);
        found.filter_map(move |m| {
            let p = m.pattern as usize;
            let from = *self.trigger_at.get(p)? as usize;
            let to = *self.trigger_at.get(p + 1)? as usize;
            let triggers = self.triggers.get(from..to)?;
            triggers
                .iter()
                .any(|t| t.looks_at(locations))
                .then_some((m, triggers))
        })
    }

    /// Whether no enabled rule looks anywhere (nothing to scan).
    fn looks_nowhere(&self) -> bool {
        self.classes.len() < 2
    }

    /// A scan of one request or response by this set.
    fn scan<'s, 'c, 'h, 'k>(
        &'s self,
        ctx: &'c Context<'c>,
        hits: &'h mut SignatureHits,
        clean: Option<&'k mut CleanPieces>,
    ) -> Scan<'s, 'c, 'h, 'k> {
        Scan {
            set: self,
            ctx,
            hits,
            progress: Vec::new(),
            clean,
            found: 0,
        }
    }

    /// An empty hit set (allocates nothing).
    pub fn new_hits(&self) -> SignatureHits {
        SignatureHits::default()
    }

    /// The categories of the rules in `hits`, in report order, without duplicates.
    pub fn hit_names(&self, hits: &SignatureHits) -> Vec<String> {
        let mut seen = vec![false; self.categories.len()];
        for r in &hits.hit {
            if let Some(c) = self.rule_category.get(*r as usize) {
                if let Some(s) = seen.get_mut(*c) {
                    *s = true;
                }
            }
        }
        self.categories
            .iter()
            .zip(seen)
            .filter(|(_, s)| *s)
            .map(|(c, _)| c.clone())
            .collect()
    }

    /// The ids of the rules in `hits`, in report order.
    pub fn hit_rule_ids(&self, hits: &SignatureHits) -> Vec<String> {
        self.hit_rules(hits).map(|r| r.id.clone()).collect()
    }

    /// The ids of the rules in `hits`, each with the view it first matched in (e.g.
    /// `body.multipart`, `headers.credentials`), in report order.
    pub fn hit_views(&self, hits: &SignatureHits) -> Vec<(String, String)> {
        hits.hit
            .iter()
            .zip(&hits.at)
            .filter_map(|(r, at)| {
                let rule = self.rules.get(*r as usize)?;
                Some((rule.id.clone(), Locations(*at).describe()))
            })
            .collect()
    }

    /// The rules in `hits`, in report order.
    pub fn hit_rules<'s>(&'s self, hits: &'s SignatureHits) -> impl Iterator<Item = &'s Rule> + 's {
        hits.hit.iter().filter_map(|r| self.rules.get(*r as usize))
    }

    /// Whether this request's body could change the outcome (some enabled rule looks in bodies
    /// or body parameters and its conditions hold). Says nothing about whether the request has
    /// a body.
    pub fn wants_body(&self, req: &RequestView<'_>) -> bool {
        if !self.inspect_body || self.looks_nowhere() {
            return false;
        }
        if self.body_always {
            return true;
        }
        if self.body_whens.is_empty() {
            return false;
        }
        let ctx = Context::of(req);
        self.body_whens.iter().any(|w| ctx.holds(w))
    }

    /// Matches the path, the query (whole and by parameter) and the headers.
    pub fn scan_head(&self, req: &RequestView<'_>, hits: &mut SignatureHits) {
        self.scan_head_remembering(req, hits, None);
    }

    /// [`SignatureSet::scan_head`], skipping the pieces `clean` remembers as clean and
    /// remembering the new clean ones (`clean` must have been made for this set).
    pub fn scan_head_remembering(
        &self,
        req: &RequestView<'_>,
        hits: &mut SignatureHits,
        clean: Option<&mut CleanPieces>,
    ) {
        if self.looks_nowhere() {
            return;
        }
        let ctx = Context::of(req);
        let mut scan = self.scan(&ctx, hits, clean);
        let (path, query) = req.split_path();
        scan.piece(path.as_bytes(), Locations::PATH, Piece::Whole, false);
        if let Some(q) = query {
            scan.piece(q.as_bytes(), Locations::QUERY, Piece::Whole, true);
            scan.pairs(q.as_bytes(), Locations::QUERY.with(Locations::PARAMS));
        }
        scan.header_lines(&mut req.headers.iter(), true);
    }

    /// Matches the first bytes of the body (the caller bounds them) whole and, by content type,
    /// its form, JSON or multipart parameters; a `gzip` or `deflate` body is inflated first
    /// (within the body budget) and matched as the `inflated` view.
    pub fn scan_body(&self, req: &RequestView<'_>, body: &[u8], hits: &mut SignatureHits) {
        if self.looks_nowhere() || !self.inspect_body || body.is_empty() {
            return;
        }
        let ctx = Context::of(req);
        let mut scan = self.scan(&ctx, hits, None);
        // A body as long as the budget may have been cut: an unended stream or form is then
        // the cut, not a fault.
        let declared = req
            .header("content-length")
            .and_then(|l| l.trim().parse::<usize>().ok());
        let complete = body.len() < self.body_budget || declared == Some(body.len());
        let content_type = req.header("content-type").unwrap_or("");
        let coding = req.header("content-encoding").and_then(Coding::of_header);
        let Some(coding) = coding else {
            scan.body(body, content_type, Locations::NONE, complete);
            return;
        };
        let inflated = inflate::inflate(coding, body, self.body_budget);
        match inflated.outcome {
            Outcome::Broken => scan.hits.findings |= FINDING_BODY_ENCODING_BROKEN,
            Outcome::Bomb => scan.hits.findings |= FINDING_BODY_INFLATE_BOMB,
            Outcome::Truncated if complete => {
                scan.hits.findings |= FINDING_BODY_ENCODING_BROKEN;
            }
            Outcome::Complete | Outcome::Truncated | Outcome::Capped => {}
        }
        if inflated.bytes.is_empty() {
            // Not compressed after all (or broken at once): what was sent is what is read.
            scan.body(body, content_type, Locations::NONE, complete);
        } else {
            let whole = complete && inflated.outcome == Outcome::Complete;
            scan.body(&inflated.bytes, content_type, Locations::INFLATED, whole);
        }
    }
}

impl SignatureSet {
    /// Matches a response head with a set compiled from response rules (see
    /// [`crate::response`]: their status rules read as path rules, response-header rules as
    /// header rules): the status, then each header as `name: value`. Conditions (`when`) are
    /// the request's.
    pub fn scan_response_head<'x>(
        &self,
        req: &RequestView<'_>,
        status: &[u8],
        headers: impl IntoIterator<Item = (&'x str, &'x str)>,
        hits: &mut SignatureHits,
    ) {
        self.response_head(req, status, &mut headers.into_iter(), hits);
    }

    fn response_head<'x>(
        &self,
        req: &RequestView<'_>,
        status: &[u8],
        headers: &mut dyn Iterator<Item = (&'x str, &'x str)>,
        hits: &mut SignatureHits,
    ) {
        if self.looks_nowhere() {
            return;
        }
        let ctx = Context::of(req);
        let mut scan = self.scan(&ctx, hits, None);
        scan.piece(status, Locations::PATH, Piece::Whole, false);
        scan.header_lines(headers, false);
    }

    /// Matches the first bytes of a response body (the caller bounds them) whole, with a set
    /// compiled from response rules.
    pub fn scan_response_body(&self, req: &RequestView<'_>, body: &[u8], hits: &mut SignatureHits) {
        if self.looks_nowhere() || body.is_empty() {
            return;
        }
        let ctx = Context::of(req);
        self.scan(&ctx, hits, None)
            .piece(body, Locations::BODY, Piece::Whole, false);
    }

    /// Whether some enabled rule looks at this location (`PATH`, `HEADERS` or `BODY` bits).
    pub fn looks_at(&self, locations: Locations) -> bool {
        self.class(locations).is_some()
    }
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// One scan of a request head or body.
struct Scan<'s, 'c, 'h, 'k> {
    set: &'s SignatureSet,
    ctx: &'c Context<'c>,
    hits: &'h mut SignatureHits,
    progress: Vec<Progress>,
    /// Pieces known clean (skipped) and where new clean ones are remembered.
    clean: Option<&'k mut CleanPieces>,
    /// Literals the automata found so far, in any piece and view.
    found: usize,
}

impl Scan<'_, '_, '_, '_> {
    /// Each header as a `name: value` line, pseudo-headers skipped (of a request only `:path`,
    /// read as the path); a request's `Basic` credentials also decoded.
    fn header_lines<'x>(
        &mut self,
        headers: &mut dyn Iterator<Item = (&'x str, &'x str)>,
        request: bool,
    ) {
        // One buffer for every line, the worker's when it has one: no allocation (or
        // formatting) per header, nor per request.
        let mut line = match self.clean.as_deref_mut() {
            Some(clean) => clean.take_line(),
            None => Vec::with_capacity(512),
        };
        for (name, value) in headers {
            // A first-byte test before any comparison: most headers are no pseudo-header.
            if name.as_bytes().first() == Some(&b':') && (!request || name == ":path") {
                continue;
            }
            line.clear();
            line.extend_from_slice(name.as_bytes());
            line.extend_from_slice(b": ");
            line.extend_from_slice(value.as_bytes());
            self.piece(
                &line,
                Locations::HEADERS,
                Piece::Header(name.as_bytes()),
                false,
            );
            if request && is_credentials_header(name.as_bytes()) {
                self.credentials(name, value);
            }
        }
        if let Some(clean) = self.clean.as_deref_mut() {
            clean.put_line(line);
        }
    }

    /// A body (as sent or inflated, `view` telling which) whole, then its parameters by
    /// content type.
    fn body(&mut self, body: &[u8], content_type: &str, view: Locations, complete: bool) {
        self.piece(body, Locations::BODY.with(view), Piece::Whole, false);
        let params = Locations::BODY.with(Locations::PARAMS).with(view);
        if contains_ignore_case(content_type, "x-www-form-urlencoded") {
            self.pairs(body, params);
        }
        if multipart::is_multipart(content_type) {
            self.multipart(
                body,
                content_type,
                params.with(Locations::MULTIPART),
                complete,
            );
        }
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if matches!(first, Some(b'{' | b'[')) {
            if let Some(pairs) = json_pairs(body) {
                let mut last_key: Option<&str> = None;
                for (key, value) in &pairs {
                    if !key.is_empty() && last_key != Some(key.as_str()) {
                        self.name(key.as_bytes(), params);
                    }
                    last_key = Some(key.as_str());
                    if !value.is_empty() {
                        let name = ParamName::Plain(key.as_bytes());
                        self.value(value.as_bytes(), params, name, false);
                    }
                }
            }
        }
    }

    /// Each part of a multipart body: its name as a parameter name, its filename and value as
    /// values of that parameter. A fault is a finding; the parts read are still matched.
    fn multipart(&mut self, body: &[u8], content_type: &str, at: Locations, complete: bool) {
        let Some(boundary) = multipart::boundary(content_type) else {
            self.hits.findings |= FINDING_MULTIPART_MALFORMED;
            return;
        };
        let parts = multipart::parse(body, boundary, complete);
        if parts.malformed {
            self.hits.findings |= FINDING_MULTIPART_MALFORMED;
        }
        if parts.capped {
            self.hits.findings |= FINDING_MULTIPART_CAPPED;
        }
        for part in &parts.parts {
            self.name(part.name, at);
            let name = ParamName::Plain(part.name);
            if let Some(filename) = part.filename {
                self.piece(filename, at, Piece::ParamValue(name), false);
                // A binary file's bytes are no form value: the whole-body view already read
                // them, and a second pass would double an upload's cost.
                if part.value.contains(&0) {
                    continue;
                }
            }
            self.value(part.value, at, name, false);
        }
    }

    /// A parameter value; also decoded when it looks like base64 and the set asks for that.
    fn value(&mut self, value: &[u8], at: Locations, name: ParamName<'_>, plus_as_space: bool) {
        self.piece(value, at, Piece::ParamValue(name), plus_as_space);
        if self.set.base64_params && base64::looks_like_base64(value) {
            if let Some(decoded) = base64::decode(value, self.set.body_budget) {
                let at = at.with(Locations::BASE64);
                self.piece(&decoded, at, Piece::ParamValue(name), false);
            }
        }
    }

    /// `Basic` credentials decoded, matched as a value of their header at the `base64`
    /// location (whole `user:password`: a user name may carry `:`).
    fn credentials(&mut self, name: &str, value: &str) {
        match base64::basic_credentials(value, value.len()) {
            Some(Ok(decoded)) => self.piece(
                &decoded,
                Locations::HEADERS.with(Locations::BASE64),
                Piece::Header(name.as_bytes()),
                false,
            ),
            Some(Err(())) => self.hits.findings |= FINDING_CREDENTIALS_INVALID,
            None => {}
        }
    }

    /// Each `name=value` of a query or form: the name (also with brackets as dots) and the
    /// value, tagged with the decoded name.
    fn pairs(&mut self, input: &[u8], locations: Locations) {
        for (name, value) in raw_pairs(input) {
            self.name(name, locations);
            if !value.is_empty() {
                self.value(value, locations, ParamName::Encoded(name), true);
            }
        }
    }

    fn name(&mut self, name: &[u8], locations: Locations) {
        self.piece(name, locations, Piece::ParamName, true);
        if name.contains(&b'[') || name.contains(&b'%') {
            let decoded = percent_decode_fully(name, true);
            if decoded.contains(&b'[') {
                let dotted = brackets_to_dots(&String::from_utf8_lossy(&decoded));
                self.piece(dotted.as_bytes(), locations, Piece::ParamName, false);
            }
        }
    }

    /// Matches one piece, unless the worker remembers it clean; remembers it when no view held
    /// any literal.
    fn piece(&mut self, raw: &[u8], locations: Locations, name: Piece<'_>, plus_as_space: bool) {
        let Some(class) = self.set.class(locations) else {
            return;
        };
        if raw.is_empty() {
            return;
        }
        let mut unseen = None;
        if let Some(clean) = self.clean.as_deref_mut() {
            match clean.look_up(raw, locations, plus_as_space) {
                Known::Clean => return,
                Known::Unseen(set) => unseen = Some(set),
                Known::TooLong => {}
            }
        }
        let found_before = self.found;
        self.views(raw, class, locations, name, plus_as_space);
        if self.found == found_before {
            if let (Some(clean), Some(set)) = (self.clean.as_deref_mut(), unseen) {
                clean.remember(set, raw, locations, plus_as_space);
            }
        }
    }

    /// Matches every view of one piece the rules that look at `locations` need, each distinct
    /// view once.
    fn views(
        &mut self,
        raw: &[u8],
        class: &Class,
        locations: Locations,
        name: Piece<'_>,
        plus_as_space: bool,
    ) {
        let needed = class.views;
        // Most pieces (ordinary header values, plain paths) read the same through every view:
        // match them once, with no view built.
        if !needs_transform(raw, needed, plus_as_space) {
            self.match_view(raw, needed, class, locations, name);
            return;
        }
        let mut views: Vec<(Cow<'_, [u8]>, u16)> = Vec::new();
        for view in 0..16u8 {
            if needed & (1 << view) == 0 {
                continue;
            }
            let text = view_of(raw, view, plus_as_space);
            match views.iter_mut().find(|(t, _)| **t == *text) {
                Some((_, served)) => *served |= 1 << view,
                None => views.push((text, 1 << view)),
            }
        }
        for (text, served) in &views {
            self.match_view(text, *served, class, locations, name);
        }
    }

    /// Matches one view of a piece with the literals of the rules that look at `locations`
    /// and accept one of the `served` views.
    fn match_view(
        &mut self,
        text: &[u8],
        served: u16,
        class: &Class,
        locations: Locations,
        name: Piece<'_>,
    ) {
        let set = self.set;
        for (m, triggers) in set.finds(text, class, locations) {
            self.found += 1;
            for t in triggers {
                let views = set.rule_views.get(t.rule as usize).copied().unwrap_or(0);
                if !t.looks_at(locations) || views & served == 0 {
                    continue;
                }
                let Some(rule) = set.rules.get(t.rule as usize) else {
                    continue;
                };
                if t.exact != ANY_CASE {
                    let exact = set.exact.get(t.exact as usize..).unwrap_or_default();
                    if text.get(m.start..m.end) != exact.get(..m.end - m.start) {
                        continue;
                    }
                }
                if !names_allow(rule, name) {
                    continue;
                }
                if t.slot != VETO && Some(t.slot) == rule.any_group {
                    let anchored = match rule.anchor {
                        Anchor::Anywhere => true,
                        Anchor::Start => m.start == 0,
                        Anchor::End => m.end == text.len(),
                    };
                    if !anchored {
                        continue;
                    }
                }
                if !self.ctx.holds(&rule.when) {
                    continue;
                }
                if rule.groups.len() == 1 && rule.none.is_empty() {
                    self.hits.add(t.rule, locations);
                    continue;
                }
                let at = match self.progress.iter().position(|p| p.rule == t.rule) {
                    Some(at) => at,
                    None => {
                        self.progress.push(Progress {
                            rule: t.rule,
                            groups: 0,
                            vetoed: false,
                        });
                        self.progress.len() - 1
                    }
                };
                if let Some(p) = self.progress.get_mut(at) {
                    if t.slot == VETO {
                        p.vetoed = true;
                    } else {
                        p.groups |= 1 << u32::from(t.slot);
                    }
                }
            }
        }
        if self.progress.is_empty() {
            // Most views hold no literal of a rule with several groups: no drain to build.
            return;
        }
        for p in self.progress.drain(..) {
            let Some(rule) = set.rules.get(p.rule as usize) else {
                continue;
            };
            let full = (1u64 << rule.groups.len()) - 1;
            if !p.vetoed && u64::from(p.groups) == full {
                self.hits.add(p.rule, locations);
            }
        }
    }
}

/// `authorization` or `proxy-authorization`, by length first (asked of every header).
fn is_credentials_header(name: &[u8]) -> bool {
    match name.len() {
        13 => name == b"authorization",
        19 => name == b"proxy-authorization",
        _ => false,
    }
}

fn names_allow(rule: &Rule, name: Piece<'_>) -> bool {
    match name {
        Piece::Whole => true,
        Piece::ParamName => rule.params.is_empty(),
        Piece::ParamValue(n) => {
            rule.params.is_empty() || {
                let n = n.decoded();
                rule.params.contains(&n)
            }
        }
        Piece::Header(n) => {
            rule.headers.is_empty()
                || rule
                    .headers
                    .iter()
                    .any(|h| h.as_bytes().eq_ignore_ascii_case(n))
        }
    }
}

/// Whether some view in `needed` (bit per `VIEW_*` mask) could read `raw` differently from the
/// raw bytes: only then are views built.
fn needs_transform(raw: &[u8], needed: u16, plus_as_space: bool) -> bool {
    raw.iter()
        .any(|&b| b == b'%' || b == b'\\' || b == b'$' || (plus_as_space && b == b'+'))
        || (needed & NORMALIZING_VIEWS != 0 && !is_normal_path(raw))
}

/// The views (bit per `VIEW_*` mask) that normalize the path.
const NORMALIZING_VIEWS: u16 = {
    let mut bits = 0u16;
    let mut view = 0u8;
    while view < 16 {
        if view & VIEW_NORMALIZE != 0 {
            bits |= 1 << view;
        }
        view += 1;
    }
    bits
};

/// Whether [`normalize_path`] gives `raw` back as it is: it starts with `/`, has no `\\` or
/// `;`, and no empty (but a last), `.` or `..` segment. Most paths are so: then every view of
/// one without escapes is the raw bytes, and none is built.
fn is_normal_path(raw: &[u8]) -> bool {
    if raw.first() != Some(&b'/') {
        return false;
    }
    let mut segment = 1;
    let mut i = 1;
    loop {
        match raw.get(i) {
            Some(b'\\' | b';') => return false,
            Some(b'/') | None => {
                let end = i >= raw.len();
                match raw.get(segment..i).unwrap_or_default() {
                    b"." | b".." => return false,
                    b"" if !end => return false,
                    _ => {}
                }
                if end {
                    return true;
                }
                segment = i + 1;
            }
            Some(_) => {}
        }
        i += 1;
    }
}

/// The piece `raw` as seen through the `VIEW_*` steps in `view`; borrowed when no step changes
/// anything.
fn view_of(raw: &[u8], view: u8, plus_as_space: bool) -> Cow<'_, [u8]> {
    let mut text: Cow<'_, [u8]> = Cow::Borrowed(raw);
    if view & VIEW_PERCENT != 0 && (raw.contains(&b'%') || (plus_as_space && raw.contains(&b'+'))) {
        text = Cow::Owned(percent_decode_fully(raw, plus_as_space));
    }
    if view & VIEW_UNESCAPE != 0 && text.contains(&b'\\') {
        text = Cow::Owned(unescape_backslash(&text));
    }
    if view & VIEW_NORMALIZE != 0 {
        text = Cow::Owned(normalize_path(&text));
    }
    if view & VIEW_LOOKUPS != 0 && text.windows(2).any(|w| w == b"${") {
        text = Cow::Owned(eval_lookups(&lower_lossy(&text)).into_bytes());
    }
    text
}
