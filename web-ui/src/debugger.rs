//! The editor's debugger: one step of a project as edited, run on demand.
//!
//! ```text
//! POST /api/debug   {"definition": "<TOML>", "url": "https://…", "handler": "detail"}
//!                   {"definition": "<TOML>", "task": { …a follow of an earlier step… }}
//!                   {"definition": "<TOML>", "project": "books", "taskid": "…"}   (a stored task)
//! ```
//!
//! The answer is what `spindle debug` prints (the page, follows, items, dropped items, logs,
//! errors, timings) plus the page's text for the HTML view and the preview; nothing is stored
//! or queued. The step is the binary's own ([`Debugger`]: the production fetcher and the
//! processor's handler code), run on the async runtime and its blocking pool, so a slow page
//! holds up only the request that asked for it. A project that does not load is a 400 with
//! its line and column.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;
use spindle_common::Task;
use spindle_common::project::ProjectError;

use crate::AppState;
use crate::error::{ApiError, JsonBody};

/// What one debug step runs.
#[derive(Debug, Clone, PartialEq)]
pub enum DebugTask {
    /// Fetch `url` and run `handler` (default `start`) with the project's default options.
    Url {
        /// The page.
        url: String,
        /// The handler; `start` when absent.
        handler: Option<String>,
    },
    /// Run a task as it would be queued (a follow of an earlier step, or a stored task): its
    /// URL, handler, saved values and fetch options. The project's `allow_private` replaces
    /// the task's own, so a task sent by a client cannot lift the guard.
    Task(Box<Task>),
}

/// Why a step could not run.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The project does not load.
    #[error(transparent)]
    Project(#[from] ProjectError),
    /// The request cannot run: an unknown handler, a URL that is not absolute http(s).
    #[error("{0}")]
    Invalid(String),
}

impl From<StepError> for ApiError {
    fn from(e: StepError) -> Self {
        match e {
            StepError::Project(e) => ApiError::Project(e),
            StepError::Invalid(why) => ApiError::BadRequest(why),
        }
    }
}

/// Runs one debug step; implemented by the `spindle` binary with its fetcher and processor.
#[async_trait::async_trait]
pub trait Debugger: Send + Sync {
    /// Runs `task` with the project `definition`: the step's report as JSON (with `body`, the
    /// page's text, for the HTML view), or why it cannot run. A failed fetch or handler is not
    /// an error: the report lists it.
    async fn step(&self, definition: &str, task: DebugTask) -> Result<Value, StepError>;
}

/// The debugger's route.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/api/debug", post(step))
}

/// The body of `POST /api/debug`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepRequest {
    definition: String,
    url: Option<String>,
    handler: Option<String>,
    task: Option<Box<Task>>,
    project: Option<String>,
    taskid: Option<String>,
}

async fn step(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<StepRequest>,
) -> Result<Json<Value>, ApiError> {
    let debugger: Arc<dyn Debugger> = state.debugger.clone().ok_or(ApiError::NoDebugger)?;
    let task = match (request.url, request.task, request.project, request.taskid) {
        (Some(url), None, None, None) => DebugTask::Url {
            url,
            handler: request.handler.filter(|h| !h.trim().is_empty()),
        },
        (None, Some(task), None, None) => DebugTask::Task(task),
        (None, None, Some(project), Some(taskid)) => {
            let record = state
                .store()?
                .task(&project, &taskid)
                .await?
                .ok_or(ApiError::UnknownTask { project, taskid })?;
            DebugTask::Task(Box::new(record.task))
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give the project's `definition` and one of: `url` (with an optional `handler`), `task`, or `project` with `taskid`".into(),
            ));
        }
    };
    Ok(Json(debugger.step(&request.definition, task).await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{Reply, send};
    use axum::http::StatusCode;

    /// Answers with what it was asked, or refuses a definition that does not load.
    struct Echo;

    #[async_trait::async_trait]
    impl Debugger for Echo {
        async fn step(&self, definition: &str, task: DebugTask) -> Result<Value, StepError> {
            spindle_common::Project::parse(definition)?;
            Ok(match task {
                DebugTask::Url { url, handler } => {
                    serde_json::json!({ "url": url, "handler": handler })
                }
                DebugTask::Task(task) => serde_json::json!({ "task": task.url }),
            })
        }
    }

    fn ui() -> crate::WebUi {
        crate::WebUi::new(Default::default(), crate::Mode::Embedded).debugger(Arc::new(Echo))
    }

    #[tokio::test]
    async fn a_step_runs_a_url_or_a_task_and_a_broken_project_is_placed() {
        let Reply { status, json } = send(
            ui(),
            "POST",
            "/api/debug",
            r#"{"definition": "name = \"p\"", "url": "http://a.test/", "handler": "detail"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{json}");
        assert_eq!(
            json,
            serde_json::json!({ "url": "http://a.test/", "handler": "detail" })
        );

        let task = serde_json::to_string(&Task::new("p", "http://a.test/next", "detail"))
            .expect("task json");
        let Reply { status, json } = send(
            ui(),
            "POST",
            "/api/debug",
            &format!(r#"{{"definition": "name = \"p\"", "task": {task}}}"#),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{json}");
        assert_eq!(json["task"], "http://a.test/next");

        let Reply { status, json } = send(
            ui(),
            "POST",
            "/api/debug",
            r#"{"definition": "name = \"p\"\nstart = 5\n", "url": "http://a.test/"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(json["line"], 2, "{json}");
    }

    #[tokio::test]
    async fn requests_of_the_wrong_shape_are_400_and_no_debugger_is_503() {
        for body in [
            r#"{"url": 1}"#,
            r#"{"definition": "name = \"p\""}"#,
            r#"{"definition": "name = \"p\"", "url": "http://a.test/", "task": {}}"#,
            r#"{"definition": "name = \"p\"", "url": "http://a.test/", "extra": 1}"#,
            "not json",
        ] {
            let Reply { status, json } = send(ui(), "POST", "/api/debug", body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {json}");
            assert!(json["error"].is_string(), "{json}");
        }
        let bare = crate::WebUi::new(Default::default(), crate::Mode::Embedded);
        let Reply { status, .. } = send(
            bare,
            "POST",
            "/api/debug",
            r#"{"definition": "", "url": "http://a.test/"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
