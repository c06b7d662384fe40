//! Bench results: one row per scenario, rendered as markdown tables and JSON.

use std::fmt::Write as _;

use serde::Serialize;

use super::loadgen::LoadReport;
use super::measure::{ScenarioResult, Throughput};
use super::scenario::{CollectorState, Group, SensorState, Settings};

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

fn mib(bytes: Option<u64>) -> String {
    bytes
        .map(|b| format!("{:.1}", b as f64 / (1024.0 * 1024.0)))
        .unwrap_or_else(|| "–".to_string())
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
            .find(|r| r.filters.is_empty() && r.error.is_none())
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
                "| scenario | max rps | vs baseline | Envoy CPU µs/req | vs baseline | CPU share | p50 ms | p90 ms | p99 ms | RSS MiB | non-2xx / errors |"
            );
            let _ = writeln!(
                out,
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
            );
            for r in rows {
                if let Some(err) = &r.error {
                    let _ = writeln!(out, "| {} | failed: {} ||||||||||", r.name, one_line(err));
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
                    "| {} | {:.0} | {} | {:.1} | {} | {:.2} | {} | {} | {} | {} | {} |",
                    r.name,
                    rps,
                    ratio(rps, base_tp.0),
                    cpu,
                    ratio(cpu, base_tp.1),
                    share,
                    ms(p50),
                    ms(p90),
                    ms(p99),
                    mib(r.rss_bytes),
                    failures(r)
                );
            }
            out.push('\n');
        }

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
                "| scenario | p50 ms | p90 ms | p99 ms | p50 / p90 / p99 vs healthy | achieved rps | non-2xx / errors | {what} | RSS MiB | filter counters (last round, warm-up + run) |"
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
                    mib(r.rss_bytes),
                    filter_counters(r)
                );
            }
            out.push('\n');
        }
        out
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
            measure_max: false,
            method: "GET".to_string(),
            path: "/".to_string(),
            host: "h".to_string(),
            ocsf_access_log: false,
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
}
