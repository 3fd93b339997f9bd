use std::sync::Arc;

use spindle_common::Bus;
use spindle_common::bus::{ConsumerSpec, MemoryBus};
use spindle_common::message::{
    ErrorKind, Message, Outcome, Page, ProcessJob, Results, Task, TaskError, WIRE_VERSION,
};
use spindle_common::subject::{Stage, durable};

use super::*;

/// The value of the one sample of `name` whose labels include every `label="value"` pair.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matches: Vec<f64> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.split(['{', ' ']).next() == Some(name))
        .filter(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
        .collect();
    assert!(
        matches.len() <= 1,
        "{name} {labels:?} is ambiguous in\n{text}"
    );
    matches.first().copied()
}

fn outcome(project: &str, error: Option<ErrorKind>) -> Outcome {
    Outcome {
        v: WIRE_VERSION,
        project: project.into(),
        taskid: "t".into(),
        url: "http://site/x".into(),
        retries: 0,
        error: error.map(|kind| TaskError {
            kind,
            message: "failed".into(),
            retryable: false,
        }),
        status_code: Some(404),
        fetch_ms: 250,
        process_ms: 40,
        script_ms: None,
        follows: 3,
        items: 2,
        form_values_literal: 0,
        duplicate_of: None,
        etag: None,
        last_modified: None,
        retry_after_ms: None,
    }
}

fn page_job(project: &str, fetch_ms: u32, body_len: u64) -> Message {
    Message::Process(Box::new(ProcessJob {
        v: WIRE_VERSION,
        task: Task::new(project, "http://site/item/1", "detail"),
        page: Page {
            url: "http://site/item/1".into(),
            status: 200,
            headers: vec![],
            content_type: "text/html".into(),
            encoding: "utf-8".into(),
            text: "<html></html>".into(),
            body_len,
            fetch_ms,
            script_result: None,
            screenshot_png_base64: None,
        },
    }))
}

fn observed(role: &'static str, counted: Counted) -> (Arc<Metrics>, ObservedBus) {
    let inner: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let metrics = Arc::new(Metrics::new(role, Sources::default()));
    let bus = ObservedBus::new(inner, metrics.clone(), counted);
    (metrics, bus)
}

