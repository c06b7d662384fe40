//! Decisions in filter state: written for other filters and Envoy's access logger, read back
//! from another plugin of the chain.

use meshsight_host_abi::imports as hostcalls;
use meshsight_host_abi::Status;
use meshsight_policy::error::json_path::{Json, ReadJson};

/// Writes raw bytes to filter state `wasm.<property>`.
pub fn put_property(property: &str, bytes: &[u8]) {
    if let Err(status) = hostcalls::set_property(&[property], bytes) {
        log!(
            Warn,
            "meshsight: cannot set property {property}: {status:?}"
        );
    }
}

/// Reads a decision another plugin wrote (its `to_json` text, through [`put_property`]); `None`
/// when absent or not the expected shape.
pub fn get_decision<T: ReadJson>(property: &str) -> Option<T> {
    let bytes = hostcalls::get_property(&[property]).ok().flatten()?;
    Json::parse(&bytes).ok()?.read("").ok()
}

/// Declares a filter-state property to Envoy (`declare_property`, its serialized arguments).
pub fn declare_property(args: &[u8]) -> Result<(), Status> {
    hostcalls::call_foreign_function("declare_property", Some(args)).map(|_| ())
}
