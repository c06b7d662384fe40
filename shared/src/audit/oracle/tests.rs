//! The crate's writers against the writers before the size pass, byte for byte, over many
//! generated records: every optional field present and absent, hostile strings (quotes,
//! backslashes, control characters, non-ASCII, long runs), huge and zero numbers, every
//! method, outcome, mirror reason, response copy and flag bit.

use super::*;
use crate::audit::verdict::{entries_with_response, request_entry, verdict_entry};
use crate::audit::{AuditFormat, AuditPolicy, HttpExchange};
use crate::decision::AllowlistOutcome;
use crate::mirror::signatures::pack::Severity;
use crate::response::{ResponseFinding, SecretRef};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// splitmix64: a fixed sequence, so a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn string(&mut self) -> String {
        if self.below(4) == 0 {
            return self.pick(PLAIN).to_string();
        }
        let mut s = String::new();
        for _ in 0..self.below(6) {
            s.push_str(self.pick(PIECES));
        }
        s
    }

    fn opt_string(&mut self) -> Option<String> {
        self.coin().then(|| self.string())
    }

    fn number(&mut self) -> u64 {
        match self.below(6) {
            0 => 0,
            1 => u64::MAX,
            2 => self.next() % 10,
            3 => self.next() % 100_000,
            4 => 1_700_000_000_000_000_000 + self.next() % 100_000_000_000,
            _ => self.next(),
        }
    }

    fn opt_number(&mut self) -> Option<u64> {
        self.coin().then(|| self.number())
    }
}

const PLAIN: &[&str] = &["", "a", "web", "shop", "curl/8.5.0", "via_upstream"];

/// Pieces that hostile strings are made of: each of JSON's escapes, every kind of control
/// character, multi-byte UTF-8, and runs longer than the escaper's eight-byte words.
const PIECES: &[&str] = &[
    "",
    "plain",
    "\"",
    "\\",
    "\u{0}",
    "\u{1}\u{1f}",
    "\t\n\r\u{8}\u{c}",
    "\u{7f}",
    "é漢😀",
    "\u{2028}\u{2029}",
    "exactly8",
    "sixteen-bytes-xx",
    "</script>",
    " ",
    ":",
    "?",
    "#",
    "&token=x",
    "a very long run of text without any character that must be escaped at all",
];

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "CONNECT", "PROPFIND",
    "get", "", "BR\"EW",
];

const AUTHORITIES: &[&str] = &[
    "",
    "shop.example.com",
    "shop.example.com:8080",
    "[::1]:443",
    "[::1]",
    "[2001:db8::7]:x",
    "a:b:c",
    "host:99999",
    "host:",
    "h\"o\\st:1",
    "10.0.0.1:0",
];

const PATHS: &[&str] = &[
    "",
    "/",
    "/cart/items?id=7&token=s3cr3t&page=2",
    "/p#frag",
    "/x?q",
    "/?",
    "/a?password=1#f",
    "/\"quoted\"?x=\\",
    "/é漢?😀=1",
];

const ADDRESSES: &[&str] = &[
    "10.1.2.3:51234",
    "[2001:db8::7]:80",
    "::1",
    "1.2.3.4",
    "garbage",
    "255.255.255.255:65535",
    "[::ffff:1.2.3.4]:1",
    "",
];

const IDENTITIES: &[&str] = &[
    "spiffe://cluster.local/ns/shop/sa/web",
    "spiffe://x",
    "spiffe://td/ns/\"n\"/sa/\u{1}",
    "not a spiffe id",
];

const FORWARDED: &[&str] = &[
    "203.0.113.7, 10.0.0.1",
    "::1, junk",
    "",
    " , ",
    "2001:db8::1",
    "1.2.3.4:80, [::1]:9",
    "\"x\"",
];

const TRACES: &[(&str, &str)] = &[
    (
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ),
    (
        "traceparent",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    ),
    ("traceparent", "00-4BF92F3577B34DA6A3CE929D0E0E4736-01"),
    ("x-b3-traceid", "80f198ee56343ba8"),
    ("x-b3-traceid", "80F198EE56343BA864FE8B2A57D3EFF7"),
    ("b3", "80f198ee56343ba8-e457b5a2e4d86bd1-1"),
    ("b3", "zz"),
];

