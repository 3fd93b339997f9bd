//! `spindle crawl`: one project crawled to completion on the embedded loop.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use spindle_common::bus::MemoryBus;
use spindle_common::{Bus, Clock, Project, Store, SystemClock};

use crate::embedded::{Embedded, EmbeddedConfig, open_store, project_record};
use crate::export::{Format, export};
use crate::progress::Progress;
use crate::roles::{Endpoints, connect_bus};

/// What a finished crawl did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CrawlSummary {
    /// Pages fetched and processed.
    pub pages: u64,
    /// Items emitted.
    pub items: u64,
    /// Tasks that failed for good.
    pub errors: u64,
    /// Failed attempts retried.
    pub retried: u64,
    /// Follows dropped as already known (the same task twice, or stored and not due).
    pub follows_known: u64,
    /// Items emitted and then replaced by a later one with the same key (the store keeps one
    /// per key): items emitted minus items written during the crawl.
    pub items_replaced: u64,
    /// Form values sent as written (`$...` naming no page value).
    pub form_values_literal: u64,
    /// Pages that were near-duplicates of an earlier page: their follows were not expanded.
    pub near_duplicates: u64,
    /// Follows dropped as over an opt-in budget (`max_pages_per_host`, `max_query_variants`).
    pub over_budget: u64,
    /// Wall-clock time of the crawl.
    pub elapsed: Duration,
}

impl std::fmt::Display for CrawlSummary {
    /// `2101 pages, 2000 items, 40 errors in 3.2s (656 pages/s)`; a crawl shorter than
    /// [`MIN_RATE_TIME`] (or of no page) shows its time only: `1 pages, 3 items, 0 errors in
    /// 3ms`. What was dropped or sent unseen follows the errors when there is any: `5 pages,
    /// 60 items, 0 errors, 3 follows already known, 40 items replaced by later ones, 1 form
    /// value sent as written in 1.2s`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} pages, {} items, {} errors",
            self.pages, self.items, self.errors,
        )?;
        for (n, one, many) in [
            (
                self.follows_known,
                "follow already known",
                "follows already known",
            ),
            (
                self.items_replaced,
                "item replaced by a later one",
                "items replaced by later ones",
            ),
            (
                self.form_values_literal,
                "form value sent as written",
                "form values sent as written",
            ),
            (
                self.over_budget,
                "follow over a budget",
                "follows over a budget",
            ),
            (
                self.near_duplicates,
                "near-duplicate page (follows not expanded)",
                "near-duplicate pages (follows not expanded)",
            ),
        ] {
            if n > 0 {
                write!(f, ", {n} {}", if n == 1 { one } else { many })?;
            }
        }
        write!(f, " in {}", elapsed_text(self.elapsed))?;
        if let Some(rate) = rate_text(self.pages, self.elapsed) {
            write!(f, " ({rate})")?;
        }
        Ok(())
    }
}

/// Shortest time over which a rate is shown. A shorter crawl is mostly start-up and the end's
/// detection: 1 page in 3 ms is not "333 pages/s", and rounded it was "0 pages/s".
pub const MIN_RATE_TIME: Duration = Duration::from_secs(1);

/// A duration for people: `3.2s` from a second on, `45ms` below, `<1ms` below that.
pub fn elapsed_text(elapsed: Duration) -> String {
    if elapsed >= Duration::from_secs(1) {
        format!("{:.1}s", elapsed.as_secs_f64())
    } else if elapsed >= Duration::from_millis(1) {
        format!("{}ms", elapsed.as_millis())
    } else {
        "<1ms".to_string()
    }
}

/// `pages` over `elapsed` as `656 pages/s`, with two significant digits below 10
/// (`2.5 pages/s`, `0.25 pages/s`, `0.0017 pages/s`), so a slow crawl never reads "0 pages/s".
/// `None` when there is no page or less than [`MIN_RATE_TIME`] to measure over.
pub fn rate_text(pages: u64, elapsed: Duration) -> Option<String> {
    if pages == 0 || elapsed < MIN_RATE_TIME {
        return None;
    }
    let rate = pages as f64 / elapsed.as_secs_f64();
    let text = if rate >= 10.0 {
        format!("{rate:.0}")
    } else {
        // Decimals for two significant digits: 1 for 2.5, 2 for 0.25, 4 for 0.0017.
        let decimals = (1 - rate.log10().floor() as i64).clamp(1, 12) as usize;
        format!("{rate:.decimals$}")
    };
    Some(format!("{text} pages/s"))
}

