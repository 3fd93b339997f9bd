//! Spindle's web UI: the dashboard, the project editor and debugger, tasks and results, over
//! one JSON API (documented in `docs/web-api.md`), with an optional login.
//!
//! [`WebUi`] is built from what the process already has (the scheduler's figures, the bus, the
//! store, a [`Debugger`]) and turned into a router ([`WebUi::router`], which tests drive
//! without a socket) or served ([`WebUi::serve`]). `spindle all` and `spindle web-ui` serve the
//! same UI; in the embedded mode it reads the in-process scheduler's figures directly, in the
//! distributed one it follows the events every role publishes ([`follow_events`]).
//!
//! Modules: `auth` (login, roles, the same-site guard), `assets` (pages and files), `live`
//! (the snapshot stream), `projects`, `debugger`, `tasks`, `results` (the API by concern),
//! `error` (the API's error type).
//!
//! It owns the HTTP API and the pages, and reads the state through the contracts: it depends
//! on `spindle-common` only and must never depend on a backend (`spindle-store`,
//! `spindle-nats`) or a role: the binary hands it the store, the bus and the debugger.

mod assets;
mod auth;
mod debugger;
mod error;
mod files;
mod live;
mod projects;
mod results;
mod tasks;

pub use auth::{Credentials, CredentialsError, Identity, Login, Role, check_bind, hash_password};
pub use debugger::{DebugTask, Debugger, StepError};
pub use error::ApiError;
pub use live::{Mode, Snapshot};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::routing::get;
use axum::{Json, Router, middleware};
use futures::StreamExt;
use spindle_common::events::{self, Heartbeat, ProjectStatsEvent};
use spindle_common::{Bus, BusError, StatsBoard, Store};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Largest request body the API reads.
pub const MAX_BODY: usize = 1 << 20;

/// The content type of `GET /metrics`: Prometheus's OpenMetrics text format.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Renders the text `GET /metrics` answers with (see [`WebUi::metrics`]).
pub type MetricsRenderer =
    Arc<dyn Fn() -> futures::future::BoxFuture<'static, String> + Send + Sync>;

/// Live instances of every role, by id, from their heartbeats.
#[derive(Debug, Default)]
pub struct Instances {
    latest: RwLock<BTreeMap<String, Heartbeat>>,
}

impl Instances {
    /// Records a heartbeat.
    pub fn record(&self, heartbeat: Heartbeat) {
        self.latest
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(heartbeat.id.clone(), heartbeat);
    }

    /// Instances heard from within three heartbeat periods of `now_ms`; older ones are
    /// forgotten, so the map is as small as the deployment.
    pub fn live(&self, now_ms: i64) -> Vec<Heartbeat> {
        let mut latest = self
            .latest
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        latest.retain(|_, h| now_ms - h.at_ms <= 3 * events::HEARTBEAT_EVERY_MS);
        latest.values().cloned().collect()
    }
}

/// Why the web UI could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebUiError {
    /// Bound to a non-loopback address without a login.
    #[error("{0}")]
    Unprotected(String),
    /// The listener failed.
    #[error("web UI: {0}")]
    Io(#[from] std::io::Error),
}

/// A web UI to build: what it shows, what it may change, who may use it.
pub struct WebUi {
    board: Arc<StatsBoard>,
    instances: Arc<Instances>,
    store: Option<Arc<dyn Store>>,
    bus: Option<Arc<dyn Bus>>,
    debugger: Option<Arc<dyn Debugger>>,
    login: Option<Login>,
    secret: Option<Vec<u8>>,
    project_files: Option<PathBuf>,
    metrics: Option<MetricsRenderer>,
    mode: Mode,
}

impl WebUi {
    /// A UI showing the figures of `board`, in `mode`; add what else it has with the methods
    /// below. Without a store it shows figures only; without a debugger the editor cannot run
    /// steps; without a bus there are no queue depths nor instances.
    pub fn new(board: Arc<StatsBoard>, mode: Mode) -> Self {
        Self {
            board,
            instances: Arc::default(),
            store: None,
            bus: None,
            debugger: None,
            login: None,
            secret: None,
            project_files: None,
            metrics: None,
            mode,
        }
    }

