//! Helpers of the router tests, and tests of what the whole router does (login, headers,
//! pages).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use spindle_common::Store;
use spindle_common::store::{ProjectRecord, ProjectStatus};
use spindle_store::SqliteStore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::{Credentials, Login, Mode, WebUi};

/// A response's status and JSON body (`Null` if it is not JSON).
pub(crate) struct Reply {
    pub status: StatusCode,
    pub json: Value,
}

/// Sends one request to `ui`'s router, as the UI's own page would (same origin).
pub(crate) async fn send(ui: WebUi, method: &str, uri: &str, body: &str) -> Reply {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "127.0.0.1:5000")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let (status, bytes) = respond(ui, request).await;
    Reply {
        status,
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// A GET's status and body as text.
pub(crate) async fn get_text(ui: WebUi, uri: &str) -> (StatusCode, String) {
    let request = Request::get(uri).body(Body::empty()).expect("request");
    let (status, bytes) = respond(ui, request).await;
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// Sends `request` to `ui`'s router; the status and the whole body.
pub(crate) async fn respond(ui: WebUi, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    let response = ui
        .router(CancellationToken::new())
        .oneshot(request)
        .await
        .expect("response");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .expect("body");
    (status, bytes.to_vec())
}

/// A SQLite store in a temporary folder (dropped with the guard) holding project `name`
/// (RUNNING) whose file has `handlers` after its name and start URL.
pub(crate) async fn store_with_project(
    name: &str,
    handlers: &str,
) -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("s.db"))
            .await
            .expect("store"),
    );
    store
        .save_project(&ProjectRecord {
            name: name.into(),
            definition: format!("name = \"{name}\"\nstart = [\"http://a.test/\"]\n{handlers}"),
            status: ProjectStatus::Running,
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
    (store, dir)
}

fn login() -> Login {
    Login {
        admin: Credentials::from_password("ada", "s3cret").expect("admin"),
        viewer: Some(Credentials::from_password("vic", "look").expect("viewer")),
    }
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[tokio::test]
async fn with_a_login_every_page_and_change_needs_it() {
    let (store, _dir) = store_with_project("books", "").await;
    let ui = || {
        WebUi::new(Default::default(), Mode::Embedded)
            .store(store.clone())
            .login(Some(login()))
    };
    // Changes without a login: 401, and nothing changed.
    for (method, uri, body) in [
        ("POST", "/api/projects/books/run", ""),
        (
            "POST",
            "/api/projects/books/status",
            r#"{"status": "STOP"}"#,
        ),
        ("DELETE", "/api/projects/books", ""),
        ("POST", "/api/projects", r#"{"definition": "name = \"x\""}"#),
        (
            "PUT",
            "/api/projects/books/definition",
            r#"{"definition": "name = \"books\""}"#,
        ),
        ("PATCH", "/api/projects/books", r#"{"rate": 3}"#),
        (
            "POST",
            "/api/debug",
            r#"{"definition": "", "url": "http://a.test/"}"#,
        ),
        ("POST", "/api/check", r#"{"definition": ""}"#),
    ] {
        let Reply { status, json } = send(ui(), method, uri, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}: {json}");
        assert_eq!(json["error"], "login required");
    }
    assert_eq!(
        store
            .project("books")
            .await
            .expect("read")
            .expect("kept")
            .status,
        ProjectStatus::Running
    );
    // Reads too, and pages go to the sign-in page.
    let Reply { status, .. } = send(ui(), "GET", "/api/projects", "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = get_text(ui(), "/results?project=books").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // What anyone may see: the sign-in page, assets, health.
    for uri in ["/login", "/assets/ui.js", "/healthz"] {
        let (status, _) = get_text(ui(), uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
    }

    let with = |auth: String, method: &str, uri: &str, body: &str| {
        Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, auth)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .expect("request")
    };
    let stop = r#"{"status": "STOP"}"#;
    for (user, password, method, uri, body, expected, why) in [
        (
            "ada",
            "wrong",
            "GET",
            "/api/projects",
            "",
            StatusCode::UNAUTHORIZED,
            "a wrong password",
        ),
        (
            "vic",
            "look",
            "GET",
            "/api/projects",
            "",
            StatusCode::OK,
            "a viewer reads",
        ),
        (
            "vic",
            "look",
            "POST",
            "/api/projects/books/status",
            stop,
            StatusCode::FORBIDDEN,
            "a viewer does not change",
        ),
        (
            "ada",
            "s3cret",
            "POST",
            "/api/projects/books/status",
            stop,
            StatusCode::OK,
            "the admin does",
        ),
    ] {
        let (status, _) = respond(ui(), with(basic(user, password), method, uri, body)).await;
        assert_eq!(status, expected, "{why}");
    }
    assert_eq!(
        store
            .project("books")
            .await
            .expect("read")
            .expect("kept")
            .status,
        ProjectStatus::Stop
    );
}

#[tokio::test]
async fn a_session_cookie_is_strict_http_only_and_signed() {
    let router = WebUi::new(Default::default(), Mode::Embedded)
        .login(Some(login()))
        .router(CancellationToken::new());
    let request = |body: &str| {
        Request::post("/api/login")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .expect("request")
    };
    let response = router
        .clone()
        .oneshot(request(r#"{"user": "ada", "password": "nope"}"#))
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = router
        .clone()
        .oneshot(request(r#"{"user": "ada", "password": "s3cret"}"#))
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("a cookie")
        .to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    let pair = cookie.split(';').next().expect("name=value").to_string();
    let me = |cookie: String| {
        Request::get("/api/me")
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .expect("request")
    };
    let response = router.clone().oneshot(me(pair.clone())).await.expect("me");
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .expect("body");
    let json: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        (&json["user"], &json["role"]),
        (&"ada".into(), &"admin".into())
    );
    // A cookie whose value was changed by hand is not signed: no identity.
    let forged = pair.replacen("admin", "admin ", 1);
    let response = router.oneshot(me(forged)).await.expect("me");
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .expect("body");
    let json: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(json["user"], Value::Null);
}

#[tokio::test]
async fn changes_from_pages_of_other_sites_are_refused_even_without_a_login() {
    let (store, _dir) = store_with_project("books", "").await;
    for (origin, site) in [
        ("https://evil.example", None),
        ("null", None),
        ("http://127.0.0.1:5000", Some("cross-site")),
    ] {
        let mut request = Request::delete("/api/projects/books")
            .header(header::HOST, "127.0.0.1:5000")
            .header(header::ORIGIN, origin);
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        let ui = WebUi::new(Default::default(), Mode::Embedded).store(store.clone());
        let (status, _) = respond(ui, request.body(Body::empty()).expect("request")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{origin}");
    }
    assert!(store.project("books").await.expect("read").is_some());
}

#[test]
fn a_non_loopback_bind_needs_a_login() {
    let any: std::net::SocketAddr = "0.0.0.0:5000".parse().expect("addr");
    let local: std::net::SocketAddr = "127.0.0.1:5000".parse().expect("addr");
    let err = crate::check_bind(any, None).expect_err("refused");
    assert!(err.contains("SPINDLE_WEB_PASSWORD_HASH"), "{err}");
    assert!(crate::check_bind(any, Some(&login())).is_ok());
    assert!(crate::check_bind(local, None).is_ok());
}

#[tokio::test]
async fn pages_are_served_with_a_policy_that_forbids_inline_scripts() {
    let request = Request::get("/assets/ui.js")
        .body(Body::empty())
        .expect("request");
    let response = WebUi::new(Default::default(), Mode::Embedded)
        .router(CancellationToken::new())
        .oneshot(request)
        .await
        .expect("response");
    let csp = response
        .headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .expect("a policy");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("type")
            .starts_with("text/javascript")
    );
    let Reply { status, json } = send(
        WebUi::new(Default::default(), Mode::Embedded),
        "GET",
        "/api/nope",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(json["error"].is_string());
}

#[tokio::test]
async fn oversized_and_malformed_bodies_are_json_errors() {
    let (store, _dir) = store_with_project("books", "").await;
    let ui = || WebUi::new(Default::default(), Mode::Embedded).store(store.clone());
    let huge = format!(r#"{{"definition": "{}"}}"#, "x".repeat(2 << 20));
    let Reply { status, json } = send(ui(), "POST", "/api/projects", &huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{json}");
    assert!(json["error"].is_string());
    for body in ["{", r#"{"definition": 5}"#, "[]"] {
        let Reply { status, json } = send(ui(), "POST", "/api/projects", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(json["error"].is_string(), "{body}: {json}");
    }
}

#[tokio::test]
async fn metrics_are_served_with_the_login_like_every_page() {
    let render: crate::MetricsRenderer =
        Arc::new(|| Box::pin(async { "spindle_up 1\n# EOF\n".to_string() }));
    let ui = |login: Option<Login>| {
        WebUi::new(Default::default(), Mode::Embedded)
            .login(login)
            .metrics(render.clone())
    };
    let scrape = |authorization: Option<String>| {
        let mut request = Request::get("/metrics");
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        request.body(Body::empty()).expect("request")
    };
    // Without a login, a scraper gets a 401 it can answer with HTTP Basic (not a redirect
    // to the sign-in page).
    let response = ui(Some(login()))
        .router(CancellationToken::new())
        .oneshot(scrape(None))
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
    // A viewer may read them.
    let response = ui(Some(login()))
        .router(CancellationToken::new())
        .oneshot(scrape(Some(basic("vic", "look"))))
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        crate::METRICS_CONTENT_TYPE
    );
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    assert_eq!(&body[..], b"spindle_up 1\n# EOF\n");
    // Without a login configured (a loopback UI) anyone on the machine may.
    let (status, text) = get_text(ui(None), "/metrics").await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::OK, "spindle_up 1\n# EOF\n")
    );
    // A UI given no metrics has no such page.
    let (status, _) = get_text(WebUi::new(Default::default(), Mode::Embedded), "/metrics").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
