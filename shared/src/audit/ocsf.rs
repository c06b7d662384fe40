//! The OCSF 1.7.0 HTTP Activity (class 4002) rendering of an [`AuditRecord`], with the
//! `security_control` profile (and `trace` when a trace id is known). meshsight specifics go
//! under `unmapped.meshsight`.
//!
//! The record is written as JSON text straight into one `String` (`crate::json`); members
//! come in a fixed order, optional ones are left out when unknown.

#[cfg(any(test, feature = "serde"))]
use serde_json::Value;

use crate::identity::{parse_socket_address, SpiffeId};

use super::exchange::PeerWorkload;
use super::record::{AuditRecord, Disposition};
use crate::decision::MirrorDecision;
use crate::json::{key, JsonArray, JsonObject, Key};
use crate::response::ResponseVerdict;

#[cfg(test)]
mod tests;

/// The OCSF version as a literal, for the records' constant parts.
macro_rules! ocsf_version {
    () => {
        "1.7.0"
    };
}

/// OCSF schema version the records follow.
pub const OCSF_VERSION: &str = ocsf_version!();

/// OCSF HTTP Activity `activity_id` for a method (Connect 1, Delete 2, Get 3, Head 4, Options 5,
/// Post 6, Put 7, Trace 8, Patch 9, Other 99). Methods are case-sensitive.
#[inline(never)]
pub fn activity_id(method: &str) -> u32 {
    match method {
        "CONNECT" => 1,
        "DELETE" => 2,
        "GET" => 3,
        "HEAD" => 4,
        "OPTIONS" => 5,
        "POST" => 6,
        "PUT" => 7,
        "TRACE" => 8,
        "PATCH" => 9,
        _ => 99,
    }
}

/// `activity_id`, `activity_name`, `type_uid` and `type_name` of a known activity, as JSON
/// members (`None` for Other, whose name is the method).
fn activity_members(id: u32) -> Option<&'static str> {
    macro_rules! members {
        ($id:literal, $name:literal) => {
            concat!(
                r#""activity_id":"#,
                $id,
                r#","activity_name":""#,
                $name,
                r#"","type_uid":40020"#,
                $id,
                r#","type_name":"HTTP Activity: "#,
                $name,
                r#"""#
            )
        };
    }
    Some(match id {
        1 => members!(1, "Connect"),
        2 => members!(2, "Delete"),
        3 => members!(3, "Get"),
        4 => members!(4, "Head"),
        5 => members!(5, "Options"),
        6 => members!(6, "Post"),
        7 => members!(7, "Put"),
        8 => members!(8, "Trace"),
        9 => members!(9, "Patch"),
        _ => return None,
    })
}

/// `severity_id` and `severity`: one literal for each id OCSF names (the record and the verdict
/// fragment share it, and write it on every request).
pub(super) fn write_severity(event: &mut JsonObject<'_>, id: u32) {
    macro_rules! members {
        ($id:literal, $name:literal) => {
            concat!(r#""severity_id":"#, $id, r#","severity":""#, $name, r#"""#)
        };
    }
    event.members(match id {
        1 => members!(1, "Informational"),
        2 => members!(2, "Low"),
        3 => members!(3, "Medium"),
        4 => members!(4, "High"),
        5 => members!(5, "Critical"),
        _ => {
            event.u64(key!("severity_id"), u64::from(id));
            event.caption(key!("severity"), "Unknown");
            return;
        }
    });
}

/// `action_id`, `action`, `disposition_id` and `disposition`: one literal for each outcome
/// [`super::record::disposition`] gives (shared like [`write_severity`]).
pub(super) fn write_disposition(event: &mut JsonObject<'_>, d: &Disposition) {
    macro_rules! members {
        ($action_id:literal, $action:literal, $id:literal, $name:literal) => {
            concat!(
                r#""action_id":"#,
                $action_id,
                r#","action":""#,
                $action,
                r#"","disposition_id":"#,
                $id,
                r#","disposition":""#,
                $name,
                r#"""#
            )
        };
    }
    let literal = match (d.action_id, d.action, d.disposition_id, d.disposition) {
        (1, "Allowed", 1, "Allowed") => members!(1, "Allowed", 1, "Allowed"),
        (2, "Denied", 2, "Blocked") => members!(2, "Denied", 2, "Blocked"),
        (2, "Denied", 25, "Rejected") => members!(2, "Denied", 25, "Rejected"),
        (1, "Allowed", 20, "Count") => members!(1, "Allowed", 20, "Count"),
        (3, "Observed", 17, "Logged") => members!(3, "Observed", 17, "Logged"),
        _ => {
            event.u64(key!("action_id"), u64::from(d.action_id));
            event.caption(key!("action"), d.action);
            event.u64(key!("disposition_id"), u64::from(d.disposition_id));
            event.caption(key!("disposition"), d.disposition);
            return;
        }
    };
    event.members(literal);
}

/// An OCSF `network_endpoint` from an address, Istio peer metadata and (for the source) the
/// mTLS identity; `None` when nothing names it.
fn write_endpoint(
    event: &mut JsonObject<'_>,
    key: Key,
    address: Option<&str>,
    peer: &PeerWorkload,
    identity: Option<&str>,
) {
    let (ip, port) = match address.and_then(parse_socket_address) {
        Some((ip, port)) => (Some(ip), port),
        None => (None, None),
    };
    let named = ip.is_some() || peer.workload.is_some() || peer.service.is_some();
    // network_endpoint needs one of ip/name/svc_name/uid...: the identity names it.
    let uid = if named { None } else { identity };
    if !named && peer.namespace.is_none() && uid.is_none() {
        return;
    }
    event.object(key, |e| {
        if let Some(ip) = ip {
            e.ip(key!("ip"), ip);
        }
        e.opt_u64(key!("port"), port.map(u64::from));
        e.opt_str(key!("name"), peer.workload.as_deref());
        e.opt_str(key!("svc_name"), peer.service.as_deref());
        e.opt_str(key!("domain"), peer.namespace.as_deref());
        e.opt_str(key!("uid"), uid);
        if let Some(id) = identity {
            let workload = SpiffeId::parse(id);
            e.object(key!("owner"), |o| {
                o.str(key!("uid"), id);
                o.u64(key!("type_id"), 4);
                o.str(key!("type"), "Service");
                o.opt_str(key!("name"), workload.and_then(|w| w.service_account()));
                o.opt_str(key!("domain"), workload.and_then(|w| w.namespace()));
            });
        }
    });
}

fn write_headers<'h>(
    object: &mut JsonObject<'_>,
    headers: impl Iterator<Item = (&'h str, &'h str)>,
) {
    let mut headers = headers.peekable();
    if headers.peek().is_none() {
        return;
    }
    object.array(key!("http_headers"), |list| {
        for (name, value) in headers {
            list.object(|h| {
                h.str(key!("name"), name);
                h.str(key!("value"), value);
            });
        }
    });
}

