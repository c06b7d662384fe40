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
//! jobs, and the root and stream contexts drive them. [`abi`] speaks proxy-wasm ABI 0.2.1 to
//! the host itself (no SDK): the host functions `host` wraps and the callbacks Envoy calls.

/// Logs one line at a `crate::abi::LogLevel` (`log!(Warn, "...{x}")`) through `host::log`.
macro_rules! log {
    ($level:ident, $($arg:tt)+) => {
        $crate::host::log($crate::abi::LogLevel::$level, format_args!($($arg)+))
    };
}

pub mod abi;
pub mod allowlist;
pub mod audit;
pub mod host;
pub mod mirror;
mod root;
mod stream;

pub use meshsight_policy::plugin::{
    Role, ALLOWLIST_ROOT_ID, AUDIT_ROOT_ID, MIRROR_ROOT_ID, ONE_PASS_ROOT_ID,
};

/// Prepares the module before Envoy (or the native test host) creates its first context: the
/// root context reads its root id at configuration and runs the jobs that role names.
pub use abi::register;
