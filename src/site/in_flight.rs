//! Requests in flight at a server over time: the most at once, and the mean over any part of
//! the crawl (time-weighted), to check what `host_concurrency` gives from the site's side.
//!
//! The time between the first request and the last response is cut into 10 ms buckets, each
//! holding the request-seconds spent in it, so memory grows with the crawl's length (100
//! buckets a second), not with its number of requests.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// Width of a bucket, in seconds.
const BUCKET_S: f64 = 0.01;

/// A meter of requests in flight; call [`InFlight::start`] and [`InFlight::end`] around each.
#[derive(Debug, Default)]
pub struct InFlight {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    now: u32,
    max: u32,
    first: Option<Instant>,
    /// When `now` last changed, in seconds since `first`.
    last_s: f64,
    /// Request-seconds in each bucket since `first`.
    area: Vec<f64>,
}

impl State {
    /// Adds the requests in flight since the last change up to `t_s`.
    fn advance(&mut self, t_s: f64) {
        // Walks bucket indices rather than recomputing them from `from`: a boundary such as
        // 0.03 / 0.01 rounds down to bucket 2, which would never move past its own end.
        let mut from = self.last_s;
        let mut bucket = (from / BUCKET_S) as usize;
        while from < t_s {
            let to = t_s.min((bucket + 1) as f64 * BUCKET_S);
            if self.area.len() <= bucket {
                self.area.resize(bucket + 1, 0.0);
            }
            self.area[bucket] += f64::from(self.now) * (to - from).max(0.0);
            from = from.max(to);
            bucket += 1;
        }
        self.last_s = t_s;
    }
}

impl InFlight {
    /// A meter with nothing counted.
    pub fn new() -> Self {
        Self::default()
    }

    fn change(&self, up: bool) {
        let mut s = self.lock();
        let now = Instant::now();
        let first = *s.first.get_or_insert(now);
        s.advance((now - first).as_secs_f64());
        if up {
            s.now += 1;
            s.max = s.max.max(s.now);
        } else {
            s.now = s.now.saturating_sub(1);
        }
    }

    /// A request starts.
    pub fn start(&self) {
        self.change(true);
    }

    /// A request ends.
    pub fn end(&self) {
        self.change(false);
    }

    /// The most requests in flight at once.
    pub fn max(&self) -> u32 {
        self.lock().max
    }

    /// The mean of requests in flight between the `from` and `to` fractions (0 to 1) of the
    /// time from the first request to the last change: `mean_between(0.1, 0.9)` leaves out the
    /// start and the end of a crawl.
    pub fn mean_between(&self, from: f64, to: f64) -> f64 {
        let s = self.lock();
        let span = s.last_s;
        let (a, b) = (span * from, span * to);
        if b <= a {
            return 0.0;
        }
        let area: f64 = s
            .area
            .iter()
            .enumerate()
            .map(|(i, area)| {
                let (lo, hi) = (i as f64 * BUCKET_S, (i + 1) as f64 * BUCKET_S);
                let overlap = (hi.min(b) - lo.max(a)).max(0.0);
                area * overlap / BUCKET_S
            })
            .sum();
        area / (b - a)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_weighs_requests_by_time_and_the_max_holds() {
        let meter = InFlight::new();
        // Two requests for 0.5 s, then one for 0.5 s.
        let mut s = State {
            now: 2,
            ..State::default()
        };
        s.advance(0.5);
        s.now = 1;
        s.advance(1.0);
        *meter.lock() = s;
        assert!((meter.mean_between(0.0, 0.5) - 2.0).abs() < 1e-9);
        assert!((meter.mean_between(0.5, 1.0) - 1.0).abs() < 1e-9);
        assert!((meter.mean_between(0.0, 1.0) - 1.5).abs() < 1e-9);
        // Ends on bucket boundaries that floating point division rounds down.
        let mut s = State {
            now: 1,
            ..State::default()
        };
        s.advance(0.03);
        s.advance(0.07);
        assert!((s.area.iter().sum::<f64>() - 0.07).abs() < 1e-9);
        meter.start();
        meter.start();
        meter.end();
        assert!(meter.max() >= 2);
    }
}
