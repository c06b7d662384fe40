//! The 37 host functions proxy-wasm 0.2.5 imports (ABI 0.2.1), as native `extern "C"` symbols.
//!
//! The SDK declares them `extern "C"` under `wasm_import_module = "env"`; natively that is an
//! ordinary symbol the linker resolves here. Data the host returns is allocated as a boxed
//! slice of exactly its length because the SDK frees it with `Vec::from_raw_parts(p, len, len)`
//! (same global allocator: same binary). An empty result is returned as a null pointer, as
//! Envoy does (the SDK then reports `None`). Status codes follow Envoy's choices where the SDK
//! distinguishes them (`NotFound` for a missing property, `CasMismatch`, `Empty` queue, ...).
//! None of these functions may panic: a panic cannot unwind through `extern "C"`.
#![deny(unsafe_op_in_unsafe_fn)]

use std::ptr::null_mut;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::types::{LogLevel, MetricType, Status};

use super::codec::{self, HeaderMap};
use super::state::{self, HostEvent, HostState, Metric, MetricValue, SharedQueue};
use super::types::{GrpcCall, GrpcKind, HttpCall, LocalResponse, LogEntry};

// ---------------------------------------------------------------------------------------------
// Raw memory helpers: the only places that dereference pointers handed over by the SDK.

/// Borrows `len` bytes at `ptr` (empty for a null pointer or zero length).
///
/// # Safety
/// `ptr` must be null or valid for reads of `len` bytes for the returned lifetime.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: non-null and, per this function's contract, valid for `len` bytes.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

/// Borrows a UTF-8 string at `ptr` (`None` when it is not UTF-8).
///
/// # Safety
/// As [`bytes`].
unsafe fn text<'a>(ptr: *const u8, len: usize) -> Option<&'a str> {
    // SAFETY: same contract as `bytes`.
    std::str::from_utf8(unsafe { bytes(ptr, len) }).ok()
}

/// Writes `value` to the out-parameter `out` (ignored when null).
///
/// # Safety
/// `out` must be null or valid for a write of `T`.
unsafe fn put<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-null and, per this function's contract, valid for writes.
        unsafe { out.write(value) }
    }
}

/// Hands `data` to the SDK as `(pointer, size)`: a boxed slice of exactly `data.len()` bytes
/// that the SDK takes ownership of, or a null pointer when empty.
///
/// # Safety
/// `ptr_out` and `len_out` must be null or valid for writes.
unsafe fn give(data: Vec<u8>, ptr_out: *mut *mut u8, len_out: *mut usize) {
    let (ptr, len) = if data.is_empty() {
        (null_mut(), 0)
    } else {
        let boxed = data.into_boxed_slice();
        let len = boxed.len();
        (Box::into_raw(boxed).cast::<u8>(), len)
    };
    // SAFETY: per this function's contract.
    unsafe {
        put(ptr_out, ptr);
        put(len_out, len);
    }
}

/// Runs `f` on the live host, or answers `InternalFailure` when there is none.
fn host(f: impl FnOnce(&mut HostState) -> Status) -> Status {
    state::try_with(f).unwrap_or(Status::InternalFailure)
}

/// Reports a plugin call the host cannot serve; Envoy would fail it the same way.
fn complain(function: &str, why: &str) {
    eprintln!("proxy_wasm_test_host: {function}: {why}");
}

// ---------------------------------------------------------------------------------------------
// Logging, time, ticks.

/// `proxy_log`: records the message with its level (and echoes it when
/// `PROXY_WASM_TEST_HOST_LOG=1`, or always for Critical: the SDK's panic hook logs panics here).
#[no_mangle]
pub unsafe extern "C" fn proxy_log(
    level: u32,
    message_data: *const u8,
    message_size: usize,
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_log");
    // SAFETY: the SDK passes a valid string slice.
    let message =
        String::from_utf8_lossy(unsafe { bytes(message_data, message_size) }).into_owned();
    let level = log_level(level);
    let recorded = state::try_with(|s| {
        if s.echo_logs || level == LogLevel::Critical {
            eprintln!("[{level:?}] {message}");
        }
        s.logs.push(LogEntry {
            level,
            message: message.clone(),
        });
    });
    if recorded.is_none() {
        eprintln!("[{level:?}] {message}");
    }
    Status::Ok
}

fn log_level(level: u32) -> LogLevel {
    match level {
        0 => LogLevel::Trace,
        1 => LogLevel::Debug,
        2 => LogLevel::Info,
        3 => LogLevel::Warn,
        4 => LogLevel::Error,
        _ => LogLevel::Critical,
    }
}

/// `proxy_get_log_level`: the level the test configured (Trace by default).
#[no_mangle]
pub unsafe extern "C" fn proxy_get_log_level(return_level: *mut LogLevel) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_get_log_level");
    host(|s| {
        // SAFETY: the SDK passes a valid out-pointer.
        unsafe { put(return_level, s.log_level) };
        Status::Ok
    })
}

/// `proxy_get_current_time_nanoseconds`: the host's clock, fixed unless the test advances it.
#[no_mangle]
pub unsafe extern "C" fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_get_current_time_nanoseconds");
    host(|s| {
        // SAFETY: the SDK passes a valid out-pointer.
        unsafe { put(return_time, s.time_nanos) };
        Status::Ok
    })
}

