//! `spindle bench`: crawl a generated site served by a separate process and print figures.
//!
//! The site runs in a child process (`spindle serve-site`) so its CPU time is not counted
//! in the crawler's peak memory, and so the two compete for the cores as they would on a
//! machine where the crawler shares the host with nothing else but the network.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use spindle_common::cpu::{self, CpuByStage};

use crate::crawl::{CrawlSummary, crawl};
use crate::embedded::EmbeddedConfig;
use crate::site::{Site, SiteSpec};

/// Figures of one bench run.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// The crawl's own summary.
    pub summary: CrawlSummary,
    /// Pages the site serves.
    pub site_pages: u64,
    /// Items found versus products on the site.
    pub items_stored: u64,
    /// Products on the site.
    pub products: u64,
    /// Peak resident memory of the crawler process, in KiB.
    pub peak_rss_kib: u64,
    /// CPU time of the crawler during the crawl, by stage.
    pub cpu: CpuByStage,
    /// CPU time of the site server process during the crawl, in ms.
    pub server_cpu_ms: f64,
}

impl BenchReport {
    /// The per-page CPU figures, one line.
    pub fn cpu_line(&self) -> String {
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

/// Starts `spindle serve-site` for a site of `products` products; the child and its base URL.
async fn serve_site(products: u32) -> anyhow::Result<(tokio::process::Child, String)> {
    let exe = std::env::current_exe().context("cannot find the spindle executable")?;
    let mut child = tokio::process::Command::new(exe)
        .args([
            "serve-site",
            "--products",
            &products.to_string(),
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

/// Runs the bench: serves a site of `products` products from a child process and crawls it.
pub async fn run(products: u32, concurrency: usize, data: &Path) -> anyhow::Result<BenchReport> {
    let (mut child, base) = serve_site(products).await?;
    let site = Site::new(SiteSpec::bench(products));
    let project = spindle_common::Project::parse(&site.project_toml("bench", &base))
        .map_err(|e| anyhow::anyhow!("bench project: {e}"))?;
    let mut config = EmbeddedConfig::default();
    config.fetcher.concurrency = concurrency;
    let server_pid = child.id().unwrap_or(0);
    spindle_common::cpu::enable();
    let (cpu_before, server_before) = (cpu::snapshot(), cpu::pid_ns(server_pid));
    let (summary, store) = crawl(&project, data, config, false).await?;
    let (cpu_after, server_after) = (cpu::snapshot(), cpu::pid_ns(server_pid));
    child.kill().await.ok();
    let items_stored = store.count_results("bench").await?;
    let wrong = store
        .results_page("bench", None, 1)
        .await?
        .iter()
        .filter(|i| i.data.get("title").is_none_or(Value::is_null))
        .count();
    anyhow::ensure!(
        wrong == 0,
        "bench items lack their title: the crawl is broken"
    );
    Ok(BenchReport {
        summary,
        site_pages: site.spec().pages(),
        items_stored,
        products: products as u64,
        peak_rss_kib: cpu::rss_kib().1,
        cpu: CpuByStage {
            fetch_ms: cpu_after.fetch_ms - cpu_before.fetch_ms,
            process_ms: cpu_after.process_ms - cpu_before.process_ms,
            schedule_ms: cpu_after.schedule_ms - cpu_before.schedule_ms,
            store_ms: cpu_after.store_ms - cpu_before.store_ms,
            total_ms: cpu_after.total_ms - cpu_before.total_ms,
        },
        server_cpu_ms: server_after.saturating_sub(server_before) as f64 / 1e6,
    })
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
    /// From starting the roles to the last item stored.
    pub elapsed: Duration,
    /// CPU time of each role process (scheduler, fetchers, processor, result writer), in ms.
    pub role_cpu_ms: Vec<(&'static str, f64)>,
}

/// The same crawl in distributed mode: one scheduler, `fetchers` fetchers, one processor and
/// one result writer as separate processes on NATS and the database at `database`.
pub async fn run_distributed(
    products: u32,
    fetchers: usize,
    nats: &str,
    database: &str,
    folder: &Path,
) -> anyhow::Result<DistributedReport> {
    let (mut site_child, base) = serve_site(products).await?;
    let tag = format!("b{}x{fetchers}", std::process::id());
    let projects = folder.join(&tag);
    std::fs::create_dir_all(&projects)?;
    let site = Site::new(SiteSpec::bench(products));
    std::fs::write(projects.join("bench.toml"), site.project_toml(&tag, &base))?;
    let store = spindle_common::store::connect(database).await?;
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
    let (pages, items) = loop {
        anyhow::ensure!(
            started.elapsed() < limit,
            "distributed crawl did not finish in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let counts = store.task_counts(&tag).await?;
        let items = store.count_results(&tag).await?;
        if counts.queued + counts.claimed == 0 && counts.success > 0 && items == u64::from(products)
        {
            break (counts.success, items);
        }
    };
    let elapsed = started.elapsed();
    let role_cpu_ms = names
        .into_iter()
        .zip(&roles)
        .map(|(name, role)| (name, cpu::pid_ns(role.id().unwrap_or(0)) as f64 / 1e6))
        .collect();
    for mut role in roles {
        role.kill().await.ok();
    }
    site_child.kill().await.ok();
    let cleanup = spindle_common::bus::NatsOptions::new(nats).namespace(&tag);
    if let Ok(bus) = spindle_common::bus::NatsBus::connect(cleanup).await {
        bus.delete_streams().await.ok();
    }
    store.delete_project(&tag).await?;
    Ok(DistributedReport {
        fetchers,
        pages,
        items,
        elapsed,
        role_cpu_ms,
    })
}
