//! Host functions: `proxy_send_local_response`, `proxy_continue_stream`, `proxy_close_stream`;
//! and the stream life cycle (actions, on_log, on_done).

mod probe;

use probe::{slot, start, Script};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, GrpcStatusCode};
use proxy_wasm_test_host::LocalResponse;

#[test]
fn proxy_send_local_response_is_recorded_with_headers_body_and_details() {
    let mut host = start(Script {
        request_headers: Some(Box::new(|ctx, _, _| {
            if ctx.get_http_request_header(":path").as_deref() == Some("/admin") {
                ctx.send_http_response(403, vec![("x-meshsight", "denied")], Some(b"forbidden"));
                return Action::Pause;
            }
            Action::Continue
        })),
        ..Script::default()
    });
    let denied = host.new_http_stream();
    let allowed = host.new_http_stream();
    assert_eq!(
        host.request_headers(denied, &[(":path", "/admin")], true),
        Action::Pause
    );
    assert_eq!(
        host.request_headers(allowed, &[(":path", "/")], true),
        Action::Continue
    );
    assert_eq!(
        host.local_response(denied),
        Some(LocalResponse {
            status: 403,
            headers: vec![("x-meshsight".to_string(), "denied".to_string())],
            body: b"forbidden".to_vec(),
            details: String::new(),
        })
    );
    assert_eq!(host.local_response_grpc_status(denied), None);
    assert_eq!(host.local_response(allowed), None);
}

#[test]
fn proxy_send_local_response_first_one_wins_and_grpc_status_is_kept() {
    let mut host = start(Script {
        request_headers: Some(Box::new(|ctx, _, _| {
            ctx.send_grpc_response(GrpcStatusCode::PermissionDenied, Some("no"), vec![]);
            ctx.send_http_response(500, vec![], None);
            Action::Pause
        })),
        ..Script::default()
    });
    let id = host.new_http_stream();
    host.request_headers(id, &[], true);
    let response = host.local_response(id).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"no".to_vec());
    assert_eq!(
        host.local_response_grpc_status(id),
        Some(GrpcStatusCode::PermissionDenied as i32)
    );
}

#[test]
fn proxy_continue_stream_records_resumed_request_and_response() {
    let mut host = start(Script {
        request_headers: Some(Box::new(|_, _, _| Action::Pause)),
        request_body: Some(Box::new(|ctx, _, _| {
            ctx.resume_http_request();
            Action::Continue
        })),
        response_headers: Some(Box::new(|ctx, _, _| {
            ctx.resume_http_response();
            Action::Continue
        })),
        ..Script::default()
    });
    let id = host.new_http_stream();
    assert_eq!(host.request_headers(id, &[], false), Action::Pause);
    assert!(!host.stream_continued(id));
    host.request_body(id, b"x", true);
    assert!(host.request_continued(id));
    assert!(!host.response_continued(id));
    host.response_headers(id, &[(":status", "200")], true);
    assert!(host.response_continued(id));
    assert!(host.stream_continued(id));
}

#[test]
fn proxy_close_stream_records_a_reset() {
    let mut host = start(Script {
        request_headers: Some(Box::new(|ctx, _, _| {
            if ctx.get_http_request_header("x-reset").is_some() {
                ctx.reset_http_request();
            }
            Action::Pause
        })),
        response_headers: Some(Box::new(|ctx, _, _| {
            ctx.reset_http_response();
            Action::Pause
        })),
        ..Script::default()
    });
    let a = host.new_http_stream();
    let b = host.new_http_stream();
    let c = host.new_http_stream();
    host.request_headers(a, &[("x-reset", "1")], true);
    host.request_headers(b, &[], true);
    host.request_headers(c, &[], true);
    host.response_headers(c, &[], true);
    assert!(host.stream_closed(a));
    assert!(!host.stream_closed(b));
    assert!(host.stream_closed(c));
}

#[test]
fn log_and_done_run_in_order_and_state_stays_readable() {
    let events = slot::<Vec<String>>();
    let (a, b) = (events.clone(), events.clone());
    let mut host = start(Script {
        request_headers: Some(Box::new(|ctx, _, _| {
            ctx.send_http_response(403, vec![], None);
            Action::Pause
        })),
        log: Some(Box::new(move |ctx| {
            let path = ctx.get_http_request_header(":path").unwrap_or_default();
            a.borrow_mut().push(format!("log {} {path}", ctx.id));
        })),
        http_done: Some(Box::new(move |ctx| {
            b.borrow_mut().push(format!("done {}", ctx.id));
        })),
        ..Script::default()
    });
    let id = host.new_http_stream();
    host.request_headers(id, &[(":path", "/x")], true);
    host.log(id);
    host.done(id);
    assert_eq!(
        *events.borrow(),
        vec![format!("log {id} /x"), format!("done {id}")]
    );
    assert_eq!(host.local_response(id).map(|r| r.status), Some(403));
}

