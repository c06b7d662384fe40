//! The audit verdict for Envoy's native access loggers (audit path (b)): instead of building
//! and sending the OCSF record itself, the Wasm module writes one JSON fragment into filter
//! state and an access-log template (`envoy-config/access-log/`) renders the whole OCSF 1.7.0
//! HTTP Activity record around it from Envoy's own fields.
//!
//! Why a fragment of JSON text and not typed values: measured on Envoy 1.36.4 and 1.40.0,
//! `json_format` renders `%START_TIME%`, `%CEL(..)%` and `%FILTER_STATE(..:PLAIN)%` as strings,
//! and `%FILTER_STATE(..:TYPED)%` as an `{"@type":..,"value":..}` object, so no verdict value and
//! no timestamp can become a top-level JSON integer there. The templates are therefore JSON text
//! (`text_format_source`, or the OpenTelemetry `body`), where `%START_TIME(%s%3f)%`,
//! `%RESPONSE_CODE%`, `%DURATION%` and `%BYTES_*%` stand unquoted, and the fragment is inserted
//! with `%FILTER_STATE(wasm.meshsight_ocsf:PLAIN)%`. Text templates do not escape, so every
//! string a client controls (path, authority, user agent, request id) comes from the fragment,
//! JSON-escaped here, never from `%REQ(..)%`.
//!
//! Why one fragment: each filter-state write is a host call that Envoy answers with its own
//! bookkeeping (about a microsecond each, measured), paid on every request. The fragment is
//! the record's top-level members followed by an *open* `"http_request":{` object with the
//! request's members; the template closes it after adding Envoy's own request fields
//! (`"length"`, `"version"`). [`entries`] writes it.

use crate::decision::{AllowlistDecision, MirrorDecision, MirrorReason};
use crate::head::RequestHead;
use crate::json::{key, JsonObject};
use crate::response::ResponseVerdict;

use super::ocsf::{activity_id, write_activity, write_attacks, write_disposition, write_severity};
use super::record::disposition;

/// Property holding the fragment ([`entries`]); Envoy stores it as `wasm.meshsight_ocsf`.
pub const VERDICT_PROPERTY: &str = "meshsight_ocsf";

/// One filter-state entry to write with `proxy_wasm::hostcalls::set_property(vec![name], Some(&bytes))`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterStateEntry {
    /// Property name (Envoy's filter-state key is `wasm.<name>`).
    pub name: &'static str,
    /// Value: a fragment of a JSON object (members without the braces), UTF-8.
    pub bytes: Vec<u8>,
}

/// `declare_property` arguments for the fragment's property, encoded as Envoy's
/// `envoy.source.extensions.common.wasm.DeclarePropertyArguments` protobuf: type `String` (CEL
/// sees a string, not bytes), life span `DownstreamRequest`, writable. Pass each to
/// `proxy_wasm::hostcalls::call_foreign_function("declare_property", Some(&args))` once from the
/// root context's `on_configure`; Envoy answers `BadArgument` when the name is already declared
/// in that root context (a reconfigure), which is harmless.
pub fn declarations() -> [(&'static str, Vec<u8>); 1] {
    [(VERDICT_PROPERTY, declare_property_args(VERDICT_PROPERTY))]
}

/// WasmType enum of declare_property.proto: Bytes 0, String 1, FlatBuffers 2, Protobuf 3.
const WASM_TYPE_STRING: u8 = 1;
/// LifeSpan enum of declare_property.proto: FilterChain 0, DownstreamRequest 1, ...
const LIFE_SPAN_DOWNSTREAM_REQUEST: u8 = 1;

fn declare_property_args(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 8);
    // field 1 `name` (length-delimited); names here are far below 128 bytes: one-byte length.
    out.push(0x0a);
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    // field 3 `type` (varint), field 5 `span` (varint); `readonly` and `schema` stay default.
    out.extend_from_slice(&[0x18, WASM_TYPE_STRING, 0x28, LIFE_SPAN_DOWNSTREAM_REQUEST]);
    out
}

/// The verdict fragment for one request: `activity_id`/`activity_name`/`type_uid`/`type_name`
/// (from the method), `severity_id`/`severity`, `action_id`/`action`,
/// `disposition_id`/`disposition`, `is_alert`, `firewall_rule` (the allowing rule) and
/// `unmapped.meshsight` (both decisions as the filter-state contract writes them), as the
/// members of a JSON object without braces. Derived exactly as path (a) does
/// ([`disposition`], [`activity_id`]), except that severity cannot see the response status
/// (the fragment is written before the response): a 5xx is not raised to Low here.
pub fn verdict_entry(
    method: &str,
    allowlist: Option<&AllowlistDecision>,
    mirror: Option<&MirrorDecision>,
) -> FilterStateEntry {
    let mut out = String::with_capacity(384);
    write_verdict(&mut out, method, allowlist, mirror, None);
    FilterStateEntry {
        name: VERDICT_PROPERTY,
        bytes: out.into_bytes(),
    }
}

