//! Generated N-rule policies for benchmarks and scale tests, with the equivalent Envoy RBAC
//! configuration so the two can be compared on the same rules. Not part of the policy API.
//!
//! Rule `i` (named `rule-<i>`) owns the first path segment `svc<i>` and has one of four
//! shapes, cycling with `i % 4`:
//!
//! | `i % 4` | methods | path pattern |
//! |---|---|---|
//! | 0 | GET | `/svc<i>/**` |
//! | 1 | GET, PUT | `/svc<i>/v1/items/{id}` |
//! | 2 | GET | `/svc<i>/static/*` |
//! | 3 | POST | `/svc<i>/v2/orders` |
//!
//! [`synthetic_hit`] gives a request that exactly rule `i` allows; [`SYNTHETIC_MISS`] is
//! allowed by none.

use serde_json::{json, Value};

use meshsight_policy::allowlist::{RawPolicy, RawRule};
use meshsight_policy::decision::Mode;
use meshsight_policy::matching::RawPathMatch;

/// A path that no synthetic rule allows.
pub const SYNTHETIC_MISS: &str = "/nowhere/at/all";

fn shape(i: usize) -> (&'static [&'static str], String) {
    match i % 4 {
        0 => (&["GET"], format!("/svc{i}/**")),
        1 => (&["GET", "PUT"], format!("/svc{i}/v1/items/{{id}}")),
        2 => (&["GET"], format!("/svc{i}/static/*")),
        _ => (&["POST"], format!("/svc{i}/v2/orders")),
    }
}

/// An enforce-mode policy of `n` rules (see the module docs for their shapes).
pub fn synthetic_policy(n: usize) -> RawPolicy {
    let rules = (0..n)
        .map(|i| {
            let (methods, path) = shape(i);
            RawRule {
                name: format!("rule-{i}"),
                methods: Some(methods.iter().map(|m| m.to_string()).collect()),
                hosts: None,
                paths: Some(vec![RawPathMatch::Pattern(path)]),
                headers: None,
                query: None,
                sources: None,
            }
        })
        .collect();
    RawPolicy {
        mode: Mode::Enforce,
        rules,
        reject_malformed: true,
        rewrite_path: false,
        deny_response: None,
        malformed_response: None,
    }
}

/// [`synthetic_policy`] as the JSON plugin configuration.
pub fn synthetic_policy_json(n: usize) -> String {
    serde_json::to_string(&synthetic_policy(n)).unwrap_or_default()
}

/// A request (method, path) that rule `i` of a synthetic policy allows and no other rule does.
pub fn synthetic_hit(i: usize) -> (&'static str, String) {
    match i % 4 {
        0 => ("GET", format!("/svc{i}/deep/er/path")),
        1 => ("PUT", format!("/svc{i}/v1/items/42")),
        2 => ("GET", format!("/svc{i}/static/app.js")),
        _ => ("POST", format!("/svc{i}/v2/orders")),
    }
}

fn method_matcher(methods: &[&str]) -> Value {
    let ids: Vec<Value> = methods
        .iter()
        .map(|m| json!({"header": {"name": ":method", "string_match": {"exact": m}}}))
        .collect();
    if ids.len() == 1 {
        ids.into_iter().next().unwrap_or(Value::Null)
    } else {
        json!({"or_rules": {"rules": ids}})
    }
}

/// The typed config of an Envoy RBAC HTTP filter
/// (`envoy.extensions.filters.http.rbac.v3.RBAC`) that allows exactly what
/// [`synthetic_policy`]`(n)` allows, with `url_path` permissions (`prefix`/`exact` where the
/// pattern allows it, `safe_regex` for `{id}` and `*` segments), one permission per rule.
pub fn synthetic_rbac_config(n: usize) -> Value {
    let permissions: Vec<Value> = (0..n)
        .map(|i| {
            let (methods, _) = shape(i);
            let path = match i % 4 {
                0 => json!({"or_rules": {"rules": [
                    {"url_path": {"path": {"exact": format!("/svc{i}")}}},
                    {"url_path": {"path": {"prefix": format!("/svc{i}/")}}}
                ]}}),
                1 => json!({"url_path": {"path": {"safe_regex": {"regex": format!("/svc{i}/v1/items/[^/]+")}}}}),
                2 => json!({"url_path": {"path": {"safe_regex": {"regex": format!("/svc{i}/static/[^/]+")}}}}),
                _ => json!({"url_path": {"path": {"exact": format!("/svc{i}/v2/orders")}}}),
            };
            json!({"and_rules": {"rules": [method_matcher(methods), path]}})
        })
        .collect();
    json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
        "rules": {
            "action": "ALLOW",
            "policies": {
                "synthetic": {
                    "permissions": permissions,
                    "principals": [{"any": true}]
                }
            }
        }
    })
}
