use super::*;
use crate::records::ObservedRequest;
use meshsight_policy::allowlist::AllowList;

fn seen(method: &str, host: &str, path: &str, principal: Option<&str>) -> ObservedRequest {
    ObservedRequest {
        method: method.into(),
        path: path.into(),
        authority: host.into(),
        scheme: "http".into(),
        principal: principal.map(str::to_string),
        status: Some(200),
        ..ObservedRequest::default()
    }
}

#[test]
fn values_become_parameters() {
    assert_eq!(classify("12345"), Some("id"));
    assert_eq!(
        classify("3f2c8a4e-1b2d-4c3e-9f00-0123456789ab"),
        Some("uuid")
    );
    assert_eq!(
        classify("da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        Some("hash")
    );
    assert_eq!(classify("ch_Xy3kQ9vLmN2pR7sT1uVw"), Some("token"));
    for literal in [
        "orders",
        "v1",
        "api",
        "healthz",
        "wireless-headphones",
        "index.html",
        "",
    ] {
        assert_eq!(classify(literal), None, "{literal}");
    }
}

#[test]
fn one_rule_per_host_method_and_callers() {
    let mut l = Learner::new(LearnOptions::default());
    let web = Some("spiffe://cluster.local/ns/web/sa/frontend");
    for i in 0..5 {
        l.observe(&seen("GET", "shop", &format!("/api/items/{i}"), web));
        l.observe(&seen(
            "GET",
            "shop",
            &format!("/api/items/{i}/reviews"),
            web,
        ));
    }
    l.observe(&seen("GET", "shop", "/healthz", None));
    l.observe(&seen("POST", "shop", "/api/items", web));
    let p = l.propose();
    let rules: Vec<(&str, Vec<String>)> = p
        .rules
        .iter()
        .map(|r| {
            let paths = r
                .paths
                .iter()
                .flatten()
                .map(|p| serde_json::to_string(p).unwrap())
                .collect();
            (r.name.as_str(), paths)
        })
        .collect();
    assert_eq!(
        rules,
        vec![
            ("shop-get", vec!["\"/healthz\"".to_string()]),
            (
                "shop-get-2",
                vec![
                    "\"/api/items/{id}\"".to_string(),
                    "\"/api/items/{id}/reviews\"".to_string()
                ]
            ),
            ("shop-post", vec!["\"/api/items\"".to_string()]),
        ]
    );
    assert_eq!(p.rules[0].sources, None);
    // Principals by default (was namespaces: stricter on purpose, see `principals_by_default`).
    assert_eq!(
        p.rules[1]
            .sources
            .as_ref()
            .and_then(|s| s.principals.clone()),
        Some(vec!["spiffe://cluster.local/ns/web/sa/frontend".to_string()])
    );
}

#[test]
fn wide_fan_out_generalizes_and_memory_stays_bounded() {
    let o = LearnOptions {
        fanout: 10,
        fanout_min_requests: 10,
        max_children: 50,
        ..LearnOptions::default()
    };
    let mut l = Learner::new(o);
    for i in 0..20 {
        l.observe(&seen("GET", "cdn", &format!("/static/file-{i}.js"), None));
    }
    for i in 0..200 {
        l.observe(&seen("GET", "cdn", &format!("/docs/page-{i}/part"), None));
    }
    let paths: Vec<String> = l.propose().rules[0]
        .paths
        .iter()
        .flatten()
        .map(|p| serde_json::to_string(p).unwrap())
        .collect();
    assert_eq!(paths, vec!["\"/docs/**\"", "\"/static/*\""]);
}

#[test]
fn flagged_and_probe_requests_are_not_learned() {
    let mut l = Learner::new(LearnOptions::default());
    let mut attack = seen("GET", "shop", "/admin", None);
    attack.alert = true;
    let mut probe = seen("GET", "shop", "/.env", None);
    probe.status = Some(404);
    assert_eq!(l.observe(&attack), Skip::Flagged);
    assert_eq!(l.observe(&probe), Skip::ProbeStatus);
    assert_eq!(
        l.observe(&seen("GET", "shop", "/a%2fb", None)),
        Skip::Unlearnable
    );
    assert!(l.propose().rules.is_empty());
}

const ORDERS: &str = "spiffe://cluster.local/ns/shop/sa/orders";
const CHECKOUT: &str = "spiffe://cluster.local/ns/shop/sa/checkout";
const WEB: &str = "spiffe://cluster.local/ns/shop/sa/web";

/// Orders and checkout charge payments; web (same namespace) only reads the catalog.
fn shop(options: LearnOptions) -> Proposal {
    let mut l = Learner::new(options);
    for i in 0..10 {
        l.observe(&seen("POST", "payments", "/charges", Some(ORDERS)));
        l.observe(&seen("POST", "payments", "/charges", Some(CHECKOUT)));
        l.observe(&seen(
            "GET",
            "catalog",
            &format!("/products/{i}"),
            Some(WEB),
        ));
    }
    l.proposal()
}

fn allowed(p: &RawPolicy, method: &str, host: &str, path: &str, principal: &str) -> bool {
    let list = AllowList::try_from(p.clone()).unwrap();
    let r = seen(method, host, path, Some(principal));
    list.judge_facts(&r.facts()).decision.outcome
        == meshsight_policy::decision::AllowlistOutcome::Allowed
}

#[test]
fn principals_by_default_so_a_neighbour_in_the_namespace_is_not_admitted() {
    let p = shop(LearnOptions::default());
    let charges = &p.policy.rules[1];
    assert_eq!(charges.name, "payments-post");
    assert_eq!(
        charges.sources.as_ref().and_then(|s| s.principals.clone()),
        Some(vec![CHECKOUT.to_string(), ORDERS.to_string()])
    );
    assert!(allowed(&p.policy, "POST", "payments", "/charges", ORDERS));
    assert!(!allowed(&p.policy, "POST", "payments", "/charges", WEB));
    // Nothing about the sources is wider than what was seen.
    assert!(
        p.widenings
            .iter()
            .all(|w| matches!(w.why, Why::Parameterized { .. })),
        "{:?}",
        p.widenings
    );
}

#[test]
fn namespaces_when_asked_admit_the_whole_namespace_and_say_so() {
    let p = shop(LearnOptions {
        sources: SourceMode::Namespaces,
        ..LearnOptions::default()
    });
    let charges = &p.policy.rules[1];
    assert_eq!(
        charges.sources.as_ref().and_then(|s| s.namespaces.clone()),
        Some(vec!["shop".to_string()])
    );
    assert!(allowed(&p.policy, "POST", "payments", "/charges", WEB));
    let w = p
        .widenings
        .iter()
        .find(|w| w.rule == 1 && w.path.is_none())
        .unwrap();
    assert_eq!(
        w.why,
        Why::Namespaces {
            namespaces: vec!["shop".into()],
            principals: vec![CHECKOUT.into(), ORDERS.into()],
            more: false
        }
    );
    assert_eq!(
        w.to_string(),
        format!("rules[1] (payments-post): admits every workload of namespace shop (--sources namespaces); only {CHECKOUT}, {ORDERS} called")
    );
}

#[test]
fn callers_without_an_identity_leave_a_rule_open_to_any_caller_and_say_so() {
    let mut l = Learner::new(LearnOptions::default());
    let mut probe = seen("GET", "payments", "/healthz", None);
    probe.source_ip = Some("10.0.0.1".parse().unwrap());
    l.observe(&probe);
    l.observe(&seen("GET", "payments", "/healthz", Some(ORDERS)));
    assert_eq!(l.counts().identified, 1);
    let p = l.proposal();
    assert_eq!(p.policy.rules[0].sources, None);
    assert_eq!(
        p.widenings[0].why,
        Why::AnyCaller {
            anonymous: 1,
            example: Some("10.0.0.1".parse().unwrap())
        }
    );
    assert!(
        p.widenings[0]
            .to_string()
            .contains("admits any caller (no sources): 1 request(s) came without an mTLS identity (e.g. from 10.0.0.1)"),
        "{}",
        p.widenings[0]
    );
}

#[test]
fn more_principals_than_remembered_widen_to_their_namespaces() {
    let mut l = Learner::new(LearnOptions::default());
    for i in 0..=MAX_CALLERS {
        let id = format!("spiffe://cluster.local/ns/batch/sa/job-{i}");
        l.observe(&seen("POST", "queue", "/jobs", Some(&id)));
    }
    let p = l.proposal();
    assert_eq!(
        p.policy.rules[0]
            .sources
            .as_ref()
            .and_then(|s| s.namespaces.clone()),
        Some(vec!["batch".to_string()])
    );
    assert_eq!(
        p.widenings[0].why,
        Why::TooManyPrincipals {
            namespaces: vec!["batch".into()]
        }
    );
}

#[test]
fn a_spiffe_id_without_a_namespace_is_named_as_a_principal_even_when_namespaces_are_asked() {
    let odd = "spiffe://example.org/billing/worker";
    let mut l = Learner::new(LearnOptions {
        sources: SourceMode::Namespaces,
        ..LearnOptions::default()
    });
    l.observe(&seen("POST", "ledger", "/entries", Some(odd)));
    let p = l.proposal();
    assert_eq!(
        p.policy.rules[0]
            .sources
            .as_ref()
            .and_then(|s| s.principals.clone()),
        Some(vec![odd.to_string()])
    );
    assert_eq!(p.widenings[0].why, Why::NoNamespace);
}

#[test]
fn generalized_and_parameterized_paths_are_reported_with_their_reason() {
    let o = LearnOptions {
        fanout: 10,
        fanout_min_requests: 10,
        max_children: 50,
        ..LearnOptions::default()
    };
    let mut l = Learner::new(o);
    for i in 0..20 {
        l.observe(&seen(
            "GET",
            "cdn",
            &format!("/static/file-{i}.js"),
            Some(WEB),
        ));
    }
    for i in 0..60 {
        l.observe(&seen(
            "GET",
            "cdn",
            &format!("/docs/page-{i}/part"),
            Some(WEB),
        ));
    }
    l.observe(&seen("GET", "cdn", "/users/4711", Some(WEB)));
    let p = l.proposal();
    let lines: Vec<String> = p.widenings.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        vec![
            "rules[0] (cdn-get) /docs/**: generalized to \"**\": 50 distinct segments reached --max-children 50",
            "rules[0] (cdn-get) /static/*: generalized to \"*\": 20 distinct last segments after 20 requests (--fanout 10)",
            "rules[0] (cdn-get) /users/{id}: parameterized {id} (values like \"4711\")",
        ]
    );
    assert_eq!(p.templates, 3);
}

