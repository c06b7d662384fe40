//! Host functions: `proxy_get_header_map_pairs`, `proxy_set_header_map_pairs`,
//! `proxy_get_header_map_value`, `proxy_replace_header_map_value`,
//! `proxy_remove_header_map_value`, `proxy_add_header_map_value`.

mod probe;

use probe::{slot, start, Script};
use proxy_wasm::traits::HttpContext;
use proxy_wasm::types::Action;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn proxy_get_header_map_pairs_returns_all_request_headers_in_order() {
    let seen = slot::<Vec<(String, String)>>();
    let count = slot::<usize>();
    let (seen_in, count_in) = (seen.clone(), count.clone());
    let mut host = start(Script {
        request_headers: Some(Box::new(move |ctx, n, _| {
            *seen_in.borrow_mut() = ctx.get_http_request_headers();
            *count_in.borrow_mut() = n;
            Action::Continue
        })),
        ..Script::default()
    });
    let id = host.new_http_stream();
    let headers = [
        (":method", "GET"),
        (":path", "/a?b=1"),
        ("X-Token", "t"),
        ("x-token", "u"),
    ];
    assert_eq!(host.request_headers(id, &headers, true), Action::Continue);
    assert_eq!(
        *seen.borrow(),
        pairs(&[
            (":method", "GET"),
            (":path", "/a?b=1"),
            ("x-token", "t"),
            ("x-token", "u")
        ]),
        "names are lower-cased, duplicates kept in order"
    );
    assert_eq!(*count.borrow(), 4);
}

#[test]
fn proxy_get_header_map_pairs_covers_response_headers_and_both_trailers() {
    let seen = slot::<Vec<Vec<(String, String)>>>();
    let (a, b, c) = (seen.clone(), seen.clone(), seen.clone());
    let mut host = start(Script {
        request_trailers: Some(Box::new(move |ctx, _, _| {
            a.borrow_mut().push(ctx.get_http_request_trailers());
            Action::Continue
        })),
        response_headers: Some(Box::new(move |ctx, _, _| {
            b.borrow_mut().push(ctx.get_http_response_headers());
            Action::Continue
        })),
        response_trailers: Some(Box::new(move |ctx, _, _| {
            c.borrow_mut().push(ctx.get_http_response_trailers());
            Action::Continue
        })),
        ..Script::default()
    });
    let id = host.new_http_stream();
    host.request_headers(id, &[(":path", "/")], false);
    host.request_trailers(id, &[("grpc-status", "0")]);
    host.response_headers(id, &[(":status", "200")], false);
    host.response_trailers(id, &[("x-end", "1")]);
    assert_eq!(
        *seen.borrow(),
        vec![
            pairs(&[("grpc-status", "0")]),
            pairs(&[(":status", "200")]),
            pairs(&[("x-end", "1")])
        ]
    );
}

#[test]
fn proxy_set_header_map_pairs_replaces_the_map() {
    let mut host = start(Script {
        request_headers: Some(Box::new(|ctx, _, _| {
            // Envoy keeps pseudo-headers in front whatever order they are given in.
            ctx.set_http_request_headers(vec![("X-New", "1"), (":path", "/rewritten")]);
            Action::Continue
        })),
        response_headers: Some(Box::new(|ctx, _, _| {
            ctx.set_http_response_headers(vec![(":status", "404")]);
            Action::Continue
        })),
        ..Script::default()
    });
    let id = host.new_http_stream();
    host.request_headers(id, &[(":path", "/orig"), ("cookie", "c")], true);
    host.response_headers(id, &[(":status", "200"), ("server", "x")], true);
    assert_eq!(
        host.request_header_map(id),
        pairs(&[(":path", "/rewritten"), ("x-new", "1")])
    );
    assert_eq!(host.response_header_map(id), pairs(&[(":status", "404")]));
}

