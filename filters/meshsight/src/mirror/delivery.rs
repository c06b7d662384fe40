//! `dispatch` delivery on the host: the worker's root context sends the copies its streams
//! queued (in `meshsight_policy::mirror::delivery::Deliveries`) on its next tick.
//!
//! Envoy ties an HTTP call to the context that makes it: a stream's calls are cancelled when
//! the stream ends, and the SDK only reports an answer to a context that still exists. So the
//! root context makes every call and sees every answer; the accounting (in flight, failures,
//! rests) is the policy crate's.

use super::Configured;
use crate::host;
use meshsight_policy::error::Quoted;
use std::time::Duration;

/// Tick period while copies wait to be sent.
const SEND_TICK: Duration = Duration::from_millis(1);

/// Arms the root context's send tick (also when called from a stream: the tick is the
/// root's).
pub(crate) fn arm_send_tick() {
    host::set_tick_period(SEND_TICK);
}

/// Sends every queued copy (root context, on tick) and puts the tick back to what the other
/// jobs need.
pub(crate) fn send_queued(configured: &Configured, now: u64) {
    let copies = configured.worker.borrow_mut().deliveries.take_queue();
    if copies.is_empty() {
        return;
    }
    host::set_tick_period(configured.idle_tick);
    for copy in copies {
        let Some(target) = configured.policy.targets().get(copy.target) else {
            continue;
        };
        let headers: Vec<(&str, &str)> = copy
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let body = (!copy.body.is_empty()).then_some(copy.body.as_slice());
        let timeout = Duration::from_millis(target.timeout_ms);
        let sent = host::dispatch_http_call(&target.cluster, headers, body, timeout);
        let deliveries = &mut configured.worker.borrow_mut().deliveries;
        match sent {
            Ok(token) => deliveries.sent(copy.target, token, now),
            Err(status) => {
                log!(
                    Warn,
                    "meshsight mirror: dispatch to cluster {} failed: {status:?}",
                    Quoted(&target.cluster)
                );
                configured.metrics.dispatch_failed.inc();
                deliveries.refused(copy.target, now);
            }
        }
    }
}
