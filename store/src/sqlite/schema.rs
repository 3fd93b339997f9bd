//! The SQLite schema: the migrations, in order, compiled into the binary.

use sqlx::migrate::Migrator;

use crate::migration;

/// Every migration of the SQLite store.
pub(super) fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        migration(
            1,
            "init",
            include_str!("../../migrations/sqlite/0001_init.sql"),
        ),
        migration(
            2,
            "validators",
            include_str!("../../migrations/sqlite/0002_validators.sql"),
        ),
        migration(
            3,
            "run_requests",
            include_str!("../../migrations/sqlite/0003_run_requests.sql"),
        ),
        migration(
            4,
            "drop_status_index",
            include_str!("../../migrations/sqlite/0004_drop_status_index.sql"),
        ),
        migration(
            5,
            "results_age_index",
            include_str!("../../migrations/sqlite/0005_results_age_index.sql"),
        ),
        migration(
            6,
            "tasks_by_row",
            include_str!("../../migrations/sqlite/0006_tasks_by_row.sql"),
        ),
        migration(
            7,
            "results_by_row",
            include_str!("../../migrations/sqlite/0007_results_by_row.sql"),
        ),
        migration(
            8,
            "task_track",
            include_str!("../../migrations/sqlite/0008_task_track.sql"),
        ),
    ])
}

/// The plan SQLite picks for `sql`, as `EXPLAIN QUERY PLAN` prints it, one step a line.
#[cfg(test)]
pub(super) async fn query_plan(pool: &sqlx::SqlitePool, sql: &str) -> String {
    use sqlx::Row;
    let explain = format!("EXPLAIN QUERY PLAN {sql}");
    let rows = sqlx::query::<sqlx::Sqlite>(sqlx::AssertSqlSafe(explain))
        .fetch_all(pool)
        .await
        .expect("explain");
    rows.iter()
        .map(|r| r.try_get::<String, _>("detail").expect("detail"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::query_plan;
    use crate::sqlite::SqliteStore;
    use spindle_common::store::ResultStore;

    use spindle_common::store::TaskStore;

    /// The crawl's queries on tasks seek rows or read their own partial indexes: none reads
    /// a project's range of `tasks_changed`, the index the web UI lists tasks with.
    #[tokio::test]
    async fn the_crawls_queries_keep_to_their_indexes() {
        let dir = tempfile::tempdir().expect("dir");
        let s = SqliteStore::open(&dir.path().join("s.db"))
            .await
            .expect("open");
        for (sql, uses) in [
            // Finding rows by the key map (`resolve`).
            (
                "SELECT id, taskid FROM tasks NOT INDEXED WHERE project = 'p' AND id IN (1, 2)",
                "INTEGER PRIMARY KEY (rowid=?)",
            ),
            (
                "SELECT id FROM tasks WHERE project = 'p' AND status = 1 AND claimed = 0
                    AND exetime <= 5 ORDER BY priority DESC, seq LIMIT 10",
                "tasks_queue",
            ),
            (
                "SELECT MIN(exetime) FROM tasks INDEXED BY tasks_queue
                    WHERE project = 'p' AND status = 1 AND claimed = 0",
                "tasks_queue",
            ),
            (
                "UPDATE tasks SET claimed = 0 WHERE project = 'p' AND claimed = 1",
                "tasks_claimed",
            ),
            (
                "WITH v(id, status) AS (VALUES (1, 2)) UPDATE tasks SET status = v.status
                 FROM v WHERE tasks.id = v.id",
                "INTEGER PRIMARY KEY (rowid=?)",
            ),
        ] {
            let plan = query_plan(&s.read, sql).await;
            assert!(plan.contains(uses), "{sql}\n{plan}");
            assert!(!plan.contains("tasks_changed"), "{sql}\n{plan}");
        }
    }

    #[tokio::test]
    async fn tasks_stored_before_tracks_are_listed_without_one() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("s.db");
        {
            let old = SqliteStore::open(&path).await.expect("open");
            old.put_tasks(
                &[spindle_common::message::Task::new(
                    "p",
                    "http://a/",
                    "start",
                )],
                5,
            )
            .await
            .expect("put");
            // Back to the schema before tracks and origins.
            sqlx::query(
                "DROP INDEX tasks_changed; CREATE INDEX tasks_project ON tasks (project);
                 ALTER TABLE tasks DROP COLUMN track; ALTER TABLE projects DROP COLUMN origin;
                 DELETE FROM _sqlx_migrations WHERE version = 8",
            )
            .execute(&old.write)
            .await
            .expect("downgrade");
        }
        let s = SqliteStore::open(&path).await.expect("migrate");
        let listed = s
            .list_tasks(&spindle_common::store::TaskQuery::default())
            .await
            .expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].updated_ms, listed[0].track.as_ref()), (5, None));
    }

    #[tokio::test]
    async fn results_keyed_by_task_are_migrated_to_row_order_and_stay_unique() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
        {
            // The schema before results moved to row order, with one project and two items.
            let pool = sqlx::SqlitePool::connect(&url).await.expect("connect");
            let mut old = super::migrator();
            old.migrations = std::borrow::Cow::Owned(old.migrations[..6].to_vec());
            old.run(&pool).await.expect("old schema");
            sqlx::query(
                "INSERT INTO projects (name, definition, status, rate, burst, updated_ms)
                 VALUES ('p', '', 'RUNNING', 1, 1, 0)",
            )
            .execute(&pool)
            .await
            .expect("project");
            sqlx::query(
                "INSERT INTO results (project, taskid, url, data, updated_ms)
                 VALUES ('p', 'b', 'http://a/b', '{\"n\":2}', 2),
                        ('p', 'a', 'http://a/a', '{\"n\":1}', 1)",
            )
            .execute(&pool)
            .await
            .expect("results");
            pool.close().await;
        }
        let s = SqliteStore::connect(&url).await.expect("migrate");
        let page = s.results_page("p", None, 10).await.expect("page");
        let ids: Vec<&str> = page.iter().map(|i| i.taskid.as_str()).collect();
        assert_eq!(ids, ["a", "b"], "kept, in task order");
        assert_eq!(page[1].data["n"], 2);

        let again = spindle_common::message::Item {
            taskid: "a".into(),
            url: "http://a/a".into(),
            data: serde_json::Map::from_iter([("n".to_string(), 10.into())]),
        };
        assert!(s.upsert_results("p", &[again], 3).await.expect("upsert"));
        assert_eq!(
            s.count_results("p").await.expect("count"),
            2,
            "updated, not added"
        );
        let page = s.results_page("p", None, 1).await.expect("page");
        assert_eq!(page[0].data["n"], 10);
    }
}
