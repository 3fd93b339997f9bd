//! Live figures: one snapshot a second for every open page.
//!
//! ```text
//! GET /api/live       server-sent events: `snapshot` at once, then every second
//! GET /api/snapshot   the latest snapshot
//! ```
//!
//! A single task (the pulse) builds the snapshot once a second from what this process already
//! holds (the scheduler's figures on the [`StatsBoard`], the instances' heartbeats, the bus's
//! queue depths) plus the project list, read from the store every other second; every client
//! gets the same serialized text. So a hundred open dashboards cost what one does, and none of
//! them queries the database.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures::Stream;
use serde::Serialize;
use spindle_common::events::Heartbeat;
use spindle_common::stats::{ProjectStats, WindowCounts};
use spindle_common::store::{ProjectRecord, ProjectStatus};
use spindle_common::subject::durable;
use spindle_common::{Bus, StatsBoard, Store};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{AppState, Instances};

/// How often the snapshot is rebuilt.
const EVERY: Duration = Duration::from_secs(1);
/// Minutes shown by the throughput chart.
const CHART_MINUTES: i64 = 60;

/// Which way the roles run, shown on the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every role in this process (`spindle all`).
    Embedded,
    /// Roles in their own processes (`spindle web-ui`).
    Distributed,
}

/// Everything the dashboard shows, at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// When it was built (Unix ms).
    pub at_ms: i64,
    /// Embedded or distributed.
    pub mode: Mode,
    /// Every status a project can be set to, in the order the dashboard lists and sorts
    /// them ([`ProjectStatus::ALL`]).
    pub statuses: &'static [ProjectStatus],
    /// One row per project, by name.
    pub projects: Vec<ProjectRow>,
    /// The queue in front of each stage.
    pub queues: Vec<QueueRow>,
    /// Live instances of every role.
    pub instances: Vec<Heartbeat>,
    /// Pages and errors per minute of every project over the last hour.
    pub throughput: Throughput,
}

/// A project on the dashboard.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProjectRow {
    /// Name.
    pub name: String,
    /// Group label.
    pub group: Option<String>,
    /// Stored status (the scheduler's, for a project the store does not list).
    pub status: ProjectStatus,
    /// The scheduler dispatches its tasks ([`ProjectStatus::dispatches`]): the dashboard
    /// counts it as running.
    pub dispatches: bool,
    /// Held by the scheduler after failures in a row (shown PAUSED).
    pub paused: bool,
    /// Requests per second.
    pub rate: f64,
    /// Token bucket size.
    pub burst: f64,
    /// Average fetch time (ms) in this run.
    pub avg_fetch_ms: f64,
    /// Average processing time (ms) in this run.
    pub avg_process_ms: f64,
    /// Outcomes by window: `5m`, `1h`, `1d` and `all`.
    pub progress: BTreeMap<&'static str, Progress>,
    /// Active tasks waiting in the store.
    pub queued: u64,
    /// Claimed, in the scheduler's window.
    pub waiting: u64,
    /// Sent and not yet answered.
    pub in_flight: u64,
    /// Items in this run.
    pub items: u64,
    /// Nothing ready, delayed or in flight.
    pub finished: bool,
}

/// One stacked progress bar.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Progress {
    /// Newly queued in the window; for `all`, active tasks.
    pub pending: u64,
    /// Done.
    pub success: u64,
    /// Failed attempts to be retried (0 for `all`).
    pub retry: u64,
    /// Given up.
    pub failed: u64,
}

impl From<WindowCounts> for Progress {
    fn from(w: WindowCounts) -> Self {
        Progress {
            pending: w.pending,
            success: w.success,
            retry: w.retry,
            failed: w.failed,
        }
    }
}

/// The queue in front of one stage.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QueueRow {
    /// `fetch`, `process`, `result` or `scheduler`.
    pub stage: &'static str,
    /// Where messages go, e.g. "scheduler → fetcher".
    pub label: &'static str,
    /// Messages waiting (stored messages: on NATS a bundle of small ones counts once).
    pub pending: u64,
    /// Delivered and not yet acknowledged.
    pub in_flight: u64,
    /// Messages the stage's consumers acknowledge per second (from their heartbeats).
    pub per_second: f64,
}

/// Per-minute sums of every project, oldest first.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Throughput {
    /// Start of each minute (Unix ms).
    pub minute_ms: Vec<i64>,
    /// Tasks done in that minute.
    pub pages: Vec<u64>,
    /// Failed attempts in that minute.
    pub errors: Vec<u64>,
}

/// The stages in pipeline order: stage, label, durable consumer, role that consumes it.
const STAGES: [(&str, &str, &str, &str); 4] = [
    ("fetch", "scheduler → fetcher", durable::FETCHER, "fetcher"),
    (
        "process",
        "fetcher → processor",
        durable::PROCESSOR,
        "processor",
    ),
    (
        "result",
        "processor → result writer",
        durable::RESULT_WRITER,
        "result-writer",
    ),
    (
        "scheduler",
        "back to the scheduler",
        durable::SCHEDULER,
        "scheduler",
    ),
];

