//! The host's state for one VM, kept in a thread-local because the SDK's dispatcher is
//! thread-local too: one `Host` per test thread, and host functions find "their" VM there.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::types::{LogLevel, MetricType, Status};

use super::codec::HeaderMap;
use super::types::{GrpcCall, HttpCall, LocalResponse, LogEntry};

/// A foreign function a test registered: arguments in, results out.
pub(crate) type ForeignFunction = Rc<dyn Fn(&[u8]) -> Vec<u8>>;

/// One HTTP stream (an http context) and everything the host knows about it.
#[derive(Default)]
pub(crate) struct StreamState {
    pub(crate) request_headers: HeaderMap,
    pub(crate) request_trailers: HeaderMap,
    pub(crate) response_headers: HeaderMap,
    pub(crate) response_trailers: HeaderMap,
    /// Body bytes already passed on (the filter returned Continue for them).
    pub(crate) request_body_forwarded: Vec<u8>,
    /// Body bytes buffered for the filter: what `get_buffer_bytes` sees.
    pub(crate) request_body_buffered: Vec<u8>,
    pub(crate) response_body_forwarded: Vec<u8>,
    pub(crate) response_body_buffered: Vec<u8>,
    pub(crate) properties: HashMap<Vec<u8>, Vec<u8>>,
    pub(crate) local_response: Option<LocalResponse>,
    pub(crate) local_response_grpc_status: Option<i32>,
    pub(crate) request_continued: bool,
    pub(crate) response_continued: bool,
    pub(crate) request_closed: bool,
    pub(crate) response_closed: bool,
    pub(crate) route_cache_cleared: bool,
    /// `proxy_on_delete` ran: the SDK no longer knows this context.
    pub(crate) deleted: bool,
}

/// What an HTTP callout answered, visible to the plugin during `on_http_call_response`.
#[derive(Default)]
pub(crate) struct CallResponse {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
    pub(crate) trailers: HeaderMap,
}

/// What a gRPC callout delivered, visible to the plugin during the gRPC callbacks.
#[derive(Default)]
pub(crate) struct GrpcDelivery {
    pub(crate) initial_metadata: HeaderMap,
    pub(crate) trailing_metadata: HeaderMap,
    pub(crate) message: Vec<u8>,
    pub(crate) status: u32,
    pub(crate) status_message: Option<String>,
}

/// A shared queue (`proxy_register_shared_queue`); its id is its index + 1.
pub(crate) struct SharedQueue {
    pub(crate) vm_id: String,
    pub(crate) name: String,
    /// The root context that registered it: it receives `on_queue_ready`.
    pub(crate) owner: u32,
    pub(crate) items: VecDeque<Vec<u8>>,
}

/// The value of a metric.
#[derive(Clone, Debug)]
pub(crate) enum MetricValue {
    Counter(u64),
    Gauge(i64),
    Histogram(Vec<u64>),
}

/// A metric (`proxy_define_metric`); its id is its index + 1.
pub(crate) struct Metric {
    pub(crate) name: String,
    pub(crate) value: MetricValue,
}

impl Metric {
    pub(crate) fn kind(&self) -> MetricType {
        match self.value {
            MetricValue::Counter(_) => MetricType::Counter,
            MetricValue::Gauge(_) => MetricType::Gauge,
            MetricValue::Histogram(_) => MetricType::Histogram,
        }
    }
}

/// A callback the host owes the plugin, delivered once the current callback has returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HostEvent {
    QueueReady { root: u32, queue: u32 },
}

/// Everything the host knows about its one VM.
pub(crate) struct HostState {
    pub(crate) root_id: u32,
    pub(crate) next_context_id: u32,
    /// The context the current callback runs in (0 outside callbacks).
    pub(crate) effective: u32,
    /// How many callbacks are on the stack (host-triggered ones wait until it is 0).
    pub(crate) depth: u32,
    /// Host-triggered callbacks are being delivered (they must not nest).
    pub(crate) delivering: bool,
    pub(crate) vm_id: String,
    pub(crate) plugin_config: Vec<u8>,
    pub(crate) vm_config: Vec<u8>,
    pub(crate) vm_properties: HashMap<Vec<u8>, Vec<u8>>,
    pub(crate) streams: BTreeMap<u32, StreamState>,
    pub(crate) log_level: LogLevel,
    pub(crate) logs: Vec<LogEntry>,
    pub(crate) echo_logs: bool,
    pub(crate) time_nanos: u64,
    pub(crate) tick_period: Option<Duration>,
    pub(crate) pending_http_calls: Vec<HttpCall>,
    pub(crate) answered_http_calls: Vec<HttpCall>,
    pub(crate) http_call_error: Option<Status>,
    pub(crate) call_response: Option<CallResponse>,
    pub(crate) grpc_calls: BTreeMap<u32, GrpcCall>,
    pub(crate) grpc_delivery: Option<GrpcDelivery>,
    pub(crate) shared_data: HashMap<String, (Vec<u8>, u32)>,
    pub(crate) next_cas: u32,
    pub(crate) queues: Vec<SharedQueue>,
    pub(crate) metrics: Vec<Metric>,
    pub(crate) foreign_functions: HashMap<String, ForeignFunction>,
    pub(crate) pending_events: VecDeque<HostEvent>,
    pub(crate) done_called: bool,
    /// The host functions the plugin called, in order, by the context whose callback made
    /// them (a stream's calls under its id, the root's under the root's).
    pub(crate) host_calls: BTreeMap<u32, Vec<&'static str>>,
}

