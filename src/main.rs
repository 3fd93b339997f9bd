//! The `spindle` command line: parses arguments and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use spindle::crawl::{Backend, crawl_to, load_project};
use spindle::embedded::{EmbeddedConfig, open_existing_store, open_store};
use spindle::export::{Format, export};
use spindle::roles::ConfigFile;
use spindle::site::{Hits, Site, SiteSpec};
use spindle_common::Project;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "spindle",
    version,
    about = "A distributed web crawler on pyspider's loop model"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process (embedded bus, SQLite) until stopped.
    All {
        /// Folder of the database.
        #[arg(long, default_value = "data", env = "SPINDLE_DATA")]
        data: PathBuf,
        /// Folder of project files to load and watch.
        #[arg(long)]
        projects: Option<PathBuf>,
        #[command(flatten)]
        ui: UiArgs,
        /// Fetches in flight at once, at most (politeness decides how many really are).
        #[arg(long, default_value_t = spindle_fetcher::config::DEFAULT_CONCURRENCY)]
        concurrency: usize,
    },
    /// Crawl one project to completion, then exit.
    Crawl {
        /// The project file.
        project: PathBuf,
        /// Write items here (`.csv` for CSV, anything else JSON Lines); stdout if absent.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Keep the crawl's state in this folder (a temporary one if absent).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Fetches in flight at once, at most (politeness decides how many really are).
        #[arg(long, default_value_t = spindle_fetcher::config::DEFAULT_CONCURRENCY)]
        concurrency: usize,
        /// Run the roles on this NATS server instead of the in-process bus.
        #[arg(long)]
        nats: Option<String>,
        /// NATS namespace (with --nats).
        #[arg(long)]
        namespace: Option<String>,
        /// Keep state in this database (postgres://… or sqlite://…) instead of --data.
        #[arg(long)]
        database: Option<String>,
    },
    /// Validate a project file.
    Check {
        /// The project file.
        project: PathBuf,
    },
    /// Fetch one page and run one handler on it; print follows, items and logs as JSON.
    Debug {
        /// The project file.
        project: PathBuf,
        /// The page to fetch.
        url: String,
        /// The handler to run.
        #[arg(long, default_value = "start")]
        handler: String,
    },
    /// Write every item of a project to stdout.
    Export {
        /// Project name.
        project: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: Format,
        /// Folder of the database.
        #[arg(long, default_value = "data", conflicts_with = "database")]
        data: PathBuf,
        /// Database URL (sqlite://PATH).
        #[arg(long, env = "SPINDLE_DATABASE_URL")]
        database: Option<String>,
    },
    /// Crawl a generated site served by a child process and print throughput and memory.
    Bench {
        /// Products on the generated site.
        #[arg(long, default_value_t = 20_000)]
        products: u32,
        /// Fetches in flight at once [default: spindle crawl's].
        #[arg(long)]
        concurrency: Option<usize>,
        /// Requests in flight to the site at most: the project's host_concurrency (a
        /// project's own default is 8).
        #[arg(long, default_value_t = 64)]
        host_concurrency: u32,
        /// Size of the site's detail pages.
        #[arg(long, value_enum, default_value = "small")]
        pages: spindle::site::PageSize,
        /// The peer crawler's binary (default: bench/spider-peer/target/release/spider-peer).
        #[arg(long)]
        peer: Option<PathBuf>,
        /// Also crawl it distributed on this NATS server (with --database).
        #[arg(long, requires = "database")]
        nats: Option<String>,
        /// Database of the distributed runs (postgres://…).
        #[arg(long)]
        database: Option<String>,
        /// Fetcher processes of each distributed run.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
        fetchers: Vec<usize>,
        /// Crawl a site of this many loopback hosts instead (the politeness bench).
        #[arg(long, conflicts_with_all = ["nats", "products"])]
        hosts: Option<u32>,
        /// With --hosts: time each answer takes.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration, requires = "hosts")]
        delay: std::time::Duration,
        /// With --hosts: product pages per host.
        #[arg(long, default_value_t = 20, requires = "hosts")]
        per_host: u32,
        /// Soak: crawl a site of at least this many pages (the size replaces --products),
        /// printing RSS, open file descriptors and pages/s every --every.
        #[arg(long, conflicts_with_all = ["nats", "hosts"])]
        soak: Option<u64>,
        /// With --soak: time between two printed samples.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, requires = "soak")]
        every: std::time::Duration,
    },
    /// Distributed: run the scheduler.
    Scheduler {
        /// Folder of project files to load and watch.
        #[arg(long, env = "SPINDLE_PROJECTS")]
        projects: Option<PathBuf>,
        #[command(flatten)]
        endpoints: EndpointArgs,
    },
    /// Distributed: run a fetcher.
    Fetcher {
        /// Fetches in flight at once, at most (politeness decides how many really are).
        #[arg(long, env = "SPINDLE_CONCURRENCY", default_value_t = spindle_fetcher::config::DEFAULT_CONCURRENCY)]
        concurrency: usize,
        #[command(flatten)]
        endpoints: EndpointArgs,
    },
    /// Distributed: run a processor.
    Processor {
        /// Pages processed at once (default: one per core).
        #[arg(long, env = "SPINDLE_CONCURRENCY")]
        concurrency: Option<usize>,
        #[command(flatten)]
        endpoints: EndpointArgs,
    },
    /// Distributed: run a result writer.
    ResultWriter {
        #[command(flatten)]
        endpoints: EndpointArgs,
    },
    /// Distributed: run the web UI.
    WebUi {
        #[command(flatten)]
        ui: UiArgs,
        #[command(flatten)]
        endpoints: EndpointArgs,
    },
    /// Print an argon2 hash of a password (read from the terminal, or stdin), for
    /// --web-password-hash / SPINDLE_WEB_PASSWORD_HASH.
    HashPassword,
    /// Distributed: list live instances and the queue of each role.
    Status {
        #[command(flatten)]
        endpoints: EndpointArgs,
    },
    /// Show a task by URL or task id, or cancel it.
    Task {
        /// Project name.
        project: String,
        /// The task's URL or its id.
        task: String,
        /// Mark the task bad (cancelled) and take it off the queue.
        #[arg(long)]
        cancel: bool,
        /// Folder of the embedded database (when no --database is given).
        #[arg(long, default_value = "data")]
        data: PathBuf,
        /// Database URL.
        #[arg(long, env = "SPINDLE_DATABASE_URL")]
        database: Option<String>,
    },
    /// List projects, run one now, start, stop or delete one (in the store; the scheduler
    /// follows within seconds).
    Project {
        #[command(subcommand)]
        command: ProjectCommand,
    },
    /// Exit 0 if URL answers 2xx within 3 s, or if the heartbeat file a role writes
    /// (`--heartbeat-file`) is younger than --max-age (container health checks).
    #[command(hide = true)]
    Healthcheck {
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        url: Option<String>,
        /// Heartbeat file of a role.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Age after which the heartbeat file means the role is unhealthy.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        max_age: std::time::Duration,
    },
    /// Serve the many-host bench site on every address (used by `spindle bench --hosts`);
    /// prints its port.
    #[command(hide = true)]
    ServeHosts {
        #[arg(long)]
        hosts: u32,
        #[arg(long, default_value_t = 20)]
        products: u32,
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        delay: std::time::Duration,
    },
    /// Serve the generated bench site (used by `spindle bench`); prints its base URL.
    #[command(hide = true)]
    ServeSite {
        #[arg(long, default_value_t = 20_000)]
        products: u32,
        #[arg(long, value_enum, default_value = "large")]
        pages: spindle::site::PageSize,
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: String,
    },
}

