//! The mirror policy as written in the plugin configuration (JSON), before validation.
//!
//! Every struct refuses unknown fields, so a typo is an error that names its JSON path.

use crate::error::json_path::{At, ByName, PathError, ReadJson};

pub use super::signatures::pack::RawPack;

pub use crate::matching::{RawHeaderMatch, RawPathMatch, RawRequestMatch, RawSources};

/// Default for `max_body_bytes`: 16 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024;
/// Default decision header name for `header` delivery.
pub const DEFAULT_DECISION_HEADER: &str = "x-meshsight-mirror";

/// The whole policy document.
#[derive(Debug, Clone)]
pub struct RawMirrorPolicy {
    /// Named sensors.
    pub targets: ByName<RawTarget>,
    /// Target used by rules and signatures that name none; optional when there is one target.
    pub default_target: Option<String>,
    /// Rules, first match wins.
    pub rules: Vec<RawRule>,
    /// Exploit-indicator signatures.
    pub signatures: RawSignatures,
    /// Most request-body bytes read for inspection and copied in `dispatch` mode.
    pub max_body_bytes: usize,
    /// Hold the request headers while the body is inspected, so that a body-only signature hit
    /// can still set the decision header (`header` targets). Needs
    /// `allow_on_headers_stop_iteration: true` in Envoy's Wasm plugin config: without it Envoy
    /// turns the pause into StopAllIteration and the request never resumes. When `false`, the
    /// request flows and such a late copy is sent by HTTP call to the target's cluster instead.
    pub hold_for_body: bool,
    /// Longest a request is held for its body, in milliseconds (1 to 30000, default 250). Past
    /// it the request is let go with what was read: a denied one gets its reply, an allowed one
    /// goes on. When holds keep running out before any body arrives (the proxy lacks
    /// `allow_on_headers_stop_iteration`), the worker stops holding and says so once.
    pub hold_timeout_ms: u64,
    /// Copy a request the allowlist answered locally (403/400) when a signature matched it, by
    /// HTTP call to the signature target's cluster (even a `header` target: no route sees a
    /// denied request), within the rate cap; with `hold_for_body` its body is read (and
    /// scanned and copied) first. Rules and samples never select a denied request. On by
    /// default: the attacks an allowlist stops are the ones a SOC most wants to see.
    pub copy_denied: bool,
    /// Response rules and when responses are scanned (absent: no response is read).
    pub responses: Option<crate::response::raw::RawResponses>,
}

fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

fn default_hold_timeout_ms() -> u64 {
    super::hold::DEFAULT_HOLD_TIMEOUT_MS
}

/// How a copy reaches a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Set the decision header; an Envoy route / Istio VirtualService mirrors on it.
    Header,
    /// The filter sends the copy itself with an HTTP call to the target's cluster.
    Dispatch,
}

/// One named sensor.
#[derive(Debug, Clone)]
pub struct RawTarget {
    /// Envoy cluster of the sensor (used by `dispatch`; documentation for `header`).
    pub cluster: String,
    /// `header` or `dispatch`.
    pub delivery: Delivery,
    /// Most copies per second per worker (token bucket); excess is counted, never queued.
    pub max_rps: f64,
    /// Bucket size (copies that may go at once after a quiet spell); defaults to `max_rps`.
    pub burst: Option<f64>,
    /// Decision header name (`header` delivery).
    pub header: Option<String>,
    /// Whether `dispatch` copies keep `authorization`, `cookie` and `proxy-authorization`.
    pub include_secrets: bool,
    /// Timeout of a `dispatch` call.
    pub timeout_ms: u64,
    /// Most `dispatch` calls in flight per worker; more are dropped and counted.
    pub max_in_flight: u32,
    /// `:authority` of `dispatch` copies; defaults to the original request's.
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
#[derive(Debug, Clone)]
pub struct RawRule {
    /// Rule name, reported in the decision.
    pub name: String,
    /// Who sent the request; every given field must match.
    pub sources: Option<RawSources>,
    /// What the request is; every given field must match.
    pub request: Option<RawRequestMatch>,
    /// What to do with a request the rule selects.
    pub action: RawAction,
    /// Target name; defaults to `default_target`.
    pub target: Option<String>,
}

/// What a rule does with the requests it selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionType {
    /// Mirror every selected request.
    Always,
    /// Mirror a deterministic share (`fraction`) of them, keyed on `x-request-id`.
    Sample,
    /// Mirror none of them (unless a signature matches).
    Never,
}

