//! The canonical path: one left-to-right pass over the request target that decodes, validates
//! and removes dot segments as it writes into a single output buffer.

use super::{hex_pair, Malformed};

/// An origin-form request target split into its canonical path and its raw query (borrowed
/// from the target: a request's query is not copied to be judged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedTarget<'a> {
    /// The canonical path: starts with `/`, no dot segments, no `//`, unreserved characters
    /// decoded, every other escape with uppercase hex.
    pub path: String,
    /// The query as sent, without the `?`; `None` when the target had no `?`.
    pub query: Option<&'a str>,
}

/// Normalizes an origin-form request target (`:path`): drops the fragment, splits off the query
/// and canonicalizes the path, or says why the target is ambiguous (see the module docs).
pub fn normalize_path(raw: &str) -> Result<NormalizedTarget<'_>, Malformed> {
    // Byte searches: `#` and `?` are ASCII, so the offsets are character boundaries.
    let bytes = raw.as_bytes();
    let target_end = bytes.iter().position(|&b| b == b'#').unwrap_or(bytes.len());
    let query_at = bytes[..target_end].iter().position(|&b| b == b'?');
    let path = &raw[..query_at.unwrap_or(target_end)];
    let query = query_at.map(|at| &raw[at + 1..target_end]);
    if !matches!(path.as_bytes().first(), Some(b'/')) {
        return Err(Malformed::NotOriginForm);
    }
    if let Some(query) = query {
        if has_control(query.as_bytes()) {
            return Err(Malformed::NulOrControl);
        }
    }
    Ok(NormalizedTarget {
        path: canonical_path(path)?,
        query,
    })
}

/// Whether UTF-8 text holds a control character (`char::is_control`: C0, DEL, C1), by bytes:
/// a C1 control U+0080..=U+009F is encoded `C2 80`..=`C2 9F`.
fn has_control(text: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        if b < 0x20 || b == 0x7f {
            return true;
        }
        if b == 0xc2 && text.get(i + 1).is_some_and(|&next| next <= 0x9f) {
            return true;
        }
        i += 1;
    }
    false
}

/// Canonicalizes a path that starts with `/`.
fn canonical_path(path: &str) -> Result<String, Malformed> {
    let bytes = path.as_bytes();
    // Decoding only shrinks; only raw characters that must be escaped grow the output. Every
    // byte written is ASCII (anything else is escaped), so the bytes become a `String` at the
    // end without a fault; bytes rather than `char`s because `String::push` encodes each one.
    let mut out = Vec::with_capacity(bytes.len());
    out.push(b'/');
    let mut utf8 = Utf8Validator::default();
    let mut segment = Segment {
        start: 1,
        has_percent_escape: false,
    };
    let mut has_empty_segment = false;
    let mut i = 1;
    loop {
        match bytes.get(i).copied() {
            None => {
                utf8.finish()?;
                segment.finish(&mut out, false, &mut has_empty_segment)?;
                break;
            }
            Some(b'/') => {
                utf8.feed(b'/')?;
                segment.finish(&mut out, true, &mut has_empty_segment)?;
                segment = Segment {
                    start: out.len(),
                    has_percent_escape: false,
                };
                i += 1;
            }
            Some(b'%') => {
                let byte = hex_pair(bytes, i + 1).ok_or(Malformed::InvalidPercentEncoding)?;
                match byte {
                    b'/' => return Err(Malformed::EncodedSlash),
                    b'\\' => return Err(Malformed::EncodedBackslash),
                    _ => {}
                }
                utf8.feed(byte)?;
                if is_unreserved(byte) {
                    out.push(byte);
                } else {
                    segment.has_percent_escape |= byte == b'%';
                    push_escape(&mut out, byte);
                }
                i += 3;
            }
            Some(b'\\') => return Err(Malformed::Backslash),
            Some(byte) if utf8.pending == 0 && is_raw_path_char(byte) => {
                // A run of characters kept as they are, copied at once: outside a multi-byte
                // sequence each is ASCII and no control, so the validator has nothing to say.
                let run = bytes
                    .get(i..)
                    .and_then(|rest| rest.iter().position(|&b| !is_raw_path_char(b)))
                    .map_or(bytes.len(), |n| i + n);
                out.extend_from_slice(&bytes[i..run]);
                i = run;
            }
            Some(byte) => {
                utf8.feed(byte)?;
                if is_raw_path_char(byte) {
                    out.push(byte);
                } else {
                    push_escape(&mut out, byte);
                }
                i += 1;
            }
        }
    }
    if has_empty_segment {
        merge_slashes(&mut out);
    }
    String::from_utf8(out).map_err(|_| Malformed::InvalidUtf8)
}

