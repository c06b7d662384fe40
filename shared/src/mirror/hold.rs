//! Requests held while their body is read (`hold_for_body`), bounded in time.
//!
//! A held request waits for its body; Envoy hands the body to a paused filter only with
//! `allow_on_headers_stop_iteration`, which an Istio WasmPlugin cannot set. Without it the
//! body never comes, and a held request (a denied POST waiting for its 403) would wait until
//! Envoy's idle timeout: one connection and one buffer per request, for anyone who sends
//! denied POSTs. So every hold has a deadline ([`HeldRequests`]): past it the request is let go
//! (answered, or resumed) whether or not its body arrived. And when holds keep running out
//! without a byte of body, the worker stops holding (`HoldWatch`): the proxy cannot hand
//! bodies over, and holding only delays every request by the timeout.
//!
//! Pure bookkeeping, time passed in: the adapter keeps one per worker, registers a hold when
//! the copy state machine answers [`super::copy::Flow::Hold`], and acts on what
//! [`HeldRequests::expire`] returns on its tick.

/// Default `hold_timeout_ms`: long enough for a body sent with its head to arrive, short
/// enough that a proxy that never hands bodies over costs each request a quarter second.
pub const DEFAULT_HOLD_TIMEOUT_MS: u64 = 250;
/// Most `hold_timeout_ms` accepted.
pub const MAX_HOLD_TIMEOUT_MS: u64 = 30_000;
/// Holds in a row that ran out before any body arrived, after which the worker stops holding.
pub const BODYLESS_TIMEOUTS_TO_STOP: u32 = 3;

/// One held request.
#[derive(Debug)]
struct Held<T> {
    context_id: u32,
    deadline_nanos: u64,
    body_seen: bool,
    payload: T,
}

/// The requests a worker holds, each with its deadline and what to do when it runs out
/// (`T`: for a denied request, the local reply held back; for an allowed one, nothing).
#[derive(Debug)]
pub struct HeldRequests<T> {
    held: Vec<Held<T>>,
    watch: HoldWatch,
}

impl<T> Default for HeldRequests<T> {
    fn default() -> Self {
        HeldRequests {
            held: Vec::new(),
            watch: HoldWatch::default(),
        }
    }
}

/// A hold that ran out: the stream to let go and what it held.
#[derive(Debug, PartialEq, Eq)]
pub struct Expired<T> {
    /// The stream's context id.
    pub context_id: u32,
    /// What the stream held back (its local reply, if denied).
    pub payload: T,
    /// Whether any of its body had arrived.
    pub body_seen: bool,
}

impl<T> HeldRequests<T> {
    /// Whether this worker may hold requests (it stops after [`BODYLESS_TIMEOUTS_TO_STOP`]
    /// bodyless timeouts in a row).
    pub fn may_hold(&self) -> bool {
        !self.watch.stopped
    }

    /// Holds stream `context_id` until `deadline_nanos`; `payload` is handed back when it ends.
    /// A second hold of the same stream replaces the first.
    pub fn hold(&mut self, context_id: u32, deadline_nanos: u64, payload: T) {
        self.held.retain(|h| h.context_id != context_id);
        self.held.push(Held {
            context_id,
            deadline_nanos,
            body_seen: false,
            payload,
        });
    }

    /// Some of the held stream's body arrived: the proxy does hand bodies over.
    pub fn body_arrived(&mut self, context_id: u32) {
        if let Some(h) = self.held.iter_mut().find(|h| h.context_id == context_id) {
            h.body_seen = true;
            self.watch.bodyless_in_a_row = 0;
        }
    }

    /// The stream is done holding (its body was read, or it ended): what it held, or `None`
    /// when it was not held (any more: a hold that ran out was already let go).
    pub fn release(&mut self, context_id: u32) -> Option<T> {
        let index = self.held.iter().position(|h| h.context_id == context_id)?;
        Some(self.held.swap_remove(index).payload)
    }

    /// Whether any request is held (the adapter keeps a fast tick only then).
    pub fn any(&self) -> bool {
        !self.held.is_empty()
    }

