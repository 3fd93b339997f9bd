//! `spindle bench`: crawl a generated site served by a separate process and print figures.
//!
//! The site runs in a child process (`spindle serve-site`) so its CPU time is not counted
//! in the crawler's peak memory, and so the two compete for the cores as they would on a
//! machine where the crawler shares the host with nothing else but the network.
//!
//! The site's pages are small (2–3 KB) or large (about 10 KB), and the project lets
//! `host_concurrency` requests be in flight to it (64 by default; a project's own default is
//! 8). Beside the in-process figures, [`whole`] runs `spindle crawl` as a process of its own
//! and the `spider` crate's crawler on the same site (from spawn to exit), and [`hosts`] is the
//! many-host bench.

pub mod hosts;
pub mod process;
pub mod soak;
pub mod whole;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::Context;
use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use spindle_common::Store;
use spindle_common::cpu::{self, CpuByStage};

use crate::crawl::{CrawlSummary, crawl};
use crate::embedded::EmbeddedConfig;
use crate::site::{PageSize, Site, SiteSpec};

/// The generated site a bench crawls, and how hard.
#[derive(Debug, Clone, Copy)]
pub struct BenchSite {
    /// Products on the site.
    pub products: u32,
    /// Size of its detail pages.
    pub pages: PageSize,
    /// Requests in flight to it, at most (the project's `host_concurrency`).
    pub host_concurrency: u32,
}

impl BenchSite {
    /// The shape of the site.
    pub fn spec(&self) -> SiteSpec {
        SiteSpec::bench_sized(self.products, self.pages)
    }

    /// The bench project for the site served at `base`.
    pub fn project_toml(&self, name: &str, base: &str) -> String {
        Site::new(self.spec()).project_toml(name, base).replace(
            "host_concurrency = 512",
            &format!("host_concurrency = {}", self.host_concurrency),
        )
    }

    /// One line saying what is crawled how.
    pub fn describe(&self) -> String {
        let pages = match self.pages {
            PageSize::Small => "small (~2.5 KB)",
            PageSize::Large => "large (~10 KB)",
        };
        format!(
            "{} products, {pages} detail pages, host_concurrency {} (a project's default is 8)",
            self.products, self.host_concurrency
        )
    }
}

/// What the bench site's server saw of a crawl (its `/__stats`).
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
pub struct SiteStats {
    /// Requests served.
    pub requests: u64,
    /// The most requests in flight at once.
    pub max_in_flight: u32,
    /// Requests in flight on average over the middle 80% of the crawl.
    pub mean_in_flight: f64,
}

impl SiteStats {
    /// What the server at `base` (`http://host:port`) saw so far.
    pub async fn of(base: &str) -> anyhow::Result<SiteStats> {
        process::get_json(base.trim_start_matches("http://"), "/__stats").await
    }
}

impl fmt::Display for SiteStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the site saw {:.1} requests in flight on average (middle 80% of the crawl), {} at most",
            self.mean_in_flight, self.max_in_flight
        )
    }
}

