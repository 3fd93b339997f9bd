//! Opt-in budgets of one run: new pages per host (`max_pages_per_host`) and new query
//! variants per path (`max_query_variants`).
//!
//! The defaults bound the traps they can judge (session parameters, near-duplicate pages,
//! `max_depth`); a budget is the user's word for what they cannot, such as a catalogue whose
//! filters combine without end. It counts tasks new to the store only, so a re-crawl of a
//! known page never spends it, and starts again with each run (each submission of the start
//! URLs). A follow over budget is dropped before it is stored: counted in the project's
//! figures and logged once per host or path and run.
//!
//! Counts are kept by 64-bit hashes of the host or path, for at most [`TRACKED`] keys each:
//! memory stays bounded however many hosts or paths a crawl meets; a key first met once the
//! table is full is not limited.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use url::{Position, Url};
use xxhash_rust::xxh3::xxh3_64;

/// Keys counted per budget, at most (about 16 MiB each when full).
pub const TRACKED: usize = 1 << 20;

/// Why a new task was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverBudget {
    /// Its host had `max_pages_per_host` new pages this run.
    PagesPerHost(u32),
    /// Its path had `max_query_variants` new query variants this run.
    QueryVariants(u32),
}

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PagesPerHost(n) => write!(f, "over max_pages_per_host ({n})"),
            Self::QueryVariants(n) => write!(f, "over max_query_variants ({n})"),
        }
    }
}

/// The budgets of one project's run and what they have spent.
#[derive(Debug, Default)]
pub struct Budgets {
    pages_per_host: Option<u32>,
    query_variants: Option<u32>,
    hosts: Spent,
    paths: Spent,
}

impl Budgets {
    /// Budgets with these limits (`None`: no limit), nothing spent.
    pub fn new(pages_per_host: Option<u32>, query_variants: Option<u32>) -> Self {
        Self {
            pages_per_host,
            query_variants,
            ..Self::default()
        }
    }

    /// Whether any budget is set: without one, [`Budgets::admit`] has nothing to do.
    pub fn any(&self) -> bool {
        self.pages_per_host.is_some() || self.query_variants.is_some()
    }

    /// New limits from an edited project; what was spent this run stays spent.
    pub fn set_limits(&mut self, pages_per_host: Option<u32>, query_variants: Option<u32>) {
        self.pages_per_host = pages_per_host;
        self.query_variants = query_variants;
    }

    /// A new run: nothing spent.
    pub fn new_run(&mut self) {
        self.hosts = Spent::default();
        self.paths = Spent::default();
    }

    /// Spends the budgets of a task new to the store at `url`, or says which one is spent
    /// (the first time for a host or path, with `true`: the caller logs it once). A URL that
    /// does not parse is admitted: the fetcher records why it fails.
    pub fn admit(&mut self, url: &str) -> Result<(), (OverBudget, bool)> {
        if !self.any() {
            return Ok(());
        }
        let Ok(url) = Url::parse(url) else {
            return Ok(());
        };
        let host = url.host_str().unwrap_or_default();
        // Scheme, host, port and path: the URL up to its query.
        let path_key = url
            .query()
            .is_some()
            .then(|| xxh3_64(url[..Position::AfterPath].as_bytes()));
        let host_key = xxh3_64(host.as_bytes());
        // Check both before spending either, so a refused task costs no budget.
        if let Some(limit) = self.pages_per_host
            && let Some(first) = self.hosts.full(host_key, limit)
        {
            return Err((OverBudget::PagesPerHost(limit), first));
        }
        if let (Some(limit), Some(key)) = (self.query_variants, path_key)
            && let Some(first) = self.paths.full(key, limit)
        {
            return Err((OverBudget::QueryVariants(limit), first));
        }
        if self.pages_per_host.is_some() {
            self.hosts.spend(host_key);
        }
        if let (Some(_), Some(key)) = (self.query_variants, path_key) {
            self.paths.spend(key);
        }
        Ok(())
    }
}

/// Spent budget by key: how many admitted, and whether the refusal was reported.
#[derive(Debug, Default)]
struct Spent(HashMap<u64, (u32, bool)>);

impl Spent {
    /// `Some(first refusal)` when `key` has spent `limit`; marks it reported.
    fn full(&mut self, key: u64, limit: u32) -> Option<bool> {
        let (spent, reported) = self.0.get_mut(&key)?;
        if *spent < limit {
            return None;
        }
        Some(!std::mem::replace(reported, true))
    }

    fn spend(&mut self, key: u64) {
        let tracked = self.0.len();
        match self.0.entry(key) {
            Entry::Occupied(mut e) => e.get_mut().0 += 1,
            Entry::Vacant(e) if tracked < TRACKED => {
                e.insert((1, false));
            }
            Entry::Vacant(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_budget_admits_everything() {
        let mut b = Budgets::new(None, None);
        assert!(!b.any());
        for i in 0..10_000 {
            assert!(b.admit(&format!("http://a.test/item?id={i}")).is_ok());
        }
        assert!(
            b.hosts.0.is_empty() && b.paths.0.is_empty(),
            "nothing counted"
        );
    }

    #[test]
    fn pages_per_host_stop_each_host_at_its_limit() {
        let mut b = Budgets::new(Some(3), None);
        for i in 0..3 {
            assert!(b.admit(&format!("http://a.test/{i}")).is_ok());
        }
        assert_eq!(
            b.admit("http://a.test/4"),
            Err((OverBudget::PagesPerHost(3), true)),
            "the first refusal is reported"
        );
        assert_eq!(
            b.admit("http://a.test/5"),
            Err((OverBudget::PagesPerHost(3), false))
        );
        assert!(
            b.admit("http://b.test/1").is_ok(),
            "another host has its own"
        );
        b.new_run();
        assert!(b.admit("http://a.test/6").is_ok(), "a new run starts again");
    }

    #[test]
    fn query_variants_count_per_path_and_leave_plain_paths_alone() {
        let mut b = Budgets::new(None, Some(2));
        assert!(b.admit("http://a.test/filter?a=1").is_ok());
        assert!(b.admit("http://a.test/filter?a=2").is_ok());
        let (over, first) = b.admit("http://a.test/filter?a=3").expect_err("over");
        assert_eq!((over, first), (OverBudget::QueryVariants(2), true));
        assert!(b.admit("http://a.test/other?a=3").is_ok(), "per path");
        assert!(b.admit("https://a.test/filter?a=3").is_ok(), "per scheme");
        assert!(b.admit("http://a.test:8080/filter?a=3").is_ok(), "per port");
        for i in 0..10 {
            assert!(
                b.admit(&format!("http://a.test/page/{i}")).is_ok(),
                "no query"
            );
        }
    }

    #[test]
    fn a_refused_task_spends_no_budget() {
        let mut b = Budgets::new(Some(2), Some(1));
        assert!(b.admit("http://a.test/f?x=1").is_ok());
        // Over the variants budget: the host budget is not spent by it.
        assert!(b.admit("http://a.test/f?x=2").is_err());
        assert!(b.admit("http://a.test/g").is_ok());
        assert_eq!(
            b.admit("http://a.test/h").map_err(|e| e.0),
            Err(OverBudget::PagesPerHost(2))
        );
    }

    #[test]
    fn the_count_tables_stay_bounded() {
        let mut spent = Spent::default();
        for key in 0..(TRACKED as u64 + 10) {
            spent.spend(key);
        }
        assert_eq!(spent.0.len(), TRACKED);
        assert_eq!(
            spent.full(TRACKED as u64 + 5, 1),
            None,
            "an untracked key is not limited"
        );
    }
}
