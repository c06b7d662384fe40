//! Header pairs as the filters read them from the host: [`HeaderBlock`], the request head's
//! pairs in the one buffer the host wrote them into, and lookups by name over pair lists;
//! header-name tokens, splitting `:authority` into host and port, and the one list of
//! credential headers and of hop-by-hop headers that every job uses (the mirror's copies drop
//! them, the audit record never carries a credential).
//!
//! Envoy hands header names over lowercase; lookups still ignore ASCII case so that values built
//! by hand (tests, configuration) behave the same.

#[cfg(test)]
mod tests;

/// Request and response headers whose values are credentials (lowercase): a mirror copy drops
/// them unless its target sets `include_secrets`, and an audit record never carries them.
pub const CREDENTIAL_HEADERS: [&str; 4] = [
    "authorization",
    "cookie",
    "proxy-authorization",
    "set-cookie",
];

/// Headers that describe the connection or the framing of one hop, not the request
/// (lowercase; RFC 9110 section 7.6.1 plus `content-length`, `expect` and `proxy-connection`):
/// a copy sent on a new connection must not carry them.
pub const HOP_BY_HOP_HEADERS: [&str; 8] = [
    "connection",
    "content-length",
    "expect",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
];

/// Whether `name` (any case) is a [`CREDENTIAL_HEADERS`] name.
pub fn is_credential_header(name: &str) -> bool {
    CREDENTIAL_HEADERS
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
}

/// Whether `name` (any case) is a [`HOP_BY_HOP_HEADERS`] name.
pub fn is_hop_by_hop_header(name: &str) -> bool {
    HOP_BY_HOP_HEADERS
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
}

/// Every value of header `name` (ASCII case-insensitive), in order.
pub fn header_values<'h>(
    headers: &'h [(String, String)],
    name: &'h str,
) -> impl Iterator<Item = &'h str> + 'h {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The first value of header `name` (ASCII case-insensitive).
pub fn header_value<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Header pairs kept as the host serialized them: one text buffer and the span of each name
/// and value in it, so that reading a head costs one buffer and one span list, whatever the
/// number of headers, instead of two strings per header (the SDK's `get_map` pairs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderBlock {
    text: String,
    spans: Vec<PairSpan>,
}

/// Where one pair sits in [`HeaderBlock::text`]: name start, name end, value start, value end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct PairSpan([u32; 4]);

/// A block without pairs, to borrow where a request has no headers to give.
pub static NO_HEADERS: HeaderBlock = HeaderBlock::new();

impl HeaderBlock {
    /// A block without pairs.
    pub const fn new() -> HeaderBlock {
        HeaderBlock {
            text: String::new(),
            spans: Vec::new(),
        }
    }

    /// Reads a header map as proxy-wasm serializes it (ABI 0.2.1 `proxy_get_header_map_pairs`):
    /// the pair count, then each pair's name and value lengths (little-endian `u32`s), then
    /// each name and value followed by a NUL. The buffer becomes the block's text without a
    /// copy when it is valid UTF-8; otherwise each invalid sequence is replaced (U+FFFD), never
    /// an abort. A truncated or inconsistent buffer yields the pairs read before the fault.
    pub fn from_wire(mut bytes: Vec<u8>) -> HeaderBlock {
        let u32_at = |b: &[u8], at: usize| -> Option<usize> {
            let four: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
            usize::try_from(u32::from_le_bytes(four)).ok()
        };
        let count = u32_at(&bytes, 0).unwrap_or(0);
        let Some(data) = count.checked_mul(8).and_then(|n| n.checked_add(4)) else {
            return HeaderBlock::default();
        };
        let mut at = 0usize;
        let body = bytes.len().saturating_sub(data);
        // Extended rather than pushed one by one: at opt-level "z" each `Vec::push` is a call.
        // A pair takes two bytes of the body at least (its NULs), so no more can be read.
        let mut spans = Vec::with_capacity(count.min(bytes.len() / 10));
        spans.extend((0..count.min(body / 2)).map_while(|i| {
            let n = u32_at(&bytes, 4 + i * 8)?;
            let v = u32_at(&bytes, 8 + i * 8)?;
            let name_end = at.saturating_add(n);
            let value_start = name_end.saturating_add(1);
            let value_end = value_start.saturating_add(v);
            if value_end >= body {
                // The value's NUL must be in the buffer too.
                return None;
            }
            let span = PairSpan([
                u32::try_from(at).ok()?,
                u32::try_from(name_end).ok()?,
                u32::try_from(value_start).ok()?,
                u32::try_from(value_end).ok()?,
            ]);
            at = value_end + 1;
            Some(span)
        }));
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

    /// The pairs in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + Clone + '_ {
        self.spans.iter().map(|span| self.pair(span))
    }

