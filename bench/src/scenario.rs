//! The bench scenarios and how one is run: its Envoy, its helper servers, its load.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};

use super::loadgen::{self, Load};
use super::report::{Latency, Throughput};
use super::upstream::BenchUpstream;
use super::{BenchError, ScenarioResult};
use crate::rig::{try_send, Collector, CollectorBehavior, Envoy, HttpRequest, Sensor};

/// The Envoy template every scenario renders.
pub const TEMPLATE: &str = "envoy-config/bench/envoy.yaml";

/// The `host` header of every bench request (the Istio allowlist policy names no host).
pub const BENCH_HOST: &str = "shop.example.com";

/// The headers of every bench request besides `host`: what a browser or a service client
/// sends (about 10 realistic headers, credentials included), so that reading, scanning and
/// recording the head cost what they cost in production. No `x-request-id`: Envoy makes a new
/// one per request, as it does for real traffic (sampling keys on it).
pub const BENCH_HEADERS: [(&str, &str); 9] = [
    ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"),
    ("accept", "application/json, text/plain, */*"),
    ("accept-language", "en-US,en;q=0.9,de;q=0.8"),
    ("accept-encoding", "gzip, deflate, br"),
    ("cookie", "session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; _ga=GA1.2.1234567890.1700000000"),
    ("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIiwic2NvcGUiOiJyZWFkIn0.c2lnbmF0dXJl"),
    ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ("referer", "https://shop.example.com/catalog?page=2"),
    ("x-forwarded-for", "203.0.113.7"),
];

/// Which table a scenario's row goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// Envoy without filters, each filter alone, the three chained.
    Filters,
    /// The allowlist at growing rule counts, and Envoy's RBAC filter with the same rules.
    RuleScale,
    /// The mirror filter with its sensor healthy, down or hanging.
    MirrorSensor,
    /// The audit filter's HTTP sink with its collector healthy or slow.
    AuditCollector,
}

/// One HTTP filter in a scenario's chain (the router is always appended).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// A plugin of the meshsight module (`meshsight.wasm`): its root id picks the jobs (see
    /// `meshsight_policy::plugin`). Every meshsight plugin of a chain shares one VM (same
    /// `vm_id`, code and runtime), as in the three-plugin deployment.
    Meshsight {
        /// Root id: `meshsight` (one pass) or `meshsight_<job>`.
        root_id: &'static str,
        /// Plugin configuration (JSON text).
        policy: String,
    },
    /// The no-op anchor module (`meshsight_noop.wasm`).
    Noop,
    /// Envoy's RBAC HTTP filter with this typed config.
    Rbac(Value),
}

/// How the sensor behaves during a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorState {
    /// Answers 200 at once.
    Healthy,
    /// Stopped: its port refuses connections.
    Down,
    /// Accepts requests and never answers.
    Hanging,
}

/// How the audit collector behaves during a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectorState {
    /// Accepts at once.
    Healthy,
    /// Accepts after this many milliseconds.
    Slow(u64),
}

/// One measured configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Row label.
    pub name: String,
    /// Table.
    pub group: Group,
    /// HTTP filters before the router.
    pub filters: Vec<Filter>,
    /// Sensor behaviour.
    pub sensor: SensorState,
    /// Collector behaviour.
    pub collector: CollectorState,
    /// Whether to measure the highest throughput (fixed-rate latency is always measured).
    pub measure_max: bool,
    /// Request method.
    pub method: String,
    /// Request path (allowed by the scenario's policies).
    pub path: String,
    /// Envoy's file access logger renders the OCSF record from the shipped template
    /// (`envoy-config/access-log/`), into the run directory: the audit `access_log` sink.
    pub ocsf_access_log: bool,
}

/// How hard and how long each scenario is driven, and where.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    /// Length of the highest-throughput run and of the fixed-rate run.
    pub duration: Duration,
    /// Warm-up before measuring (V8 tiers up the filter code, pools fill).
    pub warmup: Duration,
    /// Connections of every run.
    pub connections: u32,
    /// Request rate of the fixed-rate run.
    pub rate: u32,
    /// The `oha` binary.
    pub oha: PathBuf,
    /// CPU Envoy is pinned to, and CPU oha is pinned to (`None`: no pinning, one core).
    pub cpus: Option<(usize, usize)>,
}

/// Linux reports process CPU time in clock ticks of 1/100 s (`USER_HZ`, fixed by the ABI).
const TICKS_PER_SECOND: f64 = 100.0;

/// User + system CPU time of process `pid`, in ticks (all its threads).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Pins every thread of `pid` to `cpu`.
fn pin(pid: u32, cpu: usize) -> Result<(), BenchError> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|source| BenchError::Io {
            context: "running taskset".to_string(),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(BenchError::LoadGenerator(format!(
            "taskset could not pin Envoy (pid {pid}) to CPU {cpu}: {status}"
        )))
    }
}

