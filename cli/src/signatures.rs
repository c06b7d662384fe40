//! `meshsight signatures test RULES REQUESTS`: which signature rules fire on a set of requests,
//! before a pack is pushed. RULES is what the mirror would run:
//! - a pack document (`{"pack": .., "rules": [..]}`), layered over the built-in pack as the
//!   mirror layers `signatures.packs` (or by itself, [`Layering::Alone`]);
//! - `builtin`, the built-in pack alone;
//! - a policy file (the one-pass document or a mirror policy): its signatures exactly as the
//!   module compiles them (`builtin`, `packs`, `disable`, legacy `custom`).
//!
//! Requests are raw HTTP/1.1 or NDJSON (see [`test_requests`]); an NDJSON request may carry
//! its `response`, which the response rules scan (the policy's `responses` rules, or the
//! built-in response pack under the pack's own response rules).
//! A request whose line says `"expect": "hit"` or `"miss"` is checked against it, so a SOC's
//! own regression corpus can gate a pack in CI.

pub mod test_requests;

use std::path::{Path, PathBuf};

use meshsight_policy::mirror::signatures::pack::{self, Pack};
use meshsight_policy::mirror::signatures::SignatureSet;
use meshsight_policy::ConfigError;
use serde::Serialize;
use serde_json::Value;

use crate::policy::{compile, LoadedPolicy};
use crate::CliError;
use meshsight_policy::response::raw::RawResponses;
use meshsight_policy::response::{split_rules, ResponsePolicy};
use test_requests::{parse_requests, run_with_responses, Layering, RequestVerdict, TestError};

/// The compiled rules under test.
#[derive(Debug)]
pub enum Rules {
    /// Built from packs (the built-in one, a pack file, or both), with their response rules.
    Packs(Box<SignatureSet>, Box<ResponsePolicy>),
    /// A policy's own signatures.
    Policy(Box<LoadedPolicy>, Option<Box<ResponsePolicy>>),
}

