//! Path matching: a rule's `paths` list against the normalized request path
//! ([`crate::normalize::normalize_path`]: dot segments removed, `//` merged, unreserved escapes
//! decoded, query split off).
//!
//! An entry is one of:
//! - a pattern string, matched segment by segment: `/api/orders`, `*` or `{name}` for exactly
//!   one non-empty segment, and a trailing `**` for any rest (zero or more segments);
//! - `{"exact": "/login"}`: the whole path, byte for byte;
//! - `{"prefix": "/admin/"}`: the path starts with these characters (`/api/orders` also matches
//!   `/api/ordersx`; end a prefix with `/` to stay within a directory).
//!
//! Every literal must already be in normalized form, so that it can ever match: a policy that
//! says `/a/../b` or `/%61dmin` is refused and tells how the filter sees that path. A malformed
//! request target has no normalized path and matches no path entry.

use crate::error::Quoted;
#[cfg(feature = "serde")]
use serde::Serialize;
use thiserror::Error;

use crate::error::json_path::{self, At, Json, ReadJson};

/// A `paths` entry as written: a pattern string, or an object with one of `exact` / `prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize), serde(untagged))]
pub enum RawPathMatch {
    /// `/api/{version}/items/*`, `/static/**`.
    Pattern(String),
    /// `{"exact": "/login"}`.
    Exact {
        /// The whole normalized path.
        exact: String,
    },
    /// `{"prefix": "/admin/"}`.
    Prefix {
        /// The start of the normalized path.
        prefix: String,
    },
}

impl RawPathMatch {
    /// The object field that holds the literal (`exact`, `prefix`), for error paths.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            RawPathMatch::Pattern(_) => None,
            RawPathMatch::Exact { .. } => Some("exact"),
            RawPathMatch::Prefix { .. } => Some("prefix"),
        }
    }
}

impl ReadJson for RawPathMatch {
    fn read_json(at: At<'_, '_>) -> Result<RawPathMatch, json_path::PathError> {
        const EXPECTED: &str =
            "a path pattern string or an object with one of \"exact\" or \"prefix\"";
        if let Json::Str(s) = at.json() {
            return Ok(RawPathMatch::Pattern(s.clone()));
        }
        // Unknown and repeated keys are named at the entry, as the serde visitor named them.
        let (mut exact, mut prefix) = (None, None);
        at.each_member(EXPECTED, &mut |m| match m.name {
            "exact" => m.read(&mut exact),
            "prefix" => m.read(&mut prefix),
            other => Err(m.object().error(format!(
                "unknown field `{other}`, expected `exact` or `prefix`"
            ))),
        })?;
        match (exact, prefix) {
            (Some(exact), None) => Ok(RawPathMatch::Exact { exact }),
            (None, Some(prefix)) => Ok(RawPathMatch::Prefix { prefix }),
            _ => Err(at.error("needs exactly one of `exact` or `prefix`")),
        }
    }
}

/// Why a `paths` entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PathError {
    /// Paths are matched from the root.
    #[error("{kind} {} must start with \"/\"", Quoted(.raw))]
    NotAbsolute {
        /// `path pattern`, `exact path` or `path prefix`.
        kind: &'static str,
        /// The entry as written.
        raw: String,
    },
    /// `**` anywhere but last.
    #[error("\"**\" must be the last segment")]
    RestNotLast,
    /// A wildcard glued to other characters.
    #[error("segment {}: \"*\" and \"{{name}}\" must be a whole segment", Quoted(.0))]
    PartialWildcard(String),
    /// `{}` or `{1x}`.
    #[error("segment {}: a named segment is {{name}} with name of [A-Za-z0-9_], not starting with a digit", Quoted(.0))]
    BadSegmentName(String),
    /// `{id}` twice in one pattern.
    #[error("named segment {{{0}}} appears twice")]
    DuplicateSegmentName(String),
    /// A literal that no normalized path can ever equal.
    #[error("{kind} {} is not in normalized form ({why}); write it as the filter sees paths: no \".\" or \"..\" segments, no \"//\", no query or fragment, no percent-encoded unreserved characters", Quoted(.raw))]
    NotNormalized {
        /// `path pattern`, `exact path` or `path prefix`.
        kind: &'static str,
        /// The entry as written.
        raw: String,
        /// How the filter would see it.
        why: String,
    },
}

/// One segment of a path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentPattern {
    /// Matches this exact (normalized) segment.
    Exact(String),
    /// `*` or `{name}`: any one non-empty segment.
    One,
}

/// A parsed path pattern: segments, then whether `**` (any rest, zero or more segments) ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    /// The segments after the leading `/`.
    pub segments: Vec<SegmentPattern>,
    /// Whether a trailing `**` matches any rest.
    pub rest: bool,
}

