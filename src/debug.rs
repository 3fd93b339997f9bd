//! `spindle debug PROJECT.toml URL [--handler NAME]`: fetch one page and run one handler on
//! it, printing what it found as JSON; nothing is stored and nothing is queued.
//!
//! The page is fetched by the production fetcher ([`spindle_fetcher::Fetcher`]) with the
//! project's default fetch options (`allow_private` included) and the handler is run by the
//! processor's [`run_step`], so a step behaves as it would in a crawl.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use spindle_common::project::START_HANDLER;
use spindle_common::{FetchOptions, Project, Task, urlnorm};
use spindle_fetcher::{Fetcher, FetcherConfig};
use spindle_processor::Rules;
use spindle_processor::debug::{DebugReport, PageSummary, Timings, run_step};
use spindle_web_ui::{DebugTask, StepError};

/// Loads the project at `path`, fetches `url` and runs `handler` (default `start`) on it.
/// Fails for a project that does not load, an unknown handler or a URL that is not
/// absolute http(s); a failed fetch or handler is reported in the report's `errors`.
pub async fn debug(path: &Path, url: &str, handler: Option<&str>) -> anyhow::Result<DebugReport> {
    debug_project(Project::load(path)?, url, handler).await
}

/// `spindle debug PROJECT URL --handler NAME`: prints the report of [`debug`] as JSON; exit
/// 1 if the step reported errors.
pub async fn command(project: &Path, url: &str, handler: &str) -> anyhow::Result<ExitCode> {
    let report = debug(project, url, Some(handler)).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Largest page text the web UI's debugger sends back for its HTML view and preview.
const MAX_BODY: usize = 2 << 20;

/// The web UI's debugger: the same step on a project given as text (the editor's), also for
/// a whole task (a follow of an earlier step, or a stored task).
pub struct EditorDebugger;

#[async_trait::async_trait]
impl spindle_web_ui::Debugger for EditorDebugger {
    async fn step(
        &self,
        definition: &str,
        task: DebugTask,
    ) -> Result<serde_json::Value, StepError> {
        let project = Project::parse(definition)?;
        let task = match task {
            DebugTask::Url { url, handler } => url_task(&project, &url, handler.as_deref())
                .map_err(|e| StepError::Invalid(format!("{e:#}")))?,
            DebugTask::Task(task) => {
                own_task(&project, *task).map_err(|e| StepError::Invalid(format!("{e:#}")))?
            }
        };
        let report = run_task(project, task, Some(MAX_BODY))
            .await
            .map_err(|e| StepError::Invalid(format!("{e:#}")))?;
        serde_json::to_value(report).map_err(|e| StepError::Invalid(e.to_string()))
    }
}

/// A task sent by a client, made the project's: its handler must exist, its URL must be
/// http(s), and the project's `allow_private` (and its ranges) replaces whatever the task says, so a task
/// cannot lift the fetcher's guard.
fn own_task(project: &Project, mut task: Task) -> anyhow::Result<Task> {
    has_handler(project, &task.callback)?;
    let url = http_url(&task.url)?;
    task.url = urlnorm::normalize(&url, &project.keep_params).to_string();
    task.project = project.name.clone();
    task.force = true;
    task.fetch.allow_private = project.allow_private;
    task.fetch.allow_private_ranges = project.allow_private_ranges.clone();
    Ok(task)
}

/// [`debug`] on a loaded project.
async fn debug_project(
    project: Project,
    url: &str,
    handler: Option<&str>,
) -> anyhow::Result<DebugReport> {
    let task = url_task(&project, url, handler)?;
    run_task(project, task, None).await
}

fn has_handler(project: &Project, callback: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        project.handler(callback).is_some(),
        "project {} has no handler `{callback}` (it has: {})",
        project.name,
        project
            .handlers
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

fn http_url(url: &str) -> anyhow::Result<url::Url> {
    url::Url::parse(url.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .with_context(|| format!("`{url}` is not an absolute http(s) URL"))
}

/// The task of `url` for `handler` (default `start`) with the project's default options.
fn url_task(project: &Project, url: &str, handler: Option<&str>) -> anyhow::Result<Task> {
    let callback = handler.unwrap_or(START_HANDLER);
    has_handler(project, callback)?;
    let url = urlnorm::normalize(&http_url(url)?, &project.keep_params).to_string();
    Ok(Task {
        force: true,
        fetch: project.fetch_for(&FetchOptions::default()),
        ..Task::new(&project.name, &url, callback)
    })
}

/// Fetches `task` and runs its handler; with `body`, the report carries up to that many
/// bytes of the page's text.
async fn run_task(
    project: Project,
    task: Task,
    body: Option<usize>,
) -> anyhow::Result<DebugReport> {
    let rules = Arc::new(Rules::compile(Arc::new(project))?);
    let fetcher = Fetcher::new(&FetcherConfig::default())?;
    let page = match fetcher.fetch(&task).await {
        Ok(page) => page,
        Err(err) => {
            return Ok(DebugReport {
                project: task.project.clone(),
                handler: task.callback.clone(),
                url: task.url.clone(),
                page: PageSummary {
                    url: task.url.clone(),
                    status: 0,
                    content_type: String::new(),
                    body_len: 0,
                },
                follows: Vec::new(),
                items: Vec::new(),
                dropped: 0,
                logs: Vec::new(),
                warnings: Vec::new(),
                follows_repeated: 0,
                items_replaced: 0,
                form_values_literal: 0,
                errors: vec![format!("fetch failed ({:?}): {}", err.kind, err.message)],
                timings: Timings {
                    fetch_ms: 0,
                    process_ms: 0.0,
                },
                body: None,
                body_truncated: false,
            });
        }
    };
    // HTML parsing is CPU work and `scraper::Html` is not `Send`: the blocking pool runs it.
    let report = tokio::task::spawn_blocking(move || {
        let report = run_step(&rules, &task, &page);
        match body {
            Some(max) => report.with_body(&page.text, max),
            None => report,
        }
    })
    .await
    .context("the handler panicked")?;
    Ok(report)
}
