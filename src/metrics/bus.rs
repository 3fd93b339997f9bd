//! A bus wrapper that counts, for the metrics, what a role publishes.
//!
//! Each role's output says what it did: a fetcher publishes a page (or a failed outcome) per
//! fetch, a processor the items and outcome of each page, the result writer an outcome per
//! page whose items it stored, the scheduler a task per dispatch. Messages are seen typed,
//! before they are encoded, so counting costs a few atomic adds. A message is counted when
//! its publish succeeded; a publish that fails is retried by the service and counted then.

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use spindle_common::bus::{Consumer, ConsumerSpec, ConsumerStats};
use spindle_common::message::{Message, Outcome};
use spindle_common::{Bus, BusError};

use super::{ErrorLabels, Metrics, OutcomeLabels, ProjectLabel, kind_label};

/// Which role's output a bus carries: what its messages count as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Pages and failed outcomes are fetches.
    Fetcher,
    /// Results and outcomes are processed pages.
    Processor,
    /// Outcomes are pages whose items were stored.
    ResultWriter,
    /// Tasks are dispatches.
    Scheduler,
    /// Nothing (the web UI).
    Nothing,
}

/// A [`Bus`] that counts in [`Metrics`] what is published through it.
pub struct ObservedBus {
    inner: Arc<dyn Bus>,
    metrics: Arc<Metrics>,
    counted: Counted,
}

impl ObservedBus {
    /// Wraps `inner`; its messages count as `counted` says.
    pub fn new(inner: Arc<dyn Bus>, metrics: Arc<Metrics>, counted: Counted) -> Self {
        Self {
            inner,
            metrics,
            counted,
        }
    }

    /// What `message` counts for this role: only figures, so a page's text is not kept.
    fn note(&self, message: &Message) -> Option<Note> {
        let project = message.project().to_string();
        let note = match (self.counted, message) {
            (Counted::Fetcher, Message::Process(job)) => Note::Fetched {
                project,
                outcome: "ok",
                fetch_ms: job.page.fetch_ms,
                bytes: job.page.body_len,
                error: None,
            },
            (Counted::Fetcher, Message::Status(outcome)) => Note::Fetched {
                project,
                outcome: outcome_label(outcome),
                fetch_ms: outcome.fetch_ms,
                bytes: 0,
                error: error_label(outcome),
            },
            (Counted::Processor, Message::Results(results)) => Note::Processed {
                project,
                items: results.items.len() as u64,
                outcome: results.outcome.as_ref().map(Processed::of),
            },
            (Counted::Processor, Message::Status(outcome)) => Note::Processed {
                project,
                items: 0,
                outcome: Some(Processed::of(outcome)),
            },
            (Counted::ResultWriter, Message::Status(outcome)) => Note::Written {
                project,
                items: u64::from(outcome.items),
            },
            (Counted::Scheduler, Message::Fetch(task)) => Note::Dispatched {
                project,
                retry: task.retries > 0,
            },
            _ => return None,
        };
        Some(note)
    }

