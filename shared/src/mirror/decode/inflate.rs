//! Bounded inflation of `gzip` and `deflate` bodies, so that signatures read what the backend
//! will read.
//!
//! An attacker picks the encoding: a body the sidecar forwards compressed is decompressed by the
//! backend, so the scan must see it decompressed too. A decompression bomb must not cost the
//! sidecar more than the scan already allows: the output is at most the caller's budget (the
//! scan's `max_body_bytes`) and at most [`MAX_RATIO`] times the input, grown only as the
//! stream produces it. A stream that ends early because the caller cut the input is
//! [`Outcome::Truncated`]; one that does not decode is [`Outcome::Broken`]. Nothing here fails a
//! request. Written for request bodies and usable as is for response bodies.

use miniz_oxide::inflate::core::inflate_flags::{
    TINFL_FLAG_HAS_MORE_INPUT, TINFL_FLAG_IGNORE_ADLER32, TINFL_FLAG_PARSE_ZLIB_HEADER,
    TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
};
use miniz_oxide::inflate::core::{decompress, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;

/// Most output bytes per input byte (a 1000:1 bomb stops here; ordinary JSON and text compress
/// 3-20:1, highly repetitive logs rarely past 100:1).
pub const MAX_RATIO: usize = 100;
/// Output always allowed, whatever the ratio (a tiny stream of a short, repetitive body).
pub const MIN_ALLOWANCE: usize = 4096;

/// A compressed content coding this module undoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// `gzip` / `x-gzip` (RFC 1952).
    Gzip,
    /// `deflate`: zlib (RFC 1950) as HTTP says, or raw deflate as some clients send.
    Deflate,
}

impl Coding {
    /// The coding a `content-encoding` value names, when it is one coding this module undoes
    /// (`identity`, `br`, unknown codings and lists of several codings are not).
    pub fn of_header(value: &str) -> Option<Coding> {
        let v = value.trim();
        if v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip") {
            Some(Coding::Gzip)
        } else if v.eq_ignore_ascii_case("deflate") {
            Some(Coding::Deflate)
        } else {
            None
        }
    }
}

/// How inflation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The whole stream decoded.
    Complete,
    /// The input ended inside the stream (the caller may have cut it).
    Truncated,
    /// The budget stopped it at an ordinary ratio (like a body cut at the scan's limit); the
    /// output is what came before.
    Capped,
    /// The budget or the ratio cap stopped it past [`MAX_RATIO`] output bytes per input byte
    /// read: a decompression bomb. The output is what came before.
    Bomb,
    /// The stream does not decode (bad header, bad block, bad checksum); the output is what came
    /// before the fault.
    Broken,
}

/// Inflated bytes and how inflation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inflated {
    /// Output, at most the budget.
    pub bytes: Vec<u8>,
    /// How it ended.
    pub outcome: Outcome,
}

/// Inflates `input` in `coding`, writing at most `max_out` bytes (and at most [`MAX_RATIO`]
/// times the input, but never less than [`MIN_ALLOWANCE`] under `max_out`).
pub fn inflate(coding: Coding, input: &[u8], max_out: usize) -> Inflated {
    let cap = max_out.min(input.len().saturating_mul(MAX_RATIO).max(MIN_ALLOWANCE));
    let (stream, zlib) = match coding {
        Coding::Gzip => match gzip_payload(input) {
            Some(body) => (body, false),
            None => {
                return Inflated {
                    bytes: Vec::new(),
                    outcome: if input.len() < 10 {
                        Outcome::Truncated
                    } else {
                        Outcome::Broken
                    },
                }
            }
        },
        Coding::Deflate => (input, is_zlib_header(input)),
    };
    let mut flags = TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF | TINFL_FLAG_HAS_MORE_INPUT;
    if zlib {
        // The checksum is the backend's business; a body cut at the scan limit never has one.
        flags |= TINFL_FLAG_PARSE_ZLIB_HEADER | TINFL_FLAG_IGNORE_ADLER32;
    }
    let mut state = Box::<DecompressorOxide>::default();
    // Grow with the stream, so an ordinary small body never allocates the whole budget.
    let mut out = vec![0u8; cap.min(stream.len().saturating_mul(4).max(1024))];
    let mut in_pos = 0;
    let mut out_pos = 0;
    let outcome = loop {
        let (status, read, written) = decompress(
            &mut state,
            stream.get(in_pos..).unwrap_or_default(),
            &mut out,
            out_pos,
            flags,
        );
        in_pos += read;
        out_pos += written;
        match status {
            TINFLStatus::Done => break Outcome::Complete,
            TINFLStatus::NeedsMoreInput => break Outcome::Truncated,
            TINFLStatus::HasMoreOutput => {
                if out.len() >= cap {
                    break if out_pos >= in_pos.max(1).saturating_mul(MAX_RATIO) {
                        Outcome::Bomb
                    } else {
                        Outcome::Capped
                    };
                }
                let grown = out.len().saturating_mul(2).min(cap);
                out.resize(grown, 0);
            }
            _ => break Outcome::Broken,
        }
    };
    out.truncate(out_pos);
    Inflated {
        bytes: out,
        outcome,
    }
}

