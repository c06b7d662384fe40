//! Counters and gauges, accumulated per worker and flushed to the host on the root context's
//! tick: a request moves a number in memory, never the host (`increment_metric` costs a VM
//! boundary crossing, and a request used to make six). Envoy's stats therefore lag the
//! worker's own count by at most one flush period ([`FLUSH_PERIOD`]); nothing is lost, since
//! the root flushes on every tick, before a reconfiguration and when it is done. A metric the
//! host could not define counts nowhere, never a failed request.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use meshsight_host_abi::imports as hostcalls;
use meshsight_host_abi::MetricType;

/// Longest time a worker's counts wait before they reach Envoy's stats.
pub const FLUSH_PERIOD: Duration = Duration::from_millis(500);

/// One defined metric's host id and what it moved since the last flush.
#[derive(Debug)]
struct Pending {
    id: u32,
    delta: Rc<Cell<i64>>,
}

/// The metrics one root context defined, with what each moved since the last flush (plain
/// numbers in the worker's memory).
#[derive(Debug, Default)]
pub struct Stats {
    pending: RefCell<Vec<Pending>>,
}

impl Stats {
    /// Defines counter `name`; logs and counts nowhere when the host refuses.
    pub fn counter(&self, name: &str) -> Counter {
        Counter(self.define(MetricType::Counter, name))
    }

    /// Defines gauge `name`; logs and moves nothing when the host refuses.
    pub fn gauge(&self, name: &str) -> Gauge {
        Gauge(self.define(MetricType::Gauge, name))
    }

    fn define(&self, kind: MetricType, name: &str) -> Option<Rc<Cell<i64>>> {
        match hostcalls::define_metric(kind, name) {
            Ok(id) => {
                let delta = Rc::new(Cell::new(0));
                self.pending.borrow_mut().push(Pending {
                    id,
                    delta: delta.clone(),
                });
                Some(delta)
            }
            Err(status) => {
                log!(Warn, "meshsight: cannot define metric {name}: {status:?}");
                None
            }
        }
    }

    /// Hands every metric that moved to the host (one `increment_metric` each) and starts
    /// counting from zero again.
    pub fn flush(&self) {
        for p in self.pending.borrow().iter() {
            let delta = p.delta.replace(0);
            if delta != 0 {
                // A counter that cannot be bumped must not affect anything else.
                let _ = hostcalls::increment_metric(p.id, delta);
            }
        }
    }
}

/// A counter (an Envoy stat); `Counter::default()` counts nowhere.
#[derive(Debug, Clone, Default)]
pub struct Counter(Option<Rc<Cell<i64>>>);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        if let Some(delta) = &self.0 {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            delta.set(delta.get().saturating_add(n));
        }
    }
}

/// A gauge, moved by deltas so that several worker VMs add up in Envoy's shared stats.
#[derive(Debug, Clone, Default)]
pub struct Gauge(Option<Rc<Cell<i64>>>);

impl Gauge {
    /// Moves the gauge by `delta`.
    pub fn add(&self, by: i64) {
        if let Some(delta) = &self.0 {
            delta.set(delta.get().saturating_add(by));
        }
    }
}

/// A name usable inside a stat name (`.` and `-` would split or confuse it).
pub fn stat_part(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}
