//! How one scenario is run: its Envoy (pinned to one core), its helper servers, its load, and
//! Envoy's CPU time and memory read from `/proc`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::loadgen::{self, Load};
use super::measure::{CpuSplit, MemoryParts, ScenarioResult};
use super::measure::{Latency, Throughput};
use super::scenario::{
    access_log_json, http_filters_json, AccessLog, CollectorState, Measure, Scenario, SensorState,
    Settings, BENCH_HEADERS, TEMPLATE,
};
use super::upstream::BenchUpstream;
use super::BenchError;
use meshsight_rig::{try_send, Collector, CollectorBehavior, Envoy, HttpRequest, Sensor};

/// Envoy's bootstrap for a [`Scenario::release_freed_heap`] row: tcmalloc hands freed heap back
/// to the system every second, as a platform team can configure for its sidecars.
const RELEASE_FREED_HEAP: &str =
    "memory_allocator_manager: {bytes_to_release: 1073741824, memory_release_interval: 1s}";

/// Where Envoy's resident memory is (`None`: its smaps or admin `/memory` could not be read).
fn memory_parts(envoy: &Envoy) -> Option<MemoryParts> {
    let smaps = fs::read_to_string(format!("/proc/{}/smaps", envoy.pid())).ok()?;
    let memory = envoy.admin_get("/memory").ok()?;
    MemoryParts::read(&smaps, &String::from_utf8_lossy(&memory.body))
}

/// `perf record -g` of one Envoy while a throughput run loads it (`--perf`): started before
/// the run, stopped after it by its PID, read into a [`CpuSplit`].
struct PerfRecording {
    child: std::process::Child,
    data: PathBuf,
}

/// Samples a second per CPU: enough for a split within a percent over a 5 s run, little
/// enough not to load the machine the run measures.
const PERF_FREQUENCY: &str = "999";

impl PerfRecording {
    fn start(envoy_pid: u32) -> Result<Self, BenchError> {
        let data = std::env::temp_dir().join(format!(
            "meshsight-bench-perf-{}-{envoy_pid}.data",
            std::process::id()
        ));
        let child = Command::new("perf")
            .args(["record", "-g", "-q", "-F", PERF_FREQUENCY, "-p"])
            .arg(envoy_pid.to_string())
            .arg("-o")
            .arg(&data)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|source| BenchError::Io {
                context: "starting `perf record` (--perf; `make bench-perf` installs linux-perf)"
                    .to_string(),
                source,
            })?;
        // perf attaches to the process's threads before it samples.
        std::thread::sleep(Duration::from_millis(300));
        Ok(Self { child, data })
    }

    /// Stops the recording (SIGINT: perf writes its file and exits) and reads it.
    fn finish(mut self) -> Result<CpuSplit, BenchError> {
        let io = |context: &str| {
            let context = context.to_string();
            move |source| BenchError::Io { context, source }
        };
        Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .map_err(io("stopping `perf record`"))?;
        self.child.wait().map_err(io("waiting for `perf record`"))?;
        let script = Command::new("perf")
            .arg("script")
            .arg("-i")
            .arg(&self.data)
            .output()
            .map_err(io("running `perf script`"))?;
        let _ = fs::remove_file(&self.data);
        CpuSplit::read(&String::from_utf8_lossy(&script.stdout)).ok_or_else(|| BenchError::Io {
            context: format!(
                "perf recorded no call chains of Envoy ({})",
                String::from_utf8_lossy(&script.stderr).trim()
            ),
            source: std::io::Error::other("no samples"),
        })
    }
}

impl Drop for PerfRecording {
    fn drop(&mut self) {
        // A run that failed midway: the recording must not outlive it.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = fs::remove_file(&self.data);
    }
}

/// How long the memory rows' fixed number of requests may take before the run is killed.
const MEMORY_RUN_BOUND: Duration = Duration::from_secs(60);

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

/// A scenario's Envoy, the servers behind it, its access-log file and its request-body file
/// (dropped in this order: the files go once Envoy has stopped).
struct Stand {
    upstream: BenchUpstream,
    sensor: Sensor,
    collector: Collector,
    envoy: Envoy,
    access_log: Option<AccessLogFile>,
    body: Option<BodyFile>,
}

