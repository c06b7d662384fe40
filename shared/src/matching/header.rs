//! Header matching: a rule's `headers` conditions against the request headers.
//!
//! A condition names a header (a token, compared case-insensitively) and exactly one of:
//! `exact` (some value equals this), `prefix` (some value starts with this), `contains` (some
//! value contains this, ASCII case-insensitively) or `present` (`true`: the header occurs at
//! all, with any value; `false`: it does not occur). Values are compared as received; a repeated
//! header matches when any of its values does. All conditions of a rule must hold.

use crate::error::Quoted;
#[cfg(feature = "serde")]
use serde::Serialize;
use thiserror::Error;

use crate::error::json_path::{At, PathError, ReadJson};

use crate::headers::{is_token, HeaderBlock};

/// A header condition as written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct RawHeaderMatch {
    /// Header name (case-insensitive).
    pub name: String,
    /// Some value equals this.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub exact: Option<String>,
    /// Some value starts with this.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub prefix: Option<String>,
    /// Some value contains this (ASCII case-insensitive).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub contains: Option<String>,
    /// `true`: the header occurs; `false`: it does not.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub present: Option<bool>,
}

impl ReadJson for RawHeaderMatch {
    fn read_json(at: At<'_, '_>) -> Result<RawHeaderMatch, PathError> {
        let mut f = at.fields(
            "struct RawHeaderMatch",
            &["name", "exact", "prefix", "contains", "present"],
        )?;
        let value = RawHeaderMatch {
            name: f.required("name"),
            exact: f.get("exact").flatten(),
            prefix: f.get("prefix").flatten(),
            contains: f.get("contains").flatten(),
            present: f.get("present").flatten(),
        };
        f.finish(value)
    }
}

/// Why a header condition was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeaderError {
    /// Not an RFC 9110 token (pseudo-headers such as `:path` have their own fields).
    #[error("{} is not a header name", Quoted(.0))]
    BadName(String),
    /// None or several of the conditions.
    #[error("needs exactly one of `exact`, `prefix`, `contains`, `present`")]
    ConditionKind,
}

/// What must hold of a header's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderCondition {
    /// Some value equals this.
    Exact(String),
    /// Some value starts with this.
    Prefix(String),
    /// Some value contains this (stored lowercase; compared ASCII case-insensitively).
    Contains(String),
    /// The header occurs (`true`) or does not (`false`).
    Present(bool),
}

/// One compiled header condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMatch {
    /// Lowercase header name.
    pub name: String,
    /// The condition on its values.
    pub condition: HeaderCondition,
}

impl HeaderMatch {
    /// Compiles a condition: a token name and exactly one condition. Errors say which field.
    pub fn parse(raw: &RawHeaderMatch) -> Result<HeaderMatch, (Option<&'static str>, HeaderError)> {
        if !is_token(&raw.name) {
            return Err((Some("name"), HeaderError::BadName(raw.name.clone())));
        }
        let conditions = [
            raw.exact.clone().map(HeaderCondition::Exact),
            raw.prefix.clone().map(HeaderCondition::Prefix),
            raw.contains
                .as_deref()
                .map(|c| HeaderCondition::Contains(c.to_ascii_lowercase())),
            raw.present.map(HeaderCondition::Present),
        ];
        let mut given = conditions.into_iter().flatten();
        match (given.next(), given.next()) {
            (Some(condition), None) => Ok(HeaderMatch {
                name: raw.name.to_ascii_lowercase(),
                condition,
            }),
            _ => Err((None, HeaderError::ConditionKind)),
        }
    }

    /// Whether the condition holds for these request headers.
    pub fn matches(&self, headers: &HeaderBlock) -> bool {
        let mut values = headers.values(&self.name);
        match &self.condition {
            HeaderCondition::Present(want) => values.next().is_some() == *want,
            HeaderCondition::Exact(e) => values.any(|v| v == e),
            HeaderCondition::Prefix(p) => values.any(|v| v.starts_with(p.as_str())),
            HeaderCondition::Contains(c) => values.any(|v| contains_ignore_ascii_case(v, c)),
        }
    }
}

/// Whether `haystack` contains `needle` (already lowercase), ignoring ASCII case, without
/// allocating.
fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn raw(json: &str) -> RawHeaderMatch {
        crate::ConfigError::parse_json(json.as_bytes()).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderBlock {
        pairs.iter().copied().collect()
    }

    #[test]
    fn each_condition_kind() {
        let m = |json: &str| HeaderMatch::parse(&raw(json)).unwrap();
        let h = headers(&[
            ("x-tenant", "acme"),
            ("user-agent", "sqlmap/1.7"),
            ("authorization", "Basic dTpw"),
            ("x-empty", ""),
        ]);
        assert!(m(r#"{"name":"X-Tenant","exact":"acme"}"#).matches(&h));
        assert!(!m(r#"{"name":"x-tenant","exact":"acm"}"#).matches(&h));
        assert!(m(r#"{"name":"authorization","prefix":"Basic "}"#).matches(&h));
        assert!(m(r#"{"name":"user-agent","contains":"SQLMap"}"#).matches(&h));
        assert!(!m(r#"{"name":"user-agent","contains":"nikto"}"#).matches(&h));
        assert!(m(r#"{"name":"x-empty","present":true}"#).matches(&h));
        assert!(m(r#"{"name":"x-trace","present":false}"#).matches(&h));
        assert!(!m(r#"{"name":"x-tenant","present":false}"#).matches(&h));
    }

    #[test]
    fn any_value_of_a_repeated_header_matches() {
        let m = HeaderMatch::parse(&raw(r#"{"name":"x-a","exact":"2"}"#)).unwrap();
        assert!(m.matches(&headers(&[("x-a", "1"), ("x-a", "2")])));
        assert!(!m.matches(&headers(&[("x-a", "1")])));
    }

    #[test]
    fn bad_conditions_are_refused_with_the_field() {
        assert_eq!(
            HeaderMatch::parse(&raw(r#"{"name":"x-a"}"#)),
            Err((None, HeaderError::ConditionKind))
        );
        assert_eq!(
            HeaderMatch::parse(&raw(r#"{"name":"x-a","exact":"1","present":true}"#)),
            Err((None, HeaderError::ConditionKind))
        );
        for name in ["", ":path", "x a", "x\u{e9}"] {
            let r = RawHeaderMatch {
                name: name.to_string(),
                exact: Some("1".into()),
                prefix: None,
                contains: None,
                present: None,
            };
            assert_eq!(
                HeaderMatch::parse(&r),
                Err((Some("name"), HeaderError::BadName(name.to_string())))
            );
        }
        assert!(
            crate::ConfigError::parse_json::<RawHeaderMatch>(br#"{"name":"a","regex":"x"}"#)
                .is_err()
        );
    }

    #[test]
    fn contains_ignores_ascii_case_only() {
        assert!(contains_ignore_ascii_case("SQLMap/1", "sqlmap"));
        assert!(contains_ignore_ascii_case("x", ""));
        assert!(!contains_ignore_ascii_case("sq", "sqlmap"));
    }
}
