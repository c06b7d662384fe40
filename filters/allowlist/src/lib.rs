//! meshsight allowlist filter: default-deny URL allow-listing. A thin adapter: policy and decisions live in
//! `meshsight-policy`; this crate moves data between the proxy-wasm host and that logic.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

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
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(AllowlistRoot) });
}

struct AllowlistRoot;

impl Context for AllowlistRoot {}

impl RootContext for AllowlistRoot {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        None
    }
}
