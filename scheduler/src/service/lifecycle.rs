//! The project life cycle as steered from outside the scheduler: "run now", deletion, and
//! the expiry of results (`result_ttl`).
//!
//! Everything arrives through the store, so it works whichever process asks (the CLI, the
//! web UI, a scheduler on another machine) and survives a restart:
//!
//! - **Run now** is `projects.run_requested_ms`, set by [`Store::request_run`], which also
//!   bumps `updated_ms` so the next reload picks the project up. While the request is later
//!   than the project's last start, [`start_due`] says the start URLs are due, forced (known
//!   URLs are queued again); the start is then recorded at or after the request
//!   ([`started_at`]), so each request is served once even when the asking machine's clock is
//!   ahead. A request for a project that is not running waits until it runs.
//! - **Deletion** removes the project from the store; the next reload forgets it here and
//!   takes it off the figures board ([`Scheduler::forget_deleted`]).
//! - **`result_ttl`**: results not updated for that long are purged for every loaded project
//!   when it is loaded and then at most once per [`PURGE_EVERY_MS`]
//!   ([`Scheduler::purge_expired_results`]).
//!
//! [`Store::request_run`]: spindle_common::Store::request_run

use std::collections::HashSet;

use spindle_common::store::ProjectRecord;

use super::{Loaded, Scheduler};
use crate::SchedulerError;

/// Least time between two purges of one project's expired results.
pub(super) const PURGE_EVERY_MS: i64 = 60_000;

/// Whether the start URLs of a running project are due at `now`: `None` if not, else
/// whether they are forced. The first start is a plain submission (known URLs are deduped);
/// a "run now" request and periodic restarts (an interval or a cron expression) force them.
pub(super) fn start_due(loaded: &Loaded, now: i64) -> Option<bool> {
    let last = loaded.record.last_start_ms;
    if loaded.record.run_requested_ms > last {
        return Some(true);
    }
    if last == 0 {
        return Some(false);
    }
    match loaded.project.next_start_after(last) {
        Some(due) if due <= now => Some(true),
        _ => None,
    }
}

/// The start time to record for a start at `now`: never before the run request it serves.
pub(super) fn started_at(record: &ProjectRecord, now: i64) -> i64 {
    now.max(record.run_requested_ms)
}

impl Scheduler {
    /// Forgets the loaded projects whose names are not in `stored` (deleted from the store),
    /// with their figures.
    pub(super) fn forget_deleted(&mut self, stored: &HashSet<String>) {
        let board = &self.board;
        self.projects.retain(|name, _| {
            let keep = stored.contains(name);
            if !keep {
                board.remove(name);
                tracing::info!(project = %name, "project deleted; unloaded");
            }
            keep
        });
    }

    /// Deletes the results of each loaded project with a `result_ttl` that were last updated
    /// longer ago than that; a project is looked at when loaded, then once per
    /// [`PURGE_EVERY_MS`].
    pub(super) async fn purge_expired_results(&mut self, now: i64) -> Result<(), SchedulerError> {
        for (name, loaded) in &mut self.projects {
            let Some(ttl) = loaded.project.result_ttl else {
                continue;
            };
            if loaded
                .purged_ms
                .is_some_and(|at| now.saturating_sub(at) < PURGE_EVERY_MS)
            {
                continue;
            }
            loaded.purged_ms = Some(now);
            let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
            let purged = self
                .store
                .purge_results(name, now.saturating_sub(ttl_ms))
                .await?;
            if purged > 0 {
                tracing::info!(project = %name, purged, "deleted results older than result_ttl");
            }
        }
        Ok(())
    }
}
