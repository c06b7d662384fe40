//! Response rules: did the attack work? Rules in the same pack format and engine as request
//! signatures look at the response status, its headers and the first `max_response_bytes` of
//! its body, and find what only a successful attack returns: cloud credentials from a metadata
//! service, service-account tokens, private keys, credential files, shell output, kubelet and
//! Docker API listings.
//!
//! The `mirror.responses` section ([`raw::RawResponses`]) says when a response is scanned
//! ([`ResponsePolicy::wants`]): after a request signature matched, for the hosts and paths it
//! names (the metadata hosts by default), or everywhere (opt-in). A response nothing asks for is
//! never read. The finding ([`ResponseVerdict`]) names the rule, its ATT&CK technique, where it
//! was and a short hash of the secret it carried, never the secret ([`secret`]).
//!
//! Most responses are compressed: a `gzip` or `deflate` body (`content-encoding`) is inflated
//! before the scan, to at most `max_response_bytes` (and the inflater's ratio cap), and what
//! is found there is `response_body.inflated`; a stream that does not decode is named in the
//! record (`decoding`), never a failure of the response. The copy keeps the body as sent.

pub mod copy;
pub mod raw;
pub mod record;
pub mod secret;

#[cfg(test)]
mod tests;

use crate::error::Quoted;
use crate::head::RequestHead;
use crate::mirror::decode::inflate::{self, Coding, Outcome};
use crate::mirror::signatures::pack::{load_builtin, Locations, Pack, Rule, Severity};
use crate::mirror::signatures::{RequestView, SignatureHits, SignatureSet};
use crate::ConfigError;
use raw::RawResponses;

/// The built-in response rules' text, `response/builtin.json` minified by `build.rs` (for tools
/// and tests: the module carries [`BUILTIN_RESPONSE_PACK_DEFLATED`] instead).
pub const BUILTIN_RESPONSE_PACK: &str = include_str!(concat!(env!("OUT_DIR"), "/responses.json"));
/// The built-in response rules as the module carries them: [`BUILTIN_RESPONSE_PACK`] deflated by
/// `build.rs` (a raw deflate stream, about a third of the text's bytes).
pub const BUILTIN_RESPONSE_PACK_DEFLATED: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/responses.json.deflate"));
/// Bytes of [`BUILTIN_RESPONSE_PACK`], evaluated at compile time (the text itself is not linked).
const BUILTIN_RESPONSE_PACK_LEN: usize = BUILTIN_RESPONSE_PACK.len();

/// A compressed body whose stream does not decode (the request side's name).
const DECODING_BROKEN: &str = "body_encoding_broken";
/// A compressed body past the inflater's ratio cap (the request side's name).
const DECODING_BOMB: &str = "body_inflate_bomb";

/// Longest body excerpt a copy carries, after masking.
pub const MAX_EXCERPT_BYTES: usize = 2048;

/// Splits layered rules into request rules and response rules (those that look at the
/// response), keeping each list's order.
pub fn split_rules(rules: Vec<Rule>) -> (Vec<Rule>, Vec<Rule>) {
    rules
        .into_iter()
        .partition(|r| !r.locations.has(Locations::RESPONSE))
}

/// The built-in response pack.
pub fn builtin_pack() -> Result<Pack, ConfigError> {
    load_builtin(
        BUILTIN_RESPONSE_PACK_DEFLATED,
        BUILTIN_RESPONSE_PACK_LEN,
        "<built-in response pack>",
    )
}

/// A response rule read by the request engine: status as the path, response headers as
/// headers, the response body as the body.
fn as_engine_rule(mut rule: Rule) -> Rule {
    let l = rule.locations;
    let mut engine = Locations::NONE;
    if l.has(Locations::STATUS) {
        engine = engine.with(Locations::PATH);
    }
    if l.has(Locations::RESPONSE_HEADERS) {
        engine = engine.with(Locations::HEADERS);
    }
    if l.has(Locations::RESPONSE_BODY) {
        engine = engine.with(Locations::BODY);
    }
    rule.locations = engine;
    rule
}

