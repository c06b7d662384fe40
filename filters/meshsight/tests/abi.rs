//! The module's own proxy-wasm ABI layer (meshsight-host-abi's callbacks), driven by the native
//! host the way Envoy drives it: many streams alive at once, each delivered to its own context;
//! an HTTP call's answer delivered to the root that made it; a second VM on the same thread
//! starting clean.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod stats;
use stats::counter;

use proxy_wasm_test_host::{Action, Host, HttpCallResponse};

const ALLOWLIST: &str = r#"{"mode": "enforce", "rules": [
    {"name": "open", "methods": ["GET"], "paths": ["/open/**"]}
]}"#;

fn allowlist() -> Host {
    Host::builder(meshsight::register)
        .property(&["plugin_root_id"], "meshsight_allowlist")
        .plugin_config(ALLOWLIST)
        .start()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn head(host: &mut Host, id: u32, path: &str) -> Action {
    host.request_headers(
        id,
        &[(":method", "GET"), (":path", path), (":authority", "svc")],
        true,
    )
}

#[test]
fn streams_alive_at_once_each_get_their_own_context() {
    let mut host = allowlist();
    // More streams than the context table's first allocation holds, all open at once, the
    // allowed and the denied interleaved.
    let ids: Vec<u32> = (0..300).map(|_| host.new_http_stream()).collect();
    for (i, id) in ids.iter().enumerate() {
        let path = if i % 3 == 0 { "/closed" } else { "/open/x" };
        let want = if i % 3 == 0 {
            Action::Pause
        } else {
            Action::Continue
        };
        assert_eq!(head(&mut host, *id, path), want, "stream {i}");
    }
    // Ended out of order: every context still answers for itself.
    for (i, id) in ids.iter().enumerate().rev() {
        let denied = host.local_response(*id).map(|r| r.status);
        assert_eq!(denied, (i % 3 == 0).then_some(403), "stream {i}");
        host.log(*id);
        host.done(*id);
    }
    // Streams made after the others were deleted start fresh.
    let id = host.new_http_stream();
    assert_eq!(head(&mut host, id, "/open/y"), Action::Continue);
    host.done(id);
    assert_eq!(counter(&mut host, "meshsight_allowlist_allowed"), Some(201));
    assert_eq!(counter(&mut host, "meshsight_allowlist_denied"), Some(100));
}

#[test]
fn an_http_call_answer_reaches_the_root_that_made_it() {
    let mut host = Host::builder(meshsight::register)
        .property(&["plugin_root_id"], "meshsight_audit")
        .plugin_config(
            r#"{"sink": {"http": {"cluster": "collector", "path": "/ingest", "flush_interval_ms": 1000, "batch_max_records": 1}}}"#,
        )
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    let id = host.new_http_stream();
    head(&mut host, id, "/a");
    host.response_headers(id, &[(":status", "200")], true);
    host.log(id);
    host.done(id);
    host.tick();
    let calls = host.http_calls();
    assert_eq!(calls.len(), 1, "one batch sent on the tick");
    let root = host.root_context_id();
    assert_eq!(calls[0].context_id, root);
    let before = host.host_calls(root).len();
    host.respond_http_call(calls[0].token, HttpCallResponse::status("200", ""));
    let answered = host.host_calls(root)[before..].to_vec();
    // Envoy makes the calling context current for its answer: the module does not ask again
    // (the SDK's dispatcher did, one `proxy_set_effective_context` per answer).
    assert!(
        !answered.contains(&"proxy_set_effective_context"),
        "{answered:?}"
    );
    assert!(
        answered.contains(&"proxy_get_header_map_value"),
        "{answered:?}"
    );
    assert_eq!(counter(&mut host, "meshsight_audit_delivered"), Some(1));
}

#[test]
fn a_second_vm_on_the_same_thread_starts_clean() {
    let mut first = allowlist();
    let id = first.new_http_stream();
    assert_eq!(head(&mut first, id, "/closed"), Action::Pause);
    drop(first);
    // The host may hand out the same context ids again; the new root replaces the old one.
    let mut second = Host::builder(meshsight::register)
        .property(&["plugin_root_id"], "meshsight_allowlist")
        .plugin_config(ALLOWLIST.replace("/open/**", "/closed"))
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    let id = second.new_http_stream();
    assert_eq!(head(&mut second, id, "/closed"), Action::Continue);
}
