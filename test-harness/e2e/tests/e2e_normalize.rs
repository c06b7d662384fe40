#![cfg(feature = "e2e")]
//! Differential test of `meshsight_policy::normalize::normalize_path` against Envoy's own path
//! normalization (issue 3): the filter and the upstream must see the same path.
//!
//! Envoy runs `envoy-config/e2e/normalize.yaml`: `normalize_path: true` (RFC 3986 via
//! Chromium's URL canonicalizer), `merge_slashes: true` and
//! `path_with_escaped_slashes_action: REJECT_REQUEST`, routing everything to the echo upstream;
//! local replies carry `%RESPONSE_CODE_DETAILS%` as their body. A few thousand generated raw
//! targets (a deterministic generator over dot, escape, separator, parameter and multi-byte
//! segments) are sent byte for byte; for each we record what the upstream received (or Envoy's
//! status and details) and what our normalizer says.
//!
//! # What is compared where both accept
//! Envoy's forwarded target is split at the first `?`. The path parts must be equal after
//! mapping both through [`comparable`], which erases exactly the two documented differences in
//! spelling (not in meaning):
//! - Envoy keeps the case of the hex digits of escapes it does not decode (`%c3%a9`); we
//!   uppercase them (`%C3%A9`), as RFC 3986 section 6.2.2.1 recommends;
//! - Envoy leaves raw `[` and `]` as they are; we percent-encode every raw byte outside RFC
//!   3986 `pchar` (Envoy encodes `"`, `<`, `>`, `^`, `` ` ``, `{`, `|`, `}` itself).
//!
//! One difference in result is accepted and counted apart: a path made only of slashes and dot
//! segments (`//`, `/%2E//`) comes out of Envoy's `merge_slashes` as `//` (it keeps a leading
//! and a trailing `/` around the joined, here empty, segment list), where ours is `/`.
//!
//! Escapes of unreserved characters (`%61`, `%2e`, `%7E`) are decoded by both (Chromium's
//! canonicalizer unescapes them, so Envoy's `normalize_path` does too), `.`/`..`/`%2e%2e`
//! segments are removed by both and `//` merged by both: these must agree exactly. The query
//! must be forwarded byte for byte and equal ours.
//!
//! # Documented relationships where the two disagree on accepting
//! - Every target with `%2F`/`%5C` (any case) or `%00` is rejected by both.
//! - Every target Envoy rejects, we reject too, except targets that carry a fragment (`#`,
//!   Envoy 1.40 refuses them; we drop the fragment, and Envoy never hands a filter a `:path`
//!   with one) and raw non-ASCII bytes (Envoy's HTTP/1 codec refuses them; we percent-encode).
//! - Where Envoy forwards and we reject, the reason is one of our deliberate extra checks
//!   ([`STRICTER_THAN_ENVOY`]): Envoy forwards invalid escapes (`%zz`), non-UTF-8 and overlong
//!   escapes, encoded controls other than `%00`, double encoding, `..;x` (which it resolves as
//!   `..`), `..` after `//` (it resolves before merging) and raw `\` (it turns it into `/`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use meshsight_policy::normalize::{normalize_path, Malformed, NormalizedTarget};
use meshsight_rig::{try_send, EchoUpstream, Envoy, HttpRequest};

/// How many distinct targets are sent.
const TARGETS: usize = 3_000;
/// The loop stops sending after this long (a hung Envoy); the test then fails: all must be sent.
const SEND_BUDGET: Duration = Duration::from_secs(240);

/// Our rejection reasons that Envoy does not share, so Envoy may forward what we refuse.
const STRICTER_THAN_ENVOY: &[Malformed] = &[
    Malformed::InvalidPercentEncoding,
    Malformed::InvalidUtf8,
    Malformed::OverlongUtf8,
    Malformed::NulOrControl,
    Malformed::DoubleEncoding,
    Malformed::DotSegmentParameter,
    Malformed::AmbiguousDotSegment,
    Malformed::Backslash,
];

/// Segment vocabulary: dots in every spelling, escapes Envoy decodes or keeps, separators in
/// disguise, path parameters, invalid and overlong escapes, raw characters that need escaping.
const SEGMENTS: &[&str] = &[
    "a",
    "B",
    "cd",
    ".",
    "..",
    "%2e",
    "%2E",
    "%2e%2e",
    "%2E%2e",
    ".%2e",
    "%2e.",
    "%2e%2e%2e",
    "...",
    "%61",
    "%41",
    "%7E",
    "%7e",
    "~",
    "-_",
    "",
    "",
    "%2F",
    "%2f",
    "%5C",
    "%5c",
    ";x",
    "..;x",
    ".;x",
    "a;b=c",
    "..%3b",
    "%3B",
    "%3b",
    "%25",
    "%2541",
    "%252f",
    "%252e",
    "%25%32%66",
    "%C3%A9",
    "%c3%a9",
    "%e2%82%ac",
    "%20",
    "%00",
    "%01",
    "%7f",
    "%c2%85",
    "%zz",
    "%",
    "%4",
    "%e9",
    "%c0%af",
    "%e0%80%af",
    "\\",
    "\"",
    "[x]",
    "|",
    "{}",
    "^",
    "`",
    "<>",
    "@:",
    "!$&'()*+,=",
    "caf\u{e9}",
    "#frag",
];

