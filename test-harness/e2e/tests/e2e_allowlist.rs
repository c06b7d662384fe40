#![cfg(feature = "e2e")]
//! The allowlist filter in the real Envoy (`envoy-config/e2e/allowlist*.yaml`): allowed requests
//! reach the echo upstream unchanged (or rewritten when the policy asks), denied ones get the
//! 403 and never reach it, malformed targets get 400, monitor mode lets everything through, the
//! decision lands in filter state (read back through an access log), the counters show in
//! Envoy's stats, a bad policy stops Envoy with the JSON path in its log, and a policy update
//! through a file-based LDS source takes effect without a restart or a failed request.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use meshsight_bench::synthetic::{synthetic_hit, synthetic_policy_json};
use meshsight_rig::{send, try_send, EchoUpstream, Envoy, HttpRequest, HttpResponse, RigError};

const POLICY: &str = r#"{
  "rules": [
    {"name": "api-read", "methods": ["GET", "HEAD"], "paths": ["/api/**"]},
    {"name": "api-write", "methods": ["POST"], "hosts": ["api.example.com"], "paths": ["/api/{version}/orders"]},
    {"name": "private", "paths": ["/private"]},
    {"name": "ab", "paths": ["/a/b"]},
    {"name": "app1-admin", "paths": ["/app1/admin"]},
    {"name": "public-data", "paths": ["/public/data/xyz"]},
    {"name": "abc", "paths": ["/some/abc"]},
    {"name": "example-host", "hosts": ["example.com"], "paths": ["/by-host"]},
    {"name": "search", "paths": ["/search"], "query": [{"name": "q", "present": true}, {"name": "debug", "absent": true}]},
    {"name": "loopback", "paths": ["/loopback/**"], "sources": {"cidrs": ["127.0.0.0/8"]}},
    {"name": "office", "paths": ["/office/**"], "sources": {"cidrs": ["10.0.0.0/8"]}},
    {"name": "mesh-peer", "paths": ["/peer/**"], "sources": {"namespaces": ["shop"]}}
  ]
}"#;

fn start(policy: &str, upstream: &EchoUpstream) -> Envoy {
    Envoy::builder("envoy-config/e2e/allowlist.yaml")
        .upstream(upstream)
        .var("ALLOWLIST_CONFIG", policy)
        // The access log (read back for the decisions) is flushed every 10 s by default.
        .arg("--file-flush-interval-msec")
        .arg("50")
        .start()
        .unwrap_or_else(|err| panic!("Envoy must start: {err}"))
}

fn get(envoy: &Envoy, target: &str, host: &str) -> HttpResponse {
    send(envoy.port(), &HttpRequest::get(target).header("host", host))
}

