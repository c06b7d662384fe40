//! `make bench`: the filters measured in a real Envoy against Envoy without them, in the same
//! run on the same machine.
//!
//! Each [`Scenario`] starts its own Envoy (`--concurrency 1`, the memory rows also 2, pinned
//! to one core) from
//! `envoy-config/bench/envoy.yaml` with the scenario's HTTP filters, in front of a minimal
//! upstream ([`upstream::BenchUpstream`]) and the rig's sensor and collector; `oha` (pinned to the other core) then measures the highest
//! throughput over a fixed time with fixed connections, and the latency percentiles at a fixed
//! request rate. Envoy's CPU time per request (from `/proc`) and resident memory after the run
//! are read too: on a shared 2-core machine the CPU cost per request is the steadier figure.
//! Every throughput row is also given against the Wasm no-op anchor, the floor any Wasm filter
//! pays, and next to Envoy's RBAC with a JSON access log, what a user would run instead.
//!
//! The filter policies are the ones the Istio manifests ship (`envoy-config/istio/`, dumped
//! to JSON by `scripts/validate_istio.py --dump-plugin-configs`), with their Istio cluster
//! names pointed at the bench's local sensor and collector; so a bench run also proves that
//! the filters accept those policies.

pub mod bodies;
pub mod loadgen;
pub mod measure;
pub mod report;
pub mod run;
pub mod scenario;
pub mod synthetic;
pub mod upstream;

use std::fmt;
use std::io;

pub use loadgen::{Load, LoadReport};
pub use measure::ScenarioResult;
pub use report::BenchRun;
pub use scenario::{CollectorState, Filter, Group, Scenario, SensorState};

/// Why a bench run could not be made.
#[derive(Debug)]
pub enum BenchError {
    /// A file or process operation failed.
    Io {
        /// What the bench was doing.
        context: String,
        /// The error.
        source: io::Error,
    },
    /// The load generator failed or printed something unreadable.
    LoadGenerator(String),
    /// A policy file is missing or not the JSON expected.
    Policy(String),
    /// Envoy or a helper server could not be started.
    Rig(meshsight_rig::RigError),
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { context, source } => write!(f, "{context}: {source}"),
            Self::LoadGenerator(message) => write!(f, "load generator: {message}"),
            Self::Policy(message) => write!(f, "policy: {message}"),
            Self::Rig(err) => write!(f, "rig: {err}"),
        }
    }
}

impl std::error::Error for BenchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Rig(err) => Some(err),
            _ => None,
        }
    }
}

impl From<meshsight_rig::RigError> for BenchError {
    fn from(err: meshsight_rig::RigError) -> Self {
        Self::Rig(err)
    }
}
