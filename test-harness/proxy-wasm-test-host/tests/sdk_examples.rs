//! Showcase: the proxy-wasm Rust SDK's own HTTP examples (`http_headers`, `http_auth_random`,
//! `http_config`, `http_body`), each driven through its life cycle as Envoy would drive it:
//! start the plugin with a configuration, open a stream, send headers and bodies, then read the
//! local response, the dispatched calls, the header and body mutations and the logs.

mod sdk;

use proxy_wasm::types::{Action, LogLevel};
use proxy_wasm_test_host::{Host, HttpCallResponse, LogEntry};
use sdk::{http_auth_random, http_body, http_config, http_headers};

fn info(message: &str) -> LogEntry {
    LogEntry {
        level: LogLevel::Info,
        message: message.to_string(),
    }
}

// ----------------------------------------------------------------------------- http_headers

#[test]
fn http_headers_answers_hello_itself_with_its_own_headers() {
    let mut host = Host::builder(http_headers::register).start().unwrap();
    let id = host.new_http_stream();
    let action = host.request_headers(id, &[(":method", "GET"), (":path", "/hello")], true);
    assert_eq!(action, Action::Pause);
    let reply = host.local_response(id).expect("a local response");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"Hello, World!\n");
    assert_eq!(
        reply.headers,
        vec![
            ("Hello".to_string(), "World".to_string()),
            ("Powered-By".to_string(), "proxy-wasm".to_string()),
        ]
    );
}

#[test]
fn http_headers_passes_other_paths_and_logs_every_header_both_ways() {
    let mut host = Host::builder(http_headers::register).start().unwrap();
    let id = host.new_http_stream();
    let action = host.request_headers(
        id,
        &[(":method", "GET"), (":path", "/other"), ("x-user", "ada")],
        true,
    );
    assert_eq!(action, Action::Continue);
    assert_eq!(host.local_response(id), None);
    assert_eq!(
        host.response_headers(id, &[(":status", "204")], true),
        Action::Continue
    );
    host.end_stream(id);
    assert_eq!(
        host.logs(),
        vec![
            info(&format!("#{id} -> :method: GET")),
            info(&format!("#{id} -> :path: /other")),
            info(&format!("#{id} -> x-user: ada")),
            info(&format!("#{id} <- :status: 204")),
            info(&format!("#{id} completed.")),
        ]
    );
}

#[test]
fn http_headers_streams_get_their_own_context_ids() {
    let mut host = Host::builder(http_headers::register).start().unwrap();
    let (a, b) = (host.new_http_stream(), host.new_http_stream());
    assert_ne!(a, b);
    host.request_headers(b, &[(":path", "/hello")], true);
    host.request_headers(a, &[(":path", "/x")], true);
    assert_eq!(host.local_response(a), None);
    assert_eq!(host.local_response(b).map(|r| r.status), Some(200));
    assert_eq!(host.logs_containing(&format!("#{a} -> :path")).len(), 1);
}

// ------------------------------------------------------------------------- http_auth_random

#[test]
fn http_auth_random_pauses_the_request_on_a_callout_to_httpbin() {
    let mut host = Host::builder(http_auth_random::register).start().unwrap();
    let id = host.new_http_stream();
    let action = host.request_headers(id, &[(":method", "GET"), (":path", "/")], true);
    assert_eq!(action, Action::Pause);
    let calls = host.http_calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.upstream, "httpbin");
    assert_eq!(call.context_id, id);
    assert_eq!(call.timeout, std::time::Duration::from_secs(1));
    assert_eq!(
        call.headers,
        vec![
            (":method".to_string(), "GET".to_string()),
            (":path".to_string(), "/bytes/1".to_string()),
            (":authority".to_string(), "httpbin.org".to_string()),
        ]
    );
    assert!(!host.request_continued(id));
}

#[test]
fn http_auth_random_resumes_on_an_even_byte_and_marks_the_response() {
    let mut host = Host::builder(http_auth_random::register).start().unwrap();
    let id = host.new_http_stream();
    host.request_headers(id, &[(":path", "/")], true);
    let token = host.http_calls()[0].token;
    host.respond_http_call(token, HttpCallResponse::status("200", [42u8]));
    assert!(host.request_continued(id));
    assert_eq!(host.local_response(id), None);
    assert!(host.http_calls().is_empty(), "the call was answered");
    assert_eq!(host.logs_containing("Access granted."), ["Access granted."]);
    host.response_headers(id, &[(":status", "200")], true);
    assert!(host
        .response_header_map(id)
        .contains(&("powered-by".to_string(), "proxy-wasm".to_string())));
}

