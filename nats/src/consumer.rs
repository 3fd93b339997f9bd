//! One handle on a durable pull consumer: pulls on demand, bounds what it holds, and keeps
//! every message it has received across cancelled calls.
//!
//! # Pulling
//!
//! A handle asks the server for messages only while [`Consumer::next`] is waiting and its local
//! buffer is empty, and never for more than its free slots: `max_in_flight` minus the
//! deliveries it has handed out and not yet settled, minus what its outstanding pull requests
//! may still bring. So a slow caller never has a prefetched pile ageing past `ack_wait` (the
//! trap of `messages()`, which prefetches 200). The bound is per handle, so every instance of a
//! role adds its own capacity; the server caps the whole durable at [`DURABLE_IN_FLIGHT`]
//! (`max_ack_pending`), the same for every instance so that none overwrites another's setting.
//!
//! Requests go out with a unique reply subject under the handle's inbox, so the server's
//! status answers (408 expired, 409 refused, 503 no JetStream) tell which request ended.
//! Messages are matched to requests oldest first, the order in which the server fills them.
//!
//! # Cancel safety
//!
//! A background task moves everything received from the subscription into a channel, stamped
//! with its arrival time. `next` only takes from that channel, awaits the stored job of a large
//! body, or awaits a publish that either happened or did not: dropping the future at any await
//! loses nothing. A message that has waited in the buffer long enough to eat into its ack wait
//! gets a progress ack (resetting the server's timer) when handed out; one older than three
//! quarters of the ack wait is left to the server to redeliver.
//!
//! # Bundles
//!
//! A bundle (see [`bundle`]) is unpacked on arrival; its parts wait in a queue and are handed
//! out, one delivery each and each taking a slot, before anything received after them. Pull
//! requests ask for messages while slots count deliveries, so a request asks for the free
//! slots divided by the average number of deliveries per message received so far.
//!
//! Dropping a handle gives back (nak) what it received and never handed out. Messages the
//! server sends to a dropped handle's outstanding requests come back after their ack wait.
//!
//! # Settling
//!
//! `ack` and `nack` wait for the server's confirmation when [`NatsOptions::confirm_acks`] is
//! set (default), falling back to a plain ack after [`NatsOptions::ack_timeout`]: a lost ack
//! only causes a redelivery, which the contract allows. A message that cannot be decoded is
//! logged and terminated so it is never redelivered in a loop.
//!
//! [`NatsOptions::confirm_acks`]: crate::NatsOptions::confirm_acks
//! [`NatsOptions::ack_timeout`]: crate::NatsOptions::ack_timeout

mod ack;
mod budget;
mod large;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::{StatusCode, Subject, Subscriber};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, error, warn};

pub(crate) use self::ack::send_ack;
use self::ack::{NatsAcker, PartAcker, SlotGuard, Slots, redeliveries};
use self::budget::PullBudget;
use self::large::{Decoded, Failure, decode_large};
use crate::bundle::{self, Bundle};
use crate::codec::{self, Wire};
use crate::error::NatsError;
use crate::{Shared, naming, retry_delay};
use spindle_common::bus::{BusError, Consumer, ConsumerSpec, Delivery};

/// Pause before asking again after the server refused a pull request or is not ready.
const HOLD: Duration = Duration::from_secs(1);
/// Delay of a redelivery when a large body could not be fetched.
const UNAVAILABLE_RETRY: Duration = Duration::from_secs(1);
/// Unacknowledged messages of one durable across all its handles, at most: room for a few
/// hundred instances at the default in-flight bound, and still a bound on the server.
pub(crate) const DURABLE_IN_FLIGHT: usize = 65_536;

/// A message as it came off the subscription.
struct Arrival {
    at: Instant,
    message: async_nats::Message,
}

/// One part of a delivered bundle, waiting to be handed out.
struct Part {
    subject: String,
    json: Bytes,
    bundle: Arc<Bundle>,
    redeliveries: u32,
}

/// What woke a waiting `next`.
enum Woke {
    Arrival(Option<Arrival>),
    Reconnected,
    Other,
}

