//! The multi-literal automaton the signature scan runs over every view: Aho-Corasick, ASCII
//! case-insensitive, reporting every (overlapping) occurrence of every literal.
//!
//! Our own, not the `aho-corasick` crate: the module ships in every sidecar and V8 compiles all
//! of its bytes, and the crate brought about 90 KB of code (its searchers, prefilters and their
//! builders) for the one automaton kind the scan uses. This one is only that kind, laid out for
//! a small heap: states are numbered breadth-first with the children of each state in byte
//! order, so a state's children are a contiguous range of state ids and a transition costs one
//! label byte (no target id). The root's transitions are a dense table, so the walk over bytes
//! that start no literal is one load per byte. Outputs are merged along failure links at build
//! time, so a state lists every literal ending there.

use thiserror::Error;

use crate::stable_sort::stable_sort_positions;

/// Most states an automaton may have (the trie's nodes: at most one per literal byte, plus the
/// root); a larger literal set is refused rather than grown without bound in every worker.
pub const MAX_STATES: usize = 1 << 20;

/// A literal set too large to compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum BuildError {
    /// The trie of the literals has more states than [`MAX_STATES`].
    #[error("the literals need more than {MAX_STATES} automaton states")]
    TooManyStates,
    /// More literals than a `u32` counts.
    #[error("too many literals")]
    TooManyPatterns,
}

/// One occurrence of a literal: `haystack[start..end]` equals it, ASCII case aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    /// Index of the literal in the list the automaton was built from.
    pub pattern: u32,
    /// Offset of its first byte.
    pub start: usize,
    /// Offset just past its last byte.
    pub end: usize,
}

/// Per byte value (either case), whether a literal of some subset of an automaton's literals
/// starts with it: the bytes a search restricted to that subset cannot skip at the root.
pub type Starts = [bool; 256];

/// An ASCII case-insensitive Aho-Corasick automaton over a fixed list of literals.
#[derive(Debug, Clone)]
pub struct Automaton {
    /// The state after each (lower-case) byte read at the root; 0 stays at the root.
    root: Box<[u32]>,
    /// The bytes (either case) some literal starts with.
    starts: Box<Starts>,
    /// Per state, the id of its first child; its children run to the next state's first child
    /// (one entry more than states closes the last range).
    first_child: Vec<u32>,
    /// Per state, the (lower-case) byte that leads to it from its parent (0 for the root).
    label: Vec<u8>,
    /// Per state, the (lower-case) first byte of the literals it is a prefix of (0 for the
    /// root): a search restricted to the literals of some first bytes leaves the others' states.
    first: Vec<u8>,
    /// Per state, the state of its longest proper suffix that is also a trie state.
    fail: Vec<u32>,
    /// Per state, where its outputs start in `outputs` (one entry more closes the last).
    output_at: Vec<u32>,
    /// Literal ids ending at each state, its own first, then those of its failure chain.
    outputs: Vec<u32>,
    /// Length of each literal.
    lens: Vec<u32>,
}

/// A state being built: the sorted literals sharing its prefix, and its depth.
#[derive(Clone, Copy)]
struct Span {
    from: u32,
    to: u32,
    depth: u32,
}

