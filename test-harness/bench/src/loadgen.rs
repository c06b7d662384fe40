//! The load generator: `oha` (installed from crates.io into `.tools/` by `make bench`), run as
//! a child process pinned to its own core, its JSON report read back.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::BenchError;

/// How one load run is shaped.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    /// Run length (`-z`); with `requests`, only the bound the run is killed after (plus
    /// [`RUN_GRACE`]).
    pub duration: Duration,
    /// Exactly this many requests (`-n`) instead of a run of `duration`.
    pub requests: Option<u64>,
    /// Concurrent connections (`-c`).
    pub connections: u32,
    /// Requests per second (`-q`), `None` for as fast as possible.
    pub rate: Option<u32>,
}

/// What one load run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadReport {
    /// Responses with a 2xx status.
    pub ok: u64,
    /// Responses with any other status.
    pub non_2xx: u64,
    /// Requests that got no response (connection errors, timeouts).
    pub errors: u64,
    /// Wall time of the run, seconds.
    pub seconds: f64,
    /// 2xx responses per second.
    pub ok_per_second: f64,
    /// Latency percentiles, milliseconds: p50, p90, p99.
    pub p50_ms: f64,
    /// 90th percentile latency, milliseconds.
    pub p90_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
    /// Status code -> count, as oha reported it.
    pub statuses: Vec<(String, u64)>,
    /// Error message -> count, as oha reported it.
    pub error_kinds: Vec<(String, u64)>,
}

/// A request unanswered this long counts as an error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a run may outlive its duration before it is killed.
pub const RUN_GRACE: Duration = Duration::from_secs(30);

/// The `oha` binary: `$MESHSIGHT_OHA`, else `<workspace>/.tools/bin/oha`, else `oha` on `PATH`.
pub fn oha_binary(workspace: &Path) -> PathBuf {
    if let Some(path) = std::env::var_os("MESHSIGHT_OHA").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let local = workspace.join(".tools").join("bin").join("oha");
    if local.is_file() {
        local
    } else {
        PathBuf::from("oha")
    }
}

/// Runs `oha` against `url` (`method`, `headers`, the body read from file `body` when given)
/// with `load`, on CPU `cpu` when given (`taskset`).
pub fn run(
    oha: &Path,
    url: &str,
    headers: &[(&str, &str)],
    method: &str,
    body: Option<&Path>,
    load: &Load,
    cpu: Option<usize>,
) -> Result<LoadReport, BenchError> {
    // Bounded twice: each request times out after REQUEST_TIMEOUT (counted as an error), and
    // the whole run is killed if it outlives its duration by RUN_GRACE (a stuck stream would
    // otherwise keep `-w` waiting for ever).
    let mut command = Command::new("timeout");
    command
        .arg("--kill-after=5")
        .arg(format!("{}", (load.duration + RUN_GRACE).as_secs()));
    if let Some(cpu) = cpu {
        command.arg("taskset").arg("-c").arg(cpu.to_string());
    }
    command
        .arg(oha)
        .arg("--no-tui")
        .arg("-t")
        .arg(format!("{}s", REQUEST_TIMEOUT.as_secs()))
        .arg("-m")
        .arg(method)
        .arg("--output-format")
        .arg("json")
        .arg("-c")
        .arg(load.connections.to_string());
    match load.requests {
        Some(n) => {
            command.arg("-n").arg(n.to_string());
        }
        None => {
            command
                .arg("-z")
                .arg(format!("{}ms", load.duration.as_millis()))
                // Requests still in flight at the deadline are finished, not counted as errors.
                .arg("-w");
        }
    }
    if let Some(rate) = load.rate {
        // Latency from the moment each request was due, not when it was sent: no
        // coordinated omission when the proxy stalls.
        command
            .arg("-q")
            .arg(rate.to_string())
            .arg("--latency-correction");
    }
    for (name, value) in headers {
        command.arg("-H").arg(format!("{name}: {value}"));
    }
    if let Some(body) = body {
        command.arg("-D").arg(body);
    }
    command.arg(url);
    let output = command.output().map_err(|source| BenchError::Io {
        context: format!("running {}", oha.display()),
        source,
    })?;
    if !output.status.success() {
        return Err(BenchError::LoadGenerator(format!(
            "{} exited with {}: {}",
            oha.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    parse_report(&output.stdout)
}

/// Reads oha's `--output-format json` report.
pub fn parse_report(json: &[u8]) -> Result<LoadReport, BenchError> {
    let value: Value = serde_json::from_slice(json).map_err(|err| {
        BenchError::LoadGenerator(format!(
            "oha's report is not JSON ({err}): {}",
            String::from_utf8_lossy(json)
        ))
    })?;
    let counts = |key: &str| -> Vec<(String, u64)> {
        value
            .get(key)
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let statuses = counts("statusCodeDistribution");
    let error_kinds = counts("errorDistribution");
    let ok = statuses
        .iter()
        .filter(|(code, _)| code.starts_with('2'))
        .map(|(_, n)| n)
        .sum();
    let non_2xx = statuses
        .iter()
        .filter(|(code, _)| !code.starts_with('2'))
        .map(|(_, n)| n)
        .sum();
    let errors = error_kinds.iter().map(|(_, n)| n).sum();
    let seconds = value
        .pointer("/summary/total")
        .and_then(Value::as_f64)
        .ok_or_else(|| BenchError::LoadGenerator("oha's report has no summary.total".into()))?;
    let percentile = |key: &str| -> f64 {
        value
            .get("latencyPercentiles")
            .and_then(|p| p.get(key))
            .and_then(Value::as_f64)
            .map(|s| s * 1000.0)
            .unwrap_or(f64::NAN)
    };
    Ok(LoadReport {
        ok,
        non_2xx,
        errors,
        seconds,
        ok_per_second: if seconds > 0.0 {
            ok as f64 / seconds
        } else {
            0.0
        },
        p50_ms: percentile("p50"),
        p90_ms: percentile("p90"),
        p99_ms: percentile("p99"),
        statuses,
        error_kinds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_counts_rate_and_percentiles_from_an_oha_report() {
        let json = br#"{
            "summary": {"successRate": 1.0, "total": 2.0, "requestsPerSec": 1500.0},
            "latencyPercentiles": {"p10": 0.0001, "p50": 0.0005, "p90": 0.001, "p99": 0.004},
            "statusCodeDistribution": {"200": 2990, "403": 10},
            "errorDistribution": {"connection closed": 3}
        }"#;
        let report = parse_report(json).unwrap();
        assert_eq!((report.ok, report.non_2xx, report.errors), (2990, 10, 3));
        assert!((report.ok_per_second - 1495.0).abs() < 1e-9);
        assert!((report.p50_ms - 0.5).abs() < 1e-9);
        assert!((report.p99_ms - 4.0).abs() < 1e-9);
    }

    #[test]
    fn a_report_without_a_summary_is_an_error() {
        assert!(parse_report(br#"{"statusCodeDistribution": {}}"#).is_err());
        assert!(parse_report(b"Error: connection refused").is_err());
    }
}
