//! A small JSON text writer for what the module writes per request (audit records, the verdict,
//! the decisions in filter state): objects, arrays, strings and integers appended straight to
//! one `String`, escaped exactly as `serde_json` escapes them.
//!
//! That text is written once per request inside the proxy: writing the text directly avoids
//! `serde_json::Value` trees, an intermediate byte buffer and its regrowth, and serde_json's
//! byte-at-a-time string scan (strings here are checked eight bytes at a time).
//!
//! The member writers (`key`, `str`, `u64`, ...) are kept out of line on purpose: inlined, each
//! of the records' hundred-odd members carried its own copy of the comma logic, the escaper's
//! loop and the digit loop (`write_ocsf` alone was 19 KB of Wasm, and V8 compiles every byte in
//! every sidecar). Out of line, a member is one call; the escaper and the digits run in one
//! place that stays hot.

use std::net::IpAddr;

#[cfg(test)]
mod tests;

/// A member name, written with the comma before it, its quotes and its colon at compile time
/// by [`key!`] (`,"name":`), so that writing a member name is one copy.
#[derive(Clone, Copy)]
pub(crate) struct Key(&'static str);

impl Key {
    /// Wraps `,"name":` (use [`key!`]).
    pub(crate) const fn quoted(text: &'static str) -> Key {
        Key(text)
    }
}

/// The [`Key`] of a member name literal (which must need no escaping): `key!("time")`.
macro_rules! key {
    ($name:literal) => {
        $crate::json::Key::quoted(concat!(",\"", $name, "\":"))
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

    /// Members written at the end of `out` inside an object opened (or to be opened) by
    /// someone else: no brace; the first member has no comma unless `after_member`.
    pub(crate) fn inside(out: &'o mut String, after_member: bool) -> Self {
        JsonObject {
            out,
            empty: !after_member,
        }
    }

    /// Writes `,"name":`, without the comma for the first member. Inlined only into the
    /// member writers below (a dozen copies), which the records call out of line.
    #[inline(always)]
    fn key(&mut self, key: Key) {
        // Only an object's first member slices (a call at opt-level "z"); a view without the
        // comma kept in every key measured 1.1 KB of Wasm for that one call.
        let text = if self.empty {
            key.0.get(1..).unwrap_or_default()
        } else {
            key.0
        };
        self.empty = false;
        self.out.push_str(text);
    }

    /// Members written beforehand as one literal (`"a":1,"b":"x"`), for constant parts.
    #[inline(never)]
    pub(crate) fn members(&mut self, literal: &'static str) {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        self.out.push_str(literal);
    }

    /// `"key":"value"`.
    #[inline(never)]
    pub(crate) fn str(&mut self, key: Key, value: &str) {
        self.key(key);
        push_string(self.out, value);
    }

    /// `"key":"value"` for a constant value that needs no escaping (a caption, an outcome):
    /// copied, not scanned.
    #[inline(never)]
    pub(crate) fn caption(&mut self, key: Key, value: &'static str) {
        self.key(key);
        self.out.push('"');
        self.out.push_str(value);
        self.out.push('"');
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
    #[inline(never)]
    pub(crate) fn opt_str(&mut self, key: Key, value: Option<&str>) {
        if let Some(v) = value {
            self.str(key, v);
        }
    }

    /// `"key":n`.
    #[inline(never)]
    pub(crate) fn u64(&mut self, key: Key, value: u64) {
        self.key(key);
        push_u64(self.out, value);
    }

    /// `"key":n` when there is a value.
    #[inline(never)]
    pub(crate) fn opt_u64(&mut self, key: Key, value: Option<u64>) {
        if let Some(v) = value {
            self.u64(key, v);
        }
    }

    /// `"key":true|false`.
    #[inline(never)]
    pub(crate) fn bool(&mut self, key: Key, value: bool) {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
    }

    /// `"key":"ip"` (an address's text never needs escaping).
    #[inline(never)]
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
    #[inline(never)]
    pub(crate) fn str_concat(&mut self, key: Key, parts: &[&str]) {
        self.key(key);
        self.out.push('"');
        for part in parts {
            push_escaped(self.out, part);
        }
        self.out.push('"');
    }

    /// `"key":["a","b"]` of `items`, left out when there are none.
    #[inline(never)]
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
        let mut inner = self.open_object(key);
        fill(&mut inner);
        inner.close();
    }

    /// Writes `"key":{` and gives the inner object (shared by every [`JsonObject::object`]).
    #[inline(never)]
    fn open_object(&mut self, key: Key) -> JsonObject<'_> {
        self.key(key);
        JsonObject::open(self.out)
    }

    /// `"key":[...]` with the elements `fill` writes.
    #[inline]
    pub(crate) fn array(&mut self, key: Key, fill: impl FnOnce(&mut JsonArray<'_>)) {
        let mut inner = self.open_array(key);
        fill(&mut inner);
        inner.close();
    }

    /// Writes `"key":[` and gives the inner array (shared by every [`JsonObject::array`]).
    #[inline(never)]
    fn open_array(&mut self, key: Key) -> JsonArray<'_> {
        self.key(key);
        JsonArray::open(self.out)
    }

    /// Closes the object.
    #[inline(never)]
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
    #[inline(never)]
    pub(crate) fn str(&mut self, value: &str) {
        self.next();
        push_string(self.out, value);
    }

    /// An address element.
    #[inline(never)]
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
#[inline]
pub(crate) fn push_string(out: &mut String, s: &str) {
    out.push('"');
    push_escaped(out, s);
    out.push('"');
}

/// Appends the escaped contents of `s` (no quotes): eight bytes checked at a time, and the runs
/// between escapes copied whole (a string with nothing to escape is one copy).
#[inline(never)]
pub(crate) fn push_escaped(out: &mut String, s: &str) {
    let mut clean_from = 0;
    let mut at = 0;
    // `split_first_chunk` rather than `chunks_exact`: the iterator's `next` stays a call per
    // word at opt-level "z", the split is a length check.
    let mut rest = s.as_bytes();
    while let Some((word, tail)) = rest.split_first_chunk::<8>() {
        if word_needs_escape(u64::from_le_bytes(*word)) {
            clean_from = escape_run(out, s, clean_from, at, word);
        }
        at += 8;
        rest = tail;
    }
    if rest.iter().any(|b| needs_escape(*b)) {
        clean_from = escape_run(out, s, clean_from, at, rest);
    }
    if clean_from == 0 {
        out.push_str(s);
    } else {
        out.push_str(s.get(clean_from..).unwrap_or_default());
    }
}

/// Escapes the bytes of `chunk` (which starts at `at` in `s`) that need it, first copying the
/// clean run from `clean_from`; returns where the next clean run starts.
#[cold]
fn escape_run(out: &mut String, s: &str, mut clean_from: usize, at: usize, chunk: &[u8]) -> usize {
    for (i, b) in chunk.iter().enumerate() {
        if needs_escape(*b) {
            // Escaped bytes are ASCII: both ends of the clean run are char boundaries.
            out.push_str(s.get(clean_from..at + i).unwrap_or_default());
            push_escape(out, *b);
            clean_from = at + i + 1;
        }
    }
    clean_from
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

/// Appends `n` in decimal, the digits in one copy. Only the part above eight digits is divided
/// as a u64: Wasm has no 64-bit multiply-high, so each u64 division by a constant stays a
/// hardware divide in V8, while the 32-bit ones become multiplications.
#[inline(never)]
pub(crate) fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    while n >= 100_000_000 {
        let group = (n % 100_000_000) as u32;
        n /= 100_000_000;
        at = put_digits(&mut digits, at, group, 8);
    }
    at = put_digits(&mut digits, at, n as u32, 1);
    push_ascii(out, digits.get(at..).unwrap_or_default());
}

/// Appends bytes gathered on the stack (ASCII: digits, dots, quotes) in one copy; the check
/// that they are UTF-8 is core's, compiled at full speed, and cheaper than a call per byte.
fn push_ascii(out: &mut String, bytes: &[u8]) {
    out.push_str(std::str::from_utf8(bytes).unwrap_or_default());
}

/// Writes `group` in decimal right-aligned before `at` in `digits`, at least `width` digits
/// (zeros in front); returns where the digits start.
fn put_digits(digits: &mut [u8; 20], mut at: usize, mut group: u32, width: usize) -> usize {
    let stop = at.saturating_sub(width);
    loop {
        at = at.saturating_sub(1);
        if let Some(slot) = digits.get_mut(at) {
            *slot = b'0' + (group % 10) as u8;
        }
        group /= 10;
        if group == 0 && at <= stop {
            return at;
        }
    }
}

fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        // The common case, without the formatting machinery (same text as `Display`), quotes
        // included, gathered on the stack and appended in one copy.
        IpAddr::V4(v4) => {
            let mut text = [b'"'; 17];
            let mut len = 1;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    put_byte(&mut text, &mut len, b'.');
                }
                if octet >= 100 {
                    put_byte(&mut text, &mut len, b'0' + octet / 100);
                }
                if octet >= 10 {
                    put_byte(&mut text, &mut len, b'0' + octet / 10 % 10);
                }
                put_byte(&mut text, &mut len, b'0' + octet % 10);
            }
            put_byte(&mut text, &mut len, b'"');
            push_ascii(out, text.get(..len).unwrap_or_default());
        }
        // The crate's own printer: std's `Display` would bring its formatting machinery.
        IpAddr::V6(v6) => {
            out.push('"');
            crate::identity::ip::push_ipv6(out, v6);
            out.push('"');
        }
    }
}

/// Writes `b` at `len` in `text` and moves `len` on (the callers size `text` for the worst case).
#[inline(always)]
fn put_byte(text: &mut [u8], len: &mut usize, b: u8) {
    if let Some(slot) = text.get_mut(*len) {
        *slot = b;
        *len += 1;
    }
}
