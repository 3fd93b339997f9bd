//! The control API: run a project now, set its status, delete it.
//!
//! ```text
//! POST   /api/projects/{name}/run       submit the start URLs again now, forced
//! POST   /api/projects/{name}/status    {"status": "RUNNING"}: TODO, STOP, CHECKING, DEBUG, RUNNING
//! DELETE /api/projects/{name}           the project with its tasks and results
//! ```
//!
//! Like `spindle project`, each endpoint writes the store and nothing else: the scheduler, in
//! this process or another one sharing the database, follows at its next reload (within
//! seconds), and the project list shows it then. Errors are `{"error": "..."}` with a status
//! saying whose fault it is: 404 for an unknown project, 400 for a bad status or body, 403 for
//! a request sent by a page of another site, 503 when this UI has no database; database
//! failures are logged and answered with a generic message.
//!
//! The UI has no accounts (it listens on 127.0.0.1 by default), so the one guard is against
//! other sites: a browser names the page's origin on every POST and DELETE, and a request
//! whose `Origin` is not this server (or that the browser marks `Sec-Fetch-Site: cross-site`)
//! is refused, so a page elsewhere cannot press the buttons for a user who has the UI open.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use spindle_common::project::STATUSES;
use spindle_common::{Store, StoreError};

use crate::AppState;

/// The control routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/projects/{name}/run", post(run))
        .route("/api/projects/{name}/status", post(set_status))
        .route("/api/projects/{name}", delete(delete_project))
}

/// Why a control request was refused.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// This web UI was started without a database.
    NoStore,
    /// This web UI was started without a debugger.
    NoDebugger,
    /// No project has this name.
    UnknownProject(String),
    /// The request is malformed: why.
    BadRequest(String),
    /// The request came from a page of another site.
    CrossSite,
    /// The database failed.
    Store(StoreError),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Store(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::NoStore => (
                StatusCode::SERVICE_UNAVAILABLE,
                "this web UI has no database: start it with --database (or SPINDLE_DATABASE_URL) to control projects".to_string(),
            ),
            ApiError::NoDebugger => (
                StatusCode::SERVICE_UNAVAILABLE,
                "this web UI has no debugger".to_string(),
            ),
            ApiError::UnknownProject(name) => {
                (StatusCode::NOT_FOUND, format!("no project named {name}"))
            }
            ApiError::BadRequest(why) => (StatusCode::BAD_REQUEST, why),
            ApiError::CrossSite => (
                StatusCode::FORBIDDEN,
                "refused: the request comes from a page of another site".to_string(),
            ),
            ApiError::Store(e) => {
                // The details (SQL, host names) stay in the log.
                tracing::error!(error = %e, "control request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "database error; see the web UI's log".to_string(),
                )
            }
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}

/// Proof that a request was not sent by a page of another site (see the module docs).
pub(crate) struct SameOrigin;

