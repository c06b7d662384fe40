//! Prints one OCSF record per line for a matrix of exchanges (every method, every allowlist
//! outcome, mirror reasons, decoding findings, upstream failures, client aborts, IPv6, missing
//! data, response findings), so
//! `make test` can check them all with `scripts/validate_ocsf.py` against the OCSF 1.7.0
//! `http_activity` JSON Schema.

use meshsight_policy::audit::{AuditPolicy, AuditRecord, HttpExchange, PeerWorkload};
use meshsight_policy::decision::{
    AllowlistDecision, AllowlistOutcome, MirrorDecision, MirrorReason,
};
use meshsight_policy::head::RequestHead;
use meshsight_policy::response::raw::RawResponses;
use meshsight_policy::response::ResponsePolicy;

fn headers(method: &str, path: &str) -> Vec<(String, String)> {
    [
        (":method", method),
        (":scheme", "http"),
        (":authority", "shop.example.com:8080"),
        (":path", path),
        ("user-agent", "curl/8.5.0"),
        ("x-request-id", "5b6f1c2e-0000-4000-8000-000000000001"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("x-forwarded-for", "203.0.113.7, 2001:db8::7, junk"),
        ("authorization", "Bearer secret"),
        ("content-type", "application/json"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect()
}

fn main() {
    let policies: Vec<AuditPolicy> = [
        &b"{}"[..],
        &br#"{"record_headers":["content-type","referer","x-custom"]}"#[..],
    ]
    .iter()
    .map(|json| {
        AuditPolicy::from_json(json).unwrap_or_else(|e| {
            eprintln!("bad sample policy: {e}");
            std::process::exit(1)
        })
    })
    .collect();
    let outcomes = [
        None,
        Some(AllowlistOutcome::Allowed),
        Some(AllowlistOutcome::Denied),
        Some(AllowlistOutcome::WouldDeny),
        Some(AllowlistOutcome::Malformed),
    ];
    let mirrors = [
        None,
        Some((true, MirrorReason::Signature, vec!["log4shell".to_string()])),
        Some((true, MirrorReason::Rule, vec![])),
        Some((false, MirrorReason::RateLimited, vec![])),
    ];
    let methods = [
        "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "CONNECT", "PROPFIND",
    ];
    let statuses = [Some(200), Some(403), Some(404), Some(503), None];
    let mut n = 0u64;
    for policy in &policies {
        for (mi, method) in methods.iter().enumerate() {
            for (oi, outcome) in outcomes.iter().enumerate() {
                let status = statuses[(mi + oi) % statuses.len()];
                let mirror = &mirrors[(mi + 2 * oi) % mirrors.len()];
                let mut ex =
                    HttpExchange::from_request_headers(headers(method, "/a/b?token=x&q=1"));
                ex.protocol = Some(if mi % 2 == 0 { "HTTP/1.1" } else { "HTTP/2" }.into());
                ex.status = status;
                ex.request_bytes = Some(100 + n);
                ex.response_bytes = status.map(|_| 200);
                ex.start_ns = 1_700_000_000_000_000_000 + n * 1_000_000;
                ex.end_ns = ex.start_ns + 3_000_000;
                ex.source_address = Some(
                    if n % 3 == 0 {
                        "[2001:db8::1]:443"
                    } else {
                        "10.1.2.3:51234"
                    }
                    .into(),
                );
                ex.destination_address = Some("127.0.0.1:10000".into());
                if n % 2 == 0 {
                    ex.source_peer = PeerWorkload {
                        namespace: Some("shop".into()),
                        workload: Some("web-v1".into()),
                        service: Some("web".into()),
                    };
                    ex.peer_identity = Some("spiffe://cluster.local/ns/shop/sa/web".into());
                }
                if n % 5 == 0 {
                    ex.request_headers
                        .retain(|(name, _)| name != "traceparent" && name != "x-request-id");
                    ex.request_id = None;
                    ex.authority = String::new();
                    ex.scheme = String::new();
                }
                ex.allowlist = outcome.map(|o| AllowlistDecision {
                    outcome: o,
                    rule: Some("r1".into()),
                    reason: Some("no_rule_matched".into()),
                });
                ex.mirror = mirror
                    .as_ref()
                    .map(|(mirrored, reason, sigs)| MirrorDecision {
                        mirrored: *mirrored,
                        target: Some("ids".into()),
                        reason: *reason,
                        rule: None,
                        signatures: sigs.clone(),
                        signature_rules: Vec::new(),
                        // Decoding findings, with and without a signature.
                        findings: if n % 3 == 1 {
                            vec!["multipart_malformed".into(), "body_encoding_broken".into()]
                        } else {
                            Vec::new()
                        },
                    });
                ex.response_flags = match status {
                    Some(503) => 1 << 5 | 1 << 15,
                    None => 1 << 14,
                    _ => 0,
                };
                ex.response_code_details = Some("via_upstream".into());
                println!("{}", AuditRecord::build(ex, policy).to_ocsf());
                n += 1;
            }
        }
    }
    n += response_samples(&policies[0]);
    eprintln!("{n} OCSF sample records");
}

/// Records carrying a response finding (succeeded with and without a request signature,
/// attempted without one), from the real response rules.
fn response_samples(policy: &AuditPolicy) -> u64 {
    let raw: RawResponses = meshsight_policy::ConfigError::parse_json(br#"{"all": true}"#)
        .unwrap_or_else(|e| {
            eprintln!("bad response section: {e}");
            std::process::exit(1)
        });
    let responses = ResponsePolicy::compile(&raw, Vec::new()).unwrap_or_else(|e| {
        eprintln!("bad response rules: {e}");
        std::process::exit(1)
    });
    let cases: [(&str, &str, &str, Option<&str>); 5] = [
        (
            "POST",
            "/pages/createpage-entervariables.action",
            "uid=0(root) gid=0(root) groups=0(root)",
            Some("confluence_ognl"),
        ),
        (
            "GET",
            "/latest/meta-data/iam/security-credentials/role",
            r#"{"AccessKeyId":"ASIAQWERTYUIOPASDFGH","SecretAccessKey":"abc/def","Token":"xyz"}"#,
            None,
        ),
        (
            "GET",
            "/download",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
            Some("path_traversal"),
        ),
        ("GET", "/pods", r#"{"kind":"PodList","items":[]}"#, None),
        (
            "POST",
            "/pages/createpage-entervariables.action",
            "<html>not found</html>",
            Some("confluence_ognl"),
        ),
    ];
    let mut n = 0;
    for (method, path, body, signature) in cases {
        let mut ex = HttpExchange::from_request_headers(headers(method, path));
        let head = RequestHead::from_pairs(headers(method, path));
        let mut scan = responses.scan_head(&head, 200, [("content-type", "text/plain")]);
        scan.push_body(body.as_bytes());
        ex.response = Some(responses.finish(&head, scan, signature.is_some()));
        ex.status = Some(200);
        ex.start_ns = 1_700_000_100_000_000_000 + n * 1_000_000;
        ex.end_ns = ex.start_ns + 2_000_000;
        ex.mirror = signature.map(|s| MirrorDecision {
            mirrored: true,
            target: Some("ids".into()),
            reason: MirrorReason::Signature,
            rule: None,
            signatures: vec![s.to_string()],
            signature_rules: Vec::new(),
            findings: Vec::new(),
        });
        println!("{}", AuditRecord::build(ex, policy).to_ocsf());
        n += 1;
    }
    n
}
