//! meshsight mirror filter: per-request decisions on which requests a security sensor gets a
//! copy of. A thin adapter: policy, signatures, sampling, rate caps, the per-request copy
//! state machine and the `dispatch` accounting live in `meshsight_policy::mirror`; this crate
//! reads the request from the proxy-wasm host, removes any client-supplied decision header,
//! feeds the state machine and carries out what it answers: a decision header for an Envoy
//! route / Istio VirtualService to mirror on (`header`), or a fire-and-forget HTTP call to the
//! sensor's cluster (`dispatch`). The decision goes to filter state for the audit filter.

mod delivery;
mod metrics;
mod stream;

use meshsight_policy::clock::unix_nanos;
use meshsight_policy::mirror::copy::MirrorWorker;
use meshsight_policy::mirror::delivery::call_succeeded;
use meshsight_policy::mirror::MirrorPolicy;
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
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(MirrorRoot { configured: None })
    });
}

/// What a configured root hands to each stream.
#[derive(Clone)]
pub(crate) struct Configured {
    pub(crate) policy: Rc<MirrorPolicy>,
    pub(crate) worker: Rc<RefCell<MirrorWorker>>,
    pub(crate) metrics: Rc<Metrics>,
}

struct MirrorRoot {
    configured: Option<Configured>,
}

impl Context for MirrorRoot {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        _body_size: usize,
        _num_trailers: usize,
    ) {
        let Some(configured) = &self.configured else {
            return;
        };
        // Envoy answers a refused connection or a timeout with a local 503/504, a reset with
        // no headers at all.
        let status = if num_headers == 0 {
            None
        } else {
            self.get_http_call_response_header(":status")
                .and_then(|s| s.parse::<u16>().ok())
        };
        let ok = call_succeeded(status);
        let now = unix_nanos(self.get_current_time());
        let known = configured
            .worker
            .borrow_mut()
            .deliveries
            .answered(token_id, ok, now);
        if known && !ok {
            Metrics::bump(configured.metrics.dispatch_failed);
        }
    }
}

impl RootContext for MirrorRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        match MirrorPolicy::from_json(&bytes) {
            Ok(policy) => {
                let metrics = Metrics::define(&policy, policy.signature_names());
                let worker = MirrorWorker::new(&policy);
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

    fn on_tick(&mut self) {
        if let Some(configured) = &self.configured {
            let now = unix_nanos(self.get_current_time());
            delivery::send_queued(configured, now);
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Without a policy (Envoy never asks then: a refused configuration stops the plugin)
        // the stream passes through untouched; returning `None` would abort the VM.
        Some(Box::new(stream::MirrorStream::new(self.configured.clone())))
    }
}