impl<S: Send + Sync> FromRequestParts<S> for SameOrigin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let headers = &parts.headers;
        let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
        if text("sec-fetch-site") == Some("cross-site") {
            return Err(ApiError::CrossSite);
        }
        match text(header::ORIGIN.as_str()) {
            // Not sent by a browser (curl, scripts): nothing to forge.
            None => Ok(SameOrigin),
            Some(origin) => {
                let authority = origin.split_once("://").map(|(_, rest)| rest);
                let host = text(header::HOST.as_str());
                match (authority, host) {
                    (Some(a), Some(h)) if a.eq_ignore_ascii_case(h) => Ok(SameOrigin),
                    _ => Err(ApiError::CrossSite),
                }
            }
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn store(state: &AppState) -> Result<&dyn Store, ApiError> {
    state.store.as_deref().ok_or(ApiError::NoStore)
}

async fn status_of(store: &dyn Store, name: &str) -> Result<String, ApiError> {
    match store.project(name).await? {
        Some(record) => Ok(record.status),
        None => Err(ApiError::UnknownProject(name.to_string())),
    }
}

async fn run(
    _: SameOrigin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = store(&state)?;
    let status = status_of(store, &name).await?;
    if !store.request_run(&name, now_ms()).await? {
        return Err(ApiError::UnknownProject(name));
    }
    Ok(Json(json!({
        "project": name,
        "run_requested": true,
        "status": status,
    })))
}

/// The body of `POST /api/projects/{name}/status`.
#[derive(Deserialize)]
struct StatusBody {
    status: String,
}

async fn set_status(
    _: SameOrigin,
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<StatusBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(|e| {
        ApiError::BadRequest(format!(
            "expected a JSON body such as {{\"status\": \"RUNNING\"}}: {}",
            e.body_text()
        ))
    })?;
    let status = body.status.trim().to_ascii_uppercase();
    if !STATUSES.contains(&status.as_str()) {
        let paused = if status == "PAUSED" {
            " (PAUSED is set by the scheduler after failures in a row and ends by itself)"
        } else {
            ""
        };
        return Err(ApiError::BadRequest(format!(
            "invalid status \"{}\"{paused}; expected one of {}",
            body.status,
            STATUSES.join(", ")
        )));
    }
    let store = store(&state)?;
    let previous = status_of(store, &name).await?;
    if !store.set_status(&name, &status, now_ms()).await? {
        return Err(ApiError::UnknownProject(name));
    }
    Ok(Json(json!({
        "project": name,
        "status": status,
        "previous": previous,
    })))
}

async fn delete_project(
    _: SameOrigin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = store(&state)?;
    status_of(store, &name).await?;
    let counts = store.task_counts(&name).await?;
    let tasks = counts.queued + counts.claimed + counts.success + counts.failed + counts.bad;
    let results = store.count_results(&name).await?;
    store.delete_project(&name).await?;
    tracing::info!(project = %name, tasks, results, "project deleted from the web UI");
    Ok(Json(json!({
        "project": name,
        "deleted": true,
        "tasks": tasks,
        "results": results,
        "note": "if a projects folder holds this project's file, remove the file too: it is loaded again when it changes or when spindle starts",
    })))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;
    use spindle_common::StatsBoard;
    use spindle_common::message::Item;
    use spindle_common::store::{ProjectRecord, SqliteStore};
    use tower::ServiceExt;

    use super::*;

    /// A store in a temporary folder holding project `books` (RUNNING, one result).
    async fn store() -> (Arc<dyn Store>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&dir.path().join("s.db"))
                .await
                .expect("store"),
        );
        store
            .save_project(&ProjectRecord {
                name: "books".into(),
                definition: "name = \"books\"".into(),
                status: "RUNNING".into(),
                rate: 1.0,
                burst: 1.0,
                group: None,
                updated_ms: 1_000,
                last_start_ms: 0,
                run_requested_ms: 0,
                origin: None,
            })
            .await
            .expect("save");
        let item = Item {
            taskid: "a".into(),
            url: "http://a.test/".into(),
            data: Default::default(),
        };
        store
            .upsert_results("books", &[item], 1)
            .await
            .expect("result");
        (store, dir)
    }

    /// Sends `request` to an app over `store`; the status and the JSON body.
    async fn send(store: Option<Arc<dyn Store>>, request: Request<Body>) -> (StatusCode, Value) {
        let app = crate::app(Arc::new(StatsBoard::new()), Arc::default(), store, None);
        let response = app.oneshot(request).await.expect("response");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (status, json)
    }

    fn post(uri: &str, body: &str) -> Request<Body> {
        Request::post(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .expect("request")
    }

    #[tokio::test]
    async fn run_requests_a_run_of_a_known_project_only() {
        let (store, _dir) = store().await;
        let (status, json) = send(Some(store.clone()), post("/api/projects/books/run", "")).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        assert_eq!(json["run_requested"], true);
        let record = store.project("books").await.expect("load").expect("books");
        assert!(record.run_requested_ms > record.last_start_ms);
        assert!(record.updated_ms > 1_000, "the scheduler reloads it");

        let (status, json) = send(Some(store), post("/api/projects/nope/run", "")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(json["error"], "no project named nope");
    }

    #[tokio::test]
    async fn status_takes_the_statuses_the_scheduler_knows() {
        let (store, _dir) = store().await;
        let uri = "/api/projects/books/status";
        let (status, json) = send(Some(store.clone()), post(uri, r#"{"status": "stop"}"#)).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        assert_eq!(
            (&json["status"], &json["previous"]),
            (&"STOP".into(), &"RUNNING".into())
        );
        let record = store.project("books").await.expect("load").expect("books");
        assert_eq!(record.status, "STOP");

        for (body, expected) in [
            (
                r#"{"status": "FAST"}"#,
                "invalid status \"FAST\"; expected one of TODO, STOP, CHECKING, DEBUG, RUNNING",
            ),
            (r#"{"status": "PAUSED"}"#, "set by the scheduler"),
            (r#"{"state": "STOP"}"#, "expected a JSON body such as"),
            ("not json", "expected a JSON body such as"),
        ] {
            let (status, json) = send(Some(store.clone()), post(uri, body)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            let error = json["error"].as_str().expect("error message");
            assert!(error.contains(expected), "{body}: {error}");
        }
        let record = store.project("books").await.expect("load").expect("books");
        assert_eq!(record.status, "STOP", "bad requests change nothing");

        let (status, json) = send(
            Some(store),
            post("/api/projects/nope/status", r#"{"status": "RUNNING"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(json["error"], "no project named nope");
    }

    #[tokio::test]
    async fn delete_removes_the_project_with_its_results() {
        let (store, _dir) = store().await;
        let request = || {
            Request::delete("/api/projects/books")
                .body(Body::empty())
                .expect("request")
        };
        let (status, json) = send(Some(store.clone()), request()).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        assert_eq!(
            (&json["deleted"], &json["results"]),
            (&true.into(), &1.into())
        );
        assert!(store.project("books").await.expect("load").is_none());
        assert_eq!(store.count_results("books").await.expect("count"), 0);
        let (status, json) = send(Some(store), request()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(json["error"], "no project named books");
    }

    #[tokio::test]
    async fn pages_of_other_sites_and_uis_without_a_database_are_refused() {
        let (store, _dir) = store().await;
        let from = |origin: &str, site: Option<&str>| {
            let mut request = Request::delete("/api/projects/books")
                .header(header::HOST, "127.0.0.1:5000")
                .header(header::ORIGIN, origin);
            if let Some(site) = site {
                request = request.header("sec-fetch-site", site);
            }
            request.body(Body::empty()).expect("request")
        };
        for request in [
            from("https://evil.example", None),
            from("null", None),
            from("http://127.0.0.1:5000", Some("cross-site")),
        ] {
            let (status, json) = send(Some(store.clone()), request).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{json}");
        }
        assert!(store.project("books").await.expect("load").is_some());
        let (status, _) = send(Some(store.clone()), from("http://127.0.0.1:5000", None)).await;
        assert_eq!(status, StatusCode::OK, "the UI's own page may");

        let (status, json) = send(None, post("/api/projects/books/run", "")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            json["error"]
                .as_str()
                .expect("error")
                .contains("--database")
        );
    }
}
