//! meshsight: URL allow-listing, sensor mirroring and OCSF audit in one proxy-wasm module.
//!
//! One plugin runs every configured job in one pass over each request (root id `meshsight`, the
//! default): the head is read once, each property at most once, and the jobs hand their
//! decisions to each other in memory. Signatures run on every request, whatever the allowlist
//! decides, so an attack the allowlist stops is still recorded as an attack and copied to the
//! sensor. The same module also runs one job per plugin (root ids `meshsight_allowlist`,
//! `meshsight_mirror`, `meshsight_audit`), handing decisions on through filter state, for
//! deployments that need the jobs at separate filter positions.
//!
//! All policy logic lives in `meshsight_policy`; this crate only moves data between the host
//! and that logic: [`host`] is the one host seam, [`allowlist`], [`mirror`] and [`audit`] the
//! jobs, and the root and stream contexts drive them.

pub mod allowlist;
pub mod audit;
pub mod host;
pub mod mirror;
mod root;
mod stream;

pub use meshsight_policy::plugin::{
    Role, ALLOWLIST_ROOT_ID, AUDIT_ROOT_ID, MIRROR_ROOT_ID, ONE_PASS_ROOT_ID,
};

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

#[cfg(target_family = "wasm")]
#[allow(missing_docs)]
mod vm_entry {
    proxy_wasm::main! {{
        super::register();
    }}
}

/// Registers the root context with the proxy-wasm SDK (called by `main!` in the VM and by
/// native tests through the harness). The root reads its root id at configuration and runs
/// the jobs that role names.
pub fn register() {
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> { Box::new(root::Root::new(id)) });
}
