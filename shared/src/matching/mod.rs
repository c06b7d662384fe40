//! One vocabulary for what a rule says about a request, shared by allowlist rules and mirror
//! selectors: one matcher per file ([`method`], [`host`], [`path`], [`header`], [`query`],
//! [`source`]), each with its raw form, a parser with a typed error and a match function,
//! composed here into [`RequestMatch`] and matched against [`RequestFacts`], which a filter
//! computes once per request.
//!
//! # The semantics, the same in every policy
//! - An **absent** field matches anything. A **present** list must hold by one of its entries
//!   (`methods`, `hosts`, `paths`, each source kind) or by all of them (`headers`, `query`).
//! - An **empty** list, or an object that names nothing (`"sources": {}`, `"request": {}`), is
//!   an error naming its JSON path: it would match nothing (or everything), which is never what
//!   was meant. The same entry twice in one list is an error too.
//! - **Methods** are case-sensitive RFC 9110 tokens; a standard method in another case (`get`)
//!   is refused with a hint.
//! - **Hosts** and **paths** are compared with the normalized request ([`crate::normalize`]):
//!   lowercase host without port or trailing dot; the path with dot segments removed, `//`
//!   merged and unreserved escapes decoded. Literals in a policy must be written in that form.
//!   A malformed target or host matches no host, path or query entry.
//! - **Sources** come from the connection, never from headers (see [`source`]).
//!
//! Every error is a [`ConfigError`] carrying the JSON path of the value at fault.

pub mod facts;
pub mod header;
pub mod host;
pub mod method;
pub mod path;
pub mod query;
pub mod source;

#[cfg(test)]
mod tests;

#[cfg(feature = "serde")]
use serde::Serialize;

use crate::error::json_path::{At, PathError, ReadJson};
use thiserror::Error;

use crate::ConfigError;

pub use facts::RequestFacts;
pub use header::{HeaderMatch, RawHeaderMatch};
pub use host::HostMatch;
pub use method::MethodMatch;
pub use path::{PathMatch, RawPathMatch};
pub use query::{QueryMatch, RawQueryMatch};
pub use source::{Peer, PeerIdentity, RawSources, SourceMatch};

/// What is wrong with a list as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ListError {
    /// A list that would match nothing.
    #[error("must not be empty (omit the field to match anything)")]
    Empty,
    /// The same entry twice (after folding case, trailing dots, ...).
    #[error("duplicate entry (same as {0})")]
    Duplicate(String),
    /// An object that names no condition.
    #[error("must not be empty: name at least one condition (omit the field to match anything)")]
    NothingNamed,
}

/// Compiles an optional list at JSON path `path`: absent is `None` (matches anything), empty is
/// an error, every entry is compiled by `compile(entry_path, entry)` and no two may be equal.
pub(crate) fn compile_entries<R, T: PartialEq>(
    path: &str,
    raw: Option<&[R]>,
    mut compile: impl FnMut(&str, &R) -> Result<T, ConfigError>,
) -> Result<Option<Vec<T>>, ConfigError> {
    let Some(items) = raw else {
        return Ok(None);
    };
    if items.is_empty() {
        return Err(ConfigError::at(path, ListError::Empty));
    }
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let compiled = compile(&item_path, item)?;
        if let Some(j) = out.iter().position(|seen| *seen == compiled) {
            return Err(ConfigError::at(
                item_path,
                ListError::Duplicate(format!("{path}[{j}]")),
            ));
        }
        out.push(compiled);
    }
    Ok(Some(out))
}

/// [`compile_entries`] for entries whose parser names no sub-field.
pub(crate) fn compile_list<R, T: PartialEq, E: std::error::Error>(
    path: &str,
    raw: Option<&[R]>,
    mut parse: impl FnMut(&R) -> Result<T, E>,
) -> Result<Option<Vec<T>>, ConfigError> {
    compile_entries(path, raw, |at, item| {
        parse(item).map_err(|e| ConfigError::at(at, e))
    })
}

/// The JSON path of a sub-field of the value at `path`, or `path` itself.
fn field_path(path: &str, field: Option<&str>) -> String {
    match field {
        Some(f) => format!("{path}.{f}"),
        None => path.to_string(),
    }
}

/// Compiles a `methods` list at `path`.
pub fn compile_methods(
    path: &str,
    raw: Option<&[String]>,
) -> Result<Option<Vec<MethodMatch>>, ConfigError> {
    compile_list(path, raw, |m| MethodMatch::parse(m))
}

/// Compiles a `hosts` list at `path`.
pub fn compile_hosts(
    path: &str,
    raw: Option<&[String]>,
) -> Result<Option<Vec<HostMatch>>, ConfigError> {
    compile_list(path, raw, |h| HostMatch::parse(h))
}

