//! The SQLite schema: the migrations, in order, compiled into the binary.

use sqlx::migrate::Migrator;

use crate::store::migration;

/// Every migration of the SQLite store.
pub(super) fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        migration(
            1,
            "init",
            include_str!("../../../migrations/sqlite/0001_init.sql"),
        ),
        migration(
            2,
            "validators",
            include_str!("../../../migrations/sqlite/0002_validators.sql"),
        ),
        migration(
            3,
            "run_requests",
            include_str!("../../../migrations/sqlite/0003_run_requests.sql"),
        ),
        migration(
            4,
            "drop_status_index",
            include_str!("../../../migrations/sqlite/0004_drop_status_index.sql"),
        ),
        migration(
            5,
            "results_age_index",
            include_str!("../../../migrations/sqlite/0005_results_age_index.sql"),
        ),
        migration(
            6,
            "tasks_by_row",
            include_str!("../../../migrations/sqlite/0006_tasks_by_row.sql"),
        ),
        migration(
            7,
            "results_by_row",
            include_str!("../../../migrations/sqlite/0007_results_by_row.sql"),
        ),
        migration(
            8,
            "task_track",
            include_str!("../../../migrations/sqlite/0008_task_track.sql"),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use crate::store::Store;
    use crate::store::sqlite::SqliteStore;

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

        let again = crate::message::Item {
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