#[test]
fn http_auth_random_answers_403_on_an_odd_byte_or_an_empty_body() {
    for body in [vec![7u8], vec![]] {
        let mut host = Host::builder(http_auth_random::register).start().unwrap();
        let id = host.new_http_stream();
        host.request_headers(id, &[(":path", "/")], true);
        let token = host.http_calls()[0].token;
        host.respond_http_call(token, HttpCallResponse::status("200", body.clone()));
        let reply = host.local_response(id).expect("403");
        assert_eq!(reply.status, 403, "body {body:?}");
        assert_eq!(reply.body, b"Access forbidden.\n");
        assert!(!host.request_continued(id));
        assert_eq!(host.logs_containing("Access"), ["Access forbidden."]);
    }
}

#[test]
fn http_auth_random_forbids_when_the_callout_fails() {
    let mut host = Host::builder(http_auth_random::register).start().unwrap();
    let id = host.new_http_stream();
    host.request_headers(id, &[(":path", "/")], true);
    let token = host.http_calls()[0].token;
    host.fail_http_call(token);
    assert_eq!(host.local_response(id).map(|r| r.status), Some(403));
}

// ------------------------------------------------------------------------------ http_config

#[test]
fn http_config_adds_the_plugin_configuration_as_a_response_header() {
    let mut host = Host::builder(http_config::register)
        .plugin_config("from the plugin config")
        .start()
        .unwrap();
    let id = host.new_http_stream();
    assert_eq!(
        host.request_headers(id, &[(":path", "/")], true),
        Action::Continue
    );
    host.response_headers(id, &[(":status", "200"), ("custom-header", "first")], true);
    let values: Vec<String> = host
        .response_header_map(id)
        .into_iter()
        .filter(|(name, _)| name == "custom-header")
        .map(|(_, value)| value)
        .collect();
    // add_http_response_header appends: the upstream's value stays.
    assert_eq!(values, ["first", "from the plugin config"]);
}

#[test]
fn http_config_without_a_configuration_adds_an_empty_header() {
    let mut host = Host::builder(http_config::register).start().unwrap();
    let id = host.new_http_stream();
    host.response_headers(id, &[(":status", "200")], true);
    assert!(host
        .response_header_map(id)
        .contains(&("custom-header".to_string(), String::new())));
}

#[test]
fn http_config_refuses_a_configuration_that_is_not_utf8() {
    let Err(refused) = Host::builder(http_config::register)
        .plugin_config([0xff, 0xfe])
        .start()
    else {
        panic!("started with a configuration that is not UTF-8");
    };
    assert_eq!(refused.callback(), "proxy_on_configure");
}

// -------------------------------------------------------------------------------- http_body

#[test]
fn http_body_redacts_a_secret_once_the_whole_body_is_buffered() {
    let mut host = Host::builder(http_body::register).start().unwrap();
    let id = host.new_http_stream();
    host.request_headers(id, &[(":path", "/")], true);
    host.response_headers(id, &[(":status", "200"), ("content-length", "25")], false);
    assert!(
        !host
            .response_header_map(id)
            .iter()
            .any(|(name, _)| name == "content-length"),
        "content-length removed"
    );
    assert_eq!(host.response_body(id, b"the secret ", false), Action::Pause);
    assert_eq!(
        host.response_body(id, b"is 42, ok?", true),
        Action::Continue
    );
    assert_eq!(
        host.response_body_buffer(id),
        b"Original message body (21 bytes) redacted.\n"
    );
}

#[test]
fn http_body_passes_a_body_without_a_secret_unchanged() {
    let mut host = Host::builder(http_body::register).start().unwrap();
    let id = host.new_http_stream();
    host.response_headers(id, &[(":status", "200")], false);
    assert_eq!(host.response_body(id, b"nothing ", false), Action::Pause);
    assert_eq!(host.response_body(id, b"to see", true), Action::Continue);
    assert_eq!(host.response_body_buffer(id), b"nothing to see");
}
