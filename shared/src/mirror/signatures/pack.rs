//! Rule packs: the JSON format signatures are written in, and its validation.
//!
//! A pack is `{"pack": name, "version": ..., "rules": [...]}`; each rule names where to look
//! (`in`, optionally narrowed to named `params` and `headers`), how to decode what it looks at
//! (`transforms`), when it applies (`when`: methods and path conditions) and what to find
//! (`match`: literal sets). The format is documented in `filters/meshsight/docs/signatures.md`.
//! The built-in pack ([`BUILTIN_PACK`]) is a data file compiled into the module (deflated:
//! [`BUILTIN_PACK_DEFLATED`], inflated once per configure); packs in the policy add rules,
//! override built-in rules with the same `id`, or switch rules off.

use crate::error::json_path::{At, PathError, ReadJson};
use crate::error::Quoted;
use crate::mirror::decode::inflate::{self, Coding, Outcome};
use crate::ConfigError;

#[cfg(test)]
mod builtin_tests;

/// The built-in pack's text, `signatures/builtin.json` minified by `build.rs` (for tools and
/// tests: the module carries [`BUILTIN_PACK_DEFLATED`] instead).
pub const BUILTIN_PACK: &str = include_str!(concat!(env!("OUT_DIR"), "/signatures.json"));
/// The built-in pack as the module carries it: [`BUILTIN_PACK`] deflated by `build.rs` (a raw
/// deflate stream, about a quarter of the text's bytes).
pub const BUILTIN_PACK_DEFLATED: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/signatures.json.deflate"));
/// Bytes of [`BUILTIN_PACK`], evaluated at compile time (the text itself is not linked).
const BUILTIN_PACK_LEN: usize = BUILTIN_PACK.len();

/// The text of a built-in pack from its deflated copy, which must inflate to exactly `len` bytes;
/// `name` (`<built-in pack>`) is the path a broken copy is reported at.
pub(crate) fn inflate_builtin(
    deflated: &[u8],
    len: usize,
    name: &str,
) -> Result<Vec<u8>, ConfigError> {
    // One byte of room past `len`, so a complete stream ends as `Complete`, never as `Capped`.
    let inflated = inflate::inflate(Coding::Deflate, deflated, len.saturating_add(1));
    if inflated.outcome != Outcome::Complete || inflated.bytes.len() != len {
        return Err(ConfigError::new(
            name,
            format!("does not inflate ({} of {len} bytes)", inflated.bytes.len()),
        ));
    }
    Ok(inflated.bytes)
}

/// A built-in pack from its deflated copy ([`inflate_builtin`]), parsed and validated as any
/// pack; every error is reported under `name`.
pub(crate) fn load_builtin(deflated: &[u8], len: usize, name: &str) -> Result<Pack, ConfigError> {
    let text = inflate_builtin(deflated, len, name)?;
    Pack::from_json(&text).map_err(|e| ConfigError::new(format!("{name}.{}", e.path), e.reason))
}

/// Most literal groups (`all`) in one rule.
pub const MAX_GROUPS: usize = 32;
/// Longest literal accepted, in bytes.
pub const MAX_LITERAL_LEN: usize = 256;

/// A rule pack as written.
#[derive(Debug, Clone)]
pub struct RawPack {
    /// Pack name (reported by `meshsight signatures test`).
    pub pack: String,
    /// Free-form version, e.g. a date.
    pub version: Option<String>,
    /// What the pack is for.
    pub description: Option<String>,
    /// The rules, in report order.
    pub rules: Vec<RawRule>,
}

/// How bad a hit is (for the SOC's triage; the mirror copies every hit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Informational.
    Info,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

