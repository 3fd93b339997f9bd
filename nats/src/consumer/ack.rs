//! Settling what a handle handed out: the slots deliveries hold, and the acks that free them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::Subject;
use async_nats::jetstream::{self, AckKind};
use async_trait::async_trait;
use bytes::Bytes;
use spindle_common::bus::{Acker, BusError};
use tokio::sync::Notify;
use tracing::{debug, warn};

use crate::Shared;
use crate::bundle::Bundle;

/// Deliveries handed out by one handle and not yet settled.
pub(super) struct Slots {
    pub(super) held: AtomicUsize,
    /// Woken whenever a slot comes free.
    pub(super) freed: Notify,
}

impl Slots {
    pub(super) fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }
}

/// One held slot, released when the delivery is acked, nacked or dropped. Dropping an
/// unsettled delivery frees the local slot at once; the server still counts the message until
/// its ack wait passes, and enforces the bound.
pub(super) struct SlotGuard(Arc<Slots>);

impl SlotGuard {
    pub(super) fn take(slots: &Arc<Slots>) -> Self {
        slots.held.fetch_add(1, Ordering::AcqRel);
        Self(slots.clone())
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::AcqRel);
        self.0.freed.notify_waiters();
    }
}

/// Settles one delivery.
pub(super) struct NatsAcker {
    pub(super) shared: Arc<Shared>,
    pub(super) reply: Subject,
    /// Object holding the message's body, deleted once the ack is confirmed.
    pub(super) object: Option<String>,
    pub(super) _slot: SlotGuard,
}

/// Sends an ack of some kind to `reply`, waiting for the server's confirmation if configured;
/// whether it was confirmed.
pub(crate) async fn send_ack(
    shared: &Shared,
    reply: &Subject,
    kind: AckKind,
) -> Result<bool, BusError> {
    let payload: Bytes = kind.into();
    let options = &shared.options;
    if options.confirm_acks {
        let request = async_nats::Request::new()
            .payload(payload.clone())
            .timeout(Some(options.ack_timeout));
        match shared.client.send_request(reply.clone(), request).await {
            Ok(_) => return Ok(true),
            Err(e) => debug!(error = %e, "ack not confirmed; sending it unconfirmed"),
        }
    }
    // Queued by the client and sent, if need be, after it reconnects.
    shared
        .client
        .publish(reply.clone(), payload)
        .await
        .map_err(|e| BusError::Transport(format!("ack: {e}")))?;
    Ok(false)
}

/// How many times a message was delivered before, from its ack subject.
pub(super) fn redeliveries(shared: &Shared, message: async_nats::Message) -> u32 {
    let js_message = jetstream::Message {
        message,
        context: shared.js.clone(),
    };
    js_message
        .info()
        .map(|info| u32::try_from(info.delivered.saturating_sub(1)).unwrap_or(0))
        .unwrap_or(0)
}

#[async_trait]
impl Acker for NatsAcker {
    async fn ack(&self) -> Result<(), BusError> {
        let confirmed = send_ack(&self.shared, &self.reply, AckKind::Ack).await?;
        if let Some(name) = &self.object {
            if confirmed {
                // The message has left its work-queue stream for good: its body can go too.
                if let Err(e) = self.shared.bodies.delete(name).await {
                    warn!(error = %e, object = %name, "large body not deleted; the bucket's TTL will");
                }
            } else {
                // The ack may be lost and the message redelivered: keep the body for it.
                debug!(object = %name, "large body kept for the bucket's TTL");
            }
        }
        Ok(())
    }

    async fn nack(&self, delay: Duration) -> Result<(), BusError> {
        let kind = if delay.is_zero() {
            AckKind::Nak(None)
        } else {
            AckKind::Nak(Some(delay))
        };
        send_ack(&self.shared, &self.reply, kind).await.map(|_| ())
    }
}

/// Settles one part of a bundle; the bundle is settled with its last part.
pub(super) struct PartAcker {
    pub(super) bundle: Arc<Bundle>,
    pub(super) _slot: SlotGuard,
}

#[async_trait]
impl Acker for PartAcker {
    async fn ack(&self) -> Result<(), BusError> {
        self.bundle.settle(None).await
    }

    async fn nack(&self, delay: Duration) -> Result<(), BusError> {
        self.bundle.settle(Some(delay)).await
    }
}
