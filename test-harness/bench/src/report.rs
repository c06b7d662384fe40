//! Bench results: one row per scenario, rendered as markdown tables and JSON.

use std::fmt::Write as _;

use serde::Serialize;

use super::loadgen::LoadReport;
use super::measure::{CpuSplit, MemoryParts, ScenarioResult, Throughput};
use super::scenario::{rows, CollectorState, Group, SensorState, Settings};

/// A whole bench run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchRun {
    /// When it started (UTC, RFC 3339).
    pub started: String,
    /// The Envoy binary and its `--version`.
    pub envoy: String,
    /// The oha binary and its `--version`.
    pub load_generator: String,
    /// CPUs online.
    pub cpus: usize,
    /// `/proc/loadavg` before and after: other work on the machine skews absolute figures.
    pub loadavg_before: String,
    /// `/proc/loadavg` after the run.
    pub loadavg_after: String,
    /// Load shape.
    pub settings: Settings,
    /// Rounds each scenario ran.
    pub rounds: usize,
    /// Size of the `meshsight.wasm` the run loaded, bytes.
    pub module_bytes: Option<u64>,
    /// One row per scenario, in run order.
    pub results: Vec<ScenarioResult>,
}

fn ms(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "–".to_string()
    }
}

fn ratio(value: f64, reference: f64) -> String {
    if reference > 0.0 && value.is_finite() {
        format!("{:.2}", value / reference)
    } else {
        "–".to_string()
    }
}

fn delta(value: f64, reference: f64) -> String {
    if reference > 0.0 && value.is_finite() {
        format!("{:+.0}%", (value / reference - 1.0) * 100.0)
    } else {
        "–".to_string()
    }
}

/// Megabytes (10^6 bytes, as issue 19 states its memory figures).
const MB: f64 = 1e6;

fn mb(bytes: Option<u64>) -> String {
    bytes
        .map(|b| format!("{:.1}", b as f64 / MB))
        .unwrap_or_else(|| "–".to_string())
}

/// `value - reference` with a sign, one decimal (`+9.7`).
fn over(value: f64, reference: f64) -> String {
    if value.is_finite() && reference.is_finite() {
        format!("{:+.1}", value - reference)
    } else {
        "–".to_string()
    }
}

/// Megabytes more than `reference` (`+23.6`).
fn mb_over(value: Option<u64>, reference: Option<u64>) -> String {
    match (value, reference) {
        (Some(v), Some(r)) => format!("{:+.1}", (v as f64 - r as f64) / MB),
        _ => "–".to_string(),
    }
}

fn failures(result: &ScenarioResult) -> String {
    let count =
        |l: &Option<LoadReport>| l.as_ref().map(|l| (l.non_2xx, l.errors)).unwrap_or((0, 0));
    let (a, b) = count(&result.throughput.as_ref().map(|t| t.load.clone()));
    let (c, d) = count(&result.latency.as_ref().map(|l| l.load.clone()));
    format!("{} / {}", a + c, b + d)
}

impl BenchRun {
    /// The baseline row (no filters) that ratios refer to.
    fn baseline(&self) -> Option<&ScenarioResult> {
        self.results
            .iter()
            .find(|r| r.group == Group::Filters && r.filters.is_empty() && r.error.is_none())
    }

    /// The row named `name`, if it was measured.
    fn row(&self, name: &str) -> Option<&ScenarioResult> {
        self.results
            .iter()
            .find(|r| r.name == name && r.error.is_none())
    }

    /// Highest throughput and Envoy CPU µs per request of row `name` (NaN when not measured).
    fn throughput_of(&self, name: &str) -> (f64, f64) {
        self.row(name)
            .and_then(|r| r.throughput.as_ref())
            .map(|t| (t.ok_per_second, t.cpu_us_per_request.unwrap_or(f64::NAN)))
            .unwrap_or((f64::NAN, f64::NAN))
    }

    /// Resident memory of memory row `config` at `workers`.
    fn rss_of(&self, config: &str, workers: u32) -> Option<u64> {
        self.row(&rows::memory(config, workers))
            .and_then(|r| r.rss_bytes)
    }

