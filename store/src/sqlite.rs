//! The SQLite store of the embedded mode.
//!
//! WAL journal, `synchronous = NORMAL` (a power cut may lose the last commits, never corrupt
//! the file), a busy timeout, and all writes through one connection so writers never fight
//! for the lock; reads use a small pool of their own. Multi-row writes run in one transaction
//! each, as statements of a few fixed sizes (see [`rows`]).

mod keys;
mod listing;
mod rows;
mod schema;
mod tasks;

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};

use self::keys::{TaskKeys, log_migrated_keys};
use self::listing::{TASK_COLUMNS, record_from_row};
use self::rows::CHUNK;
use self::schema::migrator;
use crate::{db, migrate_error};
use spindle_common::message::{Item, Task};
use spindle_common::store::merge_listings;
use spindle_common::store::{
    KnownTask, Presence, ProjectChange, ProjectRecord, ProjectStatus, ProjectStore, ResultStore,
    StoreError, TaskCounts, TaskQuery, TaskRecord, TaskStatus, TaskStore, TaskUpdate,
};

/// Opens a write transaction that takes the write lock at once: it reads the key log before
/// it writes, and a deferred transaction whose snapshot another writer overtook in between
/// could not write at all.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// The SQLite [`Store`].
///
/// Tasks are stored in insertion order and found through an in-memory key map (see
/// [`keys`]): about 17 bytes of memory per known task, which the scale benchmark reports.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    seq: Arc<AtomicI64>,
    keys: Arc<Mutex<TaskKeys>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        Self::with_options(options).await
    }

    /// Opens a `sqlite://PATH` URL.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if !url.starts_with("sqlite:") {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(db)?
            .create_if_missing(true);
        Self::with_options(options).await
    }

    async fn with_options(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30));
        // Page cache: the writer gets most (it walks the queue index); readers a little each,
        // so the process stays small whatever the database size.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone().pragma("cache_size", "-8000"))
            .await
            .map_err(db)?;
        migrator().run(&write).await.map_err(migrate_error)?;
        log_migrated_keys(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true).pragma("cache_size", "-2000"))
            .await
            .map_err(db)?;
        // `seq` orders tasks first-in first-out. It starts from the wall clock in microseconds
        // rather than from `MAX(seq)`, which would read the whole task table at every start:
        // a process draws far fewer than a million numbers a second, so a later start always
        // begins above every number drawn before (unless the clock steps back).
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        Ok(Self {
            write,
            read,
            seq: Arc::new(AtomicI64::new(now_us)),
            keys: Arc::default(),
        })
    }

    fn next_seq(&self) -> i64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The `seq` of a task put with `order`: its own place when it has one (and numbers drawn
    /// later come after it), else the next number.
    fn place(&self, order: i64) -> i64 {
        if order > 0 {
            self.seq.fetch_max(order, Ordering::Relaxed);
            order
        } else {
            self.next_seq()
        }
    }
}

fn corrupt(what: &'static str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: err.to_string(),
    }
}

/// The `status` column of a project row.
fn status_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ProjectStatus, StoreError> {
    let text: String = row.try_get("status").map_err(db)?;
    text.parse().map_err(|e| corrupt("projects.status", e))
}

fn project_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ProjectRecord, StoreError> {
    Ok(ProjectRecord {
        name: row.try_get("name").map_err(db)?,
        definition: row.try_get("definition").map_err(db)?,
        status: status_from_row(row)?,
        rate: row.try_get("rate").map_err(db)?,
        burst: row.try_get("burst").map_err(db)?,
        group: row.try_get("grp").map_err(db)?,
        updated_ms: row.try_get("updated_ms").map_err(db)?,
        last_start_ms: row.try_get("last_start_ms").map_err(db)?,
        run_requested_ms: row.try_get("run_requested_ms").map_err(db)?,
        origin: row.try_get("origin").map_err(db)?,
    })
}

