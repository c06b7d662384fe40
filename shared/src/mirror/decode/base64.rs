//! Lenient base64, for the values a backend decodes before it logs or evaluates them: `Basic`
//! credentials (Log4j logs user names) and, when switched on, parameter values.
//!
//! Both alphabets (standard and URL-safe) are read, padding is optional; any other byte makes
//! the value not base64. The output is bounded by the caller.

/// The 6-bit value of a base64 digit of either alphabet.
fn digit(b: u8) -> Option<u32> {
    let v = match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes `input` (surrounding whitespace and trailing `=` ignored), at most `max_out` bytes
/// of output (longer input is read only that far); `None` when a byte is not base64 or a
/// single digit is left over.
pub fn decode(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    let body = input.trim_ascii();
    let end = body.iter().rposition(|b| *b != b'=').map_or(0, |p| p + 1);
    let digits = body.get(..end)?;
    if body.len() - end > 2 || digits.len() % 4 == 1 {
        return None;
    }
    let digits = digits.get(..digits.len().min(max_out.div_ceil(3).saturating_mul(4)))?;
    let mut out = Vec::with_capacity(digits.len() / 4 * 3 + 2);
    for chunk in digits.chunks(4) {
        let mut acc = 0u32;
        for b in chunk {
            acc = acc << 6 | digit(*b)?;
        }
        acc <<= 6 * (4 - chunk.len() as u32);
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(bytes.get(1..chunk.len())?);
    }
    out.truncate(max_out);
    Some(out)
}

/// The decoded `user:password` of an `authorization: Basic ...` value (kept whole: a user name
/// carrying `:`, as a Log4Shell lookup does, would be cut by splitting); `None` when the value
/// is another scheme, `Err(())` when it is `Basic` but not base64.
#[allow(clippy::result_unit_err)]
pub fn basic_credentials(value: &str, max_out: usize) -> Option<Result<Vec<u8>, ()>> {
    let value = value.trim_start();
    let (scheme, rest) = value.split_at_checked(5)?;
    if !scheme.eq_ignore_ascii_case("basic") || !rest.starts_with([' ', '\t']) {
        return None;
    }
    Some(decode(rest.as_bytes(), max_out).ok_or(()))
}

/// The user and the password of decoded `user:password` credentials, split at the first `:`
/// as RFC 7617 says (the password empty without one).
pub fn split_credentials(decoded: &[u8]) -> (&[u8], &[u8]) {
    match decoded.iter().position(|b| *b == b':') {
        Some(at) => (&decoded[..at], &decoded[at + 1..]),
        None => (decoded, &[]),
    }
}

/// Whether a parameter value plausibly is base64 of text (long enough, base64 digits only,
/// not a plain word or number): the test the bounded base64 view of parameters applies.
pub fn looks_like_base64(value: &[u8]) -> bool {
    let v = value.trim_ascii();
    let digits = v.iter().rposition(|b| *b != b'=').map_or(0, |p| p + 1);
    let mixed = v.iter().any(u8::is_ascii_digit)
        || (v.iter().any(u8::is_ascii_uppercase) && v.iter().any(u8::is_ascii_lowercase));
    v.len() >= 16 && digits % 4 != 1 && v[..digits].iter().all(|b| digit(*b).is_some()) && mixed
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn decodes_both_alphabets_with_or_without_padding() {
        assert_eq!(decode(b"aGVsbG8=", 100).unwrap(), b"hello");
        assert_eq!(decode(b"aGVsbG8", 100).unwrap(), b"hello");
        assert_eq!(decode(b"  aGk=  ", 100).unwrap(), b"hi");
        assert_eq!(decode(b"-_-_", 100).unwrap(), [0xfb, 0xff, 0xbf]);
        assert_eq!(decode(b"+/+/", 100).unwrap(), [0xfb, 0xff, 0xbf]);
        assert_eq!(decode(b"", 100).unwrap(), b"");
    }

    #[test]
    fn invalid_base64_is_none_not_a_panic() {
        for bad in [
            &b"a"[..],
            b"abcde",
            b"ab$d",
            b"ab=d",
            b"aGk===",
            b"\xff\xfe",
            b"====",
        ] {
            assert_eq!(decode(bad, 100), None, "{bad:?}");
        }
    }

    #[test]
    fn output_is_bounded() {
        let long = "QUFB".repeat(10_000);
        assert_eq!(decode(long.as_bytes(), 10).unwrap(), b"AAAAAAAAAA");
    }

    #[test]
    fn basic_credentials_are_decoded_whole_and_split_at_the_first_colon() {
        // "${jndi:ldap://x/a}:pw"
        let whole = basic_credentials("Basic JHtqbmRpOmxkYXA6Ly94L2F9OnB3", 4096)
            .unwrap()
            .unwrap();
        assert_eq!(whole, b"${jndi:ldap://x/a}:pw");
        assert_eq!(
            split_credentials(&whole),
            (&b"${jndi"[..], &b"ldap://x/a}:pw"[..])
        );
        let alice = basic_credentials("basic YWxpY2U6czNjcjN0", 4096)
            .unwrap()
            .unwrap();
        assert_eq!(split_credentials(&alice), (&b"alice"[..], &b"s3cr3t"[..]));
        assert_eq!(split_credentials(b"bob"), (&b"bob"[..], &b""[..]));
        assert_eq!(basic_credentials("Bearer abc.def", 4096), None);
        assert_eq!(basic_credentials("Basicx", 4096), None);
        assert_eq!(basic_credentials("Basic %%%", 4096), Some(Err(())));
    }

    #[test]
    fn base64_looking_values() {
        assert!(looks_like_base64(b"JHtqbmRpOmxkYXA6Ly94L2F9"));
        assert!(!looks_like_base64(b"hello"));
        assert!(!looks_like_base64(b"averyordinarylowercaseword"));
        assert!(!looks_like_base64(b"with spaces in it ok"));
    }
}
