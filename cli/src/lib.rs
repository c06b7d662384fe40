//! The `meshsight` command line, as a library: every command is a function over the policy
//! crate (`meshsight-policy`) that the module runs, so the answers here are the module's
//! answers. `check` compiles a policy as the module does and analyses its rules; `explain`
//! runs one request through the module's one pass; `replay` judges recorded audit records
//! against a candidate policy; `learn` proposes an allowlist from records gathered in
//! `monitor` mode; `istio` renders the WasmPlugin for a policy. `src/main.rs` only parses
//! arguments and prints.

#![forbid(unsafe_code)]

pub mod check;
pub mod error;
pub mod evaluate;
pub mod istio;
pub mod learn;
pub mod policy;
pub mod quality;
pub mod records;
pub mod replay;
pub mod request;
pub mod signatures;
pub mod traffic;

pub use error::{CliError, RecordError};