/// One compiled `paths` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// A segment pattern.
    Pattern(PathPattern),
    /// The whole normalized path.
    Exact(String),
    /// The start of the normalized path.
    Prefix(String),
}

/// Checks that `literal` is in the form the normalizer produces: normalizing it gives it back.
fn check_normalized(kind: &'static str, raw: &str, literal: &str) -> Result<(), PathError> {
    let why = match crate::normalize::normalize_path(literal) {
        Err(m) => m.to_string(),
        Ok(t) if t.query.is_some() => "query".to_string(),
        Ok(t) if t.path != literal => format!("a request for it is judged as {}", Quoted(&t.path)),
        Ok(_) => return Ok(()),
    };
    Err(PathError::NotNormalized {
        kind,
        raw: raw.to_string(),
        why,
    })
}

fn is_segment_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl PathPattern {
    /// Parses a path pattern (`/api/{version}/items/*`, `/static/**`).
    pub fn parse(raw: &str) -> Result<PathPattern, PathError> {
        const KIND: &str = "path pattern";
        let Some(body) = raw.strip_prefix('/') else {
            return Err(PathError::NotAbsolute {
                kind: KIND,
                raw: raw.to_string(),
            });
        };
        let parts: Vec<&str> = body.split('/').collect();
        let mut segments = Vec::with_capacity(parts.len());
        let mut names: Vec<&str> = Vec::new();
        let mut rest = false;
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            if *part == "**" {
                if !last {
                    return Err(PathError::RestNotLast);
                }
                rest = true;
            } else if *part == "*" {
                segments.push(SegmentPattern::One);
            } else if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if !is_segment_name(inner) {
                    return Err(PathError::BadSegmentName(part.to_string()));
                }
                if names.contains(&inner) {
                    return Err(PathError::DuplicateSegmentName(inner.to_string()));
                }
                names.push(inner);
                segments.push(SegmentPattern::One);
            } else if part.contains('*') || part.contains('{') || part.contains('}') {
                if part.as_bytes().windows(2).any(|w| w == b"**") && !last {
                    return Err(PathError::RestNotLast);
                }
                return Err(PathError::PartialWildcard(part.to_string()));
            } else {
                // Empty segments exist only at the end of a normalized path (`/a/` keeps its
                // trailing slash); anywhere else they are a `//` the normalizer merges.
                if part.is_empty() && !last {
                    return Err(PathError::NotNormalized {
                        kind: KIND,
                        raw: raw.to_string(),
                        why: "\"//\"".to_string(),
                    });
                }
                check_normalized(KIND, raw, &format!("/{part}"))?;
                segments.push(SegmentPattern::Exact((*part).to_string()));
            }
        }
        Ok(PathPattern { segments, rest })
    }

    /// Whether the normalized `path` matches, segment by segment.
    pub fn matches(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        let mut segments = rest.split('/');
        for want in &self.segments {
            let ok = match (want, segments.next()) {
                (_, None) => false,
                (SegmentPattern::Exact(e), Some(s)) => e == s,
                (SegmentPattern::One, Some(s)) => !s.is_empty(),
            };
            if !ok {
                return false;
            }
        }
        self.rest || segments.next().is_none()
    }
}

impl PathMatch {
    /// Compiles a `paths` entry, checking that every literal is in normalized form.
    pub fn parse(raw: &RawPathMatch) -> Result<PathMatch, PathError> {
        let literal = |kind: &'static str, value: &str| {
            if !value.starts_with('/') {
                return Err(PathError::NotAbsolute {
                    kind,
                    raw: value.to_string(),
                });
            }
            check_normalized(kind, value, value).map(|()| value.to_string())
        };
        match raw {
            RawPathMatch::Pattern(p) => PathPattern::parse(p).map(PathMatch::Pattern),
            RawPathMatch::Exact { exact } => literal("exact path", exact).map(PathMatch::Exact),
            RawPathMatch::Prefix { prefix } => {
                literal("path prefix", prefix).map(PathMatch::Prefix)
            }
        }
    }

    /// Whether the normalized request path matches; `None` (malformed target) never does.
    pub fn matches(&self, path: Option<&str>) -> bool {
        let Some(path) = path else {
            return false;
        };
        match self {
            PathMatch::Pattern(p) => p.matches(path),
            PathMatch::Exact(e) => path == e,
            PathMatch::Prefix(p) => path.starts_with(p.as_str()),
        }
    }
}

impl TryFrom<&RawPathMatch> for PathMatch {
    type Error = PathError;

    fn try_from(raw: &RawPathMatch) -> Result<Self, Self::Error> {
        PathMatch::parse(raw)
    }
}

#[cfg(test)]
mod tests;
