//! `spindle project list|run|start|stop|delete`: on a SQLite data folder filled by the test,
//! and against a running `spindle all` in another process, whose scheduler follows the
//! changes (a "run now" fetches the start URL again; a deleted project is unloaded and its
//! unchanged file in the projects folder does not bring it back).

mod support;

use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use spindle::embedded::{open_store, project_record};
use spindle::site::SiteSpec;
use spindle_common::message::{Item, Task};
use spindle_common::store::{ProjectStatus, TaskCounts, TaskStatus, TaskUpdate};
use spindle_common::{Project, Store};
use support::{free_port, serve, spindle, start_all, wait_output, web_ui_projects, write};

const LIMIT: Duration = Duration::from_secs(60);

/// `spindle project ARGS`, with no terminal on stdin (so a confirmation is never awaited).
fn project_cmd(args: &[&str]) -> Output {
    let child = spindle()
        .arg("project")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn spindle project");
    wait_output(child, LIMIT)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `spindle project ...` that must succeed; its stdout.
fn ok(args: &[&str]) -> String {
    let output = project_cmd(args);
    assert!(
        output.status.success(),
        "spindle project {args:?} failed: {}",
        stderr(&output)
    );
    stdout(&output)
}

/// The rows of `spindle project list`, split on whitespace, header first.
fn rows(listing: &str) -> Vec<Vec<String>> {
    listing
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn ended(task: &Task, status: TaskStatus) -> TaskUpdate {
    TaskUpdate {
        taskid: task.taskid.clone(),
        status,
        exetime: 0,
        retries: 0,
        at_ms: 10,
        last_error: None,
        etag: None,
        last_modified: None,
        track: None,
    }
}

/// A data folder with projects `books` (1 queued, 1 done and 1 failed task, 2 results) and
/// `news` (nothing yet).
async fn filled(data: &std::path::Path) -> std::sync::Arc<dyn Store> {
    let store = open_store(data).await.expect("store");
    let mut books = None;
    for (name, start) in [
        (
            "books",
            r#""http://a.test/a", "http://a.test/b", "http://a.test/c""#,
        ),
        ("news", r#""http://a.test/""#),
    ] {
        let toml = format!("name = \"{name}\"\nstart = [{start}]\n[handlers.start]\n");
        let project = Project::parse(&toml).expect("project");
        store
            .save_project(&project_record(&project, 1_000))
            .await
            .expect("save");
        books.get_or_insert(project);
    }
    let tasks = books.expect("books").start_tasks();
    store.put_tasks(&tasks, 0).await.expect("put");
    store.claim_ready("books", 0, 2).await.expect("claim");
    store
        .finish_tasks(
            "books",
            &[
                ended(&tasks[0], TaskStatus::Success),
                ended(&tasks[1], TaskStatus::Failed),
            ],
        )
        .await
        .expect("finish");
    let items: Vec<Item> = tasks[..2]
        .iter()
        .map(|t| Item {
            taskid: t.taskid.clone(),
            url: t.url.clone(),
            data: Default::default(),
        })
        .collect();
    store
        .upsert_results("books", &items, 10)
        .await
        .expect("results");
    store
}

#[tokio::test]
async fn list_run_stop_start_and_delete_on_a_data_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let store = filled(&data).await;
    let d = data.to_str().expect("utf-8");

    let listing = rows(&ok(&["list", "--data", d]));
    assert_eq!(
        listing,
        [
            ["NAME", "STATUS", "QUEUED", "SUCCESS", "FAILED"],
            ["books", "RUNNING", "1", "1", "1"],
            ["news", "RUNNING", "0", "0", "0"],
        ]
    );

    // Run now: recorded for the scheduler, which reloads the project as `updated_ms` moved.
    let out = ok(&["run", "books", "--data", d]);
    assert!(out.contains("run requested"), "{out}");
    let books = store.project("books").await.expect("load").expect("books");
    assert!(books.run_requested_ms > books.last_start_ms, "{books:?}");
    assert!(books.updated_ms > 1_000, "{books:?}");

    // Stop and start.
    let out = ok(&["stop", "books", "--data", d]);
    assert!(out.contains("STOP (was RUNNING)"), "{out}");
    assert_eq!(rows(&ok(&["list", "--data", d]))[1][..2], ["books", "STOP"]);
    assert!(ok(&["stop", "books", "--data", d]).contains("already STOP"));
    let out = ok(&["run", "books", "--data", d]);
    assert!(
        out.contains("submitted when it runs"),
        "a stopped project runs when started: {out}"
    );
    let out = ok(&["start", "books", "--data", d]);
    assert!(out.contains("RUNNING (was STOP)"), "{out}");
    let books = store.project("books").await.expect("load").expect("books");
    assert_eq!(books.status, ProjectStatus::Running);

    // Unknown projects and data folders are errors, not silent successes.
    for args in [
        ["run", "nope", "--data", d],
        ["stop", "nope", "--data", d],
        ["delete", "nope", "--data", d],
    ] {
        let output = project_cmd(&args);
        assert!(!output.status.success(), "{args:?}");
        assert!(
            stderr(&output).contains("no project named nope"),
            "{}",
            stderr(&output)
        );
    }
    let missing = dir.path().join("missing");
    let output = project_cmd(&["list", "--data", missing.to_str().expect("utf-8")]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no database at"),
        "{}",
        stderr(&output)
    );
    assert!(!missing.exists(), "no database is created by a typo");

    // Delete: refused without a terminal to confirm on, done with --yes.
    let output = project_cmd(&["delete", "books", "--data", d]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--yes"), "{}", stderr(&output));
    assert!(store.project("books").await.expect("load").is_some());
    let out = ok(&["delete", "books", "--yes", "--data", d]);
    assert!(
        out.contains("deleted project books with its 3 tasks and 2 results"),
        "{out}"
    );
    assert!(store.project("books").await.expect("load").is_none());
    assert_eq!(
        store.task_counts("books").await.expect("counts"),
        TaskCounts::default()
    );
    assert_eq!(store.count_results("books").await.expect("count"), 0);

    // The same store by URL.
    let url = format!("sqlite://{}", data.join("spindle.db").display());
    let listing = rows(&ok(&["list", "--database", &url]));
    assert_eq!(listing.len(), 2);
    assert_eq!(listing[1][0], "news");
}

/// Waits up to a minute for `done`, failing the test with `what` after that.
fn wait_for(what: &str, child: &mut Child, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < LIMIT, "timed out waiting: {what}");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "spindle all exited early"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_running_spindle_all_follows_run_stop_and_delete_from_another_process() {
    let served = serve(SiteSpec {
        products: 40,
        ..SiteSpec::small()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let projects = dir.path().join("projects");
    std::fs::create_dir(&projects).expect("projects dir");
    write(
        &projects,
        "shop.toml",
        &served.site.project_toml("shop", &served.base),
    );
    let data = dir.path().join("data");
    let d = data.to_str().expect("utf-8");
    let bind = format!("127.0.0.1:{}", free_port());
    let mut all = start_all(d, projects.to_str().expect("utf-8"), &bind);

    wait_for("the first crawl to finish", &mut all, || {
        web_ui_projects(&bind).is_some_and(|f| f["shop"]["finished"] == true)
    });
    assert_eq!(served.hits.count("/"), 1);
    let pages = served.hits.total();

    // Run now, from this process: the start URL is fetched again (forced), once.
    ok(&["run", "shop", "--data", d]);
    wait_for("the start URL to be fetched again", &mut all, || {
        served.hits.count("/") == 2
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(served.hits.count("/"), 2, "one run per request");
    assert_eq!(
        served.hits.total(),
        pages + 1,
        "only the start URL is forced; the pages it links to are known"
    );

    // Stop: the scheduler unloads the project.
    ok(&["stop", "shop", "--data", d]);
    wait_for("the scheduler to stop the project", &mut all, || {
        web_ui_projects(&bind).is_some_and(|f| f["shop"]["status"] == "STOP")
    });

    // Delete: the scheduler forgets it, and the unchanged file does not bring it back.
    let out = ok(&["delete", "shop", "--yes", "--data", d]);
    assert!(out.contains("deleted project shop"), "{out}");
    wait_for("the scheduler to forget the project", &mut all, || {
        web_ui_projects(&bind).is_some_and(|f| f.get("shop").is_none())
    });
    std::thread::sleep(Duration::from_secs(3));
    let listing = rows(&ok(&["list", "--data", d]));
    assert_eq!(listing.len(), 1, "only the header: {listing:?}");

    let sent = std::process::Command::new("kill")
        .args(["-TERM", &all.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(sent.success());
    assert!(all.wait().expect("wait").success(), "clean stop");
}
