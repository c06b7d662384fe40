//! What a scenario's runs measure: the highest throughput (with Envoy's CPU time), the latency
//! at a fixed rate, and the row of one scenario. `run` fills them in, `report` renders them:
//! scenario <- measure <- {run, report}, no module needs one that needs it.

use serde::Serialize;

use super::loadgen::LoadReport;
use super::scenario::{CollectorState, Filter, Group, Measure, Scenario, SensorState};

/// The highest-throughput run of a scenario (or the median over its rounds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Throughput {
    /// What oha measured (merged rows: counts and seconds summed over the rounds).
    pub load: LoadReport,
    /// Envoy's CPU time (user + system) during the run, seconds (merged rows: summed).
    pub envoy_cpu_seconds: Option<f64>,
    /// 2xx responses per second.
    pub ok_per_second: f64,
    /// Envoy CPU microseconds per answered request.
    pub cpu_us_per_request: Option<f64>,
    /// Share of one core Envoy used during the run (1.0 = saturated: Envoy was the bottleneck).
    pub cpu_share: Option<f64>,
}

impl Throughput {
    /// A throughput row from oha's report and Envoy's CPU time.
    pub fn new(load: LoadReport, envoy_cpu_seconds: Option<f64>) -> Self {
        let answered = (load.ok + load.non_2xx) as f64;
        let cpu_us_per_request = envoy_cpu_seconds
            .filter(|_| answered > 0.0)
            .map(|s| s * 1e6 / answered);
        let cpu_share = envoy_cpu_seconds
            .filter(|_| load.seconds > 0.0)
            .map(|s| s / load.seconds);
        Self {
            ok_per_second: load.ok_per_second,
            load,
            envoy_cpu_seconds,
            cpu_us_per_request,
            cpu_share,
        }
    }

    /// Each figure the median over `rounds`, counts summed.
    pub(crate) fn median_of(rounds: &[Throughput]) -> Option<Self> {
        let first = rounds.first()?;
        let pick = |f: fn(&Throughput) -> Option<f64>| {
            let values: Vec<f64> = rounds.iter().filter_map(f).collect();
            (!values.is_empty()).then(|| median(values))
        };
        let load = LoadReport {
            ok: rounds.iter().map(|t| t.load.ok).sum(),
            non_2xx: rounds.iter().map(|t| t.load.non_2xx).sum(),
            errors: rounds.iter().map(|t| t.load.errors).sum(),
            seconds: rounds.iter().map(|t| t.load.seconds).sum(),
            ..first.load.clone()
        };
        Some(Self {
            load,
            envoy_cpu_seconds: pick(|t| t.envoy_cpu_seconds).map(|m| m * rounds.len() as f64),
            ok_per_second: median(rounds.iter().map(|t| t.ok_per_second).collect()),
            cpu_us_per_request: pick(|t| t.cpu_us_per_request),
            cpu_share: pick(|t| t.cpu_share),
        })
    }
}

/// The fixed-rate run of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    /// What oha measured.
    pub load: LoadReport,
    /// The rate asked for.
    pub target_rate: u32,
}

impl Latency {
    /// A latency row from oha's report.
    pub fn new(load: LoadReport, target_rate: u32) -> Self {
        Self { load, target_rate }
    }
}

pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Everything measured for one scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioResult {
    /// Row label.
    pub name: String,
    /// Table.
    pub group: Group,
    /// Filters in the chain (`allowlist`, `mirror`, `audit`, `rbac`).
    pub filters: Vec<String>,
    /// Sensor behaviour.
    pub sensor: SensorState,
    /// Collector behaviour.
    pub collector: CollectorState,
    /// Request method and path (and its body's length and headers, when it has one).
    pub request: String,
    /// Length of the upstream's answer when the scenario chose it.
    pub answer_bytes: Option<usize>,
    /// The row this one is measured against ([`Group::Pairs`]).
    pub reference: Option<String>,
    /// Highest throughput, when measured (merged rows: the median of each figure).
    pub throughput: Option<Throughput>,
    /// Each round's throughput.
    pub throughput_rounds: Vec<Throughput>,
    /// Latency at the fixed rate (merged rows: the median of each percentile).
    pub latency: Option<Latency>,
    /// Each round's latency. Rounds are interleaved over all scenarios (A B C ... A B C ...) so
    /// that a burst of other work on the machine does not land on one row only.
    pub latency_rounds: Vec<Latency>,
    /// Envoy's worker threads.
    pub workers: u32,
    /// For a memory row, the requests sent before its resident memory was read.
    pub memory_requests: Option<u64>,
    /// Envoy's resident memory after the runs (merged rows: the median over the rounds).
    pub rss_bytes: Option<u64>,
    /// Each round's resident memory.
    pub rss_rounds: Vec<u64>,
    /// Requests the upstream answered (all runs, warm-up and probe included).
    pub upstream_requests: u64,
    /// Requests the sensor received (mirror copies).
    pub sensor_requests: u64,
    /// Records (NDJSON lines) the collector accepted.
    pub collector_records: u64,
    /// Non-zero meshsight, sensor/collector cluster and RBAC counters after the runs (warm-up
    /// included).
    pub counters: Vec<(String, u64)>,
    /// Why the scenario could not be measured.
    pub error: Option<String>,
    /// Wall time the scenario took, seconds.
    pub wall_seconds: f64,
}