/// `proxy_set_tick_period_milliseconds`: 0 stops ticks.
#[no_mangle]
pub extern "C" fn proxy_set_tick_period_milliseconds(period: u32) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_set_tick_period_milliseconds");
    host(|s| {
        s.tick_period = (period > 0).then(|| Duration::from_millis(u64::from(period)));
        Status::Ok
    })
}

// ---------------------------------------------------------------------------------------------
// Buffers.

const BUFFER_HTTP_REQUEST_BODY: u32 = 0;
const BUFFER_HTTP_RESPONSE_BODY: u32 = 1;
const BUFFER_HTTP_CALL_RESPONSE_BODY: u32 = 4;
const BUFFER_GRPC_RECEIVE: u32 = 5;
const BUFFER_VM_CONFIGURATION: u32 = 6;
const BUFFER_PLUGIN_CONFIGURATION: u32 = 7;

fn buffer(s: &mut HostState, buffer_type: u32) -> Option<&mut Vec<u8>> {
    match buffer_type {
        BUFFER_HTTP_REQUEST_BODY => s.effective_stream().map(|st| &mut st.request_body_buffered),
        BUFFER_HTTP_RESPONSE_BODY => s
            .effective_stream()
            .map(|st| &mut st.response_body_buffered),
        BUFFER_HTTP_CALL_RESPONSE_BODY => s.call_response.as_mut().map(|r| &mut r.body),
        BUFFER_GRPC_RECEIVE => s.grpc_delivery.as_mut().map(|d| &mut d.message),
        BUFFER_VM_CONFIGURATION => Some(&mut s.vm_config),
        BUFFER_PLUGIN_CONFIGURATION => Some(&mut s.plugin_config),
        _ => None,
    }
}

/// `proxy_get_buffer_bytes`: `[start, start + max_size)` of a buffer, clamped to its end;
/// `NotFound` when the buffer does not exist in the current context.
#[no_mangle]
pub unsafe extern "C" fn proxy_get_buffer_bytes(
    buffer_type: u32,
    start: usize,
    max_size: usize,
    return_buffer_data: *mut *mut u8,
    return_buffer_size: *mut usize,
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_get_buffer_bytes");
    host(|s| {
        let Some(data) = buffer(s, buffer_type) else {
            return Status::NotFound;
        };
        let from = start.min(data.len());
        let to = start.saturating_add(max_size).min(data.len());
        let chunk = data.get(from..to).unwrap_or_default().to_vec();
        // SAFETY: the SDK passes valid out-pointers.
        unsafe { give(chunk, return_buffer_data, return_buffer_size) };
        Status::Ok
    })
}

/// `proxy_set_buffer_bytes`, with Envoy's semantics: `start == 0` drains `size` bytes from the
/// front and prepends the data (so `(0, len)` replaces); `start >= len` appends; anything else
/// is a `BadArgument`.
#[no_mangle]
pub unsafe extern "C" fn proxy_set_buffer_bytes(
    buffer_type: u32,
    start: usize,
    size: usize,
    buffer_data: *const u8,
    buffer_size: usize,
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_set_buffer_bytes");
    // SAFETY: the SDK passes a valid slice.
    let value = unsafe { bytes(buffer_data, buffer_size) };
    host(|s| {
        let Some(data) = buffer(s, buffer_type) else {
            complain("proxy_set_buffer_bytes", "no such buffer in this context");
            return Status::NotFound;
        };
        if start == 0 {
            let drained = size.min(data.len());
            data.splice(0..drained, value.iter().copied());
            Status::Ok
        } else if start >= data.len() {
            data.extend_from_slice(value);
            Status::Ok
        } else {
            complain(
                "proxy_set_buffer_bytes",
                "Envoy only replaces from the start or appends at the end",
            );
            Status::BadArgument
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Header maps.

const MAP_HTTP_REQUEST_HEADERS: u32 = 0;
const MAP_HTTP_REQUEST_TRAILERS: u32 = 1;
const MAP_HTTP_RESPONSE_HEADERS: u32 = 2;
const MAP_HTTP_RESPONSE_TRAILERS: u32 = 3;
const MAP_GRPC_INITIAL_METADATA: u32 = 4;
const MAP_GRPC_TRAILING_METADATA: u32 = 5;
const MAP_HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
const MAP_HTTP_CALL_RESPONSE_TRAILERS: u32 = 7;

fn header_map(s: &mut HostState, map_type: u32) -> Option<&mut HeaderMap> {
    match map_type {
        MAP_HTTP_REQUEST_HEADERS => s.effective_stream().map(|st| &mut st.request_headers),
        MAP_HTTP_REQUEST_TRAILERS => s.effective_stream().map(|st| &mut st.request_trailers),
        MAP_HTTP_RESPONSE_HEADERS => s.effective_stream().map(|st| &mut st.response_headers),
        MAP_HTTP_RESPONSE_TRAILERS => s.effective_stream().map(|st| &mut st.response_trailers),
        MAP_GRPC_INITIAL_METADATA => s.grpc_delivery.as_mut().map(|d| &mut d.initial_metadata),
        MAP_GRPC_TRAILING_METADATA => s.grpc_delivery.as_mut().map(|d| &mut d.trailing_metadata),
        MAP_HTTP_CALL_RESPONSE_HEADERS => s.call_response.as_mut().map(|r| &mut r.headers),
        MAP_HTTP_CALL_RESPONSE_TRAILERS => s.call_response.as_mut().map(|r| &mut r.trailers),
        _ => None,
    }
}

/// Like [`header_map`] for a mutation; complains when the map does not exist here.
fn writable_map<'a>(
    s: &'a mut HostState,
    map_type: u32,
    function: &str,
) -> Option<&'a mut HeaderMap> {
    let map = header_map(s, map_type);
    if map.is_none() {
        complain(
            function,
            "no such header map in this context (Envoy fails the call)",
        );
    }
    map
}

/// `proxy_get_header_map_pairs`: the whole map, serialized (empty when it does not exist).
#[no_mangle]
pub unsafe extern "C" fn proxy_get_header_map_pairs(
    map_type: u32,
    return_map_data: *mut *mut u8,
    return_map_size: *mut usize,
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_get_header_map_pairs");
    host(|s| {
        let serialized = codec::serialize_map(header_map(s, map_type).map_or(&[][..], |m| &m[..]));
        // SAFETY: the SDK passes valid out-pointers.
        unsafe { give(serialized, return_map_data, return_map_size) };
        Status::Ok
    })
}

/// `proxy_set_header_map_pairs`: replaces the whole map.
#[no_mangle]
pub unsafe extern "C" fn proxy_set_header_map_pairs(
    map_type: u32,
    map_data: *const u8,
    map_size: usize,
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_set_header_map_pairs");
    // SAFETY: the SDK passes a valid slice.
    let Some(pairs) = codec::deserialize_map(unsafe { bytes(map_data, map_size) }) else {
        return Status::BadArgument;
    };
    host(
        |s| match writable_map(s, map_type, "proxy_set_header_map_pairs") {
            Some(map) => {
                map.clear();
                for (key, value) in pairs {
                    codec::add_header(map, key.to_ascii_lowercase(), value);
                }
                Status::Ok
            }
            None => Status::BadArgument,
        },
    )
}

/// `proxy_get_header_map_value`: the first value of a header (case-insensitive); `NotFound`
/// when absent.
#[no_mangle]
pub unsafe extern "C" fn proxy_get_header_map_value(
    map_type: u32,
    key_data: *const u8,
    key_size: usize,
    return_value_data: *mut *mut u8,
    return_value_size: *mut usize,
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_get_header_map_value");
    // SAFETY: the SDK passes a valid string slice.
    let Some(key) = (unsafe { text(key_data, key_size) }) else {
        return Status::BadArgument;
    };
    host(|s| {
        let value = header_map(s, map_type)
            .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)))
            .map(|(_, v)| v.clone());
        match value {
            Some(value) => {
                // SAFETY: the SDK passes valid out-pointers.
                unsafe { give(value, return_value_data, return_value_size) };
                Status::Ok
            }
            None => Status::NotFound,
        }
    })
}

