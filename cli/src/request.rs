//! The request `explain` judges: given on the command line (`'GET /api/../admin'` with
//! `--host`, `--header`, `--source-ip`, `--principal`) or as raw HTTP/1.1 on standard input.
//! Either way it becomes the head Envoy would hand the module: lower-case header names, the
//! pseudo headers `:method`, `:path`, `:authority` (from `Host`), `:scheme`.

use std::net::IpAddr;

use crate::error::CliError;

/// One request as the module would see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExplainRequest {
    /// `:method`.
    pub method: String,
    /// `:path` as sent (origin form, query included).
    pub path: String,
    /// `:authority` (empty when none).
    pub authority: String,
    /// `:scheme`.
    pub scheme: String,
    /// Regular headers, names lower-case, in order.
    pub headers: Vec<(String, String)>,
    /// Downstream peer address (`source.address`).
    pub source_ip: Option<IpAddr>,
    /// mTLS peer URI SAN (SPIFFE ID).
    pub principal: Option<String>,
    /// The request body, when there is one.
    pub body: Option<Vec<u8>>,
}

impl ExplainRequest {
    /// Reads `'METHOD TARGET'` (a single space between them).
    pub fn from_line(line: &str) -> Result<ExplainRequest, CliError> {
        let mut parts = line.split_whitespace();
        let (Some(method), Some(path), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CliError::Request(format!(
                "{line:?}: give the request as 'METHOD /path?query' (e.g. 'GET /api/../admin')"
            )));
        };
        Ok(ExplainRequest {
            method: method.to_string(),
            path: path.to_string(),
            scheme: "http".to_string(),
            ..ExplainRequest::default()
        })
    }

    /// Adds a `name: value` header given on the command line.
    pub fn add_header_line(&mut self, line: &str) -> Result<(), CliError> {
        let Some((name, value)) = line.split_once(':') else {
            return Err(CliError::Request(format!(
                "header {line:?}: write it as 'name: value'"
            )));
        };
        let name = name.trim();
        if name.is_empty() || name.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(CliError::Request(format!(
                "header {line:?}: bad header name"
            )));
        }
        self.push_header(name, value.trim());
        Ok(())
    }

    fn push_header(&mut self, name: &str, value: &str) {
        let name = name.to_ascii_lowercase();
        if name == "host" {
            // Envoy turns an HTTP/1.1 Host header into :authority.
            if self.authority.is_empty() {
                self.authority = value.to_string();
            }
            return;
        }
        self.headers.push((name, value.to_string()));
    }

    /// Reads a raw HTTP/1.1 request: request line, headers, blank line, optional body (as
    /// `Content-Length` says, else the rest of the input).
    pub fn from_raw_http(raw: &[u8]) -> Result<ExplainRequest, CliError> {
        let (head, body) = match find(raw, b"\r\n\r\n") {
            Some(i) => (&raw[..i], &raw[i + 4..]),
            None => match find(raw, b"\n\n") {
                Some(i) => (&raw[..i], &raw[i + 2..]),
                None => (raw, &raw[raw.len()..]),
            },
        };
        let head = String::from_utf8_lossy(head);
        let mut lines = head.split('\n').map(|l| l.trim_end_matches('\r'));
        let request_line = lines
            .next()
            .filter(|l| !l.trim().is_empty())
            .ok_or_else(|| CliError::Request("standard input: no request line".to_string()))?;
        let mut parts = request_line.split(' ');
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return Err(CliError::Request(format!(
                "request line {request_line:?}: expected 'METHOD TARGET HTTP/1.1'"
            )));
        };
        let mut request = ExplainRequest {
            method: method.to_string(),
            path: target.to_string(),
            scheme: "http".to_string(),
            ..ExplainRequest::default()
        };
        for (n, line) in lines.enumerate() {
            let Some((name, value)) = line.split_once(':') else {
                return Err(CliError::Request(format!(
                    "header line {}: {line:?} has no ':'",
                    n + 2
                )));
            };
            request.push_header(name.trim(), value.trim());
        }
        let length = request
            .headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok());
        let body = match length {
            Some(n) => &body[..n.min(body.len())],
            None => body,
        };
        if !body.is_empty() {
            request.body = Some(body.to_vec());
        }
        Ok(request)
    }

    /// The head as the host returns it: pseudo headers first, then the headers.
    pub fn head_pairs(&self) -> Vec<(String, String)> {
        let mut pairs = vec![
            (":authority".to_string(), self.authority.clone()),
            (":path".to_string(), self.path.clone()),
            (":method".to_string(), self.method.clone()),
            (":scheme".to_string(), self.scheme.clone()),
        ];
        pairs.extend(self.headers.iter().cloned());
        pairs
    }

    /// `source.address` as Envoy reports it (`ip:port`; the port is not known here).
    pub fn source_address(&self) -> Option<String> {
        self.source_ip.map(|ip| match ip {
            IpAddr::V4(v4) => format!("{v4}:0"),
            IpAddr::V6(v6) => format!("[{v6}]:0"),
        })
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_command_line_form() {
        let mut r = ExplainRequest::from_line("GET /api/../admin?x=1").unwrap();
        r.add_header_line("Host: Shop.example.com").unwrap();
        r.add_header_line("User-Agent: curl/8").unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("GET", "/api/../admin?x=1")
        );
        assert_eq!(r.authority, "Shop.example.com");
        assert_eq!(r.headers, vec![("user-agent".into(), "curl/8".into())]);
        assert!(ExplainRequest::from_line("GET").is_err());
        assert!(r.add_header_line("no colon").is_err());
    }

    #[test]
    fn reads_raw_http_with_a_body() {
        let raw = b"POST /login HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nX-Y: z\r\n\r\nhelloEXTRA";
        let r = ExplainRequest::from_raw_http(raw).unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.authority, "a.example");
        assert_eq!(r.body.as_deref(), Some(&b"hello"[..]));
        assert_eq!(r.head_pairs()[0], (":authority".into(), "a.example".into()));
        let r = ExplainRequest::from_raw_http(b"GET / HTTP/1.1\nHost: h\n\n").unwrap();
        assert_eq!((r.path.as_str(), r.body.is_none()), ("/", true));
        assert!(ExplainRequest::from_raw_http(b"").is_err());
    }
}
