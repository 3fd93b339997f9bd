//! The debugger behind the editor page: one step of a project, run on demand.
//!
//! ```text
//! GET  /debug                              the editor: project text, URL, handler, Run
//! GET  /api/projects/{name}/definition     a stored project's text, to start editing from
//! POST /api/debug                          {"definition": "<TOML>", "url": "https://…", "handler": "detail"}
//! ```
//!
//! `POST /api/debug` answers what `spindle debug` prints (the page, follows, items, dropped
//! items, logs, errors and timings) for the text as edited, without saving it: nothing is
//! stored or queued. A project that does not load, an unknown handler or a bad URL is a 400
//! with the reason (a project error names its line and column). The step is the binary's own
//! (it fetches with the production fetcher and runs the processor's handler), handed to the UI
//! as a [`Debugger`]; a UI started without one answers 503. Like the control endpoints, it
//! refuses requests from pages of other sites: it makes the server fetch a URL.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use crate::AppState;
use crate::control::{ApiError, SameOrigin};

/// Runs one debug step; implemented by the `spindle` binary with its fetcher and processor.
#[async_trait::async_trait]
pub trait Debugger: Send + Sync {
    /// Fetches `url` and runs `handler` (default `start`) of the project `definition` on it:
    /// the step's report as JSON, or why the request cannot run (the project does not load,
    /// the handler does not exist, the URL is not absolute http(s)). A failed fetch or
    /// handler is not an error: the report lists it.
    async fn step(
        &self,
        definition: &str,
        url: &str,
        handler: Option<&str>,
    ) -> Result<Value, String>;
}

/// The debugger's routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/debug", get(page))
        .route("/api/debug", post(step))
        .route("/api/projects/{name}/definition", get(definition))
}

async fn page() -> Html<&'static str> {
    Html(include_str!("debug.html"))
}

/// The body of `POST /api/debug`.
#[derive(Deserialize)]
struct StepRequest {
    definition: String,
    url: String,
    handler: Option<String>,
}

async fn step(
    _: SameOrigin,
    State(state): State<AppState>,
    body: Result<Json<StepRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let debugger: Arc<dyn Debugger> = state.debugger.ok_or(ApiError::NoDebugger)?;
    let Json(request) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let handler = request.handler.as_deref().filter(|h| !h.trim().is_empty());
    debugger
        .step(&request.definition, &request.url, handler)
        .await
        .map(Json)
        .map_err(ApiError::BadRequest)
}

async fn definition(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let store = state.store.ok_or(ApiError::NoStore)?;
    let record = store
        .project(&name)
        .await?
        .ok_or(ApiError::UnknownProject(name))?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        record.definition,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use spindle_common::StatsBoard;
    use tower::ServiceExt;

    /// Answers with what it was asked, or refuses a definition without a name.
    struct Echo;

    #[async_trait::async_trait]
    impl Debugger for Echo {
        async fn step(
            &self,
            definition: &str,
            url: &str,
            handler: Option<&str>,
        ) -> Result<Value, String> {
            if !definition.contains("name") {
                return Err("project.toml:1:1: missing field `name`".into());
            }
            Ok(serde_json::json!({ "url": url, "handler": handler }))
        }
    }

    async fn post_step(
        debugger: Option<Arc<dyn Debugger>>,
        body: &str,
        origin: &str,
    ) -> (StatusCode, Value) {
        let app = crate::app(Arc::new(StatsBoard::new()), Arc::default(), None, debugger);
        let response = app
            .oneshot(
                Request::post("/api/debug")
                    .header("content-type", "application/json")
                    .header("host", "127.0.0.1:5000")
                    .header("origin", origin)
                    .body(Body::from(body.to_string()))
                    .expect("request"),
            )
            .await
            .expect("response");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, serde_json::from_slice(&bytes).expect("json"))
    }

    #[tokio::test]
    async fn a_step_runs_on_the_debugger_and_errors_are_400() {
        let echo: Option<Arc<dyn Debugger>> = Some(Arc::new(Echo));
        let same = "http://127.0.0.1:5000";
        let (status, json) = post_step(
            echo.clone(),
            r#"{"definition": "name = \"p\"", "url": "http://a.test/", "handler": "detail"}"#,
            same,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            json,
            serde_json::json!({ "url": "http://a.test/", "handler": "detail" })
        );

        let (status, json) = post_step(
            echo.clone(),
            r#"{"definition": "", "url": "http://a.test/", "handler": ""}"#,
            same,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            json["error"].as_str().is_some_and(|e| e.contains("1:1")),
            "{json}"
        );

        let (status, _) = post_step(echo.clone(), r#"{"url": 1}"#, same).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = post_step(
            echo,
            r#"{"definition": "name = \"p\"", "url": "http://a.test/"}"#,
            "https://evil.example",
        )
        .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "other sites cannot make us fetch"
        );
        let (status, _) = post_step(None, r#"{"definition": "", "url": ""}"#, same).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
