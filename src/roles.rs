//! The distributed mode: one role per process, connected by NATS and sharing PostgreSQL.
//!
//! Each role builds its clients (bus, store, HTTP) and hands them to its service crate's
//! `run`, plus a heartbeat every [`events::HEARTBEAT_EVERY_MS`] with its in-flight count and
//! throughput (counted by a [`MeteredBus`] around the shared bus). What the role publishes is
//! counted in its Prometheus metrics by an [`ObservedBus`] around that, served on
//! `--metrics ADDR` and, for the web UI, on its own `/metrics` ([`crate::metrics`]). SIGTERM
//! or Ctrl-C cancels one token: services stop pulling, finish what they hold, and the process
//! exits 0.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use spindle_common::bus::MeteredBus;
use spindle_common::events::{self, Heartbeat};
use spindle_common::subject::durable;
use spindle_common::{Bus, Clock, StatsBoard, Store, SystemClock};
use spindle_fetcher::{Fetcher, FetcherConfig};
use spindle_nats::{NatsBus, NatsOptions};
use spindle_processor::ProcessorConfig;
use spindle_scheduler::SchedulerConfig;
use tokio_util::sync::CancellationToken;

use crate::metrics::{self, Counted, Metrics, ObservedBus};

/// Where the shared services are.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// NATS URL.
    pub nats: String,
    /// Namespace isolating this deployment on a shared NATS server.
    pub namespace: Option<String>,
    /// Database URL (`postgres://…` or `sqlite://…`); roles without state don't need one.
    pub database: Option<String>,
    /// Ack wait of this instance's consumers (default: the bus's).
    pub ack_wait: Option<Duration>,
    /// File rewritten after every heartbeat sent, for `spindle healthcheck --file`.
    pub heartbeat_file: Option<PathBuf>,
    /// Address of the Prometheus `/metrics` port (`--metrics`), if any.
    pub metrics: Option<String>,
}

/// The config file of the distributed roles (`--config`); flags and environment beat it.
#[derive(serde::Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// NATS URL.
    pub nats: Option<String>,
    /// Namespace on the NATS server.
    pub namespace: Option<String>,
    /// Database URL.
    pub database: Option<String>,
}

impl ConfigFile {
    /// Reads the file; an error names its line and column.
    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text).map_err(|e| {
            let (line, col) = e.span().map_or((1, 1), |s| {
                spindle_common::project::line_column(&text, s.start)
            });
            anyhow::anyhow!("{}:{line}:{col}: {}", path.display(), e.message())
        })
    }
}

/// One role and its settings.
#[derive(Debug, Clone)]
pub enum Role {
    /// The scheduler, optionally loading project files from a folder.
    Scheduler {
        /// Folder of project files.
        projects: Option<PathBuf>,
    },
    /// A fetcher.
    Fetcher {
        /// Fetches in flight at once.
        concurrency: usize,
    },
    /// A processor.
    Processor {
        /// Pages processed at once.
        concurrency: Option<usize>,
    },
    /// A result writer.
    ResultWriter,
    /// The web UI.
    WebUi {
        /// Where it listens and who may use it.
        ui: crate::embedded::UiOptions,
    },
}

impl Role {
    /// The role's name, as in heartbeats and the CLI.
    pub fn name(&self) -> &'static str {
        match self {
            Role::Scheduler { .. } => "scheduler",
            Role::Fetcher { .. } => "fetcher",
            Role::Processor { .. } => "processor",
            Role::ResultWriter => "result-writer",
            Role::WebUi { .. } => "web-ui",
        }
    }

    /// What this role's publishes count in the metrics.
    fn counted(&self) -> Counted {
        match self {
            Role::Scheduler { .. } => Counted::Scheduler,
            Role::Fetcher { .. } => Counted::Fetcher,
            Role::Processor { .. } => Counted::Processor,
            Role::ResultWriter => Counted::ResultWriter,
            Role::WebUi { .. } => Counted::Nothing,
        }
    }

    /// The queues this role's metrics report: its own, or every one for the web UI.
    fn queues(&self) -> Vec<&'static str> {
        match self {
            Role::Scheduler { .. } => vec![durable::SCHEDULER],
            Role::Fetcher { .. } => vec![durable::FETCHER],
            Role::Processor { .. } => vec![durable::PROCESSOR],
            Role::ResultWriter => vec![durable::RESULT_WRITER],
            Role::WebUi { .. } => metrics::ALL_QUEUES.to_vec(),
        }
    }
}

/// Connects to NATS (waiting for it up to a minute: roles may start before it).
pub async fn connect_bus(endpoints: &Endpoints, client_name: &str) -> anyhow::Result<NatsBus> {
    let mut options = NatsOptions::new(endpoints.nats.clone());
    options.namespace = endpoints.namespace.clone();
    options.client_name = Some(client_name.to_string());
    NatsBus::connect(options)
        .await
        .with_context(|| format!("cannot connect to NATS at {}", endpoints.nats))
}

