//! The parser and the readers against their oracles: serde_json parses every input here (valid,
//! broken and hostile) to the same tree or the same error at the same line and column, and
//! serde's derives read every document here to the same value or the same error at the same path.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// serde_json's reading of a text, as a [`Json`] tree (the visitor the tree used to be built by).
struct Oracle(Json);

impl<'de> Deserialize<'de> for Oracle {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Oracle, D::Error> {
        deserializer.deserialize_any(OracleVisitor).map(Oracle)
    }
}

struct OracleVisitor;

impl<'de> Visitor<'de> for OracleVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::U64(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::I64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(Json::F64(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::Str(v.to_string()))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(Oracle(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some((key, Oracle(value))) = map.next_entry::<String, Oracle>()? {
            members.push((key, value));
        }
        Ok(Json::Object(members))
    }
}

/// Floats compared by their bits (`-0.0` is not `0.0` here).
fn same_tree(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::F64(x), Json::F64(y)) => x.to_bits() == y.to_bits(),
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_tree(a, b))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, a), (kb, b))| ka == kb && same_tree(a, b))
        }
        _ => a == b,
    }
}

fn check_parse(input: &[u8]) {
    let ours = Json::parse(input).map_err(|e| e.to_string());
    let theirs = serde_json::from_slice::<Oracle>(input)
        .map(|o| o.0)
        .map_err(|e| e.to_string());
    let shown = String::from_utf8_lossy(input);
    match (&ours, &theirs) {
        (Ok(a), Ok(b)) => assert!(same_tree(a, b), "{shown}: {a:?} vs {b:?}"),
        _ => assert_eq!(ours, theirs, "{shown}"),
    }
}

const DOCUMENTS: &[&str] = &[
    "null",
    "true",
    " false ",
    "0",
    "-0",
    "-0.0",
    "7",
    "-7",
    "1.5",
    "1e3",
    "1E+3",
    "1e-3",
    "0.1",
    "1e22",
    "1e23",
    "5e-324",
    "2.2250738585072014e-308",
    "1.7976931348623157e308",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "1234567890123456789012345678901234567890.5e-10",
    "0.12345678901234567890123456789",
    "1e400",
    "-1e400",
    "1e-400",
    "1e999999999999",
    "0e999999999999",
    "1e-999999999999",
    "\"\"",
    "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"",
    "\"\\u00e9\\u20ac\\ud83d\\ude00\"",
    "\"é€😀\"",
    "[]",
    "[1,[2,[3]],{\"a\":[]}]",
    "{}",
    "{\"a\":1,\"a\":2}",
    "{\"a\" : { \"b\" : [ null , true ] } }\n",
    "\t\r\n [ 1 ]\t\r\n",
];

const BROKEN: &[&str] = &[
    "",
    " ",
    "nul",
    "nulx",
    "tru",
    "fals",
    "nUll",
    "x",
    "01",
    "-",
    "-a",
    "+1",
    ".5",
    "1.",
    "1.e5",
    "1e",
    "1e+",
    "1ex",
    "0x10",
    "NaN",
    "Infinity",
    "\"abc",
    "\"\\",
    "\"\\x\"",
    "\"\\u12\"",
    "\"\\u12g4\"",
    "\"\\ud800\"",
    "\"\\udc00\"",
    "\"\\ud800\\u0041\"",
    "\"\\ud800x\"",
    "\"\\ud800\\n\"",
    "\"\\ud800\\",
    "\"\\ud800\\u",
    "\"a\u{1}b\"",
    "\"tab\there\"",
    "\"line\nbreak\"",
    "[",
    "[1",
    "[1,",
    "[1,]",
    "[1 2]",
    "[,1]",
    "]",
    "{",
    "{\"a\"",
    "{\"a\":",
    "{\"a\":1",
    "{\"a\":1,}",
    "{\"a\" 1}",
    "{\"a\":1 \"b\":2}",
    "{a:1}",
    "{1:1}",
    "{,}",
    "{\"a\":1,2}",
    "[1] 2",
    "{} x",
    "// comment\n{}",
    "{/* c */}",
    "[1]\n\n  ,",
    "{\n  \"rules\": [\n    {\"name\": \"a\",}\n  ]\n}",
    "{\n\"a\":\n[1,\n2\n3]}",
];

#[test]
fn the_parser_reads_and_refuses_as_serde_json_does() {
    for input in DOCUMENTS.iter().chain(BROKEN) {
        check_parse(input.as_bytes());
    }
}