    // Per pair on every read of a head; at opt-level "z" LLVM would leave these as calls.
    #[inline(always)]
    fn pair(&self, PairSpan([a, b, c, d]): &PairSpan) -> (&str, &str) {
        (self.part(*a, *b), self.part(*c, *d))
    }

    #[inline(always)]
    fn part(&self, from: u32, to: u32) -> &str {
        self.text.get(from as usize..to as usize).unwrap_or("")
    }

    /// Whether the pair's name is `name` (ASCII case-insensitive), without slicing its value.
    #[inline(always)]
    fn named(&self, PairSpan([a, b, _, _]): &PairSpan, name: &[u8]) -> bool {
        b.saturating_sub(*a) as usize == name.len()
            && self
                .text
                .as_bytes()
                .get(*a as usize..*b as usize)
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
    }

    /// The value of the pair at `index` (empty when there is none), without slicing its name.
    #[inline(always)]
    pub(crate) fn value_at(&self, index: usize) -> &str {
        self.spans
            .get(index)
            .map_or("", |PairSpan([_, _, c, d])| self.part(*c, *d))
    }

    /// Each name's bytes in order (a name that is not whole characters is empty, as in
    /// [`HeaderBlock::names`]; a name of ASCII bytes is always whole).
    pub(crate) fn name_bytes(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let text = self.text.as_bytes();
        self.spans
            .iter()
            .map(move |PairSpan([a, b, _, _])| text.get(*a as usize..*b as usize).unwrap_or(&[]))
    }

    /// The names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.spans
            .iter()
            .map(|PairSpan([a, b, _, _])| self.part(*a, *b))
    }

    /// The pair at `index`.
    pub fn get(&self, index: usize) -> Option<(&str, &str)> {
        self.spans.get(index).map(|span| self.pair(span))
    }

    /// How many pairs.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The first value of header `name` (ASCII case-insensitive).
    pub fn value(&self, name: &str) -> Option<&str> {
        self.spans
            .iter()
            .find(|span| self.named(span, name.as_bytes()))
            .map(|PairSpan([_, _, c, d])| self.part(*c, *d))
    }

    /// Every value of header `name` (ASCII case-insensitive), in order.
    pub fn values<'h>(&'h self, name: &'h str) -> impl Iterator<Item = &'h str> + 'h {
        self.spans
            .iter()
            .filter(move |span| self.named(span, name.as_bytes()))
            .map(|PairSpan([_, _, c, d])| self.part(*c, *d))
    }

    /// Adds a pair at the end. A block is a request head, far below 4 GiB; a pair past that
    /// is dropped, never misplaced.
    pub fn push(&mut self, name: &str, value: &str) {
        let start = self.text.len();
        self.text.push_str(name);
        let name_end = self.text.len();
        self.text.push_str(value);
        let end = self.text.len();
        if let (Ok(a), Ok(b), Ok(d)) = (
            u32::try_from(start),
            u32::try_from(name_end),
            u32::try_from(end),
        ) {
            self.spans.push(PairSpan([a, b, b, d]));
        } else {
            self.text.truncate(start);
        }
    }

    /// The pairs as owned strings, for a consumer that keeps them past the block.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }
}

impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for HeaderBlock {
    /// Packs pairs built elsewhere (tests, the CLI, a head with a header removed).
    fn from_iter<I: IntoIterator<Item = (N, V)>>(pairs: I) -> HeaderBlock {
        let mut block = HeaderBlock::new();
        for (name, value) in pairs {
            block.push(name.as_ref(), value.as_ref());
        }
        block
    }
}

impl From<Vec<(String, String)>> for HeaderBlock {
    fn from(pairs: Vec<(String, String)>) -> HeaderBlock {
        pairs.into_iter().collect()
    }
}

/// Whether `name` is an HTTP token (RFC 9110 `tchar`s): a valid header name or method.
pub fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Splits an `:authority` leniently into host and port text: `host:port`, `[v6]:port`, `[v6]`
/// (host without brackets), or the whole value as the host when there is no all-digit port
/// after a single `:` (so an unbracketed IPv6 address stays whole). Nothing is validated: this
/// is for reading what a request says, not for judging it (see [`crate::normalize`]).
pub fn split_authority(authority: &str) -> (&str, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':')),
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            (host, Some(port))
        }
        _ => (authority, None),
    }
}