/// When responses are scanned, and the compiled response rules.
#[derive(Debug)]
pub struct ResponsePolicy {
    set: SignatureSet,
    after_signature: bool,
    hosts: Vec<String>,
    paths: Vec<String>,
    all: bool,
    max_response_bytes: usize,
    body_rules: bool,
}

impl ResponsePolicy {
    /// Compiles the section at `responses` with the response rules of the policy's packs
    /// (`extra`, already layered).
    pub fn compile(raw: &RawResponses, extra: Vec<Rule>) -> Result<ResponsePolicy, ConfigError> {
        let mut packs = Vec::with_capacity(2);
        if raw.builtin {
            packs.push(builtin_pack()?);
        }
        packs.push(Pack {
            name: "policy".to_string(),
            version: None,
            rules: extra,
        });
        let mut rules = crate::mirror::signatures::pack::layer(packs);
        for (id, on) in &raw.rules {
            match rules.iter_mut().find(|r| r.id == *id) {
                Some(r) => r.enabled = *on,
                None => {
                    return Err(ConfigError::new(
                        format!("responses.rules.{id}"),
                        format!("unknown response rule id {}", Quoted(id)),
                    ))
                }
            }
        }
        for (i, h) in raw.hosts.iter().enumerate() {
            if h.trim().is_empty() {
                return Err(ConfigError::new(
                    format!("responses.hosts[{i}]"),
                    "must not be empty",
                ));
            }
        }
        for (i, p) in raw.paths.iter().enumerate() {
            if !p.starts_with('/') {
                return Err(ConfigError::new(
                    format!("responses.paths[{i}]"),
                    "a path prefix starts with /",
                ));
            }
        }
        let rules: Vec<Rule> = rules.into_iter().map(as_engine_rule).collect();
        let set =
            SignatureSet::new(rules, true).map_err(|e| ConfigError::new("responses", e.reason))?;
        Ok(ResponsePolicy {
            body_rules: set.looks_at(Locations::BODY),
            set,
            after_signature: raw.after_signature,
            hosts: raw.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            paths: raw.paths.clone(),
            all: raw.all,
            max_response_bytes: raw.max_response_bytes,
        })
    }

