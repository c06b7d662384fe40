//! Tests of the built-in packs' compiled-in form: the module carries them deflated and inflates
//! them at configure time, so the inflated text must be the minified text byte for byte, and a
//! broken copy must be a clear configure error, never a panic.

use super::{inflate_builtin, load_builtin, Pack, BUILTIN_PACK, BUILTIN_PACK_DEFLATED};
use crate::response::{builtin_pack, BUILTIN_RESPONSE_PACK, BUILTIN_RESPONSE_PACK_DEFLATED};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// Each built-in pack: its deflated copy, its minified text and the path its errors carry.
const PACKS: [(&[u8], &str, &str); 2] = [
    (BUILTIN_PACK_DEFLATED, BUILTIN_PACK, "<built-in pack>"),
    (
        BUILTIN_RESPONSE_PACK_DEFLATED,
        BUILTIN_RESPONSE_PACK,
        "<built-in response pack>",
    ),
];

#[test]
fn built_in_packs_inflate_to_their_minified_text_byte_for_byte() {
    for (deflated, text, name) in PACKS {
        let inflated =
            inflate_builtin(deflated, text.len(), name).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            inflated == text.as_bytes(),
            "{name} inflates to other bytes"
        );
        // The point of carrying it deflated: well under half the text (about a quarter and a third).
        assert!(
            deflated.len() * 2 < text.len(),
            "{name}: {} bytes",
            deflated.len()
        );
    }
}

#[test]
fn built_in_packs_load_the_same_rules_as_their_text() {
    let from_text = |text: &str| Pack::from_json(text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let builtin = Pack::builtin().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(builtin, from_text(BUILTIN_PACK));
    assert_eq!(builtin.name, "meshsight-builtin");
    let responses = builtin_pack().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(responses, from_text(BUILTIN_RESPONSE_PACK));
    assert_eq!(responses.name, "meshsight-builtin-responses");
}

#[test]
fn a_cut_or_broken_copy_is_a_configure_error_at_the_pack() {
    for (deflated, text, name) in PACKS {
        let half = deflated.get(..deflated.len() / 2).unwrap_or_default();
        let mut block = deflated.to_vec();
        // The first byte opens the first deflate block: block type 3 is reserved, no block.
        block[0] |= 0b110;
        for broken in [&[][..], half, &block] {
            let e = load_builtin(broken, text.len(), name).unwrap_err();
            assert_eq!(e.path, name);
            assert!(e.reason.starts_with("does not inflate ("), "{e}");
            assert!(
                e.reason.ends_with(&format!(" of {} bytes)", text.len())),
                "{e}"
            );
        }
        // A copy that decodes to another length than the text it was built from.
        let e = load_builtin(deflated, text.len() + 1, name).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{name}: does not inflate ({} of {} bytes)",
                text.len(),
                text.len() + 1
            )
        );
    }
}

/// Any one byte flipped in a copy: an error under the pack's name (the stream, or the JSON it
/// decodes to, at its path), or a pack when the flip decodes to other text of the same length
/// that is still a valid pack (a raw stream carries no checksum). Never a panic.
#[test]
fn any_flipped_byte_in_a_copy_is_an_error_at_the_pack_or_harmless() {
    for (deflated, text, name) in PACKS {
        let mut errors = 0;
        for at in 0..deflated.len() {
            let mut copy = deflated.to_vec();
            copy[at] ^= 0x5a;
            match load_builtin(&copy, text.len(), name) {
                Err(e) => {
                    errors += 1;
                    assert!(e.path.starts_with(name), "byte {at}: {e}");
                }
                Ok(pack) => assert!(!pack.rules.is_empty(), "byte {at}"),
            }
        }
        assert!(errors * 10 > deflated.len() * 9, "{name}: {errors} errors");
    }
}
