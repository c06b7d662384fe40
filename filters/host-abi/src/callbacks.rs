//! The callbacks a module exports to Envoy, and the worker's contexts they are delivered to.
//!
//! Envoy creates a root context per plugin (`proxy_on_context_create(id, 0)`) and a stream
//! context per request (`proxy_on_context_create(id, root_id)`), then calls each callback with
//! the context's id. The SDK kept boxed trait objects in three maps and a vtable entry for
//! every callback of every context kind; meshsight has one root type and one stream type, so
//! [`Contexts`] keeps the roots in a short list (one per plugin on this worker) and the streams
//! unboxed in a map keyed by id, and each callback calls its method directly (generic, no
//! vtable). A VM is single-threaded; the table is a thread-local, declared by
//! [`export_callbacks!`](crate::export_callbacks) in the module's crate, so that native tests,
//! one host per test thread, stay apart.
//!
//! The `#[no_mangle]` items must be expanded in the module's crate (they name its types); the
//! macro only forwards to the functions here, so the `unsafe` they need stays in this crate.
//! As in the SDK, a root's and a stream's callbacks borrow different tables, so a host call
//! that makes Envoy run a stream callback from inside a root callback (a held request let go on
//! the tick) finds the stream table free.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::mem::MaybeUninit;

use crate::Action;

/// The callbacks Envoy delivers to a root context (the ones meshsight uses).
pub trait RootContext: Sized {
    /// The stream contexts this root creates.
    type Stream: StreamContext;
    /// A new root context `context_id`.
    fn new(context_id: u32) -> Self;
    /// This root's context id.
    fn id(&self) -> u32;
    /// A stream context `context_id` of this root.
    fn create_http_context(&self, context_id: u32) -> Self::Stream;
    /// The plugin's configuration arrived (or changed): `false` refuses it.
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool;
    /// The root's tick.
    fn on_tick(&mut self);
    /// The VM is shutting down: `true`, the root needs no more time.
    fn on_done(&mut self) -> bool;
    /// The answer to one of this root's HTTP calls.
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        num_trailers: usize,
    );
}

/// The callbacks Envoy delivers to a stream context (the ones meshsight uses).
pub trait StreamContext: Sized {
    /// A stream of a root this worker does not know (no policy).
    fn orphan(context_id: u32) -> Self;
    /// The request's headers.
    fn on_http_request_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action;
    /// A chunk of the request's body.
    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action;
    /// The request's trailers.
    fn on_http_request_trailers(&mut self, num_trailers: usize) -> Action;
    /// The response's headers.
    fn on_http_response_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action;
    /// A chunk of the response's body.
    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action;
    /// Access-log time.
    fn on_log(&mut self);
}

/// Context ids are small integers Envoy hands out in order: one multiply spreads them over the
/// map's buckets (the std hasher's SipHash would cost more than the lookup). Connection ids
/// (`u64`, also handed out in order by the proxy, never chosen by a client) hash the same way.
#[derive(Default)]
pub struct ContextIdHasher(u64);

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

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Streams<S> = HashMap<u32, S, BuildHasherDefault<ContextIdHasher>>;

/// The contexts of one worker: its roots (one per plugin that shares the VM) and its live
/// streams by context id. Each callback of [`export_callbacks!`](crate::export_callbacks) is
/// one method here.
pub struct Contexts<R: RootContext> {
    roots: RefCell<Vec<R>>,
    streams: RefCell<Streams<R::Stream>>,
}

impl<R: RootContext> Default for Contexts<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: RootContext> Contexts<R> {
    /// No contexts yet.
    pub const fn new() -> Self {
        Contexts {
            roots: RefCell::new(Vec::new()),
            streams: RefCell::new(HashMap::with_hasher(BuildHasherDefault::new())),
        }
    }

    /// Runs `f` on root `id`; `default` when there is no such root.
    fn with_root<T>(&self, id: u32, default: T, f: impl FnOnce(&mut R) -> T) -> T {
        match self.roots.borrow_mut().iter_mut().find(|r| r.id() == id) {
            Some(root) => f(root),
            None => default,
        }
    }

    /// Runs `f` on stream `id`; `default` when there is no such stream (never for an id Envoy
    /// created: every created context is in a table until it is deleted).
    fn with_stream<T>(&self, id: u32, default: T, f: impl FnOnce(&mut R::Stream) -> T) -> T {
        match self.streams.borrow_mut().get_mut(&id) {
            Some(stream) => f(stream),
            None => default,
        }
    }

