//! The allowlist policy exactly as written in the plugin configuration (JSON), before validation.
//! Unknown fields are errors so that a typo cannot silently widen or narrow a policy.

use serde::{Deserialize, Serialize};

use crate::decision::Mode;
use crate::matching::{RawHeaderMatch, RawPathMatch, RawQueryMatch};

pub use crate::matching::RawSources;

/// The allowlist policy document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// `enforce` (default) answers unmatched requests with the deny response; `monitor` lets
    /// them through and records `would_deny`.
    #[serde(default)]
    pub mode: Mode,
    /// The rules; a request passes when one rule matches everything that rule names.
    pub rules: Vec<RawRule>,
    /// Answer ambiguous request targets (encoded `/`, `%00`, overlong UTF-8...) with the
    /// malformed response instead of judging them (default true).
    #[serde(default = "default_true")]
    pub reject_malformed: bool,
    /// Set `:path` to the normalized path (plus the original query) so the upstream sees exactly
    /// what was checked. Default true: without it a request judged as `/api/v1/items/1` could
    /// reach the upstream as `/api/v1/items//1`, and the upstream's own reading of that is
    /// exactly what an attacker plays on. Turn it off only when Envoy itself normalizes the same
    /// way before the filter (`normalize_path`, `merge_slashes`, escaped-slash rejection).
    #[serde(default = "default_rewrite_path")]
    pub rewrite_path: bool,
    /// Response to requests no rule allows (default 403 with a small JSON body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_response: Option<RawResponse>,
    /// Response to malformed request targets (default 400 with a small JSON body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malformed_response: Option<RawResponse>,
}

fn default_true() -> bool {
    true
}

/// A locally generated response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResponse {
    /// HTTP status, 400 to 599.
    pub status: u32,
    /// Body sent verbatim instead of the default JSON body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Content type of `body` (default `application/json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// One allow rule. Every field but `name` is optional; an absent field matches anything, an
/// empty list is an error (it would match nothing, which is never what was meant). The fields
/// mean what they mean in a mirror selector (see [`crate::matching`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Unique name, used in the decision and in the rule's hit counter.
    pub name: String,
    /// HTTP methods, case-sensitive (`GET`, `POST`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Host names: exact (`api.example.com`) or wildcard (`*.example.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
    /// Paths over the normalized path: patterns (`/a/b`, `*`, `{name}`, trailing `**`),
    /// `{"exact": "/a"}` or `{"prefix": "/a/"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<RawPathMatch>>,
    /// Header conditions; all must hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<RawHeaderMatch>>,
    /// Query parameter constraints; all must hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<Vec<RawQueryConstraint>>,
    /// Who may send the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<RawSources>,
}

/// A constraint on one query parameter (the shared [`RawQueryMatch`]).
pub type RawQueryConstraint = RawQueryMatch;

fn default_rewrite_path() -> bool {
    true
}
