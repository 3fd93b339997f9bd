//! One behaviour, two databases: every case here runs on the SQLite store and on the
//! PostgreSQL store, so the embedded and the distributed mode keep the same semantics.
//!
//! A case is a backend-generic `async fn` taking a `&dyn Store` (or a [`TestDb`] when it
//! needs to open the database more than once); [`conformance!`] turns each into a `sqlite`
//! and a `postgres` test, named `<case>::sqlite` and `<case>::postgres`.
//!
//! SQLite runs on a file in a temporary folder. PostgreSQL runs in a fresh database per test,
//! created through `SPINDLE_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and dropped afterwards, also when the case
//! fails. Without a reachable server the PostgreSQL tests skip with a printed reason, unless
//! `CI=true` (see [`spindle_testkit::require_service`]).

use std::collections::{BTreeSet, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use serde_json::{Map, Value, json};
use spindle_common::message::{FetchOptions, Item, Task};
use spindle_common::store::{
    KnownTask, Presence, ProjectChange, ProjectRecord, ProjectStatus, Store, StoreError,
    TaskCounts, TaskStatus, TaskUpdate,
};
use spindle_store as store;
use spindle_testkit::PgTestDb;
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;

// ---------------------------------------------------------------------------------------
// Fixtures: a fresh database per test, on either backend.
// ---------------------------------------------------------------------------------------

/// Which store a test runs on.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database that can be opened as a store as many times as a case needs.
struct TestDb {
    /// What [`store::connect`] opens.
    url: String,
    backing: Backing,
}

enum Backing {
    /// The folder holding the database file; removed on drop.
    Sqlite(tempfile::TempDir),
    /// The test's database on the server.
    Postgres(PgTestDb),
}

impl TestDb {
    /// A new database, or `None` when the test is to be skipped.
    async fn create(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary folder");
                let url = format!("sqlite://{}", dir.path().join("spindle.db").display());
                Some(TestDb {
                    url,
                    backing: Backing::Sqlite(dir),
                })
            }
            Backend::Postgres => {
                let db = PgTestDb::create().await?;
                Some(TestDb {
                    url: db.url.clone(),
                    backing: Backing::Postgres(db),
                })
            }
        }
    }

    /// Opens the database as a store, as a service would: through [`store::connect`].
    async fn open(&self) -> Arc<dyn Store> {
        store::connect(&self.url).await.expect("open the store")
    }

    /// Runs `sql` on the database behind the store's back, through a connection of its own:
    /// how a case writes what no Spindle process writes.
    async fn execute(&self, sql: &'static str) {
        match self.backing {
            Backing::Sqlite(_) => {
                let mut conn = SqliteConnection::connect(&self.url)
                    .await
                    .expect("connect to the SQLite file");
                sqlx::query(sql).execute(&mut conn).await.expect("execute");
                conn.close().await.expect("close");
            }
            Backing::Postgres { .. } => {
                let mut conn = PgConnection::connect(&self.url)
                    .await
                    .expect("connect to the test database");
                sqlx::query(sql).execute(&mut conn).await.expect("execute");
                conn.close().await.expect("close");
            }
        }
    }

    /// Removes the database.
    async fn destroy(self) {
        match self.backing {
            Backing::Sqlite(dir) => drop(dir),
            Backing::Postgres(db) => db.destroy().await,
        }
    }
}

/// Runs `case` on a fresh database of `backend`, and removes the database even if it panics.
async fn on_db(backend: Backend, case: impl AsyncFnOnce(&TestDb)) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let outcome = AssertUnwindSafe(case(&db)).catch_unwind().await;
    db.destroy().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Runs `case` on a store opened on a fresh database of `backend`.
async fn on_store(backend: Backend, case: impl AsyncFnOnce(&dyn Store)) {
    on_db(backend, async move |db: &TestDb| {
        let store = db.open().await;
        case(&*store).await;
    })
    .await;
}

/// Makes a `sqlite` and a `postgres` test of each case: `store:` cases take a `&dyn Store`,
/// `db:` cases a `&TestDb`.
macro_rules! conformance {
    (store: [$($case:ident),* $(,)?], db: [$($db_case:ident),* $(,)?] $(,)?) => {
        $(
            mod $case {
                #[tokio::test]
                async fn sqlite() {
                    crate::on_store(crate::Backend::Sqlite, super::$case).await;
                }

                #[tokio::test]
                async fn postgres() {
                    crate::on_store(crate::Backend::Postgres, super::$case).await;
                }
            }
        )*
        $(
            mod $db_case {
                #[tokio::test]
                async fn sqlite() {
                    crate::on_db(crate::Backend::Sqlite, super::$db_case).await;
                }

                #[tokio::test]
                async fn postgres() {
                    crate::on_db(crate::Backend::Postgres, super::$db_case).await;
                }
            }
        )*
    };
}

// Cases by concept, in files of their own (a file directly in tests/ would be a test binary
// of its own).
#[path = "store_conformance/project_settings.rs"]
mod project_settings;
#[path = "store_conformance/task_listing.rs"]
mod task_listing;

conformance!(
    store: [
        claims_best_first_then_fifo_and_only_due_tasks,
        claims_respect_limit_project_and_due_time,
        claimed_tasks_come_back_whole,
        claims_follow_the_places_given_then_arrival_for_the_rest,
        finished_tasks_are_known_with_their_crawl_time_and_retries_requeue,
        a_retry_goes_to_the_back_of_its_priority,
        known_tasks_are_looked_up_in_chunks,
        put_tasks_requeues_a_done_or_claimed_task,
        put_tasks_keeps_the_last_of_duplicates_in_one_batch,
        release_claims_returns_only_claims_of_the_project,
        next_due_is_the_earliest_waiting_task,
        task_counts_cover_every_state,
        finish_tasks_touches_only_the_named_tasks_of_the_project,
        empty_batches_are_no_ops,
        results_upsert_by_key_and_page_in_key_order,
        results_page_through_many_pages,
        results_keep_their_json_as_written,
        saving_a_project_again_keeps_its_last_start,
        projects_are_listed_by_name,
        validators_of_a_success_come_back_with_the_task,
        a_task_is_read_and_cancelled_by_id,
        deleting_a_project_removes_its_tasks_and_results,
        old_results_are_purged,
        results_of_a_missing_project_are_not_written,
        tasks_put_claimed_are_not_claimed_again_until_released,
        a_run_request_comes_after_the_last_start_and_survives_saves,
        setting_the_status_bumps_the_update_time,
        presence_agrees_with_the_stored_tasks,
    ],
    db: [
        released_claims_are_claimable_again_and_fifo_survives_reopen,
        concurrent_claims_never_hand_out_a_task_twice,
        two_stores_on_one_database_see_each_others_tasks,
        an_unknown_stored_status_is_a_corrupt_value,
    ],
);

