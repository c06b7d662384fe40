//! The synthetic N-rule policies the bench and the RBAC agreement test use: each rule allows
//! exactly its own requests (moved here from the policy crate with the generator).

use meshsight_bench::synthetic::{
    synthetic_hit, synthetic_policy, synthetic_policy_json, synthetic_rbac_config, SYNTHETIC_MISS,
};
use meshsight_policy::allowlist::{AllowList, TargetRequest};

/// The name of the rule that allows `method path`, if one does.
fn rule_of(list: &AllowList, method: &str, path: &str) -> Option<String> {
    let request = TargetRequest {
        method,
        path,
        authority: "h",
        scheme: "http",
        ..TargetRequest::default()
    };
    let judgement = list.judge(&request);
    judgement
        .rule
        .and_then(|i| list.rule_name(i))
        .map(str::to_string)
}

#[test]
fn ten_thousand_rule_policy_allows_exactly_the_right_requests() {
    let n = 10_000;
    let list = AllowList::try_from(synthetic_policy(n)).unwrap();
    assert_eq!(list.rule_count(), n);
    for i in 0..n {
        let (method, path) = synthetic_hit(i);
        let expected = format!("rule-{i}");
        assert_eq!(
            rule_of(&list, method, &path).as_deref(),
            Some(expected.as_str()),
            "{method} {path}"
        );
        // Wrong method for every shape: DELETE is in no synthetic rule.
        assert_eq!(rule_of(&list, "DELETE", &path), None, "{path}");
    }
    assert_eq!(rule_of(&list, "GET", SYNTHETIC_MISS), None);
    assert_eq!(rule_of(&list, "GET", "/svc10000/x"), None);
    assert_eq!(rule_of(&list, "GET", "/svc1/v1/items/42/x"), None);
    assert_eq!(rule_of(&list, "GET", "/svc2/static/"), None);
}

#[test]
fn synthetic_policy_json_round_trips_and_rbac_has_one_permission_per_rule() {
    let json = synthetic_policy_json(10);
    let list = AllowList::from_json(json.as_bytes()).unwrap();
    assert_eq!(list.rule_count(), 10);
    let rbac = synthetic_rbac_config(1000);
    let perms = rbac["rules"]["policies"]["synthetic"]["permissions"]
        .as_array()
        .unwrap();
    assert_eq!(perms.len(), 1000);
    assert_eq!(
        perms[3]["and_rules"]["rules"][1]["url_path"]["path"]["exact"],
        "/svc3/v2/orders"
    );
}
