//! The trade-off of a learned allowlist, measured on held-out traffic: the records are split
//! (deterministically, by request id) into a training part that `learn` sees and a held-out
//! part it does not; the proposal then judges both. On the held-out part: the share of
//! legitimate requests allowed (what enforcing it now would not break) and the share of
//! suspicious requests denied (attacks the audit flagged, probes answered with a probe status).
//! On the training part: learned requests denied (must be 0) and flagged requests allowed (must
//! be 0).

use meshsight_policy::allowlist::AllowList;
use meshsight_policy::decision::AllowlistOutcome;
use meshsight_policy::sampling::{in_sample, stable_hash};
use serde::Serialize;

use crate::learn::{Learner, Skip};
use crate::records::ObservedRequest;

/// Whether `record` belongs to the held-out share `fraction` (by its request id, else its line).
pub fn held_out(record: &ObservedRequest, fraction: f64) -> bool {
    let key = match &record.request_id {
        Some(id) => stable_hash(id.as_bytes()),
        None => stable_hash(&record.line.to_le_bytes()),
    };
    in_sample(key, fraction)
}

/// The figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Quality {
    /// Held-out share asked for.
    pub holdout: f64,
    /// Training records.
    pub train_records: u64,
    /// Training records learned from.
    pub train_learned: u64,
    /// Learned training records the proposal denies (0 by construction).
    pub train_learned_denied: u64,
    /// Flagged training records the proposal allows (0 by construction).
    pub train_flagged_allowed: u64,
    /// Held-out records.
    pub heldout_records: u64,
    /// Held-out legitimate requests (learnable: not flagged, no probe status).
    pub heldout_legitimate: u64,
    /// ... of which the proposal allows.
    pub heldout_legitimate_allowed: u64,
    /// Held-out suspicious requests (flagged or with a probe status).
    pub heldout_suspicious: u64,
    /// ... of which the proposal denies.
    pub heldout_suspicious_denied: u64,
}

impl Quality {
    /// Share of held-out legitimate requests allowed.
    pub fn legitimate_allowed(&self) -> f64 {
        ratio(self.heldout_legitimate_allowed, self.heldout_legitimate)
    }

    /// Share of held-out suspicious requests denied.
    pub fn suspicious_denied(&self) -> f64 {
        ratio(self.heldout_suspicious_denied, self.heldout_suspicious)
    }

    /// Counts one record judged by the proposal.
    pub fn add(&mut self, learner: &Learner, list: &AllowList, record: &ObservedRequest) {
        let allowed =
            list.judge_facts(&record.facts()).decision.outcome == AllowlistOutcome::Allowed;
        let skip = learner.triage(record);
        if held_out(record, self.holdout) {
            self.heldout_records += 1;
            match skip {
                Skip::Learned => {
                    self.heldout_legitimate += 1;
                    self.heldout_legitimate_allowed += u64::from(allowed);
                }
                Skip::Flagged | Skip::ProbeStatus => {
                    self.heldout_suspicious += 1;
                    self.heldout_suspicious_denied += u64::from(!allowed);
                }
                Skip::Unlearnable => {}
            }
        } else {
            self.train_records += 1;
            match skip {
                Skip::Learned => {
                    self.train_learned += 1;
                    self.train_learned_denied += u64::from(!allowed);
                }
                Skip::Flagged => self.train_flagged_allowed += u64::from(allowed),
                _ => {}
            }
        }
    }

    /// The report, one line each.
    pub fn lines(&self) -> Vec<String> {
        vec![
            format!(
                "held-out quality ({:.0}% of {} records held out):",
                self.holdout * 100.0,
                self.train_records + self.heldout_records
            ),
            format!(
                "  legitimate requests allowed: {:.2}% ({} of {})",
                100.0 * self.legitimate_allowed(),
                self.heldout_legitimate_allowed,
                self.heldout_legitimate
            ),
            format!(
                "  attacks and probes denied:   {:.2}% ({} of {})",
                100.0 * self.suspicious_denied(),
                self.heldout_suspicious_denied,
                self.heldout_suspicious
            ),
            format!(
                "  training: {} learned requests denied, {} flagged requests allowed",
                self.train_learned_denied, self.train_flagged_allowed
            ),
        ]
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}
