//! The host functions meshsight imports, each behind a safe function that returns the host's
//! status instead of trapping on one it did not expect (the SDK panicked, which aborts the VM).
//! Buffers the host returns were allocated through the module's `proxy_on_memory_allocate`
//! (`callbacks::allocate`, or the SDK's, which allocates the same way) and become the module's
//! `Vec`s here.
//!
//! In meshsight only `src/host/` calls these (clippy's `disallowed-methods`,
//! filters/meshsight/clippy.toml).
#![allow(unsafe_code)]

use std::ptr::{null, null_mut};
use std::time::Duration;

use crate::{BufferType, LogLevel, MapType, MetricType, Status, STREAM_HTTP_REQUEST};

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_http_call(
        upstream_data: *const u8,
        upstream_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        body_data: *const u8,
        body_size: usize,
        trailers_data: *const u8,
        trailers_size: usize,
        timeout: u32,
        return_token: *mut u32,
    ) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_call_foreign_function(
        function_name_data: *const u8,
        function_name_size: usize,
        arguments_data: *const u8,
        arguments_size: usize,
        results_data: *mut *mut u8,
        results_size: *mut usize,
    ) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
}

/// `proxy_status_t` Ok.
const OK: u32 = 0;
/// `proxy_status_t` NotFound.
const NOT_FOUND: u32 = 1;

fn status(raw: u32) -> Result<(), Status> {
    match raw {
        OK => Ok(()),
        n => Err(Status::from_raw(n)),
    }
}

/// Takes ownership of a buffer the host returned (`None` for a null pointer).
///
/// # Safety
/// `data` is null or came from `proxy_on_memory_allocate(size)` and was handed over by the host.
unsafe fn take(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        return None;
    }
    // SAFETY: `proxy_on_memory_allocate` made `data` as a boxed slice of exactly `size` bytes
    // from the global allocator (the capacity of a `Vec` of that length), and the host filled it.
    Some(unsafe { Vec::from_raw_parts(data, size, size) })
}

/// A value the host returns through two out-pointers: `Ok(None)` for NotFound or a null buffer.
fn returned(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> Result<Option<Vec<u8>>, Status> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    match call(&mut data, &mut size) {
        // SAFETY: on Ok the host wrote a buffer it allocated through the module (or null).
        OK => Ok(unsafe { take(data, size) }),
        NOT_FOUND => Ok(None),
        n => Err(Status::from_raw(n)),
    }
}

/// Writes `message` to Envoy's log at `level`.
pub fn log(level: LogLevel, message: &str) {
    // SAFETY: the host reads `message_size` bytes at `message_data`.
    let _ = unsafe { proxy_log(level as u32, message.as_ptr(), message.len()) };
}

/// The level below which Envoy drops the module's log lines.
pub fn get_log_level() -> Result<LogLevel, Status> {
    let mut level = 0u32;
    // SAFETY: the host writes one u32 through the out-pointer, which points at a live local.
    status(unsafe { proxy_get_log_level(&mut level) })?;
    LogLevel::from_raw(level).ok_or(Status::Other(level))
}

/// The host's wall clock, in nanoseconds since the Unix epoch.
pub fn current_time_nanos() -> Result<u64, Status> {
    let mut now = 0u64;
    // SAFETY: the host writes one u64 through the out-pointer, which points at a live local.
    status(unsafe { proxy_get_current_time_nanoseconds(&mut now) })?;
    Ok(now)
}

/// Sets the calling root context's tick period (zero stops it).
pub fn set_tick_period(period: Duration) -> Result<(), Status> {
    let millis = u32::try_from(period.as_millis()).unwrap_or(u32::MAX);
    // SAFETY: no pointers.
    status(unsafe { proxy_set_tick_period_milliseconds(millis) })
}

/// Up to `max_size` bytes of `buffer` from `start`; `Ok(None)` when the host has none.
pub fn get_buffer(
    buffer: BufferType,
    start: usize,
    max_size: usize,
) -> Result<Option<Vec<u8>>, Status> {
    // SAFETY: the host writes a pointer and a size through the two out-pointers.
    returned(|data, size| unsafe {
        proxy_get_buffer_bytes(buffer as u32, start, max_size, data, size)
    })
}

