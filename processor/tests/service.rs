//! The processor service end to end on the in-process bus and a SQLite store: what it
//! publishes, in which order, and what it acknowledges.

use std::sync::Arc;
use std::time::Duration;

use spindle_common::bus::{ConsumerStats, MemoryBus};
use spindle_common::message::{ErrorKind, WIRE_VERSION};
use spindle_common::store::{ProjectRecord, ProjectStatus, ProjectStore};
use spindle_common::subject::{Stage, durable};
use spindle_common::{Bus, Consumer, ConsumerSpec, Delivery, Message, Page, ProcessJob, Task};
use spindle_processor::{ProcessorConfig, ProcessorError, run};
use spindle_store::SqliteStore;
use spindle_testkit::FaultyBus;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const PROJECT: &str = r#"
name = "books"
start = ["http://books.example/"]
[handlers.start]
follow = [{ css = "a", callback = "detail" }]
[handlers.detail]
item.title = { css = "h1" }
item.url = "$url"
"#;

/// A processor running on `bus` and a fresh store holding `PROJECT`, plus an observer that
/// sees every stage message in publish order.
struct Harness {
    bus: Arc<dyn Bus>,
    store: Arc<SqliteStore>,
    observer: Box<dyn Consumer>,
    shutdown: CancellationToken,
    service: JoinHandle<Result<(), ProcessorError>>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start(bus: Arc<dyn Bus>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(
            SqliteStore::open(&dir.path().join("spindle.db"))
                .await
                .expect("store opens"),
        );
        save_project(&store, PROJECT, 1).await;
        // The processor's durable is created up front, as a JetStream deployment would have it,
        // so a job published before the service task first pulls is queued for it rather than
        // only seen by the observer. (Same in-flight bound as the service asks for.)
        drop(
            bus.consume(
                ConsumerSpec::new(Stage::Process.filter(), durable::PROCESSOR).max_in_flight(8),
            )
            .await
            .expect("processor durable"),
        );
        // Opened before anything is published, so it sees every message from the start.
        let observer = bus
            .consume(ConsumerSpec::new("spindle.>", "test-observer"))
            .await
            .expect("observer");
        let shutdown = CancellationToken::new();
        let service = tokio::spawn(run(
            ProcessorConfig {
                concurrency: 2,
                rules_recheck: std::time::Duration::ZERO,
            },
            bus.clone(),
            store.clone(),
            shutdown.clone(),
        ));
        Self {
            bus,
            store,
            observer,
            shutdown,
            service,
            _dir: dir,
        }
    }

    async fn process(&self, task: Task, html: &str) {
        let job = ProcessJob {
            v: WIRE_VERSION,
            page: page(&task.url, html),
            task,
        };
        let subject = Stage::Process.subject(&job.task.project);
        self.bus
            .publish(&subject, Message::Process(Box::new(job)))
            .await
            .expect("publish job");
    }

    /// The next message the observer sees that the processor published (jobs are skipped).
    async fn next_output(&mut self) -> (String, Message) {
        loop {
            let delivery = next(&mut self.observer).await;
            let subject = delivery.subject.clone();
            let message = delivery.message.as_ref().clone();
            delivery.ack().await.expect("ack");
            if !matches!(message, Message::Process(_)) {
                return (subject, message);
            }
        }
    }

    /// Waits until the processor's consumer holds nothing: every job acked.
    async fn settled(&self) {
        for _ in 0..500 {
            let stats = self.bus.stats(durable::PROCESSOR).await.expect("stats");
            if stats == ConsumerStats::default() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the processor did not ack its jobs");
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(10), self.service)
            .await
            .expect("the service stops within 10 s")
            .expect("the service task did not panic");
        assert!(result.is_ok(), "{result:?}");
    }
}

async fn save_project(store: &SqliteStore, definition: &str, updated_ms: i64) {
    store
        .save_project(&ProjectRecord {
            name: "books".into(),
            definition: definition.into(),
            status: ProjectStatus::Running,
            rate: 5.0,
            burst: 5.0,
            group: None,
            updated_ms,
            last_start_ms: 0,
            run_requested_ms: 0,
            origin: None,
        })
        .await
        .expect("save project");
}

async fn next(consumer: &mut Box<dyn Consumer>) -> Delivery {
    tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .expect("a message within 10 s")
        .expect("bus open")
        .expect("no bus error")
}

fn task(callback: &str, url: &str) -> Task {
    Task {
        project: "books".into(),
        taskid: format!("id-{url}"),
        url: url.into(),
        callback: callback.into(),
        priority: 0,
        exetime: 0,
        age_ms: None,
        itag: None,
        retries: 2,
        depth: 1,
        force: false,
        fetch: Default::default(),
        save: None,
        order: 0,
    }
}

fn page(url: &str, html: &str) -> Page {
    Page {
        url: url.into(),
        status: 200,
        headers: vec![],
        content_type: "text/html".into(),
        encoding: "UTF-8".into(),
        text: html.into(),
        body_len: html.len() as u64,
        fetch_ms: 33,
        script_result: None,
        screenshot_png_base64: None,
    }
}