/// A handle on a durable pull consumer; see the module documentation.
pub(crate) struct NatsConsumer {
    shared: Arc<Shared>,
    /// Spindle's durable name, for logs.
    durable: String,
    /// The consumer's configuration, to create it again if it is deleted under us.
    config: pull::Config,
    /// Stream name on the server.
    stream: String,
    /// Where pull requests go.
    next_subject: String,
    max_in_flight: usize,
    ack_wait: Duration,
    /// Prefix of this handle's reply subjects.
    inbox: String,
    /// Outstanding pull requests and what they may still bring.
    budget: PullBudget,
    arrivals: mpsc::UnboundedReceiver<Arrival>,
    reader: JoinHandle<()>,
    slots: Arc<Slots>,
    connections: Option<watch::Receiver<u64>>,
    /// The consumer was deleted: create it again before pulling.
    recreate: bool,
    /// A large body being fetched or decompressed; handed out before anything newer.
    decoding: Option<JoinHandle<Decoded>>,
    /// Parts of bundles received and not yet handed out, oldest first; handed out before
    /// anything newer.
    ready: VecDeque<Part>,
}

impl NatsConsumer {
    /// Creates or updates the durable consumer of `spec` and opens a handle on it.
    pub(crate) async fn open(shared: Arc<Shared>, spec: ConsumerSpec) -> Result<Self, BusError> {
        naming::check_durable(&spec.durable)?;
        let binding = naming::bind(&spec.filters)?;
        let stream = shared.names.name(binding.stream);
        let name = shared.names.name(&spec.durable);
        let max_in_flight = spec.max_in_flight.max(1);
        let config = pull::Config {
            durable_name: Some(name.clone()),
            description: Some(format!("Spindle {}", spec.durable)),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: spec.ack_wait,
            max_ack_pending: i64::try_from(max_in_flight.max(DURABLE_IN_FLIGHT))
                .unwrap_or(i64::MAX),
            filter_subject: binding
                .filter
                .as_deref()
                .map(|f| shared.names.subject(f))
                .unwrap_or_default(),
            ..Default::default()
        };
        ensure_consumer(&shared, &config, &stream, shared.options.publish_timeout).await?;
        shared
            .durables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(spec.durable.clone(), binding.stream);

        let inbox = shared.client.new_inbox();
        let subscriber = shared
            .client
            .subscribe(format!("{inbox}.*"))
            .await
            .map_err(|e| NatsError::unreachable("subscribing to the pull inbox", e))?;
        let (tx, arrivals) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read(subscriber, tx));
        Ok(Self {
            next_subject: format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{name}"),
            connections: Some(shared.connections.clone()),
            shared,
            durable: spec.durable,
            config,
            stream,
            max_in_flight,
            ack_wait: spec.ack_wait,
            inbox,
            budget: PullBudget::new(max_in_flight),
            arrivals,
            reader,
            slots: Arc::new(Slots {
                held: AtomicUsize::new(0),
                freed: Notify::new(),
            }),
            recreate: false,
            decoding: None,
            ready: VecDeque::new(),
        })
    }

    /// Takes one arrival: a status ends a request, a message becomes a delivery (or a job
    /// decoding its large body, or nothing if it cannot be used).
    fn accept(&mut self, arrival: Arrival) -> Option<Delivery> {
        let Arrival { at, message } = arrival;
        if let Some(status) = message.status
            && status != StatusCode::OK
        {
            self.on_status(&message, status);
            return None;
        }
        self.budget.received();
        let Some(reply) = message.reply.clone() else {
            warn!(durable = %self.durable, subject = %message.subject, "message without an ack subject ignored");
            return None;
        };
        let age = at.elapsed();
        if age >= self.ack_wait * 3 / 4 {
            // The server is about to redeliver it (perhaps to another handle): leave it.
            debug!(durable = %self.durable, ?age, "dropping a message that waited too long in the buffer");
            return None;
        }
        let payload = match codec::unpacked(
            message.headers.as_ref(),
            &message.payload,
            self.shared.plain_limit(),
        ) {
            Ok(payload) => payload,
            Err(reason) => {
                error!(durable = %self.durable, subject = %message.subject, %reason, "unreadable message terminated");
                self.settle_later(reply, AckKind::Term);
                return None;
            }
        };
        if let Some(count) = bundle::parts_of(message.headers.as_ref()) {
            self.unbundle(message, &payload, reply, count, at);
            return None;
        }
        self.budget.count_deliveries(1);
        if age > self.ack_wait / 10 {
            // It waited here: give the caller its full ack wait.
            self.settle_later(reply, AckKind::Progress);
        }
        match codec::wire_of(message.headers.as_ref()) {
            Wire::Plain => {
                let body = codec::decode(&payload, false).map_err(Failure::Bad);
                self.finish(Decoded {
                    message,
                    body,
                    object: None,
                })
            }
            wire => {
                self.decoding = Some(tokio::spawn(decode_large(
                    self.shared.bodies.clone(),
                    message,
                    wire,
                )));
                None
            }
        }
    }

    /// Queues the parts of a bundle, or terminates it if it cannot be read.
    fn unbundle(
        &mut self,
        message: async_nats::Message,
        payload: &Bytes,
        reply: Subject,
        count: Result<usize, String>,
        at: Instant,
    ) {
        let subject = self
            .shared
            .names
            .unprefix(message.subject.as_str())
            .to_owned();
        let parts = match count.and_then(|n| bundle::unpack(payload, n)) {
            Ok(parts) => parts,
            Err(reason) => {
                error!(durable = %self.durable, %subject, %reason, "unreadable bundle terminated");
                self.settle_later(reply, AckKind::Term);
                return;
            }
        };
        self.budget.count_deliveries(parts.len());
        let redeliveries = redeliveries(&self.shared, message);
        let bundle = Arc::new(Bundle::new(self.shared.clone(), reply, parts.len(), at));
        self.ready.extend(parts.into_iter().map(|json| Part {
            subject: subject.clone(),
            json,
            bundle: bundle.clone(),
            redeliveries,
        }));
    }

    /// Hands out one queued part, or settles it if it cannot be decoded.
    fn hand_out(&mut self, part: Part) -> Option<Delivery> {
        if let Some(reply) = part.bundle.progress_due(self.ack_wait / 10) {
            // Its bundle waited here: give the caller its full ack wait.
            self.settle_later(reply.clone(), AckKind::Progress);
        }
        match codec::decode(&part.json, false) {
            Ok(message) => Some(Delivery::new(
                part.subject,
                Arc::new(message),
                part.redeliveries,
                Box::new(PartAcker {
                    bundle: part.bundle,
                    _slot: SlotGuard::take(&self.slots),
                }),
            )),
            Err(reason) => {
                // Settled as done, so the rest of its bundle is not redelivered for it.
                error!(durable = %self.durable, subject = %part.subject, %reason, "undecodable part of a bundle dropped");
                tokio::spawn(async move { part.bundle.settle(None).await });
                None
            }
        }
    }

    /// Turns a decoded message into a delivery, or settles it if it cannot be used.
    fn finish(&mut self, decoded: Decoded) -> Option<Delivery> {
        let Decoded {
            message,
            body,
            object,
        } = decoded;
        let reply = message.reply.clone()?;
        let subject = self
            .shared
            .names
            .unprefix(message.subject.as_str())
            .to_owned();
        match body {
            Ok(body) => {
                let redeliveries = redeliveries(&self.shared, message);
                let acker = NatsAcker {
                    shared: self.shared.clone(),
                    reply,
                    object,
                    _slot: SlotGuard::take(&self.slots),
                };
                Some(Delivery::new(
                    subject,
                    Arc::new(body),
                    redeliveries,
                    Box::new(acker),
                ))
            }
            Err(Failure::Bad(reason)) => {
                error!(durable = %self.durable, %subject, %reason, "undecodable message terminated");
                self.settle_later(reply, AckKind::Term);
                if let Some(name) = object {
                    let bodies = self.shared.bodies.clone();
                    tokio::spawn(async move {
                        if let Err(e) = bodies.delete(&name).await {
                            debug!(error = %e, object = %name, "body of a terminated message not deleted");
                        }
                    });
                }
                None
            }
            Err(Failure::Unavailable(reason)) => {
                warn!(durable = %self.durable, %subject, %reason, "large body unavailable; redelivering later");
                self.settle_later(reply, AckKind::Nak(Some(UNAVAILABLE_RETRY)));
                None
            }
        }
    }

    /// Sends an ack of some kind without waiting, so no await in `next` sits between taking a
    /// message and handing it out.
    fn settle_later(&self, reply: Subject, kind: AckKind) {
        let client = self.shared.client.clone();
        tokio::spawn(async move {
            if let Err(e) = client.publish(reply, kind.into()).await {
                debug!(error = %e, "ack not sent; the server will redeliver");
            }
        });
    }

    /// A status answer to one of our pull requests.
    fn on_status(&mut self, message: &async_nats::Message, status: StatusCode) {
        let id = message
            .subject
            .as_str()
            .rsplit('.')
            .next()
            .and_then(|t| t.parse::<u64>().ok());
        if let Some(id) = id {
            self.budget.ended(id);
        }
        let description = message.description.as_deref().unwrap_or("");
        match status.as_u16() {
            // Heartbeat (not asked for), no messages, request expired: ask again when needed.
            100 | 404 | 408 => {}
            409 if description.to_ascii_lowercase().contains("deleted") => {
                warn!(durable = %self.durable, "consumer deleted on the server; creating it again");
                self.recreate = true;
            }
            503 => {
                // No responder: JetStream is still starting, or the consumer is gone (a server
                // that lost its state). Creating it is idempotent, so try that before pulling.
                debug!(durable = %self.durable, "no responder for a pull request");
                self.recreate = true;
                self.budget.hold(Instant::now() + HOLD);
            }
            code => {
                // Refused (too many waiting requests, JetStream not ready, ...): wait a little
                // rather than asking again in a tight loop.
                debug!(durable = %self.durable, code, description, "pull request refused");
                self.budget.hold(Instant::now() + HOLD);
            }
        }
    }

    /// Sends a pull request for the free slots not already covered by outstanding requests.
    async fn request_more(&mut self) -> Result<(), BusError> {
        if self.budget.holding(Instant::now()) {
            return Ok(());
        }
        if self.recreate {
            // Idempotent, so a cancelled attempt is simply made again.
            // One attempt: `next` must not stall on it; the hold paces further attempts.
            match ensure_consumer(&self.shared, &self.config, &self.stream, Duration::ZERO).await {
                Ok(()) => self.recreate = false,
                Err(e) => {
                    warn!(durable = %self.durable, error = %e, "creating the consumer again failed");
                    self.budget.hold(Instant::now() + HOLD);
                    return Ok(());
                }
            }
        }
        let Some(planned) = self.budget.plan(self.slots.held() + self.ready.len()) else {
            return Ok(());
        };
        let expires = self.shared.options.pull_expires;
        let body = serde_json::json!({
            "batch": planned.batch,
            "expires": u64::try_from(expires.as_nanos()).unwrap_or(u64::MAX),
        });
        // One channel send: either it happened or, if this future is dropped, it did not.
        self.shared
            .client
            .publish_with_reply(
                self.next_subject.clone(),
                format!("{}.{}", self.inbox, planned.id),
                Bytes::from(body.to_string()),
            )
            .await
            .map_err(|e| BusError::Transport(format!("pull request: {e}")))?;
        self.budget.sent(planned, Instant::now(), expires);
        Ok(())
    }

    /// After a reconnection the server has no request of ours any more.
    fn reconnected(&mut self) {
        debug!(durable = %self.durable, "reconnected; pulling again");
        self.budget.reset();
    }
}

