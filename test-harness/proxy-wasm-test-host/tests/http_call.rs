//! Host function: `proxy_http_call` (dispatch, validation, failure injection), and the
//! response side it enables: `on_http_call_response` with the call's headers, body and
//! trailers readable through the buffer and header-map host functions.

mod probe;

use std::time::Duration;

use probe::{slot, start, Script};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use proxy_wasm_test_host::{HttpCall, HttpCallResponse, Status};

const GOOD_HEADERS: [(&str, &str); 3] = [
    (":method", "POST"),
    (":path", "/ingest"),
    (":authority", "collector"),
];

fn dispatching(results: std::rc::Rc<std::cell::RefCell<Vec<Result<u32, Status>>>>) -> Script {
    Script {
        request_headers: Some(Box::new(move |ctx, _, _| {
            let headers = match ctx.get_http_request_header("x-bad") {
                Some(_) => vec![(":method", "GET")],
                None => GOOD_HEADERS.to_vec(),
            };
            let r = ctx.dispatch_http_call(
                "collector_cluster",
                headers,
                Some(b"{\"n\":1}"),
                vec![("x-trailer", "t")],
                Duration::from_millis(750),
            );
            results.borrow_mut().push(r);
            Action::Pause
        })),
        ..Script::default()
    }
}

#[test]
fn proxy_http_call_records_the_call_and_returns_its_token() {
    let results = slot();
    let mut host = start(dispatching(results.clone()));
    let id = host.new_http_stream();
    host.request_headers(id, &[], true);
    let token = results.borrow()[0].unwrap();
    assert_eq!(
        host.http_calls(),
        vec![HttpCall {
            token,
            upstream: "collector_cluster".into(),
            headers: GOOD_HEADERS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: b"{\"n\":1}".to_vec(),
            trailers: vec![("x-trailer".into(), "t".into())],
            timeout: Duration::from_millis(750),
            context_id: id,
        }]
    );
}

#[test]
fn proxy_http_call_without_required_pseudo_headers_is_bad_argument() {
    let results = slot();
    let mut host = start(dispatching(results.clone()));
    let id = host.new_http_stream();
    host.request_headers(id, &[("x-bad", "1")], true);
    assert_eq!(*results.borrow(), vec![Err(Status::BadArgument)]);
    assert!(host.http_calls().is_empty());
}

#[test]
fn proxy_http_call_fails_synchronously_when_the_test_says_so() {
    let results = slot();
    let mut host = start(dispatching(results.clone()));
    host.set_http_call_error(Some(Status::InternalFailure));
    let a = host.new_http_stream();
    host.request_headers(a, &[], true);
    host.set_http_call_error(None);
    let b = host.new_http_stream();
    host.request_headers(b, &[], true);
    let results = results.borrow();
    assert_eq!(results[0], Err(Status::InternalFailure));
    assert!(results[1].is_ok());
    assert_eq!(host.http_calls().len(), 1);
}

#[test]
fn respond_http_call_runs_the_callback_in_the_calling_stream() {
    let results = slot();
    let seen = slot::<Vec<String>>();
    let mut script = dispatching(results.clone());
    let seen_in = seen.clone();
    script.http_call_response = Some(Box::new(move |ctx, token, headers, body, trailers| {
        let status = ctx
            .get_http_call_response_header(":status")
            .unwrap_or_default();
        let got_body = ctx.get_http_call_response_body(0, body).unwrap_or_default();
        let all = ctx.get_http_call_response_headers();
        let trailer = ctx.get_http_call_response_trailer("grpc-status");
        seen_in.borrow_mut().push(format!(
            "token={token} n={headers}/{body}/{trailers} status={status} body={} headers={} trailer={trailer:?}",
            String::from_utf8_lossy(&got_body),
            all.len()
        ));
        // The callback runs in the stream that dispatched the call.
        proxy_wasm::hostcalls::resume_http_request().unwrap();
    }));
    let mut host = start(script);
    let id = host.new_http_stream();
    host.request_headers(id, &[], true);
    let token = host.http_calls()[0].token;
    host.respond_http_call(
        token,
        HttpCallResponse {
            headers: vec![(":status", "202"), ("x-a", "b")],
            body: b"accepted".to_vec(),
            trailers: vec![("grpc-status", "0")],
        },
    );
    assert_eq!(
        *seen.borrow(),
        vec![format!(
            "token={token} n=2/8/1 status=202 body=accepted headers=2 trailer=Some(\"0\")"
        )]
    );
    assert!(host.request_continued(id));
    assert!(host.http_calls().is_empty());
    assert_eq!(host.answered_http_calls().len(), 1);
}

#[test]
fn fail_http_call_delivers_an_empty_response() {
    let results = slot();
    let seen = slot::<Vec<(usize, usize, usize, Option<String>)>>();
    let mut script = dispatching(results.clone());
    let seen_in = seen.clone();
    script.http_call_response = Some(Box::new(move |ctx, _, h, b, t| {
        seen_in
            .borrow_mut()
            .push((h, b, t, ctx.get_http_call_response_header(":status")));
    }));
    let mut host = start(script);
    let id = host.new_http_stream();
    host.request_headers(id, &[], true);
    host.fail_http_call(host.http_calls()[0].token);
    assert_eq!(*seen.borrow(), vec![(0, 0, 0, None)]);
}

#[test]
fn http_call_from_the_root_context_is_answered_there() {
    let seen = slot::<Vec<u32>>();
    let seen_in = seen.clone();
    let mut host = start(Script {
        configure: Some(Box::new(|root| {
            root.dispatch_http_call(
                "cluster",
                GOOD_HEADERS.to_vec(),
                None,
                vec![],
                Duration::from_secs(1),
            )
            .unwrap();
            true
        })),
        http_call_response: Some(Box::new(move |_, token, _, _, _| {
            seen_in.borrow_mut().push(token);
        })),
        ..Script::default()
    });
    let call = host.http_calls().remove(0);
    assert_eq!(call.context_id, host.root_context_id());
    host.respond_http_call(call.token, HttpCallResponse::status("200", "ok"));
    assert_eq!(*seen.borrow(), vec![call.token]);
}

#[test]
fn done_cancels_the_streams_unanswered_calls() {
    let results = slot();
    let mut host = start(dispatching(results.clone()));
    let id = host.new_http_stream();
    host.request_headers(id, &[], true);
    assert_eq!(host.http_calls().len(), 1);
    host.done(id);
    assert!(host.http_calls().is_empty());
}