fn write_response_flags(list: &mut JsonArray<'_>, record: &AuditRecord) {
    for flag in record.response_flags() {
        list.str(flag);
    }
}

/// `"attacks":[...]`, the ATT&CK techniques of the request's signatures then of the response's
/// findings, each once (left out when there are none); the record and the verdict fragment
/// share it.
pub(super) fn write_attacks(
    event: &mut JsonObject<'_>,
    mirror: Option<&MirrorDecision>,
    response: Option<&ResponseVerdict>,
) {
    let mut attacks = mirror.map_or_else(Vec::new, |m| {
        crate::attack::for_signatures(m.signatures.iter().map(String::as_str))
    });
    for a in response.iter().flat_map(|r| r.attacks()) {
        if !attacks.contains(&a) {
            attacks.push(a);
        }
    }
    if attacks.is_empty() {
        return;
    }
    event.array(key!("attacks"), |list| {
        for a in &attacks {
            list.object(|o| {
                o.caption(key!("version"), crate::attack::ATTACK_VERSION);
                o.object(key!("tactic"), |t| {
                    t.caption(key!("uid"), a.tactic_uid);
                    t.caption(key!("name"), a.tactic_name);
                });
                o.object(key!("technique"), |t| {
                    t.caption(key!("uid"), a.technique_uid);
                    t.caption(key!("name"), a.technique_name);
                });
            });
        }
    });
}