#[async_trait]
impl ProjectStore for SqliteStore {
    async fn save_project(&self, p: &ProjectRecord) -> Result<(), StoreError> {
        // `last_start_ms` and `run_requested_ms` are written only on insert: saving an edited
        // definition must neither forget the last start nor drop a pending "run now".
        sqlx::query(
            "INSERT INTO projects (name, definition, status, rate, burst, grp, updated_ms,
                last_start_ms, run_requested_ms, origin)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT(name) DO UPDATE SET definition = excluded.definition,
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
        .execute(&self.write)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn projects(&self) -> Result<Vec<ProjectRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM projects ORDER BY name")
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        rows.iter().map(project_from_row).collect()
    }

    async fn project(&self, name: &str) -> Result<Option<ProjectRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM projects WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.read)
            .await
            .map_err(db)?;
        row.as_ref().map(project_from_row).transpose()
    }

    async fn mark_started(&self, project: &str, at_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE projects SET last_start_ms = ? WHERE name = ?")
            .bind(at_ms)
            .bind(project)
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn request_run(&self, project: &str, now_ms: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE projects SET run_requested_ms = MAX(?1, last_start_ms + 1),
                updated_ms = MAX(?1, updated_ms + 1)
             WHERE name = ?2",
        )
        .bind(now_ms)
        .bind(project)
        .execute(&self.write)
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
            "UPDATE projects SET status = ?1, updated_ms = MAX(?2, updated_ms + 1) WHERE name = ?3",
        )
        .bind(status.as_str())
        .bind(now_ms)
        .bind(project)
        .execute(&self.write)
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
            "UPDATE projects SET status = COALESCE(?1, status),
                grp = CASE WHEN ?2 THEN ?3 ELSE grp END,
                rate = COALESCE(?4, rate), burst = COALESCE(?5, burst),
                updated_ms = MAX(?6, updated_ms + 1)
             WHERE name = ?7
             RETURNING *",
        )
        .bind(change.status.map(ProjectStatus::as_str))
        .bind(change.group.is_some())
        .bind(change.group.as_ref().and_then(Option::as_deref))
        .bind(change.rate)
        .bind(change.burst)
        .bind(now_ms)
        .bind(name)
        .fetch_optional(&self.write)
        .await
        .map_err(db)?;
        row.as_ref().map(project_from_row).transpose()
    }

    async fn delete_project(&self, project: &str) -> Result<(), StoreError> {
        let mut tx = self.write.begin_with(BEGIN_WRITE).await.map_err(db)?;
        for sql in [
            "DELETE FROM results WHERE project = ?",
            "DELETE FROM tasks WHERE project = ?",
            "DELETE FROM task_keys WHERE project = ?",
            "DELETE FROM projects WHERE name = ?",
        ] {
            sqlx::query(sql)
                .bind(project)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        // An empty log row tells every process holding the project's keys to forget them.
        let log_id = sqlx::query("INSERT INTO task_keys (project, pairs) VALUES (?, x'')")
            .bind(project)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .last_insert_rowid();
        tx.commit().await.map_err(db)?;
        self.keys().apply(log_id, project, &[]);
        Ok(())
    }
}