async fn validators_of_a_success_come_back_with_the_task(s: &dyn Store) {
    s.put_tasks(&[task("a", 0, 0)], 0).await.expect("put");
    s.claim_ready("p", 0, 10).await.expect("claim");
    let mut done = ended("a", TaskStatus::Success, 10);
    done.etag = Some("\"v1\"".into());
    done.last_modified = Some("Mon, 01 Jan 2024 00:00:00 GMT".into());
    s.finish_tasks("p", &[done]).await.expect("finish");
    // A later success without validators (e.g. a 304 that sent none) keeps the stored ones.
    s.put_tasks(&[task("a", 0, 0)], 20).await.expect("requeue");
    let again = s.claim_ready("p", 30, 10).await.expect("claim");
    assert_eq!(again[0].fetch.etag.as_deref(), Some("\"v1\""));
    s.finish_tasks("p", &[ended("a", TaskStatus::Success, 40)])
        .await
        .expect("finish");
    let record = s.task("p", "a").await.expect("task").expect("known");
    assert_eq!(
        record.task.fetch.last_modified.as_deref(),
        Some("Mon, 01 Jan 2024 00:00:00 GMT")
    );
    assert_eq!(record.last_crawl_ms, Some(40));
}

async fn a_task_is_read_and_cancelled_by_id(s: &dyn Store) {
    s.put_tasks(&[task("a", 3, 0), task("b", 0, 0)], 5)
        .await
        .expect("put");
    let record = s.task("p", "a").await.expect("task").expect("known");
    assert_eq!(
        (record.status, record.claimed, record.task.priority),
        (TaskStatus::Active, false, 3)
    );
    assert!(s.task("p", "zzz").await.expect("task").is_none());
    assert!(s.cancel_task("p", "a", 9).await.expect("cancel"));
    assert!(!s.cancel_task("p", "zzz", 9).await.expect("cancel"));
    let record = s.task("p", "a").await.expect("task").expect("known");
    assert_eq!((record.status, record.updated_ms), (TaskStatus::Bad, 9));
    let ids: Vec<String> = s
        .claim_ready("p", 0, 10)
        .await
        .expect("claim")
        .into_iter()
        .map(|t| t.taskid)
        .collect();
    assert_eq!(ids, ["b"], "a cancelled task leaves the queue");
}

async fn deleting_a_project_removes_its_tasks_and_results(s: &dyn Store) {
    for name in ["p", "q"] {
        s.save_project(&project(name)).await.expect("save");
        s.put_tasks(&[task_in(name, "a", 0, 0)], 0)
            .await
            .expect("put");
        s.upsert_results(name, &[item("a", 1)], 0)
            .await
            .expect("results");
    }
    s.delete_project("p").await.expect("delete");
    assert!(s.project("p").await.expect("project").is_none());
    assert_eq!(
        s.task_counts("p").await.expect("counts"),
        TaskCounts::default()
    );
    assert_eq!(s.count_results("p").await.expect("count"), 0);
    assert!(
        s.project("q").await.expect("project").is_some(),
        "other projects stay"
    );
    assert_eq!(s.count_results("q").await.expect("count"), 1);
}

async fn results_of_a_missing_project_are_not_written(s: &dyn Store) {
    // Pages of a deleted project can still be in flight; their items must not come back.
    let written = s
        .upsert_results("gone", &[item("a", 1)], 0)
        .await
        .expect("upsert");
    assert!(!written, "reported as not written");
    assert_eq!(s.count_results("gone").await.expect("count"), 0);
    s.save_project(&project("gone")).await.expect("save");
    assert!(
        s.upsert_results("gone", &[item("a", 1)], 0)
            .await
            .expect("upsert")
    );
    s.delete_project("gone").await.expect("delete");
    assert!(
        !s.upsert_results("gone", &[item("b", 1)], 0)
            .await
            .expect("upsert")
    );
    assert_eq!(s.count_results("gone").await.expect("count"), 0);
}

async fn old_results_are_purged(s: &dyn Store) {
    s.save_project(&project("p")).await.expect("save");
    assert_eq!(s.last_result_ms("p").await.expect("last"), None);
    s.upsert_results("p", &[item("old", 1)], 100)
        .await
        .expect("upsert");
    s.upsert_results("p", &[item("new", 1)], 200)
        .await
        .expect("upsert");
    assert_eq!(s.last_result_ms("p").await.expect("last"), Some(200));
    assert_eq!(s.purge_results("p", 150).await.expect("purge"), 1);
    let left: Vec<String> = s
        .results_page("p", None, 10)
        .await
        .expect("page")
        .into_iter()
        .map(|i| i.taskid)
        .collect();
    assert_eq!(left, ["new"]);
}

/// PostgreSQL only: roles of a deployment start together on an empty database. (The SQLite
/// store of the embedded mode has one process; two opening a fresh file at once race on
/// the migration, "table projects already exists".)
#[tokio::test]
async fn concurrent_first_opens_migrate_once_on_postgres() {
    on_db(Backend::Postgres, concurrent_first_opens_migrate_once).await;
}

// ---------------------------------------------------------------------------------------
// Builders.
// ---------------------------------------------------------------------------------------

