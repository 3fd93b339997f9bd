//! The API's one error type, and the JSON body extractor that turns every malformed body into it.
//!
//! Every refusal is `{"error": "why"}` with a status saying whose fault it is; a project file
//! that does not load adds its `line` and `column`. Database failures are logged and answered
//! with a generic message: SQL and host names stay in the log.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;
use spindle_common::StoreError;
use spindle_common::project::ProjectError;

/// Why an API request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// This web UI was started without a database.
    #[error(
        "this web UI has no database: start it with --database (or SPINDLE_DATABASE_URL) to see and change projects, tasks and results"
    )]
    NoStore,
    /// This web UI was started without a debugger.
    #[error("this web UI has no debugger")]
    NoDebugger,
    /// No page or endpoint at this path.
    #[error("no page or endpoint at this path (see docs/web-api.md)")]
    NoRoute,
    /// No project has this name.
    #[error("no project named {0}")]
    UnknownProject(String),
    /// No such task.
    #[error("project {project} has no task {taskid}")]
    UnknownTask {
        /// The project.
        project: String,
        /// The task id asked for.
        taskid: String,
    },
    /// A project of this name exists already.
    #[error("a project named {0} exists already")]
    ProjectExists(String),
    /// The project's file is its source of truth and this process cannot write it: why.
    #[error("{0}")]
    ReadOnly(String),
    /// The request is malformed: why.
    #[error("{0}")]
    BadRequest(String),
    /// A project file that does not load, with its position.
    #[error("{0}")]
    Project(ProjectError),
    /// No login, or a wrong one.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Signed in, but this user may not do that.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The body is larger than the API takes.
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// Too many failed logins in a short time.
    #[error("too many failed logins; try again in a minute")]
    TooManyAttempts,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something of this server's own failed (a file could not be written, a task panicked).
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NoStore | ApiError::NoDebugger => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NoRoute | ApiError::UnknownProject(_) | ApiError::UnknownTask { .. } => {
                StatusCode::NOT_FOUND
            }
            ApiError::ProjectExists(_) | ApiError::ReadOnly(_) => StatusCode::CONFLICT,
            ApiError::BadRequest(_) | ApiError::Project(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Store(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            ApiError::Store(e) => {
                tracing::error!(error = %e, "web UI request failed in the database");
                json!({ "error": "database error; see the web UI's log" })
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "web UI request failed");
                json!({ "error": "internal error; see the web UI's log" })
            }
            ApiError::Project(e) => json!({
                "error": e.to_string(),
                "message": e.message,
                "line": e.line,
                "column": e.column,
            }),
            other => json!({ "error": other.to_string() }),
        };
        (status, Json(body)).into_response()
    }
}

/// `Json<T>` whose rejections are [`ApiError`]s: a body that is not JSON, has the wrong
/// shape or types, or is too large gets the API's JSON error, never axum's plain text.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(rejected(rejection)),
        }
    }
}

fn rejected(rejection: JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::TooLarge(crate::MAX_BODY);
    }
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::BadRequest("expected a JSON body (Content-Type: application/json)".into())
        }
        // axum's text puts "Failed to deserialize the JSON body into the target type" before
        // what helps: the field's path and why its value was refused (e.g. an invalid status
        // with the valid ones).
        JsonRejection::JsonDataError(e) => {
            let detail =
                std::error::Error::source(&e).map_or_else(|| e.body_text(), ToString::to_string);
            ApiError::BadRequest(format!("invalid JSON body: {detail}"))
        }
        other => ApiError::BadRequest(format!("invalid JSON body: {}", other.body_text())),
    }
}