#[test]
fn invalid_utf8_is_refused_where_serde_json_refuses_it() {
    for input in [
        &b"\"\xff\""[..],
        b"\"ab\xc3\"",
        b"\"\xed\xa0\x80\"",
        b"\"\xf4\x90\x80\x80\"",
        b"{\"k\xe9y\":1}",
        b"[\"ok\", \"\xc0\xaf\"]",
        b"\xef\xbb\xbf{}",
        b"\xff",
        b"[1]\xff",
        b"\"a\\n\xff\"",
    ] {
        check_parse(input);
    }
}

#[test]
fn nesting_stops_at_serde_jsons_depth() {
    for depth in [1, 2, 126, 127, 128, 129, 1000] {
        for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
            let text = format!("{}{}", open.repeat(depth), close.repeat(depth));
            check_parse(text.as_bytes());
            // Unclosed: the depth error comes before the missing ends.
            check_parse(open.repeat(depth).as_bytes());
        }
    }
    // Mixed, and a deep document inside a shallow one.
    let mixed = format!("{}1{}", "[{\"a\":".repeat(70), "}]".repeat(70));
    check_parse(mixed.as_bytes());
}

/// A small deterministic generator (no dependency for a test).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

#[test]
fn mutated_documents_parse_or_fail_as_with_serde_json() {
    let seeds: Vec<&[u8]> = vec![
        br#"{"rules":[{"name":"a","paths":["/x/{id}",{"prefix":"/y/"}],"methods":["GET"]}],"mode":"monitor"}"#,
        br#"{"mirror":{"targets":{"ids":{"cluster":"ids","delivery":"dispatch","max_rps":1.5e1}}},"n":[-1,0,1e-2,"\u00e9\ud83d\ude00"]}"#,
        b"[true,false,null,\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",-0.5E+2,18446744073709551615]",
    ];
    let alphabet = b"{}[]:,\"\\ -+.eE0123456789antrufl/u\x01\n\xff\xc3";
    let mut rng = Lcg(0x6d65_7368);
    for seed in &seeds {
        check_parse(seed);
        for _ in 0..3000 {
            let mut text = seed.to_vec();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(text.len() + 1);
                match rng.below(3) {
                    0 if at < text.len() => {
                        text.remove(at);
                    }
                    1 if at < text.len() => text[at] = alphabet[rng.below(alphabet.len())],
                    _ => text.insert(at, alphabet[rng.below(alphabet.len())]),
                }
            }
            check_parse(&text);
        }
        for end in 0..seed.len() {
            check_parse(&seed[..end]);
        }
    }
}

// The readers: one type read by serde's derive and by hand, through the same tree.

#[derive(Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    name: String,
    #[serde(default)]
    count: u16,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default = "yes")]
    on: bool,
    #[serde(default)]
    share: Option<f64>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    switches: BTreeMap<String, bool>,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    sink: Sink,
    #[serde(default)]
    items: Vec<Item>,
    #[serde(default, rename = "in")]
    modes: Vec<Mode>,
    #[serde(default)]
    size: usize,
    #[serde(default)]
    big: u64,
}

fn yes() -> bool {
    true
}

const DOC_FIELDS: &[&str] = &[
    "name", "count", "limit", "on", "share", "tags", "switches", "mode", "sink", "items", "in",
    "size", "big",
];

impl ReadJson for Doc {
    fn read_json(at: At<'_, '_>) -> Result<Doc, PathError> {
        let (mut name, mut count, mut limit, mut on) = (None, None, None, None);
        let (mut share, mut tags, mut switches, mut mode) = (None, None, None, None);
        let (mut sink, mut items, mut modes, mut size, mut big) = (None, None, None, None, None);
        at.object("struct Doc", DOC_FIELDS, &mut |m| match m.name {
            "name" => m.read(&mut name),
            "count" => m.read(&mut count),
            "limit" => m.read(&mut limit),
            "on" => m.read(&mut on),
            "share" => m.read(&mut share),
            "tags" => m.read(&mut tags),
            "switches" => m.read(&mut switches),
            "mode" => m.read(&mut mode),
            "sink" => m.read(&mut sink),
            "items" => m.read(&mut items),
            "in" => m.read(&mut modes),
            "size" => m.read(&mut size),
            _ => m.read(&mut big),
        })?;
        Ok(Doc {
            name: at.required(name, "name")?,
            count: count.unwrap_or_default(),
            limit: limit.flatten(),
            on: on.unwrap_or_else(yes),
            share: share.flatten(),
            tags: tags.unwrap_or_default(),
            switches: switches.unwrap_or_default(),
            mode: mode.unwrap_or_default(),
            sink: sink.unwrap_or_default(),
            items: items.unwrap_or_default(),
            modes: modes.unwrap_or_default(),
            size: size.unwrap_or_default(),
            big: big.unwrap_or_default(),
        })
    }
}

