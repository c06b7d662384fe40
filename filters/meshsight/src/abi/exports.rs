//! The callbacks meshsight exports, and the worker's contexts they are delivered to.
//!
//! Envoy creates a root context per plugin (`proxy_on_context_create(id, 0)`) and a stream
//! context per request (`proxy_on_context_create(id, root_id)`), then calls each callback with
//! the context's id. The SDK kept boxed trait objects in three maps and a vtable entry for
//! every callback of every context kind; meshsight has one root type and one stream type, so
//! the roots sit in a short list (one per plugin on this worker), the streams in a map keyed by
//! id, and each callback calls its method directly. A VM is single-threaded; the tables are
//! thread-locals so that native tests, one host per test thread, stay apart.
//!
//! As in the SDK, a root's and a stream's callbacks borrow different tables, so a host call
//! that makes Envoy run a stream callback from inside a root callback (a held request let go on
//! the tick) finds the stream table free.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::mem::MaybeUninit;

use super::{Action, LogLevel};
use crate::root::Root;
use crate::stream::Stream;

/// Context ids are small integers Envoy hands out in order: one multiply spreads them over the
/// map's buckets (the std hasher's SipHash would cost more than the lookup).
#[derive(Default)]
struct ContextIdHasher(u64);

impl Hasher for ContextIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u32(u32::from(*b) ^ (self.0 as u32).rotate_left(8));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Streams = HashMap<u32, Stream, BuildHasherDefault<ContextIdHasher>>;

thread_local! {
    /// The root contexts of this worker (one per plugin that shares the VM).
    static ROOTS: RefCell<Vec<Root>> = const { RefCell::new(Vec::new()) };
    /// The live stream contexts, by context id.
    static STREAMS: RefCell<Streams> =
        const { RefCell::new(HashMap::with_hasher(BuildHasherDefault::new())) };
}

/// Runs `f` on root `id`; `default` when there is no such root.
fn with_root<R>(id: u32, default: R, f: impl FnOnce(&mut Root) -> R) -> R {
    ROOTS.with(
        |roots| match roots.borrow_mut().iter_mut().find(|r| r.id() == id) {
            Some(root) => f(root),
            None => default,
        },
    )
}

/// Runs `f` on stream `id`; `default` when there is no such stream (never for an id Envoy
/// created: every created context is in a table until it is deleted).
fn with_stream<R>(id: u32, default: R, f: impl FnOnce(&mut Stream) -> R) -> R {
    STREAMS.with(|streams| match streams.borrow_mut().get_mut(&id) {
        Some(stream) => f(stream),
        None => default,
    })
}

/// Prepares the module before Envoy creates its first context: a panic (which aborts the VM)
/// is logged at `Critical` with its message, as the SDK did. Native tests call it through the
/// test host; in the VM `_initialize` does.
pub fn register() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static HOOKED: AtomicBool = AtomicBool::new(false);
    if !HOOKED.swap(true, Ordering::Relaxed) {
        std::panic::set_hook(Box::new(|info| {
            crate::host::log(LogLevel::Critical, format_args!("{info}"));
        }));
    }
}

/// The reactor's entry point: static constructors, then [`register`].
#[cfg(target_family = "wasm")]
#[no_mangle]
pub extern "C" fn _initialize() {
    #[cfg(target_os = "wasi")]
    {
        extern "C" {
            fn __wasm_call_ctors();
        }
        // SAFETY: wasm-ld's constructor runner, called once before anything else runs.
        unsafe { __wasm_call_ctors() };
    }
    register();
}

/// Marks the module as speaking ABI 0.2.1.
#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// Memory the host fills and hands to the module (a header map, a body, a property): a boxed
/// slice of exactly `size` bytes, which `imports` takes back as a `Vec` of that capacity.
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut bytes: Vec<MaybeUninit<u8>> = Vec::with_capacity(size);
    // SAFETY: the capacity is `size`, and `MaybeUninit` bytes need no initialization; the
    // host writes them before the module reads them.
    unsafe { bytes.set_len(size) };
    Box::into_raw(bytes.into_boxed_slice()).cast::<u8>()
}

