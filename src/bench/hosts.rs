//! The many-host bench: `spindle bench --hosts N --delay D` crawls a site of N loopback hosts
//! whose every answer takes D, with `host_concurrency = 2`, so at most `2 × N` requests can be
//! in flight and the ideal rate is `2 × N / D`. It reports the rate the server saw (first
//! request to last response) as a share of that ideal, the most requests one host had in
//! flight, and what the `spindle crawl` process cost from spawn to exit.

use std::fmt;
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::process::{ProcessFigures, get_json, measure};
use crate::site::hosts::{HostsSpec, HostsStats};

/// Requests in flight per host in the bench's project.
pub const HOST_CONCURRENCY: u32 = 2;

/// Figures of a many-host run.
#[derive(Debug, Clone)]
pub struct HostsReport {
    /// The site.
    pub spec: HostsSpec,
    /// What the server saw.
    pub stats: HostsStats,
    /// What the crawl process cost.
    pub process: ProcessFigures,
    /// Items written.
    pub items: u64,
}

impl HostsReport {
    /// The best rate politeness allows: every host busy with all its slots.
    pub fn ideal_per_s(&self) -> f64 {
        f64::from(self.spec.hosts) * f64::from(HOST_CONCURRENCY) / self.spec.delay.as_secs_f64()
    }

    /// Requests per second the server saw over the crawl.
    pub fn per_s(&self) -> f64 {
        self.stats.requests as f64 / self.stats.span_s.max(0.001)
    }
}

impl fmt::Display for HostsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let spec = &self.spec;
        writeln!(
            f,
            "site: {} hosts × (robots.txt + index + {} products) = {} requests, each answered after {:?}",
            spec.hosts,
            spec.products,
            spec.requests(),
            spec.delay
        )?;
        writeln!(
            f,
            "many-host crawl (host_concurrency {HOST_CONCURRENCY}): {} requests in {:.1}s from the first request to the last response: {:.0} requests/s, {:.0}% of the ideal {:.0}/s",
            self.stats.requests,
            self.stats.span_s,
            self.per_s(),
            100.0 * self.per_s() / self.ideal_per_s(),
            self.ideal_per_s()
        )?;
        writeln!(
            f,
            "  in flight: at most {} at one host, {} at once",
            self.stats.max_per_host, self.stats.max_in_flight
        )?;
        writeln!(
            f,
            "  items: {} (expected {})",
            self.items,
            u64::from(spec.hosts) * u64::from(spec.products)
        )?;
        write!(
            f,
            "  spindle crawl, whole process: {:.1}s wall, {:.1}s CPU, peak RSS {:.1} MiB",
            self.process.wall.as_secs_f64(),
            self.process.cpu.as_secs_f64(),
            self.process.peak_rss_kib as f64 / 1024.0
        )
    }
}

/// Starts `spindle serve-hosts`; the child and its port.
async fn serve_hosts(spec: &HostsSpec) -> anyhow::Result<(tokio::process::Child, u16)> {
    let exe = std::env::current_exe().context("cannot find the spindle executable")?;
    let mut child = tokio::process::Command::new(exe)
        .args([
            "serve-hosts",
            "--hosts",
            &spec.hosts.to_string(),
            "--products",
            &spec.products.to_string(),
            "--delay",
            &format!("{}ms", spec.delay.as_millis()),
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the many-host site")?;
    let stdout = child.stdout.take().context("the site has no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let port = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .context("the many-host site did not start in 30 s")??
        .context("the many-host site exited before printing its port")?;
    Ok((child, port.trim().parse().context("the site's port")?))
}

/// `spindle bench --hosts N`: [`run`] in a temporary folder, then prints the report.
pub async fn command(spec: HostsSpec, concurrency: Option<usize>) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir().context("cannot create a temporary folder")?;
    let report = run(spec, concurrency, dir.path()).await?;
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

/// Runs the many-host bench: serves the site from a child process and crawls it with
/// `spindle crawl` (fetcher concurrency `concurrency`, or the crawl's default).
pub async fn run(
    spec: HostsSpec,
    concurrency: Option<usize>,
    dir: &Path,
) -> anyhow::Result<HostsReport> {
    let (mut site, port) = serve_hosts(&spec).await?;
    let project = dir.join("hosts.toml");
    std::fs::write(&project, spec.project_toml("hosts", port, HOST_CONCURRENCY))?;
    let items = dir.join("hosts.jsonl");
    let exe = std::env::current_exe().context("cannot find the spindle executable")?;
    let mut crawl = tokio::process::Command::new(exe);
    crawl
        .arg("crawl")
        .arg(&project)
        .arg("-o")
        .arg(&items)
        .arg("--data")
        .arg(dir.join("hosts-data"));
    if let Some(n) = concurrency {
        crawl.args(["--concurrency", &n.to_string()]);
    }
    let process = measure(crawl).await?;
    let stats: HostsStats = get_json(&format!("127.0.0.1:{port}"), "/__stats").await?;
    site.kill().await.ok();
    let items = std::fs::read_to_string(&items)?.lines().count() as u64;
    Ok(HostsReport {
        spec,
        stats,
        process,
        items,
    })
}
