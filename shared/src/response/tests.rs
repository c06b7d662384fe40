//! Response rules against answers that show an attack worked, and look-alikes that must not
//! fire; the secret never appears in what leaves.

use super::raw::RawResponses;
use super::*;
use crate::head::RequestHead;
use crate::mirror::decode::inflate::{self, Coding};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn policy(json: &str) -> ResponsePolicy {
    let raw: RawResponses = crate::ConfigError::parse_json(json.as_bytes()).unwrap();
    ResponsePolicy::compile(&raw, Vec::new()).unwrap()
}

fn head(method: &str, authority: &str, path: &str) -> RequestHead {
    RequestHead::from_pairs(vec![
        (":method".into(), method.into()),
        (":authority".into(), authority.into()),
        (":path".into(), path.into()),
        ("x-request-id".into(), "req-1".into()),
    ])
}

fn verdict(p: &ResponsePolicy, h: &RequestHead, body: &str, hit: bool) -> ResponseVerdict {
    let headers = [("content-type", "application/json")];
    let mut scan = p.scan_head(h, 200, headers.iter().copied());
    scan.push_body(body.as_bytes());
    p.finish(h, scan, hit)
}

fn rules_hit(p: &ResponsePolicy, h: &RequestHead, body: &str) -> Vec<String> {
    verdict(p, h, body, false)
        .findings
        .into_iter()
        .map(|f| f.rule)
        .collect()
}

const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEYq1";
const AWS_TOKEN: &str = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDsecret";

fn imds_answer() -> String {
    format!(
        "{{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2026-12-07T10:00:00Z\",\n  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"ASIAQWERTYUIOPASDFGH\",\n  \"SecretAccessKey\" : \"{AWS_SECRET}\",\n  \"Token\" : \"{AWS_TOKEN}\",\n  \"Expiration\" : \"2026-12-07T16:00:00Z\"\n}}"
    )
}

const SA_JWT: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImFiYyJ9.eyJhdWQiOlsiaHR0cHM6Ly9rdWJlcm5ldGVzLmRlZmF1bHQuc3ZjIl0sImlzcyI6Imh0dHBzOi8va3ViZXJuZXRlcy5kZWZhdWx0LnN2YyIsInN1YiI6InN5c3RlbTpzZXJ2aWNlYWNjb3VudDpkZWZhdWx0OnJ1bm5lciJ9.c2lnbmF0dXJlc2lnbmF0dXJl";
const OTHER_JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

