//! The `mirror.responses` section as written: when responses are scanned and which response
//! rules apply, before validation. Unknown fields are refused, so a typo names its JSON path.

use crate::error::json_path::{At, ByName, PathError, ReadJson};

/// Default for `max_response_bytes`: 16 KiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// Instance-metadata hosts scanned when the section does not name its own `hosts`: AWS (and
/// its IPv6 address), ECS task credentials, GCP, Azure (the AWS address), Alibaba.
pub const METADATA_HOSTS: &[&str] = &[
    "169.254.169.254",
    "fd00:ec2::254",
    "169.254.170.2",
    "metadata.google.internal",
    "metadata",
    "100.100.100.200",
];

/// When responses are scanned, and with which rules.
#[derive(Debug, Clone)]
pub struct RawResponses {
    /// Scan the response of a request that matched a request signature (did it work?).
    pub after_signature: bool,
    /// Scan the responses of requests to these hosts (`:authority` without the port, or
    /// `host:port`, case-insensitive); defaults to the instance-metadata hosts.
    pub hosts: Vec<String>,
    /// Scan the responses of requests whose path starts with one of these (as received).
    pub paths: Vec<String>,
    /// Scan every response (opt-in: it costs a host call and a scan per response).
    pub all: bool,
    /// Most response-body bytes scanned (0: the head only).
    pub max_response_bytes: usize,
    /// Whether the built-in response rules are the first layer (the policy's packs in
    /// `signatures.packs` add response rules of their own).
    pub builtin: bool,
    /// Response rules switched on or off by id; an unknown id is an error.
    pub rules: ByName<bool>,
}

fn yes() -> bool {
    true
}

fn metadata_hosts() -> Vec<String> {
    METADATA_HOSTS.iter().map(|h| (*h).to_string()).collect()
}

fn default_max_response_bytes() -> usize {
    DEFAULT_MAX_RESPONSE_BYTES
}

impl ReadJson for RawResponses {
    fn read_json(at: At<'_, '_>) -> Result<RawResponses, PathError> {
        let mut f = at.fields("struct RawResponses", RAW_RESPONSES_FIELDS)?;
        let value = RawResponses {
            after_signature: f.get("after_signature").unwrap_or_else(yes),
            hosts: f.get("hosts").unwrap_or_else(metadata_hosts),
            paths: f.get("paths").unwrap_or_default(),
            all: f.get("all").unwrap_or_default(),
            max_response_bytes: f
                .get("max_response_bytes")
                .unwrap_or_else(default_max_response_bytes),
            builtin: f.get("builtin").unwrap_or_else(yes),
            rules: f.get("rules").unwrap_or_default(),
        };
        f.finish(value)
    }
}

const RAW_RESPONSES_FIELDS: &[&str] = &[
    "after_signature",
    "hosts",
    "paths",
    "all",
    "max_response_bytes",
    "builtin",
    "rules",
];