/// A file of the bench's own in the temporary directory: `meshsight-bench-<pid>-<n>-<what>`.
fn scratch_path(what: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("meshsight-bench-{}-{n}-{what}", std::process::id()))
}

/// The file oha reads a scenario's request body from (`-D`), removed with the scenario.
struct BodyFile(PathBuf);

impl BodyFile {
    fn write(bytes: &[u8]) -> Result<Self, BenchError> {
        let path = scratch_path("request.body");
        fs::write(&path, bytes).map_err(|source| BenchError::Io {
            context: format!("writing {}", path.display()),
            source,
        })?;
        Ok(Self(path))
    }
}

impl Drop for BodyFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// The file Envoy's logger writes a scenario's records to, removed with the scenario (a full
/// `make bench` writes hundreds of megabytes of records).
struct AccessLogFile(PathBuf, AccessLog);

impl AccessLogFile {
    fn new(kind: AccessLog) -> Self {
        Self(scratch_path("access.log"), kind)
    }

    /// Waits for Envoy's logger to flush (every second by default) its first record; an error
    /// naming the file when none came or it is not what the logger was set to write (an OCSF
    /// HTTP Activity, or the native anchor's JSON line for a 2xx).
    fn expect_record(&self, within: Duration) -> Result<(), BenchError> {
        let deadline = Instant::now() + within;
        loop {
            let text = fs::read_to_string(&self.0).unwrap_or_default();
            if let Some((line, _)) = text.split_once('\n') {
                let record: Value = serde_json::from_str(line).map_err(|e| {
                    BenchError::Policy(format!(
                        "{}: the access logger wrote a line that is not JSON ({e}): {line}",
                        self.0.display()
                    ))
                })?;
                let expected = match self.1 {
                    AccessLog::Ocsf => record["class_uid"] == 4002,
                    AccessLog::NativeJson => {
                        record["status"]
                            .as_u64()
                            .is_some_and(|s| (200..300).contains(&s))
                            && record["method"].is_string()
                    }
                    AccessLog::None => true,
                };
                if !expected {
                    return Err(BenchError::Policy(format!(
                        "{}: the access logger's record is not what it was set to write ({:?}): {line}",
                        self.0.display(),
                        self.1
                    )));
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(BenchError::Policy(format!(
                    "{}: Envoy's access logger wrote no record for the probe request within {} s \
                     (for OCSF: no verdict in filter state wasm.meshsight_ocsf?)",
                    self.0.display(),
                    within.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for AccessLogFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

impl Stand {
    /// Starts the servers in the scenario's states, then Envoy with its filters.
    fn start(scenario: &Scenario) -> Result<Self, BenchError> {
        let answer = scenario.answer.as_deref().unwrap_or(crate::upstream::BODY);
        let upstream = BenchUpstream::start_answering(answer).map_err(|source| BenchError::Io {
            context: "starting the bench upstream".to_string(),
            source,
        })?;
        let body = match &scenario.body {
            Some(body) => Some(BodyFile::write(&body.bytes)?),
            None => None,
        };
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
        let access_log = (scenario.access_log != AccessLog::None)
            .then(|| AccessLogFile::new(scenario.access_log));
        let log_config = match &access_log {
            Some(file) => access_log_json(file.1, &file.0),
            None => access_log_json(AccessLog::None, Path::new("")),
        };
        let envoy = Envoy::builder(TEMPLATE)
            .var("HTTP_FILTERS", filters)
            .var("ACCESS_LOG", log_config.to_string())
            .var("UPSTREAM_PORT", upstream.port().to_string())
            .var(
                "MEMORY_ALLOCATOR",
                if scenario.release_freed_heap {
                    RELEASE_FREED_HEAP
                } else {
                    ""
                },
            )
            .sensor(&sensor)
            .collector(&collector)
            .concurrency(scenario.workers)
            .log_level("warn")
            .component_log_level(None)
            .start()?;
        Ok(Self {
            upstream,
            sensor,
            collector,
            envoy,
            access_log,
            body,
        })
    }

    /// One request: a policy that refuses the bench request would measure 403s.
    fn probe(&self, scenario: &Scenario) -> Result<(), BenchError> {
        let mut probe = HttpRequest::new(&scenario.method, scenario.path.as_bytes())
            .header("host", &scenario.host)
            .timeout(Duration::from_secs(5));
        for (name, value) in BENCH_HEADERS {
            probe = probe.header(name, value);
        }
        if let Some(body) = &scenario.body {
            for (name, value) in &body.headers {
                probe = probe.header(name, value);
            }
            probe = probe.body(&body.bytes);
        }
        let body_bytes_before = self.upstream.body_bytes();
        let response = try_send(self.envoy.port(), &probe).map_err(|source| BenchError::Io {
            context: format!("probe {} {}", scenario.method, scenario.path),
            source,
        })?;
        if !(200..300).contains(&response.status) {
            return Err(BenchError::Policy(format!(
                "probe {} {} answered {} (not 2xx): {}",
                scenario.method,
                scenario.path,
                response.status,
                response.text()
            )));
        }
        // A row that measures a body or an answer measures it only if the bytes went through.
        if let Some(body) = &scenario.body {
            let passed = self.upstream.body_bytes() - body_bytes_before;
            if passed != body.bytes.len() as u64 {
                return Err(BenchError::Policy(format!(
                    "probe {} {}: the upstream got {passed} body bytes, not the {} sent",
                    scenario.method,
                    scenario.path,
                    body.bytes.len()
                )));
            }
        }
        if let Some(answer) = &scenario.answer {
            if response.body != *answer {
                return Err(BenchError::Policy(format!(
                    "probe {} {}: the answer is {} bytes, not the {} the upstream sends",
                    scenario.method,
                    scenario.path,
                    response.body.len(),
                    answer.len()
                )));
            }
        }
        // A row with the OCSF logger measures it only if it writes: the probe's record must
        // come out.
        if let Some(file) = &self.access_log {
            file.expect_record(Duration::from_secs(5))?;
        }
        Ok(())
    }
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
        ..
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
    let mut headers = vec![("host", scenario.host.as_str())];
    headers.extend(BENCH_HEADERS);
    if let Some(body) = &scenario.body {
        headers.extend(body.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    }
    let body = stand.body.as_ref().map(|file| file.0.as_path());
    let oha = |load: &Load| {
        loadgen::run(
            &settings.oha,
            &url,
            &headers,
            &scenario.method,
            body,
            load,
            oha_cpu,
        )
    };
    match scenario.measure {
        Measure::Memory { requests } => {
            // Only the memory: the requests bring every worker's connections, stream contexts
            // and the filter's per-worker state into being; the pause lets batches flush and
            // allocations settle before `VmRSS` is read.
            oha(&Load {
                duration: MEMORY_RUN_BOUND,
                requests: Some(requests),
                connections: settings.connections,
                rate: None,
            })?;
            std::thread::sleep(Duration::from_millis(1500));
            result.rss_bytes = envoy.rss_bytes();
            result.memory_parts = memory_parts(envoy);
        }
        Measure::ThroughputAndLatency | Measure::Latency | Measure::Throughput => {
            let measure_max = scenario.measure != Measure::Latency;
            // Warm-up (V8 tiers the filter code up, connection pools fill): flat out before a
            // throughput run, at the fixed rate before a latency-only run, so rate caps and
            // queues start the measured run as they would in steady state at that rate.
            oha(&Load {
                duration: settings.warmup,
                requests: None,
                connections: settings.connections,
                rate: (!measure_max).then_some(settings.rate),
            })?;
            if measure_max {
                let perf = if settings.perf {
                    Some(PerfRecording::start(envoy.pid())?)
                } else {
                    None
                };
                let before = cpu_ticks(envoy.pid());
                let report = oha(&Load {
                    duration: settings.duration,
                    requests: None,
                    connections: settings.connections,
                    rate: None,
                })?;
                let after = cpu_ticks(envoy.pid());
                let cpu_seconds = match (before, after) {
                    (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / TICKS_PER_SECOND),
                    _ => None,
                };
                result.throughput = Some(Throughput::new(report, cpu_seconds));
                if let Some(perf) = perf {
                    result.cpu_split = Some(perf.finish()?);
                }
            }
            if scenario.measure != Measure::Throughput {
                let report = oha(&Load {
                    duration: settings.duration,
                    requests: None,
                    connections: settings.connections,
                    rate: Some(settings.rate),
                })?;
                result.latency = Some(Latency::new(report, settings.rate));
            }
            result.rss_bytes = envoy.rss_bytes();
        }
    }

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
