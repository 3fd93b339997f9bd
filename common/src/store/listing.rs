//! Listing tasks for the web UI: the query, its cursor, and the order both stores keep.
//!
//! Tasks are listed most recently changed first: `updated_ms` descending, then project
//! ascending, then taskid descending (byte order). That is a strict total order, since
//! `(project, taskid)` is a task's key, so a cursor naming the last task of a page says
//! exactly where the next page starts: nothing is skipped or repeated between pages, even
//! among tasks changed in the same millisecond, and a task that changes between two pages
//! moves ahead of the cursor (it is not shown twice).
//!
//! Each store reads every project it lists from its index on `(project, updated_ms)`, down
//! from where the cursor falls in that project ([`ListingStart`]), at most `limit` rows each; the
//! pages of several projects are merged here ([`merge_listings`]). Projects are few, tasks many.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use super::{TaskRecord, TaskStatus};
use crate::message::ErrorKind;

/// Tasks a [`TaskQuery`] asks for when the caller does not say.
const DEFAULT_LIMIT: usize = 50;

/// Which tasks [`super::TaskStore::list_tasks`] lists, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskQuery {
    /// Only this project's tasks; `None`: every project's.
    pub project: Option<String>,
    /// Only tasks in this state.
    pub status: Option<TaskStatus>,
    /// Only tasks whose URL contains this text, as is: case-sensitive, and `%` or `_` are
    /// plain characters.
    pub url_contains: Option<String>,
    /// Only tasks whose last attempt failed with this kind of error.
    pub error_kind: Option<ErrorKind>,
    /// Only tasks after this one in the listing order: the cursor of the previous page's
    /// last task ([`TaskCursor::of`]).
    pub before: Option<TaskCursor>,
    /// Most tasks in the page; the caller caps it (the web UI at 200).
    pub limit: usize,
}

impl Default for TaskQuery {
    /// Every task of every project, first page, 50 tasks.
    fn default() -> Self {
        TaskQuery {
            project: None,
            status: None,
            url_contains: None,
            error_kind: None,
            before: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

/// A place in the listing of tasks: the key of the last task of a page.
///
/// Written for URLs as `UPDATED_MS.PROJECT.TASKID` (e.g. `1765100000000.books.abcd`), the
/// taskid percent-encoded but for letters, digits, `-` and `_` (a default taskid, hex, is
/// written as is). Project names are `[A-Za-z0-9_-]`, so the second dot ends the project.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskCursor {
    /// The task's `updated_ms`.
    pub updated_ms: i64,
    /// Its project.
    pub project: String,
    /// Its id.
    pub taskid: String,
}

/// A cursor that is not one [`TaskCursor`] wrote: bad input (HTTP 400), not a store failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed task cursor: {reason} (expected UPDATED_MS.PROJECT.TASKID)")]
pub struct CursorError {
    reason: &'static str,
}

/// What the taskid of a cursor keeps unescaped: what a URL's query never needs to escape.
const TASKID_ESCAPED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_');

impl TaskCursor {
    /// The cursor of `task`: the next page starts after it.
    pub fn of(task: &TaskRecord) -> TaskCursor {
        TaskCursor {
            updated_ms: task.updated_ms,
            project: task.task.project.clone(),
            taskid: task.task.taskid.clone(),
        }
    }
}

impl fmt::Display for TaskCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}",
            self.updated_ms,
            self.project,
            utf8_percent_encode(&self.taskid, TASKID_ESCAPED)
        )
    }
}

impl FromStr for TaskCursor {
    type Err = CursorError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |reason| CursorError { reason };
        let (updated, rest) = text.split_once('.').ok_or(bad("no dot"))?;
        let (project, taskid) = rest.split_once('.').ok_or(bad("only one dot"))?;
        let updated_ms = updated
            .parse::<i64>()
            .map_err(|_| bad("the time is not a number"))?;
        let name_char = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        if project.is_empty() || !project.bytes().all(name_char) {
            return Err(bad("the project is not a project name"));
        }
        let taskid = percent_decode_str(taskid)
            .decode_utf8()
            .map_err(|_| bad("the taskid is not UTF-8"))?;
        Ok(TaskCursor {
            updated_ms,
            project: project.to_string(),
            taskid: taskid.into_owned(),
        })
    }
}

