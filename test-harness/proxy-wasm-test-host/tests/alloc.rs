//! Counting the plugin's heap allocations: those its callbacks make, not the host's own.

mod probe;

use probe::{start, Script};
use proxy_wasm::types::Action;
use proxy_wasm_test_host::{plugin_allocations, CountingAllocator};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn the_plugins_allocations_are_counted_and_the_hosts_are_not() {
    let mut host = start(Script {
        request_headers: Some(Box::new(|_, _, end_of_stream| {
            if !end_of_stream {
                // One allocation of the plugin's own.
                let v: Vec<u8> = Vec::with_capacity(64);
                std::hint::black_box(&v);
            }
            Action::Continue
        })),
        ..Script::default()
    });
    let quiet = host.new_http_stream();
    let before = plugin_allocations();
    // The host builds the header map (its allocations); the callback allocates nothing.
    host.request_headers(quiet, &[(":path", "/"), ("x-a", "b")], true);
    assert_eq!(plugin_allocations(), before);
    let busy = host.new_http_stream();
    let before = plugin_allocations();
    host.request_headers(busy, &[(":path", "/")], false);
    assert_eq!(plugin_allocations(), before + 1);
}
