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
//! jobs, and the root and stream contexts drive them. The proxy-wasm ABI 0.2.1 itself (no SDK)
//! is `meshsight_host_abi`, the module's one crate with `unsafe` code: the host functions `host`
//! wraps, and the callbacks Envoy calls, exported here by its `export_callbacks!` and delivered
//! to the root and stream types. This crate forbids unsafe code.

/// Logs one line at a `meshsight_host_abi::LogLevel` (`log!(Warn, "...{x}")`) through
/// `host::log`.
macro_rules! log {
    ($level:ident, $($arg:tt)+) => {
        $crate::host::log(::meshsight_host_abi::LogLevel::$level, format_args!($($arg)+))
    };
}

pub mod allowlist;
pub mod audit;
pub mod host;
pub mod mirror;
mod root;
mod stream;

pub use meshsight_policy::plugin::{
    Role, ALLOWLIST_ROOT_ID, AUDIT_ROOT_ID, MIRROR_ROOT_ID, ONE_PASS_ROOT_ID,
};

meshsight_host_abi::export_callbacks!(root::Root, register);

/// Prepares the module before Envoy (or the native test host) creates its first context: a
/// panic (which aborts the VM) is logged at `Critical` with its message, as the SDK did. The
/// root context reads its root id at configuration and runs the jobs that role names. In the VM
/// `_initialize` calls it.
pub fn register() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static HOOKED: AtomicBool = AtomicBool::new(false);
    if !HOOKED.swap(true, Ordering::Relaxed) {
        std::panic::set_hook(Box::new(|info| {
            host::log(
                meshsight_host_abi::LogLevel::Critical,
                format_args!("{info}"),
            );
        }));
    }
}
