//! Counters and gauges: defined once at configuration, moved per request; a metric the host
//! could not define is skipped, never a failed request.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

/// A counter (an Envoy stat); `Counter::default()` counts nowhere.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter(Option<u32>);

impl Counter {
    /// Defines `name`; logs and counts nowhere when the host refuses.
    pub fn define(name: &str) -> Counter {
        Counter(define(MetricType::Counter, name))
    }

    /// Adds one.
    pub fn inc(self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(self, n: u64) {
        if let (Some(id), Ok(n)) = (self.0, i64::try_from(n)) {
            if n > 0 {
                // A counter that cannot be bumped must not affect the request.
                let _ = hostcalls::increment_metric(id, n);
            }
        }
    }
}

/// A gauge, moved by deltas so that several worker VMs add up in Envoy's shared stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauge(Option<u32>);

impl Gauge {
    /// Defines `name`; logs and moves nothing when the host refuses.
    pub fn define(name: &str) -> Gauge {
        Gauge(define(MetricType::Gauge, name))
    }

    /// Moves the gauge by `delta`.
    pub fn add(self, delta: i64) {
        if let (Some(id), true) = (self.0, delta != 0) {
            let _ = hostcalls::increment_metric(id, delta);
        }
    }
}

fn define(kind: MetricType, name: &str) -> Option<u32> {
    match hostcalls::define_metric(kind, name) {
        Ok(id) => Some(id),
        Err(status) => {
            log::warn!("meshsight: cannot define metric {name}: {status:?}");
            None
        }
    }
}

/// A name usable inside a stat name (`.` and `-` would split or confuse it).
pub fn stat_part(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}