fn write_verdict(
    out: &mut String,
    method: &str,
    allowlist: Option<&AllowlistDecision>,
    mirror: Option<&MirrorDecision>,
    response: Option<&ResponseVerdict>,
) {
    let activity = activity_id(method);
    let d = disposition(allowlist);
    let found = response.and_then(ResponseVerdict::severity_id);
    let alert = found.is_some()
        || mirror.is_some_and(|m| m.reason == MirrorReason::Signature || !m.signatures.is_empty());
    let severity_id = if let Some(id) = found {
        id
    } else if alert {
        4
    } else if d.action_id == 2 {
        3
    } else if d.disposition_id == 20 {
        2
    } else {
        1
    };
    // The members of the record's top-level object, whose braces the template writes.
    let mut v = JsonObject::inside(out, false);
    write_activity(&mut v, activity, method);
    write_severity(&mut v, severity_id);
    write_disposition(&mut v, &d);
    v.members(if alert {
        r#""is_alert":true"#
    } else {
        r#""is_alert":false"#
    });
    write_attacks(&mut v, mirror, response);
    if let Some(rule) = allowlist.and_then(|a| a.rule.as_deref()) {
        v.object(key!("firewall_rule"), |f| f.str(key!("name"), rule));
    }
    if let Some(r) = response {
        r.write_risk(&mut v);
    }
    v.object(key!("unmapped"), |u| {
        u.object(key!("meshsight"), |m| {
            if let Some(a) = allowlist {
                m.object(key!("allowlist"), |o| a.write_members(o));
            }
            if let Some(d) = mirror {
                m.object(key!("mirror"), |o| d.write_members(o));
            }
            if let Some(r) = response {
                m.object(key!("response"), |o| r.write_members(o));
            }
            if activity == 99 {
                m.str(key!("http_method"), method);
            }
        });
    });
}

/// The request strings a client controls, JSON-escaped, as members of OCSF `http_request`
/// without braces: `http_method` (only for the nine methods OCSF enumerates), `url` (`path`
/// without the query string, `hostname`, `port`, `url_string` without the query string, so
/// nothing a query carries reaches the log), `user_agent` and `uid` (`x-request-id`).
pub fn request_entry(
    method: &str,
    scheme: &str,
    authority: &str,
    path: &str,
    user_agent: Option<&str>,
    request_id: Option<&str>,
) -> FilterStateEntry {
    let mut out = String::with_capacity(96 + authority.len() * 2 + path.len() * 2);
    write_request(
        &mut out, method, scheme, authority, path, user_agent, request_id,
    );
    FilterStateEntry {
        name: VERDICT_PROPERTY,
        bytes: out.into_bytes(),
    }
}

fn write_request(
    out: &mut String,
    method: &str,
    scheme: &str,
    authority: &str,
    path: &str,
    user_agent: Option<&str>,
    request_id: Option<&str>,
) {
    let path = without_query(path);
    // The members of OCSF `http_request`, whose braces the caller or the template writes.
    let mut r = JsonObject::inside(out, false);
    if activity_id(method) != 99 {
        r.str(key!("http_method"), method);
    }
    r.object(key!("url"), |u| {
        u.str(key!("path"), path);
        let (host, port) = host_and_port(authority);
        if !host.is_empty() {
            u.str(key!("hostname"), host);
        }
        u.opt_u64(key!("port"), port.map(u64::from));
        if !scheme.is_empty() {
            u.str(key!("scheme"), scheme);
        }
        let separator = if scheme.is_empty() { "" } else { "://" };
        u.str_concat(key!("url_string"), &[scheme, separator, authority, path]);
    });
    r.opt_str(key!("user_agent"), user_agent);
    r.opt_str(key!("uid"), request_id);
}

/// The one filter-state entry for a request, from the head the adapter read once: the
/// [`verdict_entry`] members, then `,"http_request":{` and the [`request_entry`] members, the
/// object left open for the template to finish.
pub fn entries(
    head: &RequestHead,
    allowlist: Option<&AllowlistDecision>,
    mirror: Option<&MirrorDecision>,
) -> [FilterStateEntry; 1] {
    entries_with_response(head, allowlist, mirror, None)
}

/// [`entries`] with what the scan of the response found (written again once the response is
/// scanned: Envoy's access logger runs after it).
pub fn entries_with_response(
    head: &RequestHead,
    allowlist: Option<&AllowlistDecision>,
    mirror: Option<&MirrorDecision>,
    response: Option<&ResponseVerdict>,
) -> [FilterStateEntry; 1] {
    let (authority, path) = (head.authority(), head.path());
    let user_agent = head.header("user-agent");
    // The members are about 700 bytes with both decisions; client strings may double escaped.
    let client = authority.len() + path.len() + user_agent.map_or(0, str::len);
    let mut out = String::with_capacity(1024 + client * 2);
    write_verdict(&mut out, head.method(), allowlist, mirror, response);
    out.push_str(",\"http_request\":{");
    write_request(
        &mut out,
        head.method(),
        head.scheme(),
        authority,
        path,
        user_agent,
        head.request_id(),
    );
    [FilterStateEntry {
        name: VERDICT_PROPERTY,
        bytes: out.into_bytes(),
    }]
}

/// `path` up to its query string or fragment: a byte scan, where `split(['?', '#'])` decodes
/// each char and searches a char set at opt-level "z" (both bytes are ASCII, so the cut is a
/// char boundary).
fn without_query(path: &str) -> &str {
    match path.bytes().position(|b| b == b'?' || b == b'#') {
        Some(end) => path.get(..end).unwrap_or_default(),
        None => path,
    }
}

/// Host and numeric port of an authority (`[v6]:port`, `host:port`, `host`).
fn host_and_port(authority: &str) -> (&str, Option<u16>) {
    if let Some(rest) = authority.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(p) => (host, Some(p)),
            Err(_) => (authority, None),
        },
        _ => (authority, None),
    }
}

#[cfg(test)]
mod tests;
