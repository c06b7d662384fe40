//! `meshsight-bench`: runs the `make bench` scenarios (Envoy without filters, the Wasm no-op
//! anchor, each job alone, the one pass, Envoy's RBAC with a JSON access log as the native
//! anchor, the allowlist at 10/1,000/10,000 rules against Envoy's RBAC filter, the mirror with
//! its sensor healthy/down/hanging, the audit sink with its collector healthy/slow, request
//! bodies and responses the mirror decodes or scans (each against a row sending the same
//! bytes without that work: `response:` and `body:` rows), and Envoy's resident memory with and without the module at 1 and 2 workers) and writes markdown
//! tables to stdout and `<out>/latest.md`, plus `<out>/latest.json`.
//!
//! ```text
//! meshsight-bench [--policies DIR] [--out DIR] [--duration-secs N] [--warmup-secs N]
//!                 [--rate RPS] [--connections N] [--only NAME[,NAME...]] [--rounds N]
//!                 [--perf] [--list]
//! ```
//! Every scenario runs `--rounds` times (default 3), rounds interleaved over all scenarios, and
//! each figure is reported as the median over its rounds.
//! That the module loads every policy the Istio manifests ship, and does with one request what
//! each should, is an e2e test (`test-harness/e2e/tests/e2e_istio_policies.rs`), not a mode of
//! the bench.
//! `--policies` holds `meshsight.json` and its sections `allowlist.json`, `mirror.json`,
//! `audit.json` (written by
//! `scripts/validate_istio.py --dump-plugin-configs` from the Istio manifests; `make bench`
//! does it). `--only` keeps the scenarios whose name contains one of the given words (`=name`:
//! whose name is exactly `name`). `--perf` records Envoy with `perf record -g` during each
//! highest-throughput run and adds a table of where its CPU went: in the module's compiled code,
//! in what the module called (host calls, V8's runtime), or elsewhere in Envoy
//! (`make bench-perf`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use meshsight_bench::run;
use meshsight_bench::scenario::{self, rows, AccessLog, Build, Measure, RequestBody, Settings};
use meshsight_bench::{bodies, synthetic};
use meshsight_bench::{
    loadgen, BenchError, BenchRun, CollectorState, Filter, Group, Scenario, ScenarioResult,
    SensorState,
};
use meshsight_rig as rig;
use serde_json::{json, Value};

/// Rule counts of the allowlist scale rows.
const RULE_COUNTS: [usize; 3] = [10, 1_000, 10_000];
/// Rule count of the RBAC comparison row.
const RBAC_RULES: usize = 1_000;
/// Rule count of the native anchor (Envoy's RBAC with a JSON access log): the size of a
/// service's allowlist, as the Istio one (4 rules) is.
const NATIVE_ANCHOR_RULES: usize = 10;
/// Requests sent before the memory rows read Envoy's resident memory.
const MEMORY_REQUESTS: u64 = 3_000;
/// Worker counts of the memory rows: equal figures mean the compiled module is shared and its
/// cost is per pod, not per worker.
const MEMORY_WORKERS: [u32; 2] = [1, 2];
/// Delay of the slow collector.
const SLOW_COLLECTOR_MS: u64 = 500;
/// The request of the filter rows: allowed by the Istio allowlist policy's `catalog-read` rule.
const PRODUCT_PATH: &str = "/api/v1/products/42";
/// The upload rows' request path.
const UPLOAD_PATH: &str = "/api/v1/photos";
/// The JSON body rows' request path.
const ORDER_PATH: &str = "/api/v1/orders";

struct Options {
    policies: PathBuf,
    out: PathBuf,
    duration: Duration,
    warmup: Duration,
    rate: u32,
    connections: u32,
    only: Vec<String>,
    list: bool,
    rounds: usize,
    perf: bool,
}

fn usage() -> &'static str {
    "usage: meshsight-bench [--policies DIR] [--out DIR] [--duration-secs N] [--warmup-secs N] \
     [--rate RPS] [--connections N] [--only NAME[,NAME...]] [--rounds N] [--perf] [--list]"
}