/// `proxy_replace_header_map_value`: sets a header to one value, as Envoy's `setCopy` does
/// (every old value removed, the new one added).
#[no_mangle]
pub unsafe extern "C" fn proxy_replace_header_map_value(
    map_type: u32,
    key_data: *const u8,
    key_size: usize,
    value_data: *const u8,
    value_size: usize,
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_replace_header_map_value");
    // SAFETY: the SDK passes valid slices.
    let (key, value) = unsafe { (text(key_data, key_size), bytes(value_data, value_size)) };
    let Some(key) = key else {
        return Status::BadArgument;
    };
    host(
        |s| match writable_map(s, map_type, "proxy_replace_header_map_value") {
            Some(map) => {
                let key = key.to_ascii_lowercase();
                map.retain(|(k, _)| *k != key);
                codec::add_header(map, key, value.to_vec());
                Status::Ok
            }
            None => Status::BadArgument,
        },
    )
}

/// `proxy_remove_header_map_value`: removes every value of a header (absent is fine).
#[no_mangle]
pub unsafe extern "C" fn proxy_remove_header_map_value(
    map_type: u32,
    key_data: *const u8,
    key_size: usize,
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_remove_header_map_value");
    // SAFETY: the SDK passes a valid string slice.
    let Some(key) = (unsafe { text(key_data, key_size) }) else {
        return Status::BadArgument;
    };
    host(
        |s| match writable_map(s, map_type, "proxy_remove_header_map_value") {
            Some(map) => {
                map.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
                Status::Ok
            }
            None => Status::BadArgument,
        },
    )
}