/// The `http_filters` list of the Envoy config: `filters`, then the router.
pub fn http_filters_json(filters: &[Filter]) -> Value {
    let mut list: Vec<Value> = filters
        .iter()
        .map(|filter| match filter {
            Filter::Meshsight { root_id, policy } => wasm_filter(root_id, "meshsight", policy),
            Filter::Noop => wasm_filter("noop", "noop", ""),
            Filter::Rbac(config) => json!({
                "name": "envoy.filters.http.rbac",
                "typed_config": config
            }),
        })
        .collect();
    list.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
    }));
    Value::Array(list)
}

fn wasm_filter(root_id: &str, module: &str, policy: &str) -> Value {
    json!({
        "name": format!("{root_id}.filter"),
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": root_id,
                "root_id": root_id,
                "fail_open": false,
                "vm_config": {
                    "vm_id": module,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": crate::rig::wasm_path(module).display().to_string()}}
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": policy
                }
            }
        }
    })
}

/// The listener's `access_log` list: empty, or the file logger rendering OCSF records from
/// `envoy-config/access-log/ocsf_http_activity.tmpl` into a file in the temporary directory
/// (one per bench process), logging only requests the plugin left a verdict for (as
/// envoy-config/access-log/file.yaml ships it).
pub fn access_log_json(ocsf: bool) -> Value {
    if !ocsf {
        return json!([]);
    }
    let template =
        crate::rig::workspace_root().join("envoy-config/access-log/ocsf_http_activity.tmpl");
    json!([{
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": std::env::temp_dir()
                .join(format!("meshsight-bench-{}-ocsf.log", std::process::id()))
                .display()
                .to_string(),
            "log_format": {"text_format_source": {"filename": template.display().to_string()}}
        },
        "filter": {"extension_filter": {
            "name": "envoy.access_loggers.extension_filters.cel",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
                "expression": "'wasm.meshsight_ocsf' in filter_state"
            }
        }}
    }])
}

/// Reads `<dir>/<name>.json` (a policy dumped from the Istio manifests).
pub fn read_policy(dir: &Path, name: &str) -> Result<Value, BenchError> {
    let path = dir.join(format!("{name}.json"));
    let text = fs::read_to_string(&path).map_err(|source| BenchError::Io {
        context: format!(
            "reading {} (run `make bench`, which writes it from envoy-config/istio/)",
            path.display()
        ),
        source,
    })?;
    serde_json::from_str(&text)
        .map_err(|err| BenchError::Policy(format!("{} is not JSON: {err}", path.display())))
}

/// Points a mirror policy's every target at the bench's `sensor` cluster.
pub fn local_mirror_policy(mut policy: Value) -> Value {
    if let Some(targets) = policy.get_mut("targets").and_then(Value::as_object_mut) {
        for target in targets.values_mut() {
            if let Some(target) = target.as_object_mut() {
                target.insert("cluster".into(), Value::String("sensor".into()));
            }
        }
    }
    policy
}

/// Points an audit policy's HTTP sink at the bench's `collector` cluster.
pub fn local_audit_policy(mut policy: Value) -> Value {
    if let Some(http) = policy
        .pointer_mut("/sink/http")
        .and_then(Value::as_object_mut)
    {
        http.insert("cluster".into(), Value::String("collector".into()));
    }
    policy
}

/// Runs one scenario and returns its row (a scenario that cannot be set up is a row with the
/// error, so one broken filter does not hide the other figures).
pub fn run(scenario: &Scenario, settings: &Settings) -> ScenarioResult {
    let started = Instant::now();
    let mut result = ScenarioResult::new(scenario);
    if let Err(err) = measure(scenario, settings, &mut result) {
        result.error = Some(err.to_string());
    }
    result.wall_seconds = started.elapsed().as_secs_f64();
    result
}

/// A scenario's Envoy and the servers behind it (dropped in reverse order: Envoy first).
struct Stand {
    upstream: BenchUpstream,
    sensor: Sensor,
    collector: Collector,
    envoy: Envoy,
}

impl Stand {
    /// Starts the servers in the scenario's states, then Envoy with its filters.
    fn start(scenario: &Scenario) -> Result<Self, BenchError> {
        let upstream = BenchUpstream::start().map_err(|source| BenchError::Io {
            context: "starting the bench upstream".to_string(),
            source,
        })?;
        let mut sensor = Sensor::start();
        match scenario.sensor {
            SensorState::Healthy => {}
            SensorState::Down => sensor.stop(),
            SensorState::Hanging => sensor.set_hang(true),
        }
        let collector = Collector::start();
        if let CollectorState::Slow(ms) = scenario.collector {
            collector.set_behavior(CollectorBehavior::Slow(Duration::from_millis(ms)));
        }
        let filters = http_filters_json(&scenario.filters).to_string();
        let envoy = Envoy::builder(TEMPLATE)
            .var("HTTP_FILTERS", filters)
            .var(
                "ACCESS_LOG",
                access_log_json(scenario.ocsf_access_log).to_string(),
            )
            .var("UPSTREAM_PORT", upstream.port().to_string())
            .sensor(&sensor)
            .collector(&collector)
            .concurrency(1)
            .log_level("warn")
            .component_log_level(None)
            .start()?;
        Ok(Self {
            upstream,
            sensor,
            collector,
            envoy,
        })
    }

