//! `meshsight signatures test RULES REQUESTS`: which signature rules fire on a set of requests,
//! before a pack is pushed. RULES is what the mirror would run:
//! - a pack document (`{"pack": .., "rules": [..]}`), layered over the built-in pack as the
//!   mirror layers `signatures.packs` (or by itself, [`Layering::Alone`]);
//! - `builtin`, the built-in pack alone;
//! - a policy file (the one-pass document or a mirror policy): its signatures exactly as the
//!   module compiles them (`builtin`, `packs`, `disable`, legacy `custom`).
//!
//! Requests are raw HTTP/1.1 or NDJSON (see [`test_requests`]).
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
use test_requests::{parse_requests, run, Layering, RequestVerdict, TestError};

/// The compiled rules under test.
#[derive(Debug)]
pub enum Rules {
    /// Built from packs (the built-in one, a pack file, or both).
    Packs(Box<SignatureSet>),
    /// A policy's own signatures.
    Policy(Box<LoadedPolicy>),
}

impl Rules {
    /// Reads RULES: `builtin`, a pack document, or a policy file (told apart by its keys).
    pub fn load(rules: &str, layering: Layering) -> Result<Rules, CliError> {
        if rules == "builtin" {
            let builtin =
                Pack::builtin().map_err(|e| pack_error(Path::new("(built-in pack)"), e))?;
            return packs_set(Path::new("(built-in pack)"), vec![builtin]);
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
            return packs_set(&path, packs);
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
        Ok(Rules::Policy(Box::new(loaded)))
    }

    /// The compiled set.
    pub fn set(&self) -> &SignatureSet {
        match self {
            Rules::Packs(set) => set,
            Rules::Policy(loaded) => match loaded.plugin.mirror.as_ref() {
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

fn packs_set(path: &Path, packs: Vec<Pack>) -> Result<Rules, CliError> {
    SignatureSet::new(pack::layer(packs), true)
        .map(|set| Rules::Packs(Box::new(set)))
        .map_err(|e| pack_error(path, e))
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
            let verdict = run(set, r);
            let unexpected = match verdict.request.expect.as_deref() {
                Some("hit") => !verdict.hit(),
                Some("miss") => verdict.hit(),
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
