//! Configuration errors that name the JSON path at fault.

use std::fmt;

pub mod json_path;

use json_path::{Json, PathError, ReadJson};

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
    // Cold and not inlined: the conversions happen once per argument type, not at each of the
    // policy's many error sites (configure-time code every sidecar compiles).
    #[cold]
    #[inline(never)]
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// An error at `path` whose reason is a typed error's message.
    pub fn at(path: impl Into<String>, error: impl std::error::Error) -> Self {
        ConfigError::at_message(path.into(), &error)
    }

    // The message written through `dyn`: one copy, not one per typed error (eight of them).
    #[cold]
    #[inline(never)]
    fn at_message(path: String, error: &dyn fmt::Display) -> Self {
        ConfigError::new(path, error.to_string())
    }

    /// Reads a JSON document into `T`, naming the JSON path of an error (unknown field, wrong
    /// type); a text that is not JSON is an error at the document, with its line and column.
    pub fn parse_json<T: ReadJson>(bytes: &[u8]) -> Result<T, ConfigError> {
        let json = Json::parse(bytes).map_err(|e| ConfigError::new("", e.to_string()))?;
        ConfigError::read_json(&json, "")
    }

    /// Reads serde type `T` from a JSON document as [`ConfigError::parse_json`] reads the
    /// policy's types, with the same paths and words (for the CLI's own documents).
    #[cfg(feature = "serde")]
    pub fn deserialize_json<T: serde::de::DeserializeOwned>(
        bytes: &[u8],
    ) -> Result<T, ConfigError> {
        let json = Json::parse(bytes).map_err(|e| ConfigError::new("", e.to_string()))?;
        json.deserialize("").map_err(ConfigError::from)
    }

    /// Reads `T` from `json`, a value standing at `path` of its document (`""` for the document
    /// itself): the error's path starts with `path`.
    pub fn read_json<T: ReadJson>(json: &Json, path: &str) -> Result<T, ConfigError> {
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

/// A string as `{:?}` writes it (quoted, escaped: `"a\"b\n"`), for the messages that quote
/// what the policy said. One function for every message rather than `{:?}`, whose `Debug` for
/// `str`, `String` and each `&T` cost the module a kilobyte of Wasm; the escapes are the same
/// (`char::escape_debug`, which also escapes `'`, which `Debug` for `str` leaves alone).
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    #[inline(never)]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        f.write_char('"')?;
        for c in self.0.chars() {
            if c == '\'' {
                f.write_char(c)?;
            } else {
                for e in c.escape_debug() {
                    f.write_char(e)?;
                }
            }
        }
        f.write_char('"')
    }
}

#[cfg(test)]
mod tests;
