//! The store: where projects, the task frontier and results are kept.
//!
//! Three contracts by concern ([`ProjectStore`], [`TaskStore`], [`ResultStore`]), which every
//! backend implements together as a [`Store`]; the backends (SQLite for the embedded default,
//! PostgreSQL for the distributed mode) live in the `spindle-store` crate, so nothing here
//! names a database driver. The store is the frontier of record: the scheduler keeps only a
//! bounded window of it in memory and *claims* ready tasks in batches. A claimed task is on
//! its way (in the window, on the bus, or being fetched); [`TaskStore::release_claims`]
//! returns every claim to the queue, which is how a restarted scheduler recovers what was in
//! flight when the process died.

mod edit;
mod listing;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::message::{ErrorKind, Item, Outcome, Task};

pub use crate::project::{InvalidStatus, ProjectStatus};
pub use listing::{CursorError, ListingStart, TaskCursor, TaskQuery, merge_listings};

/// What went wrong in the store.
///
/// Backends map their driver's errors into it and decide which are transient: the contract
/// names no database crate.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or is unreachable.
    #[error("database: {source}")]
    Database {
        /// The driver's error.
        source: Box<dyn std::error::Error + Send + Sync>,
        /// The database is unreachable for now; see [`StoreError::is_transient`].
        transient: bool,
    },
    /// The schema could not be brought up to date.
    #[error("database migration: {0}")]
    Migrate(Box<dyn std::error::Error + Send + Sync>),
    /// A stored value could not be read back.
    #[error("corrupt stored value in {what}: {detail}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// Why it could not be read.
        detail: String,
    },
    /// The database URL names no backend this build has.
    #[error(
        "unsupported database URL `{0}` (expected sqlite://PATH or postgres://USER@HOST/DATABASE)"
    )]
    UnsupportedUrl(String),
}

impl StoreError {
    /// The database is unreachable for now (a lost connection, a server shutting down or
    /// starting, a pool that timed out), so the same work may succeed once it is back; every
    /// other error (a full disk, a corrupt value, a constraint) stays as it is on a retry.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Database {
                transient: true,
                ..
            }
        )
    }
}

/// Life cycle of a task, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting, delayed or in flight.
    Active,
    /// Fetched and processed.
    Success,
    /// Given up on after its retries.
    Failed,
    /// Cancelled.
    Bad,
}

impl TaskStatus {
    /// The stored code.
    pub fn code(self) -> i64 {
        match self {
            TaskStatus::Active => 1,
            TaskStatus::Success => 2,
            TaskStatus::Failed => 3,
            TaskStatus::Bad => 4,
        }
    }

    /// The status of a stored code.
    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            1 => TaskStatus::Active,
            2 => TaskStatus::Success,
            3 => TaskStatus::Failed,
            4 => TaskStatus::Bad,
            _ => return None,
        })
    }
}

/// A project as stored: its definition and run state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectRecord {
    /// Unique name.
    pub name: String,
    /// The project file (TOML) it was loaded from.
    pub definition: String,
    /// Run state, stored as its upper-case name ([`ProjectStatus::as_str`]).
    pub status: ProjectStatus,
    /// Requests per second.
    pub rate: f64,
    /// Token bucket size.
    pub burst: f64,
    /// Free-form group label.
    pub group: Option<String>,
    /// Last change of the definition or status (Unix ms).
    pub updated_ms: i64,
    /// Last time the start URLs were submitted (Unix ms), 0 if never.
    pub last_start_ms: i64,
    /// Last "run now" request (Unix ms), 0 if never; the scheduler submits the start URLs
    /// again, forced, while it is later than `last_start_ms`. Set by
    /// [`ProjectStore::request_run`] only: [`ProjectStore::save_project`] keeps the stored value.
    pub run_requested_ms: i64,
    /// The project file it was loaded from (`--projects DIR`), as a canonical path; `None`
    /// for a project created in the web UI or by `spindle crawl`. Written by
    /// [`ProjectStore::save_project`] like the definition.
    pub origin: Option<String>,
}

/// A live edit of a project's settings ([`ProjectStore::update_project`]): each field set is
/// applied, each `None` left as stored.
///
/// The store checks nothing: the caller validates first. The scheduler expects `rate` > 0
/// and `burst` ≥ 1 (finite; the web UI allows rate up to 10,000 and burst up to 100,000);
/// `status` is valid by its type. The definition is not
/// rewritten: its `rate`, `burst` and `group` keys are what the next save of the file (or of
/// the definition) brings back.
///
/// As JSON (the web UI's `PATCH` body), a missing key leaves a setting, `"group": null`
/// clears the group, and `status` is a status name in any case (`"stop"`); an unknown one is
/// refused with [`InvalidStatus`]'s message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectChange {
    /// New run state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ProjectStatus>,
    /// New group label: `Some(None)` clears it.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub group: Option<Option<String>>,
    /// New requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// New token bucket size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<f64>,
}