/// What Envoy did with one target.
#[derive(Debug, Clone)]
enum EnvoyOutcome {
    /// Forwarded; the target the echo upstream received.
    Forwarded(String),
    /// Refused with a local reply: status and `%RESPONSE_CODE_DETAILS%`.
    Rejected(u16, String),
}

/// xorshift64*: deterministic, no rand crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick(&mut self) -> &'static str {
        SEGMENTS[self.below(SEGMENTS.len())]
    }
}

/// `TARGETS` distinct raw targets, always the same ones.
fn generated_targets() -> Vec<String> {
    let mut rng = Rng(0x5eed_0fe4_7a11);
    let mut seen = BTreeSet::new();
    let mut targets = Vec::with_capacity(TARGETS);
    while targets.len() < TARGETS {
        let mut target = String::new();
        for _ in 0..1 + rng.below(5) {
            target.push('/');
            target.push_str(rng.pick());
            if rng.below(6) == 0 {
                target.push_str(rng.pick());
            }
        }
        if rng.below(5) == 0 {
            target.push('/');
        }
        if rng.below(6) == 0 {
            target.push_str("?q=1&r=%2F..%zz");
        }
        if seen.insert(target.clone()) {
            targets.push(target);
        }
    }
    targets
}

/// The spelling-only differences erased before comparing (see the module docs): hex digits of
/// escapes uppercased, raw bytes outside `pchar` percent-encoded.
fn comparable(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 8);
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let is_escape = b == b'%'
            && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
        if is_escape {
            out.push('%');
            out.push(char::from(bytes[i + 1].to_ascii_uppercase()));
            out.push(char::from(bytes[i + 2].to_ascii_uppercase()));
            i += 3;
            continue;
        }
        let pchar = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&b);
        if pchar {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
        i += 1;
    }
    out
}

fn envoy_outcome(port: u16, target: &str) -> EnvoyOutcome {
    let request = HttpRequest::get(target)
        .header("host", "example.com")
        .timeout(Duration::from_secs(10));
    match try_send(port, &request) {
        Ok(response) if response.status == 200 => {
            let echo = response
                .json()
                .unwrap_or_else(|e| panic!("{target:?}: echo body is not JSON: {e}"));
            let path = echo["path"]
                .as_str()
                .unwrap_or_else(|| panic!("{target:?}: echo without path: {echo}"));
            EnvoyOutcome::Forwarded(path.to_string())
        }
        Ok(response) => EnvoyOutcome::Rejected(response.status, response.text()),
        Err(err) => EnvoyOutcome::Rejected(0, format!("connection: {err}")),
    }
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .to_ascii_lowercase()
        .contains(&needle.to_ascii_lowercase())
}