/// The activity members (`activity_id`, `activity_name`, `type_uid`, `type_name`) of `method`;
/// the record and the verdict fragment share it.
pub(super) fn write_activity(event: &mut JsonObject<'_>, activity: u32, method: &str) {
    match activity_members(activity) {
        Some(members) => event.members(members),
        None => {
            event.members(r#""activity_id":99"#);
            event.str(key!("activity_name"), method);
            event.members(r#""type_uid":400299,"type_name":"HTTP Activity: Other""#);
        }
    }
}

impl AuditRecord {
    /// Appends the OCSF event as JSON text to `out`.
    pub(super) fn write_ocsf(&self, out: &mut String) {
        let ex = self.exchange();
        let activity = activity_id(&ex.method);
        let end_ms = ex.end_ns / 1_000_000;
        let (status_id, status) = match self.status() {
            Some(code) if code < 400 => (1, "Success"),
            _ => (2, "Failure"),
        };
        let d = self.disposition();
        let trace_id = self.trace_id();
        let flags = ex.response_flags != 0;
        let mut event = JsonObject::open(out);
        event.members(concat!(
            r#""class_uid":4002,"class_name":"HTTP Activity","#,
            r#""category_uid":4,"category_name":"Network Activity""#
        ));
        write_activity(&mut event, activity, &ex.method);
        write_severity(&mut event, self.severity_id());
        event.u64(key!("time"), end_ms);
        event.u64(key!("start_time"), ex.start_ns / 1_000_000);
        event.u64(key!("end_time"), end_ms);
        event.u64(key!("duration"), self.duration_ms());
        event.u64(key!("status_id"), status_id);
        event.caption(key!("status"), status);
        if flags {
            event.plain_str(key!("status_code"), |s| {
                for (i, flag) in self.response_flags().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    s.push_str(flag);
                }
            });
        }
        event.opt_str(key!("status_detail"), ex.response_code_details.as_deref());
        event.object(key!("metadata"), |m| {
            m.members(concat!(
                r#""version":""#,
                ocsf_version!(),
                r#"","product":{"name":"meshsight","vendor_name":"meshsight","version":""#,
                env!("CARGO_PKG_VERSION"),
                r#""},"log_name":"meshsight_audit""#,
            ));
            m.members(if trace_id.is_some() {
                r#""profiles":["security_control","trace"]"#
            } else {
                r#""profiles":["security_control"]"#
            });
            m.opt_str(key!("uid"), ex.request_id.as_deref());
            m.opt_str(key!("correlation_uid"), trace_id);
        });
        event.object(key!("http_request"), |r| {
            if activity != 99 {
                r.str(key!("http_method"), &ex.method);
            }
            r.object(key!("url"), |u| {
                u.str(key!("path"), self.url_path());
                u.str_concat(key!("url_string"), &self.url_parts());
                u.opt_str(key!("hostname"), self.hostname());
                u.opt_u64(key!("port"), self.port().map(u64::from));
                if !ex.scheme.is_empty() {
                    u.str(key!("scheme"), &ex.scheme);
                }
                u.opt_str(key!("query_string"), self.query());
            });
            r.opt_str(key!("user_agent"), ex.request_header("user-agent"));
            r.opt_str(key!("version"), ex.protocol.as_deref());
            r.opt_str(key!("uid"), ex.request_id.as_deref());
            r.opt_u64(key!("length"), ex.request_bytes);
            write_headers(r, self.request_headers());
            if !self.x_forwarded_for().is_empty() {
                r.array(key!("x_forwarded_for"), |list| {
                    for ip in self.x_forwarded_for() {
                        list.ip(*ip);
                    }
                });
            }
        });
        if let Some(code) = self.status() {
            event.object(key!("http_response"), |r| {
                r.u64(key!("code"), u64::from(code));
                r.u64(key!("latency"), self.duration_ms());
                r.opt_u64(key!("length"), ex.response_bytes);
                write_headers(r, self.response_headers());
            });
        }
        write_endpoint(
            &mut event,
            key!("src_endpoint"),
            ex.source_address.as_deref(),
            &ex.source_peer,
            ex.peer_identity.as_deref(),
        );
        write_endpoint(
            &mut event,
            key!("dst_endpoint"),
            ex.destination_address.as_deref(),
            &ex.destination_peer,
            None,
        );
        write_disposition(&mut event, &d);
        if let Some(rule) = ex.allowlist.as_ref().and_then(|a| a.rule.as_deref()) {
            event.object(key!("firewall_rule"), |f| f.str(key!("name"), rule));
        }
        let response_finding = ex.response.as_ref().is_some_and(|r| !r.findings.is_empty());
        if self.signature_mirrored() || response_finding {
            event.bool(key!("is_alert"), true);
        }
        if let Some(r) = &ex.response {
            r.write_risk(&mut event);
        }
        write_attacks(&mut event, ex.mirror.as_ref(), ex.response.as_ref());
        if let Some(t) = trace_id {
            event.object(key!("trace"), |tr| tr.str(key!("uid"), t));
        }
        event.object(key!("unmapped"), |u| {
            u.object(key!("meshsight"), |m| {
                if let Some(a) = &ex.allowlist {
                    m.object(key!("allowlist"), |o| a.write_members(o));
                }
                if let Some(mirror) = &ex.mirror {
                    m.object(key!("mirror"), |o| mirror.write_members(o));
                }
                if let Some(r) = &ex.response {
                    m.object(key!("response"), |o| r.write_members(o));
                }
                if flags {
                    m.array(key!("response_flags"), |list| {
                        write_response_flags(list, self)
                    });
                }
                m.opt_str(
                    key!("response_code_details"),
                    ex.response_code_details.as_deref(),
                );
                m.bool(key!("upstream_failure"), self.upstream_failure());
                m.bool(key!("client_aborted"), self.client_aborted());
                m.opt_str(key!("x_forwarded_for_raw"), self.x_forwarded_for_raw());
                if activity == 99 {
                    m.str(key!("http_method"), &ex.method);
                }
            });
        });
        event.close();
    }

    /// The OCSF 1.7.0 HTTP Activity (class 4002) event, with the `security_control` profile
    /// (and `trace` when a trace id is known), as a JSON value (for tests and tools; the
    /// filter renders text with [`AuditRecord::to_json_line`]).
    #[cfg(any(test, feature = "serde"))]
    pub fn to_ocsf(&self) -> Value {
        serde_json::from_str(&self.to_json_line(super::AuditFormat::Ocsf)).unwrap_or(Value::Null)
    }
}