fn task_in(project: &str, id: &str, priority: i32, exetime: i64) -> Task {
    Task {
        project: project.into(),
        taskid: id.into(),
        url: format!("http://a/{id}"),
        callback: "detail".into(),
        priority,
        exetime,
        age_ms: None,
        itag: None,
        retries: 0,
        depth: 1,
        force: false,
        fetch: FetchOptions::default(),
        save: None,
        order: 0,
    }
}

fn task(id: &str, priority: i32, exetime: i64) -> Task {
    task_in("p", id, priority, exetime)
}

fn ended(id: &str, status: TaskStatus, at_ms: i64) -> TaskUpdate {
    TaskUpdate {
        taskid: id.into(),
        status,
        exetime: 0,
        retries: 0,
        at_ms,
        last_error: None,
        etag: None,
        last_modified: None,
        track: None,
    }
}

fn retry(id: &str, exetime: i64, retries: u32, at_ms: i64) -> TaskUpdate {
    TaskUpdate {
        taskid: id.into(),
        status: TaskStatus::Active,
        exetime,
        retries,
        at_ms,
        last_error: Some("HTTP 503".into()),
        etag: None,
        last_modified: None,
        track: None,
    }
}

fn object(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("a JSON object")
}

fn item(id: &str, v: i64) -> Item {
    Item {
        taskid: id.into(),
        url: format!("http://a/{id}"),
        data: object(json!({ "v": v })),
    }
}

fn project(name: &str) -> ProjectRecord {
    ProjectRecord {
        name: name.into(),
        definition: format!("name = \"{name}\""),
        status: ProjectStatus::Running,
        rate: 2.5,
        burst: 5.0,
        group: Some("news".into()),
        updated_ms: 100,
        last_start_ms: 0,
        run_requested_ms: 0,
        origin: None,
    }
}

async fn claim_ids(store: &dyn Store, project: &str, now_ms: i64, limit: usize) -> Vec<String> {
    store
        .claim_ready(project, now_ms, limit)
        .await
        .expect("claim")
        .into_iter()
        .map(|t| t.taskid)
        .collect()
}

async fn known_one(store: &dyn Store, id: &str) -> KnownTask {
    let mut known = store.known_tasks("p", &[id]).await.expect("known");
    assert_eq!(known.len(), 1, "{id} is known once");
    known.remove(0)
}

async fn counts(store: &dyn Store, project: &str) -> TaskCounts {
    store.task_counts(project).await.expect("counts")
}

// ---------------------------------------------------------------------------------------
// The frontier.
// ---------------------------------------------------------------------------------------

async fn claims_best_first_then_fifo_and_only_due_tasks(s: &dyn Store) {
    s.put_tasks(
        &[
            task("a", 0, 0),
            task("b", 5, 0),
            task("c", 0, 0),
            task("later", 9, 10_000),
        ],
        0,
    )
    .await
    .expect("put");
    assert_eq!(claim_ids(s, "p", 1_000, 10).await, ["b", "a", "c"]);
    assert!(claim_ids(s, "p", 1_000, 10).await.is_empty());
    assert_eq!(s.next_due("p").await.expect("due"), Some(10_000));
    let counts = counts(s, "p").await;
    assert_eq!((counts.queued, counts.claimed), (1, 3));
}

async fn claims_respect_limit_project_and_due_time(s: &dyn Store) {
    s.put_tasks(
        &[
            task("a", 0, 0),
            task("b", 0, 0),
            task("c", 0, 100),
            task_in("q", "x", 0, 0),
        ],
        0,
    )
    .await
    .expect("put");
    assert!(claim_ids(s, "p", 100, 0).await.is_empty(), "limit 0");
    assert_eq!(claim_ids(s, "p", 99, 10).await, ["a", "b"], "c is not due");
    assert_eq!(
        claim_ids(s, "p", 100, 10).await,
        ["c"],
        "due at its exetime"
    );
    assert_eq!(
        claim_ids(s, "q", 0, 10).await,
        ["x"],
        "other project untouched"
    );
    assert!(claim_ids(s, "nope", 0, 10).await.is_empty());
}

async fn claimed_tasks_come_back_whole(s: &dyn Store) {
    let mut full = task("full", 3, 50);
    full.url = "https://example.com/päth?q=ü&a=1".into();
    full.callback = "list".into();
    full.age_ms = Some(86_400_000);
    full.itag = Some("v2".into());
    full.retries = 2;
    full.depth = 7;
    full.force = true;
    full.fetch.method = Some("POST".into());
    full.fetch.headers.insert("X-Test".into(), "yes".into());
    full.fetch.body = Some("a=1".into());
    full.fetch.timeout_ms = Some(5_000);
    full.save = Some(object(
        json!({ "z": 1, "a": [true, null, "é"], "m": { "n": 1.5 } }),
    ));
    full.order = 77;
    s.put_tasks(std::slice::from_ref(&full), 0)
        .await
        .expect("put");
    let claimed = s.claim_ready("p", 50, 1).await.expect("claim");
    assert_eq!(claimed, [full]);
}

async fn claims_follow_the_places_given_then_arrival_for_the_rest(s: &dyn Store) {
    let placed = |id: &str, priority: i32, order: i64| Task {
        order,
        ..task(id, priority, 0)
    };
    // Two hosts taking turns: a's tasks at places 10, 11, 12 and b's at 10, 11.
    s.put_tasks(
        &[
            placed("a1", 0, 10),
            placed("a2", 0, 11),
            placed("a3", 0, 12),
            placed("b1", 0, 10),
            placed("b2", 0, 11),
            placed("urgent", 5, 99),
        ],
        0,
    )
    .await
    .expect("put");
    let claimed = s.claim_ready("p", 0, 3).await.expect("claim");
    let ids: Vec<&str> = claimed.iter().map(|t| t.taskid.as_str()).collect();
    assert_eq!(ids, ["urgent", "a1", "b1"], "priority first, then place");
    assert_eq!(
        claimed.iter().map(|t| t.order).collect::<Vec<_>>(),
        [99, 10, 10],
        "a claimed task carries its place"
    );
    assert_eq!(claim_ids(s, "p", 0, 2).await, ["a2", "b2"]);
    // A task without a place goes after every task queued before it.
    s.put_tasks(&[task("plain", 0, 0)], 0).await.expect("put");
    let rest = s.claim_ready("p", 0, 10).await.expect("claim");
    let ids: Vec<&str> = rest.iter().map(|t| t.taskid.as_str()).collect();
    assert_eq!(ids, ["a3", "plain"]);
    assert!(
        rest[1].order > 12,
        "the store numbers it after the places given"
    );
}

