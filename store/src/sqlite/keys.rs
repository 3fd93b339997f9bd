//! The key map of the SQLite store: which row holds a task.
//!
//! The task table is a rowid table appended in insertion order (migration 0006 says why), so
//! it has no index by taskid. This map takes its place: per project, a 64-bit fingerprint of
//! each taskid to its row id, in memory, about 17 bytes per known task. A new URL is known to
//! be new without touching the database, and a known one is one row-id lookup away.
//!
//! The map is persisted as a log, the `task_keys` table: every write that adds tasks (or
//! changes whether one carries re-crawl rules) appends one row of packed pairs in the same
//! transaction, so the log never disagrees with the tasks; deleting a project deletes its rows
//! and appends an empty one. A store reads the whole log at its
//! first lookup (16 bytes per known task) and afterwards only the rows added since, which is
//! also how it sees tasks written by another process.
//!
//! Two taskids can share a fingerprint (odds about n²/2⁶⁵ for n tasks): lookups that read or
//! write a row check its taskid and fall back to a scan (see `SqliteStore::resolve`); only
//! [`TaskKeys::presence`] answers from the map alone, as the scheduler's own recent-task
//! set does, and may then take a new URL for a known duplicate.

use std::collections::{BTreeMap, HashMap};
use std::sync::MutexGuard;

use futures::TryStreamExt;
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{BEGIN_WRITE, CHUNK, SqliteStore};
use crate::db;
use spindle_common::store::{Presence, StoreError};

/// Flag bit of a stored value: the task carries an `age` or an `itag` of its own.
const RULES: u64 = 1 << 63;

/// Bytes of one (fingerprint, value) pair in the log.
const PAIR: usize = 16;

/// The fingerprint of a taskid: stable across builds and versions, since the log keeps it.
pub(super) fn fingerprint(taskid: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(taskid.as_bytes())
}

/// Where a task is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Key {
    /// Its row id.
    pub id: i64,
    /// Whether it carries an `age` or an `itag` of its own.
    pub rules: bool,
}

impl Key {
    fn value(self) -> u64 {
        self.id as u64 | if self.rules { RULES } else { 0 }
    }

    fn from_value(value: u64) -> Self {
        Key {
            id: (value & !RULES) as i64,
            rules: value & RULES != 0,
        }
    }
}

/// Packs (taskid, key) entries as one log row.
pub(super) fn encode<'a>(entries: impl IntoIterator<Item = (&'a str, Key)>) -> Vec<u8> {
    let mut pairs = Vec::new();
    for (taskid, key) in entries {
        pairs.extend_from_slice(&fingerprint(taskid).to_le_bytes());
        pairs.extend_from_slice(&key.value().to_le_bytes());
    }
    pairs
}

/// The in-memory map, with how much of the log it has applied.
#[derive(Debug, Default)]
pub(super) struct TaskKeys {
    /// Id of the last log row applied.
    applied: i64,
    projects: HashMap<String, HashMap<u64, u64>>,
}

impl TaskKeys {
    /// Id of the last log row applied: the next read of the log starts after it.
    pub fn applied(&self) -> i64 {
        self.applied
    }

    /// Applies log row `log_id` unless it was already: rows must come in id order. An empty
    /// row says the project was deleted: its keys are forgotten.
    pub fn apply(&mut self, log_id: i64, project: &str, pairs: &[u8]) {
        if log_id <= self.applied {
            return;
        }
        self.applied = log_id;
        if pairs.is_empty() {
            self.projects.remove(project);
            return;
        }
        let map = match self.projects.get_mut(project) {
            Some(map) => map,
            None => self.projects.entry(project.to_string()).or_default(),
        };
        map.reserve(pairs.len() / PAIR);
        for pair in pairs.chunks_exact(PAIR) {
            let (fp, value) = pair.split_at(8);
            let fp = u64::from_le_bytes(fp.try_into().unwrap_or_default());
            let value = u64::from_le_bytes(value.try_into().unwrap_or_default());
            map.entry(fp)
                .and_modify(|held| {
                    // The same row again carries its new flag; another row with this
                    // fingerprint is a collision, and the first row keeps the entry.
                    if Key::from_value(*held).id == Key::from_value(value).id {
                        *held = value;
                    }
                })
                .or_insert(value);
        }
    }

