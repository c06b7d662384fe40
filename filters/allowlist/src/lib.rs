//! meshsight allowlist filter: default-deny URL allow-listing that encoding tricks cannot
//! bypass. A thin adapter: the policy, normalization and decisions live in
//! `meshsight_policy::allowlist`; this crate reads the request from the host, asks the compiled
//! [`AllowList`] for a judgement, and carries it out (local response, `:path` rewrite, counters,
//! the decision in filter state for the audit filter).

use std::rc::Rc;

use meshsight_policy::allowlist::{AllowList, Judgement};
use meshsight_policy::decision::{AllowlistOutcome, ALLOWLIST_DECISION_PROPERTY};
use meshsight_policy::matching::{Peer, RequestFacts};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, Bytes, ContextType, LogLevel, MapType, MetricType};

#[cfg(target_family = "wasm")]
#[allow(missing_docs)]
mod vm_entry {
    proxy_wasm::main! {{
        super::register();
    }}
}

/// Counter: requests a rule allowed.
pub const METRIC_ALLOWED: &str = "meshsight_allowlist_allowed";
/// Counter: requests answered with the deny response.
pub const METRIC_DENIED: &str = "meshsight_allowlist_denied";
/// Counter: requests no rule allowed that monitor mode let through (`would_deny`).
pub const METRIC_MONITORED: &str = "meshsight_allowlist_monitored";
/// Counter: requests with a malformed target, whatever was done with them.
pub const METRIC_MALFORMED: &str = "meshsight_allowlist_malformed";
/// Prefix of the per-rule hit counters: `meshsight_allowlist_rule_hits.<rule name>`.
pub const METRIC_RULE_HITS_PREFIX: &str = "meshsight_allowlist_rule_hits.";

/// Registers the filter's root context with the proxy-wasm SDK (called by `main!` in the VM and
/// by native tests through the harness).
pub fn register() {
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(AllowlistRoot { filter: None })
    });
}

/// Metric ids defined at configure time; a failed definition leaves `None` (counting is then
/// skipped rather than failing requests).
struct Metrics {
    allowed: Option<u32>,
    denied: Option<u32>,
    monitored: Option<u32>,
    malformed: Option<u32>,
    rule_hits: Vec<Option<u32>>,
}

fn counter(name: &str) -> Option<u32> {
    match hostcalls::define_metric(MetricType::Counter, name) {
        Ok(id) => Some(id),
        Err(status) => {
            log::warn!("allowlist: cannot define counter {name}: {status:?}");
            None
        }
    }
}

fn increment(metric: Option<u32>) {
    if let Some(id) = metric {
        // A counter that cannot be bumped must not affect the request.
        let _ = hostcalls::increment_metric(id, 1);
    }
}

impl Metrics {
    fn define(list: &AllowList) -> Self {
        Metrics {
            allowed: counter(METRIC_ALLOWED),
            denied: counter(METRIC_DENIED),
            monitored: counter(METRIC_MONITORED),
            malformed: counter(METRIC_MALFORMED),
            // Defined up front so that a dead rule shows up as a zero, not as a missing stat.
            rule_hits: list
                .rule_names()
                .map(|name| counter(&format!("{METRIC_RULE_HITS_PREFIX}{name}")))
                .collect(),
        }
    }

    fn record(&self, judgement: &Judgement<'_>) {
        match judgement.decision.outcome {
            AllowlistOutcome::Allowed => increment(self.allowed),
            AllowlistOutcome::Denied => increment(self.denied),
            AllowlistOutcome::WouldDeny => increment(self.monitored),
            AllowlistOutcome::Malformed => {}
        }
        if judgement.malformed {
            increment(self.malformed);
        }
        if let Some(rule) = judgement.rule {
            increment(self.rule_hits.get(rule).copied().flatten());
        }
    }
}

/// The compiled policy and its counters, shared by every stream of the plugin.
struct Filter {
    list: AllowList,
    metrics: Metrics,
}

