//! Counting the plugin's own heap allocations: a test binary installs [`CountingAllocator`] as
//! its global allocator, and the host counts the allocations made while a plugin callback runs,
//! leaving out those the host makes inside its own functions (a host answer the plugin receives
//! is the host's allocation here; in Envoy it is the module's `proxy_on_memory_allocate`).
//! Counters are per thread, as the host is.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// Plugin callbacks on the stack (a callback may run inside another's host call).
    static IN_PLUGIN: Cell<u32> = const { Cell::new(0) };
    /// Host functions on the stack.
    static IN_HOST: Cell<u32> = const { Cell::new(0) };
    /// Allocations the plugin made on this thread.
    static PLUGIN_ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting the plugin's allocations (install it with
/// `#[global_allocator] static A: CountingAllocator = CountingAllocator;`).
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAllocator;

fn note() {
    // `try_with`: an allocation while the thread's locals are torn down is simply not counted.
    let plugin = IN_PLUGIN.try_with(Cell::get).unwrap_or(0);
    let host = IN_HOST.try_with(Cell::get).unwrap_or(0);
    if plugin > 0 && host == 0 {
        let _ = PLUGIN_ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only
// const-initialized thread-locals, which never allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: as `alloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations (and reallocations) the plugin made on this thread so far; 0 unless the test
/// binary installed [`CountingAllocator`].
pub fn plugin_allocations() -> u64 {
    PLUGIN_ALLOCATIONS.with(Cell::get)
}

/// Marks a plugin callback running until dropped.
pub(crate) struct PluginCallback;

impl PluginCallback {
    pub(crate) fn enter() -> PluginCallback {
        IN_PLUGIN.with(|n| n.set(n.get() + 1));
        PluginCallback
    }
}

impl Drop for PluginCallback {
    fn drop(&mut self) {
        let _ = IN_PLUGIN.try_with(|n| n.set(n.get().saturating_sub(1)));
    }
}

/// Marks a host function running until dropped.
pub(crate) struct HostFunction;

impl HostFunction {
    pub(crate) fn enter() -> HostFunction {
        IN_HOST.with(|n| n.set(n.get() + 1));
        HostFunction
    }
}

impl Drop for HostFunction {
    fn drop(&mut self) {
        let _ = IN_HOST.try_with(|n| n.set(n.get().saturating_sub(1)));
    }
}
