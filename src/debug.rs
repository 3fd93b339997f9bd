//! `spindle debug PROJECT.toml URL [--handler NAME]`: fetch one page and run one handler on
//! it, printing what it found as JSON; nothing is stored and nothing is queued.
//!
//! The page is fetched by the production fetcher ([`spindle_fetcher::Fetcher`]) with the
//! project's default fetch options (`allow_private` included) and the handler is run by the
//! processor's [`run_step`], so a step behaves as it would in a crawl.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use spindle_common::project::START_HANDLER;
use spindle_common::{FetchOptions, Project, Task, urlnorm};
use spindle_fetcher::{Fetcher, FetcherConfig};
use spindle_processor::Rules;
use spindle_processor::debug::{DebugReport, PageSummary, Timings, run_step};

/// Loads the project at `path`, fetches `url` and runs `handler` (default `start`) on it.
/// Fails for a project that does not load, an unknown handler or a URL that is not
/// absolute http(s); a failed fetch or handler is reported in the report's `errors`.
pub async fn debug(path: &Path, url: &str, handler: Option<&str>) -> anyhow::Result<DebugReport> {
    debug_project(Project::load(path)?, url, handler).await
}

/// The web UI's debugger: the same step on a project given as text (the editor's).
pub struct EditorDebugger;

#[async_trait::async_trait]
impl spindle_web_ui::Debugger for EditorDebugger {
    async fn step(
        &self,
        definition: &str,
        url: &str,
        handler: Option<&str>,
    ) -> Result<serde_json::Value, String> {
        let project = Project::parse(definition).map_err(|e| format!("project: {e}"))?;
        let report = debug_project(project, url, handler)
            .await
            .map_err(|e| format!("{e:#}"))?;
        serde_json::to_value(report).map_err(|e| e.to_string())
    }
}

/// [`debug`] on a loaded project.
async fn debug_project(
    project: Project,
    url: &str,
    handler: Option<&str>,
) -> anyhow::Result<DebugReport> {
    let callback = handler.unwrap_or(START_HANDLER);
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
    let parsed = url::Url::parse(url.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .with_context(|| format!("`{url}` is not an absolute http(s) URL"))?;
    let url = urlnorm::normalize(&parsed, &project.keep_params).to_string();
    let task = Task {
        force: true,
        fetch: project.fetch_for(&FetchOptions::default()),
        ..Task::new(&project.name, &url, callback)
    };
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
                errors: vec![format!("fetch failed ({:?}): {}", err.kind, err.message)],
                timings: Timings {
                    fetch_ms: 0,
                    process_ms: 0.0,
                },
            });
        }
    };
    // HTML parsing is CPU work and `scraper::Html` is not `Send`: the blocking pool runs it.
    let report = tokio::task::spawn_blocking(move || run_step(&rules, &task, &page))
        .await
        .context("the handler panicked")?;
    Ok(report)
}
