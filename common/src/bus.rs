//! The bus: how services hand messages to each other.
//!
//! # Contract (at least once)
//!
//! - [`Bus::publish`] returns once the message is accepted by the bus: on JetStream, stored
//!   in its stream; in process, queued.
//! - A consumer is durable and named; every handle opened with the same [`ConsumerSpec::durable`]
//!   shares one queue, so N workers split the work.
//! - A delivered message must be [`Delivery::ack`]ed (done) or [`Delivery::nack`]ed (give it
//!   back, optionally after a delay). One that is neither within [`ConsumerSpec::ack_wait`] is
//!   delivered again, to any handle.
//! - At most [`ConsumerSpec::max_in_flight`] messages of a consumer are delivered to one
//!   instance (one connection to the bus) and unacknowledged at once; [`Consumer::next`] waits
//!   for a free slot. That bound is the back-pressure of the whole loop; instances of a role
//!   add up, so scaling out adds capacity.
//!
//! Handlers must be idempotent: a message can arrive twice.

pub mod memory;
pub mod metered;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::message::Message;

pub use memory::MemoryBus;
pub use metered::{Meter, MeteredBus};

/// What went wrong on the bus.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    /// The bus is shut down or the connection is gone for good.
    #[error("bus closed")]
    Closed,
    /// A message could not be encoded or decoded.
    #[error("message codec: {0}")]
    Codec(String),
    /// The transport failed; the operation may succeed if tried again.
    #[error("bus transport: {0}")]
    Transport(String),
}

/// Which messages a consumer reads and how many it may hold.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Subject filters, e.g. `spindle.fetch.>`. Messages matching any of them are delivered
    /// in the order they were published (on JetStream the filters must cover one stream).
    pub filters: Vec<String>,
    /// Durable name shared by every instance of a role.
    pub durable: String,
    /// Messages delivered to this instance but not yet acknowledged, at most.
    pub max_in_flight: usize,
    /// Time after which an unacknowledged message is delivered again.
    pub ack_wait: Duration,
}

impl ConsumerSpec {
    /// A spec with the default in-flight bound (256) and ack wait (2 minutes: four times the
    /// default request timeout, so a live worker's message is not handed to another).
    pub fn new(filter: impl Into<String>, durable: impl Into<String>) -> Self {
        Self {
            filters: vec![filter.into()],
            durable: durable.into(),
            max_in_flight: 256,
            ack_wait: Duration::from_secs(120),
        }
    }

    /// Adds a subject filter.
    pub fn also(mut self, filter: impl Into<String>) -> Self {
        self.filters.push(filter.into());
        self
    }

    /// Whether the spec's filters match `subject`.
    pub fn matches(&self, subject: &str) -> bool {
        self.filters
            .iter()
            .any(|f| crate::subject::matches(f, subject))
    }

    /// Sets the in-flight bound.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// Sets the ack wait.
    pub fn ack_wait(mut self, wait: Duration) -> Self {
        self.ack_wait = wait;
        self
    }
}

/// Queue figures of one durable consumer, in stored messages: on JetStream one stored
/// message may be a bundle of several deliveries, so these are lower bounds on tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ConsumerStats {
    /// Messages waiting to be delivered (including delayed ones).
    pub pending: u64,
    /// Messages delivered and not yet acknowledged.
    pub in_flight: u64,
}

/// A message bus with the at-least-once contract above.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes `message` on `subject`.
    async fn publish(&self, subject: &str, message: Message) -> Result<(), BusError>;

    /// Publishes several messages, returning once all are accepted. Messages on one subject
    /// are stored in the order given unless a failed attempt has to be retried; a bus may
    /// send them together (JetStream pipelines them and bundles small ones). On error some of
    /// them may be stored: callers republish the whole batch, as with a failed `publish`.
    async fn publish_batch(&self, messages: Vec<(String, Message)>) -> Result<(), BusError> {
        for (subject, message) in messages {
            self.publish(&subject, message).await?;
        }
        Ok(())
    }

    /// Opens a handle on the durable consumer `spec.durable`, creating it if needed.
    async fn consume(&self, spec: ConsumerSpec) -> Result<Box<dyn Consumer>, BusError>;

    /// Queue figures of a durable consumer; zeroes if it does not exist.
    async fn stats(&self, durable: &str) -> Result<ConsumerStats, BusError>;

    /// Sends an event to whoever listens now: at most once, not stored (heartbeats, figures).
    async fn broadcast(&self, subject: &str, payload: Vec<u8>) -> Result<(), BusError>;

    /// Events whose subject matches `filter`, from now on, as `(subject, payload)`.
    async fn listen(
        &self,
        filter: &str,
    ) -> Result<futures::stream::BoxStream<'static, (String, Vec<u8>)>, BusError>;
}

/// A handle on a durable consumer.
#[async_trait]
pub trait Consumer: Send {
    /// The next message, waiting for one and for a free in-flight slot. `None` once the bus
    /// is closed. Cancel-safe: dropping the future before it completes loses no message, so
    /// callers may poll it in `select!` or with `now_or_never`.
    async fn next(&mut self) -> Option<Result<Delivery, BusError>>;
}

/// Acknowledgement of one delivered message; implemented by each bus.
#[async_trait]
pub trait Acker: Send + Sync {
    /// The message is done.
    async fn ack(&self) -> Result<(), BusError>;
    /// Deliver the message again after `delay`.
    async fn nack(&self, delay: Duration) -> Result<(), BusError>;
}

/// One delivered message.
pub struct Delivery {
    /// Subject it was published on.
    pub subject: String,
    /// The message. Shared, so the in-process bus never copies or serializes it.
    pub message: Arc<Message>,
    /// How many times it was delivered before this one.
    pub redeliveries: u32,
    acker: Box<dyn Acker>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("subject", &self.subject)
            .field("redeliveries", &self.redeliveries)
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// A delivery whose acknowledgements go to `acker`.
    pub fn new(
        subject: String,
        message: Arc<Message>,
        redeliveries: u32,
        acker: Box<dyn Acker>,
    ) -> Self {
        Self {
            subject,
            message,
            redeliveries,
            acker,
        }
    }

    /// Acknowledges: the message's effect is durable.
    pub async fn ack(self) -> Result<(), BusError> {
        self.acker.ack().await
    }

    /// Gives the message back, to be delivered again after `delay`.
    pub async fn nack(self, delay: Duration) -> Result<(), BusError> {
        self.acker.nack(delay).await
    }

    /// Acknowledges many deliveries with their acks in flight together rather than one round
    /// trip after another; the first error, once every ack has been tried.
    pub async fn ack_all(deliveries: Vec<Delivery>) -> Result<(), BusError> {
        use futures::StreamExt;
        first_error(
            futures::stream::iter(deliveries.into_iter().map(Delivery::ack))
                .buffer_unordered(ACKS_IN_FLIGHT),
        )
        .await
    }
}

/// Drives every operation of `results` to its end; the first error, if any: for a bus that
/// settles many deliveries at once.
pub async fn first_error(
    results: impl futures::Stream<Item = Result<(), BusError>>,
) -> Result<(), BusError> {
    use futures::StreamExt;
    let mut first = None;
    futures::pin_mut!(results);
    while let Some(result) = results.next().await {
        if let Err(e) = result {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// Acks [`Delivery::ack_all`] keeps in flight at once: enough to fill a round trip at a few
/// thousand acks per second, few enough not to flood the connection's write buffer.
const ACKS_IN_FLIGHT: usize = 256;