#[test]
fn principals_merged_by_a_generalized_path_past_the_bound_widen_to_their_namespaces() {
    let o = LearnOptions {
        fanout: 10,
        fanout_min_requests: 10,
        ..LearnOptions::default()
    };
    let mut l = Learner::new(o);
    // 30 queues, each written by three jobs of its own: 90 principals once merged under `*`.
    for q in 0..30 {
        for j in 0..3 {
            let ns = if q % 2 == 0 { "batch" } else { "etl" };
            let id = format!("spiffe://cluster.local/ns/{ns}/sa/job-{q}-{j}");
            l.observe(&seen("POST", "queue", &format!("/queues/q-{q}"), Some(&id)));
        }
    }
    let p = l.proposal();
    assert_eq!(p.policy.rules.len(), 1);
    assert_eq!(
        p.policy.rules[0]
            .sources
            .as_ref()
            .and_then(|s| s.namespaces.clone()),
        Some(vec!["batch".to_string(), "etl".to_string()])
    );
    let lines: Vec<String> = p.widenings.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        vec![
            format!("rules[0] (queue-post): sources widened to namespaces batch, etl: more than {MAX_CALLERS} principals called"),
            "rules[0] (queue-post) /queues/*: generalized to \"*\": 30 distinct last segments after 90 requests (--fanout 10)".to_string(),
        ]
    );
}