#[tokio::test]
async fn follows_then_items_with_their_outcome_then_ack() {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut h = Harness::start(bus).await;
    let mut t = task("detail", "http://books.example/b/1");
    // A detail page with a link: the handler has no follows, so only the item goes out.
    h.process(t.clone(), "<h1>Dune</h1><a href='/x'>x</a>")
        .await;
    let (subject, message) = h.next_output().await;
    assert_eq!(subject, "spindle.result.books");
    let Message::Results(results) = message else {
        panic!("expected results, got {message:?}");
    };
    assert_eq!(results.project, "books");
    assert_eq!(results.items.len(), 1);
    assert_eq!(results.items[0].taskid, t.taskid);
    assert_eq!(results.items[0].data["title"], "Dune");
    assert_eq!(results.items[0].data["url"], "http://books.example/b/1");
    let outcome = results.outcome.expect("the outcome rides with the items");
    assert_eq!(outcome.taskid, t.taskid);
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.status_code, Some(200));
    assert_eq!((outcome.fetch_ms, outcome.retries), (33, 2));
    assert_eq!((outcome.follows, outcome.items), (0, 1));

    // A list page: follows first, then the outcome alone on the status subject.
    t = task("start", "http://books.example/");
    h.process(
        t.clone(),
        "<a href='/b/1'>1</a><a href='/b/2#x'>2</a><a href='http://x.example/'>x</a>",
    )
    .await;
    let (subject, message) = h.next_output().await;
    assert_eq!(subject, "spindle.newtask.books");
    let Message::NewTasks(batch) = message else {
        panic!("expected follows, got {message:?}");
    };
    assert_eq!(batch.parent, t.taskid);
    let urls: Vec<&str> = batch.tasks.iter().map(|t| t.url.as_str()).collect();
    assert_eq!(
        urls,
        ["http://books.example/b/1", "http://books.example/b/2"]
    );
    assert!(
        batch
            .tasks
            .iter()
            .all(|f| f.callback == "detail" && f.depth == 2)
    );
    let (subject, message) = h.next_output().await;
    assert_eq!(subject, "spindle.status.books");
    let Message::Status(outcome) = message else {
        panic!("expected an outcome, got {message:?}");
    };
    assert_eq!(
        (outcome.follows, outcome.items, outcome.error),
        (2, 0, None)
    );

    h.settled().await;
    h.stop().await;
}

/// A page of the session trap: the same text on every visit, with a fresh session id echoed
/// into it and into its links.
fn session_page(sid: &str) -> String {
    let text: String = (0..60)
        .map(|i| format!("Paragraph {i} of the welcome text tells the visitor about shop {i}. "))
        .collect();
    format!(
        "<p>Your session {sid}</p><p>{text}</p>\
         <a href='/welcome/{sid}a'>a</a><a href='/welcome/{sid}b'>b</a>"
    )
}

#[tokio::test]
async fn a_near_duplicate_page_gives_no_follows_and_says_of_which_task() {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut h = Harness::start(bus).await;
    let first = task("start", "http://books.example/welcome/1");
    h.process(first.clone(), &session_page("5f1b2c3d4e5f6a7b8c9d0e"))
        .await;
    let (_, message) = h.next_output().await;
    let Message::NewTasks(batch) = message else {
        panic!("expected follows, got {message:?}");
    };
    assert_eq!(batch.tasks.len(), 2);
    let (_, message) = h.next_output().await;
    let Message::Status(outcome) = message else {
        panic!("expected an outcome, got {message:?}");
    };
    assert_eq!((outcome.follows, outcome.duplicate_of), (2, None));

    // The same page under another URL and session: no follows, and the outcome names the
    // task it duplicates.
    let second = task("start", "http://books.example/welcome/2");
    h.process(second.clone(), &session_page("9a8b7c6d5e4f3a2b1c0d9e"))
        .await;
    let (subject, message) = h.next_output().await;
    assert_eq!(subject, "spindle.status.books", "no follows are published");
    let Message::Status(outcome) = message else {
        panic!("expected an outcome, got {message:?}");
    };
    assert_eq!(outcome.taskid, second.taskid);
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.follows, 0);
    assert_eq!(outcome.duplicate_of.as_deref(), Some(first.taskid.as_str()));

    // The first task again (a re-crawl) is not a duplicate of itself.
    h.process(first.clone(), &session_page("00aa11bb22cc33dd44ee55"))
        .await;
    let (subject, _) = h.next_output().await;
    assert_eq!(subject, "spindle.newtask.books");
    let (_, message) = h.next_output().await;
    let Message::Status(outcome) = message else {
        panic!("expected an outcome, got {message:?}");
    };
    assert_eq!(outcome.duplicate_of, None);

    h.settled().await;
    h.stop().await;
}

