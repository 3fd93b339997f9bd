//! The embedded mode: every role in one process, on the in-process bus and a SQLite store.

use crate::roles::until_lasting_error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use spindle_common::bus::{MemoryBus, MeteredBus};
use spindle_common::cpu::{CpuStage, metered};
use spindle_common::events;
use spindle_common::store::{ProjectRecord, ProjectStatus};
use spindle_common::subject::durable;
use spindle_common::{Bus, Clock, Project, StatsBoard, Store, SystemClock};
use spindle_fetcher::{Fetcher, FetcherConfig};
use spindle_processor::ProcessorConfig;
use spindle_scheduler::SchedulerConfig;
use spindle_store::SqliteStore;
use tokio::task::JoinSet;

use crate::metrics::{Counted, ObservedBus};
use tokio_util::sync::CancellationToken;

/// Name of the database file inside a data folder.
pub const DB_FILE: &str = "spindle.db";

/// Tuning of an embedded run.
#[derive(Debug, Clone, Default)]
pub struct EmbeddedConfig {
    /// Scheduler settings.
    pub scheduler: SchedulerConfig,
    /// Fetcher settings.
    pub fetcher: FetcherConfig,
    /// Processor settings.
    pub processor: ProcessorConfig,
}

/// The running roles of an embedded Spindle.
pub struct Embedded {
    /// The bus connecting the roles.
    pub bus: Arc<dyn Bus>,
    /// The in-process bus, closed on stop; `None` when the roles share an outside bus.
    memory: Option<MemoryBus>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// Live figures.
    pub board: Arc<StatsBoard>,
    /// Prometheus metrics of every role of this process (role label `all`).
    pub metrics: Arc<crate::metrics::Metrics>,
    shutdown: CancellationToken,
    roles: JoinSet<anyhow::Result<()>>,
}

/// Opens the SQLite store of a data folder, creating the folder if needed.
pub async fn open_store(data: &Path) -> anyhow::Result<Arc<dyn Store>> {
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create data folder {}", data.display()))?;
    let path = data.join(DB_FILE);
    let store = SqliteStore::open(&path)
        .await
        .with_context(|| format!("cannot open database {}", path.display()))?;
    Ok(Arc::new(store))
}

/// Opens the store named by `database`, or else the SQLite store of the data folder `data`,
/// which must already hold one: commands that read or change what a crawl stored (`export`,
/// `project`) refuse a mistyped `--data` instead of creating an empty database there.
pub async fn open_existing_store(
    data: &Path,
    database: Option<&str>,
) -> anyhow::Result<Arc<dyn Store>> {
    match database {
        Some(url) => Ok(spindle_store::connect(url).await?),
        None => {
            let path = data.join(DB_FILE);
            anyhow::ensure!(path.exists(), "no database at {}", path.display());
            open_store(data).await
        }
    }
}

/// The stored form of a project file, as new: never started, and from no file (`origin`
/// None; the projects folder sets it).
pub fn project_record(project: &Project, now_ms: i64) -> ProjectRecord {
    ProjectRecord {
        name: project.name.clone(),
        definition: project.source.clone(),
        status: project.status.unwrap_or(ProjectStatus::Running),
        rate: project.rate,
        burst: project.burst,
        group: project.group.clone(),
        updated_ms: now_ms,
        last_start_ms: 0,
        run_requested_ms: 0,
        origin: None,
    }
}

/// Who may use the web UI of `spindle all` or `spindle web-ui`, and where it listens.
#[derive(Debug, Clone)]
pub struct UiOptions {
    /// Address to listen on.
    pub bind: String,
    /// Required login; `None` serves only on a loopback address.
    pub login: Option<spindle_web_ui::Login>,
    /// Key that signs sessions (several UIs behind one address share it).
    pub session_secret: Option<Vec<u8>>,
}

/// Binds the web UI's address, refusing a non-loopback one without a login before anything
/// else starts.
pub async fn bind_ui(ui: &UiOptions) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(&ui.bind)
        .await
        .with_context(|| format!("cannot listen on {}", ui.bind))?;
    spindle_web_ui::check_bind(listener.local_addr()?, ui.login.as_ref())
        .map_err(anyhow::Error::msg)?;
    Ok(listener)
}

