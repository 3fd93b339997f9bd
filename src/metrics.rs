//! Prometheus metrics of one process: what `GET /metrics` answers on a role's `--metrics`
//! port and on the web UI, in the OpenMetrics text format.
//!
//! Every name starts with `spindle_`, every sample carries the process's `role`, and the only
//! other labels have few values: the project, an outcome or error kind, a task status, a
//! queue. No label is ever a URL or a task id.
//!
//! Counters and histograms are fed by [`ObservedBus`](bus::ObservedBus), which sees every
//! message a role publishes and counts what it means for that role (a fetcher's pages, a
//! processor's items, the scheduler's dispatches), so the services carry no metrics code.
//! Gauges (in flight, queue depths, tasks by status) are read from their sources when a
//! scrape comes in ([`Metrics::render`]).

mod bus;

pub use bus::{Counted, ObservedBus};

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use spindle_common::bus::Meter;
use spindle_common::message::ErrorKind;
use spindle_common::{Bus, StatsBoard};
use tokio_util::sync::CancellationToken;

pub use spindle_web_ui::METRICS_CONTENT_TYPE;

/// Labels of a per-project series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProjectLabel {
    project: String,
}

/// Labels of a per-project series split by outcome: `ok` or an error kind (`http`, `dns`,
/// `timeout`, … as in [`ErrorKind`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    project: String,
    outcome: &'static str,
}

/// Labels of an error series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    project: String,
    kind: &'static str,
}

/// Labels of the tasks gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    project: String,
    status: &'static str,
}

/// Labels of the queue gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabel {
    queue: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Seconds from 5 ms to about 20 s.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

