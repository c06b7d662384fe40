//! What a scenario's runs measure: the highest throughput (with Envoy's CPU time), the latency
//! at a fixed rate, and the row of one scenario. `run` fills them in, `report` renders them:
//! scenario <- measure <- {run, report}, no module needs one that needs it.

use serde::Serialize;

use super::loadgen::LoadReport;
use super::scenario::{Build, CollectorState, Filter, Group, Measure, Scenario, SensorState};

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
    /// Where a memory row's resident memory is (merged rows: the median of each part).
    pub memory_parts: Option<MemoryParts>,
    /// Where Envoy's CPU went during the highest-throughput runs (`--perf`; merged rows: the
    /// rounds' samples pooled).
    pub cpu_split: Option<CpuSplit>,
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
                    Filter::Meshsight {
                        root_id,
                        build: Build::Shipped,
                        ..
                    } => (*root_id).to_string(),
                    Filter::Meshsight {
                        root_id,
                        build: Build::OptLevel3,
                        ..
                    } => format!("{root_id} (meshsight_o3.wasm)"),
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
            memory_parts: None,
            cpu_split: None,
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
        let parts: Vec<MemoryParts> = rounds.iter().filter_map(|r| r.memory_parts).collect();
        let splits: Vec<CpuSplit> = rounds.iter().filter_map(|r| r.cpu_split).collect();
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
        merged.memory_parts = MemoryParts::median_of(&parts);
        merged.cpu_split = CpuSplit::pooled(&splits);
        merged.throughput = Throughput::median_of(&throughputs);
        merged.throughput_rounds = throughputs;
        Some(merged)
    }
}

/// Where a sidecar's resident memory is, read beside its `VmRSS` (issue 19): V8's compiled Wasm
/// code, and Envoy's heap (tcmalloc, admin `/memory`) in use and freed but still resident. Wasm
/// code is compiled up front (TurboFan, no Liftoff), and what the compiler allocates while it
/// works is freed but kept by the allocator: that share grows with the module too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemoryParts {
    /// Resident bytes of writable and executable mappings: V8's code space for compiled Wasm.
    pub jit_bytes: u64,
    /// tcmalloc's `allocated`: heap in use.
    pub heap_in_use: u64,
    /// tcmalloc's `pageheap_free` plus `total_thread_cache`: heap freed and not returned to the
    /// system.
    pub heap_freed_kept: u64,
}

impl MemoryParts {
    /// The parts from `/proc/<pid>/smaps` text and the admin `/memory` JSON (`None`: either is
    /// not what Envoy writes).
    pub fn read(smaps: &str, admin_memory: &str) -> Option<Self> {
        let memory: serde_json::Value = serde_json::from_str(admin_memory).ok()?;
        // Envoy writes tcmalloc's figures as decimal strings.
        let field = |name: &str| -> Option<u64> { memory.get(name)?.as_str()?.parse().ok() };
        let mut jit_kib = 0u64;
        let mut in_code_space = false;
        for line in smaps.lines() {
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                // A mapping's first line: `start-end perms offset dev inode [path]`.
                (Some(range), Some(perms)) if range.contains('-') && perms.len() == 4 => {
                    in_code_space = perms.starts_with("rwx");
                }
                (Some("Rss:"), Some(kib)) if in_code_space => jit_kib += kib.parse::<u64>().ok()?,
                _ => {}
            }
        }
        Some(Self {
            jit_bytes: jit_kib * 1024,
            heap_in_use: field("allocated")?,
            heap_freed_kept: field("pageheap_free")? + field("total_thread_cache")?,
        })
    }

    /// Each part's median over `rounds` (`None`: no round has them).
    pub fn median_of(rounds: &[Self]) -> Option<Self> {
        if rounds.is_empty() {
            return None;
        }
        let pick = |f: fn(&Self) -> u64| {
            median(rounds.iter().map(|p| f(p) as f64).collect()).round() as u64
        };
        Some(Self {
            jit_bytes: pick(|p| p.jit_bytes),
            heap_in_use: pick(|p| p.heap_in_use),
            heap_freed_kept: pick(|p| p.heap_freed_kept),
        })
    }
}