/// Where a rule looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawLocation {
    /// The path, without the query.
    Path,
    /// The query string whole, and each query parameter's name and value.
    Query,
    /// Each parameter's name and value: query, form body and JSON body (keys and strings).
    Params,
    /// Each header, as `name: value`.
    Headers,
    /// The body (first `max_body_bytes`) whole, and its form, JSON or multipart parameters.
    Body,
    /// Only what a `multipart/form-data` body's parts hold: each part's name, filename and
    /// value (they are `body` parameters too).
    Multipart,
    /// Only what a `gzip` or `deflate` body inflates to (it is `body` too).
    Inflated,
    /// Only base64-decoded views: `Basic` credentials (the `authorization` header's value,
    /// `user:password`; they are `headers` too).
    Base64,
    /// The response status code, as three digits (a response rule).
    Status,
    /// Each response header, as `name: value` (a response rule).
    ResponseHeaders,
    /// The first `max_response_bytes` of the response body (a response rule).
    ResponseBody,
}

/// A decoding step applied to what a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// Percent-decode repeatedly (`%252e` -> `.`, `%uXXXX` too; `+` is a space in queries and
    /// forms).
    PercentDecode,
    /// Replace `\uXXXX` and `\xXX` escapes by their character.
    Unescape,
    /// Also match after evaluating the Log4j lookups that hide a string (`${lower:j}`,
    /// `${::-j}`, `${env:X:-j}`, `${date:'j'}`).
    Log4jLookups,
    /// Match ASCII case-insensitively (without it, literals match case-sensitively).
    Lowercase,
    /// Resolve `.`/`..` segments, merge `//`, read `\` as `/`, drop `;params` (path only).
    NormalizePath,
}

/// Conditions on the request that must hold for the rule to count.
#[derive(Debug, Clone, Default)]
pub struct RawWhen {
    /// Request methods (exact, case-sensitive); any one.
    pub methods: Vec<String>,
    /// The decoded, normalized, lower-cased path starts with one of these...
    pub path_prefix: Vec<String>,
    /// ...or ends with one of these (a trailing `/` ignored)...
    pub path_suffix: Vec<String>,
    /// ...or contains one of these. With no path list, any path.
    pub path_contains: Vec<String>,
}

/// Where a literal must sit in the text it is found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// Anywhere (default).
    Anywhere,
    /// At the start.
    Start,
    /// At the end.
    End,
}

/// The match: every `all` group and the `any` group need one literal in the same text, and
/// no `none` literal may be there.
#[derive(Debug, Clone, Default)]
pub struct RawMatch {
    /// One of these literals.
    pub any: Vec<String>,
    /// One literal of each group.
    pub all: Vec<Vec<String>>,
    /// None of these literals.
    pub none: Vec<String>,
    /// Where the `any` literals must sit (`all` groups match anywhere).
    pub anchor: Option<Anchor>,
}