#[async_trait]
impl TaskStore for SqliteStore {
    async fn known_tasks(
        &self,
        project: &str,
        taskids: &[&str],
    ) -> Result<Vec<KnownTask>, StoreError> {
        let mut conn = self.read.acquire().await.map_err(db)?;
        let ids: Vec<i64> = self
            .resolve(&mut conn, project, taskids)
            .await?
            .into_values()
            .map(|k| k.id)
            .collect();
        let mut known = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT taskid, status, claimed, last_crawl_ms, age_ms, itag FROM tasks WHERE id IN ",
            );
            rows::push_id_list(&mut q, chunk);
            for row in q.build().fetch_all(&mut *conn).await.map_err(db)? {
                let code: i64 = row.try_get("status").map_err(db)?;
                known.push(KnownTask {
                    taskid: row.try_get("taskid").map_err(db)?,
                    status: TaskStatus::from_code(code)
                        .ok_or_else(|| corrupt("tasks.status", code))?,
                    last_crawl_ms: row.try_get("last_crawl_ms").map_err(db)?,
                    age_ms: row.try_get("age_ms").map_err(db)?,
                    itag: row.try_get("itag").map_err(db)?,
                    claimed: row.try_get::<i64, _>("claimed").map_err(db)? != 0,
                });
            }
        }
        Ok(known)
    }

    async fn presence(&self, project: &str, taskids: &[&str]) -> Result<Vec<Presence>, StoreError> {
        let mut conn = self.read.acquire().await.map_err(db)?;
        self.refresh(&mut conn).await?;
        let keys = self.keys();
        Ok(taskids.iter().map(|t| keys.presence(project, t)).collect())
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
        let rows = sqlx::query(
            "UPDATE tasks SET claimed = 1
             WHERE id IN (
                SELECT id FROM tasks
                WHERE project = ?1 AND status = 1 AND claimed = 0 AND exetime <= ?2
                ORDER BY priority DESC, seq LIMIT ?3)
             RETURNING task, priority, exetime, retries, seq, etag, last_modified",
        )
        .bind(project)
        .bind(now_ms)
        .bind(limit as i64)
        .fetch_all(&self.write)
        .await
        .map_err(db)?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let json: String = row.try_get("task").map_err(db)?;
            let mut task: Task =
                serde_json::from_str(&json).map_err(|e| corrupt("tasks.task", e))?;
            task.priority = row.try_get("priority").map_err(db)?;
            task.exetime = row.try_get("exetime").map_err(db)?;
            task.retries = row.try_get::<i64, _>("retries").map_err(db)? as u32;
            task.fetch.etag = row.try_get("etag").map_err(db)?;
            task.fetch.last_modified = row.try_get("last_modified").map_err(db)?;
            let seq: i64 = row.try_get("seq").map_err(db)?;
            task.order = seq;
            claimed.push((seq, task));
        }
        claimed.sort_by(|(sa, a), (sb, b)| b.priority.cmp(&a.priority).then(sa.cmp(sb)));
        Ok(claimed.into_iter().map(|(_, t)| t).collect())
    }

    async fn release_claims(&self, project: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("UPDATE tasks SET claimed = 0 WHERE project = ? AND claimed = 1")
            .bind(project)
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn next_due(&self, project: &str) -> Result<Option<i64>, StoreError> {
        // Left to itself SQLite reads the project's whole range of `tasks_changed` (every
        // task, done ones included) rather than the queue's own index.
        Ok(sqlx::query_scalar(
            "SELECT MIN(exetime) FROM tasks INDEXED BY tasks_queue
             WHERE project = ? AND status = 1 AND claimed = 0",
        )
        .bind(project)
        .fetch_one(&self.read)
        .await
        .map_err(db)?)
    }

    async fn finish_tasks(&self, project: &str, updates: &[TaskUpdate]) -> Result<(), StoreError> {
        self.finish(project, updates).await
    }

    async fn task_counts(&self, project: &str) -> Result<TaskCounts, StoreError> {
        let rows = sqlx::query(
            "SELECT status, claimed, COUNT(*) AS n FROM tasks WHERE project = ? GROUP BY status, claimed",
        )
        .bind(project)
        .fetch_all(&self.read)
        .await.map_err(db)?;
        let mut counts = TaskCounts::default();
        for row in rows {
            let status: i64 = row.try_get("status").map_err(db)?;
            let claimed: i64 = row.try_get("claimed").map_err(db)?;
            let n = row.try_get::<i64, _>("n").map_err(db)? as u64;
            match TaskStatus::from_code(status) {
                Some(TaskStatus::Active) if claimed != 0 => counts.claimed += n,
                Some(TaskStatus::Active) => counts.queued += n,
                Some(TaskStatus::Success) => counts.success += n,
                Some(TaskStatus::Failed) => counts.failed += n,
                Some(TaskStatus::Bad) => counts.bad += n,
                None => return Err(corrupt("tasks.status", status)),
            }
        }
        Ok(counts)
    }

    async fn task(&self, project: &str, taskid: &str) -> Result<Option<TaskRecord>, StoreError> {
        let mut conn = self.read.acquire().await.map_err(db)?;
        let Some(key) = self
            .resolve(&mut conn, project, &[taskid])
            .await?
            .remove(taskid)
        else {
            return Ok(None);
        };
        let sql = format!("{TASK_COLUMNS} WHERE id = ?");
        // The statement is built from constants only.
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key.id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn list_tasks(&self, query: &TaskQuery) -> Result<Vec<TaskRecord>, StoreError> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.read.acquire().await.map_err(db)?;
        let projects = match &query.project {
            Some(project) => vec![project.clone()],
            None => listing::task_projects(&mut conn).await?,
        };
        let mut pages = Vec::with_capacity(projects.len());
        for project in &projects {
            pages.push(listing::page(&mut conn, project, query).await?);
        }
        Ok(merge_listings(pages, query.limit))
    }

    async fn cancel_task(
        &self,
        project: &str,
        taskid: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write.begin_with(BEGIN_WRITE).await.map_err(db)?;
        let Some(key) = self
            .resolve(&mut tx, project, &[taskid])
            .await?
            .remove(taskid)
        else {
            return Ok(false);
        };
        sqlx::query("UPDATE tasks SET status = 4, claimed = 0, updated_ms = ? WHERE id = ?")
            .bind(now_ms)
            .bind(key.id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }
}

#[async_trait]
impl ResultStore for SqliteStore {
    async fn upsert_results(
        &self,
        project: &str,
        items: &[Item],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        if items.is_empty() {
            return Ok(true);
        }
        // The one writer connection serializes this with `delete_project`.
        let mut tx = self.write.begin().await.map_err(db)?;
        let exists = sqlx::query("SELECT 1 FROM projects WHERE name = ?")
            .bind(project)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .is_some();
        if !exists {
            return Ok(false);
        }
        for chunk in items.chunks(CHUNK) {
            let rows = chunk
                .iter()
                .map(|i| {
                    let data = serde_json::to_string(&i.data).map_err(|e| corrupt("item", e))?;
                    Ok((i, data))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO results (project, taskid, url, data, updated_ms) SELECT * FROM (",
            );
            rows::push_values(&mut q, &rows, 5, |b, (item, data)| {
                b.push_bind(project)
                    .push_bind(&item.taskid)
                    .push_bind(&item.url)
                    .push_bind(data)
                    .push_bind(now_ms);
            });
            q.push(
                ") WHERE column1 IS NOT NULL
                 ON CONFLICT(project, taskid) DO UPDATE SET url = excluded.url,
                    data = excluded.data, updated_ms = excluded.updated_ms",
            );
            q.build().execute(&mut *tx).await.map_err(db)?;
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
            "SELECT taskid, url, data FROM results WHERE project = ? AND taskid > ?
             ORDER BY taskid LIMIT ?",
        )
        .bind(project)
        .bind(after.unwrap_or(""))
        .bind(limit as i64)
        .fetch_all(&self.read)
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
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM results WHERE project = ?")
            .bind(project)
            .fetch_one(&self.read)
            .await
            .map_err(db)?;
        Ok(n as u64)
    }

    async fn count_results_since(&self, project: &str, since_ms: i64) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM results WHERE project = ? AND updated_ms >= ?",
        )
        .bind(project)
        .bind(since_ms)
        .fetch_one(&self.read)
        .await
        .map_err(db)?;
        Ok(n as u64)
    }

    async fn last_result_ms(&self, project: &str) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT MAX(updated_ms) FROM results WHERE project = ?")
                .bind(project)
                .fetch_one(&self.read)
                .await
                .map_err(db)?,
        )
    }

    async fn purge_results(&self, project: &str, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM results WHERE project = ? AND updated_ms < ?")
            .bind(project)
            .bind(before_ms)
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(done.rows_affected())
    }
}
