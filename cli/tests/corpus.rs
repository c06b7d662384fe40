//! The signature corpus (`shared/corpus/signatures.ndjson`) through the mirror policy with the
//! built-in pack: every exploit request is selected by a signature of its category, no benign
//! look-alike is selected. Per-category counts are printed (`--nocapture`). The corpus is read
//! as `meshsight signatures test` reads requests.
// Helpers outside `#[test]` functions are test code too.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use meshsight_cli::signatures::test_requests::{parse_requests, run, CorpusTally, TestRequest};
use meshsight_policy::headers::HeaderBlock;
use meshsight_policy::mirror::decode::percent_decode_fully;
use meshsight_policy::mirror::signatures::pack::{self, Pack};
use meshsight_policy::mirror::signatures::CleanPieces;
use meshsight_policy::mirror::signatures::SignatureSet;
use meshsight_policy::mirror::{MirrorPolicy, MirrorRequest, Peer};

const CORPUS: &str = include_str!("../../shared/corpus/signatures.ndjson");

fn corpus() -> Vec<TestRequest> {
    parse_requests(CORPUS.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

/// The categories and rule ids the mirror's signatures select `r` for (empty: not selected by
/// a signature), its head scanned with `clean` (a worker's memory of clean pieces) when given.
fn mirrored_categories(
    policy: &MirrorPolicy,
    r: &TestRequest,
    clean: Option<&mut CleanPieces>,
) -> (Vec<String>, Vec<String>) {
    let mut headers = r.headers.clone();
    let authority = headers
        .iter()
        .find(|(k, _)| k == "host")
        .map_or("shop.example.com".to_string(), |(_, v)| v.clone());
    headers.push((":authority".into(), authority.clone()));
    let headers = HeaderBlock::from(headers);
    let req = MirrorRequest {
        method: &r.method,
        path: &r.path,
        authority: &authority,
        headers: &headers,
        peer: Peer::default(),
        normalized: None,
    };
    let mut hits = policy.new_hits();
    match clean {
        Some(clean) => policy.scan_head_remembering(&req, &mut hits, clean),
        None => policy.scan_head(&req, &mut hits),
    }
    if policy.wants_body(&req, &hits) && !r.body_bytes().is_empty() {
        policy.scan_body(&req, &r.body_bytes(), &mut hits);
    }
    let s = policy.select(&req, &hits);
    (s.signatures, s.signature_rules)
}

#[test]
fn every_exploit_is_mirrored_and_no_benign_look_alike_is() {
    let policy =
        MirrorPolicy::from_json(br#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}}}"#)
            .unwrap_or_else(|e| panic!("{e}"));
    let mut tally = CorpusTally::default();
    for r in corpus() {
        let (categories, rules) = mirrored_categories(&policy, &r, None);
        let category = r.category.as_deref().unwrap_or_default();
        let ok = match r.expect.as_deref().unwrap_or_default() {
            "hit" => categories.iter().any(|c| c == category),
            "miss" => categories.is_empty(),
            other => panic!("{:?}: expect must be hit or miss, not {other:?}", r.name),
        };
        tally.record(&r, ok, || {
            format!(
                "{:?} {} {}: got {categories:?} {rules:?}",
                r.name, r.method, r.path
            )
        });
    }
    print!("{}", tally.table("as expected"));
    if let Err(wrong) = tally.verdict() {
        panic!("{wrong}");
    }
}

/// A worker remembers the pieces it found clean and skips them next time. Scanning the whole
/// corpus through one memory, benign and hostile requests interleaved, forwards and backwards
/// and then again (every clean piece now remembered), must give each request exactly the hits
/// of a scan without memory: a piece that shares a header, a path or a parameter with a
/// benign request must still be caught for what it carries.
#[test]
fn remembering_clean_pieces_never_changes_a_verdict() {
    let policy =
        MirrorPolicy::from_json(br#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}}}"#)
            .unwrap_or_else(|e| panic!("{e}"));
    let requests = corpus();
    let fresh: Vec<_> = requests
        .iter()
        .map(|r| mirrored_categories(&policy, r, None))
        .collect();
    assert!(
        fresh.iter().any(|(c, _)| !c.is_empty()),
        "the corpus has hits"
    );
    let mut clean = CleanPieces::new();
    let order: Vec<usize> = (0..requests.len())
        .chain((0..requests.len()).rev())
        .chain(0..requests.len())
        .collect();
    for i in order {
        let remembered = mirrored_categories(&policy, &requests[i], Some(&mut clean));
        assert_eq!(
            remembered, fresh[i],
            "{:?} {} {}",
            requests[i].name, requests[i].method, requests[i].path
        );
    }
}

/// The bounded base64 view of parameter values, measured on the corpus before it may be on by
/// default (issue 22), with the view off and on: the benign requests copied (the corpus carries
/// base64 parameters in the formats real traffic sends them: OIDC, SAML, cursors, Pub/Sub,
/// attachments, a contents API), the exploits caught, the same exploits with every query and
/// form value base64-encoded (what the view adds), and 2,000 random tokens. Printed with
/// `--nocapture`. It stays off while it copies any benign request the default does not.
#[test]
fn base64_parameter_view_measured_on_the_corpus() {
    let off = SignatureSet::new(pack::layer([Pack::builtin().unwrap()]), true).unwrap();
    let on = SignatureSet::new(pack::layer([Pack::builtin().unwrap()]), true)
        .unwrap()
        .with_base64_params(true);
    let hit = |set: &SignatureSet, r: &TestRequest| run(set, r.clone()).hit();
    let (mut benign, mut exploits, mut wrapped) = (0, 0, 0);
    let mut copied = [0usize; 2];
    let mut caught = [0usize; 2];
    let mut wrapped_caught = [0usize; 2];
    let mut copied_on = Vec::new();
    for r in corpus() {
        if r.expect.as_deref() == Some("miss") {
            benign += 1;
            copied[0] += usize::from(hit(&off, &r));
            if hit(&on, &r) {
                copied[1] += 1;
                copied_on.push(r.name.clone().unwrap_or_default());
            }
            continue;
        }
        exploits += 1;
        caught[0] += usize::from(hit(&off, &r));
        caught[1] += usize::from(hit(&on, &r));
        if let Some(w) = base64_wrapped(&r) {
            wrapped += 1;
            wrapped_caught[0] += usize::from(hit(&off, &w));
            wrapped_caught[1] += usize::from(hit(&on, &w));
        }
    }
    // 2,000 random tokens (24 to 96 random bytes, URL-safe base64) as a query parameter, as
    // session ids and signed URLs carry them.
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let mut token_copies = 0;
    for i in 0..2000 {
        let len = 24 + i % 73;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        let token = base64_url(&bytes);
        let r = TestRequest {
            path: format!("/download?token={token}&id={i}"),
            ..parse_requests(br#"{"path":"/"}"#).unwrap().remove(0)
        };
        token_copies += usize::from(run(&on, r).hit());
    }
    println!(
        "base64 parameter view off / on: benign copied {}/{benign} / {}/{benign} {copied_on:?}; \
         exploits caught {}/{exploits} / {}/{exploits}; the exploits with their query and form \
         values base64-encoded caught {}/{wrapped} / {}/{wrapped}; random tokens copied \
         - / {token_copies}/2000",
        copied[0], copied[1], caught[0], caught[1], wrapped_caught[0], wrapped_caught[1]
    );
    assert_eq!(copied[0], 0, "the default copies no benign request");
    assert_eq!((caught[0], caught[1]), (exploits, exploits));
    assert_eq!(token_copies, 0);
    assert!(
        wrapped_caught[1] > wrapped_caught[0],
        "the view adds catches"
    );
    // The view copies a README whose install line pipes curl into sh, sent base64 as a contents
    // API sends files: a benign copy the default does not make, so the view stays off.
    assert_eq!(
        copied_on,
        ["README with a curl | sh install line committed through a contents API (base64)"]
    );
    let policy =
        MirrorPolicy::from_json(br#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}}}"#)
            .unwrap();
    let hidden = TestRequest {
        path: "/search?q=JHtqbmRpOmxkYXA6Ly94L2F9".into(),
        ..parse_requests(br#"{"path":"/"}"#).unwrap().remove(0)
    };
    assert_eq!(
        mirrored_categories(&policy, &hidden, None).0,
        Vec::<String>::new()
    );
    assert!(run(&on, hidden).hit());
}

/// `r` with every query value and every `application/x-www-form-urlencoded` body value
/// replaced by its (percent-decoded) bytes in URL-safe base64; `None` when it has none.
fn base64_wrapped(r: &TestRequest) -> Option<TestRequest> {
    fn wrap(pairs: &str) -> Option<String> {
        let mut any = false;
        let out: Vec<String> = pairs
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, value)) if !value.is_empty() => {
                    any = true;
                    let raw = percent_decode_fully(value.as_bytes(), true);
                    format!("{name}={}", base64_url(&raw))
                }
                _ => pair.to_string(),
            })
            .collect();
        any.then(|| out.join("&"))
    }
    let mut w = r.clone();
    let mut changed = false;
    if let Some((path, query)) = r.path.split_once('?') {
        if let Some(q) = wrap(query) {
            w.path = format!("{path}?{q}");
            changed = true;
        }
    }
    let form = r
        .headers
        .iter()
        .any(|(k, v)| k == "content-type" && v.starts_with("application/x-www-form-urlencoded"));
    if form && r.body_base64.is_none() {
        if let Some(b) = wrap(&r.body) {
            w.body = b;
            changed = true;
        }
    }
    changed.then_some(w)
}

/// URL-safe base64 without padding (the tokens of the measurement above).
fn base64_url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |a, b| a << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for k in 0..=chunk.len() {
            out.push(char::from(A[(n >> (18 - 6 * k) & 63) as usize]));
        }
    }
    out
}