    /// The run as markdown: a header and one table per group.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# meshsight bench, {}\n", self.started);
        let _ = writeln!(
            out,
            "Envoy `{}`, `--concurrency 1`{}; load generator {}; {} CPUs; load average before {} / after {}.",
            self.envoy,
            match self.settings.cpus {
                Some((e, o)) => format!(" pinned to CPU {e}, load generator on CPU {o}"),
                None => String::new(),
            },
            self.load_generator,
            self.cpus,
            self.loadavg_before,
            self.loadavg_after
        );
        let _ = writeln!(
            out,
            "Highest throughput: {} s, {} connections. Latency: {} rps for {} s (oha `--latency-correction`), {} connections. \
             Every scenario ran in {} rounds interleaved over all scenarios; each figure is the median over its rounds. \
             Envoy CPU is user+system time of the Envoy process per answered request during the throughput run; \
             `CPU share` 1.00 means Envoy's core was saturated.\n",
            self.settings.duration.as_secs_f64(),
            self.settings.connections,
            self.settings.rate,
            self.settings.duration.as_secs_f64(),
            self.settings.connections,
            self.rounds,
        );
        if let Some(base) = self.baseline() {
            let per_round = |f: fn(&Throughput) -> f64| {
                base.throughput_rounds
                    .iter()
                    .map(|t| format!("{:.0}", f(t)))
                    .collect::<Vec<_>>()
                    .join(" / ")
            };
            let _ = writeln!(
                out,
                "Baseline per round (the spread is the machine's noise): max rps {}; Envoy CPU µs/req {}.\n",
                per_round(|t| t.ok_per_second),
                per_round(|t| t.cpu_us_per_request.unwrap_or(f64::NAN)),
            );
        }
        let base_tp = self
            .baseline()
            .and_then(|b| b.throughput.as_ref())
            .map(|t| (t.ok_per_second, t.cpu_us_per_request.unwrap_or(f64::NAN)))
            .unwrap_or((f64::NAN, f64::NAN));
        let noop_tp = self.throughput_of(rows::NOOP);
        self.targets_markdown(&mut out, noop_tp);

        for (group, title) in [
            (Group::Filters, "Filters vs Envoy without filters"),
            (
                Group::RuleScale,
                "Allowlist rule count, and Envoy RBAC with the same rules",
            ),
        ] {
            let rows: Vec<&ScenarioResult> =
                self.results.iter().filter(|r| r.group == group).collect();
            if rows.is_empty() {
                continue;
            }
            let _ = writeln!(out, "## {title}\n");
            let _ = writeln!(
                out,
                "| scenario | max rps | vs baseline | vs no-op | Envoy CPU µs/req | over baseline | over no-op | CPU share | p50 ms | p90 ms | p99 ms | RSS MB | non-2xx / errors |"
            );
            let _ = writeln!(
                out,
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
            );
            for r in rows {
                if let Some(err) = &r.error {
                    let _ = writeln!(out, "| {} | failed: {} ||||||||||||", r.name, one_line(err));
                    continue;
                }
                let (rps, cpu, share) = r
                    .throughput
                    .as_ref()
                    .map(|t| {
                        (
                            t.ok_per_second,
                            t.cpu_us_per_request.unwrap_or(f64::NAN),
                            t.cpu_share.unwrap_or(f64::NAN),
                        )
                    })
                    .unwrap_or((f64::NAN, f64::NAN, f64::NAN));
                let (p50, p90, p99) = r
                    .latency
                    .as_ref()
                    .map(|l| (l.load.p50_ms, l.load.p90_ms, l.load.p99_ms))
                    .unwrap_or((f64::NAN, f64::NAN, f64::NAN));
                let _ = writeln!(
                    out,
                    "| {} | {:.0} | {} | {} | {:.1} | {} | {} | {:.2} | {} | {} | {} | {} | {} |",
                    r.name,
                    rps,
                    ratio(rps, base_tp.0),
                    ratio(rps, noop_tp.0),
                    cpu,
                    over(cpu, base_tp.1),
                    over(cpu, noop_tp.1),
                    share,
                    ms(p50),
                    ms(p90),
                    ms(p99),
                    mb(r.rss_bytes),
                    failures(r)
                );
            }
            out.push('\n');
        }
        self.memory_markdown(&mut out);
        self.cpu_split_markdown(&mut out);
        self.pairs_markdown(&mut out);