/// `{"type": "always"}`, `{"type": "sample", "fraction": 0.1}` or `{"type": "never"}`.
#[derive(Debug, Clone)]
pub struct RawAction {
    /// The action.
    pub kind: ActionType,
    /// Share mirrored by `sample`, within 0.0..=1.0.
    pub fraction: Option<f64>,
}

/// Signature settings: which rule packs are layered (the built-in pack, then `packs` in
/// order; a rule replaces an earlier rule with the same `id`), which categories and rules are
/// switched off, and the legacy `custom` literals.
#[derive(Debug, Clone)]
pub struct RawSignatures {
    /// Master switch for every rule.
    pub enabled: bool,
    /// Whether the built-in pack is the first layer.
    pub builtin: bool,
    /// Rule packs layered over the built-in pack, in order (the pack format, inline).
    pub packs: Vec<RawPack>,
    /// Categories switched on or off (`false` switches off every rule of the category); an
    /// unknown category is an error.
    pub categories: ByName<bool>,
    /// Rules switched on or off by id, after `categories`; an unknown id is an error.
    pub rules: ByName<bool>,
    /// Custom literal signatures (each becomes a rule whose id and category are its name).
    pub custom: Vec<RawCustomSignature>,
    /// Whether request bodies are inspected (holding the request up to `max_body_bytes`).
    pub inspect_body: bool,
    /// Target for signature hits; defaults to `default_target`.
    pub target: Option<String>,
}

