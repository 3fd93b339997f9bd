//! Projects: list, create, read, edit, check, run, start and stop, delete.
//!
//! ```text
//! GET    /api/projects                     the dashboard's rows
//! POST   /api/projects                     {"definition": "<TOML>"}: a new project
//! GET    /api/projects/{name}              settings, definition, fields, handlers, origin
//! PUT    /api/projects/{name}/definition   {"definition": "<TOML>"}: save an edit
//! PATCH  /api/projects/{name}              any of {"status", "group", "rate", "burst"}
//! POST   /api/projects/{name}/run          submit the start URLs again now, forced
//! POST   /api/projects/{name}/status       {"status": "STOP"}
//! DELETE /api/projects/{name}              the project with its tasks and results
//! GET    /api/projects/{name}/definition   the file as text (?download=1: as NAME.toml)
//! POST   /api/check                        {"definition": "<TOML>"}: what `spindle check` says
//! ```
//!
//! Like `spindle project`, each change writes the store and nothing else: the scheduler, in
//! this process or another one sharing the database, follows at its next reload (within 2 s).
//! A project file is checked exactly as `spindle check` does; one that does not load is
//! refused with its line and column and nothing is stored.

use std::path::PathBuf;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use spindle_common::store::{InvalidStatus, ProjectChange, ProjectRecord, ProjectStatus};
use spindle_common::{Project, Store};

use crate::error::{ApiError, JsonBody};
use crate::live::{now_ms, project_rows};
use crate::{AppState, files};

/// The projects routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/projects", get(list).post(create))
        .route(
            "/api/projects/{name}",
            get(details).patch(change).delete(delete_project),
        )
        .route("/api/projects/{name}/definition", get(definition).put(save))
        .route("/api/projects/{name}/run", post(run))
        .route("/api/projects/{name}/status", post(set_status))
        .route("/api/check", post(check))
}

/// A body holding a project file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefinitionBody {
    definition: String,
}

async fn record_of(store: &dyn Store, name: &str) -> Result<ProjectRecord, ApiError> {
    store
        .project(name)
        .await?
        .ok_or_else(|| ApiError::UnknownProject(name.to_string()))
}

fn parse(definition: &str) -> Result<Project, ApiError> {
    Project::parse(definition).map_err(ApiError::Project)
}

async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let records = match &state.store {
        Some(store) => store.projects().await?,
        None => Vec::new(),
    };
    let rows = project_rows(&records, &state.board.all());
    Ok(Json(json!(rows)))
}

async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<DefinitionBody>,
) -> Result<Response, ApiError> {
    let store = state.store()?;
    let project = parse(&body.definition)?;
    if store.project(&project.name).await?.is_some() {
        return Err(ApiError::ProjectExists(project.name));
    }
    let status = project.status.unwrap_or_default();
    let record = ProjectRecord {
        name: project.name.clone(),
        definition: body.definition,
        status,
        rate: project.rate,
        burst: project.burst,
        group: project.group.clone(),
        updated_ms: now_ms(),
        last_start_ms: 0,
        run_requested_ms: 0,
        origin: None,
    };
    store.save_project(&record).await?;
    tracing::info!(project = %record.name, "project created in the web UI");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "name": record.name,
            "status": status,
            "dispatches": status.dispatches(),
            "startable": status.startable(),
        })),
    )
        .into_response())
}

async fn details(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let record = record_of(state.store()?, &name).await?;
    let parsed = Project::parse(&record.definition).ok();
    let fields = parsed
        .as_ref()
        .map(Project::item_fields)
        .unwrap_or_default();
    let handlers: Vec<String> = parsed
        .as_ref()
        .map(|p| p.handlers.keys().cloned().collect())
        .unwrap_or_default();
    Ok(Json(json!({
        "name": record.name,
        "group": record.group,
        "status": record.status,
        "dispatches": record.status.dispatches(),
        "startable": record.status.startable(),
        "rate": record.rate,
        "burst": record.burst,
        "definition": record.definition,
        "fields": fields,
        "handlers": handlers,
        "updated_ms": record.updated_ms,
        "origin": origin_of(&state, &record).to_json(),
    })))
}

