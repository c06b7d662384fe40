//! meshsight verdict probe: a proxy-wasm HTTP filter for the access-log e2e test. It takes the
//! allowlist and mirror decisions from request headers (`x-probe-outcome`: `allowed`, `denied`,
//! `would_deny`, `malformed` or absent; `x-probe-signature`: a signature category), writes the
//! filter-state entries of `meshsight_policy::audit::verdict` exactly as the real module will,
//! and answers `denied`/`malformed` with a local 403. Envoy's native access logger then renders
//! the OCSF record (`envoy-config/access-log/`).

use meshsight_policy::audit::verdict;
use meshsight_policy::decision::{
    AllowlistDecision, AllowlistOutcome, MirrorDecision, MirrorReason,
};
use meshsight_policy::head::RequestHead;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

#[cfg(target_family = "wasm")]
#[allow(missing_docs)]
mod vm_entry {
    proxy_wasm::main! {{
        super::register();
    }}
}

/// Registers the root context with the proxy-wasm SDK.
pub fn register() {
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(ProbeRoot) });
}

struct ProbeRoot;

impl Context for ProbeRoot {}

impl RootContext for ProbeRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        for (name, args) in verdict::declarations() {
            if let Err(status) = hostcalls::call_foreign_function("declare_property", Some(&args)) {
                let _ = hostcalls::log(
                    LogLevel::Warn,
                    &format!("declare_property {name}: {status:?}"),
                );
            }
        }
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(ProbeStream))
    }
}

struct ProbeStream;

impl Context for ProbeStream {}

impl HttpContext for ProbeStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let header = |name: &str| self.get_http_request_header(name);
        let outcome = match header("x-probe-outcome").as_deref() {
            Some("allowed") => Some(AllowlistOutcome::Allowed),
            Some("denied") => Some(AllowlistOutcome::Denied),
            Some("would_deny") => Some(AllowlistOutcome::WouldDeny),
            Some("malformed") => Some(AllowlistOutcome::Malformed),
            _ => None,
        };
        let allowlist = outcome.map(|outcome| AllowlistDecision {
            outcome,
            rule: (outcome == AllowlistOutcome::Allowed).then(|| "probe-rule".to_string()),
            reason: (outcome != AllowlistOutcome::Allowed).then(|| "no_rule_matched".to_string()),
        });
        let mirror = header("x-probe-signature").map(|category| MirrorDecision {
            mirrored: true,
            target: Some("ids".into()),
            reason: MirrorReason::Signature,
            rule: None,
            signatures: vec![category],
            signature_rules: Vec::new(),
            findings: Vec::new(),
        });
        let head = RequestHead::from_pairs(self.get_http_request_headers());
        for entry in verdict::entries(&head, allowlist.as_ref(), mirror.as_ref()) {
            if let Err(status) = hostcalls::set_property(vec![entry.name], Some(&entry.bytes)) {
                let _ = hostcalls::log(
                    LogLevel::Warn,
                    &format!("set_property {}: {status:?}", entry.name),
                );
            }
        }
        if matches!(
            outcome,
            Some(AllowlistOutcome::Denied | AllowlistOutcome::Malformed)
        ) {
            self.send_http_response(403, vec![("content-type", "text/plain")], Some(b"denied\n"));
            return Action::Pause;
        }
        Action::Continue
    }
}
