//! A native proxy-wasm host for `cargo test`: all 37 host functions of ABI 0.2.1, so a Rust
//! filter's real SDK dispatcher runs natively, as Go filters run on `proxytest`.
//!
//! The filter crate is linked into the test binary as an ordinary rlib. Its proxy-wasm SDK calls
//! the host functions it imports (`proxy_log`, `proxy_get_property`, ...) as `extern "C"`
//! symbols: this crate defines all 37 of them natively. A test drives the SDK's exported
//! `proxy_on_*` entry points through [`Host`] in the order Envoy does (start the plugin with a
//! configuration, open a stream, deliver headers and bodies, answer callouts, tick) and reads
//! back what the filter did: local responses, header and body mutations, properties, dispatched
//! calls, metrics and logs. Tests check state, not a script of expected host calls.
//!
//! The SDK keeps its dispatcher in a thread-local, and so does the host: one live [`Host`] per
//! thread (cargo runs each `#[test]` on its own thread, so tests still run in parallel).
//! Callbacks the host itself triggers (`on_queue_ready` after an enqueue) are delivered after
//! the current callback returns, as in Envoy; answers the test feeds in (HTTP call responses,
//! gRPC messages, ticks) are delivered at once, since the test only runs between callbacks.
//!
//! ```
//! use proxy_wasm::traits::{Context, HttpContext};
//! use proxy_wasm::types::Action;
//! use proxy_wasm_test_host::Host;
//!
//! // The filter under test; in its own crate this is `pub fn register()` beside
//! // `proxy_wasm::main! {{ register() }}` (kept behind `#[cfg(target_family = "wasm")]`).
//! struct DenyAdmin;
//! impl Context for DenyAdmin {}
//! impl HttpContext for DenyAdmin {
//!     fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
//!         if self.get_http_request_header(":path").as_deref() == Some("/admin") {
//!             self.send_http_response(403, vec![], Some(b"denied"));
//!             return Action::Pause;
//!         }
//!         Action::Continue
//!     }
//! }
//! fn register() {
//!     proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(DenyAdmin) });
//! }
//!
//! let mut host = Host::builder(register).plugin_config("{}").start().unwrap();
//! let id = host.new_http_stream();
//! let action = host.request_headers(id, &[(":method", "GET"), (":path", "/admin")], true);
//! assert_eq!(action, Action::Pause);
//! assert_eq!(host.local_response(id).map(|r| r.status), Some(403));
//! ```
//!
//! Set `PROXY_WASM_TEST_HOST_LOG=1` to echo the plugin's log to stderr.
//!
//! What a request costs: [`Host::host_calls`] lists the host functions a context's callbacks
//! called, in order; a test binary that installs [`CountingAllocator`] reads the plugin's own
//! heap allocations from [`plugin_allocations`].
//!
//! Where the host stands in for Envoy, and where it does not:
//! - Header names are lower-cased; `get_header_map_value` returns the first value.
//! - Bodies are buffered as Envoy buffers them: the plugin sees the chunks accumulated while it
//!   returned `Pause`, and `set_buffer_bytes` may only replace from the start or append.
//! - Properties resolve stream value, then request attributes derived from the headers
//!   (`request.path`, `request.url_path`, `request.query`, `request.method`, `request.host`,
//!   `request.scheme`, `request.id`, `request.useragent`, `request.referer`, `response.code`
//!   as an 8-byte little-endian integer, from the response headers or else the local
//!   response, and `response.code_details` of a local response), then VM-wide values;
//!   `set_property` inside an http callback writes the stream's filter state. Other Envoy
//!   attributes must be set by the test.
//! - A local response is recorded, not sent through the response path unless the test calls
//!   [`Host::encode_local_response`].
//! - `proxy_http_call` refuses headers without `:method`, `:path` and `:authority`; it knows no
//!   clusters (simulate an unknown one with [`Host::set_http_call_error`]).
//! - Only HTTP streams are modelled: TCP data buffers (`DownstreamData`, `UpstreamData`) and
//!   `CallData` are `NotFound`.
//! - One plugin per Host. The SDK's context factories outlive a Host on its thread: a filter
//!   that calls `set_http_context` leaves it set for a later Host on the same thread.
//! - A panic inside a plugin callback cannot unwind through the SDK's `extern "C"` entry
//!   points: the test binary aborts, after the SDK's panic hook has logged the message
//!   (echoed to stderr as `[Critical] ...`), much as Envoy's VM would fail.

mod abi;
mod alloc;
mod codec;
mod sdk;
mod state;
mod types;

use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

pub use proxy_wasm::types::{Action, LogLevel, MetricType, Status};