/// `spindle all`: the embedded loop on the SQLite file in `data`, the project files of
/// `projects` loaded and watched, and the web UI, until `stop_signal` or a role fails.
pub async fn run_all(
    data: &Path,
    config: EmbeddedConfig,
    projects: Option<PathBuf>,
    ui: UiOptions,
    stop_signal: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let listener = bind_ui(&ui).await?;
    let store = open_store(data).await?;
    let stop_watching = CancellationToken::new();
    let watcher = match &projects {
        Some(dir) => Some(
            crate::projects_dir::load_and_watch(
                dir.clone(),
                store.clone(),
                Arc::new(SystemClock),
                stop_watching.clone(),
            )
            .await,
        ),
        None => None,
    };
    let mut run = Embedded::start(store.clone(), config).await?;
    let stop = run.shutdown_token();
    tracing::info!("web UI on http://{}", listener.local_addr()?);
    let web = spindle_web_ui::WebUi::new(run.board.clone(), spindle_web_ui::Mode::Embedded)
        .store(store.clone())
        .bus(run.bus.clone())
        .debugger(Arc::new(crate::debug::EditorDebugger))
        .login(ui.login)
        .session_secret(ui.session_secret)
        .project_files(projects)
        .metrics(run.metrics.renderer());
    let ui = tokio::spawn(web.serve(listener, stop.clone()));
    let result = tokio::select! {
        _ = stop_signal => {
            tracing::info!("stopping");
            Ok(())
        }
        e = run.failed() => Err(e),
    };
    run.stop().await?;
    stop_watching.cancel();
    if let Some(w) = watcher {
        w.await?;
    }
    ui.await??;
    result
}

/// `spindle all`: [`run_all`] with `concurrency` fetches in flight at most, until Ctrl-C or
/// SIGTERM.
pub async fn command(
    data: &Path,
    projects: Option<PathBuf>,
    ui: UiOptions,
    concurrency: usize,
) -> anyhow::Result<ExitCode> {
    let mut config = EmbeddedConfig::default();
    config.fetcher.concurrency = concurrency;
    run_all(data, config, projects, ui, crate::shutdown::signal()).await?;
    Ok(ExitCode::SUCCESS)
}

impl Embedded {
    /// Starts scheduler, fetcher, processor and result writer on `store` and the in-process bus.
    pub async fn start(store: Arc<dyn Store>, config: EmbeddedConfig) -> anyhow::Result<Self> {
        let memory = MemoryBus::new();
        let mut run = Self::start_on(Arc::new(memory.clone()), store, config).await?;
        run.memory = Some(memory);
        Ok(run)
    }

