//! Writing tasks: new ones appended with the next row ids and logged in the key log, known
//! ones re-queued in place, attempt endings written over their rows; all of one call in one
//! transaction.

use std::collections::BTreeMap;

use sqlx::{QueryBuilder, Sqlite};

use super::keys::{self, Key};
use super::rows::{self, CHUNK};
use super::{BEGIN_WRITE, SqliteStore, corrupt};
use crate::db;
use crate::last_of_each;
use spindle_common::message::Task;
use spindle_common::store::{Attempt, StoreError, TaskStatus, TaskUpdate};

impl SqliteStore {
    /// Inserts or re-queues `tasks` as active, claimed or not, in one transaction. New tasks
    /// are appended with the next row ids and logged in the key log.
    pub(super) async fn put(
        &self,
        tasks: &[Task],
        now_ms: i64,
        claimed: bool,
    ) -> Result<(), StoreError> {
        if tasks.is_empty() {
            return Ok(());
        }
        let tasks = last_of_each(tasks, |t| (t.project.as_str(), t.taskid.as_str()));
        let mut by_project: BTreeMap<&str, Vec<&Task>> = BTreeMap::new();
        for task in tasks {
            by_project.entry(&task.project).or_default().push(task);
        }
        let mut tx = self.write.begin_with(BEGIN_WRITE).await.map_err(db)?;
        let mut next_id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM tasks")
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        let mut keyed = Vec::new();
        let mut logs = Vec::with_capacity(by_project.len());
        for (project, group) in by_project {
            let ids: Vec<&str> = group.iter().map(|t| t.taskid.as_str()).collect();
            let known = self.resolve(&mut tx, project, &ids).await?;
            let mut logged = Vec::new();
            for task in group {
                let rules = task.age_ms.is_some() || task.itag.is_some();
                match known.get(&task.taskid) {
                    Some(key) => {
                        keyed.push((key.id, task));
                        if key.rules != rules {
                            logged.push((task.taskid.as_str(), Key { id: key.id, rules }));
                        }
                    }
                    None => {
                        keyed.push((next_id, task));
                        logged.push((task.taskid.as_str(), Key { id: next_id, rules }));
                        next_id += 1;
                    }
                }
            }
            if !logged.is_empty() {
                logs.push((project, keys::encode(logged)));
            }
        }
        // New tasks are appended under their new ids; a known task is queued anew in its row,
        // its last crawl, last error and validators kept.
        for chunk in keyed.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO tasks (id, project, taskid, url, status, claimed, priority, exetime,
                    seq, retries, age_ms, itag, task, updated_ms) SELECT * FROM (",
            );
            rows::push_values(&mut q, &with_json(chunk)?, 14, |b, (id, t, json)| {
                b.push_bind(id)
                    .push_bind(&t.project)
                    .push_bind(&t.taskid)
                    .push_bind(&t.url)
                    .push_bind(TaskStatus::Active.code())
                    .push_bind(i64::from(claimed))
                    .push_bind(t.priority)
                    .push_bind(t.exetime)
                    .push_bind(self.place(t.order))
                    .push_bind(t.retries as i64)
                    .push_bind(t.age_ms)
                    .push_bind(&t.itag)
                    .push_bind(json)
                    .push_bind(now_ms);
            });
            q.push(
                ") WHERE column1 IS NOT NULL
                 ON CONFLICT(id) DO UPDATE SET url = excluded.url, status = excluded.status,
                    claimed = excluded.claimed, priority = excluded.priority,
                    exetime = excluded.exetime, seq = excluded.seq, retries = excluded.retries,
                    age_ms = excluded.age_ms, itag = excluded.itag, task = excluded.task,
                    updated_ms = excluded.updated_ms",
            );
            q.build().execute(&mut *tx).await.map_err(db)?;
        }
        let mut written = Vec::with_capacity(logs.len());
        for (project, pairs) in logs {
            let log_id = sqlx::query("INSERT INTO task_keys (project, pairs) VALUES (?, ?)")
                .bind(project)
                .bind(&pairs)
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .last_insert_rowid();
            written.push((log_id, project, pairs));
        }
        tx.commit().await.map_err(db)?;
        let mut keys = self.keys();
        for (log_id, project, pairs) in written {
            keys.apply(log_id, project, &pairs);
        }
        Ok(())
    }

    /// Writes attempt endings in one transaction, one statement per chunk rather than one
    /// per task: each statement is a round trip to SQLite's worker thread. Unknown tasks are
    /// skipped.
    pub(super) async fn finish(
        &self,
        project: &str,
        updates: &[TaskUpdate],
    ) -> Result<(), StoreError> {
        if updates.is_empty() {
            return Ok(());
        }
        let updates = last_of_each(updates, |u| u.taskid.as_str());
        let mut tx = self.write.begin_with(BEGIN_WRITE).await.map_err(db)?;
        let taskids: Vec<&str> = updates.iter().map(|u| u.taskid.as_str()).collect();
        let keys = self.resolve(&mut tx, project, &taskids).await?;
        let mut rows = Vec::with_capacity(updates.len());
        for u in updates {
            if let Some(key) = keys.get(&u.taskid) {
                let track = u.track.as_ref().map(Attempt::to_stored).transpose()?;
                rows.push((key.id, u, track));
            }
        }
        for chunk in rows.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "WITH v(id, status, exetime, retries, seq, at_ms, last_error, etag,
                    last_modified, track) AS (",
            );
            rows::push_values(&mut q, chunk, 10, |b, (id, u, track)| {
                b.push_bind(id)
                    .push_bind(u.status.code())
                    .push_bind(u.exetime)
                    .push_bind(u.retries as i64)
                    .push_bind(self.next_seq())
                    .push_bind(u.at_ms)
                    .push_bind(&u.last_error)
                    .push_bind(&u.etag)
                    .push_bind(&u.last_modified)
                    .push_bind(track);
            });
            q.push(
                ") UPDATE tasks SET status = v.status, claimed = 0, exetime = v.exetime,
                    retries = v.retries, seq = v.seq, last_crawl_ms = v.at_ms,
                    last_error = v.last_error, updated_ms = v.at_ms,
                    etag = COALESCE(v.etag, tasks.etag),
                    last_modified = COALESCE(v.last_modified, tasks.last_modified),
                    track = v.track
                 FROM v WHERE tasks.id = v.id",
            );
            q.build().execute(&mut *tx).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }
}

/// Rows to write with each task's JSON, serialized before the statement is built.
fn with_json<'a>(rows: &[(i64, &'a Task)]) -> Result<Vec<(i64, &'a Task, String)>, StoreError> {
    rows.iter()
        .map(|&(id, t)| {
            Ok((
                id,
                t,
                serde_json::to_string(t).map_err(|e| corrupt("task", e))?,
            ))
        })
        .collect()
}
