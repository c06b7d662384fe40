use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn lookups_ignore_ascii_case_and_keep_order() {
    let headers = h(&[("X-Tag", "a"), ("accept", "*/*"), ("x-tag", "b")]);
    assert_eq!(header_value(&headers, "x-tag"), Some("a"));
    assert_eq!(header_value(&headers, "ACCEPT"), Some("*/*"));
    assert_eq!(header_value(&headers, "missing"), None);
    assert_eq!(
        header_values(&headers, "x-tag").collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(header_values(&headers, "missing").count(), 0);
}

#[test]
fn tokens() {
    for ok in ["x-request-id", "GET", "M-SEARCH", "a!#$%&'*+-.^_`|~9"] {
        assert!(is_token(ok), "{ok}");
    }
    for bad in ["", "a b", "a:b", "(x)", "é", "x\n"] {
        assert!(!is_token(bad), "{bad:?}");
    }
}

#[test]
fn authority_split_leniently() {
    assert_eq!(
        split_authority("shop.example.com"),
        ("shop.example.com", None)
    );
    assert_eq!(
        split_authority("shop.example.com:8080"),
        ("shop.example.com", Some("8080"))
    );
    assert_eq!(split_authority("host:"), ("host", Some("")));
    assert_eq!(
        split_authority("[2001:db8::1]:443"),
        ("2001:db8::1", Some("443"))
    );
    assert_eq!(split_authority("[2001:db8::1]"), ("2001:db8::1", None));
    assert_eq!(split_authority("[2001:db8::1"), ("[2001:db8::1", None));
    assert_eq!(
        split_authority("2001:db8::1"),
        ("2001:db8::1", None),
        "unbracketed v6 stays whole"
    );
    assert_eq!(split_authority("host:http"), ("host:http", None));
    assert_eq!(split_authority(""), ("", None));
}

#[test]
fn credential_and_hop_by_hop_lists() {
    for name in [
        "authorization",
        "Cookie",
        "PROXY-AUTHORIZATION",
        "set-cookie",
    ] {
        assert!(is_credential_header(name), "{name}");
    }
    assert!(!is_credential_header("x-api-key-hint"));
    for name in [
        "connection",
        "Transfer-Encoding",
        "te",
        "upgrade",
        "content-length",
    ] {
        assert!(is_hop_by_hop_header(name), "{name}");
    }
    assert!(!is_hop_by_hop_header("content-type"));
    // The two lists are disjoint and lowercase.
    for name in CREDENTIAL_HEADERS.iter().chain(HOP_BY_HOP_HEADERS.iter()) {
        assert_eq!(*name, name.to_ascii_lowercase());
    }
    assert!(!CREDENTIAL_HEADERS.iter().any(|c| is_hop_by_hop_header(c)));
}

/// A header map serialized as proxy-wasm's `proxy_get_header_map_pairs` returns it.
fn wire(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
    for (n, v) in pairs {
        out.extend_from_slice(&(n.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (n, v) in pairs {
        out.extend_from_slice(n);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

#[test]
fn a_block_reads_the_hosts_serialization_in_order() {
    let block = HeaderBlock::from_wire(wire(&[
        (b":method", b"GET"),
        (b":path", b"/a?b=1"),
        (b"x-empty", b""),
        (b"accept", b"*/*"),
        (b"X-Tag", b"a"),
        (b"x-tag", b"b"),
    ]));
    assert_eq!(block.len(), 6);
    assert_eq!(
        block.iter().collect::<Vec<_>>(),
        [
            (":method", "GET"),
            (":path", "/a?b=1"),
            ("x-empty", ""),
            ("accept", "*/*"),
            ("X-Tag", "a"),
            ("x-tag", "b")
        ]
    );
    assert_eq!(block.value("x-tag"), Some("a"));
    assert_eq!(block.values("X-TAG").collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(block.value("missing"), None);
    assert_eq!(block.get(2), Some(("x-empty", "")));
    assert_eq!(block.get(6), None);
    assert_eq!(
        block.names().collect::<Vec<_>>(),
        [":method", ":path", "x-empty", "accept", "X-Tag", "x-tag"]
    );
    // The same pairs packed by hand give the same block contents.
    let packed: HeaderBlock = block.to_pairs().into();
    assert_eq!(
        packed.iter().collect::<Vec<_>>(),
        block.iter().collect::<Vec<_>>()
    );
    assert_eq!(HeaderBlock::from_wire(wire(&[])), HeaderBlock::default());
}

#[test]
fn a_block_replaces_invalid_utf8_and_never_aborts() {
    let block = HeaderBlock::from_wire(wire(&[
        (b"user-agent", b"ok"),
        (b"x-bin", b"a\xff\xfeb"),
        (b"\xc3", b"v"),
        (b"accept", b"*/*"),
    ]));
    assert_eq!(
        block.iter().collect::<Vec<_>>(),
        [
            ("user-agent", "ok"),
            ("x-bin", "a\u{fffd}\u{fffd}b"),
            ("\u{fffd}", "v"),
            ("accept", "*/*")
        ]
    );
}

#[test]
fn a_truncated_or_inconsistent_block_keeps_the_pairs_before_the_fault() {
    let full = wire(&[(b"a", b"1"), (b"bb", b"22"), (b"ccc", b"333")]);
    // Cut inside the last value: the first two pairs stand.
    let cut = full[..full.len() - 3].to_vec();
    assert_eq!(
        HeaderBlock::from_wire(cut).iter().collect::<Vec<_>>(),
        [("a", "1"), ("bb", "22")]
    );
    // A count far beyond the buffer, lengths past its end, or no buffer at all.
    let mut huge = full.clone();
    huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(HeaderBlock::from_wire(huge).len() <= 3);
    let mut long = full.clone();
    long[4..8].copy_from_slice(&1_000_000u32.to_le_bytes());
    assert!(HeaderBlock::from_wire(long).is_empty());
    assert!(HeaderBlock::from_wire(Vec::new()).is_empty());
    assert!(HeaderBlock::from_wire(vec![1, 0]).is_empty());
}

/// A small deterministic generator (xorshift), so the randomized tests below repeat exactly.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Up to `max_pairs - 1` pairs of bytes drawn from `alphabet`, each name shorter than
/// `max_len.0` and each value shorter than `max_len.1`.
fn random_pairs(
    seed: &mut u64,
    alphabet: &[u8],
    max_pairs: u64,
    max_len: (u64, u64),
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let n = xorshift(seed) % max_pairs;
    let mut text = |max: u64| {
        let len = xorshift(seed) % max;
        (0..len)
            .map(|_| alphabet[(xorshift(seed) % alphabet.len() as u64) as usize])
            .collect::<Vec<u8>>()
    };
    (0..n).map(|_| (text(max_len.0), text(max_len.1))).collect()
}

#[test]
fn any_pairs_survive_the_wire_and_any_bytes_never_panic() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let alphabet: &[u8] = b"abcXYZ-:_ ${}%/\\\"\xc3\xa9\xff\x80\x01";
    for round in 0..2000 {
        let pairs = random_pairs(&mut seed, alphabet, 12, (10, 40));
        let n = pairs.len();
        let refs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(n, v)| (&n[..], &v[..])).collect();
        let bytes = wire(&refs);
        let block = HeaderBlock::from_wire(bytes.clone());
        let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let want: Vec<(String, String)> = pairs.iter().map(|(n, v)| (lossy(n), lossy(v))).collect();
        assert_eq!(block.to_pairs(), want, "round {round}");
        // Any cut and any flipped byte of a valid buffer: no panic, and never more pairs than
        // were written.
        let cut = (xorshift(&mut seed) as usize) % (bytes.len() + 1);
        assert!(HeaderBlock::from_wire(bytes[..cut].to_vec()).len() <= n);
        let mut flipped = bytes.clone();
        let at = (xorshift(&mut seed) as usize) % flipped.len();
        flipped[at] ^= (xorshift(&mut seed) as u8) | 1;
        let _ = HeaderBlock::from_wire(flipped).iter().count();
    }
}

/// `from_wire` as it was written, one `push` per pair: the oracle for the extended spans.
fn from_wire_pushed(mut bytes: Vec<u8>) -> HeaderBlock {
    let u32_at = |b: &[u8], at: usize| -> Option<usize> {
        let four: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(four)).ok()
    };
    let count = u32_at(&bytes, 0).unwrap_or(0);
    let Some(data) = count.checked_mul(8).and_then(|n| n.checked_add(4)) else {
        return HeaderBlock::default();
    };
    let mut spans = Vec::new();
    let mut at = 0usize;
    let body = bytes.len().saturating_sub(data);
    for i in 0..count {
        let (Some(n), Some(v)) = (u32_at(&bytes, 4 + i * 8), u32_at(&bytes, 8 + i * 8)) else {
            break;
        };
        let name_end = at.saturating_add(n);
        let value_start = name_end.saturating_add(1);
        let value_end = value_start.saturating_add(v);
        if value_end >= body {
            break;
        }
        let (Ok(a), Ok(b), Ok(c), Ok(d)) = (
            u32::try_from(at),
            u32::try_from(name_end),
            u32::try_from(value_start),
            u32::try_from(value_end),
        ) else {
            break;
        };
        spans.push(PairSpan([a, b, c, d]));
        at = value_end + 1;
    }
    bytes.drain(..data.min(bytes.len()));
    match String::from_utf8(bytes) {
        Ok(text) => HeaderBlock { text, spans },
        Err(e) => {
            let bytes = e.into_bytes();
            let lossy = |from: u32, to: u32| {
                String::from_utf8_lossy(bytes.get(from as usize..to as usize).unwrap_or(&[]))
                    .into_owned()
            };
            spans
                .iter()
                .map(|PairSpan([a, b, c, d])| (lossy(*a, *b), lossy(*c, *d)))
                .collect()
        }
    }
}

#[test]
fn the_extended_spans_are_the_pushed_ones() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let alphabet: &[u8] = b"abc:-\xc3\xa9\xff\x00";
    for round in 0..3000 {
        let pairs = random_pairs(&mut seed, alphabet, 16, (6, 20));
        let refs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(n, v)| (&n[..], &v[..])).collect();
        let bytes = wire(&refs);
        let mut cases = vec![bytes.clone()];
        let cut = (xorshift(&mut seed) as usize) % (bytes.len() + 1);
        cases.push(bytes[..cut].to_vec());
        let mut flipped = bytes.clone();
        let at = (xorshift(&mut seed) as usize) % flipped.len();
        flipped[at] ^= (xorshift(&mut seed) as u8) | 1;
        cases.push(flipped);
        for case in cases {
            assert_eq!(
                HeaderBlock::from_wire(case.clone()),
                from_wire_pushed(case.clone()),
                "round {round}: {case:?}"
            );
        }
    }
}
