//! The proxy-wasm Rust SDK's own HTTP examples (`examples/http_*` in
//! github.com/proxy-wasm/proxy-wasm-rust-sdk), re-written as plain modules with a `register()`
//! in place of `proxy_wasm::main!`, so each links into a test binary and runs on the host as it
//! would in Envoy. Behaviour is the SDK's; the host knows nothing about them.
#![allow(dead_code)]

pub mod http_auth_random;
pub mod http_body;
pub mod http_config;
pub mod http_headers;
