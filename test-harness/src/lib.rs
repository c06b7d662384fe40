//! meshsight's test harness: a native host for the proxy-wasm ABI, so a filter's real SDK
//! dispatcher runs in plain `cargo test`, and the rig that runs the same filters in a real Envoy.

pub mod bench;
pub mod host;
pub mod rig;