/// One rule as written.
#[derive(Debug, Clone)]
pub struct RawRule {
    /// Stable id (`A-Z a-z 0-9 _ - .`, up to 64), reported in decisions, records and counters.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Category (same alphabet as `id`), reported in the decision's `signatures`.
    pub category: String,
    /// Severity.
    pub severity: Severity,
    /// CVE ids, ATT&CK technique ids, advisories.
    pub references: Vec<String>,
    /// Where to look.
    pub locations: Vec<RawLocation>,
    /// Views excluded from `in` (e.g. `["inflated"]`: not in decompressed bodies).
    pub not_in: Vec<RawLocation>,
    /// Only these parameters (names, case-insensitive) count for `params`, `query` and `body`
    /// parameters.
    pub params: Vec<String>,
    /// Only these headers (names, case-insensitive) count for `headers`.
    pub headers: Vec<String>,
    /// Decoding steps; default `percent_decode`, `unescape`, `lowercase`.
    pub transforms: Vec<Transform>,
    /// Conditions on the request.
    pub when: RawWhen,
    /// What to find.
    pub matcher: RawMatch,
    /// `false` keeps the rule in the pack but switched off.
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

fn default_transforms() -> Vec<Transform> {
    vec![
        Transform::PercentDecode,
        Transform::Unescape,
        Transform::Lowercase,
    ]
}

impl ReadJson for RawPack {
    fn read_json(at: At<'_, '_>) -> Result<RawPack, PathError> {
        let mut f = at.fields("struct RawPack", RAW_PACK_FIELDS)?;
        let value = RawPack {
            pack: f.required("pack"),
            version: f.get("version").flatten(),
            description: f.get("description").flatten(),
            rules: f.required("rules"),
        };
        f.finish(value)
    }
}

const RAW_PACK_FIELDS: &[&str] = &["pack", "version", "description", "rules"];

impl ReadJson for Severity {
    fn read_json(at: At<'_, '_>) -> Result<Severity, PathError> {
        Ok(match at.unit_variant("enum Severity", SEVERITY_VARIANTS)? {
            0 => Severity::Info,
            1 => Severity::Low,
            2 => Severity::Medium,
            3 => Severity::High,
            _ => Severity::Critical,
        })
    }
}

const SEVERITY_VARIANTS: &[&str] = &["info", "low", "medium", "high", "critical"];

impl ReadJson for RawLocation {
    fn read_json(at: At<'_, '_>) -> Result<RawLocation, PathError> {
        Ok(
            match at.unit_variant("enum RawLocation", RAW_LOCATION_VARIANTS)? {
                0 => RawLocation::Path,
                1 => RawLocation::Query,
                2 => RawLocation::Params,
                3 => RawLocation::Headers,
                4 => RawLocation::Body,
                5 => RawLocation::Multipart,
                6 => RawLocation::Inflated,
                7 => RawLocation::Base64,
                8 => RawLocation::Status,
                9 => RawLocation::ResponseHeaders,
                _ => RawLocation::ResponseBody,
            },
        )
    }
}

const RAW_LOCATION_VARIANTS: &[&str] = &[
    "path",
    "query",
    "params",
    "headers",
    "body",
    "multipart",
    "inflated",
    "base64",
    "status",
    "response_headers",
    "response_body",
];

impl ReadJson for Transform {
    fn read_json(at: At<'_, '_>) -> Result<Transform, PathError> {
        Ok(
            match at.unit_variant("enum Transform", TRANSFORM_VARIANTS)? {
                0 => Transform::PercentDecode,
                1 => Transform::Unescape,
                2 => Transform::Log4jLookups,
                3 => Transform::Lowercase,
                _ => Transform::NormalizePath,
            },
        )
    }
}

const TRANSFORM_VARIANTS: &[&str] = &[
    "percent_decode",
    "unescape",
    "log4j_lookups",
    "lowercase",
    "normalize_path",
];

impl ReadJson for RawWhen {
    fn read_json(at: At<'_, '_>) -> Result<RawWhen, PathError> {
        let mut f = at.fields("struct RawWhen", RAW_WHEN_FIELDS)?;
        let value = RawWhen {
            methods: f.get("methods").unwrap_or_default(),
            path_prefix: f.get("path_prefix").unwrap_or_default(),
            path_suffix: f.get("path_suffix").unwrap_or_default(),
            path_contains: f.get("path_contains").unwrap_or_default(),
        };
        f.finish(value)
    }
}

const RAW_WHEN_FIELDS: &[&str] = &["methods", "path_prefix", "path_suffix", "path_contains"];

impl ReadJson for Anchor {
    fn read_json(at: At<'_, '_>) -> Result<Anchor, PathError> {
        Ok(match at.unit_variant("enum Anchor", ANCHOR_VARIANTS)? {
            0 => Anchor::Anywhere,
            1 => Anchor::Start,
            _ => Anchor::End,
        })
    }
}

const ANCHOR_VARIANTS: &[&str] = &["anywhere", "start", "end"];

impl ReadJson for RawMatch {
    fn read_json(at: At<'_, '_>) -> Result<RawMatch, PathError> {
        let mut f = at.fields("struct RawMatch", RAW_MATCH_FIELDS)?;
        let value = RawMatch {
            any: f.get("any").unwrap_or_default(),
            all: f.get("all").unwrap_or_default(),
            none: f.get("none").unwrap_or_default(),
            anchor: f.get("anchor").flatten(),
        };
        f.finish(value)
    }
}

const RAW_MATCH_FIELDS: &[&str] = &["any", "all", "none", "anchor"];

impl ReadJson for RawRule {
    fn read_json(at: At<'_, '_>) -> Result<RawRule, PathError> {
        let mut f = at.fields("struct RawRule", RAW_RULE_FIELDS)?;
        let value = RawRule {
            id: f.required("id"),
            name: f.required("name"),
            category: f.required("category"),
            severity: f.required_or("severity", Severity::Info),
            references: f.get("references").unwrap_or_default(),
            locations: f.required("in"),
            not_in: f.get("not_in").unwrap_or_default(),
            params: f.get("params").unwrap_or_default(),
            headers: f.get("headers").unwrap_or_default(),
            transforms: f.get("transforms").unwrap_or_else(default_transforms),
            when: f.get("when").unwrap_or_default(),
            matcher: f.required("match"),
            enabled: f.get("enabled").unwrap_or_else(yes),
        };
        f.finish(value)
    }
}

const RAW_RULE_FIELDS: &[&str] = &[
    "id",
    "name",
    "category",
    "severity",
    "references",
    "in",
    "not_in",
    "params",
    "headers",
    "transforms",
    "when",
    "match",
    "enabled",
];

/// Where a piece of the request was found (bit flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locations(pub(crate) u16);

impl Locations {
    /// Nowhere.
    pub const NONE: Locations = Locations(0);
    /// The path.
    pub const PATH: Locations = Locations(1);
    /// The query, whole and by parameter.
    pub const QUERY: Locations = Locations(2);
    /// A parameter (query, form or JSON body).
    pub const PARAMS: Locations = Locations(4);
    /// A header line.
    pub const HEADERS: Locations = Locations(8);
    /// The body, whole and by parameter.
    pub const BODY: Locations = Locations(16);
    /// A multipart part (with `BODY` and `PARAMS`).
    pub const MULTIPART: Locations = Locations(32);
    /// An inflated body (with `BODY`).
    pub const INFLATED: Locations = Locations(64);
    /// A base64-decoded view (`Basic` credentials: with `HEADERS`).
    pub const BASE64: Locations = Locations(128);
    /// The response status (response rules only).
    pub const STATUS: Locations = Locations(256);
    /// A response header line (response rules only).
    pub const RESPONSE_HEADERS: Locations = Locations(512);
    /// The response body's first bytes (response rules only).
    pub const RESPONSE_BODY: Locations = Locations(1024);
    /// Every response location.
    pub const RESPONSE: Locations = Locations(256 | 512 | 1024);

