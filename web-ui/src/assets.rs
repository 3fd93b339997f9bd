//! The pages and their assets, embedded in the binary from `web-ui/assets/`.
//!
//! Pages are static HTML files whose scripts read the JSON API; each page path maps to one
//! file. Release builds carry the files inside the binary (nothing to install, nothing from a
//! CDN); debug builds read them from disk at each request, so editing a page needs no rebuild.
//! Every response carries a Content-Security-Policy that allows scripts from this server only
//! (no inline scripts, no `eval`), so a scraped value that slipped into the page as markup
//! still could not run.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;

use crate::AppState;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// What the pages may load: scripts, styles and fetches from this server; the debugger's
/// preview renders a crawled page in a sandboxed `srcdoc` frame (no scripts), which inherits
/// this policy, so its images, styles and fonts may come from anywhere.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline' *; img-src * data: blob:; font-src * data:; \
    media-src *; connect-src 'self'; frame-src 'self' about: data: blob:; object-src 'none'; \
    form-action 'self'; frame-ancestors 'self'";

/// The page routes and `/assets/{file}`.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| page("dashboard.html")))
        .route("/login", get(|| page("login.html")))
        .route("/projects/{name}", get(|| page("editor.html")))
        .route("/tasks", get(|| page("tasks.html")))
        .route("/tasks/{project}/{taskid}", get(|| page("task.html")))
        .route("/results", get(|| page("results.html")))
        .route("/assets/{*file}", get(asset))
        .route(
            "/robots.txt",
            get(|| async { "User-agent: *\nDisallow: /\n" }),
        )
}

async fn page(file: &'static str) -> Response {
    match Assets::get(file) {
        Some(content) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            content.data,
        )
            .into_response(),
        None => missing(file),
    }
}

async fn asset(Path(file): Path<String>) -> Response {
    match Assets::get(&file) {
        Some(content) => {
            let mime = content.metadata.mimetype();
            let mime = if mime.starts_with("text/") || mime.ends_with("javascript") {
                format!("{mime}; charset=utf-8")
            } else {
                mime.to_string()
            };
            let etag = hex(&content.metadata.sha256_hash()[..12]);
            (
                [
                    (header::CONTENT_TYPE, mime),
                    // Revalidated on each load (cheap with the ETag), so an upgrade shows at once.
                    (header::CACHE_CONTROL, "no-cache".to_string()),
                    (header::ETAG, format!("\"{etag}\"")),
                ],
                content.data,
            )
                .into_response()
        }
        None => missing(&file),
    }
}

fn missing(file: &str) -> Response {
    (StatusCode::NOT_FOUND, format!("no such file: {file}\n")).into_response()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