/// Where a project's text lives, as this process can edit it.
enum Origin {
    /// Only in the store.
    Store,
    /// In a file of this process's projects folder: saved back there.
    File(PathBuf),
    /// In a file this process does not watch: edit the file.
    ReadOnly {
        /// The file.
        path: String,
        /// Why it cannot be saved here, and what to do.
        reason: String,
    },
}

impl Origin {
    fn to_json(&self) -> Value {
        match self {
            Origin::Store => json!({ "kind": "store" }),
            Origin::File(path) => {
                json!({ "kind": "file", "path": path.display().to_string(), "writable": true })
            }
            Origin::ReadOnly { path, reason } => {
                json!({ "kind": "file", "path": path, "writable": false, "reason": reason })
            }
        }
    }
}

/// Where `record`'s text lives: a file of this process's projects folder holding the project
/// is saved back; a file the store names (loaded by another process, or by this one from a
/// folder it no longer watches) is the project's source of truth, so it is read-only here.
fn origin_of(state: &AppState, record: &ProjectRecord) -> Origin {
    if let Some(path) = state
        .project_files
        .as_deref()
        .and_then(|dir| files::file_of(dir, &record.name))
    {
        return Origin::File(path);
    }
    match &record.origin {
        None => Origin::Store,
        Some(path) => Origin::ReadOnly {
            path: path.clone(),
            reason: format!(
                "loaded from {path} by the process that watches its folder (spindle all or spindle scheduler with --projects): edit the file, or remove it from the folder to edit the project here"
            ),
        },
    }
}

/// The record of a project file saved in the editor: the stored record edited
/// ([`ProjectRecord::edited`]: settings changed on the dashboard stay unless the file changed
/// its own key), and a project being crawled is held for checking
/// ([`ProjectStatus::after_edit`]): new rules do not run before someone starts them.
fn edited(old: &ProjectRecord, project: &Project, now: i64) -> ProjectRecord {
    let mut record = old.edited(project, now);
    record.status = record.status.after_edit();
    record
}

async fn save(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<DefinitionBody>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store()?;
    let old = record_of(store, &name).await?;
    let project = parse(&body.definition)?;
    if project.name != name {
        return Err(ApiError::BadRequest(format!(
            "the file names project {:?} but this is project {name:?}: a project cannot be renamed (create a new one with that name instead)",
            project.name
        )));
    }
    let file = match origin_of(&state, &old) {
        Origin::ReadOnly { reason, .. } => return Err(ApiError::ReadOnly(reason)),
        Origin::File(path) => Some(path),
        Origin::Store => None,
    };
    let record = edited(&old, &project, now_ms());
    // The file first: if it cannot be written, nothing changes.
    if let Some(path) = &file {
        files::write(path, &record.definition)
            .map_err(|e| ApiError::Internal(format!("cannot write {}: {e}", path.display())))?;
    }
    store.save_project(&record).await?;
    tracing::info!(project = %name, status = %record.status, file = ?file, "project saved in the web UI");
    Ok(Json(json!({
        "name": name,
        "status": record.status,
        "dispatches": record.status.dispatches(),
        "startable": record.status.startable(),
        "previous": old.status,
        // The save stopped a crawl: it waits until someone starts the project again.
        "held": old.status.dispatches() && !record.status.dispatches(),
        "saved_to": if file.is_some() { "file" } else { "store" },
    })))
}

/// The highest rate and burst the dashboard accepts.
const MAX_RATE: f64 = 10_000.0;
const MAX_BURST: f64 = 100_000.0;

