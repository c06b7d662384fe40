//! Host functions: `proxy_grpc_call`, `proxy_grpc_stream`, `proxy_grpc_send`,
//! `proxy_grpc_cancel`, `proxy_grpc_close`, `proxy_get_status`; and gRPC metadata and messages
//! read through the header-map and buffer host functions.

mod probe;

use std::time::Duration;

use probe::{slot, start, Script};
use proxy_wasm::traits::Context;
use proxy_wasm::types::Action;
use proxy_wasm_test_host::GrpcKind;

fn calling(tokens: std::rc::Rc<std::cell::RefCell<Vec<u32>>>) -> Script {
    Script {
        request_headers: Some(Box::new(move |ctx, _, _| {
            let token = ctx
                .dispatch_grpc_call(
                    "authz",
                    "envoy.service.auth.v3.Authorization",
                    "Check",
                    vec![("x-key", b"v".as_slice())],
                    Some(b"request-bytes"),
                    Duration::from_millis(200),
                )
                .unwrap();
            tokens.borrow_mut().push(token);
            Action::Pause
        })),
        ..Script::default()
    }
}

fn streaming(tokens: std::rc::Rc<std::cell::RefCell<Vec<u32>>>) -> Script {
    Script {
        request_headers: Some(Box::new(move |ctx, _, _| {
            let token = ctx
                .open_grpc_stream("sensor", "meshsight.Sensor", "Stream", vec![])
                .unwrap();
            ctx.send_grpc_stream_message(token, Some(b"first"), false);
            ctx.send_grpc_stream_message(token, Some(b"last"), true);
            tokens.borrow_mut().push(token);
            Action::Continue
        })),
        ..Script::default()
    }
}

#[test]
fn proxy_grpc_call_records_the_call() {
    let tokens = slot();
    let mut host = start(calling(tokens.clone()));
    let id = host.new_http_stream();
    host.request_headers(id, &[], true);
    let calls = host.grpc_calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.token, tokens.borrow()[0]);
    assert_eq!(call.kind, GrpcKind::Call);
    assert_eq!(call.upstream, "authz");
    assert_eq!(call.service, "envoy.service.auth.v3.Authorization");
    assert_eq!(call.method, "Check");
    assert_eq!(
        call.initial_metadata,
        vec![("x-key".to_string(), b"v".to_vec())]
    );
    assert_eq!(call.message, b"request-bytes".to_vec());
    assert_eq!(call.timeout, Some(Duration::from_millis(200)));
    assert_eq!(call.context_id, id);
}

#[test]
fn grpc_receive_answers_a_unary_call_with_its_message() {
    let tokens = slot();
    let seen = slot::<Vec<(u32, usize, Option<Vec<u8>>)>>();
    let mut script = calling(tokens.clone());
    let seen_in = seen.clone();
    script.grpc_call_response = Some(Box::new(move |ctx, token, status, size, _| {
        let body = ctx.get_grpc_call_response_body(0, size);
        seen_in.borrow_mut().push((token, status, body));
    }));
    let mut host = start(script);
    let id = host.new_http_stream();
    host.request_headers(id, &[], true);
    let token = tokens.borrow()[0];
    host.grpc_receive(token, b"allowed");
    assert_eq!(*seen.borrow(), vec![(token, 0, Some(b"allowed".to_vec()))]);
}

#[test]
fn proxy_get_status_reports_the_status_a_call_closed_with() {
    let tokens = slot();
    let seen = slot::<Vec<(usize, (u32, Option<String>))>>();
    let mut script = calling(tokens.clone());
    let seen_in = seen.clone();
    script.grpc_call_response = Some(Box::new(move |ctx, _, status, _, _| {
        seen_in.borrow_mut().push((status, ctx.get_grpc_status()));
    }));
    let mut host = start(script);
    let id = host.new_http_stream();
    host.request_headers(id, &[], true);
    host.grpc_close(tokens.borrow()[0], 14, Some("unavailable"));
    assert_eq!(
        *seen.borrow(),
        vec![(14, (14, Some("unavailable".to_string())))]
    );
}

#[test]
fn proxy_grpc_stream_and_send_record_messages() {
    let tokens = slot();
    let mut host = start(streaming(tokens.clone()));
    let id = host.new_http_stream();
    host.request_headers(id, &[], true);
    let call = host.grpc_calls().remove(0);
    assert_eq!(call.token, tokens.borrow()[0]);
    assert_eq!(call.kind, GrpcKind::Stream);
    assert_eq!(
        (call.service.as_str(), call.method.as_str()),
        ("meshsight.Sensor", "Stream")
    );
    assert_eq!(call.timeout, None);
    assert_eq!(
        call.sent,
        vec![(b"first".to_vec(), false), (b"last".to_vec(), true)]
    );
}

