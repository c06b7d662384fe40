//! The bench scenarios: what each one runs (filters, policies, sensor and collector behaviour)
//! and the Envoy configuration it renders. `run` runs them.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use super::BenchError;

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
    /// Envoy's resident memory after a fixed number of requests, at 1 and 2 workers.
    Memory,
    /// Request bodies and responses the mirror decodes or scans, each row against the row of
    /// its pair that sends the same bytes without that work ([`Scenario::reference`]).
    Pairs,
}

/// What Envoy's access logger writes per request in a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessLog {
    /// No access logger.
    None,
    /// The file logger rendering the OCSF record from the shipped template
    /// (`envoy-config/access-log/`) for requests the plugin left a verdict for: the audit
    /// `access_log` sink.
    Ocsf,
    /// The file logger writing [`NATIVE_LOG_FIELDS`] as one JSON object per request: what a
    /// user of Envoy's RBAC filter would log instead of meshsight's audit record.
    NativeJson,
}

/// What a scenario's runs measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// The highest throughput (with Envoy's CPU time), then the latency at the fixed rate.
    ThroughputAndLatency,
    /// Only the latency at the fixed rate (rate caps and queues as at that rate).
    Latency,
    /// Only the highest throughput, with Envoy's CPU time: for rows whose cost per request is
    /// the figure, and whose highest rate may be below the fixed rate (a 64 KiB body scanned),
    /// where latency at that rate would measure a queue.
    Throughput,
    /// Only Envoy's resident memory after this many requests.
    Memory {
        /// Requests sent before reading `VmRSS`.
        requests: u64,
    },
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
        /// Which build of the module: [`Build::Shipped`], or the same sources built for speed.
        build: Build,
    },
    /// The no-op anchor module (`meshsight_noop.wasm`).
    Noop,
    /// The same module as the host-call probe: the one pass's host calls and no logic.
    HostCallProbe,
    /// Envoy's RBAC HTTP filter with this typed config.
    Rbac(Value),
}

/// A build of the meshsight module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// `meshsight.wasm`, as `make wasm` ships it (the module's crates at opt-level "z").
    Shipped,
    /// `meshsight_o3.wasm`: the same sources with the module's crates at opt-level 3 (built by
    /// `make bench`), to show in one run what the shipped build trades: memory against speed.
    OptLevel3,
}

impl Build {
    /// The module name [`meshsight_rig::wasm_path`] takes, also the Envoy `vm_id`.
    pub fn module(self) -> &'static str {
        match self {
            Build::Shipped => "meshsight",
            Build::OptLevel3 => "o3",
        }
    }
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
    /// What its runs measure.
    pub measure: Measure,
    /// Envoy's worker threads (`--concurrency`).
    pub workers: u32,
    /// Request method.
    pub method: String,
    /// Request path (allowed by the scenario's policies).
    pub path: String,
    /// The requests' `host` (allowed by the scenario's policies): [`BENCH_HOST`], or for a
    /// policy whose every allowlist rule names hosts, one of those ([`probe_host`]).
    pub host: String,
    /// What Envoy's access logger writes (into a file of the scenario's own).
    pub access_log: AccessLog,
    /// The body every request carries, with the headers that say what it is (`None`: none).
    pub body: Option<RequestBody>,
    /// What the upstream answers every request with (`None`: its small JSON body,
    /// [`crate::upstream::BODY`]).
    pub answer: Option<Vec<u8>>,
    /// The row this one is measured against ([`Group::Pairs`]): the same bytes without the
    /// work the row measures.
    pub reference: Option<String>,
    /// Envoy returns freed heap to the system every second (its `memory_allocator_manager`):
    /// the memory rows that show what a platform team gets back by configuring it.
    pub release_freed_heap: bool,
}

/// A request body and the headers that describe it (`content-type`, `content-encoding`).
#[derive(Clone, PartialEq)]
pub struct RequestBody {
    /// The bytes sent (oha reads them from a file the scenario writes).
    pub bytes: Vec<u8>,
    /// Header fields sent with it.
    pub headers: Vec<(String, String)>,
}

impl RequestBody {
    /// What the report says of it: its length and headers.
    pub fn describe(&self) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}"))
            .collect();
        format!("{} B body, {}", self.bytes.len(), headers.join(", "))
    }
}