    /// Whether the response to this request is scanned: decided from what is already in
    /// memory (the head, whether a request signature matched), so that a response nobody
    /// asked for costs no host call.
    pub fn wants(&self, head: &RequestHead, signature_hit: bool) -> bool {
        if self.set.rules().is_empty() {
            return false;
        }
        if self.all || (self.after_signature && signature_hit) {
            return true;
        }
        if !self.hosts.is_empty() {
            let authority = head.authority();
            let (host, _) = crate::headers::split_authority(authority);
            if self
                .hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host) || h.eq_ignore_ascii_case(authority))
            {
                return true;
            }
        }
        let path = head.path();
        self.paths.iter().any(|p| path.starts_with(p.as_str()))
    }

    /// Most body bytes scanned; 0 when no rule looks at bodies.
    pub fn max_response_bytes(&self) -> usize {
        if self.body_rules {
            self.max_response_bytes
        } else {
            0
        }
    }

    /// The enabled response rules (their locations as the engine reads them).
    pub fn rules(&self) -> &[Rule] {
        self.set.rules()
    }

    /// Starts the scan of one response: matches the status and headers.
    pub fn scan_head<'x>(
        &self,
        head: &RequestHead,
        status: u16,
        headers: impl IntoIterator<Item = (&'x str, &'x str)> + Clone,
    ) -> ResponseScan {
        let view = RequestView {
            method: head.method(),
            path: head.path(),
            headers: head.headers(),
        };
        let mut hits = self.set.new_hits();
        let status_text = status.to_string();
        self.set
            .scan_response_head(&view, status_text.as_bytes(), headers.clone(), &mut hits);
        // The secrets of the headers are found now: the headers are not kept.
        let mut header_secret = None;
        if hits.any() {
            for (name, value) in headers.clone() {
                if let Some(s) = secret::spans(value.as_bytes()).first() {
                    let text = value.as_bytes().get(s.start..s.end).unwrap_or_default();
                    header_secret = Some(SecretRef {
                        kind: s.kind,
                        location: format!("response_headers.{name}"),
                        sha256: secret::short_hash(text),
                    });
                    break;
                }
            }
        }
        // What the copy may show of the head: no credential header, every secret masked.
        let kept = headers
            .into_iter()
            .filter(|(n, _)| !crate::headers::is_credential_header(n))
            .map(|(n, v)| {
                let masked = secret::mask(v.as_bytes());
                (n.to_string(), String::from_utf8_lossy(&masked).into_owned())
            })
            .collect();
        ResponseScan {
            status,
            head_hits: hits,
            header_secret,
            headers: kept,
            body: Vec::new(),
            limit: self.max_response_bytes(),
        }
    }

    /// Ends the scan: matches the body read so far and names what was found.
    pub fn finish(
        &self,
        head: &RequestHead,
        scan: ResponseScan,
        signature_hit: bool,
    ) -> ResponseVerdict {
        let view = RequestView {
            method: head.method(),
            path: head.path(),
            headers: head.headers(),
        };
        // A compressed body is read as the client will read it: inflated, within the same
        // bound. An empty body has no stream to judge.
        let complete = scan.body.len() < scan.limit;
        let coding = scan
            .headers
            .iter()
            .find(|(n, _)| n == "content-encoding")
            .and_then(|(_, v)| Coding::of_header(v));
        let inflated = match coding {
            Some(coding) if !scan.body.is_empty() => Some(inflate::inflate(
                coding,
                &scan.body,
                self.max_response_bytes,
            )),
            _ => None,
        };
        let decoding = inflated.as_ref().and_then(|i| match i.outcome {
            Outcome::Broken => Some(DECODING_BROKEN),
            Outcome::Truncated if complete => Some(DECODING_BROKEN),
            Outcome::Bomb => Some(DECODING_BOMB),
            Outcome::Complete | Outcome::Truncated | Outcome::Capped => None,
        });
        let (body, read_inflated) = match &inflated {
            // Broken at once: what was sent is what is read.
            Some(i) if !i.bytes.is_empty() => (i.bytes.as_slice(), true),
            _ => (scan.body.as_slice(), false),
        };
        let body_location = if read_inflated {
            "response_body.inflated"
        } else {
            "response_body"
        };
        // The secrets in what was read, found once for the record and the excerpt's check.
        let body_spans = std::cell::OnceCell::new();
        let spans_in_body = || body_spans.get_or_init(|| secret::spans(body));
        let mut body_hits = self.set.new_hits();
        self.set.scan_response_body(&view, body, &mut body_hits);
        let mut findings = Vec::new();
        let body_secret = if body_hits.any() {
            spans_in_body().first().map(|s| SecretRef {
                kind: s.kind,
                location: body_location.to_string(),
                sha256: secret::short_hash(body.get(s.start..s.end).unwrap_or_default()),
            })
        } else {
            None
        };
        for (hits, secret, location) in [
            (&scan.head_hits, &scan.header_secret, "response_headers"),
            (&body_hits, &body_secret, body_location),
        ] {
            for rule in self.set.hit_rules(hits) {
                if findings.iter().any(|f: &ResponseFinding| f.rule == rule.id) {
                    continue;
                }
                let location = if location == "response_headers"
                    && rule.locations.has(Locations::PATH)
                    && !rule.locations.has(Locations::HEADERS)
                {
                    "status"
                } else {
                    location
                };
                findings.push(ResponseFinding {
                    rule: rule.id.clone(),
                    category: rule.category.clone(),
                    name: rule.name.clone(),
                    severity: rule.severity,
                    technique: technique(&rule.references),
                    location,
                    secret: secret.clone(),
                });
            }
        }
        let excerpt = if findings.is_empty() && !signature_hit {
            Vec::new()
        } else if read_inflated && !spans_in_body().is_empty() {
            // The body as sent is compressed: a secret in it cannot be masked in place.
            Vec::new()
        } else {
            let mut masked = secret::mask(&scan.body);
            masked.truncate(MAX_EXCERPT_BYTES);
            masked
        };
        ResponseVerdict {
            status: scan.status,
            signature_hit,
            findings,
            headers: scan.headers,
            excerpt,
            decoding,
            copy: ResponseCopy::None,
        }
    }
}

