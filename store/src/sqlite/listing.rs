//! Reading tasks back whole: one by its key, or a page of a project's tasks most recently
//! changed first (see [`crate::store::listing`] for the order and the cursor).

use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{Row, Sqlite};

use super::corrupt;
use crate::db;
use spindle_common::message::Task;
use spindle_common::store::{Attempt, StoreError, TaskQuery, TaskRecord, TaskStatus};

/// The columns [`record_from_row`] reads, from `tasks`.
pub(super) const TASK_COLUMNS: &str = "SELECT task, status, claimed, priority, exetime,
    retries, last_crawl_ms, last_error, updated_ms, etag, last_modified, track FROM tasks";

/// A task read with [`TASK_COLUMNS`]. The columns are the truth where they differ from the
/// stored JSON: a retry changes them without rewriting it.
pub(super) fn record_from_row(row: &SqliteRow) -> Result<TaskRecord, StoreError> {
    let json: String = row.try_get("task").map_err(db)?;
    let mut task: Task = serde_json::from_str(&json).map_err(|e| corrupt("tasks.task", e))?;
    task.priority = row.try_get("priority").map_err(db)?;
    task.exetime = row.try_get("exetime").map_err(db)?;
    task.retries = row.try_get::<i64, _>("retries").map_err(db)? as u32;
    task.fetch.etag = row.try_get("etag").map_err(db)?;
    task.fetch.last_modified = row.try_get("last_modified").map_err(db)?;
    let code: i64 = row.try_get("status").map_err(db)?;
    let track: Option<String> = row.try_get("track").map_err(db)?;
    Ok(TaskRecord {
        task,
        status: TaskStatus::from_code(code).ok_or_else(|| corrupt("tasks.status", code))?,
        claimed: row.try_get::<i64, _>("claimed").map_err(db)? != 0,
        last_crawl_ms: row.try_get("last_crawl_ms").map_err(db)?,
        last_error: row.try_get("last_error").map_err(db)?,
        updated_ms: row.try_get("updated_ms").map_err(db)?,
        track: track.as_deref().map(Attempt::from_stored).transpose()?,
    })
}

/// Every project with tasks, in name order: a walk from one project to the next in the
/// index on `(project, updated_ms)`, one seek a project, rather than a read of every entry.
pub(super) async fn task_projects(conn: &mut SqliteConnection) -> Result<Vec<String>, StoreError> {
    sqlx::query_scalar(
        "WITH RECURSIVE p(name) AS (
            SELECT MIN(project) FROM tasks
            UNION ALL
            SELECT (SELECT MIN(project) FROM tasks WHERE project > p.name) FROM p
            WHERE p.name IS NOT NULL)
         SELECT name FROM p WHERE name IS NOT NULL",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db)
}

/// Up to `query.limit` tasks of `project` after the query's cursor, in listing order: the
/// index on `(project, updated_ms)` read backwards from the cursor, the tasks of one
/// millisecond sorted by taskid as they come (SQLite sorts "the last term of the ORDER BY"
/// a millisecond at a time and stops at the limit). One statement text for every query, so
/// it is prepared once: a filter left out is bound as NULL.
pub(super) async fn page(
    conn: &mut SqliteConnection,
    project: &str,
    query: &TaskQuery,
) -> Result<Vec<TaskRecord>, StoreError> {
    let start = query.start_in(project);
    let sql = format!(
        "{TASK_COLUMNS}
         WHERE project = ?1 AND updated_ms <= ?2 AND (updated_ms < ?2 OR ?3 OR taskid < ?4)
            AND (?5 IS NULL OR status = ?5)
            AND (?6 IS NULL OR instr(url, ?6) > 0)
            AND (?7 IS NULL OR json_extract(track, '$[5]') = ?7)
         ORDER BY updated_ms DESC, taskid DESC
         LIMIT ?8"
    );
    // The statement is built from constants only; the query's values are bound.
    let rows = sqlx::query::<Sqlite>(sqlx::AssertSqlSafe(sql))
        .bind(project)
        .bind(start.updated_ms)
        .bind(start.all_at_time)
        .bind(start.taskid_below)
        .bind(query.status.map(TaskStatus::code))
        .bind(query.url_contains.as_deref())
        .bind(query.error_kind_name())
        .bind(i64::try_from(query.limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    rows.iter().map(record_from_row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::SqliteStore;
    use crate::sqlite::schema::query_plan;

    #[tokio::test]
    async fn a_page_is_read_from_the_index_and_never_sorted_whole() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SqliteStore::open(&dir.path().join("s.db"))
            .await
            .expect("open");
        let page = query_plan(
            &store.read,
            &format!(
                "{TASK_COLUMNS} WHERE project = 'p' AND updated_ms <= 5
                    AND (updated_ms < 5 OR 0 OR taskid < 'x')
                 ORDER BY updated_ms DESC, taskid DESC LIMIT 10"
            ),
        )
        .await;
        assert!(page.contains("USING INDEX tasks_changed"), "{page}");
        // "RIGHT PART OF" in older SQLite: a sort of each run of one updated_ms, not of the
        // whole range.
        assert!(page.contains("LAST TERM OF ORDER BY"), "{page}");
        let projects = query_plan(
            &store.read,
            "SELECT MIN(project) FROM tasks WHERE project > 'p'",
        )
        .await;
        assert!(
            projects.contains("COVERING INDEX tasks_changed"),
            "{projects}"
        );
    }
}