/// A new context: a root (`root_context_id` 0) or a stream of that root.
#[no_mangle]
pub extern "C" fn proxy_on_context_create(context_id: u32, root_context_id: u32) {
    if root_context_id == 0 {
        ROOTS.with(|roots| {
            let mut roots = roots.borrow_mut();
            roots.retain(|r| r.id() != context_id);
            roots.push(Root::new(context_id));
        });
        return;
    }
    // A stream of an unknown root has no policy: it refuses requests (the SDK aborted the VM).
    let stream = with_root(root_context_id, None, |root| {
        Some(root.create_http_context(context_id))
    })
    .unwrap_or_else(|| Stream::new(None, context_id));
    let old = STREAMS.with(|streams| streams.borrow_mut().insert(context_id, stream));
    drop(old);
}

/// The VM started (no VM configuration is read).
#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_context_id: u32, _vm_configuration_size: usize) -> bool {
    true
}

/// The plugin's configuration arrived (or changed): the root compiles its policy.
#[no_mangle]
pub extern "C" fn proxy_on_configure(context_id: u32, plugin_configuration_size: usize) -> bool {
    with_root(context_id, false, |root| {
        root.on_configure(plugin_configuration_size)
    })
}

/// The root's tick.
#[no_mangle]
pub extern "C" fn proxy_on_tick(context_id: u32) {
    with_root(context_id, (), Root::on_tick);
}

/// The context is done: `true`, it needs no more time (the root counts what it still holds).
#[no_mangle]
pub extern "C" fn proxy_on_done(context_id: u32) -> bool {
    with_root(context_id, true, Root::on_done)
}

/// Access-log time: the stream's record.
#[no_mangle]
pub extern "C" fn proxy_on_log(context_id: u32) {
    with_stream(context_id, (), Stream::on_log);
}

/// The context is gone.
#[no_mangle]
pub extern "C" fn proxy_on_delete(context_id: u32) {
    let stream = STREAMS.with(|streams| streams.borrow_mut().remove(&context_id));
    if stream.is_none() {
        let root = ROOTS.with(|roots| {
            let mut roots = roots.borrow_mut();
            let at = roots.iter().position(|r| r.id() == context_id)?;
            Some(roots.swap_remove(at))
        });
        drop(root);
    }
    drop(stream);
}

/// The request's headers.
#[no_mangle]
pub extern "C" fn proxy_on_request_headers(
    context_id: u32,
    num_headers: usize,
    end_of_stream: bool,
) -> Action {
    with_stream(context_id, Action::Continue, |s| {
        s.on_http_request_headers(num_headers, end_of_stream)
    })
}

/// A chunk of the request's body.
#[no_mangle]
pub extern "C" fn proxy_on_request_body(
    context_id: u32,
    body_size: usize,
    end_of_stream: bool,
) -> Action {
    with_stream(context_id, Action::Continue, |s| {
        s.on_http_request_body(body_size, end_of_stream)
    })
}

/// The request's trailers.
#[no_mangle]
pub extern "C" fn proxy_on_request_trailers(context_id: u32, num_trailers: usize) -> Action {
    with_stream(context_id, Action::Continue, |s| {
        s.on_http_request_trailers(num_trailers)
    })
}

/// The response's headers.
#[no_mangle]
pub extern "C" fn proxy_on_response_headers(
    context_id: u32,
    num_headers: usize,
    end_of_stream: bool,
) -> Action {
    with_stream(context_id, Action::Continue, |s| {
        s.on_http_response_headers(num_headers, end_of_stream)
    })
}

/// A chunk of the response's body.
#[no_mangle]
pub extern "C" fn proxy_on_response_body(
    context_id: u32,
    body_size: usize,
    end_of_stream: bool,
) -> Action {
    with_stream(context_id, Action::Continue, |s| {
        s.on_http_response_body(body_size, end_of_stream)
    })
}

/// The response's trailers: nothing to do (exported because Envoy's filter expects it).
#[no_mangle]
pub extern "C" fn proxy_on_response_trailers(_context_id: u32, _num_trailers: usize) -> Action {
    Action::Continue
}

/// The answer to an HTTP call, delivered to the context that made it: only roots make calls
/// (a stream's calls would die with the stream). Envoy has already made that root current.
#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(
    context_id: u32,
    token_id: u32,
    num_headers: usize,
    body_size: usize,
    num_trailers: usize,
) {
    with_root(context_id, (), |root| {
        root.on_http_call_response(token_id, num_headers, body_size, num_trailers)
    });
}
