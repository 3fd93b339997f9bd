//! Serving a generated site over HTTP.
//!
//! [`Site::router`] builds the axum app and [`serve`] runs it on a listener the caller bound,
//! until a shutdown future the caller owns resolves, so tests bind port 0 and stop the server
//! when they are done. Every request, including those answered 404 or 405, is counted in
//! [`Hits`] before it is routed.
//!
//! Routes: `/`, `/cat/{category}/page/{page}`, `/item/{id}`. Everything else, including
//! `/missing/{id}`, a page past the last and a number not spelled canonically (`/item/017`),
//! is 404 with a small HTML page.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::header::{CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use super::{Hits, Site, render};

/// What every handler shares.
#[derive(Clone)]
struct AppState {
    site: Arc<Site>,
    hits: Arc<Hits>,
}

impl Site {
    /// An axum router serving this site; every request is counted in `hits` by its path and
    /// query.
    pub fn router(self: Arc<Self>, hits: Arc<Hits>) -> Router {
        let state = AppState { site: self, hits };
        Router::new()
            .route("/", get(index))
            .route("/cat/{category}/page/{page}", get(list))
            .route("/item/{id}", get(detail))
            // `/missing/{id}` is not a route: the links to it exist to be answered 404.
            .fallback(not_found)
            // `layer` (unlike `route_layer`) also wraps the fallback and the 405 answers, so
            // every request is counted.
            .layer(middleware::from_fn_with_state(state.clone(), count_hit))
            .with_state(state)
    }
}

/// Serves `site` on `listener`, counting requests in `hits` (read back at `/__stats`), until
/// `shutdown` resolves; then stops accepting connections and returns once in-flight requests
/// are answered.
///
/// # Errors
///
/// Returns the I/O error that stopped the server.
pub async fn serve(
    site: Arc<Site>,
    hits: Arc<Hits>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // What the bench reads after a crawl; outside the router's counting layer.
    let seen = hits.clone();
    let stats = axum::routing::get(move || {
        let hits = seen.clone();
        async move {
            axum::Json(serde_json::json!({
                "requests": hits.total(),
                "max_in_flight": hits.in_flight.max(),
                "mean_in_flight": hits.in_flight.mean_between(0.1, 0.9),
            }))
        }
    });
    axum::serve(listener, site.router(hits).route("/__stats", stats))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Middleware counting each request by its path and query before routing it.
async fn count_hit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let uri = request.uri();
    let key = uri
        .path_and_query()
        .map_or_else(|| uri.path(), |path_and_query| path_and_query.as_str());
    state.hits.record(key);
    state.hits.in_flight.start();
    let response = next.run(request).await;
    state.hits.in_flight.end();
    response
}

/// `GET /`.
async fn index(State(state): State<AppState>) -> Response {
    html(StatusCode::OK, render::index(&state.site))
}

/// `GET /cat/{category}/page/{page}`.
async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    let Ok(Path((category, page))) = params else {
        return not_found().await;
    };
    let (Some(category), Some(page)) = (canonical_number(&category), canonical_number(&page))
    else {
        return not_found().await;
    };
    let host = headers.get(HOST).and_then(|host| host.to_str().ok());
    match render::list(&state.site, category, page, host) {
        Some(body) => html(StatusCode::OK, body),
        None => not_found().await,
    }
}

/// `GET /item/{id}`.
async fn detail(
    State(state): State<AppState>,
    params: Result<Path<String>, PathRejection>,
) -> Response {
    let Some(id) = params.ok().and_then(|Path(id)| canonical_number(&id)) else {
        return not_found().await;
    };
    match render::detail(&state.site, id) {
        Some(body) => html(StatusCode::OK, body),
        None => not_found().await,
    }
}

/// Everything the site does not have.
async fn not_found() -> Response {
    html(StatusCode::NOT_FOUND, render::not_found())
}

/// An HTML response.
fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// `text` as a number if it is spelled the way the site spells numbers: decimal digits,
/// no sign, no leading zero. Other spellings of a page's number would be duplicate URLs of
/// one page, so they are refused.
fn canonical_number(text: &str) -> Option<u32> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::canonical_number;

    #[test]
    fn only_canonical_numbers_are_accepted() {
        assert_eq!(canonical_number("0"), Some(0));
        assert_eq!(canonical_number("17"), Some(17));
        assert_eq!(canonical_number("4294967295"), Some(u32::MAX));
        for bad in [
            "",
            "017",
            "+17",
            "-1",
            "1.0",
            "1e3",
            "4294967296",
            " 1",
            "١",
        ] {
            assert_eq!(canonical_number(bad), None, "{bad:?}");
        }
    }
}
