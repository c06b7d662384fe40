//! Lenient decoders that undo the encodings attackers use to hide an indicator.
//!
//! Unlike the allowlist's normalizer, which rejects ambiguity, these decode as much as they can:
//! a sensor copy costs little, a missed exploit costs a lot. Every loop is bounded. What a
//! backend decodes before it reads a value (multipart forms, compressed bodies, base64
//! credentials) has a decoder of its own beside this file.

pub mod base64;
pub mod inflate;
pub mod multipart;

use crate::error::json_path::Json;
use crate::normalize::{hex_pair, hex_value};
use crate::stable_sort::stable_sort_by;

/// Most rounds of percent-decoding (`%252e` -> `%2e` -> `.`).
pub const MAX_DECODE_ROUNDS: usize = 3;
/// Deepest `${...}` nesting evaluated by [`eval_lookups`].
pub const MAX_LOOKUP_DEPTH: usize = 12;

/// One round of percent-decoding, `%uXXXX` (IIS) included; `plus_as_space` for forms and
/// queries. Invalid escapes stay as they are.
pub fn percent_decode_once(input: &[u8], plus_as_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%' {
            if let Some(byte) = hex_pair(input, i + 1) {
                out.push(byte);
                i += 3;
                continue;
            }
            if matches!(input.get(i + 1), Some(b'u' | b'U')) {
                if let Some(c) = input.get(i + 2..i + 6).and_then(hex4) {
                    push_char(&mut out, c);
                    i += 6;
                    continue;
                }
            }
        } else if b == b'+' && plus_as_space {
            out.push(b' ');
            i += 1;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

fn hex4(d: &[u8]) -> Option<u32> {
    d.iter().try_fold(0u32, |acc, c| {
        hex_value(*c).map(|v| acc << 4 | u32::from(v))
    })
}

fn push_char(out: &mut Vec<u8>, c: u32) {
    let ch = char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER);
    let mut buf = [0u8; 4];
    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
}

/// Percent-decodes until nothing changes, at most [`MAX_DECODE_ROUNDS`] times. `+` means a
/// space only in the first round: a `%2B` the first round produced is a plus.
pub fn percent_decode_fully(input: &[u8], plus_as_space: bool) -> Vec<u8> {
    let mut cur = input.to_vec();
    for round in 0..MAX_DECODE_ROUNDS {
        let plus = plus_as_space && round == 0;
        if !(cur.contains(&b'%') || (plus && cur.contains(&b'+'))) {
            break;
        }
        let next = percent_decode_once(&cur, plus);
        if next == cur {
            break;
        }
        cur = next;
    }
    cur
}

/// Replaces `\uXXXX` and `\xXX` escapes (JSON, JavaScript, OGNL payloads) by their character.
pub fn unescape_backslash(input: &[u8]) -> Vec<u8> {
    if !input.contains(&b'\\') {
        return input.to_vec();
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'\\' {
            match input.get(i + 1) {
                Some(b'u' | b'U') => {
                    if let Some(c) = input.get(i + 2..i + 6).and_then(hex4) {
                        push_char(&mut out, c);
                        i += 6;
                        continue;
                    }
                }
                Some(b'x' | b'X') => {
                    if let Some(byte) = hex_pair(input, i + 2) {
                        out.push(byte);
                        i += 4;
                        continue;
                    }
                }
                _ => {}
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// Lower-cases ASCII letters of possibly invalid UTF-8 into a `String`.
pub fn lower_lossy(input: &[u8]) -> String {
    String::from_utf8_lossy(input).to_ascii_lowercase()
}

/// Splits an `a=1&b=2` form or query into decoded `(name, value)` pairs.
pub fn form_pairs(input: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    input
        .split(|b| *b == b'&' || *b == b';')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &[][..]),
            };
            (
                percent_decode_fully(name, true),
                percent_decode_fully(value, true),
            )
        })
        .collect()
}