        for (group, title, what) in [
            (
                Group::MirrorSensor,
                "Mirror: sensor healthy, down, hanging",
                "sensor got",
            ),
            (
                Group::AuditCollector,
                "Audit HTTP sink: collector healthy, slow",
                "collector got",
            ),
        ] {
            let rows: Vec<&ScenarioResult> =
                self.results.iter().filter(|r| r.group == group).collect();
            if rows.is_empty() {
                continue;
            }
            let reference = rows
                .iter()
                .find(|r| {
                    r.error.is_none()
                        && r.sensor == SensorState::Healthy
                        && r.collector == CollectorState::Healthy
                })
                .and_then(|r| r.latency.as_ref())
                .map(|l| (l.load.p50_ms, l.load.p90_ms, l.load.p99_ms))
                .unwrap_or((f64::NAN, f64::NAN, f64::NAN));
            let rounds = rows
                .iter()
                .map(|r| r.latency_rounds.len())
                .max()
                .unwrap_or(0);
            let _ = writeln!(
                out,
                "## {title} (latency at {} rps{})\n",
                self.settings.rate,
                if rounds > 1 {
                    format!(", median of {rounds} interleaved rounds")
                } else {
                    String::new()
                }
            );
            let _ = writeln!(
                out,
                "| scenario | p50 ms | p90 ms | p99 ms | p50 / p90 / p99 vs healthy | achieved rps | non-2xx / errors | {what} | RSS MB | filter counters (last round, warm-up + run) |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---|---:|---|---:|---:|---|");
            for r in rows {
                if let Some(err) = &r.error {
                    let _ = writeln!(out, "| {} | failed: {} ||||||||", r.name, one_line(err));
                    continue;
                }
                let Some(l) = r.latency.as_ref() else {
                    continue;
                };
                let got = if group == Group::MirrorSensor {
                    format!("{} copies", r.sensor_requests)
                } else {
                    format!("{} records", r.collector_records)
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} / {} / {} | {:.0} | {} | {} | {} | {} |",
                    r.name,
                    ms(l.load.p50_ms),
                    ms(l.load.p90_ms),
                    ms(l.load.p99_ms),
                    delta(l.load.p50_ms, reference.0),
                    delta(l.load.p90_ms, reference.1),
                    delta(l.load.p99_ms, reference.2),
                    l.load.ok_per_second,
                    failures(r),
                    got,
                    mb(r.rss_bytes),
                    filter_counters(r)
                );
            }
            out.push('\n');
        }
        out
    }
}

impl BenchRun {
    /// The lean-module targets (issue 19) against this run's figures, each against the
    /// no-op anchor of the same run.
    fn targets_markdown(&self, out: &mut String, noop_tp: (f64, f64)) {
        let mut lines: Vec<(String, String, String, Option<bool>)> = Vec::new();
        let kb = self.module_bytes.map(|b| b as f64 / 1e3);
        lines.push((
            "`meshsight.wasm` size".to_string(),
            "≤ 400 KB".to_string(),
            kb.map(|k| format!("{k:.0} KB"))
                .unwrap_or_else(|| "–".to_string()),
            kb.map(|k| k <= 400.0),
        ));
        for workers in [1, 2] {
            let one_pass = self.rss_of(rows::MEMORY_ONE_PASS, workers);
            let noop = self.rss_of(rows::MEMORY_NOOP, workers);
            let met = one_pass
                .zip(noop)
                .map(|(o, n)| (o as f64 - n as f64) / MB <= 12.0);
            lines.push((
                format!(
                    "RSS over the no-op anchor, one pass, {workers} worker{}",
                    if workers == 1 { "" } else { "s" }
                ),
                "≤ +12 MB".to_string(),
                format!("{} MB", mb_over(one_pass, noop)),
                met,
            ));
        }
        for (name, label, floor) in [
            (
                rows::ONE_PASS_ACCESS_LOG,
                "one pass, access-log audit, throughput vs the no-op anchor",
                0.85,
            ),
            (
                rows::ONE_PASS_HTTP_SINK,
                "one pass, http sink, throughput vs the no-op anchor",
                0.75,
            ),
        ] {
            let (rps, _) = self.throughput_of(name);
            let value = rps / noop_tp.0;
            lines.push((
                label.to_string(),
                format!("≥ {floor:.2}"),
                ratio(rps, noop_tp.0),
                value.is_finite().then_some(value >= floor),
            ));
        }
        if let Some(native) = self
            .results
            .iter()
            .find(|r| r.name.starts_with("native anchor") && r.error.is_none())
        {
            let rps = native
                .throughput
                .as_ref()
                .map_or(f64::NAN, |t| t.ok_per_second);
            lines.push((
                "for reference: the native anchor (Envoy RBAC + JSON access log) vs the no-op anchor"
                    .to_string(),
                "–".to_string(),
                ratio(rps, noop_tp.0),
                None,
            ));
        }
        lines.push((
            "host calls on an allowed request that nothing flags".to_string(),
            "≤ 3".to_string(),
            "`make v8-profile` counts them".to_string(),
            None,
        ));
        // Without the rows a target reads (e.g. `--only`), its line says `–`; the section is
        // left out only when none of its figures was measured.
        if lines.iter().all(|(_, _, _, met)| met.is_none()) {
            return;
        }
        let _ = writeln!(out, "## Lean-module targets (issue 19), this run\n");
        let _ = writeln!(out, "| target | goal | measured | met |");
        let _ = writeln!(out, "|---|---|---:|---|");
        for (label, goal, measured, met) in lines {
            let met = match met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            let _ = writeln!(out, "| {label} | {goal} | {measured} | {met} |");
        }
        out.push('\n');
    }

