//! Deterministic sampling keyed on `x-request-id`, shared by every filter that samples.
//!
//! Every sidecar on a request's path hashes the same id with the same fixed function (64-bit
//! FNV-1a with SplitMix64's finalizer, no keys, no randomness) to the same point in `[0, 1)`,
//! and a request is in a sample of fraction `f` when its point is below `f`. Hence:
//!
//! - every sidecar takes the same decision for the same request;
//! - samples nest: a request in the `f` sample is in every sample of fraction `g >= f`. In
//!   particular a request the mirror samples at `f` is also recorded by every audit filter
//!   whose `sample_allowed` is `>= f`, so the sensor never holds a copy of a sampled request
//!   that the audit trail lacks.
//!
//! A request without an id (only with Envoy's `generate_request_id: false`) has nothing every
//! sidecar could agree on: [`sampled`] never samples it (the mirror's rule). The audit filter
//! keys such requests on their start time and path instead ([`in_sample`] with its own key):
//! an audit sample only thins unremarkable traffic, and a kind of request a client can choose
//! must not drop out of it entirely.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

#[cfg(test)]
mod tests;

/// 64-bit FNV-1a of `bytes`, followed by a 64-bit finalizer (from SplitMix64) so that ids that
/// differ only in their last characters still spread over the whole range.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Maps a 64-bit key to a point in `[0, 1)`.
pub fn key_point(key: u64) -> f64 {
    // The top 53 bits fill an f64 mantissa exactly.
    (key >> 11) as f64 / (1u64 << 53) as f64
}

/// Maps `request_id` to a point in `[0, 1)`.
pub fn sample_point(request_id: &str) -> f64 {
    key_point(stable_hash(request_id.as_bytes()))
}

/// Whether a 64-bit key falls in a `fraction` sample (`fraction <= 0`: never; `>= 1`: always).
pub fn in_sample(key: u64, fraction: f64) -> bool {
    key_point(key) < fraction
}

/// Whether a request with this id falls in a `fraction` sample. A missing or empty id is never
/// sampled: there is nothing every sidecar could agree on (Envoy sets `x-request-id` on every
/// request unless told not to, so this only happens with `generate_request_id: false`).
pub fn sampled(request_id: Option<&str>, fraction: f64) -> bool {
    match request_id {
        Some(id) if !id.is_empty() => in_sample(stable_hash(id.as_bytes()), fraction),
        _ => false,
    }
}
