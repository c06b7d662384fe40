//! A stream without a policy: Envoy never creates one after a refused configuration, but the
//! module must fail closed if a host does (500, nothing forwarded), never pass the request.

use proxy_wasm_test_host::Action;
use proxy_wasm_test_host::{Host, LogLevel};

#[test]
fn without_a_policy_every_request_is_refused_with_500() {
    for (root_id, config) in [
        ("meshsight", "not json"),
        (
            "meshsight_allowlist",
            r#"{"mode":"enforce","rules":"none"}"#,
        ),
        ("meshsight_firewall", "{}"),
    ] {
        let (mut host, refused) = Host::builder(meshsight::register)
            .property(&["plugin_root_id"], root_id)
            .plugin_config(config)
            .start_anyway();
        let refused = refused.unwrap_or_else(|| panic!("{root_id}: {config:?} was accepted"));
        assert_eq!(refused.callback(), "proxy_on_configure");
        for path in ["/", "/api/items", "/admin"] {
            let id = host.new_http_stream();
            let action = host.request_headers(
                id,
                &[(":method", "GET"), (":path", path), (":authority", "shop")],
                true,
            );
            assert_eq!(action, Action::Pause, "{root_id} {path}");
            let reply = host.local_response(id).expect("a local response");
            assert_eq!(reply.status, 500, "{root_id} {path}");
            assert_eq!(reply.body, br#"{"error":"internal"}"#);
            assert!(!host.request_continued(id), "{root_id} {path}");
            host.end_stream(id);
        }
        let refusals = host
            .logs()
            .into_iter()
            .filter(|e| e.level == LogLevel::Error && e.message.contains("no policy loaded"))
            .count();
        assert_eq!(refusals, 3, "{root_id}");
    }
}
