//! `spindle project list|run|start|stop|delete`: a project's life cycle from the command line.
//!
//! Each command writes the store and nothing else; the scheduler that runs the project (in
//! `spindle all`, or a `spindle scheduler` on the same database) sees the change at its next
//! reload, within two seconds, whichever process or machine it runs in:
//!
//! - `run` records a "run now" request: the start URLs are submitted again, forced (known
//!   URLs are fetched again), once; for a project that is not running, when it next runs;
//! - `start` / `stop` set the status RUNNING / STOP (a stopped project sends nothing more and
//!   its queue waits in the store for the next start);
//! - `delete` removes the project with its tasks and results, after a confirmation (or
//!   `--yes`).
//!
//! A project loaded from a `--projects` folder is loaded again from its file when the file
//! changes or when `spindle all` / `spindle scheduler` starts again: deleting it for good
//! means removing the file too, which `delete` reminds.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use spindle_common::store::{ProjectRecord, ProjectStatus};
use spindle_common::{Clock, Store, SystemClock};

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Print every project with its status and task counts.
    List,
    /// Submit the project's start URLs again now, forced.
    Run(String),
    /// Set the project RUNNING.
    Start(String),
    /// Set the project STOP.
    Stop(String),
    /// Delete the project, its tasks and its results.
    Delete {
        /// The project.
        name: String,
        /// Delete without asking.
        yes: bool,
    },
}

/// Runs `action` on `store`; what it did goes to stdout, questions and notes to stderr.
pub async fn run(store: &dyn Store, action: Action) -> anyhow::Result<ExitCode> {
    let now = SystemClock.now_ms();
    match action {
        Action::List => {
            print!("{}", list(store).await?);
            Ok(ExitCode::SUCCESS)
        }
        Action::Run(name) => {
            let record = existing(store, &name).await?;
            anyhow::ensure!(
                store.request_run(&name, now).await?,
                "no project named {name}"
            );
            if record.status.dispatches() {
                println!(
                    "project {name}: run requested; the scheduler submits its start URLs again within seconds"
                );
            } else {
                println!(
                    "project {name}: run requested; it is {}, so its start URLs are submitted when it runs (spindle project start {name})",
                    record.status
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Start(name) => set_status(store, &name, ProjectStatus::Running, now).await,
        Action::Stop(name) => set_status(store, &name, ProjectStatus::Stop, now).await,
        Action::Delete { name, yes } => {
            existing(store, &name).await?;
            let counts = store.task_counts(&name).await?;
            let tasks =
                counts.queued + counts.claimed + counts.success + counts.failed + counts.bad;
            let results = store.count_results(&name).await?;
            let what = format!("project {name} with its {tasks} tasks and {results} results");
            if !yes && !confirm(&format!("Delete {what}?"))? {
                return Ok(ExitCode::FAILURE);
            }
            store.delete_project(&name).await?;
            println!("deleted {what}");
            eprintln!(
                "note: if a --projects folder holds this project's file, remove the file too: \
                 it is loaded again when it changes or when spindle starts"
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The table `spindle project list` prints: name, status, and task counts (queued counts
/// every active task: waiting, delayed or in flight).
pub async fn list(store: &dyn Store) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    let projects = store.projects().await?;
    let width = projects
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(0)
        .max("NAME".len());
    let mut out = String::new();
    writeln!(
        out,
        "{:<width$}  {:<8}  {:>9}  {:>9}  {:>9}",
        "NAME", "STATUS", "QUEUED", "SUCCESS", "FAILED"
    )?;
    for p in &projects {
        let counts = store.task_counts(&p.name).await?;
        writeln!(
            out,
            "{:<width$}  {:<8}  {:>9}  {:>9}  {:>9}",
            p.name,
            p.status,
            counts.queued + counts.claimed,
            counts.success,
            counts.failed
        )?;
    }
    Ok(out)
}

async fn existing(store: &dyn Store, name: &str) -> anyhow::Result<ProjectRecord> {
    store
        .project(name)
        .await?
        .with_context(|| format!("no project named {name}"))
}

async fn set_status(
    store: &dyn Store,
    name: &str,
    status: ProjectStatus,
    now: i64,
) -> anyhow::Result<ExitCode> {
    let record = existing(store, name).await?;
    if record.status == status {
        println!("project {name}: already {status}");
        return Ok(ExitCode::SUCCESS);
    }
    anyhow::ensure!(
        store.set_status(name, status, now).await?,
        "no project named {name}"
    );
    println!("project {name}: {status} (was {})", record.status);
    Ok(ExitCode::SUCCESS)
}

/// Asks `question` on the terminal; refuses (with why) when stdin is not one.
fn confirm(question: &str) -> anyhow::Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        eprintln!("{question} Not deleted: there is no terminal to confirm on; pass --yes");
        return Ok(false);
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    let yes = matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes");
    if !yes {
        eprintln!("not deleted");
    }
    Ok(yes)
}
