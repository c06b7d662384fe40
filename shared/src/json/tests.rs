//! The JSON writer: strings escape exactly as serde_json escapes them, numbers and addresses
//! print as their `Display` does.

use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn strings_escape_exactly_as_serde_json_does() {
    let mut every_byte = String::new();
    for c in (0u8..=0x7f).map(char::from) {
        every_byte.push(c);
    }
    let cases = [
        "",
        "a",
        "plain ascii text longer than eight bytes",
        "\"",
        "\\",
        "12345678\"",
        "1234567\"8",
        "tab\there",
        "\u{1}\u{1f}\u{7f}",
        "é漢😀 and \u{2028} \u{2029}",
        "ends with a backslash\\",
        "x\ny\rz\u{8}\u{c}",
        every_byte.as_str(),
    ];
    for s in cases {
        let mut out = String::new();
        push_string(&mut out, s);
        assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
    }
}

#[test]
fn words_needing_escapes_are_found_wherever_the_byte_is() {
    for at in 0..8 {
        for bad in [0u8, 0x1f, b'"', b'\\'] {
            let mut bytes = [b'a'; 8];
            bytes[at] = bad;
            assert!(
                word_needs_escape(u64::from_le_bytes(bytes)),
                "{bad:#x} at {at}"
            );
        }
        for good in [b' ', b'!', b'#', b'[', b']', 0x7f, 0x80, 0xff] {
            let mut bytes = [b'a'; 8];
            bytes[at] = good;
            assert!(
                !word_needs_escape(u64::from_le_bytes(bytes)),
                "{good:#x} at {at}"
            );
        }
    }
}

#[test]
fn numbers_and_addresses_print_as_display_does() {
    for n in [
        0u64,
        7,
        10,
        99,
        4002,
        99_999_999,
        100_000_000,
        100_000_001,
        1_000_000_000_000_000,
        1_700_000_000_012,
        10_000_000_000_000_000_000,
        u64::MAX,
    ] {
        let mut out = String::new();
        push_u64(&mut out, n);
        assert_eq!(out, n.to_string());
    }
    // Either side of every power of ten: where the digit groups split.
    for n in (0..20)
        .map(|e| 10u64.pow(e))
        .flat_map(|p| [p - 1, p, p + 1])
    {
        let mut out = String::new();
        push_u64(&mut out, n);
        assert_eq!(out, n.to_string());
    }
    for ip in [
        "0.0.0.0",
        "10.1.2.3",
        "255.255.255.255",
        "::1",
        "2001:db8::7",
        "::ffff:1.2.3.4",
    ] {
        let ip: IpAddr = ip.parse().unwrap();
        let mut out = String::new();
        push_ip(&mut out, ip);
        assert_eq!(out, format!("\"{ip}\""));
    }
}

#[test]
fn objects_and_arrays_nest_with_commas_only_between_members() {
    let mut out = String::new();
    let mut o = JsonObject::open(&mut out);
    o.members(r#""a":1"#);
    o.opt_str(key!("none"), None);
    o.str(key!("s"), "x\"y");
    o.object(key!("empty"), |_| {});
    o.array(key!("list"), |l| {
        l.str("a");
        l.object(|e| e.bool(key!("t"), true));
        l.ip("10.0.0.1".parse().unwrap());
    });
    o.named_str("dyn\"name", "v");
    o.str_concat(key!("joined"), &["a\\", "", "b"]);
    o.close();
    assert_eq!(
        out,
        r#"{"a":1,"s":"x\"y","empty":{},"list":["a",{"t":true},"10.0.0.1"],"dyn\"name":"v","joined":"a\\b"}"#
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["list"][1]["t"], true);
}