#[test]
fn builtin_response_pack_compiles_and_every_rule_names_a_technique() {
    let p = policy(r#"{"all": true}"#);
    assert_eq!(p.rules().len(), 11);
    for r in p.rules() {
        assert!(
            technique(&r.references).is_some(),
            "{} names no technique",
            r.id
        );
    }
}

#[test]
fn cloud_credentials_in_metadata_answers() {
    let p = policy("{}");
    let h = head(
        "GET",
        "169.254.169.254",
        "/latest/meta-data/iam/security-credentials/role",
    );
    assert!(p.wants(&h, false));
    let v = verdict(&p, &h, &imds_answer(), false);
    assert_eq!(v.outcome(), "succeeded");
    let f = v.findings.first().unwrap();
    assert_eq!(f.rule, "ms-resp-aws-imds-credentials");
    assert_eq!(f.technique.as_deref(), Some("T1552.005"));
    let s = f.secret.as_ref().unwrap();
    assert_eq!(s.location, "response_body");
    assert_eq!(s.sha256.len(), 12);

    let gcp = head(
        "GET",
        "metadata.google.internal",
        "/computeMetadata/v1/instance/service-accounts/default/token",
    );
    let body = r#"{"access_token":"ya29.c.b0AXv0zTsecretsecretsecret","expires_in":3599,"token_type":"Bearer"}"#;
    assert_eq!(rules_hit(&p, &gcp, body), ["ms-resp-gcp-metadata-token"]);

    let azure = head("GET", "169.254.169.254", "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/");
    let body = format!(
        r#"{{"access_token":"{OTHER_JWT}","client_id":"1","expires_in":"3599","expires_on":"1506484173","not_before":"1506480273","resource":"https://management.azure.com/","token_type":"Bearer"}}"#
    );
    assert_eq!(rules_hit(&p, &azure, &body), ["ms-resp-azure-imds-token"]);
}

#[test]
fn look_alikes_do_not_fire() {
    let p = policy(r#"{"all": true}"#);
    let h = head("GET", "api.example.com", "/v1/session");
    // JSON with token fields, an OAuth answer of an ordinary token endpoint, a JWT that is not
    // a service-account token.
    for body in [
        r#"{"token":"abc","csrf_token":"def","next_page_token":"x"}"#.to_string(),
        format!(r#"{{"access_token":"{OTHER_JWT}","token_type":"Bearer","expires_in":3600}}"#),
        format!(r#"{{"id_token":"{OTHER_JWT}"}}"#),
        // Documentation pages about /etc/passwd and the id command.
        "<html><p>Each line of /etc/passwd reads like</p><pre>root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nbin:x:2:2:bin:/bin:/usr/sbin/nologin\nsys:x:3:3:sys:/dev:/usr/sbin/nologin</pre></html>".to_string(),
        "The file /etc/passwd holds root:x:0:0:root:/root:/bin/bash and similar lines.".to_string(),
        // The AWS documentation's example keys.
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_string(),
        // A public key and a certificate are not private keys.
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----".to_string(),
        "docs: a key file starts with -----BEGIN PRIVATE KEY----- and ends with -----END PRIVATE KEY-----".to_string(),
        // A pod list from the API server (not the kubelet's /pods).
        r#"{"kind":"PodList","apiVersion":"v1","items":[]}"#.to_string(),
    ] {
        assert!(rules_hit(&p, &h, &body).is_empty(), "fired on {body}");
    }
    let api = head(
        "GET",
        "kubernetes.default.svc",
        "/api/v1/namespaces/default/pods",
    );
    assert!(rules_hit(
        &p,
        &api,
        r#"{"kind":"PodList","apiVersion":"v1","items":[]}"#
    )
    .is_empty());
}

#[test]
fn credentials_in_files_keys_and_tokens() {
    let p = policy(r#"{"all": true}"#);
    let h = head("GET", "app", "/download");
    let file = "[default]\naws_access_key_id = AKIAQWERTYUIOPASDFGH\naws_secret_access_key = Zx9secretsecretsecretsecretsecretsecret12\n";
    assert_eq!(rules_hit(&p, &h, file), ["ms-resp-aws-credentials-file"]);
    let env = "PATH=/usr/bin\nHOSTNAME=web-1\nAWS_ACCESS_KEY_ID=AKIAQWERTYUIOPASDFGH\nAWS_SECRET_ACCESS_KEY=Zx9secretsecretsecretsecretsecretsecret12\n";
    assert_eq!(rules_hit(&p, &h, env), ["ms-resp-aws-credentials-file"]);
    let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAsecretkeymaterial\n-----END RSA PRIVATE KEY-----\n";
    assert_eq!(rules_hit(&p, &h, pem), ["ms-resp-pem-private-key"]);
    let in_json = r#"{"private_key":"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC\n-----END PRIVATE KEY-----\n"}"#;
    assert_eq!(rules_hit(&p, &h, in_json), ["ms-resp-pem-private-key"]);
    assert_eq!(
        rules_hit(&p, &h, SA_JWT),
        ["ms-resp-k8s-service-account-jwt"]
    );
    let v = verdict(&p, &h, SA_JWT, false);
    assert_eq!(v.findings[0].technique.as_deref(), Some("T1552.001"));
    assert_eq!(v.findings[0].secret.as_ref().unwrap().kind, "jwt");
}

#[test]
fn shell_output_and_container_apis() {
    let p = policy(r#"{"all": true}"#);
    let h = head("POST", "wiki", "/pages/createpage-entervariables.action");
    let v = verdict(
        &p,
        &h,
        "<div>uid=0(root) gid=0(root) groups=0(root)\n</div>",
        true,
    );
    let ids: Vec<&str> = v.findings.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(ids, ["ms-resp-shell-id-output", "ms-resp-shell-root-id"]);
    assert_eq!(v.findings[0].technique.as_deref(), Some("T1059"));
    assert_eq!(v.outcome(), "succeeded");
    // A request signature met a response finding: Critical, whatever the rule's severity.
    assert_eq!(v.severity(), Some(Severity::Critical));
    assert_eq!(
        verdict(&p, &h, "uid=0(root) gid=0(root) groups=0(root)", false).severity(),
        Some(Severity::High)
    );
    let passwd = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nbin:x:2:2:bin:/bin:/usr/sbin/nologin\nsys:x:3:3:sys:/dev:/usr/sbin/nologin\n";
    assert_eq!(rules_hit(&p, &h, passwd), ["ms-resp-etc-passwd"]);
    let alpine = "root:x:0:0:root:/root:/bin/ash\nbin:x:1:1:bin:/bin:/sbin/nologin\ndaemon:x:2:2:daemon:/sbin:/sbin/nologin\nadm:x:3:4:adm:/var/adm:/sbin/nologin\n";
    assert_eq!(rules_hit(&p, &h, alpine), ["ms-resp-etc-passwd"]);
    let kubelet = head("GET", "10.0.0.1:10250", "/pods");
    assert_eq!(
        rules_hit(
            &p,
            &kubelet,
            r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[{"metadata":{"name":"a"}}]}"#
        ),
        ["ms-resp-kubelet-pod-list"]
    );
    let docker = head("GET", "127.0.0.1:2375", "/v1.41/containers/json");
    assert_eq!(
        rules_hit(
            &p,
            &docker,
            r#"[{"Id":"8dfafdbc3a40","Names":["/boring_feynman"],"Image":"ubuntu:latest","ImageID":"sha256:d74508fb6632","Command":"echo 1"}]"#
        ),
        ["ms-resp-docker-container-list"]
    );
    // No finding but a request signature: the attempt is recorded as attempted.
    let v = verdict(&p, &h, "<html>Page not found</html>", true);
    assert_eq!(v.outcome(), "attempted");
    assert_eq!(v.severity(), None);
}

#[test]
fn when_a_response_is_scanned() {
    let p = policy(r#"{"paths": ["/internal/"]}"#);
    assert!(p.wants(&head("GET", "169.254.169.254", "/latest/"), false));
    assert!(p.wants(&head("GET", "metadata.google.internal:80", "/"), false));
    assert!(p.wants(&head("GET", "app", "/internal/x"), false));
    assert!(p.wants(&head("GET", "app", "/x"), true));
    assert!(!p.wants(&head("GET", "app", "/x"), false));
    let p = policy(r#"{"after_signature": false, "hosts": []}"#);
    assert!(!p.wants(&head("GET", "169.254.169.254", "/x"), true));
    let p = policy(r#"{"all": true, "hosts": []}"#);
    assert!(p.wants(&head("GET", "app", "/x"), false));
    // Every rule switched off: nothing is ever scanned.
    let ids: Vec<String> = policy("{}")
        .rules()
        .iter()
        .map(|r| format!("\"{}\": false", r.id))
        .collect();
    let p = policy(&format!(
        r#"{{"all": true, "rules": {{{}}}}}"#,
        ids.join(",")
    ));
    assert!(!p.wants(&head("GET", "169.254.169.254", "/x"), true));
}

#[test]
fn errors_name_their_path() {
    let raw: RawResponses =
        crate::ConfigError::parse_json(br#"{"rules": {"nope": false}}"#).unwrap();
    let e = ResponsePolicy::compile(&raw, Vec::new()).unwrap_err();
    assert_eq!(e.path, "responses.rules.nope");
    let raw: RawResponses = crate::ConfigError::parse_json(br#"{"paths": ["x"]}"#).unwrap();
    assert_eq!(
        ResponsePolicy::compile(&raw, Vec::new()).unwrap_err().path,
        "responses.paths[0]"
    );
    // A rule cannot look at both the request and the response.
    let pack = r#"{"pack":"p","rules":[{"id":"x","name":"x","category":"c","severity":"low","in":["path","response_body"],"match":{"any":["a"]}}]}"#;
    assert_eq!(
        Pack::from_json(pack.as_bytes()).unwrap_err().path,
        "rules[0].in"
    );
}

#[test]
fn the_body_is_bounded() {
    let p = policy(r#"{"all": true, "max_response_bytes": 16}"#);
    let h = head("GET", "app", "/");
    let mut scan = p.scan_head(&h, 200, std::iter::empty());
    scan.push_body(b"0123456789");
    assert_eq!(scan.wants_body(), 6);
    scan.push_body(b"0123456789");
    assert_eq!(scan.wants_body(), 0);
    // The secret lies past the bound: nothing is found.
    scan.push_body(b"uid=0(root) gid=0(root)");
    assert!(p.finish(&h, scan, false).findings.is_empty());
}

#[test]
fn policy_packs_add_response_rules_and_status_rules() {
    let json = r#"{"targets":{"ids":{"cluster":"c","delivery":"dispatch"}},
        "signatures":{"packs":[{"pack":"mine","rules":[
          {"id":"leak-500","name":"stack trace","category":"stack_trace","severity":"medium","references":["ATT&CK T1592"],
           "in":["status"],"transforms":[],"match":{"any":["500"]}},
          {"id":"server-hdr","name":"debug header","category":"debug","severity":"low","references":["ATT&CK T1592"],
           "in":["response_headers"],"headers":["x-debug"],"match":{"any":["true"]}}]}]},
        "responses":{"all":true,"builtin":false}}"#;
    let m = crate::mirror::MirrorPolicy::from_json(json.as_bytes()).unwrap();
    // Response rules never join the request set.
    assert!(m.signature_rule_ids().iter().all(|id| id != "leak-500"));
    let p = m.responses().unwrap();
    let h = head("GET", "app", "/");
    let scan = p.scan_head(&h, 500, [("x-debug", "TRUE")].iter().copied());
    let v = p.finish(&h, scan, false);
    let got: Vec<(&str, &str)> = v
        .findings
        .iter()
        .map(|f| (f.rule.as_str(), f.location))
        .collect();
    assert_eq!(
        got,
        [("leak-500", "status"), ("server-hdr", "response_headers")]
    );
}

/// Every 12-byte window of the secret, so that no part of it survives either.
fn assert_absent(out: &[u8], secret: &str) {
    for w in secret.as_bytes().windows(12) {
        assert!(
            !out.windows(w.len()).any(|o| o == w),
            "{:?} leaked in {}",
            String::from_utf8_lossy(w),
            String::from_utf8_lossy(out)
        );
    }
}

#[test]
fn the_secret_never_leaves() {
    let p = policy(r#"{"all": true}"#);
    let h = head(
        "GET",
        "169.254.169.254",
        "/latest/meta-data/iam/security-credentials/role",
    );
    let pem_material = "MIIEpAIBAAKCAQEAsecretkeymaterialsecretkeymaterial";
    for (body, secrets) in [
        (imds_answer(), vec![AWS_SECRET, AWS_TOKEN, "ASIAQWERTYUIOPASDFGH"]),
        (format!("x\n-----BEGIN RSA PRIVATE KEY-----\n{pem_material}\n-----END RSA PRIVATE KEY-----\n"), vec![pem_material]),
        (format!(r#"{{"token":"{SA_JWT}"}}"#), vec![SA_JWT]),
        (format!("AWS_ACCESS_KEY_ID=AKIAQWERTYUIOPASDFGH\nAWS_SECRET_ACCESS_KEY={AWS_SECRET}\n"), vec![AWS_SECRET, "AKIAQWERTYUIOPASDFGH"]),
    ] {
        let v = verdict(&p, &h, &body, true);
        assert_eq!(v.outcome(), "succeeded", "{body}");
        let record = v.to_json().to_string();
        for s in &secrets {
            assert_absent(record.as_bytes(), s);
            assert_absent(&v.excerpt, s);
        }
        assert!(String::from_utf8_lossy(&v.excerpt).contains("<masked "));
    }
    // A secret cut by the bound is masked to the end of what was read.
    let cut = format!("{{\"SecretAccessKey\" : \"{AWS_SECRET}");
    let masked = secret::mask(&cut.as_bytes()[..cut.len() - 4]);
    assert_absent(&masked, &AWS_SECRET[..AWS_SECRET.len() - 4]);
}

#[test]
fn sha256_known_answers() {
    let hex = |d: [u8; 32]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert_eq!(
        hex(secret::sha256(b"")),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        hex(secret::sha256(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let long = [b'a'; 1000];
    assert_eq!(
        hex(secret::sha256(&long)),
        "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"
    );
}

#[test]
fn the_finding_reaches_the_record_and_the_verdict_without_the_secret() {
    use crate::audit::{verdict, AuditFormat, AuditPolicy, AuditRecord, HttpExchange};
    use crate::decision::{MirrorDecision, MirrorReason};
    let p = policy(r#"{"all": true}"#);
    let h = head("POST", "wiki", "/pages/createpage-entervariables.action");
    let body = format!("uid=0(root) gid=0(root) groups=0(root)\n{}", imds_answer());
    let v = verdict(&p, &h, &body, true);
    let mirror = MirrorDecision {
        mirrored: true,
        reason: MirrorReason::Signature,
        rule: None,
        target: Some("ids".into()),
        signatures: vec!["confluence_ognl".into()],
        signature_rules: vec!["ms-confluence-26084-ognl-marker".into()],
        findings: Vec::new(),
    };
    let mut ex = HttpExchange::from_request_headers(h.to_pairs());
    ex.status = Some(200);
    ex.mirror = Some(mirror.clone());
    ex.response = Some(v.clone());
    let audit = AuditPolicy::from_json(b"{}").unwrap();
    let record = AuditRecord::build(ex, &audit);
    let line = record.to_json_line(AuditFormat::Ocsf);
    let o: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(o["severity_id"], 5);
    assert_eq!(o["severity"], "Critical");
    assert_eq!(o["is_alert"], true);
    assert_eq!(o["risk_level_id"], 4);
    assert!(o["risk_details"]
        .as_str()
        .unwrap()
        .starts_with("succeeded: "));
    let techniques: Vec<&str> = o["attacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["technique"]["uid"].as_str().unwrap())
        .collect();
    assert_eq!(techniques, ["T1190", "T1552.005", "T1059"]);
    assert_eq!(
        o["unmapped"]["meshsight"]["response"]["outcome"],
        "succeeded"
    );
    let ecs = record.to_json_line(AuditFormat::Ecs);
    // The access-log verdict fragment carries the same.
    let [entry] = verdict::entries_with_response(&h, None, Some(&mirror), Some(&v));
    let text = String::from_utf8(entry.bytes).unwrap();
    let fragment: serde_json::Value = serde_json::from_str(&format!("{{{text}}}}}")).unwrap();
    assert_eq!(fragment["severity_id"], 5);
    assert_eq!(fragment["risk_level"], "Critical");
    assert_eq!(fragment["attacks"][1]["technique"]["uid"], "T1552.005");
    assert_eq!(
        fragment["unmapped"]["meshsight"]["response"]["findings"][0]["rule"],
        "ms-resp-aws-imds-credentials"
    );
    for out in [&line, &ecs, &text] {
        for s in [AWS_SECRET, AWS_TOKEN, "ASIAQWERTYUIOPASDFGH"] {
            assert_absent(out.as_bytes(), s);
        }
    }
    // An attempt that did not work: Medium risk, `attempted`, the request's own severity.
    let failed = verdict(&p, &h, "<html>error</html>", true);
    let [entry] = verdict::entries_with_response(&h, None, Some(&mirror), Some(&failed));
    let text = String::from_utf8(entry.bytes).unwrap();
    let fragment: serde_json::Value = serde_json::from_str(&format!("{{{text}}}}}")).unwrap();
    assert_eq!(fragment["severity_id"], 4);
    assert_eq!(fragment["risk_level_id"], 2);
    assert_eq!(fragment["risk_details"], "attempted: no response finding");
}

#[test]
fn the_copy_links_by_request_id_and_carries_no_secret() {
    let json = r#"{"targets":{"ids":{"cluster":"ids_cluster","delivery":"dispatch"}},
        "responses":{}}"#;
    let m = crate::mirror::MirrorPolicy::from_json(json.as_bytes()).unwrap();
    let p = m.responses().unwrap();
    let h = head(
        "GET",
        "169.254.169.254",
        "/latest/meta-data/iam/security-credentials/role",
    );
    let jwt_header = format!("Bearer {SA_JWT}");
    let headers = [
        ("content-type", "application/json"),
        ("set-cookie", "session=s3cr3t-cookie-value"),
        ("x-debug-token", jwt_header.as_str()),
    ];
    let mut scan = p.scan_head(&h, 200, headers.iter().copied());
    scan.push_body(imds_answer().as_bytes());
    let v = p.finish(&h, scan, false);
    let copy = copy::response_copy(&m, &h, &v).unwrap();
    assert_eq!(copy.target, 0);
    let header = |n: &str| {
        copy.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("x-meshsight-mirror-request-id"), Some("req-1"));
    assert_eq!(header(":path"), Some(copy::RESPONSE_COPY_PATH));
    assert_eq!(
        header("x-meshsight-mirror-response-outcome"),
        Some("succeeded")
    );
    let body: serde_json::Value = serde_json::from_slice(&copy.body).unwrap();
    assert_eq!(body["request_id"], "req-1");
    // The header's service-account token first (the head is scanned first), then the body's.
    assert_eq!(body["response"]["findings"][0]["technique"], "T1552.001");
    assert_eq!(
        body["response"]["findings"][0]["secret"]["where"],
        "response_headers.x-debug-token"
    );
    assert_eq!(body["response"]["findings"][1]["technique"], "T1552.005");
    assert!(body["excerpt"]
        .as_str()
        .unwrap()
        .contains("\"Code\" : \"Success\""));
    let mut everything = copy.body.clone();
    for (n, v) in &copy.headers {
        everything.extend_from_slice(n.as_bytes());
        everything.extend_from_slice(v.as_bytes());
    }
    for s in [
        AWS_SECRET,
        AWS_TOKEN,
        "ASIAQWERTYUIOPASDFGH",
        SA_JWT,
        "s3cr3t-cookie-value",
    ] {
        assert_absent(&everything, s);
    }
}

// ---- the copy within the target's rate cap ----

fn signature_hit_selection() -> crate::mirror::Selection {
    crate::mirror::Selection {
        target: Some(0),
        reason: crate::decision::MirrorReason::Signature,
        rule: None,
        signatures: vec!["cloud_metadata".into()],
        signature_rules: Vec::new(),
    }
}

#[test]
fn a_response_copy_takes_from_the_request_copies_rate_budget() {
    use crate::mirror::copy::{Clock, MirrorWorker};
    let json = r#"{"targets":{"ids":{"cluster":"s","delivery":"dispatch","max_rps":1,"burst":1}},
        "responses":{}}"#;
    let m = crate::mirror::MirrorPolicy::from_json(json.as_bytes()).unwrap();
    let p = m.responses().unwrap();
    let h = head(
        "GET",
        "169.254.169.254",
        "/latest/meta-data/iam/security-credentials/role",
    );
    let mut worker = MirrorWorker::new(&m);
    let t0 = 7_000_000_000;
    // The request's copy takes the one token; its response's copy finds the bucket empty.
    let d = worker
        .limiter
        .decide(&m, signature_hit_selection(), &mut Clock::at(t0));
    assert!(d.mirrored);
    let mut v = verdict(p, &h, &imds_answer(), true);
    let offered = copy::offer_response_copy(&m, &mut worker, &h, &mut v, &mut Clock::at(t0));
    assert_eq!(offered, None);
    assert_eq!(v.copy, ResponseCopy::RateLimited);
    assert_eq!(worker.deliveries.queued(0), 0);
    // The record says so as the request's decision does.
    let record = v.to_json();
    assert_eq!(record["mirrored"], false);
    assert_eq!(record["reason"], "rate_limited");
    // A second later the bucket has a token: the response's copy goes, and the next
    // request's copy is the one refused.
    let t1 = t0 + 1_000_000_000;
    let mut v = verdict(p, &h, &imds_answer(), true);
    let offered = copy::offer_response_copy(&m, &mut worker, &h, &mut v, &mut Clock::at(t1));
    assert_eq!(offered.map(|o| o.queued), Some(Ok(true)));
    assert_eq!(v.copy, ResponseCopy::Mirrored);
    assert_eq!(v.to_json()["mirrored"], true);
    assert!(v.to_json().get("reason").is_none());
    assert_eq!(worker.deliveries.queued(0), 1);
    let d = worker
        .limiter
        .decide(&m, signature_hit_selection(), &mut Clock::at(t1));
    assert_eq!(
        (d.mirrored, d.reason),
        (false, crate::decision::MirrorReason::RateLimited)
    );
}

#[test]
fn a_clean_response_takes_no_token_and_reads_no_clock() {
    use crate::mirror::copy::{Clock, MirrorWorker};
    use std::cell::Cell;
    let json = r#"{"targets":{"ids":{"cluster":"s","delivery":"dispatch","max_rps":1,"burst":1}},
        "responses":{"all":true}}"#;
    let m = crate::mirror::MirrorPolicy::from_json(json.as_bytes()).unwrap();
    let p = m.responses().unwrap();
    let h = head("GET", "shop", "/api/v1/products/1");
    let mut worker = MirrorWorker::new(&m);
    let reads = Cell::new(0);
    let read = || {
        reads.set(reads.get() + 1);
        1
    };
    let mut v = verdict(p, &h, r#"{"id":1}"#, false);
    assert_eq!(v.outcome(), "none");
    let offered =
        copy::offer_response_copy(&m, &mut worker, &h, &mut v, &mut Clock::reading(&read));
    assert_eq!(
        (offered, v.copy, reads.get()),
        (None, ResponseCopy::None, 0)
    );
    assert!(v.to_json().get("mirrored").is_none());
    // The token is still there for a request's copy.
    assert!(worker.limiter.admit(0, 1));
}

// ---- compressed responses ----

/// A gzip member of `data` (no file name, unknown OS), with its trailer.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    out.extend(miniz_oxide::deflate::compress_to_vec(data, 6));
    out.extend([0u8; 8]);
    out
}

fn verdict_encoded(
    p: &ResponsePolicy,
    h: &RequestHead,
    encoding: Option<&str>,
    body: &[u8],
) -> ResponseVerdict {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(e) = encoding {
        headers.push(("content-encoding", e));
    }
    let mut scan = p.scan_head(h, 200, headers.iter().copied());
    // In chunks, as the proxy hands them over.
    for chunk in body.chunks(100) {
        scan.push_body(chunk);
    }
    p.finish(h, scan, false)
}

fn imds_head() -> RequestHead {
    head(
        "GET",
        "169.254.169.254",
        "/latest/meta-data/iam/security-credentials/role",
    )
}

#[test]
fn gzip_metadata_credentials_are_found_in_the_inflated_body() {
    let p = policy("{}");
    let h = imds_head();
    let plain = verdict(&p, &h, &imds_answer(), false);
    let zlib = miniz_oxide::deflate::compress_to_vec_zlib(imds_answer().as_bytes(), 6);
    for (encoding, body) in [
        ("gzip", gzip(imds_answer().as_bytes())),
        ("x-gzip", gzip(imds_answer().as_bytes())),
        ("deflate", zlib),
    ] {
        let v = verdict_encoded(&p, &h, Some(encoding), &body);
        assert_eq!(v.outcome(), "succeeded", "{encoding}");
        assert_eq!(v.decoding, None);
        let f = &v.findings[0];
        assert_eq!(f.rule, "ms-resp-aws-imds-credentials");
        assert_eq!(f.location, "response_body.inflated");
        let s = f.secret.as_ref().unwrap();
        assert_eq!(s.location, "response_body.inflated");
        // The same secret, the same short hash as when it came uncompressed.
        let before = plain.findings[0].secret.as_ref().unwrap();
        assert_eq!((s.kind, &s.sha256), (before.kind, &before.sha256));
        // The copy keeps the body as sent, but a secret in compressed bytes cannot be masked:
        // the excerpt is left out. Nothing of the secret reaches the record.
        assert!(v.excerpt.is_empty());
        let record = v.to_json().to_string();
        assert_eq!(
            v.to_json()["findings"][0]["where"],
            "response_body.inflated"
        );
        for s in [AWS_SECRET, AWS_TOKEN, "ASIAQWERTYUIOPASDFGH"] {
            assert_absent(record.as_bytes(), s);
        }
    }
    // Shell output carries no secret: the copy's excerpt is the body as sent (compressed).
    let wiki = head("POST", "wiki", "/pages/x.action");
    let body = gzip(b"<div>uid=0(root) gid=0(root) groups=0(root)</div>");
    let mut scan = p.scan_head(&wiki, 200, [("content-encoding", "gzip")]);
    scan.push_body(&body);
    let v = p.finish(&wiki, scan, true);
    assert_eq!(v.findings[0].rule, "ms-resp-shell-id-output");
    assert_eq!(v.findings[0].location, "response_body.inflated");
    assert_eq!(v.excerpt, body);
}

#[test]
fn only_a_compressed_response_is_inflated() {
    let p = policy(r#"{"all": true}"#);
    let h = imds_head();
    // Ordinary JSON, compressed: nothing found, nothing wrong.
    let ordinary = br#"{"items":[{"id":1,"token":"abc","name":"widget"}],"next_page_token":"x"}"#;
    let v = verdict_encoded(&p, &h, Some("gzip"), &gzip(ordinary));
    assert_eq!((v.outcome(), v.decoding), ("none", None));
    assert!(v.to_json().get("decoding").is_none());
    // Gzip bytes without `content-encoding` are read as sent (the client will not inflate
    // them either), and a coding the scan does not undo is read as sent too.
    let packed = gzip(imds_answer().as_bytes());
    for encoding in [None, Some("br"), Some("identity")] {
        let v = verdict_encoded(&p, &h, encoding, &packed);
        assert!(v.findings.is_empty(), "{encoding:?}");
        assert_eq!(v.decoding, None);
    }
    // A compressed empty body (a HEAD, a 304) has no stream to judge.
    let v = verdict_encoded(&p, &h, Some("gzip"), b"");
    assert_eq!(v.decoding, None);
}

#[test]
fn a_gzip_bomb_costs_at_most_the_budget() {
    let p = policy("{}");
    let h = imds_head();
    // 1 MiB of spaces, then the credentials: about 1 KiB compressed, a 1000:1 bomb.
    let mut bomb_body = vec![b' '; 1 << 20];
    bomb_body.extend_from_slice(imds_answer().as_bytes());
    let bomb = gzip(&bomb_body);
    assert!(bomb.len() < 1400, "{}", bomb.len());
    let v = verdict_encoded(&p, &h, Some("gzip"), &bomb);
    // Inflation stopped at the 16 KiB budget, long before the credentials.
    assert!(v.findings.is_empty());
    assert_eq!(v.decoding, Some("body_inflate_bomb"));
    assert_eq!(v.to_json()["decoding"], "body_inflate_bomb");
    // What inflates within the budget is scanned: credentials after 15 KiB of padding.
    let mut near = vec![b' '; 15 * 1024];
    near.extend_from_slice(imds_answer().as_bytes());
    assert!(near.len() < p.max_response_bytes());
    let v = verdict_encoded(&p, &h, Some("gzip"), &gzip(&near));
    assert_eq!(v.outcome(), "succeeded");
    // The inflater itself never writes past the budget it is given.
    let out = inflate::inflate(Coding::Gzip, &bomb, p.max_response_bytes());
    assert_eq!(out.bytes.len(), 16 * 1024);
}

#[test]
fn a_broken_or_truncated_stream_is_named_and_never_fails_the_response() {
    let p = policy(r#"{"all": true}"#);
    let h = head("POST", "wiki", "/pages/x.action");
    let filler: String = (0..300u32)
        .map(|i| format!("<p>line {i}: {:x}</p>", i.wrapping_mul(2_654_435_761)))
        .collect();
    let text = format!("<div>uid=0(root) gid=0(root) groups=0(root)</div>{filler}");
    let whole = gzip(text.as_bytes());
    // The response ended inside the stream: named; what inflated before the cut is scanned.
    let cut = &whole[..whole.len() / 2];
    let v = verdict_encoded(&p, &h, Some("gzip"), cut);
    assert_eq!(v.decoding, Some("body_encoding_broken"));
    assert_eq!(v.findings[0].rule, "ms-resp-shell-id-output");
    assert_eq!(v.to_json()["decoding"], "body_encoding_broken");
    // A body cut by `max_response_bytes` is the bound, not a fault.
    let bounded = policy(r#"{"all": true, "max_response_bytes": 64}"#);
    let v = verdict_encoded(&bounded, &h, Some("gzip"), &whole);
    assert_eq!(v.decoding, None);
    // Not a gzip stream at all: named, and the body as sent is scanned.
    let v = verdict_encoded(
        &p,
        &h,
        Some("gzip"),
        b"uid=0(root) gid=0(root) groups=0(root) sent plain",
    );
    assert_eq!(v.decoding, Some("body_encoding_broken"));
    assert_eq!(v.findings[0].location, "response_body");
    // A bad block after a good start: named, the good start scanned.
    let mut bad = whole.clone();
    let at = bad.len() - 20;
    bad[at..].fill(0xff);
    let v = verdict_encoded(&p, &h, Some("gzip"), &bad);
    assert!(v.decoding.is_some());
    assert_eq!(v.findings[0].rule, "ms-resp-shell-id-output");
}