/// The first ATT&CK technique id in a rule's references (`ATT&CK T1552.005` -> `T1552.005`).
fn technique(references: &[String]) -> Option<String> {
    references
        .iter()
        .find_map(|r| r.strip_prefix("ATT&CK "))
        .map(str::to_string)
}

/// One response being scanned: the head's hits and the body read so far (at most the bound).
#[derive(Debug)]
pub struct ResponseScan {
    status: u16,
    head_hits: SignatureHits,
    header_secret: Option<SecretRef>,
    /// The response headers without credentials, secrets masked (for the copy).
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    limit: usize,
}

impl ResponseScan {
    /// How many more body bytes the scan takes (0: done with the body).
    pub fn wants_body(&self) -> usize {
        self.limit.saturating_sub(self.body.len())
    }

    /// Adds body bytes, up to the bound.
    pub fn push_body(&mut self, chunk: &[u8]) {
        let room = self.wants_body();
        self.body
            .extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
    }
}

/// A secret a response carried, named but never quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// What it is (`private_key`, `jwt`, `secretaccesskey`, ...).
    pub kind: &'static str,
    /// Where it was (`response_body`, `response_headers.<name>`).
    pub location: String,
    /// The first 12 hex digits of its SHA-256.
    pub sha256: String,
}

/// One response rule that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseFinding {
    /// Rule id.
    pub rule: String,
    /// Rule category (the kind of finding, e.g. `aws_credentials`).
    pub category: String,
    /// Rule name.
    pub name: String,
    /// Rule severity.
    pub severity: Severity,
    /// ATT&CK technique id, from the rule's references.
    pub technique: Option<String>,
    /// `status`, `response_headers`, `response_body` or `response_body.inflated`.
    pub location: &'static str,
    /// The secret it carried, when one was found by shape.
    pub secret: Option<SecretRef>,
}

/// What the scan of one response found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseVerdict {
    /// The response status.
    pub status: u16,
    /// Whether the request matched a request signature.
    pub signature_hit: bool,
    /// Response rules that matched, head first.
    pub findings: Vec<ResponseFinding>,
    /// The response headers without credentials, secrets masked.
    pub headers: Vec<(String, String)>,
    /// The first bytes of the body with every secret masked (empty unless something was
    /// found or the request matched a signature).
    pub excerpt: Vec<u8>,
    /// What inflating the body found wrong (`body_encoding_broken`, `body_inflate_bomb`), the
    /// request side's names; the scan read what came before the fault.
    pub decoding: Option<&'static str>,
    /// What became of the copy to the sensor (set by [`copy::offer_response_copy`]).
    pub copy: ResponseCopy,
}

/// What became of a response's copy to the sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseCopy {
    /// None was made (nothing to report, no signature target, or not offered yet).
    #[default]
    None,
    /// It went to the deliveries (sent on the root's tick, within `max_in_flight`).
    Mirrored,
    /// Its target's rate cap was reached: counted and not copied.
    RateLimited,
}

impl ResponseVerdict {
    /// `succeeded` when a response rule matched, `attempted` when only the request did, `none`
    /// otherwise.
    pub fn outcome(&self) -> &'static str {
        if !self.findings.is_empty() {
            "succeeded"
        } else if self.signature_hit {
            "attempted"
        } else {
            "none"
        }
    }

    /// The highest severity: Critical when a request signature and a response finding meet.
    pub fn severity(&self) -> Option<Severity> {
        let worst = self.findings.iter().map(|f| f.severity).max()?;
        Some(if self.signature_hit {
            Severity::Critical
        } else {
            worst
        })
    }

    /// The finding as a JSON value (no secret; see [`ResponseVerdict::to_json_text`]).
    #[cfg(any(test, feature = "serde"))]
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.to_json_text()).unwrap_or(serde_json::Value::Null)
    }
}
