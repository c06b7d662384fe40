//! Reading audit records as the audit sink writes them: NDJSON, one OCSF 1.7.0 HTTP Activity
//! record (class 4002) or one ECS document per line, told apart line by line. Streaming: one
//! line in memory at a time, so a file of any size reads in bounded memory; progress goes to
//! the terminal (standard error) only when it is one.
//!
//! A line that is not such a record (malformed JSON, another OCSF class, a missing field, an
//! empty line) is an error naming the file, the line and the field; with `skip_bad` it is
//! counted instead, the first few kept for the report. An empty file is an error.

use meshsight_policy::headers::HeaderBlock;
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use meshsight_policy::decision::{
    AllowlistDecision, AllowlistOutcome, MirrorDecision, MirrorReason,
};
use meshsight_policy::error::json_path::Json;
use meshsight_policy::identity::parse_socket_address;
use meshsight_policy::matching::{Peer, RequestFacts};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{CliError, RecordError};

/// Bad lines kept, for the report, when they are skipped.
const KEPT_ERRORS: usize = 5;

/// One recorded request: what a policy can be judged against, and what was decided then.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedRequest {
    /// Line in the records file (1-based).
    pub line: u64,
    /// `:method`.
    pub method: String,
    /// The path as received, with the (redacted) query when there was one.
    pub path: String,
    /// `host[:port]`, empty when the record has none.
    pub authority: String,
    /// `http`/`https`, empty when unknown.
    pub scheme: String,
    /// The request headers the audit recorded (allow-listed ones only).
    pub headers: HeaderBlock,
    /// Downstream peer address.
    pub source_ip: Option<IpAddr>,
    /// The mTLS peer's SPIFFE ID.
    pub principal: Option<String>,
    /// `x-request-id`.
    pub request_id: Option<String>,
    /// The allowlist's decision then.
    pub allowlist: Option<AllowlistDecision>,
    /// The mirror's decision then.
    pub mirror: Option<MirrorDecision>,
    /// The record was an alert (a signature matched).
    pub alert: bool,
    /// The status the client got.
    pub status: Option<u16>,
}

impl ObservedRequest {
    /// The request normalized once, as the module's matchers see it.
    pub fn facts(&self) -> RequestFacts<'_> {
        RequestFacts::new(
            &self.method,
            &self.path,
            &self.authority,
            &self.scheme,
            &self.headers,
            Peer::new(self.source_ip, self.principal.as_deref()),
        )
    }

    /// Whether the audit flagged the request as an attack: a signature matched (the record is
    /// an alert, or the mirror names signatures or copied it for one).
    pub fn flagged(&self) -> bool {
        self.alert
            || self
                .mirror
                .as_ref()
                .is_some_and(|m| m.reason == MirrorReason::Signature || !m.signatures.is_empty())
    }

    /// Whether the request passed the allowlist then (no allowlist counts as passing).
    pub fn was_allowed(&self) -> bool {
        self.allowlist
            .as_ref()
            .is_none_or(|d| d.outcome == AllowlistOutcome::Allowed)
    }

    /// The Kubernetes namespace of the mTLS peer.
    pub fn namespace(&self) -> Option<&str> {
        self.principal
            .as_deref()
            .and_then(meshsight_policy::identity::spiffe_namespace)
    }
}

// ---- the two formats, only the fields read ------------------------------------------------

#[derive(Deserialize)]
struct OcsfLine {
    class_uid: u32,
    http_request: OcsfRequest,
    #[serde(default)]
    http_response: Option<OcsfResponse>,
    #[serde(default)]
    src_endpoint: Option<OcsfEndpoint>,
    #[serde(default)]
    is_alert: bool,
    #[serde(default)]
    unmapped: Option<Unmapped>,
}

#[derive(Deserialize)]
struct OcsfRequest {
    #[serde(default)]
    http_method: Option<String>,
    url: OcsfUrl,
    #[serde(default)]
    http_headers: Vec<OcsfHeader>,
    #[serde(default)]
    uid: Option<String>,
}

#[derive(Deserialize)]
struct OcsfUrl {
    path: String,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    scheme: Option<String>,
    #[serde(default)]
    query_string: Option<String>,
}

#[derive(Deserialize)]
struct OcsfHeader {
    name: String,
    value: String,
}

#[derive(Deserialize)]
struct OcsfResponse {
    #[serde(default)]
    code: Option<u16>,
}

#[derive(Deserialize)]
struct OcsfEndpoint {
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    owner: Option<OcsfOwner>,
}

