use super::*;

const OCSF: &str = r#"{"class_uid":4002,"http_request":{"http_method":"GET","url":{"path":"/a/../b","query_string":"x=1","hostname":"Shop.example.com","port":8080,"scheme":"http"},"http_headers":[{"name":"user-agent","value":"curl"}],"uid":"r1"},"http_response":{"code":403},"src_endpoint":{"ip":"10.0.0.5","port":4000,"owner":{"uid":"spiffe://cluster.local/ns/web/sa/f"}},"is_alert":true,"unmapped":{"meshsight":{"allowlist":{"outcome":"denied","reason":"no_rule_matched"}}}}"#;

#[test]
fn reads_an_ocsf_record() {
    let r = parse_line(OCSF.as_bytes(), 3).unwrap();
    assert_eq!(r.line, 3);
    assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/a/../b?x=1"));
    assert_eq!(r.authority, "Shop.example.com:8080");
    assert_eq!(r.source_ip, Some("10.0.0.5".parse().unwrap()));
    assert_eq!(r.namespace(), Some("web"));
    assert!(r.flagged() && !r.was_allowed());
    assert_eq!(r.facts().path(), Some("/b"));
    assert_eq!(r.status, Some(403));
}

#[test]
fn reads_an_ecs_record() {
    let line = r#"{"ecs":{"version":"8.11"},"http":{"request":{"method":"PUT","id":"r2"},"response":{"status_code":200}},"url":{"path":"/x","domain":"a","port":80,"scheme":"http"},"source":{"ip":"10.1.1.1"},"tls":{"client":{"x509":{"alternative_names":["spiffe://td/ns/shop/sa/s"]}}},"meshsight":{"allowlist":{"outcome":"allowed","rule":"r"}}}"#;
    let r = parse_line(line.as_bytes(), 1).unwrap();
    assert_eq!((r.method.as_str(), r.authority.as_str()), ("PUT", "a"));
    assert_eq!(r.namespace(), Some("shop"));
    assert!(r.was_allowed() && !r.flagged());
}

#[test]
fn bad_lines_name_the_field() {
    let err = |l: &str| parse_line(l.as_bytes(), 1).unwrap_err();
    assert_eq!(err("").0, "(line)");
    assert!(err("{\"class_uid\":4002,").1.starts_with("malformed JSON"));
    assert_eq!(err(r#"{"class_uid": 3002, "x": 1}"#).0, "class_uid");
    assert_eq!(
        err(r#"{"class_uid":4002,"http_request":{"url":{"path":"/"}}}"#).0,
        "http_request.http_method"
    );
    assert_eq!(
        err(r#"{"class_uid":4002,"http_request":{"http_method":"GET","url":{"path":7}}}"#).0,
        "http_request.url.path"
    );
    assert_eq!(err(r#"{"hello": "world"}"#).0, "class_uid");
}

#[test]
fn skip_bad_counts_instead_of_stopping() {
    let input = format!("{OCSF}\nnot json\n{OCSF}\n");
    let mut r = RecordReader::from_reader("mem", std::io::Cursor::new(input.clone()), true);
    let mut n = 0;
    while r.next_record().unwrap().is_some() {
        n += 1;
    }
    assert_eq!((n, r.stats().skipped), (2, 1));
    assert_eq!(r.stats().first_errors[0].line, 2);
    let mut strict = RecordReader::from_reader("mem", std::io::Cursor::new(input), false);
    strict.next_record().unwrap();
    assert_eq!(
        strict
            .next_record()
            .unwrap_err()
            .to_string()
            .split(": ")
            .next(),
        Some("mem:2")
    );
    let mut empty = RecordReader::from_reader("e", std::io::Cursor::new(""), false);
    assert!(matches!(
        empty.next_record(),
        Err(CliError::EmptyRecords { .. })
    ));
}
