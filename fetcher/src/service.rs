//! The fetcher service: tasks in from the bus, pages or outcomes out.
//!
//! The story of one task: the loop takes a slot (a semaphore permit), then pulls one
//! delivery from the shared `fetcher` consumer, and hands both to a spawned job. The job
//! fetches, publishes either a [`ProcessJob`] (the page goes on to a processor, announced to
//! the scheduler by a [`Fetched`] notice that frees the host's slot) or a failed [`Outcome`]
//! (straight to the scheduler), and only then acks the delivery. If publishing
//! fails the delivery is nacked and comes back a second later, so a task is never lost; it
//! may be fetched twice, which downstream handlers tolerate. Dropping the permit frees the
//! slot.
//!
//! Back-pressure: at most `concurrency` jobs exist, and the consumer's in-flight bound is the
//! same number, so a slow fetcher holds no more tasks than it works on.
//!
//! Shutdown: on cancellation the loop stops pulling, then waits for every job to finish its
//! fetch and publish, stops the browser (its whole process group), and returns.
//!
//! Routing: a 2xx page goes to the processors, and so does a 3xx page of a task that turned
//! redirects off (the handler asked to see it). A 304 answer to a conditional request (the
//! task sent `etag` or `last_modified`) is a success that skips extraction: a success
//! [`Outcome`] with status 304 and the validators goes straight to the scheduler. Any other
//! status, and every fetch error, is a failed outcome.
//!
//! Sitemap tasks (`fetch.sitemap` set) go no further than the fetcher: their body is read
//! here (see [`crate::sitemap_task`]) and what the sitemap lists goes to the scheduler as
//! `NewTasks`, published before the task's outcome, like a processor's follows. A job's
//! messages are published in order and the delivery is acked only after the last one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use spindle_common::BusError;
use spindle_common::bus::{Bus, ConsumerSpec, Delivery};
use spindle_common::cpu::{CpuStage, metered};
use spindle_common::message::{
    ErrorKind, Fetched, Message, NewTasks, Outcome, Page, ProcessJob, SitemapOptions, Task,
    TaskError, WIRE_VERSION,
};
use spindle_common::subject::{Stage, durable};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::config::FetcherConfig;
use crate::error::{FetcherError, task_error};
use crate::fetch::Fetcher;
use crate::http::elapsed_ms;
use crate::sitemap_task::{self, TASKS_PER_MESSAGE};

/// Delay before a delivery whose result could not be published is tried again.
const REPUBLISH_DELAY: Duration = Duration::from_secs(1);

/// Pause after a transient bus error before pulling again, so a broken connection does not
/// turn the loop into a busy spin.
const BUS_RETRY_DELAY: Duration = Duration::from_secs(1);

/// The fetcher service loop.
///
/// Runs until `shutdown` is cancelled or the bus closes, then waits for in-flight fetches to
/// be published and acknowledged. Only a failure to open the consumer (or a configuration
/// that cannot work) is an error; a failing task is reported on the bus and the loop goes on.
pub async fn run(
    fetcher: Arc<Fetcher>,
    config: FetcherConfig,
    bus: Arc<dyn Bus>,
    shutdown: CancellationToken,
) -> Result<(), FetcherError> {
    if config.concurrency == 0 {
        return Err(FetcherError::Config(
            "concurrency must be at least 1".to_owned(),
        ));
    }
    let spec = ConsumerSpec::new(Stage::Fetch.filter(), durable::FETCHER)
        .max_in_flight(config.concurrency);
    let mut consumer = bus.consume(spec).await?;
    let slots = Arc::new(Semaphore::new(config.concurrency));
    let jobs = TaskTracker::new();
    info!(concurrency = config.concurrency, "fetcher started");

    loop {
        // A slot first, then a message: a delivery is never held without a job to run it.
        let permit = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed; treat it as the end if it ever is.
                Err(_) => break,
            },
        };
        let delivery = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            next = consumer.next() => next,
        };
        match delivery {
            Some(Ok(delivery)) => {
                jobs.spawn(metered(
                    CpuStage::Fetch,
                    handle(fetcher.clone(), bus.clone(), delivery, permit),
                ));
            }
            Some(Err(BusError::Closed)) | None => {
                info!("bus closed; fetcher stops pulling");
                break;
            }
            Some(Err(err)) => {
                warn!(error = %err, "pulling from the fetch consumer failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(BUS_RETRY_DELAY) => {}
                }
            }
        }
    }

    jobs.close();
    debug!(
        in_flight = jobs.len(),
        "fetcher waiting for in-flight fetches"
    );
    jobs.wait().await;
    fetcher.shutdown().await;
    info!("fetcher stopped");
    Ok(())
}