/// The decision JSON recorded for the `nth` request (1-based) whose `:path` was `target`, from
/// the access log (`<path> <status> <decision JSON>` per request), waiting for it to be written.
fn decision_for(envoy: &Envoy, nth: usize, target: &str) -> serde_json::Value {
    let path = envoy.run_dir().join("access.log");
    let prefix = format!("{target} ");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(&prefix)).collect();
        if let Some(line) = lines.get(nth - 1) {
            let json = line.splitn(3, ' ').nth(2).unwrap_or("");
            return serde_json::from_str(json).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
        assert!(
            Instant::now() < deadline,
            "no access log line #{nth} for {target}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Counts one more request for `target`; returns how many there were so far.
fn occurrence(seen: &mut HashMap<String, usize>, target: &str) -> usize {
    let n = seen.entry(target.to_string()).or_default();
    *n += 1;
    *n
}

fn stat(envoy: &Envoy, name: &str) -> u64 {
    envoy.stat(name).unwrap_or_else(|| {
        let stats = envoy.stats();
        let ours: HashMap<_, _> = stats
            .iter()
            .filter(|(k, _)| k.contains("meshsight"))
            .collect();
        panic!("no stat {name}; meshsight stats: {ours:#?}")
    })
}

/// How long a counter may take to reach Envoy's stats: the module flushes its counts on its
/// root's tick (at most every 500 ms), so a read right after a request may be early.
const FLUSH_WAIT: Duration = Duration::from_secs(5);

/// [`stat`] once it reads `expected` (polled until then, up to [`FLUSH_WAIT`]); what it reads
/// at the deadline otherwise, for the caller's `assert_eq!` to show.
fn settled(envoy: &Envoy, name: &str, expected: u64) -> u64 {
    let _ = envoy.settled_stat(name, expected, FLUSH_WAIT);
    stat(envoy, name)
}

#[test]
fn enforce_mode_allows_denies_and_rejects_in_real_envoy() {
    let upstream = EchoUpstream::start();
    let envoy = start(POLICY, &upstream);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut forwarded = 0;

    // Allowed, forwarded as judged (`rewrite_path` is on by default).
    for (target, host, rule, judged) in [
        (
            "/api/v1/items?x=%2F&y=1",
            "shop.test",
            "api-read",
            "/api/v1/items?x=%2F&y=1",
        ),
        ("/info/../private", "shop.test", "private", "/private"),
        ("/a//b", "shop.test", "ab", "/a/b"),
        (
            "/public/./data/abc/../xyz",
            "shop.test",
            "public-data",
            "/public/data/xyz",
        ),
        ("/some/%61%62%63", "shop.test", "abc", "/some/abc"),
        ("/by-host", "Example.COM.", "example-host", "/by-host"),
        ("/by-host", "example.com:80", "example-host", "/by-host"),
        ("/search?q=shoes", "shop.test", "search", "/search?q=shoes"),
        ("/loopback/x", "shop.test", "loopback", "/loopback/x"),
    ] {
        let r = get(&envoy, target, host);
        assert_eq!(r.status, 200, "{target} via {host}: {}", r.text());
        forwarded += 1;
        let recorded = upstream.wait_for(forwarded, Duration::from_secs(5));
        assert_eq!(recorded.len(), forwarded);
        assert_eq!(recorded[forwarded - 1].path, judged, "forwarded as judged");
        // The access log shows `:path` as forwarded.
        let d = decision_for(&envoy, occurrence(&mut seen, judged), judged);
        assert_eq!(d["outcome"], "allowed", "{target}: {d}");
        assert_eq!(d["rule"], rule, "{target}: {d}");
    }
    occurrence(&mut seen, "/api/v2/orders");
    let r = send(
        envoy.port(),
        &HttpRequest::post("/api/v2/orders")
            .header("host", "api.example.com")
            .header("x-custom", "kept")
            .body(r#"{"item":42}"#),
    );
    forwarded += 1;
    assert_eq!(r.status, 200, "{}", r.text());
    let echo = r.json().expect("echo JSON");
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["body"], r#"{"item":42}"#, "body forwarded unchanged");
    assert_eq!(echo["headers"]["x-custom"], "kept");

    // Denied: 403 with the small body, never forwarded.
    for (method, target, host) in [
        ("GET", "/admin", "shop.test"),
        ("DELETE", "/api/v1/items", "shop.test"),
        ("POST", "/api/v2/orders", "other.example.com"),
        ("GET", "/by-host", "example.org"),
        ("GET", "/search?q=x&debug=1", "shop.test"),
        ("GET", "/office/plan", "shop.test"),
        ("GET", "/peer/x", "shop.test"),
        ("GET", "/api/../admin", "shop.test"),
    ] {
        let r = send(
            envoy.port(),
            &HttpRequest::new(method, target).header("host", host),
        );
        assert_eq!(r.status, 403, "{method} {target} via {host}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        let body = r.json().expect("deny body is JSON");
        let fields = body.as_object().expect("object");
        assert_eq!(fields.len(), 2, "{body}");
        assert_eq!(body["error"], "forbidden");
        assert!(
            body["request_id"].as_str().is_some_and(|id| !id.is_empty()),
            "Envoy's x-request-id: {body}"
        );
        let d = decision_for(&envoy, occurrence(&mut seen, target), target);
        assert_eq!(d["outcome"], "denied", "{target}: {d}");
        assert_eq!(d["reason"], "no_rule_matched");
    }

    // Malformed targets: 400, never forwarded; the filter records why.
    for (target, reason) in [
        ("/something%2F..%2Fadmin", Some("encoded_slash")),
        ("/user/..;foo=bar/admin", Some("dot_segment_parameter")),
        ("/foo%00.html", None),
        ("/a%c0%afb", Some("overlong_utf8")),
        ("/a%252fb", Some("double_encoding")),
        // Envoy 1.40's codec refuses a fragment itself; either way it never reaches upstream.
        ("/app1/admin#foo", None),
    ] {
        let r = get(&envoy, target, "shop.test");
        assert_eq!(r.status, 400, "{target}: {}", r.text());
        if let Some(reason) = reason {
            let d = decision_for(&envoy, occurrence(&mut seen, target), target);
            assert_eq!(d["outcome"], "malformed", "{target}: {d}");
            assert_eq!(d["reason"], reason, "{target}: {d}");
            let body = r.json().expect("malformed body is JSON");
            assert_eq!(body["error"], "bad_request");
        }
    }

    // Give late requests a chance to show up, then check nothing else reached the upstream.
    std::thread::sleep(Duration::from_millis(300));
    let paths: Vec<String> = upstream.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths.len(),
        forwarded,
        "only allowed requests reach the upstream: {paths:#?}"
    );

    assert_eq!(
        settled(&envoy, "meshsight_allowlist_allowed", forwarded as u64),
        forwarded as u64
    );
    assert_eq!(settled(&envoy, "meshsight_allowlist_denied", 8), 8);
    assert!(
        envoy
            .wait_for_stat("meshsight_allowlist_malformed", 4, FLUSH_WAIT)
            .is_some(),
        "at least 4 malformed: {:?}",
        envoy.stat("meshsight_allowlist_malformed")
    );
    assert_eq!(settled(&envoy, "meshsight_allowlist_monitored", 0), 0);
    assert_eq!(
        settled(&envoy, "meshsight_allowlist_rule_hits.example-host", 2),
        2
    );
    assert_eq!(
        settled(&envoy, "meshsight_allowlist_rule_hits.api-write", 1),
        1
    );
    assert_eq!(
        settled(&envoy, "meshsight_allowlist_rule_hits.office", 0),
        0
    );
}

#[test]
fn rewrite_path_sends_the_checked_path_upstream() {
    let upstream = EchoUpstream::start();
    let policy = r#"{"rewrite_path": true, "rules": [{"name": "private", "paths": ["/private"]}, {"name": "api", "paths": ["/api/**"]}]}"#;
    let envoy = start(policy, &upstream);
    for (target, expected) in [
        ("/info/../private?x=%2F", "/private?x=%2F"),
        ("/api//v1/%7Euser/./x", "/api/v1/~user/x"),
        ("/api/v1", "/api/v1"),
    ] {
        let r = get(&envoy, target, "shop.test");
        assert_eq!(r.status, 200, "{target}: {}", r.text());
        let echo = r.json().expect("echo JSON");
        assert_eq!(echo["path"], expected, "{target}");
    }
    let r = get(&envoy, "/api/../admin", "shop.test");
    assert_eq!(r.status, 403);
    assert_eq!(upstream.requests().len(), 3);
}

#[test]
fn monitor_mode_lets_everything_through_and_counts_it() {
    let upstream = EchoUpstream::start();
    let policy = POLICY.replacen('{', r#"{"mode": "monitor","#, 1);
    let envoy = start(&policy, &upstream);
    let r = get(&envoy, "/admin", "shop.test");
    assert_eq!(r.status, 200, "{}", r.text());
    let d = decision_for(&envoy, 1, "/admin");
    assert_eq!(d["outcome"], "would_deny");
    assert_eq!(d["reason"], "no_rule_matched");
    let r = get(&envoy, "/a%2Fb", "shop.test");
    assert_eq!(r.status, 200, "{}", r.text());
    let d = decision_for(&envoy, 1, "/a%2Fb");
    assert_eq!(d["outcome"], "would_deny");
    assert_eq!(d["reason"], "encoded_slash");
    let r = get(&envoy, "/api/x", "shop.test");
    assert_eq!(r.status, 200);
    assert_eq!(upstream.requests().len(), 3);
    assert_eq!(settled(&envoy, "meshsight_allowlist_monitored", 2), 2);
    assert_eq!(settled(&envoy, "meshsight_allowlist_malformed", 1), 1);
    assert_eq!(settled(&envoy, "meshsight_allowlist_allowed", 1), 1);
    assert_eq!(settled(&envoy, "meshsight_allowlist_denied", 0), 0);
}

fn refused_log(policy: &str) -> String {
    let upstream = EchoUpstream::start();
    match Envoy::builder("envoy-config/e2e/allowlist.yaml")
        .upstream(&upstream)
        .var("ALLOWLIST_CONFIG", policy)
        .start()
    {
        Ok(envoy) => panic!("Envoy accepted a bad policy; log:\n{}", envoy.log()),
        Err(err) => match err {
            RigError::EnvoyExited { .. } | RigError::NotReady { .. } => {
                err.log().unwrap_or_default().to_string()
            }
            other => panic!("unexpected rig error: {other}"),
        },
    }
}

#[test]
fn bad_policy_makes_envoy_reject_the_plugin_with_the_json_path() {
    let log = refused_log(
        r#"{"rules":[{"name":"a","paths":["/a"]},{"name":"b"},{"name":"c","paths":["/x/**/y"]}]}"#,
    );
    assert!(
        log.contains(r#"meshsight: invalid policy, refusing it: rules[2].paths[0]: "**" must be the last segment"#),
        "{log}"
    );
    let log = refused_log(r#"{"rules":[{"name":"a","methds":["GET"]}]}"#);
    assert!(
        log.contains("rules[0].methds: unknown field `methds`"),
        "{log}"
    );
}

#[test]
fn ten_thousand_rule_policy_in_envoy() {
    let upstream = EchoUpstream::start();
    let envoy = start(&synthetic_policy_json(10_000), &upstream);
    for i in [0, 1, 2, 3, 4_998, 9_999] {
        let (method, path) = synthetic_hit(i);
        let r = send(
            envoy.port(),
            &HttpRequest::new(method, &path).header("host", "h"),
        );
        assert_eq!(r.status, 200, "{method} {path}: {}", r.text());
        assert_eq!(
            settled(
                &envoy,
                &format!("meshsight_allowlist_rule_hits.rule-{i}"),
                1
            ),
            1
        );
    }
    let r = get(&envoy, "/svc1/v1/items", "h");
    assert_eq!(r.status, 403);
    assert_eq!(
        settled(&envoy, "meshsight_allowlist_rule_hits.rule-5000", 0),
        0
    );
}

fn lds_policy(allowed_prefix: &str) -> String {
    format!(
        r#"{{"rules":[{{"name":"both","paths":["/both"]}},{{"name":"{allowed_prefix}","paths":["/{allowed_prefix}/**"]}}]}}"#
    )
}

/// A request whose body is only half sent until [`SlowRequest::finish`]: in flight across a
/// policy update.
struct SlowRequest {
    stream: TcpStream,
}

impl SlowRequest {
    fn start(port: u16) -> SlowRequest {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("read timeout");
        stream
            .write_all(b"POST /both HTTP/1.1\r\nhost: h\r\ncontent-length: 9\r\nconnection: close\r\n\r\nin-f")
            .expect("write headers and half the body");
        SlowRequest { stream }
    }

    /// Sends the rest of the body and returns the raw response.
    fn finish(mut self) -> String {
        self.stream.write_all(b"light").expect("write the rest");
        let mut response = Vec::new();
        let _ = self.stream.read_to_end(&mut response);
        String::from_utf8_lossy(&response).into_owned()
    }
}

/// What the background clients saw: (target, status) or a transport error.
type Answers = Arc<Mutex<Vec<Result<(String, u16), String>>>>;

#[test]
fn policy_update_through_file_based_lds_takes_effect_without_failing_requests() {
    let upstream = EchoUpstream::start();
    let envoy = Envoy::builder("envoy-config/e2e/allowlist_lds.yaml")
        .upstream(&upstream)
        .var("ALLOWLIST_CONFIG", lds_policy("v1"))
        .var("POLICY_VERSION", "1")
        .render_file("lds.yaml", "envoy-config/e2e/allowlist_lds_listener.yaml")
        .start()
        .unwrap_or_else(|err| panic!("Envoy must start: {err}"));
    // LDS listeners may come up just after admin /ready: wait for the first answer.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match try_send(envoy.port(), &HttpRequest::get("/both")) {
            Ok(r) if r.status == 200 => break,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("listener never served: {other:?}\n{}", envoy.log_tail(60)),
        }
    }
    assert_eq!(get(&envoy, "/v1/x", "h").status, 200);
    assert_eq!(get(&envoy, "/v2/x", "h").status, 403);

    let new_listener = envoy
        .render(
            "envoy-config/e2e/allowlist_lds_listener.yaml",
            &[
                ("ALLOWLIST_CONFIG", &lds_policy("v2")),
                ("POLICY_VERSION", "2"),
            ],
        )
        .expect("render the new listener");

    // Background clients keep requests going through the update (bounded: each stops after
    // 2,000 requests or when told).
    let stop = Arc::new(AtomicBool::new(false));
    let answers: Answers = Arc::default();
    let port = envoy.port();
    let clients: Vec<_> = (0..3)
        .map(|c| {
            let (stop, answers) = (stop.clone(), answers.clone());
            thread::spawn(move || {
                for i in 0..2_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let target = if (i + c) % 2 == 0 { "/both" } else { "/v2/x" };
                    let answer = try_send(port, &HttpRequest::get(target).header("host", "h"))
                        .map(|r| (target.to_string(), r.status))
                        .map_err(|e| format!("{target}: {e}"));
                    answers.lock().unwrap().push(answer);
                }
            })
        })
        .collect();
    let slow = SlowRequest::start(port);
    std::thread::sleep(Duration::from_millis(200));

    envoy
        .write_run_file("lds.yaml", &new_listener)
        .expect("rewrite lds.yaml atomically");
    let updated = Instant::now();
    let mut switched = false;
    while updated.elapsed() < Duration::from_secs(30) {
        if get(&envoy, "/v2/x", "h").status == 200 {
            switched = true;
            break;
        }
        // Poll tightly: the request in flight must finish within the old listener's drain time
        // (the rig runs Envoy with --drain-time-s 1).
        std::thread::sleep(Duration::from_millis(2));
    }
    // The request admitted by the old policy completes on the draining listener.
    let slow_response = slow.finish();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("client thread");
    }
    assert!(
        switched,
        "the new policy never took effect\n{}",
        envoy.log_tail(60)
    );
    assert!(
        slow_response.starts_with("HTTP/1.1 200"),
        "in-flight request across the update: {slow_response}"
    );
    assert!(slow_response.contains("in-flight"), "{slow_response}");

    let answers = answers.lock().unwrap();
    let failures: Vec<_> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "failed requests: {failures:#?}\n{}",
        envoy.log_tail(60)
    );
    let bad: Vec<_> = answers
        .iter()
        .flatten()
        .filter(|(t, s)| !(*s == 200 || (*s == 403 && t == "/v2/x")))
        .collect();
    assert!(bad.is_empty(), "unexpected answers: {bad:?}");
    assert!(answers.len() >= 20, "the clients ran: {}", answers.len());

    assert_eq!(get(&envoy, "/v1/x", "h").status, 403, "old policy gone");
    assert_eq!(get(&envoy, "/v2/y", "h").status, 200);
    // Same Envoy process throughout: the listener was updated, not the server restarted.
    assert!(
        envoy
            .stat("listener_manager.listener_modified")
            .unwrap_or(0)
            >= 1
    );
    assert!(envoy.log().contains("meshsight allowlist: 2 rules"));
}

#[test]
fn envoy_rbac_with_the_synthetic_rules_allows_what_the_allowlist_allows() {
    use meshsight_bench::synthetic::{synthetic_rbac_config, SYNTHETIC_MISS};
    let n = 1_000;
    let upstream = EchoUpstream::start();
    let rbac = Envoy::builder("envoy-config/e2e/allowlist_rbac.yaml")
        .upstream(&upstream)
        .var("RBAC_CONFIG", synthetic_rbac_config(n).to_string())
        .start()
        .unwrap_or_else(|err| panic!("Envoy with RBAC must start: {err}"));
    let allowlist = start(&synthetic_policy_json(n), &upstream);
    // Every rule: the request it allows, and near misses of its shape (another method, one
    // segment too many or too few, a neighbouring service name).
    let mut requests: Vec<(&str, String)> = Vec::new();
    for i in 0..n {
        let (method, path) = synthetic_hit(i);
        requests.push((method, path.clone()));
        requests.push(("DELETE", path.clone()));
        match i % 4 {
            0 => {
                requests.push(("GET", format!("/svc{i}")));
                requests.push(("GET", format!("/svc{i}x/a")));
            }
            1 => {
                requests.push(("GET", format!("/svc{i}/v1/items/42/extra")));
                requests.push(("GET", format!("/svc{i}/v1/items")));
            }
            2 => {
                requests.push(("GET", format!("/svc{i}/static/a/b.js")));
                requests.push(("GET", format!("/svc{i}/static")));
            }
            _ => {
                requests.push(("POST", format!("/svc{i}/v2/orders/1")));
                requests.push(("GET", format!("/svc{i}/v2/orders")));
            }
        }
    }
    requests.push(("GET", SYNTHETIC_MISS.to_string()));
    let mut answers: HashMap<u16, usize> = HashMap::new();
    let ask = |envoy: &Envoy, method: &str, path: &str| {
        send(
            envoy.port(),
            &HttpRequest::new(method, path).header("host", "h"),
        )
        .status
    };
    for (method, path) in &requests {
        let (by_rbac, by_allowlist) = (ask(&rbac, method, path), ask(&allowlist, method, path));
        assert_eq!(by_rbac, by_allowlist, "{method} {path}");
        assert!(
            by_rbac == 200 || by_rbac == 403,
            "{method} {path}: {by_rbac}"
        );
        *answers.entry(by_rbac).or_insert(0) += 1;
    }
    // Each rule's hit (and the bare `/svc<i>` of `**` rules) allowed; everything else denied.
    assert_eq!(answers.get(&200), Some(&(n + n / 4)), "{answers:?}");
    assert_eq!(
        answers.get(&403),
        Some(&(requests.len() - n - n / 4)),
        "{answers:?}"
    );
    // Encoded and dot-segment spellings of a hit get the verdict of the path they normalize
    // to (RBAC here sees the raw path, so the allowlist is compared with itself and RBAC on
    // the canonical form).
    for i in (0..n).step_by(7) {
        let (method, path) = synthetic_hit(i);
        let canonical = ask(&allowlist, method, &path);
        assert_eq!(canonical, ask(&rbac, method, &path), "{method} {path}");
        let rest = path.trim_start_matches(&format!("/svc{i}/"));
        for variant in [
            format!("/svc{i}/x/../{rest}"),
            format!("/svc{i}/./{rest}"),
            format!("/svc{i}//{rest}"),
            format!("/%73vc{i}/{rest}"),
        ] {
            assert_eq!(
                ask(&allowlist, method, &variant),
                canonical,
                "{method} {variant} judged as {path}"
            );
        }
    }
}

#[test]
fn principals_and_namespaces_come_from_the_mtls_peer_certificate() {
    use meshsight_rig::free_port;
    let policy = r#"{"rules": [
        {"name": "web-only", "paths": ["/peer/**"], "sources": {"principals": ["spiffe://cluster.local/ns/shop/sa/web"]}},
        {"name": "billing-ns", "paths": ["/billing/**"], "sources": {"namespaces": ["billing"]}},
        {"name": "billing-prefix", "paths": ["/ops/**"], "sources": {"principals": ["spiffe://cluster.local/ns/billing/*"]}},
        {"name": "shop-from-loopback", "paths": ["/both/**"], "sources": {"namespaces": ["shop"], "cidrs": ["127.0.0.0/8"]}}
    ]}"#;
    let upstream = EchoUpstream::start();
    let billing_port = free_port().expect("port");
    let envoy = Envoy::builder("envoy-config/e2e/allowlist_mtls.yaml")
        .upstream(&upstream)
        .var("ALLOWLIST_CONFIG", policy)
        .var("MTLS_PORT", free_port().expect("port").to_string())
        .var("BILLING_CLIENT_PORT", billing_port.to_string())
        .start()
        .unwrap_or_else(|err| panic!("Envoy must start: {err}"));
    let web_port = envoy.port();
    for (port, who, path, status) in [
        (web_port, "web", "/peer/x", 200),
        (web_port, "web", "/billing/x", 403),
        (web_port, "web", "/ops/x", 403),
        (web_port, "web", "/both/x", 200),
        (billing_port, "billing", "/peer/x", 403),
        (billing_port, "billing", "/billing/x", 200),
        (billing_port, "billing", "/ops/x", 200),
        (billing_port, "billing", "/both/x", 403),
    ] {
        let r = send(port, &HttpRequest::get(path).header("host", "h"));
        assert_eq!(r.status, status, "{who} {path}: {}", r.text());
    }
    assert_eq!(
        settled(&envoy, "meshsight_allowlist_rule_hits.web-only", 1),
        1
    );
    assert_eq!(
        settled(&envoy, "meshsight_allowlist_rule_hits.billing-ns", 1),
        1
    );
    assert_eq!(
        settled(&envoy, "meshsight_allowlist_rule_hits.billing-prefix", 1),
        1
    );
    assert_eq!(
        settled(
            &envoy,
            "meshsight_allowlist_rule_hits.shop-from-loopback",
            1
        ),
        1
    );
    assert_eq!(settled(&envoy, "meshsight_allowlist_denied", 4), 4);
    assert_eq!(upstream.requests().len(), 4);
}

