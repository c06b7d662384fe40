//! meshsight's one host seam: every proxy-wasm host call the module makes is written here, and
//! clippy refuses them anywhere else (`disallowed-methods` in `filters/meshsight/clippy.toml`),
//! so each call is written once and a reader can count what a request costs the host.
//! Counters and gauges that never fail a request, the one clock, the request head read in one
//! call, properties read at most once per request (and values fixed for a connection at most
//! once per connection), HTTP calls and their answers, and decisions put into and read from
//! filter state for other filters and access logs, and the module's log lines. Below it,
//! `meshsight_host_abi` declares the host functions and exports the callbacks.
#![allow(clippy::disallowed_methods)]

mod call;
mod clock;
mod filter_state;
mod log;
mod metric;
mod plugin;
mod properties;
mod request;

pub use call::{
    call_response_body, call_response_header, call_status, dispatch_http_call, set_tick_period,
};
pub use clock::now_nanos;
pub use filter_state::{declare_property, get_decision, put_property};
pub use log::log;
pub use metric::{stat_part, Counter, Gauge, Stats, FLUSH_PERIOD};
pub use plugin::{envoy_log_level, plugin_configuration, plugin_root_id};
pub use properties::{
    as_i64, node_metadata, ConnectionCache, ConnectionFact, ConnectionFacts, Properties,
};
pub use request::{
    clear_route_cache, read_map_block, read_request_head, request_body, response_body,
    resume_request, send_local_response, set_effective_context, set_request_header,
    CLEAR_ROUTE_CACHE,
};

pub use meshsight_host_abi::MapType as WireMap;
