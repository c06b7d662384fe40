//! The secrets a response may carry, found by shape so that they never leave the sidecar: the
//! record and the copy name a secret's kind, where it was and a short hash of it
//! ([`short_hash`]), and the copy's body excerpt has every secret replaced by that name
//! ([`mask`]). Shapes: PEM private-key material, JWTs, AWS key ids, JSON string values and
//! `key = value` lines under credential names. A value cut off by the scan bound is masked to
//! the end of what was read.

use crate::stable_sort::stable_sort_by;

/// One secret inside a text: its byte range and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretSpan {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// What it is (`private_key`, `jwt`, `aws_access_key_id`, or the credential's field name).
    pub kind: &'static str,
}

/// JSON keys (lower-case) whose string values are credentials.
const JSON_KEYS: &[&str] = &[
    "secretaccesskey",
    "token",
    "sessiontoken",
    "accesskeyid",
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "private_key",
    "password",
    "secret",
];

/// `key = value` names (lower-case) of credential files and environment dumps.
const LINE_KEYS: &[&str] = &[
    "aws_secret_access_key",
    "aws_session_token",
    "aws_security_token",
    "aws_access_key_id",
];

/// Every secret in `text`, in order, without overlaps.
pub fn spans(text: &[u8]) -> Vec<SecretSpan> {
    let mut found = Vec::new();
    pem_spans(text, &mut found);
    jwt_spans(text, &mut found);
    json_spans(text, &mut found);
    line_spans(text, &mut found);
    key_id_spans(text, &mut found);
    // By start, the longest first where two start together.
    stable_sort_by(&mut found, |a, b| (a.start, b.end) < (b.start, a.end));
    let mut merged: Vec<SecretSpan> = Vec::with_capacity(found.len());
    for s in found {
        match merged.last_mut() {
            Some(last) if s.start < last.end => last.end = last.end.max(s.end),
            _ => merged.push(s),
        }
    }
    merged
}

/// `text` with every secret replaced by `<masked kind sha256:xxxxxxxxxxxx>`.
pub fn mask(text: &[u8]) -> Vec<u8> {
    let spans = spans(text);
    if spans.is_empty() {
        return text.to_vec();
    }
    let mut out = Vec::with_capacity(text.len());
    let mut at = 0;
    for s in &spans {
        out.extend_from_slice(text.get(at..s.start).unwrap_or_default());
        let secret = text.get(s.start..s.end).unwrap_or_default();
        out.extend_from_slice(
            format!("<masked {} sha256:{}>", s.kind, short_hash(secret)).as_bytes(),
        );
        at = s.end;
    }
    out.extend_from_slice(text.get(at..).unwrap_or_default());
    out
}