    /// The pairs table: each request-body or response row against its reference row, the same
    /// bytes without the work it measures, as medians and round by round (the rounds of a pair
    /// ran next to each other, so their ratio is steadier than either figure).
    fn pairs_markdown(&self, out: &mut String) {
        let rows: Vec<&ScenarioResult> = self
            .results
            .iter()
            .filter(|r| r.group == Group::Pairs)
            .collect();
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "## Request bodies and responses, each row against its reference (issues 21, 22)\n"
        );
        let _ = writeln!(
            out,
            "The mirror alone with the Istio policy; each row against its reference, the same bytes \
             without the work the row measures. Highest throughput and Envoy CPU per request only \
             (a 64 KiB body scanned may top out below the latency runs' rate). Per round: the \
             row's max rps, then its CPU µs/req, over its reference's in the same round.\n"
        );
        let _ = writeln!(
            out,
            "| scenario | reference | max rps | vs reference | Envoy CPU µs/req | CPU vs reference | over reference | per round: rps, CPU vs reference | CPU share | RSS MB | non-2xx / errors | filter counters (last round, warm-up + run) |"
        );
        let _ = writeln!(
            out,
            "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|---|"
        );
        let figures = |r: &ScenarioResult| {
            r.throughput
                .as_ref()
                .map(|t| {
                    (
                        t.ok_per_second,
                        t.cpu_us_per_request.unwrap_or(f64::NAN),
                        t.cpu_share.unwrap_or(f64::NAN),
                    )
                })
                .unwrap_or((f64::NAN, f64::NAN, f64::NAN))
        };
        for r in rows {
            if let Some(err) = &r.error {
                let _ = writeln!(
                    out,
                    "| {} | failed: {} |||||||||||||",
                    r.name,
                    one_line(err)
                );
                continue;
            }
            let (rps, cpu, share) = figures(r);
            let reference = r.reference.as_deref().and_then(|name| self.row(name));
            let (ref_rps, ref_cpu, _) = reference.map_or((f64::NAN, f64::NAN, f64::NAN), figures);
            let per_round = reference
                .map(|base| {
                    let pairs = r.throughput_rounds.iter().zip(&base.throughput_rounds);
                    let rps: Vec<String> = pairs
                        .clone()
                        .map(|(a, b)| ratio(a.ok_per_second, b.ok_per_second))
                        .collect();
                    let cpu: Vec<String> = pairs
                        .map(|(a, b)| {
                            ratio(
                                a.cpu_us_per_request.unwrap_or(f64::NAN),
                                b.cpu_us_per_request.unwrap_or(f64::NAN),
                            )
                        })
                        .collect();
                    format!("{}; {}", rps.join(" / "), cpu.join(" / "))
                })
                .unwrap_or_else(|| "–".to_string());
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {} | {:.1} | {} | {} | {} | {:.2} | {} | {} | {} |",
                r.name,
                r.reference.as_deref().unwrap_or("–"),
                rps,
                ratio(rps, ref_rps),
                cpu,
                ratio(cpu, ref_cpu),
                over(cpu, ref_cpu),
                per_round,
                share,
                mb(r.rss_bytes),
                failures(r),
                filter_counters(r)
            );
        }
        out.push('\n');
    }

    /// Where Envoy's CPU went in each row recorded with `--perf` ([`CpuSplit`]): the shares
    /// of the samples, as µs of the row's Envoy CPU per request.
    fn cpu_split_markdown(&self, out: &mut String) {
        let rows: Vec<(&ScenarioResult, CpuSplit, f64)> = self
            .results
            .iter()
            .filter_map(|r| {
                let cpu = r.throughput.as_ref()?.cpu_us_per_request?;
                Some((r, r.cpu_split?, cpu))
            })
            .collect();
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "## Where Envoy's CPU goes (`perf record -g`, µs of Envoy CPU per request)\n\n\
             module: in V8's generated code (the module's compiled functions and their wrappers); \
             called by the module: below such a frame but outside it (host calls, V8's runtime); \
             elsewhere: no generated code on the call chain (Envoy's codec, router, access \
             loggers, entering the VM and leaving it, the kernel). Rounds' samples pooled.\n"
        );
        let _ = writeln!(
            out,
            "| scenario | Envoy CPU µs/req | module | called by the module | elsewhere | samples |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
        for (r, split, cpu) in rows {
            let _ = writeln!(
                out,
                "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
                r.name,
                cpu,
                split.us(split.module, cpu),
                split.us(split.called_by_module, cpu),
                split.us(split.elsewhere, cpu),
                split.samples
            );
        }
        out.push('\n');
    }

    /// The memory table: resident memory per configuration and worker count, over bare Envoy
    /// and over the no-op anchor at the same worker count (a "freed heap returned" row over the
    /// no-op anchor returning its freed heap too), and where the memory is: V8's compiled Wasm
    /// code and Envoy's heap, in use and freed but kept.
    fn memory_markdown(&self, out: &mut String) {
        let memory: Vec<&ScenarioResult> = self
            .results
            .iter()
            .filter(|r| r.group == Group::Memory)
            .collect();
        if memory.is_empty() {
            return;
        }
        let requests = memory
            .iter()
            .find_map(|r| r.memory_requests)
            .map_or(String::new(), |n| format!(" after {n} requests"));
        let _ = writeln!(
            out,
            "## Memory per sidecar (Envoy's VmRSS{requests}, MB = 10^6 bytes, median over the rounds)\n"
        );
        let _ = writeln!(
            out,
            "| configuration | workers | RSS MB | over bare | over no-op | Wasm code (JIT) MB | heap in use MB | heap freed, kept MB | per round MB |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---|");
        for r in memory {
            if let Some(err) = &r.error {
                let _ = writeln!(
                    out,
                    "| {} | {} | failed: {} |||||||",
                    r.name,
                    r.workers,
                    one_line(err)
                );
                continue;
            }
            let config = r
                .name
                .strip_prefix("memory: ")
                .and_then(|n| n.rsplit_once(", ").map(|(c, _)| c))
                .unwrap_or(&r.name);
            let anchor = if config == rows::MEMORY_ONE_PASS_RELEASED {
                Some(rows::MEMORY_NOOP_RELEASED)
            } else if [
                rows::MEMORY_BARE,
                rows::MEMORY_NOOP,
                rows::MEMORY_NOOP_RELEASED,
            ]
            .contains(&config)
            {
                None
            } else {
                Some(rows::MEMORY_NOOP)
            };
            let per_round = r
                .rss_rounds
                .iter()
                .map(|b| format!("{:.1}", *b as f64 / MB))
                .collect::<Vec<_>>()
                .join(" / ");
            let part = |f: fn(&MemoryParts) -> u64| mb(r.memory_parts.as_ref().map(f));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                config,
                r.workers,
                mb(r.rss_bytes),
                if config == rows::MEMORY_BARE {
                    "–".to_string()
                } else {
                    mb_over(r.rss_bytes, self.rss_of(rows::MEMORY_BARE, r.workers))
                },
                match anchor {
                    Some(anchor) => mb_over(r.rss_bytes, self.rss_of(anchor, r.workers)),
                    None => "–".to_string(),
                },
                part(|p| p.jit_bytes),
                part(|p| p.heap_in_use),
                part(|p| p.heap_freed_kept),
                per_round
            );
        }
        out.push('\n');
    }
}

