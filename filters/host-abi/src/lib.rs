//! The proxy-wasm ABI 0.2.1 as meshsight speaks it without the SDK: the module's only `unsafe`.
//!
//! The proxy-wasm Rust SDK cost the module about 21 KB of Wasm (after wasm-opt) plus what it
//! pulls in: the `log` crate, maps of boxed trait objects with a vtable entry for every
//! callback of every context kind, and header maps decoded into `Vec<(String, String)>`. This
//! crate holds what replaces it, so that every other crate of the module forbids unsafe code:
//! [`imports`], safe functions over the host functions meshsight calls (and the wire formats
//! they take), and, behind the `callbacks` feature, the callbacks Envoy calls
//! (`export_callbacks!`, expanded in the module's crate, dispatching to its one root type and
//! one stream type through `callbacks::RootContext` and `callbacks::StreamContext`).
//!
//! [`header_map_wire`] is the one call the SDK-based benchmark filter makes without the SDK:
//! the SDK's `hostcalls::get_map_bytes` turns the host's serialized header map into a
//! `Vec<(String, Vec<u8>)>` (two allocations and two copies per header, on every request);
//! the host's buffer, kept as it is, is indexed by
//! `meshsight_policy::headers::HeaderBlock::from_wire`. That filter does not enable
//! `callbacks`: its callbacks are the SDK's. The native test host, which implements the ABI,
//! is the workspace's other `unsafe`.

pub mod imports;

#[cfg(feature = "callbacks")]
pub mod callbacks;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
}

/// `proxy_status_t` Ok.
const STATUS_OK: u32 = 0;

/// `proxy_status_t`: what a host function answered.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Done.
    Ok,
    /// No such value (property, header, buffer).
    NotFound,
    /// The host refused an argument (an unknown cluster, a bad header map).
    BadArgument,
    /// A value could not be serialized.
    SerializationFailure,
    /// A value could not be parsed.
    ParseFailure,
    /// Nothing to return.
    Empty,
    /// Compare-and-swap mismatch.
    CasMismatch,
    /// The host failed.
    InternalFailure,
    /// A status this ABI version does not name.
    Other(u32),
}

impl Status {
    /// The status the host returned as a number.
    pub fn from_raw(raw: u32) -> Status {
        match raw {
            0 => Status::Ok,
            1 => Status::NotFound,
            2 => Status::BadArgument,
            3 => Status::SerializationFailure,
            4 => Status::ParseFailure,
            7 => Status::Empty,
            8 => Status::CasMismatch,
            10 => Status::InternalFailure,
            n => Status::Other(n),
        }
    }
}

/// What `#[derive(Debug)]` wrote (`BadArgument`, `Other(12)`), without core's tuple builder
/// (half a kilobyte of Wasm for the one variant with a field).
impl std::fmt::Debug for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Ok => "Ok",
            Status::NotFound => "NotFound",
            Status::BadArgument => "BadArgument",
            Status::SerializationFailure => "SerializationFailure",
            Status::ParseFailure => "ParseFailure",
            Status::Empty => "Empty",
            Status::CasMismatch => "CasMismatch",
            Status::InternalFailure => "InternalFailure",
            Status::Other(n) => return write!(f, "Other({n})"),
        })
    }
}

/// `proxy_log_level_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum LogLevel {
    /// Trace.
    Trace = 0,
    /// Debug.
    Debug = 1,
    /// Info.
    Info = 2,
    /// Warn.
    Warn = 3,
    /// Error.
    Error = 4,
    /// Critical.
    Critical = 5,
}

impl LogLevel {
    /// The level the host returned as a number (`None` past the ABI's six).
    pub fn from_raw(raw: u32) -> Option<LogLevel> {
        Some(match raw {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }
}

/// What a stream callback tells the host: go on, or stop the stream here for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Action {
    /// Go on to the next filter.
    Continue = 0,
    /// Stop iterating until the module resumes the stream (or answers it).
    Pause = 1,
}

/// `proxy_buffer_type_t`, the buffers the module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum BufferType {
    /// The request body Envoy holds for this filter.
    HttpRequestBody = 0,
    /// The response body chunk Envoy holds for this filter.
    HttpResponseBody = 1,
    /// The body of an HTTP call's answer.
    HttpCallResponseBody = 4,
    /// The plugin's configuration.
    PluginConfiguration = 7,
}

/// `proxy_map_type_t`, the header maps the module reads or changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum MapType {
    /// The request's headers.
    HttpRequestHeaders = 0,
    /// The request's trailers.
    HttpRequestTrailers = 1,
    /// The response's headers.
    HttpResponseHeaders = 2,
    /// The response's trailers.
    HttpResponseTrailers = 3,
    /// The headers of an HTTP call's answer.
    HttpCallResponseHeaders = 6,
}

/// `proxy_metric_type_t`, the kinds the module defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum MetricType {
    /// Only ever goes up.
    Counter = 0,
    /// Goes up and down.
    Gauge = 1,
}

/// `proxy_stream_type_t`: the request direction (the only one the module resumes).
const STREAM_HTTP_REQUEST: u32 = 0;

/// The header map `map` exactly as the host serialized it (pair count, lengths, then each name
/// and value NUL-terminated); empty when the host has no such map or refuses the call, never
/// a panic (the SDK panics on an unexpected status).
pub fn header_map_wire(map: MapType) -> Vec<u8> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes at most one pointer and one size through the two out-pointers,
    // which point at live locals.
    #[allow(unsafe_code)]
    let status = unsafe { proxy_get_header_map_pairs(map as u32, &mut data, &mut size) };
    if status != STATUS_OK || data.is_null() {
        return Vec::new();
    }
    // SAFETY: the host allocated `data` by calling the module's `proxy_on_memory_allocate`
    // with `size` (the proxy-wasm SDK's export: a `Box<[MaybeUninit<u8>]>` of exactly `size`
    // bytes from the global allocator) and filled all of it; ownership passes to the module,
    // which is how the SDK's own `get_map_bytes` takes it.
    #[allow(unsafe_code)]
    unsafe {
        Vec::from_raw_parts(data, size, size)
    }
}

#[cfg(test)]
mod tests {
    use super::Status;

    /// The hand-written `Debug` writes what the derived one did (the log lines quote it).
    #[test]
    fn status_debug_is_the_derived_text() {
        let all = [0, 1, 2, 3, 4, 7, 8, 10, 12, 4_000_000_000].map(Status::from_raw);
        let text: Vec<String> = all.iter().map(|s| format!("{s:?}")).collect();
        assert_eq!(
            text,
            [
                "Ok",
                "NotFound",
                "BadArgument",
                "SerializationFailure",
                "ParseFailure",
                "Empty",
                "CasMismatch",
                "InternalFailure",
                "Other(12)",
                "Other(4000000000)"
            ]
        );
    }
}
