//! A token bucket: the per-project request rate.
//!
//! Written here rather than taken from `governor` because a project's rate and burst can be
//! edited while it runs, and governor's quotas are fixed at construction.

/// Up to `burst` tokens, refilled at `rate` tokens per second; one token per request.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last_ms: i64,
}

impl TokenBucket {
    /// A full bucket at time `now_ms`.
    pub fn new(rate: f64, burst: f64, now_ms: i64) -> Self {
        let burst = burst.max(1.0);
        Self {
            rate: rate.max(0.0),
            burst,
            tokens: burst,
            last_ms: now_ms,
        }
    }

    /// Changes rate and burst, keeping the tokens already there (capped by the new burst).
    pub fn set(&mut self, rate: f64, burst: f64, now_ms: i64) {
        self.refill(now_ms);
        self.rate = rate.max(0.0);
        self.burst = burst.max(1.0);
        self.tokens = self.tokens.min(self.burst);
    }

    fn refill(&mut self, now_ms: i64) {
        let elapsed = (now_ms - self.last_ms).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last_ms = self.last_ms.max(now_ms);
    }

    /// Takes a token if there is one.
    pub fn try_take(&mut self, now_ms: i64) -> bool {
        self.refill(now_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Milliseconds until a token is available (0 if one is); `None` if the rate is zero.
    pub fn wait_ms(&mut self, now_ms: i64) -> Option<i64> {
        self.refill(now_ms);
        if self.tokens >= 1.0 {
            Some(0)
        } else if self.rate > 0.0 {
            Some(((1.0 - self.tokens) / self.rate * 1000.0).ceil() as i64)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_the_rate() {
        let mut b = TokenBucket::new(2.0, 3.0, 0);
        assert!((0..3).all(|_| b.try_take(0)));
        assert!(!b.try_take(0));
        assert_eq!(b.wait_ms(0), Some(500));
        assert!(!b.try_take(499));
        assert!(b.try_take(500));
        // Over 10 s at 2/s, at most 20 more requests (plus nothing saved beyond the burst).
        let taken = (501..=10_500).filter(|t| b.try_take(*t)).count();
        assert_eq!(taken, 20);
    }

    #[test]
    fn a_live_rate_change_takes_effect_at_once() {
        let mut b = TokenBucket::new(1.0, 1.0, 0);
        assert!(b.try_take(0));
        b.set(100.0, 10.0, 0);
        assert!(b.try_take(10), "100/s refills a token in 10 ms");
        b.set(0.0, 1.0, 10);
        assert_eq!(b.wait_ms(20), None);
    }
}
