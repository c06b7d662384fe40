//! Request-target normalization: the one canonical path and host that the allowlist judges,
//! with ambiguous encodings rejected rather than guessed at.
//!
//! # The canonical path
//! [`normalize_path`] turns an origin-form request target (`:path`) into the path the policy is
//! matched against and, with `rewrite_path`, the path the upstream receives:
//!
//! 1. the fragment (`#...`) is dropped, then the query (`?...`) is split off and kept raw;
//! 2. percent-escapes of unreserved characters (`ALPHA DIGIT - . _ ~`) are decoded once;
//!    every other escape is kept, with its hex digits uppercased (`%c3%a9` -> `%C3%A9`);
//! 3. characters that may not appear raw in a path (space, `"`, `<`, `>`, `[`, `]`, `^`,
//!    `` ` ``, `{`, `|`, `}` and every non-ASCII character) are percent-encoded, so that a raw
//!    and an encoded spelling of the same byte give the same path;
//! 4. `.` and `..` segments are removed as in RFC 3986 section 5.2.4 (`remove_dot_segments`);
//!    `%2e` counts as a dot since it was decoded in step 2; `..` above the root stays at the
//!    root;
//! 5. runs of `/` are merged into one. A trailing `/` is kept (`/a/` and `/a` differ).
//!
//! The result is idempotent: normalizing a normalized path returns it unchanged.
//!
//! # What is rejected
//! A request whose meaning depends on which parser reads it is [`Malformed`], never guessed at:
//! encoded `/` or `\` (`%2F`, `%5C`); raw `\`; NUL and control characters, raw or encoded,
//! which here means C0 controls (U+0000-U+001F), DEL (U+007F) *and* the C1 controls
//! (U+0080-U+009F, e.g. `%C2%85`, which some runtimes treat as a line break); invalid percent
//! encoding (`%zz`, `%4`); percent-decoded bytes that are not UTF-8, with overlong forms (`%c0%af`)
//! reported apart; double encoding (`%25XY`) unless `XY` decodes to a letter, a digit, `-`, `_`
//! or `~` (so `%252f`, `%255c`, `%2500`, `%252e` and `%25c0` are refused: a server that decodes
//! twice would see a separator, a dot, a NUL or a byte of an overlong sequence); a `.` or `..`
//! segment carrying a `;` parameter, raw or as `%3B` (`/..;x/`, the Tomcat traversal);
//! a `..` that would remove an empty segment (`/a//../b`: RFC 3986 says `/a/b`, a server that
//! merges slashes first says `/b`); and any target that is not origin-form (`*`, absolute-form
//! `http://host/p`, an empty target, a path not starting with `/`). Envoy hands filters an
//! origin-form `:path` (it rewrites absolute-form requests itself), so the last case only
//! arises for direct callers.
//!
//! The query is kept raw (decoding it is [`query_pairs`]'s job); only raw control characters
//! in it are rejected. The fragment is discarded unexamined.
//!
//! Case is preserved (paths are case-sensitive per RFC 3986). Aliasing that only some upstreams
//! apply (case-insensitive file systems, Windows dropping trailing dots and spaces) is not
//! guessed at; a policy in front of such an upstream must be written with it in mind.
//!
//! # Compared with Envoy's `normalize_path` + `merge_slashes`
//! `test-harness/e2e/tests/e2e_normalize.rs` checks this differentially against a real Envoy.
//! Where both accept, the paths agree except in spelling (Envoy keeps the case of the hex
//! digits of escapes and leaves raw `[`/`]` unencoded) and in one Envoy quirk (a path of only
//! slashes and dot segments becomes `//`). Envoy forwards what we reject for the reasons above
//! other than encoded separators and `%00` (which it rejects too): it passes invalid escapes
//! through, does not validate UTF-8, resolves `..;x` as `..`, resolves `..` before merging
//! slashes and turns a raw `\` into `/`.
//!
//! # Hosts
//! [`normalize_host`] lowercases the `:authority`, strips one trailing dot and drops the port
//! when it is the scheme's default; IPv6 literals are kept in brackets in their canonical
//! compressed form.

mod host;
mod path;
mod query;

#[cfg(test)]
mod tests;

pub use host::{normalize_host, NormalizedHost};
pub use path::{normalize_path, NormalizedTarget};
pub use query::query_pairs;

