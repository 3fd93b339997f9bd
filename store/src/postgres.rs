//! The PostgreSQL store of the distributed mode.
//!
//! Same semantics as the SQLite store (the conformance suite in
//! `store/tests/store_conformance.rs` runs one set of cases on both); what differs is how
//! many processes share it. Several services on several machines use one database through
//! a connection pool each, so:
//!
//! - FIFO order comes from the database sequence `tasks_seq`, not from a counter in one
//!   process: it is global across writers and survives restarts.
//! - Claiming locks the rows it picks with `FOR UPDATE SKIP LOCKED` and flips them in the same
//!   statement, so concurrent claimers never hand out one task twice and never wait on each
//!   other's rows.
//! - Multi-row writes send one array per column and `UNNEST` them: one statement (one round
//!   trip, one plan) per chunk of [`CHUNK`] rows, all chunks of a call in one transaction.
//! - Migrations run under sqlx's advisory lock, so roles starting together migrate once.
//!
//! One difference with SQLite remains by nature: PostgreSQL text cannot hold the NUL
//! character, so a task id, URL or error message containing one is refused with a database
//! error (JSON values are unaffected: serde writes NUL in strings as `\u0000`).

mod listing;
mod rows;
mod schema;
mod tasks;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use self::listing::{TASK_COLUMNS, record_from_row};
use self::rows::{
    corrupt, count_from_row, project_from_row, retries_from_row, sql_limit, status_code,
    status_from_row,
};
use self::schema::migrator;
use crate::last_of_each;
use crate::{db, migrate_error};
use spindle_common::message::{Item, Task};
use spindle_common::store::merge_listings;
use spindle_common::store::{
    KnownTask, ProjectChange, ProjectRecord, ProjectStatus, ProjectStore, ResultStore, StoreError,
    TaskCounts, TaskQuery, TaskRecord, TaskStatus, TaskStore, TaskUpdate,
};

/// Rows per statement. PostgreSQL has no small parameter limit for arrays; the chunk only
/// bounds the size of one message and the time one statement holds its row locks.
const CHUNK: usize = 1_000;

/// Connections per process: enough for the scheduler's concurrent reads and writes and the
/// web UI's queries, small enough that many fetcher/processor processes fit the server's
/// `max_connections` (100 by default).
const MAX_CONNECTIONS: u32 = 8;

/// How long a query waits for a free connection, or for a new one to be opened, before it
/// fails: an unreachable database is reported instead of hanging the service.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// The PostgreSQL [`Store`], shared by every process of a distributed deployment.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to a `postgres://` or `postgresql://` URL and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        }
        Self::with_options(PgConnectOptions::from_str(url).map_err(db)?).await
    }

    /// Connects with explicit options (TLS, `search_path`, application name, …) and brings
    /// the schema up to date.
    pub async fn with_options(options: PgConnectOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(db)?;
        // The migrator takes a PostgreSQL advisory lock, so services started at the same
        // time on a fresh database apply the schema once and the others wait for it.
        migrator().run(&pool).await.map_err(migrate_error)?;
        Ok(Self { pool })
    }

    /// Closes every connection of the pool, waiting for checked-out ones to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The columns [`project_from_row`] reads.
const PROJECT_COLUMNS: &str = "SELECT name, definition, status, rate, burst, grp, updated_ms,
    last_start_ms, run_requested_ms, origin FROM projects";