/// The header map `map` exactly as the host serialized it (pair count, lengths, then each name
/// and value NUL-terminated); empty when the host has no such map or refuses the call.
pub fn header_map_pairs(map: MapType) -> Vec<u8> {
    // SAFETY: the host writes a pointer and a size through the two out-pointers.
    match returned(|data, size| unsafe { proxy_get_header_map_pairs(map as u32, data, size) }) {
        Ok(Some(bytes)) => bytes,
        _ => Vec::new(),
    }
}

/// The first value of header `key` in `map`: `Ok(None)` when absent, empty when the host gave
/// an empty value (Ok with no buffer).
pub fn get_map_value(map: MapType, key: &str) -> Result<Option<Vec<u8>>, Status> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: the host reads the key and writes a pointer and a size through the out-pointers,
    // which point at live locals.
    match unsafe {
        proxy_get_header_map_value(map as u32, key.as_ptr(), key.len(), &mut data, &mut size)
    } {
        // SAFETY: on Ok the host wrote a buffer it allocated through the module (or null).
        OK => Ok(Some(unsafe { take(data, size) }.unwrap_or_default())),
        NOT_FOUND => Ok(None),
        n => Err(Status::from_raw(n)),
    }
}

/// Replaces header `key` in `map` with `value`, or removes it (`None`).
pub fn set_map_value(map: MapType, key: &str, value: Option<&str>) -> Result<(), Status> {
    // SAFETY: the host reads the key and the value at the given pointers and sizes.
    status(unsafe {
        match value {
            Some(v) => proxy_replace_header_map_value(
                map as u32,
                key.as_ptr(),
                key.len(),
                v.as_ptr(),
                v.len(),
            ),
            None => proxy_remove_header_map_value(map as u32, key.as_ptr(), key.len()),
        }
    })
}

/// Longest property path joined on the stack; a longer one (none of meshsight's) is allocated.
const PATH_ON_STACK: usize = 96;

/// A property path as the host reads it: the parts joined by NUL, in `stack` when it fits
/// (every path the module reads per request does: no allocation per host call).
fn property_path<'b>(
    path: &[&str],
    stack: &'b mut [u8; PATH_ON_STACK],
    heap: &'b mut Vec<u8>,
) -> &'b [u8] {
    let len = path
        .iter()
        .map(|p| p.len() + 1)
        .sum::<usize>()
        .saturating_sub(1);
    let bytes: &mut [u8] = if len <= PATH_ON_STACK {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        heap
    };
    let mut at = 0;
    for (i, part) in path.iter().enumerate() {
        if i > 0 {
            if let Some(nul) = bytes.get_mut(at) {
                *nul = 0;
            }
            at += 1;
        }
        let end = at + part.len();
        if let Some(slot) = bytes.get_mut(at..end) {
            slot.copy_from_slice(part.as_bytes());
        }
        at = end;
    }
    bytes
}

/// Property `path`: `Ok(None)` when the host has no such property.
pub fn get_property(path: &[&str]) -> Result<Option<Vec<u8>>, Status> {
    let (mut stack, mut heap) = ([0; PATH_ON_STACK], Vec::new());
    let path = property_path(path, &mut stack, &mut heap);
    // SAFETY: the host reads the path and writes a pointer and a size through the out-pointers.
    returned(|data, size| unsafe { proxy_get_property(path.as_ptr(), path.len(), data, size) })
}

/// Sets property `path` (filter state) to `value`.
pub fn set_property(path: &[&str], value: &[u8]) -> Result<(), Status> {
    let (mut stack, mut heap) = ([0; PATH_ON_STACK], Vec::new());
    let path = property_path(path, &mut stack, &mut heap);
    // SAFETY: the host reads the path and the value at the given pointers and sizes.
    status(unsafe { proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len()) })
}

/// A header map serialized for the host: pair count, each name's and value's length (u32 LE),
/// then each name and value NUL-terminated.
fn serialize_map(map: &[(&str, &str)]) -> Vec<u8> {
    let size = 4 + map
        .iter()
        .map(|(n, v)| n.len() + v.len() + 10)
        .sum::<usize>();
    let mut bytes = Vec::with_capacity(size);
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    bytes.extend_from_slice(&len(map.len()));
    for (name, value) in map {
        bytes.extend_from_slice(&len(name.len()));
        bytes.extend_from_slice(&len(value.len()));
    }
    for (name, value) in map {
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0);
    }
    bytes
}