/// Reads and validates a project file (inlining a `script_file`); the error names the file,
/// line and column.
pub fn load_project(path: &Path) -> anyhow::Result<Project> {
    Project::load(path).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Crawls `project` to completion with its state in `data`; returns the summary and the store
/// holding the items. Stops early, with what it has, on Ctrl-C.
pub async fn crawl(
    project: &Project,
    data: &Path,
    config: EmbeddedConfig,
    show_progress: bool,
) -> anyhow::Result<(CrawlSummary, Arc<dyn Store>)> {
    let store = open_store(data).await?;
    save(&*store, project).await?;
    let run = Embedded::start(store.clone(), config).await?;
    crawl_on(run, project, data, show_progress).await
}

/// Saves `project` in `store`. Done before the roles start, so the scheduler finds it at its
/// first load instead of at its next reload (up to `reload_every`, 2 s, later).
async fn save(store: &dyn Store, project: &Project) -> anyhow::Result<()> {
    store
        .save_project(&project_record(project, SystemClock.now_ms()))
        .await
        .context("cannot save the project")
}

/// Crawls `project`, already [`save`]d in the store, to completion on roles already started
/// (any bus and store).
async fn crawl_on(
    mut run: Embedded,
    project: &Project,
    data: &Path,
    show_progress: bool,
) -> anyhow::Result<(CrawlSummary, Arc<dyn Store>)> {
    let store = run.store.clone();
    let started = Instant::now();
    let started_ms = SystemClock.now_ms();
    let mut progress = show_progress.then(Progress::new);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut done_ticks = 0;
    let outcome = loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => {
                eprintln!("interrupted: stopping; what is stored so far is kept in {}", data.display());
                break Ok(());
            }
            e = run.failed() => break Err(e),
        }
        if let (Some(p), Some(stats)) = (progress.as_mut(), run.board.get(&project.name)) {
            p.update(&stats);
        }
        // Done twice in a row: a quiet moment between two messages is not the end.
        done_ticks = if run.is_done(&project.name).await? {
            done_ticks + 1
        } else {
            0
        };
        if done_ticks >= 2 {
            break Ok(());
        }
    };
    let stats = run.board.get(&project.name).unwrap_or_default();
    if let Some(p) = progress {
        p.finish();
    }
    run.stop().await?;
    outcome?;
    let written = store
        .count_results_since(&project.name, started_ms)
        .await
        .context("cannot count the items written")?;
    let summary = CrawlSummary {
        pages: stats.success,
        items: stats.items,
        errors: stats.failed,
        retried: stats.retried,
        follows_known: stats.follows_known,
        items_replaced: stats.items.saturating_sub(written),
        form_values_literal: stats.form_values_literal,
        near_duplicates: stats.near_duplicates,
        over_budget: stats.over_budget,
        elapsed: started.elapsed(),
    };
    Ok((summary, store))
}

/// Where `spindle crawl` runs its roles: the in-process bus and the SQLite file of the data
/// folder unless NATS or a database is named.
#[derive(Debug, Clone, Default)]
pub struct Backend {
    /// NATS URL (`--nats`).
    pub nats: Option<String>,
    /// Namespace on that NATS server.
    pub namespace: Option<String>,
    /// Database URL (`--database`).
    pub database: Option<String>,
}

/// `spindle crawl`: crawls `project` on `backend` with a progress display, then writes its
/// items to `output` (CSV for `.csv`, JSON Lines otherwise) or to stdout. The summary and the
/// number of items written.
pub async fn crawl_to(
    project: &Project,
    data: &Path,
    config: EmbeddedConfig,
    backend: Backend,
    output: Option<&Path>,
) -> anyhow::Result<(CrawlSummary, u64)> {
    let (summary, store) = match backend {
        Backend {
            nats: None,
            database: None,
            ..
        } => crawl(project, data, config, true).await?,
        Backend {
            nats,
            namespace,
            database,
        } => {
            let store = match database {
                Some(url) => spindle_store::connect(&url).await?,
                None => open_store(data).await?,
            };
            save(&*store, project).await?;
            let bus: Arc<dyn Bus> = match nats {
                Some(url) => {
                    let endpoints = Endpoints {
                        nats: url,
                        namespace,
                        database: None,
                        ack_wait: None,
                        heartbeat_file: None,
                        metrics: None,
                    };
                    Arc::new(connect_bus(&endpoints, "spindle-crawl").await?)
                }
                None => Arc::new(MemoryBus::new()),
            };
            let run = Embedded::start_on(bus, store, config).await?;
            crawl_on(run, project, data, true).await?
        }
    };
    let fields = project.item_fields();
    let written = match output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            export(&*store, &project.name, Format::of_path(path), &fields, file).await?
        }
        None => {
            export(
                &*store,
                &project.name,
                Format::Jsonl,
                &fields,
                std::io::stdout().lock(),
            )
            .await?
        }
    };
    Ok((summary, written))
}