    /// Both sets.
    pub const fn with(self, other: Locations) -> Locations {
        Locations(self.0 | other.0)
    }

    /// Whether the sets share a location.
    pub fn has(self, other: Locations) -> bool {
        self.0 & other.0 != 0
    }

    /// The view a piece found here is reported as, e.g. `body.params`, `body.inflated.multipart`,
    /// `headers.credentials` (`meshsight signatures test`).
    pub fn describe(self) -> String {
        let mut out = String::new();
        let mut add = |bit: Locations, name: &str| {
            if self.has(bit) {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
        };
        add(Locations::PATH, "path");
        add(Locations::QUERY, "query");
        add(Locations::HEADERS, "headers");
        add(Locations::BODY, "body");
        add(Locations::INFLATED, "inflated");
        add(Locations::MULTIPART, "multipart");
        add(
            Locations(Locations::PARAMS.0 * u16::from(!self.has(Locations::MULTIPART))),
            "params",
        );
        let decoded = if self.has(Locations::HEADERS) {
            "credentials"
        } else {
            "base64"
        };
        add(Locations::BASE64, decoded);
        out
    }
}

impl From<RawLocation> for Locations {
    fn from(l: RawLocation) -> Locations {
        match l {
            RawLocation::Path => Locations::PATH,
            RawLocation::Query => Locations::QUERY,
            RawLocation::Params => Locations::PARAMS,
            RawLocation::Headers => Locations::HEADERS,
            RawLocation::Body => Locations::BODY,
            RawLocation::Multipart => Locations::MULTIPART,
            RawLocation::Inflated => Locations::INFLATED,
            RawLocation::Base64 => Locations::BASE64,
            RawLocation::Status => Locations::STATUS,
            RawLocation::ResponseHeaders => Locations::RESPONSE_HEADERS,
            RawLocation::ResponseBody => Locations::RESPONSE_BODY,
        }
    }
}

/// The decoding steps that produce a view (case-insensitivity is a match option, not a view).
pub(crate) const VIEW_PERCENT: u8 = 1;
pub(crate) const VIEW_UNESCAPE: u8 = 2;
pub(crate) const VIEW_NORMALIZE: u8 = 4;
pub(crate) const VIEW_LOOKUPS: u8 = 8;

/// Conditions on the request, compiled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct When {
    /// Methods, any one (empty: any method).
    pub methods: Vec<String>,
    /// Lower-case path prefixes.
    pub path_prefix: Vec<String>,
    /// Lower-case path suffixes.
    pub path_suffix: Vec<String>,
    /// Lower-case path fragments.
    pub path_contains: Vec<String>,
}

impl When {
    /// Whether no condition is set.
    pub fn is_empty(&self) -> bool {
        self.methods.is_empty() && !self.has_path()
    }

