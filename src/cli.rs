//! The command line's definition: every command, flag, default, environment variable and
//! help text of `spindle` (the doc comments below are the `--help` users read), and the
//! checks that turn flags into the options the commands take.
//!
//! The command line is a contract (DESIGN.md, "CLI"): a change here changes what users
//! type. `main.rs` parses it and hands each command to its module.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use spindle_common::Store;

use crate::embedded::{UiOptions, open_existing_store};
use crate::export::Format;
use crate::project_cmd::Action;
use crate::roles::{ConfigFile, Endpoints};
use crate::site::PageSize;

/// `spindle`'s arguments.
#[derive(Parser)]
#[command(
    name = "spindle",
    version,
    about = "A distributed web crawler on pyspider's loop model"
)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// `spindle`'s commands.
#[derive(Subcommand)]
pub enum Command {
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
        pages: PageSize,
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
        pages: PageSize,
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: String,
    },
}

/// `spindle project ...`.
#[derive(Subcommand)]
pub enum ProjectCommand {
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
    /// The action, and the store it acts on.
    pub fn split(self) -> (Action, StoreArgs) {
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
pub struct StoreArgs {
    /// Folder of the embedded database (when no --database is given).
    #[arg(long, default_value = "data", conflicts_with = "database")]
    pub data: PathBuf,
    /// Database URL (postgres://… or sqlite://…).
    #[arg(long, env = "SPINDLE_DATABASE_URL")]
    pub database: Option<String>,
}

impl StoreArgs {
    /// Opens the store, which must already exist (a mistyped `--data` is refused).
    pub async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        open_existing_store(&self.data, self.database.as_deref()).await
    }
}

/// The web UI's address and login (`spindle all`, `spindle web-ui`).
#[derive(clap::Args, Debug, Clone)]
pub struct UiArgs {
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
    /// The web UI's options, after checking the logins and the session key.
    pub fn resolve(self) -> anyhow::Result<UiOptions> {
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
        Ok(UiOptions {
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
pub struct EndpointArgs {
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
    /// The endpoints: flags, else the config file, else the defaults.
    pub fn resolve(self) -> anyhow::Result<Endpoints> {
        let file = match &self.config {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        Ok(Endpoints {
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Clap's own consistency checks (names in `conflicts_with`, `requires` and
    /// `required_unless_present` exist, no two flags share a name, …), which it otherwise runs
    /// only when the faulty command is parsed.
    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
