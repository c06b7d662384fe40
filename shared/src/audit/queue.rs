//! The delivery queue of the HTTP sink: records wait in a bounded buffer, leave in NDJSON
//! batches (by size or at the flush interval), up to `max_in_flight` batches at a time, retried
//! with exponential backoff, and dropped only with a counted reason. Time is an argument (ms), so
//! the queue is deterministic and testable.
//!
//! Invariant, at every moment: `records == delivered + dropped + buffered`, where `buffered`
//! counts records waiting and in flight.

use std::collections::VecDeque;
use std::rc::Rc;

use super::{DropPolicy, QueueLimits};

/// Why records were dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The buffer bound was reached (which record gives way follows the drop policy).
    BufferFull,
    /// A batch failed more than `max_retries` times.
    RetriesExhausted,
    /// A single record larger than the whole buffer bound.
    TooLarge,
    /// Still buffered when the plugin was stopped or replaced (a configuration change).
    Shutdown,
    /// Refused by the collector for good (OTLP: a non-retryable status, or counted in
    /// `partial_success.rejected_log_records`).
    Rejected,
}

impl DropReason {
    /// Every reason, in metric order.
    pub const ALL: [DropReason; 5] = [
        DropReason::BufferFull,
        DropReason::RetriesExhausted,
        DropReason::TooLarge,
        DropReason::Shutdown,
        DropReason::Rejected,
    ];

    /// The metric suffix (`meshsight_audit_dropped_<name>`).
    pub fn name(self) -> &'static str {
        match self {
            DropReason::BufferFull => "buffer_full",
            DropReason::RetriesExhausted => "retries_exhausted",
            DropReason::TooLarge => "too_large",
            DropReason::Shutdown => "shutdown",
            DropReason::Rejected => "rejected",
        }
    }
}

/// The queue's counters; `records == delivered + dropped() + buffered_records` always holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounters {
    /// Records accepted by [`DeliveryQueue::push`].
    pub records: u64,
    /// Records in batches the collector acknowledged (2xx).
    pub delivered: u64,
    /// Records re-sent in a retried batch (a batch of n retried twice adds 2n).
    pub retried: u64,
    /// Records dropped because the buffer was full.
    pub dropped_buffer_full: u64,
    /// Records dropped after their batch exhausted its retries.
    pub dropped_retries_exhausted: u64,
    /// Records dropped because one alone exceeds the buffer bound.
    pub dropped_too_large: u64,
    /// Records still buffered when the queue was shut down.
    pub dropped_shutdown: u64,
    /// Records the collector refused for good.
    pub dropped_rejected: u64,
    /// Records waiting or in flight.
    pub buffered_records: u64,
    /// Bytes waiting or in flight (each record counts its newline).
    pub buffered_bytes: u64,
}

impl DeliveryCounters {
    /// All drops.
    pub fn dropped(&self) -> u64 {
        self.dropped_buffer_full
            + self.dropped_retries_exhausted
            + self.dropped_too_large
            + self.dropped_shutdown
            + self.dropped_rejected
    }

    /// Drops for one reason.
    pub fn dropped_for(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::BufferFull => self.dropped_buffer_full,
            DropReason::RetriesExhausted => self.dropped_retries_exhausted,
            DropReason::TooLarge => self.dropped_too_large,
            DropReason::Shutdown => self.dropped_shutdown,
            DropReason::Rejected => self.dropped_rejected,
        }
    }

    /// `records == delivered + dropped + buffered`.
    pub fn balanced(&self) -> bool {
        self.records == self.delivered + self.dropped() + self.buffered_records
    }
}

/// A batch to POST: NDJSON body, with the id to report its outcome under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Identifies the batch in [`DeliveryQueue::delivered`] / [`DeliveryQueue::failed`].
    pub id: u64,
    /// NDJSON: one record per line, each ending with `\n`. Shared with the queue's copy kept
    /// for retries, not copied: a worker's heap keeps its high-water mark.
    pub body: Rc<Vec<u8>>,
    /// Number of records in the body.
    pub records: usize,
    /// 0 for the first send, n for the n-th retry.
    pub attempt: u32,
}

#[derive(Debug)]
struct InFlight {
    batch: Batch,
    /// `None` while a send is outstanding; `Some(t)` when waiting to retry at `t`.
    retry_at: Option<u64>,
    /// When the outstanding send started.
    sent_at: u64,
}

/// The bounded, counted buffer between records and the collector.
#[derive(Debug)]
pub struct DeliveryQueue {
    limits: QueueLimits,
    waiting: VecDeque<String>,
    waiting_bytes: usize,
    in_flight: Vec<InFlight>,
    last_flush_ms: u64,
    next_id: u64,
    counters: DeliveryCounters,
}