#[async_trait]
impl ProjectStore for PgStore {
    async fn save_project(&self, p: &ProjectRecord) -> Result<(), StoreError> {
        // `last_start_ms` and `run_requested_ms` are written only on insert: saving an edited
        // definition must not forget when the start URLs were last submitted (or they would
        // be submitted again), nor drop a pending "run now".
        sqlx::query(
            "INSERT INTO projects (name, definition, status, rate, burst, grp, updated_ms,
                last_start_ms, run_requested_ms, origin)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (name) DO UPDATE SET definition = excluded.definition,
                status = excluded.status, rate = excluded.rate, burst = excluded.burst,
                grp = excluded.grp, updated_ms = excluded.updated_ms, origin = excluded.origin",
        )
        .bind(&p.name)
        .bind(&p.definition)
        .bind(p.status.as_str())
        .bind(p.rate)
        .bind(p.burst)
        .bind(&p.group)
        .bind(p.updated_ms)
        .bind(p.last_start_ms)
        .bind(p.run_requested_ms)
        .bind(&p.origin)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn projects(&self) -> Result<Vec<ProjectRecord>, StoreError> {
        let sql = format!("{PROJECT_COLUMNS} ORDER BY name");
        // The statement is built from constants only.
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(project_from_row).collect()
    }

    async fn project(&self, name: &str) -> Result<Option<ProjectRecord>, StoreError> {
        let sql = format!("{PROJECT_COLUMNS} WHERE name = $1");
        // The statement is built from constants only; the name is a bound parameter.
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(project_from_row).transpose()
    }

    async fn mark_started(&self, project: &str, at_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE projects SET last_start_ms = $1 WHERE name = $2")
            .bind(at_ms)
            .bind(project)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn request_run(&self, project: &str, now_ms: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE projects SET run_requested_ms = GREATEST($1, last_start_ms + 1),
                updated_ms = GREATEST($1, updated_ms + 1)
             WHERE name = $2",
        )
        .bind(now_ms)
        .bind(project)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_status(
        &self,
        project: &str,
        status: ProjectStatus,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE projects SET status = $1, updated_ms = GREATEST($2, updated_ms + 1)
             WHERE name = $3",
        )
        .bind(status.as_str())
        .bind(now_ms)
        .bind(project)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn update_project(
        &self,
        name: &str,
        change: &ProjectChange,
        now_ms: i64,
    ) -> Result<Option<ProjectRecord>, StoreError> {
        let row = sqlx::query(
            "UPDATE projects SET status = COALESCE($1, status),
                grp = CASE WHEN $2 THEN $3 ELSE grp END,
                rate = COALESCE($4, rate), burst = COALESCE($5, burst),
                updated_ms = GREATEST($6, updated_ms + 1)
             WHERE name = $7
             RETURNING name, definition, status, rate, burst, grp, updated_ms, last_start_ms,
                run_requested_ms, origin",
        )
        .bind(change.status.map(ProjectStatus::as_str))
        .bind(change.group.is_some())
        .bind(change.group.as_ref().and_then(Option::as_deref))
        .bind(change.rate)
        .bind(change.burst)
        .bind(now_ms)
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(project_from_row).transpose()
    }

    async fn delete_project(&self, project: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The project row goes first: its lock orders this delete after any result write
        // that has already seen the project (see `upsert_results`), so that write's rows are
        // visible to the deletes below.
        for sql in [
            "DELETE FROM projects WHERE name = $1",
            "DELETE FROM results WHERE project = $1",
            "DELETE FROM tasks WHERE project = $1",
        ] {
            sqlx::query(sql)
                .bind(project)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }
}

#[async_trait]
impl TaskStore for PgStore {
    async fn known_tasks(
        &self,
        project: &str,
        taskids: &[&str],
    ) -> Result<Vec<KnownTask>, StoreError> {
        let mut known = Vec::new();
        for chunk in taskids.chunks(CHUNK) {
            let rows = sqlx::query(
                "SELECT taskid, status, claimed, last_crawl_ms, age_ms, itag FROM tasks
                 WHERE project = $1 AND taskid = ANY($2::text[])",
            )
            .bind(project)
            .bind(chunk)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
            for row in rows {
                known.push(KnownTask {
                    taskid: row.try_get("taskid").map_err(db)?,
                    status: status_from_row(&row)?,
                    last_crawl_ms: row.try_get("last_crawl_ms").map_err(db)?,
                    age_ms: row.try_get("age_ms").map_err(db)?,
                    itag: row.try_get("itag").map_err(db)?,
                    claimed: row.try_get("claimed").map_err(db)?,
                });
            }
        }
        Ok(known)
    }

    async fn put_tasks(&self, tasks: &[Task], now_ms: i64) -> Result<(), StoreError> {
        self.put(tasks, now_ms, false).await
    }

    async fn put_claimed_tasks(&self, tasks: &[Task], now_ms: i64) -> Result<(), StoreError> {
        self.put(tasks, now_ms, true).await
    }

    async fn claim_ready(
        &self,
        project: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<Task>, StoreError> {
        // SKIP LOCKED: rows another claimer has just picked are passed over rather than
        // waited for (and re-checked, so none is claimed twice). The picked ids go through an
        // array rather than `(project, taskid) IN (…)`, which the planner may turn into a
        // hash join over the whole table; `taskid = ANY(array)` is always a key lookup.
        // RETURNING has no order, so the outer query puts the rows back in queue order.
        let rows = sqlx::query(
            "WITH claimed AS (
                UPDATE tasks SET claimed = TRUE
                WHERE project = $1 AND taskid = ANY(ARRAY(
                    SELECT taskid FROM tasks
                    WHERE project = $1 AND status = $4 AND NOT claimed AND exetime <= $2
                    ORDER BY priority DESC, seq
                    LIMIT $3
                    FOR UPDATE SKIP LOCKED))
                RETURNING task::text AS task, priority, exetime, retries, seq, etag, last_modified)
             SELECT task, priority, exetime, retries, seq, etag, last_modified FROM claimed
             ORDER BY priority DESC, seq",
        )
        .bind(project)
        .bind(now_ms)
        .bind(sql_limit(limit))
        .bind(status_code(TaskStatus::Active))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| {
                let json: String = row.try_get("task").map_err(db)?;
                let mut task: Task =
                    serde_json::from_str(&json).map_err(|e| corrupt("tasks.task", e))?;
                // The columns are the truth: a retry changes them without rewriting the JSON.
                task.priority = row.try_get("priority").map_err(db)?;
                task.exetime = row.try_get("exetime").map_err(db)?;
                task.retries = retries_from_row(row)?;
                task.fetch.etag = row.try_get("etag").map_err(db)?;
                task.fetch.last_modified = row.try_get("last_modified").map_err(db)?;
                task.order = row.try_get("seq").map_err(db)?;
                Ok(task)
            })
            .collect()
    }

    async fn release_claims(&self, project: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("UPDATE tasks SET claimed = FALSE WHERE project = $1 AND claimed")
            .bind(project)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn next_due(&self, project: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(exetime) FROM tasks WHERE project = $1 AND status = $2 AND NOT claimed",
        )
        .bind(project)
        .bind(status_code(TaskStatus::Active))
        .fetch_one(&self.pool)
        .await
        .map_err(db)?)
    }