    /// Where projects, tasks and results are read and changed.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The bus: its queue depths, and the heartbeats and figures sent on it.
    pub fn bus(mut self, bus: Arc<dyn Bus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// Runs the editor's debugger steps.
    pub fn debugger(mut self, debugger: Arc<dyn Debugger>) -> Self {
        self.debugger = Some(debugger);
        self
    }

    /// Requires a login (see the `auth` module).
    pub fn login(mut self, login: Option<Login>) -> Self {
        self.login = login;
        self
    }

    /// The key sessions are signed with (at least 32 bytes; a random one otherwise, so
    /// sessions end with the process). Several UIs behind one address share it.
    pub fn session_secret(mut self, secret: Option<Vec<u8>>) -> Self {
        self.secret = secret;
        self
    }

    /// The `--projects` folder this process loads and watches: projects loaded from a file
    /// in it are saved back to the file; other file projects are read-only here.
    pub fn project_files(mut self, dir: Option<PathBuf>) -> Self {
        self.project_files = dir;
        self
    }

    /// Serves `GET /metrics` (Prometheus) with the text `render` makes; it needs the login
    /// like every page (a viewer may read it). Without it `/metrics` is not found.
    pub fn metrics(mut self, render: MetricsRenderer) -> Self {
        self.metrics = Some(render);
        self
    }

    /// The router, with its background tasks (the snapshot pulse, and following the bus's
    /// events when a bus was given) running until `shutdown`.
    pub fn router(self, shutdown: CancellationToken) -> Router {
        let (snapshot_tx, snapshot) = watch::channel::<Arc<str>>("{}".into());
        if let Some(bus) = &self.bus {
            let (bus, board, instances, stop) = (
                bus.clone(),
                self.board.clone(),
                self.instances.clone(),
                shutdown.clone(),
            );
            tokio::spawn(async move {
                if let Err(e) = follow_events(bus, board, instances, stop).await {
                    tracing::warn!(error = %e, "web UI: stopped following events");
                }
            });
        }
        tokio::spawn(live::pulse(
            live::Sources {
                board: self.board.clone(),
                instances: self.instances.clone(),
                store: self.store.clone(),
                bus: self.bus.clone(),
                mode: self.mode,
            },
            snapshot_tx,
            shutdown,
        ));
        let state = AppState(Arc::new(Inner {
            board: self.board,
            instances: self.instances,
            store: self.store,
            debugger: self.debugger,
            gate: auth::Gate::new(self.login, self.secret.as_deref()),
            project_files: self.project_files,
            metrics: self.metrics,
            snapshot,
        }));
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/api/instances", get(instances))
            .route("/metrics", get(metrics))
            .merge(assets::router())
            .merge(auth::router())
            .merge(live::router())
            .merge(projects::router())
            .merge(debugger::router())
            .merge(results::router())
            .merge(tasks::router())
            .fallback(|| async { ApiError::NoRoute })
            .layer(middleware::from_fn_with_state(
                state.clone(),
                auth::require_login,
            ))
            .layer(middleware::map_response(security_headers))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(state)
    }

    /// Serves the UI on `listener` until `shutdown`; refuses a non-loopback address without a
    /// login ([`check_bind`]).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), WebUiError> {
        check_bind(listener.local_addr()?, self.login.as_ref()).map_err(WebUiError::Unprotected)?;
        let app = self.router(shutdown.clone());
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await?;
        Ok(())
    }
}

/// What the handlers read: shared, cheap to clone.
#[derive(Clone)]
pub(crate) struct AppState(Arc<Inner>);

pub(crate) struct Inner {
    board: Arc<StatsBoard>,
    instances: Arc<Instances>,
    store: Option<Arc<dyn Store>>,
    debugger: Option<Arc<dyn Debugger>>,
    gate: auth::Gate,
    project_files: Option<PathBuf>,
    metrics: Option<MetricsRenderer>,
    snapshot: watch::Receiver<Arc<str>>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Inner {
    /// The store, or the error saying this UI has none.
    fn store(&self) -> Result<&dyn Store, ApiError> {
        self.store.as_deref().ok_or(ApiError::NoStore)
    }
}

/// Headers of every response: the content security policy and no sniffing or framing by
/// other sites.
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(assets::CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// Keeps `board` and `instances` up to date from the events on `bus` until `shutdown`: how a
/// web UI in its own process sees the scheduler's figures and every instance.
pub async fn follow_events(
    bus: Arc<dyn Bus>,
    board: Arc<StatsBoard>,
    instances: Arc<Instances>,
    shutdown: CancellationToken,
) -> Result<(), BusError> {
    let mut events = bus.listen(events::ALL).await?;
    loop {
        let (subject, payload) = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            next = events.next() => match next {
                Some(event) => event,
                None => return Err(BusError::Closed),
            },
        };
        if subject == events::PROJECT_STATS {
            match serde_json::from_slice::<ProjectStatsEvent>(&payload) {
                Ok(stats) => board.replace_all(stats),
                Err(e) => tracing::warn!(error = %e, "unreadable project figures"),
            }
        } else if subject.starts_with(events::HEARTBEAT) {
            match serde_json::from_slice::<Heartbeat>(&payload) {
                Ok(hb) => instances.record(hb),
                Err(e) => tracing::warn!(error = %e, "unreadable heartbeat"),
            }
        }
    }
}

async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let render = state.metrics.as_ref().ok_or(ApiError::NoRoute)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(METRICS_CONTENT_TYPE),
        )],
        render().await,
    )
        .into_response())
}

async fn instances(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Json<Vec<Heartbeat>> {
    Json(state.instances.live(live::now_ms()))
}

#[cfg(test)]
mod tests;