/// Runs one delivery to its end: fetch, publish, ack (or nack). Holds `_permit` throughout.
async fn handle(
    fetcher: Arc<Fetcher>,
    bus: Arc<dyn Bus>,
    delivery: Delivery,
    _permit: OwnedSemaphorePermit,
) {
    // A handle of its own on the message, so `delivery` can be consumed by ack or nack.
    let message = delivery.message.clone();
    let Message::Fetch(task) = message.as_ref() else {
        // Not ours to handle, and holding it would block the queue forever.
        warn!(
            subject = %delivery.subject,
            project = message.project(),
            "unexpected message on the fetch consumer; dropping it"
        );
        if let Err(err) = delivery.ack().await {
            warn!(error = %err, "ack of an unexpected message failed");
        }
        return;
    };

    let messages = match &task.fetch.sitemap {
        Some(options) => read_sitemap(&fetcher, task, options).await,
        None => {
            let started = Instant::now();
            let result = fetcher.fetch(task).await;
            let routed = route(task, result, elapsed_ms(started));
            if matches!(routed.1, Message::Process(_)) {
                // The request is over: the scheduler frees the host's slot now rather than
                // when the outcome comes back after processing.
                let fetched = Message::Fetched(Fetched {
                    v: WIRE_VERSION,
                    project: task.project.clone(),
                    taskid: task.taskid.clone(),
                });
                vec![(Stage::Status.subject(&task.project), fetched), routed]
            } else {
                vec![routed]
            }
        }
    };

    match bus.publish_batch(messages).await {
        Ok(()) => {
            if let Err(err) = delivery.ack().await {
                // The result is out; a redelivery would only repeat an idempotent fetch.
                warn!(taskid = %task.taskid, error = %err, "ack failed after publishing");
            }
        }
        Err(err) => {
            warn!(
                project = %task.project,
                taskid = %task.taskid,
                error = %err,
                "publishing the fetch result failed; handing the task back"
            );
            if let Err(err) = delivery.nack(REPUBLISH_DELAY).await {
                // The bus will redeliver after its ack wait anyway.
                warn!(taskid = %task.taskid, error = %err, "nack failed");
            }
        }
    }
}

/// Fetches and reads sitemap task `task`: the messages of what it lists (see
/// [`sitemap_messages`]), or of its failure.
async fn read_sitemap(
    fetcher: &Fetcher,
    task: &Task,
    options: &SitemapOptions,
) -> Vec<(String, Message)> {
    let started = Instant::now();
    let page = match fetcher.fetch_raw(task).await {
        Ok(page) if (200..300).contains(&page.status) => page,
        // Nothing else is a sitemap: not a redirect left unfollowed, nor a 304 (sitemap
        // tasks never send validators, the tree is read again whenever it is due).
        Ok(page) => {
            let wait = retry_after(page.status, page.header("retry-after"));
            let error = status_error(page.status);
            return vec![failed(task, Some(page.status), page.fetch_ms, error, wait)];
        }
        Err(error) => return vec![failed(task, None, elapsed_ms(started), error, None)],
    };
    let (status, fetch_ms) = (page.status, page.fetch_ms);
    let reading = Instant::now();
    match sitemap_task::read(task, options, page).await {
        Ok(listed) => {
            debug!(
                taskid = %task.taskid,
                url = %task.url,
                sitemaps = listed.sitemaps,
                pages = listed.pages,
                off_site = listed.off_site,
                unusable = listed.unusable,
                repeated = listed.repeated,
                too_deep = listed.too_deep,
                "sitemap read"
            );
            sitemap_messages(task, listed.tasks, status, fetch_ms, elapsed_ms(reading))
        }
        Err(error) => vec![failed(task, Some(status), fetch_ms, error, None)],
    }
}

