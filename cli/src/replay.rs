//! `meshsight replay`: recorded requests judged again by a candidate allowlist, exactly as the
//! module would judge them (the same normalization and matcher, the recorded peer address and
//! identity, the recorded headers). Reports the requests whose verdict changes, grouped by
//! (then, now), the first few of them, and the hits per rule of the candidate; a request that
//! was allowed then and would not be now is a regression.

use std::collections::BTreeMap;

use meshsight_policy::allowlist::AllowList;
use meshsight_policy::decision::AllowlistOutcome;
use serde::Serialize;

use crate::error::CliError;
use crate::records::{ObservedRequest, RecordReader};

/// A verdict, then or now (`none`: no allowlist decision in the record).
pub fn outcome_name(outcome: Option<AllowlistOutcome>) -> &'static str {
    match outcome {
        None => "none",
        Some(AllowlistOutcome::Allowed) => "allowed",
        Some(AllowlistOutcome::Denied) => "denied",
        Some(AllowlistOutcome::WouldDeny) => "would_deny",
        Some(AllowlistOutcome::Malformed) => "malformed",
    }
}

/// One request whose verdict changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Line in the records file.
    pub line: u64,
    /// Method.
    pub method: String,
    /// Host as recorded.
    pub host: String,
    /// Path as recorded (with query).
    pub path: String,
    /// Verdict then.
    pub then: &'static str,
    /// Verdict now.
    pub now: &'static str,
    /// The candidate's rule that allows it now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The audit flagged it as an attack.
    pub flagged: bool,
}

/// What replaying a records file gives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    /// Records judged.
    pub records: u64,
    /// Bad lines skipped.
    pub skipped: u64,
    /// Records whose verdict is the same.
    pub unchanged: u64,
    /// Records whose verdict changes, by `then -> now`.
    pub changes: BTreeMap<String, u64>,
    /// Requests allowed then that the candidate would not allow.
    pub regressions: u64,
    /// Requests not allowed then that the candidate allows.
    pub newly_allowed: u64,
    /// Requests the audit flagged as attacks that the candidate allows.
    pub flagged_allowed: u64,
    /// Hits per rule of the candidate, in policy order.
    pub rule_hits: Vec<(String, u64)>,
    /// The first changed requests (regressions first).
    pub examples: Vec<Change>,
}

/// Judges one record with `list`: (outcome now, rule index).
pub fn judge(list: &AllowList, record: &ObservedRequest) -> (AllowlistOutcome, Option<usize>) {
    let j = list.judge_facts(&record.facts());
    (j.decision.outcome, j.rule)
}

/// Replays every record of `reader` against `list`, keeping at most `examples` changed requests.
pub fn replay(
    list: &AllowList,
    reader: &mut RecordReader,
    examples: usize,
) -> Result<ReplayReport, CliError> {
    let mut report = ReplayReport::default();
    let mut hits = vec![0u64; list.rule_count()];
    let mut regressions = Vec::new();
    let mut others = Vec::new();
    while let Some(record) = reader.next_record()? {
        report.records += 1;
        let then = record.allowlist.as_ref().map(|d| d.outcome);
        let (now, rule) = judge(list, &record);
        if let Some(h) = rule.and_then(|i| hits.get_mut(i)) {
            *h += 1;
        }
        let allowed_now = now == AllowlistOutcome::Allowed;
        if allowed_now && record.flagged() {
            report.flagged_allowed += 1;
        }
        let then_allowed = record.was_allowed();
        if then == Some(now) || (then.is_none() && allowed_now) {
            report.unchanged += 1;
            continue;
        }
        let key = format!("{} -> {}", outcome_name(then), outcome_name(Some(now)));
        *report.changes.entry(key).or_insert(0) += 1;
        let regression = then_allowed && !allowed_now;
        if regression {
            report.regressions += 1;
        } else if allowed_now {
            report.newly_allowed += 1;
        }
        let bucket = if regression {
            &mut regressions
        } else {
            &mut others
        };
        if bucket.len() < examples {
            bucket.push(Change {
                line: record.line,
                method: record.method.clone(),
                host: record.authority.clone(),
                path: record.path.clone(),
                then: outcome_name(then),
                now: outcome_name(Some(now)),
                rule: rule.and_then(|i| list.rule_name(i)).map(str::to_string),
                flagged: record.flagged(),
            });
        }
    }
    report.skipped = reader.stats().skipped;
    report.rule_hits = list.rule_names().map(str::to_string).zip(hits).collect();
    regressions.extend(others);
    regressions.truncate(examples);
    report.examples = regressions;
    Ok(report)
}
