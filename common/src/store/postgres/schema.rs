//! The PostgreSQL schema: the migrations, in order, compiled into the binary.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// Every migration of the PostgreSQL store.
pub(super) fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            Cow::Borrowed("init"),
            MigrationType::Simple,
            include_str!("../../../migrations/postgres/0001_init.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            Cow::Borrowed("validators"),
            MigrationType::Simple,
            include_str!("../../../migrations/postgres/0002_validators.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            3,
            Cow::Borrowed("run_requests"),
            MigrationType::Simple,
            include_str!("../../../migrations/postgres/0003_run_requests.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            4,
            Cow::Borrowed("drop_status_index"),
            MigrationType::Simple,
            include_str!("../../../migrations/postgres/0004_drop_status_index.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            5,
            Cow::Borrowed("results_age_index"),
            MigrationType::Simple,
            include_str!("../../../migrations/postgres/0005_results_age_index.sql").into_sql_str(),
            false,
        ),
    ])
}
