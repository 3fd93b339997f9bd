//! robots.txt `Crawl-delay`: requests to one host spaced at least the delay apart.
//!
//! Scope: one fetcher process. Each task reserves the next free slot of its host (the later
//! of now and the previous slot plus the delay) and sleeps until it, holding its fetch slot
//! meanwhile. With several fetcher processes each spaces its own requests, so a host sees at
//! most one request per delay per fetcher; the scheduler's `host_delay` is the crawl-wide
//! knob. The wait happens before the task's timeout starts. The scheduler's per-host
//! concurrency bounds how many tasks of one host can queue here, and the honoured delay is
//! capped by `max_crawl_delay`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Hosts remembered before past slots are forgotten.
const PRUNE_ABOVE: usize = 10_000;

/// The next free request slot of each host that has a crawl delay.
#[derive(Debug, Default)]
pub struct CrawlDelays {
    last_slot: Mutex<HashMap<String, Instant>>,
}

impl CrawlDelays {
    /// An empty schedule.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reserves the next slot for `host`, at least `delay` after the previous reservation,
    /// and returns when it is.
    pub fn reserve(&self, host: &str, delay: Duration) -> Instant {
        let now = Instant::now();
        // A poisoned lock only means another task panicked mid-update of a map of instants:
        // every value in it is still a valid instant.
        let mut slots = self
            .last_slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slots.len() > PRUNE_ABOVE {
            // Slots more than the largest plausible delay in the past constrain nothing.
            slots.retain(|_, slot| now.saturating_duration_since(*slot) < Duration::from_secs(600));
        }
        let slot = match slots.get(host) {
            Some(previous) => (*previous + delay).max(now),
            None => now,
        };
        slots.insert(host.to_owned(), slot);
        slot
    }

    /// Waits for the next slot of `host` (see [`CrawlDelays::reserve`]).
    pub async fn wait(&self, host: &str, delay: Duration) {
        let slot = self.reserve(host, delay);
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_are_spaced_by_the_delay_per_host() {
        let delays = CrawlDelays::new();
        let delay = Duration::from_secs(2);
        let start = Instant::now();
        let a1 = delays.reserve("a", delay);
        let a2 = delays.reserve("a", delay);
        let a3 = delays.reserve("a", delay);
        let b1 = delays.reserve("b", delay);
        assert_eq!(a1, start);
        assert_eq!(a2 - a1, delay);
        assert_eq!(a3 - a2, delay);
        assert_eq!(b1, start, "hosts are independent");

        // Long after the last slot, the next one is now.
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(delays.reserve("a", delay), Instant::now());
    }
}
