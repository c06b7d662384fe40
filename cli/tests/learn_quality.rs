//! `learn` on generated traffic of a realistic mesh (six services, about sixty endpoints with
//! path parameters, four caller namespaces, scanners and exploit attempts mixed in), judged with
//! the generator's ground truth: train on 70%, replay the held-out 30%.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use meshsight_cli::check::analyse;
use meshsight_cli::learn::{LearnOptions, Learner};
use meshsight_cli::quality::held_out;
use meshsight_cli::records::parse_line;
use meshsight_cli::replay::judge;
use meshsight_cli::traffic::{Label, MeshTraffic};
use meshsight_policy::allowlist::AllowList;
use meshsight_policy::decision::AllowlistOutcome;

const RECORDS: u64 = 20_000;
const HOLDOUT: f64 = 0.3;

#[test]
fn held_out_legitimate_traffic_is_allowed_and_attacks_and_probes_are_denied() {
    let mut traffic = MeshTraffic::new(2026, "ocsf").unwrap();
    let mut all = Vec::new();
    for line in 1..=RECORDS {
        let g = traffic.next_record();
        let r = parse_line(g.line.as_bytes(), line).unwrap();
        all.push((r, g.label));
    }
    let mut learner = Learner::new(LearnOptions::default());
    let mut legit_only = Learner::new(LearnOptions::default());
    for (r, label) in all.iter().filter(|(r, _)| !held_out(r, HOLDOUT)) {
        learner.observe(r);
        if *label == Label::Legitimate {
            legit_only.observe(r);
        }
    }
    let raw = learner.propose();
    // Attacks and probes were never learned: without them the proposal is the same.
    assert_eq!(raw, legit_only.propose());
    let list = AllowList::try_from(raw.clone()).expect("the proposal compiles");
    let findings = analyse(&raw, false);
    assert!(
        findings.iter().all(|f| f.kind == "overlap"),
        "no rule of the proposal is shadowed or unmatchable: {findings:?}"
    );

    let mut tally = std::collections::BTreeMap::<(bool, &str), (u64, u64)>::new();
    for (r, label) in &all {
        let allowed = judge(&list, r).0 == AllowlistOutcome::Allowed;
        let name = match label {
            Label::Legitimate => "legitimate",
            Label::Probe => "probe",
            Label::Attack => "attack",
        };
        let e = tally.entry((held_out(r, HOLDOUT), name)).or_default();
        e.0 += 1;
        e.1 += u64::from(allowed);
    }
    let share = |k: (bool, &str)| {
        let (n, allowed) = tally[&k];
        (n, allowed as f64 / n as f64)
    };
    let (n_train, train_allowed) = share((false, "legitimate"));
    let (n_legit, legit_allowed) = share((true, "legitimate"));
    let (n_probe, probe_allowed) = share((true, "probe"));
    let (n_attack, attack_allowed) = share((true, "attack"));
    println!(
        "learn quality on {RECORDS} generated records ({} rules): training legitimate allowed {:.2}% of {n_train}; held-out legitimate allowed {:.2}% of {n_legit}, probes denied {:.2}% of {n_probe}, attacks denied {:.2}% of {n_attack}",
        list.rule_count(),
        100.0 * train_allowed,
        100.0 * legit_allowed,
        100.0 * (1.0 - probe_allowed),
        100.0 * (1.0 - attack_allowed)
    );
    assert_eq!(
        train_allowed, 1.0,
        "replaying the learning records gives 0 denials"
    );
    assert!(
        legit_allowed >= 0.995,
        "held-out legitimate allowed {legit_allowed}"
    );
    assert!(
        probe_allowed <= 0.02,
        "held-out probes allowed {probe_allowed}"
    );
    assert!(
        attack_allowed <= 0.08,
        "held-out attacks allowed {attack_allowed}"
    );
}
