//! The `spindle` command line: parses arguments ([`spindle::cli`]), sets up the process and
//! logging, and hands each command to its module.

use std::process::ExitCode;

use clap::Parser;
use spindle::bench::BenchSite;
use spindle::cli::{Cli, Command};
use spindle::crawl::Backend;
use spindle::roles::Role;
use spindle::site::hosts::HostsSpec;
use spindle::{bench, check, crawl, debug, embedded, export, hash_password, healthcheck};
use spindle::{project_cmd, roles, serve_hosts, serve_site, task};

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    cap_malloc_arenas();
    raise_open_files_limit();
    let cli = Cli::parse();
    if let Some(level) = default_log_level(&cli.command) {
        init_logging(level);
    }
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

/// Hands the command to its module.
async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Check { project } => Ok(check::command(&project)),
        Command::Debug {
            project,
            url,
            handler,
        } => debug::command(&project, &url, &handler).await,
        Command::Crawl {
            project,
            output,
            data,
            concurrency,
            nats,
            namespace,
            database,
        } => {
            let backend = Backend {
                nats,
                namespace,
                database,
            };
            crawl::command(
                &project,
                output.as_deref(),
                data.as_deref(),
                concurrency,
                backend,
            )
            .await
        }
        Command::All {
            data,
            projects,
            ui,
            concurrency,
        } => embedded::command(&data, projects, ui.resolve()?, concurrency).await,
        Command::HashPassword => hash_password::command(),
        Command::Export {
            project,
            format,
            data,
            database,
        } => export::command(&project, format, &data, database.as_deref()).await,
        Command::Bench {
            hosts: Some(hosts),
            delay,
            per_host,
            concurrency,
            ..
        } => {
            let spec = HostsSpec {
                hosts,
                products: per_host,
                delay,
            };
            bench::hosts::command(spec, concurrency).await
        }
        Command::Bench {
            soak: Some(soak_pages),
            every,
            concurrency,
            host_concurrency,
            pages,
            ..
        } => bench::soak::command(soak_pages, every, pages, host_concurrency, concurrency).await,
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
            let site = BenchSite {
                products,
                pages,
                host_concurrency,
            };
            bench::command(&site, concurrency, peer, nats, database, fetchers).await
        }
        Command::Scheduler {
            projects,
            endpoints,
        } => roles::command(Role::Scheduler { projects }, endpoints.resolve()?).await,
        Command::Fetcher {
            concurrency,
            endpoints,
        } => roles::command(Role::Fetcher { concurrency }, endpoints.resolve()?).await,
        Command::Processor {
            concurrency,
            endpoints,
        } => roles::command(Role::Processor { concurrency }, endpoints.resolve()?).await,
        Command::ResultWriter { endpoints } => {
            roles::command(Role::ResultWriter, endpoints.resolve()?).await
        }
        Command::WebUi { ui, endpoints } => {
            let ui = ui.resolve()?;
            roles::command(Role::WebUi { ui }, endpoints.resolve()?).await
        }
        Command::Status { endpoints } => roles::status_command(&endpoints.resolve()?).await,
        Command::Task {
            project,
            task,
            cancel,
            data,
            database,
        } => task::command(&data, database.as_deref(), &project, &task, cancel).await,
        Command::Project { command } => {
            let (action, store) = command.split();
            project_cmd::run(&*store.open().await?, action).await
        }
        Command::Healthcheck { url, file, max_age } => {
            Ok(healthcheck::command(url.as_deref(), file.as_deref(), max_age).await)
        }
        Command::ServeHosts {
            hosts,
            products,
            delay,
        } => serve_hosts::command(hosts, products, delay).await,
        Command::ServeSite {
            products,
            pages,
            bind,
        } => serve_site::command(products, pages, &bind).await,
    }
}

/// The log level of a command when `SPINDLE_LOG` is unset: long-running services report what
/// they do; one-shot commands only what went wrong, so their stdout and stderr stay
/// readable; the health check and the password prompt log nothing.
fn default_log_level(command: &Command) -> Option<&'static str> {
    match command {
        Command::All { .. }
        | Command::Scheduler { .. }
        | Command::Fetcher { .. }
        | Command::Processor { .. }
        | Command::ResultWriter { .. }
        | Command::WebUi { .. } => Some("info"),
        Command::HashPassword | Command::Healthcheck { .. } => None,
        Command::Crawl { .. }
        | Command::Check { .. }
        | Command::Debug { .. }
        | Command::Export { .. }
        | Command::Bench { .. }
        | Command::Status { .. }
        | Command::Task { .. }
        | Command::Project { .. }
        | Command::ServeHosts { .. }
        | Command::ServeSite { .. } => Some("warn"),
    }
}

/// Logs to stderr (in colour on a terminal) at the level `SPINDLE_LOG` sets, or else at
/// `default`.
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
