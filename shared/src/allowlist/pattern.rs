//! Parsing and validation of the pieces a rule is made of: path patterns, host patterns and
//! methods (sources are parsed by [`crate::identity`]). Each parser returns a typed
//! [`PolicyError`]; the compiler attaches the JSON path.

use thiserror::Error;

/// What is wrong with one value of a policy (the compiler adds the JSON path).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    /// A list that would match nothing.
    #[error("must not be empty (omit the field to match anything)")]
    EmptyList,
    /// Rule names are used in counters and decisions.
    #[error("rule name {0:?} must be 1 to 64 characters of [A-Za-z0-9_-]")]
    BadRuleName(String),
    /// Two rules with the same name.
    #[error("duplicate rule name {0:?} (also rules[{1}])")]
    DuplicateRuleName(String, usize),
    /// The same entry twice in one list.
    #[error("duplicate entry {0:?}")]
    DuplicateEntry(String),
    /// Methods are case-sensitive tokens.
    #[error("method {0:?} must be an uppercase HTTP token such as GET")]
    BadMethod(String),
    /// Paths are matched from the root.
    #[error("path pattern {0:?} must start with \"/\"")]
    PathNotAbsolute(String),
    /// `**` anywhere but last.
    #[error("\"**\" must be the last segment")]
    RestNotLast,
    /// A wildcard glued to other characters.
    #[error("segment {0:?}: \"*\" and \"{{name}}\" must be a whole segment")]
    PartialWildcard(String),
    /// `{}` or `{1x}`.
    #[error("segment {0:?}: a named segment is {{name}} with name of [A-Za-z0-9_], not starting with a digit")]
    BadSegmentName(String),
    /// `{id}` twice in one pattern.
    #[error("named segment {{{0}}} appears twice")]
    DuplicateSegmentName(String),
    /// A pattern that no normalized path can ever equal.
    #[error("path pattern {0:?} is not in normalized form ({1}); write it as the filter sees paths: no \".\" or \"..\" segments, no \"//\", no query or fragment, no percent-encoded unreserved characters")]
    PathNotNormalized(String, String),
    /// An empty or otherwise invalid host.
    #[error("host pattern {0:?} must be a host name (a.example.com), a wildcard (*.example.com) or an IP literal, lowercase, without port")]
    BadHost(String),
    /// A CIDR that does not parse.
    #[error("{0:?} is not a CIDR (10.0.0.0/8, 2001:db8::/32) or IP address")]
    BadCidr(String),
    /// A CIDR with host bits set is almost always a typo for a narrower or wider range.
    #[error("{0:?} has host bits set; did you mean {1}?")]
    CidrHostBits(String, String),
    /// Not a SPIFFE ID or prefix.
    #[error("principal {0:?} must be a SPIFFE ID spiffe://<trust domain>/<path>, exact or ending in \"/*\" for a prefix; {1}")]
    BadPrincipal(String, &'static str),
    /// Not a Kubernetes namespace name.
    #[error(
        "namespace {0:?} must be a Kubernetes namespace name (lowercase [a-z0-9-], at most 63)"
    )]
    BadNamespace(String),
    /// Query constraint with none or several of present/absent/equals.
    #[error("exactly one of \"present\": true, \"absent\": true or \"equals\" must be given")]
    QueryConstraintKind,
    /// `present: false` / `absent: false` say nothing.
    #[error("\"{0}\" can only be true (use \"{1}\": true for the opposite)")]
    QueryFlagFalse(&'static str, &'static str),
    /// Empty parameter name.
    #[error("query parameter name must not be empty")]
    EmptyQueryName,
    /// Local responses must be errors.
    #[error("status {0} must be between 400 and 599")]
    BadStatus(u32),
    /// A header value that cannot be sent.
    #[error("content type {0:?} must be visible ASCII")]
    BadContentType(String),
    /// A huge body in every deny response is a mistake.
    #[error("body is {0} bytes; at most 4096")]
    BodyTooLarge(usize),
}

/// One segment of a path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SegmentPattern {
    /// Matches this exact (normalized) segment.
    Exact(String),
    /// `*` or `{name}`: any one non-empty segment.
    One,
}