impl Automaton {
    /// Compiles `patterns` (ASCII case does not matter; ids are positions in the slice).
    pub fn new(patterns: &[&[u8]]) -> Result<Automaton, BuildError> {
        let count = u32::try_from(patterns.len()).map_err(|_| BuildError::TooManyPatterns)?;
        let lens = patterns
            .iter()
            .map(|p| u32::try_from(p.len()).map_err(|_| BuildError::TooManyStates))
            .collect::<Result<Vec<u32>, _>>()?;
        // Sorted (folded), the literals under one trie state are a contiguous run, shortest (the
        // one ending there) first, and its children are the runs of equal next bytes.
        let order = sorted_folded(patterns, count);
        let byte_at = |id: u32, depth: u32| -> Option<u8> {
            patterns
                .get(id as usize)
                .and_then(|p| p.get(depth as usize))
                .map(u8::to_ascii_lowercase)
        };
        let at = |i: u32| order.get(i as usize).copied().unwrap_or(0);

        let mut a = Automaton {
            root: vec![0u32; 256].into_boxed_slice(),
            starts: Box::new([false; 256]),
            first_child: Vec::new(),
            label: vec![0],
            first: vec![0],
            fail: vec![0],
            output_at: vec![0],
            outputs: Vec::new(),
            lens,
        };
        let mut spans = vec![Span {
            from: 0,
            to: count,
            depth: 0,
        }];
        // The root's outputs: empty literals.
        let mut i = 0;
        while i < count && byte_at(at(i), 0).is_none() {
            a.outputs.push(at(i));
            i += 1;
        }
        // States are created breadth-first, so each state's id is its place in `spans`, and
        // every state a failure link or an output merge reads is already complete.
        let mut state = 0usize;
        while let Some(span) = spans.get(state).copied() {
            let next_id = u32::try_from(spans.len()).map_err(|_| BuildError::TooManyStates)?;
            a.first_child.push(next_id);
            let mut i = span.from;
            while i < span.to && byte_at(at(i), span.depth).is_none() {
                i += 1;
            }
            while i < span.to {
                let Some(byte) = byte_at(at(i), span.depth) else {
                    i += 1;
                    continue;
                };
                let from = i;
                while i < span.to && byte_at(at(i), span.depth) == Some(byte) {
                    i += 1;
                }
                if spans.len() >= MAX_STATES {
                    return Err(BuildError::TooManyStates);
                }
                let child = u32::try_from(spans.len()).map_err(|_| BuildError::TooManyStates)?;
                let depth = span.depth + 1;
                spans.push(Span { from, to: i, depth });
                let fail = if state == 0 {
                    if let Some(slot) = a.root.get_mut(usize::from(byte)) {
                        *slot = child;
                    }
                    0
                } else {
                    a.step(a.fail.get(state).copied().unwrap_or(0), byte)
                };
                a.label.push(byte);
                let first = if state == 0 {
                    byte
                } else {
                    a.first.get(state).copied().unwrap_or(0)
                };
                a.first.push(first);
                a.fail.push(fail);
                let start =
                    u32::try_from(a.outputs.len()).map_err(|_| BuildError::TooManyStates)?;
                a.output_at.push(start);
                let mut own = from;
                while own < i && byte_at(at(own), depth).is_none() {
                    a.outputs.push(at(own));
                    own += 1;
                }
                let inherited = a.outputs_of(fail);
                a.outputs.extend_from_within(inherited);
            }
            state += 1;
        }
        let states = u32::try_from(spans.len()).map_err(|_| BuildError::TooManyStates)?;
        let end = u32::try_from(a.outputs.len()).map_err(|_| BuildError::TooManyStates)?;
        a.first_child.push(states);
        a.output_at.push(end);
        for (b, start) in (0u8..=255).zip(a.starts.iter_mut()) {
            *start = a.root.get(usize::from(b.to_ascii_lowercase())) != Some(&0);
        }
        a.shrink();
        Ok(a)
    }

    fn shrink(&mut self) {
        self.first_child.shrink_to_fit();
        self.label.shrink_to_fit();
        self.first.shrink_to_fit();
        self.fail.shrink_to_fit();
        self.output_at.shrink_to_fit();
        self.outputs.shrink_to_fit();
        self.lens.shrink_to_fit();
    }

    /// Where the outputs of `state` sit in `outputs` (read after every byte of a scan).
    #[inline(always)]
    fn outputs_of(&self, state: u32) -> std::ops::Range<usize> {
        let s = state as usize;
        let from = self.output_at.get(s).copied().unwrap_or(0) as usize;
        let to = self
            .output_at
            .get(s + 1)
            .map_or(self.outputs.len(), |t| *t as usize);
        from..to
    }

    /// The state after reading the lower-case `byte` in `state`, following failure links.
    #[inline]
    fn step(&self, mut state: u32, byte: u8) -> u32 {
        loop {
            if state == 0 {
                return self.root.get(usize::from(byte)).copied().unwrap_or(0);
            }
            let s = state as usize;
            let from = self.first_child.get(s).copied().unwrap_or(0) as usize;
            let to = self.first_child.get(s + 1).copied().unwrap_or(0) as usize;
            if let Some(k) = child_labelled(&self.label, from, to, byte) {
                return k as u32;
            }
            state = self.fail.get(s).copied().unwrap_or(0);
        }
    }

    /// [`Automaton::step`] among the states whose literals start with a byte of `starts` (and
    /// the root), from such a state: a child keeps its parent's first byte, so only the states
    /// reached along failure links or from the root are checked.
    #[inline]
    fn step_in(&self, mut state: u32, byte: u8, starts: &Starts) -> u32 {
        loop {
            if state == 0 {
                if starts.get(usize::from(byte)) != Some(&true) {
                    return 0;
                }
                return self.root.get(usize::from(byte)).copied().unwrap_or(0);
            }
            let s = state as usize;
            let from = self.first_child.get(s).copied().unwrap_or(0) as usize;
            let to = self.first_child.get(s + 1).copied().unwrap_or(0) as usize;
            if let Some(k) = child_labelled(&self.label, from, to, byte) {
                return k as u32;
            }
            state = self.fail.get(s).copied().unwrap_or(0);
            while state != 0 {
                let first = self.first.get(state as usize).copied().unwrap_or(0);
                if starts.get(usize::from(first)) == Some(&true) {
                    break;
                }
                state = self.fail.get(state as usize).copied().unwrap_or(0);
            }
        }
    }

