//! The fetcher service on the in-process bus: tasks in, process jobs and outcomes out, acks
//! only after publishing, bounded concurrency, graceful shutdown.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use common::{TestServer, task};
use spindle_common::bus::{Bus, Consumer, ConsumerSpec, ConsumerStats, MemoryBus};
use spindle_common::message::{ErrorKind, Message, Outcome, ProcessJob, WIRE_VERSION};
use spindle_common::subject::{Stage, durable};
use spindle_fetcher::{Fetcher, FetcherConfig, FetcherError, run};
use spindle_testkit::FaultyBus;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

/// A running fetcher service and what is needed to stop it.
struct Service {
    shutdown: CancellationToken,
    handle: JoinHandle<Result<(), FetcherError>>,
}

impl Service {
    fn start(bus: Arc<dyn Bus>, concurrency: usize) -> Service {
        let config = FetcherConfig {
            concurrency,
            ..FetcherConfig::default()
        };
        let fetcher = Arc::new(Fetcher::new(&config).expect("fetcher builds"));
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(run(fetcher, config, bus, shutdown.clone()));
        Service { shutdown, handle }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.handle)
            .await
            .expect("service stops in time")
            .expect("service task does not panic")
            .expect("service ends cleanly");
    }
}

async fn consumer(bus: &dyn Bus, stage: Stage) -> Box<dyn Consumer> {
    bus.consume(ConsumerSpec::new(
        stage.filter(),
        format!("test-{}", stage.token()),
    ))
    .await
    .expect("test consumer opens")
}

/// The next message of `consumer`, acknowledged.
async fn next(consumer: &mut Box<dyn Consumer>) -> Arc<Message> {
    let delivery = tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("a message in time")
        .expect("bus open")
        .expect("delivery");
    let message = delivery.message.clone();
    delivery.ack().await.expect("ack");
    message
}

fn as_job(message: &Message) -> &ProcessJob {
    match message {
        Message::Process(job) => job,
        other => panic!("expected a process job, got {other:?}"),
    }
}

fn as_outcome(message: &Message) -> &Outcome {
    match message {
        Message::Status(outcome) => outcome,
        other => panic!("expected an outcome, got {other:?}"),
    }
}

/// Waits until the fetch consumer holds nothing: every task acknowledged.
async fn wait_until_drained(bus: &dyn Bus) {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = bus.stats(durable::FETCHER).await.expect("stats");
        if stats == ConsumerStats::default() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "fetch queue not drained: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn submit(bus: &dyn Bus, taskid: &str, url: String) {
    let mut t = task(url);
    t.taskid = taskid.into();
    t.retries = 1;
    bus.publish(&Stage::Fetch.subject(&t.project), Message::Fetch(t))
        .await
        .expect("publish task");
}