struct AllowlistRoot {
    filter: Option<Rc<Filter>>,
}

impl Context for AllowlistRoot {}

impl RootContext for AllowlistRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        match AllowList::from_json(&config) {
            Ok(list) => {
                log::info!(
                    "allowlist: policy loaded: {} rules, mode {:?}",
                    list.rule_count(),
                    list.mode()
                );
                let metrics = Metrics::define(&list);
                self.filter = Some(Rc::new(Filter { list, metrics }));
                true
            }
            Err(err) => {
                log::error!("allowlist: invalid policy, refusing it: {err}");
                false
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(AllowlistStream {
            filter: self.filter.clone(),
        }))
    }
}

struct AllowlistStream {
    /// `None` only if the host creates streams without a successful `on_configure`.
    filter: Option<Rc<Filter>>,
}

impl Context for AllowlistStream {}

/// The first value of header `name` (UTF-8, invalid bytes replaced).
fn header(head: &[(String, Bytes)], name: &str) -> Option<String> {
    head.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
}

impl AllowlistStream {
    fn string_property(&self, path: Vec<&str>) -> Option<String> {
        self.get_property(path)
            .and_then(|bytes| String::from_utf8(bytes).ok())
    }

    fn respond(&self, status: u32, content_type: &str, body: &[u8]) {
        self.send_http_response(status, vec![("content-type", content_type)], Some(body));
    }
}

impl HttpContext for AllowlistStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(filter) = self.filter.clone() else {
            // Fail closed: without a policy nothing is allowed.
            log::error!("allowlist: no policy loaded; refusing request");
            self.respond(500, "application/json", br#"{"error":"internal"}"#);
            return Action::Pause;
        };
        let list = &filter.list;
        // The whole head in one host call rather than one call per header (each is a VM
        // boundary crossing and a copy back into the VM); as bytes, because the SDK's string
        // accessors abort the VM on a non-UTF-8 value.
        let head = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default();
        let method = header(&head, ":method").unwrap_or_default();
        let path = header(&head, ":path").unwrap_or_default();
        let authority = header(&head, ":authority").unwrap_or_default();
        let scheme = header(&head, ":scheme").unwrap_or_default();
        let source_address = if list.needs_source_address() {
            self.string_property(vec!["source", "address"])
        } else {
            None
        };
        let peer_principal = if list.needs_peer_identity() {
            self.string_property(vec!["connection", "uri_san_peer_certificate"])
        } else {
            None
        };
        // Header values as text only when a rule has header conditions.
        let headers: Vec<(String, String)> = if list.needs_headers() {
            head.iter()
                .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
                .collect()
        } else {
            Vec::new()
        };
        let facts = RequestFacts::new(
            &method,
            &path,
            &authority,
            &scheme,
            &headers,
            Peer::from_properties(source_address.as_deref(), peer_principal.as_deref()),
        );
        let judgement = list.judge_facts(&facts);
        filter.metrics.record(&judgement);
        match serde_json::to_vec(&judgement.decision) {
            Ok(bytes) => self.set_property(vec![ALLOWLIST_DECISION_PROPERTY], Some(&bytes)),
            Err(err) => log::warn!("allowlist: cannot serialize decision: {err}"),
        }
        if judgement.decision.outcome == AllowlistOutcome::WouldDeny {
            log::debug!(
                "allowlist: would deny {method} {path} ({})",
                judgement.decision.reason.as_deref().unwrap_or("")
            );
        }
        if let Some(response) = judgement.response {
            let request_id = header(&head, "x-request-id");
            let body = response.body(request_id.as_deref());
            self.respond(response.status, &response.content_type, &body);
            return Action::Pause;
        }
        if let Some(new_path) = &judgement.rewritten_path {
            self.set_http_request_header(":path", Some(new_path));
            // The route was chosen for the old :path; make the router choose again for the
            // path that was actually checked.
            let _ = self.call_foreign_function("clear_route_cache", None);
        }
        Action::Continue
    }
}
