//! The JSON text writer as it was before the size pass (commit f7127d3), unchanged but for
//! its path: the oracle's half of `crate::json`.
//!
//! That text is written once per request inside the proxy: writing the text directly avoids
//! `serde_json::Value` trees, an intermediate byte buffer and its regrowth, and serde_json's
//! byte-at-a-time string scan (strings here are checked eight bytes at a time).

use std::fmt::Write as _;
use std::net::IpAddr;

/// A member name, written with its quotes and colon at compile time by [`key!`].
#[derive(Clone, Copy)]
pub(crate) struct Key(&'static str);

impl Key {
    /// Wraps `"name":` (use [`key!`]).
    pub(crate) const fn quoted(text: &'static str) -> Key {
        Key(text)
    }
}

/// The [`Key`] of a member name literal (which must need no escaping): `key!("time")`.
macro_rules! key {
    ($name:literal) => {
        $crate::audit::oracle::json::Key::quoted(concat!("\"", $name, "\":"))
    };
}
pub(crate) use key;

/// A JSON object being written.
pub(crate) struct JsonObject<'o> {
    out: &'o mut String,
    empty: bool,
}

impl<'o> JsonObject<'o> {
    /// Opens an object at the end of `out`.
    #[inline]
    pub(crate) fn open(out: &'o mut String) -> Self {
        out.push('{');
        JsonObject { out, empty: true }
    }

    #[inline(always)]
    fn key(&mut self, key: Key) {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        self.out.push_str(key.0);
    }

    /// Members written beforehand as one literal (`"a":1,"b":"x"`), for constant parts.
    #[inline(always)]
    pub(crate) fn members(&mut self, literal: &'static str) {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        self.out.push_str(literal);
    }

    /// `"key":"value"`.
    #[inline]
    pub(crate) fn str(&mut self, key: Key, value: &str) {
        self.key(key);
        push_string(self.out, value);
    }

    /// `"name":"value"` for a name known only at run time (escaped).
    pub(crate) fn named_str(&mut self, name: &str, value: &str) {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        push_string(self.out, name);
        self.out.push(':');
        push_string(self.out, value);
    }

    /// `"key":"value"` when there is a value.
    #[inline]
    pub(crate) fn opt_str(&mut self, key: Key, value: Option<&str>) {
        if let Some(v) = value {
            self.str(key, v);
        }
    }

    /// `"key":n`.
    #[inline]
    pub(crate) fn u64(&mut self, key: Key, value: u64) {
        self.key(key);
        push_u64(self.out, value);
    }

    /// `"key":n` when there is a value.
    #[inline]
    pub(crate) fn opt_u64(&mut self, key: Key, value: Option<u64>) {
        if let Some(v) = value {
            self.u64(key, v);
        }
    }

    /// `"key":true|false`.
    #[inline]
    pub(crate) fn bool(&mut self, key: Key, value: bool) {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
    }

    /// `"key":"ip"` (an address's text never needs escaping).
    #[inline]
    pub(crate) fn ip(&mut self, key: Key, ip: IpAddr) {
        self.key(key);
        push_ip(self.out, ip);
    }

    /// `"key":"value"` where the value is written by `write` (which must not write `"`, `\`
    /// or control characters: it is not escaped).
    #[inline]
    pub(crate) fn plain_str(&mut self, key: Key, write: impl FnOnce(&mut String)) {
        self.key(key);
        self.out.push('"');
        write(self.out);
        self.out.push('"');
    }

    /// `"key":"value"` where the value is the concatenation of `parts`, each escaped.
    #[inline]
    pub(crate) fn str_concat(&mut self, key: Key, parts: &[&str]) {
        self.key(key);
        self.out.push('"');
        for part in parts {
            push_escaped(self.out, part);
        }
        self.out.push('"');
    }

    /// `"key":["a","b"]` of `items`, left out when there are none.
    #[inline]
    pub(crate) fn strs_unless_empty(&mut self, key: Key, items: &[String]) {
        if !items.is_empty() {
            self.array(key, |list| {
                for item in items {
                    list.str(item);
                }
            });
        }
    }