pub use abi::CLEAR_ROUTE_CACHE;
pub use alloc::{plugin_allocations, CountingAllocator};
pub use types::{
    GrpcCall, GrpcKind, HttpCall, HttpCallResponse, LocalResponse, LogEntry, StartError,
};

use state::{CallResponse, GrpcDelivery, HostEvent, HostState, MetricValue, StreamState};

/// The start time of the host clock unless the builder sets one (2023-11-14T22:13:20Z).
pub const DEFAULT_TIME_NANOS: u64 = 1_700_000_000_000_000_000;

/// More host-triggered callbacks than this in a row means the plugin loops (e.g. re-enqueues
/// on every `on_queue_ready`).
const MAX_CHAINED_EVENTS: usize = 10_000;

/// A foreign function a test provides: arguments in, results out.
pub type ForeignFunction = Box<dyn Fn(&[u8]) -> Vec<u8>>;

/// Configures a VM before it starts; made by [`Host::builder`].
#[must_use]
pub struct HostBuilder {
    register: fn(),
    plugin_config: Vec<u8>,
    vm_config: Vec<u8>,
    properties: Vec<(Vec<u8>, Vec<u8>)>,
    time_nanos: u64,
    log_level: LogLevel,
    vm_id: String,
    plugin_name: String,
}

impl HostBuilder {
    /// The plugin configuration (`get_plugin_configuration`), e.g. the policy JSON.
    pub fn plugin_config(mut self, config: impl AsRef<[u8]>) -> Self {
        self.plugin_config = config.as_ref().to_vec();
        self
    }

    /// The VM configuration (`get_vm_configuration`); empty by default.
    pub fn vm_config(mut self, config: impl AsRef<[u8]>) -> Self {
        self.vm_config = config.as_ref().to_vec();
        self
    }

    /// A VM-wide property, e.g. `&["node", "metadata", "NAMESPACE"]`; streams inherit it.
    pub fn property(mut self, path: &[&str], value: impl AsRef<[u8]>) -> Self {
        self.properties
            .push((codec::path_key(path), value.as_ref().to_vec()));
        self
    }

    /// The host clock's start, in nanoseconds since the Unix epoch ([`DEFAULT_TIME_NANOS`]).
    pub fn time_nanos(mut self, nanos: u64) -> Self {
        self.time_nanos = nanos;
        self
    }

    /// The level `proxy_get_log_level` reports (Trace by default: everything is captured).
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.log_level = level;
        self
    }

    /// The VM id (`plugin_vm_id`, and the vm_id shared queues are registered under); empty by
    /// default, as Envoy's default.
    pub fn vm_id(mut self, vm_id: &str) -> Self {
        self.vm_id = vm_id.to_string();
        self
    }

    /// The plugin name (`plugin_name` property); "plugin" by default.
    pub fn plugin_name(mut self, name: &str) -> Self {
        self.plugin_name = name.to_string();
        self
    }

    /// Starts the VM: `register()`, then `proxy_on_context_create(root, 0)`,
    /// `proxy_on_vm_start` and `proxy_on_configure`.
    ///
    /// # Errors
    /// [`StartError`] (with everything the plugin logged) when `on_vm_start` or `on_configure`
    /// returns false.
    ///
    /// # Panics
    /// When another [`Host`] is live on this thread.
    pub fn start(self) -> Result<Host, StartError> {
        let (host, refused) = self.launch();
        match refused {
            Some(callback) => Err(host.start_error(callback)),
            None => Ok(host),
        }
    }

    /// Starts the VM as [`HostBuilder::start`] does, but keeps it running when
    /// `on_vm_start` or `on_configure` refuses, so a test can open HTTP streams on a plugin
    /// that has no configuration: what the filter does then (Envoy never creates them, but a
    /// filter must not crash or pass everything when one does). The refusal, if any, comes
    /// back beside the host.
    ///
    /// # Panics
    /// When another [`Host`] is live on this thread.
    pub fn start_anyway(self) -> (Host, Option<StartError>) {
        let (host, refused) = self.launch();
        let error = refused.map(|callback| StartError {
            callback,
            logs: host.logs(),
        });
        (host, error)
    }

    /// `register()`, the root context, `on_vm_start` and `on_configure`; the callback that
    /// refused, if one did (on_configure is not called after a refused on_vm_start).
    fn launch(self) -> (Host, Option<&'static str>) {
        abi::keep_linked();
        let root = 1;
        let mut st = HostState::new(root);
        st.plugin_config = self.plugin_config;
        st.vm_config = self.vm_config;
        st.time_nanos = self.time_nanos;
        st.log_level = self.log_level;
        st.echo_logs = std::env::var("PROXY_WASM_TEST_HOST_LOG").is_ok_and(|v| v == "1");
        st.vm_properties.insert(
            codec::path_key(&["plugin_name"]),
            self.plugin_name.into_bytes(),
        );
        st.vm_properties.insert(
            codec::path_key(&["plugin_vm_id"]),
            self.vm_id.clone().into_bytes(),
        );
        st.vm_id = self.vm_id;
        st.vm_properties.extend(self.properties);
        let vm_config_size = st.vm_config.len();
        let plugin_config_size = st.plugin_config.len();
        state::install(st);
        let mut host = Host {
            root,
            root_created: false,
            _one_thread: PhantomData,
        };
        register_serialized(self.register);
        // SAFETY: the SDK's dispatcher entry point; root context ids are created once per Host.
        host.call(root, || unsafe { sdk::proxy_on_context_create(root, 0) });
        host.root_created = true;
        // SAFETY: the root context exists.
        if !host.call(root, || unsafe {
            sdk::proxy_on_vm_start(root, vm_config_size)
        }) {
            return (host, Some("proxy_on_vm_start"));
        }
        // SAFETY: the root context exists.
        if !host.call(root, || unsafe {
            sdk::proxy_on_configure(root, plugin_config_size)
        }) {
            return (host, Some("proxy_on_configure"));
        }
        (host, None)
    }
}