/// `spindle project ...`.
#[derive(Subcommand)]
enum ProjectCommand {
    /// Every project with its status and task counts.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Submit the project's start URLs again now, forced (known URLs are fetched again).
    Run {
        /// Project name.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set the project RUNNING.
    Start {
        /// Project name.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set the project STOP: nothing more is sent; its queue waits for the next start.
    Stop {
        /// Project name.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete the project with its tasks and results.
    Delete {
        /// Project name.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

impl ProjectCommand {
    fn split(self) -> (spindle::project_cmd::Action, StoreArgs) {
        use spindle::project_cmd::Action;
        match self {
            ProjectCommand::List { store } => (Action::List, store),
            ProjectCommand::Run { name, store } => (Action::Run(name), store),
            ProjectCommand::Start { name, store } => (Action::Start(name), store),
            ProjectCommand::Stop { name, store } => (Action::Stop(name), store),
            ProjectCommand::Delete { name, yes, store } => (Action::Delete { name, yes }, store),
        }
    }
}

/// Which store a command reads: `--database URL`, or the SQLite file of `--data DIR`.
#[derive(clap::Args, Debug, Clone)]
struct StoreArgs {
    /// Folder of the embedded database (when no --database is given).
    #[arg(long, default_value = "data", conflicts_with = "database")]
    data: PathBuf,
    /// Database URL (postgres://… or sqlite://…).
    #[arg(long, env = "SPINDLE_DATABASE_URL")]
    database: Option<String>,
}

/// The web UI's address and login (`spindle all`, `spindle web-ui`).
#[derive(clap::Args, Debug, Clone)]
struct UiArgs {
    /// Address of the web UI; any but a loopback address needs a login.
    #[arg(long, env = "SPINDLE_BIND", default_value = "127.0.0.1:5000")]
    bind: String,
    /// User name of the web UI's admin login.
    #[arg(long, env = "SPINDLE_WEB_USER")]
    web_user: Option<String>,
    /// Argon2 hash of the admin's password (`spindle hash-password` prints one).
    #[arg(long, env = "SPINDLE_WEB_PASSWORD_HASH", hide_env_values = true)]
    web_password_hash: Option<String>,
    /// File holding the admin's password (e.g. a Docker secret).
    #[arg(
        long,
        env = "SPINDLE_WEB_PASSWORD_FILE",
        conflicts_with = "web_password_hash"
    )]
    web_password_file: Option<PathBuf>,
    /// User name of a read-only viewer login.
    #[arg(long, env = "SPINDLE_WEB_VIEWER_USER")]
    web_viewer_user: Option<String>,
    /// Argon2 hash of the viewer's password.
    #[arg(long, env = "SPINDLE_WEB_VIEWER_PASSWORD_HASH", hide_env_values = true)]
    web_viewer_password_hash: Option<String>,
    /// File holding the viewer's password.
    #[arg(
        long,
        env = "SPINDLE_WEB_VIEWER_PASSWORD_FILE",
        conflicts_with = "web_viewer_password_hash"
    )]
    web_viewer_password_file: Option<PathBuf>,
    /// File holding the key that signs login sessions (at least 32 bytes; several web UIs
    /// behind one address share it). Without it sessions end when the process does.
    #[arg(long, env = "SPINDLE_WEB_SECRET_FILE")]
    web_secret_file: Option<PathBuf>,
}

impl UiArgs {
    fn resolve(self) -> anyhow::Result<spindle::embedded::UiOptions> {
        let admin = credentials(
            "--web-user (SPINDLE_WEB_USER)",
            self.web_user,
            self.web_password_hash,
            self.web_password_file,
        )?;
        let viewer = credentials(
            "--web-viewer-user (SPINDLE_WEB_VIEWER_USER)",
            self.web_viewer_user,
            self.web_viewer_password_hash,
            self.web_viewer_password_file,
        )?;
        let login = match (admin, viewer) {
            (Some(admin), viewer) => Some(spindle_web_ui::Login { admin, viewer }),
            (None, Some(_)) => anyhow::bail!(
                "a viewer login needs an admin login too: set --web-user (SPINDLE_WEB_USER) and its password"
            ),
            (None, None) => None,
        };
        let session_secret = match self.web_secret_file {
            Some(path) => {
                let secret = std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                anyhow::ensure!(
                    secret.len() >= 32,
                    "{} holds {} bytes; a session key needs at least 32",
                    path.display(),
                    secret.len()
                );
                Some(secret)
            }
            None => None,
        };
        // Refused before anything starts (a role would first wait for NATS); a host name is
        // checked once it is bound.
        if let Ok(addr) = self.bind.parse::<std::net::SocketAddr>() {
            spindle_web_ui::check_bind(addr, login.as_ref()).map_err(anyhow::Error::msg)?;
        }
        Ok(spindle::embedded::UiOptions {
            bind: self.bind,
            login,
            session_secret,
        })
    }
}

/// One login from its flags: a user with a password hash or a password file, or nothing.
fn credentials(
    which: &str,
    user: Option<String>,
    hash: Option<String>,
    file: Option<PathBuf>,
) -> anyhow::Result<Option<spindle_web_ui::Credentials>> {
    let user = user.filter(|u| !u.is_empty());
    match (user, hash, file) {
        (None, None, None) => Ok(None),
        (None, _, _) => anyhow::bail!("a web UI password was given without a user: set {which}"),
        (Some(user), Some(hash), _) => {
            Ok(Some(spindle_web_ui::Credentials::from_hash(&user, &hash)?))
        }
        (Some(user), None, Some(file)) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read password file {}", file.display()))?;
            let password = text.trim_end_matches(['\n', '\r']);
            Ok(Some(
                spindle_web_ui::Credentials::from_password(&user, password)
                    .with_context(|| format!("password file {}", file.display()))?,
            ))
        }
        (Some(user), None, None) => anyhow::bail!(
            "web UI user {user} has no password: set its argon2 hash (`spindle hash-password` prints one) or a password file"
        ),
    }
}

