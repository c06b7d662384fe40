use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const ALLOWLIST: &str = r#"{"rules": [{"name": "api", "paths": ["/api/**"]}]}"#;
const MIRROR: &str = r#"{"targets": {"ids": {"cluster": "sensor", "delivery": "dispatch"}}}"#;

#[test]
fn every_section_is_optional_but_one_is_needed() {
    let all = format!(r#"{{"allowlist": {ALLOWLIST}, "mirror": {MIRROR}, "audit": {{}}}}"#);
    let p = PluginPolicy::from_json(Role::OnePass, all.as_bytes()).unwrap();
    assert!(p.allowlist.is_some() && p.mirror.is_some() && p.audit.is_some());
    assert_eq!(p.summary(), "allowlist+mirror+audit");
    let p = PluginPolicy::from_json(Role::OnePass, br#"{"audit": {}}"#).unwrap();
    assert!(p.allowlist.is_none() && p.mirror.is_none());
    assert_eq!(p.summary(), "audit");
    let err = PluginPolicy::from_json(Role::OnePass, b"{}").unwrap_err();
    assert!(err.reason.contains("no job configured"), "{err}");
}

#[test]
fn section_errors_carry_the_section_in_their_json_path() {
    let bad = r#"{"allowlist": {"rules": [{"name": "a", "paths": ["no-slash"]}]}}"#;
    let err = PluginPolicy::from_json(Role::OnePass, bad.as_bytes()).unwrap_err();
    assert!(err.path.starts_with("allowlist.rules[0]"), "{err}");
    let bad = r#"{"audit": {"format": "xml"}}"#;
    let err = PluginPolicy::from_json(Role::OnePass, bad.as_bytes()).unwrap_err();
    assert_eq!(err.path, "audit.format", "{err}");
    let err = PluginPolicy::from_json(Role::OnePass, br#"{"mirror": []}"#).unwrap_err();
    assert_eq!(err.path, "mirror");
    let err = PluginPolicy::from_json(Role::OnePass, br#"{"alowlist": {}}"#).unwrap_err();
    assert!(err.reason.contains("unknown field `alowlist`"), "{err}");
}

#[test]
fn one_bad_section_refuses_the_whole_document() {
    let doc = format!(r#"{{"allowlist": {ALLOWLIST}, "mirror": {{"targets": 5}}}}"#);
    assert!(PluginPolicy::from_json(Role::OnePass, doc.as_bytes()).is_err());
}

#[test]
fn single_job_roots_take_their_section_alone() {
    let p = PluginPolicy::from_json(Role::Allowlist, ALLOWLIST.as_bytes()).unwrap();
    assert!(p.allowlist.is_some() && p.mirror.is_none() && p.audit.is_none());
    let p = PluginPolicy::from_json(Role::Mirror, MIRROR.as_bytes()).unwrap();
    assert!(p.mirror.is_some());
    let p = PluginPolicy::from_json(Role::Audit, b"").unwrap();
    assert!(
        p.audit.is_some(),
        "an empty audit policy means its defaults"
    );
    assert!(PluginPolicy::from_json(Role::Allowlist, b"{}").is_err());
}

#[test]
fn root_ids_name_roles() {
    assert_eq!(Role::from_root_id(""), Some(Role::OnePass));
    assert_eq!(Role::from_root_id("meshsight"), Some(Role::OnePass));
    assert_eq!(Role::from_root_id("meshsight_audit"), Some(Role::Audit));
    assert_eq!(
        Role::from_root_id("meshsight_allowlist"),
        Some(Role::Allowlist)
    );
    assert_eq!(Role::from_root_id("meshsight_mirror"), Some(Role::Mirror));
    assert_eq!(Role::from_root_id("other"), None);
}

#[test]
fn a_separate_audit_plugin_cannot_use_the_access_log_sink() {
    let err = PluginPolicy::from_json(Role::Audit, br#"{"sink": "access_log"}"#).unwrap_err();
    assert_eq!(err.path, "sink");
    assert!(err.reason.contains("one-plugin deployment"), "{err}");
    let p = PluginPolicy::from_json(Role::OnePass, br#"{"audit": {"sink": "access_log"}}"#);
    assert!(p.is_ok());
}