/// A key that is present, `null` included: `Some` of its value (a missing key takes the
/// field's default, `None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// What the scheduler needs to know about a task it sees again.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownTask {
    /// The task.
    pub taskid: String,
    /// Its stored status.
    pub status: TaskStatus,
    /// Last time an attempt of it ended (Unix ms).
    pub last_crawl_ms: Option<i64>,
    /// Its re-crawl age.
    pub age_ms: Option<i64>,
    /// Its re-crawl tag.
    pub itag: Option<String>,
    /// Claimed by the scheduler: waiting in its window or in flight.
    pub claimed: bool,
}

/// What a store knows of a task without looking its row up ([`TaskStore::presence`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Not stored: a new task.
    Unknown,
    /// Stored without re-crawl rules of its own (no `age`, no `itag`): a follow without
    /// rules of its own to it is a duplicate whatever its state.
    Plain,
    /// Stored with rules, or the store cannot tell: ask [`TaskStore::known_tasks`].
    Ask,
}

/// The end of one attempt of a task, to be written back.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskUpdate {
    /// The task.
    pub taskid: String,
    /// New status; `Active` means "retry at `exetime`".
    pub status: TaskStatus,
    /// When to retry (Unix ms), for `Active`.
    pub exetime: i64,
    /// Attempts so far.
    pub retries: u32,
    /// When the attempt ended (Unix ms).
    pub at_ms: i64,
    /// Why it failed, if it did.
    pub last_error: Option<String>,
    /// `ETag` of a successful fetch; `None` keeps the stored one.
    pub etag: Option<String>,
    /// `Last-Modified` of a successful fetch; `None` keeps the stored one.
    pub last_modified: Option<String>,
    /// What the attempt did, shown on the task's page; replaces the stored one (`None`
    /// clears it: an attempt without figures).
    pub track: Option<Attempt>,
}

/// What the last attempt of a task did (its "track"), from its [`Outcome`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// HTTP status, when a response came back.
    pub status_code: Option<u16>,
    /// Fetch time in milliseconds.
    pub fetch_ms: u32,
    /// Processing time in milliseconds.
    pub process_ms: u32,
    /// Follows emitted.
    pub follows: u32,
    /// Items emitted.
    pub items: u32,
    /// Why it failed, if it did.
    pub error_kind: Option<ErrorKind>,
}

/// An [`Attempt`] as the stores keep it: a JSON array in field order,
/// `[status_code, fetch_ms, process_ms, follows, items, error_kind]`, e.g.
/// `[200,35,4,12,1,null]`. A quarter the bytes of the object: every task row carries one,
/// and a row that grows by much at its attempt's end no longer fits its page.
type StoredAttempt = (Option<u16>, u32, u32, u32, u32, Option<ErrorKind>);

impl Attempt {
    /// The stored form of the attempt, shared by every backend (see [`StoredAttempt`]).
    pub fn to_stored(&self) -> Result<String, StoreError> {
        let stored: StoredAttempt = (
            self.status_code,
            self.fetch_ms,
            self.process_ms,
            self.follows,
            self.items,
            self.error_kind,
        );
        serde_json::to_string(&stored).map_err(|e| StoreError::Corrupt {
            what: "track",
            detail: e.to_string(),
        })
    }

    /// An attempt read back from its stored form. An error kind this build does not know
    /// (written by a newer one sharing the database) reads as [`ErrorKind::Other`].
    pub fn from_stored(text: &str) -> Result<Attempt, StoreError> {
        let (status_code, fetch_ms, process_ms, follows, items, kind): (
            Option<u16>,
            u32,
            u32,
            u32,
            u32,
            Option<serde_json::Value>,
        ) = serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
            what: "tasks.track",
            detail: e.to_string(),
        })?;
        Ok(Attempt {
            status_code,
            fetch_ms,
            process_ms,
            follows,
            items,
            error_kind: kind.map(|k| serde_json::from_value(k).unwrap_or(ErrorKind::Other)),
        })
    }
}

impl From<&Outcome> for Attempt {
    fn from(o: &Outcome) -> Self {
        Attempt {
            status_code: o.status_code,
            fetch_ms: o.fetch_ms,
            process_ms: o.process_ms,
            follows: o.follows,
            items: o.items,
            error_kind: o.error.as_ref().map(|e| e.kind),
        }
    }
}