/// What the pulse reads.
pub(crate) struct Sources {
    pub board: Arc<StatsBoard>,
    pub instances: Arc<Instances>,
    pub store: Option<Arc<dyn Store>>,
    pub bus: Option<Arc<dyn Bus>>,
    pub mode: Mode,
}

/// Builds a snapshot every second until `shutdown`, publishing it on `out`.
pub(crate) async fn pulse(
    sources: Sources,
    out: watch::Sender<Arc<str>>,
    shutdown: CancellationToken,
) {
    let mut records: Vec<ProjectRecord> = Vec::new();
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Some(store) = &sources.store {
            match store.projects().await {
                Ok(r) => records = r,
                Err(e) => tracing::warn!(error = %e, "web UI: cannot list projects"),
            }
        }
        let snapshot = build(&sources, &records, now_ms()).await;
        match serde_json::to_string(&snapshot) {
            Ok(text) => {
                out.send_replace(text.into());
            }
            Err(e) => tracing::error!(error = %e, "web UI: snapshot not encodable"),
        }
    }
}

/// One snapshot of `sources`, with the project settings of `records`.
pub(crate) async fn build(sources: &Sources, records: &[ProjectRecord], now: i64) -> Snapshot {
    let stats = sources.board.all();
    let instances = sources.instances.live(now);
    let mut queues = Vec::with_capacity(STAGES.len());
    if let Some(bus) = &sources.bus {
        for (stage, label, durable, role) in STAGES {
            let Ok(depth) = bus.stats(durable).await else {
                continue;
            };
            let per_second = instances
                .iter()
                .filter(|i| i.role == role)
                .map(|i| i.per_second)
                .sum();
            queues.push(QueueRow {
                stage,
                label,
                pending: depth.pending,
                in_flight: depth.in_flight,
                per_second,
            });
        }
    }
    Snapshot {
        at_ms: now,
        mode: sources.mode,
        statuses: &ProjectStatus::ALL,
        projects: project_rows(records, &stats),
        queues,
        instances,
        throughput: throughput(&stats, now),
    }
}

/// Rows of every project the store or the scheduler knows: the stored settings, the
/// scheduler's figures.
pub(crate) fn project_rows(
    records: &[ProjectRecord],
    stats: &BTreeMap<String, ProjectStats>,
) -> Vec<ProjectRow> {
    let by_name: BTreeMap<&str, &ProjectRecord> =
        records.iter().map(|r| (r.name.as_str(), r)).collect();
    let names: BTreeSet<&str> = by_name
        .keys()
        .copied()
        .chain(stats.keys().map(String::as_str))
        .collect();
    let none = ProjectStats::default();
    names
        .into_iter()
        .map(|name| {
            let s = stats.get(name).unwrap_or(&none);
            let record = by_name.get(name);
            let status = record.map_or(s.status, |r| r.status);
            let progress = BTreeMap::from([
                ("5m", Progress::from(s.windows.m5)),
                ("1h", Progress::from(s.windows.h1)),
                ("1d", Progress::from(s.windows.d1)),
                (
                    "all",
                    Progress {
                        pending: s.queued + s.waiting + s.in_flight,
                        success: s.total_success,
                        retry: 0,
                        failed: s.total_failed,
                    },
                ),
            ]);
            ProjectRow {
                name: name.to_string(),
                group: record.map_or_else(|| s.group.clone(), |r| r.group.clone()),
                status,
                dispatches: status.dispatches(),
                paused: s.paused,
                rate: record.map_or(s.rate, |r| r.rate),
                burst: record.map_or(s.burst, |r| r.burst),
                avg_fetch_ms: s.avg_fetch_ms,
                avg_process_ms: s.avg_process_ms,
                progress,
                queued: s.queued,
                waiting: s.waiting,
                in_flight: s.in_flight,
                items: s.items,
                finished: s.finished,
            }
        })
        .collect()
}

/// Every project's minutes summed, one entry per minute of the last hour.
fn throughput(stats: &BTreeMap<String, ProjectStats>, now: i64) -> Throughput {
    let this_minute = now.div_euclid(60_000) * 60_000;
    let first = this_minute - (CHART_MINUTES - 1) * 60_000;
    let mut out = Throughput::default();
    for i in 0..CHART_MINUTES {
        out.minute_ms.push(first + i * 60_000);
    }
    out.pages = vec![0; CHART_MINUTES as usize];
    out.errors = vec![0; CHART_MINUTES as usize];
    for minute in stats.values().flat_map(|s| &s.minutes) {
        let i = (minute.minute_ms - first).div_euclid(60_000);
        if (0..CHART_MINUTES).contains(&i) {
            out.pages[i as usize] += minute.pages;
            out.errors[i as usize] += minute.errors;
        }
    }
    out
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The live routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/live", get(live))
        .route("/api/snapshot", get(snapshot))
}

async fn snapshot(State(state): State<AppState>) -> impl IntoResponse {
    let text = state.snapshot.borrow().clone();
    (
        [(header::CONTENT_TYPE, "application/json")],
        text.to_string(),
    )
}