/// Answers the current stream locally with `status_code`, `headers` and `body`.
pub fn send_local_response(
    status_code: u32,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(), Status> {
    let headers = serialize_map(headers);
    // SAFETY: the host reads the body and the headers at the given pointers and sizes; no
    // details (null, 0) and no gRPC status (-1), as the SDK's `send_http_response`.
    status(unsafe {
        proxy_send_local_response(
            status_code,
            null(),
            0,
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

/// Lets the current stream's paused request go on.
pub fn continue_request() -> Result<(), Status> {
    // SAFETY: no pointers.
    status(unsafe { proxy_continue_stream(STREAM_HTTP_REQUEST) })
}

/// Sends an HTTP call to cluster `upstream` (no trailers); the token its answer will carry.
pub fn http_call(
    upstream: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<u32, Status> {
    let headers = serialize_map(headers);
    let trailers = serialize_map(&[]);
    let timeout = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    let mut token = 0u32;
    // SAFETY: the host reads each buffer at its pointer and size and writes the token through
    // the out-pointer, which points at a live local.
    status(unsafe {
        proxy_http_call(
            upstream.as_ptr(),
            upstream.len(),
            headers.as_ptr(),
            headers.len(),
            body.as_ptr(),
            body.len(),
            trailers.as_ptr(),
            trailers.len(),
            timeout,
            &mut token,
        )
    })?;
    Ok(token)
}

/// Makes context `context_id` the one later host calls act on.
pub fn set_effective_context(context_id: u32) -> Result<(), Status> {
    // SAFETY: no pointers.
    status(unsafe { proxy_set_effective_context(context_id) })
}

/// Calls the host's foreign function `name` with `arguments`; its results.
pub fn call_foreign_function(
    name: &str,
    arguments: Option<&[u8]>,
) -> Result<Option<Vec<u8>>, Status> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: the host reads the name and the arguments and writes a pointer and a size
    // through the out-pointers, which point at live locals.
    status(unsafe {
        proxy_call_foreign_function(
            name.as_ptr(),
            name.len(),
            arguments.map_or(null(), <[u8]>::as_ptr),
            arguments.map_or(0, <[u8]>::len),
            &mut data,
            &mut size,
        )
    })?;
    // SAFETY: on Ok the host wrote a buffer it allocated through the module (or null).
    Ok(unsafe { take(data, size) })
}

/// Defines metric `name` of `kind`; its id.
pub fn define_metric(kind: MetricType, name: &str) -> Result<u32, Status> {
    let mut id = 0u32;
    // SAFETY: the host reads the name and writes the id through the out-pointer, which points
    // at a live local.
    status(unsafe { proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// Moves metric `id` by `offset`.
pub fn increment_metric(id: u32, offset: i64) -> Result<(), Status> {
    // SAFETY: no pointers.
    status(unsafe { proxy_increment_metric(id, offset) })
}

#[cfg(test)]
mod tests {
    use super::{property_path, serialize_map, PATH_ON_STACK};

    #[test]
    fn a_property_path_is_its_parts_joined_by_nul() {
        let joined = |path: &[&str]| {
            let (mut stack, mut heap) = ([0xff; PATH_ON_STACK], Vec::new());
            property_path(path, &mut stack, &mut heap).to_vec()
        };
        assert_eq!(joined(&["connection", "id"]), b"connection\0id");
        assert_eq!(joined(&["plugin_root_id"]), b"plugin_root_id");
        assert_eq!(joined(&[]), b"");
        assert_eq!(joined(&["a", "", "b"]), b"a\0\0b");
        assert_eq!(joined(&["", "b"]), b"\0b");
        // Longer than the stack buffer: the same bytes, allocated.
        let long = "x".repeat(PATH_ON_STACK);
        let mut want = long.as_bytes().to_vec();
        want.extend_from_slice(b"\0id");
        assert_eq!(joined(&[&long, "id"]), want);
        let exact = "y".repeat(PATH_ON_STACK - 3);
        assert_eq!(
            joined(&[&exact, "ab"]),
            [exact.as_bytes(), b"\0ab"].concat()
        );
    }

    #[test]
    fn a_header_map_is_serialized_as_the_host_reads_it() {
        // The SDK's `serialize_map`: count, each pair's lengths (u32 LE), then the
        // NUL-terminated names and values.
        let mut want = vec![2, 0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(b":path\0/ing\0a\0\0");
        assert_eq!(serialize_map(&[(":path", "/ing"), ("a", "")]), want);
        assert_eq!(serialize_map(&[]), vec![0, 0, 0, 0]);
    }
}