    fn has_path(&self) -> bool {
        !(self.path_prefix.is_empty()
            && self.path_suffix.is_empty()
            && self.path_contains.is_empty())
    }

    /// Whether a request with `method` and normalized lower-case `path` meets the conditions.
    pub fn holds(&self, method: &str, path: &str) -> bool {
        if !self.methods.is_empty() && !self.methods.iter().any(|m| m == method) {
            return false;
        }
        if !self.has_path() {
            return true;
        }
        let trimmed = if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            path
        };
        self.path_prefix
            .iter()
            .any(|p| path.starts_with(p.as_str()))
            || self
                .path_suffix
                .iter()
                .any(|s| trimmed.ends_with(s.as_str()))
            // Byte windows rather than `str::contains`: core's substring searcher (2.5 KB of
            // Wasm) stays out of the module; an empty needle holds, as `contains("")` does.
            || self.path_contains.iter().any(|c| {
                c.is_empty() || path.as_bytes().windows(c.len()).any(|w| w == c.as_bytes())
            })
    }
}

/// A rule, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Stable id.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Category.
    pub category: String,
    /// Severity.
    pub severity: Severity,
    /// References as written.
    pub references: Vec<String>,
    /// Where it looks.
    pub locations: Locations,
    /// Views it does not look at, even inside `locations`.
    pub exclude: Locations,
    /// Lower-case parameter names it is narrowed to (empty: all).
    pub params: Vec<String>,
    /// Lower-case header names it is narrowed to (empty: all).
    pub headers: Vec<String>,
    /// View steps (`VIEW_*` bits, without lookups).
    pub(crate) view: u8,
    /// Also matched after Log4j lookup evaluation.
    pub(crate) lookups: bool,
    /// ASCII case-insensitive.
    pub case_insensitive: bool,
    /// Conditions.
    pub when: When,
    /// Literal groups; one literal of each must be found (lower-cased when case-insensitive).
    pub groups: Vec<Vec<String>>,
    /// Literals that veto the rule in the text they are found in.
    pub none: Vec<String>,
    /// Where the literals of the `any` group (the last group) must sit.
    pub anchor: Anchor,
    /// Index of the `any` group, when the rule has one.
    pub any_group: Option<u8>,
    /// Whether the rule is on.
    pub enabled: bool,
}

/// Names (ids, categories) are 1-64 characters of `A-Z a-z 0-9 _ - .`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

fn literal_list(
    at: &str,
    list: &[String],
    case_insensitive: bool,
) -> Result<Vec<String>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, l)| {
            if l.is_empty() {
                Err(ConfigError::new(format!("{at}[{i}]"), "must not be empty"))
            } else if l.len() > MAX_LITERAL_LEN {
                Err(ConfigError::new(
                    format!("{at}[{i}]"),
                    format!("literals are at most {MAX_LITERAL_LEN} bytes"),
                ))
            } else if case_insensitive {
                Ok(l.to_ascii_lowercase())
            } else {
                Ok(l.clone())
            }
        })
        .collect()
}

fn lower_list(at: &str, list: &[String]) -> Result<Vec<String>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            if s.is_empty() {
                Err(ConfigError::new(format!("{at}[{i}]"), "must not be empty"))
            } else {
                Ok(s.to_ascii_lowercase())
            }
        })
        .collect()
}

