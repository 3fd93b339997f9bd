//! Whether a task seen again is queued again: the re-crawl rules.
//!
//! | stored status | queued again when |
//! |---|---|
//! | unknown | always (a new task) |
//! | active, waiting or delayed in the store | `force` replaces the queued task (new options, priority, time); otherwise never |
//! | active, claimed (in the scheduler's window or in flight) | `force` queues it again once the running attempt ends; otherwise never |
//! | success or failed | `force`, or its `itag` changed, or its `age` has passed since the last attempt |
//! | bad (cancelled) | only with `force` |
//!
//! `age` is the task's own, else the stored one, else the project default; no age means
//! "never re-crawl by age".

use spindle_common::message::Task;
use spindle_common::store::{KnownTask, TaskStatus};

/// The decision about one incoming task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Queue it (new, or due again).
    Queue,
    /// Drop it: already known and not due.
    Skip,
    /// Queue it once the attempt in flight ends (a forced update of a running task).
    AfterRun,
}

/// Decides whether `task` is queued, given what the store knows about it.
pub fn decide(
    task: &Task,
    known: Option<&KnownTask>,
    default_age_ms: Option<i64>,
    now_ms: i64,
) -> Decision {
    let Some(known) = known else {
        return Decision::Queue;
    };
    let due = match known.status {
        TaskStatus::Active if task.force && known.claimed => return Decision::AfterRun,
        TaskStatus::Active => task.force,
        TaskStatus::Bad => task.force,
        TaskStatus::Success | TaskStatus::Failed => {
            let itag_changed = task.itag.is_some() && task.itag != known.itag;
            let age = task.age_ms.or(known.age_ms).or(default_age_ms);
            let aged = match (age, known.last_crawl_ms) {
                (Some(age), Some(last)) => last.saturating_add(age) <= now_ms,
                (Some(_), None) => true,
                (None, _) => false,
            };
            task.force || itag_changed || aged
        }
    };
    if due { Decision::Queue } else { Decision::Skip }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> Task {
        Task {
            taskid: "t".into(),
            ..Task::new("p", "http://a/", "c")
        }
    }

    fn known(status: TaskStatus, last: i64) -> KnownTask {
        KnownTask {
            taskid: "t".into(),
            status,
            last_crawl_ms: Some(last),
            age_ms: None,
            itag: Some("v1".into()),
            claimed: false,
        }
    }

    #[test]
    fn new_tasks_are_queued_and_active_ones_never_twice() {
        assert_eq!(decide(&task(), None, None, 0), Decision::Queue);
        let mut forced = task();
        forced.force = true;
        let active = known(TaskStatus::Active, 0);
        assert_eq!(decide(&task(), Some(&active), Some(1), 100), Decision::Skip);
        // A forced update replaces a task still waiting in the store...
        assert_eq!(
            decide(&forced, Some(&active), Some(1), 100),
            Decision::Queue
        );
        // ...and waits for the end of a running one.
        let running = KnownTask {
            claimed: true,
            ..active
        };
        assert_eq!(
            decide(&task(), Some(&running), Some(1), 100),
            Decision::Skip
        );
        assert_eq!(
            decide(&forced, Some(&running), Some(1), 100),
            Decision::AfterRun
        );
    }

    #[test]
    fn done_tasks_come_back_after_their_age() {
        let done = known(TaskStatus::Success, 1_000);
        assert_eq!(
            decide(&task(), Some(&done), None, 1_000_000),
            Decision::Skip
        );
        assert_eq!(
            decide(&task(), Some(&done), Some(500), 1_499),
            Decision::Skip
        );
        assert_eq!(
            decide(&task(), Some(&done), Some(500), 1_500),
            Decision::Queue
        );
        let mut young = task();
        young.age_ms = Some(10_000);
        assert_eq!(
            decide(&young, Some(&done), Some(500), 1_500),
            Decision::Skip
        );
    }

    #[test]
    fn itag_change_and_force_requeue_done_tasks() {
        let failed = known(TaskStatus::Failed, 1_000);
        let mut same = task();
        same.itag = Some("v1".into());
        assert_eq!(decide(&same, Some(&failed), None, 2_000), Decision::Skip);
        let mut changed = task();
        changed.itag = Some("v2".into());
        assert_eq!(
            decide(&changed, Some(&failed), None, 2_000),
            Decision::Queue
        );
        let mut forced = task();
        forced.force = true;
        assert_eq!(decide(&forced, Some(&failed), None, 2_000), Decision::Queue);
    }

    #[test]
    fn cancelled_tasks_come_back_only_when_forced() {
        let bad = known(TaskStatus::Bad, 0);
        assert_eq!(decide(&task(), Some(&bad), Some(1), 1_000), Decision::Skip);
        let mut forced = task();
        forced.force = true;
        assert_eq!(decide(&forced, Some(&bad), None, 0), Decision::Queue);
    }
}
