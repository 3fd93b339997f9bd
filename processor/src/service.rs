//! The processor service: pull fetched pages, run handlers, publish what they found.
//!
//! # Flow of one job
//!
//! 1. A [`Delivery`] of `Message::Process(job)` arrives from the shared `processor` consumer.
//! 2. The project's [`Rules`] come from the [`RulesCache`].
//! 3. [`run_handler`] runs on the blocking pool (HTML parsing is CPU work and
//!    `scraper::Html` is not `Send`).
//! 4. Publish, in this order: follows (`NewTasks`, to the scheduler), then the outcome —
//!    inside `Results` together with the items when there are items (the result writer
//!    forwards it once they are stored, so a task is never "done" with its items unsaved),
//!    else as a `Status`.
//!    A page whose text is a near-duplicate of one this processor saw in the project
//!    ([`crate::neardup`]) keeps its items but its follows are not published: the outcome
//!    says which task it duplicates.
//! 5. Ack, only after every publish succeeded.
//!
//! # Failures
//!
//! A handler error fails the task: a non-retryable `Process` outcome, then ack. A bus or store
//! failure is not the task's fault: the delivery is nacked with a short delay and tried again,
//! never dropped. Because follows may then be published twice, downstream dedupes by task id.
//!
//! # Concurrency
//!
//! Up to `concurrency * 4` deliveries are held at once (the consumer's in-flight bound, the
//! back-pressure of the loop), each in its own task doing its I/O; at most `concurrency`
//! handlers run at once, gated by a semaphore, so the blocking pool never has more CPU work
//! than there are cores to run it.
//!
//! # Shutdown
//!
//! On cancellation the loop stops pulling, waits for the jobs it holds to finish (publish and
//! ack), and returns.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spindle_common::cpu::{CpuStage, measure, metered};
use spindle_common::message::{ErrorKind, TaskError, WIRE_VERSION};
use spindle_common::store::ProjectStore;
use spindle_common::subject::{Stage, durable};
use spindle_common::{
    Bus, BusError, ConsumerSpec, Delivery, Message, NewTasks, Outcome, ProcessJob, Results,
};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cache::{Lookup, RulesCache};
use crate::error::ProcessorError;
use crate::extract::drop_summary;
use crate::handler::{HandlerOutput, run_handler};
use crate::neardup::{self, Seen};

/// How long a message handed back after a bus or store failure waits before redelivery.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Pages up to this size are handled on the async worker that received them (see `process`).
const INLINE_PAGE_BYTES: usize = 64 * 1024;

/// Deliveries held per handler slot: enough that the publishing of some jobs' output (which on
/// JetStream lingers a couple of milliseconds to share a bundle) overlaps the CPU work of
/// others, few enough that a dead processor strands little work until `ack_wait`. On the
/// bench, 4 gave 1,550 pages/s distributed, 16 gave 1,840–2,056 and 32 gave 1,815–2,371.
const IN_FLIGHT_PER_SLOT: usize = 32;

/// Settings of the processor service.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// Handlers run at once (default: the number of CPUs available).
    pub concurrency: usize,
    /// How long compiled rules are used before the store is asked whether the project
    /// changed (default 1 s): an edit reaches every processor within this, and a busy
    /// processor makes one project read a second instead of one per page.
    pub rules_recheck: std::time::Duration,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        Self {
            concurrency: std::thread::available_parallelism().map_or(1, |n| n.get()),
            rules_recheck: std::time::Duration::from_secs(1),
        }
    }
}