#[test]
fn proxy_get_header_map_value_is_case_insensitive_and_none_when_absent() {
    let seen = slot::<Vec<Option<String>>>();
    let seen_in = seen.clone();
    let mut host = start(Script {
        request_headers: Some(Box::new(move |ctx, _, _| {
            let mut seen = seen_in.borrow_mut();
            seen.push(ctx.get_http_request_header("X-Forwarded-For"));
            seen.push(ctx.get_http_request_header("missing"));
            seen.push(ctx.get_http_request_header("x-empty"));
            seen.push(ctx.get_http_request_header("dup"));
            Action::Continue
        })),
        ..Script::default()
    });
    let id = host.new_http_stream();
    host.request_headers(
        id,
        &[
            ("x-forwarded-for", "10.0.0.1"),
            ("x-empty", ""),
            ("dup", "first"),
            ("dup", "second"),
        ],
        true,
    );
    assert_eq!(
        *seen.borrow(),
        vec![
            Some("10.0.0.1".to_string()),
            None,
            Some(String::new()),
            Some("first".to_string())
        ]
    );
}

#[test]
fn proxy_get_header_map_value_bytes_keeps_non_utf8_values() {
    let seen = slot::<Option<Vec<u8>>>();
    let seen_in = seen.clone();
    let mut host = start(Script {
        request_headers: Some(Box::new(move |ctx, _, _| {
            ctx.set_http_request_header_bytes("x-raw", Some(&[0xff, 0x00, 0x41]));
            *seen_in.borrow_mut() = ctx.get_http_request_header_bytes("x-raw");
            Action::Continue
        })),
        ..Script::default()
    });
    let id = host.new_http_stream();
    host.request_headers(id, &[], true);
    assert_eq!(*seen.borrow(), Some(vec![0xff, 0x00, 0x41]));
}

#[test]
fn proxy_replace_header_map_value_sets_one_value_or_adds() {
    let mut host = start(Script {
        request_headers: Some(Box::new(|ctx, _, _| {
            ctx.set_http_request_header("Dup", Some("only"));
            ctx.set_http_request_header("x-added", Some("yes"));
            Action::Continue
        })),
        ..Script::default()
    });
    let id = host.new_http_stream();
    host.request_headers(id, &[("dup", "1"), ("a", "b"), ("dup", "2")], true);
    assert_eq!(
        host.request_header_map(id),
        pairs(&[("a", "b"), ("dup", "only"), ("x-added", "yes")]),
        "Envoy's setCopy removes every old value and adds the new one at the end"
    );
}

#[test]
fn proxy_remove_header_map_value_removes_every_value() {
    let mut host = start(Script {
        request_headers: Some(Box::new(|ctx, _, _| {
            ctx.remove_http_request_header("X-Dup");
            ctx.remove_http_request_header("not-there");
            ctx.set_http_request_header("cookie", None);
            Action::Continue
        })),
        ..Script::default()
    });
    let id = host.new_http_stream();
    host.request_headers(
        id,
        &[
            ("x-dup", "1"),
            ("keep", "k"),
            ("x-dup", "2"),
            ("cookie", "c"),
        ],
        true,
    );
    assert_eq!(host.request_header_map(id), pairs(&[("keep", "k")]));
}

#[test]
fn proxy_add_header_map_value_appends() {
    let mut host = start(Script {
        response_headers: Some(Box::new(|ctx, _, _| {
            ctx.add_http_response_header("Set-Cookie", "b=2");
            ctx.add_http_response_trailer("x-trailer", "t");
            Action::Continue
        })),
        ..Script::default()
    });
    let id = host.new_http_stream();
    host.request_headers(id, &[], true);
    host.response_headers(id, &[(":status", "200"), ("set-cookie", "a=1")], false);
    assert_eq!(
        host.response_header_map(id),
        pairs(&[
            (":status", "200"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2")
        ])
    );
    assert_eq!(host.response_trailer_map(id), pairs(&[("x-trailer", "t")]));
}

#[test]
fn each_stream_has_its_own_headers() {
    let seen = slot::<Vec<Option<String>>>();
    let seen_in = seen.clone();
    let mut host = start(Script {
        log: Some(Box::new(move |ctx| {
            seen_in
                .borrow_mut()
                .push(ctx.get_http_request_header(":path"));
        })),
        ..Script::default()
    });
    let a = host.new_http_stream();
    let b = host.new_http_stream();
    host.request_headers(a, &[(":path", "/a")], true);
    host.request_headers(b, &[(":path", "/b")], true);
    host.log(b);
    host.log(a);
    assert_eq!(
        *seen.borrow(),
        vec![Some("/b".to_string()), Some("/a".to_string())]
    );
}