/// Collects every key and string value of a JSON document (the parser has already undone
/// `\uXXXX`); `None` when the body is not JSON.
pub fn json_strings(body: &[u8]) -> Option<Vec<String>> {
    let value = Json::parse(body).ok()?;
    let mut out = Vec::new();
    let mut stack = vec![&value];
    while let Some(v) = stack.pop() {
        match v {
            Json::Str(s) => out.push(s.clone()),
            Json::Array(items) => stack.extend(items.iter()),
            Json::Object(members) => {
                for (k, item) in by_key(members) {
                    out.push(k.clone());
                    stack.push(item);
                }
            }
            _ => {}
        }
    }
    Some(out)
}

/// Rewrites bean-property brackets to dots (`class['module']["classLoader"]` ->
/// `class.module.classLoader`), the other spelling Spring binds.
pub fn brackets_to_dots(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '[' => {
                out.push('.');
                while matches!(chars.peek(), Some('\'' | '"' | ' ')) {
                    chars.next();
                }
            }
            '\'' | '"' if matches!(chars.peek(), Some(']')) => {}
            ']' => {}
            _ => out.push(c),
        }
    }
    out
}

/// Evaluates the Log4j lookups that only serve to hide `${jndi:`: `${lower:x}`, `${upper:x}`,
/// `${date:'x'}` and any lookup with a default value (`${::-x}`, `${env:NAME:-x}`), innermost
/// first. `${jndi:...}` and unknown lookups are kept as written. Input should be lower-cased.
pub fn eval_lookups(input: &str) -> String {
    // Two-byte windows rather than `str::contains`/`find`: core's substring searcher (2.5 KB
    // of Wasm) stays out of the module once nothing else needs it.
    if !input.as_bytes().windows(2).any(|w| w == b"${") {
        return input.to_string();
    }
    let bytes = input.as_bytes();
    let mut pos = 0;
    let mut out = String::with_capacity(input.len());
    while pos < bytes.len() {
        let (text, next) = eval_text(input, pos, 0, false);
        out.push_str(&text);
        pos = next;
        if pos < bytes.len() {
            // A stray `}` at the top level.
            out.push('}');
            pos += 1;
        }
    }
    out
}

/// Evaluates text from `start` until an unmatched `}` (when `inside`) or the end; returns the
/// text and the index of that `}` (or the end).
fn eval_text(input: &str, start: usize, depth: usize, inside: bool) -> (String, usize) {
    let bytes = input.as_bytes();
    let mut out = String::new();
    let mut i = start;
    let mut run = start;
    while i < bytes.len() {
        if inside && bytes[i] == b'}' {
            out.push_str(&input[run..i]);
            return (out, i);
        }
        if bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'{') && depth < MAX_LOOKUP_DEPTH {
            out.push_str(&input[run..i]);
            let (content, end) = eval_text(input, i + 2, depth + 1, true);
            if end >= bytes.len() {
                // Unclosed: keep it literally.
                out.push_str("${");
                out.push_str(&content);
                return (out, end);
            }
            out.push_str(&eval_lookup(&content));
            i = end + 1;
            run = i;
            continue;
        }
        i += 1;
    }
    out.push_str(&input[run..]);
    (out, bytes.len())
}

fn eval_lookup(content: &str) -> String {
    if content.starts_with("jndi:") {
        return format!("${{{content}}}");
    }
    if let Some(rest) = content
        .strip_prefix("lower:")
        .or_else(|| content.strip_prefix("upper:"))
    {
        return rest.to_string();
    }
    if let Some(at) = content.as_bytes().windows(2).position(|w| w == b":-") {
        return content[at + 2..].to_string();
    }
    if let Some(rest) = content.strip_prefix("date:") {
        return rest.trim_matches(|c| c == '\'' || c == '"').to_string();
    }
    format!("${{{content}}}")
}

