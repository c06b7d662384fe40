//! Exploit-indicator signatures: built-in categories and custom literals, matched in one pass
//! of a multi-literal (Aho-Corasick) automaton over decoded views of the request.
//!
//! Every piece of the request (path, query and each of its parameters, each header, the body
//! raw and form/JSON decoded) is percent-decoded (repeatedly, bounded), `\uXXXX`/`\xXX`
//! unescaped, and, when it holds `${`, also matched after evaluating the Log4j lookups that
//! hide `${jndi:`. Matching is ASCII case-insensitive. A literal that needs context (an OGNL
//! marker on a Confluence endpoint, `system.multicall` posted to `xmlrpc.php`) only counts in it.

use super::decode::{
    brackets_to_dots, eval_lookups, form_pairs, json_strings, lower_lossy, percent_decode_fully,
    unescape_backslash,
};
use crate::ConfigError;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A built-in signature category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    /// Confluence OGNL injection: CVE-2021-26084 markers on its vulnerable endpoints, and
    /// CVE-2022-26134 `${` anywhere in the decoded URI path.
    ConfluenceOgnl,
    /// Log4Shell (CVE-2021-44228): `${jndi:` after evaluating obfuscating lookups.
    Log4Shell,
    /// Spring4Shell (CVE-2022-22965): `class.module.classLoader` parameter binding.
    Spring4Shell,
    /// Path traversal (`/../`, `\..\`, `/..;/`, decoded) and well-known sensitive files.
    PathTraversal,
    /// WordPress `system.multicall` posted to `xmlrpc.php` (credential brute force).
    WordpressXmlrpc,
}

impl Category {
    /// Every built-in category.
    pub const ALL: [Category; 5] = [
        Category::ConfluenceOgnl,
        Category::Log4Shell,
        Category::Spring4Shell,
        Category::PathTraversal,
        Category::WordpressXmlrpc,
    ];

    /// The category's name in policies, decisions and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Category::ConfluenceOgnl => "confluence_ognl",
            Category::Log4Shell => "log4shell",
            Category::Spring4Shell => "spring4shell",
            Category::PathTraversal => "path_traversal",
            Category::WordpressXmlrpc => "wordpress_xmlrpc",
        }
    }
}

/// Where in the request a literal is looked for (bit flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locations(u8);

impl Locations {
    /// Nowhere.
    pub const NONE: Locations = Locations(0);
    /// The decoded path, without the query.
    pub const PATH: Locations = Locations(1);
    /// The decoded query, whole and per parameter.
    pub const QUERY: Locations = Locations(2);
    /// Each header as `name: value`.
    pub const HEADERS: Locations = Locations(4);
    /// The body, raw and form/JSON decoded.
    pub const BODY: Locations = Locations(8);
    /// Everywhere.
    pub const ALL: Locations = Locations(15);

    /// Both sets.
    pub const fn with(self, other: Locations) -> Locations {
        Locations(self.0 | other.0)
    }

    fn has(self, other: Locations) -> bool {
        self.0 & other.0 != 0
    }
}

/// When a literal counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    Always,
    ConfluenceEndpoint,
    XmlrpcPost,
}

/// Paths (lower-case, decoded) of the endpoints CVE-2021-26084 is exploited through.
const CONFLUENCE_26084_ENDPOINTS: &[&str] = &[
    "/pages/doenterpagevariables.action",
    "/pages/createpage-entervariables.action",
    "/pages/createpage.action",
    "/pages/templatevariables.action",
    "/pages/createblogpost.action",
    "/templates/editor-preload-container",
    "/users/user-dark-features",
];

/// OGNL expression markers that are looked for in the parameters of those endpoints.
const OGNL_MARKERS: &[&str] = &[
    "#{",
    "${",
    "%{",
    "'+{",
    "'+#{",
    "#_memberaccess",
    "@java.lang",
    "class.forname",
    "getruntime(",
    "scriptenginemanager",
];

const TRAVERSAL: &[&str] = &[
    "/../",
    "/..\\",
    "\\..\\",
    "\\../",
    "/..;/",
    "/etc/passwd",
    "/etc/shadow",
    "/proc/self/environ",
    "win.ini",
    "boot.ini",
];

struct Trigger {
    signature: usize,
    locations: Locations,
    condition: Condition,
}

/// Which signatures matched one request; fill with [`SignatureSet::scan_head`] and
/// [`SignatureSet::scan_body`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureHits {
    hit: Vec<bool>,
}

impl SignatureHits {
    /// Whether anything matched.
    pub fn any(&self) -> bool {
        self.hit.iter().any(|h| *h)
    }
}

/// The request facts signatures look at.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// `:method`.
    pub method: &'a str,
    /// `:path` as received, query included.
    pub path: &'a str,
    /// Request headers (pseudo-headers may be included; `:path` is skipped).
    pub headers: &'a [(String, String)],
}

