//! The bench anchors do what their rows claim: the no-op makes no host call, the probe makes
//! the one pass's host calls, counts as it does (flushed on the tick), and hands Envoy's logger a fragment, and any other configuration
//! is refused by name.

use meshsight_noop::COUNTER_NAMES as PROBE_COUNTERS;
use proxy_wasm::types::Action;
use proxy_wasm_test_host::{Host, LogLevel};

const HEAD: &[(&str, &str)] = &[
    (":method", "GET"),
    (":path", "/api/v1/products/42"),
    (":authority", "shop.example.com"),
    ("user-agent", "bench"),
];

fn request(host: &mut Host) -> u32 {
    let id = host.new_http_stream();
    assert_eq!(host.request_headers(id, HEAD, true), Action::Continue);
    assert_eq!(
        host.response_headers(id, &[(":status", "200")], true),
        Action::Continue
    );
    id
}

#[test]
fn the_no_op_sets_nothing_and_counts_nothing() {
    let mut host = Host::builder(meshsight_noop::register)
        .start()
        .unwrap_or_else(|e| panic!("{e:?}"));
    let id = request(&mut host);
    assert_eq!(host.stream_property(id, &["meshsight_ocsf"]), None);
    assert!(PROBE_COUNTERS.iter().all(|c| host.counter(c).is_none()));
    host.end_stream(id);
}

#[test]
fn the_probe_counts_six_times_and_hands_over_a_fragment_per_request() {
    let mut host = Host::builder(meshsight_noop::register)
        .plugin_config(meshsight_noop::PROBE_CONFIGURATION)
        .start()
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(host.tick_period(), Some(meshsight_noop::FLUSH_PERIOD));
    for n in 1..=3 {
        let id = request(&mut host);
        let fragment = host
            .stream_property(id, &["meshsight_ocsf"])
            .unwrap_or_else(|| panic!("request {n}: no fragment for the access logger"));
        // The logger's template wraps it in an object: it must parse there.
        let record = format!("{{{}}}}}", String::from_utf8_lossy(&fragment));
        let parsed: serde_json::Value =
            serde_json::from_str(&record).unwrap_or_else(|e| panic!("{e}: {record}"));
        assert_eq!(parsed["http_request"]["http_method"], "GET");
        host.end_stream(id);
        // As the one pass's: counted in memory, handed to Envoy on the tick.
        let before = Some(n - 1);
        for counter in PROBE_COUNTERS {
            assert_eq!(host.counter(counter), before, "{counter} before the tick");
        }
        host.tick();
        for counter in PROBE_COUNTERS {
            assert_eq!(
                host.counter(counter),
                Some(n),
                "{counter} after {n} requests"
            );
        }
    }
}

#[test]
fn any_other_configuration_is_refused_by_name() {
    let (host, refused) = Host::builder(meshsight_noop::register)
        .plugin_config("{}")
        .start_anyway();
    let refused = refused.unwrap_or_else(|| panic!("\"{{}}\" was accepted"));
    assert_eq!(refused.callback(), "proxy_on_configure");
    assert!(host
        .logs()
        .iter()
        .any(|e| e.level == LogLevel::Error && e.message.contains("one-pass-host-calls")));
}