#[tokio::test]
async fn pages_go_to_processing_and_failures_to_the_scheduler() {
    let server = TestServer::start(
        Router::new()
            .route("/ok", get(|| async { "fine" }))
            .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
            .route("/busy", get(|| async { StatusCode::SERVICE_UNAVAILABLE })),
    )
    .await;
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut processed = consumer(bus.as_ref(), Stage::Process).await;
    let mut statuses = consumer(bus.as_ref(), Stage::Status).await;
    let service = Service::start(bus.clone(), 4);

    submit(bus.as_ref(), "ok", server.url("/ok")).await;
    submit(bus.as_ref(), "missing", server.url("/missing")).await;
    submit(bus.as_ref(), "busy", server.url("/busy")).await;
    submit(
        bus.as_ref(),
        "down",
        format!("http://127.0.0.1:{closed_port}/"),
    )
    .await;
    // Not a task: acknowledged and dropped, and the loop goes on.
    let stray = Message::Status(Outcome {
        v: WIRE_VERSION,
        project: "test".into(),
        taskid: "stray".into(),
        url: "http://x/".into(),
        retries: 0,
        error: None,
        status_code: None,
        fetch_ms: 0,
        process_ms: 0,
        script_ms: None,
        follows: 0,
        items: 0,
        form_values_literal: 0,
        duplicate_of: None,
        etag: None,
        last_modified: None,
        retry_after_ms: None,
    });
    bus.publish(&Stage::Fetch.subject("test"), stray)
        .await
        .expect("publish stray");

    let message = next(&mut processed).await;
    let job = as_job(&message);
    assert_eq!(job.v, WIRE_VERSION);
    assert_eq!(job.task.taskid, "ok");
    assert_eq!(job.page.status, 200);
    assert_eq!(job.page.text, "fine");

    // Three failed outcomes, and the notice that the page's response is in (it frees the
    // host's slot before the page is processed).
    let (mut outcomes, mut fetched) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        match next(&mut statuses).await.as_ref() {
            Message::Fetched(notice) => fetched.push(notice.taskid.clone()),
            other => outcomes.push(as_outcome(other).clone()),
        }
    }
    assert_eq!(fetched, ["ok"]);
    outcomes.sort_by(|a, b| a.taskid.cmp(&b.taskid));
    let [busy, down, missing] = &outcomes[..] else {
        panic!("three outcomes expected: {outcomes:?}");
    };

    let error = missing.error.as_ref().expect("404 is a failure");
    assert_eq!(missing.status_code, Some(404));
    assert_eq!(missing.retries, 1);
    assert_eq!((error.kind, error.retryable), (ErrorKind::Http, false));
    assert_eq!(error.message, "HTTP 404 Not Found");

    let error = busy.error.as_ref().expect("503 is a failure");
    assert_eq!(busy.status_code, Some(503));
    assert_eq!((error.kind, error.retryable), (ErrorKind::Http, true));

    let error = down
        .error
        .as_ref()
        .expect("refused connection is a failure");
    assert_eq!(down.status_code, None);
    assert_eq!((error.kind, error.retryable), (ErrorKind::Connect, true));
    assert_eq!(
        (down.process_ms, down.follows, down.items, down.v),
        (0, 0, 0, WIRE_VERSION)
    );

    wait_until_drained(bus.as_ref()).await;
    service.stop().await;
}

#[tokio::test]
async fn a_result_that_cannot_be_published_is_retried_not_lost() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let server = TestServer::start(Router::new().route(
        "/ok",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { "fine" }
        }),
    ))
    .await;
    // The first publish of an outcome fails, as a JetStream outage would.
    let bus: Arc<dyn Bus> = Arc::new(
        FaultyBus::on(Arc::new(MemoryBus::new()), |_, m| {
            !matches!(m, Message::Fetch(_))
        })
        .failing(1),
    );
    let mut processed = consumer(bus.as_ref(), Stage::Process).await;
    let service = Service::start(bus.clone(), 4);

    let started = Instant::now();
    submit(bus.as_ref(), "ok", server.url("/ok")).await;
    let message = next(&mut processed).await;
    assert_eq!(as_job(&message).task.taskid, "ok");
    // Handed back with a delay, then fetched again.
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    wait_until_drained(bus.as_ref()).await;
    service.stop().await;
}

#[tokio::test]
async fn shutdown_waits_for_in_flight_fetches() {
    let (started_tx, mut started_rx) = mpsc::unbounded_channel::<()>();
    let server = TestServer::start(Router::new().route(
        "/slow",
        get(move || {
            let started = started_tx.clone();
            async move {
                let _ = started.send(());
                tokio::time::sleep(Duration::from_millis(500)).await;
                "slow but sure"
            }
        }),
    ))
    .await;
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut processed = consumer(bus.as_ref(), Stage::Process).await;
    let service = Service::start(bus.clone(), 4);

    submit(bus.as_ref(), "slow", server.url("/slow")).await;
    tokio::time::timeout(WAIT, started_rx.recv())
        .await
        .expect("fetch started in time");
    service.stop().await;

    // By the time `run` returned, the page was published and the task acknowledged.
    let stats = bus.stats(durable::FETCHER).await.expect("stats");
    assert_eq!(stats, ConsumerStats::default());
    let message = tokio::time::timeout(Duration::from_millis(100), next(&mut processed))
        .await
        .expect("already published");
    assert_eq!(as_job(&message).page.text, "slow but sure");
}

