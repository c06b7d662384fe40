//! A segment trie over normalized paths. Exact segments are looked up in a hash map, `*` and
//! `{name}` share one child, `**` hangs its rules on the node where it starts, and a
//! `{"prefix"}` hangs on the node of its last whole segment with the partial segment that
//! follows. A lookup visits at most the nodes that the path's segments reach (at most two
//! children per level), so its cost depends on the path and the patterns' shape, never on how
//! many rules there are. The pieces (patterns, exact paths, prefixes) are
//! [`crate::matching::path`]'s; the index is the allowlist's.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::matching::path::{PathMatch, SegmentPattern};

/// Index of a rule in the policy (policy order).
pub(crate) type RuleIndex = u32;

#[derive(Debug, Default)]
pub(crate) struct PathTrie {
    root: Node,
}

/// FNV-1a over a segment's (or a host name's) bytes: the std hasher's SipHash costs more than
/// the lookup it serves. The keys are the policy's own, fixed once compiled: a request only looks up, so the
/// bytes it sends cannot fill a bucket (no flooding to defend against).
pub(crate) struct SegmentHasher(u64);

/// A map keyed by policy text (segments, host names) that requests only look up.
pub(crate) type PolicyKeyed<K, V> = HashMap<K, V, BuildHasherDefault<SegmentHasher>>;

impl Default for SegmentHasher {
    fn default() -> Self {
        // FNV's offset basis.
        SegmentHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for SegmentHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = self.0;
        for &b in bytes {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }

    /// A slice's length prefix in one step, not as eight more bytes.
    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0 ^ n as u64).wrapping_mul(0x0100_0000_01b3);
    }
}

/// Segments and prefixes are kept as bytes: a lookup slices the path at `/` (ASCII) without the
/// character-boundary checks of `str` slicing, each a call at opt-level "z".
#[derive(Debug, Default)]
struct Node {
    exact: PolicyKeyed<Box<[u8]>, Node>,
    one: Option<Box<Node>>,
    /// Rules whose pattern ends exactly here (ascending).
    ends: Vec<RuleIndex>,
    /// Rules whose pattern is `**` from here (ascending).
    rest: Vec<RuleIndex>,
    /// Rules whose prefix continues from here with these characters (ascending by rule).
    prefixes: Vec<(Box<[u8]>, RuleIndex)>,
}

fn push_unique(list: &mut Vec<RuleIndex>, rule: RuleIndex) {
    // Rules are inserted in policy order, so a duplicate can only be the last entry.
    if list.last() != Some(&rule) {
        list.push(rule);
    }
}

impl Node {
    fn exact_child(&mut self, segment: &str) -> &mut Node {
        self.exact.entry(segment.as_bytes().into()).or_default()
    }
}

impl PathTrie {
    /// Adds `rule` under a `paths` entry. Rules must be inserted in ascending order.
    pub(crate) fn insert(&mut self, path: &PathMatch, rule: RuleIndex) {
        let mut node = &mut self.root;
        match path {
            PathMatch::Pattern(pattern) => {
                for seg in &pattern.segments {
                    node = match seg {
                        SegmentPattern::Exact(s) => node.exact_child(s),
                        SegmentPattern::One => node.one.get_or_insert_with(Default::default),
                    };
                }
                if pattern.rest {
                    push_unique(&mut node.rest, rule);
                } else {
                    push_unique(&mut node.ends, rule);
                }
            }
            PathMatch::Exact(exact) => {
                for seg in exact.strip_prefix('/').unwrap_or(exact).split('/') {
                    node = node.exact_child(seg);
                }
                push_unique(&mut node.ends, rule);
            }
            PathMatch::Prefix(prefix) => {
                let body = prefix.strip_prefix('/').unwrap_or(prefix);
                let (whole, partial) = match body.rfind('/') {
                    Some(i) => (Some(&body[..i]), &body[i + 1..]),
                    None => (None, body),
                };
                for seg in whole.into_iter().flat_map(|w| w.split('/')) {
                    node = node.exact_child(seg);
                }
                // Entries of one rule are never equal (the compiler refuses duplicates).
                node.prefixes.push((partial.as_bytes().into(), rule));
            }
        }
    }

    /// Adds `rule` for every path (a rule without `paths`).
    pub(crate) fn insert_any(&mut self, rule: RuleIndex) {
        push_unique(&mut self.root.rest, rule);
    }

    /// Offers every rule whose pattern matches `path` (normalized, starting with `/`) to
    /// `accept`, lowest index first within each node, skipping rules not below `*best`; the
    /// accepted rule with the lowest index ends up in `*best`.
    pub(crate) fn find(
        &self,
        path: &str,
        best: &mut Option<RuleIndex>,
        accept: &mut impl FnMut(RuleIndex) -> bool,
    ) {
        let path = path.as_bytes();
        let rest = path.strip_prefix(b"/").unwrap_or(path);
        self.root.find(Some(rest), best, accept);
    }
}

fn offer(
    rules: &[RuleIndex],
    best: &mut Option<RuleIndex>,
    accept: &mut impl FnMut(RuleIndex) -> bool,
) {
    for &rule in rules {
        if best.is_some_and(|b| rule >= b) {
            return;
        }
        if accept(rule) {
            *best = Some(rule);
            return;
        }
    }
}

impl Node {
    fn find(
        &self,
        rest: Option<&[u8]>,
        best: &mut Option<RuleIndex>,
        accept: &mut impl FnMut(RuleIndex) -> bool,
    ) {
        offer(&self.rest, best, accept);
        let Some(rest) = rest else {
            offer(&self.ends, best, accept);
            return;
        };
        for (partial, rule) in &self.prefixes {
            if best.is_some_and(|b| *rule >= b) {
                break;
            }
            if rest.starts_with(partial) && accept(*rule) {
                *best = Some(*rule);
                break;
            }
        }
        let (segment, next) = match rest.iter().position(|&b| b == b'/') {
            Some(i) => (rest.get(..i).unwrap_or(&[]), rest.get(i + 1..)),
            None => (rest, None),
        };
        if let Some(child) = self.exact.get(segment) {
            child.find(next, best, accept);
        }
        if !segment.is_empty() {
            if let Some(child) = &self.one {
                child.find(next, best, accept);
            }
        }
    }
}