impl RequestView<'_> {
    fn split_path(&self) -> (&str, Option<&str>) {
        match self.path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (self.path, None),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        crate::headers::header_value(self.headers, name)
    }
}

/// Facts that gate context-dependent literals, computed once per scan.
struct Context {
    confluence_endpoint: bool,
    xmlrpc_post: bool,
}

impl Context {
    fn of(req: &RequestView<'_>) -> Context {
        let (path, _) = req.split_path();
        let decoded = lower_lossy(&percent_decode_fully(path.as_bytes(), false));
        let decoded = decoded.replace("//", "/");
        let confluence_endpoint = CONFLUENCE_26084_ENDPOINTS
            .iter()
            .any(|e| decoded.contains(e));
        let xmlrpc_post = req.method.eq_ignore_ascii_case("POST")
            && decoded.trim_end_matches('/').ends_with("/xmlrpc.php");
        Context {
            confluence_endpoint,
            xmlrpc_post,
        }
    }

    fn holds(&self, condition: Condition) -> bool {
        match condition {
            Condition::Always => true,
            Condition::ConfluenceEndpoint => self.confluence_endpoint,
            Condition::XmlrpcPost => self.xmlrpc_post,
        }
    }
}

/// Compiled signatures: names (built-in categories then custom names) and one automaton.
pub struct SignatureSet {
    names: Vec<String>,
    automaton: Option<AhoCorasick>,
    triggers: Vec<Vec<Trigger>>,
    inspect_body: bool,
}

impl std::fmt::Debug for SignatureSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureSet")
            .field("names", &self.names)
            .field("literals", &self.triggers.len())
            .field("inspect_body", &self.inspect_body)
            .finish()
    }
}

/// A custom literal signature, already validated.
#[derive(Debug, Clone)]
pub struct CustomSignature {
    /// Name reported in decisions.
    pub name: String,
    /// Literal, matched ASCII case-insensitively.
    pub literal: String,
    /// Where it is looked for.
    pub locations: Locations,
}

