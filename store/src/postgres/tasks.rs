//! Writing tasks: inserts and re-queues as one `UNNEST` statement per chunk, attempt
//! endings as one `UPDATE … FROM UNNEST` per chunk; all of one call in one transaction.

use super::rows::{corrupt, status_code};
use super::{CHUNK, PgStore};
use crate::db;
use crate::last_of_each;
use spindle_common::message::Task;
use spindle_common::store::{Attempt, StoreError, TaskStatus, TaskUpdate};

impl PgStore {
    /// Inserts or re-queues `tasks` as active, claimed or not, in one transaction.
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
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Numbers drawn later come after every place given here.
        if let Some(last) = tasks.iter().map(|t| t.order).max().filter(|&o| o > 0) {
            sqlx::query(
                "SELECT setval('tasks_seq', GREATEST((SELECT last_value FROM tasks_seq), $1))",
            )
            .bind(last)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        for chunk in tasks.chunks(CHUNK) {
            let json = chunk
                .iter()
                .map(|t| serde_json::to_string(t).map_err(|e| corrupt("task", e)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            // A task's `seq` is its `order` when the scheduler gave it one; otherwise it is
            // drawn from `tasks_seq` for each row as it comes out of the ordered subquery, so
            // in batch order. A re-queue takes the new value too (`excluded.seq`), as in
            // SQLite: without an order of its own it goes to the back of its priority.
            sqlx::query(
                "INSERT INTO tasks (project, taskid, url, status, claimed, priority, exetime,
                    retries, age_ms, itag, task, updated_ms, seq)
                 SELECT u.project, u.taskid, u.url, $10, $12, u.priority, u.exetime,
                    u.retries, u.age_ms, u.itag, u.task::json, $11,
                    CASE WHEN u.place > 0 THEN u.place ELSE nextval('tasks_seq') END
                 FROM (SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int4[],
                        $5::int8[], $6::int8[], $7::int8[], $8::text[], $9::text[], $13::int8[])
                    WITH ORDINALITY AS u(project, taskid, url, priority, exetime, retries,
                        age_ms, itag, task, place, ord)
                    ORDER BY u.ord) u
                 ON CONFLICT (project, taskid) DO UPDATE SET url = excluded.url,
                    status = excluded.status, claimed = excluded.claimed, priority = excluded.priority,
                    exetime = excluded.exetime, seq = excluded.seq, retries = excluded.retries,
                    age_ms = excluded.age_ms, itag = excluded.itag, task = excluded.task,
                    updated_ms = excluded.updated_ms",
            )
            .bind(chunk.iter().map(|t| t.project.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|t| t.taskid.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|t| t.url.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|t| t.priority).collect::<Vec<_>>())
            .bind(chunk.iter().map(|t| t.exetime).collect::<Vec<_>>())
            .bind(
                chunk
                    .iter()
                    .map(|t| i64::from(t.retries))
                    .collect::<Vec<_>>(),
            )
            .bind(chunk.iter().map(|t| t.age_ms).collect::<Vec<_>>())
            .bind(chunk.iter().map(|t| t.itag.as_deref()).collect::<Vec<_>>())
            .bind(json)
            .bind(status_code(TaskStatus::Active))
            .bind(now_ms)
            .bind(claimed)
            .bind(chunk.iter().map(|t| t.order).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await.map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    /// Writes attempt endings in one transaction, one statement per chunk; unknown tasks are
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
        let mut tx = self.pool.begin().await.map_err(db)?;
        for chunk in updates.chunks(CHUNK) {
            let tracks = chunk
                .iter()
                .map(|u| u.track.as_ref().map(Attempt::to_stored).transpose())
                .collect::<Result<Vec<_>, _>>()?;
            // Every ending takes a new `seq` in the order given, so a retry goes to the back
            // of its priority as in SQLite. The values are drawn once, in `ord` order, in a
            // materialized CTE: in a plain subquery the join may rescan it (drawing again)
            // and visit its rows in any order.
            sqlx::query(
                "WITH u AS MATERIALIZED (
                    SELECT v.taskid, v.status, v.exetime, v.retries, v.at_ms, v.last_error,
                        v.etag, v.last_modified, v.track::json AS track,
                        nextval('tasks_seq') AS seq
                    FROM UNNEST($2::text[], $3::int2[], $4::int8[], $5::int8[], $6::int8[],
                        $7::text[], $8::text[], $9::text[], $10::text[])
                        WITH ORDINALITY AS v(taskid, status, exetime, retries, at_ms,
                            last_error, etag, last_modified, track, ord)
                    ORDER BY v.ord)
                 UPDATE tasks AS t SET status = u.status, claimed = FALSE, exetime = u.exetime,
                    retries = u.retries, seq = u.seq, last_crawl_ms = u.at_ms,
                    last_error = u.last_error, updated_ms = u.at_ms,
                    etag = COALESCE(u.etag, t.etag),
                    last_modified = COALESCE(u.last_modified, t.last_modified),
                    track = u.track
                 FROM u
                 WHERE t.project = $1 AND t.taskid = u.taskid",
            )
            .bind(project)
            .bind(chunk.iter().map(|u| u.taskid.as_str()).collect::<Vec<_>>())
            .bind(
                chunk
                    .iter()
                    .map(|u| status_code(u.status))
                    .collect::<Vec<_>>(),
            )
            .bind(chunk.iter().map(|u| u.exetime).collect::<Vec<_>>())
            .bind(
                chunk
                    .iter()
                    .map(|u| i64::from(u.retries))
                    .collect::<Vec<_>>(),
            )
            .bind(chunk.iter().map(|u| u.at_ms).collect::<Vec<_>>())
            .bind(
                chunk
                    .iter()
                    .map(|u| u.last_error.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(chunk.iter().map(|u| u.etag.as_deref()).collect::<Vec<_>>())
            .bind(
                chunk
                    .iter()
                    .map(|u| u.last_modified.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(tracks)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }
}