/// `spindle crawl PROJECT`: loads the project file (exit 1 if it does not load), crawls it
/// with `concurrency` fetches in flight, keeping its state in `data` (a temporary folder,
/// removed at the end, if None), and writes its items to `output` or stdout; the summary goes
/// to stderr.
pub async fn command(
    project: &Path,
    output: Option<&Path>,
    data: Option<&Path>,
    concurrency: usize,
    backend: Backend,
) -> anyhow::Result<ExitCode> {
    let project = match load_project(project) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let temp;
    let data = match data {
        Some(d) => d,
        None => {
            temp = tempfile::tempdir().context("cannot create a temporary folder")?;
            temp.path()
        }
    };
    let mut config = EmbeddedConfig::default();
    config.fetcher.concurrency = concurrency;
    let (summary, written) = crawl_to(&project, data, config, backend, output).await?;
    let target = output.map_or("stdout".to_string(), |p| p.display().to_string());
    eprintln!("{summary}; {written} items written to {target}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(pages: u64, elapsed: Duration) -> String {
        CrawlSummary {
            pages,
            items: pages * 2,
            errors: 0,
            retried: 0,
            follows_known: 0,
            items_replaced: 0,
            form_values_literal: 0,
            near_duplicates: 0,
            over_budget: 0,
            elapsed,
        }
        .to_string()
    }

    #[test]
    fn what_was_dropped_or_sent_unseen_is_counted_in_the_line() {
        let s = CrawlSummary {
            pages: 5,
            items: 60,
            errors: 0,
            retried: 0,
            follows_known: 3,
            items_replaced: 40,
            form_values_literal: 1,
            near_duplicates: 2,
            over_budget: 7,
            elapsed: Duration::from_millis(120),
        };
        assert_eq!(
            s.to_string(),
            "5 pages, 60 items, 0 errors, 3 follows already known, 40 items replaced by later ones, 1 form value sent as written, 7 follows over a budget, 2 near-duplicate pages (follows not expanded) in 120ms"
        );
        let s = CrawlSummary {
            follows_known: 1,
            items_replaced: 0,
            form_values_literal: 0,
            near_duplicates: 0,
            over_budget: 0,
            ..s
        };
        assert_eq!(
            s.to_string(),
            "5 pages, 60 items, 0 errors, 1 follow already known in 120ms"
        );
    }

    #[test]
    fn a_short_crawl_shows_its_time_and_no_rate() {
        assert_eq!(
            summary(1, Duration::from_millis(3)),
            "1 pages, 2 items, 0 errors in 3ms"
        );
        assert_eq!(
            summary(40, Duration::from_millis(999)),
            "40 pages, 80 items, 0 errors in 999ms"
        );
        assert_eq!(
            summary(1, Duration::from_micros(300)),
            "1 pages, 2 items, 0 errors in <1ms"
        );
        assert_eq!(
            summary(0, Duration::from_secs(5)),
            "0 pages, 0 items, 0 errors in 5.0s"
        );
    }

    #[test]
    fn a_longer_crawl_shows_its_rate_never_rounded_to_zero() {
        assert_eq!(
            summary(2101, Duration::from_millis(3200)),
            "2101 pages, 4202 items, 0 errors in 3.2s (657 pages/s)"
        );
        assert_eq!(
            summary(1, Duration::from_secs(1)),
            "1 pages, 2 items, 0 errors in 1.0s (1.0 pages/s)"
        );
        assert_eq!(
            summary(5, Duration::from_secs(2)),
            "5 pages, 10 items, 0 errors in 2.0s (2.5 pages/s)"
        );
        assert_eq!(
            summary(1, Duration::from_secs(4)),
            "1 pages, 2 items, 0 errors in 4.0s (0.25 pages/s)"
        );
        assert_eq!(
            rate_text(1, Duration::from_secs(600)).as_deref(),
            Some("0.0017 pages/s")
        );
        assert_eq!(
            rate_text(1, Duration::from_secs(7 * 24 * 3600)).as_deref(),
            Some("0.0000017 pages/s")
        );
        assert_eq!(
            rate_text(99, Duration::from_secs(10)).as_deref(),
            Some("9.9 pages/s")
        );
        assert_eq!(rate_text(0, Duration::from_secs(10)), None);
        assert_eq!(rate_text(3, Duration::from_millis(20)), None);
    }
}