/// The messages of a sitemap task that was read: the tasks it lists as `NewTasks` in batches
/// of [`TASKS_PER_MESSAGE`], then its success outcome.
fn sitemap_messages(
    task: &Task,
    tasks: Vec<Task>,
    status: u16,
    fetch_ms: u32,
    process_ms: u32,
) -> Vec<(String, Message)> {
    let follows = u32::try_from(tasks.len()).unwrap_or(u32::MAX);
    let mut messages = Vec::with_capacity(tasks.len().div_ceil(TASKS_PER_MESSAGE) + 1);
    let mut tasks = tasks.into_iter().peekable();
    while tasks.peek().is_some() {
        let batch = NewTasks {
            v: WIRE_VERSION,
            project: task.project.clone(),
            parent: task.taskid.clone(),
            tasks: tasks.by_ref().take(TASKS_PER_MESSAGE).collect(),
        };
        messages.push((
            Stage::NewTask.subject(&task.project),
            Message::NewTasks(batch),
        ));
    }
    let outcome = Outcome {
        process_ms,
        script_ms: None,
        follows,
        ..outcome(task, None, Some(status), fetch_ms)
    };
    messages.push((
        Stage::Status.subject(&task.project),
        Message::Status(outcome),
    ));
    messages
}

/// Where the result of fetching `task` goes: a page worth processing to the processors,
/// anything else as a failed outcome to the scheduler.
fn route(task: &Task, result: Result<Page, TaskError>, fetch_ms: u32) -> (String, Message) {
    let conditional = task.fetch.etag.is_some() || task.fetch.last_modified.is_some();
    let redirects_off = task.fetch.follow_redirects == Some(false);
    let failure = match result {
        Ok(page) if page.status == 304 && conditional => {
            debug!(taskid = %task.taskid, "not modified");
            let outcome = Outcome {
                etag: page
                    .header("etag")
                    .map(str::to_owned)
                    .or_else(|| task.fetch.etag.clone()),
                last_modified: page
                    .header("last-modified")
                    .map(str::to_owned)
                    .or_else(|| task.fetch.last_modified.clone()),
                ..outcome(task, None, Some(304), page.fetch_ms)
            };
            return (
                Stage::Status.subject(&task.project),
                Message::Status(outcome),
            );
        }
        Ok(page)
            if page.status < 300
                || (redirects_off && (300..400).contains(&page.status) && page.status != 304) =>
        {
            debug!(taskid = %task.taskid, status = page.status, fetch_ms = page.fetch_ms, "fetched");
            let job = ProcessJob {
                v: WIRE_VERSION,
                task: task.clone(),
                page,
            };
            return (
                Stage::Process.subject(&task.project),
                Message::Process(Box::new(job)),
            );
        }
        Ok(page) => {
            let wait = retry_after(page.status, page.header("retry-after"));
            (
                Some(page.status),
                page.fetch_ms,
                status_error(page.status),
                wait,
            )
        }
        Err(error) => (None, fetch_ms, error, None),
    };
    let (status_code, fetch_ms, error, retry_after_ms) = failure;
    failed(task, status_code, fetch_ms, error, retry_after_ms)
}

/// The failed outcome of `task`, for the scheduler.
fn failed(
    task: &Task,
    status_code: Option<u16>,
    fetch_ms: u32,
    error: TaskError,
    retry_after_ms: Option<u64>,
) -> (String, Message) {
    debug!(
        taskid = %task.taskid,
        url = %task.url,
        kind = ?error.kind,
        error = %error.message,
        "fetch failed"
    );
    let outcome = Outcome {
        retry_after_ms,
        ..outcome(task, Some(error), status_code, fetch_ms)
    };
    (
        Stage::Status.subject(&task.project),
        Message::Status(outcome),
    )
}

/// The wait a throttling answer (429 or 503) asks for in its `Retry-After` header, in ms.
fn retry_after(status: u16, header: Option<&str>) -> Option<u64> {
    matches!(status, 429 | 503)
        .then(|| header.and_then(retry_after_ms))
        .flatten()
}