/// Splits an `a=1&b=2` form or query into raw (still encoded) `(name, value)` pairs.
pub fn raw_pairs(input: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    input
        .split(|b| *b == b'&' || *b == b';')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.iter().position(|b| *b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &[][..]),
        })
}

/// Collects every `(key, value)` of a JSON document: strings (the parser has already undone
/// `\uXXXX`), numbers and booleans as their text, each under the key of the object member that
/// holds it (array items under their array's key); a member holding an object or an array is
/// also reported with an empty value, so a rule that looks at names sees it. `None` when the
/// body is not JSON.
pub fn json_pairs(body: &[u8]) -> Option<Vec<(String, String)>> {
    let value = Json::parse(body).ok()?;
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), &value)];
    while let Some((key, v)) = stack.pop() {
        match v {
            Json::Str(s) => out.push((key, s.clone())),
            Json::Bool(b) => out.push((key, b.to_string())),
            Json::U64(n) => out.push((key, n.to_string())),
            Json::I64(n) => out.push((key, n.to_string())),
            Json::F64(n) => out.push((key, float_text(*n))),
            Json::Array(items) => {
                stack.extend(items.iter().map(|item| (key.clone(), item)));
            }
            Json::Object(members) => {
                for (k, item) in by_key(members) {
                    if matches!(item, Json::Object(_) | Json::Array(_)) {
                        out.push((k.clone(), String::new()));
                    }
                    stack.push((k.clone(), item));
                }
            }
            Json::Null => {}
        }
    }
    Some(out)
}

/// An object's members in key order, a repeated key keeping its last value: the order (and
/// the members) serde_json's map gave, so that views and reports stay as they were.
/// Sorted with the crate's own stable sort, not collected into a map (std's sort behind that
/// cost the module about 5 KB of Wasm).
fn by_key(members: &[(String, Json)]) -> Vec<(&String, &Json)> {
    let mut sorted: Vec<(&String, &Json)> = members.iter().map(|(k, v)| (k, v)).collect();
    stable_sort_by(&mut sorted, |a, b| a.0 < b.0);
    // A repeated key's members are now adjacent, in document order: the last one wins.
    let mut unique: Vec<(&String, &Json)> = Vec::with_capacity(sorted.len());
    for (k, v) in sorted {
        match unique.last_mut() {
            Some(last) if last.0 == k => last.1 = v,
            _ => unique.push((k, v)),
        }
    }
    unique
}

/// A float as serde_json printed it (`1.0`, `0.00001`, `1e+300`, `1.5e-7`), from the shortest
/// digits (the crate's own formatter: std's would bring core's float formatting into the module).
fn float_text(f: f64) -> String {
    crate::error::json_path::float::json_text(f)
}

/// A lenient path normalization for matching: `\` read as `/`, `//` merged, `.` and `..`
/// segments resolved (never above the root), `;params` dropped from each segment. Input should
/// already be percent-decoded.
pub fn normalize_path(input: &[u8]) -> Vec<u8> {
    // Written straight into `out`, no vector per segment: a segment holds no `/`, so `..`
    // drops back to the last `/` written.
    let mut out = Vec::with_capacity(input.len() + 1);
    let trailing = matches!(input.last(), Some(b'/' | b'\\'));
    for seg in input.split(|b| *b == b'/' || *b == b'\\') {
        let seg = match seg.iter().position(|b| *b == b';') {
            Some(at) => &seg[..at],
            None => seg,
        };
        match seg {
            b"" | b"." => {}
            b".." => {
                let parent = out.iter().rposition(|b| *b == b'/').unwrap_or(0);
                out.truncate(parent);
            }
            s => {
                out.push(b'/');
                out.extend_from_slice(s);
            }
        }
    }
    if out.is_empty() || trailing {
        out.push(b'/');
    }
    out
}

