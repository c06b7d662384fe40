//! `http_config`: adds a response header whose value is the plugin configuration.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

/// What `proxy_wasm::main!` does in the SDK's example.
pub fn register() {
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root {
            header_content: String::new(),
        })
    });
}

struct Root {
    header_content: String,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _: usize) -> bool {
        // The SDK's example unwraps here; refusing a non-UTF-8 configuration keeps the VM up.
        match self.get_plugin_configuration().map(String::from_utf8) {
            Some(Ok(content)) => self.header_content = content,
            Some(Err(_)) => return false,
            None => {}
        }
        true
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(ConfigHeader {
            header_content: self.header_content.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct ConfigHeader {
    header_content: String,
}

impl Context for ConfigHeader {}

impl HttpContext for ConfigHeader {
    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        self.add_http_response_header("custom-header", &self.header_content);
        Action::Continue
    }
}
