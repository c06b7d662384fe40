//! The request head as read from the host once per request and shared by every job: the header
//! pairs in one [`HeaderBlock`] (values decoded lossily, so a non-UTF-8 byte never aborts
//! anything) with the pseudo headers and the request id located once, so that no job searches
//! or copies the head again.

use crate::headers::HeaderBlock;

#[cfg(test)]
mod tests;

/// One request's head: every header pair in arrival order, pseudo headers included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHead {
    headers: HeaderBlock,
    method: Option<usize>,
    path: Option<usize>,
    authority: Option<usize>,
    scheme: Option<usize>,
    request_id: Option<usize>,
}

impl RequestHead {
    /// Indexes pairs built elsewhere (tests, the CLI).
    pub fn from_pairs(headers: Vec<(String, String)>) -> RequestHead {
        RequestHead::from_block(headers.into())
    }

    /// Indexes the pairs as the host returned them (names lower-case, as Envoy gives them).
    pub fn from_block(headers: HeaderBlock) -> RequestHead {
        let mut head = RequestHead {
            headers,
            ..RequestHead::default()
        };
        let mut host = None;
        for (i, name) in head.headers.name_bytes().enumerate() {
            // Bytes, and the first one picks the candidates: most names are none of these, and
            // at opt-level "z" every `str ==` is a call into memcmp. An ASCII name is always
            // whole characters, so this finds what comparing the names as text finds.
            let slot = match (name.first(), name) {
                (Some(b':'), b":method") => &mut head.method,
                (Some(b':'), b":path") => &mut head.path,
                (Some(b':'), b":authority") => &mut head.authority,
                (Some(b':'), b":scheme") => &mut head.scheme,
                (Some(b'x'), b"x-request-id") => &mut head.request_id,
                (Some(b'h'), b"host") => &mut host,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(i);
            }
        }
        // HTTP/1.0 without an absolute target: the `host` header is the authority.
        if head
            .authority
            .is_none_or(|i| head.value(Some(i)).is_empty())
            && host.is_some()
        {
            head.authority = host;
        }
        head
    }

    fn value(&self, at: Option<usize>) -> &str {
        at.map_or("", |i| self.headers.value_at(i))
    }

    /// `:method` (empty when absent).
    pub fn method(&self) -> &str {
        self.value(self.method)
    }

    /// `:path` as received, query included (empty when absent).
    pub fn path(&self) -> &str {
        self.value(self.path)
    }

    /// `:authority`, else `host` (empty when neither).
    pub fn authority(&self) -> &str {
        self.value(self.authority)
    }

    /// `:scheme` (empty when absent).
    pub fn scheme(&self) -> &str {
        self.value(self.scheme)
    }

    /// `x-request-id`, the sampling key.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.map(|_| self.value(self.request_id))
    }

    /// The first value of header `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.value(name)
    }

    /// Every pair, in arrival order.
    pub fn headers(&self) -> &HeaderBlock {
        &self.headers
    }

    /// Drops every pair named `name` (the head must say what was forwarded).
    pub fn remove(&mut self, name: &str) {
        if self.headers.iter().any(|(n, _)| n == name) {
            let kept: HeaderBlock = self.headers.iter().filter(|(n, _)| *n != name).collect();
            *self = RequestHead::from_block(kept);
        }
    }

    /// The pairs as owned strings, for a consumer that keeps them (the audit record at stream
    /// end).
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        self.headers.to_pairs()
    }
}