    /// Where the map says `taskid` of `project` is stored: a candidate to check against the
    /// row, since another taskid may share its fingerprint.
    pub fn get(&self, project: &str, taskid: &str) -> Option<Key> {
        self.projects
            .get(project)?
            .get(&fingerprint(taskid))
            .map(|v| Key::from_value(*v))
    }

    /// What the map alone says of `taskid` in `project`: no entry means not stored (the map
    /// has every stored task); an entry is taken at its word without a check against the
    /// row, so a new task colliding with a stored one without rules reads as `Plain`.
    pub fn presence(&self, project: &str, taskid: &str) -> Presence {
        match self.get(project, taskid) {
            None => Presence::Unknown,
            Some(Key { rules: false, .. }) => Presence::Plain,
            Some(Key { rules: true, .. }) => Presence::Ask,
        }
    }

    /// Known tasks over all projects.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.projects.values().map(HashMap::len).sum()
    }
}

impl SqliteStore {
    /// The key map, locked.
    pub(super) fn keys(&self) -> MutexGuard<'_, TaskKeys> {
        // The map is only ever changed by whole log rows: a panic elsewhere cannot leave it
        // half-written.
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies the key-log rows written since the last read: the whole log the first time,
    /// afterwards only rows this or another process added since.
    pub(super) async fn refresh(&self, conn: &mut SqliteConnection) -> Result<(), StoreError> {
        let after = self.keys().applied();
        let mut rows =
            sqlx::query("SELECT id, project, pairs FROM task_keys WHERE id > ? ORDER BY id")
                .bind(after)
                .fetch(&mut *conn);
        while let Some(row) = rows.try_next().await.map_err(db)? {
            let project: &str = row.try_get("project").map_err(db)?;
            let pairs: &[u8] = row.try_get("pairs").map_err(db)?;
            self.keys()
                .apply(row.try_get("id").map_err(db)?, project, pairs);
        }
        Ok(())
    }

    /// Where those of `taskids` that are stored in `project` are. The key map gives a
    /// candidate row; a row holding another taskid (a fingerprint collision) sends that one
    /// taskid to a scan of the project's rows instead.
    pub(super) async fn resolve(
        &self,
        conn: &mut SqliteConnection,
        project: &str,
        taskids: &[&str],
    ) -> Result<HashMap<String, Key>, StoreError> {
        self.refresh(conn).await?;
        let candidates: Vec<(&str, Key)> = {
            let keys = self.keys();
            taskids
                .iter()
                .filter_map(|t| keys.get(project, t).map(|k| (*t, k)))
                .collect()
        };
        let mut found = HashMap::with_capacity(candidates.len());
        for chunk in candidates.chunks(CHUNK) {
            let ids: Vec<i64> = chunk.iter().map(|(_, key)| key.id).collect();
            // Row ids only: offered `tasks_changed` (project, updated_ms) for `project = ?`,
            // SQLite reads the project's whole range instead of seeking the rows.
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT id, taskid FROM tasks NOT INDEXED WHERE project = ",
            );
            q.push_bind(project).push(" AND id IN ");
            super::rows::push_id_list(&mut q, &ids);
            let mut held = HashMap::with_capacity(chunk.len());
            for row in q.build().fetch_all(&mut *conn).await.map_err(db)? {
                held.insert(
                    row.try_get::<i64, _>("id").map_err(db)?,
                    row.try_get::<String, _>("taskid").map_err(db)?,
                );
            }
            for &(taskid, key) in chunk {
                if held.get(&key.id).is_some_and(|t| t == taskid) {
                    found.insert(taskid.to_string(), key);
                    continue;
                }
                let row = sqlx::query(
                    "SELECT id, age_ms IS NOT NULL OR itag IS NOT NULL AS rules FROM tasks
                     WHERE project = ? AND taskid = ?",
                )
                .bind(project)
                .bind(taskid)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?;
                if let Some(row) = row {
                    let key = Key {
                        id: row.try_get("id").map_err(db)?,
                        rules: row.try_get("rules").map_err(db)?,
                    };
                    found.insert(taskid.to_string(), key);
                }
            }
        }
        Ok(found)
    }
}