/// The processor service loop: processes jobs until `shutdown` is cancelled or the bus
/// closes, then finishes the jobs in hand and returns. Fails only if the consumer cannot be
/// opened.
pub async fn run(
    config: ProcessorConfig,
    bus: Arc<dyn Bus>,
    store: Arc<dyn ProjectStore>,
    shutdown: CancellationToken,
) -> Result<(), ProcessorError> {
    let concurrency = config.concurrency.max(1);
    let spec = ConsumerSpec::new(Stage::Process.filter(), durable::PROCESSOR)
        .max_in_flight(concurrency.saturating_mul(IN_FLIGHT_PER_SLOT));
    let mut consumer = bus.consume(spec).await?;
    let worker = Arc::new(Worker {
        bus,
        cache: RulesCache::new(store, config.rules_recheck),
        cpu: Arc::new(Semaphore::new(concurrency)),
        seen: Mutex::new(HashMap::new()),
    });
    tracing::info!(concurrency, "processor started");

    let mut jobs = JoinSet::new();
    loop {
        // Reap finished jobs without waiting, so the set does not grow with the run; the
        // consumer's in-flight bound already caps how many are running.
        while let Some(done) = jobs.try_join_next() {
            log_join(done);
        }
        let next = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            next = consumer.next() => next,
        };
        match next {
            Some(Ok(delivery)) => {
                let worker = Arc::clone(&worker);
                jobs.spawn(metered(CpuStage::Process, async move {
                    worker.handle(delivery).await
                }));
            }
            None | Some(Err(BusError::Closed)) => {
                tracing::info!("bus closed; processor stopping");
                break;
            }
            Some(Err(err)) => {
                tracing::warn!(error = %err, "pulling from the process stream failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(RETRY_DELAY) => {}
                }
            }
        }
    }

    drop(consumer);
    tracing::info!(in_flight = jobs.len(), "processor finishing jobs in hand");
    while let Some(done) = jobs.join_next().await {
        log_join(done);
    }
    tracing::info!("processor stopped");
    Ok(())
}

/// A job task ended: it handles its own errors, so only a panic is left to report.
fn log_join(done: Result<(), tokio::task::JoinError>) {
    if let Err(err) = done {
        tracing::error!(error = %err, "processor job panicked; its message will be redelivered");
    }
}

/// What every job shares.
struct Worker {
    bus: Arc<dyn Bus>,
    cache: RulesCache,
    /// Handler slots: at most `concurrency` handlers run on the blocking pool at once.
    cpu: Arc<Semaphore>,
    /// Fingerprints of recent pages, per project (each table bounded, see [`neardup`]).
    seen: Mutex<HashMap<String, Seen>>,
}

/// How one job ended, before it is published.
enum Done {
    /// The handler ran.
    Ran {
        output: HandlerOutput,
        process_ms: u32,
        /// The page's [`neardup::fingerprint`], for a 2xx page with enough text.
        fingerprint: Option<u64>,
    },
    /// The task failed for good.
    Failed { message: String, process_ms: u32 },
    /// Not the task's fault: hand the message back.
    Retry(String),
}

impl Worker {
    /// Processes one delivery to its ack or nack.
    async fn handle(&self, delivery: Delivery) {
        let Message::Process(job) = delivery.message.as_ref() else {
            tracing::warn!(subject = %delivery.subject, "unexpected message on the process stream; dropping it");
            ack(delivery).await;
            return;
        };
        let done = self.process(job, &delivery).await;
        let published = match done {
            Done::Ran {
                output,
                process_ms,
                fingerprint,
            } => {
                let duplicate_of = fingerprint.and_then(|fp| self.duplicate_of(job, fp));
                self.publish_output(job, output, process_ms, duplicate_of)
                    .await
            }
            Done::Failed {
                message,
                process_ms,
            } => {
                tracing::debug!(project = %job.task.project, url = %job.task.url, %message, "task failed in processing");
                let outcome = outcome(job, Some(failure(message)), process_ms, 0, 0);
                self.publish(Stage::Status, &job.task.project, Message::Status(outcome))
                    .await
            }
            Done::Retry(reason) => Err(reason),
        };
        match published {
            Ok(()) => ack(delivery).await,
            Err(reason) => {
                tracing::warn!(project = %job.task.project, url = %job.task.url, %reason, "job handed back for redelivery");
                if let Err(err) = delivery.nack(RETRY_DELAY).await {
                    // The bus redelivers it after `ack_wait` anyway.
                    tracing::warn!(error = %err, "nack failed");
                }
            }
        }
    }