#[tokio::test]
async fn no_more_than_concurrency_fetches_at_once() {
    let active = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (a, p) = (active.clone(), peak.clone());
    let server = TestServer::start(Router::new().route(
        "/slow",
        get(move || {
            let (active, peak) = (a.clone(), p.clone());
            async move {
                let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(150)).await;
                active.fetch_sub(1, Ordering::SeqCst);
                "done"
            }
        }),
    ))
    .await;
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut processed = consumer(bus.as_ref(), Stage::Process).await;
    let service = Service::start(bus.clone(), 2);

    for i in 0..6 {
        submit(bus.as_ref(), &format!("t{i}"), server.url("/slow")).await;
    }
    for _ in 0..6 {
        let message = next(&mut processed).await;
        assert_eq!(as_job(&message).page.text, "done");
    }
    assert_eq!(peak.load(Ordering::SeqCst), 2);

    wait_until_drained(bus.as_ref()).await;
    service.stop().await;
}

#[tokio::test]
async fn zero_concurrency_is_a_configuration_error() {
    let config = FetcherConfig {
        concurrency: 0,
        ..FetcherConfig::default()
    };
    let fetcher = Arc::new(Fetcher::new(&config).expect("fetcher builds"));
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let result = run(fetcher, config, bus, CancellationToken::new()).await;
    assert!(matches!(result, Err(FetcherError::Config(_))), "{result:?}");
}

#[tokio::test]
async fn a_304_round_trip_reports_success_without_processing() {
    let server = TestServer::start(Router::new().route(
        "/cond",
        get(|headers: axum::http::HeaderMap| async move {
            let matches = headers
                .get("if-none-match")
                .is_some_and(|v| v.as_bytes() == b"\"v7\"");
            if matches {
                return StatusCode::NOT_MODIFIED.into_response();
            }
            (
                [
                    (axum::http::header::ETAG, "\"v7\""),
                    (
                        axum::http::header::LAST_MODIFIED,
                        "Wed, 21 Oct 2015 07:28:00 GMT",
                    ),
                ],
                "first version",
            )
                .into_response()
        }),
    ))
    .await;
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut processed = consumer(bus.as_ref(), Stage::Process).await;
    let mut statuses = consumer(bus.as_ref(), Stage::Status).await;
    let service = Service::start(bus.clone(), 4);

    // First fetch: a page to process, carrying the validators.
    submit(bus.as_ref(), "cond", server.url("/cond")).await;
    let message = next(&mut processed).await;
    let page = &as_job(&message).page;
    assert_eq!(page.text, "first version");
    let etag = page.header("etag").map(str::to_owned);
    let last_modified = page.header("last-modified").map(str::to_owned);
    assert_eq!(etag.as_deref(), Some("\"v7\""));

    match next(&mut statuses).await.as_ref() {
        Message::Fetched(notice) => assert_eq!(notice.taskid, "cond"),
        other => panic!("expected the notice of the first response, got {other:?}"),
    }

    // Again with the validators (as the scheduler sends them): a success outcome, no job.
    let mut again = task(server.url("/cond"));
    again.taskid = "cond".into();
    again.fetch.etag = etag;
    again.fetch.last_modified = last_modified;
    bus.publish(&Stage::Fetch.subject("test"), Message::Fetch(again))
        .await
        .expect("publish task");
    let message = next(&mut statuses).await;
    let outcome = as_outcome(&message);
    assert_eq!(outcome.taskid, "cond");
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.status_code, Some(304));
    assert_eq!(outcome.etag.as_deref(), Some("\"v7\""));
    assert_eq!(
        outcome.last_modified.as_deref(),
        Some("Wed, 21 Oct 2015 07:28:00 GMT")
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(200), processed.next())
            .await
            .is_err(),
        "nothing to process"
    );

    wait_until_drained(bus.as_ref()).await;
    service.stop().await;
}

/// A gzip-compressed copy of `text`.
fn gzip(text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).expect("write to memory");
    encoder.finish().expect("finish gzip")
}

