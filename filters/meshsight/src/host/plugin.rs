//! What the host says about the plugin itself, asked at configuration: its root id, its
//! configuration and Envoy's log level for Wasm.

use meshsight_host_abi::imports as hostcalls;
use meshsight_host_abi::{BufferType, LogLevel};

/// The plugin's root id (`plugin_root_id`), empty when the host has none.
pub fn plugin_root_id() -> String {
    hostcalls::get_property(&["plugin_root_id"])
        .ok()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The plugin configuration's bytes (empty when there is none).
pub fn plugin_configuration() -> Vec<u8> {
    hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The level below which Envoy drops the module's log lines (`None` if the host will not say).
pub fn envoy_log_level() -> Option<LogLevel> {
    hostcalls::get_log_level().ok()
}
