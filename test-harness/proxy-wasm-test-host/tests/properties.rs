//! Host functions: `proxy_get_property`, `proxy_set_property` (VM-wide and per-stream values,
//! fall-back from stream to VM, attributes derived from headers).

mod probe;

use probe::{probe, slot, start, Script};
use proxy_wasm::traits::Context;
use proxy_wasm::types::Action;

#[test]
fn proxy_get_property_reads_builder_and_stream_values() {
    let seen = slot::<Vec<Option<Vec<u8>>>>();
    let seen_in = seen.clone();
    let mut host = probe(Script {
        request_headers: Some(Box::new(move |ctx, _, _| {
            let mut seen = seen_in.borrow_mut();
            seen.push(ctx.get_property(vec!["node", "metadata", "NAMESPACE"]));
            seen.push(ctx.get_property(vec!["source", "address"]));
            seen.push(ctx.get_property(vec!["connection", "uri_san_peer_certificate"]));
            seen.push(ctx.get_property(vec!["no", "such"]));
            Action::Continue
        })),
        ..Script::default()
    })
    .property(&["node", "metadata", "NAMESPACE"], "prod")
    .start()
    .unwrap();
    let id = host.new_http_stream();
    host.set_stream_property(id, &["source", "address"], "10.1.2.3:51234");
    host.set_stream_property(
        id,
        &["connection", "uri_san_peer_certificate"],
        "spiffe://cluster.local/ns/shop/sa/web",
    );
    host.request_headers(id, &[], true);
    assert_eq!(
        *seen.borrow(),
        vec![
            Some(b"prod".to_vec()),
            Some(b"10.1.2.3:51234".to_vec()),
            Some(b"spiffe://cluster.local/ns/shop/sa/web".to_vec()),
            None
        ]
    );
}

#[test]
fn proxy_get_property_stream_value_shadows_vm_value_only_in_that_stream() {
    let seen = slot::<Vec<Option<Vec<u8>>>>();
    let seen_in = seen.clone();
    let mut host = probe(Script {
        request_headers: Some(Box::new(move |ctx, _, _| {
            seen_in.borrow_mut().push(ctx.get_property(vec!["k"]));
            Action::Continue
        })),
        ..Script::default()
    })
    .property(&["k"], "vm")
    .start()
    .unwrap();
    let a = host.new_http_stream();
    let b = host.new_http_stream();
    host.set_stream_property(a, &["k"], "stream");
    host.request_headers(a, &[], true);
    host.request_headers(b, &[], true);
    assert_eq!(
        *seen.borrow(),
        vec![Some(b"stream".to_vec()), Some(b"vm".to_vec())]
    );
}

#[test]
fn proxy_get_property_derives_request_attributes_from_headers() {
    let seen = slot::<Vec<Option<Vec<u8>>>>();
    let seen_in = seen.clone();
    let mut host = start(Script {
        response_headers: Some(Box::new(move |ctx, _, _| {
            let mut seen = seen_in.borrow_mut();
            for path in [
                vec!["request", "path"],
                vec!["request", "url_path"],
                vec!["request", "query"],
                vec!["request", "method"],
                vec!["request", "host"],
                vec!["request", "id"],
                vec!["response", "code"],
            ] {
                seen.push(ctx.get_property(path));
            }
            Action::Continue
        })),
        ..Script::default()
    });
    let id = host.new_http_stream();
    host.request_headers(
        id,
        &[
            (":method", "POST"),
            (":path", "/a/b?x=1"),
            (":authority", "shop.example"),
            ("x-request-id", "rid-1"),
        ],
        true,
    );
    host.response_headers(id, &[(":status", "503")], true);
    assert_eq!(
        *seen.borrow(),
        vec![
            Some(b"/a/b?x=1".to_vec()),
            Some(b"/a/b".to_vec()),
            Some(b"x=1".to_vec()),
            Some(b"POST".to_vec()),
            Some(b"shop.example".to_vec()),
            Some(b"rid-1".to_vec()),
            Some(503i64.to_le_bytes().to_vec()),
        ]
    );
}

