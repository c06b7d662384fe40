//! Host functions: `proxy_set_effective_context`, `proxy_call_foreign_function`, `proxy_done`.

mod probe;

use std::time::Duration;

use probe::{slot, start, Script};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use proxy_wasm_test_host::{HttpCallResponse, Status, CLEAR_ROUTE_CACHE};

#[test]
fn proxy_set_effective_context_switches_the_stream_host_calls_act_on() {
    let seen = slot::<Vec<Option<String>>>();
    let target = slot::<u32>();
    let (seen_in, target_in) = (seen.clone(), target.clone());
    let mut host = start(Script {
        request_headers: Some(Box::new(move |ctx, _, _| {
            let other = *target_in.borrow();
            if other != 0 && other != ctx.id {
                // Act on the other stream, then come back.
                hostcalls::set_effective_context(other).unwrap();
                seen_in
                    .borrow_mut()
                    .push(ctx.get_http_request_header(":path"));
                ctx.set_http_request_header("x-touched", Some("1"));
                hostcalls::set_effective_context(ctx.id).unwrap();
                seen_in
                    .borrow_mut()
                    .push(ctx.get_http_request_header(":path"));
            }
            Action::Continue
        })),
        ..Script::default()
    });
    let a = host.new_http_stream();
    let b = host.new_http_stream();
    host.request_headers(a, &[(":path", "/a")], false);
    *target.borrow_mut() = a;
    host.request_headers(b, &[(":path", "/b")], false);
    assert_eq!(
        *seen.borrow(),
        vec![Some("/a".to_string()), Some("/b".to_string())]
    );
    assert!(host
        .request_header_map(a)
        .contains(&("x-touched".to_string(), "1".to_string())));
    assert!(!host
        .request_header_map(b)
        .iter()
        .any(|(k, _)| k == "x-touched"));
}

#[test]
fn proxy_set_effective_context_to_an_unknown_id_is_bad_argument() {
    let seen = slot::<Vec<Result<(), Status>>>();
    let seen_in = seen.clone();
    let _host = start(Script {
        configure: Some(Box::new(move |root| {
            let mut seen = seen_in.borrow_mut();
            seen.push(hostcalls::set_effective_context(4242));
            seen.push(hostcalls::set_effective_context(root.id));
            true
        })),
        ..Script::default()
    });
    assert_eq!(*seen.borrow(), vec![Err(Status::BadArgument), Ok(())]);
}

#[test]
fn root_callout_response_can_switch_to_a_waiting_stream() {
    // The pattern of a root context answering on behalf of a paused stream.
    let waiting = slot::<u32>();
    let waiting_in = waiting.clone();
    let mut host = start(Script {
        request_headers: Some(Box::new(move |ctx, _, _| {
            *waiting_in.borrow_mut() = ctx.id;
            Action::Pause
        })),
        http_call_response: Some(Box::new({
            let waiting = waiting.clone();
            move |_, _, _, _, _| {
                hostcalls::set_effective_context(*waiting.borrow()).unwrap();
                hostcalls::resume_http_request().unwrap();
            }
        })),
        tick: Some(Box::new(|root| {
            root.dispatch_http_call(
                "c",
                vec![(":method", "GET"), (":path", "/"), (":authority", "c")],
                None,
                vec![],
                Duration::from_secs(1),
            )
            .unwrap();
            true
        })),
        configure: Some(Box::new(|root| {
            hostcalls::set_tick_period(Duration::from_secs(1)).unwrap();
            let _ = root;
            true
        })),
        ..Script::default()
    });
    let id = host.new_http_stream();
    assert_eq!(host.request_headers(id, &[], true), Action::Pause);
    host.tick();
    let token = host.http_calls()[0].token;
    host.respond_http_call(token, HttpCallResponse::status("200", ""));
    assert!(host.request_continued(id));
}

#[test]
fn proxy_call_foreign_function_clear_route_cache_is_recorded_per_stream() {
    let results = slot::<Vec<Result<Option<Vec<u8>>, Status>>>();
    let results_in = results.clone();
    let mut host = start(Script {
        request_headers: Some(Box::new(move |ctx, _, _| {
            if ctx.get_http_request_header("x-reroute").is_some() {
                results_in
                    .borrow_mut()
                    .push(ctx.call_foreign_function(CLEAR_ROUTE_CACHE, None));
            }
            Action::Continue
        })),
        ..Script::default()
    });
    let a = host.new_http_stream();
    let b = host.new_http_stream();
    host.request_headers(a, &[("x-reroute", "1")], true);
    host.request_headers(b, &[], true);
    assert_eq!(*results.borrow(), vec![Ok(None)]);
    assert!(host.route_cache_cleared(a));
    assert!(!host.route_cache_cleared(b));
}

#[test]
fn proxy_call_foreign_function_runs_registered_functions_and_refuses_unknown_ones() {
    let seen = slot::<Vec<Result<Option<Vec<u8>>, Status>>>();
    let seen_in = seen.clone();
    let mut host = start(Script {
        request_headers: Some(Box::new(move |ctx, _, _| {
            let mut seen = seen_in.borrow_mut();
            seen.push(ctx.call_foreign_function("reverse", Some(b"abc")));
            seen.push(ctx.call_foreign_function("no_such_function", None));
            Action::Continue
        })),
        ..Script::default()
    });
    host.register_foreign_function(
        "reverse",
        Box::new(|args| args.iter().rev().copied().collect()),
    );
    let id = host.new_http_stream();
    host.request_headers(id, &[], true);
    assert_eq!(
        *seen.borrow(),
        vec![Ok(Some(b"cba".to_vec())), Err(Status::NotFound)]
    );
}

#[test]
fn proxy_done_is_recorded_after_a_deferred_shutdown() {
    let mut host = start(Script {
        root_done: Some(Box::new(|_| false)),
        tick: Some(Box::new(|root| {
            root.done();
            true
        })),
        configure: Some(Box::new(|_| {
            hostcalls::set_tick_period(Duration::from_millis(10)).unwrap();
            true
        })),
        ..Script::default()
    });
    assert!(!host.shutdown(), "the probe postpones its shutdown");
    assert!(!host.done_called());
    host.tick();
    assert!(host.done_called());
}

#[test]
fn immediate_shutdown_needs_no_proxy_done() {
    let mut host = start(Script::default());
    assert!(host.shutdown());
    assert!(!host.done_called());
}
