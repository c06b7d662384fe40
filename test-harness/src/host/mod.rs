//! A native implementation of the proxy-wasm ABI 0.2.1 host functions, driving a filter's real
//! SDK dispatcher in plain `cargo test`.