/// Writes the key log of tasks stored before the log existed (a database migrated from the
/// keyed layout), once: afterwards every write of new tasks logs them itself.
pub(super) async fn log_migrated_keys(write: &SqlitePool) -> Result<(), StoreError> {
    let mut tx = write.begin_with(BEGIN_WRITE).await.map_err(db)?;
    let needed: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM tasks) AND NOT EXISTS (SELECT 1 FROM task_keys)",
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(db)?;
    if !needed {
        return Ok(());
    }
    let rows = sqlx::query(
        "SELECT id, project, taskid, age_ms IS NOT NULL OR itag IS NOT NULL AS rules
         FROM tasks ORDER BY project, id",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    let mut by_project: BTreeMap<String, Vec<(String, Key)>> = BTreeMap::new();
    for row in rows {
        let key = Key {
            id: row.try_get("id").map_err(db)?,
            rules: row.try_get("rules").map_err(db)?,
        };
        by_project
            .entry(row.try_get("project").map_err(db)?)
            .or_default()
            .push((row.try_get("taskid").map_err(db)?, key));
    }
    for (project, entries) in by_project {
        for chunk in entries.chunks(4096) {
            let pairs = encode(chunk.iter().map(|(t, k)| (t.as_str(), *k)));
            sqlx::query("INSERT INTO task_keys (project, pairs) VALUES (?, ?)")
                .bind(&project)
                .bind(pairs)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
    }
    tx.commit().await.map_err(db)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use spindle_common::message::Task;
    use spindle_common::store::TaskStore;
    use spindle_common::store::{TaskStatus, TaskUpdate};

    fn key(id: i64, rules: bool) -> Key {
        Key { id, rules }
    }

    #[test]
    fn a_log_row_maps_each_taskid_to_its_row() {
        let mut keys = TaskKeys::default();
        keys.apply(1, "p", &encode([("a", key(7, false)), ("b", key(8, true))]));
        assert_eq!(keys.get("p", "a"), Some(key(7, false)));
        assert_eq!(keys.get("p", "b"), Some(key(8, true)));
        assert_eq!(keys.get("q", "a"), None, "maps are per project");
        assert_eq!(keys.presence("p", "a"), Presence::Plain);
        assert_eq!(keys.presence("p", "b"), Presence::Ask);
        assert_eq!(keys.presence("p", "c"), Presence::Unknown);
        assert_eq!(keys.applied(), 1);
    }

    #[test]
    fn rows_already_applied_are_skipped_and_later_rows_update_flags() {
        let mut keys = TaskKeys::default();
        keys.apply(2, "p", &encode([("a", key(7, false))]));
        keys.apply(2, "p", &encode([("z", key(9, false))]));
        keys.apply(1, "p", &encode([("y", key(9, false))]));
        assert_eq!(keys.len(), 1, "rows at or below the applied id are skipped");
        keys.apply(3, "p", &encode([("a", key(7, true))]));
        assert_eq!(keys.get("p", "a"), Some(key(7, true)));
    }

    #[test]
    fn a_colliding_row_leaves_the_first_entry() {
        let mut keys = TaskKeys::default();
        let fp = fingerprint("a").to_le_bytes();
        let mut row = Vec::new();
        row.extend_from_slice(&fp);
        row.extend_from_slice(&key(7, false).value().to_le_bytes());
        row.extend_from_slice(&fp);
        row.extend_from_slice(&key(8, true).value().to_le_bytes());
        keys.apply(1, "p", &row);
        assert_eq!(keys.get("p", "a"), Some(key(7, false)));
    }

    #[test]
    fn deleting_a_project_forgets_its_keys() {
        let mut keys = TaskKeys::default();
        keys.apply(1, "p", &encode([("a", key(7, false))]));
        keys.apply(2, "q", &encode([("a", key(8, false))]));
        keys.apply(3, "p", &[]);
        assert_eq!(keys.get("p", "a"), None);
        assert_eq!(keys.get("q", "a"), Some(key(8, false)));
    }

    fn task(id: &str) -> Task {
        Task {
            taskid: id.into(),
            ..Task::new("p", &format!("http://a/{id}"), "c")
        }
    }

    async fn store(dir: &tempfile::TempDir) -> SqliteStore {
        SqliteStore::open(&dir.path().join("s.db"))
            .await
            .expect("open")
    }

    #[tokio::test]
    async fn presence_is_answered_from_memory() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir).await;
        let aged = Task {
            age_ms: Some(5),
            ..task("aged")
        };
        s.put_tasks(&[task("plain"), aged], 0).await.expect("put");
        let answers = s
            .presence("p", &["plain", "aged", "new"])
            .await
            .expect("known");
        assert_eq!(answers, [Presence::Plain, Presence::Ask, Presence::Unknown]);
        // A new store on the file reads the same from the log.
        let again = store(&dir).await;
        let answers = again
            .presence("p", &["plain", "aged", "new"])
            .await
            .expect("known");
        assert_eq!(answers, [Presence::Plain, Presence::Ask, Presence::Unknown]);
    }

    #[tokio::test]
    async fn a_fingerprint_collision_falls_back_to_the_rows() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir).await;
        s.put_tasks(&[task("a")], 0).await.expect("put");
        let a = s.keys().get("p", "a").expect("a is mapped");
        // Make "b" collide with "a": its fingerprint now points at a's row.
        let next = s.keys().applied() + 1_000;
        s.keys().apply(next, "p", &encode([("b", a)]));
        assert!(s.task("p", "b").await.expect("task").is_none());
        assert!(!s.cancel_task("p", "b", 1).await.expect("cancel"));
        s.put_tasks(&[task("b")], 2).await.expect("put b");
        let b = s.task("p", "b").await.expect("task").expect("b is stored");
        assert_eq!(b.task.taskid, "b");
        let update = TaskUpdate {
            taskid: "b".into(),
            status: TaskStatus::Success,
            exetime: 0,
            retries: 0,
            at_ms: 3,
            last_error: None,
            etag: None,
            last_modified: None,
            track: None,
        };
        s.finish_tasks("p", &[update]).await.expect("finish");
        let status = |id| {
            let s = s.clone();
            async move { s.task("p", id).await.expect("task").expect("known").status }
        };
        assert_eq!(status("a").await, TaskStatus::Active);
        assert_eq!(status("b").await, TaskStatus::Success);
        let mut known: Vec<String> = s
            .known_tasks("p", &["a", "b"])
            .await
            .expect("known")
            .into_iter()
            .map(|k| k.taskid)
            .collect();
        known.sort();
        assert_eq!(known, ["a", "b"]);
        assert_eq!(s.task_counts("p").await.expect("counts").queued, 1);
    }

    #[tokio::test]
    async fn a_database_of_the_keyed_layout_is_migrated_and_its_keys_logged() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
        {
            // The schema as it was before tasks moved to row order, with one task in it.
            let pool = sqlx::SqlitePool::connect(&url).await.expect("connect");
            let mut old = super::super::schema::migrator();
            old.migrations = std::borrow::Cow::Owned(old.migrations[..5].to_vec());
            old.run(&pool).await.expect("old schema");
            sqlx::query(
                "INSERT INTO tasks (project, taskid, url, status, priority, exetime, seq,
                    retries, itag, task, updated_ms)
                 VALUES ('p', 'old', 'http://a/old', 2, 0, 0, 1, 0, 'v1', ?, 0)",
            )
            .bind(serde_json::to_string(&task("old")).expect("json"))
            .execute(&pool)
            .await
            .expect("insert");
            pool.close().await;
        }
        let s = SqliteStore::connect(&url).await.expect("migrate");
        let record = s.task("p", "old").await.expect("task").expect("kept");
        assert_eq!(record.status, TaskStatus::Success);
        assert_eq!(
            s.presence("p", &["old"]).await.expect("known"),
            [Presence::Ask],
            "its itag is a rule"
        );
        s.put_tasks(&[task("old"), task("new")], 1)
            .await
            .expect("put");
        let counts = s.task_counts("p").await.expect("counts");
        assert_eq!(
            counts.queued, 2,
            "the old task was re-queued, not added again"
        );
    }

    #[test]
    fn fingerprints_are_stable() {
        // The log outlives the binary: a change of hash would orphan every stored key.
        assert_eq!(fingerprint("abc"), 0x78af_5f94_892f_3950);
    }
}
