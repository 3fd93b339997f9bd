//! The PostgreSQL schema: the migrations, in order, compiled into the binary.

use sqlx::migrate::Migrator;

use crate::migration;

/// Every migration of the PostgreSQL store.
pub(super) fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        migration(
            1,
            "init",
            include_str!("../../migrations/postgres/0001_init.sql"),
        ),
        migration(
            2,
            "validators",
            include_str!("../../migrations/postgres/0002_validators.sql"),
        ),
        migration(
            3,
            "run_requests",
            include_str!("../../migrations/postgres/0003_run_requests.sql"),
        ),
        migration(
            4,
            "drop_status_index",
            include_str!("../../migrations/postgres/0004_drop_status_index.sql"),
        ),
        migration(
            5,
            "results_age_index",
            include_str!("../../migrations/postgres/0005_results_age_index.sql"),
        ),
        migration(
            6,
            "task_track",
            include_str!("../../migrations/postgres/0006_task_track.sql"),
        ),
    ])
}
