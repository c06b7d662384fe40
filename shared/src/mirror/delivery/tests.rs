use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// One `dispatch` target, `ids`, at most `max_in_flight` copies out, calls time out after 1 ms.
fn deliveries(max_in_flight: u32) -> Deliveries {
    let json = format!(
        r#"{{"targets":{{"ids":{{"cluster":"sensor","delivery":"dispatch","max_in_flight":{max_in_flight},"timeout_ms":1}}}}}}"#
    );
    let policy = MirrorPolicy::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    Deliveries::new(&policy)
}

fn copy(target: TargetId) -> DispatchCopy {
    DispatchCopy {
        target,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// A call sent at `now` is answered by then.
const ANSWERED_BY: u64 = 1_000_000 + ANSWER_GRACE_NANOS;

#[test]
fn queued_and_in_flight_copies_share_the_bound() {
    let mut d = deliveries(2);
    assert_eq!(d.offer(copy(0), 0).queued, Ok(true));
    assert_eq!(d.offer(copy(0), 0).queued, Ok(false));
    assert_eq!(d.offer(copy(0), 0).queued, Err(Refusal::Busy));
    assert_eq!(d.queued(0), 2);
    assert_eq!(d.take_queue().len(), 2);
    assert_eq!(d.queued(0), 0);
    d.sent(0, 7, 0);
    assert_eq!(d.in_flight(0), 1);
    assert_eq!(d.offer(copy(0), 0).queued, Ok(true));
    assert_eq!(d.offer(copy(0), 0).queued, Err(Refusal::Busy));
    assert!(d.answered(7, true, 10));
    assert!(!d.answered(7, true, 10), "answered once");
    assert_eq!(d.in_flight(0), 0);
    assert_eq!(d.offer(copy(0), 10).queued, Ok(false));
    // A call past its deadline frees its slot and is reported.
    let _ = d.take_queue();
    d.sent(0, 8, 100);
    d.sent(0, 9, 100);
    assert_eq!(
        d.offer(copy(0), 100 + ANSWERED_BY - 1),
        Offered {
            queued: Err(Refusal::Busy),
            unconfirmed: 0
        },
        "not yet overdue"
    );
    assert_eq!(
        d.offer(copy(0), 100 + ANSWERED_BY),
        Offered {
            queued: Ok(true),
            unconfirmed: 2
        }
    );
    assert!(!d.answered(8, true, 200), "given up on: not ours any more");
}

#[test]
fn a_failing_target_rests_longer_each_time_and_recovers_on_success() {
    let mut d = deliveries(10);
    for _ in 0..2 {
        d.outcome(0, false, 0);
    }
    assert!(
        d.offer(copy(0), 0).queued.is_ok(),
        "two failures: no rest yet"
    );
    d.outcome(0, false, 0);
    assert_eq!(d.offer(copy(0), 1).queued, Err(Refusal::Resting));
    assert!(d.resting(0, 1));
    assert!(d.offer(copy(0), BACKOFF_INITIAL_NANOS).queued.is_ok());
    d.outcome(0, false, 1_000);
    assert_eq!(
        d.offer(copy(0), 1_000 + BACKOFF_INITIAL_NANOS).queued,
        Err(Refusal::Resting),
        "the rest doubles"
    );
    assert!(d
        .offer(copy(0), 1_000 + 2 * BACKOFF_INITIAL_NANOS)
        .queued
        .is_ok());
    let _ = d.take_queue();
    for _ in 0..40 {
        d.outcome(0, false, 0);
    }
    assert!(d.resting(0, BACKOFF_MAX_NANOS - 1));
    assert!(d.offer(copy(0), BACKOFF_MAX_NANOS).queued.is_ok(), "capped");
    d.outcome(0, true, 0);
    assert_eq!(d.consecutive_failures(0), 0);
    d.outcome(0, false, 0);
    assert!(
        d.offer(copy(0), 0).queued.is_ok(),
        "success resets the count"
    );
}

#[test]
fn answers_and_refusals_move_the_target_health() {
    let mut d = deliveries(10);
    d.sent(0, 1, 0);
    d.sent(0, 2, 0);
    d.sent(0, 3, 0);
    assert!(
        d.answered(1, call_succeeded(None), 5),
        "a reset is a failure"
    );
    assert!(d.answered(2, call_succeeded(Some(503)), 5));
    assert_eq!(d.consecutive_failures(0), 2);
    d.refused(0, 5);
    assert_eq!(d.consecutive_failures(0), 3);
    assert!(d.resting(0, 5), "three in a row: the target rests");
    assert_eq!(d.offer(copy(0), 6).queued, Err(Refusal::Resting));
    // The probe after the rest succeeds: healthy again.
    assert!(d.answered(3, call_succeeded(Some(204)), 5 + BACKOFF_INITIAL_NANOS));
    assert!(!d.resting(0, 5 + BACKOFF_INITIAL_NANOS));
    assert_eq!(d.consecutive_failures(0), 0);
    assert!(!d.answered(99, true, 0), "an unknown token is not ours");
}

#[test]
fn calls_succeed_below_500_only() {
    assert!(call_succeeded(Some(200)));
    assert!(call_succeeded(Some(404)), "the sensor got the copy");
    assert!(!call_succeeded(Some(500)));
    assert!(!call_succeeded(Some(503)), "refused connection");
    assert!(!call_succeeded(Some(504)), "timeout");
    assert!(!call_succeeded(None), "reset");
}

#[test]
fn targets_are_accounted_apart_and_unknown_ones_refused() {
    let policy = MirrorPolicy::from_json(
        br#"{"targets":{"a":{"cluster":"s","delivery":"dispatch","max_in_flight":1},
                        "b":{"cluster":"s","delivery":"dispatch","max_in_flight":1}},
             "default_target":"a"}"#,
    )
    .unwrap();
    let mut d = Deliveries::new(&policy);
    assert_eq!(d.offer(copy(0), 0).queued, Ok(true));
    assert_eq!(d.offer(copy(1), 0).queued, Ok(false), "b has its own bound");
    assert_eq!(d.offer(copy(0), 0).queued, Err(Refusal::Busy));
    for _ in 0..FAILURES_BEFORE_BACKOFF {
        d.refused(0, 0);
    }
    assert!(d.resting(0, 1) && !d.resting(1, 1), "b keeps working");
    assert_eq!(d.offer(copy(7), 0).queued, Err(Refusal::Busy));
    let sent: Vec<TargetId> = d.take_queue().iter().map(|c| c.target).collect();
    assert_eq!(sent, vec![0, 1], "in queue order");
}
