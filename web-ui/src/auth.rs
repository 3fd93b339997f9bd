//! Who may use the web UI, and the one middleware that enforces it.
//!
//! Without a login configured the UI serves only on a loopback address ([`check_bind`]) and
//! everyone who reaches it is `admin`. With one, every request but the sign-in page, the
//! assets and `/healthz` needs a session cookie (from `POST /api/login`: signed, HttpOnly,
//! SameSite=Strict, 12 hours) or HTTP Basic credentials. Passwords are kept as argon2 hashes
//! and compared by argon2's verifier (constant time); a successful Basic check is remembered
//! for ten minutes, so a script polling the API does not pay a hash per request.
//!
//! Every request that changes something (any method but GET and HEAD) also needs the `admin`
//! role (a `viewer` reads only) and must not come from a page of another site: a browser names
//! the page's origin on such requests, and one whose `Origin` is not this server (or that the
//! browser marks `Sec-Fetch-Site: cross-site`) is refused, so a page elsewhere cannot press the
//! buttons for a user who has the UI open, even without a login.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use axum_extra::extract::cookie::{Cookie, Key, SameSite, SignedCookieJar};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, JsonBody};

/// Name of the session cookie.
const SESSION_COOKIE: &str = "spindle_session";
/// How long a session lasts.
const SESSION_FOR: Duration = Duration::from_secs(12 * 3600);
/// How long a verified Basic login is remembered.
const BASIC_REMEMBERED_FOR: Duration = Duration::from_secs(600);
/// Failed logins allowed per minute, in all, before logins answer 429 for the rest of it.
const FAILURES_PER_MINUTE: u32 = 20;

/// What a signed-in user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything: change projects, run the debugger, cancel tasks.
    Admin,
    /// Read only: pages, figures, tasks, results, exports.
    Viewer,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// Why credentials could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The user name is empty or holds a character a cookie or Basic auth cannot carry.
    #[error("invalid user name {0:?}: use letters, digits, '.', '_', '-' or '@'")]
    User(String),
    /// The hash is not an argon2 PHC string.
    #[error(
        "invalid password hash: expected an argon2 hash such as $argon2id$v=19$... (make one with `spindle hash-password`): {0}"
    )]
    Hash(String),
    /// The password is empty.
    #[error("the password is empty")]
    EmptyPassword,
}

/// One user's name and password hash.
#[derive(Clone)]
pub struct Credentials {
    user: String,
    /// An argon2 hash in PHC form (`$argon2id$v=19$m=…`).
    hash: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// A user with a password hash (`spindle hash-password` prints one).
    pub fn from_hash(user: &str, hash: &str) -> Result<Self, CredentialsError> {
        let user = checked_user(user)?;
        let hash = hash.trim();
        PasswordHash::new(hash).map_err(|e| CredentialsError::Hash(e.to_string()))?;
        Ok(Self {
            user,
            hash: hash.to_string(),
        })
    }

    /// A user with a password in clear, e.g. read from a secret file; it is hashed at once.
    pub fn from_password(user: &str, password: &str) -> Result<Self, CredentialsError> {
        let user = checked_user(user)?;
        Ok(Self {
            user,
            hash: hash_password(password)?,
        })
    }

    fn verify(&self, user: &str, password: &str) -> bool {
        let Ok(hash) = PasswordHash::new(&self.hash) else {
            return false;
        };
        // Verify even for a wrong user, so timing does not tell which users exist.
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok();
        ok && user == self.user
    }
}

fn checked_user(user: &str) -> Result<String, CredentialsError> {
    let ok = !user.is_empty()
        && user.len() <= 64
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(user.to_string())
    } else {
        Err(CredentialsError::User(user.to_string()))
    }
}

/// An argon2id hash of `password` in PHC form, for `--web-password-hash`.
pub fn hash_password(password: &str) -> Result<String, CredentialsError> {
    if password.is_empty() {
        return Err(CredentialsError::EmptyPassword);
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CredentialsError::Hash(e.to_string()))
}

/// The users of a web UI with a login: an admin, and optionally a read-only viewer.
#[derive(Debug, Clone)]
pub struct Login {
    /// May do everything.
    pub admin: Credentials,
    /// May read everything.
    pub viewer: Option<Credentials>,
}