impl DeliveryQueue {
    /// An empty queue; `now_ms` starts the flush interval.
    pub fn new(limits: QueueLimits, now_ms: u64) -> Self {
        DeliveryQueue {
            limits,
            waiting: VecDeque::new(),
            waiting_bytes: 0,
            in_flight: Vec::new(),
            last_flush_ms: now_ms,
            next_id: 1,
            counters: DeliveryCounters::default(),
        }
    }

    /// The counters.
    pub fn counters(&self) -> DeliveryCounters {
        self.counters
    }

    /// The limits the queue was built with.
    pub fn limits(&self) -> &QueueLimits {
        &self.limits
    }

    fn in_flight_bytes(&self) -> usize {
        self.in_flight.iter().map(|f| f.batch.body.len()).sum()
    }

    fn sync_buffered(&mut self) {
        let in_flight_records: usize = self.in_flight.iter().map(|f| f.batch.records).sum();
        self.counters.buffered_records = (self.waiting.len() + in_flight_records) as u64;
        self.counters.buffered_bytes = (self.waiting_bytes + self.in_flight_bytes()) as u64;
    }

    /// Accepts one record (a JSON line without its newline). Returns the drops it caused, if
    /// any: the record itself (`drop_newest`, too large) or older waiting records
    /// (`drop_oldest`).
    pub fn push(&mut self, mut record: String) -> Option<(DropReason, u64)> {
        self.counters.records += 1;
        // A record's writer reserves by estimate; what waits holds only its bytes.
        record.shrink_to_fit();
        let size = record.len() + 1;
        let bound = self.limits.max_buffer_bytes;
        if size > bound {
            self.counters.dropped_too_large += 1;
            return Some((DropReason::TooLarge, 1));
        }
        let held = self.in_flight_bytes();
        let mut dropped = 0;
        if held + self.waiting_bytes + size > bound {
            match self.limits.drop_policy {
                DropPolicy::DropNewest => {
                    self.counters.dropped_buffer_full += 1;
                    return Some((DropReason::BufferFull, 1));
                }
                DropPolicy::DropOldest => {
                    while held + self.waiting_bytes + size > bound {
                        match self.waiting.pop_front() {
                            Some(old) => {
                                self.waiting_bytes -= old.len() + 1;
                                dropped += 1;
                            }
                            None => break,
                        }
                    }
                    if held + self.waiting_bytes + size > bound {
                        // Only the batch in flight is left and it leaves no room: the new
                        // record gives way after all.
                        self.counters.dropped_buffer_full += dropped as u64 + 1;
                        self.sync_buffered();
                        return Some((DropReason::BufferFull, dropped as u64 + 1));
                    }
                }
            }
        }
        self.waiting_bytes += size;
        self.waiting.push_back(record);
        self.counters.dropped_buffer_full += dropped as u64;
        self.sync_buffered();
        if dropped > 0 {
            Some((DropReason::BufferFull, dropped as u64))
        } else {
            None
        }
    }

    /// Whether enough is waiting for a full batch.
    fn batch_full(&self) -> bool {
        self.waiting.len() >= self.limits.batch_max_records
            || self.waiting_bytes >= self.limits.batch_max_bytes
    }