const HEADER_NAMES: &[&str] = &[
    "user-agent",
    "content-type",
    "Content-Type",
    "accept",
    "x-custom",
    "authorization",
    "cookie",
    "x-api-key",
    "set-cookie",
    "location",
    "x-dup",
];

const SIGNATURES: &[&str] = &[
    "log4shell",
    "sqli",
    "path_traversal",
    "wordpress_xmlrpc",
    "kubelet_api",
    "unknown",
    "\"odd\"",
];

const TECHNIQUES: &[&str] = &["T1552.005", "T1059", "T1613", "T1528", "T9999", "\u{1}"];

const POLICIES: &[&str] = &[
    "{}",
    r#"{"record_headers":["content-type","accept","x-custom","location","x-dup","user-agent"],
        "redact_query_params":["token","password","q","😀"]}"#,
    r#"{"record_headers":[],"redact_query_params":[]}"#,
];

fn allowlist(rng: &mut Rng) -> Option<AllowlistDecision> {
    let outcome = match rng.below(5) {
        0 => return None,
        1 => AllowlistOutcome::Allowed,
        2 => AllowlistOutcome::Denied,
        3 => AllowlistOutcome::Malformed,
        _ => AllowlistOutcome::WouldDeny,
    };
    Some(AllowlistDecision {
        outcome,
        rule: rng.opt_string(),
        reason: rng.opt_string(),
    })
}

fn strings(rng: &mut Rng, from: &[&str]) -> Vec<String> {
    (0..rng.below(4))
        .map(|_| {
            if rng.below(3) == 0 {
                rng.string()
            } else {
                rng.pick(from).to_string()
            }
        })
        .collect()
}

fn mirror(rng: &mut Rng) -> Option<MirrorDecision> {
    if rng.below(3) == 0 {
        return None;
    }
    let reason = match rng.below(5) {
        0 => MirrorReason::Signature,
        1 => MirrorReason::Rule,
        2 => MirrorReason::Sample,
        3 => MirrorReason::NotSelected,
        _ => MirrorReason::RateLimited,
    };
    Some(MirrorDecision {
        mirrored: rng.coin(),
        target: rng.opt_string(),
        reason,
        rule: rng.opt_string(),
        signatures: strings(rng, SIGNATURES),
        signature_rules: strings(rng, SIGNATURES),
        findings: strings(rng, &["multipart_malformed", "body_encoding_broken"]),
    })
}

fn response(rng: &mut Rng) -> Option<ResponseVerdict> {
    if rng.below(3) == 0 {
        return None;
    }
    let findings = (0..rng.below(4))
        .map(|_| ResponseFinding {
            rule: rng.string(),
            category: rng
                .pick(&["aws_credentials", "private_key", "x\"y"])
                .to_string(),
            name: rng.string(),
            severity: Severity::High,
            technique: rng.coin().then(|| rng.pick(TECHNIQUES).to_string()),
            location: rng.pick(&["status", "response_headers", "response_body"]),
            secret: rng.coin().then(|| SecretRef {
                kind: rng.pick(&["jwt", "private_key"]),
                location: rng.string(),
                sha256: rng.pick(&["0123456789ab", ""]).to_string(),
            }),
        })
        .collect();
    Some(ResponseVerdict {
        status: rng.number() as u16,
        signature_hit: rng.coin(),
        findings,
        headers: Vec::new(),
        excerpt: Vec::new(),
        decoding: rng
            .coin()
            .then(|| rng.pick(&["body_encoding_broken", "body_inflate_bomb"])),
        copy: match rng.below(3) {
            0 => ResponseCopy::None,
            1 => ResponseCopy::Mirrored,
            _ => ResponseCopy::RateLimited,
        },
    })
}