#[test]
fn proxy_set_property_in_a_stream_writes_that_streams_filter_state() {
    let seen = slot::<Vec<Option<Vec<u8>>>>();
    let seen_in = seen.clone();
    let mut host = start(Script {
        request_headers: Some(Box::new(|ctx, _, _| {
            ctx.set_property(
                vec!["meshsight_allowlist"],
                Some(br#"{"outcome":"allowed"}"#),
            );
            Action::Continue
        })),
        log: Some(Box::new(move |ctx| {
            seen_in
                .borrow_mut()
                .push(ctx.get_property(vec!["meshsight_allowlist"]));
        })),
        ..Script::default()
    });
    let a = host.new_http_stream();
    let b = host.new_http_stream();
    host.request_headers(a, &[], true);
    host.log(a);
    host.log(b);
    assert_eq!(
        host.stream_property(a, &["meshsight_allowlist"]),
        Some(br#"{"outcome":"allowed"}"#.to_vec())
    );
    assert_eq!(host.stream_property(b, &["meshsight_allowlist"]), None);
    assert_eq!(host.vm_property(&["meshsight_allowlist"]), None);
    assert_eq!(
        *seen.borrow(),
        vec![Some(br#"{"outcome":"allowed"}"#.to_vec()), None]
    );
}

#[test]
fn proxy_set_property_outside_a_stream_is_vm_wide() {
    let seen = slot::<Option<Vec<u8>>>();
    let seen_in = seen.clone();
    let mut host = start(Script {
        configure: Some(Box::new(|root| {
            root.set_property(vec!["meshsight", "version"], Some(b"1"));
            true
        })),
        request_headers: Some(Box::new(move |ctx, _, _| {
            *seen_in.borrow_mut() = ctx.get_property(vec!["meshsight", "version"]);
            Action::Continue
        })),
        ..Script::default()
    });
    assert_eq!(
        host.vm_property(&["meshsight", "version"]),
        Some(b"1".to_vec())
    );
    let id = host.new_http_stream();
    host.request_headers(id, &[], true);
    assert_eq!(*seen.borrow(), Some(b"1".to_vec()));
    host.set_property(&["meshsight", "version"], "2");
    assert_eq!(
        host.property(id, &["meshsight", "version"]),
        Some(b"2".to_vec())
    );
}

#[test]
fn proxy_set_property_to_none_stores_an_empty_value() {
    let seen = slot::<Vec<Option<Vec<u8>>>>();
    let seen_in = seen.clone();
    let mut host = start(Script {
        request_headers: Some(Box::new(move |ctx, _, _| {
            ctx.set_property(vec!["flag"], None);
            seen_in.borrow_mut().push(ctx.get_property(vec!["flag"]));
            Action::Continue
        })),
        ..Script::default()
    });
    let id = host.new_http_stream();
    host.request_headers(id, &[], true);
    // Envoy hands an empty value back as a null buffer: the SDK reports None.
    assert_eq!(*seen.borrow(), vec![None]);
    assert_eq!(host.stream_property(id, &["flag"]), Some(Vec::new()));
}

#[test]
fn plugin_name_and_vm_id_are_properties() {
    let host = probe(Script::default())
        .plugin_name("allowlist")
        .vm_id("meshsight")
        .start()
        .unwrap();
    assert_eq!(
        host.vm_property(&["plugin_name"]),
        Some(b"allowlist".to_vec())
    );
    assert_eq!(
        host.vm_property(&["plugin_vm_id"]),
        Some(b"meshsight".to_vec())
    );
}

#[test]
fn proxy_get_property_response_code_of_a_local_response() {
    let seen = slot::<Vec<Option<Vec<u8>>>>();
    let seen_in = seen.clone();
    let mut host = start(Script {
        request_headers: Some(Box::new(|_, _, _| {
            proxy_wasm::hostcalls::send_http_response(403, vec![], None).unwrap();
            Action::Pause
        })),
        log: Some(Box::new(move |ctx| {
            seen_in
                .borrow_mut()
                .push(ctx.get_property(vec!["response", "code"]));
        })),
        ..Script::default()
    });
    let denied = host.new_http_stream();
    host.request_headers(denied, &[], true);
    host.log(denied);
    let untouched = host.new_http_stream();
    host.log(untouched);
    assert_eq!(
        *seen.borrow(),
        vec![Some(403i64.to_le_bytes().to_vec()), None]
    );
}
