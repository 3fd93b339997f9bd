//! The scheduler driven step by step with a manual clock: each rule checked without sleeping.

use spindle_common::store::ProjectStore;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use spindle_common::bus::{Consumer, ConsumerSpec, MemoryBus};
use spindle_common::clock::ManualClock;
use spindle_common::message::{
    ErrorKind, Message, NewTasks, Outcome, Task, TaskError, WIRE_VERSION,
};
use spindle_common::store::{ProjectRecord, ProjectStatus};
use spindle_common::subject::{Stage, durable};
use spindle_common::{Bus, StatsBoard, Store};
use spindle_store::SqliteStore;

use super::Scheduler;
use crate::SchedulerConfig;

const T0: i64 = 1_700_000_000_000;

struct Harness {
    scheduler: Scheduler,
    bus: MemoryBus,
    clock: ManualClock,
    fetch: Box<dyn Consumer>,
    inbox: Box<dyn Consumer>,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

fn project(extra: &str) -> String {
    format!(
        "name = \"p\"\nstart = [\"http://a.test/\"]\nrate = 1000\nburst = 1000\n{extra}\n[handlers.start]\n"
    )
}

impl Harness {
    async fn new(toml: &str, config: SchedulerConfig) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&dir.path().join("s.db"))
                .await
                .expect("store"),
        );
        let parsed = spindle_common::Project::parse(toml).expect("project parses");
        store
            .save_project(&ProjectRecord {
                name: parsed.name.clone(),
                definition: toml.to_string(),
                status: ProjectStatus::Running,
                rate: parsed.rate,
                burst: parsed.burst,
                group: None,
                updated_ms: T0,
                last_start_ms: 0,
                run_requested_ms: 0,
                origin: None,
            })
            .await
            .expect("save project");
        let bus = MemoryBus::new();
        let fetch = bus
            .consume(ConsumerSpec::new(Stage::Fetch.filter(), durable::FETCHER))
            .await
            .expect("fetch consumer");
        let inbox = bus
            .consume(
                ConsumerSpec::new(Stage::NewTask.filter(), durable::SCHEDULER)
                    .also(Stage::Status.filter()),
            )
            .await
            .expect("scheduler consumer");
        let clock = ManualClock::new(T0);
        let mut scheduler = Scheduler {
            config,
            bus: Arc::new(bus.clone()),
            store: store.clone(),
            clock: Arc::new(clock.clone()),
            board: Arc::new(StatsBoard::new()),
            projects: Default::default(),
            last_reload_ms: i64::MIN,
        };
        scheduler.reload_projects().await.expect("load projects");
        Self {
            scheduler,
            bus,
            clock,
            fetch,
            inbox,
            store,
            _dir: dir,
        }
    }

    /// One turn: apply what the scheduler's consumer holds, then dispatch; returns what was sent.
    async fn step(&mut self) -> Vec<Task> {
        let mut batch = Vec::new();
        while let Some(Some(d)) = self.inbox.next().now_or_never() {
            batch.push(d.expect("delivery"));
        }
        if !batch.is_empty() {
            self.scheduler.apply(batch).await.expect("apply");
        }
        self.scheduler.dispatch().await.expect("dispatch");
        let mut sent = Vec::new();
        while let Some(Some(d)) = self.fetch.next().now_or_never() {
            let d = d.expect("delivery");
            if let Message::Fetch(t) = d.message.as_ref() {
                sent.push(t.clone());
            }
            d.ack().await.expect("ack");
        }
        sent
    }

    async fn answer(&self, task: &Task, error: Option<ErrorKind>) {
        let outcome = Outcome {
            v: WIRE_VERSION,
            project: task.project.clone(),
            taskid: task.taskid.clone(),
            url: task.url.clone(),
            retries: task.retries,
            error: error.map(|kind| TaskError {
                kind,
                message: format!("{kind:?}"),
                retryable: kind != ErrorKind::Http,
            }),
            status_code: None,
            fetch_ms: 1,
            process_ms: 1,
            script_ms: None,
            follows: 0,
            items: 0,
            form_values_literal: 0,
            duplicate_of: None,
            etag: None,
            last_modified: None,
            retry_after_ms: None,
        };
        self.bus
            .publish(
                &Stage::Status.subject(&task.project),
                Message::Status(outcome),
            )
            .await
            .expect("publish outcome");
    }

    async fn follow(&self, parent: &Task, urls: &[&str]) {
        let tasks = urls
            .iter()
            .map(|u| {
                let url = url::Url::parse(u).expect("url");
                let mut t = parent.clone();
                t.taskid = spindle_common::urlnorm::fingerprint(url.as_str());
                t.url = url.to_string();
                t.callback = "start".into();
                t.fetch = Default::default();
                t
            })
            .collect();
        self.bus
            .publish(
                &Stage::NewTask.subject(&parent.project),
                Message::NewTasks(NewTasks {
                    v: WIRE_VERSION,
                    project: parent.project.clone(),
                    parent: parent.taskid.clone(),
                    tasks,
                }),
            )
            .await
            .expect("publish follows");
    }

    fn stats(&self) -> spindle_common::ProjectStats {
        self.scheduler.board.get("p").expect("stats")
    }
}

