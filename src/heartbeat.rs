//! Heartbeats: every instance of a role says every [`events::HEARTBEAT_EVERY_MS`] that it
//! lives, what it holds and how fast it works, counted by a [`MeteredBus`] around its bus.
//! Distributed roles send them on NATS; `spindle all` sends one per in-process role on its
//! in-process bus, so the web UI lists the roles of both modes the same way.
//!
//! [`MeteredBus`]: spindle_common::bus::MeteredBus

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use spindle_common::bus::Meter;
use spindle_common::events::{self, Heartbeat};
use spindle_common::{Bus, Clock, SystemClock};
use tokio_util::sync::CancellationToken;

/// Sends this instance's heartbeat every period until `shutdown`, and after each one that
/// was sent writes it to `file` (whose age a container health check reads).
pub async fn send_every_period(
    bus: Arc<dyn Bus>,
    meter: Arc<Meter>,
    (role, id): (&'static str, String),
    file: Option<PathBuf>,
    shutdown: CancellationToken,
) {
    let clock = SystemClock;
    let started_ms = clock.now_ms();
    let mut last = (started_ms, 0_u64);
    let mut tick = tokio::time::interval(Duration::from_millis(events::HEARTBEAT_EVERY_MS as u64));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = clock.now_ms();
        let done = meter.done();
        let per_second = (done - last.1) as f64 * 1000.0 / (now - last.0).max(1) as f64;
        last = (now, done);
        let hb = Heartbeat {
            id: id.clone(),
            role: role.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            in_flight: meter.in_flight(),
            done,
            per_second,
            started_ms,
            at_ms: now,
        };
        let payload = match serde_json::to_vec(&hb) {
            Ok(payload) => payload,
            Err(e) => {
                tracing::error!(error = %e, "heartbeat not encodable");
                continue;
            }
        };
        if let Err(e) = bus.broadcast(&hb.subject(), payload.clone()).await {
            tracing::debug!(error = %e, "heartbeat not sent");
        } else if let Some(path) = &file
            && let Err(e) = tokio::fs::write(path, payload).await
        {
            tracing::warn!(error = %e, file = %path.display(), "heartbeat file not written");
        }
    }
}