#[async_trait]
impl Consumer for NatsConsumer {
    async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        loop {
            if let Some(connections) = &mut self.connections {
                match connections.has_changed() {
                    Ok(true) => {
                        connections.borrow_and_update();
                        self.reconnected();
                    }
                    Ok(false) => {}
                    Err(_) => self.connections = None,
                }
            }
            self.budget.expire(Instant::now());

            // Registered before looking, so a slot freed in between is not missed.
            let slots = self.slots.clone();
            let freed = slots.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if slots.held() >= self.max_in_flight {
                freed.await;
                continue;
            }

            // What was received goes out in order: queued parts, then a large body being
            // read, then new arrivals.
            if let Some(part) = self.ready.pop_front() {
                if let Some(delivery) = self.hand_out(part) {
                    return Some(Ok(delivery));
                }
                continue;
            }
            if let Some(job) = self.decoding.as_mut() {
                let done = job.await;
                self.decoding = None;
                match done {
                    Ok(decoded) => {
                        if let Some(delivery) = self.finish(decoded) {
                            return Some(Ok(delivery));
                        }
                    }
                    // The server redelivers the message after its ack wait.
                    Err(e) => {
                        error!(durable = %self.durable, error = %e, "decoding a large body failed")
                    }
                }
                continue;
            }

            match self.arrivals.try_recv() {
                Ok(arrival) => {
                    if let Some(delivery) = self.accept(arrival) {
                        return Some(Ok(delivery));
                    }
                    continue;
                }
                Err(mpsc::error::TryRecvError::Empty) => {}
                // The subscription ended: the connection is closed for good.
                Err(mpsc::error::TryRecvError::Disconnected) => return None,
            }

            if let Err(e) = self.request_more().await {
                return Some(Err(e));
            }

            let wake = self.budget.next_wake();
            let woke = tokio::select! {
                arrival = self.arrivals.recv() => Woke::Arrival(arrival),
                () = &mut freed => Woke::Other,
                () = sleep_until(wake) => Woke::Other,
                () = changed(&mut self.connections) => Woke::Reconnected,
            };
            match woke {
                Woke::Arrival(Some(arrival)) => {
                    if let Some(delivery) = self.accept(arrival) {
                        return Some(Ok(delivery));
                    }
                }
                Woke::Arrival(None) => return None,
                Woke::Reconnected => self.reconnected(),
                Woke::Other => {}
            }
        }
    }
}