#[tokio::test]
async fn start_urls_go_out_once_and_the_crawl_finishes() {
    let mut h = Harness::new(&project(""), SchedulerConfig::default()).await;
    let sent = h.step().await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].callback, "start");
    assert_eq!(
        sent[0].fetch.timeout_ms,
        Some(30_000),
        "project defaults are merged in"
    );
    h.follow(
        &sent[0],
        &["http://a.test/x", "http://a.test/x", "http://a.test/"],
    )
    .await;
    h.answer(&sent[0], None).await;
    let sent2 = h.step().await;
    assert_eq!(
        sent2.len(),
        1,
        "the start URL is known and a duplicate is dropped"
    );
    assert_eq!(sent2[0].url, "http://a.test/x");
    assert_eq!(
        h.stats().follows_known,
        2,
        "the second `x` and the start URL are counted as already known"
    );
    assert!(!h.stats().finished);
    h.answer(&sent2[0], None).await;
    assert!(h.step().await.is_empty());
    h.step().await;
    assert!(h.stats().finished);
    assert_eq!(h.store.task_counts("p").await.expect("counts").success, 2);
}

#[tokio::test]
async fn an_outcome_delivered_again_is_counted_once_by_the_next_tick() {
    let mut h = Harness::new(&project(""), SchedulerConfig::default()).await;
    let sent = h.step().await;
    h.answer(&sent[0], None).await;
    h.step().await;
    // Delivered again, as after a crash between the store's write and the ack: this process
    // has no such task in flight any more.
    h.answer(&sent[0], None).await;
    h.step().await;
    // The next ticks count the store again instead of waiting `recount_every` (10 minutes):
    // one starts the count, a later one takes its result.
    for _ in 0..50 {
        h.scheduler.reload_projects().await.expect("reload");
        if h.stats().total_success == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        h.stats().total_success,
        1,
        "the stored count, not two outcomes"
    );
    assert_eq!(h.store.task_counts("p").await.expect("counts").success, 1);
}

#[tokio::test]
async fn form_values_sent_as_written_are_summed_from_the_outcomes() {
    let mut h = Harness::new(&project(""), SchedulerConfig::default()).await;
    let sent = h.step().await;
    let outcome = Outcome {
        v: WIRE_VERSION,
        project: "p".into(),
        taskid: sent[0].taskid.clone(),
        url: sent[0].url.clone(),
        retries: 0,
        error: None,
        status_code: Some(200),
        fetch_ms: 1,
        process_ms: 1,
        script_ms: None,
        follows: 0,
        items: 0,
        form_values_literal: 3,
        duplicate_of: None,
        etag: None,
        last_modified: None,
        retry_after_ms: None,
    };
    h.bus
        .publish(&Stage::Status.subject("p"), Message::Status(outcome))
        .await
        .expect("publish outcome");
    h.step().await;
    assert_eq!(h.stats().form_values_literal, 3);
    assert_eq!(h.stats().follows_known, 0);
}