async fn live(State(state): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut updates = state.snapshot.clone();
    // The latest at once, then each new one.
    updates.mark_changed();
    let stream = futures::stream::unfold(updates, |mut updates| async move {
        updates.changed().await.ok()?;
        let text = updates.borrow_and_update().clone();
        Some((Ok(Event::default().event("snapshot").data(&*text)), updates))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use spindle_common::stats::{MinuteCounts, Windows};

    fn record(name: &str, status: ProjectStatus) -> ProjectRecord {
        ProjectRecord {
            name: name.into(),
            definition: String::new(),
            status,
            rate: 2.0,
            burst: 4.0,
            group: Some("g".into()),
            updated_ms: 0,
            last_start_ms: 0,
            run_requested_ms: 0,
            origin: None,
        }
    }

    #[test]
    fn rows_join_stored_settings_and_live_figures() {
        let mut stats = BTreeMap::new();
        stats.insert(
            "a".to_string(),
            ProjectStats {
                status: ProjectStatus::Running,
                paused: true,
                queued: 5,
                waiting: 2,
                in_flight: 1,
                total_success: 10,
                total_failed: 3,
                windows: Windows {
                    m5: WindowCounts {
                        pending: 4,
                        success: 3,
                        failed: 1,
                        retry: 2,
                    },
                    ..Windows::default()
                },
                ..ProjectStats::default()
            },
        );
        stats.insert(
            "only-live".to_string(),
            ProjectStats {
                status: ProjectStatus::Debug,
                ..ProjectStats::default()
            },
        );
        let rows = project_rows(
            &[
                record("a", ProjectStatus::Running),
                record("b", ProjectStatus::Stop),
            ],
            &stats,
        );
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "only-live"]);
        let a = &rows[0];
        assert_eq!(
            (a.status, a.dispatches, a.paused),
            (ProjectStatus::Running, true, true)
        );
        let b = &rows[1];
        assert_eq!(
            (b.status, b.dispatches, b.paused),
            (ProjectStatus::Stop, false, false)
        );
        let live = &rows[2];
        assert_eq!(
            (live.status, live.dispatches),
            (ProjectStatus::Debug, true),
            "a project only the scheduler knows shows the scheduler's status"
        );
        let json = serde_json::to_value(a).expect("encode");
        assert_eq!(
            (&json["status"], &json["dispatches"], &json["paused"]),
            (&"RUNNING".into(), &true.into(), &true.into())
        );
        assert_eq!((a.rate, a.burst, a.group.as_deref()), (2.0, 4.0, Some("g")));
        assert_eq!(
            a.progress["5m"],
            Progress {
                pending: 4,
                success: 3,
                retry: 2,
                failed: 1
            }
        );
        assert_eq!(
            a.progress["all"],
            Progress {
                pending: 8,
                success: 10,
                retry: 0,
                failed: 3
            }
        );
        assert_eq!(rows[1].progress["all"], Progress::default());
    }

    #[tokio::test]
    async fn the_snapshot_lists_the_statuses_in_menu_order() {
        let sources = Sources {
            board: Arc::new(StatsBoard::new()),
            instances: Arc::new(Instances::default()),
            store: None,
            bus: None,
            mode: Mode::Embedded,
        };
        let snapshot = build(&sources, &[record("a", ProjectStatus::Checking)], 0).await;
        let json = serde_json::to_value(&snapshot).expect("encode");
        assert_eq!(
            json["statuses"],
            serde_json::json!(["TODO", "STOP", "CHECKING", "DEBUG", "RUNNING"])
        );
        assert_eq!(
            (
                &json["projects"][0]["status"],
                &json["projects"][0]["dispatches"]
            ),
            (&"CHECKING".into(), &false.into())
        );
    }

    #[test]
    fn throughput_sums_projects_by_minute_over_the_last_hour() {
        let now = 1_000 * 60_000 + 30_000;
        let minute = |m: i64, pages, errors| MinuteCounts {
            minute_ms: m * 60_000,
            pages,
            errors,
        };
        let mut stats = BTreeMap::new();
        stats.insert(
            "a".to_string(),
            ProjectStats {
                minutes: vec![minute(900, 7, 7), minute(990, 5, 1), minute(1_000, 2, 0)],
                ..ProjectStats::default()
            },
        );
        stats.insert(
            "b".to_string(),
            ProjectStats {
                minutes: vec![minute(1_000, 3, 1)],
                ..ProjectStats::default()
            },
        );
        let t = throughput(&stats, now);
        assert_eq!(t.minute_ms.len(), 60);
        assert_eq!(*t.minute_ms.last().expect("minutes"), 1_000 * 60_000);
        assert_eq!((t.pages[59], t.errors[59]), (5, 1));
        assert_eq!((t.pages[49], t.errors[49]), (5, 1));
        assert_eq!(
            t.pages.iter().sum::<u64>(),
            10,
            "minute 900 is older than an hour"
        );
    }
}