/// Where the distributed roles find NATS and the database. Flags beat environment, which
/// beats the config file (`--config`), which beats the defaults.
#[derive(clap::Args, Debug, Clone)]
struct EndpointArgs {
    /// NATS URL [default: nats://127.0.0.1:4222].
    #[arg(long, env = "SPINDLE_NATS_URL")]
    nats: Option<String>,
    /// Namespace isolating this deployment on a shared NATS server.
    #[arg(long, env = "SPINDLE_NAMESPACE")]
    namespace: Option<String>,
    /// Database URL (postgres://… or sqlite://…).
    #[arg(long, env = "SPINDLE_DATABASE_URL")]
    database: Option<String>,
    /// Config file (TOML with keys nats, namespace, database).
    #[arg(long, env = "SPINDLE_CONFIG")]
    config: Option<PathBuf>,
    /// Time after which the messages of a crashed instance go to another one (e.g. "60s").
    #[arg(long, env = "SPINDLE_ACK_WAIT", value_parser = humantime::parse_duration)]
    ack_wait: Option<std::time::Duration>,
    /// File rewritten after every heartbeat, for `spindle healthcheck --file`.
    #[arg(long, env = "SPINDLE_HEARTBEAT_FILE")]
    heartbeat_file: Option<PathBuf>,
    /// Serve Prometheus metrics on http://ADDR/metrics (e.g. 0.0.0.0:9100).
    #[arg(long, env = "SPINDLE_METRICS", value_name = "ADDR")]
    metrics: Option<String>,
}

