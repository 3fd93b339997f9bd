//! A bus that forwards to another and misbehaves on chosen publishes: what a JetStream outage
//! or a stalled server looks like to a service, without a server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use futures::stream::BoxStream;
use spindle_common::bus::{Bus, BusError, Consumer, ConsumerSpec, ConsumerStats};
use spindle_common::message::Message;
use tokio::sync::{Notify, Semaphore};

/// Which publishes a fault applies to.
type Selector = Box<dyn Fn(&str, &Message) -> bool + Send + Sync>;

/// A [`Bus`] forwarding everything to `inner`, except that the publishes its selector picks
/// fail (the first few) or wait at a [`Gate`]. Consuming, stats and events pass through.
pub struct FaultyBus {
    inner: Arc<dyn Bus>,
    selects: Selector,
    failures: AtomicUsize,
    gate: Option<Arc<Gate>>,
}

impl FaultyBus {
    /// A bus whose publishes that `selects` picks (by subject and message) are subject to the
    /// faults set next; with none set, it only forwards.
    pub fn on(
        inner: Arc<dyn Bus>,
        selects: impl Fn(&str, &Message) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self {
            inner,
            selects: Box::new(selects),
            failures: AtomicUsize::new(0),
            gate: None,
        }
    }

    /// The first `n` picked publishes fail with a transport error, as in an outage.
    pub fn failing(self, n: usize) -> Self {
        self.failures.store(n, Ordering::SeqCst);
        self
    }

    /// Every picked publish waits at the returned gate until the test lets it through.
    pub fn gated(mut self) -> (Self, Arc<Gate>) {
        let gate = Arc::new(Gate {
            reached: Notify::new(),
            passes: Semaphore::new(0),
        });
        self.gate = Some(gate.clone());
        (self, gate)
    }
}

/// Where gated publishes wait: a test learns that one arrived and lets them through.
pub struct Gate {
    reached: Notify,
    passes: Semaphore,
}

impl Gate {
    /// Waits until a gated publish arrives (or one arrived since the last call).
    pub async fn reached(&self) {
        self.reached.notified().await;
    }

    /// Lets `n` gated publishes through.
    pub fn open(&self, n: usize) {
        self.passes.add_permits(n);
    }
}

#[async_trait]
impl Bus for FaultyBus {
    async fn publish(&self, subject: &str, message: Message) -> Result<(), BusError> {
        if (self.selects)(subject, &message) {
            let failing = self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if failing {
                return Err(BusError::Transport("injected outage".into()));
            }
            if let Some(gate) = &self.gate {
                gate.reached.notify_one();
                let pass = gate.passes.acquire().await.map_err(|_| BusError::Closed)?;
                pass.forget();
            }
        }
        self.inner.publish(subject, message).await
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use spindle_common::bus::MemoryBus;
    use spindle_common::message::{NewTasks, WIRE_VERSION};

    use super::*;

    fn msg() -> Message {
        Message::NewTasks(NewTasks {
            v: WIRE_VERSION,
            project: "p".into(),
            parent: "x".into(),
            tasks: vec![],
        })
    }

    #[tokio::test]
    async fn picked_publishes_fail_then_pass_and_others_are_untouched() {
        let bus = FaultyBus::on(Arc::new(MemoryBus::new()), |s, _| s.ends_with(".a")).failing(2);
        assert!(bus.publish("spindle.newtask.b", msg()).await.is_ok());
        for _ in 0..2 {
            assert!(matches!(
                bus.publish("spindle.newtask.a", msg()).await,
                Err(BusError::Transport(_))
            ));
        }
        assert!(bus.publish("spindle.newtask.a", msg()).await.is_ok());
    }

    #[tokio::test]
    async fn a_gated_publish_waits_for_the_test() {
        let (bus, gate) = FaultyBus::on(Arc::new(MemoryBus::new()), |_, _| true).gated();
        let bus = Arc::new(bus);
        let publishing = tokio::spawn({
            let bus = bus.clone();
            async move { bus.publish("spindle.newtask.p", msg()).await }
        });
        gate.reached().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!publishing.is_finished(), "held at the gate");
        gate.open(1);
        assert!(publishing.await.expect("no panic").is_ok());
    }
}
