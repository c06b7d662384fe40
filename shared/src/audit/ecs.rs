//! The Elastic Common Schema rendering of an [`AuditRecord`] (ECS 8.11 field names; meshsight
//! specifics under `meshsight`).
//!
//! Written as JSON text straight into one `String` (`crate::json`), members in sorted key
//! order at every level (as a `serde_json::Value` map would print them).

#[cfg(any(test, feature = "serde"))]
use serde_json::Value;

use super::exchange::PeerWorkload;
use super::record::AuditRecord;
use crate::identity::parse_socket_address;
use crate::json::{key, JsonObject, Key};

#[cfg(test)]
mod tests;

/// The ECS version as a literal, for the records' constant parts.
macro_rules! ecs_version {
    () => {
        "8.11.0"
    };
}

/// ECS version the `ecs` records follow.
pub const ECS_VERSION: &str = ecs_version!();

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for ns since the epoch.
pub fn rfc3339_ms(ns: u64) -> String {
    let mut s = String::with_capacity(24);
    push_rfc3339_ms(&mut s, ns);
    s
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
    // Days since 1970 from a u64 of ns are never negative: so are y, m and d; and a u64 of ns
    // ends in 2554, so the year has four digits. Written into one fixed buffer, pushed once.
    let mut text = *b"0000-00-00T00:00:00.000Z";
    for (at, width, n) in [
        (0, 4, y.unsigned_abs()),
        (5, 2, m.unsigned_abs()),
        (8, 2, d.unsigned_abs()),
        (11, 2, sod / 3600),
        (14, 2, (sod / 60) % 60),
        (17, 2, sod % 60),
        (20, 3, ms % 1000),
    ] {
        let mut n = n as u32;
        for slot in text.iter_mut().skip(at).take(width).rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
    }
    out.push_str(std::str::from_utf8(&text).unwrap_or_default());
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

fn write_endpoint(o: &mut JsonObject<'_>, key: Key, address: Option<&str>) {
    if let Some((ip, port)) = address.and_then(parse_socket_address) {
        o.object(key, |e| {
            e.ip(key!("address"), ip);
            e.ip(key!("ip"), ip);
            e.opt_u64(key!("port"), port.map(u64::from));
        });
    }
}

impl AuditRecord {
    /// Appends the ECS document as JSON text to `out`.
    pub(super) fn write_ecs(&self, out: &mut String) {
        let ex = self.exchange();
        let d = self.disposition();
        let outcome = match self.status() {
            Some(code) if code < 400 => "success",
            Some(_) => "failure",
            None => "unknown",
        };
        let mut doc = JsonObject::open(out);
        write_time(&mut doc, key!("@timestamp"), ex.end_ns);
        write_endpoint(
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
            e.caption(key!("outcome"), outcome);
            e.u64(key!("severity"), u64::from(self.severity_id()));
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
                write_header_map(r, self.request_headers());
                r.opt_str(key!("id"), ex.request_id.as_deref());
                r.str(key!("method"), &ex.method);
            });
            if let Some(code) = self.status() {
                h.object(key!("response"), |r| {
                    r.opt_u64(key!("bytes"), ex.response_bytes);
                    write_header_map(r, self.response_headers());
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
                    o.caption(key!("outcome"), a.outcome.as_str());
                    o.opt_str(key!("reason"), a.reason.as_deref());
                    o.opt_str(key!("rule"), a.rule.as_deref());
                });
            }
            m.bool(key!("client_aborted"), self.client_aborted());
            write_peer(m, key!("destination_peer"), &ex.destination_peer);
            if super::ocsf::activity_id(&ex.method) == 99 {
                m.str(key!("http_method"), &ex.method);
            }
            if let Some(mirror) = &ex.mirror {
                m.object(key!("mirror"), |o| {
                    o.strs_unless_empty(key!("findings"), &mirror.findings);
                    o.bool(key!("mirrored"), mirror.mirrored);
                    o.caption(key!("reason"), mirror.reason.as_str());
                    o.opt_str(key!("rule"), mirror.rule.as_deref());
                    o.strs_unless_empty(key!("signatures"), &mirror.signatures);
                    o.opt_str(key!("target"), mirror.target.as_deref());
                });
            }
            if let Some(r) = &ex.response {
                m.object(key!("response"), |o| r.write_members(o));
            }
            m.opt_str(
                key!("response_code_details"),
                ex.response_code_details.as_deref(),
            );
            if ex.response_flags != 0 {
                m.array(key!("response_flags"), |list| {
                    for flag in self.response_flags() {
                        list.str(flag);
                    }
                });
            }
            write_peer(m, key!("source_peer"), &ex.source_peer);
            m.bool(key!("upstream_failure"), self.upstream_failure());
            m.opt_str(key!("x_forwarded_for_raw"), self.x_forwarded_for_raw());
        });
        doc.object(key!("network"), |n| {
            if let Some(ip) = self.x_forwarded_for().first() {
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
        write_endpoint(&mut doc, key!("source"), ex.source_address.as_deref());
        if let Some(id) = &ex.peer_identity {
            doc.object(key!("tls"), |t| {
                t.object(key!("client"), |c| {
                    c.object(key!("x509"), |x| {
                        x.array(key!("alternative_names"), |names| names.str(id));
                    });
                });
            });
        }
        if let Some(t) = self.trace_id() {
            doc.object(key!("trace"), |tr| tr.str(key!("id"), t));
        }
        doc.object(key!("url"), |u| {
            u.opt_str(key!("domain"), self.hostname());
            u.str_concat(key!("full"), &self.url_parts());
            u.str(key!("path"), self.url_path());
            u.opt_u64(key!("port"), self.port().map(u64::from));
            u.opt_str(key!("query"), self.query());
            if !ex.scheme.is_empty() {
                u.str(key!("scheme"), &ex.scheme);
            }
        });
        if let Some(ua) = ex.request_header("user-agent") {
            doc.object(key!("user_agent"), |u| u.str(key!("original"), ua));
        }
        doc.close();
    }

    /// The Elastic Common Schema document (ECS 8.11 field names; meshsight specifics under
    /// `meshsight`), as a JSON value (for tests and tools).
    #[cfg(any(test, feature = "serde"))]
    pub fn to_ecs(&self) -> Value {
        serde_json::from_str(&self.to_json_line(super::AuditFormat::Ecs)).unwrap_or(Value::Null)
    }
}