/// Runs a filter's `register()` with no other thread doing the same: the SDK's
/// `set_log_level` installs the global logger behind a non-atomic check-then-set and panics
/// ("SetLoggerError") when two threads race through it, as parallel tests would.
fn register_serialized(register: fn()) {
    static REGISTERING: Mutex<()> = Mutex::new(());
    let _guard = REGISTERING.lock().unwrap_or_else(PoisonError::into_inner);
    register();
}

/// A running VM with one plugin (root context) and its HTTP streams; see the module docs.
///
/// Dropping it deletes every context in the SDK's dispatcher, so another Host can start on the
/// same thread afterwards.
pub struct Host {
    root: u32,
    root_created: bool,
    /// The state lives in a thread-local: a Host must stay on its thread.
    _one_thread: PhantomData<Rc<()>>,
}

impl Host {
    /// Starts configuring a VM whose plugin registers its contexts with `register` (the
    /// filter's `pub fn register()`).
    pub fn builder(register: fn()) -> HostBuilder {
        HostBuilder {
            register,
            plugin_config: Vec::new(),
            vm_config: Vec::new(),
            properties: Vec::new(),
            time_nanos: DEFAULT_TIME_NANOS,
            log_level: LogLevel::Trace,
            vm_id: String::new(),
            plugin_name: "plugin".to_string(),
        }
    }

    fn start_error(self, callback: &'static str) -> StartError {
        let logs = state::with(|s| s.logs.clone());
        drop(self);
        StartError { callback, logs }
    }

    /// Runs one plugin callback in `context_id`, then (when it is the outermost one) the
    /// callbacks the host owes the plugin.
    fn call<R>(&self, context_id: u32, callback: impl FnOnce() -> R) -> R {
        let previous = state::with(|s| {
            let previous = s.effective;
            s.effective = context_id;
            s.depth += 1;
            previous
        });
        let result = {
            let _plugin = alloc::PluginCallback::enter();
            callback()
        };
        let outermost = state::with(|s| {
            s.effective = previous;
            s.depth -= 1;
            s.depth == 0
        });
        if outermost {
            self.deliver_events();
        }
        result
    }

    fn deliver_events(&self) {
        if state::with(|s| std::mem::replace(&mut s.delivering, true)) {
            return;
        }
        for _ in 0..MAX_CHAINED_EVENTS {
            let Some(event) = state::with(|s| s.pending_events.pop_front()) else {
                state::with(|s| s.delivering = false);
                return;
            };
            match event {
                HostEvent::QueueReady { root, queue } => {
                    // SAFETY: queues are owned by the live root context.
                    self.call(root, || unsafe { sdk::proxy_on_queue_ready(root, queue) });
                }
            }
        }
        panic!("proxy_wasm_test_host: more than {MAX_CHAINED_EVENTS} chained host callbacks; the plugin loops");
    }

    fn stream<R>(&self, id: u32, f: impl FnOnce(&mut StreamState) -> R) -> R {
        state::with(|s| match s.streams.get_mut(&id) {
            Some(stream) => f(stream),
            None => panic!("proxy_wasm_test_host: no http stream with context id {id}"),
        })
    }

    fn live_stream<R>(&self, id: u32, f: impl FnOnce(&mut StreamState) -> R) -> R {
        self.stream(id, |stream| {
            if stream.deleted {
                panic!("proxy_wasm_test_host: http stream {id} is already done");
            }
            f(stream)
        })
    }

    /// The root context's id.
    pub fn root_context_id(&self) -> u32 {
        self.root
    }

    // -----------------------------------------------------------------------------------------
    // Driving a stream.