#[cfg(test)]
mod json_body_tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// What `json_pairs` gave when serde_json read the body: the oracle of the reports.
    fn serde_pairs(body: &[u8]) -> Option<Vec<(String, String)>> {
        use serde_json::Value;
        let value: Value = serde_json::from_slice(body).ok()?;
        let mut out = Vec::new();
        let mut stack = vec![(String::new(), &value)];
        while let Some((key, v)) = stack.pop() {
            match v {
                Value::String(s) => out.push((key, s.clone())),
                Value::Bool(b) => out.push((key, b.to_string())),
                Value::Number(n) => out.push((key, n.to_string())),
                Value::Array(items) => stack.extend(items.iter().map(|i| (key.clone(), i))),
                Value::Object(map) => {
                    for (k, item) in map {
                        if matches!(item, Value::Object(_) | Value::Array(_)) {
                            out.push((k.clone(), String::new()));
                        }
                        stack.push((k.clone(), item));
                    }
                }
                Value::Null => {}
            }
        }
        Some(out)
    }

    #[test]
    fn body_numbers_read_as_serde_json_printed_them() {
        for f in [
            0.0,
            -0.0,
            1.0,
            1.5,
            -2.25,
            0.1,
            1e-5,
            1.5e-5,
            1e-4,
            1e15,
            1e16,
            1.25e16,
            123_456_789.125,
            1e21,
            1e300,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            -3.0e-7,
        ] {
            let theirs = serde_json::Number::from_f64(f).map(|n| n.to_string());
            assert_eq!(Some(float_text(f)), theirs, "{f:?}");
        }
    }

    #[test]
    fn json_bodies_report_what_they_reported_with_serde_json() {
        for body in [
            &br#"{"b":[1.0,-7,1e-5,18446744073709551615],"a":{"x":true},"a":"2","c":null}"#[..],
            br#"{"z":{"y":{"x":["\u00e9",{"k":"v","k":"w"}]}},"m":[[],{}]}"#,
            br#"["top", 1.5e300, -0.0, {"":""}]"#,
            br#""just a string""#,
            b"{\"a\":1,}",
            b"not json",
        ] {
            assert_eq!(json_pairs(body), serde_pairs(body));
        }
    }
}

#[cfg(test)]
mod path_tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// `normalize_path` as it was written with a vector per segment: the oracle of the one
    /// that writes straight into its output.
    fn normalize_by_segments(input: &[u8]) -> Vec<u8> {
        let mut segments: Vec<Vec<u8>> = Vec::new();
        let trailing = matches!(input.last(), Some(b'/' | b'\\'));
        for seg in input.split(|b| *b == b'/' || *b == b'\\') {
            let seg = match seg.iter().position(|b| *b == b';') {
                Some(at) => &seg[..at],
                None => seg,
            };
            match seg {
                b"" | b"." => {}
                b".." => {
                    segments.pop();
                }
                s => segments.push(s.to_vec()),
            }
        }
        let mut out = Vec::with_capacity(input.len() + 1);
        for s in &segments {
            out.push(b'/');
            out.extend_from_slice(s);
        }
        if out.is_empty() || trailing {
            out.push(b'/');
        }
        out
    }

    /// Every path of up to `len` bytes over the bytes `normalize_path` treats apart.
    fn small_paths(len: u32) -> Vec<Vec<u8>> {
        const ALPHABET: &[u8] = b"/\\.;ab";
        let mut all = vec![Vec::new()];
        let mut last = vec![Vec::new()];
        for _ in 0..len {
            let next: Vec<Vec<u8>> = last
                .iter()
                .flat_map(|p| {
                    ALPHABET.iter().map(move |b| {
                        let mut q = p.clone();
                        q.push(*b);
                        q
                    })
                })
                .collect();
            all.extend(next.iter().cloned());
            last = next;
        }
        all
    }

    #[test]
    fn normalizes_as_the_segment_vector_did() {
        for path in small_paths(6) {
            assert_eq!(
                normalize_path(&path),
                normalize_by_segments(&path),
                "{}",
                String::from_utf8_lossy(&path)
            );
        }
    }
}
