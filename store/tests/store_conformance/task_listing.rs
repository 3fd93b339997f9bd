//! Listing tasks for the web UI (most recently changed first, a page at a time from a
//! cursor, filtered) and what the last attempt of a task did.

use super::*;
use spindle_common::message::ErrorKind;
use spindle_common::store::{Attempt, TaskCursor, TaskQuery, TaskRecord};

conformance!(
    store: [
        tasks_are_listed_most_recently_changed_first,
        pages_from_a_cursor_never_skip_or_repeat_a_task,
        the_listing_filters_by_status_url_and_error_kind,
        a_url_filter_is_plain_text,
        the_last_attempt_is_kept_with_the_task,
    ],
    db: [],
);

fn attempt(status_code: Option<u16>, error_kind: Option<ErrorKind>) -> Attempt {
    Attempt {
        status_code,
        fetch_ms: 120,
        process_ms: 7,
        follows: 3,
        items: 1,
        error_kind,
    }
}

fn ended_with(id: &str, status: TaskStatus, at_ms: i64, track: Attempt) -> TaskUpdate {
    TaskUpdate {
        track: Some(track),
        ..ended(id, status, at_ms)
    }
}

/// `(project, taskid)` of each task listed.
fn keys(tasks: &[TaskRecord]) -> Vec<(String, String)> {
    tasks
        .iter()
        .map(|t| (t.task.project.clone(), t.task.taskid.clone()))
        .collect()
}

async fn list(s: &dyn Store, query: &TaskQuery) -> Vec<TaskRecord> {
    s.list_tasks(query).await.expect("list tasks")
}

/// Taskids of the first page of `project`'s tasks matching `query`.
async fn listed_ids(s: &dyn Store, query: TaskQuery) -> Vec<String> {
    list(s, &query)
        .await
        .into_iter()
        .map(|t| t.task.taskid)
        .collect()
}

/// Every task matching `query`, page by page, `limit` a page, the cursor going through
/// its text form as it would through a URL; and the number of pages.
async fn all_pages(s: &dyn Store, mut query: TaskQuery) -> (Vec<TaskRecord>, usize) {
    let (mut tasks, mut pages) = (Vec::new(), 0);
    loop {
        let page = list(s, &query).await;
        assert!(page.len() <= query.limit, "a page holds at most its limit");
        let Some(last) = page.last() else {
            return (tasks, pages);
        };
        let text = TaskCursor::of(last).to_string();
        query.before = Some(text.parse().expect("the cursor reads back"));
        pages += 1;
        let full = page.len() == query.limit;
        tasks.extend(page);
        if !full {
            return (tasks, pages);
        }
    }
}

fn in_project(project: &str) -> TaskQuery {
    TaskQuery {
        project: Some(project.into()),
        ..TaskQuery::default()
    }
}

async fn tasks_are_listed_most_recently_changed_first(s: &dyn Store) {
    s.put_tasks(&[task("a", 0, 0)], 10).await.expect("put");
    s.put_tasks(&[task("b", 0, 0), task("c", 0, 0)], 20)
        .await
        .expect("put");
    s.put_tasks(&[task("d", 0, 0)], 30).await.expect("put");
    assert_eq!(
        listed_ids(s, in_project("p")).await,
        ["d", "c", "b", "a"],
        "newest first, then taskid descending"
    );
    // A claim is not a change; an attempt's end, a re-queue and a cancel are.
    assert_eq!(s.claim_ready("p", 0, 10).await.expect("claim").len(), 4);
    assert_eq!(listed_ids(s, in_project("p")).await, ["d", "c", "b", "a"]);
    s.finish_tasks("p", &[ended("a", TaskStatus::Success, 40)])
        .await
        .expect("finish");
    s.cancel_task("p", "b", 50).await.expect("cancel");
    s.put_tasks(&[task("c", 0, 0)], 45).await.expect("requeue");
    let listed = list(s, &in_project("p")).await;
    assert_eq!(keys(&listed).len(), 4);
    let order: Vec<(&str, i64)> = listed
        .iter()
        .map(|t| (t.task.taskid.as_str(), t.updated_ms))
        .collect();
    assert_eq!(order, [("b", 50), ("c", 45), ("a", 40), ("d", 30)]);
    assert_eq!(listed[0].status, TaskStatus::Bad);
    assert_eq!(listed[2].task.url, "http://a/a", "whole records");

    let limited = TaskQuery {
        limit: 2,
        ..in_project("p")
    };
    assert_eq!(listed_ids(s, limited).await, ["b", "c"]);
    let none = TaskQuery {
        limit: 0,
        ..in_project("p")
    };
    assert!(listed_ids(s, none).await.is_empty());
    assert!(listed_ids(s, in_project("nope")).await.is_empty());
}

