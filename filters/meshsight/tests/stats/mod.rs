//! Reading the module's counters as Envoy would see them: the module counts in memory and
//! hands its counts to the host on the root's tick, so a test advances one tick first.
#![allow(dead_code)]

use proxy_wasm_test_host::Host;

/// Counter `name` after one tick (the flush), `None` when the module never defined it.
pub fn counter(host: &mut Host, name: &str) -> Option<u64> {
    host.tick();
    host.counter(name)
}

/// Gauge `name` after one tick (the flush).
pub fn gauge(host: &mut Host, name: &str) -> Option<i64> {
    host.tick();
    host.gauge(name)
}
