//! Admission of incoming tasks: dedupe against the store, then queue what is new or due.
//!
//! One batch costs one lookup round trip (chunked `IN` lists) and one write transaction,
//! whatever its size, so the cost per URL stays flat as the frontier grows; nothing about a
//! task is kept in memory once its batch is written.

use std::collections::{HashMap, HashSet};

use spindle_common::message::Task;
use spindle_common::store::{KnownTask, Store, StoreError, TaskStatus};

use crate::recrawl::{Decision, decide};

/// What became of one batch.
#[derive(Debug, Default)]
pub struct Admitted {
    /// Tasks written to the queue (new, or due again).
    pub queued: u64,
    /// The stored status of each queued task that was known (`queued` minus these are new).
    pub known_before: Vec<TaskStatus>,
    /// Forced tasks whose earlier run is still in flight: they are queued again once that run
    /// ends, so two runs of one task never overlap.
    pub deferred: Vec<Task>,
}

/// Dedupes `tasks` (within the batch, then against the store) and queues the new or due ones.
pub async fn admit(
    store: &dyn Store,
    project: &str,
    tasks: Vec<Task>,
    default_age_ms: Option<i64>,
    now_ms: i64,
) -> Result<Admitted, StoreError> {
    let mut seen = HashSet::with_capacity(tasks.len());
    let tasks: Vec<Task> = tasks
        .into_iter()
        .filter(|t| seen.insert(t.taskid.clone()))
        .collect();
    drop(seen);
    let ids: Vec<&str> = tasks.iter().map(|t| t.taskid.as_str()).collect();
    let known: HashMap<String, KnownTask> = store
        .known_tasks(project, &ids)
        .await?
        .into_iter()
        .map(|k| (k.taskid.clone(), k))
        .collect();
    let mut admitted = Admitted::default();
    let mut queue = Vec::with_capacity(tasks.len() - known.len().min(tasks.len()));
    for mut task in tasks {
        match decide(&task, known.get(&task.taskid), default_age_ms, now_ms) {
            Decision::Queue => {
                if let Some(k) = known.get(&task.taskid) {
                    admitted.known_before.push(k.status);
                }
                task.retries = 0;
                queue.push(task);
            }
            Decision::AfterRun => admitted.deferred.push(task),
            Decision::Skip => {}
        }
    }
    admitted.queued = queue.len() as u64;
    store.put_tasks(&queue, now_ms).await?;
    Ok(admitted)
}