/// Figures of one bench run.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// The crawl's own summary, its time the [`crawl_span`].
    pub summary: CrawlSummary,
    /// From starting the roles to noticing the end (the crawl's own time plus start-up and
    /// the end's detection).
    pub wall: Duration,
    /// Pages the site serves.
    pub site_pages: u64,
    /// Items stored, every one checked against the site.
    pub items_stored: u64,
    /// Products on the site.
    pub products: u64,
    /// Peak resident memory of the crawler process, in KiB.
    pub peak_rss_kib: u64,
    /// CPU time of the crawler during the crawl, by stage.
    pub cpu: CpuByStage,
    /// CPU time of the site server process during the crawl, in ms.
    pub server_cpu_ms: f64,
    /// What the site's server saw.
    pub site: SiteStats,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.summary.elapsed.as_secs_f64().max(0.001);
        writeln!(
            f,
            "site: {} products, {} pages",
            self.products, self.site_pages
        )?;
        // The bench's figure is its rate, short crawl or not (a `spindle crawl` summary
        // leaves the rate out below a second).
        writeln!(
            f,
            "embedded crawl: {} pages, {} items, {} errors in {secs:.2}s ({:.0} pages/s)",
            self.summary.pages,
            self.summary.items,
            self.summary.errors,
            self.pages_per_s()
        )?;
        writeln!(
            f,
            "  {:.2}s from the project's start to its last item; {:.2}s with start-up and the end's detection",
            secs,
            self.wall.as_secs_f64()
        )?;
        writeln!(f, "  {}", self.site)?;
        writeln!(f, "items/s: {:.0}", self.items_stored as f64 / secs)?;
        writeln!(f, "{}", self.cpu_line())?;
        writeln!(
            f,
            "items stored: {} (expected {}, every one checked)",
            self.items_stored, self.products
        )?;
        write!(
            f,
            "peak RSS of the crawler: {:.1} MiB",
            self.peak_rss_kib as f64 / 1024.0
        )
    }
}

impl BenchReport {
    /// Pages per second of the crawl's own time.
    pub fn pages_per_s(&self) -> f64 {
        self.summary.pages as f64 / self.summary.elapsed.as_secs_f64().max(0.001)
    }

    /// The per-page CPU figures, one line.
    fn cpu_line(&self) -> String {
        let pages = self.summary.pages.max(1) as f64;
        let c = &self.cpu;
        let other = c.total_ms - c.fetch_ms - c.process_ms - c.schedule_ms - c.store_ms;
        let secs = self.summary.elapsed.as_secs_f64().max(0.001);
        format!(
            "CPU ms per page: fetch {:.3}, parse and extract {:.3}, schedule {:.3}, store {:.3}, other {:.3} (crawler total {:.3}, {:.0}% of one core); site server {:.3} ({:.0}% of one core)",
            c.fetch_ms / pages,
            c.process_ms / pages,
            c.schedule_ms / pages,
            c.store_ms / pages,
            other.max(0.0) / pages,
            c.total_ms / pages,
            c.total_ms / 10.0 / secs,
            self.server_cpu_ms / pages,
            self.server_cpu_ms / 10.0 / secs,
        )
    }
}

