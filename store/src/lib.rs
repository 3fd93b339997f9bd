//! Spindle's stores: the backends of the store contracts in `spindle_common::store`.
//!
//! [`SqliteStore`] keeps the embedded default in one file; [`PgStore`] is shared by every
//! process of a distributed deployment. Both implement [`ProjectStore`], [`TaskStore`] and
//! [`ResultStore`] with one semantics, which the conformance suite in
//! `store/tests/store_conformance.rs` runs against each. [`connect`] picks one by URL.
//!
//! This crate owns the database driver (sqlx) and the schema migrations. The services must
//! never depend on it: they take the contracts, and only the binary (and tests) pick a
//! backend.
//!
//! [`ProjectStore`]: spindle_common::store::ProjectStore
//! [`TaskStore`]: spindle_common::store::TaskStore
//! [`ResultStore`]: spindle_common::store::ResultStore

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use spindle_common::store::{Store, StoreError};

#[cfg(feature = "postgres")]
pub use postgres::PgStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// Opens the store a database URL names: `sqlite:…` (e.g. `sqlite://PATH`) or
/// `postgres://…` / `postgresql://…`, with its schema brought up to date.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    #[cfg(feature = "sqlite")]
    if url.starts_with("sqlite:") {
        return Ok(Arc::new(SqliteStore::connect(url).await?));
    }
    #[cfg(feature = "postgres")]
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(PgStore::connect(url).await?));
    }
    // The URL ends up in logs and on screens: never with its password.
    let shown = match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Only cannot-be-a-base URLs refuse a password, and those have none.
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    };
    Err(StoreError::UnsupportedUrl(shown))
}

/// A driver error as the contract's [`StoreError`], marked transient when the database is
/// unreachable for now: a lost connection, a pool that timed out, or PostgreSQL's connection
/// exceptions (class 08) and operator interventions that end sessions (admin_shutdown,
/// crash_shutdown, cannot_connect_now).
pub(crate) fn db(e: sqlx::Error) -> StoreError {
    let transient = match &e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    };
    StoreError::Database {
        source: Box::new(e),
        transient,
    }
}

/// A failed schema migration as the contract's [`StoreError`].
pub(crate) fn migrate_error(e: sqlx::migrate::MigrateError) -> StoreError {
    StoreError::Migrate(Box::new(e))
}

/// One migration of a store's schema, its SQL compiled into the binary.
pub(crate) fn migration(
    version: i64,
    name: &'static str,
    sql: &'static str,
) -> sqlx::migrate::Migration {
    use sqlx::SqlSafeStr;
    sqlx::migrate::Migration::new(
        version,
        std::borrow::Cow::Borrowed(name),
        sqlx::migrate::MigrationType::Simple,
        sql.into_sql_str(),
        false,
    )
}

/// The last occurrence of each key, in the order of those last occurrences.
///
/// PostgreSQL refuses an `INSERT … ON CONFLICT DO UPDATE` that touches one row twice, and
/// an `UPDATE … FROM` with two matches for a row applies one of them, in either database:
/// keeping the last occurrence at its position makes the last one win with the latest `seq`.
pub(crate) fn last_of_each<'a, T, K: Hash + Eq>(
    rows: &'a [T],
    key: impl Fn(&'a T) -> K,
) -> Vec<&'a T> {
    let mut last = HashMap::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        last.insert(key(row), i);
    }
    if last.len() == rows.len() {
        return rows.iter().collect();
    }
    rows.iter()
        .enumerate()
        .filter(|(i, row)| last.get(&key(row)) == Some(i))
        .map(|(_, row)| row)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_of_each_keeps_the_last_occurrence_at_its_position() {
        let rows = [("a", 1), ("b", 1), ("a", 2), ("c", 1), ("b", 2)];
        let kept: Vec<_> = last_of_each(&rows, |r| r.0).into_iter().copied().collect();
        assert_eq!(kept, [("a", 2), ("c", 1), ("b", 2)]);
    }

    #[test]
    fn lost_connections_are_transient_and_constraints_are_not() {
        assert!(db(sqlx::Error::PoolTimedOut).is_transient());
        assert!(!db(sqlx::Error::RowNotFound).is_transient());
        assert!(!StoreError::UnsupportedUrl("x".into()).is_transient());
    }
}
