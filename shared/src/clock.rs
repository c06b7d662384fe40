//! Host time as the policies take it. This crate never reads a clock (it also runs on
//! wasm32-unknown-unknown, where there is none): the filters pass the host's time in, as an
//! integer since the Unix epoch converted here.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch; 0 before it, `u64::MAX` after the year 2554.
pub fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Milliseconds since the Unix epoch; 0 before it.
pub fn unix_millis(time: SystemTime) -> u64 {
    unix_nanos(time) / 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn epoch_offsets() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        assert_eq!(unix_nanos(t), 1_700_000_000_123_456_789);
        assert_eq!(unix_millis(t), 1_700_000_000_123);
        assert_eq!(unix_nanos(UNIX_EPOCH), 0);
    }
}
