//! The mirror policy as written in the plugin configuration (JSON), before validation.
//!
//! Every struct refuses unknown fields, so a typo is an error that names its JSON path.

use serde::Deserialize;

pub use super::signatures::pack::RawPack;
use std::collections::BTreeMap;

pub use crate::matching::{RawHeaderMatch, RawPathMatch, RawRequestMatch, RawSources};

/// Default for `max_body_bytes`: 16 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024;
/// Default decision header name for `header` delivery.
pub const DEFAULT_DECISION_HEADER: &str = "x-meshsight-mirror";

/// The whole policy document.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMirrorPolicy {
    /// Named sensors.
    pub targets: BTreeMap<String, RawTarget>,
    /// Target used by rules and signatures that name none; optional when there is one target.
    #[serde(default)]
    pub default_target: Option<String>,
    /// Rules, first match wins.
    #[serde(default)]
    pub rules: Vec<RawRule>,
    /// Exploit-indicator signatures.
    #[serde(default)]
    pub signatures: RawSignatures,
    /// Most request-body bytes read for inspection and copied in `dispatch` mode.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Hold the request headers while the body is inspected, so that a body-only signature hit
    /// can still set the decision header (`header` targets). Needs
    /// `allow_on_headers_stop_iteration: true` in Envoy's Wasm plugin config: without it Envoy
    /// turns the pause into StopAllIteration and the request never resumes. When `false`, the
    /// request flows and such a late copy is sent by HTTP call to the target's cluster instead.
    #[serde(default)]
    pub hold_for_body: bool,
    /// Longest a request is held for its body, in milliseconds (1 to 30000, default 250). Past
    /// it the request is let go with what was read: a denied one gets its reply, an allowed one
    /// goes on. When holds keep running out before any body arrives (the proxy lacks
    /// `allow_on_headers_stop_iteration`), the worker stops holding and says so once.
    #[serde(default = "default_hold_timeout_ms")]
    pub hold_timeout_ms: u64,
    /// Copy a request the allowlist answered locally (403/400) when a signature matched it, by
    /// HTTP call to the signature target's cluster (even a `header` target: no route sees a
    /// denied request), within the rate cap; with `hold_for_body` its body is read (and
    /// scanned and copied) first. Rules and samples never select a denied request. On by
    /// default: the attacks an allowlist stops are the ones a SOC most wants to see.
    #[serde(default = "yes")]
    pub copy_denied: bool,
    /// Response rules and when responses are scanned (absent: no response is read).
    #[serde(default)]
    pub responses: Option<crate::response::raw::RawResponses>,
}

fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

fn default_hold_timeout_ms() -> u64 {
    super::hold::DEFAULT_HOLD_TIMEOUT_MS
}

/// How a copy reaches a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Set the decision header; an Envoy route / Istio VirtualService mirrors on it.
    Header,
    /// The filter sends the copy itself with an HTTP call to the target's cluster.
    Dispatch,
}

/// One named sensor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// Envoy cluster of the sensor (used by `dispatch`; documentation for `header`).
    pub cluster: String,
    /// `header` or `dispatch`.
    pub delivery: Delivery,
    /// Most copies per second per worker (token bucket); excess is counted, never queued.
    #[serde(default = "default_max_rps")]
    pub max_rps: f64,
    /// Bucket size (copies that may go at once after a quiet spell); defaults to `max_rps`.
    #[serde(default)]
    pub burst: Option<f64>,
    /// Decision header name (`header` delivery).
    #[serde(default)]
    pub header: Option<String>,
    /// Whether `dispatch` copies keep `authorization`, `cookie` and `proxy-authorization`.
    #[serde(default)]
    pub include_secrets: bool,
    /// Timeout of a `dispatch` call.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Most `dispatch` calls in flight per worker; more are dropped and counted.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: u32,
    /// `:authority` of `dispatch` copies; defaults to the original request's.
    #[serde(default)]
    pub authority: Option<String>,
}

