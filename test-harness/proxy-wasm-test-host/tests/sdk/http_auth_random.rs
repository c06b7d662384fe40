//! `http_auth_random`: asks an upstream for one random byte per request; even lets the request
//! through, odd answers 403.

use std::time::Duration;

use log::info;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel};

/// What `proxy_wasm::main!` does in the SDK's example (no root context of its own).
pub fn register() {
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(AuthRandom) });
}

struct AuthRandom;

impl HttpContext for AuthRandom {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        let dispatched = self.dispatch_http_call(
            "httpbin",
            vec![
                (":method", "GET"),
                (":path", "/bytes/1"),
                (":authority", "httpbin.org"),
            ],
            None,
            vec![],
            Duration::from_secs(1),
        );
        match dispatched {
            Ok(_) => Action::Pause,
            Err(status) => {
                info!("Dispatch failed: {status:?}.");
                self.send_http_response(500, vec![], None);
                Action::Pause
            }
        }
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        self.set_http_response_header("Powered-By", Some("proxy-wasm"));
        Action::Continue
    }
}

impl Context for AuthRandom {
    fn on_http_call_response(&mut self, _: u32, _: usize, body_size: usize, _: usize) {
        let body = self.get_http_call_response_body(0, body_size);
        if body.is_some_and(|b| b.first().is_some_and(|byte| byte % 2 == 0)) {
            info!("Access granted.");
            self.resume_http_request();
            return;
        }
        info!("Access forbidden.");
        self.send_http_response(
            403,
            vec![("Powered-By", "proxy-wasm")],
            Some(b"Access forbidden.\n"),
        );
    }
}