impl EndpointArgs {
    fn resolve(self) -> anyhow::Result<spindle::roles::Endpoints> {
        let file = match &self.config {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        Ok(spindle::roles::Endpoints {
            nats: self
                .nats
                .or(file.nats)
                .unwrap_or_else(|| "nats://127.0.0.1:4222".to_string()),
            namespace: self.namespace.or(file.namespace),
            database: self.database.or(file.database),
            ack_wait: self.ack_wait,
            heartbeat_file: self.heartbeat_file,
            metrics: self.metrics,
        })
    }
}

/// Runs a distributed role until SIGTERM or Ctrl-C.
async fn run_role(role: spindle::roles::Role, endpoints: EndpointArgs) -> anyhow::Result<ExitCode> {
    init_logging("info");
    let endpoints = endpoints.resolve()?;
    let stop = CancellationToken::new();
    let signal_stop = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stopping");
        signal_stop.cancel();
    });
    spindle::roles::run(role, endpoints, stop).await?;
    Ok(ExitCode::SUCCESS)
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SPINDLE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// glibc gives threads up to eight malloc arenas per core; with Spindle's threads (tokio
/// workers, the blocking pool, SQLite's worker threads) that fragments memory, and capping it
/// at two lowers the bench crawl's peak RSS from ~120 to ~104 MiB at no measurable cost in
/// speed. The allocator reads `MALLOC_ARENA_MAX` only at process start, so when it is unset
/// the process replaces itself (same pid, arguments and streams) with one that has it; a
/// value the user set is kept.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn cap_malloc_arenas() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("MALLOC_ARENA_MAX", "2")
        .exec();
    // Only reached if the exec failed: carry on with the default arenas.
    eprintln!("note: could not restart with MALLOC_ARENA_MAX=2: {err}");
}

