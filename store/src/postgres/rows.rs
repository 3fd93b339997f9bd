//! Reading and writing column values: codes, counts and limits in the types PostgreSQL
//! columns have, and errors for values no Spindle process writes.

use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::db;
use spindle_common::store::{ProjectRecord, ProjectStatus, StoreError, TaskStatus};

/// A stored value no Spindle process writes: `what` it was and why it is wrong.
pub(super) fn corrupt(what: &'static str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: err.to_string(),
    }
}

/// The stored code of a status, in the column's SMALLINT type.
pub(super) fn status_code(status: TaskStatus) -> i16 {
    // Codes are 1..=4 (TaskStatus::code), so the narrowing cannot lose anything.
    status.code() as i16
}

/// The `status` column of a task row.
pub(super) fn status_from_row(row: &PgRow) -> Result<TaskStatus, StoreError> {
    let code: i16 = row.try_get("status").map_err(db)?;
    TaskStatus::from_code(i64::from(code)).ok_or_else(|| corrupt("tasks.status", code))
}

/// The `retries` column of a task row.
pub(super) fn retries_from_row(row: &PgRow) -> Result<u32, StoreError> {
    let retries: i64 = row.try_get("retries").map_err(db)?;
    u32::try_from(retries).map_err(|_| corrupt("tasks.retries", retries))
}

/// A `COUNT` column.
pub(super) fn count_from_row(row: &PgRow, column: &str) -> Result<u64, StoreError> {
    let n: i64 = row.try_get(column).map_err(db)?;
    u64::try_from(n).map_err(|_| corrupt("row count", n))
}

/// A row limit as SQL wants it; `usize` beyond `i64` means "no limit" anyway.
pub(super) fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// The `status` column of a project row.
fn project_status_from_row(row: &PgRow) -> Result<ProjectStatus, StoreError> {
    let text: String = row.try_get("status").map_err(db)?;
    text.parse().map_err(|e| corrupt("projects.status", e))
}

/// A row of `projects`, read with [`super::PROJECT_COLUMNS`].
pub(super) fn project_from_row(row: &PgRow) -> Result<ProjectRecord, StoreError> {
    Ok(ProjectRecord {
        name: row.try_get("name").map_err(db)?,
        definition: row.try_get("definition").map_err(db)?,
        status: project_status_from_row(row)?,
        rate: row.try_get("rate").map_err(db)?,
        burst: row.try_get("burst").map_err(db)?,
        group: row.try_get("grp").map_err(db)?,
        updated_ms: row.try_get("updated_ms").map_err(db)?,
        last_start_ms: row.try_get("last_start_ms").map_err(db)?,
        run_requested_ms: row.try_get("run_requested_ms").map_err(db)?,
        origin: row.try_get("origin").map_err(db)?,
    })
}