/// Why a request target (or host) was refused as ambiguous or invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Malformed {
    /// `%2F` in the path: an encoded separator that upstreams disagree on.
    #[error("encoded slash (%2F) in path")]
    EncodedSlash,
    /// `%5C` in the path: an encoded backslash, a separator on some servers.
    #[error("encoded backslash (%5C) in path")]
    EncodedBackslash,
    /// A raw `\` in the path, a separator on some servers.
    #[error("backslash in path")]
    Backslash,
    /// NUL, a C0 or C1 control character or DEL, raw or percent-encoded.
    #[error("NUL or control character in request target")]
    NulOrControl,
    /// A `%` not followed by two hex digits.
    #[error("invalid percent encoding in path")]
    InvalidPercentEncoding,
    /// Percent-decoded bytes that are not UTF-8 (stray continuation byte, truncated sequence,
    /// surrogate, beyond U+10FFFF).
    #[error("percent-decoded path is not valid UTF-8")]
    InvalidUtf8,
    /// An overlong UTF-8 sequence (`%c0%af` for `/`), the classic filter bypass.
    #[error("overlong UTF-8 sequence in path")]
    OverlongUtf8,
    /// `%25` followed by an escape of a reserved or special character (`%252f`).
    #[error("double percent-encoding of a special character in path")]
    DoubleEncoding,
    /// A `.` or `..` segment with a `;` parameter (`/..;x/`).
    #[error("path parameter on a dot segment")]
    DotSegmentParameter,
    /// A `..` that would remove an empty segment (`/a//../b`), so the result depends on whether
    /// slashes are merged before or after dot segments are removed.
    #[error("dot-dot segment after an empty segment")]
    AmbiguousDotSegment,
    /// Not an origin-form target: empty, `*`, absolute-form, or not starting with `/`.
    #[error("request target is not origin-form (must start with /)")]
    NotOriginForm,
    /// An empty host.
    #[error("empty host")]
    EmptyHost,
    /// A host with userinfo (`user@host`).
    #[error("userinfo in host")]
    HostUserinfo,
    /// A host that is not a DNS name, IPv4 address or bracketed IPv6 literal.
    #[error("invalid host")]
    InvalidHost,
    /// A port that is not a number in 1..=65535.
    #[error("invalid port")]
    InvalidPort,
}

impl Malformed {
    /// A stable snake_case name for logs, metrics and the filter-state `reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Malformed::EncodedSlash => "encoded_slash",
            Malformed::EncodedBackslash => "encoded_backslash",
            Malformed::Backslash => "backslash",
            Malformed::NulOrControl => "nul_or_control",
            Malformed::InvalidPercentEncoding => "invalid_percent_encoding",
            Malformed::InvalidUtf8 => "invalid_utf8",
            Malformed::OverlongUtf8 => "overlong_utf8",
            Malformed::DoubleEncoding => "double_encoding",
            Malformed::DotSegmentParameter => "dot_segment_parameter",
            Malformed::AmbiguousDotSegment => "ambiguous_dot_segment",
            Malformed::NotOriginForm => "not_origin_form",
            Malformed::EmptyHost => "empty_host",
            Malformed::HostUserinfo => "host_userinfo",
            Malformed::InvalidHost => "invalid_host",
            Malformed::InvalidPort => "invalid_port",
        }
    }

    /// Every variant, for exhaustive tests and metric registration.
    pub const ALL: [Malformed; 15] = [
        Malformed::EncodedSlash,
        Malformed::EncodedBackslash,
        Malformed::Backslash,
        Malformed::NulOrControl,
        Malformed::InvalidPercentEncoding,
        Malformed::InvalidUtf8,
        Malformed::OverlongUtf8,
        Malformed::DoubleEncoding,
        Malformed::DotSegmentParameter,
        Malformed::AmbiguousDotSegment,
        Malformed::NotOriginForm,
        Malformed::EmptyHost,
        Malformed::HostUserinfo,
        Malformed::InvalidHost,
        Malformed::InvalidPort,
    ];
}

/// Value of an ASCII hex digit.
pub(crate) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes the two hex digits at `bytes[at]` and `bytes[at + 1]`.
pub(crate) fn hex_pair(bytes: &[u8], at: usize) -> Option<u8> {
    let hi = hex_value(*bytes.get(at)?)?;
    let lo = hex_value(*bytes.get(at + 1)?)?;
    Some(hi << 4 | lo)
}
