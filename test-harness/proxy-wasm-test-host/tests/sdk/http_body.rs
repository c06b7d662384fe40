//! `http_body`: buffers the whole response body and redacts it when it contains "secret".

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

/// What `proxy_wasm::main!` does in the SDK's example.
pub fn register() {
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Body))
    }
}

struct Body;

impl Context for Body {}

impl HttpContext for Body {
    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        // The body may change length: a stale content-length would break clients, and headers
        // cannot change once this callback returns.
        self.set_http_response_header("content-length", None);
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            // Called again with the whole body once the host has buffered it.
            return Action::Pause;
        }
        if let Some(body) = self.get_http_response_body(0, body_size) {
            if String::from_utf8_lossy(&body).contains("secret") {
                let redacted = format!("Original message body ({body_size} bytes) redacted.\n");
                self.set_http_response_body(0, body_size, redacted.as_bytes());
            }
        }
        Action::Continue
    }
}