fn default_max_rps() -> f64 {
    100.0
}
fn default_timeout_ms() -> u64 {
    1000
}
fn default_max_in_flight() -> u32 {
    64
}

/// One rule: a selector, an action and a target. The selector's fields mean what they mean in
/// an allowlist rule (see [`crate::matching`]): an absent field matches anything, an empty list
/// or object is an error.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Rule name, reported in the decision.
    pub name: String,
    /// Who sent the request; every given field must match.
    #[serde(default)]
    pub sources: Option<RawSources>,
    /// What the request is; every given field must match.
    #[serde(default)]
    pub request: Option<RawRequestMatch>,
    /// What to do with a request the rule selects.
    pub action: RawAction,
    /// Target name; defaults to `default_target`.
    #[serde(default)]
    pub target: Option<String>,
}

/// What a rule does with the requests it selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionType {
    /// Mirror every selected request.
    Always,
    /// Mirror a deterministic share (`fraction`) of them, keyed on `x-request-id`.
    Sample,
    /// Mirror none of them (unless a signature matches).
    Never,
}

/// `{"type": "always"}`, `{"type": "sample", "fraction": 0.1}` or `{"type": "never"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAction {
    /// The action.
    #[serde(rename = "type")]
    pub kind: ActionType,
    /// Share mirrored by `sample`, within 0.0..=1.0.
    #[serde(default)]
    pub fraction: Option<f64>,
}

/// Signature settings: which rule packs are layered (the built-in pack, then `packs` in
/// order; a rule replaces an earlier rule with the same `id`), which categories and rules are
/// switched off, and the legacy `custom` literals.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSignatures {
    /// Master switch for every rule.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Whether the built-in pack is the first layer.
    #[serde(default = "yes")]
    pub builtin: bool,
    /// Rule packs layered over the built-in pack, in order (the pack format, inline).
    #[serde(default)]
    pub packs: Vec<RawPack>,
    /// Categories switched on or off (`false` switches off every rule of the category); an
    /// unknown category is an error.
    #[serde(default)]
    pub categories: BTreeMap<String, bool>,
    /// Rules switched on or off by id, after `categories`; an unknown id is an error.
    #[serde(default)]
    pub rules: BTreeMap<String, bool>,
    /// Custom literal signatures (each becomes a rule whose id and category are its name).
    #[serde(default)]
    pub custom: Vec<RawCustomSignature>,
    /// Whether request bodies are inspected (holding the request up to `max_body_bytes`).
    #[serde(default = "yes")]
    pub inspect_body: bool,
    /// Target for signature hits; defaults to `default_target`.
    #[serde(default)]
    pub target: Option<String>,
}

impl Default for RawSignatures {
    fn default() -> Self {
        RawSignatures {
            enabled: true,
            builtin: true,
            packs: Vec::new(),
            categories: BTreeMap::new(),
            rules: BTreeMap::new(),
            custom: Vec::new(),
            inspect_body: true,
            target: None,
        }
    }
}

fn yes() -> bool {
    true
}

/// Where a custom literal is looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawLocation {
    /// The percent-decoded path (without the query).
    Path,
    /// The query string, whole and parameter by parameter, decoded.
    Query,
    /// Every header as `name: value`, decoded.
    Headers,
    /// The body (first `max_body_bytes`), raw and form/JSON decoded.
    Body,
}

/// A custom literal signature.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCustomSignature {
    /// Name reported in the decision's `signatures`.
    pub name: String,
    /// The literal (case-insensitive).
    pub literal: String,
    /// Where to look; defaults to everywhere.
    #[serde(default = "all_locations", rename = "in")]
    pub locations: Vec<RawLocation>,
}

fn all_locations() -> Vec<RawLocation> {
    vec![
        RawLocation::Path,
        RawLocation::Query,
        RawLocation::Headers,
        RawLocation::Body,
    ]
}
