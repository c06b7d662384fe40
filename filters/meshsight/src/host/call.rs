//! HTTP calls a root context makes (mirror copies, audit batches), their answers, and the tick
//! that sends them.

use std::time::Duration;

use meshsight_host_abi::imports as hostcalls;
use meshsight_host_abi::{BufferType, MapType, Status};

/// Sends an HTTP call to `cluster`; the token its answer will carry.
pub fn dispatch_http_call(
    cluster: &str,
    headers: Vec<(&str, &str)>,
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<u32, Status> {
    hostcalls::http_call(cluster, &headers, body.unwrap_or_default(), timeout)
}

/// The status of an HTTP call's answer: `None` when Envoy reports a reset or timeout (no
/// headers) or the status is not a number.
pub fn call_status(num_headers: usize) -> Option<u16> {
    if num_headers == 0 {
        return None;
    }
    hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten()
        .and_then(|v| std::str::from_utf8(&v).ok()?.trim().parse().ok())
}

/// A header of the HTTP call's answer being delivered.
pub fn call_response_header(name: &str) -> Option<String> {
    let bytes = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, name).ok()??;
    String::from_utf8(bytes).ok()
}

/// The first `len` bytes of the HTTP call's answer being delivered.
pub fn call_response_body(len: usize) -> Vec<u8> {
    hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, len)
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Sets the root context's tick period (zero stops it); from a stream, it is still the root's.
pub fn set_tick_period(period: Duration) {
    let _ = hostcalls::set_tick_period(period);
}