/// Everything stored about one task, for `spindle task` and the web UI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The task as queued.
    pub task: Task,
    /// Its status.
    pub status: TaskStatus,
    /// Claimed by the scheduler (waiting in its window or in flight).
    pub claimed: bool,
    /// Last time an attempt ended (Unix ms).
    pub last_crawl_ms: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Last change (Unix ms): when it was queued, re-queued, ended an attempt or was
    /// cancelled (a claim leaves it).
    pub updated_ms: i64,
    /// What its last attempt did; `None` before its first.
    pub track: Option<Attempt>,
}

/// Task counts of one project.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCounts {
    /// Active and not claimed: waiting or delayed.
    pub queued: u64,
    /// Active and claimed: in the scheduler's window or in flight.
    pub claimed: u64,
    /// Done.
    pub success: u64,
    /// Given up.
    pub failed: u64,
    /// Cancelled.
    pub bad: u64,
}

/// The projects: definitions and run state, read by every role.
#[async_trait]
pub trait ProjectStore: Send + Sync + 'static {
    /// Creates or replaces a project.
    async fn save_project(&self, project: &ProjectRecord) -> Result<(), StoreError>;
    /// Every project.
    async fn projects(&self) -> Result<Vec<ProjectRecord>, StoreError>;
    /// One project.
    async fn project(&self, name: &str) -> Result<Option<ProjectRecord>, StoreError>;
    /// Records that the start URLs of `project` were submitted at `at_ms`.
    async fn mark_started(&self, project: &str, at_ms: i64) -> Result<(), StoreError>;
    /// Asks the scheduler (in this process or another) to submit the project's start URLs
    /// again, forced: sets `run_requested_ms` to `now_ms`, or just after `last_start_ms` if
    /// that is later (clocks of two machines differ), and bumps `updated_ms` so the scheduler
    /// reloads the project. False if there is no such project.
    async fn request_run(&self, project: &str, now_ms: i64) -> Result<bool, StoreError>;
    /// Sets a project's run state and bumps `updated_ms` so the scheduler reloads it. False
    /// if there is no such project.
    async fn set_status(
        &self,
        project: &str,
        status: ProjectStatus,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Applies a live edit of a project's settings (see [`ProjectChange`] for what the caller
    /// validates) and bumps `updated_ms` like [`ProjectStore::set_status`], so the scheduler reloads
    /// the project and applies a new rate and burst at its next reload (every 2 s). The
    /// record as changed, or `None` if there is no such project.
    async fn update_project(
        &self,
        name: &str,
        change: &ProjectChange,
        now_ms: i64,
    ) -> Result<Option<ProjectRecord>, StoreError>;
    /// Deletes a project with all its tasks and results, in one transaction.
    async fn delete_project(&self, project: &str) -> Result<(), StoreError>;
}

