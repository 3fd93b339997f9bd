//! Tasks: the search of the task page, one task, and cancelling one.
//!
//! ```text
//! GET  /api/tasks?project=&status=&url=&error=&before=&limit=50   newest first, by cursor
//! GET  /api/tasks/{project}/{taskid}                              one task, all of it
//! POST /api/tasks/{project}/{taskid}/cancel                       mark it bad, off the queue
//! ```
//!
//! The search pages through the store's index of tasks by project and last change
//! ([`spindle_common::Store::list_tasks`]), so a page costs an index scan from the cursor at
//! any number of tasks; a filter that matches rarely reads further, never the whole table at
//! once into memory.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use spindle_common::message::ErrorKind;
use spindle_common::store::{TaskCursor, TaskQuery, TaskRecord, TaskStatus};

use crate::AppState;
use crate::error::ApiError;
use crate::live::now_ms;

/// Tasks per page, at most.
const MAX_LIMIT: usize = 200;

/// The tasks routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/tasks", get(search))
        .route("/api/tasks/{project}/{taskid}", get(one))
        .route("/api/tasks/{project}/{taskid}/cancel", post(cancel))
}

/// The query of `GET /api/tasks`; empty values mean "any".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    project: Option<String>,
    status: Option<String>,
    url: Option<String>,
    error: Option<String>,
    before: Option<String>,
    limit: Option<usize>,
}

/// `Some` of a non-empty value.
fn given(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A JSON enum value (`"failed"`, `"too_big"`) read as `T`, or a 400 naming the choices.
fn parse_enum<T: serde::de::DeserializeOwned>(
    what: &str,
    value: &str,
    choices: &str,
) -> Result<T, ApiError> {
    serde_json::from_value(Value::String(value.to_ascii_lowercase())).map_err(|_| {
        ApiError::BadRequest(format!(
            "unknown {what} \"{value}\"; expected one of {choices}"
        ))
    })
}

async fn search(
    State(state): State<AppState>,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let store = state.store()?;
    let project = given(query.project);
    if let Some(name) = &project
        && store.project(name).await?.is_none()
    {
        return Err(ApiError::UnknownProject(name.clone()));
    }
    let status = given(query.status)
        .map(|s| parse_enum::<TaskStatus>("status", &s, "active, success, failed, bad"))
        .transpose()?;
    let error_kind = given(query.error)
        .map(|e| {
            parse_enum::<ErrorKind>(
                "error kind",
                &e,
                "http, dns, connect, timeout, redirect, too_big, refused, process, tls, browser, robots, other",
            )
        })
        .transpose()?;
    let before = given(query.before)
        .map(|c| c.parse::<TaskCursor>())
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_LIMIT);
    // One more than asked tells whether there is a next page.
    let mut tasks = store
        .list_tasks(&TaskQuery {
            project,
            status,
            url_contains: query.url.filter(|u| !u.is_empty()),
            error_kind,
            before,
            limit: limit + 1,
        })
        .await?;
    let next = if tasks.len() > limit {
        tasks.truncate(limit);
        tasks.last().map(|t| TaskCursor::of(t).to_string())
    } else {
        None
    };
    let rows: Vec<Value> = tasks.iter().map(|t| row(t, false)).collect();
    Ok(Json(json!({ "tasks": rows, "next": next })))
}

/// A task as the API shows it; `whole` adds the task itself (fetch options, saved values).
fn row(record: &TaskRecord, whole: bool) -> Value {
    let task = &record.task;
    let mut row = json!({
        "project": task.project,
        "taskid": task.taskid,
        "url": task.url,
        "callback": task.callback,
        "status": record.status,
        "claimed": record.claimed,
        "priority": task.priority,
        "retries": task.retries,
        "exetime": task.exetime,
        "last_crawl_ms": record.last_crawl_ms,
        "updated_ms": record.updated_ms,
        "last_error": record.last_error,
        "track": record.track,
    });
    if whole {
        row["task"] = json!(task);
    }
    row
}

