//! Spindle's scheduler: the single point of the crawl loop.
//!
//! It reads follows and outcomes from the bus, decides what is new or due again
//! ([`recrawl`]), keeps the frontier in the store and a bounded window of it in memory
//! ([`frontier`]), and sends tasks to the fetchers as each project's rate ([`token_bucket`])
//! and per-host politeness allow. Failed attempts are retried on a schedule ([`retry`]);
//! tasks unanswered past a deadline are sent again. Live figures go to a [`spindle_common::StatsBoard`].
//!
//! It owns the frontier's policy, not its storage: it depends on `spindle-common` only and
//! must never depend on a backend (`spindle-store`, `spindle-nats`) or another role.

pub mod budget;
pub mod counters;
pub mod dedupe;
pub mod frontier;
pub mod recrawl;
pub mod retry;
mod service;
pub mod token_bucket;
pub mod turns;

use std::time::Duration;

pub use retry::RetryPolicy;
pub use service::run;

/// What can stop the scheduler.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The bus failed for good.
    #[error(transparent)]
    Bus(#[from] spindle_common::BusError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] spindle_common::StoreError),
}

impl SchedulerError {
    /// The store is unreachable for now: the scheduler may start again once it is back,
    /// from what the store holds, as after a restart of the process.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_transient())
    }
}

/// Tuning of the scheduler; every default is here.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Tasks of one project held in memory (claimed, waiting or in flight), at most.
    pub window: usize,
    /// Tasks of one project in flight at once, at most.
    pub max_in_flight: usize,
    /// A task unanswered this long after dispatch is sent again.
    pub dispatch_deadline: Duration,
    /// Retry delays.
    pub retry: RetryPolicy,
    /// How often project definitions are re-read from the store.
    pub reload_every: Duration,
    /// How often a project's task counts are read again from the store in full (between
    /// counts they follow the scheduler's own writes; other writers, such as a cancel from
    /// the CLI, show up at the next count).
    pub recount_every: Duration,
    /// Follows and outcomes applied to the store in one batch, at most.
    pub batch: usize,
    /// Tasks per project remembered to drop duplicate follows without a store lookup
    /// (8 bytes and a queue slot each).
    pub recent: usize,
    /// Hosts per project whose place in the queue is remembered so that hosts take turns
    /// ([`turns`]); beyond it the table starts afresh.
    pub hosts: usize,
    /// Retryable failures in a row after which a project pauses.
    pub pause_after: u32,
    /// How long a project waits before it probes with one task.
    pub pause_for: Duration,
    /// How long a host that answered 429 or 503 without `Retry-After` gets no request.
    pub host_backoff: Duration,
    /// The longest wait a `Retry-After` is obeyed for.
    pub max_retry_after: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            window: 8192,
            max_in_flight: 4096,
            dispatch_deadline: Duration::from_secs(600),
            retry: RetryPolicy::default(),
            reload_every: Duration::from_secs(2),
            recount_every: Duration::from_secs(600),
            batch: 2048,
            recent: 65_536,
            hosts: 65_536,
            pause_after: 10,
            pause_for: Duration::from_secs(300),
            host_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(3600),
        }
    }
}
