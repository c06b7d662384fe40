//! A probe plugin for the host's own tests: a real proxy-wasm SDK filter whose every callback
//! runs a closure the test scripted (per thread, like the SDK's dispatcher), so each test calls
//! exactly the host functions it checks, through the SDK, and records what it observed.
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use proxy_wasm_test_host::{Host, HostBuilder, StartError};

/// A root-context hook.
pub type RootHook = Box<dyn FnMut(&mut ProbeRoot) -> bool>;
/// A root-context hook that gets an id (queue id, token).
pub type RootIdHook = Box<dyn FnMut(&mut ProbeRoot, u32)>;
/// An http-context hook: the callback's two arguments (count or size, end_of_stream).
pub type HttpHook = Box<dyn FnMut(&mut ProbeHttp, usize, bool) -> Action>;
/// An http-context hook without a return value.
pub type HttpEventHook = Box<dyn FnMut(&mut ProbeHttp)>;
/// A callout hook: token and the three sizes/counts the callback gets.
pub type CalloutHook = Box<dyn FnMut(&mut dyn Context, u32, usize, usize, usize)>;

/// What the probe does in each callback; unset hooks do nothing and continue.
#[derive(Default)]
pub struct Script {
    pub vm_start: Option<RootHook>,
    pub configure: Option<RootHook>,
    pub tick: Option<RootHook>,
    pub root_done: Option<RootHook>,
    pub queue_ready: Option<RootIdHook>,
    pub context_create: Option<HttpEventHook>,
    pub request_headers: Option<HttpHook>,
    pub request_body: Option<HttpHook>,
    pub request_trailers: Option<HttpHook>,
    pub response_headers: Option<HttpHook>,
    pub response_body: Option<HttpHook>,
    pub response_trailers: Option<HttpHook>,
    pub log: Option<HttpEventHook>,
    pub http_done: Option<HttpEventHook>,
    /// `on_http_call_response(token, headers, body, trailers)` in either context.
    pub http_call_response: Option<CalloutHook>,
    /// gRPC callbacks: (token, a, b, 0) per callback as named.
    pub grpc_call_response: Option<CalloutHook>,
    pub grpc_initial_metadata: Option<CalloutHook>,
    pub grpc_message: Option<CalloutHook>,
    pub grpc_trailing_metadata: Option<CalloutHook>,
    pub grpc_stream_close: Option<CalloutHook>,
}

thread_local! {
    static SCRIPT: RefCell<Script> = RefCell::new(Script::default());
}

/// Takes a hook out of the script, runs it (hooks may re-enter the host), and puts it back.
fn run<H, R>(
    select: fn(&mut Script) -> &mut Option<H>,
    call: impl FnOnce(&mut H) -> R,
    default: R,
) -> R {
    let hook = SCRIPT.with(|s| select(&mut s.borrow_mut()).take());
    match hook {
        Some(mut hook) => {
            let result = call(&mut hook);
            SCRIPT.with(|s| *select(&mut s.borrow_mut()) = Some(hook));
            result
        }
        None => default,
    }
}

/// The probe's root context.
pub struct ProbeRoot {
    pub id: u32,
}

/// The probe's http context.
pub struct ProbeHttp {
    pub id: u32,
}

impl Context for ProbeRoot {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, trailers: usize) {
        run(
            |s| &mut s.http_call_response,
            |h| h(self, token, headers, body, trailers),
            (),
        );
    }
    fn on_grpc_call_response(&mut self, token: u32, status: u32, size: usize) {
        run(
            |s| &mut s.grpc_call_response,
            |h| h(self, token, status as usize, size, 0),
            (),
        );
    }
    fn on_grpc_stream_initial_metadata(&mut self, token: u32, n: u32) {
        run(
            |s| &mut s.grpc_initial_metadata,
            |h| h(self, token, n as usize, 0, 0),
            (),
        );
    }
    fn on_grpc_stream_message(&mut self, token: u32, size: usize) {
        run(|s| &mut s.grpc_message, |h| h(self, token, size, 0, 0), ());
    }
    fn on_grpc_stream_trailing_metadata(&mut self, token: u32, n: u32) {
        run(
            |s| &mut s.grpc_trailing_metadata,
            |h| h(self, token, n as usize, 0, 0),
            (),
        );
    }
    fn on_grpc_stream_close(&mut self, token: u32, status: u32) {
        run(
            |s| &mut s.grpc_stream_close,
            |h| h(self, token, status as usize, 0, 0),
            (),
        );
    }
    fn on_done(&mut self) -> bool {
        run(|s| &mut s.root_done, |h| h(self), true)
    }
}

