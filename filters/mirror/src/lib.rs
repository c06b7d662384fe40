//! meshsight mirror filter: per-request decisions on which requests a security sensor gets a
//! copy of. A thin adapter: policy, signatures, sampling and rate caps live in
//! `meshsight_policy::mirror`; this crate reads the request from the proxy-wasm host, removes
//! any client-supplied decision header, and delivers the decision: a decision header for an
//! Envoy route / Istio VirtualService to mirror on (`header`), or a fire-and-forget HTTP call
//! to the sensor's cluster (`dispatch`). The decision goes to filter state for the audit filter.

mod metrics;
mod stream;

use meshsight_policy::mirror::{MirrorPolicy, RateLimiter};
use metrics::Metrics;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};
use std::cell::RefCell;
use std::rc::Rc;

#[cfg(target_family = "wasm")]
#[allow(missing_docs)]
mod vm_entry {
    proxy_wasm::main! {{
        super::register();
    }}
}

/// Registers the filter's root context with the proxy-wasm SDK (called by `main!` in the VM and
/// by native tests through the harness).
pub fn register() {
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(MirrorRoot {
            context_id,
            configured: None,
        })
    });
}

/// State one worker's streams share: rate-cap buckets and `dispatch` calls in flight.
pub(crate) struct Worker {
    pub(crate) limiter: RateLimiter,
    /// Per target: (call token, time by which Envoy has answered or timed it out).
    pub(crate) in_flight: Vec<Vec<(u32, u64)>>,
}

/// What a configured root hands to each stream.
#[derive(Clone)]
pub(crate) struct Configured {
    pub(crate) policy: Rc<MirrorPolicy>,
    pub(crate) worker: Rc<RefCell<Worker>>,
    pub(crate) metrics: Rc<Metrics>,
}

struct MirrorRoot {
    context_id: u32,
    configured: Option<Configured>,
}

impl Context for MirrorRoot {}

impl RootContext for MirrorRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        match MirrorPolicy::from_json(&bytes) {
            Ok(policy) => {
                let metrics = Metrics::define(&policy, policy.signature_names());
                let worker = Worker {
                    limiter: RateLimiter::new(&policy),
                    in_flight: vec![Vec::new(); policy.targets().len()],
                };
                log::info!(
                    "meshsight mirror: policy loaded ({} targets, signatures: {})",
                    policy.targets().len(),
                    policy.signature_names().join(",")
                );
                self.configured = Some(Configured {
                    policy: Rc::new(policy),
                    worker: Rc::new(RefCell::new(worker)),
                    metrics: Rc::new(metrics),
                });
                true
            }
            Err(e) => {
                log::error!("meshsight mirror: invalid policy: {e}");
                false
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Without a policy (Envoy never asks then: a refused configuration stops the plugin)
        // the stream passes through untouched; returning `None` would abort the VM.
        Some(Box::new(stream::MirrorStream::new(
            context_id,
            self.context_id,
            self.configured.clone(),
        )))
    }
}
