//! A response finding in the request's one audit record (OCSF and the access-log verdict
//! fragment alike): `attacks` gains the finding's ATT&CK techniques, `severity_id` becomes
//! Critical (5) when a request signature and a response finding meet (High otherwise),
//! `is_alert` is set, and the OCSF risk members say what a SIEM filters on:
//! `risk_level_id`/`risk_level` and `risk_details` starting with `succeeded` or `attempted`.
//! `unmapped.meshsight.response` names each rule, kind, place and secret hash; never a secret.

use crate::attack::Attack;
use crate::json::{key, JsonObject};

use super::{ResponseCopy, ResponseVerdict};
use crate::decision::MirrorReason;

/// The ATT&CK technique a response rule names, with its tactic (`None`: not in the table).
pub fn attack_for(technique: &str) -> Option<Attack> {
    let credential = |uid, name| Attack {
        technique_uid: uid,
        technique_name: name,
        tactic_uid: "TA0006",
        tactic_name: "Credential Access",
    };
    Some(match technique {
        "T1552.005" => credential("T1552.005", "Cloud Instance Metadata API"),
        "T1552.001" => credential("T1552.001", "Credentials In Files"),
        "T1552.004" => credential("T1552.004", "Private Keys"),
        "T1552.007" => credential("T1552.007", "Container API"),
        "T1528" => credential("T1528", "Steal Application Access Token"),
        "T1059" => Attack {
            technique_uid: "T1059",
            technique_name: "Command and Scripting Interpreter",
            tactic_uid: "TA0002",
            tactic_name: "Execution",
        },
        "T1613" => Attack {
            technique_uid: "T1613",
            technique_name: "Container and Resource Discovery",
            tactic_uid: "TA0007",
            tactic_name: "Discovery",
        },
        _ => return None,
    })
}

impl ResponseVerdict {
    /// The distinct techniques of the findings, in finding order.
    #[inline(never)]
    pub fn attacks(&self) -> Vec<Attack> {
        let mut out: Vec<Attack> = Vec::new();
        for a in self
            .findings
            .iter()
            .filter_map(|f| f.technique.as_deref().and_then(attack_for))
        {
            if !out.contains(&a) {
                out.push(a);
            }
        }
        out
    }

    /// OCSF `severity_id` the finding raises the record to: 5 (Critical) when a request
    /// signature and a response finding meet, 4 (High) for a finding alone.
    pub fn severity_id(&self) -> Option<u32> {
        if self.findings.is_empty() {
            None
        } else if self.signature_hit {
            Some(5)
        } else {
            Some(4)
        }
    }

    /// OCSF `risk_level_id`: Critical (4) succeeded after a signature, High (3) succeeded,
    /// Medium (2) attempted.
    fn risk_level_id(&self) -> Option<u64> {
        match (self.findings.is_empty(), self.signature_hit) {
            (false, true) => Some(4),
            (false, false) => Some(3),
            (true, true) => Some(2),
            (true, false) => None,
        }
    }

    /// `succeeded: <kinds> (<techniques>)` or `attempted: no response finding`.
    fn risk_details(&self) -> String {
        if self.findings.is_empty() {
            return "attempted: no response finding".to_string();
        }
        let mut kinds: Vec<&str> = Vec::new();
        let mut techniques: Vec<&str> = Vec::new();
        for f in &self.findings {
            if !kinds.contains(&f.category.as_str()) {
                kinds.push(&f.category);
            }
            if let Some(t) = f.technique.as_deref().filter(|t| !techniques.contains(t)) {
                techniques.push(t);
            }
        }
        format!(
            "succeeded: {} in the response ({})",
            kinds.join(", "),
            techniques.join(", ")
        )
    }

    /// Appends `risk_level_id`, `risk_level` and `risk_details` to an OCSF event (nothing when
    /// there was neither an attempt nor a finding).
    pub(crate) fn write_risk(&self, event: &mut JsonObject<'_>) {
        let Some(level) = self.risk_level_id() else {
            return;
        };
        event.u64(key!("risk_level_id"), level);
        event.str(
            key!("risk_level"),
            match level {
                4 => "Critical",
                3 => "High",
                _ => "Medium",
            },
        );
        event.str(key!("risk_details"), &self.risk_details());
    }

    /// The members of `unmapped.meshsight.response`: outcome, status, what inflating the body
    /// found wrong (`decoding`), whether it was copied
    /// (`mirrored`, and `reason: rate_limited` as the request's decision says it), findings
    /// (rule, kind, where, technique, the secret's kind, place and short hash).
    pub(crate) fn write_members(&self, o: &mut JsonObject<'_>) {
        o.caption(key!("outcome"), self.outcome());
        o.u64(key!("status"), u64::from(self.status));
        o.opt_str(key!("decoding"), self.decoding);
        if self.copy != ResponseCopy::None {
            let copied = self.copy == ResponseCopy::Mirrored;
            o.bool(key!("mirrored"), copied);
            if !copied {
                o.str(key!("reason"), MirrorReason::RateLimited.as_str());
            }
        }
        o.array(key!("findings"), |list| {
            for f in &self.findings {
                list.object(|fo| {
                    fo.str(key!("rule"), &f.rule);
                    fo.str(key!("kind"), &f.category);
                    fo.caption(key!("where"), f.location);
                    fo.opt_str(key!("technique"), f.technique.as_deref());
                    if let Some(s) = &f.secret {
                        fo.object(key!("secret"), |so| {
                            so.caption(key!("kind"), s.kind);
                            so.str(key!("where"), &s.location);
                            so.str(key!("sha256"), &s.sha256);
                        });
                    }
                });
            }
        });
    }

    /// The finding as one JSON object (what the copy carries and tests read).
    pub fn to_json_text(&self) -> String {
        let mut out = String::with_capacity(256);
        let mut o = JsonObject::open(&mut out);
        self.write_members(&mut o);
        o.close();
        out
    }
}