/// The tasks of record: the frontier the scheduler claims from and writes back to, and the
/// task views of `spindle task` and the web UI.
#[async_trait]
pub trait TaskStore: Send + Sync + 'static {
    /// The stored state of those of `taskids` that are known, in one round trip per chunk.
    async fn known_tasks(
        &self,
        project: &str,
        taskids: &[&str],
    ) -> Result<Vec<KnownTask>, StoreError>;
    /// What the store can tell about each of `taskids` without a round trip, for the
    /// scheduler to skip [`TaskStore::known_tasks`] where it can. The default, for a store that
    /// cannot tell, is [`Presence::Ask`] for each; the SQLite store answers from memory.
    async fn presence(
        &self,
        _project: &str,
        taskids: &[&str],
    ) -> Result<Vec<Presence>, StoreError> {
        Ok(vec![Presence::Ask; taskids.len()])
    }
    /// Inserts or re-queues tasks as active and unclaimed (in one transaction), each at its
    /// [`Task::order`] among the tasks of its priority, or after every task queued so far
    /// when it has none (0).
    async fn put_tasks(&self, tasks: &[Task], now_ms: i64) -> Result<(), StoreError>;
    /// Like [`TaskStore::put_tasks`], but the tasks are stored claimed: the scheduler takes them
    /// straight into its window instead of claiming them back from the queue. A crash leaves
    /// them claimed, and [`TaskStore::release_claims`] at the next start queues them again.
    async fn put_claimed_tasks(&self, tasks: &[Task], now_ms: i64) -> Result<(), StoreError>;
    /// Claims up to `limit` active, unclaimed tasks due by `now_ms`, best first (priority,
    /// then place), each with its place in [`Task::order`].
    async fn claim_ready(
        &self,
        project: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<Task>, StoreError>;
    /// Returns every claim of `project` to the queue; the number returned.
    async fn release_claims(&self, project: &str) -> Result<u64, StoreError>;
    /// Earliest `exetime` of an active, unclaimed task.
    async fn next_due(&self, project: &str) -> Result<Option<i64>, StoreError>;
    /// Writes attempt endings (in one transaction); a retry becomes active and unclaimed.
    async fn finish_tasks(&self, project: &str, updates: &[TaskUpdate]) -> Result<(), StoreError>;
    /// Task counts by state.
    async fn task_counts(&self, project: &str) -> Result<TaskCounts, StoreError>;
    /// One task.
    async fn task(&self, project: &str, taskid: &str) -> Result<Option<TaskRecord>, StoreError>;
    /// Up to `query.limit` tasks matching `query`, most recently changed first (`updated_ms`
    /// descending, then project, then taskid descending), after `query.before`: set it to
    /// [`TaskCursor::of`] the last task of a page to get the next page. Each project is read
    /// from its index of `(project, updated_ms)` down from the cursor; filters are checked on
    /// the rows met on the way, so a rare filter may read far.
    async fn list_tasks(&self, query: &TaskQuery) -> Result<Vec<TaskRecord>, StoreError>;
    /// Marks a task bad (cancelled) and takes it off the queue; false if it is unknown.
    async fn cancel_task(
        &self,
        project: &str,
        taskid: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
}

/// The results: items written by the result writer, read by exports and the web UI.
#[async_trait]
pub trait ResultStore: Send + Sync + 'static {
    /// Inserts or replaces items by `(project, taskid)` (in one transaction); `false` when the
    /// project no longer exists, in which case nothing is written: pages still in flight when
    /// a project is deleted must not bring its results back.
    async fn upsert_results(
        &self,
        project: &str,
        items: &[Item],
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Up to `limit` items with a key after `after`, in key order: the paging of an export.
    async fn results_page(
        &self,
        project: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError>;
    /// Number of items of a project.
    async fn count_results(&self, project: &str) -> Result<u64, StoreError>;
    /// Number of items of a project written (inserted or replaced) at or after `since_ms`:
    /// with the items a crawl emitted, how many were replaced by later ones.
    async fn count_results_since(&self, project: &str, since_ms: i64) -> Result<u64, StoreError>;
    /// When the newest item of a project was written (Unix ms), if it has any.
    async fn last_result_ms(&self, project: &str) -> Result<Option<i64>, StoreError>;
    /// Deletes results last updated before `before_ms`; the number deleted.
    async fn purge_results(&self, project: &str, before_ms: i64) -> Result<u64, StoreError>;
}

/// Persistent state of Spindle: a backend keeps all three concerns in one database, so
/// deleting a project takes its tasks and results with it in one transaction.
pub trait Store: ProjectStore + TaskStore + ResultStore {}

impl<T: ProjectStore + TaskStore + ResultStore + ?Sized> Store for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_change_tells_a_missing_group_from_a_cleared_one() {
        let change = |json| serde_json::from_str::<ProjectChange>(json).expect("parses");
        assert_eq!(change("{}"), ProjectChange::default());
        assert_eq!(change(r#"{"group": null}"#).group, Some(None));
        assert_eq!(
            change(r#"{"group": "shop"}"#).group,
            Some(Some("shop".into()))
        );
        let rate = change(r#"{"rate": 2.5, "burst": 5}"#);
        assert_eq!(
            (rate.rate, rate.burst, rate.group),
            (Some(2.5), Some(5.0), None)
        );
        assert!(serde_json::from_str::<ProjectChange>(r#"{"name": "x"}"#).is_err());
        let cleared = ProjectChange {
            group: Some(None),
            ..ProjectChange::default()
        };
        assert_eq!(
            serde_json::to_string(&cleared).expect("json"),
            r#"{"group":null}"#
        );
    }

    #[test]
    fn an_attempt_is_stored_as_a_short_array() {
        let attempt = Attempt {
            status_code: Some(404),
            fetch_ms: 35,
            process_ms: 4,
            follows: 0,
            items: 0,
            error_kind: Some(ErrorKind::Http),
        };
        let stored = attempt.to_stored().expect("stored");
        assert_eq!(stored, r#"[404,35,4,0,0,"http"]"#);
        assert_eq!(Attempt::from_stored(&stored).expect("read"), attempt);
        assert!(Attempt::from_stored("{}").is_err());
        let newer = Attempt::from_stored(r#"[null,1,0,0,0,"quota"]"#).expect("read");
        assert_eq!(newer.error_kind, Some(ErrorKind::Other));
    }
}