async fn pages_from_a_cursor_never_skip_or_repeat_a_task(s: &dyn Store) {
    // Two projects, many tasks changed in the same millisecond, and one taskid in both.
    for i in 0..30 {
        let project = if i % 3 == 0 { "q" } else { "p" };
        let at = 1_000 + (i / 7) * 10;
        s.put_tasks(&[task_in(project, &format!("t{i:02}"), 0, 0)], at)
            .await
            .expect("put");
    }
    s.put_tasks(&[task_in("p", "t00", 0, 0)], 1_000)
        .await
        .expect("put");
    let (everything, _) = all_pages(s, TaskQuery::default()).await;
    let mut expected = everything.clone();
    expected.sort_by(|a, b| {
        b.updated_ms
            .cmp(&a.updated_ms)
            .then(a.task.project.cmp(&b.task.project))
            .then(b.task.taskid.cmp(&a.task.taskid))
    });
    assert_eq!(keys(&everything), keys(&expected), "in listing order");
    assert_eq!(everything.len(), 31, "every task of both projects");
    let distinct: HashSet<(String, String)> = keys(&everything).into_iter().collect();
    assert_eq!(distinct.len(), 31, "none twice");
    let first: Vec<(String, String)> = keys(&everything[..3]);
    assert_eq!(
        first,
        [
            ("p".to_string(), "t29".to_string()),
            ("p".to_string(), "t28".to_string()),
            ("p".to_string(), "t26".to_string()),
        ]
    );

    for limit in [1, 3, 4, 7] {
        let (paged, pages) = all_pages(
            s,
            TaskQuery {
                limit,
                ..TaskQuery::default()
            },
        )
        .await;
        assert!(pages > 2, "{pages} pages of {limit}");
        assert_eq!(keys(&paged), keys(&everything), "pages of {limit}");
    }
    let (in_p, pages) = all_pages(
        s,
        TaskQuery {
            limit: 5,
            ..in_project("p")
        },
    )
    .await;
    assert!(pages > 2);
    let only_p: Vec<_> = everything
        .iter()
        .filter(|t| t.task.project == "p")
        .cloned()
        .collect();
    assert_eq!(keys(&in_p), keys(&only_p));

    // A task changed between two pages moves ahead of the cursor: not listed again.
    let query = TaskQuery {
        limit: 10,
        ..TaskQuery::default()
    };
    let page = list(s, &query).await;
    let seen = keys(&page)[9].clone();
    s.finish_tasks(&seen.0, &[ended(&seen.1, TaskStatus::Success, 5_000)])
        .await
        .expect("finish");
    let next = TaskQuery {
        before: page.last().map(TaskCursor::of),
        ..query
    };
    let (rest, _) = all_pages(s, next).await;
    assert_eq!(rest.len(), 21);
    assert!(!keys(&rest).contains(&seen));
}

async fn the_listing_filters_by_status_url_and_error_kind(s: &dyn Store) {
    let urls = [
        ("a", "http://shop.test/books/1"),
        ("b", "http://shop.test/books/2"),
        ("c", "http://shop.test/music/1"),
        ("d", "http://news.test/books/3"),
    ];
    for (i, (id, url)) in urls.iter().enumerate() {
        let t = Task {
            url: url.to_string(),
            ..task(id, 0, 0)
        };
        s.put_tasks(&[t], 10 + i as i64).await.expect("put");
    }
    s.put_tasks(&[task_in("q", "e", 0, 0)], 5)
        .await
        .expect("put");
    s.finish_tasks(
        "p",
        &[
            ended_with("a", TaskStatus::Success, 20, attempt(Some(200), None)),
            ended_with(
                "b",
                TaskStatus::Failed,
                21,
                attempt(Some(404), Some(ErrorKind::Http)),
            ),
            ended_with(
                "c",
                TaskStatus::Active,
                22,
                attempt(None, Some(ErrorKind::Timeout)),
            ),
        ],
    )
    .await
    .expect("finish");
    s.finish_tasks(
        "q",
        &[ended_with(
            "e",
            TaskStatus::Failed,
            23,
            attempt(None, Some(ErrorKind::Timeout)),
        )],
    )
    .await
    .expect("finish");

    let status = |status| TaskQuery {
        status: Some(status),
        ..in_project("p")
    };
    assert_eq!(listed_ids(s, status(TaskStatus::Active)).await, ["c", "d"]);
    assert_eq!(listed_ids(s, status(TaskStatus::Failed)).await, ["b"]);
    assert_eq!(listed_ids(s, status(TaskStatus::Success)).await, ["a"]);
    assert!(listed_ids(s, status(TaskStatus::Bad)).await.is_empty());

    let url = |text: &str| TaskQuery {
        url_contains: Some(text.into()),
        ..in_project("p")
    };
    assert_eq!(listed_ids(s, url("/books/")).await, ["b", "a", "d"]);
    assert_eq!(listed_ids(s, url("shop.test/music")).await, ["c"]);
    assert!(listed_ids(s, url("nowhere")).await.is_empty());

    let kind = |kind| TaskQuery {
        error_kind: Some(kind),
        ..TaskQuery::default()
    };
    assert_eq!(
        listed_ids(s, kind(ErrorKind::Timeout)).await,
        ["e", "c"],
        "across projects"
    );
    assert_eq!(listed_ids(s, kind(ErrorKind::Http)).await, ["b"]);
    assert!(listed_ids(s, kind(ErrorKind::Dns)).await.is_empty());

    // Filters combine, and page like the whole listing.
    let combined = TaskQuery {
        status: Some(TaskStatus::Active),
        url_contains: Some("shop.test".into()),
        error_kind: Some(ErrorKind::Timeout),
        ..in_project("p")
    };
    assert_eq!(listed_ids(s, combined).await, ["c"]);
    let (paged, pages) = all_pages(
        s,
        TaskQuery {
            limit: 1,
            ..url("/books/")
        },
    )
    .await;
    assert_eq!(pages, 3);
    let ids: Vec<&str> = paged.iter().map(|t| t.task.taskid.as_str()).collect();
    assert_eq!(ids, ["b", "a", "d"]);
}