/// Where Envoy's CPU goes while it serves a scenario, from `perf record -g` samples of the
/// Envoy process (issue 19: throughput is Envoy's work around the module, and the shipped Envoy
/// has no symbols to name it). Envoy and V8 keep frame pointers, so each sample's call chain
/// reaches from the sampled instruction to the thread's start, through V8's generated code,
/// which perf shows as anonymous code (`/tmp/perf-<pid>.map`, there being no map file). A
/// sample is then one of three:
/// - **module**: the sampled instruction is in V8's generated code: the module's compiled
///   functions and their wrappers;
/// - **called by the module**: a frame of generated code is on the chain but the instruction is
///   not: host calls (headers, properties, filter state, metrics) and V8's runtime (bulk memory,
///   growing memory), with the kernel work they cause;
/// - **elsewhere**: no generated code on the chain: Envoy's own work (codec, router, access
///   loggers, the call into the VM and back), and the kernel's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct CpuSplit {
    /// Samples with a call chain.
    pub samples: u64,
    /// Samples in V8's generated code.
    pub module: u64,
    /// Samples below a frame of generated code, outside it.
    pub called_by_module: u64,
    /// Samples with no generated code on their chain.
    pub elsewhere: u64,
}

impl CpuSplit {
    /// The split of `perf script` text (samples separated by blank lines; each frame a line
    /// `<address> <symbol> (<object>)`, the sampled one first). `None`: no sample in it.
    pub fn read(perf_script: &str) -> Option<Self> {
        let mut split = Self::default();
        let mut frames = 0usize;
        let (mut leaf_generated, mut chain_generated) = (false, false);
        let mut finish = |frames: &mut usize, leaf: bool, chain: bool| {
            if *frames > 0 {
                split.samples += 1;
                if leaf {
                    split.module += 1;
                } else if chain {
                    split.called_by_module += 1;
                } else {
                    split.elsewhere += 1;
                }
            }
            *frames = 0;
        };
        for line in perf_script.lines() {
            // A frame: indented, a hex address first and its object last in parentheses (a
            // sample's header line ends with its event name and a colon).
            let frame = line.starts_with(char::is_whitespace)
                && line.trim_end().ends_with(')')
                && line
                    .split_whitespace()
                    .next()
                    .is_some_and(|a| a.bytes().all(|b| b.is_ascii_hexdigit()));
            if !frame {
                finish(&mut frames, leaf_generated, chain_generated);
                leaf_generated = false;
                chain_generated = false;
                continue;
            }
            let generated = line
                .trim_end()
                .rsplit_once(" (")
                .and_then(|(_, object)| object.strip_suffix(')'))
                .is_some_and(|object| object.starts_with("/tmp/perf-") && object.ends_with(".map"));
            if frames == 0 {
                leaf_generated = generated;
            }
            chain_generated |= generated;
            frames += 1;
        }
        finish(&mut frames, leaf_generated, chain_generated);
        (split.samples > 0).then_some(split)
    }

    /// The rounds' samples together (`None`: no round has any).
    pub fn pooled(rounds: &[Self]) -> Option<Self> {
        let mut sum = Self::default();
        for r in rounds {
            sum.samples += r.samples;
            sum.module += r.module;
            sum.called_by_module += r.called_by_module;
            sum.elsewhere += r.elsewhere;
        }
        (sum.samples > 0).then_some(sum)
    }

    /// `part`'s share of `cpu_us` (Envoy's CPU µs per request).
    pub fn us(&self, part: u64, cpu_us: f64) -> f64 {
        if self.samples == 0 {
            return f64::NAN;
        }
        part as f64 / self.samples as f64 * cpu_us
    }
}

#[cfg(test)]
mod tests {
    use super::{CpuSplit, MemoryParts};

    const SMAPS: &str = "\
563793149000-5637972af000 r-xp 00000000 fd:01 123 /usr/bin/envoy
Size:              68000 kB
Rss:               45164 kB
39c55fc54000-39c55ff39000 rwxp 00000000 00:00 0
Size:               2964 kB
Rss:                2600 kB
7f9400e60000-7f9401090000 rw-p 00000000 00:00 0
Rss:                1384 kB
39c560000000-39c560100000 rwxp 00000000 00:00 0
Rss:                  12 kB
";

