//! Minifies the built-in rule packs (`src/**/builtin.json`) into `OUT_DIR` for `include_str!`.
//!
//! The packs are kept pretty-printed for review, but the module carries them as text in its data
//! section, and V8 maps every byte of it in every sidecar: dropping the whitespace between tokens
//! saves about 8 KB. Only whitespace outside strings goes; the parser sees the same document.

use std::path::Path;
use std::{env, fs};

const PACKS: [(&str, &str); 2] = [
    ("src/mirror/signatures/builtin.json", "signatures.json"),
    ("src/response/builtin.json", "responses.json"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = env::var("OUT_DIR")?;
    for (source, name) in PACKS {
        println!("cargo::rerun-if-changed={source}");
        let text = fs::read_to_string(source)?;
        fs::write(Path::new(&out_dir).join(name), minify(&text))?;
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