    async fn finish_tasks(&self, project: &str, updates: &[TaskUpdate]) -> Result<(), StoreError> {
        self.finish(project, updates).await
    }

    async fn task_counts(&self, project: &str) -> Result<TaskCounts, StoreError> {
        let rows = sqlx::query(
            "SELECT status, claimed, COUNT(*) AS n FROM tasks WHERE project = $1
             GROUP BY status, claimed",
        )
        .bind(project)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut counts = TaskCounts::default();
        for row in rows {
            let claimed: bool = row.try_get("claimed").map_err(db)?;
            let n = count_from_row(&row, "n")?;
            match status_from_row(&row)? {
                TaskStatus::Active if claimed => counts.claimed += n,
                TaskStatus::Active => counts.queued += n,
                TaskStatus::Success => counts.success += n,
                TaskStatus::Failed => counts.failed += n,
                TaskStatus::Bad => counts.bad += n,
            }
        }
        Ok(counts)
    }

    async fn task(&self, project: &str, taskid: &str) -> Result<Option<TaskRecord>, StoreError> {
        let sql = format!("{TASK_COLUMNS} WHERE project = $1 AND taskid = $2");
        // The statement is built from constants only; the key is bound.
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(project)
            .bind(taskid)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn list_tasks(&self, query: &TaskQuery) -> Result<Vec<TaskRecord>, StoreError> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let projects = match &query.project {
            Some(project) => vec![project.clone()],
            None => listing::task_projects(&self.pool).await?,
        };
        let mut pages = Vec::with_capacity(projects.len());
        for project in &projects {
            pages.push(listing::page(&self.pool, project, query).await?);
        }
        Ok(merge_listings(pages, query.limit))
    }