/// The filters' own counters of a row, short names (`records 9007, delivered 1831, ...`).
fn filter_counters(result: &ScenarioResult) -> String {
    result
        .counters
        .iter()
        .filter_map(|(name, value)| {
            let short = name.strip_prefix("wasmcustom.meshsight_")?;
            let short = short
                .strip_prefix("mirror_")
                .or_else(|| short.strip_prefix("audit_"))
                .or_else(|| short.strip_prefix("allowlist_"))
                .unwrap_or(short);
            Some(format!("{short} {value}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").replace('|', "/");
    if line.len() > 160 {
        format!(
            "{}…",
            &line[..line
                .char_indices()
                .nth(160)
                .map(|(i, _)| i)
                .unwrap_or(line.len())]
        )
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{median, Latency};
    use crate::scenario::{CollectorState, Group, Scenario, SensorState};

    fn round(p50: f64, p90: f64, p99: f64, ok: u64) -> ScenarioResult {
        let scenario = Scenario {
            name: "mirror, sensor down".to_string(),
            group: Group::MirrorSensor,
            filters: Vec::new(),
            sensor: SensorState::Down,
            collector: CollectorState::Healthy,
            measure: crate::scenario::Measure::Latency,
            workers: 1,
            method: "GET".to_string(),
            path: "/".to_string(),
            host: "h".to_string(),
            access_log: crate::scenario::AccessLog::None,
            body: None,
            answer: None,
            reference: None,
            release_freed_heap: false,
        };
        let mut result = ScenarioResult::new(&scenario);
        result.latency = Some(Latency::new(
            LoadReport {
                ok,
                non_2xx: 1,
                errors: 0,
                seconds: 10.0,
                ok_per_second: ok as f64 / 10.0,
                p50_ms: p50,
                p90_ms: p90,
                p99_ms: p99,
                statuses: Vec::new(),
                error_kinds: Vec::new(),
            },
            1000,
        ));
        result.wall_seconds = 15.0;
        result
    }

    #[test]
    fn rounds_merge_into_per_percentile_medians_and_summed_counts() {
        let merged = ScenarioResult::merge_rounds(vec![
            round(0.5, 3.0, 40.0, 10_000),
            round(0.4, 9.0, 5.0, 9_990),
            round(0.9, 1.0, 7.0, 10_010),
        ])
        .unwrap();
        let latency = merged.latency.unwrap();
        assert_eq!(
            (
                latency.load.p50_ms,
                latency.load.p90_ms,
                latency.load.p99_ms
            ),
            (0.5, 3.0, 7.0)
        );
        assert_eq!((latency.load.ok, latency.load.non_2xx), (30_000, 3));
        assert_eq!(merged.latency_rounds.len(), 3);
        assert_eq!(merged.wall_seconds, 45.0);
    }

    #[test]
    fn throughput_rounds_merge_into_medians_of_rate_cpu_cost_and_share() {
        let load = |ok: u64| LoadReport {
            ok,
            non_2xx: 0,
            errors: 0,
            seconds: 5.0,
            ok_per_second: ok as f64 / 5.0,
            p50_ms: 1.0,
            p90_ms: 1.0,
            p99_ms: 1.0,
            statuses: Vec::new(),
            error_kinds: Vec::new(),
        };
        let mut rows = Vec::new();
        for (ok, cpu) in [(50_000, 4.0), (40_000, 4.0), (60_000, 3.0)] {
            let mut r = round(0.5, 1.0, 2.0, 10);
            r.throughput = Some(Throughput::new(load(ok), Some(cpu)));
            rows.push(r);
        }
        let merged = ScenarioResult::merge_rounds(rows).unwrap();
        let t = merged.throughput.unwrap();
        // 10,000 / 8,000 / 12,000 rps; 80 / 100 / 50 µs per request; 0.8 / 0.8 / 0.6 of a core.
        assert_eq!(t.ok_per_second, 10_000.0);
        assert_eq!(t.cpu_us_per_request, Some(80.0));
        assert_eq!(t.cpu_share, Some(0.8));
        assert_eq!(t.load.ok, 150_000);
        assert_eq!(merged.throughput_rounds.len(), 3);
    }

    #[test]
    fn an_error_in_any_round_marks_the_merged_row() {
        let mut bad = round(0.5, 1.0, 2.0, 10);
        bad.error = Some("probe answered 403".to_string());
        let merged = ScenarioResult::merge_rounds(vec![round(0.5, 1.0, 2.0, 10), bad]).unwrap();
        assert_eq!(merged.error.as_deref(), Some("probe answered 403"));
        assert!(ScenarioResult::merge_rounds(Vec::new()).is_none());
    }

    #[test]
    fn median_ignores_missing_values_and_averages_the_middle_pair() {
        assert_eq!(median(vec![3.0, f64::NAN, 1.0, 2.0, 10.0]), 2.5);
        assert!(median(vec![f64::NAN]).is_nan());
    }

    /// A run of the given rows with the settings of a default bench run.
    fn run_of(results: Vec<ScenarioResult>, module_bytes: Option<u64>) -> BenchRun {
        BenchRun {
            started: "2026-12-07T18:00:00Z".to_string(),
            envoy: "envoy".to_string(),
            load_generator: "oha".to_string(),
            cpus: 2,
            loadavg_before: String::new(),
            loadavg_after: String::new(),
            settings: Settings {
                duration: std::time::Duration::from_secs(5),
                warmup: std::time::Duration::from_secs(2),
                connections: 32,
                rate: 1000,
                oha: "oha".into(),
                cpus: Some((0, 1)),
                perf: false,
            },
            rounds: 1,
            module_bytes,
            results,
        }
    }

    fn memory_row(config: &str, workers: u32, rounds_mb: &[f64]) -> ScenarioResult {
        let scenario = Scenario {
            name: rows::memory(config, workers),
            group: Group::Memory,
            filters: Vec::new(),
            sensor: SensorState::Healthy,
            collector: CollectorState::Healthy,
            measure: crate::scenario::Measure::Memory { requests: 3000 },
            workers,
            method: "GET".to_string(),
            path: "/".to_string(),
            host: "h".to_string(),
            access_log: crate::scenario::AccessLog::None,
            body: None,
            answer: None,
            reference: None,
            release_freed_heap: false,
        };
        let rounds = rounds_mb
            .iter()
            .map(|mb| {
                let mut r = ScenarioResult::new(&scenario);
                r.rss_bytes = Some((mb * MB) as u64);
                r
            })
            .collect();
        ScenarioResult::merge_rounds(rounds).unwrap()
    }

    fn throughput_row(name: &str, rps: f64, cpu_seconds: f64) -> ScenarioResult {
        let mut r = round(0.5, 1.0, 2.0, 10);
        r.name = name.to_string();
        r.group = Group::Filters;
        let ok = (rps * 5.0) as u64;
        r.throughput = Some(Throughput::new(
            LoadReport {
                ok,
                non_2xx: 0,
                errors: 0,
                seconds: 5.0,
                ok_per_second: rps,
                p50_ms: 1.0,
                p90_ms: 1.0,
                p99_ms: 1.0,
                statuses: Vec::new(),
                error_kinds: Vec::new(),
            },
            Some(cpu_seconds),
        ));
        r
    }

    #[test]
    fn the_cpu_split_table_turns_sample_shares_into_us_of_the_rows_envoy_cpu() {
        let mut recorded = throughput_row("one pass", 1000.0, 1.0);
        recorded.cpu_split = Some(CpuSplit {
            samples: 4,
            module: 1,
            called_by_module: 1,
            elsewhere: 2,
        });
        let plain = throughput_row("no-op", 1000.0, 0.5);
        let md = run_of(vec![plain.clone(), recorded], None).to_markdown();
        assert!(md.contains("## Where Envoy's CPU goes"), "{md}");
        assert!(
            md.contains("| one pass | 200.0 | 50.0 | 50.0 | 100.0 | 4 |"),
            "{md}"
        );
        assert!(
            !md.contains("| no-op | 100.0 |"),
            "a row not recorded has no split: {md}"
        );
        let without = run_of(vec![plain], None).to_markdown();
        assert!(!without.contains("Where Envoy's CPU goes"), "{without}");
    }

    #[test]
    fn the_memory_table_gives_each_row_over_bare_and_over_the_noop_at_its_worker_count() {
        let run = run_of(
            vec![
                memory_row(rows::MEMORY_BARE, 1, &[65.0, 66.0, 65.5]),
                memory_row(rows::MEMORY_NOOP, 1, &[89.1]),
                memory_row(rows::MEMORY_ONE_PASS, 1, &[121.9]),
                memory_row(rows::MEMORY_BARE, 2, &[70.0]),
                memory_row(rows::MEMORY_NOOP, 2, &[95.0]),
                memory_row(rows::MEMORY_ONE_PASS, 2, &[100.0]),
                memory_row(rows::MEMORY_NOOP_RELEASED, 1, &[88.0]),
                {
                    let mut row = memory_row(rows::MEMORY_ONE_PASS_RELEASED, 1, &[106.5]);
                    row.memory_parts = Some(MemoryParts {
                        jit_bytes: 2_600_000,
                        heap_in_use: 14_900_000,
                        heap_freed_kept: 8_200_000,
                    });
                    row
                },
            ],
            Some(1_070_908),
        );
        let md = run.to_markdown();
        assert!(md.contains("after 3000 requests"), "{md}");
        // The median of three rounds, and each round listed; no parts read: dashes.
        assert!(
            md.contains("| bare Envoy | 1 | 65.5 | – | – | – | – | – | 65.0 / 66.0 / 65.5 |"),
            "{md}"
        );
        // A row that returns freed heap is measured against the no-op that does too, and
        // shows where its memory is.
        assert!(
            md.contains(
                "| meshsight.wasm, the one-pass policy, freed heap returned | 1 | 106.5 | +41.0 | +18.5 | 2.6 | 14.9 | 8.2 | 106.5 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| the Wasm no-op anchor, freed heap returned | 1 | 88.0 | +22.5 | – |"),
            "{md}"
        );
        assert!(
            md.contains("| meshsight.wasm, the one-pass policy | 1 | 121.9 | +56.4 | +32.8 |"),
            "{md}"
        );
        assert!(
            md.contains("| meshsight.wasm, the one-pass policy | 2 | 100.0 | +30.0 | +5.0 |"),
            "{md}"
        );
        // The targets: 1,071 KB and +32.8 MB miss, +5.0 MB at 2 workers meets.
        assert!(
            md.contains("| `meshsight.wasm` size | ≤ 400 KB | 1071 KB | **no** |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| RSS over the no-op anchor, one pass, 1 worker | ≤ +12 MB | +32.8 MB | **no** |"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "| RSS over the no-op anchor, one pass, 2 workers | ≤ +12 MB | +5.0 MB | yes |"
            ),
            "{md}"
        );
    }

    #[test]
    fn pair_rows_are_given_against_their_reference_as_medians_and_round_by_round() {
        let pair_row = |name: &str, reference: Option<&str>, rounds: &[(f64, f64)]| {
            let rounds = rounds
                .iter()
                .map(|(rps, cpu_seconds)| {
                    let mut r = throughput_row(name, *rps, *cpu_seconds);
                    r.group = Group::Pairs;
                    r.reference = reference.map(str::to_string);
                    r
                })
                .collect();
            ScenarioResult::merge_rounds(rounds).unwrap()
        };
        // Reference: 1000 and 800 rps at 200 µs/req; the row: 500 and 400 rps at 400 µs/req.
        let run = run_of(
            vec![
                pair_row("body: plain", None, &[(1000.0, 1.0), (800.0, 0.8)]),
                pair_row(
                    "body: gzip",
                    Some("body: plain"),
                    &[(500.0, 1.0), (400.0, 0.8)],
                ),
            ],
            None,
        );
        let md = run.to_markdown();
        assert!(md.contains("## Request bodies and responses"), "{md}");
        assert!(
            md.contains("| body: plain | – | 900 | – | 200.0 | – | – | – |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| body: gzip | body: plain | 450 | 0.50 | 400.0 | 2.00 | +200.0 | 0.50 / 0.50; 2.00 / 2.00 |"
            ),
            "{md}"
        );
    }

    #[test]
    fn filter_rows_are_given_against_the_baseline_and_the_noop_anchor() {
        let run = run_of(
            vec![
                throughput_row("baseline (no filter)", 10_000.0, 0.5),
                throughput_row(rows::NOOP, 8_000.0, 0.48),
                throughput_row(rows::ONE_PASS_ACCESS_LOG, 7_200.0, 0.54),
            ],
            None,
        );
        let md = run.to_markdown();
        // baseline 10 µs/req, no-op 12 µs/req, one pass 15 µs/req.
        assert!(
            md.contains("| one pass: allowlist + mirror + audit (access log) | 7200 | 0.72 | 0.90 | 15.0 | +5.0 | +3.0 |"),
            "{md}"
        );
        assert!(
            md.contains("| one pass, access-log audit, throughput vs the no-op anchor | ≥ 0.85 | 0.90 | yes |"),
            "{md}"
        );
        assert!(
            md.contains("| one pass, http sink, throughput vs the no-op anchor | ≥ 0.75 | – |  |"),
            "{md}"
        );
    }
}
