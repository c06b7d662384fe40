//! A collector's answer to one audit batch, judged without the host: the NDJSON sink's rule
//! (a 2xx delivers; anything else, no answer included, is retried until `max_retries`) and
//! OTLP/HTTP's ([`export_outcome`]: `partial_success`, `Retry-After`, statuses never retried),
//! then what the answer does to the [`DeliveryQueue`]. The module only reads the status, the
//! `retry-after` header and, for a 2xx OTLP answer, the body, and logs the warning.

use crate::audit::otlp::{export_outcome, ExportOutcome};
use crate::audit::{DeliveryQueue, SinkEncoding};

/// Whether the answer's body matters (only a 2xx OTLP answer's `partial_success` does): the
/// module reads it from the host only then.
pub fn reads_body(encoding: SinkEncoding, status: Option<u16>) -> bool {
    encoding == SinkEncoding::Otlp && status.is_some_and(|s| (200..300).contains(&s))
}

/// What the answer (`status`: `None` for a reset or timeout) means for the batch.
pub fn judge(
    encoding: SinkEncoding,
    status: Option<u16>,
    retry_after: Option<&str>,
    body: &[u8],
) -> ExportOutcome {
    match encoding {
        SinkEncoding::Otlp => export_outcome(status, retry_after, body),
        SinkEncoding::Ndjson => match status {
            Some(s) if (200..300).contains(&s) => ExportOutcome::Accepted {
                rejected: 0,
                message: String::new(),
            },
            _ => ExportOutcome::Retry { after_ms: None },
        },
    }
}

/// Applies `outcome` to batch `batch` of `queue`; whether records were delivered (wholly or in
/// part), which makes room for the next batch.
pub fn apply(outcome: &ExportOutcome, queue: &mut DeliveryQueue, batch: u64, now_ms: u64) -> bool {
    match outcome {
        ExportOutcome::Accepted { rejected, .. } => queue.delivered_partially(batch, *rejected),
        ExportOutcome::Retry { after_ms } => {
            queue.failed_retry_after(batch, now_ms, after_ms.unwrap_or(0));
            false
        }
        ExportOutcome::Rejected { .. } => {
            queue.rejected(batch);
            false
        }
    }
}

/// The warning the module logs for `outcome` (none for a plain success).
pub fn warning(outcome: &ExportOutcome, status: Option<u16>) -> Option<String> {
    match outcome {
        ExportOutcome::Accepted { rejected: 0, .. } => None,
        ExportOutcome::Accepted { rejected, message } => Some(format!(
            "meshsight audit: collector rejected {rejected} records of a batch: {message}"
        )),
        ExportOutcome::Retry { after_ms } => Some(format!(
            "meshsight audit: collector answered {} for a batch; will retry{} or drop it after \
             max_retries",
            status.map_or("no response (reset or timeout)".to_string(), |c| c
                .to_string()),
            after_ms.map_or(String::new(), |ms| format!(" after {ms} ms (Retry-After)"))
        )),
        ExportOutcome::Rejected { status } => Some(format!(
            "meshsight audit: collector answered {status} for a batch: not retryable, dropped"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::QueueLimits;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// A queue holding one batch of two records, sent; its id.
    fn sent_batch() -> (DeliveryQueue, u64) {
        let mut q = DeliveryQueue::new(
            QueueLimits {
                batch_max_records: 2,
                max_retries: 1,
                ..QueueLimits::default()
            },
            0,
        );
        q.push("{\"a\":1}".to_string());
        q.push("{\"a\":2}".to_string());
        let id = q.poll(0).expect("a full batch is due").id;
        (q, id)
    }

    #[test]
    fn ndjson_delivers_on_2xx_and_retries_anything_else() {
        let ok = judge(SinkEncoding::Ndjson, Some(204), None, b"ignored");
        assert_eq!(
            ok,
            ExportOutcome::Accepted {
                rejected: 0,
                message: String::new()
            }
        );
        assert_eq!(warning(&ok, Some(204)), None);
        for status in [None, Some(400), Some(503)] {
            let out = judge(SinkEncoding::Ndjson, status, Some("5"), b"");
            assert_eq!(out, ExportOutcome::Retry { after_ms: None }, "{status:?}");
        }
        assert!(!reads_body(SinkEncoding::Ndjson, Some(200)));
    }

    #[test]
    fn otlp_follows_otlp_http_rules() {
        assert!(reads_body(SinkEncoding::Otlp, Some(200)));
        assert!(!reads_body(SinkEncoding::Otlp, Some(503)));
        assert_eq!(
            judge(SinkEncoding::Otlp, Some(503), Some("2"), b""),
            ExportOutcome::Retry {
                after_ms: Some(2000)
            }
        );
        let rejected = judge(SinkEncoding::Otlp, Some(400), None, b"");
        assert_eq!(rejected, ExportOutcome::Rejected { status: 400 });
        assert!(warning(&rejected, Some(400)).is_some_and(|w| w.contains("not retryable")));
    }

    #[test]
    fn answers_move_the_queue_counters_so_they_add_up() {
        let (mut q, id) = sent_batch();
        let partial = ExportOutcome::Accepted {
            rejected: 1,
            message: "bad".into(),
        };
        assert!(apply(&partial, &mut q, id, 10));
        let c = q.counters();
        assert_eq!((c.delivered, c.dropped_rejected), (1, 1));

        let (mut q, id) = sent_batch();
        assert!(!apply(
            &ExportOutcome::Rejected { status: 400 },
            &mut q,
            id,
            10
        ));
        assert_eq!(q.counters().dropped_rejected, 2);

        let (mut q, id) = sent_batch();
        let retry = ExportOutcome::Retry {
            after_ms: Some(5000),
        };
        assert!(!apply(&retry, &mut q, id, 10));
        // Not before the collector's Retry-After.
        assert!(q.poll(4000).is_none());
        assert!(q.poll(5010).is_some());
        assert!(warning(&retry, Some(503)).is_some_and(|w| w.contains("after 5000 ms")));
    }
}
