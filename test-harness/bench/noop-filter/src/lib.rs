//! meshsight bench anchors: a proxy-wasm HTTP filter that does nothing, or only the host calls
//! meshsight's one pass makes.
//!
//! - **No-op** (empty configuration): creates a stream context and lets everything through
//!   without a single host call. `make bench` runs it as the "wasm no-op filter" row, so each
//!   meshsight row's cost splits into what any Wasm filter costs in Envoy (VM entry, context
//!   creation, callbacks) and what meshsight adds.
//! - **Host-call probe** (configuration `one-pass-host-calls`): per request, exactly the host
//!   calls the one pass with the access-log audit makes (`make v8-profile` lists them), with no
//!   logic between them: the request head read once, `connection.id`, the verdict
//!   handed to Envoy's access logger with one `set_property` (a fixed OCSF fragment of the
//!   one pass's size). Its six counters are moved in memory per request and handed to Envoy on
//!   the root's tick, as the one pass's are (issue 19). Its row above the no-op row is what
//!   those host calls cost Envoy; the one pass above the probe is meshsight's own work.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, MetricType};

#[cfg(target_family = "wasm")]
#[allow(missing_docs)]
mod vm_entry {
    proxy_wasm::main! {{
        super::register();
    }}
}

/// The plugin configuration that turns the probe on.
pub const PROBE_CONFIGURATION: &str = "one-pass-host-calls";

/// The property the one pass hands its OCSF fragment to the access logger in (Envoy keeps it
/// as filter state `wasm.meshsight_ocsf`).
const VERDICT_PROPERTY: &str = "meshsight_ocsf";

/// A fragment of the size and shape the one pass writes for the bench request (the access
/// logger's template closes it).
const VERDICT: &str = concat!(
    r#""activity_id":3,"activity_name":"Get","type_uid":400203,"type_name":"HTTP Activity: Get","#,
    r#""severity_id":1,"severity":"Informational","action_id":1,"action":"Allowed","#,
    r#""disposition_id":1,"disposition":"Allowed","is_alert":false,"#,
    r#""firewall_rule":{"name":"catalog-read"},"unmapped":{"meshsight":{"allowlist":"#,
    r#"{"outcome":"allowed","rule":"catalog-read"},"mirror":{"mirrored":false,"#,
    r#""reason":"not_selected","rule":"sample-rest"}}},"http_request":{"http_method":"GET","#,
    r#""url":{"path":"/api/v1/products/42","hostname":"shop.example.com","scheme":"http","#,
    r#""url_string":"http://shop.example.com/api/v1/products/42"},"#,
    r#""user_agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "#,
    r#"Chrome/124.0 Safari/537.36","uid":"6e17fb0a-2f26-414e-ab25-dd0b6af32d09""#
);

/// Counters the one pass increments per allowed, not-copied request (allowlist: outcome and
/// rule; mirror: requests and reason; audit: records and delivered).
const COUNTERS: usize = 6;

/// How often the probe hands its counters to Envoy: meshsight's flush period
/// (`filters/meshsight/src/host/metric.rs`).
pub const FLUSH_PERIOD: Duration = Duration::from_millis(500);

/// The probe's counters, one per increment.
pub const COUNTER_NAMES: [&str; COUNTERS] = [
    "meshsight_probe.allowlist_allowed",
    "meshsight_probe.allowlist_rule",
    "meshsight_probe.mirror_requests",
    "meshsight_probe.mirror_reason",
    "meshsight_probe.audit_records",
    "meshsight_probe.audit_delivered",
];

/// Registers the root context with the proxy-wasm SDK.
pub fn register() {
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(AnchorRoot::default()) });
}

#[derive(Default)]
struct AnchorRoot {
    /// The probe's counters; `None`: the no-op.
    probe: Option<Rc<Counters>>,
}

/// The probe's counters: each one's host id and what it moved since the last flush.
struct Counters {
    ids: [u32; COUNTERS],
    moved: [Cell<u64>; COUNTERS],
}

impl Counters {
    /// Hands what moved to the host, one `increment_metric` per counter that moved.
    fn flush(&self) {
        for (id, moved) in self.ids.iter().zip(&self.moved) {
            let delta = moved.replace(0);
            if delta > 0 {
                let _ = hostcalls::increment_metric(*id, delta as i64);
            }
        }
    }
}

impl Context for AnchorRoot {
    fn on_done(&mut self) -> bool {
        if let Some(counters) = &self.probe {
            counters.flush();
        }
        true
    }
}

impl RootContext for AnchorRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let configuration = hostcalls::get_buffer(
            proxy_wasm::types::BufferType::PluginConfiguration,
            0,
            usize::MAX,
        )
        .ok()
        .flatten()
        .unwrap_or_default();
        if configuration.is_empty() {
            self.probe = None;
            return true;
        }
        if configuration != PROBE_CONFIGURATION.as_bytes() {
            let _ = hostcalls::log(
                proxy_wasm::types::LogLevel::Error,
                "meshsight bench anchor: the configuration must be empty (the no-op) or \
                 \"one-pass-host-calls\" (the host-call probe)",
            );
            return false;
        }
        let mut ids = [0; COUNTERS];
        for (id, name) in ids.iter_mut().zip(COUNTER_NAMES) {
            match hostcalls::define_metric(MetricType::Counter, name) {
                Ok(defined) => *id = defined,
                Err(_) => return false,
            }
        }
        self.probe = Some(Rc::new(Counters {
            ids,
            moved: Default::default(),
        }));
        self.set_tick_period(FLUSH_PERIOD);
        true
    }

    fn on_tick(&mut self) {
        if let Some(counters) = &self.probe {
            counters.flush();
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        match &self.probe {
            None => Some(Box::new(NoopStream)),
            Some(counters) => Some(Box::new(ProbeStream {
                counters: Rc::clone(counters),
            })),
        }
    }
}

struct NoopStream;

impl Context for NoopStream {}

impl HttpContext for NoopStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }
}

struct ProbeStream {
    counters: Rc<Counters>,
}

impl Context for ProbeStream {}

impl HttpContext for ProbeStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let head =
            meshsight_host_abi::header_map_wire(meshsight_host_abi::MapType::HttpRequestHeaders);
        let connection = hostcalls::get_property(vec!["connection", "id"])
            .ok()
            .flatten();
        let _ = hostcalls::set_property(vec![VERDICT_PROPERTY], Some(VERDICT.as_bytes()));
        for moved in &self.counters.moved {
            moved.set(moved.get() + 1);
        }
        // Kept observable so the calls' results are not dropped unread.
        std::hint::black_box((head, connection));
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }
}
