//! The audit writers as they were before the size pass (commit f7127d3): OCSF, ECS, the
//! access-log verdict fragment and the response finding, copied with the JSON text writer they
//! used (`json`). The test beside them checks the crate's writers against these byte for byte
//! over many generated records, so a change that shrinks the writers cannot change a record.

#![allow(clippy::too_many_arguments)]

mod json;
#[cfg(test)]
mod tests;

use crate::attack::{Attack, ATTACK_VERSION};
use crate::audit::exchange::PeerWorkload;
use crate::audit::ocsf::activity_id;
use crate::audit::record::{disposition, AuditRecord};
use crate::decision::{AllowlistDecision, MirrorDecision, MirrorReason};
use crate::head::RequestHead;
use crate::identity::{parse_socket_address, SpiffeId};
use crate::response::{ResponseCopy, ResponseVerdict};
use json::{key, push_escaped, push_padded, push_string, push_u64, JsonArray, JsonObject, Key};

/// The OCSF version the records name.
macro_rules! ocsf_version {
    () => {
        "1.7.0"
    };
}

/// The ECS version the records name.
macro_rules! ecs_version {
    () => {
        "8.11.0"
    };
}

fn write_allowlist(d: &AllowlistDecision, o: &mut JsonObject<'_>) {
    o.str(key!("outcome"), d.outcome.as_str());
    o.opt_str(key!("rule"), d.rule.as_deref());
    o.opt_str(key!("reason"), d.reason.as_deref());
}

fn write_mirror(d: &MirrorDecision, m: &mut JsonObject<'_>) {
    m.bool(key!("mirrored"), d.mirrored);
    m.opt_str(key!("target"), d.target.as_deref());
    m.str(key!("reason"), d.reason.as_str());
    m.opt_str(key!("rule"), d.rule.as_deref());
    m.strs_unless_empty(key!("signatures"), &d.signatures);
    m.strs_unless_empty(key!("signature_rules"), &d.signature_rules);
    m.strs_unless_empty(key!("findings"), &d.findings);
}

fn push_ocsf_attacks(out: &mut String, attacks: &[Attack]) {
    if attacks.is_empty() {
        return;
    }
    out.push_str(",\"attacks\":[");
    for (i, a) in attacks.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for part in [
            "{\"version\":\"",
            ATTACK_VERSION,
            "\",\"tactic\":{\"uid\":\"",
            a.tactic_uid,
            "\",\"name\":\"",
            a.tactic_name,
            "\"},\"technique\":{\"uid\":\"",
            a.technique_uid,
            "\",\"name\":\"",
            a.technique_name,
            "\"}}",
        ] {
            out.push_str(part);
        }
    }
    out.push(']');
}