    fn count(&self, note: Note) {
        let m = &self.metrics;
        match note {
            Note::Fetched {
                project,
                outcome,
                fetch_ms,
                bytes,
                error,
            } => {
                m.pages_fetched
                    .get_or_create(&OutcomeLabels {
                        project: project.clone(),
                        outcome,
                    })
                    .inc();
                let label = ProjectLabel { project };
                m.fetch_seconds
                    .get_or_create(&label)
                    .observe(seconds(fetch_ms));
                if bytes > 0 {
                    m.fetched_bytes.get_or_create(&label).inc_by(bytes);
                }
                if let Some(kind) = error {
                    self.count_error(label.project, kind);
                }
            }
            Note::Processed {
                project,
                items,
                outcome,
            } => {
                let label = ProjectLabel { project };
                if items > 0 {
                    m.items_extracted.get_or_create(&label).inc_by(items);
                }
                if let Some(p) = outcome {
                    m.pages_processed
                        .get_or_create(&OutcomeLabels {
                            project: label.project.clone(),
                            outcome: p.outcome,
                        })
                        .inc();
                    m.process_seconds
                        .get_or_create(&label)
                        .observe(seconds(p.process_ms));
                    if let Some(script_ms) = p.script_ms {
                        m.script_seconds
                            .get_or_create(&label)
                            .observe(seconds(script_ms));
                    }
                    m.follows.get_or_create(&label).inc_by(p.follows);
                    if let Some(kind) = p.error {
                        self.count_error(label.project, kind);
                    }
                }
            }
            Note::Written { project, items } => {
                m.items_written
                    .get_or_create(&ProjectLabel { project })
                    .inc_by(items);
            }
            Note::Dispatched { project, retry } => {
                let label = ProjectLabel { project };
                m.tasks_dispatched.get_or_create(&label).inc();
                if retry {
                    m.retries.get_or_create(&label).inc();
                }
            }
        }
    }

    fn count_error(&self, project: String, kind: &'static str) {
        self.metrics
            .errors
            .get_or_create(&ErrorLabels { project, kind })
            .inc();
    }
}

/// What one published message counts.
enum Note {
    Fetched {
        project: String,
        outcome: &'static str,
        fetch_ms: u32,
        bytes: u64,
        error: Option<&'static str>,
    },
    Processed {
        project: String,
        items: u64,
        outcome: Option<Processed>,
    },
    Written {
        project: String,
        items: u64,
    },
    Dispatched {
        project: String,
        retry: bool,
    },
}

/// The figures of a processed page's outcome.
struct Processed {
    outcome: &'static str,
    process_ms: u32,
    /// The script hook's time, for a handler with one.
    script_ms: Option<u32>,
    follows: u64,
    error: Option<&'static str>,
}

impl Processed {
    fn of(outcome: &Outcome) -> Processed {
        Processed {
            outcome: outcome_label(outcome),
            process_ms: outcome.process_ms,
            script_ms: outcome.script_ms,
            follows: u64::from(outcome.follows),
            error: error_label(outcome),
        }
    }
}

/// The error kind of a failed outcome.
fn error_label(outcome: &Outcome) -> Option<&'static str> {
    outcome.error.as_ref().map(|e| kind_label(e.kind))
}

/// `ok`, or the error kind of a failed outcome.
fn outcome_label(outcome: &Outcome) -> &'static str {
    outcome.error.as_ref().map_or("ok", |e| kind_label(e.kind))
}

fn seconds(ms: u32) -> f64 {
    f64::from(ms) / 1000.0
}

#[async_trait]
impl Bus for ObservedBus {
    async fn publish(&self, subject: &str, message: Message) -> Result<(), BusError> {
        let note = self.note(&message);
        self.inner.publish(subject, message).await?;
        if let Some(note) = note {
            self.count(note);
        }
        Ok(())
    }

    async fn publish_batch(&self, messages: Vec<(String, Message)>) -> Result<(), BusError> {
        let notes: Vec<Note> = messages.iter().filter_map(|(_, m)| self.note(m)).collect();
        self.inner.publish_batch(messages).await?;
        for note in notes {
            self.count(note);
        }
        Ok(())
    }

    async fn consume(&self, spec: ConsumerSpec) -> Result<Box<dyn Consumer>, BusError> {
        self.inner.consume(spec).await
    }

    async fn stats(&self, durable: &str) -> Result<ConsumerStats, BusError> {
        self.inner.stats(durable).await
    }

    async fn broadcast(&self, subject: &str, payload: Vec<u8>) -> Result<(), BusError> {
        self.inner.broadcast(subject, payload).await
    }

    async fn listen(
        &self,
        filter: &str,
    ) -> Result<BoxStream<'static, (String, Vec<u8>)>, BusError> {
        self.inner.listen(filter).await
    }
}
