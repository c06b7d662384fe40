//! A bounded `multipart/form-data` reader, so that signatures see each form field as the backend
//! does (Confluence, Struts and Spring all bind multipart fields like form fields).
//!
//! Lenient like the other decoders: bare `\n` line ends are read, a part without headers or
//! without a name still has a value, and a fault (no boundary, part headers too long or not
//! ended, an unterminated body that was not cut) is reported in [`Parts::malformed`] while
//! everything readable is still returned. Bounded: at most [`MAX_PARTS`] parts, part headers of
//! at most [`MAX_PART_HEADER_BYTES`], one linear search per delimiter; nested multiparts are not
//! opened (their bytes are one part's value).

/// Most parts read from one body; more is [`Parts::capped`].
pub const MAX_PARTS: usize = 64;
/// Longest part header block read (the headers of one part).
pub const MAX_PART_HEADER_BYTES: usize = 2048;
/// Longest boundary accepted (RFC 2046 allows 70).
pub const MAX_BOUNDARY: usize = 200;

/// One form field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part<'a> {
    /// The `name` of its `content-disposition`, as written (quotes removed).
    pub name: &'a [u8],
    /// Its `filename` (or `filename*`), when given.
    pub filename: Option<&'a [u8]>,
    /// Its value: the bytes between its headers and the next delimiter.
    pub value: &'a [u8],
}

/// The parts read from a body and what went wrong reading it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parts<'a> {
    /// Parts in body order.
    pub parts: Vec<Part<'a>>,
    /// The body does not read as multipart all through (no boundary, no delimiter, part headers
    /// too long or never ended, no closing delimiter in a body that was not cut).
    pub malformed: bool,
    /// More than [`MAX_PARTS`] parts (the rest is not read).
    pub capped: bool,
}

/// The `boundary` parameter of a `multipart/*` content type (quotes removed); `None` for
/// another type or no boundary.
pub fn boundary(content_type: &str) -> Option<&str> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime
        .trim()
        .get(..10)
        .is_some_and(|m| m.eq_ignore_ascii_case("multipart/"))
    {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"'))
            .filter(|b| !b.is_empty())
    })
}

/// Whether a content type is `multipart/...` (with or without a usable boundary).
pub fn is_multipart(content_type: &str) -> bool {
    content_type
        .trim_start()
        .get(..10)
        .is_some_and(|m| m.eq_ignore_ascii_case("multipart/"))
}

/// Reads the parts of `body` delimited by `boundary`; `complete` says the body was not cut (a
/// missing closing delimiter is then a fault, not the cut).
pub fn parse<'a>(body: &'a [u8], boundary: &str, complete: bool) -> Parts<'a> {
    let mut out = Parts::default();
    if boundary.len() > MAX_BOUNDARY {
        out.malformed = true;
        return out;
    }
    let delimiter = format!("--{boundary}");
    // Delimiters sit at the body's start or after a line end; others are content.
    let delimiters = occurrences(body, delimiter.as_bytes())
        .filter(|(s, _)| *s == 0 || body.get(s - 1) == Some(&b'\n'));
    let mut open: Option<usize> = None;
    let mut closed = false;
    for (start, end) in delimiters {
        if let Some(from) = open.take() {
            if out.parts.len() == MAX_PARTS {
                out.capped = true;
                return out;
            }
            let content = body.get(from..start).unwrap_or_default();
            let content = strip_line_end(content);
            out.parts.push(part(content, &mut out.malformed));
        }
        let rest = body.get(end..).unwrap_or_default();
        if rest.starts_with(b"--") {
            closed = true;
            break;
        }
        // Skip transport padding to the end of the delimiter line.
        match rest.iter().position(|b| *b == b'\n') {
            Some(nl) => open = Some(end + nl + 1),
            None => break,
        }
    }
    if let Some(from) = open {
        // The last part runs to the end: cut, or never closed.
        if out.parts.len() == MAX_PARTS {
            out.capped = true;
        } else {
            // Headers cut with the body are the cut, not a fault.
            let mut fault = false;
            out.parts
                .push(part(body.get(from..).unwrap_or_default(), &mut fault));
            out.malformed |= fault && complete;
        }
    }
    if !closed && (complete || out.parts.is_empty()) {
        out.malformed = true;
    }
    out
}

