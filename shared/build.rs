//! Minifies the built-in rule packs (`src/**/builtin.json`) into `OUT_DIR`, as text
//! (`<name>.json`, for `include_str!`) and deflated (`<name>.json.deflate`, for `include_bytes!`).
//!
//! The packs are kept pretty-printed for review, but the module carries them in its data section,
//! and V8 maps every byte of it in every sidecar: dropping the whitespace between tokens saved
//! about 8 KB, deflating the minified text about 15 KB more (21,227 -> about 5,700 bytes). Only
//! whitespace outside strings goes; the parser sees the same document. The module inflates a pack
//! once per configure with the inflater it already links for request bodies
//! (`mirror::decode::inflate`); the text form serves tools and tests.
//!
//! The copy is a raw deflate stream (no zlib or gzip wrapper: no header, no checksum the inflater
//! would skip anyway, no timestamp or file name), so its bytes depend only on the source, the
//! fixed level and the pinned `miniz_oxide`: a build from any clone ships the same module. A
//! deflate block header (final bit set, or a compressed block type) never passes the inflater's
//! zlib-header sniffing; the tests check that each copy inflates to its text.

use std::path::Path;
use std::{env, fs};

/// miniz_oxide's best level (its own "uber" mode, past zlib's 9), fixed for reproducible bytes.
const LEVEL: u8 = 10;

const PACKS: [(&str, &str); 2] = [
    ("src/mirror/signatures/builtin.json", "signatures.json"),
    ("src/response/builtin.json", "responses.json"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = env::var("OUT_DIR")?;
    for (source, name) in PACKS {
        println!("cargo::rerun-if-changed={source}");
        let text = fs::read_to_string(source)?;
        let minified = minify(&text);
        let deflated = miniz_oxide::deflate::compress_to_vec(minified.as_bytes(), LEVEL);
        fs::write(Path::new(&out_dir).join(name), &minified)?;
        fs::write(
            Path::new(&out_dir).join(format!("{name}.deflate")),
            deflated,
        )?;
    }
    Ok(())
}

/// `text` without the whitespace between JSON tokens (strings, escapes included, kept as written).
fn minify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    out
}
