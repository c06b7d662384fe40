use super::*;
use crate::records::ObservedRequest;

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
    assert_eq!(
        p.rules[1]
            .sources
            .as_ref()
            .and_then(|s| s.namespaces.clone()),
        Some(vec!["web".to_string()])
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
