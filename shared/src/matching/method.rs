//! Method matching: a rule's `methods` list against `:method`.
//!
//! Methods are RFC 9110 tokens and case-sensitive (RFC 9110 section 9.1): `GET` and `get` are
//! different methods, and every registered method is uppercase. A request's method is compared
//! byte for byte. A policy that writes a standard method in another case (`get`, `Post`) is
//! refused with the spelling it most likely meant, since such an entry would silently match
//! nothing that real clients send.

use crate::error::Quoted;
use thiserror::Error;

use crate::headers::is_token;

/// The standard methods of RFC 9110 and RFC 5789 (`PATCH`).
const STANDARD: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Longest method accepted in a policy.
const MAX_LEN: usize = 32;

/// Why a `methods` entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MethodError {
    /// Not an RFC 9110 token (empty, a space, a `/`, ...), or longer than 32 bytes.
    #[error("method {} must be an HTTP token (RFC 9110), at most 32 characters, such as GET", Quoted(.0))]
    NotToken(String),
    /// A standard method in the wrong case: methods are case-sensitive.
    #[error("method {} never matches: methods are case-sensitive; did you mean {}?", Quoted(.given), Quoted(.hint))]
    WrongCase {
        /// The entry as written.
        given: String,
        /// The standard method it spells in another case.
        hint: &'static str,
    },
}

/// One method a rule admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodMatch(String);

impl MethodMatch {
    /// Parses a `methods` entry: an RFC 9110 token, not a standard method in another case.
    pub fn parse(raw: &str) -> Result<MethodMatch, MethodError> {
        if raw.len() > MAX_LEN || !is_token(raw) {
            return Err(MethodError::NotToken(raw.to_string()));
        }
        if let Some(hint) = STANDARD
            .iter()
            .find(|m| m.eq_ignore_ascii_case(raw) && **m != raw)
        {
            return Err(MethodError::WrongCase {
                given: raw.to_string(),
                hint,
            });
        }
        Ok(MethodMatch(raw.to_string()))
    }

    /// Whether the request's `:method` is this method (byte for byte).
    pub fn matches(&self, method: &str) -> bool {
        self.0 == method
    }

    /// The method as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for MethodMatch {
    type Error = MethodError;

    fn try_from(raw: &str) -> Result<Self, Self::Error> {
        MethodMatch::parse(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn standard_and_extension_methods_are_accepted() {
        for m in ["GET", "POST", "PATCH", "PROPFIND", "M-SEARCH", "BREW_1"] {
            assert_eq!(MethodMatch::parse(m).unwrap().as_str(), m);
        }
    }

    #[test]
    fn matching_is_case_sensitive() {
        let get = MethodMatch::parse("GET").unwrap();
        assert!(get.matches("GET"));
        assert!(!get.matches("get"));
        assert!(!get.matches("GET "));
        assert!(!get.matches("POST"));
    }

    #[test]
    fn a_standard_method_in_another_case_is_refused_with_a_hint() {
        for (given, hint) in [("get", "GET"), ("Post", "POST"), ("delete", "DELETE")] {
            let err = MethodMatch::parse(given).unwrap_err();
            assert_eq!(
                err,
                MethodError::WrongCase {
                    given: given.to_string(),
                    hint
                }
            );
            assert!(err
                .to_string()
                .contains(&format!("did you mean \"{hint}\"")));
        }
    }

    #[test]
    fn non_tokens_are_refused() {
        let long = "A".repeat(33);
        for m in ["", "GE T", "G/ET", "GET\r", "\u{e9}", long.as_str()] {
            assert_eq!(
                MethodMatch::parse(m),
                Err(MethodError::NotToken(m.to_string()))
            );
        }
    }

    #[test]
    fn an_extension_token_keeps_its_case() {
        // Not a standard method: a distinct token, matched as written.
        let m = MethodMatch::parse("propfind").unwrap();
        assert!(m.matches("propfind"));
        assert!(!m.matches("PROPFIND"));
    }
}
