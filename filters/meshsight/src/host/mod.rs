//! meshsight's one host seam: everything an adapter asks of the proxy-wasm host goes through
//! here, so that each is written once. Counters and gauges that never fail a request, the
//! request head read in one call, properties read at most once per request (and values fixed
//! for a connection at most once per connection), the status of an HTTP call's answer, and
//! decisions put into and read from filter state for other filters and access logs.

mod metric;
mod properties;

pub use metric::{stat_part, Counter, Gauge};
pub use properties::{as_i64, ConnectionCache, ConnectionFact, ConnectionFacts, Properties};

use meshsight_host_abi::header_map_wire;
pub use meshsight_host_abi::MapType as WireMap;
use meshsight_policy::head::RequestHead;
use meshsight_policy::headers::HeaderBlock;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;
use serde::de::DeserializeOwned;

/// Envoy's foreign function that makes the router pick the route again.
pub const CLEAR_ROUTE_CACHE: &str = "clear_route_cache";

/// The request head in one host call (one VM boundary crossing for the whole map), kept in
/// the buffer the host wrote: no string per header.
pub fn read_request_head() -> RequestHead {
    RequestHead::from_block(read_map_block(WireMap::HttpRequestHeaders))
}

/// A whole header map in one host call, kept in the buffer the host wrote (empty when the
/// host has none).
pub fn read_map_block(map: WireMap) -> HeaderBlock {
    HeaderBlock::from_wire(header_map_wire(map))
}

/// The status of an HTTP call's answer: `None` when Envoy reports a reset or timeout (no
/// headers) or the status is not a number.
pub fn call_status(num_headers: usize) -> Option<u16> {
    if num_headers == 0 {
        return None;
    }
    hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten()
        .and_then(|v| std::str::from_utf8(&v).ok()?.trim().parse().ok())
}

/// Asks the router to choose the route again (after a header it matches on changed); `false`
/// when the host refused.
pub fn clear_route_cache() -> bool {
    hostcalls::call_foreign_function(CLEAR_ROUTE_CACHE, None).is_ok()
}

/// Writes raw bytes to filter state `wasm.<property>`.
pub fn put_property(property: &str, bytes: &[u8]) {
    if let Err(status) = hostcalls::set_property(vec![property], Some(bytes)) {
        log::warn!("meshsight: cannot set property {property}: {status:?}");
    }
}

/// Reads a decision another plugin wrote (its `to_json` text, through [`put_property`]); `None` when absent or not the
/// expected shape.
pub fn get_decision<T: DeserializeOwned>(property: &str) -> Option<T> {
    let bytes = hostcalls::get_property(vec![property]).ok().flatten()?;
    serde_json::from_slice(&bytes).ok()
}