/// Opens the store named by the database URL.
pub async fn connect_store(endpoints: &Endpoints) -> anyhow::Result<Arc<dyn Store>> {
    let url = endpoints
        .database
        .as_deref()
        .context("this role needs a database: pass --database or set SPINDLE_DATABASE_URL")?;
    spindle_store::connect(url)
        .await
        .context("cannot open the database")
}

/// `spindle scheduler|fetcher|processor|result-writer|web-ui`: runs `role` until SIGTERM or
/// Ctrl-C.
pub async fn command(role: Role, endpoints: Endpoints) -> anyhow::Result<ExitCode> {
    let stop = CancellationToken::new();
    let signal_stop = stop.clone();
    tokio::spawn(async move {
        crate::shutdown::signal().await;
        tracing::info!("stopping");
        signal_stop.cancel();
    });
    run(role, endpoints, stop).await?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `role` until `shutdown` is cancelled.
pub async fn run(
    role: Role,
    endpoints: Endpoints,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let id = events::instance_id(role.name());
    // Bound first, so a port in use stops the role at once.
    let metrics_listener = match &endpoints.metrics {
        Some(addr) => Some(metrics::bind(addr).await?),
        None => None,
    };
    let nats = connect_bus(&endpoints, &id).await?;
    let metered = MeteredBus::new(Arc::new(nats.clone())).with_ack_wait(endpoints.ack_wait);
    let meter = metered.meter();
    // The scheduler's figures, or the web UI's copy of them from the events.
    let board = Arc::new(StatsBoard::new());
    let has_board = matches!(role, Role::Scheduler { .. } | Role::WebUi { .. });
    let metrics = Arc::new(Metrics::new(
        role.name(),
        metrics::Sources {
            meter: Some(meter.clone()),
            queues: Some((Arc::new(nats.clone()), role.queues())),
            board: has_board.then(|| board.clone()),
        },
    ));
    if let Some(listener) = metrics_listener {
        let (metrics, stop) = (metrics.clone(), shutdown.clone());
        tokio::spawn(async move {
            if let Err(e) = metrics::serve(metrics, listener, stop).await {
                tracing::error!(error = %e, "the metrics port stopped");
            }
        });
    }
    let bus: Arc<dyn Bus> = Arc::new(ObservedBus::new(
        Arc::new(metered.clone()),
        metrics.clone(),
        role.counted(),
    ));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let beat = tokio::spawn(crate::heartbeat::send_every_period(
        bus.clone(),
        meter.clone(),
        (role.name(), id),
        endpoints.heartbeat_file.clone(),
        shutdown.clone(),
    ));
    let role_name = role.name();
    let result = match role {
        Role::Scheduler { projects } => {
            let store = connect_store(&endpoints).await?;
            if let Some(dir) = projects {
                crate::projects_dir::load_and_watch(
                    dir,
                    store.clone(),
                    clock.clone(),
                    shutdown.clone(),
                )
                .await;
            }
            tokio::spawn(publish_figures(
                bus.clone(),
                board.clone(),
                shutdown.clone(),
            ));
            until_lasting_error(
                "scheduler",
                &shutdown,
                || {
                    spindle_scheduler::run(
                        SchedulerConfig::default(),
                        bus.clone(),
                        store.clone(),
                        clock.clone(),
                        board.clone(),
                        shutdown.clone(),
                    )
                },
                spindle_scheduler::SchedulerError::is_transient,
            )
            .await
            .context("scheduler stopped")
        }
        Role::Fetcher { concurrency } => {
            let config = FetcherConfig {
                concurrency,
                ..FetcherConfig::default()
            };
            let fetcher = Arc::new(Fetcher::new(&config).context("cannot build the HTTP client")?);
            spindle_fetcher::run(fetcher, config, bus.clone(), shutdown.clone())
                .await
                .context("fetcher stopped")
        }
        Role::Processor { concurrency } => {
            let store = connect_store(&endpoints).await?;
            let mut config = ProcessorConfig::default();
            if let Some(n) = concurrency {
                config.concurrency = n;
            }
            spindle_processor::run(config, bus.clone(), store, shutdown.clone())
                .await
                .context("processor stopped")
        }
        Role::ResultWriter => {
            let store = connect_store(&endpoints).await?;
            until_lasting_error(
                "result writer",
                &shutdown,
                || {
                    spindle_processor::result_writer::run(
                        bus.clone(),
                        store.clone(),
                        clock.clone(),
                        shutdown.clone(),
                    )
                },
                spindle_processor::result_writer::ResultWriterError::is_transient,
            )
            .await
            .context("result writer stopped")
        }
        Role::WebUi { ui } => {
            let listener = crate::embedded::bind_ui(&ui).await?;
            let mut web = spindle_web_ui::WebUi::new(board, spindle_web_ui::Mode::Distributed)
                .bus(bus.clone())
                .metrics(metrics.renderer())
                .debugger(Arc::new(crate::debug::EditorDebugger))
                .login(ui.login)
                .session_secret(ui.session_secret);
            // With a database the UI also shows and changes projects, tasks and results.
            match endpoints.database {
                Some(_) => web = web.store(connect_store(&endpoints).await?),
                None => tracing::warn!(
                    "no database (--database / SPINDLE_DATABASE_URL): the web UI shows figures but cannot show or change projects, tasks and results"
                ),
            }
            tracing::info!("web UI on http://{}", listener.local_addr()?);
            web.serve(listener, shutdown.clone())
                .await
                .context("web UI stopped")
        }
    };
    shutdown.cancel();
    beat.await.ok();
    tracing::info!(role = role_name, done = meter.done(), "stopped");
    // Acks and publishes still in the client's buffer go out before the process ends.
    nats.flush().await.ok();
    result
}

/// Runs a role's service, and runs it again after an error that `transient` says may pass (the
/// database restarting, say) instead of ending the process: the service starts from what the
/// store holds, as after a restart of the process, and what it had not acknowledged is
/// delivered again. Any other error, or a shutdown, ends it.
pub(crate) async fn until_lasting_error<F, Fut, E>(
    name: &str,
    shutdown: &CancellationToken,
    mut service: F,
    transient: fn(&E) -> bool,
) -> Result<(), E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    /// Pause before running the service again.
    const PAUSE: Duration = Duration::from_secs(1);
    loop {
        match service().await {
            Err(e) if transient(&e) && !shutdown.is_cancelled() => {
                tracing::warn!(role = name, error = %e, "the database is unreachable; starting again in 1 s");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(PAUSE) => {}
                }
            }
            result => return result,
        }
    }
}