fn peer(rng: &mut Rng) -> PeerWorkload {
    PeerWorkload {
        namespace: rng.opt_string(),
        workload: rng.opt_string(),
        service: rng.opt_string(),
    }
}

fn headers(rng: &mut Rng) -> Vec<(String, String)> {
    (0..rng.below(6))
        .map(|_| (rng.pick(HEADER_NAMES).to_string(), rng.string()))
        .collect()
}

/// The request's pseudo-headers and headers, as the host hands them over.
fn request_pairs(rng: &mut Rng) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut pseudo = |name: &str, value: String| pairs.push((name.to_string(), value));
    pseudo(":method", rng.pick(METHODS).to_string());
    if rng.below(4) > 0 {
        pseudo(
            ":scheme",
            rng.pick(&["http", "https", "", "ws\"s"]).to_string(),
        );
    }
    let authority = if rng.below(5) == 0 {
        rng.string()
    } else {
        rng.pick(AUTHORITIES).to_string()
    };
    if rng.below(5) > 0 {
        pseudo(":authority", authority);
    } else if rng.coin() {
        pseudo("host", authority);
    }
    let path = if rng.below(5) == 0 {
        format!("/{}?{}={}", rng.string(), rng.string(), rng.string())
    } else {
        rng.pick(PATHS).to_string()
    };
    pseudo(":path", path);
    if rng.coin() {
        pseudo("user-agent", rng.string());
    }
    if rng.coin() {
        pseudo("x-request-id", rng.string());
    }
    if rng.coin() {
        let (name, value) = TRACES[rng.below(TRACES.len())];
        pairs.push((name.to_string(), value.to_string()));
    }
    if rng.coin() {
        pairs.push((
            "x-forwarded-for".to_string(),
            rng.pick(FORWARDED).to_string(),
        ));
    }
    pairs.extend(headers(rng));
    pairs
}

fn exchange(rng: &mut Rng, pairs: Vec<(String, String)>) -> HttpExchange {
    let mut ex = HttpExchange::from_request_headers(pairs);
    ex.protocol = rng.coin().then(|| {
        rng.pick(&["HTTP/1.1", "HTTP/2", "HTTP/3", "h\"x"])
            .to_string()
    });
    ex.status = match rng.below(7) {
        0 => None,
        1 => Some(0),
        2 => Some(200),
        3 => Some(302),
        4 => Some(404),
        5 => Some(503),
        _ => Some(u16::MAX),
    };
    ex.response_headers = headers(rng);
    ex.request_bytes = rng.opt_number();
    ex.response_bytes = rng.opt_number();
    ex.start_ns = rng.number();
    ex.end_ns = if rng.below(4) == 0 {
        rng.number()
    } else {
        ex.start_ns.saturating_add(rng.number() % 10_000_000_000)
    };
    ex.source_address = rng.coin().then(|| rng.pick(ADDRESSES).to_string());
    ex.destination_address = rng.coin().then(|| rng.pick(ADDRESSES).to_string());
    ex.source_peer = peer(rng);
    ex.destination_peer = peer(rng);
    ex.peer_identity = match rng.below(3) {
        0 => None,
        1 => Some(rng.pick(IDENTITIES).to_string()),
        _ => rng.opt_string(),
    };
    if rng.below(4) == 0 {
        ex.request_id = rng.opt_string();
    }
    ex.allowlist = allowlist(rng);
    ex.mirror = mirror(rng);
    ex.response = response(rng);
    ex.response_flags = match rng.below(4) {
        0 => 0,
        1 => 1 << rng.below(29),
        2 => rng.next() & ((1 << 29) - 1),
        _ => rng.next(),
    };
    ex.response_code_details = match rng.below(4) {
        0 => None,
        1 => Some("downstream_remote_disconnect".to_string()),
        _ => rng.opt_string(),
    };
    ex
}

const ROUNDS: usize = 3000;