    /// Creates an HTTP stream (`proxy_on_context_create(id, root)`) and returns its id.
    pub fn new_http_stream(&mut self) -> u32 {
        let id = state::with(|s| {
            let id = s.next_context_id;
            s.next_context_id += 1;
            s.streams.insert(id, StreamState::default());
            id
        });
        let root = self.root;
        // SAFETY: a fresh context id under the live root context.
        self.call(id, || unsafe { sdk::proxy_on_context_create(id, root) });
        id
    }

    /// Sets a property of one stream, e.g. `&["source", "address"]`; it shadows a VM-wide one.
    pub fn set_stream_property(&mut self, id: u32, path: &[&str], value: impl AsRef<[u8]>) {
        let key = codec::path_key(path);
        self.stream(id, |st| st.properties.insert(key, value.as_ref().to_vec()));
    }

    /// Delivers request headers (`proxy_on_request_headers`); names are lower-cased as in Envoy.
    pub fn request_headers(
        &mut self,
        id: u32,
        headers: &[(&str, &str)],
        end_of_stream: bool,
    ) -> Action {
        self.live_stream(id, |st| st.request_headers = codec::header_map(headers));
        // SAFETY: a live http context.
        self.call(id, || unsafe {
            sdk::proxy_on_request_headers(id, headers.len(), end_of_stream)
        })
    }

    /// Delivers a request body chunk (`proxy_on_request_body`). As in Envoy, the filter sees
    /// the chunks buffered so far: a `Pause` keeps them buffered for the next call, a
    /// `Continue` passes them on.
    pub fn request_body(&mut self, id: u32, chunk: &[u8], end_of_stream: bool) -> Action {
        let size = self.live_stream(id, |st| {
            st.request_body_buffered.extend_from_slice(chunk);
            st.request_body_buffered.len()
        });
        // SAFETY: a live http context.
        let action = self.call(id, || unsafe {
            sdk::proxy_on_request_body(id, size, end_of_stream)
        });
        if action == Action::Continue {
            self.stream(id, |st| {
                let passed = std::mem::take(&mut st.request_body_buffered);
                st.request_body_forwarded.extend(passed);
            });
        }
        action
    }

    /// Delivers request trailers (`proxy_on_request_trailers`).
    pub fn request_trailers(&mut self, id: u32, trailers: &[(&str, &str)]) -> Action {
        self.live_stream(id, |st| st.request_trailers = codec::header_map(trailers));
        // SAFETY: a live http context.
        self.call(id, || unsafe {
            sdk::proxy_on_request_trailers(id, trailers.len())
        })
    }

    /// Delivers response headers (`proxy_on_response_headers`).
    pub fn response_headers(
        &mut self,
        id: u32,
        headers: &[(&str, &str)],
        end_of_stream: bool,
    ) -> Action {
        self.live_stream(id, |st| st.response_headers = codec::header_map(headers));
        // SAFETY: a live http context.
        self.call(id, || unsafe {
            sdk::proxy_on_response_headers(id, headers.len(), end_of_stream)
        })
    }

    /// Delivers a response body chunk (`proxy_on_response_body`), buffered as
    /// [`Host::request_body`].
    pub fn response_body(&mut self, id: u32, chunk: &[u8], end_of_stream: bool) -> Action {
        let size = self.live_stream(id, |st| {
            st.response_body_buffered.extend_from_slice(chunk);
            st.response_body_buffered.len()
        });
        // SAFETY: a live http context.
        let action = self.call(id, || unsafe {
            sdk::proxy_on_response_body(id, size, end_of_stream)
        });
        if action == Action::Continue {
            self.stream(id, |st| {
                let passed = std::mem::take(&mut st.response_body_buffered);
                st.response_body_forwarded.extend(passed);
            });
        }
        action
    }

    /// Delivers response trailers (`proxy_on_response_trailers`).
    pub fn response_trailers(&mut self, id: u32, trailers: &[(&str, &str)]) -> Action {
        self.live_stream(id, |st| st.response_trailers = codec::header_map(trailers));
        // SAFETY: a live http context.
        self.call(id, || unsafe {
            sdk::proxy_on_response_trailers(id, trailers.len())
        })
    }

    /// Access-log time (`proxy_on_log`): headers and properties are still readable.
    pub fn log(&mut self, id: u32) {
        self.live_stream(id, |_| ());
        // SAFETY: a live http context.
        self.call(id, || unsafe { sdk::proxy_on_log(id) });
    }

    /// Ends the stream: `proxy_on_done`, then `proxy_on_delete` (call [`Host::log`] first, or
    /// use [`Host::end_stream`] for Envoy's exact order). Its unanswered HTTP calls are
    /// cancelled, as Envoy does; what it recorded stays readable.
    pub fn done(&mut self, id: u32) {
        self.live_stream(id, |_| ());
        // SAFETY: a live http context; it is deleted right after and marked so.
        self.call(id, || unsafe {
            sdk::proxy_on_done(id);
            sdk::proxy_on_delete(id);
        });
        self.forget_stream(id);
    }