#[derive(Debug, Default, PartialEq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Mode {
    #[default]
    Enforce,
    Monitor,
    WouldDeny,
}

impl ReadJson for Mode {
    fn read_json(at: At<'_, '_>) -> Result<Mode, PathError> {
        Ok(
            match at.unit_variant("enum Mode", &["enforce", "monitor", "would_deny"])? {
                0 => Mode::Enforce,
                1 => Mode::Monitor,
                _ => Mode::WouldDeny,
            },
        )
    }
}

#[derive(Debug, Default, PartialEq, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Sink {
    #[default]
    Log,
    Http(Box<Http>),
    AccessLog,
}

impl ReadJson for Sink {
    fn read_json(at: At<'_, '_>) -> Result<Sink, PathError> {
        match at.variant("enum Sink", &["log", "http", "access_log"])? {
            (1, None) => Err(at.error("invalid type: unit variant, expected newtype variant")),
            (1, Some(data)) => ReadJson::read_json(data).map(Sink::Http),
            (_, Some(data)) if *data.json() != Json::Null => Err(data.invalid_type("unit")),
            (0, _) => Ok(Sink::Log),
            _ => Ok(Sink::AccessLog),
        }
    }
}

#[derive(Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Http {
    cluster: String,
    #[serde(default)]
    retries: Option<u32>,
}

impl ReadJson for Http {
    fn read_json(at: At<'_, '_>) -> Result<Http, PathError> {
        let (mut cluster, mut retries) = (None, None);
        at.object(
            "struct Http",
            &["cluster", "retries"],
            &mut |m| match m.name {
                "cluster" => m.read(&mut cluster),
                _ => m.read(&mut retries),
            },
        )?;
        Ok(Http {
            cluster: at.required(cluster, "cluster")?,
            retries: retries.flatten(),
        })
    }
}

#[derive(Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    id: u64,
    #[serde(default)]
    inner: Option<Box<Item>>,
}

impl ReadJson for Item {
    fn read_json(at: At<'_, '_>) -> Result<Item, PathError> {
        let (mut id, mut inner) = (None, None);
        at.object("struct Item", &["id", "inner"], &mut |m| match m.name {
            "id" => m.read(&mut id),
            _ => m.read(&mut inner),
        })?;
        Ok(Item {
            id: at.required(id, "id")?,
            inner: inner.flatten(),
        })
    }
}

/// [`Doc`] read the way the policy's types are: [`At::fields`] and a [`ByName`] map.
#[derive(Debug, PartialEq)]
struct FieldsDoc(Doc);

impl ReadJson for FieldsDoc {
    fn read_json(at: At<'_, '_>) -> Result<FieldsDoc, PathError> {
        let mut f = at.fields("struct Doc", DOC_FIELDS)?;
        let switches: ByName<bool> = f.get("switches").unwrap_or_default();
        let names: Vec<&String> = switches.iter().map(|(n, _)| n).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
        let doc = Doc {
            name: f.required("name"),
            count: f.get("count").unwrap_or_default(),
            limit: f.get("limit").flatten(),
            on: f.get("on").unwrap_or_else(yes),
            share: f.get("share").flatten(),
            tags: f.get("tags").unwrap_or_default(),
            switches: switches.into_iter().collect(),
            mode: f.get("mode").unwrap_or_default(),
            sink: f.get("sink").unwrap_or_default(),
            items: f.get("items").unwrap_or_default(),
            modes: f.get("in").unwrap_or_default(),
            size: f.get("size").unwrap_or_default(),
            big: f.get("big").unwrap_or_default(),
        };
        f.finish(FieldsDoc(doc))
    }
}

fn check_read(text: &str) {
    let json = Json::parse(text.as_bytes()).unwrap();
    for path in ["", "section"] {
        let ours = json.read::<Doc>(path);
        let theirs = json.deserialize::<Doc>(path);
        assert_eq!(ours, theirs, "{text}");
        let by_fields = json.read::<FieldsDoc>(path).map(|FieldsDoc(doc)| doc);
        assert_eq!(by_fields, theirs, "{text}");
    }
}