    /// Every occurrence of every literal in `haystack`, overlapping ones included, in order of
    /// their end; at one end, the longest first.
    pub fn find_overlapping_iter<'a, 'h>(&'a self, haystack: &'h [u8]) -> Matches<'a, 'h> {
        self.find_overlapping_starting(haystack, &self.starts)
    }

    /// [`Automaton::find_overlapping_iter`] for the literals that start with a byte of `starts`
    /// (others may be reported too, or not). At the root, a byte no such literal starts with is
    /// skipped; a state whose literals start with another byte is left along its failure links
    /// for the longest suffix that is a prefix of one of them (or the root). Exact for those
    /// literals: each of their occurrences under way is a suffix of the text read that starts
    /// with a byte of `starts`, and every such suffix that is a state is on that failure chain.
    pub fn find_overlapping_starting<'a, 'h>(
        &'a self,
        haystack: &'h [u8],
        starts: &'a Starts,
    ) -> Matches<'a, 'h> {
        Matches {
            automaton: self,
            haystack,
            at: 0,
            state: 0,
            pending: self.outputs_of(0),
            starts,
            root_quiet: self.outputs_of(0).is_empty(),
        }
    }

    /// Bytes this automaton holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.root.len() * 4
            + self.starts.len()
            + self.first_child.capacity() * 4
            + self.label.capacity()
            + self.first.capacity()
            + self.fail.capacity() * 4
            + self.output_at.capacity() * 4
            + self.outputs.capacity() * 4
            + self.lens.capacity() * 4
    }

    /// Number of states, the root included.
    pub fn states(&self) -> usize {
        self.fail.len()
    }
}

/// The state among `from..to` (the children of one state, their labels sorted) whose label is
/// `byte`: a binary search written out, because at opt-level "z" the slice's own
/// `binary_search` stays a call per byte scanned.
#[inline(always)]
fn child_labelled(labels: &[u8], mut from: usize, mut to: usize, byte: u8) -> Option<usize> {
    while from < to {
        let mid = from + (to - from) / 2;
        let label = *labels.get(mid)?;
        if label == byte {
            return Some(mid);
        }
        if label < byte {
            from = mid + 1;
        } else {
            to = mid;
        }
    }
    None
}

/// The ids `0..count` of `patterns` in the order of their lower-cased bytes (with the crate's
/// own stable sort: std's, instantiated for this comparison, cost the module more than the
/// whole automaton, about 24 KB of Wasm, for a sort run once per policy).
fn sorted_folded(patterns: &[&[u8]], count: u32) -> Vec<u32> {
    let folded = |id: u32| {
        patterns
            .get(id as usize)
            .copied()
            .unwrap_or_default()
            .iter()
            .map(u8::to_ascii_lowercase)
    };
    let mut order: Vec<u32> = (0..count).collect();
    stable_sort_positions(&mut order, &|a, b| folded(a).lt(folded(b)));
    order
}

/// The matches of [`Automaton::find_overlapping_iter`].
#[derive(Debug)]
pub struct Matches<'a, 'h> {
    automaton: &'a Automaton,
    haystack: &'h [u8],
    /// Bytes read so far: the end of the matches in `pending`.
    at: usize,
    state: u32,
    /// Outputs of `state` not yet reported.
    pending: std::ops::Range<usize>,
    /// The bytes that may not be skipped at the root.
    starts: &'a Starts,
    /// The root reports nothing (no empty literal), so bytes read there may be skipped.
    root_quiet: bool,
}

impl Iterator for Matches<'_, '_> {
    type Item = Match;

    #[inline]
    fn next(&mut self) -> Option<Match> {
        let a = self.automaton;
        loop {
            if let Some(i) = self.pending.next() {
                let pattern = a.outputs.get(i).copied().unwrap_or(0);
                let len = a.lens.get(pattern as usize).copied().unwrap_or(0) as usize;
                return Some(Match {
                    pattern,
                    start: self.at.saturating_sub(len),
                    end: self.at,
                });
            }
            if self.state == 0 && self.root_quiet {
                // Most bytes start no literal: skip them with one table load each.
                let rest = self.haystack.get(self.at..).unwrap_or_default();
                let skip = rest
                    .iter()
                    .position(|b| self.starts.get(usize::from(*b)) == Some(&true))
                    .unwrap_or(rest.len());
                self.at += skip;
            }
            let byte = self.haystack.get(self.at)?.to_ascii_lowercase();
            self.at += 1;
            self.state = a.step_in(self.state, byte, self.starts);
            self.pending = a.outputs_of(self.state);
        }
    }
}

#[cfg(test)]
mod tests;