    /// Time-driven step: returns the next batch to send now, if any: first a retry whose
    /// backoff has elapsed, else a new batch when one is full or the flush interval has passed
    /// and fewer than `max_in_flight` batches are out. Call it until it returns `None`. A send
    /// with no answer past the response deadline counts as failed.
    pub fn poll(&mut self, now_ms: u64) -> Option<Batch> {
        let deadline = self.limits.response_deadline_ms;
        let overdue: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|f| f.retry_at.is_none() && now_ms >= f.sent_at.saturating_add(deadline))
            .map(|f| f.batch.id)
            .collect();
        for id in overdue {
            self.failed(id, now_ms);
        }
        if let Some(f) = self
            .in_flight
            .iter_mut()
            .find(|f| f.retry_at.is_some_and(|at| now_ms >= at))
        {
            f.retry_at = None;
            f.sent_at = now_ms;
            f.batch.attempt += 1;
            self.counters.retried += f.batch.records as u64;
            return Some(f.batch.clone());
        }
        if self.waiting.is_empty() {
            self.last_flush_ms = now_ms;
            return None;
        }
        if self.in_flight.len() >= self.limits.max_in_flight {
            return None;
        }
        let interval_due = now_ms
            >= self
                .last_flush_ms
                .saturating_add(self.limits.flush_interval_ms);
        if !self.batch_full() && !interval_due {
            return None;
        }
        // The batch's records and bytes first, so that its body is one allocation of its size.
        let (mut records, mut bytes) = (0, 0);
        while let Some(next) = self.waiting.get(records) {
            let size = next.len() + 1;
            if records > 0
                && (records >= self.limits.batch_max_records
                    || bytes + size > self.limits.batch_max_bytes)
            {
                break;
            }
            records += 1;
            bytes += size;
        }
        let mut body = Vec::with_capacity(bytes);
        for _ in 0..records {
            if let Some(rec) = self.waiting.pop_front() {
                body.extend_from_slice(rec.as_bytes());
                body.push(b'\n');
            }
        }
        self.waiting_bytes -= bytes;
        let body = Rc::new(body);
        self.last_flush_ms = now_ms;
        let batch = Batch {
            id: self.next_id,
            body,
            records,
            attempt: 0,
        };
        self.next_id += 1;
        self.in_flight.push(InFlight {
            batch: batch.clone(),
            retry_at: None,
            sent_at: now_ms,
        });
        self.sync_buffered();
        Some(batch)
    }

    fn outstanding(&self, id: u64) -> Option<usize> {
        self.in_flight
            .iter()
            .position(|f| f.batch.id == id && f.retry_at.is_none())
    }

    /// The collector acknowledged batch `id`: its records are delivered. Unknown or stale ids
    /// (a late answer after the deadline) are ignored; returns whether it counted.
    pub fn delivered(&mut self, id: u64) -> bool {
        let Some(at) = self.outstanding(id) else {
            return false;
        };
        let f = self.in_flight.remove(at);
        self.counters.delivered += f.batch.records as u64;
        self.sync_buffered();
        true
    }

    /// The collector accepted batch `id` but refused `rejected` of its records (OTLP
    /// `partial_success`): those are dropped ([`DropReason::Rejected`]), the rest delivered.
    pub fn delivered_partially(&mut self, id: u64, rejected: u64) -> bool {
        let Some(at) = self.outstanding(id) else {
            return false;
        };
        let f = self.in_flight.remove(at);
        let records = f.batch.records as u64;
        let rejected = rejected.min(records);
        self.counters.delivered += records - rejected;
        self.counters.dropped_rejected += rejected;
        self.sync_buffered();
        true
    }

    /// The collector refused batch `id` for good (OTLP: 400 and other non-retryable
    /// statuses): its records are dropped ([`DropReason::Rejected`]), never retried.
    pub fn rejected(&mut self, id: u64) -> Option<u64> {
        let at = self.outstanding(id)?;
        let f = self.in_flight.remove(at);
        let n = f.batch.records as u64;
        self.counters.dropped_rejected += n;
        self.sync_buffered();
        Some(n)
    }

    /// Like [`Self::failed`], but not retried before `not_before_ms` from now (the
    /// collector's `Retry-After`), or after the backoff when that is longer.
    pub fn failed_retry_after(&mut self, id: u64, now_ms: u64, not_before_ms: u64) -> Option<u64> {
        let dropped = self.failed(id, now_ms);
        if dropped.is_none() {
            let earliest = now_ms.saturating_add(not_before_ms);
            if let Some(f) = self.in_flight.iter_mut().find(|f| f.batch.id == id) {
                f.retry_at = f.retry_at.map(|at| at.max(earliest));
            }
        }
        dropped
    }

    /// Batch `id` failed (non-2xx, reset, timeout, or the call could not be dispatched): it is
    /// retried after `min(backoff_initial * 2^n, backoff_max)`, or dropped once it has been
    /// retried `max_retries` times. Returns the records dropped, if any.
    pub fn failed(&mut self, id: u64, now_ms: u64) -> Option<u64> {
        let at = self.outstanding(id)?;
        if self.in_flight[at].batch.attempt >= self.limits.max_retries {
            let f = self.in_flight.remove(at);
            let n = f.batch.records as u64;
            self.counters.dropped_retries_exhausted += n;
            self.sync_buffered();
            return Some(n);
        }
        let delay = backoff_ms(&self.limits, self.in_flight[at].batch.attempt);
        self.in_flight[at].retry_at = Some(now_ms.saturating_add(delay));
        None
    }

    /// Drops, counted as [`DropReason::Shutdown`], everything still buffered (waiting and in
    /// flight): the plugin is going away and cannot wait for answers. Returns how many.
    pub fn shut_down(&mut self) -> u64 {
        let n = self.counters.buffered_records;
        self.counters.dropped_shutdown += n;
        self.waiting.clear();
        self.waiting_bytes = 0;
        self.in_flight.clear();
        self.sync_buffered();
        n
    }

    /// Batches sent and not yet answered, or waiting to be retried.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

/// Delay before retry number `attempt + 1`: `backoff_initial * 2^attempt`, capped.
pub fn backoff_ms(limits: &QueueLimits, attempt: u32) -> u64 {
    let factor = 1u64.checked_shl(attempt.min(62)).unwrap_or(u64::MAX);
    limits
        .backoff_initial_ms
        .saturating_mul(factor)
        .min(limits.backoff_max_ms)
}