    /// Ends the stream in Envoy's own order: `proxy_on_done`, then `proxy_on_log` (access-log
    /// time comes after the filter chain is destroyed), then `proxy_on_delete`.
    pub fn end_stream(&mut self, id: u32) {
        self.live_stream(id, |_| ());
        // SAFETY: a live http context; it is deleted last and marked so.
        self.call(id, || unsafe {
            sdk::proxy_on_done(id);
            sdk::proxy_on_log(id);
            sdk::proxy_on_delete(id);
        });
        self.forget_stream(id);
    }

    fn forget_stream(&self, id: u32) {
        state::with(|s| {
            if let Some(st) = s.streams.get_mut(&id) {
                st.deleted = true;
            }
            s.pending_http_calls.retain(|c| c.context_id != id);
        });
    }

    /// Sends the filter's local response through its own response path, as Envoy's
    /// `sendLocalReply` does (every encoder filter sees it): `proxy_on_response_headers` with
    /// `:status`, the filter's headers and, when there is a body, `content-length` and
    /// `content-type: text/plain`; then `proxy_on_response_body` with the body. Returns the
    /// action of the headers callback, or `None` when the filter sent no local response.
    pub fn encode_local_response(&mut self, id: u32) -> Option<Action> {
        let response = self.local_response(id)?;
        let status = response.status.to_string();
        let length = response.body.len().to_string();
        let mut headers: Vec<(&str, &str)> = vec![(":status", &status)];
        headers.extend(
            response
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        if !response.body.is_empty() {
            headers.push(("content-length", &length));
            headers.push(("content-type", "text/plain"));
        }
        let no_body = response.body.is_empty();
        let action = self.response_headers(id, &headers, no_body);
        if !no_body {
            self.response_body(id, &response.body, true);
        }
        Some(action)
    }

    // -----------------------------------------------------------------------------------------
    // Reading a stream back.

    /// The filter answered the stream itself (sent a local response).
    pub fn stream_answered(&self, id: u32) -> bool {
        self.stream(id, |st| st.local_response.is_some())
    }

    /// The local response the filter sent on this stream, if any.
    pub fn local_response(&self, id: u32) -> Option<LocalResponse> {
        self.stream(id, |st| st.local_response.clone())
    }

    /// The gRPC status the filter gave its local response (`None` for a plain HTTP one).
    pub fn local_response_grpc_status(&self, id: u32) -> Option<i32> {
        self.stream(id, |st| st.local_response_grpc_status)
    }

    /// The request headers as they are now (after the filter's mutations).
    pub fn request_header_map(&self, id: u32) -> Vec<(String, String)> {
        self.stream(id, |st| codec::string_pairs(&st.request_headers))
    }

    /// The request trailers as they are now.
    pub fn request_trailer_map(&self, id: u32) -> Vec<(String, String)> {
        self.stream(id, |st| codec::string_pairs(&st.request_trailers))
    }

    /// The response headers as they are now (after the filter's mutations).
    pub fn response_header_map(&self, id: u32) -> Vec<(String, String)> {
        self.stream(id, |st| codec::string_pairs(&st.response_headers))
    }

    /// The response trailers as they are now.
    pub fn response_trailer_map(&self, id: u32) -> Vec<(String, String)> {
        self.stream(id, |st| codec::string_pairs(&st.response_trailers))
    }

    /// The request body as it goes upstream: what was passed on plus what is still buffered,
    /// after the filter's `set_http_request_body`.
    pub fn request_body_buffer(&self, id: u32) -> Vec<u8> {
        self.stream(id, |st| {
            [
                &st.request_body_forwarded[..],
                &st.request_body_buffered[..],
            ]
            .concat()
        })
    }

    /// The response body as it goes downstream (see [`Host::request_body_buffer`]).
    pub fn response_body_buffer(&self, id: u32) -> Vec<u8> {
        self.stream(id, |st| {
            [
                &st.response_body_forwarded[..],
                &st.response_body_buffered[..],
            ]
            .concat()
        })
    }

    /// A property set on this stream (by the filter's `set_property` or the test); VM-wide
    /// values are not included (see [`Host::property`] for the resolved view).
    pub fn stream_property(&self, id: u32, path: &[&str]) -> Option<Vec<u8>> {
        let key = codec::path_key(path);
        self.stream(id, |st| st.properties.get(&key).cloned())
    }

    /// A property as the filter would read it inside this stream: stream value, derived
    /// request attribute (`request.path`, ...), then VM-wide value.
    pub fn property(&self, id: u32, path: &[&str]) -> Option<Vec<u8>> {
        let key = codec::path_key(path);
        state::with(|s| {
            let previous = s.effective;
            s.effective = id;
            let value = abi::lookup_property(s, &key);
            s.effective = previous;
            value
        })
    }

    /// The filter resumed the request or the response (`proxy_continue_stream`).
    pub fn stream_continued(&self, id: u32) -> bool {
        self.stream(id, |st| st.request_continued || st.response_continued)
    }

    /// The filter resumed the request (`resume_http_request`).
    pub fn request_continued(&self, id: u32) -> bool {
        self.stream(id, |st| st.request_continued)
    }

    /// The filter resumed the response (`resume_http_response`).
    pub fn response_continued(&self, id: u32) -> bool {
        self.stream(id, |st| st.response_continued)
    }

    /// The filter reset the request or the response (`proxy_close_stream`).
    pub fn stream_closed(&self, id: u32) -> bool {
        self.stream(id, |st| st.request_closed || st.response_closed)
    }

    /// The filter called the `clear_route_cache` foreign function on this stream.
    pub fn route_cache_cleared(&self, id: u32) -> bool {
        self.stream(id, |st| st.route_cache_cleared)
    }

    // -----------------------------------------------------------------------------------------
    // HTTP callouts.

    /// HTTP calls dispatched and not yet answered, in dispatch order.
    pub fn http_calls(&self) -> Vec<HttpCall> {
        state::with(|s| s.pending_http_calls.clone())
    }

    /// HTTP calls already answered (or failed), in answer order.
    pub fn answered_http_calls(&self) -> Vec<HttpCall> {
        state::with(|s| s.answered_http_calls.clone())
    }

    fn take_http_call(&self, token: u32) -> HttpCall {
        state::with(|s| {
            let Some(at) = s.pending_http_calls.iter().position(|c| c.token == token) else {
                panic!("proxy_wasm_test_host: no pending http call with token {token}");
            };
            let call = s.pending_http_calls.remove(at);
            s.answered_http_calls.push(call.clone());
            call
        })
    }

    /// Answers an HTTP call: `proxy_on_http_call_response` runs in the calling context, where
    /// the filter reads the response headers, body and trailers.
    ///
    /// # Panics
    /// When no unanswered call has this token.
    pub fn respond_http_call(&mut self, token: u32, response: HttpCallResponse<'_>) {
        let call = self.take_http_call(token);
        let answer = CallResponse {
            headers: codec::header_map(&response.headers),
            body: response.body,
            trailers: codec::header_map(&response.trailers),
        };
        self.deliver_http_call_response(call.context_id, token, answer);
    }

    /// Fails an HTTP call as Envoy does on reset or timeout: `proxy_on_http_call_response`
    /// with no headers, body or trailers.
    ///
    /// # Panics
    /// When no unanswered call has this token.
    pub fn fail_http_call(&mut self, token: u32) {
        let call = self.take_http_call(token);
        self.deliver_http_call_response(call.context_id, token, CallResponse::default());
    }

    fn deliver_http_call_response(&self, context_id: u32, token: u32, answer: CallResponse) {
        let (headers, body, trailers) = (
            answer.headers.len(),
            answer.body.len(),
            answer.trailers.len(),
        );
        state::with(|s| s.call_response = Some(answer));
        // SAFETY: the token was registered by the SDK when the call was dispatched.
        self.call(context_id, || unsafe {
            sdk::proxy_on_http_call_response(context_id, token, headers, body, trailers);
        });
        state::with(|s| s.call_response = None);
    }

    /// Makes every following `dispatch_http_call` fail synchronously with `status` (e.g.
    /// `BadArgument`, as for an unknown cluster); `None` restores normal dispatch.
    pub fn set_http_call_error(&mut self, status: Option<Status>) {
        state::with(|s| s.http_call_error = status);
    }

    // -----------------------------------------------------------------------------------------
    // gRPC callouts.

    /// gRPC calls and streams the plugin opened, by token.
    pub fn grpc_calls(&self) -> Vec<GrpcCall> {
        state::with(|s| s.grpc_calls.values().cloned().collect())
    }

    fn grpc_context(&self, token: u32) -> u32 {
        state::with(|s| match s.grpc_calls.get(&token) {
            Some(call) => call.context_id,
            None => {
                panic!("proxy_wasm_test_host: no gRPC call or stream with token {token}")
            }
        })
    }

    fn deliver_grpc(&self, token: u32, delivery: GrpcDelivery, deliver: impl FnOnce(u32)) {
        let context_id = self.grpc_context(token);
        state::with(|s| s.grpc_delivery = Some(delivery));
        self.call(context_id, || deliver(context_id));
        state::with(|s| s.grpc_delivery = None);
    }

    /// Delivers initial metadata on a gRPC stream (`proxy_on_grpc_receive_initial_metadata`).
    pub fn grpc_receive_initial_metadata(&mut self, token: u32, metadata: &[(&str, &str)]) {
        let delivery = GrpcDelivery {
            initial_metadata: codec::header_map(metadata),
            ..GrpcDelivery::default()
        };
        let n = u32::try_from(metadata.len()).unwrap_or(u32::MAX);
        // SAFETY: the token was registered by the SDK.
        self.deliver_grpc(token, delivery, |ctx| unsafe {
            sdk::proxy_on_grpc_receive_initial_metadata(ctx, token, n);
        });
    }

    /// Delivers a message: the response of a unary call, or a message on a stream
    /// (`proxy_on_grpc_receive`).
    pub fn grpc_receive(&mut self, token: u32, message: &[u8]) {
        let delivery = GrpcDelivery {
            message: message.to_vec(),
            ..GrpcDelivery::default()
        };
        let size = message.len();
        // SAFETY: the token was registered by the SDK.
        self.deliver_grpc(token, delivery, |ctx| unsafe {
            sdk::proxy_on_grpc_receive(ctx, token, size);
        });
    }

    /// Delivers trailing metadata on a gRPC stream (`proxy_on_grpc_receive_trailing_metadata`).
    pub fn grpc_receive_trailing_metadata(&mut self, token: u32, metadata: &[(&str, &str)]) {
        let delivery = GrpcDelivery {
            trailing_metadata: codec::header_map(metadata),
            ..GrpcDelivery::default()
        };
        let n = u32::try_from(metadata.len()).unwrap_or(u32::MAX);
        // SAFETY: the token was registered by the SDK.
        self.deliver_grpc(token, delivery, |ctx| unsafe {
            sdk::proxy_on_grpc_receive_trailing_metadata(ctx, token, n);
        });
    }

    /// Closes a gRPC call or stream from the remote side with a status
    /// (`proxy_on_grpc_close`); the plugin reads it with `get_grpc_status`.
    pub fn grpc_close(&mut self, token: u32, status: u32, message: Option<&str>) {
        let delivery = GrpcDelivery {
            status,
            status_message: message.map(str::to_string),
            ..GrpcDelivery::default()
        };
        // SAFETY: the token was registered by the SDK.
        self.deliver_grpc(token, delivery, |ctx| unsafe {
            sdk::proxy_on_grpc_close(ctx, token, status);
        });
    }

    // -----------------------------------------------------------------------------------------
    // Time and ticks.

    /// Fires `proxy_on_tick` on the root context, if the plugin set a tick period (the clock
    /// does not move: use [`Host::advance_time`]).
    pub fn tick(&mut self) {
        if self.tick_period().is_some() {
            let root = self.root;
            // SAFETY: the live root context.
            self.call(root, || unsafe { sdk::proxy_on_tick(root) });
        }
    }

    /// The tick period the plugin set (`None` when unset or set to 0).
    pub fn tick_period(&self) -> Option<Duration> {
        state::with(|s| s.tick_period)
    }

    /// Moves the host clock forward.
    pub fn advance_time(&mut self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        state::with(|s| s.time_nanos = s.time_nanos.saturating_add(nanos));
    }

    /// The host clock, in nanoseconds since the Unix epoch.
    pub fn now_nanos(&self) -> u64 {
        state::with(|s| s.time_nanos)
    }

    /// The host functions (ABI names, e.g. `proxy_get_property`) the plugin called in the
    /// callbacks of context `id` (a stream, or the root), in order: what the context cost the
    /// host. Calls made while no callback runs are counted under 0.
    pub fn host_calls(&self, id: u32) -> Vec<&'static str> {
        state::with(|s| s.host_calls.get(&id).cloned().unwrap_or_default())
    }