    /// `proxy_on_context_create`: a root (`root_context_id` 0) or a stream of that root.
    pub fn create(&self, context_id: u32, root_context_id: u32) {
        if root_context_id == 0 {
            let mut roots = self.roots.borrow_mut();
            roots.retain(|r| r.id() != context_id);
            roots.push(R::new(context_id));
            return;
        }
        // A stream of an unknown root has no policy: it refuses requests (the SDK aborted the
        // VM).
        let stream = self
            .with_root(root_context_id, None, |root| {
                Some(root.create_http_context(context_id))
            })
            .unwrap_or_else(|| R::Stream::orphan(context_id));
        let old = self.streams.borrow_mut().insert(context_id, stream);
        drop(old);
    }

    /// `proxy_on_configure`: the root compiles its policy.
    pub fn configure(&self, context_id: u32, plugin_configuration_size: usize) -> bool {
        self.with_root(context_id, false, |root| {
            root.on_configure(plugin_configuration_size)
        })
    }

    /// `proxy_on_tick`.
    pub fn tick(&self, context_id: u32) {
        self.with_root(context_id, (), R::on_tick);
    }

    /// `proxy_on_done`: `true`, the context needs no more time.
    pub fn done(&self, context_id: u32) -> bool {
        self.with_root(context_id, true, R::on_done)
    }

    /// `proxy_on_log`: the stream's access-log time.
    pub fn log(&self, context_id: u32) {
        self.with_stream(context_id, (), R::Stream::on_log);
    }

    /// `proxy_on_delete`: the context is gone.
    pub fn delete(&self, context_id: u32) {
        let stream = self.streams.borrow_mut().remove(&context_id);
        if stream.is_none() {
            let root = {
                let mut roots = self.roots.borrow_mut();
                roots
                    .iter()
                    .position(|r| r.id() == context_id)
                    .map(|at| roots.swap_remove(at))
            };
            drop(root);
        }
        drop(stream);
    }

    /// `proxy_on_request_headers`.
    pub fn request_headers(&self, context_id: u32, num_headers: usize, eos: bool) -> Action {
        self.with_stream(context_id, Action::Continue, |s| {
            s.on_http_request_headers(num_headers, eos)
        })
    }

    /// `proxy_on_request_body`.
    pub fn request_body(&self, context_id: u32, body_size: usize, eos: bool) -> Action {
        self.with_stream(context_id, Action::Continue, |s| {
            s.on_http_request_body(body_size, eos)
        })
    }

    /// `proxy_on_request_trailers`.
    pub fn request_trailers(&self, context_id: u32, num_trailers: usize) -> Action {
        self.with_stream(context_id, Action::Continue, |s| {
            s.on_http_request_trailers(num_trailers)
        })
    }

    /// `proxy_on_response_headers`.
    pub fn response_headers(&self, context_id: u32, num_headers: usize, eos: bool) -> Action {
        self.with_stream(context_id, Action::Continue, |s| {
            s.on_http_response_headers(num_headers, eos)
        })
    }

    /// `proxy_on_response_body`.
    pub fn response_body(&self, context_id: u32, body_size: usize, eos: bool) -> Action {
        self.with_stream(context_id, Action::Continue, |s| {
            s.on_http_response_body(body_size, eos)
        })
    }

    /// `proxy_on_http_call_response`: delivered to the context that made the call; only roots
    /// make calls (a stream's calls would die with the stream). Envoy has already made that
    /// root current.
    pub fn http_call_response(
        &self,
        context_id: u32,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        num_trailers: usize,
    ) {
        self.with_root(context_id, (), |root| {
            root.on_http_call_response(token_id, num_headers, body_size, num_trailers)
        });
    }
}

/// `proxy_on_memory_allocate`: memory the host fills and hands to the module (a header map, a
/// body, a property), a boxed slice of exactly `size` bytes, which [`crate::imports`] takes
/// back as a `Vec` of that capacity.
pub fn allocate(size: usize) -> *mut u8 {
    // Uninitialized bytes of exactly `size` (the host writes them before the module reads
    // them), as one allocation: no `Vec` to shrink into a box on every host buffer.
    let bytes: Box<[MaybeUninit<u8>]> = Box::new_uninit_slice(size);
    Box::into_raw(bytes).cast::<u8>()
}

/// Runs wasm-ld's static constructors: the reactor's `_initialize` calls it first.
pub fn call_ctors() {
    #[cfg(all(target_family = "wasm", target_os = "wasi"))]
    {
        extern "C" {
            fn __wasm_call_ctors();
        }
        // SAFETY: wasm-ld's constructor runner, called once before anything else runs.
        #[allow(unsafe_code)]
        unsafe {
            __wasm_call_ctors()
        };
    }
}