/// Every request in flight holds a socket: the soft limit of open files (often 1,024) is raised
/// to the hard one, so thousands of requests in flight do not fail with "too many open files".
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        eprintln!("note: could not raise the open files limit from {soft} to {hard}: {e}");
    }
}

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    cap_malloc_arenas();
    raise_open_files_limit();
    let cli = Cli::parse();
    // Blocking work (decoding, HTML parsing, SQLite) is CPU-bound: a few threads per core do
    // it as fast as hundreds would, and each extra thread holds its own allocator caches.
    let blocking_threads = std::thread::available_parallelism().map_or(2, |n| n.get()) * 4;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(blocking_threads)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Check { project } => {
            init_logging("warn");
            match load_project(&project) {
                Ok(p) => {
                    for warning in p.warnings() {
                        eprintln!("{}: warning: {warning}", project.display());
                    }
                    println!(
                        "{}: ok (project {}, {} start URLs, {} sitemaps, {} handlers)",
                        project.display(),
                        p.name,
                        p.start.len(),
                        p.sitemaps.len(),
                        p.handlers.len()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("{e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Debug {
            project,
            url,
            handler,
        } => {
            init_logging("warn");
            let report = spindle::debug::debug(&project, &url, Some(&handler)).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(if report.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Crawl {
            project,
            output,
            data,
            concurrency,
            nats,
            namespace,
            database,
        } => {
            init_logging("warn");
            let project = match load_project(&project) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            let temp;
            let data = match data {
                Some(d) => d,
                None => {
                    temp = tempfile::tempdir().context("cannot create a temporary folder")?;
                    temp.path().to_path_buf()
                }
            };
            let mut config = EmbeddedConfig::default();
            config.fetcher.concurrency = concurrency;
            let backend = Backend {
                nats,
                namespace,
                database,
            };
            let (summary, written) =
                crawl_to(&project, &data, config, backend, output.as_deref()).await?;
            let target = output.map_or("stdout".to_string(), |p| p.display().to_string());
            eprintln!("{summary}; {written} items written to {target}");
            Ok(ExitCode::SUCCESS)
        }
        Command::All {
            data,
            projects,
            ui,
            concurrency,
        } => {
            init_logging("info");
            let ui = ui.resolve()?;
            let mut config = EmbeddedConfig::default();
            config.fetcher.concurrency = concurrency;
            spindle::embedded::run_all(&data, config, projects, ui, shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::HashPassword => {
            println!("{}", spindle_web_ui::hash_password(&read_password()?)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Export {
            project,
            format,
            data,
            database,
        } => {
            init_logging("warn");
            let store = open_existing_store(&data, database.as_deref()).await?;
            let record = store
                .project(&project)
                .await?
                .with_context(|| format!("no project named {project}"))?;
            let fields = Project::parse(&record.definition)
                .map(|p| p.item_fields())
                .unwrap_or_default();
            export(&*store, &project, format, &fields, std::io::stdout().lock()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            hosts: Some(hosts),
            delay,
            per_host,
            concurrency,
            ..
        } => {
            init_logging("warn");
            let dir = tempfile::tempdir().context("cannot create a temporary folder")?;
            let spec = spindle::site::hosts::HostsSpec {
                hosts,
                products: per_host,
                delay,
            };
            let report = spindle::bench::hosts::run(spec, concurrency, dir.path()).await?;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            soak: Some(soak_pages),
            every,
            concurrency,
            host_concurrency,
            pages,
            ..
        } => {
            init_logging("warn");
            let data = tempfile::tempdir().context("cannot create a temporary folder")?;
            let concurrency = concurrency.unwrap_or(spindle_fetcher::config::DEFAULT_CONCURRENCY);
            let mut site = spindle::bench::BenchSite {
                products: 0,
                pages,
                host_concurrency,
            };
            site.products = spindle::bench::soak::products_for(soak_pages, &site);
            println!("soak: {}, {} pages", site.describe(), site.spec().pages());
            let report =
                spindle::bench::soak::run(&site, concurrency, data.path(), every, |sample| {
                    println!("{sample}")
                })
                .await?;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            products,
            concurrency,
            host_concurrency,
            pages,
            peer,
            nats,
            database,
            fetchers,
            ..
        } => {
            init_logging("warn");
            let data = tempfile::tempdir().context("cannot create a temporary folder")?;
            let concurrency = concurrency.unwrap_or(spindle_fetcher::config::DEFAULT_CONCURRENCY);
            let site = spindle::bench::BenchSite {
                products,
                pages,
                host_concurrency,
            };
            println!("bench: {}", site.describe());
            let embedded = spindle::bench::run(&site, concurrency, data.path()).await?;
            println!("{embedded}");
            let whole = spindle::bench::whole::run(&site, concurrency, peer, data.path()).await?;
            println!("{whole}");
            if let (Some(nats), Some(database)) = (nats, database) {
                for n in fetchers {
                    let report =
                        spindle::bench::run_distributed(&site, n, &nats, &database, data.path())
                            .await?;
                    println!("{report}");
                    println!(
                        "  {:.0}% of the embedded rate",
                        100.0 * report.pages_per_s() / embedded.pages_per_s()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Scheduler {
            projects,
            endpoints,
        } => run_role(spindle::roles::Role::Scheduler { projects }, endpoints).await,
        Command::Fetcher {
            concurrency,
            endpoints,
        } => run_role(spindle::roles::Role::Fetcher { concurrency }, endpoints).await,
        Command::Processor {
            concurrency,
            endpoints,
        } => run_role(spindle::roles::Role::Processor { concurrency }, endpoints).await,
        Command::ResultWriter { endpoints } => {
            run_role(spindle::roles::Role::ResultWriter, endpoints).await
        }
        Command::WebUi { ui, endpoints } => {
            let ui = ui.resolve()?;
            run_role(spindle::roles::Role::WebUi { ui }, endpoints).await
        }
        Command::Status { endpoints } => {
            init_logging("warn");
            print!("{}", spindle::roles::status(&endpoints.resolve()?).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Task {
            project,
            task,
            cancel,
            data,
            database,
        } => {
            init_logging("warn");
            let store = match database {
                Some(url) => spindle_store::connect(&url).await?,
                None => open_store(&data).await?,
            };
            spindle::task::run(&*store, &project, &task, cancel).await
        }
        Command::Project { command } => {
            init_logging("warn");
            let (action, store) = command.split();
            let store = open_existing_store(&store.data, store.database.as_deref()).await?;
            spindle::project_cmd::run(&*store, action).await
        }
        Command::Healthcheck { url, file, max_age } => {
            let healthy = match (url, file) {
                (Some(url), _) => spindle::healthcheck::healthcheck(&url).await,
                (None, Some(file)) => spindle::healthcheck::heartbeat_is_fresh(&file, max_age),
                (None, None) => false,
            };
            Ok(if healthy {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::ServeHosts {
            hosts,
            products,
            delay,
        } => {
            init_logging("warn");
            anyhow::ensure!(
                (1..=64_770).contains(&hosts),
                "--hosts must be from 1 to 64770 (127.0.1.1 to 127.0.255.254)"
            );
            // Every address: one port serves every 127.0.x.y; the site refuses other peers.
            let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await?;
            let port = listener.local_addr()?.port();
            println!("{port}");
            let site = spindle::site::hosts::HostsSite::new(
                spindle::site::hosts::HostsSpec {
                    hosts,
                    products,
                    delay,
                },
                port,
            );
            axum::serve(
                listener,
                site.router()
                    .into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ServeSite {
            products,
            pages,
            bind,
        } => {
            init_logging("warn");
            let listener = tokio::net::TcpListener::bind(&bind).await?;
            println!("http://{}", listener.local_addr()?);
            let site = Arc::new(Site::new(SiteSpec::bench_sized(products, pages)));
            // It may be a container's only process: SIGTERM stops it (PID 1 has no default
            // handler).
            spindle::site::serve(site, Arc::new(Hits::default()), listener, shutdown_signal())
                .await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A password typed twice on the terminal (not shown), or stdin's first line.
fn read_password() -> anyhow::Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("password: ")?;
        let again = rpassword::prompt_password("again: ")?;
        anyhow::ensure!(first == again, "the two passwords differ");
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