impl Rule {
    /// Whether the rule looks at a piece found at `piece` (in one of its locations, in none of
    /// its excluded views).
    pub fn looks_at(&self, piece: Locations) -> bool {
        self.locations.has(piece) && !self.exclude.has(piece)
    }

    /// Validates a rule written at JSON path `at` (e.g. `signatures.packs[0].rules[3]`).
    pub fn compile(at: &str, raw: &RawRule) -> Result<Rule, ConfigError> {
        let path = |f: &str| format!("{at}.{f}");
        if !valid_name(&raw.id) {
            return Err(ConfigError::new(
                path("id"),
                "rule ids are 1-64 characters of A-Z a-z 0-9 _ - .",
            ));
        }
        if raw.name.trim().is_empty() {
            return Err(ConfigError::new(path("name"), "must not be empty"));
        }
        if !valid_name(&raw.category) {
            return Err(ConfigError::new(
                path("category"),
                "categories are 1-64 characters of A-Z a-z 0-9 _ - .",
            ));
        }
        if raw.locations.is_empty() {
            return Err(ConfigError::new(
                path("in"),
                "must name at least one of path, query, params, headers, body, multipart, inflated, base64",
            ));
        }
        let locations = raw
            .locations
            .iter()
            .fold(Locations::NONE, |acc, l| acc.with((*l).into()));
        let exclude = raw
            .not_in
            .iter()
            .fold(Locations::NONE, |acc, l| acc.with((*l).into()));
        if !raw.params.is_empty()
            && !locations.has(
                Locations::PARAMS
                    .with(Locations::QUERY)
                    .with(Locations::BODY)
                    .with(Locations::MULTIPART)
                    .with(Locations::INFLATED)
                    .with(Locations::BASE64),
            )
        {
            return Err(ConfigError::new(
                path("params"),
                "needs \"params\", \"query\", \"body\", \"multipart\", \"inflated\" or \"base64\" in `in`",
            ));
        }
        if !raw.headers.is_empty()
            && !locations.has(
                Locations::HEADERS
                    .with(Locations::BASE64)
                    .with(Locations::RESPONSE_HEADERS),
            )
        {
            return Err(ConfigError::new(
                path("headers"),
                "needs \"headers\", \"base64\" or \"response_headers\" in `in`",
            ));
        }
        if locations.has(Locations::RESPONSE) && locations.0 & !Locations::RESPONSE.0 != 0 {
            return Err(ConfigError::new(
                path("in"),
                "a rule looks at the request or at the response, not both",
            ));
        }
        let mut view = 0;
        let mut lookups = false;
        let mut case_insensitive = false;
        for (i, t) in raw.transforms.iter().enumerate() {
            match t {
                Transform::PercentDecode => view |= VIEW_PERCENT,
                Transform::Unescape => view |= VIEW_UNESCAPE,
                Transform::NormalizePath => {
                    if locations != Locations::PATH {
                        return Err(ConfigError::new(
                            format!("{at}.transforms[{i}]"),
                            "normalize_path only applies to a rule that looks in the path alone",
                        ));
                    }
                    view |= VIEW_NORMALIZE;
                }
                Transform::Log4jLookups => lookups = true,
                Transform::Lowercase => case_insensitive = true,
            }
        }
        let m = &raw.matcher;
        let mut groups = Vec::with_capacity(m.all.len() + 1);
        for (g, group) in m.all.iter().enumerate() {
            let gat = format!("{at}.match.all[{g}]");
            if group.is_empty() {
                return Err(ConfigError::new(gat, "must not be empty"));
            }
            groups.push(literal_list(&gat, group, case_insensitive)?);
        }
        let any_group = (!m.any.is_empty()).then(|| u8::try_from(groups.len()).unwrap_or(u8::MAX));
        if any_group.is_none() && m.anchor.is_some_and(|a| a != Anchor::Anywhere) {
            return Err(ConfigError::new(
                path("match.anchor"),
                "applies to `any` literals: give `any`",
            ));
        }
        if !m.any.is_empty() {
            groups.push(literal_list(
                &format!("{at}.match.any"),
                &m.any,
                case_insensitive,
            )?);
        }
        if groups.is_empty() {
            return Err(ConfigError::new(
                path("match"),
                "needs `any` or `all` literals",
            ));
        }
        if groups.len() > MAX_GROUPS {
            return Err(ConfigError::new(
                path("match.all"),
                format!("at most {MAX_GROUPS} groups"),
            ));
        }
        let none = literal_list(&format!("{at}.match.none"), &m.none, case_insensitive)?;
        let w = &raw.when;
        for (i, method) in w.methods.iter().enumerate() {
            if !crate::headers::is_token(method) {
                return Err(ConfigError::new(
                    format!("{at}.when.methods[{i}]"),
                    format!("{} is not a method token", Quoted(method)),
                ));
            }
        }
        let when = When {
            methods: w.methods.clone(),
            path_prefix: lower_list(&format!("{at}.when.path_prefix"), &w.path_prefix)?,
            path_suffix: lower_list(&format!("{at}.when.path_suffix"), &w.path_suffix)?,
            path_contains: lower_list(&format!("{at}.when.path_contains"), &w.path_contains)?,
        };
        Ok(Rule {
            id: raw.id.clone(),
            name: raw.name.clone(),
            category: raw.category.clone(),
            severity: raw.severity,
            references: raw.references.clone(),
            locations,
            exclude,
            params: lower_list(&path("params"), &raw.params)?,
            headers: lower_list(&path("headers"), &raw.headers)?,
            view,
            lookups,
            case_insensitive,
            when,
            groups,
            none,
            anchor: m.anchor.unwrap_or(Anchor::Anywhere),
            any_group,
            enabled: raw.enabled,
        })
    }
}

