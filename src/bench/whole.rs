//! Whole processes side by side: `spindle crawl` and the `spider` crate's crawler
//! (`bench/spider-peer`), each from spawn to exit, on the same site at the same concurrency.
//!
//! This is what a user of either sees: start-up, the crawl, writing the items and exit, with
//! the CPU and peak memory of the whole process. The peer is looked for at
//! `bench/spider-peer/target/release/spider-peer` (build it with `cargo build --release
//! --manifest-path bench/spider-peer/Cargo.toml`) or given with `--peer`.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::process::{ProcessFigures, measure};
use super::{BenchSite, serve_site};

/// One crawler's run.
#[derive(Debug, Clone)]
pub struct Run {
    /// Its name.
    pub name: &'static str,
    /// What the process cost.
    pub process: ProcessFigures,
    /// Distinct products it extracted.
    pub products: u64,
    /// Items beyond one per product.
    pub duplicates: u64,
    /// What the site's server saw.
    pub site: super::SiteStats,
}

impl Run {
    fn products_per_s(&self) -> f64 {
        self.products as f64 / self.process.wall.as_secs_f64().max(0.001)
    }
}

/// The whole-process comparison.
#[derive(Debug, Clone)]
pub struct WholeReport {
    /// The site and concurrency.
    pub site: BenchSite,
    /// `spindle crawl`, then the peer if it was found.
    pub runs: Vec<Run>,
    /// Why the peer did not run, if it did not.
    pub peer_missing: Option<String>,
}

impl fmt::Display for WholeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "whole processes, spawn to exit, {} requests in flight at most:",
            self.site.host_concurrency
        )?;
        writeln!(
            f,
            "  {:<14} {:>11} {:>8} {:>8} {:>10} {:>10} {:>15}",
            "crawler", "products/s", "wall s", "CPU s", "peak RSS", "duplicates", "site in flight"
        )?;
        for run in &self.runs {
            writeln!(
                f,
                "  {:<14} {:>11.0} {:>8.2} {:>8.2} {:>6.1} MiB {:>10} {:>8.1} mean",
                run.name,
                run.products_per_s(),
                run.process.wall.as_secs_f64(),
                run.process.cpu.as_secs_f64(),
                run.process.peak_rss_kib as f64 / 1024.0,
                run.duplicates,
                run.site.mean_in_flight
            )?;
        }
        if let [spindle, peer] = &self.runs[..] {
            write!(
                f,
                "  spindle/spider: {:.2}× the products/s",
                spindle.products_per_s() / peer.products_per_s().max(0.001)
            )?;
        }
        if let Some(why) = &self.peer_missing {
            write!(f, "  (no peer: {why})")?;
        }
        Ok(())
    }
}

/// The peer's binary: `peer`, or the one built in the repository's `bench/spider-peer`.
fn peer_binary(peer: Option<PathBuf>) -> Result<PathBuf, String> {
    let path = peer.unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("bench/spider-peer/target/release/spider-peer")
    });
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found; build it with `cargo build --release --manifest-path bench/spider-peer/Cargo.toml`",
            path.display()
        ))
    }
}

/// Products and duplicate items of a JSON Lines file of items with a `url` field.
fn count_items(path: &Path) -> anyhow::Result<(u64, u64)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    for line in text.lines() {
        let item: serde_json::Value = serde_json::from_str(line)?;
        let url = item["url"].as_str().unwrap_or_default().to_string();
        if !seen.insert(url) {
            duplicates += 1;
        }
    }
    Ok((seen.len() as u64, duplicates))
}

/// Runs `spindle crawl` and then the peer (if found) on a fresh copy of the site each.
pub async fn run(
    site: &BenchSite,
    concurrency: usize,
    peer: Option<PathBuf>,
    dir: &Path,
) -> anyhow::Result<WholeReport> {
    let exe = std::env::current_exe().context("cannot find the spindle executable")?;
    let (mut server, base) = serve_site(site).await?;
    let project = dir.join("whole.toml");
    std::fs::write(&project, site.project_toml("whole", &base))?;
    let items = dir.join("whole.jsonl");
    let mut crawl = tokio::process::Command::new(&exe);
    crawl
        .arg("crawl")
        .arg(&project)
        .arg("-o")
        .arg(&items)
        .args(["--concurrency", &concurrency.max(1).to_string()])
        .arg("--data")
        .arg(dir.join("whole-data"));
    let process = measure(crawl).await?;
    let seen = super::SiteStats::of(&base).await?;
    server.kill().await.ok();
    let (products, duplicates) = count_items(&items)?;
    let mut runs = vec![Run {
        name: "spindle crawl",
        process,
        products,
        duplicates,
        site: seen,
    }];
    let peer_missing = match peer_binary(peer) {
        Ok(binary) => {
            let (mut server, base) = serve_site(site).await?;
            let mut command = tokio::process::Command::new(binary);
            command
                .arg(format!("{base}/"))
                .arg(site.host_concurrency.to_string());
            let process = measure(command).await?;
            let seen = super::SiteStats::of(&base).await?;
            server.kill().await.ok();
            let figures: serde_json::Value =
                serde_json::from_str(process.stdout.trim()).context("the peer's figures")?;
            runs.push(Run {
                name: "spider crate",
                products: figures["products"].as_u64().unwrap_or(0),
                duplicates: figures["duplicate_items"].as_u64().unwrap_or(0),
                process,
                site: seen,
            });
            None
        }
        Err(why) => Some(why),
    };
    Ok(WholeReport {
        site: *site,
        runs,
        peer_missing,
    })
}
