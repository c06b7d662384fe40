//! Which requests are recorded: the remarkable ones always, allowed ones by a deterministic
//! sample keyed on the request id (so every proxy on a request's path makes the same choice).

use crate::decision::{AllowlistOutcome, MirrorReason};

use super::record::HttpExchange;

/// Why a request was recorded or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleVerdict {
    /// Denied, would-deny, malformed, mirrored for a signature, a 5xx or no response at all:
    /// recorded whatever the sampling fraction.
    AlwaysRecorded,
    /// An unremarkable request the sample picked.
    Sampled,
    /// An unremarkable request the sample passed over.
    NotSampled,
}

impl SampleVerdict {
    /// Whether a record is written.
    pub fn is_recorded(self) -> bool {
        !matches!(self, SampleVerdict::NotSampled)
    }
}

/// Decides whether `exchange` is recorded when unremarkable requests are kept with
/// probability `fraction`.
pub fn sample_verdict(exchange: &HttpExchange, fraction: f64) -> SampleVerdict {
    let remarkable_decision = exchange.allowlist.as_ref().is_some_and(|d| {
        matches!(
            d.outcome,
            AllowlistOutcome::Denied | AllowlistOutcome::WouldDeny | AllowlistOutcome::Malformed
        )
    });
    let signature = exchange
        .mirror
        .as_ref()
        .is_some_and(|m| m.reason == MirrorReason::Signature || !m.signatures.is_empty());
    let failed = match exchange.status {
        None | Some(0) => true,
        Some(code) => code >= 500,
    };
    if remarkable_decision || signature || failed {
        return SampleVerdict::AlwaysRecorded;
    }
    if fraction >= 1.0 {
        return SampleVerdict::Sampled;
    }
    let key = match &exchange.request_id {
        Some(id) => fnv1a(id.as_bytes()),
        // Without a request id, the start time and path still spread requests evenly.
        None => fnv1a(&exchange.start_ns.to_le_bytes()) ^ fnv1a(exchange.path.as_bytes()),
    };
    if in_sample(key, fraction) {
        SampleVerdict::Sampled
    } else {
        SampleVerdict::NotSampled
    }
}

/// Whether a 64-bit key falls in the first `fraction` of the key space.
pub fn in_sample(key: u64, fraction: f64) -> bool {
    if fraction <= 0.0 {
        return false;
    }
    if fraction >= 1.0 {
        return true;
    }
    // Compare on 53 bits, the precision of the fraction.
    let bucket = (key >> 11) as f64 / (1u64 << 53) as f64;
    bucket < fraction
}

/// FNV-1a 64-bit, finished with a multiply-xorshift so close ids spread over the whole range.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}
