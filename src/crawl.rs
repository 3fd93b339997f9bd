//! `spindle crawl`: one project crawled to completion on the embedded loop.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use spindle_common::{Project, Store};

use crate::embedded::{Embedded, EmbeddedConfig, open_store, project_record};
use crate::progress::Progress;

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
    /// Wall-clock time of the crawl.
    pub elapsed: Duration,
}

impl std::fmt::Display for CrawlSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        write!(
            f,
            "{} pages, {} items, {} errors in {secs:.1}s ({:.0} pages/s)",
            self.pages,
            self.items,
            self.errors,
            self.pages as f64 / secs.max(0.001)
        )
    }
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
    let run = Embedded::start(store.clone(), config).await?;
    crawl_on(run, project, data, show_progress).await
}

/// Crawls `project` to completion on roles already started (any bus and store).
pub async fn crawl_on(
    mut run: Embedded,
    project: &Project,
    data: &Path,
    show_progress: bool,
) -> anyhow::Result<(CrawlSummary, Arc<dyn Store>)> {
    let store = run.store.clone();
    store
        .save_project(&project_record(project, run.now_ms()))
        .await
        .context("cannot save the project")?;
    let started = Instant::now();
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
    let summary = CrawlSummary {
        pages: stats.success,
        items: stats.items,
        errors: stats.failed,
        retried: stats.retried,
        elapsed: started.elapsed(),
    };
    Ok((summary, store))
}
