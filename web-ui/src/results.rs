//! A project's items: a page at a time for the results table, and whole-project downloads.
//!
//! ```text
//! GET /api/results?project=NAME&after=KEY&limit=20        {"project", "fields", "total", "items", "next"}
//! GET /api/results/{project}/export.{jsonl,json,csv}      every item, streamed as a download
//! ```
//!
//! Both page through the store by key ([`spindle_common::Store::results_page`]), so a table
//! page costs one indexed read and an export of a million items holds one page in memory.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use spindle_common::export::{ItemEncoder, ItemFormat};
use spindle_common::{Project, Store};

use crate::AppState;
use crate::error::ApiError;

/// Items per page of the table, at most.
const MAX_LIMIT: usize = 200;
/// Items read from the store per round trip of an export.
const EXPORT_PAGE: usize = 500;

/// The results routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/results", get(page))
        .route("/api/results/{project}/{file}", get(export))
}

/// The query of `GET /api/results`.
#[derive(Deserialize)]
struct PageQuery {
    project: String,
    after: Option<String>,
    limit: Option<usize>,
}

/// The item fields of a stored project, in definition order (empty if it no longer parses).
async fn fields_of(store: &dyn Store, project: &str) -> Result<Vec<String>, ApiError> {
    let record = store
        .project(project)
        .await?
        .ok_or_else(|| ApiError::UnknownProject(project.to_string()))?;
    Ok(Project::parse(&record.definition)
        .map(|p| p.item_fields())
        .unwrap_or_default())
}

async fn page(
    State(state): State<AppState>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let store = state.store()?;
    let fields = fields_of(store, &query.project).await?;
    let limit = query.limit.unwrap_or(20).clamp(1, MAX_LIMIT);
    let after = query.after.filter(|a| !a.is_empty());
    // One more than asked tells whether there is a next page.
    let mut items = store
        .results_page(&query.project, after.as_deref(), limit + 1)
        .await?;
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|i| i.taskid.clone())
    } else {
        None
    };
    let total = store.count_results(&query.project).await?;
    Ok(Json(json!({
        "project": query.project,
        "fields": fields,
        "total": total,
        "items": items,
        "next": next,
    })))
}

async fn export(
    State(state): State<AppState>,
    Path((project, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let format = file
        .strip_prefix("export.")
        .and_then(ItemFormat::from_extension)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "no export {file}: ask for export.jsonl, export.json or export.csv"
            ))
        })?;
    let store = state.store.clone().ok_or(ApiError::NoStore)?;
    let fields = fields_of(&*store, &project).await?;
    let extension = file.rsplit('.').next().unwrap_or("jsonl").to_string();
    let disposition = format!("attachment; filename=\"{project}.{extension}\"");
    let body = Body::from_stream(stream_items(
        store,
        project,
        ItemEncoder::new(format, fields),
    ));
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// Where an export stream is.
enum Cursor {
    Start,
    After(Option<String>),
    Done,
}

/// The encoded items of `project`, one chunk per page of the store. A store error ends the
/// stream with an error, so the client sees a broken download rather than a short file.
fn stream_items(
    store: Arc<dyn Store>,
    project: String,
    encoder: ItemEncoder,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::unfold(
        (store, project, encoder, Cursor::Start),
        |(store, project, mut encoder, cursor)| async move {
            let mut out = Vec::new();
            let after = match cursor {
                Cursor::Done => return None,
                Cursor::Start => {
                    encoder.start(&mut out);
                    None
                }
                Cursor::After(after) => after,
            };
            let page = match store
                .results_page(&project, after.as_deref(), EXPORT_PAGE)
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!(project, error = %e, "export failed");
                    let error = std::io::Error::other(format!("export of {project} failed"));
                    return Some((Err(error), (store, project, encoder, Cursor::Done)));
                }
            };
            let next = match page.last() {
                Some(last) if page.len() == EXPORT_PAGE => Cursor::After(Some(last.taskid.clone())),
                _ => Cursor::Done,
            };
            for item in &page {
                encoder.item(item, &mut out);
            }
            if matches!(next, Cursor::Done) {
                encoder.finish(&mut out);
            }
            Some((Ok(Bytes::from(out)), (store, project, encoder, next)))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{Reply, get_text, send, store_with_project};
    use axum::http::StatusCode;
    use spindle_common::Item;

    #[tokio::test]
    async fn pages_of_the_table_and_every_export_hold_every_item() {
        let (store, _dir) = store_with_project(
            "books",
            "[handlers.start]\nitem.title = { css = \"h1\" }\nitem.price = { css = \"p\" }\n",
        )
        .await;
        let items: Vec<Item> = (0..1_234)
            .map(|i| Item {
                taskid: format!("t{i:05}"),
                url: format!("http://a.test/{i}"),
                data: json!({ "title": format!("<script>alert({i})</script>"), "price": i })
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            })
            .collect();
        store
            .upsert_results("books", &items, 1)
            .await
            .expect("items");
        let ui =
            || crate::WebUi::new(Default::default(), crate::Mode::Embedded).store(store.clone());

        let mut seen = 0;
        let mut after = String::new();
        loop {
            let Reply { status, json } = send(
                ui(),
                "GET",
                &format!("/api/results?project=books&limit=200&after={after}"),
                "",
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{json}");
            assert_eq!(json["fields"], json!(["title", "price"]));
            assert_eq!(json["total"], 1_234);
            seen += json["items"].as_array().expect("items").len();
            match json["next"].as_str() {
                Some(next) => after = next.to_string(),
                None => break,
            }
        }
        assert_eq!(seen, 1_234);

        let (status, jsonl) = get_text(ui(), "/api/results/books/export.jsonl").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(jsonl.lines().count(), 1_234);
        let (_, array) = get_text(ui(), "/api/results/books/export.json").await;
        let array: Value = serde_json::from_str(&array).expect("one JSON array");
        assert_eq!(array.as_array().map(Vec::len), Some(1_234));
        let (_, csv) = get_text(ui(), "/api/results/books/export.csv").await;
        assert_eq!(csv.lines().next(), Some("title,price"));
        assert_eq!(csv.lines().count(), 1_235);

        let Reply { status, .. } = send(ui(), "GET", "/api/results/books/export.xml", "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let Reply { status, json } = send(ui(), "GET", "/api/results?project=nope", "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{json}");
        let Reply { status, .. } = send(ui(), "GET", "/api/results", "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}