/// Exports the proxy-wasm ABI 0.2.1 callbacks for root type `$root` (a [`RootContext`] whose
/// streams are its `Stream`), with `$init` run by `_initialize` before Envoy creates a
/// context (native tests call it through the test host). Expand it once, in the module's crate.
#[macro_export]
macro_rules! export_callbacks {
    ($root:ty, $init:path) => {
        ::std::thread_local! {
            /// This worker's root and stream contexts.
            static MESHSIGHT_CONTEXTS: $crate::callbacks::Contexts<$root> =
                const { $crate::callbacks::Contexts::new() };
        }

        /// The reactor's entry point: static constructors, then the module's own set-up.
        #[cfg(target_family = "wasm")]
        #[no_mangle]
        pub extern "C" fn _initialize() {
            $crate::callbacks::call_ctors();
            $init();
        }

        /// Marks the module as speaking ABI 0.2.1.
        #[no_mangle]
        pub extern "C" fn proxy_abi_version_0_2_1() {}

        /// Memory the host fills and hands to the module.
        #[no_mangle]
        pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
            $crate::callbacks::allocate(size)
        }

        /// A new context: a root (`root_context_id` 0) or a stream of that root.
        #[no_mangle]
        pub extern "C" fn proxy_on_context_create(context_id: u32, root_context_id: u32) {
            MESHSIGHT_CONTEXTS.with(|c| c.create(context_id, root_context_id));
        }

        /// The VM started (no VM configuration is read).
        #[no_mangle]
        pub extern "C" fn proxy_on_vm_start(
            _context_id: u32,
            _vm_configuration_size: usize,
        ) -> bool {
            true
        }

        /// The plugin's configuration arrived (or changed).
        #[no_mangle]
        pub extern "C" fn proxy_on_configure(context_id: u32, size: usize) -> bool {
            MESHSIGHT_CONTEXTS.with(|c| c.configure(context_id, size))
        }

        /// The root's tick.
        #[no_mangle]
        pub extern "C" fn proxy_on_tick(context_id: u32) {
            MESHSIGHT_CONTEXTS.with(|c| c.tick(context_id));
        }

        /// The context is done.
        #[no_mangle]
        pub extern "C" fn proxy_on_done(context_id: u32) -> bool {
            MESHSIGHT_CONTEXTS.with(|c| c.done(context_id))
        }

        /// Access-log time.
        #[no_mangle]
        pub extern "C" fn proxy_on_log(context_id: u32) {
            MESHSIGHT_CONTEXTS.with(|c| c.log(context_id));
        }

        /// The context is gone.
        #[no_mangle]
        pub extern "C" fn proxy_on_delete(context_id: u32) {
            MESHSIGHT_CONTEXTS.with(|c| c.delete(context_id));
        }

        /// The request's headers.
        #[no_mangle]
        pub extern "C" fn proxy_on_request_headers(
            context_id: u32,
            num_headers: usize,
            end_of_stream: bool,
        ) -> $crate::Action {
            MESHSIGHT_CONTEXTS.with(|c| c.request_headers(context_id, num_headers, end_of_stream))
        }

        /// A chunk of the request's body.
        #[no_mangle]
        pub extern "C" fn proxy_on_request_body(
            context_id: u32,
            body_size: usize,
            end_of_stream: bool,
        ) -> $crate::Action {
            MESHSIGHT_CONTEXTS.with(|c| c.request_body(context_id, body_size, end_of_stream))
        }

        /// The request's trailers.
        #[no_mangle]
        pub extern "C" fn proxy_on_request_trailers(
            context_id: u32,
            num_trailers: usize,
        ) -> $crate::Action {
            MESHSIGHT_CONTEXTS.with(|c| c.request_trailers(context_id, num_trailers))
        }

        /// The response's headers.
        #[no_mangle]
        pub extern "C" fn proxy_on_response_headers(
            context_id: u32,
            num_headers: usize,
            end_of_stream: bool,
        ) -> $crate::Action {
            MESHSIGHT_CONTEXTS.with(|c| c.response_headers(context_id, num_headers, end_of_stream))
        }

        /// A chunk of the response's body.
        #[no_mangle]
        pub extern "C" fn proxy_on_response_body(
            context_id: u32,
            body_size: usize,
            end_of_stream: bool,
        ) -> $crate::Action {
            MESHSIGHT_CONTEXTS.with(|c| c.response_body(context_id, body_size, end_of_stream))
        }

        /// The response's trailers: nothing to do (exported because Envoy's filter expects it).
        #[no_mangle]
        pub extern "C" fn proxy_on_response_trailers(
            _context_id: u32,
            _num_trailers: usize,
        ) -> $crate::Action {
            $crate::Action::Continue
        }

        /// The answer to an HTTP call, delivered to the root that made it.
        #[no_mangle]
        pub extern "C" fn proxy_on_http_call_response(
            context_id: u32,
            token_id: u32,
            num_headers: usize,
            body_size: usize,
            num_trailers: usize,
        ) {
            MESHSIGHT_CONTEXTS.with(|c| {
                c.http_call_response(context_id, token_id, num_headers, body_size, num_trailers)
            });
        }
    };
}