/// A pack, validated: its name and rules (ids unique within it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pack {
    /// Pack name.
    pub name: String,
    /// Version as written.
    pub version: Option<String>,
    /// Rules in pack order.
    pub rules: Vec<Rule>,
}

impl Pack {
    /// Parses and validates a pack document; errors name the JSON path inside it.
    pub fn from_json(bytes: &[u8]) -> Result<Pack, ConfigError> {
        let raw: RawPack = ConfigError::parse_json(bytes)?;
        Pack::compile("", &raw)
    }

    /// The built-in pack.
    pub fn builtin() -> Result<Pack, ConfigError> {
        load_builtin(BUILTIN_PACK_DEFLATED, BUILTIN_PACK_LEN, "<built-in pack>")
    }

    /// Validates a pack written at JSON path `at` (empty for a document of its own).
    pub fn compile(at: &str, raw: &RawPack) -> Result<Pack, ConfigError> {
        let prefix = if at.is_empty() {
            String::new()
        } else {
            format!("{at}.")
        };
        if raw.pack.trim().is_empty() {
            return Err(ConfigError::new(
                format!("{prefix}pack"),
                "must not be empty",
            ));
        }
        let mut rules: Vec<Rule> = Vec::with_capacity(raw.rules.len());
        for (i, r) in raw.rules.iter().enumerate() {
            let rat = format!("{prefix}rules[{i}]");
            let rule = Rule::compile(&rat, r)?;
            if rules.iter().any(|x| x.id == rule.id) {
                return Err(ConfigError::new(
                    format!("{rat}.id"),
                    format!("duplicate rule id {} in this pack", Quoted(&rule.id)),
                ));
            }
            rules.push(rule);
        }
        Ok(Pack {
            name: raw.pack.clone(),
            version: raw.version.clone(),
            rules,
        })
    }
}

/// Layers packs: rules of later packs replace earlier rules with the same id (in place) or are
/// appended.
pub fn layer(packs: impl IntoIterator<Item = Pack>) -> Vec<Rule> {
    let mut rules: Vec<Rule> = Vec::new();
    for pack in packs {
        for rule in pack.rules {
            match rules.iter_mut().find(|r| r.id == rule.id) {
                Some(slot) => *slot = rule,
                None => rules.push(rule),
            }
        }
    }
    rules
}