#[tokio::test]
async fn a_fetcher_counts_its_pages_by_outcome_with_latency_and_bytes() {
    let (metrics, bus) = observed("fetcher", Counted::Fetcher);
    let subject = Stage::Process.subject("shop");
    bus.publish(&subject, page_job("shop", 120, 10_000))
        .await
        .expect("publish");
    bus.publish_batch(vec![
        (subject.clone(), page_job("shop", 30, 5_000)),
        (
            Stage::Status.subject("shop"),
            Message::Status(outcome("shop", Some(ErrorKind::Http))),
        ),
    ])
    .await
    .expect("publish");
    let text = metrics.render().await;
    let fetched = |outcome| {
        sample(
            &text,
            "spindle_pages_fetched_total",
            &[
                ("role", "fetcher"),
                ("project", "shop"),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(fetched("ok"), Some(2.0), "{text}");
    assert_eq!(fetched("http"), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, "spindle_fetched_bytes_total", &[("project", "shop")]),
        Some(15_000.0)
    );
    let count = sample(
        &text,
        "spindle_fetch_duration_seconds_count",
        &[("project", "shop")],
    );
    assert_eq!(count, Some(3.0), "{text}");
    let sum = sample(
        &text,
        "spindle_fetch_duration_seconds_sum",
        &[("project", "shop")],
    )
    .expect("sum");
    assert!((sum - 0.4).abs() < 1e-9, "{sum}");
    assert_eq!(
        sample(
            &text,
            "spindle_task_errors_total",
            &[("project", "shop"), ("kind", "http")]
        ),
        Some(1.0)
    );
    // A processor's figures are not a fetcher's.
    assert_eq!(
        sample(
            &text,
            "spindle_items_extracted_total",
            &[("project", "shop")]
        ),
        None
    );
    assert!(text.ends_with("# EOF\n"), "OpenMetrics text ends with EOF");
}

#[tokio::test]
async fn processors_writers_and_the_scheduler_count_their_own_output() {
    let (metrics, bus) = observed("processor", Counted::Processor);
    let results = Message::Results(Results {
        v: WIRE_VERSION,
        project: "shop".into(),
        items: vec![],
        // A handler with a script hook: its time is counted apart too.
        outcome: Some(Outcome {
            script_ms: Some(7),
            ..outcome("shop", None)
        }),
    });
    bus.publish(&Stage::Result.subject("shop"), results.clone())
        .await
        .expect("publish");
    bus.publish(
        &Stage::Status.subject("shop"),
        Message::Status(outcome("shop", Some(ErrorKind::Process))),
    )
    .await
    .expect("publish");
    let text = metrics.render().await;
    let processed = |outcome| {
        sample(
            &text,
            "spindle_pages_processed_total",
            &[("project", "shop"), ("outcome", outcome)],
        )
    };
    assert_eq!(
        (processed("ok"), processed("process")),
        (Some(1.0), Some(1.0))
    );
    assert_eq!(
        sample(&text, "spindle_follows_total", &[("project", "shop")]),
        Some(6.0)
    );
    assert_eq!(
        sample(
            &text,
            "spindle_process_duration_seconds_count",
            &[("role", "processor")]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            "spindle_script_duration_seconds_count",
            &[("role", "processor")]
        ),
        Some(1.0),
        "only the page whose handler has a script"
    );

    let (metrics, bus) = observed("result-writer", Counted::ResultWriter);
    bus.publish(
        &Stage::Status.subject("shop"),
        Message::Status(outcome("shop", None)),
    )
    .await
    .expect("publish");
    let text = metrics.render().await;
    assert_eq!(
        sample(&text, "spindle_items_written_total", &[("project", "shop")]),
        Some(2.0)
    );

    let (metrics, bus) = observed("scheduler", Counted::Scheduler);
    let mut retry = Task::new("shop", "http://site/a", "detail");
    retry.retries = 1;
    for task in [Task::new("shop", "http://site/b", "detail"), retry] {
        bus.publish(&Stage::Fetch.subject("shop"), Message::Fetch(task))
            .await
            .expect("publish");
    }
    let text = metrics.render().await;
    assert_eq!(
        sample(
            &text,
            "spindle_tasks_dispatched_total",
            &[("project", "shop")]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, "spindle_retries_total", &[("project", "shop")]),
        Some(1.0)
    );
}

#[tokio::test]
async fn gauges_are_read_from_their_sources_at_scrape_time() {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let metered = spindle_common::bus::MeteredBus::new(bus.clone());
    let board = Arc::new(StatsBoard::new());
    let metrics = Metrics::new(
        "scheduler",
        Sources {
            meter: Some(metered.meter()),
            queues: Some((bus.clone(), vec![durable::FETCHER])),
            board: Some(board.clone()),
        },
    );
    // Two tasks wait in the fetchers' queue; one is delivered and held.
    let mut consumer = metered
        .consume(ConsumerSpec::new(Stage::Fetch.filter(), durable::FETCHER))
        .await
        .expect("consume");
    for url in ["http://site/a", "http://site/b"] {
        bus.publish(
            &Stage::Fetch.subject("shop"),
            Message::Fetch(Task::new("shop", url, "start")),
        )
        .await
        .expect("publish");
    }
    let _held = consumer.next().await.expect("a delivery").expect("ok");
    board.update("shop", |stats| {
        stats.queued = 7;
        stats.total_success = 5;
    });
    let text = metrics.render().await;
    assert_eq!(
        sample(
            &text,
            "spindle_in_flight_messages",
            &[("role", "scheduler")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "spindle_queue_pending_messages",
            &[("queue", durable::FETCHER)]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "spindle_queue_unacked_messages",
            &[("queue", durable::FETCHER)]
        ),
        Some(1.0)
    );
    for (status, value) in [("queued", 7.0), ("success", 5.0), ("failed", 0.0)] {
        assert_eq!(
            sample(
                &text,
                "spindle_tasks",
                &[("project", "shop"), ("status", status)]
            ),
            Some(value),
            "{status} in\n{text}"
        );
    }
}