#[tokio::test]
async fn a_forced_update_of_a_running_task_waits_for_the_run_to_end() {
    let mut h = Harness::new(&project(""), SchedulerConfig::default()).await;
    let sent = h.step().await;
    assert_eq!(sent.len(), 1);
    let mut update = sent[0].clone();
    update.force = true;
    update.save = Some(serde_json::Map::from_iter([("v".to_string(), 2.into())]));
    let publish = |t: Task| NewTasks {
        v: WIRE_VERSION,
        project: "p".into(),
        parent: String::new(),
        tasks: vec![t],
    };
    let subject = Stage::NewTask.subject("p");
    h.bus
        .publish(&subject, Message::NewTasks(publish(update.clone())))
        .await
        .expect("publish");
    assert!(
        h.step().await.is_empty(),
        "no second run while the first is in flight"
    );
    // The same update sent twice while waiting still makes one run.
    h.bus
        .publish(&subject, Message::NewTasks(publish(update)))
        .await
        .expect("publish");
    assert!(h.step().await.is_empty());
    h.answer(&sent[0], None).await;
    let rerun = h.step().await;
    assert_eq!(rerun.len(), 1, "the update runs once the first run ended");
    assert_eq!(rerun[0].taskid, sent[0].taskid);
    assert_eq!(
        rerun[0].save.as_ref().and_then(|s| s.get("v")),
        Some(&2.into())
    );
    h.answer(&rerun[0], None).await;
    assert!(h.step().await.is_empty());
    h.step().await;
    assert!(h.stats().finished);
}

#[tokio::test]
async fn rate_limits_dispatch_and_tokens_refill_with_time() {
    let mut h = Harness::new(
        &project("").replace("rate = 1000\nburst = 1000", "rate = 2\nburst = 2"),
        SchedulerConfig::default(),
    )
    .await;
    let start = h.step().await;
    let urls: Vec<String> = (0..6).map(|i| format!("http://a.test/{i}")).collect();
    let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    h.follow(&start[0], &refs).await;
    h.answer(&start[0], None).await;
    assert_eq!(
        h.step().await.len(),
        1,
        "one token left after the start URL"
    );
    assert!(h.step().await.is_empty());
    h.clock.advance(500);
    assert_eq!(h.step().await.len(), 1);
    h.clock.advance(1_000);
    assert_eq!(h.step().await.len(), 2);
}

#[tokio::test]
async fn failures_are_retried_on_schedule_then_fail_with_their_reason() {
    let toml = project("[defaults]\nretries = 1\n");
    let mut h = Harness::new(&toml, SchedulerConfig::default()).await;
    let sent = h.step().await;
    h.answer(&sent[0], Some(ErrorKind::Timeout)).await;
    assert!(h.step().await.is_empty());
    h.clock.advance(29_999);
    assert!(h.step().await.is_empty(), "not before the 30 s retry delay");
    h.clock.advance(1);
    let retry = h.step().await;
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].retries, 1);
    h.answer(&retry[0], Some(ErrorKind::Timeout)).await;
    h.step().await;
    let counts = h.store.task_counts("p").await.expect("counts");
    assert_eq!(counts.failed, 1);
    assert_eq!((h.stats().retried, h.stats().failed), (1, 1));
}

#[tokio::test]
async fn a_retry_waits_no_longer_than_the_tasks_age() {
    let toml = project("[defaults]\nretries = 3\nage = \"10s\"\n");
    let mut h = Harness::new(&toml, SchedulerConfig::default()).await;
    let sent = h.step().await;
    h.answer(&sent[0], Some(ErrorKind::Timeout)).await;
    assert!(h.step().await.is_empty());
    h.clock.advance(9_999);
    assert!(h.step().await.is_empty(), "not before the age");
    h.clock.advance(1);
    let retry = h.step().await;
    assert_eq!(
        retry.len(),
        1,
        "after 10 s (the age), not 30 s (the schedule)"
    );
    assert_eq!(retry[0].retries, 1);
}

