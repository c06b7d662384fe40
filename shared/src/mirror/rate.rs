//! Rate caps: a token bucket per target, with time passed in (the policy crate never reads a
//! clock). One bucket set lives in each worker's filter instance.

/// A token bucket: `rate` tokens per second up to `burst`; a copy takes one token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    rate_per_sec: f64,
    burst: f64,
    tokens: f64,
    last_nanos: Option<u64>,
}

impl TokenBucket {
    /// A full bucket refilling at `rate_per_sec`, holding at most `burst` tokens.
    pub fn new(rate_per_sec: f64, burst: f64) -> TokenBucket {
        TokenBucket {
            rate_per_sec,
            burst,
            tokens: burst,
            last_nanos: None,
        }
    }

    /// Takes one token at time `now_nanos` (any monotonic or wall clock, in nanoseconds);
    /// `false` when the bucket is empty. A clock going backwards refills nothing.
    pub fn try_take(&mut self, now_nanos: u64) -> bool {
        if let Some(last) = self.last_nanos {
            let elapsed = now_nanos.saturating_sub(last) as f64 / 1e9;
            self.tokens = (self.tokens + elapsed * self.rate_per_sec).min(self.burst);
        }
        if self.last_nanos.is_none_or(|last| now_nanos > last) {
            self.last_nanos = Some(now_nanos);
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