    /// One request: a policy that refuses the bench request would measure 403s.
    fn probe(&self, scenario: &Scenario) -> Result<(), BenchError> {
        let mut probe = HttpRequest::new(&scenario.method, scenario.path.as_bytes())
            .header("host", BENCH_HOST)
            .timeout(Duration::from_secs(5));
        for (name, value) in BENCH_HEADERS {
            probe = probe.header(name, value);
        }
        let response = try_send(self.envoy.port(), &probe).map_err(|source| BenchError::Io {
            context: format!("probe {} {}", scenario.method, scenario.path),
            source,
        })?;
        if (200..300).contains(&response.status) {
            Ok(())
        } else {
            Err(BenchError::Policy(format!(
                "probe {} {} answered {} (not 2xx): {}",
                scenario.method,
                scenario.path,
                response.status,
                response.text()
            )))
        }
    }
}

/// Starts the scenario's Envoy (which exits if a filter refuses its policy) and sends the
/// probe request: no load. `make istio-validate` runs this on the Istio manifests' policies.
pub fn check(scenario: &Scenario) -> Result<(), BenchError> {
    Stand::start(scenario)?.probe(scenario)
}

fn measure(
    scenario: &Scenario,
    settings: &Settings,
    result: &mut ScenarioResult,
) -> Result<(), BenchError> {
    let stand = Stand::start(scenario)?;
    let Stand {
        upstream,
        sensor,
        collector,
        envoy,
    } = &stand;
    let oha_cpu = match settings.cpus {
        Some((envoy_cpu, oha_cpu)) => {
            pin(envoy.pid(), envoy_cpu)?;
            Some(oha_cpu)
        }
        None => None,
    };
    stand.probe(scenario)?;

    let url = envoy.url(&scenario.path);
    let mut headers = vec![("host", BENCH_HOST)];
    headers.extend(BENCH_HEADERS);
    let oha = |load: &Load| {
        loadgen::run(
            &settings.oha,
            &url,
            &headers,
            &scenario.method,
            load,
            oha_cpu,
        )
    };
    // Warm-up (V8 tiers the filter code up, connection pools fill): flat out before a
    // throughput run, at the fixed rate before a latency-only run, so rate caps and queues
    // start the measured run as they would in steady state at that rate.
    oha(&Load {
        duration: settings.warmup,
        connections: settings.connections,
        rate: (!scenario.measure_max).then_some(settings.rate),
    })?;

    if scenario.measure_max {
        let before = cpu_ticks(envoy.pid());
        let report = oha(&Load {
            duration: settings.duration,
            connections: settings.connections,
            rate: None,
        })?;
        let after = cpu_ticks(envoy.pid());
        let cpu_seconds = match (before, after) {
            (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / TICKS_PER_SECOND),
            _ => None,
        };
        result.throughput = Some(Throughput::new(report, cpu_seconds));
    }
    let report = oha(&Load {
        duration: settings.duration,
        connections: settings.connections,
        rate: Some(settings.rate),
    })?;
    result.latency = Some(Latency::new(report, settings.rate));
    result.rss_bytes = envoy.rss_bytes();

    // Let the audit filter flush its last batch before counting what arrived.
    std::thread::sleep(Duration::from_millis(1500));
    let stats = envoy.stats();
    let mut counters: Vec<(String, u64)> = stats
        .into_iter()
        .filter(|(name, value)| {
            *value > 0
                && (name.starts_with("wasmcustom.meshsight_")
                    || name.contains(".rbac.")
                    || [
                        "cluster.sensor.upstream_rq_total",
                        "cluster.sensor.upstream_rq_2xx",
                        "cluster.sensor.upstream_rq_5xx",
                        "cluster.sensor.upstream_rq_timeout",
                        "cluster.sensor.upstream_cx_connect_fail",
                        "cluster.collector.upstream_rq_total",
                        "cluster.collector.upstream_rq_2xx",
                        "cluster.collector.upstream_rq_timeout",
                    ]
                    .contains(&name.as_str()))
        })
        .collect();
    counters.sort();
    result.counters = counters;
    result.upstream_requests = upstream.requests();
    result.sensor_requests = sensor.requests().len() as u64;
    result.collector_records = collector
        .bodies()
        .iter()
        .map(|body| {
            body.split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count() as u64
        })
        .sum();
    Ok(())
}