impl Default for RawSignatures {
    fn default() -> Self {
        RawSignatures {
            enabled: true,
            builtin: true,
            packs: Vec::new(),
            categories: ByName::default(),
            rules: ByName::default(),
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone)]
pub struct RawCustomSignature {
    /// Name reported in the decision's `signatures`.
    pub name: String,
    /// The literal (case-insensitive).
    pub literal: String,
    /// Where to look; defaults to everywhere.
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

impl ReadJson for RawMirrorPolicy {
    fn read_json(at: At<'_, '_>) -> Result<RawMirrorPolicy, PathError> {
        let mut f = at.fields("struct RawMirrorPolicy", RAW_MIRROR_POLICY_FIELDS)?;
        let value = RawMirrorPolicy {
            targets: f.required("targets"),
            default_target: f.get("default_target").flatten(),
            rules: f.get("rules").unwrap_or_default(),
            signatures: f.get("signatures").unwrap_or_default(),
            max_body_bytes: f
                .get("max_body_bytes")
                .unwrap_or_else(default_max_body_bytes),
            hold_for_body: f.get("hold_for_body").unwrap_or_default(),
            hold_timeout_ms: f
                .get("hold_timeout_ms")
                .unwrap_or_else(default_hold_timeout_ms),
            copy_denied: f.get("copy_denied").unwrap_or_else(yes),
            responses: f.get("responses").flatten(),
        };
        f.finish(value)
    }
}

const RAW_MIRROR_POLICY_FIELDS: &[&str] = &[
    "targets",
    "default_target",
    "rules",
    "signatures",
    "max_body_bytes",
    "hold_for_body",
    "hold_timeout_ms",
    "copy_denied",
    "responses",
];

impl ReadJson for Delivery {
    fn read_json(at: At<'_, '_>) -> Result<Delivery, PathError> {
        Ok(match at.unit_variant("enum Delivery", DELIVERY_VARIANTS)? {
            0 => Delivery::Header,
            _ => Delivery::Dispatch,
        })
    }
}

const DELIVERY_VARIANTS: &[&str] = &["header", "dispatch"];

impl ReadJson for RawTarget {
    fn read_json(at: At<'_, '_>) -> Result<RawTarget, PathError> {
        let mut f = at.fields("struct RawTarget", RAW_TARGET_FIELDS)?;
        let value = RawTarget {
            cluster: f.required("cluster"),
            delivery: f.required_or("delivery", Delivery::Header),
            max_rps: f.get("max_rps").unwrap_or_else(default_max_rps),
            burst: f.get("burst").flatten(),
            header: f.get("header").flatten(),
            include_secrets: f.get("include_secrets").unwrap_or_default(),
            timeout_ms: f.get("timeout_ms").unwrap_or_else(default_timeout_ms),
            max_in_flight: f.get("max_in_flight").unwrap_or_else(default_max_in_flight),
            authority: f.get("authority").flatten(),
        };
        f.finish(value)
    }
}

const RAW_TARGET_FIELDS: &[&str] = &[
    "cluster",
    "delivery",
    "max_rps",
    "burst",
    "header",
    "include_secrets",
    "timeout_ms",
    "max_in_flight",
    "authority",
];

impl ReadJson for RawRule {
    fn read_json(at: At<'_, '_>) -> Result<RawRule, PathError> {
        let mut f = at.fields("struct RawRule", RAW_RULE_FIELDS)?;
        let value = RawRule {
            name: f.required("name"),
            sources: f.get("sources").flatten(),
            request: f.get("request").flatten(),
            action: f.required_or(
                "action",
                RawAction {
                    kind: ActionType::Never,
                    fraction: None,
                },
            ),
            target: f.get("target").flatten(),
        };
        f.finish(value)
    }
}

const RAW_RULE_FIELDS: &[&str] = &["name", "sources", "request", "action", "target"];

impl ReadJson for ActionType {
    fn read_json(at: At<'_, '_>) -> Result<ActionType, PathError> {
        Ok(
            match at.unit_variant("enum ActionType", ACTION_TYPE_VARIANTS)? {
                0 => ActionType::Always,
                1 => ActionType::Sample,
                _ => ActionType::Never,
            },
        )
    }
}

const ACTION_TYPE_VARIANTS: &[&str] = &["always", "sample", "never"];

impl ReadJson for RawAction {
    fn read_json(at: At<'_, '_>) -> Result<RawAction, PathError> {
        let mut f = at.fields("struct RawAction", RAW_ACTION_FIELDS)?;
        let value = RawAction {
            kind: f.required_or("type", ActionType::Never),
            fraction: f.get("fraction").flatten(),
        };
        f.finish(value)
    }
}

const RAW_ACTION_FIELDS: &[&str] = &["type", "fraction"];

impl ReadJson for RawSignatures {
    fn read_json(at: At<'_, '_>) -> Result<RawSignatures, PathError> {
        let mut f = at.fields("struct RawSignatures", RAW_SIGNATURES_FIELDS)?;
        let value = RawSignatures {
            enabled: f.get("enabled").unwrap_or_else(yes),
            builtin: f.get("builtin").unwrap_or_else(yes),
            packs: f.get("packs").unwrap_or_default(),
            categories: f.get("categories").unwrap_or_default(),
            rules: f.get("rules").unwrap_or_default(),
            custom: f.get("custom").unwrap_or_default(),
            inspect_body: f.get("inspect_body").unwrap_or_else(yes),
            target: f.get("target").flatten(),
        };
        f.finish(value)
    }
}

const RAW_SIGNATURES_FIELDS: &[&str] = &[
    "enabled",
    "builtin",
    "packs",
    "categories",
    "rules",
    "custom",
    "inspect_body",
    "target",
];

impl ReadJson for RawLocation {
    fn read_json(at: At<'_, '_>) -> Result<RawLocation, PathError> {
        Ok(
            match at.unit_variant("enum RawLocation", RAW_LOCATION_VARIANTS)? {
                0 => RawLocation::Path,
                1 => RawLocation::Query,
                2 => RawLocation::Headers,
                _ => RawLocation::Body,
            },
        )
    }
}

const RAW_LOCATION_VARIANTS: &[&str] = &["path", "query", "headers", "body"];

impl ReadJson for RawCustomSignature {
    fn read_json(at: At<'_, '_>) -> Result<RawCustomSignature, PathError> {
        let mut f = at.fields("struct RawCustomSignature", RAW_CUSTOM_SIGNATURE_FIELDS)?;
        let value = RawCustomSignature {
            name: f.required("name"),
            literal: f.required("literal"),
            locations: f.get("in").unwrap_or_else(all_locations),
        };
        f.finish(value)
    }
}

const RAW_CUSTOM_SIGNATURE_FIELDS: &[&str] = &["name", "literal", "in"];
