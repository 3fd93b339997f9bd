//! The in-process bus of the embedded mode.
//!
//! Same contract as JetStream (see [`crate::bus`]): durable consumers shared by handles,
//! explicit ack, redelivery after `ack_wait`, nack with delay, bounded in-flight. Messages are
//! passed as `Arc`s: nothing is serialized or copied. Messages published on a subject that no
//! consumer filters yet are kept and handed to the first consumer that matches, as a stream
//! would keep them.
//!
//! Memory: the bus holds what is published and not yet acknowledged. In the crawl loop that
//! is bounded upstream: the scheduler dispatches at most its in-flight window of tasks, and
//! every other message is caused by one of them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Acker, Bus, BusError, Consumer, ConsumerSpec, ConsumerStats, Delivery};
use crate::message::Message;

/// A message waiting in, or delivered from, a consumer's queue.
#[derive(Clone)]
struct Entry {
    subject: Arc<str>,
    message: Arc<Message>,
    deliveries: u32,
}

/// The shared state of one durable consumer.
struct Queue {
    spec: ConsumerSpec,
    /// Woken when this queue gets a message or a free slot; per queue, so a publish wakes only
    /// the handles that can take it.
    changed: Arc<Notify>,
    max_in_flight: usize,
    ack_wait: Duration,
    ready: VecDeque<Entry>,
    /// Nacked with a delay: (due, sequence) ordered, entry kept in `parked`.
    delayed: BinaryHeap<Reverse<(Instant, u64)>>,
    parked: HashMap<u64, Entry>,
    /// Delivered, unacknowledged: id → (deadline, entry).
    in_flight: HashMap<u64, (Instant, Entry)>,
    /// Deadlines of `in_flight` in order; stale ones are skipped lazily.
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    next_id: u64,
}

impl Queue {
    fn new(spec: &ConsumerSpec) -> Self {
        Self {
            spec: spec.clone(),
            changed: Arc::new(Notify::new()),
            max_in_flight: spec.max_in_flight,
            ack_wait: spec.ack_wait,
            ready: VecDeque::new(),
            delayed: BinaryHeap::new(),
            parked: HashMap::new(),
            in_flight: HashMap::new(),
            deadlines: BinaryHeap::new(),
            next_id: 0,
        }
    }