/// `proxy_add_header_map_value`: appends a value (a header may then have several).
#[no_mangle]
pub unsafe extern "C" fn proxy_add_header_map_value(
    map_type: u32,
    key_data: *const u8,
    key_size: usize,
    value_data: *const u8,
    value_size: usize,
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_add_header_map_value");
    // SAFETY: the SDK passes valid slices.
    let (key, value) = unsafe { (text(key_data, key_size), bytes(value_data, value_size)) };
    let Some(key) = key else {
        return Status::BadArgument;
    };
    host(
        |s| match writable_map(s, map_type, "proxy_add_header_map_value") {
            Some(map) => {
                codec::add_header(map, key.to_ascii_lowercase(), value.to_vec());
                Status::Ok
            }
            None => Status::BadArgument,
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Properties.

/// Reads a property the way Envoy resolves it: the stream's own values (filter state and what
/// the test set), then attributes derived from the stream's headers, then VM-wide values.
pub(crate) fn lookup_property(s: &mut HostState, key: &[u8]) -> Option<Vec<u8>> {
    if let Some(stream) = s.effective_stream() {
        if let Some(value) = stream.properties.get(key) {
            return Some(value.clone());
        }
        if let Some(value) = derived_property(stream, key) {
            return Some(value);
        }
    }
    s.vm_properties.get(key).cloned()
}

fn first_header(map: &HeaderMap, name: &str) -> Option<Vec<u8>> {
    map.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

/// Request/response attributes Envoy derives from the headers it has seen.
fn derived_property(stream: &super::state::StreamState, key: &[u8]) -> Option<Vec<u8>> {
    let req = &stream.request_headers;
    match key {
        b"request\0path" => first_header(req, ":path"),
        b"request\0url_path" => first_header(req, ":path").map(|p| {
            let end = p.iter().position(|&b| b == b'?').unwrap_or(p.len());
            p[..end].to_vec()
        }),
        b"request\0query" => first_header(req, ":path").map(|p| {
            let start = p.iter().position(|&b| b == b'?').map_or(p.len(), |q| q + 1);
            p[start..].to_vec()
        }),
        b"request\0method" => first_header(req, ":method"),
        b"request\0host" => first_header(req, ":authority"),
        b"request\0scheme" => first_header(req, ":scheme"),
        b"request\0id" => first_header(req, "x-request-id"),
        b"request\0useragent" => first_header(req, "user-agent"),
        b"request\0referer" => first_header(req, "referer"),
        b"response\0code" => first_header(&stream.response_headers, ":status")
            .and_then(|v| std::str::from_utf8(&v).ok()?.parse::<i64>().ok())
            .or_else(|| stream.local_response.as_ref().map(|r| i64::from(r.status)))
            .map(|code| code.to_le_bytes().to_vec()),
        b"response\0code_details" => stream
            .local_response
            .as_ref()
            .map(|r| r.details.clone().into_bytes()),
        _ => None,
    }
}

/// `proxy_get_property`: `NotFound` when unset (the SDK then returns `None`).
#[no_mangle]
pub unsafe extern "C" fn proxy_get_property(
    path_data: *const u8,
    path_size: usize,
    return_value_data: *mut *mut u8,
    return_value_size: *mut usize,
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_get_property");
    // SAFETY: the SDK passes a valid slice.
    let key = unsafe { bytes(path_data, path_size) };
    host(|s| match lookup_property(s, key) {
        Some(value) => {
            // SAFETY: the SDK passes valid out-pointers.
            unsafe { give(value, return_value_data, return_value_size) };
            Status::Ok
        }
        None => Status::NotFound,
    })
}

/// `proxy_set_property`: inside an http stream callback it writes the stream's filter state,
/// otherwise the VM-wide value.
#[no_mangle]
pub unsafe extern "C" fn proxy_set_property(
    path_data: *const u8,
    path_size: usize,
    value_data: *const u8,
    value_size: usize,
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_set_property");
    // SAFETY: the SDK passes valid slices.
    let (key, value) = unsafe { (bytes(path_data, path_size), bytes(value_data, value_size)) };
    host(|s| {
        match s.effective_stream() {
            Some(stream) => stream.properties.insert(key.to_vec(), value.to_vec()),
            None => s.vm_properties.insert(key.to_vec(), value.to_vec()),
        };
        Status::Ok
    })
}

// ---------------------------------------------------------------------------------------------
// Shared data and queues.

/// `proxy_get_shared_data`: value and CAS; `NotFound` for an unknown key.
#[no_mangle]
pub unsafe extern "C" fn proxy_get_shared_data(
    key_data: *const u8,
    key_size: usize,
    return_value_data: *mut *mut u8,
    return_value_size: *mut usize,
    return_cas: *mut u32,
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_get_shared_data");
    // SAFETY: the SDK passes a valid string slice.
    let Some(key) = (unsafe { text(key_data, key_size) }) else {
        return Status::BadArgument;
    };
    host(|s| match s.shared_data.get(key) {
        Some((value, cas)) => {
            // SAFETY: the SDK passes valid out-pointers.
            unsafe {
                give(value.clone(), return_value_data, return_value_size);
                put(return_cas, *cas);
            }
            Status::Ok
        }
        None => Status::NotFound,
    })
}

/// Stores shared data, checking the CAS as Envoy does (0 means "no check").
pub(crate) fn store_shared_data(s: &mut HostState, key: &str, value: &[u8], cas: u32) -> Status {
    if cas != 0 {
        if let Some((_, current)) = s.shared_data.get(key) {
            if *current != cas {
                return Status::CasMismatch;
            }
        }
    }
    let next = s.next_cas;
    s.next_cas = s.next_cas.wrapping_add(1).max(1);
    s.shared_data
        .insert(key.to_string(), (value.to_vec(), next));
    Status::Ok
}

/// `proxy_set_shared_data`: `CasMismatch` when `cas` is non-zero and stale.
#[no_mangle]
pub unsafe extern "C" fn proxy_set_shared_data(
    key_data: *const u8,
    key_size: usize,
    value_data: *const u8,
    value_size: usize,
    cas: u32,
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_set_shared_data");
    // SAFETY: the SDK passes valid slices.
    let (key, value) = unsafe { (text(key_data, key_size), bytes(value_data, value_size)) };
    let Some(key) = key else {
        return Status::BadArgument;
    };
    host(|s| store_shared_data(s, key, value, cas))
}

/// `proxy_register_shared_queue`: the queue's id (the same id when registered again); the
/// registering root context receives its `on_queue_ready`.
#[no_mangle]
pub unsafe extern "C" fn proxy_register_shared_queue(
    name_data: *const u8,
    name_size: usize,
    return_id: *mut u32,
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_register_shared_queue");
    // SAFETY: the SDK passes a valid string slice.
    let Some(name) = (unsafe { text(name_data, name_size) }) else {
        return Status::BadArgument;
    };
    host(|s| {
        let owner = s.effective_root();
        let vm_id = s.vm_id.clone();
        let id = match s
            .queues
            .iter()
            .position(|q| q.vm_id == vm_id && q.name == name)
        {
            Some(at) => {
                s.queues[at].owner = owner;
                at + 1
            }
            None => {
                s.queues.push(SharedQueue {
                    vm_id,
                    name: name.to_string(),
                    owner,
                    items: Default::default(),
                });
                s.queues.len()
            }
        };
        // SAFETY: the SDK passes a valid out-pointer.
        unsafe { put(return_id, u32::try_from(id).unwrap_or(u32::MAX)) };
        Status::Ok
    })
}

/// `proxy_resolve_shared_queue`: `NotFound` when no queue of that vm_id and name exists.
#[no_mangle]
pub unsafe extern "C" fn proxy_resolve_shared_queue(
    vm_id_data: *const u8,
    vm_id_size: usize,
    name_data: *const u8,
    name_size: usize,
    return_id: *mut u32,
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_resolve_shared_queue");
    // SAFETY: the SDK passes valid string slices.
    let (vm_id, name) = unsafe { (text(vm_id_data, vm_id_size), text(name_data, name_size)) };
    let (Some(vm_id), Some(name)) = (vm_id, name) else {
        return Status::BadArgument;
    };
    host(|s| {
        match s
            .queues
            .iter()
            .position(|q| q.vm_id == vm_id && q.name == name)
        {
            Some(at) => {
                // SAFETY: the SDK passes a valid out-pointer.
                unsafe { put(return_id, u32::try_from(at + 1).unwrap_or(u32::MAX)) };
                Status::Ok
            }
            None => Status::NotFound,
        }
    })
}

fn queue(s: &mut HostState, queue_id: u32) -> Option<&mut SharedQueue> {
    let index = usize::try_from(queue_id).ok()?.checked_sub(1)?;
    s.queues.get_mut(index)
}

/// `proxy_dequeue_shared_queue`: `Empty` when the queue is empty, `NotFound` when unknown.
#[no_mangle]
pub unsafe extern "C" fn proxy_dequeue_shared_queue(
    queue_id: u32,
    return_value_data: *mut *mut u8,
    return_value_size: *mut usize,
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_dequeue_shared_queue");
    host(|s| match queue(s, queue_id) {
        Some(q) => match q.items.pop_front() {
            Some(item) => {
                // SAFETY: the SDK passes valid out-pointers.
                unsafe { give(item, return_value_data, return_value_size) };
                Status::Ok
            }
            None => Status::Empty,
        },
        None => Status::NotFound,
    })
}

/// Appends to a queue and schedules `on_queue_ready` for its owner.
pub(crate) fn enqueue(s: &mut HostState, queue_id: u32, value: &[u8]) -> Status {
    match queue(s, queue_id) {
        Some(q) => {
            q.items.push_back(value.to_vec());
            let root = q.owner;
            s.pending_events.push_back(HostEvent::QueueReady {
                root,
                queue: queue_id,
            });
            Status::Ok
        }
        None => Status::NotFound,
    }
}

/// `proxy_enqueue_shared_queue`: `on_queue_ready` follows once the current callback returned.
#[no_mangle]
pub unsafe extern "C" fn proxy_enqueue_shared_queue(
    queue_id: u32,
    value_data: *const u8,
    value_size: usize,
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_enqueue_shared_queue");
    // SAFETY: the SDK passes a valid slice.
    let value = unsafe { bytes(value_data, value_size) };
    host(|s| enqueue(s, queue_id, value))
}

// ---------------------------------------------------------------------------------------------
// Stream control and local responses.

const STREAM_HTTP_REQUEST: u32 = 0;
const STREAM_HTTP_RESPONSE: u32 = 1;

/// `proxy_continue_stream`: records that the request or response was resumed.
#[no_mangle]
pub extern "C" fn proxy_continue_stream(stream_type: u32) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_continue_stream");
    host(|s| match (s.effective_stream(), stream_type) {
        (Some(st), STREAM_HTTP_REQUEST) => {
            st.request_continued = true;
            Status::Ok
        }
        (Some(st), STREAM_HTTP_RESPONSE) => {
            st.response_continued = true;
            Status::Ok
        }
        _ => {
            complain(
                "proxy_continue_stream",
                "not inside an http stream callback",
            );
            Status::BadArgument
        }
    })
}

/// `proxy_close_stream`: records that the request or response was reset.
#[no_mangle]
pub extern "C" fn proxy_close_stream(stream_type: u32) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_close_stream");
    host(|s| match (s.effective_stream(), stream_type) {
        (Some(st), STREAM_HTTP_REQUEST) => {
            st.request_closed = true;
            Status::Ok
        }
        (Some(st), STREAM_HTTP_RESPONSE) => {
            st.response_closed = true;
            Status::Ok
        }
        _ => {
            complain("proxy_close_stream", "not inside an http stream callback");
            Status::BadArgument
        }
    })
}

/// `proxy_send_local_response`: records the response and marks the stream answered (the first
/// local response wins, as in Envoy).
#[no_mangle]
pub unsafe extern "C" fn proxy_send_local_response(
    status_code: u32,
    status_code_details_data: *const u8,
    status_code_details_size: usize,
    body_data: *const u8,
    body_size: usize,
    headers_data: *const u8,
    headers_size: usize,
    grpc_status: i32,
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_send_local_response");
    // SAFETY: the SDK passes valid slices.
    let (details, body, headers) = unsafe {
        (
            bytes(status_code_details_data, status_code_details_size),
            bytes(body_data, body_size),
            bytes(headers_data, headers_size),
        )
    };
    let Some(headers) = codec::deserialize_map(headers) else {
        return Status::BadArgument;
    };
    host(|s| match s.effective_stream() {
        Some(stream) => {
            if stream.local_response.is_none() {
                stream.local_response = Some(LocalResponse {
                    status: status_code,
                    headers: codec::string_pairs(&headers),
                    body: body.to_vec(),
                    details: String::from_utf8_lossy(details).into_owned(),
                });
                stream.local_response_grpc_status = (grpc_status >= 0).then_some(grpc_status);
            }
            Status::Ok
        }
        None => {
            complain(
                "proxy_send_local_response",
                "not inside an http stream callback",
            );
            Status::BadArgument
        }
    })
}

// ---------------------------------------------------------------------------------------------
// HTTP and gRPC callouts.

/// `proxy_http_call`: records the call and returns its token. `BadArgument` when the headers
/// lack `:method`, `:path` or `:authority` (Envoy refuses those); the status set with
/// `Host::set_http_call_error` when the test simulates an unknown cluster.
#[no_mangle]
pub unsafe extern "C" fn proxy_http_call(
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
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_http_call");
    // SAFETY: the SDK passes valid slices.
    let (upstream, headers, body, trailers) = unsafe {
        (
            text(upstream_data, upstream_size),
            bytes(headers_data, headers_size),
            bytes(body_data, body_size),
            bytes(trailers_data, trailers_size),
        )
    };
    let (Some(upstream), Some(headers), Some(trailers)) = (
        upstream,
        codec::deserialize_map(headers),
        codec::deserialize_map(trailers),
    ) else {
        return Status::BadArgument;
    };
    host(|s| {
        if let Some(error) = s.http_call_error {
            return error;
        }
        let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
        if !(has(":method") && has(":path") && has(":authority")) {
            complain(
                "proxy_http_call",
                "headers must include :method, :path and :authority",
            );
            return Status::BadArgument;
        }
        let token = state::next_token();
        s.pending_http_calls.push(HttpCall {
            token,
            upstream: upstream.to_string(),
            headers: codec::string_pairs(&headers),
            body: body.to_vec(),
            trailers: codec::string_pairs(&trailers),
            timeout: Duration::from_millis(u64::from(timeout)),
            context_id: current_context(s),
        });
        // SAFETY: the SDK passes a valid out-pointer.
        unsafe { put(return_token, token) };
        Status::Ok
    })
}

/// The context a callout belongs to: the effective one, or the root outside callbacks.
fn current_context(s: &HostState) -> u32 {
    if s.effective == 0 {
        s.root_id
    } else {
        s.effective
    }
}

/// Records a gRPC call or stream.
///
/// # Safety
/// `return_token` must be null or valid for a write.
#[allow(clippy::too_many_arguments)]
unsafe fn open_grpc(
    kind: GrpcKind,
    upstream: Option<&str>,
    service: Option<&str>,
    method: Option<&str>,
    metadata: &[u8],
    message: &[u8],
    timeout: Option<Duration>,
    return_token: *mut u32,
) -> Status {
    let (Some(upstream), Some(service), Some(method), Some(metadata)) =
        (upstream, service, method, codec::deserialize_map(metadata))
    else {
        return Status::ParseFailure;
    };
    host(|s| {
        let token = state::next_token();
        let context_id = current_context(s);
        s.grpc_calls.insert(
            token,
            GrpcCall {
                token,
                kind,
                upstream: upstream.to_string(),
                service: service.to_string(),
                method: method.to_string(),
                initial_metadata: metadata,
                message: message.to_vec(),
                timeout,
                sent: Vec::new(),
                cancelled: false,
                closed: false,
                context_id,
            },
        );
        // SAFETY: per this function's contract.
        unsafe { put(return_token, token) };
        Status::Ok
    })
}

/// `proxy_grpc_call`: records a unary gRPC call and returns its token.
#[no_mangle]
pub unsafe extern "C" fn proxy_grpc_call(
    upstream_data: *const u8,
    upstream_size: usize,
    service_name_data: *const u8,
    service_name_size: usize,
    method_name_data: *const u8,
    method_name_size: usize,
    initial_metadata_data: *const u8,
    initial_metadata_size: usize,
    message_data_data: *const u8,
    message_data_size: usize,
    timeout: u32,
    return_callout_id: *mut u32,
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_grpc_call");
    // SAFETY: the SDK passes valid slices.
    unsafe {
        open_grpc(
            GrpcKind::Call,
            text(upstream_data, upstream_size),
            text(service_name_data, service_name_size),
            text(method_name_data, method_name_size),
            bytes(initial_metadata_data, initial_metadata_size),
            bytes(message_data_data, message_data_size),
            Some(Duration::from_millis(u64::from(timeout))),
            return_callout_id,
        )
    }
}

/// `proxy_grpc_stream`: records a gRPC stream and returns its token.
#[no_mangle]
pub unsafe extern "C" fn proxy_grpc_stream(
    upstream_data: *const u8,
    upstream_size: usize,
    service_name_data: *const u8,
    service_name_size: usize,
    method_name_data: *const u8,
    method_name_size: usize,
    initial_metadata_data: *const u8,
    initial_metadata_size: usize,
    return_stream_id: *mut u32,
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_grpc_stream");
    // SAFETY: the SDK passes valid slices.
    unsafe {
        open_grpc(
            GrpcKind::Stream,
            text(upstream_data, upstream_size),
            text(service_name_data, service_name_size),
            text(method_name_data, method_name_size),
            bytes(initial_metadata_data, initial_metadata_size),
            &[],
            None,
            return_stream_id,
        )
    }
}

/// `proxy_grpc_send`: records a message on a stream; `NotFound` for an unknown token,
/// `BadArgument` for a unary call.
#[no_mangle]
pub unsafe extern "C" fn proxy_grpc_send(
    token: u32,
    message_ptr: *const u8,
    message_len: usize,
    end_stream: bool,
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_grpc_send");
    // SAFETY: the SDK passes a valid slice.
    let message = unsafe { bytes(message_ptr, message_len) };
    host(|s| match s.grpc_calls.get_mut(&token) {
        Some(call) if call.kind == GrpcKind::Stream => {
            call.sent.push((message.to_vec(), end_stream));
            Status::Ok
        }
        Some(_) => Status::BadArgument,
        None => Status::NotFound,
    })
}

/// `proxy_grpc_cancel`: marks a call or stream cancelled; `NotFound` for an unknown token.
#[no_mangle]
pub extern "C" fn proxy_grpc_cancel(token_id: u32) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_grpc_cancel");
    host(|s| match s.grpc_calls.get_mut(&token_id) {
        Some(call) => {
            call.cancelled = true;
            Status::Ok
        }
        None => Status::NotFound,
    })
}

/// `proxy_grpc_close`: marks a call or stream closed by the plugin; `NotFound` when unknown.
#[no_mangle]
pub extern "C" fn proxy_grpc_close(token_id: u32) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_grpc_close");
    host(|s| match s.grpc_calls.get_mut(&token_id) {
        Some(call) => {
            call.closed = true;
            Status::Ok
        }
        None => Status::NotFound,
    })
}