impl HostState {
    pub(crate) fn new(root_id: u32) -> Self {
        Self {
            root_id,
            next_context_id: root_id + 1,
            effective: 0,
            depth: 0,
            delivering: false,
            vm_id: String::new(),
            plugin_config: Vec::new(),
            vm_config: Vec::new(),
            vm_properties: HashMap::new(),
            streams: BTreeMap::new(),
            log_level: LogLevel::Trace,
            logs: Vec::new(),
            echo_logs: false,
            time_nanos: 0,
            tick_period: None,
            pending_http_calls: Vec::new(),
            answered_http_calls: Vec::new(),
            http_call_error: None,
            call_response: None,
            grpc_calls: BTreeMap::new(),
            grpc_delivery: None,
            shared_data: HashMap::new(),
            next_cas: 1,
            queues: Vec::new(),
            host_calls: BTreeMap::new(),
            metrics: Vec::new(),
            foreign_functions: HashMap::new(),
            pending_events: VecDeque::new(),
            done_called: false,
        }
    }

    /// The live http stream the current callback runs in, if it runs in one.
    pub(crate) fn effective_stream(&mut self) -> Option<&mut StreamState> {
        let id = self.effective;
        self.streams.get_mut(&id).filter(|s| !s.deleted)
    }

    /// The root context owning the effective context (there is one root per VM here).
    pub(crate) fn effective_root(&self) -> u32 {
        self.root_id
    }
}

thread_local! {
    static STATE: RefCell<Option<HostState>> = const { RefCell::new(None) };
    /// Tokens stay unique across Hosts on one thread: the SDK's dispatcher (also thread-local)
    /// keeps tokens of unanswered calls forever and panics on a duplicate.
    static NEXT_TOKEN: Cell<u32> = const { Cell::new(1) };
}

/// A fresh callout token, unique on this thread.
pub(crate) fn next_token() -> u32 {
    NEXT_TOKEN.with(|t| {
        let token = t.get();
        t.set(token.wrapping_add(1).max(1));
        token
    })
}

/// Installs the state of a new Host; panics (test misuse) when one is already live.
pub(crate) fn install(state: HostState) {
    STATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_some() {
            panic!(
                "proxy_wasm_test_host: a Host is already live on this thread; \
                 the proxy-wasm SDK keeps one dispatcher per thread, so drop the first Host \
                 before starting another (each #[test] runs on its own thread)"
            );
        }
        *slot = Some(state);
    });
}

/// Removes the state of the live Host.
pub(crate) fn uninstall() {
    STATE.with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut() {
            slot.take();
        }
    });
}

/// Runs `f` on the live Host's state; `None` when there is none or it is busy (a host function
/// re-entered from inside another one, which only a harness bug can cause).
pub(crate) fn try_with<R>(f: impl FnOnce(&mut HostState) -> R) -> Option<R> {
    STATE
        .try_with(|cell| {
            let mut slot = cell.try_borrow_mut().ok()?;
            slot.as_mut().map(f)
        })
        .ok()
        .flatten()
}

/// Runs `f` on the live Host's state, for the `Host` API (a Host exists by construction).
pub(crate) fn with<R>(f: impl FnOnce(&mut HostState) -> R) -> R {
    match try_with(f) {
        Some(r) => r,
        None => panic!("proxy_wasm_test_host: no Host state on this thread"),
    }
}

/// Records that the plugin called host function `name` in the current callback's context.
pub(crate) fn record_host_call(name: &'static str) {
    let _ = try_with(|s| {
        let context = s.effective;
        s.host_calls.entry(context).or_default().push(name);
    });
}