impl Login {
    /// The role of `user` with `password`, if they match one of the users.
    fn verify(&self, user: &str, password: &str) -> Option<Role> {
        if self.admin.verify(user, password) {
            return Some(Role::Admin);
        }
        match &self.viewer {
            Some(viewer) if viewer.verify(user, password) => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// Refuses to serve on `addr` without a login unless `addr` is a loopback address.
pub fn check_bind(addr: SocketAddr, login: Option<&Login>) -> Result<(), String> {
    if login.is_some() || addr.ip().is_loopback() {
        return Ok(());
    }
    Err(format!(
        "refusing to serve the web UI on {addr} without a login: anyone who reaches it could change projects and make the server fetch any URL. \
         Set a user and password (--web-user NAME with --web-password-hash HASH or --web-password-file FILE, \
         or SPINDLE_WEB_USER with SPINDLE_WEB_PASSWORD_HASH or SPINDLE_WEB_PASSWORD_FILE; `spindle hash-password` makes a hash), \
         or bind 127.0.0.1"
    ))
}

/// The signed-in user of a request, put in its extensions by [`require_login`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// User name (`admin` for everyone when no login is configured).
    pub user: String,
    /// What the user may do.
    pub role: Role,
}

/// The login state of a running UI.
pub(crate) struct Gate {
    login: Option<Login>,
    key: Key,
    /// Verified Basic credentials (the header's value) → role, until when.
    basic: Mutex<HashMap<String, (Role, Instant)>>,
    /// Failed logins in the current minute.
    failures: Mutex<(Instant, u32)>,
}

impl Gate {
    /// A gate for `login`, signing sessions with `secret` (a random key when absent, so
    /// sessions end when the process does).
    pub(crate) fn new(login: Option<Login>, secret: Option<&[u8]>) -> Self {
        let key = match secret {
            Some(secret) if secret.len() >= 32 => Key::derive_from(secret),
            _ => Key::generate(),
        };
        Self {
            login,
            key,
            basic: Mutex::new(HashMap::new()),
            failures: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Whether a login is configured.
    pub(crate) fn has_login(&self) -> bool {
        self.login.is_some()
    }

    /// Counts a failed login; false when the minute's allowance is used up.
    fn allow_attempt(&self) -> bool {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.0.elapsed() >= Duration::from_secs(60) {
            *failures = (Instant::now(), 0);
        }
        failures.1 < FAILURES_PER_MINUTE
    }

    fn failed(&self) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.1 += 1;
    }

    /// Checks a user and password off the async workers (argon2 takes tens of milliseconds).
    async fn verify(&self, user: &str, password: &str) -> Result<Option<Role>, ApiError> {
        let Some(login) = self.login.clone() else {
            return Ok(Some(Role::Admin));
        };
        if !self.allow_attempt() {
            return Err(ApiError::TooManyAttempts);
        }
        let (user, password) = (user.to_string(), password.to_string());
        let role = tokio::task::spawn_blocking(move || login.verify(&user, &password))
            .await
            .map_err(|e| ApiError::Internal(format!("password check failed: {e}")))?;
        if role.is_none() {
            self.failed();
        }
        Ok(role)
    }

    /// The identity a request carries: none needed without a login, else its session cookie
    /// or its Basic credentials.
    async fn identify(&self, headers: &HeaderMap) -> Result<Option<Identity>, ApiError> {
        if self.login.is_none() {
            return Ok(Some(Identity {
                user: "admin".into(),
                role: Role::Admin,
            }));
        }
        let jar = SignedCookieJar::from_headers(headers, self.key.clone());
        if let Some(identity) = jar.get(SESSION_COOKIE).and_then(|c| session(c.value())) {
            return Ok(Some(identity));
        }
        let Some(basic) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
        else {
            return Ok(None);
        };
        if let Some(identity) = self.remembered(basic) {
            return Ok(Some(identity));
        }
        let Some((user, password)) = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.split_once(':')
                    .map(|(u, p)| (u.to_string(), p.to_string()))
            })
        else {
            return Ok(None);
        };
        let Some(role) = self.verify(&user, &password).await? else {
            return Ok(None);
        };
        let mut cache = self.basic.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= 64 {
            cache.clear();
        }
        cache.insert(basic.to_string(), (role, Instant::now()));
        Ok(Some(Identity { user, role }))
    }

    fn remembered(&self, basic: &str) -> Option<Identity> {
        let cache = self.basic.lock().unwrap_or_else(|e| e.into_inner());
        let (role, at) = cache.get(basic)?;
        if at.elapsed() > BASIC_REMEMBERED_FOR {
            return None;
        }
        let user = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())?
            .split_once(':')?
            .0
            .to_string();
        Some(Identity { user, role: *role })
    }
}

