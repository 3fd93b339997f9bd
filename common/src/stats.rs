//! Live figures of each project: written by the scheduler, read by the CLI's progress bar and
//! the web UI.

use std::collections::BTreeMap;
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

use crate::project::ProjectStatus;

/// Outcomes counted in one time window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowCounts {
    /// Tasks newly queued (new URLs and re-queued ones).
    #[serde(default)]
    pub pending: u64,
    /// Tasks done.
    pub success: u64,
    /// Tasks that failed for good.
    pub failed: u64,
    /// Failed attempts that will be retried.
    pub retry: u64,
}

/// Outcomes over the last 5 minutes, hour and day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Windows {
    /// The last 5 minutes.
    pub m5: WindowCounts,
    /// The last hour.
    pub h1: WindowCounts,
    /// The last day.
    pub d1: WindowCounts,
}

/// Pages and errors of one minute, for the web UI's throughput chart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteCounts {
    /// Start of the minute (Unix ms).
    pub minute_ms: i64,
    /// Tasks done.
    pub pages: u64,
    /// Attempts that failed (retried or given up).
    pub errors: u64,
}

/// Figures of one project.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectStats {
    /// Run state, as stored.
    pub status: ProjectStatus,
    /// Held by the scheduler after failures in a row: it sends nothing but a probe now and
    /// then until one succeeds, and the pause ends by itself (the dashboard shows PAUSED).
    #[serde(default)]
    pub paused: bool,
    /// Pages fetched and processed in this run.
    pub success: u64,
    /// Tasks given up on in this run.
    pub failed: u64,
    /// Failed attempts scheduled for another try in this run.
    pub retried: u64,
    /// Items emitted in this run.
    pub items: u64,
    /// New or re-queued tasks in this run.
    pub queued_new: u64,
    /// Follows (and start URLs) dropped in this run as already known: the same task twice,
    /// or one stored and not due again.
    #[serde(default)]
    pub follows_known: u64,
    /// Form values sent as written in this run (`$...` naming no page value).
    #[serde(default)]
    pub form_values_literal: u64,
    /// Pages of this run that were near-duplicates of an earlier page (their follows were
    /// not expanded).
    #[serde(default)]
    pub near_duplicates: u64,
    /// Follows (new to the store) dropped in this run as over an opt-in budget
    /// (`max_pages_per_host`, `max_query_variants`).
    #[serde(default)]
    pub over_budget: u64,
    /// Tasks sent again after their deadline passed unanswered.
    pub resent: u64,
    /// Active tasks waiting in the store (not claimed), as last counted.
    pub queued: u64,
    /// Claimed and waiting in the scheduler's window.
    pub waiting: u64,
    /// Sent and not yet answered.
    pub in_flight: u64,
    /// Done, all time.
    pub total_success: u64,
    /// Failed, all time.
    pub total_failed: u64,
    /// Sum of fetch times in this run (ms), for averages.
    pub fetch_ms: u64,
    /// Sum of processing times in this run (ms).
    pub process_ms: u64,
    /// Outcomes over recent time windows (in memory: empty after a restart).
    pub windows: Windows,
    /// Average fetch time over this run, in ms.
    pub avg_fetch_ms: f64,
    /// Average processing time over this run, in ms.
    pub avg_process_ms: f64,
    /// Failed attempts in a row (retryable ones), the trigger of an automatic pause.
    pub consecutive_failures: u32,
    /// Nothing ready, delayed or in flight.
    pub finished: bool,
    /// Free-form group label, as stored.
    #[serde(default)]
    pub group: Option<String>,
    /// Requests per second the scheduler allows (the token bucket's rate), as stored.
    #[serde(default)]
    pub rate: f64,
    /// Token bucket size, as stored.
    #[serde(default)]
    pub burst: f64,
    /// The minutes of the last hour that saw outcomes, oldest first (in memory: empty after a
    /// restart).
    #[serde(default)]
    pub minutes: Vec<MinuteCounts>,
}

/// The figures of every project, updated by the scheduler.
#[derive(Debug, Default)]
pub struct StatsBoard {
    projects: RwLock<BTreeMap<String, ProjectStats>>,
}

impl StatsBoard {
    /// An empty board.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of one project's figures.
    pub fn get(&self, project: &str) -> Option<ProjectStats> {
        self.read().get(project).cloned()
    }

    /// A copy of every project's figures.
    pub fn all(&self) -> BTreeMap<String, ProjectStats> {
        self.read().clone()
    }

    /// Changes one project's figures.
    pub fn update(&self, project: &str, f: impl FnOnce(&mut ProjectStats)) {
        let mut map = self
            .projects
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(map.entry(project.to_string()).or_default());
    }

    /// Replaces every project's figures (a web UI fed by the scheduler's events).
    pub fn replace_all(&self, projects: BTreeMap<String, ProjectStats>) {
        *self
            .projects
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = projects;
    }

    /// Forgets a project.
    pub fn remove(&self, project: &str) {
        self.projects
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(project);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, ProjectStats>> {
        self.projects
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