/// Whether `input` opens with a zlib header (deflate method, a valid check).
fn is_zlib_header(input: &[u8]) -> bool {
    match input {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

/// The deflate stream of a gzip member (RFC 1952 header skipped; the trailer, when there, is
/// left after the stream and not read); `None` when the header is not gzip or is cut.
fn gzip_payload(input: &[u8]) -> Option<&[u8]> {
    const FHCRC: u8 = 2;
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    let (&[0x1f, 0x8b, 8, flags], _) = input.split_first_chunk::<4>()? else {
        return None;
    };
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let len = input.get(at..at + 2)?;
        at += 2 + usize::from(u16::from_le_bytes([len[0], len[1]]));
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            at += input.get(at..)?.iter().position(|b| *b == 0)? + 1;
        }
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    input.get(at..)
}

#[cfg(test)]
mod tests {
    use super::*;
    use miniz_oxide::deflate::{compress_to_vec, compress_to_vec_zlib};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// A gzip member of `data` (no file name, unknown OS), with its trailer.
    pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
        let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
        out.extend(compress_to_vec(data, 6));
        out.extend([0u8; 8]);
        out
    }

    #[test]
    fn gzip_deflate_and_raw_deflate_inflate_whole() {
        let text = br#"{"user":"${jndi:ldap://x/a}","note":"hello hello hello"}"#;
        let g = inflate(Coding::Gzip, &gzip(text), 16384);
        assert_eq!(
            (g.bytes.as_slice(), g.outcome),
            (&text[..], Outcome::Complete)
        );
        let z = inflate(Coding::Deflate, &compress_to_vec_zlib(text, 6), 16384);
        assert_eq!(
            (z.bytes.as_slice(), z.outcome),
            (&text[..], Outcome::Complete)
        );
        let raw = inflate(Coding::Deflate, &compress_to_vec(text, 6), 16384);
        assert_eq!(raw.bytes, text);
    }

    #[test]
    fn gzip_header_fields_are_skipped() {
        let mut member = vec![
            0x1f,
            0x8b,
            8,
            4 | 8 | 16,
            0,
            0,
            0,
            0,
            0,
            3,
            2,
            0,
            b'x',
            b'y',
        ];
        member.extend(b"name.json\0a comment\0");
        member.extend(compress_to_vec(b"payload", 6));
        assert_eq!(inflate(Coding::Gzip, &member, 100).bytes, b"payload");
    }

    #[test]
    fn a_bomb_costs_at_most_the_budget() {
        // 1 MiB of zeros in about 1 KiB: a 1000:1 bomb.
        let bomb = gzip(&vec![0u8; 1 << 20]);
        assert!(bomb.len() < 1100, "{}", bomb.len());
        let out = inflate(Coding::Gzip, &bomb, 16384);
        assert_eq!((out.bytes.len(), out.outcome), (16384, Outcome::Bomb));
        // The ratio caps what a large budget would let through.
        let out = inflate(Coding::Gzip, &bomb, 1 << 20);
        assert_eq!(out.outcome, Outcome::Bomb);
        assert_eq!(out.bytes.len(), bomb.len() * MAX_RATIO);
    }

    #[test]
    fn an_ordinary_body_past_the_budget_is_capped_not_a_bomb() {
        let text: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("{i:x},").into_bytes())
            .collect();
        let out = inflate(Coding::Gzip, &gzip(&text), 4096);
        assert_eq!(
            (out.bytes.as_slice(), out.outcome),
            (&text[..4096], Outcome::Capped)
        );
    }

    #[test]
    fn truncated_and_broken_streams_are_told_apart_without_panic() {
        let whole = gzip(b"some ordinary text, some ordinary text, and more of it");
        let cut = inflate(Coding::Gzip, &whole[..whole.len() / 2], 16384);
        assert_eq!(cut.outcome, Outcome::Truncated);
        for n in 0..10 {
            assert_eq!(
                inflate(Coding::Gzip, &whole[..n], 16384).outcome,
                Outcome::Truncated
            );
        }
        let mut bad = whole.clone();
        bad[10] = 0xff; // a reserved block type
        assert_eq!(inflate(Coding::Gzip, &bad, 16384).outcome, Outcome::Broken);
        assert_eq!(
            inflate(Coding::Gzip, b"not gzip at all", 16384).outcome,
            Outcome::Broken
        );
        assert_eq!(
            inflate(Coding::Deflate, &[0xff; 64], 16384).outcome,
            Outcome::Broken
        );
    }

    #[test]
    fn content_encoding_values() {
        assert_eq!(Coding::of_header(" GZIP "), Some(Coding::Gzip));
        assert_eq!(Coding::of_header("x-gzip"), Some(Coding::Gzip));
        assert_eq!(Coding::of_header("deflate"), Some(Coding::Deflate));
        assert_eq!(Coding::of_header("br"), None);
        assert_eq!(Coding::of_header("gzip, br"), None);
        assert_eq!(Coding::of_header("identity"), None);
    }
}
