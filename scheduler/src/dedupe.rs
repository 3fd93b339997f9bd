//! Admission of incoming tasks: dedupe against the store, then queue what is new or due.
//!
//! One batch costs one lookup round trip (chunked `IN` lists) and one write transaction,
//! whatever its size, so the cost per URL stays flat as the frontier grows. A follow without
//! re-crawl rules to a task stored without rules is a duplicate whatever its state, so such
//! follows are dropped before the lookup: first by a bounded set of recently seen tasks
//! ([`Recent`]: a page linking to pages that were just queued), then by what
//! [`Store::presence`] can tell without a round trip (the SQLite store answers from memory:
//! new tasks and plain duplicates then cost no lookup at all).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};

use spindle_common::message::Task;
use spindle_common::store::{KnownTask, Presence, StoreError, TaskStatus, TaskStore};

use crate::budget::Budgets;
use crate::recrawl::{Decision, decide};
use crate::turns::Turns;

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
    /// Queued tasks that were stored claimed, for the caller's window (see [`admit`]).
    pub claimed: Vec<Task>,
    /// New tasks dropped as over an opt-in budget ([`Budgets`]).
    pub over_budget: u64,
}

/// Tasks of one project known to the store without re-crawl rules of their own (no stored
/// `age` or `itag`), most recent first out: a plain follow to one of them is a duplicate
/// whatever its state, so it is dropped without a lookup. Bounded by its capacity; hashes
/// of 64 bits, so a false match at 64 Ki entries has odds of about 1 in 2^48.
#[derive(Debug)]
pub struct Recent {
    set: HashSet<u64>,
    order: VecDeque<u64>,
    capacity: usize,
}

impl Recent {
    /// An empty set holding at most `capacity` tasks.
    pub fn new(capacity: usize) -> Self {
        Self {
            set: HashSet::with_capacity(capacity),
            order: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    fn key(taskid: &str) -> u64 {
        let mut h = DefaultHasher::new();
        taskid.hash(&mut h);
        h.finish()
    }

    fn contains(&self, taskid: &str) -> bool {
        self.set.contains(&Self::key(taskid))
    }

    fn insert(&mut self, taskid: &str) {
        if self.capacity == 0 {
            return;
        }
        let key = Self::key(taskid);
        if self.set.insert(key) {
            if self.order.len() == self.capacity
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
            self.order.push_back(key);
        }
    }
}

/// Whether a follow can only be a duplicate of a known task without rules of its own.
fn plain(task: &Task, default_age_ms: Option<i64>) -> bool {
    !task.force && task.itag.is_none() && task.age_ms.is_none() && default_age_ms.is_none()
}

/// Dedupes `tasks` (within the batch, against `recent`, then against the store) and queues
/// the new or due ones, each at the place `turns` gives it; new ones spend `budgets` and are
/// dropped once one is spent. Up to `take` of them that are due
/// now, best first (priority, then place, so hosts take turns here too), are stored claimed
/// and returned in [`Admitted::claimed`] instead of queued, for a window that has room while
/// the store holds nothing ready: that saves claiming them back from the queue, a write per
/// task.
#[allow(clippy::too_many_arguments)] // the scheduler's state of one project, passed apart
pub async fn admit(
    store: &dyn TaskStore,
    project: &str,
    tasks: Vec<Task>,
    recent: &mut Recent,
    turns: &mut Turns,
    budgets: &mut Budgets,
    default_age_ms: Option<i64>,
    take: usize,
    now_ms: i64,
) -> Result<Admitted, StoreError> {
    // The first of each taskid in the batch, unless it is a recent plain duplicate.
    let keep: Vec<bool> = {
        let mut seen = HashSet::with_capacity(tasks.len());
        tasks
            .iter()
            .map(|t| {
                seen.insert(t.taskid.as_str())
                    && !(plain(t, default_age_ms) && recent.contains(&t.taskid))
            })
            .collect()
    };
    let tasks: Vec<Task> = tasks
        .into_iter()
        .zip(keep)
        .filter_map(|(t, keep)| keep.then_some(t))
        .collect();
    let ids: Vec<&str> = tasks.iter().map(|t| t.taskid.as_str()).collect();
    let presence = store.presence(project, &ids).await?;
    // Only tasks whose rules need their stored state are looked up: not new ones, and not
    // plain follows of tasks stored without rules (duplicates whatever their state).
    let lookup: Vec<&str> = ids
        .iter()
        .zip(&tasks)
        .zip(&presence)
        .filter(|((_, t), p)| match p {
            Presence::Unknown => false,
            Presence::Plain => !plain(t, default_age_ms),
            Presence::Ask => true,
        })
        .map(|((id, _), _)| *id)
        .collect();
    let known: HashMap<String, KnownTask> = if lookup.is_empty() {
        HashMap::new()
    } else {
        store
            .known_tasks(project, &lookup)
            .await?
            .into_iter()
            .map(|k| (k.taskid.clone(), k))
            .collect()
    };
    let mut admitted = Admitted::default();
    let mut queue = Vec::with_capacity(tasks.len() - known.len().min(tasks.len()));
    for (mut task, presence) in tasks.into_iter().zip(presence) {
        if presence == Presence::Plain && plain(&task, default_age_ms) {
            continue;
        }
        let stored = known.get(&task.taskid);
        if stored.is_some_and(|k| k.age_ms.is_none() && k.itag.is_none()) {
            recent.insert(&task.taskid);
        }
        match decide(&task, stored, default_age_ms, now_ms) {
            Decision::Queue => {
                match stored {
                    Some(k) => admitted.known_before.push(k.status),
                    None => {
                        if let Err((over, first)) = budgets.admit(&task.url) {
                            if first {
                                tracing::info!(project, url = %task.url, "{over}: further new links like it are dropped this run");
                            }
                            admitted.over_budget += 1;
                            continue;
                        }
                    }
                }
                task.retries = 0;
                queue.push(task);
            }
            Decision::AfterRun => admitted.deferred.push(task),
            Decision::Skip => {}
        }
    }
    admitted.queued = queue.len() as u64;
    turns.place(&mut queue);
    let (claimed, queue): (Vec<Task>, Vec<Task>) = if take == 0 {
        (Vec::new(), queue)
    } else {
        let mut due: Vec<usize> = (0..queue.len())
            .filter(|&i| queue[i].exetime <= now_ms)
            .collect();
        due.sort_by_key(|&i| (std::cmp::Reverse(queue[i].priority), queue[i].order));
        let taken: HashSet<usize> = due.into_iter().take(take).collect();
        let (mut claimed, mut rest) = (Vec::new(), Vec::new());
        for (i, task) in queue.into_iter().enumerate() {
            if taken.contains(&i) {
                claimed.push(task);
            } else {
                rest.push(task);
            }
        }
        (claimed, rest)
    };
    turns.claimed(&claimed);
    store.put_claimed_tasks(&claimed, now_ms).await?;
    store.put_tasks(&queue, now_ms).await?;
    for task in queue
        .iter()
        .chain(&claimed)
        .filter(|t| t.age_ms.is_none() && t.itag.is_none())
    {
        recent.insert(&task.taskid);
    }
    admitted.claimed = claimed;
    Ok(admitted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_forgets_the_oldest_beyond_its_capacity() {
        let mut r = Recent::new(2);
        r.insert("a");
        r.insert("b");
        r.insert("a");
        assert!(r.contains("a") && r.contains("b"));
        r.insert("c");
        assert!(!r.contains("a"), "the oldest goes first");
        assert!(r.contains("b") && r.contains("c"));
        assert_eq!(r.set.len(), 2);
    }
}