/// A `Retry-After` value in ms: delay-seconds, or an HTTP date (relative to now).
fn retry_after_ms(value: &str) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs.saturating_mul(1000));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .map_or(0, |d| d.as_millis() as u64),
    )
}

/// The fetcher's outcome of `task`: nothing was processed.
fn outcome(
    task: &Task,
    error: Option<TaskError>,
    status_code: Option<u16>,
    fetch_ms: u32,
) -> Outcome {
    Outcome {
        v: WIRE_VERSION,
        project: task.project.clone(),
        taskid: task.taskid.clone(),
        url: task.url.clone(),
        retries: task.retries,
        error,
        status_code,
        fetch_ms,
        etag: None,
        last_modified: None,
        process_ms: 0,
        script_ms: None,
        follows: 0,
        items: 0,
        form_values_literal: 0,
        duplicate_of: None,
        retry_after_ms: None,
    }
}

/// The task error of a page that came back with a non-success status.
///
/// A 3xx here is a redirect that could not be followed (no `Location`, or a status such as
/// 300 or 304 that is not followed): nothing to process, and fetching again gives the same.
fn status_error(status: u16) -> TaskError {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|code| code.canonical_reason());
    let message = match reason {
        Some(reason) => format!("HTTP {status} {reason}"),
        None => format!("HTTP {status}"),
    };
    let retryable = status >= 500 || status == 408 || status == 429;
    task_error(ErrorKind::Http, retryable, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> Task {
        Task {
            taskid: "t1".into(),
            retries: 2,
            ..Task::new("books", "http://books.test/", "start")
        }
    }

    fn page(status: u16) -> Page {
        Page {
            url: "http://books.test/".into(),
            status,
            headers: Vec::new(),
            content_type: "text/html".into(),
            encoding: "UTF-8".into(),
            text: "<p>hi</p>".into(),
            body_len: 9,
            fetch_ms: 12,
            script_result: None,
            screenshot_png_base64: None,
        }
    }

    #[test]
    fn successful_pages_go_to_the_processors() {
        let (subject, message) = route(&task(), Ok(page(200)), 15);
        assert_eq!(subject, "spindle.process.books");
        let Message::Process(job) = message else {
            panic!("expected a process job, got {message:?}");
        };
        assert_eq!(job.v, WIRE_VERSION);
        assert_eq!(job.task, task());
        assert_eq!(job.page, page(200));
    }

    #[test]
    fn error_statuses_become_outcomes() {
        let (subject, message) = route(&task(), Ok(page(404)), 15);
        assert_eq!(subject, "spindle.status.books");
        let Message::Status(outcome) = message else {
            panic!("expected an outcome, got {message:?}");
        };
        assert_eq!(outcome.status_code, Some(404));
        assert_eq!(outcome.retries, 2);
        assert_eq!(outcome.fetch_ms, 12);
        let error = outcome.error.expect("an error");
        assert_eq!(error.kind, ErrorKind::Http);
        assert_eq!(error.message, "HTTP 404 Not Found");
        assert!(!error.retryable);
    }

    #[test]
    fn a_304_to_a_conditional_request_is_a_success_without_processing() {
        let mut conditional = task();
        conditional.fetch.etag = Some("\"v1\"".into());
        conditional.fetch.last_modified = Some("Wed, 21 Oct 2015 07:28:00 GMT".into());
        let mut not_modified = page(304);
        not_modified.headers = vec![("etag".into(), "\"v2\"".into())];
        let (subject, message) = route(&conditional, Ok(not_modified), 15);
        assert_eq!(subject, "spindle.status.books");
        let Message::Status(outcome) = message else {
            panic!("expected an outcome, got {message:?}");
        };
        assert_eq!(outcome.error, None);
        assert_eq!(outcome.status_code, Some(304));
        assert_eq!(outcome.etag.as_deref(), Some("\"v2\""));
        assert_eq!(
            outcome.last_modified.as_deref(),
            Some("Wed, 21 Oct 2015 07:28:00 GMT"),
            "kept from the task when the 304 does not repeat it"
        );

        // Without validators a 304 is nothing we asked for.
        let (_, message) = route(&task(), Ok(page(304)), 15);
        let Message::Status(outcome) = message else {
            panic!("expected an outcome, got {message:?}");
        };
        assert!(outcome.error.is_some());
    }

    #[test]
    fn redirects_are_processed_when_the_task_turned_following_off() {
        let mut t = task();
        t.fetch.follow_redirects = Some(false);
        let (subject, _) = route(&t, Ok(page(302)), 15);
        assert_eq!(subject, "spindle.process.books");
        let (subject, _) = route(&task(), Ok(page(302)), 15);
        assert_eq!(subject, "spindle.status.books");
    }

    #[test]
    fn only_server_errors_timeouts_and_throttling_are_retryable() {
        for (status, retryable) in [
            (500, true),
            (503, true),
            (408, true),
            (429, true),
            (400, false),
            (403, false),
            (410, false),
            (304, false),
        ] {
            assert_eq!(status_error(status).retryable, retryable, "{status}");
        }
        assert_eq!(status_error(599).message, "HTTP 599");
        assert_eq!(status_error(503).message, "HTTP 503 Service Unavailable");
    }

    #[test]
    fn a_sitemap_sends_its_tasks_in_batches_then_its_outcome() {
        let listed: Vec<Task> = (0..TASKS_PER_MESSAGE * 2 + 1)
            .map(|i| Task {
                taskid: format!("p{i}"),
                ..task()
            })
            .collect();
        let messages = sitemap_messages(&task(), listed, 200, 12, 3);
        let subjects: Vec<&str> = messages.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(
            subjects,
            [
                "spindle.newtask.books",
                "spindle.newtask.books",
                "spindle.newtask.books",
                "spindle.status.books"
            ]
        );
        let sizes: Vec<usize> = messages
            .iter()
            .filter_map(|(_, m)| match m {
                Message::NewTasks(batch) => {
                    assert_eq!((batch.parent.as_str(), batch.v), ("t1", WIRE_VERSION));
                    Some(batch.tasks.len())
                }
                _ => None,
            })
            .collect();
        assert_eq!(sizes, [TASKS_PER_MESSAGE, TASKS_PER_MESSAGE, 1]);
        let Some((_, Message::Status(outcome))) = messages.last() else {
            panic!("the outcome comes last");
        };
        assert_eq!(outcome.error, None);
        assert_eq!(
            (outcome.status_code, outcome.fetch_ms, outcome.process_ms),
            (Some(200), 12, 3)
        );
        assert_eq!(outcome.follows as usize, TASKS_PER_MESSAGE * 2 + 1);

        // An empty sitemap is a success with nothing to queue.
        let messages = sitemap_messages(&task(), Vec::new(), 200, 12, 3);
        assert_eq!(messages.len(), 1);
    }

    #[test]
    fn fetch_errors_become_outcomes_without_status() {
        let error = task_error(ErrorKind::Connect, true, "connection refused");
        let (subject, message) = route(&task(), Err(error.clone()), 7);
        assert_eq!(subject, "spindle.status.books");
        let Message::Status(outcome) = message else {
            panic!("expected an outcome, got {message:?}");
        };
        assert_eq!(outcome.status_code, None);
        assert_eq!(outcome.fetch_ms, 7);
        assert_eq!(outcome.error, Some(error));
        assert_eq!(
            (outcome.process_ms, outcome.follows, outcome.items),
            (0, 0, 0)
        );
    }
}

#[cfg(test)]
mod retry_after_tests {
    use super::retry_after_ms;

    #[test]
    fn seconds_and_dates_are_read() {
        assert_eq!(retry_after_ms("120"), Some(120_000));
        assert_eq!(
            retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(0),
            "a past date: now"
        );
        let later = httpdate::fmt_http_date(
            std::time::SystemTime::now() + std::time::Duration::from_secs(60),
        );
        assert!(retry_after_ms(&later).is_some_and(|ms| (55_000..=60_000).contains(&ms)));
        assert_eq!(retry_after_ms("soon"), None);
    }
}
