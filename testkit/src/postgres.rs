//! A fresh PostgreSQL database per test, on the machine's server, dropped afterwards.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::require_service;

/// The server tests create their databases on unless `SPINDLE_TEST_POSTGRES_URL` names
/// another (any database of it: the admin connection only creates and drops).
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// An empty database of its own for one test; [`PgTestDb::destroy`] drops it (a test that
/// panics first leaves it behind, named `spindle_t_…` so leftovers are told from real data).
pub struct PgTestDb {
    /// The URL of the database, for `spindle_store::connect` or `--database`.
    pub url: String,
    admin: PgConnection,
    name: String,
}

impl PgTestDb {
    /// A new database, or `None` after printing why the test skips when the server is not
    /// reachable (a failure under `CI=true`, see [`require_service`]).
    pub async fn create() -> Option<PgTestDb> {
        let admin_url = std::env::var("SPINDLE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string());
        let mut url = url::Url::parse(&admin_url).expect("SPINDLE_TEST_POSTGRES_URL is a URL");
        let server = format!(
            "PostgreSQL at {}:{}",
            url.host_str().unwrap_or("?"),
            url.port().unwrap_or(5432)
        );
        // Only this first contact decides "skip": once the server answers, any failure is a
        // real one. One plain connection, not a pool, so a refused connection is reported
        // at once with its cause; the timeout covers a server that does not answer at all.
        let attempt =
            match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&admin_url))
                .await
            {
                Ok(connected) => connected.map_err(|e| e.to_string()),
                Err(_) => Err("no answer in 5 s".to_string()),
            };
        let mut admin = require_service(&server, attempt)?;

        // Unique per process and per test.
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "spindle_t_{}_{}_{nanos:x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        // The name is made of digits, letters and underscores above: safe to splice in.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        url.set_path(&name);
        Some(PgTestDb {
            url: url.to_string(),
            admin,
            name,
        })
    }

    /// Drops the database, ending the connections the test's pools may still hold.
    pub async fn destroy(mut self) {
        let drop_db = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        if let Err(err) = sqlx::query(sqlx::AssertSqlSafe(drop_db))
            .execute(&mut self.admin)
            .await
        {
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!("test database {} not dropped: {err}\n", self.name),
            );
        }
        // Closing politely only spares the server a log line; nothing to report.
        let _ = self.admin.close().await;
    }
}
