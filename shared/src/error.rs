//! Configuration errors that name the JSON path at fault.

use std::fmt;

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
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            ConfigError::new(path, e.inner().to_string())
        })?;
        de.end().map_err(|e| ConfigError::new("", e.to_string()))?;
        Ok(value)
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

    #[test]
    fn trailing_garbage_and_non_json_are_refused() {
        assert!(ConfigError::parse_json::<Policy>(br#"{"rules":[]} x"#).is_err());
        let err = ConfigError::parse_json::<Policy>(b"not json").unwrap_err();
        assert!(err.path.is_empty());
        assert!(!err.to_string().is_empty());
    }
}