async fn finished_tasks_are_known_with_their_crawl_time_and_retries_requeue(s: &dyn Store) {
    s.put_tasks(&[task("ok", 0, 0), task("retry", 0, 0)], 0)
        .await
        .expect("put");
    s.claim_ready("p", 0, 10).await.expect("claim");
    s.finish_tasks(
        "p",
        &[
            ended("ok", TaskStatus::Success, 500),
            retry("retry", 2_000, 1, 500),
        ],
    )
    .await
    .expect("finish");
    let known = s.known_tasks("p", &["ok", "nope"]).await.expect("known");
    assert_eq!(known.len(), 1);
    assert_eq!(known[0].status, TaskStatus::Success);
    assert_eq!(known[0].last_crawl_ms, Some(500));
    assert!(claim_ids(s, "p", 1_000, 10).await.is_empty());
    let retried = s.claim_ready("p", 2_000, 10).await.expect("claim");
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].retries, 1);
    assert_eq!(retried[0].exetime, 2_000);
}

async fn a_retry_goes_to_the_back_of_its_priority(s: &dyn Store) {
    s.put_tasks(&[task("a", 0, 0), task("b", 0, 0), task("c", 0, 0)], 0)
        .await
        .expect("put");
    assert_eq!(claim_ids(s, "p", 0, 1).await, ["a"]);
    s.finish_tasks("p", &[retry("a", 0, 1, 10)])
        .await
        .expect("finish");
    assert_eq!(claim_ids(s, "p", 10, 10).await, ["b", "c", "a"]);

    // Retries ended in one batch queue up in the order of the batch.
    s.finish_tasks(
        "p",
        &[
            retry("c", 0, 1, 20),
            retry("a", 0, 2, 20),
            retry("b", 0, 1, 20),
        ],
    )
    .await
    .expect("finish");
    assert_eq!(claim_ids(s, "p", 20, 10).await, ["c", "a", "b"]);
}

async fn known_tasks_are_looked_up_in_chunks(s: &dyn Store) {
    // More ids than one statement of either backend takes, so several chunks are needed.
    let tasks: Vec<Task> = (0..2_345)
        .map(|i| {
            let mut t = task(&format!("t{i:05}"), 0, 0);
            if i % 7 == 0 {
                t.itag = Some(format!("tag{i}"));
                t.age_ms = Some(i);
            }
            t
        })
        .collect();
    s.put_tasks(&tasks, 0).await.expect("put");
    let unknown: Vec<String> = (0..300).map(|i| format!("u{i:05}")).collect();
    // Known and unknown ids interleaved, so every chunk has some of both.
    let mut ids: Vec<&str> = Vec::new();
    for (i, t) in tasks.iter().enumerate() {
        ids.push(&t.taskid);
        if let Some(u) = unknown.get(i / 8).filter(|_| i % 8 == 0) {
            ids.push(u);
        }
    }
    let known = s.known_tasks("p", &ids).await.expect("known");
    assert_eq!(known.len(), 2_345);
    let seen: HashSet<&str> = known.iter().map(|k| k.taskid.as_str()).collect();
    assert_eq!(seen.len(), 2_345, "each known task once");
    for k in &known {
        let i: i64 = k.taskid[1..].parse().expect("numbered id");
        assert_eq!(k.status, TaskStatus::Active);
        assert_eq!(k.last_crawl_ms, None);
        let tagged = i % 7 == 0;
        assert_eq!(k.itag, tagged.then(|| format!("tag{i}")), "{}", k.taskid);
        assert_eq!(k.age_ms, tagged.then_some(i), "{}", k.taskid);
    }
    assert!(
        s.known_tasks("q", &ids).await.expect("known").is_empty(),
        "tasks are per project"
    );
    // All of them again: re-queued in place, in chunks as large as the inserts'.
    s.put_tasks(&tasks, 1).await.expect("put again");
    let counts = s.task_counts("p").await.expect("counts");
    assert_eq!(counts.queued, 2_345, "updated, not added");
}

async fn put_tasks_requeues_a_done_or_claimed_task(s: &dyn Store) {
    s.put_tasks(&[task("done", 0, 0)], 0).await.expect("put");
    assert_eq!(claim_ids(s, "p", 0, 10).await, ["done"]);
    let mut failed = ended("done", TaskStatus::Failed, 500);
    failed.retries = 3;
    failed.last_error = Some("HTTP 404".into());
    s.finish_tasks("p", &[failed]).await.expect("finish");
    s.put_tasks(&[task("waiting", 0, 0)], 600)
        .await
        .expect("put");

    // Queued again, e.g. forced: active, unclaimed, its retries reset, at the back.
    let mut again = task("done", 0, 0);
    again.itag = Some("new".into());
    s.put_tasks(&[again], 700).await.expect("re-put");
    let known = known_one(s, "done").await;
    assert_eq!(known.status, TaskStatus::Active);
    assert_eq!(known.itag.as_deref(), Some("new"));
    assert_eq!(known.last_crawl_ms, Some(500), "the last crawl is history");
    assert_eq!(
        counts(s, "p").await,
        TaskCounts {
            queued: 2,
            ..TaskCounts::default()
        }
    );
    let claimed = s.claim_ready("p", 700, 10).await.expect("claim");
    let order: Vec<&str> = claimed.iter().map(|t| t.taskid.as_str()).collect();
    assert_eq!(order, ["waiting", "done"]);
    assert_eq!(claimed[1].retries, 0);

    // A claimed task queued again is unclaimed: claimable once more.
    s.put_tasks(&[task("waiting", 0, 0)], 800)
        .await
        .expect("re-put");
    assert_eq!(
        counts(s, "p").await,
        TaskCounts {
            queued: 1,
            claimed: 1,
            ..TaskCounts::default()
        }
    );
    assert_eq!(claim_ids(s, "p", 800, 10).await, ["waiting"]);
}

