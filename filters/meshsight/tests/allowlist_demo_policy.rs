//! The allowlist policy of the `make run` demo (`envoy-config/envoy.yaml`) compiles and does what
//! the demo's curl lines say.

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use meshsight_test_harness::host::Host;

/// The JSON text of the allowlist's `value: |` block in envoy.yaml.
fn demo_policy() -> String {
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../envoy-config/envoy.yaml"
    ))
    .unwrap();
    let block = &yaml[yaml
        .find("name: meshsight.allowlist")
        .expect("allowlist filter in envoy.yaml")..];
    let value = &block[block.find("value: |").expect("a `value: |` block")..];
    let mut lines = value.lines().skip(1);
    let first = lines.next().unwrap();
    let indent = first.len() - first.trim_start().len();
    let mut json = first.to_string();
    for line in lines {
        if line.trim().is_empty() || line.len() - line.trim_start().len() < indent {
            break;
        }
        json.push('\n');
        json.push_str(line);
    }
    json
}

#[test]
fn the_demo_policy_compiles_and_behaves_as_the_banner_says() {
    let mut host = Host::builder(meshsight::register)
        .property(&["plugin_root_id"], "meshsight_allowlist")
        .plugin_config(demo_policy())
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    for (method, path, status) in [
        ("GET", "/api/items", None),
        ("GET", "/api/orders/42", None),
        ("POST", "/api/orders", None),
        ("GET", "/health", None),
        ("GET", "/admin", Some(403)),
        ("GET", "/api/../admin", Some(403)),
        ("DELETE", "/api/items", Some(403)),
        ("GET", "/api/%2e%2e%2fadmin", Some(400)),
        ("GET", "/api/%2e%2e%2Fadmin", Some(400)),
        ("GET", "/search?q=shoes", None),
        ("GET", "/search?q=shoes&debug=1", Some(403)),
        ("GET", "/api//v1/%69tems", None),
    ] {
        let id = host.new_http_stream();
        host.request_headers(
            id,
            &[
                (":method", method),
                (":path", path),
                (":authority", "127.0.0.1:10000"),
                (":scheme", "http"),
            ],
            true,
        );
        assert_eq!(
            host.local_response(id).map(|r| r.status),
            status,
            "{method} {path}"
        );
        if path == "/api//v1/%69tems" {
            let headers = host.request_header_map(id);
            assert!(
                headers.contains(&(":path".into(), "/api/v1/items".into())),
                "the demo rewrites to the checked path: {headers:?}"
            );
        }
    }
}