impl RootContext for ProbeRoot {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        run(|s| &mut s.vm_start, |h| h(self), true)
    }
    fn on_configure(&mut self, _size: usize) -> bool {
        run(|s| &mut s.configure, |h| h(self), true)
    }
    fn on_tick(&mut self) {
        run(|s| &mut s.tick, |h| h(self), true);
    }
    fn on_queue_ready(&mut self, queue_id: u32) {
        run(|s| &mut s.queue_ready, |h| h(self, queue_id), ());
    }
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let mut http = ProbeHttp { id: context_id };
        run(|s| &mut s.context_create, |h| h(&mut http), ());
        Some(Box::new(http))
    }
}

impl Context for ProbeHttp {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, trailers: usize) {
        run(
            |s| &mut s.http_call_response,
            |h| h(self, token, headers, body, trailers),
            (),
        );
    }
    fn on_grpc_call_response(&mut self, token: u32, status: u32, size: usize) {
        run(
            |s| &mut s.grpc_call_response,
            |h| h(self, token, status as usize, size, 0),
            (),
        );
    }
    fn on_grpc_stream_initial_metadata(&mut self, token: u32, n: u32) {
        run(
            |s| &mut s.grpc_initial_metadata,
            |h| h(self, token, n as usize, 0, 0),
            (),
        );
    }
    fn on_grpc_stream_message(&mut self, token: u32, size: usize) {
        run(|s| &mut s.grpc_message, |h| h(self, token, size, 0, 0), ());
    }
    fn on_grpc_stream_trailing_metadata(&mut self, token: u32, n: u32) {
        run(
            |s| &mut s.grpc_trailing_metadata,
            |h| h(self, token, n as usize, 0, 0),
            (),
        );
    }
    fn on_grpc_stream_close(&mut self, token: u32, status: u32) {
        run(
            |s| &mut s.grpc_stream_close,
            |h| h(self, token, status as usize, 0, 0),
            (),
        );
    }
    fn on_done(&mut self) -> bool {
        run(|s| &mut s.http_done, |h| h(self), ());
        true
    }
}

impl HttpContext for ProbeHttp {
    fn on_http_request_headers(&mut self, n: usize, eos: bool) -> Action {
        run(
            |s| &mut s.request_headers,
            |h| h(self, n, eos),
            Action::Continue,
        )
    }
    fn on_http_request_body(&mut self, n: usize, eos: bool) -> Action {
        run(
            |s| &mut s.request_body,
            |h| h(self, n, eos),
            Action::Continue,
        )
    }
    fn on_http_request_trailers(&mut self, n: usize) -> Action {
        run(
            |s| &mut s.request_trailers,
            |h| h(self, n, true),
            Action::Continue,
        )
    }
    fn on_http_response_headers(&mut self, n: usize, eos: bool) -> Action {
        run(
            |s| &mut s.response_headers,
            |h| h(self, n, eos),
            Action::Continue,
        )
    }
    fn on_http_response_body(&mut self, n: usize, eos: bool) -> Action {
        run(
            |s| &mut s.response_body,
            |h| h(self, n, eos),
            Action::Continue,
        )
    }
    fn on_http_response_trailers(&mut self, n: usize) -> Action {
        run(
            |s| &mut s.response_trailers,
            |h| h(self, n, true),
            Action::Continue,
        )
    }
    fn on_log(&mut self) {
        run(|s| &mut s.log, |h| h(self), ());
    }
}

/// The probe's `register()`: what a filter's `main!` would call.
pub fn register() {
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> { Box::new(ProbeRoot { id }) });
}

/// Installs `script` for this thread and returns a builder for the probe.
pub fn probe(script: Script) -> HostBuilder {
    SCRIPT.with(|s| *s.borrow_mut() = script);
    Host::builder(register)
}

/// Installs `script` and starts the probe with default settings.
pub fn start(script: Script) -> Host {
    match probe(script).start() {
        Ok(host) => host,
        Err(err) => panic!("probe failed to start: {err}"),
    }
}

/// Starts the probe and expects it to be refused.
pub fn start_err(builder: HostBuilder) -> StartError {
    match builder.start() {
        Ok(_) => panic!("the probe started but should have been refused"),
        Err(err) => err,
    }
}

/// A shared slot tests use to carry what a hook observed out of the plugin.
pub fn slot<T: Default>() -> Rc<RefCell<T>> {
    Rc::new(RefCell::new(T::default()))
}