/// Where the gauges are read at scrape time; each is optional (a role has some of them).
#[derive(Default, Clone)]
pub struct Sources {
    /// This instance's deliveries in flight and acked.
    pub meter: Option<Arc<Meter>>,
    /// The bus whose queues are reported, with the durable names to report.
    pub queues: Option<(Arc<dyn Bus>, Vec<&'static str>)>,
    /// Project figures (the scheduler's own, or the web UI's copy from the events).
    pub board: Option<Arc<StatsBoard>>,
}

/// The metrics of one process.
pub struct Metrics {
    registry: Registry,
    sources: Sources,
    /// One scrape at a time reads the sources (two would add the same done count twice).
    scrape: tokio::sync::Mutex<()>,
    pages_fetched: Family<OutcomeLabels, Counter>,
    fetch_seconds: HistogramFamily<ProjectLabel>,
    fetched_bytes: Family<ProjectLabel, Counter>,
    pages_processed: Family<OutcomeLabels, Counter>,
    process_seconds: HistogramFamily<ProjectLabel>,
    script_seconds: HistogramFamily<ProjectLabel>,
    items_extracted: Family<ProjectLabel, Counter>,
    items_written: Family<ProjectLabel, Counter>,
    follows: Family<ProjectLabel, Counter>,
    tasks_dispatched: Family<ProjectLabel, Counter>,
    retries: Family<ProjectLabel, Counter>,
    errors: Family<ErrorLabels, Counter>,
    in_flight: Gauge,
    messages_done: Counter,
    tasks: Family<TaskLabels, Gauge>,
    queue_pending: Family<QueueLabel, Gauge>,
    queue_unacked: Family<QueueLabel, Gauge>,
}

impl Metrics {
    /// The metrics of a process of `role` (`fetcher`, `web-ui`, …), reading its gauges from
    /// `sources`.
    pub fn new(role: &'static str, sources: Sources) -> Metrics {
        let mut registry = Registry::with_prefix_and_labels(
            "spindle",
            [(Cow::Borrowed("role"), Cow::Borrowed(role))].into_iter(),
        );
        let metrics = Metrics {
            registry: Registry::default(),
            sources,
            scrape: tokio::sync::Mutex::new(()),
            pages_fetched: Family::default(),
            fetch_seconds: Family::new_with_constructor(duration_histogram),
            fetched_bytes: Family::default(),
            pages_processed: Family::default(),
            process_seconds: Family::new_with_constructor(duration_histogram),
            script_seconds: Family::new_with_constructor(duration_histogram),
            items_extracted: Family::default(),
            items_written: Family::default(),
            follows: Family::default(),
            tasks_dispatched: Family::default(),
            retries: Family::default(),
            errors: Family::default(),
            in_flight: Gauge::default(),
            messages_done: Counter::default(),
            tasks: Family::default(),
            queue_pending: Family::default(),
            queue_unacked: Family::default(),
        };
        registry.register(
            "pages_fetched",
            "Fetches finished by this fetcher, by outcome (ok, or the error kind: http for an error status)",
            metrics.pages_fetched.clone(),
        );
        registry.register_with_unit(
            "fetch_duration",
            "Time from a request's start to the end of its body (or its error)",
            Unit::Seconds,
            metrics.fetch_seconds.clone(),
        );
        registry.register_with_unit(
            "fetched",
            "Body bytes of the pages fetched (decompressed)",
            Unit::Bytes,
            metrics.fetched_bytes.clone(),
        );
        registry.register(
            "pages_processed",
            "Pages this processor ran a handler on, by outcome (ok, or process)",
            metrics.pages_processed.clone(),
        );
        registry.register_with_unit(
            "process_duration",
            "Time a handler took on a page: rules, extraction and its script hooks",
            Unit::Seconds,
            metrics.process_seconds.clone(),
        );
        registry.register_with_unit(
            "script_duration",
            "Of a handler's time on a page, the time its script hook took (pages of handlers with a script only)",
            Unit::Seconds,
            metrics.script_seconds.clone(),
        );
        registry.register(
            "items_extracted",
            "Items the handlers of this processor emitted",
            metrics.items_extracted.clone(),
        );
        registry.register(
            "items_written",
            "Items this result writer stored",
            metrics.items_written.clone(),
        );
        registry.register(
            "follows",
            "Links to follow the handlers of this processor emitted",
            metrics.follows.clone(),
        );
        registry.register(
            "tasks_dispatched",
            "Tasks the scheduler sent to the fetchers",
            metrics.tasks_dispatched.clone(),
        );
        registry.register(
            "retries",
            "Tasks the scheduler sent again after a failed attempt",
            metrics.retries.clone(),
        );
        registry.register(
            "task_errors",
            "Failed attempts seen by this role, by error kind",
            metrics.errors.clone(),
        );
        registry.register(
            "in_flight_messages",
            "Messages this instance holds: delivered, not yet acknowledged",
            metrics.in_flight.clone(),
        );
        registry.register(
            "messages_done",
            "Messages this instance finished and acknowledged since it started",
            metrics.messages_done.clone(),
        );
        registry.register(
            "tasks",
            "Tasks of a project by status (queued in the store, waiting in the scheduler's window, in flight, success, failed), as last counted",
            metrics.tasks.clone(),
        );
        registry.register(
            "queue_pending_messages",
            "Messages waiting in a role's queue on the bus",
            metrics.queue_pending.clone(),
        );
        registry.register(
            "queue_unacked_messages",
            "Messages of a role's queue delivered and not yet acknowledged",
            metrics.queue_unacked.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// The text of a scrape: the gauges read from their sources now, then every metric.
    pub async fn render(&self) -> String {
        let _one_at_a_time = self.scrape.lock().await;
        if let Some(meter) = &self.sources.meter {
            self.in_flight.set(gauge_value(meter.in_flight()));
            // A counter that follows the meter's own count.
            let done = meter.done();
            self.messages_done
                .inc_by(done.saturating_sub(self.messages_done.get()));
        }
        if let Some((bus, queues)) = &self.sources.queues {
            for &queue in queues {
                match bus.stats(queue).await {
                    Ok(stats) => {
                        let label = QueueLabel { queue };
                        self.queue_pending
                            .get_or_create(&label)
                            .set(gauge_value(stats.pending));
                        self.queue_unacked
                            .get_or_create(&label)
                            .set(gauge_value(stats.in_flight));
                    }
                    Err(e) => tracing::debug!(queue, error = %e, "queue depth not read"),
                }
            }
        }
        if let Some(board) = &self.sources.board {
            // Projects come and go: a deleted one leaves no stale series.
            self.tasks.clear();
            for (project, stats) in board.all() {
                for (status, count) in [
                    ("queued", stats.queued),
                    ("waiting", stats.waiting),
                    ("in_flight", stats.in_flight),
                    ("success", stats.total_success),
                    ("failed", stats.total_failed),
                ] {
                    self.tasks
                        .get_or_create(&TaskLabels {
                            project: project.clone(),
                            status,
                        })
                        .set(gauge_value(count));
                }
            }
        }
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            // Only a formatter error, which writing to a String does not produce.
            tracing::error!(error = %e, "metrics not encodable");
        }
        text
    }
}

/// A count as a gauge value (saturating: no count comes near `i64::MAX`).
fn gauge_value(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// The label value of an error kind.
fn kind_label(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Http => "http",
        ErrorKind::Dns => "dns",
        ErrorKind::Connect => "connect",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Redirect => "redirect",
        ErrorKind::TooBig => "too_big",
        ErrorKind::Refused => "refused",
        ErrorKind::Process => "process",
        ErrorKind::Tls => "tls",
        ErrorKind::Browser => "browser",
        ErrorKind::Robots => "robots",
        ErrorKind::Other => "other",
    }
}

impl Metrics {
    /// What the web UI's `/metrics` calls.
    pub fn renderer(self: &Arc<Self>) -> spindle_web_ui::MetricsRenderer {
        let metrics = self.clone();
        Arc::new(move || {
            let metrics = metrics.clone();
            Box::pin(async move { metrics.render().await })
        })
    }
}

/// The queues of every role (the web UI and `spindle all` report them all).
pub const ALL_QUEUES: [&str; 4] = [
    spindle_common::subject::durable::FETCHER,
    spindle_common::subject::durable::PROCESSOR,
    spindle_common::subject::durable::RESULT_WRITER,
    spindle_common::subject::durable::SCHEDULER,
];

/// A router answering `GET /metrics` with `metrics`.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(CONTENT_TYPE, METRICS_CONTENT_TYPE)],
                    metrics.render().await,
                )
                    .into_response()
            }
        }),
    )
}

/// Binds `addr` for a role's `--metrics` port (before the role starts, so a taken port is
/// an error at start-up).
pub async fn bind(addr: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for metrics on {addr}"))
}

/// Serves `metrics` on `listener` until `shutdown`.
pub async fn serve(
    metrics: Arc<Metrics>,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(addr = ?addr, "metrics on /metrics");
    axum::serve(listener, router(metrics))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

#[cfg(test)]
mod tests;