/// `proxy_get_status`: the gRPC status being delivered (0 and no message otherwise).
#[no_mangle]
pub unsafe extern "C" fn proxy_get_status(
    return_code: *mut u32,
    return_message_data: *mut *mut u8,
    return_message_size: *mut usize,
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_get_status");
    host(|s| {
        let (code, message) = match &s.grpc_delivery {
            Some(d) => (d.status, d.status_message.clone().unwrap_or_default()),
            None => (0, String::new()),
        };
        // SAFETY: the SDK passes valid out-pointers.
        unsafe {
            put(return_code, code);
            give(
                message.into_bytes(),
                return_message_data,
                return_message_size,
            );
        }
        Status::Ok
    })
}

// ---------------------------------------------------------------------------------------------
// Contexts, foreign functions, lifecycle.

/// `proxy_set_effective_context`: later host calls act on that context; `BadArgument` when it
/// does not exist.
#[no_mangle]
pub extern "C" fn proxy_set_effective_context(context_id: u32) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_set_effective_context");
    host(|s| {
        let live =
            context_id == s.root_id || s.streams.get(&context_id).is_some_and(|st| !st.deleted);
        if live {
            s.effective = context_id;
            Status::Ok
        } else {
            Status::BadArgument
        }
    })
}

/// The built-in foreign function that Envoy registers to clear the route cache.
pub const CLEAR_ROUTE_CACHE: &str = "clear_route_cache";

