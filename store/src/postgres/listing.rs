//! Reading tasks back whole: one by its key, or a page of a project's tasks most recently
//! changed first (see [`crate::store::listing`] for the order and the cursor).

use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};

use super::rows::{corrupt, retries_from_row, sql_limit, status_code, status_from_row};
use crate::db;
use spindle_common::message::Task;
use spindle_common::store::{Attempt, StoreError, TaskQuery, TaskRecord};

/// The columns [`record_from_row`] reads, from `tasks`.
pub(super) const TASK_COLUMNS: &str = "SELECT task::text AS task, status, claimed, priority,
    exetime, retries, last_crawl_ms, last_error, updated_ms, etag, last_modified,
    track::text AS track FROM tasks";

/// A task read with [`TASK_COLUMNS`]. The columns are the truth where they differ from the
/// stored JSON: a retry changes them without rewriting it.
pub(super) fn record_from_row(row: &PgRow) -> Result<TaskRecord, StoreError> {
    let json: String = row.try_get("task").map_err(db)?;
    let mut task: Task = serde_json::from_str(&json).map_err(|e| corrupt("tasks.task", e))?;
    task.priority = row.try_get("priority").map_err(db)?;
    task.exetime = row.try_get("exetime").map_err(db)?;
    task.retries = retries_from_row(row)?;
    task.fetch.etag = row.try_get("etag").map_err(db)?;
    task.fetch.last_modified = row.try_get("last_modified").map_err(db)?;
    let track: Option<String> = row.try_get("track").map_err(db)?;
    Ok(TaskRecord {
        task,
        status: status_from_row(row)?,
        claimed: row.try_get("claimed").map_err(db)?,
        last_crawl_ms: row.try_get("last_crawl_ms").map_err(db)?,
        last_error: row.try_get("last_error").map_err(db)?,
        updated_ms: row.try_get("updated_ms").map_err(db)?,
        track: track.as_deref().map(Attempt::from_stored).transpose()?,
    })
}

/// Every project with tasks, in name order: a walk from one project to the next in the
/// index on `(project, updated_ms)`, one seek a project, rather than a read of every entry.
pub(super) async fn task_projects(pool: &PgPool) -> Result<Vec<String>, StoreError> {
    sqlx::query_scalar(
        "WITH RECURSIVE p(name) AS (
            SELECT MIN(project) FROM tasks
            UNION ALL
            SELECT (SELECT MIN(project) FROM tasks WHERE project > p.name) FROM p
            WHERE p.name IS NOT NULL)
         SELECT name FROM p WHERE name IS NOT NULL",
    )
    .fetch_all(pool)
    .await
    .map_err(db)
}

/// Up to `query.limit` tasks of `project` after the query's cursor, in listing order: the
/// index on `(project, updated_ms)` read backwards from the cursor, the tasks of one
/// millisecond put in taskid order by an incremental sort that stops at the limit. One
/// statement for every query (a filter left out is bound as NULL), so it is planned once.
pub(super) async fn page(
    pool: &PgPool,
    project: &str,
    query: &TaskQuery,
) -> Result<Vec<TaskRecord>, StoreError> {
    let start = query.start_in(project);
    let sql = format!(
        "{TASK_COLUMNS}
         WHERE project = $1 AND updated_ms <= $2 AND (updated_ms < $2 OR $3 OR taskid < $4)
            AND ($5::int2 IS NULL OR status = $5)
            AND ($6::text IS NULL OR strpos(url, $6) > 0)
            AND ($7::text IS NULL OR track->>5 = $7)
         ORDER BY updated_ms DESC, taskid DESC
         LIMIT $8"
    );
    // The statement is built from constants only; the query's values are bound.
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(project)
        .bind(start.updated_ms)
        .bind(start.all_at_time)
        .bind(start.taskid_below)
        .bind(query.status.map(status_code))
        .bind(query.url_contains.as_deref())
        .bind(query.error_kind_name())
        .bind(sql_limit(query.limit))
        .fetch_all(pool)
        .await
        .map_err(db)?;
    rows.iter().map(record_from_row).collect()
}