impl SignatureSet {
    /// Compiles the enabled built-in `categories` and the `custom` literals; an automaton that
    /// cannot be built (too many or too long literals) is a [`ConfigError`] at `signatures`.
    pub fn new(
        categories: &[Category],
        custom: &[CustomSignature],
        inspect_body: bool,
    ) -> Result<SignatureSet, ConfigError> {
        let mut names = Vec::new();
        let mut literals: BTreeMap<String, Vec<Trigger>> = BTreeMap::new();
        let mut add = |literal: &str, signature: usize, locations, condition| {
            literals
                .entry(literal.to_ascii_lowercase())
                .or_default()
                .push(Trigger {
                    signature,
                    locations,
                    condition,
                });
        };
        let params = Locations::QUERY.with(Locations::BODY);
        for category in categories {
            let id = names.len();
            names.push(category.name().to_string());
            match category {
                Category::ConfluenceOgnl => {
                    add("${", id, Locations::PATH, Condition::Always);
                    for m in OGNL_MARKERS {
                        add(m, id, params, Condition::ConfluenceEndpoint);
                    }
                }
                Category::Log4Shell => add("${jndi:", id, Locations::ALL, Condition::Always),
                Category::Spring4Shell => {
                    add("class.module.classloader", id, params, Condition::Always);
                    add("class.classloader", id, params, Condition::Always);
                }
                Category::PathTraversal => {
                    for t in TRAVERSAL {
                        add(
                            t,
                            id,
                            Locations::PATH.with(Locations::QUERY),
                            Condition::Always,
                        );
                    }
                }
                Category::WordpressXmlrpc => {
                    add(
                        "system.multicall",
                        id,
                        Locations::BODY,
                        Condition::XmlrpcPost,
                    );
                }
            }
        }
        for c in custom {
            let id = names.len();
            names.push(c.name.clone());
            add(&c.literal, id, c.locations, Condition::Always);
        }
        let (patterns, triggers): (Vec<String>, Vec<Vec<Trigger>>) = literals.into_iter().unzip();
        let automaton = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .build(&patterns)
                    .map_err(|e| ConfigError::at("signatures", e))?,
            )
        };
        Ok(SignatureSet {
            names,
            automaton,
            triggers,
            inspect_body,
        })
    }

    /// Names of the compiled signatures (categories, then custom), in report order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// An empty hit set sized for these signatures.
    pub fn new_hits(&self) -> SignatureHits {
        SignatureHits {
            hit: vec![false; self.names.len()],
        }
    }

    /// The names of the signatures in `hits`, in report order.
    pub fn hit_names(&self, hits: &SignatureHits) -> Vec<String> {
        self.names
            .iter()
            .zip(hits.hit.iter())
            .filter(|(_, h)| **h)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Whether this request's body could change the outcome (some enabled literal looks in
    /// bodies and its context holds). Says nothing about whether the request has a body.
    pub fn wants_body(&self, req: &RequestView<'_>) -> bool {
        if !self.inspect_body {
            return false;
        }
        let ctx = Context::of(req);
        self.triggers
            .iter()
            .flatten()
            .any(|t| t.locations.has(Locations::BODY) && ctx.holds(t.condition))
    }

    /// Matches the path, the query and the headers.
    pub fn scan_head(&self, req: &RequestView<'_>, hits: &mut SignatureHits) {
        let Some(ac) = &self.automaton else { return };
        let ctx = Context::of(req);
        let mut feed = |text: &[u8], loc: Locations| self.match_text(ac, &ctx, text, loc, hits);
        let (path, query) = req.split_path();
        // A trailing `/` lets `/..` at the very end match `/../`.
        let mut path_text = path.as_bytes().to_vec();
        path_text.push(b'/');
        for_each_view(&path_text, false, |t| feed(t, Locations::PATH));
        if let Some(q) = query {
            for_each_view(q.as_bytes(), true, |t| feed(t, Locations::QUERY));
            for (name, value) in form_pairs(q.as_bytes()) {
                scan_param(&name, &value, |t| feed(t, Locations::QUERY));
            }
        }
        // One buffer for every `name: value` line: no allocation (or formatting) per header.
        let mut line = Vec::new();
        for (name, value) in req.headers {
            if name == ":path" {
                continue;
            }
            line.clear();
            line.extend_from_slice(name.as_bytes());
            line.extend_from_slice(b": ");
            line.extend_from_slice(value.as_bytes());
            for_each_view(&line, false, |t| feed(t, Locations::HEADERS));
        }
    }

    /// Matches the first bytes of the body (the caller bounds them), raw and, by content type,
    /// form- or JSON-decoded.
    pub fn scan_body(&self, req: &RequestView<'_>, body: &[u8], hits: &mut SignatureHits) {
        let Some(ac) = &self.automaton else { return };
        if !self.inspect_body || body.is_empty() {
            return;
        }
        let ctx = Context::of(req);
        let mut feed = |text: &[u8], loc: Locations| self.match_text(ac, &ctx, text, loc, hits);
        for_each_view(body, false, |t| feed(t, Locations::BODY));
        let content_type = req
            .header("content-type")
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.contains("x-www-form-urlencoded") {
            for (name, value) in form_pairs(body) {
                scan_param(&name, &value, |t| feed(t, Locations::BODY));
            }
        }
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if matches!(first, Some(b'{' | b'[')) {
            if let Some(strings) = json_strings(body) {
                for s in strings {
                    for_each_view(s.as_bytes(), false, |t| feed(t, Locations::BODY));
                    if s.contains('[') {
                        feed(brackets_to_dots(&s).as_bytes(), Locations::BODY);
                    }
                }
            }
        }
    }

    fn match_text(
        &self,
        ac: &AhoCorasick,
        ctx: &Context,
        text: &[u8],
        loc: Locations,
        hits: &mut SignatureHits,
    ) {
        for m in ac.find_overlapping_iter(text) {
            let Some(triggers) = self.triggers.get(m.pattern().as_usize()) else {
                continue;
            };
            for t in triggers {
                if t.locations.has(loc) && ctx.holds(t.condition) {
                    if let Some(h) = hits.hit.get_mut(t.signature) {
                        *h = true;
                    }
                }
            }
        }
    }
}

/// A parameter (already percent-decoded): its name (also with brackets as dots) and its value
/// (prefixed with `/` so `../x` at its start reads as a traversal).
fn scan_param(name: &[u8], value: &[u8], mut feed: impl FnMut(&[u8])) {
    for_each_view(name, false, &mut feed);
    if name.contains(&b'[') {
        let dotted = brackets_to_dots(&String::from_utf8_lossy(name));
        feed(dotted.as_bytes());
    }
    let mut v = Vec::with_capacity(value.len() + 1);
    v.push(b'/');
    v.extend_from_slice(value);
    for_each_view(&v, false, &mut feed);
}

/// Calls `feed` with the decoded view of `raw`, and with its lookup-evaluated view when it
/// holds `${`.
fn for_each_view(raw: &[u8], plus_as_space: bool, mut feed: impl FnMut(&[u8])) {
    let decoded: Cow<'_, [u8]> = if raw.contains(&b'%') || (plus_as_space && raw.contains(&b'+')) {
        Cow::Owned(percent_decode_fully(raw, plus_as_space))
    } else {
        Cow::Borrowed(raw)
    };
    let unescaped: Cow<'_, [u8]> = if decoded.contains(&b'\\') {
        Cow::Owned(unescape_backslash(&decoded))
    } else {
        decoded
    };
    feed(&unescaped);
    if unescaped.windows(2).any(|w| w == b"${") {
        let evaluated = eval_lookups(&lower_lossy(&unescaped));
        feed(evaluated.as_bytes());
    }
}