// The bytes are tens of kilobytes: a debug print names their length and headers only.
impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The row names [`crate::report`] reads the lean-module targets from.
pub mod rows {
    /// The Wasm no-op anchor: what any Wasm filter costs.
    pub const NOOP: &str = "wasm no-op filter";
    /// The bench's one pass with the audit through Envoy's access logger.
    pub const ONE_PASS_ACCESS_LOG: &str = "one pass: allowlist + mirror + audit (access log)";
    /// The bench's one pass with the audit's HTTP sink.
    pub const ONE_PASS_HTTP_SINK: &str = "one pass: allowlist + mirror + audit (http sink)";
    /// Memory row: Envoy without filters.
    pub const MEMORY_BARE: &str = "bare Envoy";
    /// Memory row: the Wasm no-op anchor (what V8 costs any Wasm filter).
    pub const MEMORY_NOOP: &str = "the Wasm no-op anchor";
    /// Memory row: the module with the audit section only.
    pub const MEMORY_AUDIT: &str = "meshsight.wasm, audit section only";
    /// Memory row: the module with the bench's one-pass policy.
    pub const MEMORY_ONE_PASS: &str = "meshsight.wasm, the one-pass policy";
    /// Memory row: the no-op anchor, Envoy returning freed heap to the system.
    pub const MEMORY_NOOP_RELEASED: &str = "the Wasm no-op anchor, freed heap returned";
    /// Memory row: the one-pass policy, Envoy returning freed heap to the system.
    pub const MEMORY_ONE_PASS_RELEASED: &str =
        "meshsight.wasm, the one-pass policy, freed heap returned";
    /// Memory row: the one-pass policy on the module built at opt-level 3 (`meshsight_o3.wasm`).
    pub const MEMORY_ONE_PASS_O3: &str = "meshsight_o3.wasm (opt-level 3), the one-pass policy";
    /// Suffix of a throughput row that runs the module built at opt-level 3.
    pub const O3_SUFFIX: &str = ", module at opt-level 3";

    /// The name of memory row `config` at `workers` workers.
    pub fn memory(config: &str, workers: u32) -> String {
        let plural = if workers == 1 { "" } else { "s" };
        format!("memory: {config}, {workers} worker{plural}")
    }
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
    /// Record Envoy with `perf` during each highest-throughput run (`--perf`): where its CPU goes.
    pub perf: bool,
}

/// The `http_filters` list of the Envoy config: `filters`, then the router.
pub fn http_filters_json(filters: &[Filter]) -> Value {
    let mut list: Vec<Value> = filters
        .iter()
        .map(|filter| match filter {
            Filter::Meshsight {
                root_id,
                policy,
                build,
            } => wasm_filter(root_id, build.module(), policy),
            Filter::Noop => wasm_filter("noop", "noop", ""),
            Filter::HostCallProbe => wasm_filter("noop", "noop", "one-pass-host-calls"),
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
                    "code": {"local": {"filename": meshsight_rig::wasm_path(module).display().to_string()}}
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": policy
                }
            }
        }
    })
}

/// The native anchor's access-log fields (name, Envoy command operator): about the facts of
/// meshsight's audit record (time, request, verdict, response, peer, agent, request id), so
/// the row pays for a comparable record.
pub const NATIVE_LOG_FIELDS: [(&str, &str); 15] = [
    ("time", "%START_TIME%"),
    ("method", "%REQ(:METHOD)%"),
    ("path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"),
    ("authority", "%REQ(:AUTHORITY)%"),
    ("protocol", "%PROTOCOL%"),
    ("status", "%RESPONSE_CODE%"),
    ("status_details", "%RESPONSE_CODE_DETAILS%"),
    ("response_flags", "%RESPONSE_FLAGS%"),
    ("bytes_received", "%BYTES_RECEIVED%"),
    ("bytes_sent", "%BYTES_SENT%"),
    ("duration_ms", "%DURATION%"),
    ("upstream_host", "%UPSTREAM_HOST%"),
    ("client_address", "%DOWNSTREAM_REMOTE_ADDRESS%"),
    ("user_agent", "%REQ(USER-AGENT)%"),
    ("request_id", "%REQ(X-REQUEST-ID)%"),
];

/// The listener's `access_log` list for `kind`, writing into `path`: empty for
/// [`AccessLog::None`]; for [`AccessLog::Ocsf`] the file logger rendering OCSF records from
/// `envoy-config/access-log/ocsf_http_activity.tmpl`, logging only requests the plugin left a
/// verdict for (as envoy-config/access-log/file.yaml ships it); for [`AccessLog::NativeJson`]
/// the file logger writing [`NATIVE_LOG_FIELDS`] as JSON for every request.
pub fn access_log_json(kind: AccessLog, path: &Path) -> Value {
    match kind {
        AccessLog::None => json!([]),
        AccessLog::Ocsf => ocsf_access_log_json(path),
        AccessLog::NativeJson => {
            let fields: serde_json::Map<String, Value> = NATIVE_LOG_FIELDS
                .iter()
                .map(|(name, operator)| (name.to_string(), Value::String(operator.to_string())))
                .collect();
            json!([{
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": path.display().to_string(),
                    "log_format": {"json_format": fields}
                }
            }])
        }
    }
}

