//! Spindle's web UI: the project list with live figures, and its JSON API.
//!
//! A page that lists every project with its counters (refreshing itself every second) and
//! `GET /api/projects`, with buttons to run a project now, start or stop it and delete it
//! (module `control` has the `POST`/`DELETE` endpoints they call), and a debugger page that
//! runs one step of an edited project (module `debugger`). Saving an edited project and task
//! views are not built yet (see the README).

mod control;
mod debugger;

pub use debugger::Debugger;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::extract::State;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;
use spindle_common::events::{self, Heartbeat, ProjectStatsEvent};
use spindle_common::{Bus, BusError, StatsBoard, Store};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

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

/// What the handlers read.
#[derive(Clone)]
struct AppState {
    board: Arc<StatsBoard>,
    instances: Arc<Instances>,
    /// Where projects are changed; without it the control endpoints answer 503.
    store: Option<Arc<dyn Store>>,
    /// Runs the debugger's steps; without it `POST /api/debug` answers 503.
    debugger: Option<Arc<dyn Debugger>>,
}

/// The router, separate from serving so tests drive it without a socket. Without a `store`
/// the UI only shows figures; without a `debugger` the debugger page cannot run steps.
pub fn app(
    board: Arc<StatsBoard>,
    instances: Arc<Instances>,
    store: Option<Arc<dyn Store>>,
    debugger: Option<Arc<dyn Debugger>>,
) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/api/projects", get(projects))
        .route("/api/instances", get(instances_api))
        .route("/healthz", get(|| async { "ok" }))
        .merge(control::router())
        .merge(debugger::router())
        .with_state(AppState {
            board,
            instances,
            store,
            debugger,
        })
}

/// Serves the UI on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    board: Arc<StatsBoard>,
    instances: Arc<Instances>,
    store: Option<Arc<dyn Store>>,
    debugger: Option<Arc<dyn Debugger>>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, app(board, instances, store, debugger))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
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

async fn projects(State(state): State<AppState>) -> impl IntoResponse {
    Json(state.board.all())
}

async fn instances_api(State(state): State<AppState>) -> impl IntoResponse {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Json(state.instances.live(now))
}

async fn index() -> Html<&'static str> {
    Html(include_str!("index.html"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    #[tokio::test]
    async fn api_lists_projects_with_their_figures() {
        let board = Arc::new(StatsBoard::new());
        board.update("books", |s| {
            s.status = "RUNNING".into();
            s.success = 7;
        });
        let response = app(board, Arc::default(), None, None)
            .oneshot(
                Request::get("/api/projects")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["books"]["success"], 7);
        assert_eq!(json["books"]["status"], "RUNNING");
    }

    #[tokio::test]
    async fn events_feed_the_board_and_the_instance_list() {
        use spindle_common::bus::MemoryBus;
        let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
        let (board, instances) = (Arc::new(StatsBoard::new()), Arc::new(Instances::default()));
        let stop = CancellationToken::new();
        let follower = tokio::spawn(follow_events(
            bus.clone(),
            board.clone(),
            instances.clone(),
            stop.clone(),
        ));
        let hb = Heartbeat {
            id: "fetcher-1".into(),
            role: "fetcher".into(),
            version: "0".into(),
            in_flight: 3,
            done: 10,
            per_second: 5.0,
            started_ms: 0,
            at_ms: 1_000,
        };
        let mut stats = ProjectStatsEvent::new();
        stats.insert("books".into(), Default::default());
        // The follower may not be listening yet: send until both arrive.
        for _ in 0..100 {
            bus.broadcast(&hb.subject(), serde_json::to_vec(&hb).expect("json"))
                .await
                .expect("send");
            bus.broadcast(
                events::PROJECT_STATS,
                serde_json::to_vec(&stats).expect("json"),
            )
            .await
            .expect("send");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            if board.get("books").is_some() && !instances.live(1_000).is_empty() {
                break;
            }
        }
        assert!(board.get("books").is_some());
        assert_eq!(instances.live(1_000)[0].in_flight, 3);
        assert!(
            instances.live(1_000 + 7_000).is_empty(),
            "silent instances are forgotten"
        );
        stop.cancel();
        follower.await.expect("join").expect("clean end");
    }

    #[tokio::test]
    async fn index_page_loads_the_api() {
        let board = Arc::new(StatsBoard::new());
        let response = app(board, Arc::default(), None, None)
            .oneshot(Request::get("/").body(Body::empty()).expect("request"))
            .await
            .expect("response");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        let html = String::from_utf8(body.to_vec()).expect("utf-8");
        assert!(html.contains("/api/projects"));
        for control in ["/run", "/status", "'DELETE'", "confirm("] {
            assert!(html.contains(control), "the page has its {control} button");
        }
    }
}