/// The segment being written at the end of the output buffer.
struct Segment {
    /// Offset in the output where the segment starts (just after its `/`).
    start: usize,
    /// Whether it holds an escaped `%` (`%25`), so a double-encoding check is due.
    has_percent_escape: bool,
}

impl Segment {
    /// Applies dot-segment removal and the per-segment checks once the segment is complete;
    /// `more` says a `/` follows it.
    fn finish(
        &self,
        out: &mut Vec<u8>,
        more: bool,
        has_empty_segment: &mut bool,
    ) -> Result<(), Malformed> {
        let start = self.start;
        let written = &out[start..];
        if self.has_percent_escape {
            check_double_encoding(written)?;
        }
        match written {
            b"" => {
                // Kept for now so that `..` sees RFC 3986's segments; merged at the end.
                if more {
                    out.push(b'/');
                    *has_empty_segment = true;
                }
            }
            b"." => out.truncate(start),
            b".." => {
                out.truncate(start);
                if start > 1 {
                    let parent_end = start - 1;
                    let parent_start = out[..parent_end]
                        .iter()
                        .rposition(|&b| b == b'/')
                        .map_or(0, |slash| slash + 1);
                    if parent_start == parent_end {
                        return Err(Malformed::AmbiguousDotSegment);
                    }
                    out.truncate(parent_start);
                }
            }
            _ => {
                if matches!(written.first(), Some(b'.')) && is_dot_segment_with_parameter(written) {
                    return Err(Malformed::DotSegmentParameter);
                }
                if more {
                    out.push(b'/');
                }
            }
        }
        Ok(())
    }
}

/// Whether a (decoded) segment is `.` or `..` followed by a `;` parameter, raw or as `%3B`.
fn is_dot_segment_with_parameter(segment: &[u8]) -> bool {
    let parameter_at = segment
        .iter()
        .enumerate()
        .find(|&(at, &b)| b == b';' || (b == b'%' && segment.get(at + 1..at + 3) == Some(b"3B")))
        .map(|(at, _)| at);
    matches!(parameter_at.map(|at| &segment[..at]), Some(b"." | b".."))
}

/// Rejects `%25XY` (in the output, where escapes of unreserved characters are already decoded)
/// unless `XY` is the escape of a letter, digit, `-`, `_` or `~`, which stay harmless even for a
/// server that decodes twice.
fn check_double_encoding(segment: &[u8]) -> Result<(), Malformed> {
    for (at, window) in segment.windows(3).enumerate() {
        if window == b"%25" {
            if let Some(inner) = hex_pair(segment, at + 3) {
                if !(inner.is_ascii_alphanumeric() || matches!(inner, b'-' | b'_' | b'~')) {
                    return Err(Malformed::DoubleEncoding);
                }
            }
        }
    }
    Ok(())
}

