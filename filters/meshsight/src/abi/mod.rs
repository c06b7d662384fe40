//! The proxy-wasm ABI 0.2.1, as much of it as meshsight uses, without the SDK.
//!
//! The proxy-wasm Rust SDK cost the module about 21 KB of Wasm (after wasm-opt) plus what it
//! pulls in: the `log` crate, maps of boxed trait objects with a vtable entry for every
//! callback of every context kind, and header maps decoded into `Vec<(String, String)>`. The
//! module has one root type and one stream type, so [`exports`] calls them directly, and
//! [`imports`] declares only the host functions `crate::host` wraps (the one host seam: nothing
//! else in the crate calls them). The `unsafe` the ABI needs (raw pointers the host writes
//! through, buffers it hands over) lives in these two files only.

pub mod imports;

mod exports;

pub use exports::register;

/// `proxy_status_t`: what a host function answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
