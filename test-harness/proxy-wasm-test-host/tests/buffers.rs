//! Host functions: `proxy_get_buffer_bytes`, `proxy_set_buffer_bytes` (plugin and VM
//! configuration, request and response bodies with Envoy's buffering).

mod probe;

use probe::{probe, slot, start, Script};
use proxy_wasm::traits::{HttpContext, RootContext};
use proxy_wasm::types::Action;

#[test]
fn proxy_get_buffer_bytes_reads_plugin_and_vm_configuration() {
    let seen = slot::<Vec<Option<Vec<u8>>>>();
    let (a, b) = (seen.clone(), seen.clone());
    let _host = probe(Script {
        vm_start: Some(Box::new(move |root| {
            a.borrow_mut().push(root.get_vm_configuration());
            true
        })),
        configure: Some(Box::new(move |root| {
            b.borrow_mut().push(root.get_plugin_configuration());
            true
        })),
        ..Script::default()
    })
    .plugin_config(r#"{"mode":"enforce"}"#)
    .vm_config("vm-settings")
    .start()
    .unwrap();
    assert_eq!(
        *seen.borrow(),
        vec![
            Some(b"vm-settings".to_vec()),
            Some(br#"{"mode":"enforce"}"#.to_vec())
        ]
    );
}

#[test]
fn proxy_get_buffer_bytes_empty_configuration_is_none() {
    let seen = slot::<Option<Option<Vec<u8>>>>();
    let seen_in = seen.clone();
    let _host = start(Script {
        configure: Some(Box::new(move |root| {
            *seen_in.borrow_mut() = Some(root.get_plugin_configuration());
            true
        })),
        ..Script::default()
    });
    assert_eq!(*seen.borrow(), Some(None));
}

#[test]
fn proxy_get_buffer_bytes_honours_start_and_max_size() {
    let seen = slot::<Vec<Option<Vec<u8>>>>();
    let seen_in = seen.clone();
    let mut host = start(Script {
        request_body: Some(Box::new(move |ctx, size, _| {
            let mut seen = seen_in.borrow_mut();
            seen.push(ctx.get_http_request_body(0, size));
            seen.push(ctx.get_http_request_body(2, 3));
            seen.push(ctx.get_http_request_body(8, 100));
            seen.push(ctx.get_http_request_body(50, 1));
            Action::Continue
        })),
        ..Script::default()
    });
    let id = host.new_http_stream();
    host.request_headers(id, &[], false);
    host.request_body(id, b"0123456789", true);
    assert_eq!(
        *seen.borrow(),
        vec![
            Some(b"0123456789".to_vec()),
            Some(b"234".to_vec()),
            Some(b"89".to_vec()),
            None
        ]
    );
}

#[test]
fn proxy_get_buffer_bytes_sees_buffered_chunks_while_paused() {
    let seen = slot::<Vec<(usize, bool, Vec<u8>)>>();
    let seen_in = seen.clone();
    let mut host = start(Script {
        request_body: Some(Box::new(move |ctx, size, eos| {
            let body = ctx.get_http_request_body(0, size).unwrap_or_default();
            seen_in.borrow_mut().push((size, eos, body));
            if eos {
                Action::Continue
            } else {
                Action::Pause
            }
        })),
        response_body: Some(Box::new(|_, _, _| Action::Continue)),
        ..Script::default()
    });
    let id = host.new_http_stream();
    host.request_headers(id, &[], false);
    assert_eq!(host.request_body(id, b"ab", false), Action::Pause);
    assert_eq!(host.request_body(id, b"cd", false), Action::Pause);
    assert_eq!(host.request_body(id, b"ef", true), Action::Continue);
    assert_eq!(
        *seen.borrow(),
        vec![
            (2, false, b"ab".to_vec()),
            (4, false, b"abcd".to_vec()),
            (6, true, b"abcdef".to_vec())
        ]
    );
    assert_eq!(host.request_body_buffer(id), b"abcdef".to_vec());
}

#[test]
fn proxy_get_buffer_bytes_after_continue_sees_only_the_new_chunk() {
    let seen = slot::<Vec<Vec<u8>>>();
    let seen_in = seen.clone();
    let mut host = start(Script {
        response_body: Some(Box::new(move |ctx, size, _| {
            seen_in
                .borrow_mut()
                .push(ctx.get_http_response_body(0, size).unwrap_or_default());
            Action::Continue
        })),
        ..Script::default()
    });
    let id = host.new_http_stream();
    host.response_headers(id, &[(":status", "200")], false);
    host.response_body(id, b"one", false);
    host.response_body(id, b"two", true);
    assert_eq!(*seen.borrow(), vec![b"one".to_vec(), b"two".to_vec()]);
    assert_eq!(host.response_body_buffer(id), b"onetwo".to_vec());
}

#[test]
fn proxy_set_buffer_bytes_replaces_prepends_and_appends() {
    let mut host = start(Script {
        request_body: Some(Box::new(|ctx, size, _| {
            // Replace the whole chunk, then prepend and append, as Envoy allows.
            ctx.set_http_request_body(0, size, b"REDACTED");
            ctx.set_http_request_body(0, 0, b"<");
            ctx.set_http_request_body(usize::MAX, 0, b">");
            Action::Continue
        })),
        response_body: Some(Box::new(|ctx, _, _| {
            ctx.set_http_response_body(0, 2, b"XY");
            Action::Continue
        })),
        ..Script::default()
    });
    let id = host.new_http_stream();
    host.request_headers(id, &[], false);
    host.request_body(id, b"card=4111111111111111", true);
    assert_eq!(host.request_body_buffer(id), b"<REDACTED>".to_vec());
    host.response_headers(id, &[], false);
    host.response_body(id, b"abcd", true);
    assert_eq!(host.response_body_buffer(id), b"XYcd".to_vec());
}

#[test]
fn proxy_get_buffer_bytes_outside_a_stream_finds_no_body() {
    let seen = slot::<Option<Option<Vec<u8>>>>();
    let seen_in = seen.clone();
    let mut host = start(Script {
        tick: Some(Box::new(move |_| {
            *seen_in.borrow_mut() = Some(
                proxy_wasm::hostcalls::get_buffer(
                    proxy_wasm::types::BufferType::HttpRequestBody,
                    0,
                    10,
                )
                .unwrap(),
            );
            true
        })),
        configure: Some(Box::new(|root| {
            root.set_tick_period(std::time::Duration::from_secs(1));
            true
        })),
        ..Script::default()
    });
    host.tick();
    assert_eq!(*seen.borrow(), Some(None));
}
