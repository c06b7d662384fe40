use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn pattern(raw: &str) -> PathMatch {
    PathMatch::parse(&RawPathMatch::Pattern(raw.to_string())).unwrap()
}

fn raw_json(json: &str) -> Result<RawPathMatch, String> {
    crate::ConfigError::parse_json(json.as_bytes()).map_err(|e| e.to_string())
}

#[test]
fn the_three_forms_read_from_json() {
    assert_eq!(
        raw_json(r#""/a/**""#),
        Ok(RawPathMatch::Pattern("/a/**".into()))
    );
    assert_eq!(
        raw_json(r#"{"exact":"/login"}"#),
        Ok(RawPathMatch::Exact {
            exact: "/login".into()
        })
    );
    assert_eq!(
        raw_json(r#"{"prefix":"/admin/"}"#),
        Ok(RawPathMatch::Prefix {
            prefix: "/admin/".into()
        })
    );
    for bad in [
        r#"{"exact":"/a","prefix":"/b"}"#,
        r#"{}"#,
        r#"{"exact":"/a","exact":"/b"}"#,
    ] {
        assert!(raw_json(bad).is_err(), "{bad}");
    }
    assert!(raw_json(r#"{"regex":"/a"}"#)
        .unwrap_err()
        .contains("unknown field `regex`"));
    assert!(raw_json("7").is_err());
}

#[cfg(feature = "serde")]
#[test]
fn the_raw_form_serializes_back() {
    for json in [
        r#""/a/{id}""#,
        r#"{"exact":"/login"}"#,
        r#"{"prefix":"/x"}"#,
    ] {
        let raw = raw_json(json).unwrap();
        assert_eq!(serde_json::to_string(&raw).unwrap(), json);
    }
}

#[test]
fn patterns_match_segment_by_segment() {
    let p = pattern("/api/{version}/items/*");
    assert!(p.matches(Some("/api/v1/items/42")));
    assert!(
        !p.matches(Some("/api/v1/items/")),
        "* needs a non-empty segment"
    );
    assert!(!p.matches(Some("/api/v1/items/42/x")));
    assert!(!p.matches(Some("/api/v1/items")));
    let rest = pattern("/static/**");
    assert!(rest.matches(Some("/static")));
    assert!(rest.matches(Some("/static/")));
    assert!(rest.matches(Some("/static/a/b/c")));
    assert!(!rest.matches(Some("/staticx")));
    assert!(pattern("/**").matches(Some("/")));
    assert!(pattern("/").matches(Some("/")));
    assert!(!pattern("/").matches(Some("/a")));
    assert!(
        !pattern("/a").matches(Some("/a/")),
        "a trailing slash is a segment"
    );
    assert!(!p.matches(None), "a malformed target matches nothing");
}

#[test]
fn exact_and_prefix_compare_characters() {
    let exact = PathMatch::parse(&RawPathMatch::Exact {
        exact: "/login".into(),
    })
    .unwrap();
    assert!(exact.matches(Some("/login")));
    assert!(!exact.matches(Some("/login/")));
    assert!(!exact.matches(None));
    let prefix = PathMatch::parse(&RawPathMatch::Prefix {
        prefix: "/api/orders".into(),
    })
    .unwrap();
    assert!(prefix.matches(Some("/api/orders")));
    assert!(prefix.matches(Some("/api/ordersx")));
    assert!(prefix.matches(Some("/api/orders/1")));
    assert!(!prefix.matches(Some("/api/order")));
    // Literal wildcards in an exact path are characters, not patterns.
    let star = PathMatch::parse(&RawPathMatch::Exact {
        exact: "/a*".into(),
    })
    .unwrap();
    assert!(star.matches(Some("/a*")));
    assert!(!star.matches(Some("/ab")));
}

#[test]
fn bad_patterns_are_refused() {
    let cases = [
        ("api/x", "must start with \"/\""),
        ("", "must start with \"/\""),
        ("/x/**/y", "\"**\" must be the last segment"),
        ("/a/**x/b", "last segment"),
        ("/a*b", "must be a whole segment"),
        ("/a/{id}x", "must be a whole segment"),
        ("/{}", "named segment"),
        ("/{1x}", "named segment"),
        ("/{id}/{id}", "appears twice"),
        ("/a/../b", "not in normalized form"),
        ("/a//b", "not in normalized form"),
        ("/%41", "not in normalized form"),
        ("/a?x=1", "not in normalized form"),
        ("/a%2Fb", "not in normalized form"),
    ];
    for (raw, want) in cases {
        let err = PathMatch::parse(&RawPathMatch::Pattern(raw.into())).unwrap_err();
        assert!(err.to_string().contains(want), "{raw}: {err}");
    }
}

#[test]
fn exact_and_prefix_literals_must_be_normalized() {
    let cases = [
        (
            RawPathMatch::Prefix {
                prefix: "admin".into(),
            },
            "path prefix \"admin\" must start with \"/\"",
        ),
        (
            RawPathMatch::Exact {
                exact: "/%61dmin".into(),
            },
            "judged as \"/admin\"",
        ),
        (
            RawPathMatch::Prefix {
                prefix: "/a/../b".into(),
            },
            "not in normalized form",
        ),
        (
            RawPathMatch::Prefix {
                prefix: "/a%2".into(),
            },
            "not in normalized form",
        ),
        (
            RawPathMatch::Exact {
                exact: "/a?b".into(),
            },
            "query",
        ),
    ];
    for (raw, want) in cases {
        let err = PathMatch::parse(&raw).unwrap_err();
        assert!(err.to_string().contains(want), "{raw:?}: {err}");
    }
    assert_eq!(
        RawPathMatch::Prefix { prefix: "/".into() }.field(),
        Some("prefix")
    );
    assert_eq!(RawPathMatch::Pattern("/".into()).field(), None);
}