    /// Runs the job's handler.
    async fn process(&self, job: &ProcessJob, delivery: &Delivery) -> Done {
        let rules = match self.cache.get(&job.task.project).await {
            Ok(Lookup::Ready(rules)) => rules,
            Ok(Lookup::Unknown) => {
                return Done::Failed {
                    message: format!("unknown project `{}`", job.task.project),
                    process_ms: 0,
                };
            }
            Ok(Lookup::Invalid(message)) => {
                return Done::Failed {
                    message,
                    process_ms: 0,
                };
            }
            Err(err) => return Done::Retry(format!("reading the project failed: {err}")),
        };
        let Ok(_slot) = Arc::clone(&self.cpu).acquire_owned().await else {
            // The semaphore is never closed; if it were, the job is simply tried again.
            return Done::Retry("handler slots closed".to_string());
        };
        // A small page under declarative rules takes a fraction of a millisecond: handing it
        // to a blocking thread and back costs about as much as parsing it. A script may run
        // long, and a large page takes long to parse, so those go to a blocking thread.
        let inline = job.page.text.len() <= INLINE_PAGE_BYTES
            && rules
                .handler(&job.task.callback)
                .is_some_and(|h| h.script.is_none());
        // The handler gets its own handle on the shared message: no copy of the page.
        let message = Arc::clone(&delivery.message);
        let run = move || {
            let Message::Process(job) = message.as_ref() else {
                return None;
            };
            let started = Instant::now();
            let (result, fingerprint) = measure(CpuStage::Process, || {
                let fingerprint = (200..300)
                    .contains(&job.page.status)
                    .then(|| neardup::fingerprint(&job.page.text))
                    .flatten();
                (run_handler(&rules, &job.task, &job.page), fingerprint)
            });
            Some((result, fingerprint, millis(started.elapsed())))
        };
        let ran = if inline {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
                .map_err(|panic| panic_message(panic.as_ref()))
        } else {
            tokio::task::spawn_blocking(run)
                .await
                .map_err(|err| err.to_string())
        };
        match ran {
            Ok(Some((Ok(output), fingerprint, process_ms))) => Done::Ran {
                output,
                process_ms,
                fingerprint,
            },
            Ok(Some((Err(err), _, process_ms))) => Done::Failed {
                message: err.to_string(),
                process_ms,
            },
            // `handle` only calls `process` for a process job, so the closure always ran it;
            // were it not so, failing the task ends the message instead of looping on it.
            Ok(None) => Done::Failed {
                message: "not a process job".to_string(),
                process_ms: 0,
            },
            // A panic in the HTML parser or a selector must fail this page, not the processor
            // or every later delivery of the same page.
            Err(reason) => Done::Failed {
                message: format!("handler panicked: {reason}"),
                process_ms: 0,
            },
        }
    }

    /// The task whose page `fp` (the fingerprint of `job`'s page) duplicates, if any; else
    /// `fp` is remembered for the project.
    fn duplicate_of(&self, job: &ProcessJob, fp: u64) -> Option<String> {
        // A poisoned lock only means another job panicked while holding it; the table is
        // still consistent (every change to it is a single call).
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.entry(job.task.project.clone())
            .or_default()
            .check(&job.task.taskid, fp)
    }