async fn change(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(mut change): JsonBody<ProjectChange>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store()?;
    if let Some(rate) = change.rate
        && !(rate > 0.0 && rate <= MAX_RATE)
    {
        return Err(ApiError::BadRequest(format!(
            "invalid rate {rate}: expected requests per second above 0 and at most {MAX_RATE}"
        )));
    }
    if let Some(burst) = change.burst
        && !(1.0..=MAX_BURST).contains(&burst)
    {
        return Err(ApiError::BadRequest(format!(
            "invalid burst {burst}: expected a bucket size from 1 to {MAX_BURST}"
        )));
    }
    change.group = change
        .group
        .map(|g| g.map(|g| g.trim().to_string()).filter(|g| !g.is_empty()));
    if let Some(Some(g)) = &change.group
        && g.chars().count() > 64
    {
        return Err(ApiError::BadRequest(
            "a group is at most 64 characters".into(),
        ));
    }
    let record = store
        .update_project(&name, &change, now_ms())
        .await?
        .ok_or(ApiError::UnknownProject(name))?;
    Ok(Json(json!({
        "name": record.name,
        "status": record.status,
        "dispatches": record.status.dispatches(),
        "startable": record.status.startable(),
        "group": record.group,
        "rate": record.rate,
        "burst": record.burst,
    })))
}

async fn run(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store()?;
    let record = record_of(store, &name).await?;
    if !store.request_run(&name, now_ms()).await? {
        return Err(ApiError::UnknownProject(name));
    }
    Ok(Json(json!({
        "project": name,
        "run_requested": true,
        "status": record.status,
        "dispatches": record.status.dispatches(),
    })))
}

/// The body of `POST /api/projects/{name}/status`.
#[derive(Deserialize)]
struct StatusBody {
    status: String,
}

async fn set_status(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<StatusBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(|e| {
        ApiError::BadRequest(format!(
            "expected a JSON body such as {{\"status\": \"RUNNING\"}}: {}",
            e.body_text()
        ))
    })?;
    let status: ProjectStatus = body
        .status
        .parse()
        .map_err(|e: InvalidStatus| ApiError::BadRequest(e.to_string()))?;
    let store = state.store()?;
    let previous = record_of(store, &name).await?.status;
    if !store.set_status(&name, status, now_ms()).await? {
        return Err(ApiError::UnknownProject(name));
    }
    Ok(Json(json!({
        "project": name,
        "status": status,
        "dispatches": status.dispatches(),
        "startable": status.startable(),
        "previous": previous,
    })))
}

async fn delete_project(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store()?;
    record_of(store, &name).await?;
    let counts = store.task_counts(&name).await?;
    let tasks = counts.queued + counts.claimed + counts.success + counts.failed + counts.bad;
    let results = store.count_results(&name).await?;
    store.delete_project(&name).await?;
    state.board.remove(&name);
    tracing::info!(project = %name, tasks, results, "project deleted from the web UI");
    Ok(Json(json!({
        "project": name,
        "deleted": true,
        "tasks": tasks,
        "results": results,
        "note": "if a projects folder holds this project's file, remove the file too: it is loaded again when it changes or when spindle starts",
    })))
}

/// The query of `GET /api/projects/{name}/definition`.
#[derive(Deserialize)]
struct DefinitionQuery {
    download: Option<String>,
}

async fn definition(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<DefinitionQuery>,
) -> Result<Response, ApiError> {
    let record = record_of(state.store()?, &name).await?;
    let mut response = (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        record.definition,
    )
        .into_response();
    if query.download.is_some_and(|d| d != "0") {
        let disposition = format!("attachment; filename=\"{name}.toml\"");
        if let Ok(value) = disposition.parse() {
            response
                .headers_mut()
                .insert(header::CONTENT_DISPOSITION, value);
        }
    }
    Ok(response)
}

async fn check(JsonBody(body): JsonBody<DefinitionBody>) -> Json<Value> {
    Json(match Project::parse(&body.definition) {
        Ok(project) => json!({
            "ok": true,
            "name": project.name,
            "start": project.start,
            "handlers": project.handlers.keys().collect::<Vec<_>>(),
            "fields": project.item_fields(),
        }),
        Err(e) => json!({
            "ok": false,
            "error": e.to_string(),
            "message": e.message,
            "line": e.line,
            "column": e.column,
        }),
    })
}

#[cfg(test)]
mod tests;