/// A session cookie's value: `role|user|expiry in Unix ms`, read back if unexpired.
fn session(value: &str) -> Option<Identity> {
    let mut parts = value.splitn(3, '|');
    let role = Role::parse(parts.next()?)?;
    let user = parts.next()?.to_string();
    let expires: i64 = parts.next()?.parse().ok()?;
    (expires > now_ms()).then_some(Identity { user, role })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Paths anyone may ask for: the sign-in page and its assets, and the health check.
fn is_public(method: &Method, path: &str) -> bool {
    path == "/login"
        || path == "/healthz"
        || path == "/robots.txt"
        || path.starts_with("/assets/")
        || (path == "/api/login" && method == Method::POST)
        || path == "/api/me"
}

/// Whether a request was sent by a page of another site (see the module docs).
fn is_cross_site(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if text("sec-fetch-site") == Some("cross-site") {
        return true;
    }
    match text(header::ORIGIN.as_str()) {
        // Not sent by a browser (curl, scripts): nothing to forge.
        None => false,
        Some(origin) => {
            let authority = origin.split_once("://").map(|(_, rest)| rest);
            let host = text(header::HOST.as_str());
            !matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
        }
    }
}

/// The middleware in front of every route: identifies the user, sends pages without a login
/// to the sign-in page, answers API requests without one with 401, and refuses changes from
/// viewers and from other sites.
pub(crate) async fn require_login(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let changes = !matches!(method, Method::GET | Method::HEAD);
    if changes && is_cross_site(request.headers()) {
        return ApiError::Forbidden("refused: the request comes from a page of another site")
            .into_response();
    }
    let identity = match state.gate.identify(request.headers()).await {
        Ok(identity) => identity,
        Err(e) => return e.into_response(),
    };
    if is_public(&method, &path) {
        if let Some(identity) = identity {
            request.extensions_mut().insert(identity);
        }
        return next.run(request).await;
    }
    let Some(identity) = identity else {
        // Scrapers, like API clients, get a 401 they can answer with HTTP Basic.
        if !path.starts_with("/api/") && path != "/metrics" {
            let target = request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            let next_param: String =
                url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
            return Redirect::to(&format!("/login?next={next_param}")).into_response();
        }
        let mut response = ApiError::Unauthorized("login required").into_response();
        // The pages handle a 401 themselves; a browser dialog would only get in the way.
        if !request.headers().contains_key("x-spindle-ui") {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"Spindle\""),
            );
        }
        return response;
    };
    if changes && identity.role != Role::Admin {
        return ApiError::Forbidden("this user may only read: changes need the admin login")
            .into_response();
    }
    request.extensions_mut().insert(identity);
    next.run(request).await
}

/// The login routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
}

/// The body of `POST /api/login`.
#[derive(Deserialize)]
struct LoginBody {
    user: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    if !state.gate.has_login() {
        return Err(ApiError::BadRequest(
            "this web UI has no login configured: nothing to sign in to".into(),
        ));
    }
    let Some(role) = state.gate.verify(&body.user, &body.password).await? else {
        return Err(ApiError::Unauthorized("wrong user or password"));
    };
    let expires = now_ms() + SESSION_FOR.as_millis() as i64;
    let value = format!("{}|{}|{expires}", role.as_str(), body.user);
    let cookie = Cookie::build((SESSION_COOKIE, value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .max_age(time_span(SESSION_FOR))
        .build();
    let jar = SignedCookieJar::new(state.gate.key.clone()).add(cookie);
    tracing::info!(user = %body.user, role = role.as_str(), "signed in to the web UI");
    Ok((jar, Json(json!({ "user": body.user, "role": role }))).into_response())
}

fn time_span(d: Duration) -> cookie::time::Duration {
    cookie::time::Duration::seconds(d.as_secs() as i64)
}

async fn logout(State(state): State<AppState>) -> Response {
    let removal = Cookie::build((SESSION_COOKIE, "")).path("/").build();
    let jar = SignedCookieJar::new(state.gate.key.clone()).remove(removal);
    (jar, Json(json!({ "ok": true }))).into_response()
}

async fn me(State(state): State<AppState>, identity: Option<Extension<Identity>>) -> Json<Value> {
    let (user, role) = match identity {
        Some(Extension(i)) => (Some(i.user), Some(i.role)),
        None => (None, None),
    };
    Json(json!({ "user": user, "role": role, "login": state.gate.has_login() }))
}