impl Drop for NatsConsumer {
    fn drop(&mut self) {
        self.reader.abort();
        // Give back what this handle received but never handed out, so another handle gets it
        // now rather than after its ack wait.
        let mut replies = Vec::new();
        while let Ok(arrival) = self.arrivals.try_recv() {
            if arrival.message.status.is_none()
                && let Some(reply) = arrival.message.reply
            {
                replies.push(reply);
            }
        }
        let job = self.decoding.take();
        let parts: Vec<Part> = self.ready.drain(..).collect();
        if replies.is_empty() && job.is_none() && parts.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let client = self.shared.client.clone();
        runtime.spawn(async move {
            if let Some(job) = job
                && let Ok(decoded) = job.await
                && let Some(reply) = decoded.message.reply
            {
                replies.push(reply);
            }
            for reply in replies {
                if let Err(e) = client.publish(reply, AckKind::Nak(None).into()).await {
                    debug!(error = %e, "nak on drop not sent; the server will redeliver");
                }
            }
            // Its bundle is given back once the parts handed out are settled too.
            for part in parts {
                if let Err(e) = part.bundle.settle(Some(Duration::ZERO)).await {
                    debug!(error = %e, "nak on drop not sent; the server will redeliver");
                }
            }
        });
    }
}

/// Creates the consumer, or updates it to `config`; retries while the server is unreachable,
/// for up to `patience`.
async fn ensure_consumer(
    shared: &Shared,
    config: &pull::Config,
    stream: &str,
    patience: Duration,
) -> Result<(), BusError> {
    use async_nats::jetstream::stream::ConsumerErrorKind as Kind;
    let what = format!(
        "creating consumer {} on {stream}",
        config.durable_name.as_deref().unwrap_or("")
    );
    let deadline = Instant::now() + patience;
    let mut attempt = 0u32;
    loop {
        let failure = match shared
            .js
            .create_consumer_on_stream(config.clone(), stream)
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) => match e.kind() {
                Kind::JetStream(source) if source.code() != 503 => {
                    return Err(NatsError::Refused { what, source }.into());
                }
                Kind::InvalidName | Kind::InvalidConsumerType => {
                    return Err(NatsError::unreachable(what, e).into());
                }
                _ => e.to_string(),
            },
        };
        attempt += 1;
        let pause = retry_delay(attempt);
        if Instant::now() + pause >= deadline {
            return Err(NatsError::unreachable(what, failure).into());
        }
        debug!(%what, error = %failure, "retrying");
        tokio::time::sleep(pause).await;
    }
}

/// Moves everything the subscription receives into `tx`, stamped with its arrival time.
async fn read(mut subscriber: Subscriber, tx: mpsc::UnboundedSender<Arrival>) {
    while let Some(message) = subscriber.next().await {
        let arrival = Arrival {
            at: Instant::now(),
            message,
        };
        if tx.send(arrival).is_err() {
            break;
        }
    }
}

/// Sleeps until `at`, or forever.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Resolves on the next (re)connection; never if the bus's connection is gone.
async fn changed(connections: &mut Option<watch::Receiver<u64>>) {
    if let Some(rx) = connections
        && rx.changed().await.is_ok()
    {
        return;
    }
    std::future::pending().await
}