/// Where one project's part of a page starts: tasks with `updated_ms` below
/// `updated_ms`, and those at `updated_ms` either all (`all_at_time`) or those with a taskid
/// below `taskid_below`. Stores bind the three as they are:
/// `updated_ms <= ? AND (updated_ms < ? OR ? OR taskid < ?)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingStart<'a> {
    /// Tasks changed at or before this time (Unix ms).
    pub updated_ms: i64,
    /// All tasks changed at `updated_ms`, or only those below `taskid_below`.
    pub all_at_time: bool,
    /// The first task id excluded at `updated_ms` when not `all_at_time`.
    pub taskid_below: &'a str,
}

impl TaskQuery {
    /// Where `project`'s tasks after the cursor start. A project listed before the cursor's
    /// (in name order) has its tasks of the cursor's millisecond before the cursor; one
    /// listed after it, after.
    pub fn start_in(&self, project: &str) -> ListingStart<'_> {
        match &self.before {
            None => ListingStart {
                updated_ms: i64::MAX,
                all_at_time: true,
                taskid_below: "",
            },
            Some(c) => match project.cmp(c.project.as_str()) {
                Ordering::Less => ListingStart {
                    updated_ms: c.updated_ms,
                    all_at_time: false,
                    taskid_below: "",
                },
                Ordering::Equal => ListingStart {
                    updated_ms: c.updated_ms,
                    all_at_time: false,
                    taskid_below: &c.taskid,
                },
                Ordering::Greater => ListingStart {
                    updated_ms: c.updated_ms,
                    all_at_time: true,
                    taskid_below: "",
                },
            },
        }
    }

    /// The error kind filter as stored in a track (`"timeout"`, `"too_big"`, …).
    pub fn error_kind_name(&self) -> Option<String> {
        // A unit variant always serializes to its name; anything else would match nothing.
        self.error_kind.map(|kind| {
            serde_json::to_value(kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        })
    }
}

/// The listing order of two tasks.
fn listing_order(a: &TaskRecord, b: &TaskRecord) -> Ordering {
    b.updated_ms
        .cmp(&a.updated_ms)
        .then_with(|| a.task.project.cmp(&b.task.project))
        .then_with(|| b.task.taskid.cmp(&a.task.taskid))
}

/// The first `limit` tasks of the pages of several projects, each in listing order: how a
/// backend that reads each project's index on its own makes one page of them.
pub fn merge_listings(pages: Vec<Vec<TaskRecord>>, limit: usize) -> Vec<TaskRecord> {
    let mut tasks: Vec<TaskRecord> = pages.into_iter().flatten().collect();
    tasks.sort_by(listing_order);
    tasks.truncate(limit);
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(updated_ms: i64, project: &str, taskid: &str) -> TaskCursor {
        TaskCursor {
            updated_ms,
            project: project.into(),
            taskid: taskid.into(),
        }
    }

    #[test]
    fn a_cursor_reads_back_what_it_wrote() {
        let plain = cursor(1_765_100_000_000, "books", "abcd");
        assert_eq!(plain.to_string(), "1765100000000.books.abcd");
        for c in [
            plain,
            cursor(-5, "a_b-C9", ""),
            cursor(0, "p", "a.b/c d%e&f=ü"),
        ] {
            let text = c.to_string();
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.%".contains(&b)),
                "{text} needs no escaping in a URL"
            );
            assert_eq!(text.parse::<TaskCursor>(), Ok(c));
        }
    }

    #[test]
    fn malformed_cursors_are_refused() {
        for text in [
            "",
            "123",
            "123.books",
            "x.books.abcd",
            "123..abcd",
            "123.bo oks.abcd",
            "123.books.%FF",
            "99999999999999999999.books.abcd",
        ] {
            assert!(text.parse::<TaskCursor>().is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn each_project_starts_where_the_cursor_falls_in_it() {
        let query = TaskQuery {
            before: Some(cursor(10, "m", "t")),
            ..TaskQuery::default()
        };
        let start = |p| {
            let s = query.start_in(p);
            (s.updated_ms, s.all_at_time, s.taskid_below.to_string())
        };
        assert_eq!(start("a"), (10, false, String::new()));
        assert_eq!(start("m"), (10, false, "t".into()));
        assert_eq!(start("z"), (10, true, String::new()));
        let query = TaskQuery::default();
        let first = query.start_in("a");
        assert_eq!((first.updated_ms, first.all_at_time), (i64::MAX, true));
    }

    #[test]
    fn error_kinds_are_named_as_stored() {
        let query = TaskQuery {
            error_kind: Some(ErrorKind::TooBig),
            ..TaskQuery::default()
        };
        assert_eq!(query.error_kind_name().as_deref(), Some("too_big"));
    }
}