    // -----------------------------------------------------------------------------------------
    // Metrics and logs.

    fn metric_value(&self, name: &str, kind: MetricType) -> Option<MetricValue> {
        state::with(|s| {
            s.metrics
                .iter()
                .find(|m| m.name == name && m.kind() == kind)
                .map(|m| m.value.clone())
        })
    }

    /// A counter's value by name (`None` when the plugin never defined it).
    pub fn counter(&self, name: &str) -> Option<u64> {
        match self.metric_value(name, MetricType::Counter) {
            Some(MetricValue::Counter(v)) => Some(v),
            _ => None,
        }
    }

    /// A gauge's value by name.
    pub fn gauge(&self, name: &str) -> Option<i64> {
        match self.metric_value(name, MetricType::Gauge) {
            Some(MetricValue::Gauge(v)) => Some(v),
            _ => None,
        }
    }

    /// A histogram's recorded samples by name, in order.
    pub fn histogram(&self, name: &str) -> Option<Vec<u64>> {
        match self.metric_value(name, MetricType::Histogram) {
            Some(MetricValue::Histogram(v)) => Some(v),
            _ => None,
        }
    }

    /// Names and types of every metric the plugin defined, in definition order.
    pub fn metrics(&self) -> Vec<(String, MetricType)> {
        state::with(|s| {
            s.metrics
                .iter()
                .map(|m| (m.name.clone(), m.kind()))
                .collect()
        })
    }