#[derive(Deserialize)]
struct OcsfOwner {
    #[serde(default)]
    uid: Option<String>,
}

#[derive(Deserialize)]
struct Unmapped {
    #[serde(default)]
    meshsight: Option<Details>,
}

#[derive(Deserialize, Default)]
struct Details {
    #[serde(default)]
    allowlist: Option<AllowlistDecision>,
    #[serde(default)]
    mirror: Option<MirrorDecision>,
    #[serde(default)]
    http_method: Option<String>,
}

#[derive(Deserialize)]
struct EcsLine {
    http: EcsHttp,
    url: EcsUrl,
    #[serde(default)]
    source: Option<EcsSource>,
    #[serde(default)]
    tls: Option<EcsTls>,
    #[serde(default)]
    event: Option<EcsEvent>,
    #[serde(default)]
    meshsight: Option<Details>,
}

#[derive(Deserialize)]
struct EcsHttp {
    request: EcsRequest,
    #[serde(default)]
    response: Option<EcsResponse>,
}

#[derive(Deserialize)]
struct EcsRequest {
    method: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    headers: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct EcsResponse {
    #[serde(default)]
    status_code: Option<u16>,
}

#[derive(Deserialize)]
struct EcsUrl {
    path: String,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    scheme: Option<String>,
    #[serde(default)]
    query: Option<String>,
}

#[derive(Deserialize)]
struct EcsSource {
    #[serde(default)]
    ip: Option<String>,
}

#[derive(Deserialize)]
struct EcsTls {
    #[serde(default)]
    client: Option<EcsTlsClient>,
}

#[derive(Deserialize)]
struct EcsTlsClient {
    #[serde(default)]
    x509: Option<EcsX509>,
}

#[derive(Deserialize)]
struct EcsX509 {
    #[serde(default)]
    alternative_names: Vec<String>,
}

#[derive(Deserialize)]
struct EcsEvent {
    #[serde(default)]
    severity: Option<u32>,
}

fn authority(hostname: Option<String>, port: Option<u16>, scheme: &str) -> String {
    match (hostname.filter(|h| !h.is_empty()), port) {
        (None, _) => String::new(),
        (Some(h), Some(p)) if !(scheme == "http" && p == 80 || scheme == "https" && p == 443) => {
            format!("{h}:{p}")
        }
        (Some(h), _) => h,
    }
}

fn path_with_query(path: String, query: Option<String>) -> String {
    match query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    }
}

fn ip(address: Option<&str>) -> Option<IpAddr> {
    let address = address.filter(|a| !a.is_empty())?;
    address
        .parse::<IpAddr>()
        .ok()
        .or_else(|| parse_socket_address(address).map(|(ip, _)| ip))
}

impl OcsfLine {
    fn into_observed(self, line: u64) -> Result<ObservedRequest, (String, String)> {
        if self.class_uid != 4002 {
            return Err((
                "class_uid".to_string(),
                format!(
                    "a record of OCSF class {} where HTTP Activity (4002) was expected",
                    self.class_uid
                ),
            ));
        }
        let details = self.unmapped.and_then(|u| u.meshsight).unwrap_or_default();
        let req = self.http_request;
        let method = req
            .http_method
            .or(details.http_method)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                (
                    "http_request.http_method".to_string(),
                    "missing: the record names no HTTP method".to_string(),
                )
            })?;
        let scheme = req.url.scheme.unwrap_or_default();
        let endpoint = self.src_endpoint;
        Ok(ObservedRequest {
            line,
            method,
            authority: authority(req.url.hostname, req.url.port, &scheme),
            path: path_with_query(req.url.path, req.url.query_string),
            scheme,
            headers: req
                .http_headers
                .into_iter()
                .map(|h| (h.name, h.value))
                .collect(),
            source_ip: ip(endpoint.as_ref().and_then(|e| e.ip.as_deref())),
            principal: endpoint
                .and_then(|e| e.owner)
                .and_then(|o| o.uid)
                .filter(|u| !u.is_empty()),
            request_id: req.uid,
            allowlist: details.allowlist,
            mirror: details.mirror,
            alert: self.is_alert,
            status: self.http_response.and_then(|r| r.code).filter(|c| *c != 0),
        })
    }
}