fn parse_options() -> Result<Options, String> {
    let root = rig::workspace_root();
    let mut options = Options {
        policies: root.join("target").join("bench").join("policies"),
        out: root.join("bench-results"),
        duration: Duration::from_secs(5),
        warmup: Duration::from_secs(2),
        rate: 1000,
        connections: 32,
        only: Vec::new(),
        list: false,
        rounds: 3,
        perf: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n{}", usage()))
        };
        let number = |name: &str, text: String| -> Result<u64, String> {
            text.parse()
                .map_err(|_| format!("{name}: {text:?} is not a number"))
        };
        match arg.as_str() {
            "--policies" => options.policies = PathBuf::from(value(&arg)?),
            "--out" => options.out = PathBuf::from(value(&arg)?),
            "--duration-secs" => {
                options.duration = Duration::from_secs(number(&arg, value(&arg)?)?)
            }
            "--warmup-secs" => options.warmup = Duration::from_secs(number(&arg, value(&arg)?)?),
            "--rate" => options.rate = number(&arg, value(&arg)?)? as u32,
            "--connections" => options.connections = number(&arg, value(&arg)?)? as u32,
            "--only" => {
                options.only = value(&arg)?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            "--list" => options.list = true,
            "--perf" => options.perf = true,
            "--rounds" => options.rounds = number(&arg, value(&arg)?)? as usize,
            "-h" | "--help" => return Err(usage().to_string()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    if options.duration.is_zero()
        || options.rate == 0
        || options.connections == 0
        || options.rounds == 0
    {
        return Err(
            "--duration-secs, --rate, --connections and --rounds must be positive".to_string(),
        );
    }
    Ok(options)
}

/// One meshsight plugin running the jobs of `sections` in one pass (`{"allowlist": ...}`).
fn one_pass(sections: &[(&str, &Value)]) -> Filter {
    let doc: serde_json::Map<String, Value> = sections
        .iter()
        .map(|(job, policy)| (job.to_string(), (*policy).clone()))
        .collect();
    Filter::Meshsight {
        root_id: "meshsight",
        policy: Value::Object(doc).to_string(),
        build: Build::Shipped,
    }
}

/// `filters` with every meshsight plugin on the module built at opt-level 3.
fn at_opt_level_3(filters: &[Filter]) -> Vec<Filter> {
    filters
        .iter()
        .map(|filter| match filter {
            Filter::Meshsight {
                root_id, policy, ..
            } => Filter::Meshsight {
                root_id,
                policy: policy.clone(),
                build: Build::OptLevel3,
            },
            other => other.clone(),
        })
        .collect()
}

/// One meshsight plugin running job `job` alone (root id `meshsight_<job>`), as in the
/// three-plugin deployment.
fn single(job: &str, policy: &Value) -> Filter {
    let root_id = match job {
        "allowlist" => "meshsight_allowlist",
        "mirror" => "meshsight_mirror",
        _ => "meshsight_audit",
    };
    Filter::Meshsight {
        root_id,
        policy: policy.to_string(),
        build: Build::Shipped,
    }
}

/// The mirror policy of the sensor rows: the Istio one with a first rule that mirrors every
/// request, and a rate cap above the bench rate, so every request makes a copy.
fn mirror_everything(mirror: &Value, rate: u32) -> Value {
    let mut policy = mirror.clone();
    if let Some(rules) = policy.get_mut("rules").and_then(Value::as_array_mut) {
        rules.insert(
            0,
            json!({"name": "bench-everything", "action": {"type": "always"}}),
        );
    } else if let Some(object) = policy.as_object_mut() {
        object.insert(
            "rules".into(),
            json!([{"name": "bench-everything", "action": {"type": "always"}}]),
        );
    }
    if let Some(targets) = policy.get_mut("targets").and_then(Value::as_object_mut) {
        for target in targets.values_mut() {
            if let Some(target) = target.as_object_mut() {
                target.insert("max_rps".into(), json!(f64::from(rate) * 2.0));
            }
        }
    }
    policy
}

/// The request that hits rule `i` of a synthetic policy where `i` is the last index of the
/// `GET /svc<i>/static/*` shape: near the end of the list (the worst case for a list scan),
/// and a `safe_regex` permission in RBAC.
/// Custom signature rules in the bench's larger pack.
const CUSTOM_SIGNATURE_RULES: usize = 1000;

/// `mirror` with a pack of `n` custom rules layered over the built-in one: literal and
/// two-group rules in every location, some narrowed to headers or parameters, none of which
/// the bench request carries (so the row measures the scan, not copies).
fn with_custom_signatures(mirror: &Value, n: usize) -> Value {
    let locations = [
        json!(["path", "query"]),
        json!(["headers"]),
        json!(["params", "body"]),
        json!(["path", "query", "params", "headers", "body"]),
    ];
    let rules: Vec<Value> = (0..n)
        .map(|i| {
            let mut rule = json!({
                "id": format!("bench-{i}"),
                "name": format!("bench rule {i}"),
                "category": format!("bench_{}", i % 10),
                "severity": "medium",
                "references": ["bench"],
                "in": locations[i % locations.len()].clone(),
                "match": if i % 3 == 0 {
                    json!({"all": [[format!("ioc-{i}-a")], [format!("ioc-{i}-b"), format!("ioc-{i}-c")]]})
                } else {
                    json!({"any": [format!("indicator-{i:04}"), format!("/bench/{i}/x")]})
                },
            });
            if i % 7 == 0 {
                rule["headers"] = json!(["x-bench"]);
                rule["in"] = json!(["headers"]);
            }
            rule
        })
        .collect();
    let mut policy = mirror.clone();
    policy["signatures"]["packs"] = json!([{"pack": "bench", "rules": rules}]);
    policy
}

/// Length of the JSON the response rows' upstream answers and the JSON body rows send.
const JSON_BYTES: usize = 16 * 1024;
/// Length of the upload rows' body.
const UPLOAD_BYTES: usize = 64 * 1024;
/// `max_body_bytes` of the body rows: the whole upload is read.
const BODY_ROWS_MAX_BODY_BYTES: usize = 64 * 1024;

/// The rows of [`Group::Pairs`], each measured against a reference row that sends the same bytes
/// without the work it measures. All run the mirror alone with the Istio policy (its built-in
/// signatures read bodies), so a row's cost over its reference is that work and nothing else.
/// Issue 21: a 16 KiB JSON answer with no `responses` section, with one that does not ask for
/// this route (must cost the same: no host call, no scan), and with one that does (the scan).
/// Issue 22: a 64 KiB upload as `multipart/form-data` against the same bytes as an opaque
/// body, and a 16 KiB JSON body gzip-compressed against the same JSON plain.
fn pairs(mirror: &Value, row: &dyn Fn(&str, Group, Vec<Filter>) -> Scenario) -> Vec<Scenario> {
    let json = bodies::ordinary_json(JSON_BYTES);
    let kib = |n: usize| n / 1024;
    let no_responses = format!("response: {} KiB JSON, no response rules", kib(JSON_BYTES));
    let not_asked = format!(
        "response: {} KiB JSON, response rules not asking for it",
        kib(JSON_BYTES)
    );
    let answer = |name: &str, responses: Option<Value>, reference: Option<&str>| {
        let mut policy = mirror.clone();
        if let Some(responses) = responses {
            policy["responses"] = responses;
        }
        Scenario {
            answer: Some(json.clone()),
            reference: reference.map(str::to_string),
            measure: Measure::Throughput,
            ..row(name, Group::Pairs, vec![one_pass(&[("mirror", &policy)])])
        }
    };
    let mut mirror_bodies = mirror.clone();
    mirror_bodies["max_body_bytes"] = json!(BODY_ROWS_MAX_BODY_BYTES);
    let post =
        |name: &str, path: &str, body: Vec<u8>, headers: &[(&str, &str)], reference| Scenario {
            method: "POST".to_string(),
            path: path.to_string(),
            body: Some(RequestBody {
                bytes: body,
                headers: headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
            }),
            reference,
            measure: Measure::Throughput,
            ..row(
                name,
                Group::Pairs,
                vec![one_pass(&[("mirror", &mirror_bodies)])],
            )
        };
    let upload = bodies::multipart_upload(UPLOAD_BYTES);
    let opaque = format!(
        "body: {} KiB upload as application/octet-stream",
        kib(UPLOAD_BYTES)
    );
    let plain_json = format!("body: {} KiB JSON", kib(JSON_BYTES));
    let multipart = bodies::multipart_content_type();
    vec![
        answer(&no_responses, None, None),
        // The metadata hosts (the default) and a path prefix this request does not start with.
        answer(
            &not_asked,
            Some(json!({"paths": ["/internal/"]})),
            Some(&no_responses),
        ),
        answer(
            &format!("response: {} KiB JSON scanned", kib(JSON_BYTES)),
            Some(json!({"paths": ["/internal/", "/api/v1/products/"]})),
            Some(&not_asked),
        ),
        post(
            &opaque,
            UPLOAD_PATH,
            upload.clone(),
            &[("content-type", "application/octet-stream")],
            None,
        ),
        post(
            &format!(
                "body: {} KiB upload as multipart/form-data",
                kib(UPLOAD_BYTES)
            ),
            UPLOAD_PATH,
            upload,
            &[("content-type", &multipart)],
            Some(opaque.clone()),
        ),
        post(
            &plain_json,
            ORDER_PATH,
            json.clone(),
            &[("content-type", "application/json")],
            None,
        ),
        post(
            &format!("body: {} KiB JSON, gzip", kib(JSON_BYTES)),
            ORDER_PATH,
            bodies::gzip(&json),
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            Some(plain_json.clone()),
        ),
    ]
}

fn synthetic_request(rules: usize) -> (String, String) {
    let i = (0..rules).rev().find(|i| i % 4 == 2).unwrap_or(0);
    let (method, path) = synthetic::synthetic_hit(i);
    (method.to_string(), path)
}

fn scenarios(options: &Options) -> Result<Vec<Scenario>, BenchError> {
    let allowlist = scenario::read_policy(&options.policies, "allowlist")?;
    let mirror = scenario::local_mirror_policy(scenario::read_policy(&options.policies, "mirror")?);
    let audit = scenario::local_audit_policy(scenario::read_policy(&options.policies, "audit")?);
    let row = |name: &str, group: Group, filters: Vec<Filter>| Scenario {
        name: name.to_string(),
        group,
        filters,
        sensor: SensorState::Healthy,
        collector: CollectorState::Healthy,
        measure: Measure::ThroughputAndLatency,
        workers: 1,
        method: "GET".to_string(),
        path: PRODUCT_PATH.to_string(),
        host: scenario::BENCH_HOST.to_string(),
        access_log: AccessLog::None,
        body: None,
        answer: None,
        reference: None,
        release_freed_heap: false,
    };
    let access_log = json!({"sink": "access_log"});
    let mut list = vec![
        row("baseline (no filter)", Group::Filters, vec![]),
        // What any Wasm filter costs (VM entry, contexts, callbacks): each meshsight row's
        // cost above this one is its own logic.
        row(rows::NOOP, Group::Filters, vec![Filter::Noop]),
        row(
            "allowlist",
            Group::Filters,
            vec![one_pass(&[("allowlist", &allowlist)])],
        ),
        row(
            "mirror",
            Group::Filters,
            vec![one_pass(&[("mirror", &mirror)])],
        ),
        row(
            "audit (http sink)",
            Group::Filters,
            vec![one_pass(&[("audit", &audit)])],
        ),
        row(
            rows::ONE_PASS_HTTP_SINK,
            Group::Filters,
            vec![one_pass(&[
                ("allowlist", &allowlist),
                ("mirror", &mirror),
                ("audit", &audit),
            ])],
        ),
        Scenario {
            access_log: AccessLog::Ocsf,
            ..row(
                "audit (access log)",
                Group::Filters,
                vec![one_pass(&[("audit", &access_log)])],
            )
        },
        Scenario {
            access_log: AccessLog::Ocsf,
            ..row(
                rows::ONE_PASS_ACCESS_LOG,
                Group::Filters,
                vec![one_pass(&[
                    ("allowlist", &allowlist),
                    ("mirror", &mirror),
                    ("audit", &access_log),
                ])],
            )
        },
        // The same one pass on the module built at opt-level 3: what the shipped build ("z",
        // smaller and less memory) costs per request, in the same run.
        Scenario {
            access_log: AccessLog::Ocsf,
            ..row(
                &format!("{}{}", rows::ONE_PASS_ACCESS_LOG, rows::O3_SUFFIX),
                Group::Filters,
                at_opt_level_3(&[one_pass(&[
                    ("allowlist", &allowlist),
                    ("mirror", &mirror),
                    ("audit", &access_log),
                ])]),
            )
        },
        // What the access logger itself costs: the same one pass with nothing logging its
        // verdicts.
        row(
            "one pass (access log sink), Envoy's logger not configured",
            Group::Filters,
            vec![one_pass(&[
                ("allowlist", &allowlist),
                ("mirror", &mirror),
                ("audit", &access_log),
            ])],
        ),
        // The one pass's host calls with no logic (test-harness/bench/noop-filter): above the no-op row,
        // what those calls cost Envoy; below the one-pass row, meshsight's own work.
        Scenario {
            access_log: AccessLog::Ocsf,
            ..row(
                "host-call probe: the one pass's host calls, no logic (access log)",
                Group::Filters,
                vec![Filter::HostCallProbe],
            )
        },
        row(
            "three plugins, one VM: allowlist, mirror, audit (http sink)",
            Group::Filters,
            vec![
                single("allowlist", &allowlist),
                single("mirror", &mirror),
                single("audit", &audit),
            ],
        ),
    ];
    // The native anchor: what a user would configure instead of meshsight (Envoy's RBAC with
    // a JSON access log of about the audit record's facts), without signatures or a mirror.
    let (method, path) = synthetic_request(NATIVE_ANCHOR_RULES);
    list.push(Scenario {
        method,
        path,
        access_log: AccessLog::NativeJson,
        ..row(
            &format!(
                "native anchor: Envoy RBAC ({NATIVE_ANCHOR_RULES} rules) + JSON access log ({} fields)",
                scenario::NATIVE_LOG_FIELDS.len()
            ),
            Group::Filters,
            vec![Filter::Rbac(synthetic::synthetic_rbac_config(
                NATIVE_ANCHOR_RULES,
            ))],
        )
    });
    for rules in RULE_COUNTS {
        let policy: Value = serde_json::from_str(&synthetic::synthetic_policy_json(rules))
            .map_err(|err| BenchError::Policy(format!("synthetic policy: {err}")))?;
        let (method, path) = synthetic_request(rules);
        list.push(Scenario {
            method,
            path,
            ..row(
                &format!("allowlist, {rules} rules"),
                Group::RuleScale,
                vec![one_pass(&[("allowlist", &policy)])],
            )
        });
    }
    let (method, path) = synthetic_request(RBAC_RULES);
    list.push(Scenario {
        method,
        path,
        ..row(
            &format!("Envoy RBAC, {RBAC_RULES} rules"),
            Group::RuleScale,
            vec![Filter::Rbac(synthetic::synthetic_rbac_config(RBAC_RULES))],
        )
    });
    // The signature scan at two pack sizes (issue 8: the second within 10% of the first): the
    // mirror alone with the built-in pack, then with 1,000 custom rules layered over it.
    list.push(row(
        "mirror, built-in signature pack",
        Group::RuleScale,
        vec![one_pass(&[("mirror", &mirror)])],
    ));
    let with_custom = with_custom_signatures(&mirror, CUSTOM_SIGNATURE_RULES);
    list.push(row(
        &format!("mirror, built-in pack + {CUSTOM_SIGNATURE_RULES} custom rules"),
        Group::RuleScale,
        vec![one_pass(&[("mirror", &with_custom)])],
    ));
    let everything = mirror_everything(&mirror, options.rate);
    for (name, sensor) in [
        ("mirror every request, sensor healthy", SensorState::Healthy),
        ("mirror every request, sensor down", SensorState::Down),
        ("mirror every request, sensor hanging", SensorState::Hanging),
    ] {
        list.push(Scenario {
            sensor,
            measure: Measure::Latency,
            ..row(
                name,
                Group::MirrorSensor,
                vec![one_pass(&[("mirror", &everything)])],
            )
        });
    }
    for (name, collector) in [
        ("audit, collector healthy", CollectorState::Healthy),
        (
            "audit, collector slow (500 ms)",
            CollectorState::Slow(SLOW_COLLECTOR_MS),
        ),
    ] {
        list.push(Scenario {
            collector,
            measure: Measure::Latency,
            ..row(
                name,
                Group::AuditCollector,
                vec![one_pass(&[("audit", &audit)])],
            )
        });
    }
    list.extend(pairs(&mirror, &row));
    // Resident memory per pod: bare Envoy, the no-op anchor (what V8 costs any Wasm filter),
    // the module with the audit section only, and with the bench's one pass; then the no-op
    // anchor and the one pass again with Envoy returning freed heap to the system, which is
    // what the compiler's working memory leaves behind.
    let one_pass_policy = vec![one_pass(&[
        ("allowlist", &allowlist),
        ("mirror", &mirror),
        ("audit", &audit),
    ])];
    let memory_configs = [
        (rows::MEMORY_BARE, vec![], false),
        (rows::MEMORY_NOOP, vec![Filter::Noop], false),
        (
            rows::MEMORY_AUDIT,
            vec![one_pass(&[("audit", &audit)])],
            false,
        ),
        (rows::MEMORY_ONE_PASS, one_pass_policy.clone(), false),
        (
            rows::MEMORY_ONE_PASS_O3,
            at_opt_level_3(&one_pass_policy),
            false,
        ),
        (rows::MEMORY_NOOP_RELEASED, vec![Filter::Noop], true),
        (rows::MEMORY_ONE_PASS_RELEASED, one_pass_policy, true),
    ];
    for workers in MEMORY_WORKERS {
        for (name, filters, release_freed_heap) in &memory_configs {
            list.push(Scenario {
                measure: Measure::Memory {
                    requests: MEMORY_REQUESTS,
                },
                workers,
                release_freed_heap: *release_freed_heap,
                ..row(&rows::memory(name, workers), Group::Memory, filters.clone())
            });
        }
    }
    if !options.only.is_empty() {
        list.retain(|s| {
            options
                .only
                .iter()
                .any(|word| match word.strip_prefix('=') {
                    Some(exact) => s.name == exact,
                    None => s.name.contains(word.as_str()),
                })
        });
    }
    Ok(list)
}

fn command_line(binary: &Path, arg: &str) -> String {
    let version = Command::new(binary)
        .arg(arg)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let version = version.lines().last().unwrap_or("").trim();
    // Envoy prints `<path>  version: <sha>/<version>/...`: keep what follows `version:`.
    let version = version
        .split_once("version:")
        .map_or(version, |(_, v)| v)
        .trim()
        .to_string();
    format!("{} ({})", binary.display(), version)
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn run(options: &Options) -> Result<BenchRun, BenchError> {
    let list = scenarios(options)?;
    if options.list {
        for s in &list {
            println!("{} ({:?}): {} {}", s.name, s.group, s.method, s.path);
        }
        return Ok(BenchRun {
            started: utc_now(),
            envoy: String::new(),
            load_generator: String::new(),
            cpus: 0,
            loadavg_before: String::new(),
            loadavg_after: String::new(),
            settings: settings(options),
            rounds: options.rounds,
            module_bytes: None,
            results: Vec::new(),
        });
    }
    let settings = settings(options);
    let mut run = BenchRun {
        started: utc_now(),
        envoy: command_line(&rig::envoy_binary(), "--version"),
        load_generator: command_line(&settings.oha, "--version"),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        loadavg_before: loadavg(),
        loadavg_after: String::new(),
        settings: settings.clone(),
        rounds: options.rounds,
        module_bytes: fs::metadata(rig::wasm_path("meshsight"))
            .ok()
            .map(|m| m.len()),
        results: Vec::new(),
    };
    let started = Instant::now();
    // Rounds interleaved over all scenarios (A B C ... A B C ...): a burst of other work on
    // the machine lands on one round of several rows, not on every round of one row.
    let mut rounds: Vec<Vec<ScenarioResult>> = vec![Vec::new(); list.len()];
    for round in 0..options.rounds {
        for (i, s) in list.iter().enumerate() {
            eprintln!(
                "[bench {:>3}s] round {}/{}: {}",
                started.elapsed().as_secs(),
                round + 1,
                options.rounds,
                s.name
            );
            let result = run::run(s, &settings);
            if let Some(err) = &result.error {
                eprintln!("[bench] {} failed: {err}", s.name);
            }
            rounds[i].push(result);
        }
    }
    run.results = rounds
        .into_iter()
        .filter_map(ScenarioResult::merge_rounds)
        .collect();
    run.loadavg_after = loadavg();
    eprintln!("[bench {:>3}s] done", started.elapsed().as_secs());
    Ok(run)
}

fn settings(options: &Options) -> Settings {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    Settings {
        duration: options.duration,
        warmup: options.warmup,
        connections: options.connections,
        rate: options.rate,
        oha: loadgen::oha_binary(&rig::workspace_root()),
        cpus: (cpus >= 2).then_some((0, 1)),
        perf: options.perf,
    }
}

fn write_outputs(out: &Path, run: &BenchRun, markdown: &str) -> Result<(), BenchError> {
    let io = |context: String| move |source| BenchError::Io { context, source };
    fs::create_dir_all(out).map_err(io(format!("creating {}", out.display())))?;
    let md = out.join("latest.md");
    fs::write(&md, markdown).map_err(io(format!("writing {}", md.display())))?;
    let json_path = out.join("latest.json");
    let json = serde_json::to_string_pretty(run)
        .map_err(|err| BenchError::Policy(format!("serializing results: {err}")))?;
    fs::write(&json_path, json).map_err(io(format!("writing {}", json_path.display())))?;
    Ok(())
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let run = match run(&options) {
        Ok(run) => run,
        Err(err) => {
            eprintln!("meshsight-bench: {err}");
            return ExitCode::FAILURE;
        }
    };
    if options.list {
        return ExitCode::SUCCESS;
    }
    let markdown = run.to_markdown();
    print!("{markdown}");
    if let Err(err) = write_outputs(&options.out, &run, &markdown) {
        eprintln!("meshsight-bench: {err}");
        return ExitCode::FAILURE;
    }
    eprintln!(
        "meshsight-bench: wrote {} and {}",
        options.out.join("latest.md").display(),
        options.out.join("latest.json").display()
    );
    let failed: Vec<&str> = run
        .results
        .iter()
        .filter(|r| r.error.is_some())
        .map(|r| r.name.as_str())
        .collect();
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "meshsight-bench: {} scenario(s) failed: {}",
            failed.len(),
            failed.join(", ")
        );
        ExitCode::FAILURE
    }
}