async fn put_tasks_keeps_the_last_of_duplicates_in_one_batch(s: &dyn Store) {
    let mut first = task("a", 0, 0);
    first.url = "http://a/first".into();
    let mut last = task("a", 0, 0);
    last.url = "http://a/last".into();
    s.put_tasks(&[first, task("b", 0, 0), last], 0)
        .await
        .expect("put");
    assert_eq!(counts(s, "p").await.queued, 2);
    let claimed = s.claim_ready("p", 0, 10).await.expect("claim");
    let order: Vec<(&str, &str)> = claimed
        .iter()
        .map(|t| (t.taskid.as_str(), t.url.as_str()))
        .collect();
    // The last occurrence wins, and takes its place in the queue.
    assert_eq!(order, [("b", "http://a/b"), ("a", "http://a/last")]);
}

async fn release_claims_returns_only_claims_of_the_project(s: &dyn Store) {
    s.put_tasks(
        &[
            task("a", 0, 0),
            task("b", 0, 0),
            task("c", 0, 0),
            task_in("q", "x", 0, 0),
        ],
        0,
    )
    .await
    .expect("put");
    assert_eq!(claim_ids(s, "p", 0, 2).await, ["a", "b"]);
    assert_eq!(claim_ids(s, "q", 0, 1).await, ["x"]);
    s.finish_tasks("p", &[ended("a", TaskStatus::Success, 5)])
        .await
        .expect("finish");
    assert_eq!(s.release_claims("p").await.expect("release"), 1, "only b");
    assert_eq!(s.release_claims("p").await.expect("release"), 0);
    assert_eq!(counts(s, "q").await.claimed, 1, "q keeps its claim");
    assert_eq!(known_one(s, "a").await.status, TaskStatus::Success);
    assert_eq!(claim_ids(s, "p", 0, 10).await, ["b", "c"]);
}

async fn tasks_put_claimed_are_not_claimed_again_until_released(s: &dyn Store) {
    s.put_tasks(&[task("a", 0, 0)], 0).await.expect("put");
    s.put_claimed_tasks(&[task("b", 5, 0), task("a", 0, 0)], 0)
        .await
        .expect("put claimed");
    let c = counts(s, "p").await;
    assert_eq!((c.queued, c.claimed), (0, 2), "a queued task taken too");
    assert!(claim_ids(s, "p", 0, 10).await.is_empty(), "already claimed");
    assert!(known_one(s, "b").await.claimed);
    // After a crash the claims go back to the queue, best first.
    assert_eq!(s.release_claims("p").await.expect("release"), 2);
    assert_eq!(claim_ids(s, "p", 0, 10).await, ["b", "a"]);
}

async fn next_due_is_the_earliest_waiting_task(s: &dyn Store) {
    assert_eq!(s.next_due("p").await.expect("due"), None);
    s.put_tasks(
        &[
            task("a", 0, 5_000),
            task("b", 9, 3_000),
            task_in("q", "x", 0, 1_000),
        ],
        0,
    )
    .await
    .expect("put");
    assert_eq!(s.next_due("p").await.expect("due"), Some(3_000));
    assert_eq!(claim_ids(s, "p", 3_000, 10).await, ["b"]);
    assert_eq!(
        s.next_due("p").await.expect("due"),
        Some(5_000),
        "claimed tasks are not waiting"
    );
    s.finish_tasks("p", &[ended("b", TaskStatus::Success, 3_100)])
        .await
        .expect("finish");
    assert_eq!(s.next_due("p").await.expect("due"), Some(5_000));
    assert_eq!(claim_ids(s, "p", 5_000, 10).await, ["a"]);
    assert_eq!(s.next_due("p").await.expect("due"), None);
    s.finish_tasks("p", &[retry("a", 9_000, 1, 5_100)])
        .await
        .expect("finish");
    assert_eq!(s.next_due("p").await.expect("due"), Some(9_000));
    assert_eq!(s.next_due("q").await.expect("due"), Some(1_000));
}

async fn task_counts_cover_every_state(s: &dyn Store) {
    assert_eq!(counts(s, "p").await, TaskCounts::default());
    s.put_tasks(
        &[
            task("s", 0, 0),
            task("f", 0, 0),
            task("x", 0, 0),
            task("c", 0, 0),
            task("q1", 0, 0),
            task("q2", 0, 10_000),
            task_in("other", "o", 0, 0),
        ],
        0,
    )
    .await
    .expect("put");
    assert_eq!(claim_ids(s, "p", 0, 4).await, ["s", "f", "x", "c"]);
    s.finish_tasks(
        "p",
        &[
            ended("s", TaskStatus::Success, 1),
            ended("f", TaskStatus::Failed, 1),
            ended("x", TaskStatus::Bad, 1),
        ],
    )
    .await
    .expect("finish");
    assert_eq!(
        counts(s, "p").await,
        TaskCounts {
            queued: 2,
            claimed: 1,
            success: 1,
            failed: 1,
            bad: 1,
        }
    );
    assert_eq!(
        counts(s, "other").await,
        TaskCounts {
            queued: 1,
            ..TaskCounts::default()
        }
    );
    for (id, status) in [
        ("s", TaskStatus::Success),
        ("f", TaskStatus::Failed),
        ("x", TaskStatus::Bad),
        ("c", TaskStatus::Active),
        ("q2", TaskStatus::Active),
    ] {
        assert_eq!(known_one(s, id).await.status, status, "{id}");
    }
}

