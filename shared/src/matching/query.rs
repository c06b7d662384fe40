//! Query matching: a rule's `query` constraints against the request's query string.
//!
//! A constraint names a parameter (its decoded form) and exactly one of `"present": true` (it
//! occurs, with any value), `"absent": true` (it does not occur) or `"equals": "v"` (it occurs and
//! *every* occurrence has the decoded value `v`: an upstream may read any of several copies, so
//! parameter pollution cannot smuggle a second value past the check). Parameters are read by
//! [`crate::normalize::query_pairs`] (`+` is a space, `%XY` a byte). All constraints of a rule
//! must hold; a malformed request target satisfies none.

#[cfg(feature = "serde")]
use serde::Serialize;
use thiserror::Error;

use crate::error::json_path::{At, PathError, ReadJson};

use crate::normalize::query_pairs;

/// A constraint on one query parameter as written: exactly one of `present`, `absent`, `equals`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct RawQueryMatch {
    /// Parameter name (decoded form).
    pub name: String,
    /// `true`: the parameter must occur.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub present: Option<bool>,
    /// `true`: the parameter must not occur.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub absent: Option<bool>,
    /// The parameter must occur and every occurrence must have this (decoded) value.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub equals: Option<String>,
}

impl ReadJson for RawQueryMatch {
    fn read_json(at: At<'_, '_>) -> Result<RawQueryMatch, PathError> {
        let mut f = at.fields(
            "struct RawQueryMatch",
            &["name", "present", "absent", "equals"],
        )?;
        let value = RawQueryMatch {
            name: f.required("name"),
            present: f.get("present").flatten(),
            absent: f.get("absent").flatten(),
            equals: f.get("equals").flatten(),
        };
        f.finish(value)
    }
}

/// Why a query constraint was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QueryError {
    /// Empty parameter name.
    #[error("query parameter name must not be empty")]
    EmptyName,
    /// `present: false` / `absent: false` say nothing.
    #[error("\"{0}\" can only be true (use \"{1}\": true for the opposite)")]
    FlagFalse(&'static str, &'static str),
    /// None or several of present/absent/equals.
    #[error("exactly one of \"present\": true, \"absent\": true or \"equals\" must be given")]
    ConditionKind,
}

/// One compiled query constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryMatch {
    /// The parameter occurs.
    Present(String),
    /// The parameter does not occur.
    Absent(String),
    /// The parameter occurs and every occurrence has this value.
    Equals(String, String),
}

impl QueryMatch {
    /// Compiles a constraint. Errors say which field (`name`, `present`, `absent`), if one.
    pub fn parse(raw: &RawQueryMatch) -> Result<QueryMatch, (Option<&'static str>, QueryError)> {
        if raw.name.is_empty() {
            return Err((Some("name"), QueryError::EmptyName));
        }
        if raw.present == Some(false) {
            return Err((Some("present"), QueryError::FlagFalse("present", "absent")));
        }
        if raw.absent == Some(false) {
            return Err((Some("absent"), QueryError::FlagFalse("absent", "present")));
        }
        let name = raw.name.clone();
        match (raw.present, raw.absent, &raw.equals) {
            (Some(true), None, None) => Ok(QueryMatch::Present(name)),
            (None, Some(true), None) => Ok(QueryMatch::Absent(name)),
            (None, None, Some(v)) => Ok(QueryMatch::Equals(name, v.clone())),
            _ => Err((None, QueryError::ConditionKind)),
        }
    }

    /// Whether the constraint holds for the raw query (without `?`; `None` when there is none).
    pub fn matches(&self, query: Option<&str>) -> bool {
        let pairs = || query_pairs(query.unwrap_or(""));
        match self {
            QueryMatch::Present(name) => pairs().any(|(n, _)| n == name.as_str()),
            QueryMatch::Absent(name) => !pairs().any(|(n, _)| n == name.as_str()),
            QueryMatch::Equals(name, value) => {
                let mut seen = false;
                for (n, v) in pairs() {
                    if n == name.as_str() {
                        if v != value.as_str() {
                            return false;
                        }
                        seen = true;
                    }
                }
                seen
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn parse(json: &str) -> Result<QueryMatch, (Option<&'static str>, QueryError)> {
        QueryMatch::parse(&crate::ConfigError::parse_json(json.as_bytes()).unwrap())
    }

    #[test]
    fn present_absent_equals() {
        let present = parse(r#"{"name":"api key","present":true}"#).unwrap();
        assert!(present.matches(Some("api+key=")));
        assert!(present.matches(Some("x=1&api%20key")));
        assert!(!present.matches(None));
        let absent = parse(r#"{"name":"debug","absent":true}"#).unwrap();
        assert!(absent.matches(None));
        assert!(absent.matches(Some("x=1")));
        assert!(!absent.matches(Some("debug")));
        let equals = parse(r#"{"name":"v","equals":"2 b"}"#).unwrap();
        assert!(equals.matches(Some("v=2+b")));
        assert!(equals.matches(Some("v=2+b&v=2%20b")));
        assert!(
            !equals.matches(Some("v=2+b&v=3")),
            "every occurrence must equal"
        );
        assert!(!equals.matches(Some("w=2+b")));
        assert!(!equals.matches(None));
    }

    #[test]
    fn bad_constraints_are_refused_with_the_field() {
        assert_eq!(
            parse(r#"{"name":"a"}"#),
            Err((None, QueryError::ConditionKind))
        );
        assert_eq!(
            parse(r#"{"name":"a","present":true,"equals":"x"}"#),
            Err((None, QueryError::ConditionKind))
        );
        assert_eq!(
            parse(r#"{"name":"a","present":false}"#),
            Err((Some("present"), QueryError::FlagFalse("present", "absent")))
        );
        assert_eq!(
            parse(r#"{"name":"a","absent":false}"#),
            Err((Some("absent"), QueryError::FlagFalse("absent", "present")))
        );
        assert_eq!(
            parse(r#"{"name":"","present":true}"#),
            Err((Some("name"), QueryError::EmptyName))
        );
    }
}