    /// Starts every role in this process on the given bus and store: the embedded loop on
    /// NATS and PostgreSQL, which is how the end-to-end tests run on both backends.
    pub async fn start_on(
        bus: Arc<dyn Bus>,
        store: Arc<dyn Store>,
        config: EmbeddedConfig,
    ) -> anyhow::Result<Self> {
        let board = Arc::new(StatsBoard::new());
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let shutdown = CancellationToken::new();
        let fetcher =
            Arc::new(Fetcher::new(&config.fetcher).context("cannot build the HTTP client")?);
        let mut roles = JoinSet::new();
        let metrics = Arc::new(crate::metrics::Metrics::new(
            "all",
            crate::metrics::Sources {
                meter: None,
                queues: Some((bus.clone(), crate::metrics::ALL_QUEUES.to_vec())),
                board: Some(board.clone()),
            },
        ));
        // Each role sees the bus through a meter of its own and sends heartbeats, like the
        // distributed roles, so the web UI lists the in-process roles too; what it publishes
        // is counted in the metrics.
        let role_bus = |role: &'static str, counted: Counted| -> Arc<dyn Bus> {
            let observed: Arc<dyn Bus> =
                Arc::new(ObservedBus::new(bus.clone(), metrics.clone(), counted));
            let metered = MeteredBus::new(observed);
            tokio::spawn(crate::heartbeat::send_every_period(
                bus.clone(),
                metered.meter(),
                (role, events::instance_id(role)),
                None,
                shutdown.clone(),
            ));
            Arc::new(metered)
        };
        roles.spawn({
            let (bus, store, clock, board, stop) = (
                role_bus("scheduler", Counted::Scheduler),
                store.clone(),
                clock.clone(),
                board.clone(),
                shutdown.clone(),
            );
            metered(CpuStage::Schedule, async move {
                let scheduler = || {
                    let (bus, store, clock) = (bus.clone(), store.clone(), clock.clone());
                    spindle_scheduler::run(
                        config.scheduler.clone(),
                        bus,
                        store,
                        clock,
                        board.clone(),
                        stop.clone(),
                    )
                };
                let transient = spindle_scheduler::SchedulerError::is_transient;
                until_lasting_error("scheduler", &stop, scheduler, transient)
                    .await
                    .context("scheduler stopped")
            })
        });
        roles.spawn({
            let (bus, stop) = (role_bus("fetcher", Counted::Fetcher), shutdown.clone());
            metered(CpuStage::Fetch, async move {
                spindle_fetcher::run(fetcher, config.fetcher, bus, stop)
                    .await
                    .context("fetcher stopped")
            })
        });
        roles.spawn({
            let (bus, store, stop) = (
                role_bus("processor", Counted::Processor),
                store.clone(),
                shutdown.clone(),
            );
            metered(CpuStage::Process, async move {
                spindle_processor::run(config.processor, bus, store, stop)
                    .await
                    .context("processor stopped")
            })
        });
        roles.spawn({
            let (bus, store, clock, stop) = (
                role_bus("result-writer", Counted::ResultWriter),
                store.clone(),
                clock.clone(),
                shutdown.clone(),
            );
            metered(CpuStage::Store, async move {
                let writer = || {
                    let (bus, store, clock) = (bus.clone(), store.clone(), clock.clone());
                    spindle_processor::result_writer::run(bus, store, clock, stop.clone())
                };
                let transient = spindle_processor::result_writer::ResultWriterError::is_transient;
                until_lasting_error("result writer", &stop, writer, transient)
                    .await
                    .context("result writer stopped")
            })
        });
        Ok(Self {
            bus,
            memory: None,
            store,
            board,
            metrics,
            shutdown,
            roles,
        })
    }

    /// A token cancelled when the run stops.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Whether `project` has nothing left to do: the scheduler has nothing ready, delayed or
    /// in flight, and every message of every stage is acknowledged.
    pub async fn is_done(&self, project: &str) -> anyhow::Result<bool> {
        // The bus first, then the board: with no message anywhere, only the scheduler can make
        // new work, and it clears `finished` before acknowledging what made it.
        for name in [
            durable::FETCHER,
            durable::PROCESSOR,
            durable::RESULT_WRITER,
            durable::SCHEDULER,
        ] {
            let stats = self.bus.stats(name).await?;
            if stats.pending + stats.in_flight > 0 {
                return Ok(false);
            }
        }
        Ok(self.board.get(project).is_some_and(|s| s.finished))
    }

    /// Waits for a role to end on its own (an error, since roles run until stopped).
    pub async fn failed(&mut self) -> anyhow::Error {
        match self.roles.join_next().await {
            Some(Ok(Err(e))) => e,
            Some(Ok(Ok(()))) => anyhow::anyhow!("a role stopped unexpectedly"),
            Some(Err(e)) => anyhow::anyhow!("a role panicked: {e}"),
            None => anyhow::anyhow!("no role is running"),
        }
    }

    /// Stops every role: they stop pulling, finish what they hold, and exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let mut first_error = None;
        while let Some(joined) = self.roles.join_next().await {
            let result = joined.map_err(anyhow::Error::from).and_then(|r| r);
            if let Err(e) = result {
                tracing::error!(error = %format!("{e:#}"), "role failed while stopping");
                first_error.get_or_insert(e);
            }
        }
        if let Some(memory) = &self.memory {
            memory.close();
        }
        first_error.map_or(Ok(()), Err)
    }
}