#[test]
fn records_are_written_byte_for_byte_as_before() {
    let policies: Vec<AuditPolicy> = POLICIES
        .iter()
        .map(|p| AuditPolicy::from_json(p.as_bytes()).unwrap())
        .collect();
    let mut rng = Rng(19);
    for round in 0..ROUNDS {
        let pairs = request_pairs(&mut rng);
        let head = RequestHead::from_pairs(pairs.clone());
        let ex = exchange(&mut rng, pairs);
        let (allow, mirror, response) =
            (ex.allowlist.clone(), ex.mirror.clone(), ex.response.clone());
        let record = AuditRecord::build(ex, &policies[round % policies.len()]);

        let mut old = String::new();
        write_ocsf(&record, &mut old);
        let new = record.to_json_line(AuditFormat::Ocsf);
        assert_eq!(new, old, "OCSF, round {round}: {record:?}");
        assert!(
            serde_json::from_str::<serde_json::Value>(&new).is_ok(),
            "{new}"
        );

        let mut old = String::new();
        write_ecs(&record, &mut old);
        let new = record.to_json_line(AuditFormat::Ecs);
        assert_eq!(new, old, "ECS, round {round}: {record:?}");
        assert!(
            serde_json::from_str::<serde_json::Value>(&new).is_ok(),
            "{new}"
        );

        let [entry] =
            entries_with_response(&head, allow.as_ref(), mirror.as_ref(), response.as_ref());
        let old =
            super::entries_with_response(&head, allow.as_ref(), mirror.as_ref(), response.as_ref());
        assert_eq!(
            String::from_utf8(entry.bytes).unwrap(),
            String::from_utf8(old).unwrap(),
            "verdict entry, round {round}: {head:?}"
        );

        let mut old = String::new();
        write_verdict(
            &mut old,
            head.method(),
            allow.as_ref(),
            mirror.as_ref(),
            None,
        );
        let new = verdict_entry(head.method(), allow.as_ref(), mirror.as_ref());
        assert_eq!(
            String::from_utf8(new.bytes).unwrap(),
            old,
            "verdict, round {round}"
        );

        let mut old = String::new();
        write_request(
            &mut old,
            head.method(),
            head.scheme(),
            head.authority(),
            head.path(),
            head.header("user-agent"),
            head.request_id(),
        );
        let new = request_entry(
            head.method(),
            head.scheme(),
            head.authority(),
            head.path(),
            head.header("user-agent"),
            head.request_id(),
        );
        assert_eq!(
            String::from_utf8(new.bytes).unwrap(),
            old,
            "request, round {round}"
        );

        if let Some(r) = &response {
            assert_eq!(
                r.to_json_text(),
                response_json_text(r),
                "finding, round {round}"
            );
        }
    }
}

/// The generator reaches what it is meant to: each optional part both present and absent,
/// and strings that need escaping (so a pass above is not a pass over easy records only).
#[test]
fn generated_records_cover_present_absent_and_hostile() {
    let policy = AuditPolicy::from_json(POLICIES[1].as_bytes()).unwrap();
    let mut rng = Rng(19);
    let mut seen = [0usize; 12];
    for _ in 0..ROUNDS {
        let pairs = request_pairs(&mut rng);
        let ex = exchange(&mut rng, pairs);
        let record = AuditRecord::build(ex, &policy);
        let line = record.to_json_line(AuditFormat::Ocsf);
        let ex = record.exchange();
        for (i, hit) in [
            ex.allowlist.is_some(),
            ex.mirror.is_some(),
            ex.response.is_some(),
            record.trace_id().is_some(),
            record.status().is_some(),
            ex.peer_identity.is_some(),
            record.x_forwarded_for_raw().is_some(),
            !record.x_forwarded_for().is_empty(),
            activity_id(&ex.method) == 99,
            line.contains("\\u0000"),
            line.contains("\\\""),
            line.contains(&u64::MAX.to_string()),
        ]
        .into_iter()
        .enumerate()
        {
            seen[i] += usize::from(hit);
        }
    }
    for (i, n) in seen.iter().enumerate() {
        assert!(*n > 20 && *n < ROUNDS, "case {i}: {n} of {ROUNDS}");
    }
}
