//! A bus wrapper that counts what one instance holds and finishes, for its heartbeat.
//!
//! Services take any [`Bus`]; giving them a [`MeteredBus`] makes their activity visible
//! without a line of code in them: a delivery counts as in flight until it is acked or
//! nacked, and an ack counts as done.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use tokio::sync::Mutex;

use super::{Acker, Bus, BusError, Consumer, ConsumerSpec, ConsumerStats, Delivery};
use crate::message::Message;

/// Counts of one instance.
#[derive(Debug, Default)]
pub struct Meter {
    delivered: AtomicU64,
    finished: AtomicU64,
    done: AtomicU64,
}

impl Meter {
    /// Messages delivered and not yet acked or nacked.
    pub fn in_flight(&self) -> u64 {
        self.delivered
            .load(Ordering::Relaxed)
            .saturating_sub(self.finished.load(Ordering::Relaxed))
    }

    /// Messages acked.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }
}

/// A [`Bus`] that meters deliveries of the bus it wraps.
#[derive(Clone)]
pub struct MeteredBus {
    inner: Arc<dyn Bus>,
    meter: Arc<Meter>,
    ack_wait: Option<Duration>,
}

impl MeteredBus {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Bus>) -> Self {
        Self {
            inner,
            meter: Arc::new(Meter::default()),
            ack_wait: None,
        }
    }

    /// Sets the ack wait of every consumer this instance opens: how long after a crash its
    /// messages go to another instance (an operator's setting, `--ack-wait`).
    pub fn with_ack_wait(mut self, ack_wait: Option<Duration>) -> Self {
        self.ack_wait = ack_wait;
        self
    }

    /// The counts.
    pub fn meter(&self) -> Arc<Meter> {
        self.meter.clone()
    }
}

#[async_trait]
impl Bus for MeteredBus {
    async fn publish(&self, subject: &str, message: Message) -> Result<(), BusError> {
        self.inner.publish(subject, message).await
    }

    async fn publish_batch(&self, messages: Vec<(String, Message)>) -> Result<(), BusError> {
        self.inner.publish_batch(messages).await
    }

    async fn consume(&self, mut spec: ConsumerSpec) -> Result<Box<dyn Consumer>, BusError> {
        if let Some(wait) = self.ack_wait {
            spec.ack_wait = wait;
        }
        Ok(Box::new(MeteredConsumer {
            inner: self.inner.consume(spec).await?,
            meter: self.meter.clone(),
        }))
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

struct MeteredConsumer {
    inner: Box<dyn Consumer>,
    meter: Arc<Meter>,
}

#[async_trait]
impl Consumer for MeteredConsumer {
    async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        let delivery = match self.inner.next().await? {
            Ok(d) => d,
            Err(e) => return Some(Err(e)),
        };
        self.meter.delivered.fetch_add(1, Ordering::Relaxed);
        let (subject, message, redeliveries) = (
            delivery.subject.clone(),
            delivery.message.clone(),
            delivery.redeliveries,
        );
        let acker = MeteredAcker {
            delivery: Mutex::new(Some(delivery)),
            meter: self.meter.clone(),
        };
        Some(Ok(Delivery::new(
            subject,
            message,
            redeliveries,
            Box::new(acker),
        )))
    }
}

struct MeteredAcker {
    delivery: Mutex<Option<Delivery>>,
    meter: Arc<Meter>,
}

#[async_trait]
impl Acker for MeteredAcker {
    async fn ack(&self) -> Result<(), BusError> {
        let Some(d) = self.delivery.lock().await.take() else {
            return Ok(());
        };
        self.meter.finished.fetch_add(1, Ordering::Relaxed);
        self.meter.done.fetch_add(1, Ordering::Relaxed);
        d.ack().await
    }

    async fn nack(&self, delay: Duration) -> Result<(), BusError> {
        let Some(d) = self.delivery.lock().await.take() else {
            return Ok(());
        };
        self.meter.finished.fetch_add(1, Ordering::Relaxed);
        d.nack(delay).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::MemoryBus;
    use crate::message::{NewTasks, WIRE_VERSION};
    use futures::FutureExt;

    #[tokio::test]
    async fn counts_in_flight_and_done() {
        let bus = MeteredBus::new(Arc::new(MemoryBus::new()));
        let meter = bus.meter();
        let mut c = bus
            .consume(ConsumerSpec::new("spindle.newtask.>", "s"))
            .await
            .expect("consume");
        for _ in 0..2 {
            let m = Message::NewTasks(NewTasks {
                v: WIRE_VERSION,
                project: "p".into(),
                parent: "x".into(),
                tasks: vec![],
            });
            bus.publish("spindle.newtask.p", m).await.expect("publish");
        }
        let a = c.next().now_or_never().flatten().expect("a").expect("ok");
        let b = c.next().now_or_never().flatten().expect("b").expect("ok");
        assert_eq!(meter.in_flight(), 2);
        a.ack().await.expect("ack");
        b.nack(Duration::ZERO).await.expect("nack");
        assert_eq!((meter.in_flight(), meter.done()), (0, 1));
    }
}