/// RFC 3986 unreserved characters: decoded wherever they appear escaped.
const fn unreserved_by_rule(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Characters kept raw in a path segment: `pchar` minus `%` (RFC 3986 section 3.3).
const fn raw_path_char_by_rule(b: u8) -> bool {
    unreserved_by_rule(b)
        || matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

/// A set of ASCII bytes as 128 bits, built from a rule at compile time.
type AsciiSet = [u64; 2];

const UNRESERVED: AsciiSet = ascii_set(false);
const RAW_PATH_CHARS: AsciiSet = ascii_set(true);

/// The unreserved characters, or (`raw`) the raw path characters.
const fn ascii_set(raw: bool) -> AsciiSet {
    let mut set = [0; 2];
    let mut b = 0u8;
    while b < 128 {
        let member = if raw {
            raw_path_char_by_rule(b)
        } else {
            unreserved_by_rule(b)
        };
        if member {
            set[(b >> 6) as usize] |= 1 << (b & 63);
        }
        b += 1;
    }
    set
}

/// Whether `b` is in `set`: one shift and mask, inlined into the per-byte loops (the rules'
/// chains of comparisons are calls at opt-level "z").
#[inline(always)]
fn in_set(set: &AsciiSet, b: u8) -> bool {
    set.get(usize::from(b >> 6))
        .is_some_and(|word| word >> (b & 63) & 1 == 1)
}

/// RFC 3986 unreserved characters: decoded wherever they appear escaped.
#[inline(always)]
fn is_unreserved(b: u8) -> bool {
    in_set(&UNRESERVED, b)
}

/// Characters kept raw in a path segment: `pchar` minus `%` (RFC 3986 section 3.3).
#[inline(always)]
fn is_raw_path_char(b: u8) -> bool {
    in_set(&RAW_PATH_CHARS, b)
}

/// Appends `%XY` with uppercase hex.
fn push_escape(out: &mut Vec<u8>, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.extend_from_slice(&[
        b'%',
        HEX[usize::from(byte >> 4)],
        HEX[usize::from(byte & 0x0f)],
    ]);
}

/// Collapses every run of `/` into one, in place.
fn merge_slashes(out: &mut Vec<u8>) {
    out.dedup_by(|b, previous| *b == b'/' && *previous == b'/');
}

/// Streaming UTF-8 validation of the percent-decoded byte sequence, which also rejects the
/// code points no path may carry (C0, DEL, C1).
#[derive(Default)]
struct Utf8Validator {
    /// Continuation bytes still expected.
    pending: u8,
    /// Code point assembled so far.
    code_point: u32,
    /// Allowed range of the next continuation byte (narrowed after E0, ED, F0, F4).
    lower: u8,
    upper: u8,
    /// Whether falling below `lower` means an overlong form (after E0 or F0).
    lower_means_overlong: bool,
}

impl Utf8Validator {
    fn feed(&mut self, byte: u8) -> Result<(), Malformed> {
        if self.pending == 0 {
            let (pending, bits, lower, upper) = match byte {
                0x00..=0x7f => return check_code_point(u32::from(byte)),
                0xc0 | 0xc1 => return Err(Malformed::OverlongUtf8),
                0xc2..=0xdf => (1, byte & 0x1f, 0x80, 0xbf),
                0xe0 => (2, byte & 0x0f, 0xa0, 0xbf),
                0xed => (2, byte & 0x0f, 0x80, 0x9f),
                0xe1..=0xef => (2, byte & 0x0f, 0x80, 0xbf),
                0xf0 => (3, byte & 0x07, 0x90, 0xbf),
                0xf1..=0xf3 => (3, byte & 0x07, 0x80, 0xbf),
                0xf4 => (3, byte & 0x07, 0x80, 0x8f),
                _ => return Err(Malformed::InvalidUtf8),
            };
            *self = Utf8Validator {
                pending,
                code_point: u32::from(bits),
                lower,
                upper,
                lower_means_overlong: matches!(byte, 0xe0 | 0xf0),
            };
            return Ok(());
        }
        if byte < self.lower || byte > self.upper {
            return Err(
                if self.lower_means_overlong && (0x80..self.lower).contains(&byte) {
                    Malformed::OverlongUtf8
                } else {
                    Malformed::InvalidUtf8
                },
            );
        }
        self.code_point = self.code_point << 6 | u32::from(byte & 0x3f);
        self.pending -= 1;
        self.lower = 0x80;
        self.upper = 0xbf;
        self.lower_means_overlong = false;
        if self.pending == 0 {
            check_code_point(self.code_point)?;
        }
        Ok(())
    }

    /// The path must not end inside a multi-byte sequence.
    fn finish(&self) -> Result<(), Malformed> {
        if self.pending == 0 {
            Ok(())
        } else {
            Err(Malformed::InvalidUtf8)
        }
    }
}

/// Rejects C0 controls (NUL included), DEL and C1 controls.
fn check_code_point(code_point: u32) -> Result<(), Malformed> {
    if code_point < 0x20 || (0x7f..=0x9f).contains(&code_point) {
        Err(Malformed::NulOrControl)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod oracle {
    //! The byte-level helpers against what they replaced (`char` iterators, rule chains).
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_control_is_found_by_bytes_as_by_chars() {
        let mut samples: Vec<String> = ["", "page=2&sort=price", "a=\u{7f}", "\u{85}", "\u{9f}x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // Every code point up to U+07FF (every two-byte lead with every continuation) and some
        // beyond, alone and between ASCII.
        for cp in (0..0x800u32).chain([0xa0, 0xff, 0x2028, 0xfeff, 0x1_0000, 0x10_ffff]) {
            if let Some(c) = char::from_u32(cp) {
                samples.push(c.to_string());
                samples.push(format!("a{c}b"));
            }
        }
        for s in &samples {
            assert_eq!(
                has_control(s.as_bytes()),
                s.chars().any(char::is_control),
                "{s:?}"
            );
        }
    }

    #[test]
    fn the_byte_sets_hold_what_their_rules_say() {
        for b in 0..=u8::MAX {
            assert_eq!(is_unreserved(b), unreserved_by_rule(b), "{b:#04x}");
            assert_eq!(is_raw_path_char(b), raw_path_char_by_rule(b), "{b:#04x}");
        }
    }
}
