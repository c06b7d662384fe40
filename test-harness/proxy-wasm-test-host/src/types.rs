//! What tests read back from the host: logs, local responses, dispatched calls, and the
//! answers they feed in.

use std::fmt;
use std::time::Duration;

use proxy_wasm::types::LogLevel;

/// One message the plugin logged through `proxy_log`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// The level the plugin logged at.
    pub level: LogLevel,
    /// The message text.
    pub message: String,
}

/// A response the plugin sent itself with `proxy_send_local_response` (e.g. a 403).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalResponse {
    /// HTTP status code.
    pub status: u32,
    /// Headers the plugin added to the response.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
    /// Envoy's "response code details" string (empty when the plugin gave none).
    pub details: String,
}

/// An HTTP callout the plugin dispatched with `proxy_http_call`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpCall {
    /// The token the host returned to the plugin; answer with `Host::respond_http_call`.
    pub token: u32,
    /// The upstream (Envoy cluster) name.
    pub upstream: String,
    /// Request headers, including pseudo-headers, as the plugin sent them.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Vec<u8>,
    /// Request trailers.
    pub trailers: Vec<(String, String)>,
    /// Timeout the plugin asked for.
    pub timeout: Duration,
    /// The context that dispatched the call (root or http stream).
    pub context_id: u32,
}

/// The answer a test feeds to an HTTP callout (`Host::respond_http_call`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpCallResponse<'a> {
    /// Response headers, e.g. `vec![(":status", "200")]`.
    pub headers: Vec<(&'a str, &'a str)>,
    /// Response body.
    pub body: Vec<u8>,
    /// Response trailers.
    pub trailers: Vec<(&'a str, &'a str)>,
}

impl<'a> HttpCallResponse<'a> {
    /// A response with the given status, no other headers and the given body.
    pub fn status(status: &'a str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            headers: vec![(":status", status)],
            body: body.into(),
            trailers: Vec::new(),
        }
    }
}

/// Whether a gRPC callout is a unary call or a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrpcKind {
    /// `proxy_grpc_call`: one request message, one response.
    Call,
    /// `proxy_grpc_stream`: messages sent with `proxy_grpc_send`.
    Stream,
}

/// A gRPC call or stream the plugin opened (`proxy_grpc_call` / `proxy_grpc_stream`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcCall {
    /// The token the host returned to the plugin.
    pub token: u32,
    /// Unary call or stream.
    pub kind: GrpcKind,
    /// The upstream (Envoy cluster) name.
    pub upstream: String,
    /// The gRPC service name.
    pub service: String,
    /// The gRPC method name.
    pub method: String,
    /// Initial metadata the plugin sent.
    pub initial_metadata: Vec<(String, Vec<u8>)>,
    /// The request message of a unary call (empty for a stream).
    pub message: Vec<u8>,
    /// Timeout of a unary call (`None` for a stream).
    pub timeout: Option<Duration>,
    /// Messages sent on a stream with `proxy_grpc_send`, with their `end_stream` flag.
    pub sent: Vec<(Vec<u8>, bool)>,
    /// The plugin cancelled it (`proxy_grpc_cancel`).
    pub cancelled: bool,
    /// The plugin closed it (`proxy_grpc_close`).
    pub closed: bool,
    /// The context that opened it.
    pub context_id: u32,
}

/// The plugin refused to start: `proxy_on_vm_start` or `proxy_on_configure` returned false.
#[derive(Clone, PartialEq, Eq)]
pub struct StartError {
    pub(crate) callback: &'static str,
    pub(crate) logs: Vec<LogEntry>,
}

impl StartError {
    /// Everything the plugin logged before refusing (the reason is usually among them).
    pub fn logs(&self) -> &[LogEntry] {
        &self.logs
    }

    /// The callback that returned false: `"proxy_on_vm_start"` or `"proxy_on_configure"`.
    pub fn callback(&self) -> &'static str {
        self.callback
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the plugin refused to start: {} returned false",
            self.callback
        )?;
        if self.logs.is_empty() {
            return write!(f, " (it logged nothing)");
        }
        write!(f, "; it logged:")?;
        for entry in &self.logs {
            write!(f, "\n  [{:?}] {}", entry.level, entry.message)?;
        }
        Ok(())
    }
}

impl fmt::Debug for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for StartError {}