#[test]
#[should_panic(expected = "already done")]
fn driving_a_done_stream_panics() {
    let mut host = start(Script::default());
    let id = host.new_http_stream();
    host.done(id);
    host.request_headers(id, &[], true);
}

#[test]
fn end_stream_runs_done_log_delete_in_envoys_order() {
    let events = slot::<Vec<String>>();
    let (a, b) = (events.clone(), events.clone());
    let mut host = start(Script {
        log: Some(Box::new(move |ctx| {
            // Access-log time: headers are still readable.
            let path = ctx.get_http_request_header(":path").unwrap_or_default();
            a.borrow_mut().push(format!("log {path}"));
        })),
        http_done: Some(Box::new(move |_| b.borrow_mut().push("done".to_string()))),
        ..Script::default()
    });
    let id = host.new_http_stream();
    host.request_headers(id, &[(":path", "/x")], true);
    host.end_stream(id);
    assert_eq!(*events.borrow(), vec!["done", "log /x"]);
    assert!(!host.stream_closed(id));
}

#[test]
fn encode_local_response_runs_the_response_path_with_the_local_reply() {
    let seen = slot::<Vec<String>>();
    let (a, b) = (seen.clone(), seen.clone());
    let mut host = start(Script {
        request_headers: Some(Box::new(|ctx, _, _| {
            ctx.send_http_response(403, vec![("x-why", "policy")], Some(b"denied"));
            Action::Pause
        })),
        response_headers: Some(Box::new(move |ctx, _, eos| {
            let headers = ctx.get_http_response_headers();
            a.borrow_mut()
                .push(format!("headers eos={eos} {headers:?}"));
            Action::Continue
        })),
        response_body: Some(Box::new(move |ctx, size, eos| {
            let body = ctx.get_http_response_body(0, size).unwrap_or_default();
            b.borrow_mut()
                .push(format!("body eos={eos} {}", String::from_utf8_lossy(&body)));
            Action::Continue
        })),
        ..Script::default()
    });
    let quiet = host.new_http_stream();
    assert_eq!(host.encode_local_response(quiet), None);
    assert!(!host.stream_answered(quiet));
    let id = host.new_http_stream();
    host.request_headers(id, &[], true);
    assert!(host.stream_answered(id));
    assert_eq!(host.encode_local_response(id), Some(Action::Continue));
    assert_eq!(
        *seen.borrow(),
        vec![
            "headers eos=false [(\":status\", \"403\"), (\"x-why\", \"policy\"), (\"content-length\", \"6\"), (\"content-type\", \"text/plain\")]".to_string(),
            "body eos=true denied".to_string(),
        ]
    );
}

#[test]
fn host_calls_are_counted_per_context_in_order() {
    let mut host = start(Script {
        configure: Some(Box::new(|ctx| {
            ctx.set_tick_period(std::time::Duration::from_secs(1));
            true
        })),
        tick: Some(Box::new(|ctx| {
            let _ = ctx.get_current_time();
            true
        })),
        request_headers: Some(Box::new(|ctx, _, _| {
            let _ = ctx.get_http_request_header(":path");
            ctx.set_property(vec!["verdict"], Some(b"ok"));
            Action::Continue
        })),
        ..Script::default()
    });
    let first = host.new_http_stream();
    let quiet = host.new_http_stream();
    host.request_headers(first, &[(":path", "/")], true);
    assert_eq!(
        host.host_calls(first),
        vec!["proxy_get_header_map_value", "proxy_set_property"]
    );
    // Another stream's calls are its own; a stream that made none has none.
    assert!(host.host_calls(quiet).is_empty());
    let root = host.root_context_id();
    let before = host.host_calls(root).len();
    host.tick();
    let root_calls = host.host_calls(root);
    assert_eq!(root_calls.len(), before + 1);
    assert_eq!(
        root_calls.last(),
        Some(&"proxy_get_current_time_nanoseconds")
    );
}
