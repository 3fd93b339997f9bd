//! The JetStream bus of the distributed mode.
//!
//! Same contract as the in-process bus (see [`spindle_common::bus`]), on nats-server 2.9 with JetStream:
//!
//! - **Streams.** One per [`Stage::stream`](spindle_common::subject::Stage::stream), created or updated
//!   at connect: file storage, a byte bound that refuses publishes when reached (never drops
//!   old messages), an age bound, and a duplicate window so a retried publish is stored once.
//!   Newtask and status share `SPINDLE_SCHEDULER`, so the scheduler's single consumer reads a
//!   task's follows before its outcome.
//! - **Retention: work queue** for every stream. Each stream has one consumer per subject set
//!   (all fetchers share `fetcher`, the scheduler reads its whole stream through one unfiltered
//!   consumer), which is exactly what a work queue allows; an acknowledged message is deleted
//!   at once, so the streams hold only pending work. Unlike interest retention it also keeps
//!   messages published before their consumer exists, as the in-process bus does. The price:
//!   a second consumer overlapping a stream's subjects (an observer) is refused by the server.
//! - **Consumers.** Durable pull consumers with explicit ack (see [`consumer`]).
//! - **Bodies.** JSON, compressed or moved to an object store when large (see [`codec`]).
//! - **Bundles.** Small messages published close together on one subject are stored as one
//!   message and settled with one ack (see [`bundle`]); queue figures from [`Bus::stats`]
//!   therefore count stored messages, each holding one or more deliveries.
//! - **Namespace.** Optional, prefixes every name on the wire (see [`NatsOptions::namespace`]).
//! - **Reconnect.** The client reconnects forever with backoff; publishes retry until
//!   [`NatsOptions::publish_timeout`] with one message id (deduplicated by the stream), and
//!   consumers re-issue their pull requests after every reconnect.
//!
//! This crate owns the NATS client (async-nats) and every JetStream name on the wire. The
//! services must never depend on it: they take a [`Bus`], and only the binary (and tests)
//! open a [`NatsBus`].

mod bundle;
mod codec;
mod consumer;
mod error;
mod naming;
mod options;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::object_store::{self, ObjectStore};
use async_nats::jetstream::response::Response;
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, ErrorCode};
use async_nats::{Client, ConnectOptions, Event, HeaderMap};
use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use error::NatsError;
use naming::Names;
use spindle_common::bus::{Bus, BusError, Consumer, ConsumerSpec, ConsumerStats, first_error};
use spindle_common::message::Message;

pub use options::NatsOptions;

/// First pause between two attempts of something that failed for want of the server.
const RETRY_FIRST: Duration = Duration::from_millis(100);
/// Longest pause between two such attempts.
const RETRY_MAX: Duration = Duration::from_secs(2);

/// The [`Bus`] on NATS JetStream. Cheap to clone; clones share one connection.
#[derive(Clone)]
pub struct NatsBus {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBus")
            .field("url", &self.shared.options.url)
            .field("namespace", &self.shared.options.namespace)
            .finish_non_exhaustive()
    }
}

/// What every handle of one bus shares.
pub(crate) struct Shared {
    client: Client,
    js: jetstream::Context,
    names: Names,
    options: NatsOptions,
    /// Bumped on every (re)connection: pull requests sent before it are gone.
    connections: watch::Receiver<u64>,
    /// Bucket of bodies too large for a message.
    bodies: ObjectStore,
    /// Stream of each durable opened through this bus, so `stats` asks one stream.
    durables: Mutex<HashMap<String, &'static str>>,
    /// Bundles small messages published close together.
    bundler: bundle::Bundler,
}

/// A message ready for the wire, with its message id so a retry is stored once.
struct Prepared {
    subject: String,
    headers: HeaderMap,
    payload: Bytes,
}

impl Prepared {
    /// A message on the wire subject `subject`, with a fresh message id added to `headers`.
    fn new(subject: String, mut headers: HeaderMap, payload: Bytes) -> Self {
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            nuid::next().to_string().as_str(),
        );
        Self {
            subject,
            headers,
            payload,
        }
    }

    /// Its message id.
    fn id(&self) -> &str {
        self.headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map_or("", |v| v.as_str())
    }
}