/// A parsed path pattern: segments, then whether `**` (any rest, zero or more segments) ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathPattern {
    pub(crate) segments: Vec<SegmentPattern>,
    pub(crate) rest: bool,
}

/// Checks that an exact segment is in the form the normalizer produces, so it can ever match:
/// normalizing `/<segment>` must give it back unchanged.
fn check_exact_segment(seg: &str) -> Result<(), String> {
    let probe = format!("/{seg}");
    match crate::normalize::normalize_path(&probe) {
        Err(m) => Err(format!("{m}")),
        Ok(t) if t.query.is_some() => Err("query".to_string()),
        Ok(t) if t.path != probe => Err(format!("a request for it is judged as {:?}", t.path)),
        Ok(_) => Ok(()),
    }
}

fn is_segment_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses a path pattern (`/api/{version}/items/*`, `/static/**`).
pub(crate) fn parse_path_pattern(raw: &str) -> Result<PathPattern, PolicyError> {
    let Some(body) = raw.strip_prefix('/') else {
        return Err(PolicyError::PathNotAbsolute(raw.to_string()));
    };
    let parts: Vec<&str> = body.split('/').collect();
    let mut segments = Vec::with_capacity(parts.len());
    let mut names: Vec<&str> = Vec::new();
    let mut rest = false;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if *part == "**" {
            if !last {
                return Err(PolicyError::RestNotLast);
            }
            rest = true;
        } else if *part == "*" {
            segments.push(SegmentPattern::One);
        } else if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if !is_segment_name(inner) {
                return Err(PolicyError::BadSegmentName(part.to_string()));
            }
            if names.contains(&inner) {
                return Err(PolicyError::DuplicateSegmentName(inner.to_string()));
            }
            names.push(inner);
            segments.push(SegmentPattern::One);
        } else if part.contains('*') || part.contains('{') || part.contains('}') {
            if part.contains("**") && !last {
                return Err(PolicyError::RestNotLast);
            }
            return Err(PolicyError::PartialWildcard(part.to_string()));
        } else {
            // Empty segments exist only at the end of a normalized path (`/a/` keeps its
            // trailing slash); anywhere else they are a `//` the normalizer merges.
            if part.is_empty() && !last {
                return Err(PolicyError::PathNotNormalized(
                    raw.to_string(),
                    "\"//\"".to_string(),
                ));
            }
            check_exact_segment(part)
                .map_err(|why| PolicyError::PathNotNormalized(raw.to_string(), why))?;
            segments.push(SegmentPattern::Exact((*part).to_string()));
        }
    }
    Ok(PathPattern { segments, rest })
}

/// A parsed host pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostPattern {
    /// This host name (lowercase, no trailing dot) or IP literal.
    Exact(String),
    /// `*.suffix`: any name with one or more labels before `.suffix`.
    Suffix(String),
}

fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        })
}

/// Parses a host pattern. Case and a trailing dot are folded, as the request host is.
pub(crate) fn parse_host_pattern(raw: &str) -> Result<HostPattern, PolicyError> {
    let bad = || PolicyError::BadHost(raw.to_string());
    let lower = raw.to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if let Some(suffix) = name.strip_prefix("*.") {
        return if is_dns_name(suffix) {
            Ok(HostPattern::Suffix(suffix.to_string()))
        } else {
            Err(bad())
        };
    }
    if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        // The request host keeps IPv6 literals bracketed in canonical compressed form.
        return match v6.parse::<std::net::Ipv6Addr>() {
            Ok(addr) => Ok(HostPattern::Exact(format!("[{addr}]"))),
            Err(_) => Err(bad()),
        };
    }
    if is_dns_name(name) {
        Ok(HostPattern::Exact(name.to_string()))
    } else {
        Err(bad())
    }
}

/// Checks a method token: uppercase letters, digits and the token symbols `-_`.
pub(crate) fn check_method(raw: &str) -> Result<(), PolicyError> {
    let ok = !raw.is_empty()
        && raw.len() <= 32
        && raw
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(PolicyError::BadMethod(raw.to_string()))
    }
}

/// Checks a rule name (it becomes part of a stat name).
pub(crate) fn check_rule_name(raw: &str) -> Result<(), PolicyError> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(PolicyError::BadRuleName(raw.to_string()))
    }
}