#[test]
fn principals_and_namespaces_at_a_waypoint_come_from_istio_filter_state() {
    use meshsight_rig::free_port;
    let policy = r#"{"rules": [
        {"name": "web-only", "paths": ["/peer/**"], "sources": {"principals": ["spiffe://cluster.local/ns/shop/sa/web"]}},
        {"name": "billing-ns", "paths": ["/billing/**"], "sources": {"namespaces": ["billing"]}},
        {"name": "open", "paths": ["/open"]}
    ]}"#;
    let upstream = EchoUpstream::start();
    let billing_port = free_port().expect("port");
    let anonymous_port = free_port().expect("port");
    let envoy = Envoy::builder("envoy-config/e2e/allowlist_waypoint.yaml")
        .upstream(&upstream)
        .var("ALLOWLIST_CONFIG", policy)
        .var("BILLING_PORT", billing_port.to_string())
        .var("ANONYMOUS_PORT", anonymous_port.to_string())
        .start()
        .unwrap_or_else(|err| panic!("Envoy must start: {err}"));
    let web_port = envoy.port();
    for (port, who, path, status) in [
        (web_port, "web", "/peer/x", 200),
        (web_port, "web", "/billing/x", 403),
        (billing_port, "billing", "/peer/x", 403),
        (billing_port, "billing", "/billing/x", 200),
        // No identity on the connection: rules that name principals or namespaces never match.
        (anonymous_port, "anonymous", "/peer/x", 403),
        (anonymous_port, "anonymous", "/billing/x", 403),
        (anonymous_port, "anonymous", "/open", 200),
    ] {
        let r = send(port, &HttpRequest::get(path).header("host", "h"));
        assert_eq!(r.status, status, "{who} {path}: {}", r.text());
    }
    assert_eq!(
        settled(&envoy, "meshsight_allowlist_rule_hits.web-only", 1),
        1
    );
    assert_eq!(
        settled(&envoy, "meshsight_allowlist_rule_hits.billing-ns", 1),
        1
    );
    assert_eq!(upstream.requests().len(), 3);
}
