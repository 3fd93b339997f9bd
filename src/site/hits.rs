//! Counting the requests a generated site serves, per path and query.
//!
//! Tests read the counts to check a crawl's discipline: every page fetched
//! ([`Hits::unique`] equals [`SiteSpec::pages`](super::SiteSpec::pages)), none fetched twice
//! ([`Hits::max_per_url`] is 1), and no tracking-parameter spelling fetched at all.
//!
//! One mutex guards the map and the running totals, so every reading is consistent with
//! itself. Recording is a hash lookup under that lock and allocates only the first time a
//! path is seen, which keeps it cheap at benchmark request rates.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A thread-safe counter of requests keyed by path and query (e.g. `/item/17?utm_source=x`).
#[derive(Debug, Default)]
pub struct Hits {
    counts: Mutex<Counts>,
    /// Requests in flight over time.
    pub in_flight: super::InFlight,
}

/// What [`Hits`] guards.
#[derive(Debug, Default)]
struct Counts {
    by_url: HashMap<String, u64>,
    total: u64,
    max_per_url: u64,
}

impl Hits {
    /// An empty counter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one request for `path_and_query`.
    pub fn record(&self, path_and_query: &str) {
        let mut counts = self.lock();
        let count = match counts.by_url.get_mut(path_and_query) {
            Some(count) => {
                *count += 1;
                *count
            }
            None => {
                counts.by_url.insert(path_and_query.to_owned(), 1);
                1
            }
        };
        counts.total += 1;
        counts.max_per_url = counts.max_per_url.max(count);
    }

    /// The number of requests for exactly `path_and_query` (the query must match too).
    pub fn count(&self, path_and_query: &str) -> u64 {
        self.lock().by_url.get(path_and_query).copied().unwrap_or(0)
    }

    /// The number of requests for all URLs.
    pub fn total(&self) -> u64 {
        self.lock().total
    }

    /// The number of distinct paths-and-queries requested.
    pub fn unique(&self) -> u64 {
        // A usize always fits in a u64 on the platforms Rust supports.
        u64::try_from(self.lock().by_url.len()).unwrap_or(u64::MAX)
    }

    /// The highest number of requests for any one path-and-query; 0 before any request.
    pub fn max_per_url(&self) -> u64 {
        self.lock().max_per_url
    }

    /// Every path-and-query requested with its count, sorted by path-and-query.
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        let mut all: Vec<(String, u64)> = self
            .lock()
            .by_url
            .iter()
            .map(|(url, &count)| (url.clone(), count))
            .collect();
        all.sort_unstable();
        all
    }

    /// The guarded counts. A panic while holding the lock cannot leave them half-updated in
    /// a way that matters (at worst one request is not counted in `total`), so a poisoned
    /// lock is used as is.
    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_path_and_query() {
        let hits = Hits::new();
        assert_eq!((hits.total(), hits.unique(), hits.max_per_url()), (0, 0, 0));
        hits.record("/");
        hits.record("/item/1");
        hits.record("/item/1");
        hits.record("/item/1?utm_source=list");
        assert_eq!(hits.count("/item/1"), 2);
        assert_eq!(hits.count("/item/1?utm_source=list"), 1);
        assert_eq!(hits.count("/item/2"), 0);
        assert_eq!(hits.total(), 4);
        assert_eq!(hits.unique(), 3);
        assert_eq!(hits.max_per_url(), 2);
        assert_eq!(
            hits.snapshot(),
            vec![
                ("/".to_owned(), 1),
                ("/item/1".to_owned(), 2),
                ("/item/1?utm_source=list".to_owned(), 1),
            ]
        );
    }

    #[test]
    fn counts_from_many_threads() {
        let hits = Hits::new();
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let hits = &hits;
                scope.spawn(move || {
                    for i in 0..1000 {
                        hits.record(&format!("/item/{}", i % 10 + thread * 10));
                    }
                });
            }
        });
        assert_eq!(hits.total(), 4000);
        assert_eq!(hits.unique(), 40);
        assert_eq!(hits.max_per_url(), 100);
    }
}