/// `proxy_call_foreign_function`: `clear_route_cache` is recorded on the current stream;
/// functions the test registered run with the arguments; anything else is `NotFound`.
#[no_mangle]
pub unsafe extern "C" fn proxy_call_foreign_function(
    function_name_data: *const u8,
    function_name_size: usize,
    arguments_data: *const u8,
    arguments_size: usize,
    results_data: *mut *mut u8,
    results_size: *mut usize,
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_call_foreign_function");
    // SAFETY: the SDK passes valid slices.
    let (name, arguments) = unsafe {
        (
            text(function_name_data, function_name_size),
            bytes(arguments_data, arguments_size),
        )
    };
    let Some(name) = name else {
        return Status::BadArgument;
    };
    let function = state::try_with(|s| s.foreign_functions.get(name).map(Rc::clone));
    let Some(function) = function else {
        return Status::InternalFailure;
    };
    if let Some(function) = function {
        // Run outside the state borrow: the function is test code.
        let results = function(arguments);
        // SAFETY: the SDK passes valid out-pointers.
        unsafe { give(results, results_data, results_size) };
        return Status::Ok;
    }
    if name == CLEAR_ROUTE_CACHE {
        return host(|s| match s.effective_stream() {
            Some(stream) => {
                stream.route_cache_cleared = true;
                // SAFETY: the SDK passes valid out-pointers.
                unsafe { give(Vec::new(), results_data, results_size) };
                Status::Ok
            }
            None => Status::BadArgument,
        });
    }
    Status::NotFound
}

