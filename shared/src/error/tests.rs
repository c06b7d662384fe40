//! The path and words of reading errors, on small types read by hand as the raw policy types
//! are (`ReadJson`), in the shapes serde's derives took: structs refusing unknown fields, enums
//! as a string or a one-member object.

use super::*;
use crate::error::json_path::At;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[derive(Debug)]
struct Policy {
    #[allow(dead_code)]
    rules: Vec<Rule>,
}

impl ReadJson for Policy {
    fn read_json(at: At<'_, '_>) -> Result<Policy, PathError> {
        let mut rules = None;
        at.object("struct Policy", &["rules"], &mut |m| m.read(&mut rules))?;
        Ok(Policy {
            rules: at.required(rules, "rules")?,
        })
    }
}

#[derive(Debug)]
struct Rule {
    #[allow(dead_code)]
    name: String,
}

impl ReadJson for Rule {
    fn read_json(at: At<'_, '_>) -> Result<Rule, PathError> {
        let mut name = None;
        at.object("struct Rule", &["name"], &mut |m| m.read(&mut name))?;
        Ok(Rule {
            name: at.required(name, "name")?,
        })
    }
}

#[test]
fn unknown_field_is_named_with_its_json_path() {
    let err =
        ConfigError::parse_json::<Policy>(br#"{"rules":[{"name":"a"},{"nmae":"b"}]}"#).unwrap_err();
    assert_eq!(err.path, "rules[1].nmae");
    assert!(err.reason.contains("unknown field `nmae`"), "{err}");
    assert!(err.to_string().starts_with("rules[1].nmae: unknown field"));
}

#[test]
fn wrong_type_is_named_with_its_json_path() {
    let err = ConfigError::parse_json::<Policy>(br#"{"rules":[{"name":7}]}"#).unwrap_err();
    assert_eq!(err.path, "rules[0].name");
    assert!(err.reason.contains("expected a string"), "{err}");
}

#[derive(Debug)]
enum Match {
    Exact(String),
    Prefix { prefix: u16 },
    Any,
}

impl ReadJson for Match {
    fn read_json(at: At<'_, '_>) -> Result<Match, PathError> {
        match at.variant("enum Match", &["exact", "prefix", "any"])? {
            (2, None) => Ok(Match::Any),
            (_, None) => Err(at.error("invalid type: unit variant, expected newtype variant")),
            (0, Some(data)) => String::read_json(data).map(Match::Exact),
            (1, Some(data)) => {
                let mut prefix = None;
                data.object("struct variant Match::Prefix", &["prefix"], &mut |m| {
                    m.read(&mut prefix)
                })?;
                Ok(Match::Prefix {
                    prefix: data.required(prefix, "prefix")?,
                })
            }
            (_, Some(data)) => <()>::read_json(data).map(|()| Match::Any),
        }
    }
}

#[derive(Debug)]
struct Matches {
    #[allow(dead_code)]
    m: Vec<Option<Match>>,
}

impl ReadJson for Matches {
    fn read_json(at: At<'_, '_>) -> Result<Matches, PathError> {
        let mut m = None;
        at.object("struct Matches", &["m"], &mut |f| f.read(&mut m))?;
        Ok(Matches {
            m: at.required(m, "m")?,
        })
    }
}

#[test]
fn enum_variants_and_their_data_are_named() {
    let ok = ConfigError::parse_json::<Matches>(
        br#"{"m":["any",{"exact":"/a"},{"prefix":{"prefix":7}},null]}"#,
    )
    .unwrap();
    assert!(
        matches!(ok.m.as_slice(), [Some(Match::Any), Some(Match::Exact(e)), Some(Match::Prefix { prefix: 7 }), None] if e == "/a")
    );
    let err =
        ConfigError::parse_json::<Matches>(br#"{"m":[{"prefix":{"prefix":70000}}]}"#).unwrap_err();
    assert_eq!(err.path, "m[0].prefix.prefix");
    assert!(err.reason.contains("expected u16"), "{err}");
    let err = ConfigError::parse_json::<Matches>(br#"{"m":["nope"]}"#).unwrap_err();
    assert_eq!(err.path, "m[0]");
    assert!(err.reason.contains("unknown variant `nope`"), "{err}");
}

#[test]
fn missing_and_duplicate_fields_are_named_at_their_object() {
    let err = ConfigError::parse_json::<Policy>(br#"{"rules":[{}]}"#).unwrap_err();
    assert_eq!(err.path, "rules[0]");
    assert!(err.reason.contains("missing field `name`"), "{err}");
    let err =
        ConfigError::parse_json::<Policy>(br#"{"rules":[{"name":"a","name":"b"}]}"#).unwrap_err();
    assert_eq!(err.path, "rules[0]");
    assert!(err.reason.contains("duplicate field `name`"), "{err}");
}

#[test]
fn a_section_read_from_its_document_names_the_whole_path() {
    let json = Json::parse(br#"{"rules":[{"name":"a"},{"nmae":"b"}]}"#).unwrap();
    let err = ConfigError::read_json::<Policy>(&json, "allowlist").unwrap_err();
    assert_eq!(err.path, "allowlist.rules[1].nmae");
    let err = ConfigError::read_json::<Vec<Rule>>(&Json::parse(b"[7]").unwrap(), "").unwrap_err();
    assert_eq!(err.path, "[0]");
}

#[test]
fn trailing_garbage_and_non_json_are_refused() {
    assert!(ConfigError::parse_json::<Policy>(br#"{"rules":[]} x"#).is_err());
    let err = ConfigError::parse_json::<Policy>(b"not json").unwrap_err();
    assert!(err.path.is_empty());
    assert!(!err.to_string().is_empty());
}

#[test]
fn quoted_writes_what_debug_writes() {
    let mut samples: Vec<String> = [
        "",
        "plain",
        "it's \"quoted\"",
        "back\\slash",
        "tab\there\r\nnew line",
        "\0\u{1}\u{1b}\u{7f}",
        "é ü 日本 🦀",
        "\u{301}combining first, then a\u{301}",
        "\u{200b}\u{200d}\u{feff}\u{2028}\u{e000}\u{10ffff}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Every code point, in runs: each escape rule (control, quote, grapheme extender,
    // unprintable, unassigned) is met.
    let all: Vec<char> = (0..=0x10_FFFFu32).filter_map(char::from_u32).collect();
    samples.extend(all.chunks(64).map(|run| run.iter().collect::<String>()));
    for s in &samples {
        assert_eq!(Quoted(s).to_string(), format!("{s:?}"));
    }
}
