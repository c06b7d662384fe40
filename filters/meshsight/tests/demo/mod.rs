//! The `make run` demo's policy as `envoy-config/envoy.yaml` holds it: the one document of its
//! single `meshsight` plugin, started in the native host with that plugin's root id, so the
//! `*_demo_policy.rs` tests exercise exactly what the demo (and the Docker demo) runs.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, dead_code)]

use proxy_wasm_test_host::Host;
use std::path::Path;

/// The demo's Envoy template.
pub fn demo_yaml() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../envoy-config/envoy.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The demo's one meshsight plugin: its root id and the JSON under its `value: |`.
pub fn demo_plugin(yaml: &str) -> (String, String) {
    let lines: Vec<&str> = yaml.lines().collect();
    let wasm_filters: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim().starts_with("root_id:"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        wasm_filters.len(),
        1,
        "the demo runs the one-plugin deployment: one Wasm filter"
    );
    let start = wasm_filters[0];
    let root_id = lines[start]
        .trim()
        .trim_start_matches("root_id:")
        .trim()
        .to_string();
    let value = start
        + lines[start..]
            .iter()
            .position(|l| l.trim() == "value: |")
            .expect("`value: |` after the root id");
    let indent = |l: &str| l.len() - l.trim_start().len();
    let base = indent(lines[value]);
    let json = lines[value + 1..]
        .iter()
        .take_while(|l| l.trim().is_empty() || indent(l) > base)
        .map(|l| l.trim_start())
        .collect::<Vec<_>>()
        .join("\n");
    (root_id, json)
}

/// The demo's policy document, parsed.
pub fn demo_document() -> serde_json::Value {
    let (_, json) = demo_plugin(&demo_yaml());
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("not JSON: {e}\n{json}"))
}

/// The native host running the demo's plugin (its root id, its configuration).
pub fn start_demo() -> Host {
    let (root_id, json) = demo_plugin(&demo_yaml());
    assert_eq!(root_id, "meshsight", "the one-pass root id");
    Host::builder(meshsight::register)
        .property(&["plugin_root_id"], root_id.as_str())
        .plugin_config(&json)
        .start()
        .unwrap_or_else(|e| panic!("the demo policy is refused: {e}\n{json}"))
}

/// A request as curl sends it to the demo listener, head only.
pub fn get(host: &mut Host, method: &str, path: &str, extra: &[(&str, &str)]) -> u32 {
    let id = host.new_http_stream();
    host.set_stream_property(id, &["source", "address"], "127.0.0.1:50000");
    let mut headers = vec![
        (":method", method),
        (":path", path),
        (":authority", "127.0.0.1:10000"),
        (":scheme", "http"),
    ];
    headers.extend_from_slice(extra);
    host.request_headers(id, &headers, true);
    id
}

/// Ends a stream as Envoy would: the local reply or the upstream's 200, then the log phase.
pub fn finish(host: &mut Host, id: u32) {
    if host.local_response(id).is_some() {
        host.encode_local_response(id);
    } else {
        host.response_headers(id, &[(":status", "200")], true);
    }
    host.log(id);
    host.done(id);
}