/// The first 12 hex digits of the secret's SHA-256: enough to tell two leaks of the same key
/// apart from two different keys, never enough to recover it.
pub fn short_hash(secret: &[u8]) -> String {
    let digest = sha256(secret);
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn find_from(text: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    text.get(from..)?
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
        .map(|p| p + from)
}

fn pem_spans(text: &[u8], out: &mut Vec<SecretSpan>) {
    let mut from = 0;
    while let Some(begin) = find_from(text, from, b"-----BEGIN ") {
        let Some(head_end) = find_from(text, begin + 11, b"-----") else {
            return;
        };
        let label = text.get(begin + 11..head_end).unwrap_or_default();
        let body = head_end + 5;
        if !label.ends_with(b"PRIVATE KEY") {
            from = body;
            continue;
        }
        let end = find_from(text, body, b"-----END").unwrap_or(text.len());
        out.push(SecretSpan {
            start: body,
            end,
            kind: "private_key",
        });
        from = end.max(body);
    }
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn jwt_spans(text: &[u8], out: &mut Vec<SecretSpan>) {
    let mut from = 0;
    while let Some(start) = find_from(text, from, b"eyJ") {
        let mut end = start;
        let mut dots = 0;
        while let Some(&b) = text.get(end) {
            if is_b64url(b) || b == b'=' {
                end += 1;
            } else if b == b'.' && dots < 2 {
                dots += 1;
                end += 1;
            } else {
                break;
            }
        }
        if dots >= 1 && end - start >= 16 {
            out.push(SecretSpan {
                start,
                end,
                kind: "jwt",
            });
        }
        from = end.max(start + 3);
    }
}

fn json_spans(text: &[u8], out: &mut Vec<SecretSpan>) {
    let mut i = 0;
    while let Some(q) = text
        .get(i..)
        .and_then(|t| t.iter().position(|&b| b == b'"'))
    {
        let key_start = i + q + 1;
        let Some(key_len) = text
            .get(key_start..)
            .and_then(|t| t.iter().position(|&b| b == b'"'))
        else {
            return;
        };
        let key_end = key_start + key_len;
        let key = text.get(key_start..key_end).unwrap_or_default();
        i = key_end + 1;
        let Some(kind) = JSON_KEYS
            .iter()
            .find(|k| key.eq_ignore_ascii_case(k.as_bytes()))
        else {
            continue;
        };
        let mut v = key_end + 1;
        while text.get(v).is_some_and(|b| b.is_ascii_whitespace()) {
            v += 1;
        }
        if text.get(v) != Some(&b':') {
            continue;
        }
        v += 1;
        while text.get(v).is_some_and(|b| b.is_ascii_whitespace()) {
            v += 1;
        }
        if text.get(v) != Some(&b'"') {
            continue;
        }
        let start = v + 1;
        let mut end = start;
        while let Some(&b) = text.get(end) {
            match b {
                b'\\' => end += 2,
                b'"' => break,
                _ => end += 1,
            }
        }
        let end = end.min(text.len());
        if end > start {
            out.push(SecretSpan { start, end, kind });
        }
        i = end + 1;
    }
}

fn line_spans(text: &[u8], out: &mut Vec<SecretSpan>) {
    for kind in LINE_KEYS {
        let mut from = 0;
        while let Some(at) = find_from(text, from, kind.as_bytes()) {
            let mut v = at + kind.len();
            from = v;
            while text.get(v).is_some_and(|b| *b == b' ' || *b == b'\t') {
                v += 1;
            }
            if !matches!(text.get(v), Some(b'=' | b':')) {
                continue;
            }
            v += 1;
            while text
                .get(v)
                .is_some_and(|b| matches!(b, b' ' | b'\t' | b'"' | b'\''))
            {
                v += 1;
            }
            let start = v;
            while text.get(v).is_some_and(|b| {
                !b.is_ascii_whitespace() && !matches!(b, b'"' | b'\'' | b'&' | b',')
            }) {
                v += 1;
            }
            if v > start {
                out.push(SecretSpan {
                    start,
                    end: v,
                    kind,
                });
            }
            from = v.max(from);
        }
    }
}

fn key_id_spans(text: &[u8], out: &mut Vec<SecretSpan>) {
    for prefix in [b"AKIA", b"ASIA"] {
        let mut from = 0;
        while let Some(at) = text
            .get(from..)
            .and_then(|t| t.windows(4).position(|w| w == prefix))
        {
            let start = from + at;
            let id = text.get(start + 4..start + 20);
            if id.is_some_and(|id| {
                id.iter()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            }) {
                out.push(SecretSpan {
                    start,
                    end: start + 20,
                    kind: "aws_access_key_id",
                });
            }
            from = start + 4;
        }
    }
}

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// SHA-256 (FIPS 180-4); the crate carries no hash dependency for this one use.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            if let (Some(slot), Ok(bytes)) = (w.get_mut(i), <[u8; 4]>::try_from(word)) {
                *slot = u32::from_be_bytes(bytes);
            }
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for (k, wi) in K.iter().zip(w.iter()) {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(*k)
                .wrapping_add(*wi);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (slot, v) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *slot = slot.wrapping_add(v);
        }
    }
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}