#[test]
fn proxy_grpc_send_to_an_unknown_token_is_not_found() {
    let seen = slot::<Vec<Result<(), proxy_wasm::types::Status>>>();
    let seen_in = seen.clone();
    let mut host = start(Script {
        request_headers: Some(Box::new(move |_, _, _| {
            seen_in
                .borrow_mut()
                .push(proxy_wasm::hostcalls::send_grpc_stream_message(
                    999_999, None, true,
                ));
            Action::Continue
        })),
        ..Script::default()
    });
    let id = host.new_http_stream();
    host.request_headers(id, &[], true);
    assert_eq!(
        *seen.borrow(),
        vec![Err(proxy_wasm::types::Status::NotFound)]
    );
}

#[test]
fn stream_callbacks_deliver_metadata_messages_and_close() {
    let tokens = slot();
    let seen = slot::<Vec<String>>();
    let mut script = streaming(tokens.clone());
    let (a, b, c, d) = (seen.clone(), seen.clone(), seen.clone(), seen.clone());
    script.grpc_initial_metadata = Some(Box::new(move |ctx, _, n, _, _| {
        let v = ctx.get_grpc_stream_initial_metadata_value("x-init");
        a.borrow_mut().push(format!("init {n} {v:?}"));
    }));
    script.grpc_message = Some(Box::new(move |ctx, _, size, _, _| {
        let m = ctx.get_grpc_stream_message(0, size);
        b.borrow_mut().push(format!(
            "msg {}",
            String::from_utf8_lossy(&m.unwrap_or_default())
        ));
    }));
    script.grpc_trailing_metadata = Some(Box::new(move |ctx, _, n, _, _| {
        let all = ctx.get_grpc_stream_trailing_metadata();
        c.borrow_mut().push(format!("trail {n} {}", all.len()));
    }));
    script.grpc_stream_close = Some(Box::new(move |ctx, _, status, _, _| {
        d.borrow_mut()
            .push(format!("close {status} {:?}", ctx.get_grpc_status()));
    }));
    let mut host = start(script);
    let id = host.new_http_stream();
    host.request_headers(id, &[], true);
    let token = tokens.borrow()[0];
    host.grpc_receive_initial_metadata(token, &[("x-init", "1")]);
    host.grpc_receive(token, b"hello");
    host.grpc_receive_trailing_metadata(token, &[("grpc-status", "0"), ("x", "y")]);
    host.grpc_close(token, 0, None);
    assert_eq!(
        *seen.borrow(),
        vec![
            "init 1 Some([49])".to_string(),
            "msg hello".to_string(),
            "trail 2 2".to_string(),
            "close 0 (0, None)".to_string(),
        ]
    );
}

#[test]
fn proxy_grpc_cancel_marks_the_call_cancelled() {
    let tokens = slot();
    let mut script = calling(tokens.clone());
    script.request_trailers = Some(Box::new(|ctx, _, _| {
        let token = proxy_wasm::hostcalls::dispatch_grpc_call(
            "authz",
            "S",
            "M",
            vec![],
            None,
            Duration::from_secs(1),
        )
        .unwrap();
        ctx.cancel_grpc_call(token);
        Action::Continue
    }));
    let mut host = start(script);
    let id = host.new_http_stream();
    host.request_headers(id, &[], false);
    host.request_trailers(id, &[]);
    let calls = host.grpc_calls();
    assert_eq!(calls.len(), 2);
    assert!(!calls[0].cancelled);
    assert!(calls[1].cancelled);
}

#[test]
fn proxy_grpc_close_marks_the_stream_closed() {
    let tokens = slot();
    let unknown = slot::<Vec<Result<(), proxy_wasm::types::Status>>>();
    let unknown_in = unknown.clone();
    let mut script = streaming(tokens.clone());
    script.log = Some(Box::new(move |ctx| {
        let token = proxy_wasm::hostcalls::open_grpc_stream("s", "S", "M", vec![]).unwrap();
        ctx.close_grpc_stream(token);
        unknown_in
            .borrow_mut()
            .push(proxy_wasm::hostcalls::close_grpc_stream(4_000_000_000));
    }));
    let mut host = start(script);
    let id = host.new_http_stream();
    host.request_headers(id, &[], true);
    host.log(id);
    let calls = host.grpc_calls();
    assert_eq!(calls.len(), 2);
    assert!(!calls[0].closed);
    assert!(calls[1].closed);
    assert_eq!(
        *unknown.borrow(),
        vec![Err(proxy_wasm::types::Status::NotFound)]
    );
}