impl EcsLine {
    fn into_observed(self, line: u64) -> ObservedRequest {
        let details = self.meshsight.unwrap_or_default();
        let scheme = self.url.scheme.unwrap_or_default();
        ObservedRequest {
            line,
            method: self.http.request.method,
            authority: authority(self.url.domain, self.url.port, &scheme),
            path: path_with_query(self.url.path, self.url.query),
            scheme,
            headers: self
                .http
                .request
                .headers
                .unwrap_or_default()
                .into_iter()
                .collect(),
            source_ip: ip(self.source.as_ref().and_then(|s| s.ip.as_deref())),
            principal: self
                .tls
                .and_then(|t| t.client)
                .and_then(|c| c.x509)
                .and_then(|x| x.alternative_names.into_iter().next()),
            request_id: self.http.request.id,
            allowlist: details.allowlist,
            mirror: details.mirror,
            alert: self.event.and_then(|e| e.severity) == Some(4),
            status: self.http.response.and_then(|r| r.status_code),
        }
    }
}

/// Which format a line is in, from its keys (cheaply, before parsing).
fn looks_like_ocsf(line: &[u8]) -> bool {
    contains(line, b"\"class_uid\"")
}

/// The number after the first `"class_uid":`, read without parsing the line.
fn class_uid(line: &[u8]) -> Option<u64> {
    let key = b"\"class_uid\"";
    let at = line.windows(key.len()).position(|w| w == key)? + key.len();
    let rest = &line[at..];
    let rest = &rest[rest
        .iter()
        .position(|b| !b.is_ascii_whitespace() && *b != b':')?..];
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

fn looks_like_ecs(line: &[u8]) -> bool {
    contains(line, b"\"ecs\"")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Parses one line; on failure, parses again tracking the path to name the field (the fast
/// path does not pay for the tracking), with the policy crate's path-tracking reader.
fn parse<T: DeserializeOwned>(line: &[u8]) -> Result<T, (String, String)> {
    if let Ok(v) = serde_json::from_slice::<T>(line) {
        return Ok(v);
    }
    let json = Json::parse(line).map_err(|inner| {
        (
            "(line)".to_string(),
            format!(
                "malformed JSON at column {}: {}",
                inner.column(),
                inner.reason()
            ),
        )
    })?;
    json.deserialize::<T>("").map_err(|e| {
        let field = e.path.unwrap_or_default();
        let reason = e.reason;
        // Name the missing field itself, not its parent.
        let missing = reason
            .strip_prefix("missing field `")
            .and_then(|r| r.strip_suffix('`'));
        let field = match (field.as_str(), missing) {
            ("", Some(m)) => m.to_string(),
            ("", None) => "(record)".to_string(),
            (parent, Some(m)) => format!("{parent}.{m}"),
            (_, None) => field,
        };
        (field, reason)
    })
}

/// A serde_json message without its ` at line L column C` tail (the column is reported apart).
fn strip_at(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Reads one line of a records file into an observed request.
pub fn parse_line(line: &[u8], number: u64) -> Result<ObservedRequest, (String, String)> {
    let trimmed = line.trim_ascii();
    if trimmed.is_empty() {
        return Err(("(line)".to_string(), "empty line: no record".to_string()));
    }
    if looks_like_ocsf(trimmed) {
        if let Some(class) = class_uid(trimmed).filter(|c| *c != 4002) {
            return Err((
                "class_uid".to_string(),
                format!("a record of OCSF class {class} where HTTP Activity (4002) was expected"),
            ));
        }
        parse::<OcsfLine>(trimmed)?.into_observed(number)
    } else if looks_like_ecs(trimmed) {
        Ok(parse::<EcsLine>(trimmed)?.into_observed(number))
    } else {
        // Not JSON at all is reported as such; JSON of another kind names what it lacks.
        match serde_json::from_slice::<serde_json::Value>(trimmed) {
            Err(e) => Err((
                "(line)".to_string(),
                format!("malformed JSON at column {}: {}", e.column(), strip_at(&e)),
            )),
            Ok(_) => Err((
                "class_uid".to_string(),
                "missing: neither an OCSF record (class_uid) nor an ECS document (ecs.version)"
                    .to_string(),
            )),
        }
    }
}

/// Counts of one pass over a records file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Records read.
    pub records: u64,
    /// Bad lines skipped (`--skip-bad`).
    pub skipped: u64,
    /// The first bad lines skipped.
    pub first_errors: Vec<RecordError>,
    /// Bytes read.
    pub bytes: u64,
}

/// A streaming reader of one records file.
pub struct RecordReader {
    name: String,
    input: Box<dyn BufRead>,
    buf: Vec<u8>,
    line: u64,
    skip_bad: bool,
    stats: ReadStats,
    progress: Option<Progress>,
}

struct Progress {
    total: Option<u64>,
    started: Instant,
    last: Instant,
}

impl RecordReader {
    /// Opens `path` (`-` reads standard input).
    pub fn open(path: &Path, skip_bad: bool) -> Result<RecordReader, CliError> {
        let name = path.display().to_string();
        let (input, total): (Box<dyn BufRead>, Option<u64>) = if name == "-" {
            (
                Box::new(BufReader::with_capacity(1 << 20, std::io::stdin())),
                None,
            )
        } else {
            let file = File::open(path).map_err(|e| CliError::io(path, e))?;
            let total = file.metadata().ok().map(|m| m.len());
            (Box::new(BufReader::with_capacity(1 << 20, file)), total)
        };
        let progress = std::io::stderr().is_terminal().then(|| Progress {
            total,
            started: Instant::now(),
            last: Instant::now(),
        });
        Ok(RecordReader::new(name, input, skip_bad, progress))
    }

    /// Reads records from any input named `name` (no progress).
    pub fn from_reader(name: &str, input: impl Read + 'static, skip_bad: bool) -> RecordReader {
        RecordReader::new(
            name.to_string(),
            Box::new(BufReader::new(input)),
            skip_bad,
            None,
        )
    }

    fn new(
        name: String,
        input: Box<dyn BufRead>,
        skip_bad: bool,
        progress: Option<Progress>,
    ) -> RecordReader {
        RecordReader {
            name,
            input,
            buf: Vec::with_capacity(4096),
            line: 0,
            skip_bad,
            stats: ReadStats::default(),
            progress,
        }
    }

    /// The file's name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next record; `Ok(None)` at the end. Fails on the first bad line unless skipping.
    pub fn next_record(&mut self) -> Result<Option<ObservedRequest>, CliError> {
        loop {
            self.buf.clear();
            let n = self
                .input
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| CliError::io(&self.name, e))?;
            if n == 0 {
                self.finish_progress();
                if self.stats.records == 0 && self.stats.skipped == 0 {
                    return Err(CliError::EmptyRecords {
                        path: self.name.clone().into(),
                    });
                }
                return Ok(None);
            }
            self.line += 1;
            self.stats.bytes += n as u64;
            match parse_line(&self.buf, self.line) {
                Ok(record) => {
                    self.stats.records += 1;
                    if self.stats.records % 8192 == 0 {
                        self.show_progress();
                    }
                    return Ok(Some(record));
                }
                Err((field, reason)) => {
                    let error = RecordError {
                        file: self.name.clone(),
                        line: self.line,
                        field,
                        reason,
                    };
                    if !self.skip_bad {
                        self.finish_progress();
                        return Err(error.into());
                    }
                    self.stats.skipped += 1;
                    if self.stats.first_errors.len() < KEPT_ERRORS {
                        self.stats.first_errors.push(error);
                    }
                }
            }
        }
    }

    /// What was read so far.
    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }

    fn show_progress(&mut self) {
        let Some(p) = &mut self.progress else { return };
        if p.last.elapsed() < Duration::from_millis(200) {
            return;
        }
        p.last = Instant::now();
        let secs = p.started.elapsed().as_secs_f64().max(1e-3);
        let rate = self.stats.records as f64 / secs;
        let mb = self.stats.bytes as f64 / 1e6;
        let done = match p.total {
            Some(t) if t > 0 => format!(
                " of {:.0} MB ({:.0}%)",
                t as f64 / 1e6,
                100.0 * self.stats.bytes as f64 / t as f64
            ),
            _ => String::new(),
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{}: {} records, {mb:.0} MB{done}, {rate:.0} records/s   ",
            self.name, self.stats.records
        );
        let _ = err.flush();
    }

    fn finish_progress(&mut self) {
        if self.progress.take().is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

impl ReadStats {
    /// The `--skip-bad` summary lines (empty when nothing was skipped).
    pub fn skipped_report(&self) -> Vec<String> {
        if self.skipped == 0 {
            return Vec::new();
        }
        let mut lines = vec![format!(
            "skipped {} bad line(s) (--skip-bad):",
            self.skipped
        )];
        for e in &self.first_errors {
            lines.push(format!("  {e}"));
        }
        if self.skipped as usize > self.first_errors.len() {
            lines.push(format!(
                "  ... and {} more",
                self.skipped as usize - self.first_errors.len()
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests;
