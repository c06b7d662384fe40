//! Minimal HTTP/1.1 message reading shared by the rig's client and its helper servers.
//!
//! The rig speaks HTTP/1.1 itself, over plain `TcpStream`s, so that a request target reaches
//! Envoy byte for byte (no client-side normalization) and a helper server records exactly what
//! Envoy forwarded.

use std::io::{self, BufRead, Read};

/// Longest header line accepted, in bytes.
const MAX_LINE: usize = 64 * 1024;
/// Most header lines accepted in one message head.
const MAX_HEADERS: usize = 256;
/// Largest body accepted, in bytes.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// A message head: the start line and the header fields in arrival order.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    /// `GET /path HTTP/1.1` or `HTTP/1.1 200 OK`.
    pub start_line: String,
    /// Header fields, names lower-cased, values trimmed.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }
}

/// The first value of header `name` (case-insensitive) in `headers`.
pub(crate) fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads one CRLF (or LF) terminated line without its terminator; `None` at a clean EOF.
fn read_line(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = reader
        .by_ref()
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(invalid("line too long or truncated"));
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// Reads a message head; `Ok(None)` when the peer closed before sending anything.
pub(crate) fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Head>> {
    let start_line = loop {
        match read_line(reader)? {
            None => return Ok(None),
            // Tolerate stray empty lines between messages (RFC 9112 section 2.2).
            Some(line) if line.is_empty() => continue,
            Some(line) => break line,
        }
    };
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?.ok_or_else(|| invalid("connection closed inside a head"))?;
        if line.is_empty() {
            break;
        }
        if headers.len() >= MAX_HEADERS {
            return Err(invalid("too many header fields"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("header line without a colon: {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(Some(Head {
        start_line,
        headers,
    }))
}

/// How a message body is delimited.
pub(crate) enum BodyFraming {
    /// No body at all (requests without length, HEAD responses, 1xx/204/304).
    None,
    /// Exactly this many bytes.
    Length(usize),
    /// `transfer-encoding: chunked`.
    Chunked,
    /// Until the peer closes (responses without length).
    UntilClose,
}

/// The framing of a request body (RFC 9112 section 6.3).
pub(crate) fn request_framing(head: &Head) -> io::Result<BodyFraming> {
    framing(head, BodyFraming::None)
}

/// The framing of a response body to a request with method `method`.
pub(crate) fn response_framing(head: &Head, method: &str, status: u16) -> io::Result<BodyFraming> {
    if method.eq_ignore_ascii_case("HEAD")
        || (100..200).contains(&status)
        || status == 204
        || status == 304
    {
        return Ok(BodyFraming::None);
    }
    framing(head, BodyFraming::UntilClose)
}

fn framing(head: &Head, otherwise: BodyFraming) -> io::Result<BodyFraming> {
    if let Some(te) = head.header("transfer-encoding") {
        if te.to_ascii_lowercase().contains("chunked") {
            return Ok(BodyFraming::Chunked);
        }
    }
    match head.header("content-length") {
        Some(len) => {
            let len: usize = len
                .parse()
                .map_err(|_| invalid(format!("bad content-length {len:?}")))?;
            if len > MAX_BODY {
                return Err(invalid(format!("body of {len} bytes is too large")));
            }
            Ok(BodyFraming::Length(len))
        }
        None => Ok(otherwise),
    }
}

/// Reads a body delimited by `framing`.
pub(crate) fn read_body(reader: &mut impl BufRead, framing: BodyFraming) -> io::Result<Vec<u8>> {
    match framing {
        BodyFraming::None => Ok(Vec::new()),
        BodyFraming::Length(len) => {
            let mut body = vec![0; len];
            reader.read_exact(&mut body)?;
            Ok(body)
        }
        BodyFraming::UntilClose => {
            let mut body = Vec::new();
            reader.take(MAX_BODY as u64).read_to_end(&mut body)?;
            Ok(body)
        }
        BodyFraming::Chunked => read_chunked(reader),
    }
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line =
            read_line(reader)?.ok_or_else(|| invalid("connection closed inside a chunked body"))?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            // Trailers, then the empty line.
            while let Some(line) = read_line(reader)? {
                if line.is_empty() {
                    break;
                }
            }
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(invalid("chunked body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let crlf = read_line(reader)?;
        if crlf.as_deref() != Some("") {
            return Err(invalid("chunk not followed by CRLF"));
        }
    }
}

/// The standard reason phrase for `status` (only used to make responses readable).
pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