    const MEMORY: &str = r#"{
 "allocated": "14956440",
 "heap_size": "37748736",
 "pageheap_unmapped": "0",
 "pageheap_free": "8126464",
 "total_thread_cache": "8778128",
 "total_physical_bytes": "40823614"
}"#;

    #[test]
    fn memory_parts_sum_code_space_and_split_the_heap() {
        let parts = MemoryParts::read(SMAPS, MEMORY).unwrap();
        // Only the two rwx mappings: Envoy's own text (r-xp) and data (rw-p) are not Wasm code.
        assert_eq!(parts.jit_bytes, (2600 + 12) * 1024);
        assert_eq!(parts.heap_in_use, 14_956_440);
        assert_eq!(parts.heap_freed_kept, 8_126_464 + 8_778_128);
    }

    #[test]
    fn memory_parts_refuse_what_envoy_does_not_write() {
        assert_eq!(MemoryParts::read(SMAPS, "not json"), None);
        assert_eq!(MemoryParts::read(SMAPS, r#"{"allocated": "1"}"#), None);
        assert_eq!(
            MemoryParts::read(SMAPS, &MEMORY.replace("\"14956440\"", "14956440")),
            None,
            "a number where Envoy writes a string"
        );
    }

    #[test]
    fn memory_parts_median_is_per_part() {
        let p = |j, u, k| MemoryParts {
            jit_bytes: j,
            heap_in_use: u,
            heap_freed_kept: k,
        };
        let median = MemoryParts::median_of(&[p(1, 30, 200), p(3, 10, 100), p(2, 20, 300)]);
        assert_eq!(median, Some(p(2, 20, 200)));
        assert_eq!(MemoryParts::median_of(&[]), None);
    }

    /// Three samples as `perf script` prints them: one in generated code (called from Envoy),
    /// one in Envoy called from generated code (a host call), one with no generated code.
    const PERF_SCRIPT: &str = "\
wrk:worker_0  3626 42642.328223:     500000 cpu-clock:ppp: 
\t    250dd987b6df [unknown] (/tmp/perf-3620.map)
\t    250dd98063ef [unknown] (/tmp/perf-3620.map)
\t         2facd35 [unknown] (/usr/lib/envoy/_bin/envoy)
\t           891f5 start_thread+0x305 (/usr/lib/x86_64-linux-gnu/libc.so.6)

wrk:worker_0  3626 42642.328725:     500000 cpu-clock:ppp: 
\t          152a8d __memmove_avx_unaligned_erms+0xd (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t         2f6706b [unknown] (/usr/lib/envoy/_bin/envoy)
\t         2facd35 [unknown] (/usr/lib/envoy/_bin/envoy)
\t    250dd97f419e [unknown] (/tmp/perf-3620.map)
\t         2facd35 [unknown] (/usr/lib/envoy/_bin/envoy)
\t           891f5 start_thread+0x305 (/usr/lib/x86_64-linux-gnu/libc.so.6)

wrk:worker_0  3626 42642.329216:     500000 cpu-clock:ppp: 
\tffffffff81000e06 asm_sysvec_apic_timer_interrupt+0x16 ([kernel.kallsyms])
\t         618bcdc [unknown] (/usr/lib/envoy/_bin/envoy)
\t           891f5 start_thread+0x305 (/usr/lib/x86_64-linux-gnu/libc.so.6)
";

    #[test]
    fn cpu_split_sorts_samples_by_where_generated_code_is_on_the_chain() {
        let split = CpuSplit::read(PERF_SCRIPT).unwrap();
        assert_eq!(
            split,
            CpuSplit {
                samples: 3,
                module: 1,
                called_by_module: 1,
                elsewhere: 1
            }
        );
        assert!((split.us(split.module, 300.0) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn cpu_split_without_a_trailing_blank_line_counts_the_last_sample() {
        let text = PERF_SCRIPT.trim_end();
        assert_eq!(CpuSplit::read(text).unwrap().samples, 3);
    }

    #[test]
    fn cpu_split_of_no_samples_is_none_and_pooling_adds_rounds() {
        assert_eq!(CpuSplit::read(""), None);
        assert_eq!(CpuSplit::read("perf: no samples\n\n"), None);
        let one = CpuSplit::read(PERF_SCRIPT).unwrap();
        let two = CpuSplit::pooled(&[one, one]).unwrap();
        assert_eq!((two.samples, two.module, two.elsewhere), (6, 2, 2));
        assert_eq!(CpuSplit::pooled(&[]), None);
    }
}
