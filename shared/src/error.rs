//! Configuration errors that name the JSON path at fault.

use std::fmt;

pub mod json_path;

use json_path::{Json, PathError};

/// A policy that cannot be used, with the JSON path of the offending value
/// (`rules[2].paths[0]`) and the reason. A policy with any error is refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// JSON path of the value at fault, e.g. `rules[2].paths[0]`; empty for the document itself.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// An error at `path` for `reason`.
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// An error at `path` whose reason is a typed error's message.
    pub fn at(path: impl Into<String>, error: impl std::error::Error) -> Self {
        ConfigError::new(path, error.to_string())
    }

    /// Reads a JSON document into `T`, mapping serde's error (unknown field, wrong type) to the
    /// JSON path where it happened.
    pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ConfigError> {
        let json = Json::parse(bytes).map_err(|e| ConfigError::new("", e.to_string()))?;
        ConfigError::read_json(&json, "")
    }

    /// Reads `T` from `json`, a value standing at `path` of its document (`""` for the document
    /// itself): the error's path starts with `path`.
    pub fn read_json<T: serde::de::DeserializeOwned>(
        json: &Json,
        path: &str,
    ) -> Result<T, ConfigError> {
        json.read(path).map_err(ConfigError::from)
    }
}

impl From<PathError> for ConfigError {
    fn from(e: PathError) -> ConfigError {
        ConfigError::new(e.path.unwrap_or_default(), e.reason)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Policy {
        #[allow(dead_code)]
        rules: Vec<Rule>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Rule {
        #[allow(dead_code)]
        name: String,
    }

    #[test]
    fn unknown_field_is_named_with_its_json_path() {
        let err = ConfigError::parse_json::<Policy>(br#"{"rules":[{"name":"a"},{"nmae":"b"}]}"#)
            .unwrap_err();
        assert_eq!(err.path, "rules[1].nmae");
        assert!(err.reason.contains("unknown field `nmae`"), "{err}");
        assert!(err.to_string().starts_with("rules[1].nmae: unknown field"));
    }

    #[test]
    fn wrong_type_is_named_with_its_json_path() {
        let err = ConfigError::parse_json::<Policy>(br#"{"rules":[{"name":7}]}"#).unwrap_err();
        assert_eq!(err.path, "rules[0].name");
        assert!(err.reason.contains("expected a string"), "{err}");
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "snake_case")]
    enum Match {
        Exact(String),
        Prefix { prefix: u16 },
        Any,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Matches {
        #[allow(dead_code)]
        m: Vec<Option<Match>>,
    }

    #[test]
    fn enum_variants_and_their_data_are_named() {
        let ok = ConfigError::parse_json::<Matches>(
            br#"{"m":["any",{"exact":"/a"},{"prefix":{"prefix":7}},null]}"#,
        )
        .unwrap();
        assert!(
            matches!(ok.m.as_slice(), [Some(Match::Any), Some(Match::Exact(e)), Some(Match::Prefix { prefix: 7 }), None] if e == "/a")
        );
        let err = ConfigError::parse_json::<Matches>(br#"{"m":[{"prefix":{"prefix":70000}}]}"#)
            .unwrap_err();
        assert_eq!(err.path, "m[0].prefix.prefix");
        assert!(err.reason.contains("expected u16"), "{err}");
        let err = ConfigError::parse_json::<Matches>(br#"{"m":["nope"]}"#).unwrap_err();
        assert_eq!(err.path, "m[0]");
        assert!(err.reason.contains("unknown variant `nope`"), "{err}");
    }

    #[test]
    fn missing_and_duplicate_fields_are_named_at_their_object() {
        let err = ConfigError::parse_json::<Policy>(br#"{"rules":[{}]}"#).unwrap_err();
        assert_eq!(err.path, "rules[0]");
        assert!(err.reason.contains("missing field `name`"), "{err}");
        let err = ConfigError::parse_json::<Policy>(br#"{"rules":[{"name":"a","name":"b"}]}"#)
            .unwrap_err();
        assert_eq!(err.path, "rules[0]");
        assert!(err.reason.contains("duplicate field `name`"), "{err}");
    }

    #[test]
    fn a_section_read_from_its_document_names_the_whole_path() {
        let json = Json::parse(br#"{"rules":[{"name":"a"},{"nmae":"b"}]}"#).unwrap();
        let err = ConfigError::read_json::<Policy>(&json, "allowlist").unwrap_err();
        assert_eq!(err.path, "allowlist.rules[1].nmae");
        let err =
            ConfigError::read_json::<Vec<Rule>>(&Json::parse(b"[7]").unwrap(), "").unwrap_err();
        assert_eq!(err.path, "[0]");
    }

    #[test]
    fn trailing_garbage_and_non_json_are_refused() {
        assert!(ConfigError::parse_json::<Policy>(br#"{"rules":[]} x"#).is_err());
        let err = ConfigError::parse_json::<Policy>(b"not json").unwrap_err();
        assert!(err.path.is_empty());
        assert!(!err.to_string().is_empty());
    }
}