fn ocsf_access_log_json(path: &Path) -> Value {
    let template =
        meshsight_rig::workspace_root().join("envoy-config/access-log/ocsf_http_activity.tmpl");
    json!([{
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": path.display().to_string(),
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

/// A one-plugin document with each section pointed at the bench's clusters.
pub fn local_document(mut document: Value) -> Value {
    if let Some(doc) = document.as_object_mut() {
        if let Some(mirror) = doc.remove("mirror") {
            doc.insert("mirror".into(), local_mirror_policy(mirror));
        }
        if let Some(audit) = doc.remove("audit") {
            doc.insert("audit".into(), local_audit_policy(audit));
        }
    }
    document
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

/// The `host` to send a policy's requests with: [`BENCH_HOST`], unless every rule of its
/// allowlist (the `allowlist` section of a one-pass document, or an allowlist policy alone)
/// names hosts, as a waypoint's policy does (one plugin for several services): then the first
/// exact host of its first rule.
pub fn probe_host(policy: &serde_json::Value) -> String {
    let allowlist = policy.get("allowlist").unwrap_or(policy);
    let rules = allowlist.get("rules").and_then(|r| r.as_array());
    let Some(rules) = rules.filter(|r| !r.is_empty()) else {
        return BENCH_HOST.to_string();
    };
    if !rules.iter().all(|rule| rule.get("hosts").is_some()) {
        return BENCH_HOST.to_string();
    }
    rules
        .iter()
        .flat_map(|rule| {
            rule.get("hosts")
                .and_then(|h| h.as_array())
                .into_iter()
                .flatten()
        })
        .filter_map(|host| host.as_str())
        .find(|host| !host.contains('*'))
        .unwrap_or(BENCH_HOST)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::{
        access_log_json, http_filters_json, probe_host, AccessLog, Build, Filter, BENCH_HOST,
        NATIVE_LOG_FIELDS,
    };
    use serde_json::json;
    use std::path::Path;

    #[test]
    fn the_native_anchor_logs_its_fields_as_json_for_every_request_and_ocsf_only_verdicts() {
        let native = access_log_json(AccessLog::NativeJson, Path::new("/tmp/a.log"));
        let config = &native[0]["typed_config"];
        assert_eq!(config["path"], "/tmp/a.log");
        let fields = config["log_format"]["json_format"].as_object().unwrap();
        assert_eq!(fields.len(), NATIVE_LOG_FIELDS.len());
        assert_eq!(fields["status"], "%RESPONSE_CODE%");
        assert!(native[0].get("filter").is_none(), "every request is logged");
        let ocsf = access_log_json(AccessLog::Ocsf, Path::new("/tmp/o.log"));
        assert_eq!(
            ocsf[0]["filter"]["extension_filter"]["typed_config"]["expression"],
            "'wasm.meshsight_ocsf' in filter_state"
        );
        assert_eq!(access_log_json(AccessLog::None, Path::new("")), json!([]));
    }

    #[test]
    fn the_opt_level_3_build_runs_its_own_module_in_its_own_vm() {
        let filter = |build| Filter::Meshsight {
            root_id: "meshsight",
            policy: "{}".to_string(),
            build,
        };
        let filters = http_filters_json(&[filter(Build::Shipped), filter(Build::OptLevel3)]);
        let vm = |i: usize| &filters[i]["typed_config"]["config"]["vm_config"];
        let file = |i: usize| {
            vm(i)["code"]["local"]["filename"]
                .as_str()
                .unwrap_or("")
                .to_string()
        };
        assert!(file(0).ends_with("/meshsight.wasm"), "{}", file(0));
        assert!(file(1).ends_with("/meshsight_o3.wasm"), "{}", file(1));
        // Another vm_id: the two builds never share a VM, even in one chain.
        assert_eq!(vm(0)["vm_id"], "meshsight");
        assert_eq!(vm(1)["vm_id"], "o3");
    }

    #[test]
    fn probe_host_is_a_rule_host_only_when_every_rule_names_hosts() {
        let waypoint = json!({"allowlist": {"rules": [
            {"name": "a", "hosts": ["*.shop", "checkout"], "paths": ["/x"]},
            {"name": "b", "hosts": ["checkout.shop"], "paths": ["/y"]}
        ]}});
        assert_eq!(probe_host(&waypoint), "checkout");
        let mixed = json!({"rules": [
            {"name": "a", "hosts": ["checkout"], "paths": ["/x"]},
            {"name": "b", "paths": ["/y"]}
        ]});
        assert_eq!(probe_host(&mixed), BENCH_HOST);
        assert_eq!(probe_host(&json!({"mirror": {}})), BENCH_HOST);
    }
}
