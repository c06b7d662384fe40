//! Unit tests of the one automaton's location filter: every literal of every rule sits in one
//! automaton, so a literal found where none of its rules looks must count for nothing (no hit,
//! no find that keeps a piece from being remembered clean), and the finds kept at each
//! location must be exactly what an automaton of only that location's literals (the design
//! this replaced) finds.

use super::automaton::Automaton;
use super::pack::{Anchor, Locations, Pack, Rule, Severity, When};
use super::{CleanPieces, RequestView, SignatureSet, LOCATION_SETS};
use crate::headers::HeaderBlock;
use crate::test_rng::Rng;
use miniz_oxide::deflate::compress_to_vec;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// The request location kinds a rule can name, with their bits.
const KINDS: [(&str, Locations); 8] = [
    ("path", Locations::PATH),
    ("query", Locations::QUERY),
    ("params", Locations::PARAMS),
    ("headers", Locations::HEADERS),
    ("body", Locations::BODY),
    ("multipart", Locations::MULTIPART),
    ("inflated", Locations::INFLATED),
    ("base64", Locations::BASE64),
];

/// Per kind K, three rules: `only-K` (in K, its own literal `lit-K`), `shared-K` (in K, the
/// literal `shared` every `shared-*` rule has) and `but-K` (everywhere but K, `lit-but-K`).
fn location_pack() -> SignatureSet {
    let all: Vec<String> = KINDS.iter().map(|(k, _)| format!("{k:?}")).collect();
    let mut rules = Vec::new();
    for (k, _) in KINDS {
        let rule = |id: &str, inn: &str, not_in: &str, literal: &str| {
            format!(
                r#"{{"id":"{id}","name":"n","category":"c","severity":"high","in":[{inn}],"not_in":[{not_in}],"match":{{"any":["{literal}"]}}}}"#
            )
        };
        rules.push(rule(
            &format!("only-{k}"),
            &format!("{k:?}"),
            "",
            &format!("lit-{k}"),
        ));
        rules.push(rule(
            &format!("shared-{k}"),
            &format!("{k:?}"),
            "",
            "shared",
        ));
        rules.push(rule(
            &format!("but-{k}"),
            &all.join(","),
            &format!("{k:?}"),
            &format!("lit-but-{k}"),
        ));
    }
    let pack =
        Pack::from_json(format!(r#"{{"pack":"p","rules":[{}]}}"#, rules.join(",")).as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
    SignatureSet::new(pack.rules, true)
        .unwrap_or_else(|e| panic!("{e}"))
        .with_base64_params(true)
}

/// Every literal of [`location_pack`], end to end.
fn every_literal() -> String {
    let mut text = String::from("shared");
    for (k, _) in KINDS {
        text.push_str(&format!("_lit-{k}_lit-but-{k}"));
    }
    text
}

fn base64(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(DIGITS[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    out.extend(compress_to_vec(data, 6));
    out.extend([0u8; 8]);
    out
}

/// The rule ids a request's head and body hit, sorted.
fn hits(set: &SignatureSet, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<String> {
    let mut h: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    h.push((":authority".into(), "localhost".into()));
    let headers = HeaderBlock::from(h);
    let view = RequestView {
        method: "POST",
        path,
        headers: &headers,
    };
    let mut hits = set.new_hits();
    set.scan_head(&view, &mut hits);
    set.scan_body(&view, body, &mut hits);
    let mut ids = set.hit_rule_ids(&hits);
    ids.sort();
    ids
}

/// The rules that fire when every literal sits in pieces found at `pieces` (location bits
/// each): `only-K` and `shared-K` where a piece is at K, `but-K` where a piece is not.
fn expected(pieces: &[Locations]) -> Vec<String> {
    let mut ids = Vec::new();
    for (k, bit) in KINDS {
        if pieces.iter().any(|p| p.has(bit)) {
            ids.push(format!("only-{k}"));
            ids.push(format!("shared-{k}"));
        }
        if pieces.iter().any(|p| !p.has(bit)) {
            ids.push(format!("but-{k}"));
        }
    }
    ids.sort();
    ids
}

/// A placement of the literals: its name, the path, headers and body, and where the scan finds
/// the pieces that carry them.
type Case<'a> = (
    &'a str,
    String,
    Vec<(&'a str, &'a str)>,
    Vec<u8>,
    Vec<Locations>,
);

#[test]
fn a_literal_fires_only_where_its_rule_looks_at_every_request_location() {
    let set = location_pack();
    let lit = every_literal();
    let (q, p, h, b, m, i, b64) = (
        Locations::QUERY,
        Locations::PARAMS,
        Locations::HEADERS,
        Locations::BODY,
        Locations::MULTIPART,
        Locations::INFLATED,
        Locations::BASE64,
    );
    let form =
        format!("--XyZ\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n{lit}\r\n--XyZ--\r\n");
    let json = format!(r#"{{"k":"{lit}"}}"#);
    let credentials = format!("Basic {}", base64(format!("user:{lit}").as_bytes()));
    let cases: Vec<Case> = vec![
        (
            "path",
            format!("/a/{lit}"),
            vec![],
            vec![],
            vec![Locations::PATH],
        ),
        (
            "query",
            format!("/?q={lit}"),
            vec![],
            vec![],
            vec![q, q.with(p)],
        ),
        (
            "query base64",
            format!("/?q={}", base64(lit.as_bytes())),
            vec![],
            vec![],
            vec![q.with(p).with(b64)],
        ),
        (
            "header",
            "/".into(),
            vec![("x-h", lit.as_str())],
            vec![],
            vec![h],
        ),
        (
            "credentials",
            "/".into(),
            vec![("authorization", credentials.as_str())],
            vec![],
            vec![h.with(b64)],
        ),
        (
            "json body",
            "/".into(),
            vec![("content-type", "application/json")],
            json.clone().into_bytes(),
            vec![b, b.with(p)],
        ),
        (
            "form body",
            "/".into(),
            vec![("content-type", "application/x-www-form-urlencoded")],
            format!("k={lit}").into_bytes(),
            vec![b, b.with(p)],
        ),
        (
            "multipart body",
            "/".into(),
            vec![("content-type", "multipart/form-data; boundary=XyZ")],
            form.clone().into_bytes(),
            vec![b, b.with(p).with(m)],
        ),
        (
            "gzip json body",
            "/".into(),
            vec![
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            gzip(json.as_bytes()),
            vec![b.with(i), b.with(p).with(i)],
        ),
    ];
    for (what, path, headers, body, pieces) in cases {
        assert_eq!(
            hits(&set, &path, &headers, &body),
            expected(&pieces),
            "{what}"
        );
    }
    // Nothing placed, nothing found (the literals are not in the head or body otherwise).
    assert!(hits(&set, "/", &[], b"").is_empty());
}

#[test]
fn a_literal_fires_only_where_its_rule_looks_in_a_response() {
    // Response rules are read as path (status), header and body rules by the engine.
    let set = location_pack();
    let lit = every_literal();
    let headers = HeaderBlock::from(vec![(":authority".to_string(), "x".to_string())]);
    let view = RequestView {
        method: "GET",
        path: "/",
        headers: &headers,
    };
    let ids = |hits: &super::SignatureHits| {
        let mut ids = set.hit_rule_ids(hits);
        ids.sort();
        ids
    };
    let mut found = set.new_hits();
    set.scan_response_head(&view, lit.as_bytes(), [(":status", "200")], &mut found);
    assert_eq!(ids(&found), expected(&[Locations::PATH]), "status");
    let mut found = set.new_hits();
    set.scan_response_head(&view, b"200", [("x-h", lit.as_str())], &mut found);
    assert_eq!(ids(&found), expected(&[Locations::HEADERS]), "header");
    let mut found = set.new_hits();
    set.scan_response_body(&view, lit.as_bytes(), &mut found);
    assert_eq!(ids(&found), expected(&[Locations::BODY]), "body");
}

#[test]
fn a_piece_holding_only_literals_of_other_locations_is_remembered_clean() {
    let set = location_pack();
    let headers = HeaderBlock::from(vec![
        ("x-elsewhere".to_string(), "lit-path lit-body".to_string()),
        ("x-here".to_string(), "lit-headers".to_string()),
    ]);
    let view = RequestView {
        method: "GET",
        path: "/lit-headers",
        headers: &headers,
    };
    let mut clean = CleanPieces::new();
    let mut found = set.new_hits();
    set.scan_head_remembering(&view, &mut found, Some(&mut clean));
    assert_eq!(set.hit_rule_ids(&found), ["only-headers"]);
    // `lit-headers` in the path and `lit-path`, `lit-body` in a header are literals of rules
    // that do not look there: those pieces are clean, the header with `lit-headers` is not.
    let h = Locations::HEADERS;
    assert!(clean.contains(b"/lit-headers", Locations::PATH, false));
    assert!(clean.contains(b"x-elsewhere: lit-path lit-body", h, false));
    assert!(!clean.contains(b"x-here: lit-headers", h, false));
    let mut again = set.new_hits();
    set.scan_head_remembering(&view, &mut again, Some(&mut clean));
    assert_eq!(again, found);
}

/// The tests' stream, extended with random location sets.
impl Rng {
    /// A random set of location bits.
    fn bits(&mut self) -> u16 {
        // Request bits only half the time, so response bits and mixes come up too.
        let mask = if self.below(2) == 0 { 0xff } else { 0x7ff };
        (self.next() as u16) & mask & (self.next() as u16 | self.next() as u16)
    }
}

fn random_rule(rng: &mut Rng, id: usize, alphabet: &[u8]) -> Rule {
    let literal = |rng: &mut Rng| -> String {
        (0..1 + rng.below(4))
            .map(|_| char::from(alphabet[rng.below(alphabet.len())]))
            .collect()
    };
    let groups: Vec<Vec<String>> = (0..1 + rng.below(2))
        .map(|_| (0..1 + rng.below(3)).map(|_| literal(rng)).collect())
        .collect();
    let none = (0..rng.below(2)).map(|_| literal(rng)).collect();
    Rule {
        id: format!("r{id}"),
        name: "r".into(),
        category: "c".into(),
        severity: Severity::Low,
        references: Vec::new(),
        locations: Locations(rng.bits() | 1 << rng.below(11)),
        exclude: Locations(if rng.below(3) == 0 { rng.bits() } else { 0 }),
        params: Vec::new(),
        headers: Vec::new(),
        view: 0,
        lookups: false,
        case_insensitive: rng.below(2) == 0,
        when: When::default(),
        groups,
        none,
        anchor: Anchor::Anywhere,
        any_group: None,
        enabled: true,
    }
}

#[test]
fn the_finds_at_each_location_are_those_of_an_automaton_of_its_literals_alone() {
    let alphabet = b"aAbB/c.";
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for _ in 0..80 {
        let rules: Vec<Rule> = (0..1 + rng.below(8))
            .map(|i| random_rule(&mut rng, i, alphabet))
            .collect();
        let set = SignatureSet::new(rules.clone(), true).unwrap_or_else(|e| panic!("{e}"));
        let texts: Vec<Vec<u8>> = (0..6)
            .map(|_| {
                (0..rng.below(40))
                    .map(|_| alphabet[rng.below(alphabet.len())])
                    .collect()
            })
            .collect();
        // Every combination the scans use, and random others.
        let used = [
            1u16, 2, 6, 8, 0x88, 0x86, 0x10, 0x14, 0x34, 0x50, 0x54, 0x74, 0x94, 0xd4,
        ];
        let random = (0..24).map(|_| rng.below(LOCATION_SETS) as u16);
        for bits in used.into_iter().chain(random.collect::<Vec<_>>()) {
            let here = Locations(bits);
            // The old design: the automaton of the literals of the rules that look here.
            let mut wanted: Vec<String> = Vec::new();
            for r in rules.iter().filter(|r| r.looks_at(here)) {
                for l in r.groups.iter().flatten().chain(&r.none) {
                    let l = l.to_ascii_lowercase();
                    if !wanted.contains(&l) {
                        wanted.push(l);
                    }
                }
            }
            let Some(class) = set.class(here) else {
                assert!(wanted.is_empty(), "{bits:#x}: no class for {wanted:?}");
                continue;
            };
            let refs: Vec<&[u8]> = wanted.iter().map(String::as_bytes).collect();
            let alone = Automaton::new(&refs).unwrap_or_else(|e| panic!("{e}"));
            for text in &texts {
                let want: Vec<(&[u8], usize, usize)> = alone
                    .find_overlapping_iter(text)
                    .map(|m| (refs[m.pattern as usize], m.start, m.end))
                    .collect();
                let got: Vec<(Vec<u8>, usize, usize)> = set
                    .finds(text, class, here)
                    .map(|(m, _)| (text[m.start..m.end].to_ascii_lowercase(), m.start, m.end))
                    .collect();
                let got: Vec<(&[u8], usize, usize)> =
                    got.iter().map(|(l, s, e)| (l.as_slice(), *s, *e)).collect();
                assert_eq!(got, want, "{bits:#x} {wanted:?} in {text:?}");
            }
        }
    }
}