async fn finish_tasks_touches_only_the_named_tasks_of_the_project(s: &dyn Store) {
    s.put_tasks(&[task("a", 0, 0), task("b", 0, 0)], 0)
        .await
        .expect("put");
    assert_eq!(claim_ids(s, "p", 0, 10).await, ["a", "b"]);
    // Unknown tasks and other projects' names are ignored, not errors.
    s.finish_tasks("p", &[ended("ghost", TaskStatus::Success, 1)])
        .await
        .expect("finish unknown");
    s.finish_tasks("q", &[ended("a", TaskStatus::Success, 1)])
        .await
        .expect("finish in another project");
    assert_eq!(counts(s, "p").await.claimed, 2);
    assert!(
        s.known_tasks("p", &["ghost"])
            .await
            .expect("known")
            .is_empty()
    );
    // Two endings of one task in a batch: the last one holds.
    s.finish_tasks(
        "p",
        &[
            ended("a", TaskStatus::Failed, 2),
            ended("a", TaskStatus::Success, 3),
        ],
    )
    .await
    .expect("finish");
    let a = known_one(s, "a").await;
    assert_eq!((a.status, a.last_crawl_ms), (TaskStatus::Success, Some(3)));
    assert_eq!(counts(s, "p").await.claimed, 1, "b is still in flight");
}

async fn empty_batches_are_no_ops(s: &dyn Store) {
    s.put_tasks(&[], 0).await.expect("put nothing");
    s.finish_tasks("p", &[]).await.expect("finish nothing");
    s.upsert_results("p", &[], 0).await.expect("upsert nothing");
    assert!(s.known_tasks("p", &[]).await.expect("known").is_empty());
    assert_eq!(s.release_claims("p").await.expect("release"), 0);
    assert!(claim_ids(s, "p", i64::MAX, usize::MAX).await.is_empty());
    assert_eq!(counts(s, "p").await, TaskCounts::default());
    assert_eq!(s.count_results("p").await.expect("count"), 0);
    assert!(
        s.results_page("p", None, 10)
            .await
            .expect("page")
            .is_empty()
    );
    assert!(s.projects().await.expect("projects").is_empty());
}

// ---------------------------------------------------------------------------------------
// Results.
// ---------------------------------------------------------------------------------------

async fn results_upsert_by_key_and_page_in_key_order(s: &dyn Store) {
    s.save_project(&project("p")).await.expect("save");
    s.upsert_results("p", &[item("b", 1), item("a", 1)], 1)
        .await
        .expect("upsert");
    s.upsert_results("p", &[item("b", 2)], 2)
        .await
        .expect("upsert");
    assert_eq!(s.count_results("p").await.expect("count"), 2);
    // Written at or after 2: only `b`, replaced then.
    assert_eq!(s.count_results_since("p", 2).await.expect("count"), 1);
    assert_eq!(s.count_results_since("p", 1).await.expect("count"), 2);
    assert_eq!(s.count_results_since("p", 3).await.expect("count"), 0);
    let page = s.results_page("p", None, 1).await.expect("page");
    assert_eq!(page[0].taskid, "a");
    let page = s.results_page("p", Some("a"), 10).await.expect("page");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].data["v"], 2);
}

async fn results_page_through_many_pages(s: &dyn Store) {
    // Inserted out of key order, in batches larger than one statement's chunk; the keys mix
    // cases so that key order is byte order (upper case first) on both backends.
    let mut keys: Vec<String> = (0..2_345)
        .map(|i| {
            if i % 3 == 0 {
                format!("K{i:05}")
            } else {
                format!("k{i:05}")
            }
        })
        .collect();
    keys.reverse();
    let items: Vec<Item> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| item(k, i as i64))
        .collect();
    for name in ["p", "q"] {
        s.save_project(&project(name)).await.expect("save");
    }
    s.upsert_results("p", &items, 1).await.expect("upsert");
    s.upsert_results("q", &[item("K00000", 0)], 1)
        .await
        .expect("upsert other project");
    assert_eq!(s.count_results("p").await.expect("count"), 2_345);

    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = s
            .results_page("p", after.as_deref(), 100)
            .await
            .expect("page");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 100);
        pages += 1;
        after = page.last().map(|i| i.taskid.clone());
        paged.extend(page);
    }
    assert_eq!(pages, 24);
    let paged_keys: Vec<&str> = paged.iter().map(|i| i.taskid.as_str()).collect();
    let mut expected: Vec<&str> = keys.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(paged_keys, expected, "every item once, in byte order");
    assert_eq!(paged.first().map(|i| i.taskid.as_str()), Some("K00000"));
}

async fn results_keep_their_json_as_written(s: &dyn Store) {
    let data = object(json!({
        "zeta": "first field",
        "alpha": [1, 2.5, -3, null, true],
        "mid": { "z": 1, "a": { "deep": "ü €" } },
        "nul": "a\u{0}b",
        "big": 9_007_199_254_740_993_i64,
        "edges": [u64::MAX, i64::MIN, 0.1, 1e300, -0.0, "\"q\" \\ \n\t\u{1f} 😀 \u{2028}"],
    }));
    let written = Item {
        taskid: "t".into(),
        url: "http://a/t".into(),
        data,
    };
    s.save_project(&project("p")).await.expect("save");
    // A duplicate in one batch: the last one is stored.
    s.upsert_results("p", &[item("t", 0), written.clone()], 1)
        .await
        .expect("upsert");
    let page = s.results_page("p", None, 10).await.expect("page");
    assert_eq!(page, std::slice::from_ref(&written));
    let fields: Vec<&str> = page[0].data.keys().map(String::as_str).collect();
    assert_eq!(
        fields,
        ["zeta", "alpha", "mid", "nul", "big", "edges"],
        "field order kept"
    );
    let nested: Vec<&str> = page[0].data["mid"]
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(nested, ["z", "a"]);
}

// ---------------------------------------------------------------------------------------
// Projects.
// ---------------------------------------------------------------------------------------

async fn saving_a_project_again_keeps_its_last_start(s: &dyn Store) {
    let first = project("books");
    s.save_project(&first).await.expect("save");
    assert_eq!(s.project("books").await.expect("load"), Some(first.clone()));

    s.mark_started("books", 1_234).await.expect("mark");
    let edited = ProjectRecord {
        definition: "name = \"books\"\nrate = 1".into(),
        status: ProjectStatus::Stop,
        rate: 1.0,
        burst: 1.0,
        group: None,
        updated_ms: 200,
        last_start_ms: 0,
        ..first
    };
    s.save_project(&edited).await.expect("save again");
    let stored = s.project("books").await.expect("load").expect("stored");
    assert_eq!(
        stored,
        ProjectRecord {
            last_start_ms: 1_234,
            ..edited
        }
    );

    s.mark_started("books", 5_678).await.expect("mark");
    let stored = s.project("books").await.expect("load").expect("stored");
    assert_eq!(stored.last_start_ms, 5_678);

    assert_eq!(s.project("nope").await.expect("load"), None);
    s.mark_started("nope", 1).await.expect("marking nothing");
    assert_eq!(s.project("nope").await.expect("load"), None, "not created");
}

