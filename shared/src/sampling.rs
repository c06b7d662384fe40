//! Deterministic sampling keyed on `x-request-id`.
//!
//! Every sidecar on a request's path hashes the same id with the same fixed function (64-bit
//! FNV-1a, no keys, no randomness), so they all take the same decision for the same request.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

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

/// Maps `request_id` to a point in `[0, 1)`.
pub fn sample_point(request_id: &str) -> f64 {
    // The top 53 bits fill an f64 mantissa exactly.
    (stable_hash(request_id.as_bytes()) >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether a request with this id falls in a `fraction` sample. A missing or empty id is never
/// sampled: there is nothing every sidecar could agree on (Envoy sets `x-request-id` on every
/// request unless told not to, so this only happens with `generate_request_id: false`).
pub fn sampled(request_id: Option<&str>, fraction: f64) -> bool {
    match request_id {
        Some(id) if !id.is_empty() => sample_point(id) < fraction,
        _ => false,
    }
}