impl ScenarioResult {
    /// An empty row for `scenario`.
    pub fn new(scenario: &Scenario) -> Self {
        Self {
            name: scenario.name.clone(),
            group: scenario.group,
            filters: scenario
                .filters
                .iter()
                .map(|f| match f {
                    Filter::Meshsight { root_id, .. } => (*root_id).to_string(),
                    Filter::Noop => "noop".to_string(),
                    Filter::HostCallProbe => "noop (host-call probe)".to_string(),
                    Filter::Rbac(_) => "rbac".to_string(),
                })
                .collect(),
            sensor: scenario.sensor,
            collector: scenario.collector,
            request: match &scenario.body {
                Some(body) => format!("{} {}, {}", scenario.method, scenario.path, body.describe()),
                None => format!("{} {}", scenario.method, scenario.path),
            },
            answer_bytes: scenario.answer.as_ref().map(Vec::len),
            reference: scenario.reference.clone(),
            workers: scenario.workers,
            memory_requests: match scenario.measure {
                Measure::Memory { requests } => Some(requests),
                Measure::ThroughputAndLatency | Measure::Latency | Measure::Throughput => None,
            },
            throughput: None,
            throughput_rounds: Vec::new(),
            latency: None,
            latency_rounds: Vec::new(),
            rss_bytes: None,
            rss_rounds: Vec::new(),
            upstream_requests: 0,
            sensor_requests: 0,
            collector_records: 0,
            counters: Vec::new(),
            error: None,
            wall_seconds: 0.0,
        }
    }
}

impl ScenarioResult {
    /// Merges the rounds of one row: throughput figures, latency percentiles and resident
    /// memory are the median over the rounds, counts are summed, the rest (counters, copies)
    /// is the last round's.
    pub fn merge_rounds(rounds: Vec<ScenarioResult>) -> Option<ScenarioResult> {
        let latencies: Vec<Latency> = rounds.iter().filter_map(|r| r.latency.clone()).collect();
        let throughputs: Vec<Throughput> =
            rounds.iter().filter_map(|r| r.throughput.clone()).collect();
        let error = rounds.iter().find_map(|r| r.error.clone());
        let rss: Vec<u64> = rounds.iter().filter_map(|r| r.rss_bytes).collect();
        let wall: f64 = rounds.iter().map(|r| r.wall_seconds).sum();
        let mut merged = rounds.into_iter().last()?;
        merged.error = error;
        merged.wall_seconds = wall;
        if let Some(first) = latencies.first() {
            let pick =
                |f: fn(&LoadReport) -> f64| median(latencies.iter().map(|l| f(&l.load)).collect());
            let mut load = first.load.clone();
            load.p50_ms = pick(|l| l.p50_ms);
            load.p90_ms = pick(|l| l.p90_ms);
            load.p99_ms = pick(|l| l.p99_ms);
            load.ok_per_second = pick(|l| l.ok_per_second);
            load.ok = latencies.iter().map(|l| l.load.ok).sum();
            load.non_2xx = latencies.iter().map(|l| l.load.non_2xx).sum();
            load.errors = latencies.iter().map(|l| l.load.errors).sum();
            load.seconds = latencies.iter().map(|l| l.load.seconds).sum();
            merged.latency = Some(Latency::new(load, first.target_rate));
        }
        merged.latency_rounds = latencies;
        merged.rss_bytes = (!rss.is_empty())
            .then(|| median(rss.iter().map(|&b| b as f64).collect()).round() as u64);
        merged.rss_rounds = rss;
        merged.throughput = Throughput::median_of(&throughputs);
        merged.throughput_rounds = throughputs;
        Some(merged)
    }
}