#[tokio::test]
async fn a_project_sets_its_own_retry_delays() {
    let toml = project("[defaults]\nretries = 2\nretry_delays = [\"5s\"]\n");
    let mut h = Harness::new(&toml, SchedulerConfig::default()).await;
    let mut task = h.step().await.remove(0);
    for attempt in 1..=2 {
        h.answer(&task, Some(ErrorKind::Timeout)).await;
        assert!(h.step().await.is_empty());
        h.clock.advance(4_999);
        assert!(h.step().await.is_empty(), "not before 5 s");
        h.clock.advance(1);
        let retry = h.step().await;
        assert_eq!(
            retry.len(),
            1,
            "retry {attempt} after 5 s, the last delay repeating"
        );
        task = retry[0].clone();
    }
    h.answer(&task, Some(ErrorKind::Timeout)).await;
    h.step().await;
    assert_eq!(h.store.task_counts("p").await.expect("counts").failed, 1);
}

#[tokio::test]
async fn every_restarts_the_start_urls_forced_on_schedule() {
    let mut h = Harness::new(&project("every = \"1h\"\n"), SchedulerConfig::default()).await;
    let sent = h.step().await;
    assert_eq!(sent.len(), 1);
    assert!(!sent[0].force, "the first start is a plain submission");
    h.answer(&sent[0], None).await;
    h.step().await;
    h.step().await;
    assert!(h.stats().finished);

    h.clock.advance(3_600_000 - 1);
    h.scheduler.reload_projects().await.expect("reload");
    assert!(h.step().await.is_empty(), "not before the hour is over");
    h.clock.advance(1);
    h.scheduler.reload_projects().await.expect("reload");
    let again = h.step().await;
    assert_eq!(again.len(), 1, "the known start URL is crawled again");
    assert!(again[0].force);
    h.answer(&again[0], None).await;
    h.step().await;
    h.clock.advance(60_000);
    h.scheduler.reload_projects().await.expect("reload");
    assert!(h.step().await.is_empty(), "once per period");
}

#[tokio::test]
async fn an_unanswered_task_is_sent_again_after_the_deadline() {
    let config = SchedulerConfig {
        dispatch_deadline: Duration::from_secs(60),
        ..SchedulerConfig::default()
    };
    let mut h = Harness::new(&project(""), config).await;
    let sent = h.step().await;
    h.clock.advance(59_000);
    assert!(h.step().await.is_empty());
    h.clock.advance(1_000);
    let again = h.step().await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].taskid, sent[0].taskid);
    assert_eq!(h.stats().resent, 1);
}

#[tokio::test]
async fn too_many_failures_in_a_row_pause_the_project_until_a_probe_succeeds() {
    let config = SchedulerConfig {
        pause_after: 3,
        pause_for: Duration::from_secs(60),
        ..SchedulerConfig::default()
    };
    let mut h = Harness::new(
        &project("host_concurrency = 100\n[defaults]\nretries = 0\n"),
        config,
    )
    .await;
    let start = h.step().await;
    let urls: Vec<String> = (0..10).map(|i| format!("http://a.test/{i}")).collect();
    let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    h.follow(&start[0], &refs).await;
    h.answer(&start[0], None).await;
    let batch = h.step().await;
    assert_eq!(batch.len(), 10);
    // A 404 is not the site's fault: it does not count towards a pause.
    h.answer(&batch[0], Some(ErrorKind::Http)).await;
    for t in &batch[1..4] {
        h.answer(t, Some(ErrorKind::Connect)).await;
    }
    h.step().await;
    assert!(h.stats().paused, "paused after failures in a row");
    assert_eq!(
        h.stats().status,
        ProjectStatus::Running,
        "the stored status stays"
    );
    // Follows keep arriving, but nothing goes out while paused.
    h.follow(&batch[4], &["http://a.test/new"]).await;
    for t in &batch[4..] {
        h.answer(t, Some(ErrorKind::Connect)).await;
    }
    assert!(h.step().await.is_empty());
    h.clock.advance(60_000);
    let probe = h.step().await;
    assert_eq!(probe.len(), 1, "one probe after the pause");
    assert!(
        h.step().await.is_empty(),
        "nothing more while the probe is out"
    );
    h.answer(&probe[0], None).await;
    h.step().await;
    assert!(!h.stats().paused, "the pause ends with a success");
    assert_eq!(h.stats().status, ProjectStatus::Running);
}