    /// Everything the plugin logged, in order.
    pub fn logs(&self) -> Vec<LogEntry> {
        state::with(|s| s.logs.clone())
    }

    /// The messages that contain `needle`.
    pub fn logs_containing(&self, needle: &str) -> Vec<String> {
        state::with(|s| {
            s.logs
                .iter()
                .filter(|e| e.message.contains(needle))
                .map(|e| e.message.clone())
                .collect()
        })
    }

    /// Forgets the logs captured so far.
    pub fn clear_logs(&mut self) {
        state::with(|s| s.logs.clear());
    }

    /// Changes the level `proxy_get_log_level` reports.
    pub fn set_log_level(&mut self, level: LogLevel) {
        state::with(|s| s.log_level = level);
    }

    // -----------------------------------------------------------------------------------------
    // Shared data, queues, VM-wide properties, foreign functions, shutdown.

    /// Shared data and its CAS, by key.
    pub fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        state::with(|s| s.shared_data.get(key).cloned())
    }

    /// Sets shared data (as another VM would; the CAS moves on).
    pub fn set_shared_data(&mut self, key: &str, value: impl AsRef<[u8]>) {
        state::with(|s| abi::store_shared_data(s, key, value.as_ref(), 0));
    }

    /// The items waiting in the shared queue `name` (of this VM's vm_id), oldest first.
    pub fn shared_queue(&self, name: &str) -> Option<Vec<Vec<u8>>> {
        state::with(|s| {
            s.queues
                .iter()
                .find(|q| q.vm_id == s.vm_id && q.name == name)
                .map(|q| q.items.iter().cloned().collect())
        })
    }

    /// Enqueues onto the shared queue `name` as another VM would; `on_queue_ready` runs at
    /// once. Returns false when the plugin never registered that queue.
    pub fn enqueue_shared_queue(&mut self, name: &str, value: impl AsRef<[u8]>) -> bool {
        let queued = state::with(|s| {
            let Some(at) = s
                .queues
                .iter()
                .position(|q| q.vm_id == s.vm_id && q.name == name)
            else {
                return false;
            };
            let id = u32::try_from(at + 1).unwrap_or(u32::MAX);
            abi::enqueue(s, id, value.as_ref()) == Status::Ok
        });
        if queued {
            self.deliver_events();
        }
        queued
    }

    /// A VM-wide property.
    pub fn vm_property(&self, path: &[&str]) -> Option<Vec<u8>> {
        let key = codec::path_key(path);
        state::with(|s| s.vm_properties.get(&key).cloned())
    }

    /// Sets a VM-wide property.
    pub fn set_property(&mut self, path: &[&str], value: impl AsRef<[u8]>) {
        let key = codec::path_key(path);
        state::with(|s| s.vm_properties.insert(key, value.as_ref().to_vec()));
    }

    /// Makes `proxy_call_foreign_function(name, args)` return `function(args)`.
    pub fn register_foreign_function(&mut self, name: &str, function: ForeignFunction) {
        state::with(|s| {
            s.foreign_functions
                .insert(name.to_string(), Rc::from(function))
        });
    }

    /// Asks the root context to shut down (`proxy_on_done`); returns what it answered (false:
    /// it will call `proxy_done` when finished).
    pub fn shutdown(&mut self) -> bool {
        let root = self.root;
        // SAFETY: the live root context.
        self.call(root, || unsafe { sdk::proxy_on_done(root) })
    }

    /// The plugin called `proxy_done`.
    pub fn done_called(&self) -> bool {
        state::with(|s| s.done_called)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let live: Vec<u32> = state::try_with(|s| {
            s.streams
                .iter()
                .filter(|(_, st)| !st.deleted)
                .map(|(id, _)| *id)
                .collect()
        })
        .unwrap_or_default();
        for id in live {
            state::try_with(|s| s.effective = id);
            // SAFETY: a context the SDK created and has not deleted yet.
            unsafe { sdk::proxy_on_delete(id) };
        }
        if self.root_created {
            let root = self.root;
            state::try_with(|s| s.effective = root);
            // SAFETY: the root context exists until now.
            unsafe { sdk::proxy_on_delete(root) };
        }
        state::uninstall();
    }
}