    /// Publishes a handler's follows, then its items with the outcome (or the outcome alone).
    /// A near-duplicate page (`duplicate_of`) publishes no follows.
    async fn publish_output(
        &self,
        job: &ProcessJob,
        mut output: HandlerOutput,
        process_ms: u32,
        duplicate_of: Option<String>,
    ) -> Result<(), String> {
        let project = &job.task.project;
        if let Some(original) = &duplicate_of {
            tracing::info!(
                %project,
                url = %job.task.url,
                duplicate_of = %original,
                follows_dropped = output.follows.len(),
                "near-duplicate page: its follows are not expanded"
            );
            output.follows.clear();
        }
        for line in &output.logs {
            tracing::trace!(%project, url = %job.task.url, "{line}");
        }
        // A dropped item is data lost: each reason at debug, the count (by cause) at info.
        for item in &output.dropped {
            tracing::debug!(%project, url = %job.task.url, "{item}");
        }
        if !output.dropped.is_empty() {
            tracing::info!(
                %project,
                url = %job.task.url,
                dropped = output.dropped.len(),
                "{}",
                drop_summary(&output.dropped)
            );
        }
        for warning in &output.warnings {
            tracing::info!(%project, url = %job.task.url, "warning: {warning}");
        }
        let follows = count(output.follows.len());
        let items = count(output.items.len());
        let form_values_literal = u32::try_from(output.form_values_literal).unwrap_or(u32::MAX);
        // Follows go first, in one batch with the outcome, so the scheduler reads a task's
        // follows before it sees the task finished. Should the follows' publish need a retry,
        // the outcome may be stored first; nothing is lost, the follows arrive a moment later.
        let mut messages = Vec::with_capacity(2);
        if !output.follows.is_empty() {
            let batch = NewTasks {
                v: WIRE_VERSION,
                project: project.clone(),
                parent: job.task.taskid.clone(),
                tasks: output.follows,
            };
            messages.push((Stage::NewTask.subject(project), Message::NewTasks(batch)));
        }
        let outcome = Outcome {
            form_values_literal,
            duplicate_of,
            script_ms: output.script_ms,
            ..outcome(job, None, process_ms, follows, items)
        };
        if output.items.is_empty() {
            messages.push((Stage::Status.subject(project), Message::Status(outcome)));
        } else {
            let results = Results {
                v: WIRE_VERSION,
                project: project.clone(),
                items: output.items,
                outcome: Some(outcome),
            };
            messages.push((Stage::Result.subject(project), Message::Results(results)));
        }
        self.bus
            .publish_batch(messages)
            .await
            .map_err(|err| format!("publishing the output of {} failed: {err}", job.task.url))
    }

    async fn publish(&self, stage: Stage, project: &str, message: Message) -> Result<(), String> {
        let subject = stage.subject(project);
        self.bus
            .publish(&subject, message)
            .await
            .map_err(|err| format!("publishing on {subject} failed: {err}"))
    }
}

async fn ack(delivery: Delivery) {
    if let Err(err) = delivery.ack().await {
        // Nothing is lost: the message comes back after `ack_wait` and is processed again.
        tracing::warn!(error = %err, "ack failed; the message will be redelivered");
    }
}

/// What a caught panic says.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// The outcome of a processed job.
fn outcome(
    job: &ProcessJob,
    error: Option<TaskError>,
    process_ms: u32,
    follows: u32,
    items: u32,
) -> Outcome {
    let ok = error.is_none();
    Outcome {
        v: WIRE_VERSION,
        project: job.task.project.clone(),
        taskid: job.task.taskid.clone(),
        url: job.task.url.clone(),
        retries: job.task.retries,
        error,
        status_code: Some(job.page.status),
        fetch_ms: job.page.fetch_ms,
        // Validators are kept only when the page was processed, so a failed run is redone in full.
        etag: ok
            .then(|| job.page.header("etag").map(str::to_string))
            .flatten(),
        last_modified: ok
            .then(|| job.page.header("last-modified").map(str::to_string))
            .flatten(),
        retry_after_ms: None,
        process_ms,
        script_ms: None,
        follows,
        items,
        form_values_literal: 0,
        duplicate_of: None,
    }
}

/// A processing failure: retrying the same page with the same rules gives the same result.
fn failure(message: String) -> TaskError {
    TaskError {
        kind: ErrorKind::Process,
        message,
        retryable: false,
    }
}

fn millis(elapsed: Duration) -> u32 {
    u32::try_from(elapsed.as_millis()).unwrap_or(u32::MAX)
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
