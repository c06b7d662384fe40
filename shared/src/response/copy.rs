//! The response's copy for the sensor: a `dispatch` call to the signature target's cluster,
//! linked to the request's copy by `x-meshsight-mirror-request-id` (the header the request's
//! copy carries). It is a `POST` to [`RESPONSE_COPY_PATH`] whose JSON body holds the status,
//! the response headers (no credential header, secrets masked), the finding and the first
//! bytes of the body with every secret masked: the sensor sees what came back, never the
//! key, token or key material. A response's copy takes a token from its target's bucket, the
//! same one the request copies take from ([`offer_response_copy`]).

use crate::head::RequestHead;
use crate::json::{key, JsonObject};
use crate::mirror::copy::{Clock, MirrorWorker};
use crate::mirror::delivery::{DispatchCopy, Offered};
use crate::mirror::MirrorPolicy;

use super::{ResponseCopy, ResponseVerdict};

/// Path of a response copy.
pub const RESPONSE_COPY_PATH: &str = "/.meshsight/response";

/// The copy of a scanned response, or `None` when the policy has no signature target.
pub fn response_copy(
    policy: &MirrorPolicy,
    head: &RequestHead,
    verdict: &ResponseVerdict,
) -> Option<DispatchCopy> {
    let target_id = policy.signature_target()?;
    let target = policy.targets().get(target_id)?;
    let authority = target.authority.as_deref().unwrap_or(head.authority());
    let mut headers: Vec<(String, String)> = vec![
        (":method".into(), "POST".into()),
        (":path".into(), RESPONSE_COPY_PATH.into()),
        (":authority".into(), authority.into()),
        (":scheme".into(), "http".into()),
        ("content-type".into(), "application/json".into()),
        ("x-meshsight-mirror-target".into(), target.name.clone()),
        (
            "x-meshsight-mirror-response-status".into(),
            verdict.status.to_string(),
        ),
        (
            "x-meshsight-mirror-response-outcome".into(),
            verdict.outcome().into(),
        ),
    ];
    if let Some(id) = head.request_id() {
        headers.push(("x-meshsight-mirror-request-id".into(), id.into()));
    }
    let mut body = String::with_capacity(512 + verdict.excerpt.len() * 2);
    let mut o = JsonObject::open(&mut body);
    o.opt_str(key!("request_id"), head.request_id());
    o.str(key!("method"), head.method());
    o.str(key!("authority"), head.authority());
    o.str(key!("path"), head.path());
    o.object(key!("response"), |r| verdict.write_members(r));
    o.array(key!("headers"), |list| {
        for (n, v) in &verdict.headers {
            list.object(|h| {
                h.str(key!("name"), n);
                h.str(key!("value"), v);
            });
        }
    });
    o.str(key!("excerpt"), &String::from_utf8_lossy(&verdict.excerpt));
    o.close();
    Some(DispatchCopy {
        target: target_id,
        headers,
        body: body.into_bytes(),
    })
}

/// Offers the copy of a response that succeeded or was attempted to the worker's deliveries,
/// within its target's rate cap: the verdict then says whether it was copied or refused for
/// rate (`copy`, for the record). `None`: no copy (nothing to report, no signature target, or
/// the bucket was empty); the clock is read only when there is a copy to make.
pub fn offer_response_copy(
    policy: &MirrorPolicy,
    worker: &mut MirrorWorker,
    head: &RequestHead,
    verdict: &mut ResponseVerdict,
    clock: &mut Clock<'_>,
) -> Option<Offered> {
    if verdict.outcome() == "none" {
        return None;
    }
    let target = policy.signature_target()?;
    let now = clock.now();
    if !worker.limiter.admit(target, now) {
        verdict.copy = ResponseCopy::RateLimited;
        return None;
    }
    verdict.copy = ResponseCopy::Mirrored;
    let copy = response_copy(policy, head, verdict)?;
    Some(worker.deliveries.offer(copy, now))
}
