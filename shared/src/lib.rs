//! meshsight's policy crate: everything the filters decide, as plain Rust with no proxy-wasm
//! dependency. Policy JSON is parsed into raw types (by the crate's own reader, not serde: see
//! [`error::json_path`]), then compiled once into immutable, validated values that the filters
//! query per request. The same code runs natively in `cargo test` and inside the Wasm VM (its
//! tests also run on wasm32-unknown-unknown under Node).

pub mod allowlist;
pub mod attack;
pub mod audit;
pub mod clock;
pub mod collector_answer;
pub mod decision;
pub mod error;
pub mod head;
pub mod headers;
pub mod identity;
mod json;
pub mod matching;
pub mod mirror;
pub mod name_set;
pub mod normalize;
pub mod plugin;
pub mod response;
pub mod sampling;
pub mod stable_sort;
#[cfg(test)]
mod test_rng;

pub use error::ConfigError;