    async fn cancel_task(
        &self,
        project: &str,
        taskid: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE tasks SET status = $1, claimed = FALSE, updated_ms = $2
             WHERE project = $3 AND taskid = $4",
        )
        .bind(status_code(TaskStatus::Bad))
        .bind(now_ms)
        .bind(project)
        .bind(taskid)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl ResultStore for PgStore {
    async fn upsert_results(
        &self,
        project: &str,
        items: &[Item],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        if items.is_empty() {
            return Ok(true);
        }
        let items = last_of_each(items, |i| i.taskid.as_str());
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The share lock makes a concurrent `delete_project` (which deletes the project row
        // first) wait for this commit, or this read wait for the delete and find nothing.
        let exists = sqlx::query("SELECT 1 FROM projects WHERE name = $1 FOR SHARE")
            .bind(project)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .is_some();
        if !exists {
            return Ok(false);
        }
        for chunk in items.chunks(CHUNK) {
            let data = chunk
                .iter()
                .map(|i| serde_json::to_string(&i.data).map_err(|e| corrupt("item", e)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            sqlx::query(
                "INSERT INTO results (project, taskid, url, data, updated_ms)
                 SELECT $1, u.taskid, u.url, u.data::json, $5
                 FROM UNNEST($2::text[], $3::text[], $4::text[]) AS u(taskid, url, data)
                 ON CONFLICT (project, taskid) DO UPDATE SET url = excluded.url,
                    data = excluded.data, updated_ms = excluded.updated_ms",
            )
            .bind(project)
            .bind(chunk.iter().map(|i| i.taskid.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|i| i.url.as_str()).collect::<Vec<_>>())
            .bind(data)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn results_page(
        &self,
        project: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let rows = sqlx::query(
            "SELECT taskid, url, data::text AS data FROM results
             WHERE project = $1 AND taskid > $2
             ORDER BY taskid LIMIT $3",
        )
        .bind(project)
        .bind(after.unwrap_or(""))
        .bind(sql_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| {
                let data: String = row.try_get("data").map_err(db)?;
                Ok(Item {
                    taskid: row.try_get("taskid").map_err(db)?,
                    url: row.try_get("url").map_err(db)?,
                    data: serde_json::from_str(&data).map_err(|e| corrupt("results.data", e))?,
                })
            })
            .collect()
    }

    async fn count_results(&self, project: &str) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM results WHERE project = $1")
            .bind(project)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        count_from_row(&row, "n")
    }

    async fn count_results_since(&self, project: &str, since_ms: i64) -> Result<u64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM results WHERE project = $1 AND updated_ms >= $2",
        )
        .bind(project)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        count_from_row(&row, "n")
    }

    async fn last_result_ms(&self, project: &str) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT MAX(updated_ms) FROM results WHERE project = $1")
                .bind(project)
                .fetch_one(&self.pool)
                .await
                .map_err(db)?,
        )
    }

    async fn purge_results(&self, project: &str, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM results WHERE project = $1 AND updated_ms < $2")
            .bind(project)
            .bind(before_ms)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_url_of_another_scheme_is_refused_before_connecting() {
        let err = PgStore::connect("sqlite://x.db")
            .await
            .expect_err("refused");
        assert!(matches!(err, StoreError::UnsupportedUrl(_)), "{err}");
    }
}