async fn one(
    State(state): State<AppState>,
    Path((project, taskid)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let record = state
        .store()?
        .task(&project, &taskid)
        .await?
        .ok_or(ApiError::UnknownTask { project, taskid })?;
    Ok(Json(row(&record, true)))
}

async fn cancel(
    State(state): State<AppState>,
    Path((project, taskid)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    if !state
        .store()?
        .cancel_task(&project, &taskid, now_ms())
        .await?
    {
        return Err(ApiError::UnknownTask { project, taskid });
    }
    tracing::info!(project, taskid, "task cancelled from the web UI");
    Ok(Json(json!({ "cancelled": true })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{Reply, send, store_with_project};
    use crate::{Mode, WebUi};
    use axum::http::StatusCode;
    use spindle_common::store::{Attempt, TaskUpdate};
    use spindle_common::{Store, Task};
    use std::sync::Arc;

    /// `n` tasks of `books`, one changed each millisecond; every tenth failed with a 404.
    async fn tasks(store: &Arc<dyn Store>, n: usize) {
        for i in 0..n {
            let task = Task::new("books", &format!("http://a.test/item/{i}"), "detail");
            store
                .put_tasks(std::slice::from_ref(&task), 1_000 + i as i64)
                .await
                .expect("put");
            if i % 10 == 0 {
                let update = TaskUpdate {
                    taskid: task.taskid.clone(),
                    status: TaskStatus::Failed,
                    exetime: 0,
                    retries: 0,
                    at_ms: 1_000 + i as i64,
                    last_error: Some("HTTP 404".into()),
                    etag: None,
                    last_modified: None,
                    track: Some(Attempt {
                        status_code: Some(404),
                        fetch_ms: 3,
                        process_ms: 0,
                        follows: 0,
                        items: 0,
                        error_kind: Some(ErrorKind::Http),
                    }),
                };
                store
                    .finish_tasks("books", &[update])
                    .await
                    .expect("finish");
            }
        }
    }

    fn ui(store: &Arc<dyn Store>) -> WebUi {
        WebUi::new(Default::default(), Mode::Embedded).store(store.clone())
    }

    #[tokio::test]
    async fn the_search_pages_newest_first_and_filters() {
        let (store, _dir) = store_with_project("books", "").await;
        tasks(&store, 120).await;
        let mut seen = Vec::new();
        let mut uri = "/api/tasks?project=books&limit=50".to_string();
        loop {
            let Reply { status, json } = send(ui(&store), "GET", &uri, "").await;
            assert_eq!(status, StatusCode::OK, "{json}");
            for t in json["tasks"].as_array().expect("tasks") {
                seen.push(t["updated_ms"].as_i64().expect("time"));
            }
            match json["next"].as_str() {
                Some(next) => uri = format!("/api/tasks?project=books&limit=50&before={next}"),
                None => break,
            }
        }
        assert_eq!(seen.len(), 120, "every task once");
        assert!(seen.windows(2).all(|w| w[0] >= w[1]), "newest first");

        let Reply { json, .. } = send(
            ui(&store),
            "GET",
            "/api/tasks?status=failed&url=item/11&error=http",
            "",
        )
        .await;
        let urls: Vec<&str> = json["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .filter_map(|t| t["url"].as_str())
            .collect();
        assert_eq!(urls, ["http://a.test/item/110"]);
        assert_eq!(json["tasks"][0]["track"]["status_code"], 404);

        for bad in [
            "/api/tasks?status=lost",
            "/api/tasks?error=gremlins",
            "/api/tasks?before=nonsense",
            "/api/tasks?colour=red",
        ] {
            let Reply { status, json } = send(ui(&store), "GET", bad, "").await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {json}");
        }
        let Reply { status, .. } = send(ui(&store), "GET", "/api/tasks?project=nope", "").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn one_task_shows_whole_and_cancel_takes_it_off_the_queue() {
        let (store, _dir) = store_with_project("books", "").await;
        tasks(&store, 2).await;
        let task = Task::new("books", "http://a.test/item/1", "detail");
        let uri = format!("/api/tasks/books/{}", task.taskid);
        let Reply { status, json } = send(ui(&store), "GET", &uri, "").await;
        assert_eq!(status, StatusCode::OK, "{json}");
        assert_eq!(
            (&json["status"], &json["task"]["callback"]),
            (&"active".into(), &"detail".into())
        );
        let Reply { status, json } = send(ui(&store), "POST", &format!("{uri}/cancel"), "").await;
        assert_eq!(status, StatusCode::OK, "{json}");
        let record = store
            .task("books", &task.taskid)
            .await
            .expect("read")
            .expect("task");
        assert_eq!(record.status, TaskStatus::Bad);
        let Reply { status, .. } = send(ui(&store), "GET", "/api/tasks/books/nope", "").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let Reply { status, .. } =
            send(ui(&store), "POST", "/api/tasks/books/nope/cancel", "").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