/// The response finding as one JSON object, as `ResponseVerdict::to_json_text` wrote it.
pub(super) fn response_json_text(r: &ResponseVerdict) -> String {
    let mut out = String::with_capacity(256);
    let mut o = JsonObject::open(&mut out);
    write_response_members(r, &mut o);
    o.close();
    out
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

fn severity_name(id: u32) -> &'static str {
    match id {
        1 => "Informational",
        2 => "Low",
        3 => "Medium",
        4 => "High",
        5 => "Critical",
        _ => "Unknown",
    }
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

pub(super) fn write_ocsf(record: &AuditRecord, out: &mut String) {
    let ex = record.exchange();
    let activity = activity_id(&ex.method);
    let end_ms = ex.end_ns / 1_000_000;
    let (status_id, status) = match record.status() {
        Some(code) if code < 400 => (1, "Success"),
        _ => (2, "Failure"),
    };
    let d = record.disposition();
    let trace_id = record.trace_id();
    let flags = ex.response_flags != 0;
    let mut event = JsonObject::open(out);
    event.members(concat!(
        r#""class_uid":4002,"class_name":"HTTP Activity","#,
        r#""category_uid":4,"category_name":"Network Activity""#
    ));
    match activity_members(activity) {
        Some(members) => event.members(members),
        None => {
            event.members(r#""activity_id":99"#);
            event.str(key!("activity_name"), &ex.method);
            event.members(r#""type_uid":400299,"type_name":"HTTP Activity: Other""#);
        }
    }
    event.u64(key!("severity_id"), u64::from(record.severity_id()));
    event.str(key!("severity"), severity_name(record.severity_id()));
    event.u64(key!("time"), end_ms);
    event.u64(key!("start_time"), ex.start_ns / 1_000_000);
    event.u64(key!("end_time"), end_ms);
    event.u64(key!("duration"), record.duration_ms());
    event.u64(key!("status_id"), status_id);
    event.str(key!("status"), status);
    if flags {
        event.plain_str(key!("status_code"), |s| {
            for (i, flag) in record.response_flags().enumerate() {
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
            u.str(key!("path"), record.url_path());
            u.str_concat(key!("url_string"), &record.url_parts());
            u.opt_str(key!("hostname"), record.hostname());
            u.opt_u64(key!("port"), record.port().map(u64::from));
            if !ex.scheme.is_empty() {
                u.str(key!("scheme"), &ex.scheme);
            }
            u.opt_str(key!("query_string"), record.query());
        });
        r.opt_str(key!("user_agent"), ex.request_header("user-agent"));
        r.opt_str(key!("version"), ex.protocol.as_deref());
        r.opt_str(key!("uid"), ex.request_id.as_deref());
        r.opt_u64(key!("length"), ex.request_bytes);
        write_headers(r, record.request_headers());
        if !record.x_forwarded_for().is_empty() {
            r.array(key!("x_forwarded_for"), |list| {
                for ip in record.x_forwarded_for() {
                    list.ip(*ip);
                }
            });
        }
    });
    if let Some(code) = record.status() {
        event.object(key!("http_response"), |r| {
            r.u64(key!("code"), u64::from(code));
            r.u64(key!("latency"), record.duration_ms());
            r.opt_u64(key!("length"), ex.response_bytes);
            write_headers(r, record.response_headers());
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
    event.u64(key!("action_id"), u64::from(d.action_id));
    event.str(key!("action"), d.action);
    event.u64(key!("disposition_id"), u64::from(d.disposition_id));
    event.str(key!("disposition"), d.disposition);
    if let Some(rule) = ex.allowlist.as_ref().and_then(|a| a.rule.as_deref()) {
        event.object(key!("firewall_rule"), |f| f.str(key!("name"), rule));
    }
    let response_finding = ex.response.as_ref().is_some_and(|r| !r.findings.is_empty());
    if record.signature_mirrored() || response_finding {
        event.bool(key!("is_alert"), true);
    }
    if let Some(r) = &ex.response {
        write_risk(r, &mut event);
    }
    {
        let mut attacks = ex.mirror.as_ref().map_or_else(Vec::new, |m| {
            crate::attack::for_signatures(m.signatures.iter().map(String::as_str))
        });
        for a in ex.response.iter().flat_map(|r| r.attacks()) {
            if !attacks.contains(&a) {
                attacks.push(a);
            }
        }
        if !attacks.is_empty() {
            event.array(key!("attacks"), |list| {
                for a in &attacks {
                    list.object(|o| {
                        o.str(key!("version"), crate::attack::ATTACK_VERSION);
                        o.object(key!("tactic"), |t| {
                            t.str(key!("uid"), a.tactic_uid);
                            t.str(key!("name"), a.tactic_name);
                        });
                        o.object(key!("technique"), |t| {
                            t.str(key!("uid"), a.technique_uid);
                            t.str(key!("name"), a.technique_name);
                        });
                    });
                }
            });
        }
    }
    if let Some(t) = trace_id {
        event.object(key!("trace"), |tr| tr.str(key!("uid"), t));
    }
    event.object(key!("unmapped"), |u| {
        u.object(key!("meshsight"), |m| {
            if let Some(a) = &ex.allowlist {
                m.object(key!("allowlist"), |o| write_allowlist(a, o));
            }
            if let Some(mirror) = &ex.mirror {
                m.object(key!("mirror"), |o| write_mirror(mirror, o));
            }
            if let Some(r) = &ex.response {
                m.object(key!("response"), |o| write_response_members(r, o));
            }
            if flags {
                m.array(key!("response_flags"), |list| {
                    write_response_flags(list, record)
                });
            }
            m.opt_str(
                key!("response_code_details"),
                ex.response_code_details.as_deref(),
            );
            m.bool(key!("upstream_failure"), record.upstream_failure());
            m.bool(key!("client_aborted"), record.client_aborted());
            m.opt_str(key!("x_forwarded_for_raw"), record.x_forwarded_for_raw());
            if activity == 99 {
                m.str(key!("http_method"), &ex.method);
            }
        });
    });
    event.close();
}

/// Appends `YYYY-MM-DDTHH:MM:SS.mmmZ` for ns since the epoch.
fn push_rfc3339_ms(out: &mut String, ns: u64) {
    let ms = ns / 1_000_000;
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let sod = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    // Days since 1970 from a u64 of ns are never negative: so are y, m and d.
    push_padded(out, y.unsigned_abs(), 4);
    out.push('-');
    push_padded(out, m.unsigned_abs(), 2);
    out.push('-');
    push_padded(out, d.unsigned_abs(), 2);
    out.push('T');
    push_padded(out, sod / 3600, 2);
    out.push(':');
    push_padded(out, (sod / 60) % 60, 2);
    out.push(':');
    push_padded(out, sod % 60, 2);
    out.push('.');
    push_padded(out, ms % 1000, 3);
    out.push('Z');
}

fn write_time(o: &mut JsonObject<'_>, key: Key, ns: u64) {
    o.plain_str(key, |s| push_rfc3339_ms(s, ns));
}

/// Sorts header pairs by name, stably (repeated headers keep their order). An insertion sort:
/// a request has few headers (Envoy refuses more than `max_headers_count`, 100 by default), and
/// std's sort would add about 5 KB of Wasm to every sidecar for this one list.
fn sort_by_name(pairs: &mut [(&str, &str)]) {
    for i in 1..pairs.len() {
        let mut j = i;
        while j > 0 && pairs.get(j - 1).map(|p| p.0) > pairs.get(j).map(|p| p.0) {
            pairs.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// Headers as an ECS object: names in order, repeated headers joined with `, `.
fn write_header_map<'h>(o: &mut JsonObject<'_>, headers: impl Iterator<Item = (&'h str, &'h str)>) {
    let mut sorted: Vec<(&str, &str)> = headers.collect();
    if sorted.is_empty() {
        return;
    }
    sort_by_name(&mut sorted);
    o.object(key!("headers"), |map| {
        let mut i = 0;
        while let Some((name, first)) = sorted.get(i).copied() {
            let same = sorted
                .get(i..)
                .unwrap_or_default()
                .iter()
                .take_while(|(n, _)| *n == name)
                .count();
            if same == 1 {
                map.named_str(name, first);
            } else {
                let values: Vec<&str> = sorted
                    .get(i..i + same)
                    .unwrap_or_default()
                    .iter()
                    .map(|(_, v)| *v)
                    .collect();
                map.named_str(name, &values.join(", "));
            }
            i += same;
        }
    });
}

fn write_peer(o: &mut JsonObject<'_>, key: Key, peer: &PeerWorkload) {
    if peer.is_empty() {
        return;
    }
    o.object(key, |p| {
        p.opt_str(key!("namespace"), peer.namespace.as_deref());
        p.opt_str(key!("service"), peer.service.as_deref());
        p.opt_str(key!("workload"), peer.workload.as_deref());
    });
}

fn write_ecs_endpoint(o: &mut JsonObject<'_>, key: Key, address: Option<&str>) {
    if let Some((ip, port)) = address.and_then(parse_socket_address) {
        o.object(key, |e| {
            e.ip(key!("address"), ip);
            e.ip(key!("ip"), ip);
            e.opt_u64(key!("port"), port.map(u64::from));
        });
    }
}

pub(super) fn write_ecs(record: &AuditRecord, out: &mut String) {
    let ex = record.exchange();
    let d = record.disposition();
    let outcome = match record.status() {
        Some(code) if code < 400 => "success",
        Some(_) => "failure",
        None => "unknown",
    };
    let mut doc = JsonObject::open(out);
    write_time(&mut doc, key!("@timestamp"), ex.end_ns);
    write_ecs_endpoint(
        &mut doc,
        key!("destination"),
        ex.destination_address.as_deref(),
    );
    doc.members(concat!(r#""ecs":{"version":""#, ecs_version!(), r#""}"#));
    doc.object(key!("event"), |e| {
        e.plain_str(key!("action"), |s| {
            for c in d.disposition.chars() {
                s.push(if c == ' ' {
                    '-'
                } else {
                    c.to_ascii_lowercase()
                });
            }
        });
        e.members(r#""category":["network","web"],"dataset":"meshsight.audit""#);
        e.u64(key!("duration"), ex.end_ns.saturating_sub(ex.start_ns));
        write_time(e, key!("end"), ex.end_ns);
        e.opt_str(key!("id"), ex.request_id.as_deref());
        e.members(r#""kind":"event","module":"meshsight""#);
        e.str(key!("outcome"), outcome);
        e.u64(key!("severity"), u64::from(record.severity_id()));
        write_time(e, key!("start"), ex.start_ns);
        e.array(key!("type"), |t| {
            t.str("access");
            t.str(if d.action_id == 2 {
                "denied"
            } else {
                "allowed"
            });
        });
    });
    doc.object(key!("http"), |h| {
        h.object(key!("request"), |r| {
            r.opt_u64(key!("bytes"), ex.request_bytes);
            write_header_map(r, record.request_headers());
            r.opt_str(key!("id"), ex.request_id.as_deref());
            r.str(key!("method"), &ex.method);
        });
        if let Some(code) = record.status() {
            h.object(key!("response"), |r| {
                r.opt_u64(key!("bytes"), ex.response_bytes);
                write_header_map(r, record.response_headers());
                r.u64(key!("status_code"), u64::from(code));
            });
        }
        h.opt_str(
            key!("version"),
            ex.protocol.as_deref().and_then(|p| p.strip_prefix("HTTP/")),
        );
    });
    doc.object(key!("meshsight"), |m| {
        if let Some(a) = &ex.allowlist {
            m.object(key!("allowlist"), |o| {
                o.str(key!("outcome"), a.outcome.as_str());
                o.opt_str(key!("reason"), a.reason.as_deref());
                o.opt_str(key!("rule"), a.rule.as_deref());
            });
        }
        m.bool(key!("client_aborted"), record.client_aborted());
        write_peer(m, key!("destination_peer"), &ex.destination_peer);
        if activity_id(&ex.method) == 99 {
            m.str(key!("http_method"), &ex.method);
        }
        if let Some(mirror) = &ex.mirror {
            m.object(key!("mirror"), |o| {
                o.strs_unless_empty(key!("findings"), &mirror.findings);
                o.bool(key!("mirrored"), mirror.mirrored);
                o.str(key!("reason"), mirror.reason.as_str());
                o.opt_str(key!("rule"), mirror.rule.as_deref());
                o.strs_unless_empty(key!("signatures"), &mirror.signatures);
                o.opt_str(key!("target"), mirror.target.as_deref());
            });
        }
        if let Some(r) = &ex.response {
            m.object(key!("response"), |o| write_response_members(r, o));
        }
        m.opt_str(
            key!("response_code_details"),
            ex.response_code_details.as_deref(),
        );
        if ex.response_flags != 0 {
            m.array(key!("response_flags"), |list| {
                for flag in record.response_flags() {
                    list.str(flag);
                }
            });
        }
        write_peer(m, key!("source_peer"), &ex.source_peer);
        m.bool(key!("upstream_failure"), record.upstream_failure());
        m.opt_str(key!("x_forwarded_for_raw"), record.x_forwarded_for_raw());
    });
    doc.object(key!("network"), |n| {
        if let Some(ip) = record.x_forwarded_for().first() {
            n.ip(key!("forwarded_ip"), *ip);
        }
        n.members(r#""protocol":"http""#);
    });
    doc.members(concat!(
        r#""observer":{"product":"meshsight","type":"proxy","vendor":"meshsight","version":""#,
        env!("CARGO_PKG_VERSION"),
        r#""}"#
    ));
    if let Some(rule) = ex.allowlist.as_ref().and_then(|a| a.rule.as_deref()) {
        doc.object(key!("rule"), |r| r.str(key!("name"), rule));
    }
    write_ecs_endpoint(&mut doc, key!("source"), ex.source_address.as_deref());
    if let Some(id) = &ex.peer_identity {
        doc.object(key!("tls"), |t| {
            t.object(key!("client"), |c| {
                c.object(key!("x509"), |x| {
                    x.array(key!("alternative_names"), |names| names.str(id));
                });
            });
        });
    }
    if let Some(t) = record.trace_id() {
        doc.object(key!("trace"), |tr| tr.str(key!("id"), t));
    }
    doc.object(key!("url"), |u| {
        u.opt_str(key!("domain"), record.hostname());
        u.str_concat(key!("full"), &record.url_parts());
        u.str(key!("path"), record.url_path());
        u.opt_u64(key!("port"), record.port().map(u64::from));
        u.opt_str(key!("query"), record.query());
        if !ex.scheme.is_empty() {
            u.str(key!("scheme"), &ex.scheme);
        }
    });
    if let Some(ua) = ex.request_header("user-agent") {
        doc.object(key!("user_agent"), |u| u.str(key!("original"), ua));
    }
    doc.close();
}

pub(super) fn write_verdict(
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
    out.push_str("\"activity_id\":");
    push_u64(out, u64::from(activity));
    out.push_str(",\"activity_name\":");
    if activity == 99 {
        push_string(out, method);
    } else {
        out.push('"');
        out.push_str(activity_caption(activity));
        out.push('"');
    }
    out.push_str(",\"type_uid\":");
    push_u64(out, u64::from(4002 * 100 + activity));
    out.push_str(",\"type_name\":\"HTTP Activity: ");
    out.push_str(activity_caption(activity));
    out.push_str("\",\"severity_id\":");
    push_u64(out, u64::from(severity_id));
    out.push_str(",\"severity\":\"");
    out.push_str(severity_caption(severity_id));
    out.push_str("\",\"action_id\":");
    push_u64(out, u64::from(d.action_id));
    out.push_str(",\"action\":\"");
    out.push_str(d.action);
    out.push_str("\",\"disposition_id\":");
    push_u64(out, u64::from(d.disposition_id));
    out.push_str(",\"disposition\":\"");
    out.push_str(d.disposition);
    out.push_str("\",\"is_alert\":");
    out.push_str(if alert { "true" } else { "false" });
    let mut attacks = mirror.map_or_else(Vec::new, |m| {
        crate::attack::for_signatures(m.signatures.iter().map(String::as_str))
    });
    for a in response.iter().flat_map(|r| r.attacks()) {
        if !attacks.contains(&a) {
            attacks.push(a);
        }
    }
    push_ocsf_attacks(out, &attacks);
    if let Some(rule) = allowlist.and_then(|a| a.rule.as_deref()) {
        out.push_str(",\"firewall_rule\":{\"name\":");
        push_string(out, rule);
        out.push('}');
    }
    if let Some(r) = response {
        // The risk members go in an object of their own, then are spliced in without braces.
        let mut risk = String::new();
        let mut o = JsonObject::open(&mut risk);
        write_risk(r, &mut o);
        o.close();
        if risk.len() > 2 {
            out.push(',');
            out.push_str(risk.get(1..risk.len() - 1).unwrap_or_default());
        }
    }
    out.push_str(",\"unmapped\":");
    let mut unmapped = JsonObject::open(out);
    unmapped.object(key!("meshsight"), |m| {
        if let Some(a) = allowlist {
            m.object(key!("allowlist"), |o| write_allowlist(a, o));
        }
        if let Some(d) = mirror {
            m.object(key!("mirror"), |o| write_mirror(d, o));
        }
        if let Some(r) = response {
            m.object(key!("response"), |o| write_response_members(r, o));
        }
        if activity == 99 {
            m.str(key!("http_method"), method);
        }
    });
    unmapped.close();
}

pub(super) fn write_request(
    out: &mut String,
    method: &str,
    scheme: &str,
    authority: &str,
    path: &str,
    user_agent: Option<&str>,
    request_id: Option<&str>,
) {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if activity_id(method) != 99 {
        out.push_str("\"http_method\":");
        push_string(out, method);
        out.push(',');
    }
    out.push_str("\"url\":{\"path\":");
    push_string(out, path);
    let (host, port) = host_and_port(authority);
    if !host.is_empty() {
        out.push_str(",\"hostname\":");
        push_string(out, host);
    }
    if let Some(p) = port {
        out.push_str(",\"port\":");
        push_u64(out, u64::from(p));
    }
    if !scheme.is_empty() {
        out.push_str(",\"scheme\":");
        push_string(out, scheme);
    }
    out.push_str(",\"url_string\":\"");
    if !scheme.is_empty() {
        push_escaped(out, scheme);
        out.push_str("://");
    }
    push_escaped(out, authority);
    push_escaped(out, path);
    out.push_str("\"}");
    if let Some(ua) = user_agent {
        out.push_str(",\"user_agent\":");
        push_string(out, ua);
    }
    if let Some(id) = request_id {
        out.push_str(",\"uid\":");
        push_string(out, id);
    }
}

/// The filter-state entry's bytes, as `verdict::entries_with_response` wrote them.
pub(super) fn entries_with_response(
    head: &RequestHead,
    allowlist: Option<&AllowlistDecision>,
    mirror: Option<&MirrorDecision>,
    response: Option<&ResponseVerdict>,
) -> Vec<u8> {
    let (authority, path) = (head.authority(), head.path());
    let user_agent = head.header("user-agent");
    let mut out = String::new();
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
    out.into_bytes()
}

fn activity_caption(activity: u32) -> &'static str {
    match activity {
        1 => "Connect",
        2 => "Delete",
        3 => "Get",
        4 => "Head",
        5 => "Options",
        6 => "Post",
        7 => "Put",
        8 => "Trace",
        9 => "Patch",
        _ => "Other",
    }
}

fn severity_caption(id: u32) -> &'static str {
    match id {
        1 => "Informational",
        2 => "Low",
        3 => "Medium",
        4 => "High",
        5 => "Critical",
        _ => "Unknown",
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

/// OCSF `risk_level_id`: Critical (4) succeeded after a signature, High (3) succeeded,
/// Medium (2) attempted.
fn risk_level_id(this: &ResponseVerdict) -> Option<u64> {
    match (this.findings.is_empty(), this.signature_hit) {
        (false, true) => Some(4),
        (false, false) => Some(3),
        (true, true) => Some(2),
        (true, false) => None,
    }
}

/// `succeeded: <kinds> (<techniques>)` or `attempted: no response finding`.
fn risk_details(this: &ResponseVerdict) -> String {
    if this.findings.is_empty() {
        return "attempted: no response finding".to_string();
    }
    let mut kinds: Vec<&str> = Vec::new();
    let mut techniques: Vec<&str> = Vec::new();
    for f in &this.findings {
        if !kinds.contains(&f.category.as_str()) {
            kinds.push(&f.category);
        }
        if let Some(t) = f.technique.as_deref().filter(|t| !techniques.contains(t)) {
            techniques.push(t);
        }
    }
    format!(
        "succeeded: {} in the response ({})",
        kinds.join(", "),
        techniques.join(", ")
    )
}

/// Appends `risk_level_id`, `risk_level` and `risk_details` to an OCSF event (nothing when
/// there was neither an attempt nor a finding).
fn write_risk(this: &ResponseVerdict, event: &mut JsonObject<'_>) {
    let Some(level) = risk_level_id(this) else {
        return;
    };
    event.u64(key!("risk_level_id"), level);
    event.str(
        key!("risk_level"),
        match level {
            4 => "Critical",
            3 => "High",
            _ => "Medium",
        },
    );
    event.str(key!("risk_details"), &risk_details(this));
}

/// The members of `unmapped.meshsight.response`: outcome, status, what inflating the body
/// found wrong (`decoding`), whether it was copied
/// (`mirrored`, and `reason: rate_limited` as the request's decision says it), findings
/// (rule, kind, where, technique, the secret's kind, place and short hash).
fn write_response_members(this: &ResponseVerdict, o: &mut JsonObject<'_>) {
    o.str(key!("outcome"), this.outcome());
    o.u64(key!("status"), u64::from(this.status));
    o.opt_str(key!("decoding"), this.decoding);
    if this.copy != ResponseCopy::None {
        let copied = this.copy == ResponseCopy::Mirrored;
        o.bool(key!("mirrored"), copied);
        if !copied {
            o.str(key!("reason"), MirrorReason::RateLimited.as_str());
        }
    }
    o.array(key!("findings"), |list| {
        for f in &this.findings {
            list.object(|fo| {
                fo.str(key!("rule"), &f.rule);
                fo.str(key!("kind"), &f.category);
                fo.str(key!("where"), f.location);
                fo.opt_str(key!("technique"), f.technique.as_deref());
                if let Some(s) = &f.secret {
                    fo.object(key!("secret"), |so| {
                        so.str(key!("kind"), s.kind);
                        so.str(key!("where"), &s.location);
                        so.str(key!("sha256"), &s.sha256);
                    });
                }
            });
        }
    });
}