/// Compiles a `paths` list at `path` (an `exact`/`prefix` error names that field).
pub fn compile_paths(
    path: &str,
    raw: Option<&[RawPathMatch]>,
) -> Result<Option<Vec<PathMatch>>, ConfigError> {
    compile_entries(path, raw, |at, p| {
        PathMatch::parse(p).map_err(|e| ConfigError::at(field_path(at, p.field()), e))
    })
}

/// Compiles a `headers` list at `path`.
pub fn compile_headers(
    path: &str,
    raw: Option<&[RawHeaderMatch]>,
) -> Result<Option<Vec<HeaderMatch>>, ConfigError> {
    compile_entries(path, raw, |at, h| {
        HeaderMatch::parse(h).map_err(|(field, e)| ConfigError::at(field_path(at, field), e))
    })
}

/// Compiles a `query` list at `path`.
pub fn compile_query(
    path: &str,
    raw: Option<&[RawQueryMatch]>,
) -> Result<Option<Vec<QueryMatch>>, ConfigError> {
    compile_entries(path, raw, |at, q| {
        QueryMatch::parse(q).map_err(|(field, e)| ConfigError::at(field_path(at, field), e))
    })
}

/// Conditions on the request itself, as written (the mirror's `request` selector; allowlist
/// rules carry the same fields at their top level).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct RawRequestMatch {
    /// Methods, case-sensitive (`GET`, `POST`, ...); one must match.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub methods: Option<Vec<String>>,
    /// Hosts: exact or `*.example.com`; one must match.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub hosts: Option<Vec<String>>,
    /// Paths over the normalized path: patterns, `{"exact"}` or `{"prefix"}`; one must match.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub paths: Option<Vec<RawPathMatch>>,
    /// Header conditions; all must hold.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub headers: Option<Vec<RawHeaderMatch>>,
    /// Query parameter constraints; all must hold.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub query: Option<Vec<RawQueryMatch>>,
}

/// Compiled conditions on the request; `None` fields were not named and match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMatch {
    pub(crate) methods: Option<Vec<MethodMatch>>,
    pub(crate) hosts: Option<Vec<HostMatch>>,
    pub(crate) paths: Option<Vec<PathMatch>>,
    pub(crate) headers: Option<Vec<HeaderMatch>>,
    pub(crate) query: Option<Vec<QueryMatch>>,
}

impl RequestMatch {
    /// Compiles a `request` selector found at JSON path `path`; `None` (absent) matches any
    /// request.
    pub fn compile(path: &str, raw: Option<&RawRequestMatch>) -> Result<RequestMatch, ConfigError> {
        let Some(raw) = raw else {
            return Ok(RequestMatch::default());
        };
        if *raw == RawRequestMatch::default() {
            return Err(ConfigError::at(path, ListError::NothingNamed));
        }
        Ok(RequestMatch {
            methods: compile_methods(&format!("{path}.methods"), raw.methods.as_deref())?,
            hosts: compile_hosts(&format!("{path}.hosts"), raw.hosts.as_deref())?,
            paths: compile_paths(&format!("{path}.paths"), raw.paths.as_deref())?,
            headers: compile_headers(&format!("{path}.headers"), raw.headers.as_deref())?,
            query: compile_query(&format!("{path}.query"), raw.query.as_deref())?,
        })
    }

    /// Whether every named condition holds for the request.
    pub fn matches(&self, facts: &RequestFacts<'_>) -> bool {
        self.methods
            .as_ref()
            .is_none_or(|ms| ms.iter().any(|m| m.matches(facts.method)))
            && self
                .hosts
                .as_ref()
                .is_none_or(|hs| hs.iter().any(|h| h.matches(facts.host())))
            && self
                .paths
                .as_ref()
                .is_none_or(|ps| ps.iter().any(|p| p.matches(facts.path())))
            && self
                .headers
                .as_ref()
                .is_none_or(|hs| hs.iter().all(|h| h.matches(facts.headers)))
            && self.query.as_ref().is_none_or(|qs| {
                facts
                    .target()
                    .is_some_and(|t| qs.iter().all(|q| q.matches(t.query)))
            })
    }

    /// Whether any condition reads the request headers.
    pub fn needs_headers(&self) -> bool {
        self.headers.is_some()
    }
}

impl ReadJson for RawRequestMatch {
    fn read_json(at: At<'_, '_>) -> Result<RawRequestMatch, PathError> {
        let mut f = at.fields(
            "struct RawRequestMatch",
            &["methods", "hosts", "paths", "headers", "query"],
        )?;
        let value = RawRequestMatch {
            methods: f.get("methods").flatten(),
            hosts: f.get("hosts").flatten(),
            paths: f.get("paths").flatten(),
            headers: f.get("headers").flatten(),
            query: f.get("query").flatten(),
        };
        f.finish(value)
    }
}