/// `proxy_done`: the root context finished the work it postponed in `on_done`.
#[no_mangle]
pub extern "C" fn proxy_done() -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_done");
    host(|s| {
        s.done_called = true;
        Status::Ok
    })
}

// ---------------------------------------------------------------------------------------------
// Metrics.

fn metric(s: &mut HostState, metric_id: u32) -> Option<&mut Metric> {
    let index = usize::try_from(metric_id).ok()?.checked_sub(1)?;
    s.metrics.get_mut(index)
}

/// `proxy_define_metric`: the metric's id (the same id when a metric of that name and type
/// exists).
#[no_mangle]
pub unsafe extern "C" fn proxy_define_metric(
    metric_type: u32,
    name_data: *const u8,
    name_size: usize,
    return_id: *mut u32,
) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_define_metric");
    // SAFETY: the SDK passes a valid string slice.
    let Some(name) = (unsafe { text(name_data, name_size) }) else {
        return Status::BadArgument;
    };
    let (kind, value) = match metric_type {
        0 => (MetricType::Counter, MetricValue::Counter(0)),
        1 => (MetricType::Gauge, MetricValue::Gauge(0)),
        2 => (MetricType::Histogram, MetricValue::Histogram(Vec::new())),
        _ => return Status::BadArgument,
    };
    host(|s| {
        let at = match s
            .metrics
            .iter()
            .position(|m| m.name == name && m.kind() == kind)
        {
            Some(at) => at,
            None => {
                s.metrics.push(Metric {
                    name: name.to_string(),
                    value,
                });
                s.metrics.len() - 1
            }
        };
        // SAFETY: the SDK passes a valid out-pointer.
        unsafe { put(return_id, u32::try_from(at + 1).unwrap_or(u32::MAX)) };
        Status::Ok
    })
}