/// The non-overlapping occurrences of `needle` in `haystack`, leftmost first, as
/// `(start, end)`: Knuth-Morris-Pratt, so one pass over the body whatever the boundary.
fn occurrences<'a>(
    haystack: &'a [u8],
    needle: &'a [u8],
) -> impl Iterator<Item = (usize, usize)> + 'a {
    // For each prefix of the needle, the length of its longest proper border.
    let mut border = vec![0usize; needle.len()];
    let mut k = 0;
    for (i, b) in needle.iter().enumerate().skip(1) {
        while k > 0 && needle.get(k) != Some(b) {
            k = border.get(k - 1).copied().unwrap_or(0);
        }
        if needle.get(k) == Some(b) {
            k += 1;
        }
        if let Some(slot) = border.get_mut(i) {
            *slot = k;
        }
    }
    let mut at = 0;
    let mut matched = 0;
    std::iter::from_fn(move || {
        if needle.is_empty() {
            return None;
        }
        while let Some(b) = haystack.get(at) {
            at += 1;
            while matched > 0 && needle.get(matched) != Some(b) {
                matched = border.get(matched - 1).copied().unwrap_or(0);
            }
            if needle.get(matched) == Some(b) {
                matched += 1;
            }
            if matched == needle.len() {
                // Non-overlapping: the next occurrence starts after this one.
                matched = 0;
                return Some((at - needle.len(), at));
            }
        }
        None
    })
}

fn strip_line_end(content: &[u8]) -> &[u8] {
    let c = content.strip_suffix(b"\n").unwrap_or(content);
    c.strip_suffix(b"\r").unwrap_or(c)
}

/// One part: its headers (up to a blank line) and its value.
fn part<'a>(content: &'a [u8], malformed: &mut bool) -> Part<'a> {
    let window = content
        .get(..content.len().min(MAX_PART_HEADER_BYTES + 4))
        .unwrap_or_default();
    // The first blank line, `\n\n` or `\r\n\r\n` (they cannot start at the same byte).
    let blank = (0..window.len()).find_map(|at| {
        let rest = window.get(at..).unwrap_or_default();
        if rest.starts_with(b"\n\n") {
            Some((at, at + 2))
        } else if rest.starts_with(b"\r\n\r\n") {
            Some((at, at + 4))
        } else {
            None
        }
    });
    let (headers, value) = match blank {
        Some((at, body)) if at <= MAX_PART_HEADER_BYTES => (
            content.get(..at).unwrap_or_default(),
            content.get(body..).unwrap_or_default(),
        ),
        _ => {
            *malformed = true;
            (&[][..], content)
        }
    };
    let mut part = Part {
        name: &[],
        filename: None,
        value,
    };
    for line in headers.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        if !line[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(b"content-disposition")
        {
            continue;
        }
        for (key, val) in disposition_params(&line[colon + 1..]) {
            if key.eq_ignore_ascii_case(b"name") {
                part.name = val;
            } else if key.eq_ignore_ascii_case(b"filename")
                || (key.eq_ignore_ascii_case(b"filename*") && part.filename.is_none())
            {
                part.filename = Some(val);
            }
        }
    }
    part
}