#[tokio::test]
async fn on_finished_emits_its_item_once_per_finished_crawl() {
    let toml = project("").replace(
        "[handlers.start]",
        "[on_finished]\nitem.done = \"$project\"\n\n[handlers.start]",
    );
    let mut h = Harness::new(&toml, SchedulerConfig::default()).await;
    let mut results = h
        .bus
        .consume(ConsumerSpec::new(
            Stage::Result.filter(),
            durable::RESULT_WRITER,
        ))
        .await
        .expect("result consumer");
    let sent = h.step().await;
    h.answer(&sent[0], None).await;
    h.step().await;
    h.step().await;
    assert!(h.stats().finished);
    let d = results
        .next()
        .now_or_never()
        .flatten()
        .expect("the final item")
        .expect("ok");
    let Message::Results(r) = d.message.as_ref() else {
        panic!("not results")
    };
    assert_eq!(r.items[0].data["done"], "p");
    h.step().await;
    assert!(
        results.next().now_or_never().is_none(),
        "once per finished crawl"
    );
}

#[tokio::test]
async fn a_host_answering_429_is_backed_off_while_other_hosts_keep_going() {
    let toml = project("host_concurrency = 1\n[defaults]\nretries = 5\n");
    let mut h = Harness::new(&toml, SchedulerConfig::default()).await;
    let start = h.step().await;
    h.follow(
        &start[0],
        &[
            "http://a.test/1",
            "http://a.test/2",
            "http://b.test/1",
            "http://b.test/2",
        ],
    )
    .await;
    h.answer(&start[0], None).await;
    let first = h.step().await;
    let hosts: Vec<String> = first
        .iter()
        .map(|t| crate::frontier::host_of(&t.url))
        .collect();
    assert_eq!(
        hosts,
        ["a.test", "b.test"],
        "one request per host at a time"
    );
    // a.test says 429, wait 10 s; b.test answers fine.
    let outcome = |t: &Task, code: Option<u16>, retry_after_ms: Option<u64>| Outcome {
        v: WIRE_VERSION,
        project: t.project.clone(),
        taskid: t.taskid.clone(),
        url: t.url.clone(),
        retries: t.retries,
        error: code.map(|c| TaskError {
            kind: ErrorKind::Http,
            message: format!("HTTP {c}"),
            retryable: true,
        }),
        status_code: Some(code.unwrap_or(200)),
        fetch_ms: 1,
        process_ms: 1,
        script_ms: None,
        follows: 0,
        items: 0,
        form_values_literal: 0,
        duplicate_of: None,
        etag: None,
        last_modified: None,
        retry_after_ms,
    };
    for (t, o) in [
        (&first[0], outcome(&first[0], Some(429), Some(10_000))),
        (&first[1], outcome(&first[1], None, None)),
    ] {
        h.bus
            .publish(&Stage::Status.subject(&t.project), Message::Status(o))
            .await
            .expect("publish");
    }
    let next = h.step().await;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].url, "http://b.test/2", "b.test keeps its pace");
    h.clock.advance(10_000);
    assert!(
        h.step().await.is_empty(),
        "a.test waits out its Retry-After"
    );
    h.clock.advance(1);
    let resumed = h.step().await;
    assert_eq!(resumed.len(), 1);
    assert_eq!(crate::frontier::host_of(&resumed[0].url), "a.test");
    // The 429'd page comes back when the site said, not 30 s later.
    h.answer(&resumed[0], None).await;
    let retried = h.step().await;
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].url, first[0].url);
    assert_eq!(retried[0].retries, 1);
}