    /// Takes every hold whose deadline is at or before `now_nanos`, to be let go now, and
    /// whether this turned holding off on the worker (it was the last of
    /// [`BODYLESS_TIMEOUTS_TO_STOP`] bodyless timeouts in a row; the adapter warns once).
    pub fn expire(&mut self, now_nanos: u64) -> (Vec<Expired<T>>, bool) {
        let mut expired = Vec::new();
        let mut index = 0;
        while index < self.held.len() {
            if self.held[index].deadline_nanos <= now_nanos {
                let h = self.held.swap_remove(index);
                expired.push(Expired {
                    context_id: h.context_id,
                    payload: h.payload,
                    body_seen: h.body_seen,
                });
            } else {
                index += 1;
            }
        }
        let mut stopped_now = false;
        for e in &expired {
            stopped_now |= self.watch.timed_out(e.body_seen);
        }
        (expired, stopped_now)
    }
}

/// Whether holds end with a body: counts bodyless timeouts in a row and stops holding after
/// [`BODYLESS_TIMEOUTS_TO_STOP`]. A body arriving resets the count; once stopped, the worker
/// holds no more (until the plugin is reconfigured).
#[derive(Debug, Default)]
struct HoldWatch {
    bodyless_in_a_row: u32,
    stopped: bool,
}

impl HoldWatch {
    /// A hold ran out; `true` when this one turned holding off.
    fn timed_out(&mut self, body_seen: bool) -> bool {
        if body_seen {
            self.bodyless_in_a_row = 0;
            return false;
        }
        self.bodyless_in_a_row = self.bodyless_in_a_row.saturating_add(1);
        if !self.stopped && self.bodyless_in_a_row >= BODYLESS_TIMEOUTS_TO_STOP {
            self.stopped = true;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_hold_runs_out_at_its_deadline_and_not_before() {
        let mut held = HeldRequests::default();
        held.hold(7, 250 * MS, "403");
        held.hold(8, 300 * MS, "403");
        assert_eq!(held.expire(249 * MS).0, vec![]);
        let (expired, stopped) = held.expire(250 * MS);
        assert_eq!(
            expired,
            vec![Expired {
                context_id: 7,
                payload: "403",
                body_seen: false
            }]
        );
        assert!(!stopped, "one bodyless timeout does not stop holding");
        assert!(held.any());
        assert_eq!(held.expire(1_000 * MS).0.len(), 1);
        assert!(!held.any());
    }

    #[test]
    fn a_released_hold_never_expires_and_hands_back_its_payload() {
        let mut held = HeldRequests::default();
        held.hold(7, 250 * MS, Some("403"));
        held.body_arrived(7);
        assert_eq!(held.release(7), Some(Some("403")));
        assert_eq!(held.release(7), None, "released once");
        assert!(held.expire(u64::MAX).0.is_empty());
    }

    #[test]
    fn holding_stops_after_bodyless_timeouts_in_a_row() {
        let mut held = HeldRequests::default();
        for id in 0..BODYLESS_TIMEOUTS_TO_STOP - 1 {
            held.hold(id, MS, ());
            assert!(!held.expire(MS).1);
            assert!(held.may_hold());
        }
        held.hold(99, MS, ());
        let (expired, stopped_now) = held.expire(MS);
        assert_eq!(expired.len(), 1);
        assert!(stopped_now, "the third bodyless timeout turns holding off");
        assert!(!held.may_hold());
        held.hold(100, MS, ());
        assert!(!held.expire(MS).1, "turned off once, reported once");
    }

    #[test]
    fn a_body_between_timeouts_resets_the_count() {
        let mut held = HeldRequests::default();
        for round in 0..10u32 {
            held.hold(round * 2, MS, ());
            held.hold(round * 2 + 1, MS, ());
            held.body_arrived(round * 2 + 1);
            let (_, stopped) = held.expire(MS);
            assert!(!stopped);
        }
        assert!(
            held.may_hold(),
            "bodies do arrive: a slow client is not a broken proxy"
        );
    }

    #[test]
    fn a_timeout_with_some_body_is_not_bodyless() {
        let mut held = HeldRequests::default();
        for id in 0..10 {
            held.hold(id, MS, ());
            held.body_arrived(id);
            assert!(!held.expire(MS).1);
        }
        assert!(held.may_hold());
    }

    #[test]
    fn holding_a_stream_again_replaces_its_hold() {
        let mut held = HeldRequests::default();
        held.hold(7, MS, 1);
        held.hold(7, 5 * MS, 2);
        assert!(held.expire(MS).0.is_empty());
        assert_eq!(held.release(7), Some(2));
    }
}