#[cfg(test)]
mod tests {
    use super::{Contexts, RootContext, StreamContext};
    use crate::Action;

    /// A root that counts its callbacks; its streams remember which root made them.
    struct Root {
        id: u32,
        configured: usize,
        ticks: usize,
    }

    struct Stream {
        root: Option<u32>,
        heads: usize,
        logged: bool,
    }

    impl RootContext for Root {
        type Stream = Stream;
        fn new(context_id: u32) -> Self {
            Root {
                id: context_id,
                configured: 0,
                ticks: 0,
            }
        }
        fn id(&self) -> u32 {
            self.id
        }
        fn create_http_context(&self, _context_id: u32) -> Stream {
            Stream {
                root: Some(self.id),
                heads: 0,
                logged: false,
            }
        }
        fn on_configure(&mut self, size: usize) -> bool {
            self.configured = size;
            size > 0
        }
        fn on_tick(&mut self) {
            self.ticks += 1;
        }
        fn on_done(&mut self) -> bool {
            false
        }
        fn on_http_call_response(&mut self, token: u32, _: usize, _: usize, _: usize) {
            self.ticks += token as usize;
        }
    }

    impl StreamContext for Stream {
        fn orphan(_context_id: u32) -> Self {
            Stream {
                root: None,
                heads: 0,
                logged: false,
            }
        }
        fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
            self.heads += 1;
            match self.root {
                Some(_) => Action::Continue,
                None => Action::Pause,
            }
        }
        fn on_http_request_body(&mut self, _: usize, _: bool) -> Action {
            Action::Pause
        }
        fn on_http_request_trailers(&mut self, _: usize) -> Action {
            Action::Pause
        }
        fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
            Action::Pause
        }
        fn on_http_response_body(&mut self, _: usize, _: bool) -> Action {
            Action::Pause
        }
        fn on_log(&mut self) {
            self.logged = true;
        }
    }

    #[test]
    fn each_callback_reaches_its_own_context() {
        let c: Contexts<Root> = Contexts::new();
        c.create(1, 0);
        c.create(2, 0);
        assert!(c.configure(1, 5));
        assert!(!c.configure(2, 0));
        c.tick(1);
        c.http_call_response(2, 7, 0, 0, 0);
        c.create(10, 1);
        c.create(11, 2);
        c.create(12, 99); // an unknown root: an orphan stream
        assert_eq!(c.request_headers(10, 3, true), Action::Continue);
        assert_eq!(c.request_headers(11, 3, true), Action::Continue);
        assert_eq!(c.request_headers(12, 3, true), Action::Pause);
        assert_eq!(c.request_body(10, 1, true), Action::Pause);
        c.log(11);
        {
            let roots = c.roots.borrow();
            assert_eq!(
                (roots[0].id, roots[0].configured, roots[0].ticks),
                (1, 5, 1)
            );
            assert_eq!((roots[1].id, roots[1].ticks), (2, 7));
            let streams = c.streams.borrow();
            assert_eq!(streams[&10].root, Some(1));
            assert_eq!(streams[&11].root, Some(2));
            assert_eq!(streams[&12].root, None);
            assert!(streams[&11].logged && !streams[&10].logged);
            assert_eq!(streams[&10].heads, 1);
        }
        // The root's own answer, then the defaults for ids that are not (or no longer) there.
        assert!(!c.done(1));
        c.delete(10);
        assert_eq!(c.request_headers(10, 3, true), Action::Continue);
        assert_eq!(c.response_headers(10, 3, true), Action::Continue);
        c.delete(1);
        assert!(c.done(1));
        assert!(!c.configure(1, 5));
        assert_eq!(c.roots.borrow().len(), 1);
        assert_eq!(c.streams.borrow().len(), 2);
    }

    #[test]
    fn a_root_created_again_replaces_the_old_one() {
        let c: Contexts<Root> = Contexts::new();
        c.create(1, 0);
        assert!(c.configure(1, 5));
        c.create(1, 0);
        let roots = c.roots.borrow();
        assert_eq!(roots.len(), 1);
        assert_eq!(roots[0].configured, 0);
    }

    #[test]
    fn allocated_memory_is_exactly_the_size_asked() {
        let data = super::allocate(16);
        assert!(!data.is_null());
        // SAFETY: `allocate` made a boxed slice of exactly 16 bytes from the global allocator
        // (length 0: nothing has written them yet).
        #[allow(unsafe_code)]
        let mut bytes = unsafe { Vec::from_raw_parts(data, 0, 16) };
        assert_eq!(bytes.capacity(), 16);
        bytes.extend_from_slice(&[7; 16]);
        assert_eq!(bytes.capacity(), 16);
    }
}