#[tokio::test]
async fn a_failing_handler_fails_the_task_not_the_processor() {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut h = Harness::start(bus).await;
    h.process(task("nope", "http://books.example/"), "<h1>x</h1>")
        .await;
    let (subject, message) = h.next_output().await;
    assert_eq!(subject, "spindle.status.books");
    let Message::Status(outcome) = message else {
        panic!("expected an outcome, got {message:?}");
    };
    let error = outcome.error.expect("a failure");
    assert_eq!(error.kind, ErrorKind::Process);
    assert!(!error.retryable);
    assert!(
        error.message.contains("no handler `nope`"),
        "{}",
        error.message
    );
    assert_eq!(outcome.status_code, Some(200));

    // The processor carries on with the next job.
    h.process(task("detail", "http://books.example/b/9"), "<h1>ok</h1>")
        .await;
    let (subject, _) = h.next_output().await;
    assert_eq!(subject, "spindle.result.books");
    h.settled().await;
    h.stop().await;
}

#[tokio::test]
async fn a_job_of_an_unknown_project_fails_for_good() {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut h = Harness::start(bus).await;
    let mut t = task("start", "http://other.example/");
    t.project = "ghost".into();
    h.process(t, "").await;
    let (subject, message) = h.next_output().await;
    assert_eq!(subject, "spindle.status.ghost");
    let Message::Status(outcome) = message else {
        panic!("expected an outcome, got {message:?}");
    };
    let error = outcome.error.expect("a failure");
    assert!(!error.retryable);
    assert!(
        error.message.contains("unknown project"),
        "{}",
        error.message
    );
    h.settled().await;
    h.stop().await;
}

#[tokio::test]
async fn an_edited_project_is_picked_up() {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut h = Harness::start(bus).await;
    h.process(
        task("detail", "http://books.example/b/1"),
        "<h1>T</h1><p>P</p>",
    )
    .await;
    let (_, Message::Results(before)) = h.next_output().await else {
        panic!("expected results");
    };
    assert!(before.items[0].data.get("para").is_none());

    let edited = PROJECT.replace("item.url = \"$url\"", "item.para = { css = \"p\" }");
    save_project(&h.store, &edited, 2).await;
    h.process(
        task("detail", "http://books.example/b/1"),
        "<h1>T</h1><p>P</p>",
    )
    .await;
    let (_, Message::Results(after)) = h.next_output().await else {
        panic!("expected results");
    };
    assert_eq!(after.items[0].data["para"], "P");
    h.stop().await;
}

#[tokio::test]
async fn other_messages_on_the_process_stream_are_acked_and_dropped() {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let h = Harness::start(bus.clone()).await;
    bus.publish(
        "spindle.process.books",
        Message::Fetch(task("start", "http://books.example/")),
    )
    .await
    .expect("publish");
    h.settled().await;
    h.stop().await;
}

/// Publishes of results: where the fault tests inject their faults.
fn results(subject: &str, _: &Message) -> bool {
    subject.starts_with("spindle.result.")
}

#[tokio::test]
async fn a_failed_publish_hands_the_job_back_and_it_is_processed_again() {
    let bus: Arc<dyn Bus> = Arc::new(FaultyBus::on(Arc::new(MemoryBus::new()), results).failing(1));
    let mut h = Harness::start(bus).await;
    h.process(task("detail", "http://books.example/b/1"), "<h1>Dune</h1>")
        .await;
    // The first attempt's results were refused; the redelivery (after ~1 s) gets through.
    let (subject, message) = h.next_output().await;
    assert_eq!(subject, "spindle.result.books");
    let Message::Results(results) = message else {
        panic!("expected results, got {message:?}");
    };
    assert_eq!(results.items[0].data["title"], "Dune");
    h.settled().await;
    h.stop().await;
}

#[tokio::test]
async fn a_closed_bus_stops_the_service_cleanly() {
    let memory = Arc::new(MemoryBus::new());
    let bus: Arc<dyn Bus> = memory.clone();
    let mut h = Harness::start(bus).await;
    // One job through first, so the service is known to be pulling when the bus closes.
    h.process(task("detail", "http://books.example/b/1"), "<h1>x</h1>")
        .await;
    h.next_output().await;
    memory.close();
    let result = tokio::time::timeout(Duration::from_secs(10), h.service)
        .await
        .expect("the service stops when the bus closes")
        .expect("no panic");
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn shutdown_finishes_the_jobs_in_hand() {
    let (bus, gate) = FaultyBus::on(Arc::new(MemoryBus::new()), results).gated();
    let bus: Arc<dyn Bus> = Arc::new(bus);
    let mut h = Harness::start(bus).await;
    h.process(task("detail", "http://books.example/b/1"), "<h1>Dune</h1>")
        .await;
    tokio::time::timeout(Duration::from_secs(10), gate.reached())
        .await
        .expect("the job reaches its publish");

    h.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!h.service.is_finished(), "a job in hand holds the shutdown");

    gate.open(1);
    let (subject, _) = h.next_output().await;
    assert_eq!(subject, "spindle.result.books");
    h.settled().await;
    h.stop().await;
}