async fn a_url_filter_is_plain_text(s: &dyn Store) {
    let urls = [
        ("pct", "http://a.test/50%off"),
        ("nopct", "http://a.test/50-off"),
        ("under", "http://a.test/a_b"),
        ("letter", "http://a.test/axb"),
        ("slash", "http://a.test/x\\y"),
    ];
    for (id, url) in urls {
        let t = Task {
            url: url.to_string(),
            ..task(id, 0, 0)
        };
        s.put_tasks(&[t], 10).await.expect("put");
    }
    let url = |text: &str| TaskQuery {
        url_contains: Some(text.into()),
        ..in_project("p")
    };
    assert_eq!(listed_ids(s, url("50%")).await, ["pct"]);
    assert_eq!(listed_ids(s, url("%")).await, ["pct"]);
    assert_eq!(listed_ids(s, url("a_b")).await, ["under"]);
    assert_eq!(listed_ids(s, url("_")).await, ["under"]);
    assert_eq!(listed_ids(s, url("x\\y")).await, ["slash"]);
    assert_eq!(listed_ids(s, url("'")).await, Vec::<String>::new());
}

async fn the_last_attempt_is_kept_with_the_task(s: &dyn Store) {
    s.put_tasks(&[task("a", 0, 0), task("b", 0, 0)], 0)
        .await
        .expect("put");
    assert_eq!(
        s.task("p", "a").await.expect("task").expect("a").track,
        None,
        "no attempt yet"
    );
    let failed = attempt(Some(503), Some(ErrorKind::Http));
    s.finish_tasks(
        "p",
        &[
            ended_with("a", TaskStatus::Active, 10, failed.clone()),
            ended("b", TaskStatus::Success, 10),
        ],
    )
    .await
    .expect("finish");
    let a = s.task("p", "a").await.expect("task").expect("a");
    assert_eq!(a.track.as_ref(), Some(&failed));
    assert_eq!(
        s.task("p", "b").await.expect("task").expect("b").track,
        None
    );
    let listed = list(s, &in_project("p")).await;
    let listed_a = listed
        .iter()
        .find(|t| t.task.taskid == "a")
        .expect("a listed");
    assert_eq!(listed_a.track.as_ref(), Some(&failed), "listed with it");

    // A re-queue and a cancel keep it; the next attempt replaces it.
    s.put_tasks(&[task("a", 0, 0)], 20).await.expect("requeue");
    s.cancel_task("p", "a", 30).await.expect("cancel");
    let a = s.task("p", "a").await.expect("task").expect("a");
    assert_eq!(a.track.as_ref(), Some(&failed));
    let ok = attempt(Some(200), None);
    s.finish_tasks("p", &[ended_with("a", TaskStatus::Success, 40, ok.clone())])
        .await
        .expect("finish");
    let a = s.task("p", "a").await.expect("task").expect("a");
    assert_eq!(a.track, Some(ok));
    s.finish_tasks("p", &[ended("a", TaskStatus::Success, 50)])
        .await
        .expect("finish");
    let a = s.task("p", "a").await.expect("task").expect("a");
    assert_eq!(a.track, None, "an attempt without figures clears it");
}
