//! The result writer: stores items, then tells the scheduler the task is done.
//!
//! Items of many pages are written in one transaction per project. Only after the commit is
//! each page's outcome forwarded to the scheduler and the messages acknowledged, so a task is
//! never recorded done while its items could still be lost, and a redelivered message just
//! upserts the same rows again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use spindle_common::bus::ConsumerSpec;
use spindle_common::message::{Item, Message, Outcome};
use spindle_common::store::ResultStore;
use spindle_common::subject::{Stage, durable};
use spindle_common::{Bus, BusError, Clock, Delivery, StoreError};
use tokio_util::sync::CancellationToken;

/// Messages written in one batch, at most.
const BATCH: usize = 1024;

/// What stops the result writer.
#[derive(Debug, thiserror::Error)]
pub enum ResultWriterError {
    /// The bus failed for good.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ResultWriterError {
    /// The store is unreachable for now: the writer may start again once it is back (what it
    /// had not acknowledged is delivered again, and items are written by key).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_transient())
    }
}

/// Runs the result writer until `shutdown` is cancelled; what is already queued is written first.
pub async fn run(
    bus: Arc<dyn Bus>,
    store: Arc<dyn ResultStore>,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) -> Result<(), ResultWriterError> {
    let spec =
        ConsumerSpec::new(Stage::Result.filter(), durable::RESULT_WRITER).max_in_flight(BATCH * 2);
    let mut consumer = bus.consume(spec).await?;
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => None,
            next = consumer.next() => match next {
                Some(d) => Some(d?),
                None => return Ok(()),
            },
        };
        let stopping = first.is_none();
        let mut batch: Vec<Delivery> = first.into_iter().collect();
        while batch.len() < BATCH {
            match consumer.next().now_or_never() {
                Some(Some(d)) => batch.push(d?),
                _ => break,
            }
        }
        if !batch.is_empty() {
            write(&*bus, &*store, &*clock, batch).await?;
        }
        if stopping {
            // Keep draining until nothing is immediately ready.
            match consumer.next().now_or_never() {
                Some(Some(d)) => write(&*bus, &*store, &*clock, vec![d?]).await?,
                _ => return Ok(()),
            }
        }
    }
}

async fn write(
    bus: &dyn Bus,
    store: &dyn ResultStore,
    clock: &dyn Clock,
    batch: Vec<Delivery>,
) -> Result<(), ResultWriterError> {
    let mut items: HashMap<&str, Vec<Item>> = HashMap::new();
    let mut outcomes: Vec<&Outcome> = Vec::new();
    for d in &batch {
        match d.message.as_ref() {
            Message::Results(r) => {
                items
                    .entry(r.project.as_str())
                    .or_default()
                    .extend(r.items.iter().cloned());
                outcomes.extend(r.outcome.as_ref());
            }
            _ => tracing::warn!(subject = %d.subject, "unexpected message on the result stream"),
        }
    }
    let now = clock.now_ms();
    for (project, items) in &items {
        match store.upsert_results(project, items, now).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(
                    project,
                    items = items.len(),
                    "project deleted; items dropped"
                )
            }
            Err(e) => {
                // Nothing was acknowledged: give it all back and try again shortly.
                tracing::error!(error = %e, "writing results failed; retrying");
                for d in batch {
                    d.nack(Duration::from_secs(1)).await?;
                }
                return Ok(());
            }
        }
    }
    let statuses = outcomes
        .into_iter()
        .map(|o| {
            (
                Stage::Status.subject(&o.project),
                Message::Status(o.clone()),
            )
        })
        .collect();
    bus.publish_batch(statuses).await?;
    Delivery::ack_all(batch).await?;
    Ok(())
}