/// `proxy_get_metric`: a counter's or gauge's value; `BadArgument` for a histogram, `NotFound`
/// for an unknown id (as Envoy).
#[no_mangle]
pub unsafe extern "C" fn proxy_get_metric(metric_id: u32, return_value: *mut u64) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_get_metric");
    host(|s| {
        let value = match metric(s, metric_id).map(|m| &m.value) {
            Some(MetricValue::Counter(v)) => *v,
            // A gauge travels as its two's-complement bits, as in Envoy.
            Some(MetricValue::Gauge(v)) => *v as u64,
            Some(MetricValue::Histogram(_)) => return Status::BadArgument,
            None => return Status::NotFound,
        };
        // SAFETY: the SDK passes a valid out-pointer.
        unsafe { put(return_value, value) };
        Status::Ok
    })
}

/// `proxy_record_metric`: adds to a counter, sets a gauge, records a histogram sample (Envoy's
/// semantics); `NotFound` for an unknown id.
#[no_mangle]
pub extern "C" fn proxy_record_metric(metric_id: u32, value: u64) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_record_metric");
    host(|s| match metric(s, metric_id).map(|m| &mut m.value) {
        Some(MetricValue::Counter(v)) => {
            *v = v.saturating_add(value);
            Status::Ok
        }
        Some(MetricValue::Gauge(v)) => {
            *v = value as i64;
            Status::Ok
        }
        Some(MetricValue::Histogram(samples)) => {
            samples.push(value);
            Status::Ok
        }
        None => Status::NotFound,
    })
}

/// `proxy_increment_metric`: counters take positive offsets only and gauges any offset
/// (`BadArgument` otherwise, and for histograms); `NotFound` for an unknown id.
#[no_mangle]
pub extern "C" fn proxy_increment_metric(metric_id: u32, offset: i64) -> Status {
    let _host = crate::alloc::HostFunction::enter();
    state::record_host_call("proxy_increment_metric");
    host(|s| match metric(s, metric_id).map(|m| &mut m.value) {
        Some(MetricValue::Counter(v)) if offset > 0 => {
            *v = v.saturating_add(offset.unsigned_abs());
            Status::Ok
        }
        Some(MetricValue::Gauge(v)) => {
            *v = v.saturating_add(offset);
            Status::Ok
        }
        Some(_) => Status::BadArgument,
        None => Status::NotFound,
    })
}

/// Touches every host function, so that the linker keeps this object whenever the `Host` API
/// is used (some linkers resolve the SDK's references only against objects already kept).
pub(crate) fn keep_linked() {
    let functions: [*const (); 37] = [
        proxy_log as *const (),
        proxy_get_log_level as *const (),
        proxy_get_current_time_nanoseconds as *const (),
        proxy_set_tick_period_milliseconds as *const (),
        proxy_get_buffer_bytes as *const (),
        proxy_set_buffer_bytes as *const (),
        proxy_get_header_map_pairs as *const (),
        proxy_set_header_map_pairs as *const (),
        proxy_get_header_map_value as *const (),
        proxy_replace_header_map_value as *const (),
        proxy_remove_header_map_value as *const (),
        proxy_add_header_map_value as *const (),
        proxy_get_property as *const (),
        proxy_set_property as *const (),
        proxy_get_shared_data as *const (),
        proxy_set_shared_data as *const (),
        proxy_register_shared_queue as *const (),
        proxy_resolve_shared_queue as *const (),
        proxy_dequeue_shared_queue as *const (),
        proxy_enqueue_shared_queue as *const (),
        proxy_continue_stream as *const (),
        proxy_close_stream as *const (),
        proxy_send_local_response as *const (),
        proxy_http_call as *const (),
        proxy_grpc_call as *const (),
        proxy_grpc_stream as *const (),
        proxy_grpc_send as *const (),
        proxy_grpc_cancel as *const (),
        proxy_grpc_close as *const (),
        proxy_get_status as *const (),
        proxy_set_effective_context as *const (),
        proxy_call_foreign_function as *const (),
        proxy_done as *const (),
        proxy_define_metric as *const (),
        proxy_get_metric as *const (),
        proxy_record_metric as *const (),
        proxy_increment_metric as *const (),
    ];
    std::hint::black_box(functions);
}