/// The `key=value` parameters of a `content-disposition` value, quotes removed (a quoted value
/// runs to the next unescaped quote, or the end).
fn disposition_params(mut s: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out = Vec::new();
    while !s.is_empty() {
        let Some(eq) = s.iter().position(|b| *b == b'=' || *b == b';') else {
            break;
        };
        let key = s[..eq].trim_ascii();
        if s[eq] == b';' {
            s = &s[eq + 1..];
            continue;
        }
        let rest = s[eq + 1..].trim_ascii_start();
        let (value, next) = if let Some(quoted) = rest.strip_prefix(b"\"") {
            let mut end = quoted.len();
            let mut i = 0;
            while i < quoted.len() {
                match quoted[i] {
                    b'\\' => i += 2,
                    b'"' => {
                        end = i;
                        break;
                    }
                    _ => i += 1,
                }
            }
            let after = quoted.get(end + 1..).unwrap_or_default();
            let next = after
                .iter()
                .position(|b| *b == b';')
                .map_or(&[][..], |p| &after[p + 1..]);
            (&quoted[..end], next)
        } else {
            match rest.iter().position(|b| *b == b';') {
                Some(p) => (rest[..p].trim_ascii(), &rest[p + 1..]),
                None => (rest.trim_ascii(), &[][..]),
            }
        };
        out.push((key, value));
        s = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const FORM: &[u8] = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"queryString\"\r\n\r\naaa\\u0027+#{1}+\\u0027\r\n--XyZ\r\ncontent-disposition: form-data; name=\"file\"; filename=\"a;b.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n--XyZ--\r\n";

    #[test]
    fn boundary_from_the_content_type() {
        assert_eq!(boundary("multipart/form-data; boundary=XyZ"), Some("XyZ"));
        assert_eq!(
            boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b\""),
            Some("a b")
        );
        assert_eq!(boundary("multipart/form-data"), None);
        assert_eq!(boundary("text/plain; boundary=x"), None);
        assert!(is_multipart("multipart/form-data"));
    }

    #[test]
    fn reads_names_filenames_and_values() {
        let p = parse(FORM, "XyZ", true);
        assert!(!p.malformed && !p.capped, "{p:?}");
        assert_eq!(p.parts.len(), 2);
        assert_eq!(p.parts[0].name, b"queryString");
        assert_eq!(p.parts[0].value, b"aaa\\u0027+#{1}+\\u0027");
        assert_eq!(p.parts[1].name, b"file");
        assert_eq!(p.parts[1].filename, Some(&b"a;b.png"[..]));
        assert_eq!(p.parts[1].value, b"\x89PNG");
    }

    #[test]
    fn bare_newlines_are_read() {
        let body = b"--b\nContent-Disposition: form-data; name=x\n\nvalue\n--b--\n";
        let p = parse(body, "b", true);
        assert!(!p.malformed);
        assert_eq!(
            (p.parts[0].name, p.parts[0].value),
            (&b"x"[..], &b"value"[..])
        );
    }

    #[test]
    fn a_cut_body_is_not_malformed_but_an_unclosed_whole_one_is() {
        let cut = &FORM[..FORM.len() - 20];
        let p = parse(cut, "XyZ", false);
        assert!(!p.malformed);
        assert_eq!(p.parts.len(), 2);
        assert!(parse(cut, "XyZ", true).malformed);
    }

    #[test]
    fn faults_are_reported_and_the_rest_still_read() {
        assert!(parse(b"no delimiter here", "XyZ", true).malformed);
        assert!(parse(b"no delimiter here", "XyZ", false).malformed);
        // A part whose headers never end: its bytes are still a value.
        let body = b"--b\r\nContent-Disposition: form-data; name=a\r\n${jndi:x}\r\n--b\r\nContent-Disposition: form-data; name=c\r\n\r\nok\r\n--b--";
        let p = parse(body, "b", true);
        assert!(p.malformed);
        assert_eq!(p.parts.len(), 2);
        assert!(p.parts[0].value.ends_with(b"${jndi:x}"));
        assert_eq!(p.parts[1].value, b"ok");
        assert!(parse(b"--x", &"x".repeat(300), true).malformed);
    }

    #[test]
    fn parts_and_headers_are_bounded() {
        let mut body = Vec::new();
        for i in 0..1000 {
            body.extend(
                format!("--b\r\nContent-Disposition: form-data; name=p{i}\r\n\r\nv\r\n").bytes(),
            );
        }
        body.extend(b"--b--");
        let p = parse(&body, "b", true);
        assert!(p.capped);
        assert_eq!(p.parts.len(), MAX_PARTS);
        let long = format!("--b\r\nX-Pad: {}\r\n\r\nv\r\n--b--", "a".repeat(5000));
        let p = parse(long.as_bytes(), "b", true);
        assert!(p.malformed);
        assert_eq!(p.parts.len(), 1);
    }

    #[test]
    fn nested_multipart_is_one_value() {
        let body = b"--outer\r\nContent-Disposition: form-data; name=files\r\nContent-Type: multipart/mixed; boundary=inner\r\n\r\n--inner\r\nContent-Disposition: file; filename=a.txt\r\n\r\nA\r\n--inner--\r\n--outer--";
        let p = parse(body, "outer", true);
        assert!(!p.malformed);
        assert_eq!(p.parts.len(), 1);
        assert!(p.parts[0].value.starts_with(b"--inner"));
    }

    /// The delimiter search finds what `aho-corasick`'s `find_iter` (the oracle, a
    /// dev-dependency) found, on self-overlapping delimiters too.
    #[test]
    fn delimiter_search_matches_the_oracle() {
        let mut seed = 0x2545_f491_u32;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as usize % n
        };
        let alphabet = b"-ab\n";
        for _ in 0..2000 {
            let needle: Vec<u8> = (0..1 + next(6)).map(|_| alphabet[next(4)]).collect();
            let haystack: Vec<u8> = (0..next(60)).map(|_| alphabet[next(4)]).collect();
            let oracle = aho_corasick::AhoCorasick::new([&needle])
                .unwrap_or_else(|e| panic!("{e}"))
                .find_iter(&haystack)
                .map(|m| (m.start(), m.end()))
                .collect::<Vec<_>>();
            let ours: Vec<_> = occurrences(&haystack, &needle).collect();
            assert_eq!(ours, oracle, "{needle:?} in {haystack:?}");
        }
        assert_eq!(
            occurrences(b"----", b"--").collect::<Vec<_>>(),
            [(0, 2), (2, 4)]
        );
        assert_eq!(occurrences(b"abc", b"").count(), 0);
    }
}
