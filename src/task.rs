//! `spindle task`: one task's stored state, by URL or id, and cancelling it.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use spindle_common::{Project, Store, urlnorm};

/// The task id named by `task`: a URL is normalized with the project's rules and
/// fingerprinted; anything else is taken as an id.
pub fn task_id(project: Option<&Project>, task: &str) -> String {
    match url::Url::parse(task) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {
            let keep = project.map(|p| p.keep_params.as_slice()).unwrap_or(&[]);
            urlnorm::fingerprint(urlnorm::normalize(&url, keep).as_str())
        }
        _ => task.to_string(),
    }
}

/// Prints the task as JSON (after cancelling it, with `cancel`); exit 1 if it is unknown.
pub async fn run(
    store: &dyn Store,
    project: &str,
    task: &str,
    cancel: bool,
) -> anyhow::Result<ExitCode> {
    let record = store
        .project(project)
        .await?
        .with_context(|| format!("no project named {project}"))?;
    let parsed = Project::parse(&record.definition).ok();
    let taskid = task_id(parsed.as_ref(), task);
    if cancel && !store.cancel_task(project, &taskid, now_ms()).await? {
        eprintln!("no task {task} in project {project}");
        return Ok(ExitCode::FAILURE);
    }
    match store.task(project, &taskid).await? {
        Some(record) => {
            println!("{}", serde_json::to_string_pretty(&record)?);
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("no task {task} in project {project}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `spindle task PROJECT TASK`: [`run`] on the store named by `database`, or else the SQLite
/// store of the data folder `data`.
pub async fn command(
    data: &Path,
    database: Option<&str>,
    project: &str,
    task: &str,
    cancel: bool,
) -> anyhow::Result<ExitCode> {
    let store = match database {
        Some(url) => spindle_store::connect(url).await?,
        None => crate::embedded::open_store(data).await?,
    };
    run(&*store, project, task, cancel).await
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_fingerprints_and_ids_stay() {
        let a = task_id(None, "http://Example.com/a#x");
        assert_eq!(a, urlnorm::fingerprint("http://example.com/a"));
        assert_eq!(task_id(None, "0123abcd"), "0123abcd");
    }
}