async fn a_run_request_comes_after_the_last_start_and_survives_saves(s: &dyn Store) {
    assert!(
        !s.request_run("books", 1_000).await.expect("request"),
        "no such project"
    );
    assert_eq!(s.project("books").await.expect("load"), None, "not created");
    let first = project("books");
    s.save_project(&first).await.expect("save");
    assert!(s.request_run("books", 1_000).await.expect("request"));
    let stored = s.project("books").await.expect("load").expect("stored");
    assert_eq!((stored.run_requested_ms, stored.updated_ms), (1_000, 1_000));

    // A request from a process whose clock is behind the scheduler's still comes after the
    // last start, and still changes `updated_ms` (which makes the scheduler reload).
    s.mark_started("books", 5_000).await.expect("mark");
    assert!(s.request_run("books", 900).await.expect("request"));
    let stored = s.project("books").await.expect("load").expect("stored");
    assert_eq!((stored.run_requested_ms, stored.updated_ms), (5_001, 1_001));

    // Saving an edited definition keeps the pending request and the last start.
    let edited = ProjectRecord {
        definition: "name = \"books\"\nrate = 1".into(),
        updated_ms: 6_000,
        run_requested_ms: 0,
        ..first.clone()
    };
    s.save_project(&edited).await.expect("save again");
    let stored = s.project("books").await.expect("load").expect("stored");
    assert_eq!(
        stored,
        ProjectRecord {
            last_start_ms: 5_000,
            run_requested_ms: 5_001,
            ..edited
        }
    );
    // Deleted and created again, a project starts with no request.
    s.delete_project("books").await.expect("delete");
    s.save_project(&first).await.expect("save");
    let stored = s.project("books").await.expect("load").expect("stored");
    assert_eq!((stored.run_requested_ms, stored.last_start_ms), (0, 0));
}

async fn setting_the_status_bumps_the_update_time(s: &dyn Store) {
    assert!(
        !s.set_status("books", ProjectStatus::Stop, 1)
            .await
            .expect("status"),
        "no such project"
    );
    let first = project("books");
    s.save_project(&first).await.expect("save");
    // A clock behind the stored update time still makes a change the scheduler sees.
    assert!(
        s.set_status("books", ProjectStatus::Stop, 50)
            .await
            .expect("status")
    );
    let stored = s.project("books").await.expect("load").expect("stored");
    assert_eq!(
        stored,
        ProjectRecord {
            status: ProjectStatus::Stop,
            updated_ms: 101,
            ..first.clone()
        }
    );
    // Every status is written and read back as itself.
    for (i, status) in (1_000..).zip(ProjectStatus::ALL) {
        assert!(s.set_status("books", status, i).await.expect("status"));
        let stored = s.project("books").await.expect("load").expect("stored");
        assert_eq!((stored.status, stored.updated_ms), (status, i));
    }
}

async fn projects_are_listed_by_name(s: &dyn Store) {
    let names = ["b", "B", "a-1", "_x", "a", "Zeta", "a_2"];
    for name in names {
        s.save_project(&project(name)).await.expect("save");
    }
    let listed: Vec<String> = s
        .projects()
        .await
        .expect("projects")
        .into_iter()
        .map(|p| p.name)
        .collect();
    // Byte order, as SQLite's BINARY collation has it, whatever the server's locale.
    let expected: Vec<String> = names
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(listed.first().map(String::as_str), Some("B"));
}

// ---------------------------------------------------------------------------------------
// Cases that open the database more than once.
// ---------------------------------------------------------------------------------------

async fn an_unknown_stored_status_is_a_corrupt_value(db: &TestDb) {
    let s = db.open().await;
    s.save_project(&project("books")).await.expect("save");
    s.save_project(&project("news")).await.expect("save");
    // Written by hand (or by a later version): the store reads the name in any case...
    db.execute("UPDATE projects SET status = 'debug' WHERE name = 'news'")
        .await;
    let news = s.project("news").await.expect("load").expect("stored");
    assert_eq!(news.status, ProjectStatus::Debug);
    // ...and refuses a name it does not know, saying which column holds it.
    db.execute("UPDATE projects SET status = 'PAUSED' WHERE name = 'books'")
        .await;
    let is_corrupt = |result: Result<(), StoreError>| match result {
        Err(StoreError::Corrupt { what, detail }) => {
            what == "projects.status" && detail.contains("invalid status \"PAUSED\"")
        }
        _ => false,
    };
    let one = s.project("books").await.map(drop);
    assert!(is_corrupt(one), "project: {:?}", s.project("books").await);
    let all = s.projects().await.map(drop);
    assert!(is_corrupt(all), "projects");
    let change = ProjectChange {
        rate: Some(1.0),
        ..ProjectChange::default()
    };
    let changed = s.update_project("books", &change, 500).await.map(drop);
    assert!(is_corrupt(changed), "update_project reads the row back");
    // Setting a status repairs it.
    assert!(
        s.set_status("books", ProjectStatus::Stop, 600)
            .await
            .expect("status")
    );
    let books = s.project("books").await.expect("load").expect("stored");
    assert_eq!(books.status, ProjectStatus::Stop);
}

async fn released_claims_are_claimable_again_and_fifo_survives_reopen(db: &TestDb) {
    {
        let s = db.open().await;
        s.put_tasks(&[task("a", 0, 0), task("b", 0, 0)], 0)
            .await
            .expect("put");
        assert_eq!(claim_ids(&*s, "p", 0, 1).await, ["a"]);
    }
    // As a restarted scheduler does: claims of the dead process go back to the queue.
    let s = db.open().await;
    assert_eq!(s.release_claims("p").await.expect("release"), 1);
    s.put_tasks(&[task("c", 0, 0)], 1).await.expect("put");
    assert_eq!(
        claim_ids(&*s, "p", 1, 10).await,
        ["a", "b", "c"],
        "FIFO order is kept across a reopen"
    );
}