impl NatsBus {
    /// Connects to the server at `options.url` and creates or updates the streams and the
    /// bodies bucket, retrying while the server is unreachable for up to
    /// `options.connect_timeout`. The connection then reconnects forever on its own.
    pub async fn connect(options: NatsOptions) -> Result<NatsBus, BusError> {
        let names = Names::new(options.namespace.as_deref())?;
        let (connected, connections) = watch::channel(0u64);
        let connected = Arc::new(connected);
        let max_delay = options.reconnect_delay_max;
        let mut connect = ConnectOptions::new()
            // Return at once and connect in the background: set-up below waits for the server
            // with its own deadline, and a later outage is survived the same way.
            .retry_on_initial_connect()
            .max_reconnects(None)
            .reconnect_delay_callback(move |attempts| backoff(attempts, max_delay))
            .request_timeout(Some(options.request_timeout))
            .event_callback(move |event| {
                let connected = connected.clone();
                async move {
                    match event {
                        Event::Connected => {
                            info!("connected to NATS");
                            connected.send_modify(|n| *n += 1);
                        }
                        Event::Disconnected => warn!("disconnected from NATS; reconnecting"),
                        Event::ServerError(e) => warn!(error = %e, "NATS server error"),
                        Event::ClientError(e) => warn!(error = %e, "NATS client error"),
                        Event::SlowConsumer(sid) => {
                            warn!(sid, "NATS subscription too slow; messages dropped")
                        }
                        other => debug!(event = %other, "NATS event"),
                    }
                }
            });
        if let Some(name) = &options.client_name {
            connect = connect.name(name);
        }
        let client = connect
            .connect(options.url.as_str())
            .await
            .map_err(|e| NatsError::unreachable(format!("connecting to {}", options.url), e))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(options.request_timeout)
            .build(client.clone());

        let deadline = options.connect_timeout.map(|t| Instant::now() + t);
        let mut attempt = 0u32;
        let bodies = loop {
            match setup(&js, &names, &options).await {
                Ok(bodies) => break bodies,
                Err(NatsError::Unreachable { what, detail })
                    if deadline.is_none_or(|d| Instant::now() < d) =>
                {
                    attempt += 1;
                    warn!(%what, %detail, url = %options.url, "NATS not ready; retrying");
                    tokio::time::sleep(retry_delay(attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        let linger = options.bundle_linger;
        Ok(NatsBus {
            shared: Arc::new_cyclic(|shared| Shared {
                client,
                js,
                names,
                options,
                connections,
                bodies,
                durables: Mutex::new(HashMap::new()),
                bundler: bundle::Bundler::start(shared.clone(), linger),
            }),
        })
    }

    /// Deletes this bus's streams and bodies bucket, with everything in them. For tests and
    /// tearing down a namespace; never called by the services.
    pub async fn delete_streams(&self) -> Result<(), BusError> {
        let shared = &self.shared;
        for stream in naming::layout() {
            let name = shared.names.name(stream.name);
            delete_stream(&shared.js, &name).await?;
        }
        delete_stream(&shared.js, &format!("OBJ_{}", shared.names.bucket())).await
    }

    /// Sends everything buffered to the server; call before exiting.
    pub async fn flush(&self) -> Result<(), BusError> {
        self.shared
            .client
            .flush()
            .await
            .map_err(|e| NatsError::unreachable("flushing", e).into())
    }

    /// The largest payload the server accepts, as last announced by it.
    pub fn max_payload(&self) -> usize {
        self.shared.client.max_payload()
    }
}

/// Waits for every queued message to be stored; the first error, after all have answered.
async fn settle_all(
    queued: Vec<tokio::sync::oneshot::Receiver<Result<(), BusError>>>,
) -> Result<(), BusError> {
    use futures::StreamExt;
    first_error(
        futures::stream::iter(queued)
            .then(|answer| async { answer.await.unwrap_or(Err(BusError::Closed)) }),
    )
    .await
}

/// Deletes one stream; a missing stream is fine.
async fn delete_stream(js: &jetstream::Context, name: &str) -> Result<(), BusError> {
    let answer: Response<serde_json::Value> = js
        .request(format!("STREAM.DELETE.{name}"), &serde_json::json!({}))
        .await
        .map_err(|e| NatsError::unreachable(format!("deleting stream {name}"), e))?;
    match answer {
        Response::Err { error } if error.error_code() != ErrorCode::STREAM_NOT_FOUND => {
            Err(NatsError::Refused {
                what: format!("deleting stream {name}"),
                source: error,
            }
            .into())
        }
        _ => Ok(()),
    }
}

/// Reconnect delay: immediately, then doubling from 100 ms up to `max`.
fn backoff(attempts: usize, max: Duration) -> Duration {
    if attempts <= 1 {
        return Duration::ZERO;
    }
    let exp = u32::try_from(attempts - 2).unwrap_or(u32::MAX).min(16);
    (Duration::from_millis(100) * 2u32.pow(exp)).min(max)
}

/// Pause before retry number `attempt` (from 1) of an operation waiting for the server.
fn retry_delay(attempt: u32) -> Duration {
    (RETRY_FIRST * 2u32.saturating_pow(attempt.saturating_sub(1).min(8))).min(RETRY_MAX)
}

/// Creates or updates every stream and the bodies bucket.
async fn setup(
    js: &jetstream::Context,
    names: &Names,
    options: &NatsOptions,
) -> Result<ObjectStore, NatsError> {
    for layout in naming::layout() {
        let config = stream::Config {
            name: names.name(layout.name),
            description: Some(format!(
                "Spindle {}: work queue",
                layout
                    .stages
                    .iter()
                    .map(|s| s.token())
                    .collect::<Vec<_>>()
                    .join(" + ")
            )),
            subjects: layout.subjects().iter().map(|s| names.subject(s)).collect(),
            retention: RetentionPolicy::WorkQueue,
            storage: StorageType::File,
            max_bytes: options.stream_max_bytes,
            max_age: options.stream_max_age,
            // A full stream refuses new messages; dropping old ones would lose work silently.
            discard: DiscardPolicy::New,
            duplicate_window: options.duplicate_window,
            num_replicas: 1,
            ..Default::default()
        };
        create_or_update_stream(js, config).await?;
    }
    bodies_bucket(js, names, options).await
}

/// Updates a stream to `config`, creating it if missing.
async fn create_or_update_stream(
    js: &jetstream::Context,
    config: stream::Config,
) -> Result<(), NatsError> {
    let what = format!("setting up stream {}", config.name);
    let updated: Response<stream::Info> = js
        .request(format!("STREAM.UPDATE.{}", config.name), &config)
        .await
        .map_err(|e| NatsError::unreachable(&what, e))?;
    let error = match updated {
        Response::Ok(_) => return Ok(()),
        Response::Err { error } if error.error_code() == ErrorCode::STREAM_NOT_FOUND => {
            let created: Response<stream::Info> = js
                .request(format!("STREAM.CREATE.{}", config.name), &config)
                .await
                .map_err(|e| NatsError::unreachable(&what, e))?;
            match created {
                Response::Ok(_) => return Ok(()),
                Response::Err { error } => error,
            }
        }
        Response::Err { error } => error,
    };
    // A server answering 503 has JetStream still starting: worth waiting for.
    if error.code() == 503 {
        return Err(NatsError::unreachable(what, error));
    }
    Err(NatsError::Refused {
        what,
        source: error,
    })
}

/// The bucket of large bodies. Its TTL outlives the streams' so a body never expires before
/// the message referring to it; bodies are normally deleted once their message is acked.
async fn bodies_bucket(
    js: &jetstream::Context,
    names: &Names,
    options: &NatsOptions,
) -> Result<ObjectStore, NatsError> {
    let bucket = names.bucket();
    let max_age = if options.stream_max_age.is_zero() {
        Duration::ZERO
    } else {
        options.stream_max_age + Duration::from_secs(24 * 3600)
    };
    let config = object_store::Config {
        bucket: bucket.clone(),
        description: Some("Spindle message bodies too large for one message".to_owned()),
        max_age,
        max_bytes: options.stream_max_bytes,
        storage: StorageType::File,
        num_replicas: 1,
        ..Default::default()
    };
    match js.create_object_store(config).await {
        Ok(store) => Ok(store),
        Err(create) => {
            // Already there (perhaps with other limits): use it as it is.
            js.get_object_store(&bucket).await.map_err(|get| {
                NatsError::unreachable(
                    format!("setting up bucket {bucket}"),
                    format!("{create}; {get}"),
                )
            })
        }
    }
}

impl Shared {
    /// Payloads up to this size travel as they are.
    fn plain_limit(&self) -> usize {
        self.client
            .max_payload()
            .saturating_sub(codec::HEADER_RESERVE)
    }

    /// Prepares a body above [`Shared::plain_limit`]: compressed, and moved to the bodies
    /// bucket if still too large.
    async fn prepare_large(&self, subject: String, json: Vec<u8>) -> Result<Prepared, BusError> {
        // Compressing megabytes takes tens of milliseconds: off the async workers.
        let packed = tokio::task::spawn_blocking(move || codec::gzip(&json))
            .await
            .map_err(|e| BusError::Codec(format!("compressing: {e}")))?
            .map_err(|e| BusError::Codec(format!("compressing: {e}")))?;
        let mut headers = HeaderMap::new();
        headers.insert(codec::ENCODING, codec::GZIP);
        if packed.len() <= self.plain_limit() {
            return Ok(Prepared::new(subject, headers, Bytes::from(packed)));
        }
        let mut prepared = Prepared::new(subject, headers, Bytes::new());
        // The object is named after the message id: unique, and a retried publish refers to
        // the same object. If the publish finally fails the object is left for the bucket's
        // TTL, as the message may have been stored after all.
        let id = prepared.id().to_owned();
        self.put_body(&id, &packed).await?;
        prepared.headers.insert(codec::OBJECT, id.as_str());
        Ok(prepared)
    }

    /// Writes a prepared message to the connection; the returned future resolves with the
    /// stream's ack.
    async fn send(
        &self,
        prepared: &Prepared,
    ) -> Result<jetstream::context::PublishAckFuture, jetstream::context::PublishError> {
        self.js
            .send_publish(
                prepared.subject.clone(),
                jetstream::message::PublishMessage::build()
                    .headers(prepared.headers.clone())
                    .payload(prepared.payload.clone()),
            )
            .await
    }

    /// Publishes one prepared message, retrying until `publish_timeout`. Retries reuse the
    /// message id, so the stream's duplicate window stores it once even if an earlier attempt
    /// was stored and only its acknowledgement was lost.
    async fn publish_raw(&self, prepared: &Prepared) -> Result<(), BusError> {
        let subject = prepared.subject.as_str();
        let deadline = Instant::now() + self.options.publish_timeout;
        let mut attempt = 0u32;
        loop {
            let failure = match self.send(prepared).await {
                Ok(ack) => match ack.await {
                    Ok(ack) => {
                        if ack.duplicate {
                            debug!(subject, "publish retry was a duplicate");
                        }
                        return Ok(());
                    }
                    Err(e) => e.to_string(),
                },
                Err(e) => {
                    use jetstream::context::PublishErrorKind as Kind;
                    if matches!(e.kind(), Kind::MaxPayloadExceeded) {
                        return Err(BusError::Transport(format!("publish: {e}")));
                    }
                    e.to_string()
                }
            };
            attempt += 1;
            let pause = retry_delay(attempt);
            if Instant::now() + pause >= deadline {
                return Err(BusError::Transport(format!(
                    "publish on {subject} failed for {:?}: {failure}",
                    self.options.publish_timeout
                )));
            }
            debug!(subject, error = %failure, attempt, "publish failed; retrying");
            tokio::time::sleep(pause).await;
        }
    }

    /// Stores a large body in the bucket under `name`, retrying until `publish_timeout`.
    async fn put_body(&self, name: &str, body: &[u8]) -> Result<(), BusError> {
        let deadline = Instant::now() + self.options.publish_timeout;
        let mut attempt = 0u32;
        loop {
            let mut reader = body;
            match self.bodies.put(name, &mut reader).await {
                Ok(_) => return Ok(()),
                Err(e) => {
                    attempt += 1;
                    let pause = retry_delay(attempt);
                    if Instant::now() + pause >= deadline {
                        return Err(BusError::Transport(format!("storing a large body: {e}")));
                    }
                    debug!(error = %e, attempt, "storing a large body failed; retrying");
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
}

#[async_trait]
impl Bus for NatsBus {
    async fn publish(&self, subject: &str, message: Message) -> Result<(), BusError> {
        self.publish_batch(vec![(subject.to_owned(), message)])
            .await
    }

    /// Small messages are queued for the bundler, in order; a large one is published on its
    /// own once every message before it in the batch is stored, so order is kept.
    async fn publish_batch(&self, messages: Vec<(String, Message)>) -> Result<(), BusError> {
        let shared = &self.shared;
        let limit = shared.plain_limit();
        let mut queued = Vec::with_capacity(messages.len());
        for (subject, message) in messages {
            let Some(stream) = naming::stream_of(&subject) else {
                return Err(NatsError::Subject(subject).into());
            };
            let wire_subject = shared.names.subject(&subject);
            let json = message
                .to_bytes()
                .map_err(|e| BusError::Codec(e.to_string()))?;
            if json.len() <= limit {
                queued.push(shared.bundler.queue(stream, wire_subject, json));
                continue;
            }
            settle_all(std::mem::take(&mut queued)).await?;
            let prepared = shared.prepare_large(wire_subject, json).await?;
            shared.publish_raw(&prepared).await?;
        }
        settle_all(queued).await
    }

    async fn consume(&self, spec: ConsumerSpec) -> Result<Box<dyn Consumer>, BusError> {
        let consumer = consumer::NatsConsumer::open(self.shared.clone(), spec).await?;
        Ok(Box::new(consumer))
    }

    async fn broadcast(&self, subject: &str, payload: Vec<u8>) -> Result<(), BusError> {
        // Core NATS: at most once and not stored, which is what an event is.
        self.shared
            .client
            .publish(self.shared.names.subject(subject), payload.into())
            .await
            .map_err(|e| BusError::Transport(format!("broadcast on {subject}: {e}")))
    }

    async fn listen(
        &self,
        filter: &str,
    ) -> Result<futures::stream::BoxStream<'static, (String, Vec<u8>)>, BusError> {
        use futures::StreamExt;
        let subscriber = self
            .shared
            .client
            .subscribe(self.shared.names.subject(filter))
            .await
            .map_err(|e| BusError::Transport(format!("listen on {filter}: {e}")))?;
        let names = self.shared.names.clone();
        Ok(subscriber
            .map(move |m| {
                (
                    names.unprefix(m.subject.as_str()).to_owned(),
                    m.payload.to_vec(),
                )
            })
            .boxed())
    }

    async fn stats(&self, durable: &str) -> Result<ConsumerStats, BusError> {
        let shared = &self.shared;
        if naming::check_durable(durable).is_err() {
            // Such a consumer cannot exist.
            return Ok(ConsumerStats::default());
        }
        let known = shared
            .durables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(durable)
            .copied();
        // A durable opened elsewhere (another process) is looked for in every stream.
        let streams: Vec<&'static str> = match known {
            Some(stream) => vec![stream],
            None => naming::layout().into_iter().map(|l| l.name).collect(),
        };
        let consumer = shared.names.name(durable);
        let mut stats = ConsumerStats::default();
        for stream in streams {
            let stream = shared.names.name(stream);
            let answer: Response<jetstream::consumer::Info> = shared
                .js
                .request(
                    format!("CONSUMER.INFO.{stream}.{consumer}"),
                    &serde_json::json!({}),
                )
                .await
                .map_err(|e| NatsError::unreachable(format!("consumer info of {durable}"), e))?;
            match answer {
                Response::Ok(info) => {
                    stats.pending += info.num_pending;
                    stats.in_flight += info.num_ack_pending as u64;
                }
                Response::Err { error }
                    if error.error_code() == ErrorCode::CONSUMER_NOT_FOUND
                        || error.error_code() == ErrorCode::STREAM_NOT_FOUND => {}
                Response::Err { error } => {
                    return Err(NatsError::Refused {
                        what: format!("consumer info of {durable}"),
                        source: error,
                    }
                    .into());
                }
            }
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_backoff_doubles_to_its_cap() {
        let max = Duration::from_secs(5);
        assert_eq!(backoff(0, max), Duration::ZERO);
        assert_eq!(backoff(1, max), Duration::ZERO);
        assert_eq!(backoff(2, max), Duration::from_millis(100));
        assert_eq!(backoff(3, max), Duration::from_millis(200));
        assert_eq!(backoff(100, max), max);
        assert_eq!(retry_delay(1), RETRY_FIRST);
        assert_eq!(retry_delay(50), RETRY_MAX);
    }
}
