//! `spindle crawl`: one project crawled to completion on the embedded loop.

use std::path::Path;
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
                Some(url) => spindle_common::store::connect(&url).await?,
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