#[tokio::test]
async fn run_now_requeues_known_start_urls_once_whichever_process_asks() {
    let mut h = Harness::new(&project(""), SchedulerConfig::default()).await;
    let sent = h.step().await;
    h.answer(&sent[0], None).await;
    h.step().await;
    h.step().await;
    assert!(h.stats().finished);
    // The start URL is known and done: reloading does not send it again.
    h.clock.advance(2_000);
    h.scheduler.reload_projects().await.expect("reload");
    assert!(h.step().await.is_empty());

    // Another process (the CLI, the web UI) asks through its own handle on the store.
    let other = SqliteStore::open(&h._dir.path().join("s.db"))
        .await
        .expect("second store");
    assert!(other.request_run("p", T0 + 2_500).await.expect("request"));
    h.clock.advance(2_000);
    h.scheduler.reload_projects().await.expect("reload");
    let again = h.step().await;
    assert_eq!(again.len(), 1, "the known start URL is queued again");
    assert_eq!(again[0].taskid, sent[0].taskid);
    assert!(again[0].force, "run now forces the start URLs");
    h.answer(&again[0], None).await;
    h.step().await;
    // Served once.
    h.clock.advance(2_000);
    h.scheduler.reload_projects().await.expect("reload");
    assert!(h.step().await.is_empty());
    assert_eq!(h.store.task_counts("p").await.expect("counts").success, 1);

    // A request stamped by a clock an hour ahead is served once too.
    assert!(
        other
            .request_run("p", T0 + 3_600_000)
            .await
            .expect("request")
    );
    h.clock.advance(2_000);
    h.scheduler.reload_projects().await.expect("reload");
    let ahead = h.step().await;
    assert_eq!(ahead.len(), 1);
    h.answer(&ahead[0], None).await;
    h.step().await;
    h.clock.advance(2_000);
    h.scheduler.reload_projects().await.expect("reload");
    assert!(h.step().await.is_empty(), "not again on the next reload");

    // A stopped project keeps the request until it runs again.
    assert!(
        other
            .set_status("p", ProjectStatus::Stop, T0)
            .await
            .expect("stop")
    );
    h.clock.advance(2_000);
    h.scheduler.reload_projects().await.expect("reload");
    assert!(other.request_run("p", T0).await.expect("request"));
    h.clock.advance(2_000);
    h.scheduler.reload_projects().await.expect("reload");
    assert!(h.step().await.is_empty(), "nothing is sent while stopped");
    assert!(
        other
            .set_status("p", ProjectStatus::Running, T0)
            .await
            .expect("start")
    );
    h.clock.advance(2_000);
    h.scheduler.reload_projects().await.expect("reload");
    let started = h.step().await;
    assert_eq!(started.len(), 1, "the request is served once it runs");
    assert!(started[0].force);
}

#[tokio::test]
async fn result_ttl_purges_old_results_at_load_then_once_a_minute() {
    let mut h = Harness::new(
        &project("result_ttl = \"1h\"\n"),
        SchedulerConfig::default(),
    )
    .await;
    let item = |id: &str| spindle_common::message::Item {
        taskid: id.into(),
        url: format!("http://a.test/{id}"),
        data: Default::default(),
    };
    let hour = 3_600_000;
    h.store
        .upsert_results("p", &[item("old")], T0 - 2 * hour)
        .await
        .expect("old result");
    h.store
        .upsert_results("p", &[item("new")], T0)
        .await
        .expect("new result");
    // Loaded (and purged, with nothing to purge yet) at T0: the next purge is a minute later.
    h.clock.advance(30_000);
    h.scheduler.reload_projects().await.expect("reload");
    assert_eq!(h.store.count_results("p").await.expect("count"), 2);
    h.clock.advance(30_000);
    h.scheduler.reload_projects().await.expect("reload");
    assert_eq!(
        h.store.count_results("p").await.expect("count"),
        1,
        "the result older than the ttl is gone"
    );
    // Loading the project again (here after a status change) purges at once.
    h.store
        .upsert_results("p", &[item("old2")], T0 - 2 * hour)
        .await
        .expect("old result");
    h.store
        .set_status("p", ProjectStatus::Running, T0 + 60_000)
        .await
        .expect("status");
    h.clock.advance(2_000);
    h.scheduler.reload_projects().await.expect("reload");
    assert_eq!(h.store.count_results("p").await.expect("count"), 1);
    // Time passes: the remaining result expires too.
    h.clock.advance(hour);
    h.scheduler.reload_projects().await.expect("reload");
    assert_eq!(h.store.count_results("p").await.expect("count"), 0);
}

mod live_edit;
mod track;
