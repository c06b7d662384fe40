use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn pseudo_headers_and_request_id_are_found_once() {
    let head = RequestHead::from_pairs(pairs(&[
        (":method", "POST"),
        (":path", "/a?b=1"),
        (":authority", "shop.example.com:8080"),
        (":scheme", "https"),
        ("x-request-id", "r-1"),
        ("x-request-id", "r-2"),
        ("user-agent", "curl"),
    ]));
    assert_eq!(head.method(), "POST");
    assert_eq!(head.path(), "/a?b=1");
    assert_eq!(head.authority(), "shop.example.com:8080");
    assert_eq!(head.scheme(), "https");
    assert_eq!(head.request_id(), Some("r-1"), "the first value counts");
    assert_eq!(head.header("User-Agent"), Some("curl"));
    assert_eq!(head.headers().len(), 7);
}

#[test]
fn host_stands_in_for_a_missing_or_empty_authority() {
    let head = RequestHead::from_pairs(pairs(&[(":path", "/"), ("host", "legacy.example")]));
    assert_eq!(head.authority(), "legacy.example");
    let head = RequestHead::from_pairs(pairs(&[(":authority", ""), ("host", "h.example")]));
    assert_eq!(head.authority(), "h.example");
    let head = RequestHead::from_pairs(pairs(&[(":authority", "a.example"), ("host", "b")]));
    assert_eq!(head.authority(), "a.example");
}

#[test]
fn missing_values_are_empty_not_errors() {
    let head = RequestHead::from_pairs(Vec::new());
    assert_eq!(
        (head.method(), head.path(), head.authority(), head.scheme()),
        ("", "", "", "")
    );
    assert_eq!(head.request_id(), None);
}

#[test]
fn removing_a_header_reindexes_the_rest() {
    let mut head = RequestHead::from_pairs(pairs(&[
        ("x-meshsight-mirror", "ids"),
        (":method", "GET"),
        ("x-meshsight-mirror", "ids2"),
        (":path", "/p"),
    ]));
    head.remove("x-meshsight-mirror");
    assert_eq!(head.headers().len(), 2);
    assert_eq!((head.method(), head.path()), ("GET", "/p"));
    assert_eq!(head.to_pairs()[0].0, ":method");
}

/// `from_block` as it was written: the names compared as text.
fn indexed_by_text(block: &HeaderBlock) -> [Option<&str>; 5] {
    let mut found: [Option<usize>; 6] = [None; 6];
    for (i, (name, _)) in block.iter().enumerate() {
        let slot = match name {
            ":method" => 0,
            ":path" => 1,
            ":authority" => 2,
            ":scheme" => 3,
            "x-request-id" => 4,
            "host" => 5,
            _ => continue,
        };
        found[slot].get_or_insert(i);
    }
    let value = |at: Option<usize>| at.and_then(|i| block.get(i)).map(|(_, v)| v);
    let authority = match value(found[2]) {
        Some(v) if !v.is_empty() => found[2],
        _ if found[5].is_some() => found[5],
        _ => found[2],
    };
    [
        value(found[0]),
        value(found[1]),
        value(authority),
        value(found[3]),
        value(found[4]),
    ]
}

#[test]
fn the_head_is_indexed_by_bytes_as_by_text() {
    let names = [
        ":method",
        ":path",
        ":authority",
        ":scheme",
        "x-request-id",
        "host",
        ":methods",
        ":pat",
        "x-request-i",
        "hos",
        "hosts",
        ":",
        "",
        "h",
        "x",
        "Host",
        ":PATH",
        "é",
        ":é",
    ];
    // Every pair of names (in both orders), each with a value telling them apart, plus a
    // repeat of the first and an empty `:authority` first.
    for (i, a) in names.iter().enumerate() {
        for (j, b) in names.iter().enumerate() {
            let cases: [Vec<(&str, String)>; 3] = [
                vec![(a, format!("a{i}")), (b, format!("b{j}"))],
                vec![
                    (a, format!("a{i}")),
                    (b, format!("b{j}")),
                    (a, "again".into()),
                ],
                vec![
                    (":authority", String::new()),
                    (a, format!("a{i}")),
                    (b, format!("b{j}")),
                ],
            ];
            for pairs in cases {
                let block: HeaderBlock = pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
                let head = RequestHead::from_block(block.clone());
                let want = indexed_by_text(&block);
                let at = |i: Option<usize>| i.and_then(|i| block.get(i)).map(|(_, v)| v);
                let got = [
                    at(head.method),
                    at(head.path),
                    at(head.authority),
                    at(head.scheme),
                    at(head.request_id),
                ];
                // And the accessors read the same values.
                assert_eq!(
                    [head.method(), head.path(), head.authority(), head.scheme()],
                    [0, 1, 2, 3].map(|k| want[k].unwrap_or("")),
                    "{pairs:?}"
                );
                assert_eq!(head.request_id(), want[4], "{pairs:?}");
                assert_eq!(got, want, "{pairs:?}");
            }
        }
    }
}