    /// `"key":{...}` with the members `fill` writes.
    #[inline]
    pub(crate) fn object(&mut self, key: Key, fill: impl FnOnce(&mut JsonObject<'_>)) {
        self.key(key);
        let mut inner = JsonObject::open(self.out);
        fill(&mut inner);
        inner.close();
    }

    /// `"key":[...]` with the elements `fill` writes.
    #[inline]
    pub(crate) fn array(&mut self, key: Key, fill: impl FnOnce(&mut JsonArray<'_>)) {
        self.key(key);
        let mut inner = JsonArray::open(self.out);
        fill(&mut inner);
        inner.close();
    }

    /// Closes the object.
    #[inline]
    pub(crate) fn close(self) {
        self.out.push('}');
    }
}

/// A JSON array being written.
pub(crate) struct JsonArray<'o> {
    out: &'o mut String,
    empty: bool,
}

impl<'o> JsonArray<'o> {
    fn open(out: &'o mut String) -> Self {
        out.push('[');
        JsonArray { out, empty: true }
    }

    fn next(&mut self) {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
    }

    /// A string element.
    #[inline]
    pub(crate) fn str(&mut self, value: &str) {
        self.next();
        push_string(self.out, value);
    }

    /// An address element.
    #[inline]
    pub(crate) fn ip(&mut self, ip: IpAddr) {
        self.next();
        push_ip(self.out, ip);
    }

    /// An object element with the members `fill` writes.
    #[inline]
    pub(crate) fn object(&mut self, fill: impl FnOnce(&mut JsonObject<'_>)) {
        self.next();
        let mut inner = JsonObject::open(self.out);
        fill(&mut inner);
        inner.close();
    }

    fn close(self) {
        self.out.push(']');
    }
}

/// Whether byte `b` must be escaped in a JSON string.
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any of the eight bytes of `w` is below 0x20, `"` or `\` (exact, no false negatives
/// or positives for the "any" question).
fn word_needs_escape(w: u64) -> bool {
    let below_space = w.wrapping_sub(ONES * 0x20) & !w;
    let quote = w ^ (ONES * u64::from(b'"'));
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = w ^ (ONES * u64::from(b'\\'));
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (below_space | quote | backslash) & HIGHS != 0
}

/// Appends `s` as a JSON string literal, escaped as `serde_json` does (`\"`, `\\`, `\b`, `\f`,
/// `\n`, `\r`, `\t`, other control characters as `\u00xx`; everything else as is).
pub(crate) fn push_string(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    push_escaped(out, s);
    out.push('"');
}

/// Appends the escaped contents of `s` (no quotes).
pub(crate) fn push_escaped(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut clean_from = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Eight bytes at a time, then the last few one by one.
        let (dirty, n) = match bytes.get(i..i + 8) {
            Some(chunk) => {
                let word = <[u8; 8]>::try_from(chunk).map_or(u64::MAX, u64::from_le_bytes);
                (word_needs_escape(word), 8)
            }
            None => {
                let tail = bytes.get(i..).unwrap_or_default();
                (tail.iter().any(|b| needs_escape(*b)), tail.len())
            }
        };
        if dirty {
            for (at, b) in bytes.iter().enumerate().skip(i).take(n) {
                if needs_escape(*b) {
                    // Escaped bytes are ASCII: both ends of the clean run are char boundaries.
                    out.push_str(s.get(clean_from..at).unwrap_or_default());
                    push_escape(out, *b);
                    clean_from = at + 1;
                }
            }
        }
        i += n;
    }
    out.push_str(s.get(clean_from..).unwrap_or_default());
}

fn push_escape(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'"' => out.push_str("\\\""),
        b'\\' => out.push_str("\\\\"),
        0x08 => out.push_str("\\b"),
        0x0c => out.push_str("\\f"),
        b'\n' => out.push_str("\\n"),
        b'\r' => out.push_str("\\r"),
        b'\t' => out.push_str("\\t"),
        _ => {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

/// Appends `n` in decimal.
pub(crate) fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for d in digits.get(at..).unwrap_or_default() {
        out.push(char::from(*d));
    }
}

/// Appends `n` in decimal, zero-padded to `width` digits.
pub(crate) fn push_padded(out: &mut String, n: u64, width: usize) {
    let mut len = 1;
    let mut rest = n / 10;
    while rest > 0 {
        len += 1;
        rest /= 10;
    }
    for _ in len..width {
        out.push('0');
    }
    push_u64(out, n);
}

fn push_ip(out: &mut String, ip: IpAddr) {
    out.push('"');
    match ip {
        // The common case, without the formatting machinery (same text as `Display`).
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_u64(out, u64::from(octet));
            }
        }
        // Writing to a String cannot fail.
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
    out.push('"');
}