/// Sends the scheduler's project figures every second until `shutdown`.
async fn publish_figures(bus: Arc<dyn Bus>, board: Arc<StatsBoard>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Ok(payload) = serde_json::to_vec(&board.all())
            && let Err(e) = bus.broadcast(events::PROJECT_STATS, payload).await
        {
            tracing::debug!(error = %e, "project figures not sent");
        }
    }
}

/// `spindle status`: prints [`status`].
pub async fn status_command(endpoints: &Endpoints) -> anyhow::Result<ExitCode> {
    print!("{}", status(endpoints).await?);
    Ok(ExitCode::SUCCESS)
}

/// What `spindle status` prints: live instances and the queue of each role.
pub async fn status(endpoints: &Endpoints) -> anyhow::Result<String> {
    use futures::StreamExt;
    use std::fmt::Write;
    let bus = connect_bus(endpoints, "spindle-status").await?;
    let mut heartbeats = bus.listen(&format!("{}.>", events::HEARTBEAT)).await?;
    let mut seen = std::collections::BTreeMap::new();
    let listen_for = Duration::from_millis(events::HEARTBEAT_EVERY_MS as u64 + 500);
    let _ = tokio::time::timeout(listen_for, async {
        while let Some((_, payload)) = heartbeats.next().await {
            if let Ok(hb) = serde_json::from_slice::<Heartbeat>(&payload) {
                seen.insert(hb.id.clone(), hb);
            }
        }
    })
    .await;
    let mut out = String::new();
    writeln!(
        out,
        "{:<40} {:<14} {:<8} {:>9} {:>10} {:>8}",
        "INSTANCE", "ROLE", "VERSION", "IN FLIGHT", "DONE", "PER S"
    )?;
    for hb in seen.values() {
        writeln!(
            out,
            "{:<40} {:<14} {:<8} {:>9} {:>10} {:>8.1}",
            hb.id, hb.role, hb.version, hb.in_flight, hb.done, hb.per_second
        )?;
    }
    writeln!(
        out,
        "\n{:<20} {:>9} {:>10}",
        "QUEUE", "PENDING", "IN FLIGHT"
    )?;
    for name in [
        durable::FETCHER,
        durable::PROCESSOR,
        durable::RESULT_WRITER,
        durable::SCHEDULER,
    ] {
        let stats = bus.stats(name).await?;
        writeln!(
            out,
            "{name:<20} {:>9} {:>10}",
            stats.pending, stats.in_flight
        )?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_file_is_read_and_its_errors_are_placed() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("spindle.toml");
        std::fs::write(&path, "nats = \"nats://n:4222\"\nnamespace = \"prod\"\n").expect("write");
        let file = ConfigFile::load(&path).expect("valid");
        assert_eq!(file.nats.as_deref(), Some("nats://n:4222"));
        assert_eq!(file.namespace.as_deref(), Some("prod"));
        assert_eq!(file.database, None);

        std::fs::write(&path, "nats = \"n\"\ndatabse = \"x\"\n").expect("write");
        let err = ConfigFile::load(&path)
            .expect_err("unknown key")
            .to_string();
        assert!(
            err.contains("spindle.toml:2:1: unknown field `databse`"),
            "{err}"
        );
    }
}