#[derive(Default)]
struct Summary {
    sent: usize,
    both_accept: usize,
    both_accept_identical: usize,
    both_accept_equal: usize,
    envoy_slash_only_quirk: usize,
    we_accept_envoy_rejects: BTreeMap<String, usize>,
    envoy_forwards_we_reject: BTreeMap<&'static str, usize>,
    both_reject: BTreeMap<(String, &'static str), usize>,
    failures: Vec<String>,
}

impl Summary {
    fn print(&self) {
        let accept_reject: usize = self.we_accept_envoy_rejects.values().sum();
        let forward_reject: usize = self.envoy_forwards_we_reject.values().sum();
        let both_reject: usize = self.both_reject.values().sum();
        println!(
            "\ndifferential normalize_path vs Envoy: {} targets sent",
            self.sent
        );
        println!("| ours \\ Envoy | forwards | rejects |");
        println!("|---|---|---|");
        println!("| accepts | {} | {} |", self.both_accept, accept_reject);
        println!("| rejects | {} | {} |", forward_reject, both_reject);
        println!(
            "both accept: same path after `comparable` {} (byte-identical {}), Envoy's `//` for a \
             slash-only path {}, different {}",
            self.both_accept_equal,
            self.both_accept_identical,
            self.envoy_slash_only_quirk,
            self.both_accept - self.both_accept_equal - self.envoy_slash_only_quirk
        );
        println!("we accept, Envoy rejects, by cause:");
        for (cause, n) in &self.we_accept_envoy_rejects {
            println!("  {cause}: {n}");
        }
        println!("Envoy forwards, we reject, by our reason:");
        for (reason, n) in &self.envoy_forwards_we_reject {
            println!("  {reason}: {n}");
        }
        println!("both reject, by (Envoy details, our reason):");
        for ((details, reason), n) in &self.both_reject {
            println!("  {details} / {reason}: {n}");
        }
    }
}

#[test]
fn normalizer_agrees_with_envoy_normalize_path() {
    let upstream = EchoUpstream::start();
    let envoy = Envoy::builder("envoy-config/e2e/normalize.yaml")
        .upstream(&upstream)
        .start()
        .unwrap_or_else(|err| panic!("Envoy must start: {err}"));

    let targets = generated_targets();
    let started = Instant::now();
    let mut summary = Summary::default();
    for target in &targets {
        if started.elapsed() > SEND_BUDGET {
            break;
        }
        summary.sent += 1;
        let envoy_says = envoy_outcome(envoy.port(), target);
        let ours = normalize_path(target);
        let mut problems: Vec<String> = Vec::new();
        let raw_path = target.split(['?', '#']).next().unwrap_or("");
        let escaped_separator =
            contains_ignore_case(raw_path, "%2f") || contains_ignore_case(raw_path, "%5c");
        let escaped_nul = raw_path.contains("%00");
        match (&envoy_says, &ours) {
            (EnvoyOutcome::Forwarded(forwarded), Ok(NormalizedTarget { path, query })) => {
                summary.both_accept += 1;
                let (envoy_path, envoy_query) = match forwarded.split_once('?') {
                    Some((p, q)) => (p, Some(q)),
                    None => (forwarded.as_str(), None),
                };
                if envoy_path == path {
                    summary.both_accept_identical += 1;
                }
                if envoy_path == "//" && path == "/" {
                    // Envoy's merge_slashes keeps a leading and a trailing '/' around the joined
                    // segments, so a path made of slashes only stays "//" (see module docs).
                    summary.envoy_slash_only_quirk += 1;
                } else if comparable(envoy_path) == comparable(path) {
                    summary.both_accept_equal += 1;
                } else {
                    problems.push(format!(
                        "Envoy forwarded {envoy_path:?}, we normalized to {path:?}"
                    ));
                }
                if envoy_query != query.as_deref() {
                    problems.push(format!(
                        "Envoy forwarded query {envoy_query:?}, ours {query:?}"
                    ));
                }
                if escaped_separator || escaped_nul {
                    problems.push("Envoy forwarded an escaped separator or NUL".into());
                }
            }
            (EnvoyOutcome::Rejected(status, details), Ok(accepted)) => {
                let cause = if target.contains('#') {
                    "fragment"
                } else if !target.is_ascii() {
                    "raw non-ASCII"
                } else {
                    problems.push(format!(
                        "Envoy rejected ({status} {details}) what we accept as {:?}",
                        accepted.path
                    ));
                    "undocumented"
                };
                *summary
                    .we_accept_envoy_rejects
                    .entry(format!("{cause} ({status} {details})"))
                    .or_default() += 1;
            }
            (EnvoyOutcome::Forwarded(forwarded), Err(reason)) => {
                if !STRICTER_THAN_ENVOY.contains(reason) {
                    problems.push(format!(
                        "we rejected as {} what Envoy forwarded as {forwarded:?}",
                        reason.reason()
                    ));
                }
                if escaped_separator || escaped_nul {
                    problems.push("Envoy forwarded an escaped separator or NUL".into());
                }
                *summary
                    .envoy_forwards_we_reject
                    .entry(reason.reason())
                    .or_default() += 1;
            }
            (EnvoyOutcome::Rejected(status, details), Err(reason)) => {
                *summary
                    .both_reject
                    .entry((format!("{status} {details}"), reason.reason()))
                    .or_default() += 1;
            }
        }
        if (escaped_separator || escaped_nul) && ours.is_ok() {
            problems.push("we accepted an escaped separator or NUL".into());
        }
        summary
            .failures
            .extend(problems.into_iter().map(|p| format!("{target:?}: {p}")));
    }
    summary.print();

    assert!(
        summary.failures.is_empty(),
        "{} disagreements:\n{}",
        summary.failures.len(),
        summary.failures.join("\n")
    );
    // The generator must exercise every quadrant, or the comparison proves little.
    // Every generated target was sent: the time budget only stops a hung run, it must not
    // quietly shorten the comparison.
    assert_eq!(
        summary.sent,
        targets.len(),
        "only {} of {} generated targets sent within {SEND_BUDGET:?}",
        summary.sent,
        targets.len()
    );
    assert!(
        targets.len() >= 1_000,
        "only {} targets generated",
        targets.len()
    );
    assert!(
        summary.both_accept >= 200,
        "{} both accepted",
        summary.both_accept
    );
    assert!(!summary.envoy_forwards_we_reject.is_empty());
    assert!(!summary.both_reject.is_empty());
    assert!(
        summary.both_accept_identical < summary.both_accept,
        "the spelling differences never came up"
    );
}

#[test]
fn comparable_erases_only_spelling() {
    assert_eq!(comparable("/a%c3%a9[x]"), "/a%C3%A9%5Bx%5D");
    assert_eq!(comparable("/a%C3%A9%5Bx%5D"), "/a%C3%A9%5Bx%5D");
    assert_ne!(comparable("/a%2e"), comparable("/a."));
    assert_ne!(comparable("/a//b"), comparable("/a/b"));
}