/// Messages for the scheduler (follows and outcomes, in publish order) until `outcomes`
/// outcomes have arrived.
async fn until_outcomes(consumer: &mut Box<dyn Consumer>, outcomes: usize) -> Vec<Arc<Message>> {
    let mut messages = Vec::new();
    let mut seen = 0;
    while seen < outcomes {
        let message = next(consumer).await;
        seen += usize::from(matches!(message.as_ref(), Message::Status(_)));
        messages.push(message);
    }
    messages
}

/// The URLs of the tasks of `parent`, from its `NewTasks` messages, asserting they all come
/// before its outcome.
fn listed_by(messages: &[Arc<Message>], parent: &str) -> Vec<spindle_common::Task> {
    let done = messages
        .iter()
        .position(|m| matches!(m.as_ref(), Message::Status(o) if o.taskid == parent))
        .unwrap_or_else(|| panic!("no outcome for {parent}"));
    let mut tasks = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        if let Message::NewTasks(batch) = message.as_ref()
            && batch.parent == parent
        {
            assert!(i < done, "follows of {parent} after its outcome");
            assert_eq!(batch.project, "test");
            tasks.extend(batch.tasks.iter().cloned());
        }
    }
    tasks
}

fn outcome_of<'a>(messages: &'a [Arc<Message>], taskid: &str) -> &'a Outcome {
    messages
        .iter()
        .find_map(|m| match m.as_ref() {
            Message::Status(o) if o.taskid == taskid => Some(o),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no outcome for {taskid}"))
}

#[tokio::test]
async fn a_sitemap_task_sends_what_it_lists_to_the_scheduler() {
    use axum::http::header::CONTENT_TYPE;
    use spindle_common::message::SitemapOptions;
    use spindle_common::project::sitemap_task;
    use spindle_common::urlnorm::fingerprint;
    use std::sync::OnceLock;

    // The documents name the server's own address, known once it listens.
    let base = Arc::new(OnceLock::<String>::new());
    let (b1, b2, b3) = (base.clone(), base.clone(), base.clone());
    let router = Router::new()
        .route(
            "/sitemap_index.xml",
            get(move || async move {
                let base = b1.get().expect("base set");
                let xml = format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>{base}/products.xml.gz</loc></sitemap>
  <sitemap><loc>{base}/pages.xml</loc><lastmod>2024-01-01</lastmod></sitemap>
</sitemapindex>"#
                );
                ([(CONTENT_TYPE, "application/xml")], xml)
            }),
        )
        .route(
            // Served as a file download: binary to the page reader, bytes to the sitemap one.
            "/products.xml.gz",
            get(move || async move {
                let base = b2.get().expect("base set");
                let xml = format!(
                    r#"<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>{base}/p/1</loc></url>
  <url><loc>{base}/p/2?utm_source=sitemap</loc></url>
  <url><loc>https://elsewhere.example/p/3</loc></url>
</urlset>"#
                );
                ([(CONTENT_TYPE, "application/gzip")], gzip(&xml))
            }),
        )
        .route(
            "/pages.xml",
            get(move || async move {
                let base = b3.get().expect("base set");
                let xml = format!(
                    r#"<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>{base}/about</loc></url>
  <url><loc>{base}/p/1</loc></url>
</urlset>"#
                );
                ([(CONTENT_TYPE, "text/xml; charset=utf-8")], xml)
            }),
        )
        .route(
            "/broken.xml",
            get(|| async { ([(CONTENT_TYPE, "application/xml")], "<urlset><url><loc>") }),
        )
        .route(
            "/gone.xml",
            get(|| async { StatusCode::NOT_FOUND.into_response() }),
        );
    let server = TestServer::start(router).await;
    base.set(server.url("")).expect("set once");

    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut processed = consumer(bus.as_ref(), Stage::Process).await;
    // Follows and outcomes on one consumer, as the scheduler reads them: in publish order.
    let mut scheduler = bus
        .consume(
            ConsumerSpec::new(Stage::NewTask.filter(), "test-scheduler")
                .also(Stage::Status.filter()),
        )
        .await
        .expect("consumer opens");
    let service = Service::start(bus.clone(), 4);

    let options = SitemapOptions {
        hosts: vec!["127.0.0.1".into()],
        keep_params: Vec::new(),
    };
    let sitemap = |path: &str| {
        let mut t = sitemap_task("test", &server.url(path), "start", options.clone());
        t.fetch.allow_private = true;
        t
    };
    let submit = |t: spindle_common::Task| {
        let bus = bus.clone();
        async move {
            bus.publish(&Stage::Fetch.subject("test"), Message::Fetch(t))
                .await
                .expect("publish task");
        }
    };

    // The index lists two sitemaps: sitemap tasks one level down.
    let mut index = sitemap("/sitemap_index.xml");
    index.force = true;
    submit(index.clone()).await;
    let messages = until_outcomes(&mut scheduler, 1).await;
    let children = listed_by(&messages, &index.taskid);
    let urls: Vec<&str> = children.iter().map(|t| t.url.as_str()).collect();
    assert_eq!(
        urls,
        [server.url("/products.xml.gz"), server.url("/pages.xml")]
    );
    for child in &children {
        assert_eq!(child.fetch.sitemap.as_ref(), Some(&options));
        assert_eq!(child.taskid, fingerprint(&format!("sitemap:{}", child.url)));
        assert_eq!((child.callback.as_str(), child.depth), ("start", 1));
        assert!(child.force, "a forced index re-reads its sitemaps");
    }
    let done = outcome_of(&messages, &index.taskid);
    assert_eq!(
        (done.error.as_ref(), done.status_code, done.follows),
        (None, Some(200), 2)
    );

    // The scheduler sends them on (with the project's options merged in).
    for mut child in children {
        child.fetch.allow_private = true;
        submit(child).await;
    }
    let messages = until_outcomes(&mut scheduler, 2).await;
    let pages = |path: &str| -> Vec<String> {
        let parent = fingerprint(&format!("sitemap:{}", server.url(path)));
        let listed = listed_by(&messages, &parent);
        for page in &listed {
            assert_eq!(page.taskid, fingerprint(&page.url));
            assert_eq!((page.callback.as_str(), page.depth), ("start", 0));
            assert_eq!(page.fetch.sitemap, None, "a page, not a sitemap");
            assert!(!page.force);
        }
        assert_eq!(outcome_of(&messages, &parent).error, None);
        listed.into_iter().map(|t| t.url).collect()
    };
    // Gzipped: inflated; normalized; the other site's page left out.
    assert_eq!(
        pages("/products.xml.gz"),
        [server.url("/p/1"), server.url("/p/2")]
    );
    assert_eq!(
        pages("/pages.xml"),
        [server.url("/about"), server.url("/p/1")]
    );

    // A sitemap that cannot be read, or fetched, fails like any task.
    submit(sitemap("/broken.xml")).await;
    submit(sitemap("/gone.xml")).await;
    let messages = until_outcomes(&mut scheduler, 2).await;
    assert_eq!(messages.len(), 2, "no follows: {messages:?}");
    let broken = outcome_of(
        &messages,
        &fingerprint(&format!("sitemap:{}", server.url("/broken.xml"))),
    );
    let error = broken.error.as_ref().expect("malformed XML fails");
    assert_eq!((error.kind, error.retryable), (ErrorKind::Process, true));
    assert!(error.message.contains("unreadable sitemap"), "{error:?}");
    let gone = outcome_of(
        &messages,
        &fingerprint(&format!("sitemap:{}", server.url("/gone.xml"))),
    );
    assert_eq!(gone.status_code, Some(404));
    let error = gone.error.as_ref().expect("404 fails");
    assert_eq!((error.kind, error.retryable), (ErrorKind::Http, false));

    assert!(
        tokio::time::timeout(Duration::from_millis(200), processed.next())
            .await
            .is_err(),
        "a sitemap is never a page to process"
    );
    wait_until_drained(bus.as_ref()).await;
    service.stop().await;
}