    /// Moves due delayed messages and expired deliveries back to `ready`.
    fn promote(&mut self, now: Instant) {
        while let Some(Reverse((due, id))) = self.delayed.peek().copied() {
            if due > now {
                break;
            }
            self.delayed.pop();
            if let Some(entry) = self.parked.remove(&id) {
                self.ready.push_back(entry);
            }
        }
        while let Some(Reverse((deadline, id))) = self.deadlines.peek().copied() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            // A stale heap entry (already acked, or re-delivered with a later deadline) is skipped.
            if self.in_flight.get(&id).is_some_and(|(d, _)| *d == deadline)
                && let Some((_, entry)) = self.in_flight.remove(&id)
            {
                // Redelivered first: it has waited longest.
                self.ready.push_front(entry);
            }
        }
    }

    /// When `promote` next has something to do.
    fn next_wake(&self) -> Option<Instant> {
        let delayed = self.delayed.peek().map(|Reverse((t, _))| *t);
        let deadline = self.deadlines.peek().map(|Reverse((t, _))| *t);
        match (delayed, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn take(&mut self, now: Instant) -> Option<(u64, Entry)> {
        if self.in_flight.len() >= self.max_in_flight {
            return None;
        }
        let mut entry = self.ready.pop_front()?;
        let id = self.next_id;
        self.next_id += 1;
        let deadline = now + self.ack_wait;
        entry.deliveries += 1;
        self.in_flight.insert(id, (deadline, entry.clone()));
        self.deadlines.push(Reverse((deadline, id)));
        Some((id, entry))
    }
}

#[derive(Default)]
struct State {
    queues: HashMap<String, Queue>,
    /// Published on a subject no consumer filters yet.
    unclaimed: VecDeque<Entry>,
    closed: bool,
}

struct Inner {
    state: Mutex<State>,
    /// Events of `broadcast`; a listener that falls behind skips what it missed.
    events: tokio::sync::broadcast::Sender<(Arc<str>, Arc<[u8]>)>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every mutation is one step),
        // so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The in-process [`Bus`].
#[derive(Clone)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                events: tokio::sync::broadcast::channel(1024).0,
            }),
        }
    }

    /// Closes the bus: consumers return `None` once they hold nothing more to deliver.
    pub fn close(&self) {
        let mut state = self.inner.lock();
        state.closed = true;
        for queue in state.queues.values() {
            queue.changed.notify_waiters();
        }
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, subject: &str, message: Message) -> Result<(), BusError> {
        let entry = Entry {
            subject: Arc::from(subject),
            message: Arc::new(message),
            deliveries: 0,
        };
        let mut state = self.inner.lock();
        if state.closed {
            return Err(BusError::Closed);
        }
        let mut delivered = false;
        for queue in state.queues.values_mut() {
            if queue.spec.matches(subject) {
                queue.ready.push_back(entry.clone());
                queue.changed.notify_waiters();
                delivered = true;
            }
        }
        if !delivered {
            state.unclaimed.push_back(entry);
        }
        Ok(())
    }

    async fn consume(&self, spec: ConsumerSpec) -> Result<Box<dyn Consumer>, BusError> {
        let changed = {
            let mut state = self.inner.lock();
            if state.closed {
                return Err(BusError::Closed);
            }
            if !state.queues.contains_key(&spec.durable) {
                let mut queue = Queue::new(&spec);
                let (mine, rest): (VecDeque<Entry>, VecDeque<Entry>) = state
                    .unclaimed
                    .drain(..)
                    .partition(|e| spec.matches(&e.subject));
                queue.ready = mine;
                state.unclaimed = rest;
                state.queues.insert(spec.durable.clone(), queue);
            }
            state
                .queues
                .get(&spec.durable)
                .map(|q| q.changed.clone())
                .ok_or(BusError::Closed)?
        };
        Ok(Box::new(MemoryConsumer {
            inner: self.inner.clone(),
            durable: spec.durable,
            changed,
        }))
    }

    async fn broadcast(&self, subject: &str, payload: Vec<u8>) -> Result<(), BusError> {
        // No listener is not an error: events are for whoever is there.
        let _ = self
            .inner
            .events
            .send((Arc::from(subject), Arc::from(payload)));
        Ok(())
    }

    async fn listen(
        &self,
        filter: &str,
    ) -> Result<futures::stream::BoxStream<'static, (String, Vec<u8>)>, BusError> {
        let rx = self.inner.events.subscribe();
        let filter = filter.to_string();
        let stream = futures::stream::unfold(rx, move |mut rx| {
            let filter = filter.clone();
            async move {
                loop {
                    match rx.recv().await {
                        Ok((subject, payload)) if crate::subject::matches(&filter, &subject) => {
                            return Some(((subject.to_string(), payload.to_vec()), rx));
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        });
        Ok(Box::pin(stream))
    }

    async fn stats(&self, durable: &str) -> Result<ConsumerStats, BusError> {
        let state = self.inner.lock();
        Ok(state
            .queues
            .get(durable)
            .map(|q| ConsumerStats {
                pending: (q.ready.len() + q.parked.len()) as u64,
                in_flight: q.in_flight.len() as u64,
            })
            .unwrap_or_default())
    }
}

struct MemoryConsumer {
    inner: Arc<Inner>,
    durable: String,
    changed: Arc<Notify>,
}

#[async_trait]
impl Consumer for MemoryConsumer {
    async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        loop {
            // Registered before looking, so a publish between the look and the wait is not missed.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let wake = {
                let mut state = self.inner.lock();
                let closed = state.closed;
                let queue = state.queues.get_mut(&self.durable)?;
                let now = Instant::now();
                queue.promote(now);
                if let Some((id, entry)) = queue.take(now) {
                    let acker = MemoryAcker {
                        inner: self.inner.clone(),
                        durable: self.durable.clone(),
                        changed: self.changed.clone(),
                        id,
                    };
                    return Some(Ok(Delivery::new(
                        entry.subject.to_string(),
                        entry.message,
                        entry.deliveries - 1,
                        Box::new(acker),
                    )));
                }
                if closed && queue.ready.is_empty() {
                    return None;
                }
                queue.next_wake()
            };
            match wake {
                Some(at) => {
                    tokio::select! {
                        _ = &mut changed => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

struct MemoryAcker {
    inner: Arc<Inner>,
    durable: String,
    changed: Arc<Notify>,
    id: u64,
}

#[async_trait]
impl Acker for MemoryAcker {
    async fn ack(&self) -> Result<(), BusError> {
        {
            let mut state = self.inner.lock();
            if let Some(queue) = state.queues.get_mut(&self.durable) {
                queue.in_flight.remove(&self.id);
            }
        }
        self.changed.notify_waiters();
        Ok(())
    }

    async fn nack(&self, delay: Duration) -> Result<(), BusError> {
        {
            let mut state = self.inner.lock();
            if let Some(queue) = state.queues.get_mut(&self.durable)
                && let Some((_, entry)) = queue.in_flight.remove(&self.id)
            {
                if delay.is_zero() {
                    queue.ready.push_front(entry);
                } else {
                    let id = queue.next_id;
                    queue.next_id += 1;
                    queue.parked.insert(id, entry);
                    queue.delayed.push(Reverse((Instant::now() + delay, id)));
                }
            }
        }
        self.changed.notify_waiters();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{NewTasks, WIRE_VERSION};

    fn msg(parent: &str) -> Message {
        Message::NewTasks(NewTasks {
            v: WIRE_VERSION,
            project: "p".into(),
            parent: parent.into(),
            tasks: vec![],
        })
    }

    #[tokio::test]
    async fn close_ends_consumers() {
        let bus = MemoryBus::new();
        let mut c = bus
            .consume(ConsumerSpec::new("spindle.newtask.>", "s"))
            .await
            .expect("consume");
        bus.close();
        assert!(c.next().await.is_none());
        assert!(matches!(
            bus.publish("spindle.newtask.p", msg("x")).await,
            Err(BusError::Closed)
        ));
    }
}
