//! The request as a stream sees it: its head read in one call, header changes, its body, the
//! response body's first bytes (when a response rule asks), the local reply and the route cache.

use meshsight_policy::head::RequestHead;
use meshsight_policy::headers::HeaderBlock;

use meshsight_host_abi::imports as hostcalls;
use meshsight_host_abi::{BufferType, MapType};

/// Envoy's foreign function that makes the router pick the route again.
pub const CLEAR_ROUTE_CACHE: &str = "clear_route_cache";

/// The request head in one host call (one VM boundary crossing for the whole map), kept in
/// the buffer the host wrote: no string per header.
pub fn read_request_head() -> RequestHead {
    RequestHead::from_block(read_map_block(MapType::HttpRequestHeaders))
}

/// A whole header map in one host call, kept in the buffer the host wrote (empty when the
/// host has none).
pub fn read_map_block(map: MapType) -> HeaderBlock {
    HeaderBlock::from_wire(hostcalls::header_map_pairs(map))
}

/// Sets request header `name` (`None` removes it); a refusal leaves the request as it was.
pub fn set_request_header(name: &str, value: Option<&str>) {
    let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, value);
}

/// The first `len` bytes of the request body Envoy holds for this filter.
pub fn request_body(len: usize) -> Vec<u8> {
    hostcalls::get_buffer(BufferType::HttpRequestBody, 0, len)
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The first `len` bytes of the response body chunk Envoy holds for this filter.
pub fn response_body(len: usize) -> Vec<u8> {
    hostcalls::get_buffer(BufferType::HttpResponseBody, 0, len)
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Answers the request locally with `status`, `content_type` and `body`.
pub fn send_local_response(status: u32, content_type: &str, body: &[u8]) {
    let _ = hostcalls::send_local_response(status, &[("content-type", content_type)], body);
}

/// Lets a paused request go on (the stream whose context is in effect).
pub fn resume_request() {
    let _ = hostcalls::continue_request();
}

/// Makes stream `context_id` the one later host calls act on (a root acting on a stream it
/// holds); `false` when the stream is gone.
pub fn set_effective_context(context_id: u32) -> bool {
    hostcalls::set_effective_context(context_id).is_ok()
}

/// Asks the router to choose the route again (after a header it matches on changed); `false`
/// when the host refused.
pub fn clear_route_cache() -> bool {
    hostcalls::call_foreign_function(CLEAR_ROUTE_CACHE, None).is_ok()
}