/// Starts `spindle serve-site` for the bench site; the child and its base URL.
pub async fn serve_site(site: &BenchSite) -> anyhow::Result<(tokio::process::Child, String)> {
    let exe = std::env::current_exe().context("cannot find the spindle executable")?;
    let pages = match site.pages {
        PageSize::Small => "small",
        PageSize::Large => "large",
    };
    let mut child = tokio::process::Command::new(exe)
        .args([
            "serve-site",
            "--products",
            &site.products.to_string(),
            "--pages",
            pages,
            "--bind",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the site server")?;
    let stdout = child.stdout.take().context("site server has no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let base = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .context("site server did not start in 30 s")??
        .context("site server exited before printing its address")?;
    Ok((child, base.trim().to_string()))
}

/// `spindle bench`: crawls `site` embedded, then as a `spindle crawl` process and with the
/// peer crawler, then (given `nats` and `database`) distributed with each number of
/// `fetchers`, in a temporary folder; prints each report as it comes.
pub async fn command(
    site: &BenchSite,
    concurrency: Option<usize>,
    peer: Option<PathBuf>,
    nats: Option<String>,
    database: Option<String>,
    fetchers: Vec<usize>,
) -> anyhow::Result<ExitCode> {
    let data = tempfile::tempdir().context("cannot create a temporary folder")?;
    let concurrency = concurrency.unwrap_or(spindle_fetcher::config::DEFAULT_CONCURRENCY);
    println!("bench: {}", site.describe());
    let embedded = run(site, concurrency, data.path()).await?;
    println!("{embedded}");
    let whole = whole::run(site, concurrency, peer, data.path()).await?;
    println!("{whole}");
    if let (Some(nats), Some(database)) = (nats, database) {
        for n in fetchers {
            let report = run_distributed(site, n, &nats, &database, data.path()).await?;
            println!("{report}");
            println!(
                "  {:.0}% of the embedded rate",
                100.0 * report.pages_per_s() / embedded.pages_per_s()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs the bench: serves a site of `products` products from a child process and crawls it.
pub async fn run(
    bench: &BenchSite,
    concurrency: usize,
    data: &Path,
) -> anyhow::Result<BenchReport> {
    let products = bench.products;
    let (mut child, base) = serve_site(bench).await?;
    let site = Site::new(bench.spec());
    let project = spindle_common::Project::parse(&bench.project_toml("bench", &base))
        .map_err(|e| anyhow::anyhow!("bench project: {e}"))?;
    let mut config = EmbeddedConfig::default();
    config.fetcher.concurrency = concurrency;
    let server_pid = child.id().unwrap_or(0);
    spindle_common::cpu::enable();
    let (cpu_before, server_before) = (cpu::snapshot(), cpu::pid_ns(server_pid));
    let (mut summary, store) = crawl(&project, data, config, false).await?;
    let (cpu_after, server_after) = (cpu::snapshot(), cpu::pid_ns(server_pid));
    let seen = SiteStats::of(&base).await?;
    child.kill().await.ok();
    let wall = std::mem::replace(&mut summary.elapsed, crawl_span(&*store, "bench").await?);
    // Read before the check, which holds every expected item and is not the crawler's.
    let peak_rss_kib = cpu::rss_kib().1;
    let items_stored = verify_items(&*store, "bench", &site, &base).await?;
    Ok(BenchReport {
        summary,
        wall,
        site_pages: site.spec().pages(),
        items_stored,
        products: products as u64,
        peak_rss_kib,
        cpu: CpuByStage {
            fetch_ms: cpu_after.fetch_ms - cpu_before.fetch_ms,
            process_ms: cpu_after.process_ms - cpu_before.process_ms,
            schedule_ms: cpu_after.schedule_ms - cpu_before.schedule_ms,
            store_ms: cpu_after.store_ms - cpu_before.store_ms,
            total_ms: cpu_after.total_ms - cpu_before.total_ms,
        },
        server_cpu_ms: server_after.saturating_sub(server_before) as f64 / 1e6,
        site: seen,
    })
}

/// The crawl's own time: from the scheduler's start of `project` to its last stored item,
/// both as the store recorded them. Process start-up and the poll that notices the end are
/// left out, so that the embedded and the distributed figures compare the crawling itself.
async fn crawl_span(store: &dyn Store, project: &str) -> anyhow::Result<Duration> {
    let started = store
        .project(project)
        .await?
        .context("the bench project is not stored")?
        .last_start_ms;
    let last = store
        .last_result_ms(project)
        .await?
        .context("the bench crawl stored no item")?;
    anyhow::ensure!(
        started > 0 && last >= started,
        "the project started at {started} ms but its last item is from {last} ms"
    );
    Ok(Duration::from_millis((last - started).max(1) as u64))
}

/// Checks the stored items of `project` against the site: one item per product, each with
/// the fields the site generated. The number of items, or what is wrong.
async fn verify_items(
    store: &dyn Store,
    project: &str,
    site: &Site,
    base: &str,
) -> anyhow::Result<u64> {
    let mut expected: HashMap<String, Map<String, Value>> = site
        .expected_items(base)
        .into_iter()
        .filter_map(|item| Some((item.get("url")?.as_str()?.to_string(), item)))
        .collect();
    let products = expected.len();
    let mut after: Option<String> = None;
    let mut stored = 0u64;
    loop {
        let page = store.results_page(project, after.as_deref(), 1_000).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.taskid.clone());
        for item in page {
            stored += 1;
            let url = item.data.get("url").and_then(Value::as_str).unwrap_or("");
            match expected.remove(url) {
                Some(want) if want == item.data => {}
                Some(want) => anyhow::bail!(
                    "the item of {url} is wrong: stored {}, expected {}",
                    Value::Object(item.data.clone()),
                    Value::Object(want)
                ),
                None => anyhow::bail!(
                    "unexpected or duplicate item for {:?} (page {})",
                    url,
                    item.url
                ),
            }
        }
    }
    anyhow::ensure!(
        expected.is_empty(),
        "{} of {products} products have no item",
        expected.len()
    );
    Ok(stored)
}

/// Figures of a distributed bench run.
#[derive(Debug, Clone)]
pub struct DistributedReport {
    /// Fetcher processes.
    pub fetchers: usize,
    /// Pages fetched and processed.
    pub pages: u64,
    /// Items stored.
    pub items: u64,
    /// The [`crawl_span`].
    pub elapsed: Duration,
    /// From starting the role processes to noticing the end.
    pub wall: Duration,
    /// CPU time of each role process (scheduler, fetchers, processor, result writer), in ms.
    pub role_cpu_ms: Vec<(&'static str, f64)>,
}

impl DistributedReport {
    /// Pages per second of the crawl's own time.
    pub fn pages_per_s(&self) -> f64 {
        self.pages as f64 / self.elapsed.as_secs_f64().max(0.001)
    }
}

impl fmt::Display for DistributedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(0.001);
        writeln!(
            f,
            "distributed crawl, {} fetcher(s): {} pages, {} items in {secs:.1}s ({:.0} pages/s)",
            self.fetchers,
            self.pages,
            self.items,
            self.pages_per_s()
        )?;
        writeln!(
            f,
            "  {secs:.2}s from the project's start to its last item; {:.2}s from starting the processes",
            self.wall.as_secs_f64()
        )?;
        let per_page: Vec<String> = self
            .role_cpu_ms
            .iter()
            .map(|(role, ms)| format!("{role} {:.3}", ms / self.pages.max(1) as f64))
            .collect();
        write!(f, "  CPU ms per page by process: {}", per_page.join(", "))
    }
}

/// The same crawl in distributed mode: one scheduler, `fetchers` fetchers, one processor and
/// one result writer as separate processes on NATS and the database at `database`.
pub async fn run_distributed(
    bench: &BenchSite,
    fetchers: usize,
    nats: &str,
    database: &str,
    folder: &Path,
) -> anyhow::Result<DistributedReport> {
    let products = bench.products;
    let (mut site_child, base) = serve_site(bench).await?;
    let tag = format!("b{}x{fetchers}", std::process::id());
    let projects = folder.join(&tag);
    std::fs::create_dir_all(&projects)?;
    let site = Site::new(bench.spec());
    std::fs::write(projects.join("bench.toml"), bench.project_toml(&tag, &base))?;
    let store = spindle_store::connect(database).await?;
    let exe = std::env::current_exe().context("cannot find the spindle executable")?;
    let started = std::time::Instant::now();
    let mut roles = Vec::new();
    let projects_arg = projects.to_string_lossy().to_string();
    let mut commands: Vec<Vec<&str>> = vec![vec!["scheduler", "--projects", &projects_arg]];
    commands.extend((0..fetchers).map(|_| vec!["fetcher"]));
    commands.push(vec!["processor"]);
    commands.push(vec!["result-writer"]);
    let names: Vec<&'static str> = commands
        .iter()
        .map(|c| match c[0] {
            "scheduler" => "scheduler",
            "fetcher" => "fetcher",
            "processor" => "processor",
            _ => "result writer",
        })
        .collect();
    for args in commands {
        roles.push(
            tokio::process::Command::new(&exe)
                .args(args)
                .args(["--nats", nats, "--namespace", &tag, "--database", database])
                .env("SPINDLE_LOG", "warn")
                .stdout(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .context("cannot start a role")?,
        );
    }
    let limit = Duration::from_secs(600);
    let mut last_item = None;
    let (pages, _) = loop {
        anyhow::ensure!(
            started.elapsed() < limit,
            "distributed crawl did not finish in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Counting every task and item costs the database milliseconds: done only once no
        // item was stored since the last look (an index lookup), so the bench's polling
        // does not weigh on the crawl it measures.
        let newest = store.last_result_ms(&tag).await?;
        if newest.is_none() || std::mem::replace(&mut last_item, newest) != newest {
            continue;
        }
        let counts = store.task_counts(&tag).await?;
        let items = store.count_results(&tag).await?;
        if counts.queued + counts.claimed == 0 && counts.success > 0 && items == u64::from(products)
        {
            break (counts.success, items);
        }
    };
    let wall = started.elapsed();
    let elapsed = crawl_span(&*store, &tag).await?;
    let role_cpu_ms = names
        .into_iter()
        .zip(&roles)
        .map(|(name, role)| (name, cpu::pid_ns(role.id().unwrap_or(0)) as f64 / 1e6))
        .collect();
    for mut role in roles {
        role.kill().await.ok();
    }
    site_child.kill().await.ok();
    let items = verify_items(&*store, &tag, &site, &base).await?;
    let cleanup = spindle_nats::NatsOptions::new(nats).namespace(&tag);
    if let Ok(bus) = spindle_nats::NatsBus::connect(cleanup).await {
        bus.delete_streams().await.ok();
    }
    store.delete_project(&tag).await?;
    Ok(DistributedReport {
        fetchers,
        pages,
        items,
        elapsed,
        wall,
        role_cpu_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use spindle_common::message::Item;

    async fn store_with(
        items: &[Map<String, Value>],
    ) -> (tempfile::TempDir, std::sync::Arc<dyn Store>) {
        let dir = tempfile::tempdir().expect("temporary folder");
        let store = crate::embedded::open_store(dir.path())
            .await
            .expect("store");
        let project = spindle_common::store::ProjectRecord {
            name: "bench".into(),
            definition: String::new(),
            status: spindle_common::store::ProjectStatus::Running,
            rate: 1.0,
            burst: 1.0,
            group: None,
            updated_ms: 0,
            last_start_ms: 0,
            run_requested_ms: 0,
            origin: None,
        };
        store.save_project(&project).await.expect("save");
        let items: Vec<Item> = items
            .iter()
            .enumerate()
            .map(|(n, data)| Item {
                taskid: format!("t{n}"),
                url: format!("page{n}"),
                data: data.clone(),
            })
            .collect();
        store
            .upsert_results("bench", &items, 0)
            .await
            .expect("upsert");
        (dir, store)
    }

    #[tokio::test]
    async fn every_item_is_checked_against_the_site() {
        let site = Site::new(SiteSpec::bench(3));
        let base = "http://127.0.0.1:9";
        let good = site.expected_items(base);
        let (_dir, store) = store_with(&good).await;
        assert_eq!(
            verify_items(&*store, "bench", &site, base)
                .await
                .expect("good"),
            3
        );

        let (_dir, store) = store_with(&good[..2]).await;
        let missing = verify_items(&*store, "bench", &site, base).await;
        assert!(format!("{:?}", missing.expect_err("missing")).contains("1 of 3 products"));

        let mut wrong = good.clone();
        wrong[1].insert("price".into(), Value::from(0));
        let (_dir, store) = store_with(&wrong).await;
        let err = verify_items(&*store, "bench", &site, base).await;
        assert!(format!("{:?}", err.expect_err("wrong")).contains("is wrong"));

        let mut twice = good.clone();
        twice.push(good[0].clone());
        let (_dir, store) = store_with(&twice).await;
        let err = verify_items(&*store, "bench", &site, base).await;
        assert!(format!("{:?}", err.expect_err("duplicate")).contains("duplicate"));
    }
}