async fn concurrent_claims_never_hand_out_a_task_twice(db: &TestDb) {
    let (one, two) = (db.open().await, db.open().await);
    let tasks: Vec<Task> = (0..600).map(|i| task(&format!("t{i:04}"), 0, 0)).collect();
    one.put_tasks(&tasks, 0).await.expect("put");

    async fn drain(store: &dyn Store) -> Vec<String> {
        let mut got = Vec::new();
        loop {
            let batch = claim_ids(store, "p", 0, 25).await;
            if batch.is_empty() {
                return got;
            }
            got.extend(batch);
            // Let the other claimers in between batches.
            tokio::task::yield_now().await;
        }
    }
    let claimed: Vec<Vec<String>> =
        futures::future::join_all([drain(&*one), drain(&*two), drain(&*one), drain(&*two)]).await;
    let all: Vec<&String> = claimed.iter().flatten().collect();
    let unique: HashSet<&String> = all.iter().copied().collect();
    assert_eq!(all.len(), 600, "every task claimed");
    assert_eq!(unique.len(), 600, "no task claimed twice");
    assert_eq!(counts(&*one, "p").await.claimed, 600);
}

async fn concurrent_first_opens_migrate_once(db: &TestDb) {
    let (one, two) = futures::future::join(db.open(), db.open()).await;
    one.save_project(&project("p")).await.expect("save");
    assert_eq!(two.projects().await.expect("projects").len(), 1);
}

// ---------------------------------------------------------------------------------------
// Choosing the backend.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn connect_refuses_other_schemes_without_showing_passwords() {
    let err = match store::connect("mysql://spindle:s3cret@db.example/spindle").await {
        Ok(_) => panic!("a mysql URL was accepted"),
        Err(err) => err,
    };
    assert!(matches!(err, StoreError::UnsupportedUrl(_)), "{err}");
    let message = err.to_string();
    assert!(!message.contains("s3cret"), "{message}");
    assert!(message.contains("sqlite://"), "{message}");
    assert!(message.contains("postgres://"), "{message}");
}

async fn presence_agrees_with_the_stored_tasks(s: &dyn Store) {
    let aged = Task {
        age_ms: Some(1_000),
        ..task("aged", 0, 0)
    };
    let tagged = Task {
        itag: Some("v1".into()),
        ..task("tagged", 0, 0)
    };
    s.put_tasks(&[task("plain", 0, 0), aged, tagged], 0)
        .await
        .expect("put");
    assert_presence_is_true(s, &["plain", "aged", "tagged", "new"]).await;
    // Re-queued with a rule, the plain task is no longer a sure duplicate.
    s.put_tasks(
        &[Task {
            age_ms: Some(5),
            ..task("plain", 0, 0)
        }],
        1,
    )
    .await
    .expect("requeue");
    assert_presence_is_true(s, &["plain"]).await;
    assert_ne!(
        s.presence("q", &["plain"]).await.expect("presence"),
        [Presence::Plain],
        "another project does not know it"
    );
}

/// Checks each answer of `presence` against `known_tasks`: `Unknown` only for tasks not
/// stored, `Plain` only for tasks stored without rules (`Ask` is always allowed).
async fn assert_presence_is_true(s: &dyn Store, ids: &[&str]) {
    let answers = s.presence("p", ids).await.expect("presence");
    assert_eq!(answers.len(), ids.len());
    let known = s.known_tasks("p", ids).await.expect("known");
    for (id, answer) in ids.iter().zip(answers) {
        let stored = known.iter().find(|k| k.taskid == *id);
        match answer {
            Presence::Unknown => assert!(stored.is_none(), "{id} is stored"),
            Presence::Plain => assert!(
                stored.is_some_and(|k| k.age_ms.is_none() && k.itag.is_none()),
                "{id} is not stored without rules: {stored:?}"
            ),
            Presence::Ask => {}
        }
    }
}

/// Two processes on one database (a scheduler and the CLI, say): each sees what the other
/// wrote, and a task written by one is updated, never duplicated, by the other.
async fn two_stores_on_one_database_see_each_others_tasks(db: &TestDb) {
    let a = db.open().await;
    let b = db.open().await;
    // B reads before A writes, so whatever B caches is stale afterwards.
    assert!(b.task("p", "x").await.expect("task").is_none());
    a.put_tasks(&[task("x", 0, 0)], 0).await.expect("put");
    assert!(b.task("p", "x").await.expect("task").is_some());
    assert_eq!(known_ids(&*b, &["x", "y"]).await, ["x"]);
    b.put_tasks(&[task("x", 7, 0), task("y", 0, 0)], 1)
        .await
        .expect("put");
    assert_eq!(counts(&*a, "p").await.queued, 2, "x was updated, not added");
    assert_eq!(claim_ids(&*a, "p", 0, 10).await, ["x", "y"]);
    a.finish_tasks("p", &[ended("y", TaskStatus::Success, 2)])
        .await
        .expect("finish");
    let y = b.task("p", "y").await.expect("task").expect("known");
    assert_eq!(y.status, TaskStatus::Success);
    // A deleted and re-created project starts empty for both.
    a.delete_project("p").await.expect("delete");
    assert!(b.task("p", "x").await.expect("task").is_none());
    assert_ne!(
        b.presence("p", &["x"]).await.expect("presence"),
        [Presence::Plain]
    );
    b.put_tasks(&[task("x", 0, 0)], 3).await.expect("put");
    assert_eq!(counts(&*a, "p").await.queued, 1);
}

async fn known_ids(s: &dyn Store, ids: &[&str]) -> Vec<String> {
    let mut known: Vec<String> = s
        .known_tasks("p", ids)
        .await
        .expect("known")
        .into_iter()
        .map(|k| k.taskid)
        .collect();
    known.sort();
    known
}