#[test]
fn the_readers_read_and_refuse_as_serde_derives_do() {
    let full = r#"{"name":"a","count":3,"limit":9,"on":false,"share":0.5,"tags":["x"],
        "switches":{"a":true,"a":false},"mode":"monitor","sink":{"http":{"cluster":"c"}},
        "items":[{"id":1,"inner":{"id":2}}],"in":["would_deny"],"size":4,"big":5}"#;
    check_read(full);
    for text in [
        r#"{"name":"a"}"#,
        r#"{}"#,
        r#"null"#,
        r#"{"nmae":"a"}"#,
        r#"{"name":"a","name":"b"}"#,
        r#"{"name":"a","limit":null,"limit":1}"#,
        r#"{"name":7,"nmae":1}"#,
        r#"{"nmae":1,"name":7}"#,
        r#"{"name":"a","sink":"log"}"#,
        r#"{"name":"a","sink":"access_log"}"#,
        r#"{"name":"a","sink":"http"}"#,
        r#"{"name":"a","sink":"file"}"#,
        r#"{"name":"a","sink":{"log":null}}"#,
        r#"{"name":"a","sink":{"log":1}}"#,
        r#"{"name":"a","sink":{"file":1}}"#,
        r#"{"name":"a","sink":{"http":{}}}"#,
        r#"{"name":"a","sink":{"http":{"cluster":"c","x":1}}}"#,
        r#"{"name":"a","sink":{"http":{"cluster":"c","retries":-1}}}"#,
        r#"{"name":"a","sink":{"http":1,"log":null}}"#,
        r#"{"name":"a","sink":{}}"#,
        r#"{"name":"a","mode":{"monitor":null}}"#,
        r#"{"name":"a","mode":{"monitor":[]}}"#,
        r#"{"name":"a","mode":{"nope":null}}"#,
        r#"{"name":"a","mode":"Monitor"}"#,
        r#"{"name":"a","items":[{"id":1},{"id":2,"inner":{"id":"3"}}]}"#,
        r#"{"name":"a","items":[{"id":1},{"inner":null}]}"#,
        r#"{"name":"a","items":[{"id":1,"inner":{"id":2,"inner":{"idd":3}}}]}"#,
        r#"{"name":"a","switches":{"x":1}}"#,
        r#"{"name":"a","in":["monitor","x"]}"#,
        // Several faults: the first in document order is the one named.
        r#"{"count":"x","nmae":1}"#,
        r#"{"nmae":1,"count":"x"}"#,
        r#"{"name":"a","limit":"y","count":"x"}"#,
        r#"{"name":"a","count":"x","limit":"y"}"#,
        r#"{"count":1,"count":"x"}"#,
        r#"{"count":"x","count":1}"#,
        r#"{"count":"x","limit":1}"#,
        r#"{"name":"a","switches":{"b":true,"a":false,"b":false,"c":true}}"#,
        r#"{"name":"a","switches":{"b":true,"a":"no"}}"#,
        r#"{"name":"a","items":[{"id":"x","nope":1}],"size":"y"}"#,
        r#"{"name":"a","size":"y","items":[{"nope":1}]}"#,
    ] {
        check_read(text);
    }
    // Each field given each kind of value, and each field written twice.
    let values = [
        "null",
        "true",
        "0",
        "7",
        "-7",
        "65535",
        "65536",
        "4294967296",
        "18446744073709551615",
        "-9223372036854775808",
        "1.5",
        "-0.0",
        "2.0",
        "1e300",
        "\"x\"",
        "\"quote\\\"d\\n\"",
        "\"enforce\"",
        "[]",
        "[1]",
        "[\"x\"]",
        "{}",
        "{\"a\":true}",
        "{\"id\":1}",
        "{\"monitor\":null}",
    ];
    for field in DOC_FIELDS {
        for value in values {
            check_read(&format!(r#"{{"name":"a","{field}":{value}}}"#));
            check_read(&format!(r#"{{"{field}":{value},"name":"a"}}"#));
            check_read(&format!(r#"{{"{field}":{value}}}"#));
        }
        check_read(&format!(r#"{{"name":"a","{field}":null,"{field}":null}}"#));
    }
}

/// serde's derives also read a struct from an array, field by field in declaration order
/// (`["a"]` as `{"name": "a"}`); no policy is written so, and the readers refuse it.
#[test]
fn a_struct_is_an_object_not_an_array() {
    let json = Json::parse(br#"["a"]"#).unwrap();
    assert_eq!(
        json.read::<Doc>("rules[0]").unwrap_err().to_string(),
        "rules[0]: invalid type: sequence, expected struct Doc"
    );
}

#[test]
fn a_float_and_a_string_are_shown_in_serdes_words() {
    let json = Json::parse(br#"{"name":"a","count":1e3}"#).unwrap();
    let err = json.read::<Doc>("").unwrap_err();
    assert_eq!(
        err.to_string(),
        "count: invalid type: floating point `1000.0`, expected u16"
    );
    let json = Json::parse(br#"{"name":"a","count":"\"7\""}"#).unwrap();
    assert_eq!(
        json.read::<Doc>("").unwrap_err().to_string(),
        r#"count: invalid type: string "\"7\"", expected u16"#
    );
}