/// Response rules as a test runs them: every response scanned, the built-in response pack
/// (unless the packs are tested alone) under `extra`.
fn test_responses(extra: Vec<pack::Rule>, builtin: bool) -> Result<ResponsePolicy, ConfigError> {
    let raw: RawResponses =
        ConfigError::parse_json(format!(r#"{{"all": true, "builtin": {builtin}}}"#).as_bytes())
            .map_err(|e| ConfigError::new("responses", e.to_string()))?;
    ResponsePolicy::compile(&raw, extra)
}

impl Rules {
    /// Reads RULES: `builtin`, a pack document, or a policy file (told apart by its keys).
    pub fn load(rules: &str, layering: Layering) -> Result<Rules, CliError> {
        if rules == "builtin" {
            let builtin =
                Pack::builtin().map_err(|e| pack_error(Path::new("(built-in pack)"), e))?;
            return packs_set(Path::new("(built-in pack)"), vec![builtin], true);
        }
        let path = PathBuf::from(rules);
        let bytes = std::fs::read(&path).map_err(|e| CliError::io(&path, e))?;
        let document: Value = serde_json::from_slice(&bytes).map_err(|e| CliError::Policy {
            path: path.clone(),
            at: format!("(document) line {} column {}", e.line(), e.column()),
            reason: e.to_string(),
        })?;
        if is_pack(&document) {
            let user = Pack::from_json(&bytes).map_err(|e| pack_error(&path, e))?;
            let mut packs = Vec::new();
            if layering == Layering::OverBuiltin {
                packs.push(Pack::builtin().map_err(|e| pack_error(&path, e))?);
            }
            packs.push(user);
            return packs_set(&path, packs, layering == Layering::OverBuiltin);
        }
        if layering == Layering::Alone {
            return Err(CliError::Usage {
                option: "--alone",
                reason: format!(
                    "{} is a policy: its signatures are tested as the module compiles them (set \"builtin\": false in it instead)",
                    path.display()
                ),
            });
        }
        let loaded = compile(&path, &bytes, None)?;
        if loaded.plugin.mirror.is_none() {
            return Err(CliError::MissingJob {
                path,
                job: "mirror",
                command: "signatures test",
            });
        }
        // A policy without a `responses` section scans no response in the module; its answers
        // are tested against the built-in response rules.
        let responses = match loaded.plugin.mirror.as_ref().and_then(|m| m.responses()) {
            Some(_) => None,
            None => Some(Box::new(
                test_responses(Vec::new(), true).map_err(|e| pack_error(&path, e))?,
            )),
        };
        Ok(Rules::Policy(Box::new(loaded), responses))
    }

    /// The response rules answers are scanned with.
    pub fn responses(&self) -> Option<&ResponsePolicy> {
        match self {
            Rules::Packs(_, responses) => Some(responses),
            Rules::Policy(loaded, own) => loaded
                .plugin
                .mirror
                .as_ref()
                .and_then(|m| m.responses())
                .or(own.as_deref()),
        }
    }

    /// The compiled set.
    pub fn set(&self) -> &SignatureSet {
        match self {
            Rules::Packs(set, _) => set,
            Rules::Policy(loaded, _) => match loaded.plugin.mirror.as_ref() {
                Some(mirror) => mirror.signature_set(),
                // `load` refuses a policy without a mirror section.
                None => unreachable!("a policy under test has a mirror section"),
            },
        }
    }
}

fn is_pack(document: &Value) -> bool {
    document
        .as_object()
        .is_some_and(|o| o.contains_key("pack") && o.contains_key("rules"))
}

fn packs_set(path: &Path, packs: Vec<Pack>, builtin: bool) -> Result<Rules, CliError> {
    let (requests, responses) = split_rules(pack::layer(packs));
    let set = SignatureSet::new(requests, true).map_err(|e| pack_error(path, e))?;
    let responses = test_responses(responses, builtin).map_err(|e| pack_error(path, e))?;
    Ok(Rules::Packs(Box::new(set), Box::new(responses)))
}

fn pack_error(path: &Path, e: ConfigError) -> CliError {
    CliError::Policy {
        path: path.to_path_buf(),
        at: if e.path.is_empty() {
            "(document)".to_string()
        } else {
            e.path
        },
        reason: e.reason,
    }
}

/// One request's outcome, as printed.
#[derive(Debug, Clone, Serialize)]
pub struct Tested {
    /// What fired.
    #[serde(flatten)]
    pub verdict: RequestVerdict,
    /// The request's `expect` was not met.
    pub unexpected: bool,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Each request, in input order.
    pub requests: Vec<Tested>,
    /// Requests on which some rule fired.
    pub matched: usize,
    /// Requests that carried an `expect` and did not meet it.
    pub unexpected: usize,
}

/// Scans every request of `requests` (raw HTTP or NDJSON text read from `from`) with `rules`.
pub fn test(rules: &Rules, requests: &[u8], from: &Path) -> Result<Report, CliError> {
    let parsed = parse_requests(requests).map_err(|e| match e {
        TestError::Request {
            index,
            line,
            reason,
        } => CliError::Request(format!(
            "{}:{line}: request {index}: {reason}",
            from.display()
        )),
        TestError::Pack(e) => pack_error(from, e),
    })?;
    let set = rules.set();
    let requests: Vec<Tested> = parsed
        .into_iter()
        .map(|r| {
            let verdict = run_with_responses(set, rules.responses(), r);
            let response_hit = verdict.response.as_ref().map(|t| !t.rules.is_empty());
            let response_expect = verdict
                .request
                .response
                .as_ref()
                .and_then(|r| r.expect.as_deref());
            let unexpected = match verdict.request.expect.as_deref() {
                Some("hit") => !verdict.hit(),
                Some("miss") => verdict.hit(),
                _ => false,
            } || match (response_expect, response_hit) {
                (Some("hit"), hit) => hit != Some(true),
                (Some("miss"), hit) => hit == Some(true),
                _ => false,
            };
            Tested {
                verdict,
                unexpected,
            }
        })
        .collect();
    Ok(Report {
        matched: requests.iter().filter(|t| t.verdict.hit()).count(),
        unexpected: requests.iter().filter(|t| t.unexpected).count(),
        requests,
    })
}
