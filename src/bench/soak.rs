//! `spindle bench --soak PAGES`: a long embedded crawl of a generated site of at least PAGES
//! pages that prints the crawler's resident memory, open file descriptors and pages per
//! second at a fixed interval, so a leak shows as a line that keeps rising. Flat RSS and fds
//! after the warm-up is the pass; the figures are in the README.

use std::fmt;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;

use spindle_common::cpu;

use super::{BenchSite, SiteStats, serve_site, verify_items};
use crate::crawl::crawl;
use crate::embedded::EmbeddedConfig;
use crate::site::{PageSize, Site};

/// Products that make a bench site of at least `pages` pages of `bench`'s shape.
pub fn products_for(pages: u64, bench: &BenchSite) -> u32 {
    // Each product adds its page, a fiftieth of a list page and a hundredth of a 404 page:
    // start a little below and count up.
    let mut products = u32::try_from(pages * 100 / 104).unwrap_or(u32::MAX);
    let pages_of = |products: u32| BenchSite { products, ..*bench }.spec().pages();
    while pages_of(products) < pages && products < u32::MAX {
        products += 1;
    }
    products
}

/// One sample of the crawler process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Since the crawl started.
    pub at: Duration,
    /// Pages the site served so far.
    pub pages: u64,
    /// Pages per second since the previous sample.
    pub pages_per_s: f64,
    /// Resident memory, KiB.
    pub rss_kib: u64,
    /// Open file descriptors.
    pub fds: u64,
}

impl fmt::Display for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>5.0}s  {:>8} pages  {:>6.0} pages/s  RSS {:>6.1} MiB  {:>4} fds",
            self.at.as_secs_f64(),
            self.pages,
            self.pages_per_s,
            self.rss_kib as f64 / 1024.0,
            self.fds
        )
    }
}

/// What a soak run saw.
#[derive(Debug, Clone)]
pub struct SoakReport {
    /// Every sample, in order.
    pub samples: Vec<Sample>,
    /// Pages crawled and items stored (every item checked against the site).
    pub pages: u64,
    /// Items stored.
    pub items: u64,
    /// From the crawl's start to its end.
    pub elapsed: Duration,
}

impl fmt::Display for SoakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(0.001);
        writeln!(
            f,
            "soak: {} pages, {} items (every one checked) in {secs:.0}s ({:.0} pages/s)",
            self.pages,
            self.items,
            self.pages as f64 / secs
        )?;
        // The first sample is the warm-up; what matters is whether the rest keeps rising.
        let steady = self.samples.get(1..).unwrap_or_default();
        let range = |of: fn(&Sample) -> u64| {
            let min = steady.iter().map(of).min().unwrap_or(0);
            let max = steady.iter().map(of).max().unwrap_or(0);
            (min, max)
        };
        let (rss_min, rss_max) = range(|s| s.rss_kib);
        let (fds_min, fds_max) = range(|s| s.fds);
        write!(
            f,
            "after the first sample: RSS {:.1}–{:.1} MiB, fds {fds_min}–{fds_max}",
            rss_min as f64 / 1024.0,
            rss_max as f64 / 1024.0
        )
    }
}

/// Open file descriptors of this process.
fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count() as u64)
}

/// `spindle bench --soak PAGES`: [`run`] on a site of at least `pages` pages of `size`,
/// with `concurrency` fetches in flight (or `spindle crawl`'s default), in a temporary
/// folder; prints every sample, then the report.
pub async fn command(
    pages: u64,
    every: Duration,
    size: PageSize,
    host_concurrency: u32,
    concurrency: Option<usize>,
) -> anyhow::Result<ExitCode> {
    let data = tempfile::tempdir().context("cannot create a temporary folder")?;
    let concurrency = concurrency.unwrap_or(spindle_fetcher::config::DEFAULT_CONCURRENCY);
    let mut site = BenchSite {
        products: 0,
        pages: size,
        host_concurrency,
    };
    site.products = products_for(pages, &site);
    println!("soak: {}, {} pages", site.describe(), site.spec().pages());
    let report = run(&site, concurrency, data.path(), every, |sample| {
        println!("{sample}")
    })
    .await?;
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

/// Crawls `bench` embedded in `data`, printing a [`Sample`] every `every` through `print`.
pub async fn run(
    bench: &BenchSite,
    concurrency: usize,
    data: &Path,
    every: Duration,
    mut print: impl FnMut(&Sample),
) -> anyhow::Result<SoakReport> {
    let (mut child, base) = serve_site(bench).await?;
    let site = Site::new(bench.spec());
    let project = spindle_common::Project::parse(&bench.project_toml("bench", &base))
        .map_err(|e| anyhow::anyhow!("bench project: {e}"))?;
    let mut config = EmbeddedConfig::default();
    config.fetcher.concurrency = concurrency;
    let data_owned = data.to_path_buf();
    let started = Instant::now();
    let mut crawl = tokio::spawn(async move { crawl(&project, &data_owned, config, false).await });
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let (mut samples, mut last_pages, mut last_at) = (Vec::new(), 0u64, Duration::ZERO);
    let (summary, store) = loop {
        tokio::select! {
            done = &mut crawl => break done.context("the crawl panicked")??,
            _ = ticks.tick() => {
                let at = started.elapsed();
                let pages = SiteStats::of(&base).await?.requests;
                let sample = Sample {
                    at,
                    pages,
                    pages_per_s: pages.saturating_sub(last_pages) as f64
                        / (at - last_at).as_secs_f64().max(0.001),
                    rss_kib: cpu::rss_kib().0,
                    fds: open_fds(),
                };
                print(&sample);
                samples.push(sample);
                (last_pages, last_at) = (pages, at);
            }
        }
    };
    let elapsed = started.elapsed();
    child.kill().await.ok();
    let items = verify_items(&*store, "bench", &site, &base).await?;
    Ok(SoakReport {
        samples,
        pages: summary.pages,
        items,
        elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::PageSize;

    #[test]
    fn products_for_gives_the_smallest_site_of_that_many_pages() {
        let bench = BenchSite {
            products: 0,
            pages: PageSize::Small,
            host_concurrency: 64,
        };
        for pages in [1_000, 200_000] {
            let products = products_for(pages, &bench);
            let of = |products| BenchSite { products, ..bench }.spec().pages();
            assert!(of(products) >= pages);
            assert!(of(products - 1) < pages);
        }
    }
}
